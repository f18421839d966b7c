//! The handle on one sign-in nonce's `OAuthStateStore` (`oauth-state-<nonce>`), its command
//! and its replies.

use ghplane_core::admin_access::state::NONCE_LEN;
use ghplane_core::rpc::Command;
use ghplane_core::sealed::Sealed;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

/// How long the SPA has to trade the callback's code for its session.
pub const HANDOFF_TTL_MS: i64 = 2 * 60 * 1000;
/// The sealed session's slot (associated data, with the object's name).
pub const HANDOFF_SLOT: &str = "sessionHandoff";

pub fn object_name(nonce: &str) -> String {
    format!("oauth-state-{nonce}")
}

/// A session waiting for the SPA that started the sign-in (stored as is).
#[derive(Clone, Serialize, Deserialize)]
pub struct Handoff {
    /// SHA-256 (base64url) of the one-time code's secret part.
    pub code_hash: String,
    /// The state's `b`: SHA-256 (base64url) of the SPA's verifier.
    pub challenge: String,
    pub session: Sealed,
    /// The session's expiry, unix seconds.
    pub session_expires_at: i64,
    pub expires_at_ms: i64,
}

/// What an `OAuthStateStore` is asked. None may be sent twice: each uses something up.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateCommand {
    /// Marks the nonce used (`exp`: the state's expiry, unix seconds): `()`, or
    /// `oauth_state_reused` when it already was.
    Consume { exp: i64 },
    /// Leaves a cross-site SPA's session for it to redeem: `()`.
    KeepHandoff { handoff: Handoff },
    /// The session, once, for the code's and the verifier's hashes: [`Redeemed`].
    Redeem {
        code_hash: String,
        verifier_hash: String,
    },
}

impl Command for StateCommand {
    fn idempotent(&self) -> bool {
        false
    }
}

#[derive(Serialize, Deserialize)]
pub struct Redeemed {
    pub session: Sealed,
    pub session_expires_at: i64,
}

/// The handle on one nonce's object.
pub struct OAuthStateClient {
    object: Object,
}

impl OAuthStateClient {
    /// The nonce comes from a verified state, so it is base64url of the right length; the
    /// check keeps object names well-formed even if that ever changes.
    pub fn new(env: &Env, nonce: &str) -> Result<Self, ApiError> {
        if nonce.len() != NONCE_LEN {
            return Err(fail!());
        }
        let object = Object::new(env, settings::OAUTH_STATES, &object_name(nonce))?;
        Ok(Self { object })
    }

    /// Marks the nonce used; `oauth_state_reused` when it already was.
    pub async fn consume(&self, exp: i64) -> Result<(), ApiError> {
        self.object.call(&StateCommand::Consume { exp }).await
    }

    /// Leaves a cross-site SPA's session for it to redeem.
    pub async fn keep_handoff(&self, handoff: Handoff) -> Result<(), ApiError> {
        self.object
            .call(&StateCommand::KeepHandoff { handoff })
            .await
    }

    /// The sealed session for the code's secret and the SPA's verifier (both hashed).
    pub async fn redeem(
        &self,
        code_hash: String,
        verifier_hash: String,
    ) -> Result<Redeemed, ApiError> {
        let command = StateCommand::Redeem {
            code_hash,
            verifier_hash,
        };
        self.object.call(&command).await
    }
}
