//! An installation's configuration: what the admin routes accept, what is stored, and the
//! redacted view that is all a client ever sees.
//!
//! Parsing is hand-written over a JSON object (not `#[derive(Deserialize)]`) so that PATCH can
//! tell "absent" from `null`, unknown fields are refused, and each message names its field.
//! Secrets arrive as [`Secret`], are sealed by the adapter, and are stored as [`SealedSecret`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::ids::{AppId, InstallationId, RepoFullName};
use crate::input::{invalid, parse_object, reject_unknown, reject_unknown_in};
use crate::pem::RsaPrivateKey;
use crate::sealed::{Sealed, Secret};

const MAX_SECRET_LEN: usize = 1024;
const MAX_PEM_LEN: usize = 16 * 1024;
const MAX_LABEL_LEN: usize = 128;
const MAX_REPOSITORIES: usize = 5000;
const MAX_CONTAINERS_PER_HOUR: u64 = 100_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    pub can_process_issues: bool,
    pub can_create_pull_requests: bool,
    pub max_containers_per_hour: u32,
}

/// The account an installation belongs to: the webhook's own type, stored as GitHub sends it.
pub use crate::webhook::event::Account;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub full_name: RepoFullName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// A sealed secret plus what may be shown about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub sealed: Sealed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A private key as received: the PEM (secret) and its public fingerprint.
#[derive(Clone, Debug)]
pub struct PrivateKeyInput {
    pub pem: Secret,
    pub fingerprint: String,
}

/// The body of `PUT .../config`, with secrets of type `K` (private key) and `W` (webhook
/// secret): plaintext when parsed, sealed when handed to the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigInput<K, W> {
    pub app_id: AppId,
    pub private_key: Option<K>,
    pub webhook_secret: Option<W>,
    pub account: Option<Account>,
    pub tenant_id: Option<String>,
    pub user_id: Option<String>,
    pub repositories: Vec<Repository>,
    pub permissions: Permissions,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionsPatch {
    pub can_process_issues: Option<bool>,
    pub can_create_pull_requests: Option<bool>,
    pub max_containers_per_hour: Option<u32>,
}

/// The body of `PATCH .../config`: `None` leaves a field alone; `Some(None)` clears it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>, W: Deserialize<'de>"))]
#[serde(rename_all = "camelCase")]
pub struct ConfigPatch<K, W> {
    pub app_id: Option<AppId>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub private_key: Option<Option<K>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub webhook_secret: Option<Option<W>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub account: Option<Option<Account>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub tenant_id: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub user_id: Option<Option<String>>,
    pub repositories: Option<Vec<Repository>>,
    pub permissions: Option<PermissionsPatch>,
}

/// A present field (even `null`) is `Some`: `Some(None)` must survive the hop to the Durable
/// Object as "clear this", not collapse into "absent".
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub type PlainInput = ConfigInput<PrivateKeyInput, Secret>;
pub type SealedInput = ConfigInput<SealedSecret, SealedSecret>;
pub type PlainPatch = ConfigPatch<PrivateKeyInput, Secret>;
pub type SealedPatch = ConfigPatch<SealedSecret, SealedSecret>;

/// What the installation's Durable Object stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationRecord {
    pub installation_id: InstallationId,
    pub app_id: AppId,
    pub private_key: Option<SealedSecret>,
    pub webhook_secret: Option<SealedSecret>,
    pub account: Option<Account>,
    pub tenant_id: Option<String>,
    pub user_id: Option<String>,
    pub repositories: Vec<Repository>,
    pub permissions: Permissions,
    #[serde(default)]
    pub suspended: bool,
    /// What GitHub says about the installation (from installation webhooks).
    #[serde(default)]
    pub repository_selection: Option<String>,
    #[serde(default)]
    pub github_permissions: BTreeMap<String, String>,
    #[serde(default)]
    pub events: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

const INPUT_FIELDS: &[&str] = &[
    "appId",
    "privateKey",
    "webhookSecret",
    "account",
    "tenantId",
    "userId",
    "repositories",
    "permissions",
];

fn app_id(v: &Value) -> Result<AppId, ApiError> {
    v.as_u64()
        .ok_or_else(|| invalid("appId", "must be a positive integer"))
        .and_then(|n| AppId::from_u64(n).map_err(|e| invalid("appId", &e)))
}

pub(crate) fn private_key(v: &Value) -> Result<PrivateKeyInput, ApiError> {
    let pem = v
        .as_str()
        .ok_or_else(|| invalid("privateKey", "must be a PEM string"))?;
    if pem.len() > MAX_PEM_LEN {
        return Err(invalid("privateKey", "is too long"));
    }
    let key = RsaPrivateKey::from_pem(pem).map_err(ApiError::PrivateKey)?;
    Ok(PrivateKeyInput {
        pem: Secret::new(pem.to_owned()),
        fingerprint: key.fingerprint(),
    })
}

/// A secret someone chose: not empty, not only whitespace (a guessable value), at most
/// 1024 bytes.
pub(crate) fn secret_value(field: &str, v: &Value) -> Result<Secret, ApiError> {
    match v.as_str() {
        Some(s) if !s.trim().is_empty() && s.len() <= MAX_SECRET_LEN => {
            Ok(Secret::new(s.to_owned()))
        }
        _ => Err(invalid(
            field,
            "must be a string of at most 1024 bytes that is not empty or only whitespace",
        )),
    }
}

pub(crate) fn webhook_secret(v: &Value) -> Result<Secret, ApiError> {
    secret_value("webhookSecret", v)
}

pub(crate) fn label(field: &str, v: &Value) -> Result<String, ApiError> {
    match v.as_str() {
        Some(s)
            if !s.is_empty() && s.len() <= MAX_LABEL_LEN && !s.chars().any(char::is_control) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(invalid(
            field,
            "must be a non-empty string of at most 128 characters",
        )),
    }
}

fn account(v: &Value) -> Result<Account, ApiError> {
    let map = v
        .as_object()
        .ok_or_else(|| invalid("account", "must be an object"))?;
    reject_unknown_in(map, &["login", "id", "type"], "account.")?;
    let login = label("account.login", map.get("login").unwrap_or(&Value::Null))?;
    let id = map
        .get("id")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid("account.id", "must be a positive integer"))?;
    let kind = match map.get("type").and_then(Value::as_str) {
        Some(t @ ("User" | "Organization" | "Enterprise")) => t.to_owned(),
        _ => {
            return Err(invalid(
                "account.type",
                "must be User, Organization or Enterprise",
            ))
        }
    };
    Ok(Account { login, id, kind })
}

fn repositories(v: &Value) -> Result<Vec<Repository>, ApiError> {
    let items = v
        .as_array()
        .ok_or_else(|| invalid("repositories", "must be an array"))?;
    if items.len() > MAX_REPOSITORIES {
        return Err(invalid("repositories", "has too many entries"));
    }
    let mut out: Vec<Repository> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("repositories[{i}]");
        let repo = match item {
            Value::String(s) => Repository {
                full_name: RepoFullName::parse(s).map_err(|e| invalid(&field, &e))?,
                id: None,
            },
            Value::Object(map) => {
                reject_unknown_in(map, &["fullName", "id"], &format!("{field}."))?;
                let name = map.get("fullName").and_then(Value::as_str).unwrap_or("");
                let full_name = RepoFullName::parse(name).map_err(|e| invalid(&field, &e))?;
                let id = match map.get("id") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        v.as_u64()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| invalid(&field, "id must be a positive integer"))?,
                    ),
                };
                Repository { full_name, id }
            }
            _ => return Err(invalid(&field, "must be \"owner/name\" or {fullName, id}")),
        };
        if out.iter().any(|r| r.full_name == repo.full_name) {
            return Err(invalid(&field, "is listed twice"));
        }
        out.push(repo);
    }
    Ok(out)
}

fn permissions_patch(v: &Value) -> Result<PermissionsPatch, ApiError> {
    let map = v
        .as_object()
        .ok_or_else(|| invalid("permissions", "must be an object"))?;
    reject_unknown_in(
        map,
        &[
            "canProcessIssues",
            "canCreatePullRequests",
            "maxContainersPerHour",
        ],
        "permissions.",
    )?;
    let flag = |name: &str| -> Result<Option<bool>, ApiError> {
        match map.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(
                &format!("permissions.{name}"),
                "must be true or false",
            )),
        }
    };
    let max = match map.get("maxContainersPerHour") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n <= MAX_CONTAINERS_PER_HOUR)
                .ok_or_else(|| {
                    invalid(
                        "permissions.maxContainersPerHour",
                        "must be an integer from 0 to 100000",
                    )
                })? as u32,
        ),
    };
    Ok(PermissionsPatch {
        can_process_issues: flag("canProcessIssues")?,
        can_create_pull_requests: flag("canCreatePullRequests")?,
        max_containers_per_hour: max,
    })
}

pub(crate) fn flatten<T>(o: Option<Option<T>>) -> Option<T> {
    o.flatten()
}

/// `null` clears an optional field in a PATCH; absent leaves it; anything else is parsed.
fn nullable<T>(
    map: &Map<String, Value>,
    key: &str,
    parse: impl Fn(&Value) -> Result<T, ApiError>,
) -> Result<Option<Option<T>>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => parse(v).map(|t| Some(Some(t))),
    }
}

impl PlainInput {
    pub fn parse(body: &[u8]) -> Result<PlainInput, ApiError> {
        let map = parse_object(body)?;
        reject_unknown(&map, INPUT_FIELDS)?;
        let app = map
            .get("appId")
            .ok_or_else(|| invalid("appId", "is required"))?;
        let perms = match map.get("permissions") {
            None | Some(Value::Null) => PermissionsPatch::default(),
            Some(v) => permissions_patch(v)?,
        };
        Ok(ConfigInput {
            app_id: app_id(app)?,
            private_key: flatten(nullable(&map, "privateKey", private_key)?),
            webhook_secret: flatten(nullable(&map, "webhookSecret", webhook_secret)?),
            account: flatten(nullable(&map, "account", account)?),
            tenant_id: flatten(nullable(&map, "tenantId", |v| label("tenantId", v))?),
            user_id: flatten(nullable(&map, "userId", |v| label("userId", v))?),
            repositories: match map.get("repositories") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => repositories(v)?,
            },
            permissions: Permissions::default().patched(perms),
        })
    }
}

impl PlainPatch {
    pub fn parse(body: &[u8]) -> Result<PlainPatch, ApiError> {
        let map = parse_object(body)?;
        reject_unknown(&map, INPUT_FIELDS)?;
        let required = |key: &str| match map.get(key) {
            Some(Value::Null) => Err(invalid(key, "cannot be null")),
            other => Ok(other),
        };
        Ok(ConfigPatch {
            app_id: required("appId")?.map(app_id).transpose()?,
            private_key: nullable(&map, "privateKey", private_key)?,
            webhook_secret: nullable(&map, "webhookSecret", webhook_secret)?,
            account: nullable(&map, "account", account)?,
            tenant_id: nullable(&map, "tenantId", |v| label("tenantId", v))?,
            user_id: nullable(&map, "userId", |v| label("userId", v))?,
            repositories: required("repositories")?.map(repositories).transpose()?,
            permissions: required("permissions")?
                .map(permissions_patch)
                .transpose()?,
        })
    }
}

impl<K, W> ConfigInput<K, W> {
    /// Swaps the plaintext secrets for their sealed form, keeping everything else.
    pub fn with_secrets<K2, W2>(
        self,
        private_key: Option<K2>,
        webhook_secret: Option<W2>,
    ) -> ConfigInput<K2, W2> {
        ConfigInput {
            app_id: self.app_id,
            private_key,
            webhook_secret,
            account: self.account,
            tenant_id: self.tenant_id,
            user_id: self.user_id,
            repositories: self.repositories,
            permissions: self.permissions,
        }
    }
}

impl<K, W> ConfigPatch<K, W> {
    pub fn with_secrets<K2, W2>(
        self,
        private_key: Option<Option<K2>>,
        webhook_secret: Option<Option<W2>>,
    ) -> ConfigPatch<K2, W2> {
        ConfigPatch {
            app_id: self.app_id,
            private_key,
            webhook_secret,
            account: self.account,
            tenant_id: self.tenant_id,
            user_id: self.user_id,
            repositories: self.repositories,
            permissions: self.permissions,
        }
    }
}

impl Permissions {
    pub fn patched(self, p: PermissionsPatch) -> Permissions {
        Permissions {
            can_process_issues: p.can_process_issues.unwrap_or(self.can_process_issues),
            can_create_pull_requests: p
                .can_create_pull_requests
                .unwrap_or(self.can_create_pull_requests),
            max_containers_per_hour: p
                .max_containers_per_hour
                .unwrap_or(self.max_containers_per_hour),
        }
    }
}

impl InstallationRecord {
    /// The record a PUT leaves: the input replaces everything the admin controls; creation time
    /// and lifecycle state (`suspended`, owned by webhooks) carry over from `previous`.
    pub fn replace(
        id: InstallationId,
        input: SealedInput,
        previous: Option<&InstallationRecord>,
        now: &str,
    ) -> InstallationRecord {
        InstallationRecord {
            installation_id: id,
            app_id: input.app_id,
            private_key: input.private_key,
            webhook_secret: input.webhook_secret,
            account: input.account,
            tenant_id: input.tenant_id,
            user_id: input.user_id,
            repositories: input.repositories,
            permissions: input.permissions,
            suspended: previous.is_some_and(|p| p.suspended),
            repository_selection: previous.and_then(|p| p.repository_selection.clone()),
            github_permissions: previous
                .map(|p| p.github_permissions.clone())
                .unwrap_or_default(),
            events: previous.map(|p| p.events.clone()).unwrap_or_default(),
            created_at: previous.map_or_else(|| now.to_owned(), |p| p.created_at.clone()),
            updated_at: now.to_owned(),
        }
    }

    pub fn patched(mut self, patch: SealedPatch, now: &str) -> InstallationRecord {
        if let Some(app) = patch.app_id {
            self.app_id = app;
        }
        if let Some(k) = patch.private_key {
            self.private_key = k;
        }
        if let Some(w) = patch.webhook_secret {
            self.webhook_secret = w;
        }
        if let Some(a) = patch.account {
            self.account = a;
        }
        if let Some(t) = patch.tenant_id {
            self.tenant_id = t;
        }
        if let Some(u) = patch.user_id {
            self.user_id = u;
        }
        if let Some(r) = patch.repositories {
            self.repositories = r;
        }
        if let Some(p) = patch.permissions {
            self.permissions = self.permissions.patched(p);
        }
        self.updated_at = now.to_owned();
        self
    }

    /// The only shape that leaves the worker: secrets as `{set, fingerprint?}`.
    pub fn view(&self) -> Value {
        let secret = |s: &Option<SealedSecret>| match s {
            Some(SealedSecret {
                fingerprint: Some(f),
                ..
            }) => json!({"set": true, "fingerprint": f}),
            Some(_) => json!({"set": true}),
            None => json!({"set": false}),
        };
        json!({
            "installationId": self.installation_id,
            "appId": self.app_id,
            "privateKey": secret(&self.private_key),
            "webhookSecret": secret(&self.webhook_secret),
            "account": self.account,
            "tenantId": self.tenant_id,
            "userId": self.user_id,
            "repositories": self.repositories,
            "permissions": self.permissions,
            "suspended": self.suspended,
            "repositorySelection": self.repository_selection,
            "githubPermissions": self.github_permissions,
            "events": self.events,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = include_str!("../../tests/fixtures/test-rsa-2048-pkcs1.pem");

    fn sealed(tag: &str) -> SealedSecret {
        SealedSecret {
            sealed: Sealed::new("k1".into(), &[0; 12], tag.as_bytes()),
            fingerprint: None,
        }
    }

    fn seal_input(input: PlainInput) -> SealedInput {
        let k = input.private_key.as_ref().map(|_| sealed("key"));
        let w = input.webhook_secret.as_ref().map(|_| sealed("hook"));
        input.with_secrets(k, w)
    }

    #[test]
    fn parses_a_full_body() {
        let body = json!({
            "appId": 12, "privateKey": PEM, "webhookSecret": "s3cret",
            "account": {"login": "octo-org", "id": 5, "type": "Organization"},
            "tenantId": "t-1", "userId": "u-1",
            "repositories": ["octo-org/a", {"fullName": "octo-org/b", "id": 9}],
            "permissions": {"canProcessIssues": true, "maxContainersPerHour": 3}
        });
        let input = PlainInput::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(input.app_id.get(), 12);
        assert_eq!(input.webhook_secret.as_ref().unwrap().expose(), "s3cret");
        assert!(input
            .private_key
            .as_ref()
            .unwrap()
            .fingerprint
            .starts_with("SHA256:"));
        assert_eq!(input.repositories.len(), 2);
        assert_eq!(input.repositories[1].id, Some(9));
        assert_eq!(
            input.permissions,
            Permissions {
                can_process_issues: true,
                can_create_pull_requests: false,
                max_containers_per_hour: 3
            }
        );
    }

    #[test]
    fn debug_of_parsed_input_shows_no_secret() {
        let body = json!({"appId": 1, "privateKey": PEM, "webhookSecret": "hunter2"});
        let input = PlainInput::parse(body.to_string().as_bytes()).unwrap();
        let dbg = format!("{input:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("PRIVATE KEY"),
            "{dbg}"
        );
    }

    #[test]
    fn rejects_bad_bodies_with_field_names() {
        let cases: &[(&str, &str)] = &[
            ("{", "malformed_json"),
            ("[]", "validation_failed"),
            (r#"{}"#, "appId"),
            (r#"{"appId": 0}"#, "appId"),
            (r#"{"appId": -3}"#, "appId"),
            (r#"{"appId": 1.5}"#, "appId"),
            (r#"{"appId": "1"}"#, "appId"),
            (r#"{"appId": 1, "bogus": 1}"#, "bogus"),
            (r#"{"appId": 1, "webhookSecret": ""}"#, "webhookSecret"),
            (r#"{"appId": 1, "webhookSecret": "   "}"#, "webhookSecret"),
            (
                r#"{"appId": 1, "webhookSecret": "\t\n \r"}"#,
                "webhookSecret",
            ),
            (r#"{"appId": 1, "privateKey": "nope"}"#, "privateKey"),
            (r#"{"appId": 1, "repositories": ["x"]}"#, "repositories[0]"),
            (r#"{"appId": 1, "repositories": ["o/a", "o/a"]}"#, "twice"),
            (
                r#"{"appId": 1, "permissions": {"canProcessIssues": "yes"}}"#,
                "canProcessIssues",
            ),
            (
                r#"{"appId": 1, "permissions": {"maxContainersPerHour": -1}}"#,
                "maxContainersPerHour",
            ),
            (
                r#"{"appId": 1, "permissions": {"other": 1}}"#,
                "permissions.other",
            ),
            (
                r#"{"appId": 1, "account": {"login": "x", "id": 1, "type": "Bot"}}"#,
                "account.type",
            ),
            (r#"{"appId": 1, "tenantId": "a\u0000b"}"#, "tenantId"),
        ];
        for (body, needle) in cases {
            let err = PlainInput::parse(body.as_bytes()).unwrap_err();
            let text = format!("{} {}", err.code(), err);
            assert!(text.contains(needle), "{body}: {text}");
            assert_eq!(err.status(), 400, "{body}");
        }
    }

    #[test]
    fn deep_nesting_is_malformed_not_a_crash() {
        let body = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(
            PlainInput::parse(body.as_bytes()).unwrap_err().code(),
            "malformed_json"
        );
    }

    #[test]
    fn private_key_errors_carry_the_pem_code() {
        let err = PlainInput::parse(br#"{"appId":1,"privateKey":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}"#)
            .unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.code().starts_with("private_key_"), "{}", err.code());
    }

    #[test]
    fn replace_keeps_created_at_and_suspension() {
        let id = InstallationId::parse("7").unwrap();
        let first = InstallationRecord::replace(
            id,
            seal_input(PlainInput::parse(br#"{"appId":1}"#).unwrap()),
            None,
            "2026-01-01T00:00:00.000Z",
        );
        let mut stored = first.clone();
        stored.suspended = true;
        let second = InstallationRecord::replace(
            id,
            seal_input(PlainInput::parse(br#"{"appId":2}"#).unwrap()),
            Some(&stored),
            "2026-02-01T00:00:00.000Z",
        );
        assert_eq!(second.created_at, "2026-01-01T00:00:00.000Z");
        assert_eq!(second.updated_at, "2026-02-01T00:00:00.000Z");
        assert!(second.suspended);
        assert_eq!(second.app_id.get(), 2);
    }

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let id = InstallationId::parse("7").unwrap();
        let body = json!({"appId": 1, "webhookSecret": "w", "tenantId": "t", "userId": "u",
            "permissions": {"canProcessIssues": true, "maxContainersPerHour": 4}});
        let rec = InstallationRecord::replace(
            id,
            seal_input(PlainInput::parse(body.to_string().as_bytes()).unwrap()),
            None,
            "t0",
        );
        let patch = PlainPatch::parse(
            br#"{"tenantId": null, "permissions": {"canCreatePullRequests": true}}"#,
        )
        .unwrap();
        let patch = patch.with_secrets(None, None);
        let out = rec.clone().patched(patch, "t1");
        assert_eq!(out.tenant_id, None);
        assert_eq!(out.user_id.as_deref(), Some("u"));
        assert!(out.webhook_secret.is_some());
        assert_eq!(
            out.permissions,
            Permissions {
                can_process_issues: true,
                can_create_pull_requests: true,
                max_containers_per_hour: 4
            }
        );
        assert_eq!(out.updated_at, "t1");
        assert!(PlainPatch::parse(br#"{"appId": null}"#).is_err());
        assert!(PlainPatch::parse(br#"{"repositories": null}"#).is_err());
    }

    #[test]
    fn sealed_patch_round_trips_clears_through_json() {
        let patch = PlainPatch::parse(br#"{"tenantId": null, "userId": "u"}"#).unwrap();
        let sealed: SealedPatch = patch.with_secrets(Some(None), None);
        let back: SealedPatch =
            serde_json::from_str(&serde_json::to_string(&sealed).unwrap()).unwrap();
        assert_eq!(back.tenant_id, Some(None));
        assert_eq!(back.user_id, Some(Some("u".into())));
        assert_eq!(back.private_key, Some(None));
        assert!(back.webhook_secret.is_none() && back.account.is_none());
    }

    #[test]
    fn view_redacts_secrets() {
        let id = InstallationId::parse("7").unwrap();
        let mut key = sealed("key");
        key.fingerprint = Some("SHA256:abc".into());
        let input = PlainInput::parse(br#"{"appId":1}"#)
            .unwrap()
            .with_secrets(Some(key), Some(sealed("hook")));
        let view = InstallationRecord::replace(id, input, None, "t").view();
        assert_eq!(
            view["privateKey"],
            json!({"set": true, "fingerprint": "SHA256:abc"})
        );
        assert_eq!(view["webhookSecret"], json!({"set": true}));
        let text = view.to_string();
        assert!(
            !text.contains("\"ct\"") && !text.contains("\"iv\""),
            "{text}"
        );
    }
}
