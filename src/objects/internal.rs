//! How the worker talks to its own Durable Objects: JSON requests carried over Workers RPC
//! (`ghplaneCall`, which `src/entry.mjs` gives every object class) to the object's `fetch`
//! handler, errors already rendered in the public shape so they can be relayed unchanged.
//! RPC and not `stub.fetch`: the runtime's HTTP hop into an object costs ~3.5 ms of CPU.

use ghplane_core::{rpc, ApiError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::js_sys::{Array, Promise, Uint8Array};
use worker::wasm_bindgen::prelude::*;
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Date, Env, Headers, Method, Request, Response, Stub};

#[wasm_bindgen]
extern "C" {
    /// A Durable Object stub, called over RPC.
    #[wasm_bindgen(extends = worker::js_sys::Object)]
    #[derive(Clone, Debug)]
    pub type ObjectStub;

    #[wasm_bindgen(method, catch, js_name = ghplaneCall)]
    fn ghplane_call(
        this: &ObjectStub,
        method: &str,
        url: &str,
        headers: Array,
        body: Option<String>,
    ) -> Result<Promise, JsValue>;
}

/// The stub of the object `name` in namespace `binding`.
pub fn stub(env: &Env, binding: &'static str, name: &str) -> Result<ObjectStub, ApiError> {
    env.durable_object(binding)
        .and_then(|ns| ns.id_from_name(name).and_then(|id| id.get_stub()))
        .map(Stub::into_rpc::<ObjectStub>)
        .map_err(|_| ApiError::Misconfigured(binding.into()))
}

/// Sends `body` (JSON) to `url` on the object behind `stub`. A rejected call is retried or
/// turned into an error as `ghplane_core::rpc` decides (an idempotent call once more after a
/// reset; 503 `service_unavailable` with `Retry-After` when the object is busy).
pub async fn call<B: Serialize>(
    stub: &ObjectStub,
    method: Method,
    url: &str,
    body: Option<&B>,
    headers: &[(&str, &str)],
) -> Result<Response, ApiError> {
    let body = match body {
        Some(b) => Some(serde_json::to_string(b).map_err(|e| fail!(e))?),
        None => None,
    };
    let idempotent = rpc::idempotent(method.as_ref());
    let mut attempts = 0;
    let answer = loop {
        attempts += 1;
        let pairs = Array::new();
        for (k, v) in headers {
            pairs.push(&Array::of2(&JsValue::from_str(k), &JsValue::from_str(v)));
        }
        // The object's log lines can then name the request that caused them.
        if let Some(id) = crate::log::current() {
            pairs.push(&Array::of2(
                &JsValue::from_str(crate::log::REQUEST_ID_HEADER),
                &JsValue::from_str(&id),
            ));
        }
        let result = match stub.ghplane_call(method.as_ref(), url, pairs, body.clone()) {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        let error = match result {
            Ok(answer) => break answer,
            Err(e) => e,
        };
        let flag = |k: &str| {
            worker::js_sys::Reflect::get(&error, &JsValue::from_str(k))
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
        };
        let rejection = rpc::Rejection {
            retryable: flag("retryable"),
            overloaded: flag("overloaded"),
        };
        match rpc::after_rejection(
            rejection,
            idempotent,
            attempts,
            worker::js_sys::Math::random(),
        ) {
            rpc::Next::Retry { pause_ms } => {
                worker::Delay::from(std::time::Duration::from_millis(pause_ms)).await;
            }
            rpc::Next::Fail(e) => {
                crate::log::event(
                    "warn",
                    "object call failed",
                    serde_json::json!({"method": method.as_ref(), "retryable": rejection.retryable,
                        "overloaded": rejection.overloaded, "attempts": attempts, "errorCode": e.code()}),
                );
                return Err(e);
            }
        }
    };
    let get = |k: &str| worker::js_sys::Reflect::get(&answer, &JsValue::from_str(k));
    let status = get("status")
        .ok()
        .and_then(|v| v.as_f64())
        .ok_or_else(|| fail!())? as u16;
    let out = Headers::new();
    if let Ok(list) = get("headers").and_then(|v| v.dyn_into::<Array>()) {
        for pair in list.iter() {
            let pair: Array = pair.unchecked_into();
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                out.append(&k, &v).map_err(|e| fail!(e))?;
            }
        }
    }
    let bytes = get("body")
        .map(|b| Uint8Array::new(&b).to_vec())
        .map_err(|e| fail!(e))?;
    Ok(Response::from_bytes(bytes)
        .map_err(|e| fail!(e))?
        .with_status(status)
        .with_headers(out))
}

/// A 2xx body as `T`; anything else as the error the object rendered.
pub async fn json<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
    if (200..300).contains(&resp.status_code()) {
        let bytes = read(resp).await.map_err(|e| fail!(e))?;
        return serde_json::from_slice(&bytes).map_err(|e| fail!(e));
    }
    Err(relayed(resp).await)
}

/// An object's answer body ([`call`] builds it from bytes, so this is a copy in wasm).
async fn read(mut resp: Response) -> worker::Result<Vec<u8>> {
    resp.bytes().await
}

/// The error an object answered with, as an [`ApiError`].
pub async fn relayed(resp: Response) -> ApiError {
    let status = resp.status_code();
    let body: serde_json::Value = read(resp)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let field = |k: &str| body["error"][k].as_str().unwrap_or_default().to_owned();
    if field("code").is_empty() {
        return fail!();
    }
    ApiError::Relayed {
        status,
        code: field("code"),
        message: field("message"),
    }
}

/// A 2xx answer, or the error the object rendered.
pub async fn expect_success(resp: Response) -> Result<(), ApiError> {
    if (200..300).contains(&resp.status_code()) {
        Ok(())
    } else {
        Err(relayed(resp).await)
    }
}

/// Reads a Durable Object request's JSON body. Not `Request::json`: that converts a parsed
/// JS object field by field across the wasm boundary, several times the cost of parsing
/// the bytes with serde_json.
pub async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    let bytes = req.bytes().await.map_err(|e| fail!(e))?;
    serde_json::from_slice(&bytes).map_err(|e| fail!(e))
}

pub fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

pub fn now_text() -> String {
    ghplane_core::time::rfc3339_from_millis(now_ms())
}
