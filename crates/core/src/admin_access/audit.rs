//! The admin audit: one entry per state-changing admin request that passed authorization,
//! whatever its outcome: who (a person or the token), what (method, route template, the
//! path's ids), the status and the request id. Never a body, never a credential.
//!
//! The entry is written before the handler runs (status unknown) and completed with the
//! status before the answer is sent: a write the worker could not record is never made, and
//! one whose worker died mid-request keeps an entry without a status.
//!
//! The `AdminAudit` Durable Object (one, named [`OBJECT_NAME`]) also keeps what the people
//! grants need between requests: which user id each configured login was first signed in as,
//! and the team membership answers for a while.

use serde::{Deserialize, Serialize};

use super::roles::{CachedMembership, LoginBinding};
use crate::error::ApiError;
use crate::rpc::Command;

pub const OBJECT_NAME: &str = "admin-audit";
pub const DEFAULT_RETENTION_DAYS: u64 = 400;
pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 50;
/// A path parameter is kept to this many characters.
const MAX_TARGET_LEN: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Person,
    Token,
}

/// Who made the request: a person (GitHub login and user id) or the `ADMIN_TOKEN`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub login: Option<String>,
    pub id: Option<u64>,
}

impl Actor {
    pub fn token() -> Actor {
        Actor {
            kind: ActorKind::Token,
            login: None,
            id: None,
        }
    }

    pub fn person(login: &str, id: u64) -> Actor {
        Actor {
            kind: ActorKind::Person,
            login: Some(login.to_owned()),
            id: Some(id),
        }
    }
}

/// One audited request, as the adapter describes it before the handler runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub actor: Actor,
    pub method: String,
    /// The route template (`/projects/{slug}/approve`), never the raw path.
    pub route: String,
    /// The path parameters (`[["slug", "my-site"]]`), cut to 200 characters each.
    pub targets: Vec<(String, String)>,
    pub request_id: Option<String>,
}

impl AuditEntry {
    pub fn new(
        actor: Actor,
        method: &str,
        route: &str,
        params: &[(&str, String)],
        request_id: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            actor,
            method: method.to_owned(),
            route: route.to_owned(),
            targets: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), crate::ids::truncate(v, MAX_TARGET_LEN)))
                .collect(),
            request_id: request_id.map(|r| crate::ids::truncate(&r, 100)),
        }
    }

    /// The searchable text of the targets: `|value|value|` (a `|` in a value reads as `_`).
    pub fn target_index(&self) -> String {
        let mut s = String::from("|");
        for (_, v) in &self.targets {
            s.push_str(&v.replace('|', "_"));
            s.push('|');
        }
        s
    }

    /// The actor's searchable key: `token`, or the person's lowercased login.
    pub fn actor_key(&self) -> String {
        match (&self.actor.kind, &self.actor.login) {
            (ActorKind::Person, Some(l)) => l.to_ascii_lowercase(),
            _ => "token".to_owned(),
        }
    }
}

/// Who a listing is filtered to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActorFilter {
    Token,
    Login(String),
    UserId(u64),
}

/// `GET /api/audit`'s filters, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub actor: Option<ActorFilter>,
    pub target: Option<String>,
    pub since_ms: Option<i64>,
    /// Entries older than this one (the previous page's `next_cursor`).
    pub before: Option<i64>,
    pub limit: u32,
}

/// Parses the query string pairs: `actor` (`token`, a login, or `id:<user id>`), `target`
/// (a path parameter's value), `since` (RFC 3339 UTC), `cursor`, `limit` (1 to 100).
pub fn parse_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<AuditQuery, ApiError> {
    let bad = |m: &str| ApiError::Validation(m.to_owned());
    let mut q = AuditQuery {
        limit: DEFAULT_PAGE,
        ..AuditQuery::default()
    };
    for (k, v) in pairs {
        match k {
            "actor" => {
                q.actor = Some(if v == "token" {
                    ActorFilter::Token
                } else if let Some(id) = v.strip_prefix("id:") {
                    ActorFilter::UserId(
                        id.parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad("actor: id:<GitHub user id>"))?,
                    )
                } else if super::roles::is_login(v) {
                    ActorFilter::Login(v.to_ascii_lowercase())
                } else {
                    return Err(bad("actor: token, a GitHub login, or id:<GitHub user id>"));
                })
            }
            "target" => {
                if v.is_empty() || v.len() > MAX_TARGET_LEN || v.contains('|') {
                    return Err(bad("target: the value of a path parameter (an id, a slug)"));
                }
                q.target = Some(v.to_owned());
            }
            "since" => {
                let secs = crate::time::parse_rfc3339_utc(v)
                    .ok_or_else(|| bad("since: an RFC 3339 UTC time"))?;
                q.since_ms = Some(secs.saturating_mul(1000));
            }
            "cursor" => {
                q.before = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("cursor: the next_cursor of the previous page"))?,
                )
            }
            "limit" => {
                q.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad("limit: 1 to 100"))?
            }
            other => {
                return Err(bad(&format!(
                    "unknown query parameter {}",
                    crate::ids::truncate(other, 40)
                )))
            }
        }
    }
    Ok(q)
}

/// `ADMIN_AUDIT_RETENTION_DAYS`: whole days, 1 to 36500 (default 400); `None` when malformed.
pub fn retention_days(var: Option<&str>) -> Option<u64> {
    match var {
        None => Some(DEFAULT_RETENTION_DAYS),
        Some(v) => v.trim().parse().ok().filter(|d| (1..=36_500).contains(d)),
    }
}

/// Entries older than this are deleted (Unix ms).
pub fn retention_cutoff_ms(now_ms: i64, days: u64) -> i64 {
    now_ms.saturating_sub((days as i64).saturating_mul(24 * 60 * 60 * 1000))
}

/// What the people grants need from the object for one person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessState {
    pub bindings: Vec<LoginBinding>,
    pub memberships: Vec<CachedMembership>,
}

/// The `AdminAudit` object's commands.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditCommand {
    /// Records an entry without a status; answers its sequence number.
    Begin { entry: AuditEntry },
    /// Sets the status of entry `seq`.
    Finish { seq: i64, status: u16 },
    /// A page of entries, newest first ([`AuditPage`]).
    List { query: AuditQuery },
    /// The bindings of `logins` and the cached memberships of `user_id` ([`AccessState`]).
    Access { logins: Vec<String>, user_id: u64 },
    /// Binds logins not bound yet (the first binding stays) and stores membership answers.
    Remember {
        bind: Vec<LoginBinding>,
        memberships: Vec<CachedMembership>,
    },
}

impl Command for AuditCommand {
    fn idempotent(&self) -> bool {
        // Begin adds an entry: sent twice, it would be recorded twice.
        !matches!(self, AuditCommand::Begin { .. })
    }
}

/// One entry as `GET /api/audit` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub id: String,
    pub at: String,
    pub actor: Actor,
    pub method: String,
    pub route: String,
    pub targets: serde_json::Map<String, serde_json::Value>,
    pub status: Option<u16>,
    pub request_id: Option<String>,
}

impl AuditView {
    pub fn new(seq: i64, at_ms: i64, entry: AuditEntry, status: Option<u16>) -> AuditView {
        AuditView {
            id: seq.to_string(),
            at: crate::time::rfc3339_from_millis(at_ms),
            actor: entry.actor,
            method: entry.method,
            route: entry.route,
            targets: entry
                .targets
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
            status,
            request_id: entry.request_id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_ids_not_bodies() {
        let e = AuditEntry::new(
            Actor::person("Alice", 7),
            "POST",
            "/projects/{slug}/approve",
            &[("slug", "site|x".into())],
            Some("req-1".into()),
        );
        assert_eq!(e.target_index(), "|site_x|");
        assert_eq!(e.actor_key(), "alice");
        let t = AuditEntry::new(Actor::token(), "PUT", "/api/apps/{app_id}", &[], None);
        assert_eq!(
            (t.target_index().as_str(), t.actor_key().as_str()),
            ("|", "token")
        );
        let long = AuditEntry::new(
            Actor::token(),
            "PUT",
            "/x/{id}",
            &[("id", "y".repeat(500))],
            None,
        );
        assert!(long.targets[0].1.len() <= 203);
        let v = AuditView::new(3, 0, e, Some(200));
        assert_eq!(v.at, "1970-01-01T00:00:00.000Z");
        assert_eq!(v.targets["slug"], "site|x");
    }

    #[test]
    fn queries_parse() {
        let q = parse_query([
            ("actor", "Alice"),
            ("target", "my-site"),
            ("since", "2026-01-01T00:00:00Z"),
            ("cursor", "12"),
            ("limit", "2"),
        ])
        .unwrap();
        assert_eq!(q.actor, Some(ActorFilter::Login("alice".into())));
        assert_eq!(q.target.as_deref(), Some("my-site"));
        assert_eq!(q.since_ms, Some(1_767_225_600_000));
        assert_eq!((q.before, q.limit), (Some(12), 2));
        assert_eq!(parse_query([]).unwrap().limit, DEFAULT_PAGE);
        assert_eq!(
            parse_query([("actor", "token")]).unwrap().actor,
            Some(ActorFilter::Token)
        );
        assert_eq!(
            parse_query([("actor", "id:42")]).unwrap().actor,
            Some(ActorFilter::UserId(42))
        );
        for (k, v) in [
            ("actor", "id:0"),
            ("actor", "a b"),
            ("target", ""),
            ("target", "a|b"),
            ("since", "yesterday"),
            ("cursor", "-1"),
            ("limit", "0"),
            ("limit", "101"),
            ("nope", "1"),
        ] {
            assert_eq!(parse_query([(k, v)]).unwrap_err().status(), 400, "{k}={v}");
        }
    }

    #[test]
    fn retention() {
        assert_eq!(retention_days(None), Some(400));
        assert_eq!(retention_days(Some(" 30 ")), Some(30));
        for bad in ["0", "-1", "x", "36501"] {
            assert_eq!(retention_days(Some(bad)), None, "{bad}");
        }
        let day = 24 * 60 * 60 * 1000;
        assert_eq!(retention_cutoff_ms(10 * day, 3), 7 * day);
    }

    #[test]
    fn only_begin_is_never_resent() {
        let e = AuditEntry::new(Actor::token(), "POST", "/p", &[], None);
        assert!(!AuditCommand::Begin { entry: e }.idempotent());
        assert!(AuditCommand::Finish {
            seq: 1,
            status: 200
        }
        .idempotent());
        assert!(AuditCommand::List {
            query: AuditQuery::default()
        }
        .idempotent());
    }
}
