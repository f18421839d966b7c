//! How the worker talks to its own Durable Objects: JSON over `stub.fetch`, errors already
//! rendered in the public shape so they can be relayed unchanged.

use ghplane_core::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Date, Headers, Method, Request, RequestInit, Response, Stub};

/// Sends `body` (JSON) to `url` on `stub`.
pub async fn call<B: Serialize>(
    stub: &Stub,
    method: Method,
    url: &str,
    body: Option<&B>,
    headers: &[(&str, &str)],
) -> Result<Response, ApiError> {
    let mut init = RequestInit::new();
    init.with_method(method);
    let h = Headers::new();
    for (k, v) in headers {
        h.set(k, v).map_err(|_| ApiError::Internal)?;
    }
    init.with_headers(h);
    if let Some(b) = body {
        let text = serde_json::to_string(b).map_err(|_| ApiError::Internal)?;
        init.with_body(Some(text.into()));
    }
    let req = Request::new_with_init(url, &init).map_err(|_| ApiError::Internal)?;
    stub.fetch_with_request(req)
        .await
        .map_err(|_| ApiError::Internal)
}

/// A 2xx body as `T`; anything else as the error the object rendered.
pub async fn json<T: DeserializeOwned>(mut resp: Response) -> Result<T, ApiError> {
    if (200..300).contains(&resp.status_code()) {
        return resp.json().await.map_err(|_| ApiError::Internal);
    }
    Err(relayed(&mut resp).await)
}

/// The error an object answered with, as an [`ApiError`].
pub async fn relayed(resp: &mut Response) -> ApiError {
    let status = resp.status_code();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let field = |k: &str| body["error"][k].as_str().unwrap_or_default().to_owned();
    if field("code").is_empty() {
        return ApiError::Internal;
    }
    ApiError::Relayed {
        status,
        code: field("code"),
        message: field("message"),
    }
}

/// A 2xx answer, or the error the object rendered.
pub async fn expect_success(mut resp: Response) -> Result<(), ApiError> {
    if (200..300).contains(&resp.status_code()) {
        Ok(())
    } else {
        Err(relayed(&mut resp).await)
    }
}

/// Reads a Durable Object request's JSON body.
pub async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    req.json().await.map_err(|_| ApiError::Internal)
}

pub fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

pub fn now_text() -> String {
    ghplane_core::time::rfc3339_from_millis(now_ms())
}

pub fn storage_error(_: worker::Error) -> ApiError {
    ApiError::Internal
}
