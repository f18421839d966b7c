//! The installers' listing (`GET /api/installers`): one object of the `ProjectIndex` class
//! (a class of listings), named `installers-index`, one row per installer, newest first
//! (see `ghplane_core::lists::installers`).
//!
//! Only the installers' own objects write here (`InstallerStore::sync_listing`), and only
//! when an installer's row changed. The installer's object is the truth; a row it could not
//! publish is published again the next time that object serves a request.

use ghplane_core::lists::installers::{
    page as merge, InstallerRow, InstallersQuery, INDEX_OBJECT_NAME,
};
use ghplane_core::ApiError;
use worker::Env;

use crate::objects::project_index::client::ProjectIndexCommand;
use crate::objects::rpc::Object;
use crate::settings;

fn index(env: &Env) -> Result<Object, ApiError> {
    Object::new(env, settings::PROJECT_INDEX, INDEX_OBJECT_NAME)
}

/// Publishes an installer's row (replacing what the index held).
pub async fn publish(env: &Env, row: &InstallerRow) -> Result<(), ApiError> {
    let row = row.clone();
    index(env)?
        .call(&ProjectIndexCommand::PutInstaller { row })
        .await
}

/// One page of the listing, newest first, and the next page's cursor.
pub async fn page(
    env: &Env,
    query: &InstallersQuery,
) -> Result<(Vec<InstallerRow>, Option<String>), ApiError> {
    let command = ProjectIndexCommand::InstallerRows {
        before: query.before.clone(),
        limit: query.limit + 1,
    };
    let rows: Vec<InstallerRow> = index(env)?.call(&command).await?;
    Ok(merge(rows, query.limit))
}
