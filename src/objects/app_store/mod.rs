//! `AppStore`: one Durable Object per GitHub App, named `app-<app id>`: its credentials
//! (sealed), its mode, its webhook secret rotation, and the App JWTs signed with its key.
//!
//! The private key is opened only here, to sign; a JWT is reused while it has more than a
//! minute left, so a warm object signs about once every eight minutes.

pub mod as_app;
pub mod client;
mod redeliveries;

use std::cell::RefCell;

use ghplane_core::ids::AppId;
use ghplane_core::tenancy::app::{AppRecord, SealedAppInput};
use ghplane_core::tenancy::config::SealedSecret;
use ghplane_core::webhook::Action;
use ghplane_core::ApiError;
use serde_json::Value;
use worker::{durable_object, Env, Request, Response, State};

use crate::clock::{now_ms, now_text};
use crate::github::app_jwt;
use crate::github::client::now_unix;
use crate::objects::app_directory::client::DirectoryClient;
use crate::objects::deliveries::{run, DeliveryLog, DeliveryRequest, Handled};
use crate::objects::rpc;
use crate::secrets::{Keyring, ResealReport};
use client::{
    app_of, object_name, AppCommand, DeliveryAnswer, JwtResponse, OAuthClientResponse, Stored,
    CLIENT_SECRET_SLOT, PRIVATE_KEY_SLOT, WEBHOOK_SECRET_SLOT,
};

const RECORD_KEY: &str = "app";
/// How often the alarm trims the log of installation-less deliveries.
const TRIM_EVERY_MS: i64 = 24 * 60 * 60 * 1000;
/// A cached JWT is replaced when less than this is left of it.
const JWT_MIN_REMAINING_SECS: i64 = 60;
/// A page of the delivery log holds this many deliveries unless the caller says.
const DEFAULT_PAGE: u32 = 50;

struct CachedJwt {
    jwt: String,
    exp: i64,
    fingerprint: String,
}

#[durable_object]
pub struct AppStore {
    pub(crate) state: State,
    pub(crate) env: Env,
    jwt: RefCell<Option<CachedJwt>>,
}

impl worker::DurableObject for AppStore {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            jwt: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |name, command| async move {
            let id = app_of(&name)?;
            match command {
                AppCommand::Get => rpc::reply(&self.load_existing(id).await?.view(now_ms())),
                AppCommand::Put { input } => rpc::reply(&self.put(id, input).await?),
                AppCommand::Delete => rpc::reply(&self.delete(id).await?),
                AppCommand::Rotate { secret, grace_ms } => {
                    rpc::reply(&self.rotate(id, secret, grace_ms).await?)
                }
                AppCommand::Reseal => rpc::reply(&self.reseal(id).await?),
                AppCommand::Deliver { delivery } => rpc::reply(&self.deliver(delivery).await?),
                AppCommand::Deliveries { limit, cursor } => rpc::reply(
                    &DeliveryLog::new(self.state.storage().sql(), &self.env)?
                        .list(limit.unwrap_or(DEFAULT_PAGE), cursor.as_deref())?,
                ),
                AppCommand::Sweep => {
                    self.load_existing(id).await?;
                    rpc::reply(&self.sweep(id).await?)
                }
                AppCommand::Jwt { now } => rpc::reply(&self.jwt(id, now).await?),
                AppCommand::OAuthClient { with_secret } => {
                    rpc::reply(&self.oauth_client(id, with_secret).await?)
                }
            }
        })
        .await
    }

    /// Drops the previous webhook secret once its grace period is over, and trims the log of
    /// deliveries that had no installation.
    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.maintain().await {
            crate::log::event(
                "error",
                "app maintenance failed",
                serde_json::json!({"errorCode": e.code()}),
            );
        }
        Response::ok("")
    }
}

fn js_sys_date(ms: i64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        ms as f64,
    )))
}

impl AppStore {
    async fn load(&self) -> Result<Option<AppRecord>, ApiError> {
        self.state
            .storage()
            .get(RECORD_KEY)
            .await
            .map_err(|e| fail!(e))
    }

    async fn maintain(&self) -> Result<(), ApiError> {
        let now = now_ms();
        DeliveryLog::new(self.state.storage().sql(), &self.env)?.trim(now)?;
        redeliveries::trim_requests(&self.state.storage().sql(), now)?;
        let mut next = now + TRIM_EVERY_MS;
        if let Some(mut record) = self.load().await? {
            if record.expire_previous(now) {
                self.save(&record).await?;
            }
            if let Some(p) = &record.previous_webhook_secret {
                next = next.min(p.valid_until_ms);
            }
        }
        self.state
            .storage()
            .set_alarm(js_sys_date(next))
            .await
            .map_err(|e| fail!(e))
    }

    /// Deliveries without an installation (a `ping` of the app's own hook, for one) are
    /// deduped and logged here.
    async fn deliver(&self, req: DeliveryRequest) -> Result<DeliveryAnswer, ApiError> {
        let log = DeliveryLog::new(self.state.storage().sql(), &self.env)?;
        if self
            .state
            .storage()
            .get_alarm()
            .await
            .map_err(|e| fail!(e))?
            .is_none()
        {
            self.state
                .storage()
                .set_alarm(TRIM_EVERY_MS)
                .await
                .map_err(|e| fail!(e))?;
        }
        let mut answer = run(&log, &req.received, now_ms(), |_| async {
            Ok(match &req.action {
                Action::Ping { .. } => Handled::accepted(),
                Action::Ignored { reason, .. } => Handled::ignored(reason.as_str()),
                _ => Handled::ignored("missing_installation"),
            })
        })
        .await?;
        let body = answer.bytes().await.map_err(|e| fail!(e))?;
        Ok(DeliveryAnswer {
            status: answer.status_code(),
            body: serde_json::from_slice(&body).map_err(|e| fail!(e))?,
        })
    }

    /// Every sealed value of the app under the current key; the directory's copy of the
    /// webhook secrets is published again when anything changed.
    async fn reseal(&self, id: AppId) -> Result<ResealReport, ApiError> {
        let mut report = ResealReport::default();
        let Some(mut record) = self.load().await? else {
            return Ok(report);
        };
        let ring = Keyring::from_env(&self.env).await?;
        let object = object_name(id);
        let mut slots: Vec<(&str, &mut ghplane_core::sealed::Sealed)> =
            vec![(PRIVATE_KEY_SLOT, &mut record.private_key.sealed)];
        if let Some(s) = record.webhook_secret.as_mut() {
            slots.push((WEBHOOK_SECRET_SLOT, &mut s.sealed));
        }
        if let Some(p) = record.previous_webhook_secret.as_mut() {
            slots.push((WEBHOOK_SECRET_SLOT, &mut p.secret.sealed));
        }
        if let Some(s) = record.client_secret.as_mut() {
            slots.push((CLIENT_SECRET_SLOT, &mut s.sealed));
        }
        let changed = ring.reseal_all(&object, slots, &mut report).await;
        if changed {
            self.save(&record).await?;
        }
        Ok(report)
    }

    async fn load_existing(&self, id: AppId) -> Result<AppRecord, ApiError> {
        self.load().await?.ok_or(ApiError::AppNotFound(id.get()))
    }

    async fn put(&self, id: AppId, input: SealedAppInput) -> Result<Stored, ApiError> {
        let previous = self.load().await?;
        let record = AppRecord::replace(id, input, previous.as_ref(), &now_text());
        self.save(&record).await?;
        self.jwt.replace(None);
        Ok(Stored {
            created: previous.is_none(),
            app: record.view(now_ms()),
        })
    }

    /// Stores the record and publishes its webhook secrets to the directory, in that order.
    async fn save(&self, record: &AppRecord) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(RECORD_KEY, record)
            .await
            .map_err(|e| fail!(e))?;
        DirectoryClient::new(&self.env)?.publish(record).await
    }

    async fn delete(&self, id: AppId) -> Result<(), ApiError> {
        self.load_existing(id).await?;
        // Webhooks stop verifying first, then the credentials go.
        DirectoryClient::new(&self.env)?.remove(id).await?;
        self.state
            .storage()
            .delete_all()
            .await
            .map_err(|e| fail!(e))?;
        self.state
            .storage()
            .delete_alarm()
            .await
            .map_err(|e| fail!(e))?;
        self.jwt.replace(None);
        Ok(())
    }

    async fn rotate(
        &self,
        id: AppId,
        secret: SealedSecret,
        grace_ms: i64,
    ) -> Result<Value, ApiError> {
        let record = self
            .load_existing(id)
            .await?
            .rotated(secret, now_ms(), grace_ms, &now_text());
        self.save(&record).await?;
        if let Some(p) = &record.previous_webhook_secret {
            self.state
                .storage()
                .set_alarm(js_sys_date(p.valid_until_ms))
                .await
                .map_err(|e| fail!(e))?;
        }
        Ok(record.view(now_ms()))
    }

    async fn oauth_client(
        &self,
        id: AppId,
        with_secret: bool,
    ) -> Result<OAuthClientResponse, ApiError> {
        let record = self.load_existing(id).await?;
        let missing =
            ApiError::Misconfigured("clientId and clientSecret of the GITHUB_APP_ID app".into());
        let client_id = record.client_id.clone().ok_or(missing.clone())?;
        let sealed = record.client_secret.as_ref().ok_or(missing)?;
        let client_secret = if with_secret {
            let ring = Keyring::from_env(&self.env).await?;
            let secret = ring
                .open(&object_name(id), CLIENT_SECRET_SLOT, &sealed.sealed)
                .await?;
            Some(secret.expose().to_owned())
        } else {
            None
        };
        Ok(OAuthClientResponse {
            client_id,
            slug: record.slug.clone(),
            client_secret,
        })
    }

    /// A cached JWT, or one signed now; never cached when signed with GitHub's clock.
    async fn jwt(&self, id: AppId, github_now: Option<i64>) -> Result<JwtResponse, ApiError> {
        let record = self.load_existing(id).await?;
        let fingerprint = record
            .private_key
            .fingerprint
            .clone()
            .unwrap_or_else(|| object_name(id));
        let now = github_now.unwrap_or_else(now_unix);
        if github_now.is_none() {
            if let Some(c) = self.jwt.borrow().as_ref() {
                if c.fingerprint == fingerprint && c.exp - now > JWT_MIN_REMAINING_SECS {
                    return Ok(JwtResponse {
                        jwt: c.jwt.clone(),
                        exp: c.exp,
                    });
                }
            }
        }
        let ring = Keyring::from_env(&self.env).await?;
        let pem = ring
            .open(
                &object_name(id),
                PRIVATE_KEY_SLOT,
                &record.private_key.sealed,
            )
            .await?;
        let key = app_jwt::signing_key(&fingerprint, &pem).await?;
        let (jwt, exp) = app_jwt::sign(&key, &record.jwt_issuer(), now).await?;
        if github_now.is_none() {
            self.jwt.replace(Some(CachedJwt {
                jwt: jwt.clone(),
                exp,
                fingerprint,
            }));
        }
        Ok(JwtResponse { jwt, exp })
    }
}
