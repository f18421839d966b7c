//! `ProjectIndex`, a class of listings. `projects-index`: one summary row per project under
//! `p:<slug>`, each the project's summary as JSON text; a row is only replaced by one at
//! least as recent, so updates that arrive out of order never roll it back. The tenant
//! listing's shards (`tenants-index-<n>`, see `tenant_index`) are objects of this class too:
//! one row per tenant under `t:<zero-padded id>`, so that key order is id order. So is the
//! installers' listing (`installers-index`, see `installer_index`): one row per installer
//! under `i:<created at>|<id>`, so that key order is age order.

pub mod client;

use futures_util::lock::Mutex;
use ghplane_core::ids::InstallationId;
use ghplane_core::lists::installers::{self, InstallerRow};
use ghplane_core::projects::ProjectSlug;
use ghplane_core::tenancy::listing::{row_key, TenantRow, ROW_PREFIX};
use ghplane_core::ApiError;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasm_bindgen::JsCast;
use worker::{durable_object, Env, ListOptions, Request, Response, State};

use crate::objects::rpc;
use client::ProjectIndexCommand;

const INDEX_PREFIX: &str = "p:";

#[durable_object]
pub struct ProjectIndex {
    state: State,
    lock: Mutex<()>,
}

impl worker::DurableObject for ProjectIndex {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            lock: Mutex::new(()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |_, command| async move {
            match command {
                ProjectIndexCommand::Upsert { row } => rpc::reply(&self.upsert(row).await?),
                ProjectIndexCommand::Entries => rpc::reply(&self.entries().await?),
                ProjectIndexCommand::PutTenant { row } => rpc::reply(&self.put_tenant(&row).await?),
                ProjectIndexCommand::DeleteTenant { id } => {
                    rpc::reply(&self.delete_tenant(id).await?)
                }
                ProjectIndexCommand::TenantRows { after, limit } => {
                    rpc::reply(&self.tenant_rows(after, limit.clamp(1, 1000)).await?)
                }
                ProjectIndexCommand::PutInstaller { row } => {
                    rpc::reply(&self.put_row(&row.key(), &row).await?)
                }
                ProjectIndexCommand::InstallerRows { before, limit } => {
                    rpc::reply(&self.installer_rows(before, limit.clamp(1, 1000)).await?)
                }
            }
        })
        .await
    }
}

fn text_field<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_default()
}

impl ProjectIndex {
    async fn upsert(&self, row: Value) -> Result<(), ApiError> {
        let slug = ProjectSlug::parse(text_field(&row, "slug")).map_err(|e| fail!(e))?;
        let key = format!("{INDEX_PREFIX}{slug}");
        let _one_at_a_time = self.lock.lock().await;
        let stored: Option<String> = self.state.storage().get(&key).await.map_err(|e| fail!(e))?;
        let newer = stored
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|old| text_field(&old, "updatedAt") > text_field(&row, "updatedAt"));
        if newer {
            return Ok(());
        }
        self.state
            .storage()
            .put(&key, row.to_string())
            .await
            .map_err(|e| fail!(e))
    }

    /// Every project row, newest project first.
    async fn entries(&self) -> Result<Vec<Value>, ApiError> {
        let mut rows: Vec<Value> = self.rows(ListOptions::new().prefix(INDEX_PREFIX)).await?;
        rows.sort_by(|a, b| {
            text_field(b, "createdAt")
                .cmp(text_field(a, "createdAt"))
                .then_with(|| text_field(a, "slug").cmp(text_field(b, "slug")))
        });
        Ok(rows)
    }

    async fn put_tenant(&self, row: &TenantRow) -> Result<(), ApiError> {
        self.put_row(&row_key(row.id), row).await
    }

    /// Stores `row` as JSON text under `key`.
    async fn put_row<T: serde::Serialize>(&self, key: &str, row: &T) -> Result<(), ApiError> {
        let text = serde_json::to_string(row).map_err(|e| fail!(e))?;
        self.state
            .storage()
            .put(key, text)
            .await
            .map_err(|e| fail!(e))
    }

    /// Up to `limit` installer rows whose key sorts before `before`, newest first.
    async fn installer_rows(
        &self,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<InstallerRow>, ApiError> {
        let mut options = ListOptions::new()
            .prefix(installers::ROW_PREFIX)
            .reverse(true)
            .limit(limit);
        if let Some(b) = before.as_deref() {
            options = options.end(b);
        }
        let mut rows: Vec<InstallerRow> = self.rows(options).await?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.key()));
        Ok(rows)
    }

    async fn delete_tenant(&self, id: InstallationId) -> Result<(), ApiError> {
        self.state
            .storage()
            .delete(&row_key(id))
            .await
            .map(|_| ())
            .map_err(|e| fail!(e))
    }

    /// Up to `limit` tenant rows with an id above `after`, in id order.
    async fn tenant_rows(
        &self,
        after: Option<InstallationId>,
        limit: usize,
    ) -> Result<Vec<TenantRow>, ApiError> {
        // Just past the cursor's key; without one, the first row.
        let start = after.map_or_else(|| ROW_PREFIX.to_owned(), |a| format!("{}\u{0}", row_key(a)));
        let options = ListOptions::new()
            .prefix(ROW_PREFIX)
            .start(&start)
            .limit(limit);
        let mut rows: Vec<TenantRow> = self.rows(options).await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// The rows `options` select, each stored as JSON text (unreadable ones are skipped).
    async fn rows<T: DeserializeOwned>(
        &self,
        options: ListOptions<'_>,
    ) -> Result<Vec<T>, ApiError> {
        let map = self
            .state
            .storage()
            .list_with_options(options)
            .await
            .map_err(|e| fail!(e))?;
        let mut rows = Vec::with_capacity(map.size() as usize);
        map.for_each(&mut |value, _key| {
            if let Some(row) = value
                .dyn_ref::<js_sys::JsString>()
                .and_then(|s| serde_json::from_str(&String::from(s)).ok())
            {
                rows.push(row);
            }
        });
        Ok(rows)
    }
}
