//! `AppDirectory`: one Durable Object (named `apps`) that knows which apps exist and holds
//! what verifies their webhooks (the sealed current and previous secrets).
//!
//! It lets the webhook route answer an unknown app with 401 without creating any per-app
//! object, and verify a delivery with one lookup. Each `AppStore` publishes its entry here
//! whenever its webhook secrets change; the `AppStore` stays the source of truth.

use ghplane_core::ids::AppId;
use ghplane_core::sealed::Sealed;
use ghplane_core::tenancy::app::AppRecord;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, ListOptions, Method, Request, Response, State};

use crate::http::{error_response, json_response, no_content};
use crate::objects::internal;
use crate::objects::sealed_registry::{self, Holder, Page};
use crate::settings;

const OBJECT_NAME: &str = "apps";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorySecret {
    pub sealed: Sealed,
    /// `None` for the current secret; the end of the grace period for the previous one.
    pub valid_until_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub secrets: Vec<DirectorySecret>,
}

impl DirectoryEntry {
    pub fn of(record: &AppRecord) -> DirectoryEntry {
        let current = record.webhook_secret.iter().map(|s| DirectorySecret {
            sealed: s.sealed.clone(),
            valid_until_ms: None,
        });
        let previous = record
            .previous_webhook_secret
            .iter()
            .map(|p| DirectorySecret {
                sealed: p.secret.sealed.clone(),
                valid_until_ms: Some(p.valid_until_ms),
            });
        DirectoryEntry {
            secrets: current.chain(previous).collect(),
        }
    }
}

fn key(id: AppId) -> String {
    format!("app:{id}")
}

#[durable_object]
pub struct AppDirectory {
    state: State,
}

impl worker::DurableObject for AppDirectory {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        match (req.method(), url.path()) {
            (Method::Put, "/holders") => {
                let result = match internal::body::<Holder>(&mut req).await {
                    Ok(h) => self
                        .state
                        .storage()
                        .put(&h.key(), 1)
                        .await
                        .map(|_| no_content())
                        .map_err(|e| fail!(e)),
                    Err(e) => Err(e),
                };
                return Ok(result.unwrap_or_else(|e| error_response(&e)));
            }
            (Method::Get, "/holders") => {
                let q = |k: &str| {
                    url.query_pairs()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.into_owned())
                };
                let limit = q("limit").and_then(|l| l.parse().ok()).unwrap_or(50u32);
                let result = self
                    .keys(sealed_registry::PREFIX, q("after"), limit)
                    .await
                    .map(|(keys, done)| {
                        json_response(
                            200,
                            &Page {
                                last: keys.last().cloned(),
                                holders: keys.iter().filter_map(|k| Holder::from_key(k)).collect(),
                                done,
                            },
                        )
                    });
                return Ok(result.unwrap_or_else(|e| error_response(&e)));
            }
            (Method::Get, "/apps") => {
                let result = self.keys("app:", None, 10_000).await.map(|(keys, _)| {
                    let ids: Vec<u64> = keys
                        .iter()
                        .filter_map(|k| k.strip_prefix("app:").and_then(|n| n.parse().ok()))
                        .collect();
                    json_response(200, &ids)
                });
                return Ok(result.unwrap_or_else(|e| error_response(&e)));
            }
            _ => {}
        }
        let id = url
            .path()
            .strip_prefix("/apps/")
            .and_then(|s| AppId::parse(s).ok());
        let Some(id) = id else {
            return Ok(error_response(&fail!()));
        };
        let storage = self.state.storage();
        let result = match req.method() {
            Method::Get => match storage
                .get::<DirectoryEntry>(&key(id))
                .await
                .map_err(|e| fail!(e))
            {
                Ok(Some(entry)) => Ok(json_response(200, &entry)),
                Ok(None) => Err(ApiError::AppNotFound(id.get())),
                Err(e) => Err(e),
            },
            Method::Put => match internal::body::<DirectoryEntry>(&mut req).await {
                Ok(entry) => storage
                    .put(&key(id), &entry)
                    .await
                    .map(|_| no_content())
                    .map_err(|e| fail!(e)),
                Err(e) => Err(e),
            },
            Method::Delete => storage
                .delete(&key(id))
                .await
                .map(|_| no_content())
                .map_err(|e| fail!(e)),
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }
}

impl AppDirectory {
    /// Keys under `prefix` after `after` (exclusive), at most `limit`; and whether that was
    /// the last of them.
    async fn keys(
        &self,
        prefix: &str,
        after: Option<String>,
        limit: u32,
    ) -> Result<(Vec<String>, bool), ApiError> {
        let limit = limit.clamp(1, 10_000);
        let start = after.map(|a| format!("{a}\u{0}"));
        let mut options = ListOptions::new().prefix(prefix).limit(limit as usize + 1);
        if let Some(a) = start.as_deref() {
            options = options.start(a);
        }
        let map = self
            .state
            .storage()
            .list_with_options(options)
            .await
            .map_err(|e| fail!(e))?;
        let mut keys = Vec::new();
        map.for_each(&mut |_value, key| {
            if let Some(k) = key.as_string() {
                keys.push(k);
            }
        });
        keys.sort();
        let done = keys.len() <= limit as usize;
        keys.truncate(limit as usize);
        Ok((keys, done))
    }
}

pub struct DirectoryClient {
    stub: crate::objects::internal::ObjectStub,
}

impl DirectoryClient {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::APP_DIRECTORY, OBJECT_NAME)?;
        Ok(Self { stub })
    }

    fn url(id: AppId) -> String {
        format!("https://directory/apps/{id}")
    }

    /// The app's verification material; `None` for an app that is not registered.
    pub async fn get(&self, id: AppId) -> Result<Option<DirectoryEntry>, ApiError> {
        let resp = internal::call::<()>(&self.stub, Method::Get, &Self::url(id), None, &[]).await?;
        match resp.status_code() {
            200 => internal::json(resp).await.map(Some),
            404 => Ok(None),
            _ => Err(internal::relayed(resp).await),
        }
    }

    /// Every registered app.
    pub async fn list(&self) -> Result<Vec<AppId>, ApiError> {
        let resp =
            internal::call::<()>(&self.stub, Method::Get, "https://directory/apps", None, &[])
                .await?;
        let ids: Vec<u64> = internal::json(resp).await?;
        Ok(ids
            .into_iter()
            .filter_map(|n| AppId::from_u64(n).ok())
            .collect())
    }

    pub async fn publish(&self, record: &AppRecord) -> Result<(), ApiError> {
        let entry = DirectoryEntry::of(record);
        let resp = internal::call(
            &self.stub,
            Method::Put,
            &Self::url(record.app_id),
            Some(&entry),
            &[],
        )
        .await?;
        internal::expect_success(resp).await
    }

    pub async fn remove(&self, id: AppId) -> Result<(), ApiError> {
        let resp =
            internal::call::<()>(&self.stub, Method::Delete, &Self::url(id), None, &[]).await?;
        internal::expect_success(resp).await
    }
}
