//! Durable Object classes. Each one owns its key format and offers a typed client to the
//! route handlers, so no handler builds an object name or an internal URL.

pub mod admin_audit;
pub mod app_directory;
pub mod app_store;
pub mod claims;
pub mod deliveries;
pub mod github_user_store;
pub mod installation;
pub mod installer;
pub mod installer_index;
pub mod mint_app;
pub mod mint_audit;
pub mod mint_keys;
pub mod oauth_state_store;
pub mod project_deploy;
pub mod project_index;
pub mod project_store;
pub mod repo_index;
pub mod rpc;
pub mod sealed_registry;
pub mod tenant_index;
pub mod trim;
