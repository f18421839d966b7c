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

use ghplane_core::admin_access::state::{reused, NONCE_LEN};
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, Method, Request, Response, State};

use crate::http::{error_response, no_content};
use crate::objects::internal;
use crate::settings;

const USED_KEY: &str = "used";
/// Kept a minute past the state's expiry, so clock skew between isolates cannot reopen it.
const KEEP_AFTER_EXPIRY_MS: i64 = 60_000;

const HANDOFF_KEY: &str = "handoff";
/// How long the SPA has to trade the callback's code for its session.
pub const HANDOFF_TTL_MS: i64 = 2 * 60 * 1000;
/// The sealed session's slot (associated data, with the object's name).
pub const HANDOFF_SLOT: &str = "sessionHandoff";

/// A session waiting for the SPA that started the sign-in.
#[derive(Clone, Serialize, Deserialize)]
pub struct Handoff {
    /// SHA-256 (base64url) of the one-time code's secret part.
    pub code_hash: String,
    /// The state's `b`: SHA-256 (base64url) of the SPA's verifier.
    pub challenge: String,
    pub session: ghplane_core::sealed::Sealed,
    /// The session's expiry, unix seconds.
    pub session_expires_at: i64,
    pub expires_at_ms: i64,
}

/// What `redeem` is shown: hashes only.
#[derive(Serialize, Deserialize)]
pub struct RedeemRequest {
    pub code_hash: String,
    pub verifier_hash: String,
}

#[derive(Serialize, Deserialize)]
pub struct Redeemed {
    pub session: ghplane_core::sealed::Sealed,
    pub session_expires_at: i64,
}

#[derive(Serialize, Deserialize)]
pub struct ConsumeRequest {
    /// The state's expiry, unix seconds.
    pub exp: i64,
}

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

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match (req.method(), req.path().as_str()) {
            (Method::Post, "/consume") => match internal::body::<ConsumeRequest>(&mut req).await {
                Ok(r) => self.consume(r).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/handoff") => match internal::body::<Handoff>(&mut req).await {
                Ok(h) => self.keep_handoff(h).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/redeem") => match internal::body::<RedeemRequest>(&mut req).await {
                Ok(r) => self.redeem(r).await,
                Err(e) => Err(e),
            },
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.state.storage().delete_all().await?;
        Response::ok("")
    }
}

impl OAuthStateStore {
    async fn consume(&self, r: ConsumeRequest) -> Result<Response, ApiError> {
        let storage = self.state.storage();
        let used: Option<i64> = storage.get(USED_KEY).await.map_err(|e| fail!(e))?;
        if used.is_some() {
            return Err(reused());
        }
        storage.put(USED_KEY, r.exp).await.map_err(|e| fail!(e))?;
        let forget_at = r
            .exp
            .saturating_mul(1000)
            .saturating_add(KEEP_AFTER_EXPIRY_MS);
        storage
            .set_alarm(worker::ScheduledTime::new(js_sys::Date::new(
                &wasm_bindgen::JsValue::from_f64(forget_at as f64),
            )))
            .await
            .map_err(|e| fail!(e))?;
        Ok(no_content())
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
    async fn keep_handoff(&self, h: Handoff) -> Result<Response, ApiError> {
        let storage = self.state.storage();
        storage.put(HANDOFF_KEY, &h).await.map_err(|e| fail!(e))?;
        let used: Option<i64> = storage.get(USED_KEY).await.map_err(|e| fail!(e))?;
        let forget_at = used
            .unwrap_or(0)
            .saturating_mul(1000)
            .max(h.expires_at_ms)
            .saturating_add(KEEP_AFTER_EXPIRY_MS);
        storage
            .set_alarm(worker::ScheduledTime::new(js_sys::Date::new(
                &wasm_bindgen::JsValue::from_f64(forget_at as f64),
            )))
            .await
            .map_err(|e| fail!(e))?;
        Ok(no_content())
    }

    /// Once: the session goes to the first caller with the code and the verifier; any
    /// wrong try ends the handoff too.
    async fn redeem(&self, r: RedeemRequest) -> Result<Response, ApiError> {
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
        if internal::now_ms() >= h.expires_at_ms
            || !eq(h.code_hash.as_bytes(), r.code_hash.as_bytes())
            || !eq(h.challenge.as_bytes(), r.verifier_hash.as_bytes())
        {
            return Err(code_invalid());
        }
        Ok(crate::http::json_response(
            200,
            &Redeemed {
                session: h.session,
                session_expires_at: h.session_expires_at,
            },
        ))
    }
}

pub fn object_name(nonce: &str) -> String {
    format!("oauth-state-{nonce}")
}

fn stub_for(env: &Env, nonce: &str) -> Result<crate::objects::internal::ObjectStub, ApiError> {
    if nonce.len() != NONCE_LEN {
        return Err(fail!());
    }
    crate::objects::internal::stub(env, settings::OAUTH_STATES, &object_name(nonce))
}

/// Leaves a cross-site SPA's session for it to redeem.
pub async fn keep_handoff(env: &Env, nonce: &str, h: &Handoff) -> Result<(), ApiError> {
    let resp = internal::call(
        &stub_for(env, nonce)?,
        Method::Post,
        "https://oauth-state/handoff",
        Some(h),
        &[],
    )
    .await?;
    internal::expect_success(resp).await
}

/// The sealed session for the code `nonce`.`secret` and the SPA's verifier (hashed here).
pub async fn redeem(env: &Env, nonce: &str, r: &RedeemRequest) -> Result<Redeemed, ApiError> {
    let resp = internal::call(
        &stub_for(env, nonce)?,
        Method::Post,
        "https://oauth-state/redeem",
        Some(r),
        &[],
    )
    .await?;
    internal::json(resp).await
}

/// Marks `nonce` used; `oauth_state_reused` when it already was.
pub async fn consume(env: &Env, nonce: &str, exp: i64) -> Result<(), ApiError> {
    // The nonce comes from a verified state, so it is base64url of the right length; the
    // check keeps object names well-formed even if that ever changes.
    if nonce.len() != NONCE_LEN {
        return Err(fail!());
    }
    let stub = stub_for(env, nonce)?;
    let resp = internal::call(
        &stub,
        Method::Post,
        "https://oauth-state/consume",
        Some(&ConsumeRequest { exp }),
        &[],
    )
    .await?;
    if resp.status_code() == 204 {
        Ok(())
    } else {
        Err(internal::relayed(resp).await)
    }
}
