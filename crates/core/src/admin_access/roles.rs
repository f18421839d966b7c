//! Who may use the admin routes: the `ADMIN_TOKEN` (automation), or a person signed in with
//! GitHub whose login or team the configuration names.
//!
//! **Invariants.** A configured login grants its role to the GitHub user id it first signs
//! in as, and from then on only to that id (logins can be renamed and reused): the binding
//! is kept by the adapter and passed in. A team grants a role while GitHub says the
//! membership is `active`; a GitHub failure during that check is `transient` (503), never a
//! grant. A cookie-authenticated write is refused unless its `Origin` is the worker's own or
//! an allowed admin origin and its body is `application/json`, so no other site can make a
//! signed-in browser change anything.

use serde::{Deserialize, Serialize};

use super::cors::Origins;
use crate::error::ApiError;

/// What a person may do. `Viewer` reads what holds no secret; `Admin` does everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

/// A GitHub team, `org/team-slug`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    pub org: String,
    pub slug: String,
}

impl Team {
    /// `org/team-slug`; `None` when it is not that shape.
    pub fn parse(text: &str) -> Option<Team> {
        let (org, slug) = text.trim().split_once('/')?;
        let slug_ok = !slug.is_empty()
            && slug.len() <= 100
            && slug
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        (is_login(org) && slug_ok).then(|| Team {
            org: org.to_ascii_lowercase(),
            slug: slug.to_ascii_lowercase(),
        })
    }

    /// The cache key of a membership answer: `org/slug`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.org, self.slug)
    }

    /// GitHub's `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`.
    pub fn membership_path(&self, login: &str) -> String {
        format!("/orgs/{}/teams/{}/memberships/{login}", self.org, self.slug)
    }
}

/// A GitHub login: 1 to 39 of `A-Z a-z 0-9 -`, not starting or ending with `-`.
pub fn is_login(text: &str) -> bool {
    (1..=39).contains(&text.len())
        && !text.starts_with('-')
        && !text.ends_with('-')
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Comma-separated logins, lowercased (GitHub logins are case-insensitive); `Err` names the
/// first entry that is not a login.
pub fn parse_logins(text: Option<&str>) -> Result<Vec<String>, String> {
    let mut logins = Vec::new();
    for entry in text
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if !is_login(entry) {
            return Err(crate::ids::truncate(entry, 40));
        }
        let login = entry.to_ascii_lowercase();
        if !logins.contains(&login) {
            logins.push(login);
        }
    }
    Ok(logins)
}

/// The people configuration: who gets which role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct People {
    pub admin_logins: Vec<String>,
    pub viewer_logins: Vec<String>,
    pub admin_team: Option<Team>,
    pub viewer_team: Option<Team>,
}

impl People {
    /// Every configured login (each is bound to a user id at its first sign-in).
    pub fn logins(&self) -> Vec<String> {
        let mut all = self.admin_logins.clone();
        all.extend(self.viewer_logins.iter().cloned());
        all
    }

    pub fn teams(&self) -> Vec<&Team> {
        self.admin_team.iter().chain(&self.viewer_team).collect()
    }
}

/// A configured login and the GitHub user id it was first signed in as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginBinding {
    pub login: String,
    pub user_id: u64,
}

/// What the logins grant a person, and the configured logins to bind to them now (their
/// first sign-in under that login).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoginGrant {
    pub role: Option<Role>,
    pub bind: Vec<String>,
}

/// The role `people`'s logins give the user `user_id`, signed in as `login`. A configured
/// login already bound grants only its bound id; an unbound one grants whoever holds the
/// login now, and is to be bound to them.
pub fn role_from_logins(
    people: &People,
    bindings: &[LoginBinding],
    user_id: u64,
    login: &str,
) -> LoginGrant {
    let login = login.to_ascii_lowercase();
    let mut grant = LoginGrant::default();
    for (role, list) in [
        (Role::Admin, &people.admin_logins),
        (Role::Viewer, &people.viewer_logins),
    ] {
        for configured in list {
            let granted = match bindings.iter().find(|b| b.login == *configured) {
                Some(b) => b.user_id == user_id,
                None if *configured == login => {
                    if !grant.bind.contains(configured) {
                        grant.bind.push(configured.clone());
                    }
                    true
                }
                None => false,
            };
            if granted {
                grant.role = grant.role.max(Some(role));
            }
        }
    }
    grant
}

/// GitHub's answer about one team membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership {
    Active,
    /// Not a member, or invited and not yet accepted (`pending`).
    NotMember,
}

/// Reads GitHub's answer to the membership check: 200 with `state: active` is a member, 200
/// with another state or 404 is not; anything else (5xx, 429, a refused token) is `None`:
/// the check failed and grants nothing.
pub fn membership(status: u16, state: Option<&str>) -> Option<Membership> {
    match status {
        200 if state == Some("active") => Some(Membership::Active),
        200 | 404 => Some(Membership::NotMember),
        _ => None,
    }
}

/// A membership answer kept for a while.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedMembership {
    /// [`Team::key`].
    pub team: String,
    pub user_id: u64,
    pub member: bool,
    pub checked_at_ms: i64,
}

impl CachedMembership {
    /// Still good at `now_ms` when checked less than `ttl_secs` ago (and not in the future).
    pub fn fresh(&self, now_ms: i64, ttl_secs: u64) -> bool {
        let age = now_ms - self.checked_at_ms;
        (0..ttl_secs.saturating_mul(1000) as i64).contains(&age)
    }
}

/// The 503 of a team check GitHub did not answer.
pub fn team_check_failed(retry_after_secs: Option<u64>) -> ApiError {
    ApiError::UserAccess {
        kind: crate::error::UserAccessKind::Transient,
        message: "GitHub did not answer the team membership check; try again".into(),
        retry_after_secs,
    }
}

/// The highest role of the grants: logins, then the teams' answers (`None`: not asked).
pub fn combine(from_logins: Option<Role>, admin_team: bool, viewer_team: bool) -> Option<Role> {
    let team = if admin_team {
        Some(Role::Admin)
    } else if viewer_team {
        Some(Role::Viewer)
    } else {
        None
    };
    from_logins.max(team)
}

/// Whether a person with `role` may use a route that needs `min`: 403 `forbidden` when not
/// (they are signed in, so never 401).
pub fn check(min: Role, role: Option<Role>, login: &str) -> Result<(), ApiError> {
    match role {
        Some(r) if r >= min => Ok(()),
        Some(r) => Err(ApiError::Forbidden(format!(
            "{login} has the {} role; this route needs {}",
            r.as_str(),
            min.as_str()
        ))),
        None => Err(ApiError::Forbidden(format!(
            "{login} is signed in but not granted admin access (ADMIN_GITHUB_LOGINS, \
             VIEWER_GITHUB_LOGINS, ADMIN_GITHUB_TEAM, VIEWER_GITHUB_TEAM)"
        ))),
    }
}

/// Whether `method` changes state (and so is audited and, with a cookie, origin-checked).
pub fn is_write(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// A write authenticated by the session cookie must come from the worker's own origin
/// (`own`) or an allowed admin origin (403 otherwise, including no `Origin`), with an
/// `application/json` body (415 otherwise, even when empty): what a form or a simple
/// cross-site request cannot send.
pub fn cookie_write(
    content_type: Option<&str>,
    origin: Option<&str>,
    own: &str,
    origins: &Origins,
) -> Result<(), ApiError> {
    match origin {
        Some(o) if o == own || origins.allows(o) => {}
        Some(_) => {
            return Err(ApiError::Forbidden(
                "a cookie-authenticated write from this Origin is refused".into(),
            ))
        }
        None => {
            return Err(ApiError::Forbidden(
                "a cookie-authenticated write must carry an Origin header".into(),
            ))
        }
    }
    let essence = content_type.unwrap_or("").split(';').next().unwrap_or("");
    if essence.trim().eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> People {
        People {
            admin_logins: parse_logins(Some("Alice, bob")).unwrap(),
            viewer_logins: parse_logins(Some("carol,alice")).unwrap(),
            admin_team: Team::parse("Acme/admins"),
            viewer_team: None,
        }
    }

    #[test]
    fn logins_and_teams_parse() {
        assert_eq!(parse_logins(None).unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_logins(Some(" A-b ,a-B,, c1 ")).unwrap(),
            vec!["a-b".to_owned(), "c1".to_owned()]
        );
        for bad in ["-a", "a-", "a b", "a_b", &"x".repeat(40), "a/b"] {
            assert!(parse_logins(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            Team::parse("Acme/Site-Admins"),
            Some(Team {
                org: "acme".into(),
                slug: "site-admins".into()
            })
        );
        for bad in ["acme", "acme/", "/t", "ac me/t", "acme/t/x", "acme/t?x"] {
            assert_eq!(Team::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Team::parse("acme/ops").unwrap().membership_path("Bob"),
            "/orgs/acme/teams/ops/memberships/Bob"
        );
    }

    #[test]
    fn an_unbound_login_grants_and_is_bound() {
        let g = role_from_logins(&people(), &[], 7, "ALICE");
        assert_eq!(g.role, Some(Role::Admin), "the highest role wins");
        assert_eq!(g.bind, vec!["alice".to_owned()]);
        let g = role_from_logins(&people(), &[], 8, "carol");
        assert_eq!((g.role, g.bind), (Some(Role::Viewer), vec!["carol".into()]));
        let g = role_from_logins(&people(), &[], 9, "mallory");
        assert_eq!(g, LoginGrant::default());
    }

    #[test]
    fn a_bound_login_grants_only_its_user_id() {
        let bound = [LoginBinding {
            login: "alice".into(),
            user_id: 7,
        }];
        // Someone else took the login after a rename: nothing.
        assert_eq!(
            role_from_logins(&people(), &bound, 99, "alice"),
            LoginGrant::default()
        );
        // Alice renamed herself: still admin, nothing new to bind.
        let g = role_from_logins(&people(), &bound, 7, "alice-renamed");
        assert_eq!((g.role, g.bind.len()), (Some(Role::Admin), 0));
    }

    #[test]
    fn membership_answers() {
        assert_eq!(membership(200, Some("active")), Some(Membership::Active));
        assert_eq!(
            membership(200, Some("pending")),
            Some(Membership::NotMember)
        );
        assert_eq!(membership(404, None), Some(Membership::NotMember));
        for failed in [500, 502, 503, 429, 401, 403] {
            assert_eq!(membership(failed, None), None, "{failed}");
        }
        assert_eq!(team_check_failed(None).status(), 503);
        assert_eq!(team_check_failed(None).code(), "transient");
    }

    #[test]
    fn cached_answers_expire() {
        let c = CachedMembership {
            team: "acme/admins".into(),
            user_id: 1,
            member: true,
            checked_at_ms: 10_000,
        };
        assert!(c.fresh(10_000, 5));
        assert!(c.fresh(14_999, 5));
        assert!(!c.fresh(15_000, 5));
        assert!(!c.fresh(9_000, 5), "a clock that went back re-checks");
        assert!(!c.fresh(10_000, 0));
    }

    #[test]
    fn roles_combine_and_check() {
        assert_eq!(combine(None, false, false), None);
        assert_eq!(combine(Some(Role::Viewer), true, false), Some(Role::Admin));
        assert_eq!(combine(None, false, true), Some(Role::Viewer));
        assert_eq!(combine(Some(Role::Admin), false, true), Some(Role::Admin));
        assert!(check(Role::Viewer, Some(Role::Viewer), "v").is_ok());
        assert!(check(Role::Viewer, Some(Role::Admin), "a").is_ok());
        let e = check(Role::Admin, Some(Role::Viewer), "v").unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "forbidden"));
        let e = check(Role::Viewer, None, "x").unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "forbidden"));
    }

    #[test]
    fn cookie_writes_need_a_known_origin_and_json() {
        let origins = Origins::parse(Some("https://admin.example.com")).unwrap();
        let own = "https://ghplane.example.com";
        let json = Some("application/json; charset=utf-8");
        assert!(cookie_write(json, Some(own), own, &origins).is_ok());
        assert!(cookie_write(json, Some("https://admin.example.com"), own, &origins).is_ok());
        for origin in [None, Some("https://evil.example"), Some("null")] {
            let e = cookie_write(json, origin, own, &origins).unwrap_err();
            assert_eq!(e.status(), 403, "{origin:?}");
        }
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let e = cookie_write(ct, Some(own), own, &origins).unwrap_err();
            assert_eq!(e.status(), 415, "{ct:?}");
        }
        assert!(is_write("POST") && is_write("DELETE") && !is_write("GET"));
    }
}
