//! The handle on the `ProjectIndex` class, a class of listings: the projects' listing
//! (`projects-index`), the tenant listing's shards (`tenants-index-<n>`, called by
//! `tenant_index`) and the installers' listing (`installers-index`, called by
//! `installer_index`). One command enum covers every use. A leaf: it imports no other object.
//!
//! The projects' listing is one object: `GET /api/projects` reads it through a per-isolate
//! cache ([`IndexClient::list_cached`], at most [`PROJECT_INDEX_TTL_MS`] stale; this isolate's
//! own `upsert` drops it at once). Sweeps that must see every row (reseal) read it directly.

use std::cell::RefCell;

use ghplane_core::cache::{TtlCache, PROJECT_INDEX_TTL_MS};
use ghplane_core::ids::InstallationId;
use ghplane_core::lists::installers::InstallerRow;
use ghplane_core::projects::INDEX_OBJECT_NAME;
use ghplane_core::rpc::Command;
use ghplane_core::tenancy::listing::TenantRow;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

/// Every operation of a `ProjectIndex` object.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectIndexCommand {
    /// A project's summary row (kept unless the stored one is newer). Reply: `()`.
    Upsert { row: Value },
    /// Reply: every project row, newest project first.
    Entries,
    /// A tenant's row, replacing what the shard held. Reply: `()`.
    PutTenant { row: TenantRow },
    /// Drops a tenant's row (nothing to drop is fine). Reply: `()`.
    DeleteTenant { id: InstallationId },
    /// Reply: up to `limit` (1 to 1000) tenant rows with an id above `after`, in id order.
    TenantRows {
        after: Option<InstallationId>,
        limit: usize,
    },
    /// An installer's row, replacing what the index held under its key. Reply: `()`.
    PutInstaller { row: InstallerRow },
    /// Reply: up to `limit` (1 to 1000) installer rows whose key sorts before `before`,
    /// newest first.
    InstallerRows {
        before: Option<String>,
        limit: usize,
    },
}

impl Command for ProjectIndexCommand {
    fn idempotent(&self) -> bool {
        // Reads, and writes that set (or drop) one row.
        true
    }
}

thread_local! {
    static LISTING: RefCell<TtlCache<(), Vec<Value>>> =
        RefCell::new(TtlCache::new(PROJECT_INDEX_TTL_MS));
}

/// The route handlers' (and project stores') handle on the projects' listing.
pub struct IndexClient {
    object: Object,
}

impl IndexClient {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::PROJECT_INDEX, INDEX_OBJECT_NAME)?;
        Ok(Self { object })
    }

    pub async fn upsert(&self, row: &Value) -> Result<(), ApiError> {
        let row = row.clone();
        let done = self.object.call(&ProjectIndexCommand::Upsert { row }).await;
        LISTING.with(|c| c.borrow_mut().forget(&()));
        done
    }

    /// Every project's summary row, newest project first.
    pub async fn list(&self) -> Result<Vec<Value>, ApiError> {
        self.object.call(&ProjectIndexCommand::Entries).await
    }

    /// [`Self::list`] through the isolate's cache: at most [`PROJECT_INDEX_TTL_MS`] stale.
    pub async fn list_cached(&self, now_ms: i64) -> Result<Vec<Value>, ApiError> {
        if let Some(rows) = LISTING.with(|c| c.borrow().get(&(), now_ms)) {
            return Ok(rows);
        }
        let rows = self.list().await?;
        LISTING.with(|c| c.borrow_mut().put((), rows.clone(), now_ms));
        Ok(rows)
    }
}
