//! `InstallationStore`: one Durable Object per GitHub App installation, named
//! `install-<installation id>`: that tenant's config, its service keys (hashes only), its
//! installation tokens (sealed), its delivery log and work items, the guard of what it must
//! not serve, and its part in push to deploy.
//!
//! This file is the class: its state, and one `match` from [`InstallationCommand`] to the
//! concern that runs it: `config.rs` (the tenant's config), `tokens.rs` (service keys and
//! installation tokens), `events.rs` (webhook deliveries and work items), `claims.rs` (the
//! owner's claims and the guard), `deploy.rs` (repositories and push routing), `listing.rs`
//! (the tenant listing row). `client.rs` is how everything else talks to it.

pub mod client;

mod claims;
mod config;
mod deploy;
mod events;
mod listing;
mod tokens;

pub(crate) use crate::clock::{now_ms, now_text};
use futures_util::lock::Mutex;
use ghplane_core::ids::InstallationId;
use ghplane_core::tenancy::config::InstallationRecord;
use ghplane_core::ApiError;
use serde_json::json;
use worker::{durable_object, Env, Request, Response, State};

use client::InstallationCommand;
pub use client::{push_withheld, InstallationClient, PRIVATE_KEY_SLOT, WEBHOOK_SECRET_SLOT};

use crate::objects::rpc;
use crate::objects::sealed_registry;

const CONFIG_KEY: &str = "config";
const SERVICE_KEYS_KEY: &str = "service-keys";
/// All cached tokens of the installation, by scope: one value, pruned on every write.
const TOKENS_KEY: &str = "tokens";

#[durable_object]
pub struct InstallationStore {
    state: State,
    env: Env,
    /// One token mint at a time (`tokens.rs`).
    mint: Mutex<()>,
    /// Whether this instance already saw to its enrolment in the sealed-secrets registry.
    enrolled: std::cell::Cell<bool>,
    /// One tenant-listing sync at a time (`listing.rs`).
    listing: Mutex<()>,
    /// Whether the listing row was found up to date since this instance woke.
    listing_synced: std::cell::Cell<bool>,
    /// Whether this instance created (or found) the delivery log's tables, the work items'
    /// table, and the trim alarm: each is set up once per wake, not on every delivery.
    log_ready: std::cell::Cell<bool>,
    work_ready: std::cell::Cell<bool>,
    trim_armed: std::cell::Cell<bool>,
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
            log_ready: std::cell::Cell::new(false),
            work_ready: std::cell::Cell::new(false),
            trim_armed: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |name, command| async move {
            let id = InstallationId::from_object_name(&name).map_err(|e| fail!(e))?;
            self.enroll_once(id).await;
            let changes_row = changes_listing(&command);
            let result = self.run(id, command).await;
            // Also once per wake: a tenant written before the listing existed, or whose
            // last publication failed, is listed (or withdrawn) the next time it serves.
            if changes_row || self.listing_unchecked() {
                self.sync_listing(id).await;
            }
            result
        })
        .await
    }

    async fn alarm(&self) -> worker::Result<Response> {
        // The alarm fired: re-armed by the trim below, or by the next delivery if it fails.
        self.trim_armed.set(false);
        if let Err(e) = self.trim().await {
            crate::log::event("error", "trim failed", json!({"errorCode": e.code()}));
        }
        Response::ok("")
    }
}

/// The commands that can change the tenant's listing row outside a delivery (a delivery's
/// lifecycle change syncs in `events.rs`).
fn changes_listing(command: &InstallationCommand) -> bool {
    use InstallationCommand as C;
    matches!(
        command,
        C::PutConfig { .. }
            | C::PatchConfig { .. }
            | C::DeleteConfig
            | C::Enroll { .. }
            | C::Purge { .. }
    )
}

impl InstallationStore {
    /// Runs one command; the reply serialized for [`rpc::serve`].
    async fn run(
        &self,
        id: InstallationId,
        command: InstallationCommand,
    ) -> Result<Vec<u8>, ApiError> {
        use InstallationCommand as C;
        match command {
            C::Config => rpc::reply(&self.existing(id).await?.view()),
            C::PutConfig { input } => rpc::reply(&self.put(id, input).await?),
            C::PatchConfig { patch } => rpc::reply(&self.patch(id, patch).await?),
            C::DeleteConfig => rpc::reply(&self.delete(id).await?),
            C::Reseal => rpc::reply(&self.reseal(id).await?),
            C::Enroll { repositories } => rpc::reply(&self.enroll(id, repositories).await?),
            C::Purge { by } => rpc::reply(&self.purge_uninstalled(by).await?),
            C::CreateServiceKey => rpc::reply(&self.issue_service_key(id).await?),
            C::ServiceKeys => rpc::reply(&self.list_service_keys(id).await?),
            C::DeleteServiceKey { key_id } => {
                rpc::reply(&self.delete_service_key(id, &key_id).await?)
            }
            C::ServiceToken {
                key_id,
                secret,
                request,
            } => rpc::reply(&self.service_token(id, &key_id, &secret, &request).await?),
            C::Token { scope } => rpc::reply(&tokens::grant(self.token(id, &scope).await?)),
            // A token GitHub refused: the next request mints a fresh one.
            C::ForgetToken { scope } => rpc::reply(&self.forget_token(&scope).await?),
            C::Repositories => rpc::reply(&self.repositories(id).await?),
            C::Branches { repo, page } => rpc::reply(&self.branches(id, &repo, page).await?),
            C::FindRepository { repo } => rpc::reply(&self.find_repository(id, repo).await?),
            C::Deliver { delivery } => rpc::reply(&self.deliver(id, delivery).await?),
            C::Deliveries { page } => rpc::reply(&self.list_deliveries(&page)?),
            C::SearchDeliveries { search } => rpc::reply(&self.deliveries()?.search(id, &search)?),
            C::Unprocessed { ids } => rpc::reply(&self.deliveries()?.unprocessed(&ids, now_ms())?),
            C::Work => rpc::reply(&self.list_work()?),
            C::SetWithheld { withheld } => rpc::reply(&self.set_withheld(withheld).await?),
        }
    }

    /// Enrols this tenant in the sealed-secrets registry once per wake, when it holds a
    /// config (so a key rotation finds it).
    async fn enroll_once(&self, id: InstallationId) {
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
    }

    async fn load(&self) -> Result<Option<InstallationRecord>, ApiError> {
        self.state
            .storage()
            .get(CONFIG_KEY)
            .await
            .map_err(|e| fail!(e))
    }

    async fn existing(&self, id: InstallationId) -> Result<InstallationRecord, ApiError> {
        self.load()
            .await?
            .ok_or(ApiError::InstallationNotFound(id.get()))
    }
}
