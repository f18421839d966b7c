//! The HTTP edge: the single place an [`ApiError`] becomes a response, and the request-body
//! rules every JSON route shares (content type, size cap).

use futures_util::StreamExt;
use ghplane_core::ApiError;
use serde::Serialize;
use worker::{Headers, Request, Response};

/// Admin JSON bodies are small; anything larger is refused before it is read.
pub const MAX_ADMIN_BODY: usize = 64 * 1024;

/// The response for an error: its status, `{"error":{"code","message"}}` (a 500 says only
/// "Something went wrong"), `Allow` on a 405 and `Retry-After` when known. Writes no log
/// line: the caller does (the worker's request line in `lib.rs`).
pub fn render(err: &ApiError) -> Response {
    let mut resp = json_response(err.status(), &err.body());
    if let ApiError::MethodNotAllowed { allowed, .. } = err {
        let _ = resp.headers_mut().set("allow", &allowed.join(", "));
    }
    if let Some(secs) = err.retry_after_secs() {
        let _ = resp.headers_mut().set("retry-after", &secs.to_string());
    }
    resp
}

pub fn json_response<T: Serialize>(status: u16, body: &T) -> Response {
    json_bytes_response(
        status,
        serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

/// A response whose body is JSON already (e.g. the static OpenAPI document).
pub fn json_bytes_response(status: u16, bytes: Vec<u8>) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json; charset=utf-8");
    let _ = headers.set("cache-control", "no-store");
    let _ = headers.set("x-content-type-options", "nosniff");
    match Response::from_bytes(bytes) {
        Ok(r) => r.with_status(status).with_headers(headers),
        // Building a response from bytes cannot fail in practice; keep the status honest anyway.
        Err(_) => Response::empty()
            .map(|r| r.with_status(500))
            .unwrap_or_else(|_| unreachable_response()),
    }
}

/// The request's query pairs, decoded, in order.
pub fn query(req: &Request) -> Result<Vec<(String, String)>, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    Ok(url.query_pairs().into_owned().collect())
}

pub fn no_content() -> Response {
    Response::empty()
        .map(|r| r.with_status(204))
        .unwrap_or_else(|_| unreachable_response())
}

fn unreachable_response() -> Response {
    Response::builder().with_status(500).empty()
}

/// Why a body could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// More than the route's cap: declared, or counted while streaming.
    TooLarge,
    /// The stream broke off.
    Unreadable,
}

/// The one body reader of every route: at most `limit` bytes, whatever the headers say.
///
/// - A declared `Content-Length` over the cap is refused before anything is read.
/// - A declared length within the cap is what the runtime delivers (it frames the body by
///   that length), so it is read in one call, and the bytes are measured again.
/// - Without a declared length (chunked), the stream is read chunk by chunk and given up
///   as soon as the count passes the cap: never more than `limit` plus one chunk is held.
///
/// No body at all reads as empty.
pub async fn read_capped(req: &mut Request, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => return Err(BodyError::TooLarge),
        Some(0) => return Ok(Vec::new()),
        Some(_) => {
            let body = req.bytes().await.map_err(|_| BodyError::Unreadable)?;
            if body.len() > limit {
                return Err(BodyError::TooLarge);
            }
            return Ok(body);
        }
        None => {}
    }
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// [`read_capped`] for the admin and session routes' errors.
pub async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    read_capped(req, limit).await.map_err(|e| match e {
        BodyError::TooLarge => ApiError::PayloadTooLarge { limit },
        BodyError::Unreadable => ApiError::MalformedJson("the body could not be read".into()),
    })
}

/// 415 unless the request's media type (before any parameter) is `application/json`.
fn require_json(req: &Request) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Reads a JSON body: 415 unless `application/json`, 413 over `limit` (see [`read_capped`]).
pub async fn read_json_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    require_json(req)?;
    read_body(req, limit).await
}

/// A JSON body that may be absent: the bytes are read (capped, see [`read_capped`]) and
/// decide, never the headers; an empty body is empty whatever its content type, a body
/// that is there must be `application/json` (415).
pub async fn read_optional_json(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let bytes = read_body(req, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    require_json(req)?;
    Ok(bytes)
}

/// The body of a write that may be empty: still `application/json` (415 otherwise, so a
/// cross-site form or `text/plain` post never reaches a handler), and a JSON object when
/// present. Empty reads as `{}`.
pub async fn read_json_object(
    req: &mut Request,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let bytes = read_json_body(req, MAX_ADMIN_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Default::default());
    }
    ghplane_core::input::parse_object(&bytes)
}

/// A redirect to `location` (relative or absolute), uncached.
pub fn redirect(location: &str) -> Response {
    let headers = Headers::new();
    let _ = headers.set("location", location);
    let _ = headers.set("cache-control", "no-store");
    Response::empty()
        .map(|r| r.with_status(302).with_headers(headers))
        .unwrap_or_else(|_| unreachable_response())
}

/// A response's whole body in one `arrayBuffer()` call. Not `Response::bytes`: on a
/// streamed body (every `fetch` answer, from GitHub or from a Durable Object) it pulls
/// chunk by chunk through the wasm boundary, which costs milliseconds of CPU per call.
pub async fn body_bytes(resp: Response) -> worker::Result<Vec<u8>> {
    let inner = worker::web_sys::Response::from(resp);
    let buffer = worker::wasm_bindgen_futures::JsFuture::from(inner.array_buffer()?).await?;
    Ok(worker::js_sys::Uint8Array::new(&buffer).to_vec())
}
