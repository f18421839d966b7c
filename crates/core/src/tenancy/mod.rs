//! Tenants: one GitHub App installation each, and the apps they belong to.

pub mod app;
pub mod config;
pub mod directory;
pub mod lifecycle;
pub mod listing;
pub mod token;
