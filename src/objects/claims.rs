//! `ClaimStore`: one Durable Object per repository owner, named `claims-<login>`: which
//! mode serves each of the owner's repositories, the org-level installations' coverage, and
//! the conflicts between them.
//!
//! One object per owner (not per repository) is deliberate: whether a repository may get a
//! dedicated app depends on the owner's org-wide coverage, and an org installer depends on
//! every dedicated repository of the org; Durable Objects have no cross-object
//! transactions, so these checks are atomic only when one object decides them all.
//! Requests run one at a time ([`Claims::apply`] between one read and one write).

use futures_util::lock::Mutex;
use ghplane_core::installer::claims::{ClaimAnswer, ClaimRequest, Claims};
use ghplane_core::installer::claims_object_name;
use ghplane_core::ApiError;
use worker::{durable_object, Env, Method, Request, Response, State};

use crate::http::{error_response, json_response};
use crate::objects::internal::{self, now_text, storage_error};
use crate::settings;

const CLAIMS_KEY: &str = "claims";

#[durable_object]
pub struct ClaimStore {
    state: State,
    one_at_a_time: Mutex<()>,
}

impl worker::DurableObject for ClaimStore {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            one_at_a_time: Mutex::new(()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match (req.method(), req.path().as_str()) {
            (Method::Post, "/apply") => match internal::body::<ClaimRequest>(&mut req).await {
                Ok(r) => self.apply(r).await,
                Err(e) => Err(e),
            },
            _ => Err(ApiError::Internal),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }
}

impl ClaimStore {
    async fn apply(&self, req: ClaimRequest) -> Result<Response, ApiError> {
        let _guard = self.one_at_a_time.lock().await;
        let storage = self.state.storage();
        let mut claims: Claims = storage
            .get(CLAIMS_KEY)
            .await
            .map_err(storage_error)?
            .unwrap_or_default();
        let before = claims.clone();
        let answer = claims.apply(req, &now_text())?;
        if claims != before {
            storage
                .put(CLAIMS_KEY, &claims)
                .await
                .map_err(storage_error)?;
        }
        Ok(json_response(200, &answer))
    }
}

/// The handle on one owner's claim object.
pub struct ClaimsClient {
    stub: crate::objects::internal::ObjectStub,
}

impl ClaimsClient {
    pub fn new(env: &Env, owner: &str) -> Result<Self, ApiError> {
        let stub =
            crate::objects::internal::stub(env, settings::CLAIMS, &claims_object_name(owner))?;
        Ok(Self { stub })
    }

    pub async fn apply(&self, req: &ClaimRequest) -> Result<ClaimAnswer, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            "https://claims/apply",
            Some(req),
            &[],
        )
        .await?;
        internal::json(resp).await
    }
}
