//! ghplane, the worker: the route table and nothing else. Handlers live in `routes/`, Durable
//! Objects in `objects/`, decisions in the `ghplane-core` crate.

use ghplane_core::routes::{match_route, Auth, Matched, Route};
use ghplane_core::ApiError;
use serde_json::json;
use worker::{event, Context, Date, Env, Request, Response};

#[macro_use]
mod fail;
mod clock;
#[cfg(test)]
mod config_tests;
mod cors;
mod github;
mod http;
mod log;
mod objects;
mod routes;
mod secrets;
mod settings;

pub use objects::admin_audit::AdminAudit;
pub use objects::app_directory::AppDirectory;
pub use objects::app_store::AppStore;
pub use objects::claims::ClaimStore;
pub use objects::github_user_store::GithubUserStore;
pub use objects::installation::InstallationStore;
pub use objects::installer::InstallerStore;
pub use objects::mint_app::MintApp;
pub use objects::mint_audit::MintAudit;
pub use objects::mint_keys::MintKeys;
pub use objects::oauth_state_store::OAuthStateStore;
pub use objects::project_deploy::ProjectDeploy;
pub use objects::project_index::ProjectIndex;
pub use objects::project_store::ProjectStore;
pub use objects::repo_index::RepoIndex;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    // Every log line of this request carries its id (see `log::scope`).
    let id = log::request_id(req.headers());
    log::scope(id, handle(req, env)).await
}

async fn handle(req: Request, env: Env) -> worker::Result<Response> {
    let started = Date::now().as_millis();
    let method = req.method().to_string();
    let path = req.path();
    let origin = req.headers().get("origin").ok().flatten();
    let result = if cors::is_preflight(&req) {
        cors::preflight(&env, &path, origin.as_deref())
    } else {
        match match_route(&method, &path).and_then(|m| seam_failure(&req).map(|()| m)) {
            // Staff routes: the admin token or a person's role; writes are audited.
            Ok(m) => match m.spec.auth {
                Auth::Staff { min } => match routes::people::authorize(&req, &env, min).await {
                    Ok(actor) if routes::people::audits(&m) => {
                        routes::people::audited(&env, actor, &m, dispatch(req, &env, &m)).await
                    }
                    Ok(_) => dispatch(req, &env, &m).await,
                    Err(e) => Err(e),
                },
                // Checked by the handler, against the installation in the path or the user's object.
                _ => dispatch(req, &env, &m).await,
            },
            Err(e) => Err(e),
        }
    };
    let (response, error) = match result {
        Ok(response) => (response, None),
        Err(e) => (http::render(&e), Some(e)),
    };
    let response = cors::decorate(response, &env, origin.as_deref());
    // Workers observability records every invocation already; a line of our own per request
    // costs measurable CPU (see docs/performance.md), so only server errors get one: with
    // the error's code and its cause (never in the response).
    if response.status_code() >= 500 {
        let mut fields = json!({"method": method, "path": ghplane_core::ids::truncate(&path, 200),
            "status": response.status_code(), "durationMs": Date::now().as_millis().saturating_sub(started)});
        if let Some(e) = &error {
            fields["errorCode"] = e.code().into();
            if let Some(cause) = e.cause() {
                fields["at"] = cause.at.into();
                fields["detail"] = cause.detail.into();
            }
        }
        log::event("error", "request", fields);
    }
    Ok(response)
}

/// Test seam, compiled only into the end-to-end build (cargo feature `e2e-seams`, never in a
/// deployed worker): a request with `x-ghplane-seam-fail: <id>` fails as an internal error
/// whose cause names `<id>`, to prove that a 500's cause is logged once and never answered.
#[cfg(feature = "e2e-seams")]
fn seam_failure(req: &Request) -> Result<(), ApiError> {
    match req.headers().get("x-ghplane-seam-fail").ok().flatten() {
        Some(id)
            if (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Err(fail!(format!("e2e seam {id}")))
        }
        _ => Ok(()),
    }
}

#[cfg(not(feature = "e2e-seams"))]
fn seam_failure(_: &Request) -> Result<(), ApiError> {
    Ok(())
}

/// The cron trigger (`triggers.crons` in `wrangler.jsonc`): the redelivery sweep of every
/// registered app.
#[event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    routes::redeliveries::sweep_all(&env).await;
}

/// The route table: one line per route, straight to its handler.
async fn dispatch(req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    use routes::{
        apps, deploy, github_connect as gh, installations, installers, meta, mint, projects,
        reseal, setup, webhooks,
    };
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
        Route::ListRepositoryBranches => installations::list_branches(req, env, m).await,
        Route::PutApp => apps::put_app(req, env, m).await,
        Route::GetApp => apps::get_app(env, m).await,
        Route::DeleteApp => apps::delete_app(env, m).await,
        Route::RotateWebhookSecret => apps::rotate_webhook_secret(req, env, m).await,
        Route::ListAppDeliveries => webhooks::list_app_deliveries(req, env, m).await,
        Route::SweepRedeliveries => routes::redeliveries::sweep(env, m).await,
        Route::GithubWebhook => webhooks::receive(req, env, m).await,
        Route::ListDeliveries => webhooks::list_deliveries(req, env, m).await,
        Route::ListWorkItems => webhooks::list_work(env, m).await,
        Route::CreateProject => projects::create(req, env, m).await,
        Route::ListProjects => projects::list(env).await,
        Route::GetProject => projects::get(env, m).await,
        Route::PatchProject => projects::patch(req, env, m).await,
        Route::ApproveProject => projects::approve(env, m).await,
        Route::PutProjectGithubRepo => projects::put_github_repo(req, env, m).await,
        Route::ListGithubRepos => projects::list_github_repos(env).await,
        Route::OAuthAuthorize => gh::authorize(req, env, m).await,
        Route::GithubConnectStart => gh::start(req, env, m).await,
        Route::GithubConnectCallback => gh::callback(req, env, m).await,
        Route::GithubConnectStatus => gh::status(req, env, m).await,
        Route::GithubDisconnect => gh::disconnect(req, env, m).await,
        Route::GithubUserInstallations => gh::installations(req, env, m).await,
        Route::GithubUserRepos => gh::repos(req, env, m).await,
        Route::GithubUserReposSync => gh::repos_sync(req, env, m).await,
        Route::PutProjectSource => deploy::put_source(req, env, m).await,
        Route::GetProjectSource => deploy::get_source(env, m).await,
        Route::DeleteProjectSource => deploy::delete_source(env, m).await,
        Route::ListProjectDeployments => deploy::list_deployments(env, m).await,
        Route::RedeployProject => deploy::redeploy(env, m).await,
        Route::RedeemDeployCredentials => deploy::redeem_credentials(req, env, m).await,
        Route::ReportDeploymentStatus => deploy::report_status(req, env, m).await,
        Route::CreateInstaller => installers::create(req, env, m).await,
        Route::GetInstaller => installers::get(env, m).await,
        Route::DeleteInstaller => installers::delete(env, m).await,
        Route::EnrollInstaller => installers::enroll(req, env, m).await,
        Route::SetupCallback => setup::callback(req, env, m).await,
        Route::SetupPage => setup::page(env, m).await,
        Route::MintToken | Route::MintTokenAlias => mint::token(req, env, m).await,
        Route::MintHealth => mint::health(env, m).await,
        Route::MintStatus => mint::status(req, env, m).await,
        Route::MintAudit => mint::list_audit(req, env, m).await,
        Route::MintAuditStats => mint::audit_stats(req, env, m).await,
        Route::AdminReseal => reseal::reseal(req, env, m).await,
        Route::GithubConnectSession => gh::session(req, env, m).await,
        Route::ListInstallations => installations::list(req, env).await,
        Route::ListAdminAudit => routes::people::list_audit(req, env).await,
        Route::ConsolePage => routes::console::page(req, env).await,
        Route::ListApps => apps::list(req, env).await,
        Route::ListInstallers => installers::list(req, env).await,
        Route::ListAllDeliveries => webhooks::list_all_deliveries(req, env).await,
    }
}
