//! `GET /repos/{owner}/{repo}/branches` (GitHub's `repos/list-branches`) as ghplane pages it:
//! one GitHub page per call, GitHub's `Link: rel="next"` page number handed out as an opaque
//! cursor, so a picker can walk every branch without ghplane holding a listing.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::github::pages::next_link;
use crate::ids::RepoFullName;

/// Branches per GitHub page (GitHub's maximum).
pub const PER_PAGE: u32 = 100;
/// The last page a cursor may name: GitHub's page-based listings stop being useful long
/// before (100,000 branches).
const MAX_PAGE: u32 = 1000;

/// One branch as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    pub name: String,
    /// The head commit.
    pub sha: String,
    pub protected: bool,
}

/// A page of branches; `nextCursor` fetches the next one (absent on the last page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchPage {
    pub branches: Vec<Branch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What GitHub answers per branch (the fields ghplane reads).
#[derive(Deserialize)]
struct GithubBranch {
    name: String,
    commit: GithubCommit,
    #[serde(default)]
    protected: bool,
}

#[derive(Deserialize)]
struct GithubCommit {
    sha: String,
}

/// The repository of the path (`{owner}`, `{repo}`), checked before GitHub is called.
pub fn repository(owner: &str, repo: &str) -> Result<RepoFullName, ApiError> {
    RepoFullName::parse(&format!("{owner}/{repo}")).map_err(ApiError::Validation)
}

/// The GitHub page a `cursor` names: the first page without one.
pub fn page_of(cursor: Option<&str>) -> Result<u32, ApiError> {
    match cursor {
        None => Ok(1),
        Some(c) => c
            .parse::<u32>()
            .ok()
            .filter(|p| (2..=MAX_PAGE).contains(p) && !c.starts_with('0') && !c.starts_with('+'))
            .ok_or_else(|| ApiError::Validation("cursor: not a cursor of this listing".into())),
    }
}

/// The GitHub path of page `page` of `repo`'s branches.
pub fn path(repo: &RepoFullName, page: u32) -> String {
    format!(
        "/repos/{}/branches?per_page={PER_PAGE}&page={page}",
        repo.as_str()
    )
}

/// GitHub's answer for a page: its branches, and the cursor of the next page when GitHub's
/// `Link` header names one (its `page` query parameter).
pub fn from_github(body: &[u8], link: Option<&str>) -> Result<BranchPage, serde_json::Error> {
    let listed: Vec<GithubBranch> = serde_json::from_slice(body)?;
    Ok(BranchPage {
        branches: listed
            .into_iter()
            .map(|b| Branch {
                name: b.name,
                sha: b.commit.sha,
                protected: b.protected,
            })
            .collect(),
        next_cursor: link.and_then(next_link).and_then(page_param),
    })
}

/// The GitHub path of one branch (`repos/get-branch`): the name's bytes other than
/// unreserved characters and `/` percent-encoded (a branch may be named `fix#1`).
pub fn head_path(repo: &RepoFullName, branch: &str) -> String {
    let mut name = String::with_capacity(branch.len());
    for b in branch.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/repos/{}/branches/{name}", repo.as_str())
}

/// A branch's head commit, as `repos/get-branch` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchHead {
    pub sha: String,
    /// The head commit's message (empty when GitHub leaves it out).
    pub message: String,
}

/// GitHub's answer for one branch: its head commit.
pub fn head_from_github(body: &[u8]) -> Result<BranchHead, serde_json::Error> {
    #[derive(Deserialize)]
    struct One {
        commit: HeadCommit,
    }
    #[derive(Deserialize)]
    struct HeadCommit {
        sha: String,
        #[serde(default)]
        commit: Option<CommitDetail>,
    }
    #[derive(Deserialize)]
    struct CommitDetail {
        #[serde(default)]
        message: Option<String>,
    }
    let one: One = serde_json::from_slice(body)?;
    Ok(BranchHead {
        sha: one.commit.sha,
        message: one
            .commit
            .commit
            .and_then(|c| c.message)
            .unwrap_or_default(),
    })
}

/// The `page` query parameter of a URL, when it names a page a cursor may name.
fn page_param(url: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("page="))
        .filter(|p| page_of(Some(p)).is_ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_a_later_page() {
        assert_eq!(page_of(None).unwrap(), 1);
        assert_eq!(page_of(Some("2")).unwrap(), 2);
        for bad in ["", "1", "0", "02", "+3", "x", "1001", "-2"] {
            assert!(
                matches!(page_of(Some(bad)), Err(ApiError::Validation(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_path_names_the_page() {
        let repo = repository("acme", "site.io").unwrap();
        assert_eq!(
            path(&repo, 3),
            "/repos/acme/site.io/branches?per_page=100&page=3"
        );
        for (owner, repo) in [("-acme", "x"), ("acme", ".."), ("ac me", "x"), ("a", "b/c")] {
            assert!(
                matches!(repository(owner, repo), Err(ApiError::Validation(_))),
                "{owner}/{repo}"
            );
        }
    }

    #[test]
    fn one_branch_is_read_by_its_encoded_name() {
        let repo = repository("acme", "site").unwrap();
        assert_eq!(head_path(&repo, "main"), "/repos/acme/site/branches/main");
        assert_eq!(
            head_path(&repo, "feat/fix#1 é"),
            "/repos/acme/site/branches/feat/fix%231%20%C3%A9"
        );
        let body = br#"{"name":"main","commit":{"sha":"abc","commit":{"message":"Fix it","author":null}},"protected":false}"#;
        assert_eq!(
            head_from_github(body).unwrap(),
            BranchHead {
                sha: "abc".into(),
                message: "Fix it".into()
            }
        );
        let bare = br#"{"name":"main","commit":{"sha":"abc"}}"#;
        assert_eq!(head_from_github(bare).unwrap().message, "");
        assert!(head_from_github(b"[]").is_err());
    }

    #[test]
    fn githubs_page_maps_to_items_and_a_cursor() {
        let body = br#"[{"name":"main","commit":{"sha":"abc","url":"u"},"protected":true},
            {"name":"dev","commit":{"sha":"def","url":"u"},"protected":false}]"#;
        let link = r#"<https://api.github.com/repositories/1/branches?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/branches?per_page=100&page=4>; rel="last""#;
        let page = from_github(body, Some(link)).unwrap();
        assert_eq!(
            page.branches,
            [
                Branch {
                    name: "main".into(),
                    sha: "abc".into(),
                    protected: true
                },
                Branch {
                    name: "dev".into(),
                    sha: "def".into(),
                    protected: false
                },
            ]
        );
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = from_github(
            b"[]",
            Some(r#"<https://api.github.com/x?page=1>; rel="prev""#),
        );
        assert_eq!(last.unwrap().next_cursor, None);
        assert_eq!(from_github(b"[]", None).unwrap().next_cursor, None);
        assert_eq!(
            serde_json::to_value(from_github(body, Some(link)).unwrap()).unwrap()["nextCursor"],
            "2"
        );
        assert!(from_github(br#"{"message":"x"}"#, None).is_err());
    }
}
