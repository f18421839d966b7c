//! Durable Object classes. Each one owns its key format and offers a typed client to the
//! route handlers, so no handler builds an object name or an internal URL.

pub mod admin_audit;
pub mod app;
pub mod app_directory;
pub mod claims;
pub mod deliveries;
pub mod deploy;
pub mod github_user;
pub mod installation;
mod installation_claims;
mod installation_deploy;
mod installation_events;
mod installation_listing;
pub mod installer;
pub mod internal;
pub mod oauth_state;
pub mod project;
mod redeliveries;
pub mod repo_index;
pub mod rpc;
pub mod sealed_registry;
pub mod tenant_index;

/// Tells org installations what they must now withhold (after a dedicated app went away).
pub async fn installation_claims_push(
    env: &worker::Env,
    affected: &[ghplane_core::installer::claims::Affected],
) -> Result<(), ghplane_core::ApiError> {
    installation_claims::push_withheld(env, affected).await
}
pub mod mint_app;
pub mod mint_audit;
pub mod mint_keys;
