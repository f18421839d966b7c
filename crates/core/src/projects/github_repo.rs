//! GitHub's repository JSON, reduced to the few fields ghplane keeps. Anything else GitHub
//! sends is ignored; a missing or malformed required field is a `MalformedResponse`, never a
//! half-filled row.

use serde::{Deserialize, Serialize};

use super::record::GithubRepo;
use crate::github::error::GithubError;
use crate::ids::RepoFullName;

/// A repository object as GitHub returns it (create, get, and list responses).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GhRepository {
    pub id: u64,
    #[serde(default)]
    pub node_id: Option<String>,
    pub full_name: RepoFullName,
    /// Absent on some minimal payloads; GitHub's default for new repositories is `main`.
    #[serde(default)]
    pub default_branch: Option<String>,
    pub private: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// One row of `GET /github/repos`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoListing {
    pub id: u64,
    pub node_id: Option<String>,
    pub full_name: RepoFullName,
    pub default_branch: String,
    pub private: bool,
    pub archived: bool,
}

/// `/installation/repositories` wraps its list; `/orgs/{org}/repos` does not.
#[derive(Deserialize)]
#[serde(untagged)]
enum ListBody {
    Wrapped { repositories: Vec<GhRepository> },
    Bare(Vec<GhRepository>),
}

impl GhRepository {
    pub fn parse(body: &[u8]) -> Result<GhRepository, GithubError> {
        serde_json::from_slice(body).map_err(|e| GithubError::MalformedResponse(e.to_string()))
    }

    /// A list page, from either listing endpoint.
    pub fn parse_list(body: &[u8]) -> Result<Vec<GhRepository>, GithubError> {
        match serde_json::from_slice::<ListBody>(body) {
            Ok(ListBody::Wrapped { repositories }) | Ok(ListBody::Bare(repositories)) => {
                Ok(repositories)
            }
            Err(e) => Err(GithubError::MalformedResponse(e.to_string())),
        }
    }

    fn branch(&self) -> String {
        self.default_branch
            .clone()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "main".to_owned())
    }

    pub fn to_github_repo(&self) -> GithubRepo {
        GithubRepo {
            full_name: self.full_name.clone(),
            default_branch: self.branch(),
            private: self.private,
        }
    }

    pub fn to_listing(&self) -> RepoListing {
        RepoListing {
            id: self.id,
            node_id: self.node_id.clone(),
            full_name: self.full_name.clone(),
            default_branch: self.branch(),
            private: self.private,
            archived: self.archived,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CREATED: &str = r#"{
        "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "acme-ab12",
        "full_name": "octo-org/acme-ab12", "owner": {"login": "octo-org"},
        "private": true, "description": "Widgets [ghplane:acme-ab12:0a0b0c0d0e0f]",
        "default_branch": "main", "archived": false, "visibility": "private"
    }"#;

    #[test]
    fn maps_a_repository() {
        let r = GhRepository::parse(CREATED.as_bytes()).unwrap();
        assert_eq!(
            serde_json::to_value(r.to_github_repo()).unwrap(),
            json!({"fullName": "octo-org/acme-ab12", "defaultBranch": "main", "private": true})
        );
        assert_eq!(
            serde_json::to_value(r.to_listing()).unwrap(),
            json!({"id": 1296269, "nodeId": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
                   "fullName": "octo-org/acme-ab12", "defaultBranch": "main",
                   "private": true, "archived": false})
        );
        assert!(crate::projects::is_our_repo(
            r.description.as_deref(),
            "acme-ab12",
            "0a0b0c0d0e0f"
        ));
    }

    #[test]
    fn lists_from_either_endpoint() {
        let bare = format!("[{CREATED}]");
        assert_eq!(GhRepository::parse_list(bare.as_bytes()).unwrap().len(), 1);
        let wrapped = format!(r#"{{"total_count": 1, "repositories": [{CREATED}]}}"#);
        assert_eq!(
            GhRepository::parse_list(wrapped.as_bytes()).unwrap().len(),
            1
        );
        assert!(GhRepository::parse_list(b"[]").unwrap().is_empty());
    }

    #[test]
    fn missing_default_branch_falls_back_to_main() {
        let r = GhRepository::parse(
            br#"{"id":1,"full_name":"o/r","private":false,"default_branch":null}"#,
        )
        .unwrap();
        assert_eq!(r.to_github_repo().default_branch, "main");
        assert!(!r.archived);
    }

    #[test]
    fn malformed_answers_are_classified() {
        for body in [
            &b"<html>"[..],
            br#"{"id":1,"private":true}"#,
            br#"{"id":1,"full_name":"not a name","private":true}"#,
            br#"{"id":"1","full_name":"o/r","private":true}"#,
        ] {
            assert!(matches!(
                GhRepository::parse(body),
                Err(GithubError::MalformedResponse(_))
            ));
        }
        assert!(GhRepository::parse_list(br#"{"repositories": 3}"#).is_err());
    }
}
