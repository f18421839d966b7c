//! Recovering deliveries that never arrived: `POST /api/apps/{app_id}/redeliveries` runs
//! one app's redelivery sweep now; the cron trigger runs every app's (see
//! `objects/app_store/redeliveries.rs` and `docs/deliveries.md`).

use ghplane_core::ids::AppId;
use ghplane_core::routes::Matched;
use ghplane_core::ApiError;
use serde_json::json;
use worker::{Env, Response};

use crate::http::json_response;
use crate::objects::app_directory::client::DirectoryClient;
use crate::objects::app_store::client::AppClient;

pub async fn sweep(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let app = AppId::parse(m.param("app_id")).map_err(ApiError::InvalidId)?;
    let report = AppClient::new(env, app)?.sweep().await?;
    Ok(json_response(200, &report))
}

/// Every registered app, one after the other (each sweep is bounded); one app's failure
/// does not stop the others.
pub async fn sweep_all(env: &Env) {
    let apps = match DirectoryClient::new(env) {
        Ok(directory) => directory.list().await,
        Err(e) => Err(e),
    };
    let apps = match apps {
        Ok(apps) => apps,
        Err(e) => {
            crate::log::event("error", "redelivery sweep", json!({"errorCode": e.code()}));
            return;
        }
    };
    for app in apps {
        let result = match AppClient::new(env, app) {
            Ok(client) => client.sweep().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            crate::log::event(
                "error",
                "redelivery sweep",
                json!({"app": app.get(), "errorCode": e.code()}),
            );
        }
    }
}
