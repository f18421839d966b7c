//! Reading the worker's vars and secrets. Names live here and in `wrangler.jsonc` only.

use ghplane_core::admin_access::cors::Origins;
use ghplane_core::ApiError;
use worker::Env;

pub const ENVIRONMENT: &str = "ENVIRONMENT";
pub const GITHUB_API_BASE: &str = "GITHUB_API_BASE";
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
pub const ENCRYPTION_KEY: &str = "ENCRYPTION_KEY";
pub const ENCRYPTION_KEY_PREVIOUS: &str = "ENCRYPTION_KEY_PREVIOUS";

pub const WEBHOOK_SECRET_GRACE_SECONDS: &str = "WEBHOOK_SECRET_GRACE_SECONDS";
/// How long a delivery claim left `processing` (its handler died) blocks a redelivery
/// (seconds, default 120, at least 5); see `docs/deliveries.md`.
pub const DELIVERY_LEASE_SECONDS: &str = "DELIVERY_LEASE_SECONDS";
/// Rows of the verbose delivery log kept per object (default 10000, 100 to 1000000); the
/// dedupe keys are kept for the retention period whatever this says.
pub const DELIVERY_LOG_MAX_ROWS: &str = "DELIVERY_LOG_MAX_ROWS";

/// The organization project repositories are created in.
pub const GITHUB_ORG: &str = "GITHUB_ORG";
/// The installation of the app on `GITHUB_ORG` (configured as a tenant); its token creates
/// the repositories.
pub const GITHUB_ORG_INSTALLATION_ID: &str = "GITHUB_ORG_INSTALLATION_ID";
/// Secret fallback when there is no org installation: a fine-grained personal access token.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";

/// github.com itself (the OAuth web endpoints); the fake GitHub in tests.
pub const GITHUB_WEB_BASE: &str = "GITHUB_WEB_BASE";
pub const DEFAULT_GITHUB_WEB_BASE: &str = "https://github.com";
/// The registered app (`PUT /api/apps/{id}`) whose client id and secret sign admins in.
pub const GITHUB_APP_ID: &str = "GITHUB_APP_ID";
/// The app's URL slug, for `install_url` when GitHub's answer names none.
pub const GITHUB_APP_SLUG: &str = "GITHUB_APP_SLUG";
pub const TURNSTILE_SITE_KEY: &str = "TURNSTILE_SITE_KEY";
/// Pages of `GET /user/installations` followed at most (default 10).
pub const INSTALLATIONS_PAGE_CAP: &str = "INSTALLATIONS_PAGE_CAP";
/// Comma-separated exact origins of the admin SPA that get CORS with credentials.
pub const ADMIN_ORIGINS: &str = "ADMIN_ORIGINS";
/// People with a staff role: comma-separated GitHub logins, each bound to the user id it
/// first signs in as (see docs/admin-access.md).
pub const ADMIN_GITHUB_LOGINS: &str = "ADMIN_GITHUB_LOGINS";
pub const VIEWER_GITHUB_LOGINS: &str = "VIEWER_GITHUB_LOGINS";
/// Teams (`org/team-slug`, in `GITHUB_ORG`) whose active members have a staff role.
pub const ADMIN_GITHUB_TEAM: &str = "ADMIN_GITHUB_TEAM";
pub const VIEWER_GITHUB_TEAM: &str = "VIEWER_GITHUB_TEAM";
/// How long a team membership answer is trusted (seconds, default 300).
pub const ADMIN_TEAM_CACHE_SECONDS: &str = "ADMIN_TEAM_CACHE_SECONDS";
/// How long admin audit entries are kept (days, default 400).
pub const ADMIN_AUDIT_RETENTION_DAYS: &str = "ADMIN_AUDIT_RETENTION_DAYS";
/// Push to deploy: the debounce window and the deadline of a running deployment (seconds).
pub const DEPLOY_DEBOUNCE_SECONDS: &str = "DEPLOY_DEBOUNCE_SECONDS";
pub const DEPLOY_TIMEOUT_SECONDS: &str = "DEPLOY_TIMEOUT_SECONDS";
/// The worker's public origin for the URLs put in deploy jobs; unset: the origin of the
/// request that linked the source.
pub const PUBLIC_URL: &str = "PUBLIC_URL";
/// How long a deploy job's credentials ticket may be redeemed (seconds, 10 to 3600;
/// default 600).
pub const DEPLOY_TICKET_TTL_SECONDS: &str = "DEPLOY_TICKET_TTL_SECONDS";

/// Durable Object binding of the installation store (`install-<id>`).
pub const INSTALLATIONS: &str = "INSTALLATIONS";
/// Durable Object binding of the app registry (`app-<id>`).
pub const APPS: &str = "APPS";
/// Durable Object binding of the app directory (`apps`), which verifies webhooks.
pub const APP_DIRECTORY: &str = "APP_DIRECTORY";
/// The console's static assets (wrangler.jsonc `assets.binding`).
pub const ASSETS: &str = "ASSETS";
/// Durable Object binding of the project stores (`project-<slug>`).
pub const PROJECTS: &str = "PROJECTS";
/// Durable Object binding of the project listing (`projects-index`).
pub const PROJECT_INDEX: &str = "PROJECT_INDEX";
/// Durable Object binding of signed-in admins (`user-<github user id>`).
pub const GITHUB_USERS: &str = "GITHUB_USERS";
/// Durable Object binding of consumed sign-in nonces (`oauth-state-<nonce>`).
pub const OAUTH_STATES: &str = "OAUTH_STATES";
/// Durable Object binding of the projects' deploy state (`deploy-<slug>`).
pub const DEPLOYS: &str = "DEPLOYS";
/// Durable Object binding of the repository index (`repo-<repo id>`).
pub const REPO_INDEX: &str = "REPO_INDEX";
/// Durable Object binding of the installers (`installer-<id>`).
pub const INSTALLERS: &str = "INSTALLERS";
/// Durable Object binding of the per-owner repository claims (`claims-<login>`).
pub const CLAIMS: &str = "CLAIMS";

/// Durable Object binding of the mint's OIDC key sets (`oidc:<issuer>`).
pub const MINT_KEYS: &str = "MINT_KEYS";
/// Durable Object binding of the mint's per-App installation and FOREIGN caches
/// (`mint-app-<app id>`).
pub const MINT_APPS: &str = "MINT_APPS";
/// Durable Object binding of the mint's audit trail (`mint-audit`).
pub const MINT_AUDIT: &str = "MINT_AUDIT";
/// Durable Object binding of the admin ledger: audit, login bindings, team answers
/// (`admin-audit`).
pub const ADMIN_AUDIT: &str = "ADMIN_AUDIT";
/// Workers rate limit binding of `POST /v1/token`.
pub const MINT_RATE_LIMITER: &str = "MINT_RATE_LIMITER";

thread_local! {
    /// Vars and secrets read so far: they are fixed for an isolate's life (a new value
    /// means a new deployment, hence new isolates), and each read crosses into JS.
    static READ: std::cell::RefCell<std::collections::HashMap<String, Option<String>>> =
        Default::default();
}

/// A var or secret, `None` when unset or empty.
pub fn get(env: &Env, name: &str) -> Option<String> {
    if let Some(v) = READ.with(|r| r.borrow().get(name).cloned()) {
        return v;
    }
    let v = env
        .var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty());
    READ.with(|r| r.borrow_mut().insert(name.to_owned(), v.clone()));
    v
}

pub fn require(env: &Env, name: &'static str) -> Result<String, ApiError> {
    get(env, name).ok_or(ApiError::Misconfigured(name.into()))
}

pub fn environment(env: &Env) -> String {
    get(env, ENVIRONMENT).unwrap_or_else(|| "development".to_owned())
}

/// A non-negative integer var, or `default` when unset; a malformed value is a
/// misconfiguration, not silently the default.
pub fn seconds(env: &Env, name: &'static str, default: u64) -> Result<u64, ApiError> {
    match get(env, name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ApiError::Misconfigured(name.into())),
    }
}

/// GitHub's web origin, without a trailing slash.
pub fn github_web_base(env: &Env) -> String {
    get(env, GITHUB_WEB_BASE)
        .unwrap_or_else(|| "https://github.com".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// The origins allowed to call the admin routes from a browser (`ADMIN_ORIGINS`); a value
/// that does not parse is a misconfiguration, not an empty list.
///
/// Parsed once per isolate, like the var itself: every response's CORS decoration reads it.
pub fn admin_origins(env: &Env) -> Result<Origins, ApiError> {
    thread_local! {
        static PARSED: std::cell::RefCell<Option<Result<Origins, ()>>> = Default::default();
    }
    let parsed = PARSED.with(|p| p.borrow().clone()).unwrap_or_else(|| {
        let parsed = Origins::parse(get(env, ADMIN_ORIGINS).as_deref()).map_err(|_| ());
        PARSED.with(|p| p.replace(Some(parsed.clone())));
        parsed
    });
    parsed.map_err(|()| ApiError::Misconfigured(ADMIN_ORIGINS.into()))
}
