//! Durable Object classes. Each one owns its key format and offers a typed client to the
//! route handlers, so no handler builds an object name or an internal URL.

pub mod app;
pub mod app_directory;
pub mod deliveries;
pub mod deploy;
pub mod github_user;
pub mod installation;
mod installation_deploy;
mod installation_events;
pub mod internal;
pub mod oauth_state;
pub mod project;
pub mod repo_index;
