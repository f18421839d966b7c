//! ghplane's core: every decision the worker makes, as plain Rust.
//!
//! **Architecture invariant:** this crate never depends on `worker`, never does I/O and
//! never reads a clock; callers pass `now` in. That keeps its tests native and fast.

pub mod admin_access;
pub mod auth;
pub mod cache;
pub mod deploy;
pub mod error;
pub mod github;
pub mod hex;
pub mod ids;
pub mod input;
pub mod installer;
pub mod jwt;
pub mod lists;
pub mod mint;
pub mod openapi;
pub mod pem;
pub mod projects;
pub mod routes;
pub mod rpc;
pub mod sealed;
pub mod signature;
pub mod tenancy;
pub mod time;
pub mod webhook;

pub use error::ApiError;
