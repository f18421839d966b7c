//! The route handlers' (and other objects') handle on one installation's store: the
//! commands it takes and the replies it gives. A leaf: the store's implementation is in the
//! sibling modules, and nothing here reaches into it.

use std::collections::BTreeMap;

use ghplane_core::github::branches::BranchPage;
use ghplane_core::ids::{InstallationId, RepoFullName, RepoId};
use ghplane_core::installer::claims::Affected;
use ghplane_core::installer::InstallerId;
use ghplane_core::lists::deliveries::{DeliveryRow, DeliverySearch};
use ghplane_core::rpc::Command;
use ghplane_core::tenancy::config::{SealedInput, SealedPatch};
use ghplane_core::tenancy::token::{ServiceKey, TokenScope};
use ghplane_core::webhook::delivery::{Delivered, DeliveryPage, DeliveryRequest};
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::Env;

use crate::objects::rpc::Object;
use crate::secrets::ResealReport;
use crate::settings;

/// The sealing slots of the config's secrets (the routes seal them for the store).
pub const PRIVATE_KEY_SLOT: &str = "privateKey";
pub const WEBHOOK_SECRET_SLOT: &str = "webhookSecret";

/// Everything an installation's store does, one variant per operation. No `Debug`: some
/// carry a service key's secret. Externally tagged (`{"variant": {…}}`, serde's default): serde
/// reads the tag first and decodes the arguments in place, where an internally tagged enum
/// buffers the whole command (a delivery's action and all) before decoding it; that
/// buffering was a twentieth of a delivery's CPU in the profile, and its decoder copies a
/// large share of the bundle (docs/performance.md).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationCommand {
    /// The tenant's config, redacted ([`ghplane_core::tenancy::config::InstallationRecord::view`]).
    Config,
    /// Replaces the config (its secrets already sealed): [`Written`].
    PutConfig {
        input: SealedInput,
    },
    /// Changes part of the config: the redacted view.
    PatchConfig {
        patch: SealedPatch,
    },
    /// Drops config, keys, tokens and work (the delivery log stays).
    DeleteConfig,
    /// A new service key: [`NewServiceKey`] (the only time the key is shown).
    CreateServiceKey,
    ServiceKeys,
    DeleteServiceKey {
        key_id: String,
    },
    /// A tenant's workload trades its service key for a token scoped by `request` (the
    /// body of `POST /api/installations/{id}/token`, checked here against the config).
    ServiceToken {
        key_id: String,
        secret: String,
        request: Value,
    },
    /// A token narrowed to `scope`, cached or freshly minted: [`TokenGrant`].
    Token {
        scope: TokenScope,
    },
    /// Drops the cached token for `scope` (GitHub refused it).
    ForgetToken {
        scope: TokenScope,
    },
    /// The repositories the installation's token reaches: [`Repositories`].
    Repositories,
    /// One page of `repo`'s branches, read with the installation's token: [`BranchPage`].
    Branches {
        repo: RepoFullName,
        page: u32,
    },
    /// The config's sealed values under the current key: [`ResealReport`].
    Reseal,
    /// `repo`, if the installation's token reaches it: [`FoundRepository`].
    FindRepository {
        repo: RepoId,
    },
    /// A verified webhook delivery: [`Delivered`].
    Deliver {
        delivery: DeliveryRequest,
    },
    /// A page of the delivery log.
    Deliveries {
        page: DeliveryPage,
    },
    /// The log's rows a page of `GET /api/deliveries` needs: `Vec<DeliveryRow>`.
    SearchDeliveries {
        search: DeliverySearch,
    },
    /// Of these delivery ids, those a redelivery would get processed.
    Unprocessed {
        ids: Vec<String>,
    },
    /// The work items: [`WorkItems`].
    Work,
    /// Replaces what this (org) installation must not serve.
    SetWithheld {
        withheld: Vec<RepoFullName>,
    },
    /// Adds repositories to the config (org-mode enrollment): the redacted view.
    Enroll {
        repositories: Vec<RepoFullName>,
    },
    /// Drops the tenant; with `by`, later deliveries are refused as uninstalled by it.
    Purge {
        by: Option<InstallerId>,
    },
}

impl Command for InstallationCommand {
    /// As the HTTP methods these operations had: reads and set-a-value writes (GET, PUT,
    /// DELETE) may be sent twice; the rest (POST, PATCH) may not.
    fn idempotent(&self) -> bool {
        use InstallationCommand as C;
        match self {
            C::Config
            | C::PutConfig { .. }
            | C::DeleteConfig
            | C::ServiceKeys
            | C::DeleteServiceKey { .. }
            | C::ForgetToken { .. }
            | C::Repositories
            | C::Branches { .. }
            | C::FindRepository { .. }
            | C::Deliveries { .. }
            | C::SearchDeliveries { .. }
            | C::Work => true,
            C::PatchConfig { .. }
            | C::CreateServiceKey
            | C::ServiceToken { .. }
            | C::Token { .. }
            | C::Reseal
            | C::Deliver { .. }
            | C::Unprocessed { .. }
            | C::SetWithheld { .. }
            | C::Enroll { .. }
            | C::Purge { .. } => false,
        }
    }
}

/// The answer to [`InstallationCommand::PutConfig`]: whether the tenant is new, and its view.
#[derive(Serialize, Deserialize)]
pub struct Written {
    pub created: bool,
    pub config: Value,
}

/// A service key as issued. No `Debug`: it holds the key.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewServiceKey {
    pub id: String,
    pub key: String,
    pub created_at: String,
}

/// A service key as listed (never the key).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceKeyView {
    pub id: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceKeyList {
    pub service_keys: Vec<ServiceKeyView>,
}

/// An installation token as the store hands it out. No `Debug`: it holds the token.
#[derive(Serialize, Deserialize)]
pub struct TokenGrant {
    pub token: String,
    pub expires_at: String,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
}

/// A repository the installation's token reaches, as a source stores it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundRepository {
    pub id: u64,
    pub node_id: String,
    pub full_name: String,
}

/// One row of [`Repositories`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReachedRepository {
    pub id: u64,
    pub full_name: String,
    pub private: bool,
}

/// The repositories the installation's token reaches; `incomplete` when GitHub has more than
/// the pages followed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repositories {
    pub repositories: Vec<ReachedRepository>,
    pub total_count: u64,
    pub incomplete: bool,
}

/// One issue handed over as work.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    pub key: String,
    pub issue_id: u64,
    pub number: u64,
    pub repository: String,
    pub title: Option<String>,
    pub label: Option<String>,
    pub delivery: String,
    pub state: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkItems {
    pub work_items: Vec<WorkItem>,
}

/// The handle on one installation's store (`install-<id>`).
pub struct InstallationClient {
    object: Object,
}

impl InstallationClient {
    pub fn new(env: &Env, id: InstallationId) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::INSTALLATIONS, &id.object_name())?;
        Ok(Self { object })
    }

    async fn call<R: serde::de::DeserializeOwned>(
        &self,
        command: InstallationCommand,
    ) -> Result<R, ApiError> {
        self.object.call(&command).await
    }

    /// The tenant's config, redacted.
    pub async fn get(&self) -> Result<Value, ApiError> {
        self.call(InstallationCommand::Config).await
    }

    pub async fn put(&self, input: &SealedInput) -> Result<Written, ApiError> {
        let input = input.clone();
        self.call(InstallationCommand::PutConfig { input }).await
    }

    pub async fn patch(&self, patch: &SealedPatch) -> Result<Value, ApiError> {
        let patch = patch.clone();
        self.call(InstallationCommand::PatchConfig { patch }).await
    }

    pub async fn delete(&self) -> Result<(), ApiError> {
        self.call(InstallationCommand::DeleteConfig).await
    }

    pub async fn reseal(&self) -> Result<ResealReport, ApiError> {
        self.call(InstallationCommand::Reseal).await
    }

    pub async fn create_service_key(&self) -> Result<NewServiceKey, ApiError> {
        self.call(InstallationCommand::CreateServiceKey).await
    }

    pub async fn list_service_keys(&self) -> Result<ServiceKeyList, ApiError> {
        self.call(InstallationCommand::ServiceKeys).await
    }

    pub async fn delete_service_key(&self, key_id: &str) -> Result<(), ApiError> {
        let key_id = key_id.to_owned();
        self.call(InstallationCommand::DeleteServiceKey { key_id })
            .await
    }

    /// Relays a tenant's token request; `request` is checked inside the store, against the
    /// config it holds.
    pub async fn service_token(
        &self,
        key: &ServiceKey<'_>,
        request: &Value,
    ) -> Result<TokenGrant, ApiError> {
        self.call(InstallationCommand::ServiceToken {
            key_id: key.key_id.to_owned(),
            secret: key.secret.to_owned(),
            request: request.clone(),
        })
        .await
    }

    /// A token narrowed to `scope`, from the installation's cache or freshly minted. The
    /// permission check of the tenant's flags applies (so `scope` names its permissions).
    pub async fn token(&self, scope: &TokenScope) -> Result<TokenGrant, ApiError> {
        let scope = scope.clone();
        self.call(InstallationCommand::Token { scope }).await
    }

    /// Drops the cached token for `scope` (GitHub answered 401 with it).
    pub async fn forget_token(&self, scope: &TokenScope) -> Result<(), ApiError> {
        let scope = scope.clone();
        self.call(InstallationCommand::ForgetToken { scope }).await
    }

    pub async fn repositories(&self) -> Result<Repositories, ApiError> {
        self.call(InstallationCommand::Repositories).await
    }

    /// Page `page` of `repo`'s branches (see [`ghplane_core::github::branches`]).
    pub async fn branches(&self, repo: &RepoFullName, page: u32) -> Result<BranchPage, ApiError> {
        let repo = repo.clone();
        self.call(InstallationCommand::Branches { repo, page })
            .await
    }

    /// The repository `repo`, if this installation's token reaches it.
    pub async fn find_repository(&self, repo: RepoId) -> Result<FoundRepository, ApiError> {
        self.call(InstallationCommand::FindRepository { repo })
            .await
    }

    pub async fn deliver(&self, delivery: DeliveryRequest) -> Result<Delivered, ApiError> {
        self.call(InstallationCommand::Deliver { delivery }).await
    }

    pub async fn deliveries(&self, page: &DeliveryPage) -> Result<Value, ApiError> {
        let page = page.clone();
        self.call(InstallationCommand::Deliveries { page }).await
    }

    /// The log's rows matching `search`, newest first.
    pub async fn search_deliveries(
        &self,
        search: &DeliverySearch,
    ) -> Result<Vec<DeliveryRow>, ApiError> {
        let search = search.clone();
        self.call(InstallationCommand::SearchDeliveries { search })
            .await
    }

    /// Of these delivery ids, those a redelivery would get processed here.
    pub async fn unprocessed(&self, ids: &[String]) -> Result<Vec<String>, ApiError> {
        let ids = ids.to_vec();
        self.call(InstallationCommand::Unprocessed { ids }).await
    }

    pub async fn work(&self) -> Result<WorkItems, ApiError> {
        self.call(InstallationCommand::Work).await
    }

    /// Replaces what this (org) installation must not serve; cached tokens are dropped.
    pub async fn set_withheld(&self, withheld: &[RepoFullName]) -> Result<(), ApiError> {
        let withheld = withheld.to_vec();
        self.call(InstallationCommand::SetWithheld { withheld })
            .await
    }

    /// Adds repositories to the tenant's config (org-mode enrollment): the redacted view.
    pub async fn enroll(&self, repos: &[RepoFullName]) -> Result<Value, ApiError> {
        let repositories = repos.to_vec();
        self.call(InstallationCommand::Enroll { repositories })
            .await
    }

    /// Drops config, keys, tokens and work (nothing to drop is fine); with `by`, later
    /// deliveries are refused as uninstalled by that installer.
    pub async fn purge(&self, by: Option<&InstallerId>) -> Result<(), ApiError> {
        let by = by.cloned();
        self.call(InstallationCommand::Purge { by }).await
    }
}

/// Tells org installations what they must now withhold (after a dedicated app went away).
pub async fn push_withheld(env: &Env, affected: &[Affected]) -> Result<(), ApiError> {
    for a in affected {
        InstallationClient::new(env, a.installation_id)?
            .set_withheld(&a.withheld)
            .await?;
    }
    Ok(())
}
