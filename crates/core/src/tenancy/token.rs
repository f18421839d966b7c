//! Installation access tokens: what a tenant may ask for, how a request becomes a cache key,
//! and when a cached token is too old to hand out. Also the per-installation service keys
//! that let a tenant's own workloads ask for tokens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::auth::constant_time_eq;
use crate::error::ApiError;
use crate::ids::InstallationId;
use crate::input::{invalid, parse_object, reject_unknown};
use crate::tenancy::config::InstallationRecord;

/// A cached token is handed out until this long before GitHub's `expires_at`, so a caller
/// always gets at least this much lifetime.
pub const REFRESH_BEFORE_EXPIRY_SECS: i64 = 5 * 60;

/// What a token is narrowed to. Ordered maps and sorted lists make equal scopes equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenScope {
    /// Bare repository names; empty means "every repository of the installation".
    pub repositories: Vec<String>,
    /// GitHub permission name → `read` | `write`; empty means the installation's own set.
    pub permissions: BTreeMap<String, String>,
}

impl TokenScope {
    /// A stable, short storage key for the scope's cached token.
    pub fn cache_key(&self) -> String {
        let canonical = serde_json::to_string(self).unwrap_or_default();
        format!(
            "token:{}",
            crate::hex::encode(&Sha256::digest(canonical.as_bytes())[..12])
        )
    }

    /// The body of `POST /app/installations/{id}/access_tokens`.
    pub fn request_body(&self) -> Value {
        let mut body = json!({});
        if !self.repositories.is_empty() {
            body["repositories"] = json!(self.repositories);
        }
        if !self.permissions.is_empty() {
            body["permissions"] = json!(self.permissions);
        }
        body
    }
}

/// Permission names GitHub accepts on an installation token (a subset is enough: anything
/// else is refused here rather than by GitHub).
const KNOWN_PERMISSIONS: &[&str] = &[
    "actions",
    "administration",
    "checks",
    "contents",
    "deployments",
    "environments",
    "issues",
    "metadata",
    "packages",
    "pages",
    "pull_requests",
    "repository_hooks",
    "repository_projects",
    "secrets",
    "security_events",
    "statuses",
    "variables",
    "workflows",
    "members",
    "organization_administration",
];

/// Parses `POST /api/installations/{id}/token` and checks it against the tenant's config:
/// only repositories the installation holds, only permissions its config allows.
pub fn parse_token_request(
    body: &[u8],
    config: &InstallationRecord,
) -> Result<TokenScope, ApiError> {
    let map = if body.iter().all(u8::is_ascii_whitespace) {
        Default::default()
    } else {
        parse_object(body)?
    };
    reject_unknown(&map, &["repositories", "permissions"])?;
    let mut scope = TokenScope::default();
    if let Some(v) = map.get("repositories").filter(|v| !v.is_null()) {
        let items = v
            .as_array()
            .ok_or_else(|| invalid("repositories", "must be an array of names"))?;
        for (i, item) in items.iter().enumerate() {
            let name = item
                .as_str()
                .ok_or_else(|| invalid(&format!("repositories[{i}]"), "must be a string"))?;
            let held = config.repositories.iter().find(|r| {
                r.full_name.as_str().eq_ignore_ascii_case(name)
                    || r.full_name.name().eq_ignore_ascii_case(name)
            });
            let Some(repo) = held else {
                return Err(ApiError::Forbidden(format!(
                    "repository {} is not one of this installation's repositories",
                    crate::ids::truncate(name, 140)
                )));
            };
            scope.repositories.push(repo.full_name.name().to_owned());
        }
        scope.repositories.sort();
        scope.repositories.dedup();
    }
    if let Some(v) = map.get("permissions").filter(|v| !v.is_null()) {
        let perms = v
            .as_object()
            .ok_or_else(|| invalid("permissions", "must be an object"))?;
        for (name, level) in perms {
            let field = format!("permissions.{name}");
            if !KNOWN_PERMISSIONS.contains(&name.as_str()) {
                return Err(invalid(&field, "is not a permission ghplane hands out"));
            }
            let level = match level.as_str() {
                Some(l @ ("read" | "write")) => l,
                _ => return Err(invalid(&field, "must be \"read\" or \"write\"")),
            };
            scope.permissions.insert(name.clone(), level.to_owned());
        }
    }
    check_allowed(&scope, config)?;
    Ok(scope)
}

/// The tenant's permission flags cap what its tokens may do.
pub fn check_allowed(scope: &TokenScope, config: &InstallationRecord) -> Result<(), ApiError> {
    let wants_write = |p: &str| scope.permissions.get(p).is_some_and(|l| l == "write");
    if wants_write("pull_requests") && !config.permissions.can_create_pull_requests {
        return Err(ApiError::Forbidden(
            "pull_requests: write needs canCreatePullRequests".into(),
        ));
    }
    if wants_write("issues") && !config.permissions.can_process_issues {
        return Err(ApiError::Forbidden(
            "issues: write needs canProcessIssues".into(),
        ));
    }
    // An unnarrowed token carries every permission of the installation, including the ones
    // the flags above forbid, so a tenant without them must name its permissions.
    if scope.permissions.is_empty()
        && !(config.permissions.can_create_pull_requests && config.permissions.can_process_issues)
    {
        return Err(invalid(
            "permissions",
            "must be listed for this installation",
        ));
    }
    Ok(())
}

/// A token as cached: sealed by the adapter, with what GitHub said about it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken<T> {
    pub token: T,
    pub expires_at: String,
    pub expires_at_unix: i64,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
}

impl<T> CachedToken<T> {
    pub fn fresh(&self, now_unix: i64) -> bool {
        now_unix < self.expires_at_unix - REFRESH_BEFORE_EXPIRY_SECS
    }

    /// The same entry holding `token` instead (sealed ↔ plain).
    pub fn with_token<U>(self, token: U) -> CachedToken<U> {
        CachedToken {
            token,
            expires_at: self.expires_at,
            expires_at_unix: self.expires_at_unix,
            repositories: self.repositories,
            permissions: self.permissions,
        }
    }
}

/// GitHub's answer to `POST /app/installations/{id}/access_tokens`.
#[derive(Deserialize)]
pub struct AccessTokenResponse {
    pub token: String,
    pub expires_at: String,
    #[serde(default)]
    pub permissions: BTreeMap<String, String>,
    #[serde(default)]
    pub repositories: Vec<TokenRepo>,
    #[serde(default)]
    pub repository_selection: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenRepo {
    pub full_name: String,
}

impl AccessTokenResponse {
    pub fn into_cached(self) -> Option<CachedToken<String>> {
        let expires_at_unix = crate::time::parse_rfc3339_utc(&self.expires_at)?;
        Some(CachedToken {
            token: self.token,
            expires_at: self.expires_at,
            expires_at_unix,
            repositories: self.repositories.into_iter().map(|r| r.full_name).collect(),
            permissions: self.permissions,
        })
    }
}

/// Service keys: `ghpsk_<installation id>_<key id>_<secret>`. The installation id in the key
/// lets the edge refuse a key used on another tenant without touching that tenant's object.
pub const SERVICE_KEY_PREFIX: &str = "ghpsk_";

#[derive(Debug, PartialEq, Eq)]
pub struct ServiceKey<'a> {
    pub installation_id: InstallationId,
    pub key_id: &'a str,
    pub secret: &'a str,
}

impl<'a> ServiceKey<'a> {
    /// Parses `Authorization: Bearer ghpsk_…`; `None` for anything else.
    pub fn from_header(header: Option<&'a str>) -> Option<ServiceKey<'a>> {
        let rest = header?
            .strip_prefix("Bearer ")?
            .strip_prefix(SERVICE_KEY_PREFIX)?;
        let mut parts = rest.splitn(3, '_');
        let installation_id = InstallationId::parse(parts.next()?).ok()?;
        let key_id = parts
            .next()
            .filter(|k| k.len() == 8 && k.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let secret = parts
            .next()
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))?;
        Some(ServiceKey {
            installation_id,
            key_id,
            secret,
        })
    }

    /// A new key and its secret part (hex, so the `_` separators stay unambiguous).
    pub fn generate(
        installation_id: InstallationId,
        key_id: &str,
        secret_bytes: &[u8; 32],
    ) -> (String, String) {
        let secret = crate::hex::encode(secret_bytes);
        (
            format!("{SERVICE_KEY_PREFIX}{installation_id}_{key_id}_{secret}"),
            secret,
        )
    }

    pub fn matches(&self, stored_hash: &str) -> bool {
        constant_time_eq(hash_secret(self.secret).as_bytes(), stored_hash.as_bytes())
    }
}

/// What is stored of a service key: only this hash.
pub fn hash_secret(secret: &str) -> String {
    crate::hex::encode(&Sha256::digest(secret.as_bytes()))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredServiceKey {
    pub id: String,
    pub hash: String,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::config::{PlainInput, SealedSecret};

    fn config(body: &str) -> InstallationRecord {
        let input = PlainInput::parse(body.as_bytes())
            .unwrap()
            .with_secrets::<SealedSecret, SealedSecret>(None, None);
        InstallationRecord::replace(InstallationId::parse("5").unwrap(), input, None, "t")
    }

    const CFG: &str =
        r#"{"appId":1,"repositories":["o/api","o/web"],"permissions":{"canProcessIssues":true}}"#;

    #[test]
    fn scope_is_canonical() {
        let c = config(CFG);
        let a = parse_token_request(br#"{"repositories":["web","o/api"],"permissions":{"contents":"read","issues":"write"}}"#, &c).unwrap();
        let b = parse_token_request(br#"{"permissions":{"issues":"write","contents":"read"},"repositories":["api","web","api"]}"#, &c).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.cache_key(), b.cache_key());
        assert_eq!(a.repositories, vec!["api", "web"]);
        assert_eq!(
            a.request_body(),
            json!({"repositories": ["api", "web"], "permissions": {"contents": "read", "issues": "write"}})
        );
        let c2 = parse_token_request(
            br#"{"repositories":["api"],"permissions":{"contents":"read"}}"#,
            &c,
        )
        .unwrap();
        assert_ne!(a.cache_key(), c2.cache_key());
    }

    #[test]
    fn refuses_what_the_tenant_does_not_hold() {
        let c = config(CFG);
        let forbidden = |b: &str| parse_token_request(b.as_bytes(), &c).unwrap_err().status();
        assert_eq!(
            forbidden(r#"{"repositories":["other"],"permissions":{"contents":"read"}}"#),
            403
        );
        assert_eq!(
            forbidden(r#"{"repositories":["x/api"],"permissions":{"contents":"read"}}"#),
            403
        );
        assert_eq!(
            forbidden(r#"{"permissions":{"pull_requests":"write"}}"#),
            403
        );
        assert_eq!(forbidden(r#"{"permissions":{"contents":"admin"}}"#), 400);
        assert_eq!(forbidden(r#"{"permissions":{"bogus":"read"}}"#), 400);
        assert_eq!(forbidden(r#"{}"#), 400, "unnarrowed tokens need both flags");
        assert!(parse_token_request(br#"{"permissions":{"pull_requests":"read"}}"#, &c).is_ok());
        let no_issues = config(r#"{"appId":1,"permissions":{"canCreatePullRequests":true}}"#);
        assert_eq!(
            parse_token_request(br#"{"permissions":{"issues":"write"}}"#, &no_issues)
                .unwrap_err()
                .status(),
            403
        );
    }

    #[test]
    fn freshness_stops_five_minutes_early() {
        let t = CachedToken {
            token: (),
            expires_at: String::new(),
            expires_at_unix: 1000,
            repositories: vec![],
            permissions: BTreeMap::new(),
        };
        assert!(t.fresh(699));
        assert!(!t.fresh(700));
    }

    #[test]
    fn service_keys_round_trip_and_bind_the_installation() {
        let id = InstallationId::parse("42").unwrap();
        let key = ServiceKey::generate(id, "0123abcd", &[0xabu8; 32]).0;
        let header = format!("Bearer {key}");
        let parsed = ServiceKey::from_header(Some(&header)).unwrap();
        assert_eq!(parsed.installation_id, id);
        assert_eq!(parsed.key_id, "0123abcd");
        assert_eq!(parsed.secret, "ab".repeat(32));
        assert!(parsed.matches(&hash_secret(parsed.secret)));
        assert!(!parsed.matches(&hash_secret("other")));
        for bad in [
            "",
            "Bearer x",
            "Bearer ghpsk_0_0123abcd_x",
            "bearer ghpsk_42_0123abcd_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "Bearer ghpsk_42_zz_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "Bearer ghpsk_42_0123abcd_a_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(ServiceKey::from_header(Some(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn access_token_response_becomes_cache_entry() {
        let r: AccessTokenResponse = serde_json::from_str(r#"{"token":"ghs_x","expires_at":"2016-07-11T22:14:10Z","permissions":{"issues":"write"},"repositories":[{"full_name":"o/a"}]}"#).unwrap();
        let c = r.into_cached().unwrap();
        assert_eq!(c.expires_at_unix, 1_468_275_250);
        assert_eq!(c.repositories, vec!["o/a"]);
    }
}
