//! CORS at the edge, before and after routing: preflights of existing routes are answered
//! here, and every answer gets `Vary: Origin` plus, for an allowed origin only, the CORS
//! headers (decided in `ghplane_core::admin_access::cors`).

use ghplane_core::admin_access::cors::{preflight_headers, response_headers, Origins};
use ghplane_core::ApiError;
use worker::{Env, Headers, Request, Response};

use crate::settings::admin_origins;

/// A CORS preflight: `OPTIONS` with `Access-Control-Request-Method`.
pub fn is_preflight(req: &Request) -> bool {
    req.method() == worker::Method::Options
        && req
            .headers()
            .has("access-control-request-method")
            .unwrap_or(false)
}

/// The answer to a preflight for `path`: 204 (with CORS headers only for an allowed
/// origin), or the 404 of a path that does not exist.
pub fn preflight(env: &Env, path: &str, origin: Option<&str>) -> Result<Response, ApiError> {
    let methods = ghplane_core::routes::methods_for(path);
    if methods.is_empty() {
        return Err(ApiError::RouteNotFound {
            method: "OPTIONS".into(),
            path: ghplane_core::ids::truncate(path, 200),
        });
    }
    let headers = Headers::new();
    for (k, v) in preflight_headers(&admin_origins(env)?, origin, &methods) {
        headers.set(k, &v).map_err(|e| fail!(e))?;
    }
    Ok(Response::empty()
        .map_err(|e| fail!(e))?
        .with_status(204)
        .with_headers(headers))
}

/// Adds `Vary` and, for an allowed origin, the CORS headers. The headers are copied into a
/// fresh set because an answer relayed from a Durable Object has immutable ones.
pub fn decorate(mut resp: Response, env: &Env, origin: Option<&str>) -> Response {
    // A broken allowlist grants nothing; the preflight reports it as a misconfiguration.
    let origins = admin_origins(env).unwrap_or_else(|_| Origins::default());
    if add(resp.headers_mut(), &origins, origin).is_ok() {
        return resp;
    }
    // Immutable headers (a response relayed from `fetch`): copy them first.
    let headers = Headers::new();
    for (k, v) in resp.headers().entries() {
        let _ = headers.append(&k, &v);
    }
    let _ = add(&headers, &origins, origin);
    let (builder, body) = resp.into_parts();
    builder.with_headers(headers).body(body)
}

fn add(headers: &Headers, origins: &Origins, origin: Option<&str>) -> worker::Result<()> {
    let vary = match headers.get("vary")? {
        Some(v) if v.to_ascii_lowercase().contains("origin") => v,
        Some(v) => format!("{v}, Origin"),
        None => "Origin".to_owned(),
    };
    headers.set("vary", &vary)?;
    for (k, v) in response_headers(origins, origin) {
        headers.set(k, &v)?;
    }
    Ok(())
}
