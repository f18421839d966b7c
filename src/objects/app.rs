//! `AppStore`: one Durable Object per GitHub App, named `app-<app id>`: its credentials
//! (sealed), its mode, its webhook secret rotation, and the App JWTs signed with its key.
//!
//! The private key is opened only here, to sign; a JWT is reused while it has more than a
//! minute left, so a warm object signs about once every eight minutes.

use std::cell::RefCell;

use ghplane_core::ids::AppId;
use ghplane_core::tenancy::app::{AppRecord, SealedAppInput};
use ghplane_core::tenancy::config::SealedSecret;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, Method, Request, Response, State};

use crate::github::app_jwt;
use crate::github::client::now_unix;
use crate::http::{error_response, json_response, no_content};
use crate::objects::app_directory::DirectoryClient;
use crate::objects::deliveries::{run, DeliveryLog, DeliveryRequest, Handled};
use crate::objects::internal::{self, now_ms, now_text};
use crate::secrets::{Keyring, ResealReport};
use crate::settings;
use ghplane_core::webhook::Action;

const RECORD_KEY: &str = "app";
pub const PRIVATE_KEY_SLOT: &str = "privateKey";
pub const WEBHOOK_SECRET_SLOT: &str = "webhookSecret";
pub const CLIENT_SECRET_SLOT: &str = "clientSecret";
/// How often the alarm trims the log of installation-less deliveries.
const TRIM_EVERY_MS: i64 = 24 * 60 * 60 * 1000;
/// A cached JWT is replaced when less than this is left of it.
const JWT_MIN_REMAINING_SECS: i64 = 60;

pub fn object_name(id: AppId) -> String {
    format!("app-{id}")
}

#[derive(Serialize, Deserialize)]
pub struct RotateRequest {
    pub secret: SealedSecret,
    pub grace_ms: i64,
}

#[derive(Serialize, Deserialize, Default)]
pub struct JwtRequest {
    /// Sign with this clock (GitHub's, after it refused ours) instead of ours, uncached.
    pub now: Option<i64>,
}

/// `POST /oauth-client`: the app's OAuth client id, and its opened secret only when asked
/// (the code exchange and the grant revocation). Never part of any public answer.
#[derive(Serialize, Deserialize)]
pub struct OAuthClientRequest {
    pub with_secret: bool,
}

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

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let id = url
            .query_pairs()
            .find(|(k, _)| k == "id")
            .and_then(|(_, v)| AppId::parse(&v).ok());
        let Some(id) = id else {
            return Ok(error_response(&fail!()));
        };
        let result = match (req.method(), url.path()) {
            (Method::Get, "/app") => self
                .load_existing(id)
                .await
                .map(|r| json_response(200, &r.view(now_ms()))),
            (Method::Put, "/app") => match internal::body(&mut req).await {
                Ok(input) => self.put(id, input).await,
                Err(e) => Err(e),
            },
            (Method::Delete, "/app") => self.delete(id).await,
            (Method::Post, "/rotate") => match internal::body(&mut req).await {
                Ok(r) => self.rotate(id, r).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/reseal") => self.reseal(id).await.map(|r| json_response(200, &r)),
            (Method::Post, "/deliveries") => {
                match internal::body::<DeliveryRequest>(&mut req).await {
                    Ok(d) => self.deliver(d).await,
                    Err(e) => Err(e),
                }
            }
            (Method::Get, "/deliveries") => {
                let q = |k: &str| {
                    url.query_pairs()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.into_owned())
                };
                let limit = q("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
                DeliveryLog::new(self.state.storage().sql(), &self.env)
                    .and_then(|log| log.list(limit, q("cursor").as_deref()))
                    .map(|v| json_response(200, &v))
            }
            (Method::Post, "/redeliveries") => match self.load_existing(id).await {
                Ok(_) => self.sweep(id).await.map(|r| json_response(200, &r)),
                Err(e) => Err(e),
            },
            (Method::Post, "/jwt") => match internal::body(&mut req).await {
                Ok(r) => self.jwt(id, r).await.map(|j| json_response(200, &j)),
                Err(e) => Err(e),
            },
            (Method::Post, "/oauth-client") => match internal::body(&mut req).await {
                Ok(r) => self
                    .oauth_client(id, r)
                    .await
                    .map(|c| json_response(200, &c)),
                Err(e) => Err(e),
            },
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
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
        super::redeliveries::trim_requests(&self.state.storage().sql(), now)?;
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
    async fn deliver(&self, req: DeliveryRequest) -> Result<Response, ApiError> {
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
        run(&log, &req.received, now_ms(), |_| async {
            Ok(match &req.action {
                Action::Ping { .. } => Handled::accepted(),
                Action::Ignored { reason, .. } => Handled::ignored(reason.as_str()),
                _ => Handled::ignored("missing_installation"),
            })
        })
        .await
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
        let mut changed = false;
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
        for (slot, value) in slots {
            let outcome = ring.reseal(&object, slot, value).await;
            changed |= report.apply(&object, slot, outcome, value);
        }
        if changed {
            self.save(&record).await?;
        }
        Ok(report)
    }

    async fn load_existing(&self, id: AppId) -> Result<AppRecord, ApiError> {
        self.load().await?.ok_or(ApiError::AppNotFound(id.get()))
    }

    async fn put(&self, id: AppId, input: SealedAppInput) -> Result<Response, ApiError> {
        let previous = self.load().await?;
        let record = AppRecord::replace(id, input, previous.as_ref(), &now_text());
        self.save(&record).await?;
        self.jwt.replace(None);
        Ok(json_response(
            if previous.is_some() { 200 } else { 201 },
            &record.view(now_ms()),
        ))
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

    async fn delete(&self, id: AppId) -> Result<Response, ApiError> {
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
        Ok(no_content())
    }

    async fn rotate(&self, id: AppId, r: RotateRequest) -> Result<Response, ApiError> {
        let record =
            self.load_existing(id)
                .await?
                .rotated(r.secret, now_ms(), r.grace_ms, &now_text());
        self.save(&record).await?;
        if let Some(p) = &record.previous_webhook_secret {
            self.state
                .storage()
                .set_alarm(js_sys_date(p.valid_until_ms))
                .await
                .map_err(|e| fail!(e))?;
        }
        Ok(json_response(200, &record.view(now_ms())))
    }

    async fn oauth_client(
        &self,
        id: AppId,
        r: OAuthClientRequest,
    ) -> Result<OAuthClientResponse, ApiError> {
        let record = self.load_existing(id).await?;
        let missing =
            ApiError::Misconfigured("clientId and clientSecret of the GITHUB_APP_ID app".into());
        let client_id = record.client_id.clone().ok_or(missing.clone())?;
        let sealed = record.client_secret.as_ref().ok_or(missing)?;
        let client_secret = if r.with_secret {
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

    async fn jwt(&self, id: AppId, r: JwtRequest) -> Result<JwtResponse, ApiError> {
        let record = self.load_existing(id).await?;
        let fingerprint = record
            .private_key
            .fingerprint
            .clone()
            .unwrap_or_else(|| object_name(id));
        let now = r.now.unwrap_or_else(now_unix);
        if r.now.is_none() {
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
        if r.now.is_none() {
            self.jwt.replace(Some(CachedJwt {
                jwt: jwt.clone(),
                exp,
                fingerprint,
            }));
        }
        Ok(JwtResponse { jwt, exp })
    }
}

/// The route handlers' handle on one app's object.
pub struct AppClient {
    stub: crate::objects::internal::ObjectStub,
    id: AppId,
}

impl AppClient {
    pub async fn deliver(&self, delivery: &DeliveryRequest) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Post,
            &self.url("deliveries"),
            Some(delivery),
            &[],
        )
        .await
    }

    pub async fn deliveries(&self, query: &str) -> Result<Response, ApiError> {
        let url = format!("https://app/deliveries?id={}&{query}", self.id);
        internal::call::<()>(&self.stub, Method::Get, &url, None, &[]).await
    }

    pub fn new(env: &Env, id: AppId) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::APPS, &object_name(id))?;
        Ok(Self { stub, id })
    }

    fn url(&self, op: &str) -> String {
        format!("https://app/{op}?id={}", self.id)
    }

    pub async fn get(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Get, &self.url("app"), None, &[]).await
    }

    pub async fn exists(&self) -> Result<bool, ApiError> {
        let resp = self.get().await?;
        match resp.status_code() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(fail!()),
        }
    }

    /// Runs the redelivery sweep of this app (see `objects/redeliveries.rs`).
    pub async fn sweep(&self) -> Result<ghplane_core::webhook::redelivery::SweepReport, ApiError> {
        let resp = internal::call::<()>(
            &self.stub,
            Method::Post,
            &self.url("redeliveries"),
            None,
            &[],
        )
        .await?;
        internal::json(resp).await
    }

    pub async fn put(&self, input: &SealedAppInput) -> Result<Response, ApiError> {
        internal::call(&self.stub, Method::Put, &self.url("app"), Some(input), &[]).await
    }

    pub async fn delete(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Delete, &self.url("app"), None, &[]).await
    }

    pub async fn reseal(&self) -> Result<ResealReport, ApiError> {
        let resp =
            internal::call::<()>(&self.stub, Method::Post, &self.url("reseal"), None, &[]).await?;
        internal::json(resp).await
    }

    pub async fn rotate(&self, r: &RotateRequest) -> Result<Response, ApiError> {
        internal::call(&self.stub, Method::Post, &self.url("rotate"), Some(r), &[]).await
    }

    /// The app's OAuth client (id, slug, and the opened secret when `with_secret`). An
    /// unregistered app is a misconfiguration of `GITHUB_APP_ID`.
    pub async fn oauth_client(&self, with_secret: bool) -> Result<OAuthClientResponse, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            &self.url("oauth-client"),
            Some(&OAuthClientRequest { with_secret }),
            &[],
        )
        .await?;
        internal::json::<OAuthClientResponse>(resp)
            .await
            .map_err(|e| match e {
                ApiError::Relayed { code, .. } if code == "app_not_found" => {
                    ApiError::Misconfigured(settings::GITHUB_APP_ID.into())
                }
                other => other,
            })
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
        let resp = internal::call(
            &self.stub,
            Method::Post,
            &self.url("jwt"),
            Some(&JwtRequest { now }),
            &[],
        )
        .await?;
        internal::json::<JwtResponse>(resp).await
    }
}
