//! Which organization project repositories live in, and whose credentials reach it. Invariant:
//! the org's credentials are the installation token of the app installed on `GITHUB_ORG` when
//! one is configured, else the `GITHUB_TOKEN` secret; anything else is "not configured", named
//! by the variable to set, and never a guess.

use std::collections::BTreeMap;

use crate::ids::InstallationId;
use crate::tenancy::token::TokenScope;

/// Repositories per page when listing; GitHub's maximum.
pub const LIST_PAGE_SIZE: u32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgAuth {
    /// The app installation on the org, configured as a tenant (`GITHUB_ORG_INSTALLATION_ID`).
    Installation(InstallationId),
    /// The `GITHUB_TOKEN` secret: a fine-grained personal access token on the org.
    Token,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgSetting {
    pub org: String,
    pub auth: OrgAuth,
}

/// The org repository step cannot run; `var` is the setting to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrgNotConfigured {
    pub var: &'static str,
}

/// Reads the org settings (`None` = unset or empty). `token_set` says whether the
/// `GITHUB_TOKEN` secret is present; its value never comes here.
pub fn org_setting(
    org: Option<&str>,
    installation: Option<&str>,
    token_set: bool,
) -> Result<OrgSetting, OrgNotConfigured> {
    let org = org
        .map(str::trim)
        .filter(|o| is_login(o))
        .ok_or(OrgNotConfigured { var: "GITHUB_ORG" })?;
    let auth = match installation.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => {
            OrgAuth::Installation(InstallationId::parse(id).map_err(|_| OrgNotConfigured {
                var: "GITHUB_ORG_INSTALLATION_ID",
            })?)
        }
        None if token_set => OrgAuth::Token,
        None => {
            return Err(OrgNotConfigured {
                var: "GITHUB_ORG_INSTALLATION_ID",
            })
        }
    };
    Ok(OrgSetting {
        org: org.to_owned(),
        auth,
    })
}

/// A GitHub user or organization login: 1–39 of `[A-Za-z0-9-]`, not starting with `-`. Also
/// what keeps the value safe to put in a request path.
fn is_login(s: &str) -> bool {
    (1..=39).contains(&s.len())
        && !s.starts_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// What the org installation's token may do: create repositories (Administration), push to
/// them (Contents), read them (Metadata). One scope for every org call, so one cached token.
pub fn org_token_scope() -> TokenScope {
    let permissions: BTreeMap<String, String> = [
        ("administration", "write"),
        ("contents", "write"),
        ("metadata", "read"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    TokenScope {
        repositories: vec![],
        permissions,
    }
}

impl OrgSetting {
    /// One page of the repositories the credentials reach: an installation lists its own
    /// (`/installation/repositories`); a personal token lists the org's, private included.
    pub fn list_path(&self, page: u32) -> String {
        match self.auth {
            OrgAuth::Installation(_) => {
                format!("/installation/repositories?per_page={LIST_PAGE_SIZE}&page={page}")
            }
            OrgAuth::Token => format!(
                "/orgs/{}/repos?type=all&per_page={LIST_PAGE_SIZE}&page={page}",
                self.org
            ),
        }
    }

    pub fn create_path(&self) -> String {
        format!("/orgs/{}/repos", self.org)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_wins_over_the_token() {
        let s = org_setting(Some("acme-org"), Some("42"), true).unwrap();
        assert_eq!(s.org, "acme-org");
        assert_eq!(
            s.auth,
            OrgAuth::Installation(InstallationId::parse("42").unwrap())
        );
        assert_eq!(s.create_path(), "/orgs/acme-org/repos");
        assert_eq!(
            s.list_path(2),
            "/installation/repositories?per_page=100&page=2"
        );
    }

    #[test]
    fn the_token_is_the_fallback() {
        let s = org_setting(Some("acme-org"), None, true).unwrap();
        assert_eq!(s.auth, OrgAuth::Token);
        assert_eq!(
            s.list_path(1),
            "/orgs/acme-org/repos?type=all&per_page=100&page=1"
        );
        assert_eq!(org_setting(Some("acme-org"), Some(" "), true).unwrap(), s);
    }

    #[test]
    fn missing_or_malformed_settings_name_their_variable() {
        let var = |org, inst, token| org_setting(org, inst, token).unwrap_err().var;
        assert_eq!(var(None, Some("42"), true), "GITHUB_ORG");
        let long = "o".repeat(40);
        for bad in ["", "-org", "a/b", "org?x=1", &long] {
            assert_eq!(var(Some(bad), Some("42"), true), "GITHUB_ORG", "{bad:?}");
        }
        assert_eq!(var(Some("org"), None, false), "GITHUB_ORG_INSTALLATION_ID");
        assert_eq!(
            var(Some("org"), Some("x"), true),
            "GITHUB_ORG_INSTALLATION_ID",
            "a malformed id is not silently replaced by the token"
        );
    }

    #[test]
    fn the_scope_names_its_permissions() {
        let scope = org_token_scope();
        assert!(scope.repositories.is_empty());
        assert_eq!(
            scope.request_body(),
            serde_json::json!({"permissions": {"administration": "write",
                "contents": "write", "metadata": "read"}})
        );
    }
}
