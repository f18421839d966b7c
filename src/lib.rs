//! ghplane, the worker: the route table and nothing else. Handlers live in `routes/`, Durable
//! Objects in `objects/`, decisions in the `ghplane-core` crate.

use ghplane_core::auth::bearer_matches;
use ghplane_core::routes::{match_route, Auth, Matched, Route};
use ghplane_core::ApiError;
use serde_json::json;
use worker::{event, Context, Date, Env, Request, Response};

mod github;
mod http;
mod log;
mod objects;
mod routes;
mod secrets;
mod settings;

pub use objects::app::AppStore;
pub use objects::app_directory::AppDirectory;
pub use objects::installation::InstallationStore;
pub use objects::mint_app::MintApp;
pub use objects::mint_audit::MintAudit;
pub use objects::mint_keys::MintKeys;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = Date::now().as_millis();
    let method = req.method().to_string();
    let path = req.path();
    let route_path = ghplane_core::mint::request::normalize_path(&path);
    let response = match match_route(&method, route_path)
        .map_err(|e| routes::mint::route_error(route_path, e))
    {
        Ok(m) => match authorize(&req, &env, &m) {
            Ok(()) => dispatch(req, &env, &m).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| http::error_response(&e));
    log::event(
        "info",
        "request",
        json!({"method": method, "path": ghplane_core::ids::truncate(&path, 200), "status": response.status_code(),
            "durationMs": Date::now().as_millis().saturating_sub(started)}),
    );
    Ok(response)
}

fn authorize(req: &Request, env: &Env, m: &Matched) -> Result<(), ApiError> {
    match m.spec.auth {
        // Checked by the handler, against the installation in the path.
        Auth::Public | Auth::ServiceKey => Ok(()),
        Auth::Admin => {
            let expected = settings::require(env, settings::ADMIN_TOKEN)?;
            let header = req.headers().get("authorization").ok().flatten();
            bearer_matches(header.as_deref(), &expected)
                .then_some(())
                .ok_or(ApiError::Unauthorized)
        }
    }
}

/// The route table: one line per route, straight to its handler.
async fn dispatch(req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    use routes::{apps, installations, meta, mint, webhooks};
    match m.spec.route {
        Route::Healthz => meta::healthz(env),
        Route::OpenApi => meta::openapi(),
        Route::PutInstallationConfig => installations::put_config(req, env, m).await,
        Route::GetInstallationConfig => installations::get_config(env, m).await,
        Route::PatchInstallationConfig => installations::patch_config(req, env, m).await,
        Route::DeleteInstallationConfig => installations::delete_config(env, m).await,
        Route::CreateServiceKey => installations::create_service_key(env, m).await,
        Route::ListServiceKeys => installations::list_service_keys(env, m).await,
        Route::DeleteServiceKey => installations::delete_service_key(env, m).await,
        Route::InstallationToken => installations::installation_token(req, env, m).await,
        Route::ListInstallationRepositories => installations::list_repositories(env, m).await,
        Route::PutApp => apps::put_app(req, env, m).await,
        Route::GetApp => apps::get_app(env, m).await,
        Route::DeleteApp => apps::delete_app(env, m).await,
        Route::RotateWebhookSecret => apps::rotate_webhook_secret(req, env, m).await,
        Route::ListAppDeliveries => webhooks::list_app_deliveries(req, env, m).await,
        Route::GithubWebhook => webhooks::receive(req, env, m).await,
        Route::ListDeliveries => webhooks::list_deliveries(req, env, m).await,
        Route::ListWorkItems => webhooks::list_work(env, m).await,
        Route::MintToken | Route::MintTokenAlias => mint::token(req, env, m).await,
        Route::MintHealth => mint::health(env, m).await,
        Route::MintStatus => mint::status(req, env, m).await,
        Route::MintAudit => mint::list_audit(req, env, m).await,
    }
}
