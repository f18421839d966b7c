//! The installations a signed-in user can act on: `GET /user/installations`, followed page
//! by page up to a cap, and GitHub's failures as the SPA's error classes.
//!
//! A listing the cap cut short says so (`incomplete: true`); a failed listing is an error,
//! never a partial or substitute list.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, UserAccessKind};
use crate::github::error::GithubError;

/// Pages followed by default (`INSTALLATIONS_PAGE_CAP`).
pub const DEFAULT_PAGE_CAP: u32 = 10;
pub const MAX_PAGE_CAP: u32 = 100;
/// GitHub's largest page.
pub const PER_PAGE: usize = 100;

/// `INSTALLATIONS_PAGE_CAP`: unset → the default; otherwise 1..=100, or `None` when it is
/// not (a misconfiguration, never silently the default).
pub fn page_cap(var: Option<&str>) -> Option<u32> {
    match var {
        None => Some(DEFAULT_PAGE_CAP),
        Some(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=MAX_PAGE_CAP).contains(n)),
    }
}

/// The path of page `page` (1-based).
pub fn page_path(page: u32) -> String {
    format!("/user/installations?per_page={PER_PAGE}&page={page}")
}

/// One page as GitHub sends it (only the fields ghplane reads).
#[derive(Debug, Deserialize)]
pub struct Page {
    pub total_count: u64,
    pub installations: Vec<RawInstallation>,
}

#[derive(Debug, Deserialize)]
pub struct RawInstallation {
    pub id: u64,
    #[serde(default)]
    pub account: Option<RawAccount>,
    #[serde(default)]
    pub repository_selection: Option<String>,
    #[serde(default)]
    pub app_slug: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawAccount {
    #[serde(default)]
    pub login: Option<String>,
    pub id: u64,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub login: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: u64,
    pub avatar_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub id: u64,
    pub account: Account,
    pub repository_selection: Option<String>,
    pub app_slug: Option<String>,
}

/// Pages collected so far.
#[derive(Debug, Default)]
pub struct Listing {
    pub installations: Vec<Installation>,
    /// Entries GitHub sent, including ones the filter will drop.
    pub seen: u64,
    pub total: u64,
    pub slug: Option<String>,
}

impl Listing {
    /// Adds a page; true when GitHub has more after it.
    pub fn add(&mut self, page: Page) -> bool {
        let got = page.installations.len();
        self.seen += got as u64;
        self.total = page.total_count;
        for raw in page.installations {
            if self.slug.is_none() {
                self.slug = raw.app_slug.clone().filter(|s| !s.is_empty());
            }
            // Enterprise installations have no login/type account; nothing here acts on them.
            let Some(account) = raw.account else { continue };
            let (Some(login), Some(kind)) = (account.login, account.kind) else {
                continue;
            };
            self.installations.push(Installation {
                id: raw.id,
                account: Account {
                    login,
                    kind,
                    id: account.id,
                    avatar_url: account.avatar_url,
                },
                repository_selection: raw.repository_selection,
                app_slug: raw.app_slug,
            });
        }
        got == PER_PAGE && self.seen < self.total
    }

    /// True when GitHub holds more than was read (the cap stopped the listing).
    pub fn incomplete(&self) -> bool {
        self.seen < self.total
    }

    /// Organisations, plus users' own accounts when `include_users`.
    pub fn visible(&self, include_users: bool) -> Vec<&Installation> {
        self.installations
            .iter()
            .filter(|i| {
                i.account.kind == "Organization" || (include_users && i.account.kind == "User")
            })
            .collect()
    }

    /// The answer of `GET /api/integrations/github/installations`.
    pub fn view(&self, include_users: bool, install_url: Option<String>) -> Value {
        json!({
            "installations": self.visible(include_users),
            "incomplete": self.incomplete(),
            "install_url": install_url,
        })
    }

    /// The short form `status` shows: organisation installations only.
    pub fn summary(&self) -> Value {
        let orgs = self.visible(false);
        json!({
            "count": orgs.len(),
            "accounts": orgs.iter().map(|i| i.account.login.as_str()).collect::<Vec<_>>(),
            "incomplete": self.incomplete(),
        })
    }
}

/// `?include=`: absent, or `users`.
pub fn include_users(param: Option<&str>) -> Result<bool, ApiError> {
    match param {
        None => Ok(false),
        Some("users") => Ok(true),
        Some(_) => Err(ApiError::Validation(
            "include: the only value is \"users\"".into(),
        )),
    }
}

/// GitHub's failure for a user's token, as the class the SPA acts on.
pub fn classify(e: &GithubError) -> ApiError {
    let (kind, message, retry_after_secs) = match e {
        GithubError::Unauthorized { .. } => (
            UserAccessKind::SessionInvalid,
            "GitHub no longer accepts this user's token; sign in again".to_owned(),
            None,
        ),
        GithubError::Forbidden { .. } | GithubError::NotFound => (
            UserAccessKind::MissingPermissions,
            "GitHub refused: the token or the app lacks a permission this needs".to_owned(),
            None,
        ),
        GithubError::RateLimited { retry_after_secs } => (
            UserAccessKind::Transient,
            "GitHub's rate limit was hit; try again later".to_owned(),
            *retry_after_secs,
        ),
        other => (
            UserAccessKind::Transient,
            format!("GitHub failed; try again later ({other})"),
            None,
        ),
    };
    ApiError::UserAccess {
        kind,
        message,
        retry_after_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: u64, kind: &str) -> Value {
        json!({"id": id, "account": {"login": format!("acct-{id}"), "id": id * 10, "type": kind,
            "avatar_url": "https://a.example/x.png"}, "repository_selection": "all", "app_slug": "my-app"})
    }

    fn page(total: u64, items: Vec<Value>) -> Page {
        serde_json::from_value(json!({"total_count": total, "installations": items})).unwrap()
    }

    #[test]
    fn follows_pages_and_reports_a_cut() {
        let mut l = Listing::default();
        let full: Vec<Value> = (0..100).map(|i| raw(i + 1, "Organization")).collect();
        assert!(
            l.add(page(250, full.clone())),
            "a full page with more behind it"
        );
        assert!(l.add(page(250, full)));
        assert!(l.incomplete(), "stopping here (cap 2) leaves 50 unread");
        assert!(!l.add(page(250, (0..50).map(|i| raw(i + 1, "User")).collect())));
        assert!(!l.incomplete());
        assert_eq!(l.slug.as_deref(), Some("my-app"));
        assert_eq!(l.visible(false).len(), 200);
        assert_eq!(l.visible(true).len(), 250);
    }

    #[test]
    fn empty_and_filtered_views() {
        let mut l = Listing::default();
        assert!(!l.add(page(0, vec![])));
        let v = l.view(false, Some("u".into()));
        assert_eq!(
            v,
            json!({"installations": [], "incomplete": false, "install_url": "u"})
        );
        let mut l = Listing::default();
        l.add(page(
            3,
            vec![
                raw(1, "Organization"),
                raw(2, "User"),
                json!({"id": 3, "account": {"id": 9, "slug": "ent"}}),
            ],
        ));
        assert_eq!(
            l.view(false, None)["installations"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let with_users = l.view(true, None);
        assert_eq!(with_users["installations"].as_array().unwrap().len(), 2);
        assert_eq!(
            with_users["installations"][0],
            json!({"id": 1, "account": {"login": "acct-1", "type": "Organization", "id": 10,
                "avatar_url": "https://a.example/x.png"}, "repository_selection": "all", "app_slug": "my-app"})
        );
        assert_eq!(
            l.summary(),
            json!({"count": 1, "accounts": ["acct-1"], "incomplete": false})
        );
    }

    #[test]
    fn classes() {
        let c = |e: GithubError| {
            let a = classify(&e);
            (a.code().to_owned(), a.status(), a.retry_after_secs())
        };
        assert_eq!(
            c(GithubError::Unauthorized {
                message: String::new()
            }),
            ("session_invalid".into(), 401, None)
        );
        assert_eq!(
            c(GithubError::Forbidden {
                message: String::new()
            }),
            ("missing_permissions".into(), 403, None)
        );
        assert_eq!(
            c(GithubError::Server { status: 503 }),
            ("transient".into(), 503, None)
        );
        assert_eq!(
            c(GithubError::Network("x".into())),
            ("transient".into(), 503, None)
        );
        assert_eq!(
            c(GithubError::RateLimited {
                retry_after_secs: Some(60)
            }),
            ("transient".into(), 503, Some(60))
        );
    }

    #[test]
    fn cap_and_include() {
        assert_eq!(page_cap(None), Some(10));
        assert_eq!(page_cap(Some("2")), Some(2));
        assert!(
            page_cap(Some("0")).is_none()
                && page_cap(Some("x")).is_none()
                && page_cap(Some("101")).is_none()
        );
        assert_eq!(include_users(Some("users")), Ok(true));
        assert!(include_users(Some("orgs")).is_err());
        assert_eq!(page_path(3), "/user/installations?per_page=100&page=3");
    }
}
