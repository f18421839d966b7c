//! Durable Object classes. Each one owns its key format and offers a typed client to the
//! route handlers, so no handler builds an object name or an internal URL.

pub mod app;
pub mod app_directory;
pub mod claims;
pub mod deliveries;
pub mod deploy;
pub mod github_user;
pub mod installation;
pub mod installer;
pub mod internal;
pub mod mint_app;
pub mod mint_audit;
pub mod mint_keys;
pub mod oauth_state;
pub mod project;
mod redeliveries;
pub mod repo_index;
pub mod rpc;
pub mod sealed_registry;
pub mod tenant_index;
