//! Durable Object classes. Each one owns its key format and offers a typed client to the
//! route handlers, so no handler builds an object name or an internal URL.

pub mod app;
pub mod app_directory;
pub mod deliveries;
pub mod installation;
mod installation_events;
pub mod internal;
pub mod mint_app;
pub mod mint_audit;
pub mod mint_keys;
