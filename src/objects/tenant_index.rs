//! The tenant listing's index: [`SHARDS`] objects of the `ProjectIndex` class (a class of
//! listings), named `tenants-index-<n>`, each one row per tenant whose id is `n` modulo
//! [`SHARDS`], under `t:<zero-padded id>` so that key order is id order.
//!
//! Only the tenants' own objects write here (`InstallationStore::sync_listing`), and only when
//! a tenant's row changed: an admin config write or delete, or an installation lifecycle
//! webhook. Ordinary deliveries never reach it. The tenant's object is the truth; a row it
//! could not publish is published again the next time that object serves a request.

use ghplane_core::ids::InstallationId;
use ghplane_core::tenancy::listing::{
    merge, row_key, shard_object_name, shard_of, PageQuery, TenantRow, ROW_PREFIX, SHARDS,
};
use ghplane_core::ApiError;
use serde_json::{json, Value};
use wasm_bindgen::JsCast;
use worker::{Env, ListOptions, Method, Request, Response};

use crate::http::{error_response, json_response, no_content};
use crate::objects::internal;
use crate::objects::project::ProjectIndex;
use crate::settings;

impl ProjectIndex {
    /// `PUT|DELETE|GET /tenants` on a shard.
    pub(super) async fn tenants(&self, req: &mut Request) -> worker::Result<Response> {
        let url = req.url()?;
        let q = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        let storage = self.state.storage();
        let result = match req.method() {
            Method::Put => match internal::body::<TenantRow>(req).await {
                Ok(row) => storage
                    .put(
                        &row_key(row.id),
                        serde_json::to_string(&row).unwrap_or_default(),
                    )
                    .await
                    .map(|_| no_content())
                    .map_err(|e| fail!(e)),
                Err(e) => Err(e),
            },
            Method::Delete => match q("id").and_then(|v| InstallationId::parse(&v).ok()) {
                Some(id) => storage
                    .delete(&row_key(id))
                    .await
                    .map(|_| no_content())
                    .map_err(|e| fail!(e)),
                None => Err(fail!()),
            },
            Method::Get => {
                let after = q("after").and_then(|v| InstallationId::parse(&v).ok());
                let limit = q("limit")
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(1)
                    .clamp(1, 1000);
                self.tenant_rows(after, limit)
                    .await
                    .map(|rows| json_response(200, &rows))
            }
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
    }

    /// Up to `limit` rows with an id above `after`, in id order.
    async fn tenant_rows(
        &self,
        after: Option<InstallationId>,
        limit: usize,
    ) -> Result<Vec<TenantRow>, ApiError> {
        // Just past the cursor's key; without one, the first row.
        let start = after.map_or_else(|| ROW_PREFIX.to_owned(), |a| format!("{}\u{0}", row_key(a)));
        let map = self
            .state
            .storage()
            .list_with_options(
                ListOptions::new()
                    .prefix(ROW_PREFIX)
                    .start(&start)
                    .limit(limit),
            )
            .await
            .map_err(|e| fail!(e))?;
        let mut rows = Vec::with_capacity(map.size() as usize);
        map.for_each(&mut |value, _key| {
            if let Some(row) = value
                .dyn_ref::<js_sys::JsString>()
                .and_then(|s| serde_json::from_str::<TenantRow>(&String::from(s)).ok())
            {
                rows.push(row);
            }
        });
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }
}

fn shard_stub(env: &Env, shard: u64) -> Result<internal::ObjectStub, ApiError> {
    internal::stub(env, settings::PROJECT_INDEX, &shard_object_name(shard))
}

/// Publishes a tenant's row (replacing what its shard held).
pub async fn publish(env: &Env, row: &TenantRow) -> Result<(), ApiError> {
    let resp = internal::call(
        &shard_stub(env, shard_of(row.id))?,
        Method::Put,
        "https://tenants-index/tenants",
        Some(row),
        &[],
    )
    .await?;
    internal::expect_success(resp).await
}

/// Drops a tenant's row (nothing to drop is fine).
pub async fn withdraw(env: &Env, id: InstallationId) -> Result<(), ApiError> {
    let url = format!("https://tenants-index/tenants?id={id}");
    let resp = internal::call::<()>(
        &shard_stub(env, shard_of(id))?,
        Method::Delete,
        &url,
        None,
        &[],
    )
    .await?;
    internal::expect_success(resp).await
}

/// One page of the listing: every shard's next `limit + 1` rows, merged.
pub async fn page(env: &Env, query: &PageQuery) -> Result<Value, ApiError> {
    let mut url = format!("https://tenants-index/tenants?limit={}", query.limit + 1);
    if let Some(after) = query.after {
        url.push_str(&format!("&after={after}"));
    }
    let calls = (0..SHARDS).map(|shard| {
        let url = url.clone();
        async move {
            let resp = internal::call::<()>(&shard_stub(env, shard)?, Method::Get, &url, None, &[])
                .await?;
            internal::json::<Vec<TenantRow>>(resp).await
        }
    });
    let answers = futures_util::future::try_join_all(calls).await?;
    let (rows, next) = merge(answers, query.limit);
    Ok(json!({"installations": rows, "nextCursor": next}))
}
