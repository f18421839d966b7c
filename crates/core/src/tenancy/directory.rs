//! The `AppDirectory` Durable Object class's data and command. The class has two objects:
//!
//! - `apps`: which apps exist, and what verifies their webhooks (the sealed current and
//!   previous secrets), so the webhook route can answer an unknown app without creating any
//!   per-app object, and verify a delivery with one lookup;
//! - `sealed-holders`: the registry of objects that hold sealed secrets, one key per holder
//!   (`holder:<kind>:<name>`), which `POST /api/admin/reseal` walks page by page.
//!
//! Both are only ever written with values (an entry, a holder), so every command may be
//! sent twice.

use serde::{Deserialize, Serialize};

use crate::ids::AppId;
use crate::rpc::Command;
use crate::sealed::Sealed;
use crate::tenancy::app::AppRecord;

/// One secret that verifies an app's webhooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorySecret {
    pub sealed: Sealed,
    /// `None` for the current secret; the end of the grace period for the previous one.
    pub valid_until_ms: Option<i64>,
}

/// What the directory holds of one app (stored as is under `app:<id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub secrets: Vec<DirectorySecret>,
}

impl DirectoryEntry {
    /// The record's current webhook secret, then its previous one while it is still kept.
    pub fn of(record: &AppRecord) -> DirectoryEntry {
        let current = record.webhook_secret.iter().map(|s| DirectorySecret {
            sealed: s.sealed.clone(),
            valid_until_ms: None,
        });
        let previous = record
            .previous_webhook_secret
            .iter()
            .map(|p| DirectorySecret {
                sealed: p.secret.sealed.clone(),
                valid_until_ms: Some(p.valid_until_ms),
            });
        DirectoryEntry {
            secrets: current.chain(previous).collect(),
        }
    }
}

/// The storage key of an app's entry.
pub fn app_key(id: AppId) -> String {
    format!("{APP_PREFIX}{id}")
}

pub const APP_PREFIX: &str = "app:";

/// The app of an entry's storage key.
pub fn app_of_key(key: &str) -> Option<AppId> {
    AppId::parse(key.strip_prefix(APP_PREFIX)?).ok()
}

pub const HOLDER_PREFIX: &str = "holder:";

/// The kinds of holders, as written in keys.
pub const HOLDER_KINDS: &[&str] = &["app", "installation", "user", "deploy"];

/// An object that holds sealed secrets: its kind and its id (never a secret).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub kind: String,
    pub id: String,
}

impl Holder {
    pub fn key(&self) -> String {
        format!("{HOLDER_PREFIX}{}:{}", self.kind, self.id)
    }

    pub fn from_key(key: &str) -> Option<Holder> {
        let (kind, id) = key.strip_prefix(HOLDER_PREFIX)?.split_once(':')?;
        HOLDER_KINDS.contains(&kind).then(|| Holder {
            kind: kind.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// A page of holders, in key order.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderPage {
    pub holders: Vec<Holder>,
    /// The last key read: the cursor of the next page.
    pub last: Option<String>,
    pub done: bool,
}

/// What the directory is asked. Replies: `Entry` an `Option<DirectoryEntry>`, `Apps` a
/// `Vec<AppId>`, `Holders` a [`HolderPage`], the others `()`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DirectoryCommand {
    /// `apps`: the app's verification material (`None`: not registered).
    Entry { app: AppId },
    /// `apps`: stores the app's entry (registers it).
    Publish { app: AppId, entry: DirectoryEntry },
    /// `apps`: forgets the app.
    Remove { app: AppId },
    /// `apps`: every registered app.
    Apps,
    /// `sealed-holders`: records a holder.
    Enroll { holder: Holder },
    /// `sealed-holders`: at most `limit` holders after the key `after` (exclusive).
    Holders { after: Option<String>, limit: u32 },
}

impl Command for DirectoryCommand {
    fn idempotent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::app::{AppMode, SealedAppInput};
    use crate::tenancy::config::SealedSecret;

    fn sealed(tag: &str) -> SealedSecret {
        SealedSecret {
            sealed: Sealed::new("k".into(), &[0; 12], tag.as_bytes()),
            fingerprint: None,
        }
    }

    #[test]
    fn an_entry_holds_the_current_secret_then_the_previous_one_until_its_deadline() {
        let input = SealedAppInput {
            client_id: None,
            slug: None,
            owner: None,
            html_url: None,
            private_key: sealed("key"),
            webhook_secret: Some(sealed("w1")),
            client_secret: None,
            mode: AppMode::Org,
        };
        let record = AppRecord::replace(AppId::parse("9").unwrap(), input, None, "t0");
        let entry = DirectoryEntry::of(&record);
        assert_eq!(entry.secrets.len(), 1);
        assert_eq!(entry.secrets[0].valid_until_ms, None);
        let rotated = record.rotated(sealed("w2"), 1_000, 500, "t1");
        let entry = DirectoryEntry::of(&rotated);
        assert_eq!(
            entry.secrets,
            vec![
                DirectorySecret {
                    sealed: sealed("w2").sealed,
                    valid_until_ms: None
                },
                DirectorySecret {
                    sealed: sealed("w1").sealed,
                    valid_until_ms: Some(1_500)
                },
            ]
        );
        // Stored as is: existing deployments keep reading their entries.
        let stored = serde_json::to_value(&entry).unwrap();
        assert_eq!(stored["secrets"][1]["valid_until_ms"], 1_500);
        assert_eq!(stored["secrets"][0]["sealed"]["kid"], "k");
    }

    #[test]
    fn holder_keys_round_trip_and_unknown_kinds_are_not_holders() {
        let h = Holder {
            kind: "deploy".into(),
            id: "my:project".into(),
        };
        assert_eq!(h.key(), "holder:deploy:my:project");
        assert_eq!(Holder::from_key(&h.key()), Some(h));
        assert_eq!(Holder::from_key("holder:other:1"), None);
        assert_eq!(Holder::from_key("app:1"), None);
    }

    #[test]
    fn app_keys_round_trip() {
        let id = AppId::parse("42").unwrap();
        assert_eq!(app_key(id), "app:42");
        assert_eq!(app_of_key("app:42"), Some(id));
        assert_eq!(app_of_key("app:x"), None);
        assert_eq!(app_of_key("holder:app:42"), None);
    }

    #[test]
    fn the_command_is_tagged_by_op() {
        let wire = serde_json::to_value(DirectoryCommand::Holders {
            after: None,
            limit: 5,
        })
        .unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"op": "holders", "after": null, "limit": 5})
        );
        let back: DirectoryCommand = serde_json::from_value(wire).unwrap();
        assert!(matches!(back, DirectoryCommand::Holders { limit: 5, .. }));
        assert!(DirectoryCommand::Apps.idempotent());
    }
}
