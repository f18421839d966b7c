//! `AppDirectory`: one Durable Object class with two objects (see
//! `ghplane_core::tenancy::directory`): `apps`, which apps exist and what verifies their
//! webhooks, and `sealed-holders`, the registry of objects that hold sealed secrets.
//!
//! Each `AppStore` publishes its entry in `apps` whenever its webhook secrets change; the
//! `AppStore` stays the source of truth. Clients: [`client::DirectoryClient`] (`apps`) and
//! `objects/sealed_registry.rs` (`sealed-holders`).

pub mod client;

use ghplane_core::ids::AppId;
use ghplane_core::tenancy::directory::{
    app_key, app_of_key, DirectoryCommand, DirectoryEntry, Holder, HolderPage, APP_PREFIX,
    HOLDER_PREFIX,
};
use ghplane_core::ApiError;
use worker::{durable_object, Env, ListOptions, Request, Response, State};

use crate::objects::rpc;

/// Listings read at most this many keys at once.
const MAX_KEYS: u32 = 10_000;

#[durable_object]
pub struct AppDirectory {
    state: State,
}

impl worker::DurableObject for AppDirectory {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |_, command| async move {
            match command {
                DirectoryCommand::Entry { app } => rpc::reply(&self.entry(app).await?),
                DirectoryCommand::Publish { app, entry } => {
                    rpc::reply(&self.put(&app_key(app), &entry).await?)
                }
                DirectoryCommand::Remove { app } => rpc::reply(&self.remove(app).await?),
                DirectoryCommand::Apps => rpc::reply(&self.apps().await?),
                DirectoryCommand::Enroll { holder } => {
                    rpc::reply(&self.put(&holder.key(), 1).await?)
                }
                DirectoryCommand::Holders { after, limit } => {
                    rpc::reply(&self.holders(after, limit).await?)
                }
            }
        })
        .await
    }
}

impl AppDirectory {
    async fn entry(&self, app: AppId) -> Result<Option<DirectoryEntry>, ApiError> {
        self.state
            .storage()
            .get(&app_key(app))
            .await
            .map_err(|e| fail!(e))
    }

    async fn put<T: serde::Serialize>(&self, key: &str, value: T) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(key, value)
            .await
            .map_err(|e| fail!(e))
    }

    async fn remove(&self, app: AppId) -> Result<(), ApiError> {
        self.state
            .storage()
            .delete(&app_key(app))
            .await
            .map(|_| ())
            .map_err(|e| fail!(e))
    }

    async fn apps(&self) -> Result<Vec<AppId>, ApiError> {
        let (keys, _) = self.keys(APP_PREFIX, None, MAX_KEYS).await?;
        Ok(keys.iter().filter_map(|k| app_of_key(k)).collect())
    }

    async fn holders(&self, after: Option<String>, limit: u32) -> Result<HolderPage, ApiError> {
        let (keys, done) = self.keys(HOLDER_PREFIX, after, limit).await?;
        Ok(HolderPage {
            last: keys.last().cloned(),
            holders: keys.iter().filter_map(|k| Holder::from_key(k)).collect(),
            done,
        })
    }

    /// Keys under `prefix` after `after` (exclusive), at most `limit`; and whether that was
    /// the last of them.
    async fn keys(
        &self,
        prefix: &str,
        after: Option<String>,
        limit: u32,
    ) -> Result<(Vec<String>, bool), ApiError> {
        let limit = limit.clamp(1, MAX_KEYS);
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
