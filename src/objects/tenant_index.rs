//! The tenant listing's index: [`SHARDS`] objects of the `ProjectIndex` class (a class of
//! listings, `project_index`), named `tenants-index-<n>`, each one row per tenant whose id is
//! `n` modulo [`SHARDS`].
//!
//! Only the tenants' own objects write here (`InstallationStore::sync_listing`), and only when
//! a tenant's row changed: an admin config write or delete, or an installation lifecycle
//! webhook. Ordinary deliveries never reach it. The tenant's object is the truth; a row it
//! could not publish is published again the next time that object serves a request.

use ghplane_core::ids::InstallationId;
use ghplane_core::tenancy::listing::{
    merge, shard_object_name, shard_of, PageQuery, TenantRow, SHARDS,
};
use ghplane_core::ApiError;
use serde_json::{json, Value};
use worker::Env;

use crate::objects::project_index::client::ProjectIndexCommand;
use crate::objects::rpc::Object;
use crate::settings;

fn shard(env: &Env, shard: u64) -> Result<Object, ApiError> {
    Object::new(env, settings::PROJECT_INDEX, &shard_object_name(shard))
}

/// Publishes a tenant's row (replacing what its shard held).
pub async fn publish(env: &Env, row: &TenantRow) -> Result<(), ApiError> {
    let row = row.clone();
    shard(env, shard_of(row.id))?
        .call(&ProjectIndexCommand::PutTenant { row })
        .await
}

/// Drops a tenant's row (nothing to drop is fine).
pub async fn withdraw(env: &Env, id: InstallationId) -> Result<(), ApiError> {
    shard(env, shard_of(id))?
        .call(&ProjectIndexCommand::DeleteTenant { id })
        .await
}

/// Every shard's first `limit` rows with an id above `after`, in id order.
async fn shard_rows(
    env: &Env,
    after: Option<InstallationId>,
    limit: usize,
) -> Result<Vec<Vec<TenantRow>>, ApiError> {
    let command = ProjectIndexCommand::TenantRows { after, limit };
    let calls = (0..SHARDS).map(|n| {
        let command = &command;
        async move { shard(env, n)?.call::<_, Vec<TenantRow>>(command).await }
    });
    futures_util::future::try_join_all(calls).await
}

/// One page of the listing: every shard's next `limit + 1` rows, merged.
pub async fn page(env: &Env, query: &PageQuery) -> Result<Value, ApiError> {
    let answers = shard_rows(env, query.after, query.limit + 1).await?;
    let (rows, next) = merge(answers, query.limit);
    Ok(json!({"installations": rows, "nextCursor": next}))
}

/// The first `limit` (at most 1000) listed tenants with an id above `after`, in id order.
pub async fn ids_after(
    env: &Env,
    after: Option<InstallationId>,
    limit: usize,
) -> Result<Vec<InstallationId>, ApiError> {
    let (rows, _) = merge(shard_rows(env, after, limit).await?, limit);
    Ok(rows.iter().map(|r| r.id).collect())
}
