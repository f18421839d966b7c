//! `OAuthStateStore`: one tiny Durable Object per sign-in nonce, named `oauth-state-<nonce>`,
//! that remembers the nonce was used. A Durable Object runs one request at a time and its
//! storage calls cannot interleave with another request's, so "not used yet → mark used" is
//! atomic: of two callbacks racing with one state, exactly one gets through.
//!
//! Nothing is written when a sign-in starts (the signed state carries everything), so
//! unauthenticated `start` calls cost no storage. The marker deletes itself after the state
//! has expired anyway.
//!
//! A cross-site SPA's sign-in also leaves its session here for a short while (sealed, with
//! the hash of the one-time code the callback put in the SPA's URL and the state's PKCE
//! challenge): `redeem` hands it out once, to whoever shows that code and the verifier.

pub mod client;

use ghplane_core::admin_access::state::reused;
use ghplane_core::ApiError;
use worker::{durable_object, Env, Request, Response, State};

use crate::clock::now_ms;
use crate::objects::rpc;
use client::{Handoff, Redeemed, StateCommand};

const USED_KEY: &str = "used";
/// Kept a minute past the state's expiry, so clock skew between isolates cannot reopen it.
const KEEP_AFTER_EXPIRY_MS: i64 = 60_000;

const HANDOFF_KEY: &str = "handoff";

#[durable_object]
pub struct OAuthStateStore {
    state: State,
    #[allow(dead_code)]
    env: Env,
}

impl worker::DurableObject for OAuthStateStore {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |_, command| async move {
            match command {
                StateCommand::Consume { exp } => rpc::reply(&self.consume(exp).await?),
                StateCommand::KeepHandoff { handoff } => {
                    rpc::reply(&self.keep_handoff(handoff).await?)
                }
                StateCommand::Redeem {
                    code_hash,
                    verifier_hash,
                } => rpc::reply(&self.redeem(&code_hash, &verifier_hash).await?),
            }
        })
        .await
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.state.storage().delete_all().await?;
        Response::ok("")
    }
}

impl OAuthStateStore {
    /// Everything goes a minute after `until_ms` (the alarm deletes all).
    async fn forget_at(&self, until_ms: i64) -> Result<(), ApiError> {
        let at = until_ms.saturating_add(KEEP_AFTER_EXPIRY_MS) as f64;
        self.state
            .storage()
            .set_alarm(worker::ScheduledTime::new(js_sys::Date::new(
                &wasm_bindgen::JsValue::from_f64(at),
            )))
            .await
            .map_err(|e| fail!(e))
    }

    async fn consume(&self, exp: i64) -> Result<(), ApiError> {
        let storage = self.state.storage();
        let used: Option<i64> = storage.get(USED_KEY).await.map_err(|e| fail!(e))?;
        if used.is_some() {
            return Err(reused());
        }
        storage.put(USED_KEY, exp).await.map_err(|e| fail!(e))?;
        self.forget_at(exp.saturating_mul(1000)).await
    }
}

fn code_invalid() -> ApiError {
    ApiError::OAuth {
        code: ghplane_core::error::OAuthCode::CodeInvalid,
        message: "the sign-in code is unknown, expired, already used or not yours; sign in again"
            .into(),
    }
}

impl OAuthStateStore {
    async fn keep_handoff(&self, h: Handoff) -> Result<(), ApiError> {
        let storage = self.state.storage();
        storage.put(HANDOFF_KEY, &h).await.map_err(|e| fail!(e))?;
        let used: Option<i64> = storage.get(USED_KEY).await.map_err(|e| fail!(e))?;
        let until = used.unwrap_or(0).saturating_mul(1000).max(h.expires_at_ms);
        self.forget_at(until).await
    }

    /// Once: the session goes to the first caller with the code and the verifier; any
    /// wrong try ends the handoff too.
    async fn redeem(&self, code_hash: &str, verifier_hash: &str) -> Result<Redeemed, ApiError> {
        let storage = self.state.storage();
        let Some(h) = storage
            .get::<Handoff>(HANDOFF_KEY)
            .await
            .map_err(|e| fail!(e))?
        else {
            return Err(code_invalid());
        };
        storage.delete(HANDOFF_KEY).await.map_err(|e| fail!(e))?;
        let eq = ghplane_core::auth::constant_time_eq;
        if now_ms() >= h.expires_at_ms
            || !eq(h.code_hash.as_bytes(), code_hash.as_bytes())
            || !eq(h.challenge.as_bytes(), verifier_hash.as_bytes())
        {
            return Err(code_invalid());
        }
        Ok(Redeemed {
            session: h.session,
            session_expires_at: h.session_expires_at,
        })
    }
}
