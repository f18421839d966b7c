//! The handle on an OIDC issuer's `MintKeys` object: its command and reply.

use ghplane_core::rpc::Command;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

/// The object names' prefix: the rest of the name is the issuer.
const PREFIX: &str = "oidc:";

pub fn object_name(issuer: &str) -> String {
    format!("{PREFIX}{issuer}")
}

/// The issuer an object serves, from its name.
pub fn issuer_of(object_name: &str) -> Option<&str> {
    object_name.strip_prefix(PREFIX)
}

/// What the object is asked (a POST: not sent twice).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MintKeysCommand {
    /// The issuer's key `kid`, refreshing the key set when needed. → [`KeyAnswer`].
    Key { kid: String },
}

impl Command for MintKeysCommand {
    fn idempotent(&self) -> bool {
        false
    }
}

/// A key to verify with, or why there is none (for the audit, never for the client).
#[derive(Serialize, Deserialize)]
pub struct KeyAnswer {
    pub jwk: Option<Value>,
    /// When the set holding `jwk` was fetched: the isolate keeps it as long as that set
    /// is fresh.
    pub fetched_at: Option<i64>,
    /// The issuer's current key set has no such `kid`.
    pub unknown_kid: bool,
    pub reason: Option<String>,
}

/// The route handlers' handle on an issuer's keys.
pub struct MintKeysClient {
    object: Object,
}

impl MintKeysClient {
    pub fn new(env: &Env, issuer: &str) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::MINT_KEYS, &object_name(issuer))?;
        Ok(Self { object })
    }

    pub async fn key(&self, kid: &str) -> Result<KeyAnswer, ApiError> {
        self.object
            .call(&MintKeysCommand::Key {
                kid: kid.to_owned(),
            })
            .await
    }
}
