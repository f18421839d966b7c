//! Durable Object classes. Each one owns its key format and offers a typed client to the
//! route handlers, so no handler builds an object name or an internal URL.

pub mod app_directory;
pub mod app_store;
pub mod claims;
pub mod deliveries;
pub mod github_user_store;
pub mod installation;
mod installation_claims;
mod installation_deploy;
mod installation_events;
mod installation_listing;
pub mod installer;
pub mod internal;
pub mod oauth_state_store;
pub mod project_deploy;
pub mod project_index;
pub mod project_store;
pub mod repo_index;
pub mod rpc;
pub mod sealed_registry;
pub mod tenant_index;

/// The deploy object's client under its former path, for `installation_deploy.rs` until it
/// imports `project_deploy::client` itself.
pub use project_deploy::client as deploy;

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
