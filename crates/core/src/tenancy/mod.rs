//! Tenants: one GitHub App installation each.

pub mod config;
