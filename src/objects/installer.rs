//! `InstallerStore`: one Durable Object per installer, named `installer-<id>`: its target,
//! the outstanding setup state, the app created for it, its installation, and the service
//! key made at enrollment (sealed, until the status shows it once).

use std::cell::Cell;

use futures_util::lock::Mutex;
use ghplane_core::ids::RepoFullName;
use ghplane_core::installer::state::STATE_TTL_SECS;
use ghplane_core::installer::{
    InstallerError, InstallerId, InstallerRecord, PendingState, ServiceKeyHandoff,
};
use ghplane_core::lists::installers::InstallerRow;
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use worker::{durable_object, Env, Request, Response, State};

use crate::clock::now_text;
use crate::github::client::now_unix;
use crate::objects::{installer_index, rpc};
use crate::secrets::Keyring;

pub mod client;

pub use client::{Installed, InstallerClient, InstallerCommand, Viewed};

const RECORD_KEY: &str = "installer";
/// The row this installer last published to the listing (`installer_index`).
const LISTED_KEY: &str = "installer-listing";
const SERVICE_KEY_SLOT: &str = "serviceKey";
/// A setup link is reused while it has at least this long left.
const STATE_REUSE_MIN_SECS: i64 = 10 * 60;

#[durable_object]
pub struct InstallerStore {
    state: State,
    env: Env,
    /// One listing sync at a time.
    listing: Mutex<()>,
    /// Whether the listing row was found up to date since this instance woke.
    listing_synced: Cell<bool>,
}

impl worker::DurableObject for InstallerStore {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            listing: Mutex::new(()),
            listing_synced: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |name, command: InstallerCommand| async move {
            let id = own_id(&name)?;
            let id = &id;
            // Reads leave the row as it is; anything else may change it. Also once per wake:
            // an installer made before the listing existed, or whose last publication failed,
            // is listed the next time it serves.
            let may_change_row = !matches!(
                command,
                InstallerCommand::Get | InstallerCommand::View | InstallerCommand::State
            );
            let result = self.run(id, command).await;
            if may_change_row || !self.listing_synced.get() {
                self.sync_listing(id).await;
            }
            result
        })
        .await
    }
}

impl InstallerStore {
    /// Runs one command; the reply serialized for [`rpc::serve`].
    async fn run(&self, id: &InstallerId, command: InstallerCommand) -> Result<Vec<u8>, ApiError> {
        match command {
            InstallerCommand::Create { record } => {
                self.save(&record).await?;
                rpc::reply(&record)
            }
            InstallerCommand::Get => rpc::reply(&self.existing(id).await?),
            InstallerCommand::State => rpc::reply(&self.issue_state(id).await?),
            InstallerCommand::Consume { nonce } => rpc::reply(&self.consume(id, &nonce).await?),
            InstallerCommand::SetApp { app } => rpc::reply(
                &self
                    .update(id, |r| {
                        r.app = Some(app);
                    })
                    .await?,
            ),
            InstallerCommand::Installed(i) => rpc::reply(&self.installed(id, i).await?),
            InstallerCommand::Enrolled { repositories } => {
                rpc::reply(&self.update(id, |r| enroll(r, repositories)).await?)
            }
            InstallerCommand::Uninstalled => {
                let now = now_text();
                rpc::reply(&self.update(id, |r| uninstall(r, now)).await?)
            }
            InstallerCommand::View => rpc::reply(&self.view(id).await?),
        }
    }

    /// Publishes this installer's listing row if it changed since it was last published. A
    /// failure is logged, never fails the request, and is retried on the next request.
    async fn sync_listing(&self, id: &InstallerId) {
        let _one_at_a_time = self.listing.lock().await;
        let outcome = self.publish_row().await;
        self.listing_synced.set(outcome.is_ok());
        if let Err(e) = outcome {
            crate::log::event(
                "warn",
                "installer listing sync failed",
                serde_json::json!({"installer": id.as_str(), "errorCode": e.code()}),
            );
        }
    }

    async fn publish_row(&self) -> Result<(), ApiError> {
        let Some(current) = self.load().await?.map(|r| InstallerRow::of(&r)) else {
            return Ok(());
        };
        let storage = self.state.storage();
        let listed: Option<InstallerRow> = storage.get(LISTED_KEY).await.map_err(|e| fail!(e))?;
        if listed.as_ref() == Some(&current) {
            return Ok(());
        }
        installer_index::publish(&self.env, &current).await?;
        storage
            .put(LISTED_KEY, &current)
            .await
            .map_err(|e| fail!(e))
    }
}

/// The installer an object holds, from its name (`InstallerId::object_name`).
fn own_id(name: &str) -> Result<InstallerId, ApiError> {
    name.rsplit('-')
        .next()
        .and_then(|s| InstallerId::parse(s).ok())
        .filter(|id| id.object_name() == name)
        .ok_or_else(|| fail!("not an installer object name"))
}

fn enroll(r: &mut InstallerRecord, repositories: Vec<RepoFullName>) {
    for repo in repositories {
        if !r
            .enrolled
            .iter()
            .any(|e| ghplane_core::installer::same_name(e, &repo))
        {
            r.enrolled.push(repo);
        }
    }
}

fn uninstall(r: &mut InstallerRecord, now: String) {
    if r.uninstalled_at.is_none() {
        r.uninstalled_at = Some(now);
    }
    r.state = None;
    if let Some(k) = r.service_key.as_mut() {
        k.sealed = None;
    }
}

impl InstallerStore {
    async fn load(&self) -> Result<Option<InstallerRecord>, ApiError> {
        self.state
            .storage()
            .get(RECORD_KEY)
            .await
            .map_err(|e| fail!(e))
    }

    async fn existing(&self, id: &InstallerId) -> Result<InstallerRecord, ApiError> {
        self.load()
            .await?
            .ok_or_else(|| InstallerError::NotFound(id.to_string()).into())
    }

    async fn save(&self, r: &InstallerRecord) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(RECORD_KEY, r)
            .await
            .map_err(|e| fail!(e))
    }

    async fn update(
        &self,
        id: &InstallerId,
        change: impl FnOnce(&mut InstallerRecord),
    ) -> Result<InstallerRecord, ApiError> {
        let mut r = self.existing(id).await?;
        change(&mut r);
        r.updated_at = now_text();
        self.save(&r).await?;
        Ok(r)
    }

    /// The outstanding setup state, or a fresh one when there is none or it is about to
    /// expire. Only an installer still waiting for its app has one.
    async fn issue_state(&self, id: &InstallerId) -> Result<PendingState, ApiError> {
        let mut r = self.existing(id).await?;
        let now = now_unix();
        if let Some(s) = r
            .state
            .as_ref()
            .filter(|s| s.expires_at - now >= STATE_REUSE_MIN_SECS)
        {
            return Ok(s.clone());
        }
        let nonce: String = random_bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let state = PendingState {
            nonce,
            expires_at: now + STATE_TTL_SECS,
        };
        r.state = Some(state.clone());
        self.save(&r).await?;
        Ok(state)
    }

    /// Single use: the nonce must be the outstanding one; it is forgotten before anything
    /// else happens, so a replayed callback finds nothing to consume.
    async fn consume(&self, id: &InstallerId, nonce: &str) -> Result<InstallerRecord, ApiError> {
        let mut r = self.existing(id).await?;
        if r.uninstalled_at.is_some() {
            return Err(InstallerError::Uninstalled(id.to_string()).into());
        }
        let outstanding = r.state.as_ref().is_some_and(|s| {
            ghplane_core::auth::constant_time_eq(s.nonce.as_bytes(), nonce.as_bytes())
                && now_unix() < s.expires_at
        });
        if !outstanding {
            return Err(InstallerError::InvalidState(
                "it was already used; open the setup page again".into(),
            )
            .into());
        }
        r.state = None;
        r.updated_at = now_text();
        self.save(&r).await?;
        Ok(r)
    }

    async fn installed(&self, id: &InstallerId, i: Installed) -> Result<InstallerRecord, ApiError> {
        let mut r = self.existing(id).await?;
        r.installation_id = Some(i.installation_id);
        r.misconfiguration = i.misconfiguration;
        if let (None, Some((key_id, key))) = (&r.service_key, i.service_key) {
            let ring = Keyring::from_env(&self.env).await?;
            let sealed = ring.seal(&id.object_name(), SERVICE_KEY_SLOT, &key).await?;
            r.service_key = Some(ServiceKeyHandoff {
                id: key_id,
                sealed: Some(sealed),
            });
        }
        r.updated_at = now_text();
        self.save(&r).await?;
        Ok(r)
    }

    /// The record, and the enrollment's service key the first time only.
    async fn view(&self, id: &InstallerId) -> Result<Viewed, ApiError> {
        let mut r = self.existing(id).await?;
        let mut shown = None;
        if let Some(sealed) = r.service_key.as_ref().and_then(|k| k.sealed.clone()) {
            let ring = Keyring::from_env(&self.env).await?;
            let key = ring
                .open(&id.object_name(), SERVICE_KEY_SLOT, &sealed)
                .await?;
            shown = Some(key.expose().to_owned());
            if let Some(k) = r.service_key.as_mut() {
                k.sealed = None;
            }
            self.save(&r).await?;
        }
        Ok(Viewed {
            record: r,
            service_key: shown,
        })
    }
}

/// Deletes an uninstalled installer's app from the registry: its credentials go, and its
/// deliveries are refused from now on (the owner deletes the app itself on GitHub).
pub async fn forget_app(env: &Env, app: ghplane_core::ids::AppId) -> Result<(), ApiError> {
    match crate::objects::app_store::client::AppClient::new(env, app)?
        .delete()
        .await
    {
        Ok(()) | Err(ApiError::AppNotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
