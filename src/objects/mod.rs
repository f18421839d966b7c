//! Durable Object classes. Each one owns its key format and offers a typed client to the
//! route handlers, so no handler builds an object name or an internal URL.

pub mod app;
pub mod github_user;
pub mod installation;
pub mod internal;
pub mod oauth_state;
