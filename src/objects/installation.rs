//! `InstallationStore`: one Durable Object per GitHub App installation, named
//! `install-<installation id>`: that tenant's config, its service keys (hashes only) and its
//! installation tokens (sealed).
//!
//! The object receives already-sealed config secrets and hands back only the redacted view.
//! Tokens are minted here, one at a time: concurrent requests wait for the mint in flight and
//! then find its token in the cache, so a burst costs GitHub one call.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::lock::Mutex;
use ghplane_core::github::error::GithubError;
use ghplane_core::github::pages::Pager;
use ghplane_core::ids::{InstallationId, RepoId};
use ghplane_core::sealed::Sealed;
use ghplane_core::tenancy::config::{InstallationRecord, SealedInput, SealedPatch};
use ghplane_core::tenancy::token::{
    check_allowed, hash_secret, parse_token_request, AccessTokenResponse, CachedToken, ServiceKey,
    StoredServiceKey, TokenScope,
};
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{durable_object, Delay, Env, Method, Request, Response, State};

use crate::github::app_jwt;
use crate::github::client::{
    is_jwt_clock_error, now_unix, GithubClient, GithubResponse, Idempotent,
};
use crate::http::{error_response, json_response, no_content};
use crate::objects::app_store::client::AppClient;
use crate::objects::deliveries::DeliveryRequest;
use crate::objects::installation_deploy::FoundRepository;
use crate::objects::internal::{self, now_text};
use crate::objects::sealed_registry;
use crate::secrets::{Keyring, ResealReport};
use crate::settings;

pub(crate) const CONFIG_KEY: &str = "config";
pub(crate) const SERVICE_KEYS_KEY: &str = "service-keys";
/// All cached tokens of the installation, by scope: one value, pruned on every write.
pub(crate) const TOKENS_KEY: &str = "tokens";
const TOKEN_SLOT: &str = "installationToken";
pub const PRIVATE_KEY_SLOT: &str = "privateKey";
pub const WEBHOOK_SECRET_SLOT: &str = "webhookSecret";
const MAX_SERVICE_KEYS: usize = 20;
/// Pages of `GET /installation/repositories` followed at most (100 repositories each).
const MAX_REPOSITORY_PAGES: u32 = 10;
const KEY_ID_HEADER: &str = "x-ghplane-key-id";
const KEY_SECRET_HEADER: &str = "x-ghplane-key-secret";

#[durable_object]
pub struct InstallationStore {
    pub(crate) state: State,
    pub(crate) env: Env,
    mint: Mutex<()>,
    /// Whether this instance already saw to its enrolment in the sealed-secrets registry.
    enrolled: std::cell::Cell<bool>,
    /// One tenant-listing sync at a time (`installation_listing.rs`).
    pub(crate) listing: Mutex<()>,
    /// Whether the listing row was found up to date since this instance woke.
    pub(crate) listing_synced: std::cell::Cell<bool>,
}

impl worker::DurableObject for InstallationStore {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            mint: Mutex::new(()),
            enrolled: std::cell::Cell::new(false),
            listing: Mutex::new(()),
            listing_synced: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let id = url
            .query_pairs()
            .find(|(k, _)| k == "id")
            .and_then(|(_, v)| InstallationId::parse(&v).ok());
        let Some(id) = id else {
            return Ok(error_response(&fail!()));
        };
        if !self.enrolled.replace(true) {
            let holds = matches!(self.load().await, Ok(Some(_)));
            sealed_registry::enroll_self(
                &self.state,
                &self.env,
                "installation",
                &id.to_string(),
                holds,
            )
            .await;
        }
        let path = url.path().to_owned();
        // The requests that can change the tenant's listing row outside a delivery (a
        // delivery's lifecycle change syncs in `installation_events.rs`).
        let changes_row = matches!(
            (req.method(), path.as_str()),
            (Method::Put | Method::Patch | Method::Delete, "/config")
                | (Method::Post, "/enroll" | "/purge")
        );
        let result = match (req.method(), path.as_str()) {
            (Method::Get, "/config") => self
                .existing(id)
                .await
                .map(|r| json_response(200, &r.view())),
            (Method::Put, "/config") => match internal::body(&mut req).await {
                Ok(input) => self.put(id, input).await,
                Err(e) => Err(e),
            },
            (Method::Patch, "/config") => match internal::body(&mut req).await {
                Ok(patch) => self.patch(id, patch).await,
                Err(e) => Err(e),
            },
            (Method::Delete, "/config") => self.delete(id).await,
            (Method::Post, "/service-keys") => self.create_service_key(id).await,
            (Method::Get, "/service-keys") => self.list_service_keys(id).await,
            (Method::Delete, p) if p.starts_with("/service-keys/") => {
                self.delete_service_key(id, &p["/service-keys/".len()..])
                    .await
            }
            (Method::Post, "/service-token") => self.service_token(id, &mut req).await,
            (Method::Post, "/token") => match internal::body::<TokenScope>(&mut req).await {
                Ok(scope) => self
                    .token(id, &scope)
                    .await
                    .map(|t| json_response(200, &token_view(&t))),
                Err(e) => Err(e),
            },
            // A token GitHub refused: the next request mints a fresh one.
            (Method::Delete, "/token") => match internal::body::<TokenScope>(&mut req).await {
                Ok(scope) => self.forget_token(&scope).await.map(|()| no_content()),
                Err(e) => Err(e),
            },
            (Method::Get, "/repositories") => self.repositories(id).await,
            (Method::Post, "/reseal") => self.reseal(id).await.map(|r| json_response(200, &r)),
            (Method::Get, "/repository") => {
                let repo = url
                    .query_pairs()
                    .find(|(k, _)| k == "repo")
                    .and_then(|(_, v)| RepoId::parse(&v).ok());
                match repo {
                    Some(repo) => self
                        .find_repository(id, repo)
                        .await
                        .map(|r| json_response(200, &r)),
                    None => Err(fail!()),
                }
            }
            (Method::Post, "/deliveries") => {
                match internal::body::<DeliveryRequest>(&mut req).await {
                    Ok(d) => self.deliver(id, d).await,
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
                self.deliveries()
                    .and_then(|log| log.list(limit, q("cursor").as_deref()))
                    .map(|v| json_response(200, &v))
            }
            (Method::Post, "/deliveries/unprocessed") => {
                match internal::body::<Vec<String>>(&mut req).await {
                    Ok(ids) => self
                        .deliveries()
                        .and_then(|log| log.unprocessed(&ids, internal::now_ms()))
                        .map(|v| json_response(200, &v)),
                    Err(e) => Err(e),
                }
            }
            (Method::Get, "/work") => self.list_work(),
            (Method::Post, "/withheld") => match internal::body(&mut req).await {
                Ok(w) => self.set_withheld(w).await.map(|_| no_content()),
                Err(e) => Err(e),
            },
            (Method::Post, "/enroll") => match internal::body(&mut req).await {
                Ok(repos) => self.enroll(id, repos).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/purge") => {
                match internal::body::<Option<ghplane_core::installer::InstallerId>>(&mut req).await
                {
                    Ok(by) => self.purge_uninstalled(by).await.map(|_| no_content()),
                    Err(e) => Err(e),
                }
            }
            _ => Err(fail!()),
        };
        // Also once per wake: a tenant written before the listing existed, or whose last
        // publication failed, is listed (or withdrawn) the next time it serves anything.
        if changes_row || self.listing_unchecked() {
            self.sync_listing(id).await;
        }
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.trim().await {
            crate::log::event("error", "trim failed", json!({"errorCode": e.code()}));
        }
        Response::ok("")
    }
}

/// An installation token as the object hands it out. No `Debug`: it holds the token.
#[derive(Deserialize)]
pub struct TokenGrant {
    pub token: String,
    pub expires_at: String,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
}

fn token_view(t: &CachedToken<String>) -> Value {
    json!({"token": t.token, "expires_at": t.expires_at, "repositories": t.repositories, "permissions": t.permissions})
}

impl InstallationStore {
    pub(crate) async fn load(&self) -> Result<Option<InstallationRecord>, ApiError> {
        self.state
            .storage()
            .get(CONFIG_KEY)
            .await
            .map_err(|e| fail!(e))
    }

    /// The config's sealed values under the current key; cached installation tokens are
    /// dropped instead (they are minted again on demand).
    async fn reseal(&self, id: InstallationId) -> Result<ResealReport, ApiError> {
        let mut report = ResealReport::default();
        let storage = self.state.storage();
        storage.delete(TOKENS_KEY).await.map_err(|e| fail!(e))?;
        let Some(mut record) = self.load().await? else {
            return Ok(report);
        };
        let ring = Keyring::from_env(&self.env).await?;
        let object = id.object_name();
        let mut changed = false;
        let mut slots = Vec::new();
        if let Some(k) = record.private_key.as_mut() {
            slots.push((PRIVATE_KEY_SLOT, &mut k.sealed));
        }
        if let Some(w) = record.webhook_secret.as_mut() {
            slots.push((WEBHOOK_SECRET_SLOT, &mut w.sealed));
        }
        for (slot, value) in slots {
            let outcome = ring.reseal(&object, slot, value).await;
            changed |= report.apply(&object, slot, outcome, value);
        }
        if changed {
            storage
                .put(CONFIG_KEY, &record)
                .await
                .map_err(|e| fail!(e))?;
        }
        Ok(report)
    }

    async fn existing(&self, id: InstallationId) -> Result<InstallationRecord, ApiError> {
        self.load()
            .await?
            .ok_or(ApiError::InstallationNotFound(id.get()))
    }

    async fn put(&self, id: InstallationId, input: SealedInput) -> Result<Response, ApiError> {
        let previous = self.load().await?;
        let record = InstallationRecord::replace(id, input, previous.as_ref(), &now_text());
        self.state
            .storage()
            .put(CONFIG_KEY, &record)
            .await
            .map_err(|e| fail!(e))?;
        Ok(json_response(
            if previous.is_some() { 200 } else { 201 },
            &record.view(),
        ))
    }

    async fn patch(&self, id: InstallationId, patch: SealedPatch) -> Result<Response, ApiError> {
        let record = self.existing(id).await?.patched(patch, &now_text());
        self.state
            .storage()
            .put(CONFIG_KEY, &record)
            .await
            .map_err(|e| fail!(e))?;
        Ok(json_response(200, &record.view()))
    }

    /// Deleting a tenant drops its config, keys, tokens and work (the delivery log stays).
    async fn delete(&self, id: InstallationId) -> Result<Response, ApiError> {
        self.existing(id).await?;
        self.purge().await?;
        Ok(no_content())
    }

    pub(crate) async fn service_keys(&self) -> Result<Vec<StoredServiceKey>, ApiError> {
        Ok(self
            .state
            .storage()
            .get(SERVICE_KEYS_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default())
    }

    async fn create_service_key(&self, id: InstallationId) -> Result<Response, ApiError> {
        let (key_id, key, created_at) = self.issue_service_key(id).await?;
        Ok(json_response(
            201,
            &json!({"id": key_id, "key": key, "createdAt": created_at}),
        ))
    }

    /// A new service key of this tenant: its id, the key (never stored) and when.
    pub(crate) async fn issue_service_key(
        &self,
        id: InstallationId,
    ) -> Result<(String, String, String), ApiError> {
        self.existing(id).await?;
        let mut keys = self.service_keys().await?;
        if keys.len() >= MAX_SERVICE_KEYS {
            return Err(ApiError::Validation(format!(
                "an installation holds at most {MAX_SERVICE_KEYS} service keys; revoke one first"
            )));
        }
        let key_id: String = random_bytes::<4>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (key, secret) = ServiceKey::generate(id, &key_id, &random_bytes::<32>());
        let stored = StoredServiceKey {
            id: key_id,
            hash: hash_secret(&secret),
            created_at: now_text(),
        };
        keys.push(stored.clone());
        self.state
            .storage()
            .put(SERVICE_KEYS_KEY, &keys)
            .await
            .map_err(|e| fail!(e))?;
        Ok((stored.id, key, stored.created_at))
    }

    async fn list_service_keys(&self, id: InstallationId) -> Result<Response, ApiError> {
        self.existing(id).await?;
        let keys: Vec<Value> = self
            .service_keys()
            .await?
            .iter()
            .map(|k| json!({"id": k.id, "createdAt": k.created_at}))
            .collect();
        Ok(json_response(200, &json!({"serviceKeys": keys})))
    }

    async fn delete_service_key(
        &self,
        id: InstallationId,
        key_id: &str,
    ) -> Result<Response, ApiError> {
        self.existing(id).await?;
        let mut keys = self.service_keys().await?;
        let before = keys.len();
        keys.retain(|k| k.id != key_id);
        if keys.len() == before {
            return Err(ApiError::ServiceKeyNotFound);
        }
        self.state
            .storage()
            .put(SERVICE_KEYS_KEY, &keys)
            .await
            .map_err(|e| fail!(e))?;
        Ok(no_content())
    }

    async fn service_token(
        &self,
        id: InstallationId,
        req: &mut Request,
    ) -> Result<Response, ApiError> {
        let header = |n: &str| req.headers().get(n).ok().flatten().unwrap_or_default();
        let (key_id, secret) = (header(KEY_ID_HEADER), header(KEY_SECRET_HEADER));
        let presented = ServiceKey {
            installation_id: id,
            key_id: &key_id,
            secret: &secret,
        };
        let keys = self.service_keys().await?;
        if !keys
            .iter()
            .any(|k| k.id == key_id && presented.matches(&k.hash))
        {
            return Err(ApiError::Unauthorized);
        }
        let body = req.bytes().await.map_err(|e| fail!(e))?;
        let scope = parse_token_request(&body, &self.existing(id).await?)?;
        let token = self.token(id, &scope).await?;
        Ok(json_response(200, &token_view(&token)))
    }

    /// A token for `scope`: the cached one while it has more than five minutes left,
    /// otherwise a new one from GitHub. One mint at a time per installation.
    pub(crate) async fn token(
        &self,
        id: InstallationId,
        scope: &TokenScope,
    ) -> Result<CachedToken<String>, ApiError> {
        let _one_at_a_time = self.mint.lock().await;
        let config = self.existing(id).await?;
        if config.suspended {
            return Err(ApiError::InstallationSuspended(id.get()));
        }
        check_allowed(scope, &config)?;
        self.guard().await?.check_token(id, scope)?;
        let ring = Keyring::from_env(&self.env).await?;
        let object = id.object_name();
        let cache_key = scope.cache_key();
        let mut cache = self.tokens().await?;
        if let Some(c) = cache.get(&cache_key).filter(|c| c.fresh(now_unix())) {
            let token = ring.open(&object, TOKEN_SLOT, &c.token).await?;
            return Ok(c.clone().with_token(token.expose().to_owned()));
        }
        let minted = self.mint_token(id, &config, scope).await?;
        let sealed = ring.seal(&object, TOKEN_SLOT, &minted.token).await?;
        let now = now_unix();
        cache.retain(|_, c| c.fresh(now));
        cache.insert(cache_key, minted.clone().with_token(sealed));
        self.state
            .storage()
            .put(TOKENS_KEY, &cache)
            .await
            .map_err(|e| fail!(e))?;
        Ok(minted)
    }

    async fn mint_token(
        &self,
        id: InstallationId,
        config: &InstallationRecord,
        scope: &TokenScope,
    ) -> Result<CachedToken<String>, ApiError> {
        let github = GithubClient::from_env(&self.env)?;
        let path = format!("/app/installations/{id}/access_tokens");
        let body = scope.request_body();
        let jwt = self.app_jwt(id, config, None).await?;
        let resp = match github
            .send(Method::Post, &path, &jwt, Some(&body), Idempotent::Yes)
            .await
        {
            // GitHub judged our clock wrong: sign once more with GitHub's own.
            Err(e) if is_jwt_clock_error(&e) && github.server_time().is_some() => {
                let jwt = self.app_jwt(id, config, github.server_time()).await?;
                github
                    .send(Method::Post, &path, &jwt, Some(&body), Idempotent::Yes)
                    .await
            }
            other => other,
        }?;
        resp.json::<AccessTokenResponse>()?
            .into_cached()
            .ok_or_else(|| {
                GithubError::MalformedResponse("expires_at is not a timestamp".into()).into()
            })
    }

    /// The App JWT for this installation: signed here when the tenant carries its own key
    /// (the hybrid model), otherwise by its app's object.
    async fn app_jwt(
        &self,
        id: InstallationId,
        config: &InstallationRecord,
        now: Option<i64>,
    ) -> Result<String, ApiError> {
        match &config.private_key {
            Some(key) => {
                let ring = Keyring::from_env(&self.env).await?;
                let pem = ring
                    .open(&id.object_name(), PRIVATE_KEY_SLOT, &key.sealed)
                    .await?;
                let fingerprint = key.fingerprint.clone().unwrap_or_else(|| id.object_name());
                let signing = app_jwt::signing_key(&fingerprint, &pem).await?;
                let (jwt, _) = app_jwt::sign(
                    &signing,
                    &config.app_id.to_string(),
                    now.unwrap_or_else(now_unix),
                )
                .await?;
                Ok(jwt)
            }
            None => AppClient::new(&self.env, config.app_id)?.jwt(now).await,
        }
    }

    async fn tokens(&self) -> Result<BTreeMap<String, CachedToken<Sealed>>, ApiError> {
        Ok(self
            .state
            .storage()
            .get(TOKENS_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default())
    }

    pub(crate) async fn forget_token(&self, scope: &TokenScope) -> Result<(), ApiError> {
        let mut cache = self.tokens().await?;
        if cache.remove(&scope.cache_key()).is_some() {
            self.state
                .storage()
                .put(TOKENS_KEY, &cache)
                .await
                .map_err(|e| fail!(e))?;
        }
        Ok(())
    }

    /// GETs `path` with the installation's token for `scope`. A 401 means a token GitHub
    /// does not know yet (just minted) or any more: retried once with a fresh one.
    pub(crate) async fn get_as_installation(
        &self,
        id: InstallationId,
        scope: &TokenScope,
        github: &GithubClient,
        path: &str,
    ) -> Result<GithubResponse, ApiError> {
        let token = self.token(id, scope).await?;
        match github
            .send(Method::Get, path, &token.token, None, Idempotent::Yes)
            .await
        {
            Err(GithubError::Unauthorized { .. }) => {
                self.forget_token(scope).await?;
                Delay::from(Duration::from_millis(500)).await;
                let token = self.token(id, scope).await?;
                Ok(github
                    .send(Method::Get, path, &token.token, None, Idempotent::Yes)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    /// The repositories this installation's token reaches (`GET /installation/repositories`).
    async fn repositories(&self, id: InstallationId) -> Result<Response, ApiError> {
        #[derive(Deserialize)]
        struct Page {
            total_count: u64,
            repositories: Vec<Repo>,
        }
        #[derive(Deserialize)]
        struct Repo {
            id: u64,
            full_name: String,
            private: bool,
        }
        let scope = TokenScope {
            repositories: vec![],
            permissions: [("metadata".to_owned(), "read".to_owned())].into(),
        };
        let github = GithubClient::from_env(&self.env)?;
        let mut rows = Vec::new();
        let mut total = 0;
        let mut pager = Pager::new(
            "/installation/repositories?per_page=100",
            MAX_REPOSITORY_PAGES,
        );
        while let Some(path) = pager.next_path().map(str::to_owned) {
            let resp = self.get_as_installation(id, &scope, &github, &path).await?;
            let page: Page = resp.json()?;
            total = page.total_count;
            rows.extend(
                page.repositories
                    .into_iter()
                    .map(|r| json!({"id": r.id, "fullName": r.full_name, "private": r.private})),
            );
            pager.advance(resp.link.as_deref(), github.api_base());
        }
        let incomplete = (rows.len() as u64) < total;
        Ok(json_response(
            200,
            &json!({"repositories": rows, "totalCount": total, "incomplete": incomplete}),
        ))
    }
}

/// The route handlers' handle on one installation's object.
pub struct InstallationClient {
    stub: crate::objects::internal::ObjectStub,
    id: InstallationId,
}

impl InstallationClient {
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
        let url = format!("https://installation/deliveries?id={}&{query}", self.id);
        internal::call::<()>(&self.stub, Method::Get, &url, None, &[]).await
    }

    /// Of these delivery ids, those a redelivery would get processed here.
    pub async fn unprocessed(&self, ids: &[String]) -> Result<Vec<String>, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            &self.url("deliveries/unprocessed"),
            Some(&ids),
            &[],
        )
        .await?;
        internal::json(resp).await
    }

    pub async fn work(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Get, &self.url("work"), None, &[]).await
    }

    pub fn new(env: &Env, id: InstallationId) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::INSTALLATIONS, &id.object_name())?;
        Ok(Self { stub, id })
    }

    fn url(&self, op: &str) -> String {
        format!("https://installation/{op}?id={}", self.id)
    }

    pub async fn get(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Get, &self.url("config"), None, &[]).await
    }

    pub async fn reseal(&self) -> Result<crate::secrets::ResealReport, ApiError> {
        let resp =
            internal::call::<()>(&self.stub, Method::Post, &self.url("reseal"), None, &[]).await?;
        internal::json(resp).await
    }

    pub async fn put(&self, input: &SealedInput) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Put,
            &self.url("config"),
            Some(input),
            &[],
        )
        .await
    }

    pub async fn patch(&self, patch: &SealedPatch) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Patch,
            &self.url("config"),
            Some(patch),
            &[],
        )
        .await
    }

    pub async fn delete(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Delete, &self.url("config"), None, &[]).await
    }

    pub async fn create_service_key(&self) -> Result<Response, ApiError> {
        internal::call::<()>(
            &self.stub,
            Method::Post,
            &self.url("service-keys"),
            None,
            &[],
        )
        .await
    }

    pub async fn list_service_keys(&self) -> Result<Response, ApiError> {
        internal::call::<()>(
            &self.stub,
            Method::Get,
            &self.url("service-keys"),
            None,
            &[],
        )
        .await
    }

    pub async fn delete_service_key(&self, key_id: &str) -> Result<Response, ApiError> {
        let url = format!("https://installation/service-keys/{key_id}?id={}", self.id);
        internal::call::<()>(&self.stub, Method::Delete, &url, None, &[]).await
    }

    /// Relays a tenant's token request; the body is checked inside the object, against the
    /// config it holds.
    pub async fn service_token(
        &self,
        key: &ServiceKey<'_>,
        body: &Value,
    ) -> Result<Response, ApiError> {
        let headers = [(KEY_ID_HEADER, key.key_id), (KEY_SECRET_HEADER, key.secret)];
        internal::call(
            &self.stub,
            Method::Post,
            &self.url("service-token"),
            Some(body),
            &headers,
        )
        .await
    }

    /// A token narrowed to `scope`, from the installation's cache or freshly minted. The
    /// permission check of the tenant's flags applies (so `scope` names its permissions).
    pub async fn token(&self, scope: &TokenScope) -> Result<TokenGrant, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            &self.url("token"),
            Some(scope),
            &[],
        )
        .await?;
        internal::json(resp).await
    }

    /// The repository `repo`, if this installation's token reaches it.
    pub async fn find_repository(&self, repo: RepoId) -> Result<FoundRepository, ApiError> {
        let url = format!("https://installation/repository?id={}&repo={repo}", self.id);
        let resp = internal::call::<()>(&self.stub, Method::Get, &url, None, &[]).await?;
        internal::json(resp).await
    }

    /// Drops the cached token for `scope` (GitHub answered 401 with it).
    pub async fn forget_token(&self, scope: &TokenScope) -> Result<(), ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Delete,
            &self.url("token"),
            Some(scope),
            &[],
        )
        .await?;
        if (200..300).contains(&resp.status_code()) {
            Ok(())
        } else {
            Err(internal::relayed(resp).await)
        }
    }

    /// Replaces what this (org) installation must not serve; cached tokens are dropped.
    pub async fn set_withheld(
        &self,
        withheld: &[ghplane_core::ids::RepoFullName],
    ) -> Result<(), ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            &self.url("withheld"),
            Some(&withheld),
            &[],
        )
        .await?;
        internal::expect_success(resp).await
    }

    /// Adds repositories to the tenant's config (org-mode enrollment).
    pub async fn enroll(
        &self,
        repos: &[ghplane_core::ids::RepoFullName],
    ) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Post,
            &self.url("enroll"),
            Some(&repos),
            &[],
        )
        .await
    }

    /// Drops config, keys, tokens and work (nothing to drop is fine); with `by`, later
    /// deliveries are refused as uninstalled by that installer.
    pub async fn purge(
        &self,
        by: Option<&ghplane_core::installer::InstallerId>,
    ) -> Result<(), ApiError> {
        let resp =
            internal::call(&self.stub, Method::Post, &self.url("purge"), Some(&by), &[]).await?;
        internal::expect_success(resp).await
    }

    pub async fn repositories(&self) -> Result<Response, ApiError> {
        internal::call::<()>(
            &self.stub,
            Method::Get,
            &self.url("repositories"),
            None,
            &[],
        )
        .await
    }
}
