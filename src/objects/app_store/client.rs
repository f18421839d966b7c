//! The handle on one app's `AppStore` (`app-<app id>`), its command and its replies.

use ghplane_core::ids::AppId;
use ghplane_core::rpc::Command;
use ghplane_core::tenancy::app::SealedAppInput;
use ghplane_core::tenancy::config::SealedSecret;
use ghplane_core::webhook::redelivery::SweepReport;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::Env;

use crate::objects::deliveries::DeliveryRequest;
use crate::objects::rpc::Object;
use crate::secrets::ResealReport;
use crate::settings;

pub const PRIVATE_KEY_SLOT: &str = "privateKey";
pub const WEBHOOK_SECRET_SLOT: &str = "webhookSecret";
pub const CLIENT_SECRET_SLOT: &str = "clientSecret";

const PREFIX: &str = "app-";

pub fn object_name(id: AppId) -> String {
    format!("{PREFIX}{id}")
}

/// The app an `AppStore` serves, from its object name.
pub fn app_of(name: &str) -> Result<AppId, ApiError> {
    name.strip_prefix(PREFIX)
        .and_then(|id| AppId::parse(id).ok())
        .ok_or_else(|| fail!(name.to_owned()))
}

/// What an `AppStore` is asked; each variant's doc names its reply.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppCommand {
    /// The app's public view (`Value`); `app_not_found` when unregistered.
    Get,
    /// Registers or replaces the app: [`Stored`].
    Put { input: SealedAppInput },
    /// Forgets the app and its credentials: `()`.
    Delete,
    /// A new webhook secret; the previous one stays valid `grace_ms`: the view (`Value`).
    Rotate { secret: SealedSecret, grace_ms: i64 },
    /// Every sealed value under the current key: [`ResealReport`].
    Reseal,
    /// A delivery without an installation: [`DeliveryAnswer`].
    Deliver { delivery: DeliveryRequest },
    /// A page of the app's delivery log (`Value`), 50 deliveries unless `limit` says.
    Deliveries {
        limit: Option<u32>,
        cursor: Option<String>,
    },
    /// The redelivery sweep: [`SweepReport`].
    Sweep,
    /// An App JWT, signed with `now` (GitHub's clock) when given: [`JwtResponse`].
    Jwt { now: Option<i64> },
    /// The app's OAuth client, the opened secret only when asked: [`OAuthClientResponse`].
    OAuthClient { with_secret: bool },
}

impl Command for AppCommand {
    fn idempotent(&self) -> bool {
        matches!(
            self,
            AppCommand::Get
                | AppCommand::Put { .. }
                | AppCommand::Delete
                | AppCommand::Deliveries { .. }
        )
    }
}

/// The stored app's view, and whether it was new.
#[derive(Serialize, Deserialize)]
pub struct Stored {
    pub created: bool,
    pub app: Value,
}

/// What the webhook route answers GitHub for a delivery.
#[derive(Serialize, Deserialize)]
pub struct DeliveryAnswer {
    pub status: u16,
    pub body: Value,
}

/// The app's OAuth client id, and its opened secret only when asked (the code exchange and
/// the grant revocation). Never part of any public answer.
#[derive(Serialize, Deserialize)]
pub struct OAuthClientResponse {
    pub client_id: String,
    pub slug: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct JwtResponse {
    pub jwt: String,
    pub exp: i64,
}

/// The route handlers' handle on one app's object.
pub struct AppClient {
    object: Object,
}

impl AppClient {
    pub fn new(env: &Env, id: AppId) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::APPS, &object_name(id))?;
        Ok(Self { object })
    }

    /// The app's view; `app_not_found` when it is not registered.
    pub async fn get(&self) -> Result<Value, ApiError> {
        self.object.call(&AppCommand::Get).await
    }

    /// The app's view; `None` when it is not registered.
    pub async fn find(&self) -> Result<Option<Value>, ApiError> {
        match self.get().await {
            Ok(view) => Ok(Some(view)),
            Err(ApiError::AppNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn exists(&self) -> Result<bool, ApiError> {
        self.find().await.map(|view| view.is_some())
    }

    pub async fn put(&self, input: SealedAppInput) -> Result<Stored, ApiError> {
        self.object.call(&AppCommand::Put { input }).await
    }

    pub async fn delete(&self) -> Result<(), ApiError> {
        self.object.call(&AppCommand::Delete).await
    }

    pub async fn rotate(&self, secret: SealedSecret, grace_ms: i64) -> Result<Value, ApiError> {
        self.object
            .call(&AppCommand::Rotate { secret, grace_ms })
            .await
    }

    pub async fn reseal(&self) -> Result<ResealReport, ApiError> {
        self.object.call(&AppCommand::Reseal).await
    }

    pub async fn deliver(&self, delivery: DeliveryRequest) -> Result<DeliveryAnswer, ApiError> {
        self.object.call(&AppCommand::Deliver { delivery }).await
    }

    pub async fn deliveries(
        &self,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<Value, ApiError> {
        self.object
            .call(&AppCommand::Deliveries { limit, cursor })
            .await
    }

    /// Runs the redelivery sweep of this app (see `objects/app_store/redeliveries.rs`).
    pub async fn sweep(&self) -> Result<SweepReport, ApiError> {
        self.object.call(&AppCommand::Sweep).await
    }

    /// The app's OAuth client (id, slug, and the opened secret when `with_secret`). An
    /// unregistered app is a misconfiguration of `GITHUB_APP_ID`.
    pub async fn oauth_client(&self, with_secret: bool) -> Result<OAuthClientResponse, ApiError> {
        match self
            .object
            .call(&AppCommand::OAuthClient { with_secret })
            .await
        {
            Err(ApiError::AppNotFound(_)) => {
                Err(ApiError::Misconfigured(settings::GITHUB_APP_ID.into()))
            }
            other => other,
        }
    }

    /// An App JWT; `now` forces a fresh one signed with that clock.
    pub async fn jwt(&self, now: Option<i64>) -> Result<String, ApiError> {
        self.signed_jwt(now).await.map(|j| j.jwt)
    }

    /// The object's current App JWT and when it expires.
    pub async fn jwt_with_expiry(&self) -> Result<JwtResponse, ApiError> {
        self.signed_jwt(None).await
    }

    async fn signed_jwt(&self, now: Option<i64>) -> Result<JwtResponse, ApiError> {
        self.object.call(&AppCommand::Jwt { now }).await
    }
}
