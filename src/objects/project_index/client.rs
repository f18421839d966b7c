//! The handle on the `ProjectIndex` class, a class of listings: the projects' listing
//! (`projects-index`) and the tenant listing's shards (`tenants-index-<n>`, called by
//! `tenant_index`). One command enum covers both uses. A leaf: it imports no other object.

use ghplane_core::ids::InstallationId;
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
}

impl Command for ProjectIndexCommand {
    fn idempotent(&self) -> bool {
        // Reads, and writes that set (or drop) one row.
        true
    }
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
        self.object.call(&ProjectIndexCommand::Upsert { row }).await
    }

    /// Every project's summary row, newest project first.
    pub async fn list(&self) -> Result<Vec<Value>, ApiError> {
        self.object.call(&ProjectIndexCommand::Entries).await
    }
}
