//! `OAuthStateStore`: one tiny Durable Object per sign-in nonce, named `oauth-state-<nonce>`,
//! that remembers the nonce was used. A Durable Object runs one request at a time and its
//! storage calls cannot interleave with another request's, so "not used yet → mark used" is
//! atomic: of two callbacks racing with one state, exactly one gets through.
//!
//! Nothing is written when a sign-in starts (the signed state carries everything), so
//! unauthenticated `start` calls cost no storage. The marker deletes itself after the state
//! has expired anyway.

use ghplane_core::admin_access::state::{reused, NONCE_LEN};
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, Method, Request, Response, State};

use crate::http::{error_response, no_content};
use crate::objects::internal::{self, storage_error};
use crate::settings;

const USED_KEY: &str = "used";
/// Kept a minute past the state's expiry, so clock skew between isolates cannot reopen it.
const KEEP_AFTER_EXPIRY_MS: i64 = 60_000;

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
            _ => Err(ApiError::Internal),
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
        let used: Option<i64> = storage.get(USED_KEY).await.map_err(storage_error)?;
        if used.is_some() {
            return Err(reused());
        }
        storage.put(USED_KEY, r.exp).await.map_err(storage_error)?;
        let forget_at = r
            .exp
            .saturating_mul(1000)
            .saturating_add(KEEP_AFTER_EXPIRY_MS);
        storage
            .set_alarm(worker::ScheduledTime::new(js_sys::Date::new(
                &wasm_bindgen::JsValue::from_f64(forget_at as f64),
            )))
            .await
            .map_err(storage_error)?;
        Ok(no_content())
    }
}

/// Marks `nonce` used; `oauth_state_reused` when it already was.
pub async fn consume(env: &Env, nonce: &str, exp: i64) -> Result<(), ApiError> {
    // The nonce comes from a verified state, so it is base64url of the right length; the
    // check keeps object names well-formed even if that ever changes.
    if nonce.len() != NONCE_LEN {
        return Err(ApiError::Internal);
    }
    let stub: crate::objects::internal::ObjectStub = crate::objects::internal::stub(
        env,
        settings::OAUTH_STATES,
        &format!("oauth-state-{nonce}"),
    )?;
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
