//! Reading the worker's vars and secrets. Names live here and in `wrangler.jsonc` only.

use ghplane_core::ApiError;
use worker::Env;

pub const ENVIRONMENT: &str = "ENVIRONMENT";
pub const GITHUB_API_BASE: &str = "GITHUB_API_BASE";
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
pub const ENCRYPTION_KEY: &str = "ENCRYPTION_KEY";
pub const ENCRYPTION_KEY_PREVIOUS: &str = "ENCRYPTION_KEY_PREVIOUS";

pub const WEBHOOK_SECRET_GRACE_SECONDS: &str = "WEBHOOK_SECRET_GRACE_SECONDS";
/// Test seam, see `objects/installation_events.rs`; unset in every deployed environment.
pub const E2E_FAIL_FIRST_ATTEMPT: &str = "E2E_FAIL_FIRST_ATTEMPT";

/// Durable Object binding of the installation store (`install-<id>`).
pub const INSTALLATIONS: &str = "INSTALLATIONS";
/// Durable Object binding of the app registry (`app-<id>`).
pub const APPS: &str = "APPS";
/// Durable Object binding of the app directory (`apps`), which verifies webhooks.
pub const APP_DIRECTORY: &str = "APP_DIRECTORY";

/// Durable Object binding of the mint's OIDC key sets (`oidc:<issuer>`).
pub const MINT_KEYS: &str = "MINT_KEYS";
/// Durable Object binding of the mint's per-App installation and FOREIGN caches
/// (`mint-app-<app id>`).
pub const MINT_APPS: &str = "MINT_APPS";
/// Durable Object binding of the mint's audit trail (`mint-audit`).
pub const MINT_AUDIT: &str = "MINT_AUDIT";
/// Workers rate limit binding of `POST /v1/token`.
pub const MINT_RATE_LIMITER: &str = "MINT_RATE_LIMITER";

/// A var or secret, `None` when unset or empty.
pub fn get(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty())
}

pub fn require(env: &Env, name: &'static str) -> Result<String, ApiError> {
    get(env, name).ok_or(ApiError::Misconfigured(name))
}

pub fn environment(env: &Env) -> String {
    get(env, ENVIRONMENT).unwrap_or_else(|| "development".to_owned())
}

/// A non-negative integer var, or `default` when unset; a malformed value is a
/// misconfiguration, not silently the default.
pub fn seconds(env: &Env, name: &'static str, default: u64) -> Result<u64, ApiError> {
    match get(env, name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ApiError::Misconfigured(name)),
    }
}
