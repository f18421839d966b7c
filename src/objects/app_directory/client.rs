//! The handle on the app directory's `apps` object (see `ghplane_core::tenancy::directory`).
//!
//! `apps` is one object: the webhook route looks every delivery's app up, so lookups go
//! through a per-isolate cache ([`DirectoryClient::cached`]): an entry, or the fact that an
//! app is not registered, is reused for at most [`DIRECTORY_TTL_MS`]; this isolate's own
//! writes (`publish`, `remove`) drop it at once, and [`DirectoryClient::refreshed`] reads it
//! again when a signature fails (a secret may have been rotated elsewhere).

use std::cell::RefCell;

use ghplane_core::cache::{TtlCache, DIRECTORY_TTL_MS};
use ghplane_core::ids::AppId;
use ghplane_core::tenancy::app::AppRecord;
use ghplane_core::tenancy::directory::{DirectoryCommand, DirectoryEntry};
use ghplane_core::ApiError;
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

const OBJECT_NAME: &str = "apps";
/// A failed signature reads an entry again only if it is at least this old.
const REFRESH_AFTER_MS: i64 = 1_000;

thread_local! {
    static ENTRIES: RefCell<TtlCache<AppId, Option<DirectoryEntry>>> =
        RefCell::new(TtlCache::new(DIRECTORY_TTL_MS));
}

fn forget(app: AppId) {
    ENTRIES.with(|c| c.borrow_mut().forget(&app));
}

pub struct DirectoryClient {
    object: Object,
}

impl DirectoryClient {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::APP_DIRECTORY, OBJECT_NAME)?;
        Ok(Self { object })
    }

    /// The app's verification material; `None` for an app that is not registered.
    pub async fn get(&self, app: AppId) -> Result<Option<DirectoryEntry>, ApiError> {
        self.object.call(&DirectoryCommand::Entry { app }).await
    }

    /// [`Self::get`] through the isolate's cache: at most [`DIRECTORY_TTL_MS`] stale.
    pub async fn cached(
        &self,
        app: AppId,
        now_ms: i64,
    ) -> Result<Option<DirectoryEntry>, ApiError> {
        if let Some(entry) = ENTRIES.with(|c| c.borrow().get(&app, now_ms)) {
            return Ok(entry);
        }
        let entry = self.get(app).await?;
        ENTRIES.with(|c| c.borrow_mut().put(app, entry.clone(), now_ms));
        Ok(entry)
    }

    /// The entry read afresh if the cached one is older than a second (a delivery's
    /// signature failed against it); `None` when it was read too recently to be worth it.
    pub async fn refreshed(
        &self,
        app: AppId,
        now_ms: i64,
    ) -> Result<Option<Option<DirectoryEntry>>, ApiError> {
        let age = ENTRIES.with(|c| c.borrow().age(&app, now_ms));
        if age.is_some_and(|a| (0..REFRESH_AFTER_MS).contains(&a)) {
            return Ok(None);
        }
        forget(app);
        self.cached(app, now_ms).await.map(Some)
    }

    /// Every registered app.
    pub async fn list(&self) -> Result<Vec<AppId>, ApiError> {
        self.object.call(&DirectoryCommand::Apps).await
    }

    /// Registers the app with the webhook secrets of `record`.
    pub async fn publish(&self, record: &AppRecord) -> Result<(), ApiError> {
        let command = DirectoryCommand::Publish {
            app: record.app_id,
            entry: DirectoryEntry::of(record),
        };
        let done = self.object.call(&command).await;
        forget(record.app_id);
        done
    }

    pub async fn remove(&self, app: AppId) -> Result<(), ApiError> {
        let done = self.object.call(&DirectoryCommand::Remove { app }).await;
        forget(app);
        done
    }
}
