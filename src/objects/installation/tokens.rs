//! The tenant's credentials: its service keys (only their hashes are stored) and its
//! installation tokens, minted here one at a time and cached sealed, so concurrent requests
//! wait for the mint in flight and then find its token in the cache (a burst costs GitHub one
//! call).

use std::collections::BTreeMap;
use std::time::Duration;

use ghplane_core::github::branches::{self, BranchPage};
use ghplane_core::github::error::GithubError;
use ghplane_core::github::pages::Pager;
use ghplane_core::ids::{InstallationId, RepoFullName};
use ghplane_core::sealed::Sealed;
use ghplane_core::tenancy::config::InstallationRecord;
use ghplane_core::tenancy::token::{
    check_allowed, hash_secret, parse_token_request, AccessTokenResponse, CachedToken, ServiceKey,
    StoredServiceKey, TokenScope,
};
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde::Deserialize;
use serde_json::Value;
use worker::{Delay, Method};

use super::client::{
    NewServiceKey, ReachedRepository, Repositories, ServiceKeyList, ServiceKeyView, TokenGrant,
    PRIVATE_KEY_SLOT,
};
use super::{now_text, InstallationStore, SERVICE_KEYS_KEY, TOKENS_KEY};
use crate::github::app_jwt;
use crate::github::client::{
    is_jwt_clock_error, now_unix, GithubClient, GithubResponse, Idempotent,
};
use crate::objects::app_store::client::AppClient;
use crate::secrets::Keyring;

const TOKEN_SLOT: &str = "installationToken";
const MAX_SERVICE_KEYS: usize = 20;
/// Pages of `GET /installation/repositories` followed at most (100 repositories each).
const MAX_REPOSITORY_PAGES: u32 = 10;

/// A minted or cached token as the store hands it out.
pub(super) fn grant(t: CachedToken<String>) -> TokenGrant {
    TokenGrant {
        token: t.token,
        expires_at: t.expires_at,
        repositories: t.repositories,
        permissions: t.permissions,
    }
}

/// Read access to the metadata of every repository the installation reaches.
fn metadata_scope() -> TokenScope {
    TokenScope {
        repositories: vec![],
        permissions: [("metadata".to_owned(), "read".to_owned())].into(),
    }
}

/// One page of `GET /installation/repositories`.
#[derive(Deserialize)]
pub(super) struct RepositoryPage {
    pub total_count: u64,
    pub repositories: Vec<ListedRepository>,
}

#[derive(Deserialize)]
pub(super) struct ListedRepository {
    pub id: u64,
    pub node_id: String,
    pub full_name: String,
    pub private: bool,
}

impl InstallationStore {
    pub(super) async fn service_keys(&self) -> Result<Vec<StoredServiceKey>, ApiError> {
        Ok(self
            .state
            .storage()
            .get(SERVICE_KEYS_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default())
    }

    async fn save_service_keys(&self, keys: &[StoredServiceKey]) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(SERVICE_KEYS_KEY, keys)
            .await
            .map_err(|e| fail!(e))
    }

    /// A new service key of this tenant: its id, the key (never stored) and when.
    pub(super) async fn issue_service_key(
        &self,
        id: InstallationId,
    ) -> Result<NewServiceKey, ApiError> {
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
        self.save_service_keys(&keys).await?;
        Ok(NewServiceKey {
            id: stored.id,
            key,
            created_at: stored.created_at,
        })
    }

    pub(super) async fn list_service_keys(
        &self,
        id: InstallationId,
    ) -> Result<ServiceKeyList, ApiError> {
        self.existing(id).await?;
        let service_keys = self
            .service_keys()
            .await?
            .into_iter()
            .map(|k| ServiceKeyView {
                id: k.id,
                created_at: k.created_at,
            })
            .collect();
        Ok(ServiceKeyList { service_keys })
    }

    pub(super) async fn delete_service_key(
        &self,
        id: InstallationId,
        key_id: &str,
    ) -> Result<(), ApiError> {
        self.existing(id).await?;
        let mut keys = self.service_keys().await?;
        let before = keys.len();
        keys.retain(|k| k.id != key_id);
        if keys.len() == before {
            return Err(ApiError::ServiceKeyNotFound);
        }
        self.save_service_keys(&keys).await
    }

    /// A tenant's token request, authorized by one of its service keys and checked against
    /// its config.
    pub(super) async fn service_token(
        &self,
        id: InstallationId,
        key_id: &str,
        secret: &str,
        request: &Value,
    ) -> Result<TokenGrant, ApiError> {
        let presented = ServiceKey {
            installation_id: id,
            key_id,
            secret,
        };
        let keys = self.service_keys().await?;
        if !keys
            .iter()
            .any(|k| k.id == key_id && presented.matches(&k.hash))
        {
            return Err(ApiError::Unauthorized);
        }
        let body = serde_json::to_vec(request).map_err(|e| fail!(e))?;
        let scope = parse_token_request(&body, &self.existing(id).await?)?;
        Ok(grant(self.token(id, &scope).await?))
    }

    /// A token for `scope`: the cached one while it has more than five minutes left,
    /// otherwise a new one from GitHub. One mint at a time per installation.
    pub(super) async fn token(
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
        // GitHub's REST method, not the object protocol.
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

    pub(super) async fn forget_token(&self, scope: &TokenScope) -> Result<(), ApiError> {
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
    async fn get_as_installation(
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

    /// Page `page` of `repo`'s branches, read with a metadata token for every repository
    /// the installation reaches (private ones included).
    pub(super) async fn branches(
        &self,
        id: InstallationId,
        repo: &RepoFullName,
        page: u32,
    ) -> Result<BranchPage, ApiError> {
        let github = GithubClient::from_env(&self.env)?;
        let resp = self
            .get_as_installation(id, &metadata_scope(), &github, &branches::path(repo, page))
            .await?;
        branches::from_github(&resp.body, resp.link.as_deref())
            .map_err(|e| GithubError::MalformedResponse(e.to_string()).into())
    }

    /// Walks the pages of repositories this installation's token reaches (at most
    /// `MAX_REPOSITORY_PAGES`), until `visit` returns a value.
    pub(super) async fn scan_repositories<T>(
        &self,
        id: InstallationId,
        mut visit: impl FnMut(RepositoryPage) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        let scope = metadata_scope();
        let github = GithubClient::from_env(&self.env)?;
        let mut pager = Pager::new(
            "/installation/repositories?per_page=100",
            MAX_REPOSITORY_PAGES,
        );
        while let Some(path) = pager.next_path().map(str::to_owned) {
            let resp = self.get_as_installation(id, &scope, &github, &path).await?;
            if let Some(found) = visit(resp.json()?) {
                return Ok(Some(found));
            }
            pager.advance(resp.link.as_deref(), github.api_base());
        }
        Ok(None)
    }

    /// The repositories this installation's token reaches.
    pub(super) async fn repositories(&self, id: InstallationId) -> Result<Repositories, ApiError> {
        let mut repositories = Vec::new();
        let mut total_count = 0;
        self.scan_repositories(id, |page| {
            total_count = page.total_count;
            repositories.extend(page.repositories.into_iter().map(|r| ReachedRepository {
                id: r.id,
                full_name: r.full_name,
                private: r.private,
            }));
            None::<()>
        })
        .await?;
        let incomplete = (repositories.len() as u64) < total_count;
        Ok(Repositories {
            repositories,
            total_count,
            incomplete,
        })
    }
}
