//! `MintKeys`: one Durable Object per OIDC issuer, named `oidc:<issuer>`, holding the
//! issuer's signing keys for the token mint.
//!
//! **Invariant:** every key fetch for an issuer goes through its one object, and within it
//! through one lock, so concurrent requests for an unknown `kid` cause one refresh
//! (single flight) and a random `kid` causes at most one refresh per 30 s. The key set, its
//! fetch time, the discovered `jwks_uri` and the last unknown-`kid` time live in storage, so
//! a restarted object neither refetches early nor forgets a throttle. What to do when is
//! decided by `ghplane_core::mint::oidc` ([`key_action`], [`after_refresh`],
//! [`after_failed_refresh`]).

use std::cell::RefCell;

use futures_util::lock::Mutex;
use ghplane_core::mint::oidc::{
    after_failed_refresh, after_refresh, check_discovery, discovery_url, key_action, parse_jwks,
    AuthError, KeyAction, MAX_JWKS_RESPONSE_BYTES,
};
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{durable_object, Env, Fetch, Request, Response, State};

use crate::github::client::now_unix;
use crate::objects::rpc;

pub mod client;

pub use client::{KeyAnswer, MintKeysClient, MintKeysCommand};

const KEYS_KEY: &str = "keys";

/// The issuer's keys as last fetched.
#[derive(Clone, Default, Serialize, Deserialize)]
struct StoredKeys {
    /// From the discovery document, fetched once and kept while the key set answers.
    jwks_uri: Option<String>,
    /// Unix seconds; `None`: never fetched.
    fetched_at: Option<i64>,
    /// When a refresh last came back without the `kid` asked for.
    unknown_kid_at: Option<i64>,
    /// `kid` → the JWK Web Crypto imports.
    keys: Vec<(String, Value)>,
}

impl StoredKeys {
    fn get(&self, kid: &str) -> Option<&Value> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, v)| v)
    }
}

#[durable_object]
pub struct MintKeys {
    state: State,
    cache: RefCell<Option<StoredKeys>>,
    refresh: Mutex<()>,
}

impl worker::DurableObject for MintKeys {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            cache: RefCell::new(None),
            refresh: Mutex::new(()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |name, command: MintKeysCommand| async move {
            let issuer = client::issuer_of(&name).ok_or_else(|| fail!())?;
            match command {
                MintKeysCommand::Key { kid } => rpc::reply(&self.key(issuer, &kid).await?),
            }
        })
        .await
    }
}

impl MintKeys {
    async fn load(&self) -> Result<StoredKeys, ApiError> {
        if let Some(c) = self.cache.borrow().as_ref() {
            return Ok(c.clone());
        }
        let stored: StoredKeys = self
            .state
            .storage()
            .get(KEYS_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default();
        self.cache.replace(Some(stored.clone()));
        Ok(stored)
    }

    async fn save(&self, keys: StoredKeys) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(KEYS_KEY, &keys)
            .await
            .map_err(|e| fail!(e))?;
        self.cache.replace(Some(keys));
        Ok(())
    }

    fn answer(keys: &StoredKeys, kid: &str) -> KeyAnswer {
        KeyAnswer {
            jwk: keys.get(kid).cloned(),
            fetched_at: keys.fetched_at,
            unknown_kid: false,
            reason: None,
        }
    }

    fn refused(reason: AuthError) -> KeyAnswer {
        KeyAnswer {
            jwk: None,
            fetched_at: None,
            unknown_kid: matches!(reason, AuthError::UnknownKid(_)),
            reason: Some(reason.to_string()),
        }
    }

    async fn key(&self, issuer: &str, kid: &str) -> Result<KeyAnswer, ApiError> {
        let now = now_unix();
        let keys = self.load().await?;
        let decide =
            |k: &StoredKeys| key_action(now, k.get(kid).is_some(), k.fetched_at, k.unknown_kid_at);
        match decide(&keys) {
            KeyAction::UseCached => return Ok(Self::answer(&keys, kid)),
            KeyAction::RejectUnknownKid => {
                return Ok(Self::refused(AuthError::UnknownKid(kid.to_owned())))
            }
            KeyAction::Refresh => {}
        }
        let _single_flight = self.refresh.lock().await;
        // Whoever held the lock may have refreshed already.
        let mut keys = self.load().await?;
        match decide(&keys) {
            KeyAction::UseCached => return Ok(Self::answer(&keys, kid)),
            KeyAction::RejectUnknownKid => {
                return Ok(Self::refused(AuthError::UnknownKid(kid.to_owned())))
            }
            KeyAction::Refresh => {}
        }
        match fetch_keys(issuer, keys.jwks_uri.as_deref()).await {
            Ok((jwks_uri, set)) => {
                keys.jwks_uri = Some(jwks_uri);
                keys.fetched_at = Some(now);
                keys.keys = set
                    .kids()
                    .filter_map(|k| set.get(k).map(|j| (k.to_owned(), j.to_jwk_json())))
                    .collect();
                let found = after_refresh(&set, kid).map(|_| ());
                if found.is_err() {
                    keys.unknown_kid_at = Some(now);
                }
                self.save(keys.clone()).await?;
                Ok(match found {
                    Ok(()) => Self::answer(&keys, kid),
                    Err(e) => Self::refused(e),
                })
            }
            Err(why) => {
                crate::log::event(
                    "warn",
                    "oidc key refresh failed",
                    serde_json::json!({"issuer": ghplane_core::ids::truncate(issuer, 120), "reason": ghplane_core::ids::truncate(&why, 200)}),
                );
                if keys.jwks_uri.is_some() {
                    // The next refresh starts again from discovery.
                    keys.jwks_uri = None;
                    self.save(keys.clone()).await?;
                }
                if after_failed_refresh(now, keys.get(kid).is_some(), keys.fetched_at) {
                    Ok(Self::answer(&keys, kid))
                } else {
                    Ok(Self::refused(AuthError::KeysUnavailable(why)))
                }
            }
        }
    }
}

/// Discovery (unless its `jwks_uri` is known) and the key set.
async fn fetch_keys(
    issuer: &str,
    known_uri: Option<&str>,
) -> Result<(String, ghplane_core::mint::oidc::JwkSet), String> {
    let jwks_uri = match known_uri {
        Some(u) => u.to_owned(),
        None => {
            let body = get(&discovery_url(issuer)).await?;
            check_discovery(&body, issuer).map_err(|e| e.to_string())?
        }
    };
    let body = get(&jwks_uri).await?;
    let set = parse_jwks(&body).map_err(|e| e.to_string())?;
    Ok((jwks_uri, set))
}

async fn get(url: &str) -> Result<Vec<u8>, String> {
    // A GET, the default.
    let mut init = worker::RequestInit::new();
    let headers = worker::Headers::new();
    let _ = headers.set("accept", "application/json");
    init.with_headers(headers);
    let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    let resp = Fetch::Request(req)
        .send()
        .await
        .map_err(|e| format!("fetching {}: {e}", ghplane_core::ids::truncate(url, 200)))?;
    let status = resp.status_code();
    let mut body = crate::http::body_bytes(resp)
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "{} returned status {status}",
            ghplane_core::ids::truncate(url, 200)
        ));
    }
    body.truncate(MAX_JWKS_RESPONSE_BYTES);
    Ok(body)
}
