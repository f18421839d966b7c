//! How the worker talks to its own Durable Objects: one typed command per call.
//!
//! A client sends `Envelope { to: <object name>, command }` over Workers RPC (`ghplaneCall`,
//! which `src/entry.mjs` gives every object class, with a fixed method and URL); the object's
//! `fetch` hands it to [`serve`], which decodes the command and calls the object's `handle`
//! (one `match` on its command enum). The answer is the reply as JSON (200) or the
//! [`ApiError`] itself (any other status), so an error arrives as the same typed value the
//! object returned. RPC and not `stub.fetch`: the runtime's HTTP hop into an object costs
//! ~3.5 ms of CPU, an RPC call ~0.2 ms.

use std::future::Future;

use ghplane_core::rpc::{self, Command, Envelope};
use ghplane_core::ApiError;
use serde::Serialize;
use worker::js_sys::{Array, Promise, Uint8Array};
use worker::wasm_bindgen::prelude::*;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Env, Headers, Request, Response, Stub};

#[wasm_bindgen]
extern "C" {
    /// A Durable Object stub, called over RPC.
    #[wasm_bindgen(extends = worker::js_sys::Object)]
    #[derive(Clone, Debug)]
    type RpcStub;

    #[wasm_bindgen(method, catch, js_name = ghplaneCall)]
    fn ghplane_call(
        this: &RpcStub,
        method: &str,
        url: &str,
        headers: Array,
        body: Option<String>,
    ) -> Result<Promise, JsValue>;
}

/// The one URL every command is sent to (the object routes on the command, not the URL).
const URL: &str = "https://object/";

/// One object: its stub and the name it was made from.
#[derive(Clone, Debug)]
pub struct Object {
    stub: RpcStub,
    name: String,
}

impl Object {
    /// The object `name` in namespace `binding`.
    pub fn new(env: &Env, binding: &'static str, name: &str) -> Result<Object, ApiError> {
        let stub = env
            .durable_object(binding)
            .and_then(|ns| ns.id_from_name(name).and_then(|id| id.get_stub()))
            .map(Stub::into_rpc::<RpcStub>)
            .map_err(|_| ApiError::Misconfigured(binding.into()))?;
        Ok(Object {
            stub,
            name: name.to_owned(),
        })
    }

    /// Sends `command` and decodes the reply as `R`. A rejected call is retried or turned
    /// into an error as `ghplane_core::rpc` decides (an idempotent command once more after a
    /// reset; 503 `service_unavailable` when the object is busy).
    pub async fn call<C: Command, R: serde::de::DeserializeOwned>(
        &self,
        command: &C,
    ) -> Result<R, ApiError> {
        // Only the encoding and the decoding are per type; the call itself is one function
        // (a generic body here was ~3.6 KB of wasm for every command/reply pair).
        let body = serde_json::to_string(&Envelope {
            to: self.name.as_str(),
            command,
        })
        .map_err(|e| fail!(e))?;
        let (ok, bytes) = self.send(body, command.idempotent()).await?;
        rpc::decode(ok, &bytes)
    }

    /// Sends one encoded envelope; the answer's body and whether it carried a reply (200).
    async fn send(&self, body: String, idempotent: bool) -> Result<(bool, Vec<u8>), ApiError> {
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            let headers = Array::new();
            // The object's log lines can then name the request that caused them.
            if let Some(id) = crate::log::current() {
                headers.push(&Array::of2(
                    &JsValue::from_str(crate::log::REQUEST_ID_HEADER),
                    &JsValue::from_str(&id),
                ));
            }
            let result = match self
                .stub
                .ghplane_call("POST", URL, headers, Some(body.clone()))
            {
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
                        serde_json::json!({"object": self.name, "retryable": rejection.retryable,
                            "overloaded": rejection.overloaded, "attempts": attempts,
                            "errorCode": e.code(), "reason": error.as_string()}),
                    );
                    return Err(e);
                }
            }
        };
        let get = |k: &str| worker::js_sys::Reflect::get(&answer, &JsValue::from_str(k));
        let status = get("status").ok().and_then(|v| v.as_f64());
        let bytes = get("body")
            .map(|b| Uint8Array::new(&b).to_vec())
            .map_err(|e| fail!(e))?;
        Ok((status == Some(200.0), bytes))
    }
}

/// The object side: decodes the envelope in `req`, runs `handle(name, command)` and answers
/// its reply or its error. `handle` returns the reply already serialized ([`reply`]), so one
/// `match` can answer different types.
pub async fn serve<C, F, Fut>(mut req: Request, handle: F) -> worker::Result<Response>
where
    C: Command,
    F: FnOnce(String, C) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, ApiError>>,
{
    let bytes = req.bytes().await?;
    let result = match serde_json::from_slice::<Envelope<String, C>>(&bytes) {
        Ok(envelope) => handle(envelope.to, envelope.command).await,
        Err(e) => Err(fail!(e)),
    };
    answer(result)
}

/// [`serve`]'s answer, out of its generic body: the reply (200) or the error (500).
fn answer(result: Result<Vec<u8>, ApiError>) -> worker::Result<Response> {
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(e) => {
            // The caller renders it (and logs an internal cause once, there).
            let body = serde_json::to_vec(&e).unwrap_or_else(|_| b"null".to_vec());
            (500, body)
        }
    };
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::from_bytes(body)?
        .with_status(status)
        .with_headers(headers))
}

/// A reply for [`serve`].
pub fn reply<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| fail!(e))
}
