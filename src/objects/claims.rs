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
use worker::{durable_object, Env, Request, Response, State};

use crate::clock::now_text;
use crate::objects::rpc::{self, Object};
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

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |_, command| async move {
            rpc::reply(&self.apply(command).await?)
        })
        .await
    }
}

impl ClaimStore {
    async fn apply(&self, req: ClaimRequest) -> Result<ClaimAnswer, ApiError> {
        let _guard = self.one_at_a_time.lock().await;
        let storage = self.state.storage();
        let mut claims: Claims = storage
            .get(CLAIMS_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default();
        let before = claims.clone();
        let answer = claims.apply(req, &now_text())?;
        if claims != before {
            storage
                .put(CLAIMS_KEY, &claims)
                .await
                .map_err(|e| fail!(e))?;
        }
        Ok(answer)
    }
}

/// The handle on one owner's claim object.
pub struct ClaimsClient {
    object: Object,
}

impl ClaimsClient {
    pub fn new(env: &Env, owner: &str) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::CLAIMS, &claims_object_name(owner))?;
        Ok(Self { object })
    }

    pub async fn apply(&self, req: &ClaimRequest) -> Result<ClaimAnswer, ApiError> {
        self.object.call(req).await
    }
}
