//! The mint's front door: a request's bearer token and its JSON body (its route is the
//! route table's, `crate::routes`, in fullsend's dialect).
//!
//! **Invariant:** a request reaches OIDC verification only as a [`TokenRequest`] that
//! passed every one of fullsend's body checks, in fullsend's order, with fullsend's status
//! and sentence for the first one it fails; and the body is read the way Go's
//! `encoding/json` reads it (first 64 KiB, keys matched case-insensitively, unknown keys
//! ignored, `null` leaving a string alone), so what fullsend accepts is accepted here.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::denial::{msg, Denial};
use super::text::{eq_fold, is_org_name, is_repo_name, is_role_name};

/// The largest body read. fullsend reads this much and parses what it read (a longer body
/// fails as invalid JSON); ghplane refuses a longer one with 413 before reading the rest
/// ([`Denial::payload_too_large`]).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most repositories one token may name.
pub const MAX_REPOS: usize = 500;
/// Case-sensitive, with the space, as fullsend's `strings.HasPrefix`.
pub const BEARER_PREFIX: &str = "Bearer ";

/// The token after `Bearer ` (possibly empty), or `None` when the header is missing or
/// does not start with exactly `Bearer `. `/v1/token` answers `None` with
/// [`Denial::missing_bearer`]; `/v1/status` answers it "authentication failed".
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    authorization?.strip_prefix(BEARER_PREFIX)
}

/// Which repositories a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoScope {
    /// `["*"]`: every repository the installation covers.
    Installation,
    /// Bare names (no owner), as the caller wrote them, in order, 1..=500 of them.
    Repos(Vec<String>),
}

impl serde::Serialize for RepoScope {
    // As the client wrote it: `["*"]` or the names.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RepoScope::Installation => ["*"].serialize(s),
            RepoScope::Repos(r) => r.serialize(s),
        }
    }
}

impl RepoScope {
    /// The names, empty for the whole installation (fullsend's normalized `repos`).
    pub fn names(&self) -> &[String] {
        match self {
            RepoScope::Installation => &[],
            RepoScope::Repos(r) => r,
        }
    }
}

/// A body that passed every check fullsend makes before authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub role: String,
    pub repos: RepoScope,
    /// As sent (validated as an org name); `None` when absent or empty.
    pub target_org: Option<String>,
}

/// Parses and validates a `/v1/token` body in fullsend's order: JSON (400), role present
/// (400), role shape (400), role allowed (403, via `role_allowed`), repos present (400),
/// at most 500 (400), each a valid bare name (400), target_org an org name (400).
pub fn parse_token_request(
    body: &[u8],
    role_allowed: impl Fn(&str) -> bool,
) -> Result<TokenRequest, Denial> {
    let raw = decode_body(body)?;
    if raw.role.is_empty() {
        return Err(Denial::new(400, "role_required", msg::ROLE_REQUIRED));
    }
    if !is_role_name(&raw.role) {
        return Err(Denial::new(400, "invalid_role", msg::INVALID_ROLE));
    }
    if !role_allowed(&raw.role) {
        return Err(Denial::new(403, "role_not_allowed", msg::ROLE_NOT_ALLOWED));
    }
    let repos = raw.repos.unwrap_or_default();
    if repos.is_empty() {
        return Err(Denial::new(400, "repos_required", msg::REPOS_REQUIRED));
    }
    let repos = if repos.len() == 1 && repos[0] == "*" {
        RepoScope::Installation
    } else {
        if repos.len() > MAX_REPOS {
            return Err(Denial::new(
                400,
                "too_many_repos",
                format!("too many repos (max {MAX_REPOS})"),
            ));
        }
        if let Some(bad) = repos.iter().find(|r| !is_repo_name(r) || r.contains("..")) {
            return Err(Denial::new(400, "invalid_repo_name", msg::INVALID_REPO)
                .with_detail(format!("repo {:?}", crate::ids::truncate(bad, 120))));
        }
        RepoScope::Repos(repos)
    };
    let target_org = if raw.target_org.is_empty() {
        None
    } else if is_org_name(&raw.target_org) {
        Some(raw.target_org)
    } else {
        return Err(Denial::new(
            400,
            "invalid_target_org",
            msg::INVALID_TARGET_ORG,
        ));
    };
    Ok(TokenRequest {
        role: raw.role,
        repos,
        target_org,
    })
}

fn decode_body(body: &[u8]) -> Result<RawBody, Denial> {
    // fullsend's Worker hands Go `request.text()`, which already replaced invalid UTF-8 with
    // U+FFFD; Go then reads 64 KiB of the re-encoded text.
    let text = String::from_utf8_lossy(body);
    let cut = &text.as_bytes()[..text.len().min(MAX_BODY_BYTES)];
    let text = String::from_utf8_lossy(cut);
    serde_json::from_str::<RawBody>(&text)
        .map_err(|e| Denial::invalid_json().with_detail(e.to_string()))
}

/// The body as Go's `json.Unmarshal` into fullsend's `mintRequest` leaves it.
#[derive(Debug, Default)]
struct RawBody {
    role: String,
    target_org: String,
    repos: Option<Vec<String>>,
}

#[derive(Clone, Copy)]
enum Field {
    Role,
    TargetOrg,
    Repos,
}

fn field_of(key: &str) -> Option<Field> {
    // Go matches JSON keys to struct tags case-insensitively (with Unicode simple folding).
    [
        ("role", Field::Role),
        ("target_org", Field::TargetOrg),
        ("repos", Field::Repos),
    ]
    .into_iter()
    .find(|(name, _)| eq_fold(key, name))
    .map(|(_, f)| f)
}

impl<'de> Deserialize<'de> for RawBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawBodyVisitor)
    }
}

struct RawBodyVisitor;

impl<'de> Visitor<'de> for RawBodyVisitor {
    type Value = RawBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    // `null` decodes into a struct as "no change": every field stays empty.
    fn visit_unit<E: de::Error>(self) -> Result<RawBody, E> {
        Ok(RawBody::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawBody, A::Error> {
        let mut body = RawBody::default();
        // Go decodes a repeated `repos` into the same backing array, so a `null` element of
        // a later array keeps what an earlier array left at that index.
        let mut backing: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match field_of(&key) {
                Some(Field::Role) => {
                    if let Some(s) = map.next_value::<Option<String>>()? {
                        body.role = s;
                    }
                }
                Some(Field::TargetOrg) => {
                    if let Some(s) = map.next_value::<Option<String>>()? {
                        body.target_org = s;
                    }
                }
                Some(Field::Repos) => match map.next_value::<Option<Vec<Option<String>>>>()? {
                    None => {
                        backing.clear();
                        body.repos = None;
                    }
                    Some(items) if items.is_empty() => {
                        backing.clear();
                        body.repos = Some(Vec::new());
                    }
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if i >= backing.len() {
                                backing.push(String::new());
                            }
                            if let Some(s) = item {
                                backing[i] = s.clone();
                            }
                        }
                        body.repos = Some(backing[..items.len()].to_vec());
                    }
                },
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenRequest, Denial> {
        parse_token_request(body.as_bytes(), |r| r == "coder" || r == "e2e")
    }

    fn denied(body: &str) -> (u16, String) {
        let d = parse(body).unwrap_err();
        (d.status, d.message)
    }

    #[test]
    fn bearer_prefix_is_case_sensitive() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("Bearer ")), Some(""));
        assert_eq!(bearer_token(Some("bearer abc")), None);
        assert_eq!(bearer_token(Some("Bearerabc")), None);
        assert_eq!(bearer_token(None), None);
        let d = Denial::missing_bearer();
        assert_eq!(
            (d.status, d.message.as_str()),
            (401, "missing or invalid Authorization header")
        );
    }

    #[test]
    fn valid_body() {
        let r = parse(r#"{"role":"coder","repos":["api",".fullsend"],"extra":{"x":[1]}}"#).unwrap();
        assert_eq!(r.role, "coder");
        assert_eq!(
            r.repos,
            RepoScope::Repos(vec!["api".into(), ".fullsend".into()])
        );
        assert_eq!(r.target_org, None);
        let r = parse(r#"{"role":"e2e","repos":["*"],"target_org":"pool-org"}"#).unwrap();
        assert_eq!(r.repos, RepoScope::Installation);
        assert!(r.repos.names().is_empty());
        assert_eq!(r.target_org.as_deref(), Some("pool-org"));
    }

    #[test]
    fn invalid_json_is_400() {
        for body in [
            "",
            "not json",
            "[]",
            "\"x\"",
            "{\"role\":5}",
            "{} x",
            "{\"repos\":[1]}",
        ] {
            assert_eq!(denied(body), (400, "invalid JSON body".into()), "{body:?}");
        }
    }

    #[test]
    fn oversized_body_is_truncated_then_invalid() {
        let big = format!(
            r#"{{"role":"coder","repos":["api"],"pad":"{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(denied(&big), (400, "invalid JSON body".into()));
        // What Go reads is the first 64 KiB: a complete object followed by padding passes.
        let mut ok = br#"{"role":"coder","repos":["api"]}"#.to_vec();
        ok.resize(MAX_BODY_BYTES, b' ');
        ok.extend_from_slice(b"garbage");
        assert!(parse_token_request(&ok, |_| true).is_ok());
    }

    #[test]
    fn role_checks_in_order() {
        assert_eq!(denied("{}"), (400, "role is required".into()));
        assert_eq!(denied("null"), (400, "role is required".into()));
        assert_eq!(denied(r#"{"role":null}"#), (400, "role is required".into()));
        assert_eq!(
            denied(r#"{"role":"Coder"}"#),
            (400, "invalid role format".into())
        );
        assert_eq!(
            denied(r#"{"role":"-x","repos":[]}"#).1,
            "invalid role format"
        );
        // role_not_allowed comes before any repos check.
        assert_eq!(
            denied(r#"{"role":"triage"}"#),
            (403, "role not allowed".into())
        );
    }

    #[test]
    fn repos_checks() {
        assert_eq!(
            denied(r#"{"role":"coder"}"#),
            (400, "repos is required".into())
        );
        assert_eq!(
            denied(r#"{"role":"coder","repos":[]}"#),
            (400, "repos is required".into())
        );
        assert_eq!(
            denied(r#"{"role":"coder","repos":null}"#),
            (400, "repos is required".into())
        );
        let many: Vec<String> = (0..=MAX_REPOS).map(|i| format!("repo-{i}")).collect();
        let body = serde_json::json!({"role":"coder","repos":many}).to_string();
        assert_eq!(denied(&body), (400, "too many repos (max 500)".into()));
        let exactly: Vec<String> = (0..MAX_REPOS).map(|i| format!("repo-{i}")).collect();
        let body = serde_json::json!({"role":"coder","repos":exactly}).to_string();
        assert!(parse(&body).is_ok());
        for bad in [
            r#"["../evil"]"#,
            r#"["a..b"]"#,
            r#"["org/repo"]"#,
            r#"["my repo"]"#,
            r#"["*","api"]"#,
            r#"["api",null]"#,
            r#"["-x"]"#,
        ] {
            let body = format!(r#"{{"role":"coder","repos":{bad}}}"#);
            assert_eq!(denied(&body), (400, "invalid repo name".into()), "{bad}");
        }
    }

    #[test]
    fn target_org_checks() {
        for bad in ["bad--org", "-x", "a_b", " pool"] {
            let body = format!(r#"{{"role":"coder","repos":["a"],"target_org":"{bad}"}}"#);
            assert_eq!(denied(&body), (400, "invalid target_org".into()), "{bad}");
        }
        let r = parse(r#"{"role":"coder","repos":["a"],"target_org":""}"#).unwrap();
        assert_eq!(r.target_org, None);
        let r = parse(r#"{"role":"coder","repos":["a"],"target_org":"halfsend-01"}"#).unwrap();
        assert_eq!(r.target_org.as_deref(), Some("halfsend-01"));
    }

    #[test]
    fn go_json_quirks() {
        // Case-insensitive keys, including Go's Unicode folding (ſ ~ s).
        let r = parse(r#"{"ROLE":"coder","Repo\u017f":["api"],"Target_Org":"x-y"}"#).unwrap();
        assert_eq!(r.role, "coder");
        assert_eq!(r.repos.names(), ["api"]);
        assert_eq!(r.target_org.as_deref(), Some("x-y"));
        // Later keys win; `null` leaves a string as it was.
        let r = parse(r#"{"role":"triage","role":"coder","role":null,"repos":["a"]}"#).unwrap();
        assert_eq!(r.role, "coder");
        // A repeated array reuses the earlier one's slots for its `null` elements.
        let r = parse(r#"{"role":"coder","repos":["a","b"],"repos":[null]}"#).unwrap();
        assert_eq!(r.repos.names(), ["a"]);
        // Invalid UTF-8 becomes U+FFFD, as the Worker's request.text() makes it.
        let mut body = br#"{"role":"coder","repos":["a"],"x":""#.to_vec();
        body.extend_from_slice(&[0xff, b'"', b'}']);
        assert!(parse_token_request(&body, |_| true).is_ok());
    }
}
