//! The app registry: one record per GitHub App (`app-<app id>`), holding its credentials
//! sealed, its mode (`org`, or `repo` with its one target repository), and its webhook
//! secret rotation state.
//!
//! Rotation keeps the previous webhook secret valid until a deadline, so deliveries GitHub
//! signed just before the switch still verify; after it, only the new one does.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ids::{AppId, RepoFullName};
use crate::input::{invalid, parse_object, reject_unknown};
use crate::sealed::Secret;
use crate::tenancy::config::{
    label, private_key, secret_value, webhook_secret, PrivateKeyInput, SealedSecret,
};

/// Default grace for the previous webhook secret after a rotation (`WEBHOOK_SECRET_GRACE_SECONDS`).
pub const DEFAULT_WEBHOOK_SECRET_GRACE_SECS: u64 = 24 * 60 * 60;

/// The rotation rule for one webhook secret: it verifies deliveries until its grace ends
/// (`valid_until_ms`, exclusive); the current secret (`None`) has no end. The webhook route
/// applies it to the directory's copy of the secrets, [`AppRecord::verifying_secrets`] to the
/// record's.
pub fn verifies_at(valid_until_ms: Option<i64>, now_ms: i64) -> bool {
    valid_until_ms.is_none_or(|until| now_ms < until)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum AppMode {
    /// Installed on organisations; serves whatever repositories an installation grants.
    Org,
    /// A dedicated app for exactly one repository.
    Repo { repository: RepoFullName },
}

/// `PUT /api/apps/{app_id}` with secrets of type `K` (key) and `S` (webhook / client secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "K: Deserialize<'de>, S: Deserialize<'de>"))]
pub struct AppInput<K, S> {
    pub client_id: Option<String>,
    pub slug: Option<String>,
    pub owner: Option<String>,
    pub html_url: Option<String>,
    pub private_key: K,
    pub webhook_secret: Option<S>,
    pub client_secret: Option<S>,
    pub mode: AppMode,
}

pub type PlainAppInput = AppInput<PrivateKeyInput, Secret>;
pub type SealedAppInput = AppInput<SealedSecret, SealedSecret>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSecret {
    pub secret: SealedSecret,
    pub valid_until_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRecord {
    pub app_id: AppId,
    pub client_id: Option<String>,
    pub slug: Option<String>,
    pub owner: Option<String>,
    pub html_url: Option<String>,
    pub private_key: SealedSecret,
    pub webhook_secret: Option<SealedSecret>,
    #[serde(default)]
    pub previous_webhook_secret: Option<PreviousSecret>,
    pub client_secret: Option<SealedSecret>,
    pub mode: AppMode,
    pub created_at: String,
    pub updated_at: String,
}

const APP_FIELDS: &[&str] = &[
    "clientId",
    "slug",
    "owner",
    "htmlUrl",
    "privateKey",
    "webhookSecret",
    "clientSecret",
    "mode",
    "repository",
];

fn client_id(v: &Value) -> Result<String, ApiError> {
    match v.as_str() {
        Some(s)
            if (1..=64).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') =>
        {
            Ok(s.to_owned())
        }
        _ => Err(invalid(
            "clientId",
            "must be GitHub's client id (letters, digits and dots)",
        )),
    }
}

fn slug(v: &Value) -> Result<String, ApiError> {
    match v.as_str() {
        Some(s)
            if (1..=100).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Ok(s.to_owned())
        }
        _ => Err(invalid(
            "slug",
            "must be the app's URL slug (letters, digits and dashes)",
        )),
    }
}

fn https_url(field: &str, v: &Value) -> Result<String, ApiError> {
    match v.as_str() {
        Some(s)
            if s.len() <= 512
                && s.starts_with("https://")
                && !s.chars().any(char::is_whitespace) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(invalid(field, "must be an https:// URL")),
    }
}

fn optional<T>(
    map: &serde_json::Map<String, Value>,
    key: &str,
    parse: impl Fn(&Value) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse(v).map(Some),
    }
}

impl PlainAppInput {
    pub fn parse(body: &[u8]) -> Result<PlainAppInput, ApiError> {
        let map = parse_object(body)?;
        reject_unknown(&map, APP_FIELDS)?;
        let key = map
            .get("privateKey")
            .ok_or_else(|| invalid("privateKey", "is required"))?;
        let mode = match map.get("mode").and_then(Value::as_str) {
            None | Some("org") => {
                if map.get("repository").is_some_and(|v| !v.is_null()) {
                    return Err(invalid("repository", "is only for mode \"repo\""));
                }
                AppMode::Org
            }
            Some("repo") => {
                let repo = map
                    .get("repository")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("repository", "is required for mode \"repo\""))?;
                AppMode::Repo {
                    repository: RepoFullName::parse(repo).map_err(|e| invalid("repository", &e))?,
                }
            }
            Some(_) => return Err(invalid("mode", "must be \"org\" or \"repo\"")),
        };
        Ok(AppInput {
            client_id: optional(&map, "clientId", client_id)?,
            slug: optional(&map, "slug", slug)?,
            owner: optional(&map, "owner", |v| label("owner", v))?,
            html_url: optional(&map, "htmlUrl", |v| https_url("htmlUrl", v))?,
            private_key: private_key(key)?,
            webhook_secret: optional(&map, "webhookSecret", webhook_secret)?,
            client_secret: optional(&map, "clientSecret", |v| secret_value("clientSecret", v))?,
            mode,
        })
    }
}

impl<K, S> AppInput<K, S> {
    pub fn with_secrets<K2, S2>(
        self,
        key: K2,
        webhook: Option<S2>,
        client: Option<S2>,
    ) -> AppInput<K2, S2> {
        AppInput {
            client_id: self.client_id,
            slug: self.slug,
            owner: self.owner,
            html_url: self.html_url,
            private_key: key,
            webhook_secret: webhook,
            client_secret: client,
            mode: self.mode,
        }
    }
}

/// The body of `POST /api/apps/{app_id}/webhook-secret`.
#[derive(Debug)]
pub struct RotateInput {
    /// `None`: ghplane generates the new secret and only GitHub ever learns it.
    pub webhook_secret: Option<Secret>,
    pub update_github: bool,
}

impl RotateInput {
    pub fn parse(body: &[u8]) -> Result<RotateInput, ApiError> {
        let map = if body.iter().all(u8::is_ascii_whitespace) {
            Default::default()
        } else {
            parse_object(body)?
        };
        reject_unknown(&map, &["webhookSecret", "updateGithub"])?;
        let secret = optional(&map, "webhookSecret", webhook_secret)?;
        let update_github = match map.get("updateGithub") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("updateGithub", "must be true or false")),
        };
        if secret.is_none() && !update_github {
            return Err(invalid(
                "updateGithub",
                "cannot be false when ghplane generates the secret",
            ));
        }
        Ok(RotateInput {
            webhook_secret: secret,
            update_github,
        })
    }
}

impl AppRecord {
    pub fn replace(
        id: AppId,
        input: SealedAppInput,
        previous: Option<&AppRecord>,
        now: &str,
    ) -> AppRecord {
        AppRecord {
            app_id: id,
            client_id: input.client_id,
            slug: input.slug,
            owner: input.owner,
            html_url: input.html_url,
            private_key: input.private_key,
            webhook_secret: input.webhook_secret,
            previous_webhook_secret: None,
            client_secret: input.client_secret,
            mode: input.mode,
            created_at: previous.map_or_else(|| now.to_owned(), |p| p.created_at.clone()),
            updated_at: now.to_owned(),
        }
    }

    /// The JWT issuer: GitHub recommends the client id; the app id works for older apps.
    pub fn jwt_issuer(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| self.app_id.to_string())
    }

    /// Makes `new` current and keeps the old one valid for `grace_ms`.
    pub fn rotated(
        mut self,
        new: SealedSecret,
        now_ms: i64,
        grace_ms: i64,
        now: &str,
    ) -> AppRecord {
        self.previous_webhook_secret = self.webhook_secret.take().map(|secret| PreviousSecret {
            secret,
            valid_until_ms: now_ms.saturating_add(grace_ms),
        });
        self.webhook_secret = Some(new);
        self.updated_at = now.to_owned();
        self
    }

    /// The secrets a delivery may be signed with at `now_ms`: current first.
    pub fn verifying_secrets(&self, now_ms: i64) -> Vec<&SealedSecret> {
        let previous = self
            .previous_webhook_secret
            .as_ref()
            .filter(|p| verifies_at(Some(p.valid_until_ms), now_ms))
            .map(|p| &p.secret);
        self.webhook_secret.iter().chain(previous).collect()
    }

    /// Drops a previous secret whose grace is over; true when something changed.
    pub fn expire_previous(&mut self, now_ms: i64) -> bool {
        if self
            .previous_webhook_secret
            .as_ref()
            .is_some_and(|p| now_ms >= p.valid_until_ms)
        {
            self.previous_webhook_secret = None;
            return true;
        }
        false
    }

    pub fn view(&self, now_ms: i64) -> Value {
        let (mode, repository) = match &self.mode {
            AppMode::Org => ("org", None),
            AppMode::Repo { repository } => ("repo", Some(repository.as_str())),
        };
        let previous = self
            .previous_webhook_secret
            .as_ref()
            .filter(|p| now_ms < p.valid_until_ms);
        let mut webhook = json!({"set": self.webhook_secret.is_some()});
        if let Some(p) = previous {
            webhook["previousValidUntil"] =
                json!(crate::time::rfc3339_from_millis(p.valid_until_ms));
        }
        json!({
            "appId": self.app_id,
            "clientId": self.client_id,
            "slug": self.slug,
            "owner": self.owner,
            "htmlUrl": self.html_url,
            "mode": mode,
            "repository": repository,
            "privateKey": {"set": true, "fingerprint": self.private_key.fingerprint},
            "webhookSecret": webhook,
            "clientSecret": {"set": self.client_secret.is_some()},
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::Sealed;

    const PEM: &str = include_str!("../../tests/fixtures/test-rsa-2048-pkcs1.pem");

    fn sealed(tag: &str) -> SealedSecret {
        SealedSecret {
            sealed: Sealed::new("k".into(), &[0; 12], tag.as_bytes()),
            fingerprint: None,
        }
    }

    fn record(body: Value) -> AppRecord {
        let input = PlainAppInput::parse(body.to_string().as_bytes()).unwrap();
        let webhook = input.webhook_secret.as_ref().map(|_| sealed("w1"));
        let input = input.with_secrets(sealed("key"), webhook, None);
        AppRecord::replace(AppId::from_u64(9).unwrap(), input, None, "t0")
    }

    #[test]
    fn blank_or_whitespace_secrets_are_refused() {
        for field in ["webhookSecret", "clientSecret"] {
            for blank in ["", " ", "   ", "\t", "\n \r"] {
                let err = PlainAppInput::parse(
                    json!({"privateKey": PEM, field: blank})
                        .to_string()
                        .as_bytes(),
                )
                .unwrap_err();
                assert_eq!(err.code(), "validation_failed", "{field} {blank:?}");
                assert!(err.public_message().contains(field), "{err:?}");
            }
            assert!(PlainAppInput::parse(
                json!({"privateKey": PEM, field: " padded secret "})
                    .to_string()
                    .as_bytes()
            )
            .is_ok());
        }
    }

    #[test]
    fn parses_org_and_repo_modes() {
        let org = PlainAppInput::parse(
            json!({"privateKey": PEM, "clientId": "Iv1.abc"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(org.mode, AppMode::Org);
        let repo = PlainAppInput::parse(
            json!({"privateKey": PEM, "mode": "repo", "repository": "o/r"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            repo.mode,
            AppMode::Repo {
                repository: RepoFullName::parse("o/r").unwrap()
            }
        );
    }

    #[test]
    fn refuses_bad_app_bodies() {
        for (body, needle) in [
            (json!({}), "privateKey"),
            (json!({"privateKey": "x"}), "privateKey"),
            (json!({"privateKey": PEM, "mode": "repo"}), "repository"),
            (
                json!({"privateKey": PEM, "repository": "o/r"}),
                "repository",
            ),
            (json!({"privateKey": PEM, "mode": "team"}), "mode"),
            (json!({"privateKey": PEM, "htmlUrl": "http://x"}), "htmlUrl"),
            (json!({"privateKey": PEM, "clientId": "a b"}), "clientId"),
            (json!({"privateKey": PEM, "other": 1}), "other"),
        ] {
            let err = PlainAppInput::parse(body.to_string().as_bytes()).unwrap_err();
            assert!(err.to_string().contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn issuer_prefers_client_id() {
        assert_eq!(record(json!({"privateKey": PEM})).jwt_issuer(), "9");
        assert_eq!(
            record(json!({"privateKey": PEM, "clientId": "Iv1.x"})).jwt_issuer(),
            "Iv1.x"
        );
    }

    #[test]
    fn rotation_keeps_previous_during_grace_only() {
        let rec = record(json!({"privateKey": PEM, "webhookSecret": "one"}));
        let rotated = rec.rotated(sealed("w2"), 1_000, 500, "t1");
        let tags = |r: &AppRecord, now| {
            r.verifying_secrets(now)
                .iter()
                .map(|s| s.sealed.ct.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(tags(&rotated, 1_499).len(), 2);
        assert_eq!(tags(&rotated, 1_500), vec![sealed("w2").sealed.ct]);
        let mut r = rotated.clone();
        assert!(!r.expire_previous(1_499));
        assert!(r.expire_previous(1_500));
        assert!(r.previous_webhook_secret.is_none());
        assert!(rotated.view(1_000)["webhookSecret"]["previousValidUntil"].is_string());
    }

    #[test]
    fn rotate_input_rules() {
        assert!(RotateInput::parse(b"").unwrap().webhook_secret.is_none());
        assert!(RotateInput::parse(br#"{"webhookSecret":"n","updateGithub":false}"#).is_ok());
        assert!(RotateInput::parse(br#"{"updateGithub":false}"#).is_err());
        assert!(RotateInput::parse(br#"{"webhookSecret":""}"#).is_err());
        assert!(RotateInput::parse(br#"{"webhookSecret":"   "}"#).is_err());
        assert!(RotateInput::parse(br#"{"webhookSecret":"\t\n"}"#).is_err());
    }

    #[test]
    fn view_never_holds_ciphertext() {
        let text = record(json!({"privateKey": PEM, "webhookSecret": "one"}))
            .view(0)
            .to_string();
        assert!(!text.contains("\"ct\""), "{text}");
    }
}
