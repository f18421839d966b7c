//! The OpenAPI 3.1 description of every route in [`crate::routes::ROUTES`], served at
//! `/openapi.json`.
//!
//! `openapi.json` beside this file *is* the document: written by hand, committed, compiled in
//! with `include_str!` and served byte for byte. It is the source a typed client is generated
//! from. Its tests (in `tests.rs`) keep it honest: every route is described and nothing else,
//! every `$ref` resolves, the `Error.code` enum is exactly [`crate::error::all_codes`], every
//! request body carries an example that the route's own parser accepts, and its `version` is
//! the crate's. The end-to-end tests validate every response they receive against it.
//!
//! Keep the file in its canonical form (keys sorted, two-space indent, as
//! `serde_json::to_string_pretty` writes it), so a diff shows only what changed; a test checks.

/// The document, exactly as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod docs_tests;
#[cfg(test)]
mod tests;
