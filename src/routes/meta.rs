//! Routes about the service itself.

use ghplane_core::openapi;
use ghplane_core::ApiError;
use serde_json::json;
use worker::{Env, Response};

use crate::http::{json_bytes_response, json_response};
use crate::settings;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn healthz(env: &Env) -> Result<Response, ApiError> {
    Ok(json_response(
        200,
        &json!({"status": "ok", "version": VERSION, "environment": settings::environment(env)}),
    ))
}

/// The committed document, byte for byte (its `info.version` is the crate's, checked by a test).
pub fn openapi() -> Result<Response, ApiError> {
    Ok(json_bytes_response(
        200,
        openapi::DOCUMENT.as_bytes().to_vec(),
    ))
}
