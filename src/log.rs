//! Structured log lines: one JSON object per line, `{"level","msg",…,"request_id"}`, written
//! with the console method of its level (`console.error` / `console.warn` / `console.log`) so
//! Workers Logs can filter by level.
//!
//! Callers pass only fields that are safe to keep: ids, codes, statuses, durations. Bodies,
//! headers and secrets are never logged; as a second line of defence a field whose name says
//! it holds a credential is replaced by `"[redacted]"`.
//!
//! **Request ids.** The worker's `fetch` runs inside [`scope`], which makes the request's id
//! (its `cf-ray` header, else a generated one) current while, and only while, that request's
//! future is being polled: concurrent requests in one isolate interleave at every `await`, so a
//! plain global would hand one request's id to another. Calls into Durable Objects carry the
//! id in the `x-ghplane-request-id` header. Lines written outside any scope (inside Durable
//! Objects, alarms) get an id of their own.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::{Map, Value};

/// The header that carries the request id into Durable Objects.
pub const REQUEST_ID_HEADER: &str = "x-ghplane-request-id";

thread_local! {
    static CURRENT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Writes one line at `level` (`error`, `warn`, anything else is `console.log`).
pub fn event(level: &str, msg: &str, fields: Value) {
    let id = current().unwrap_or_else(generate_id);
    let text = line(level, msg, fields, &id);
    match level {
        "error" => worker::console_error!("{text}"),
        "warn" => worker::console_warn!("{text}"),
        _ => worker::console_log!("{text}"),
    }
}

/// The line's JSON: level, message, the fields and the request id (keys in sorted order).
pub fn line(level: &str, msg: &str, fields: Value, request_id: &str) -> String {
    let mut line = Map::new();
    line.insert("level".into(), level.into());
    line.insert("msg".into(), msg.into());
    if let Value::Object(extra) = fields {
        for (key, value) in extra {
            let value = if looks_secret(&key) {
                Value::String("[redacted]".into())
            } else {
                value
            };
            line.insert(key, value);
        }
    }
    line.insert("request_id".into(), request_id.into());
    Value::Object(line).to_string()
}

/// Field names that would hold a credential. Codes and ids that merely mention one
/// (`errorCode`, `keyId`, `tokenExpiresAt`) are kept.
fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "token"
            | "secret"
            | "password"
            | "authorization"
            | "cookie"
            | "privatekey"
            | "private_key"
            | "webhooksecret"
            | "clientsecret"
            | "hooksecret"
            | "ticket"
            | "key"
    ) || k.ends_with("secret")
        || k.ends_with("password")
}

/// The id of the request being handled, if any.
pub fn current() -> Option<String> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The id for an incoming request: its `cf-ray` (set by Cloudflare's edge), else the id the
/// worker passed to a Durable Object, else a fresh one.
pub fn request_id(headers: &worker::Headers) -> String {
    ["cf-ray", REQUEST_ID_HEADER]
        .iter()
        .find_map(|name| headers.get(name).ok().flatten().filter(|v| valid_id(v)))
        .unwrap_or_else(generate_id)
}

/// An id worth keeping: short, and nothing a log reader could mistake for structure.
fn valid_id(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn generate_id() -> String {
    ghplane_core::hex::encode(&ghplane_webcrypto::random_bytes::<8>())
}

/// Runs `fut` with `id` as the current request id.
pub fn scope<F: Future>(id: String, fut: F) -> Scoped<F> {
    Scoped {
        id,
        fut: Box::pin(fut),
    }
}

/// A future that makes its request id current while it is polled, and restores whatever was
/// current before when the poll returns.
pub struct Scoped<F> {
    id: String,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let previous = CURRENT.with(|c| c.replace(Some(self.id.clone())));
        let out = self.fut.as_mut().poll(cx);
        CURRENT.with(|c| *c.borrow_mut() = previous);
        out
    }
}

/// Logs an internal error's cause where the error is answered in other words than its own
/// rendering (the mint's fullsend sentences), so the cause is still written down once.
pub fn cause(e: &ghplane_core::ApiError) {
    if let ghplane_core::ApiError::Internal(cause) = e {
        event(
            "error",
            "internal error",
            serde_json::json!({"at": cause.at, "detail": cause.detail}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::task::{RawWaker, RawWakerVTable, Waker};

    #[test]
    fn a_line_is_one_json_object_with_level_message_fields_and_request_id() {
        let text = line(
            "warn",
            "deploy hook failed; retrying",
            json!({"project": "acme-ab12", "attempt": 2}),
            "8c1f2a3b4c5d6e7f-AMS",
        );
        assert!(!text.contains('\n'));
        assert_eq!(
            text,
            r#"{"attempt":2,"level":"warn","msg":"deploy hook failed; retrying","project":"acme-ab12","request_id":"8c1f2a3b4c5d6e7f-AMS"}"#
        );
    }

    #[test]
    fn credential_fields_are_redacted_and_codes_are_kept() {
        let v: Value = serde_json::from_str(&line(
            "error",
            "x",
            json!({"token": "ghs_abc", "clientSecret": "s1", "hookSecret": "s2", "Authorization": "Bearer t",
                "privateKey": "-----BEGIN", "key": "ghpsk_1", "errorCode": "unauthorized", "keyId": "ab12cd34",
                "tokenExpiresAt": "2026-01-01T00:00:00Z", "status": 401}),
            "id",
        ))
        .unwrap();
        for k in [
            "token",
            "clientSecret",
            "hookSecret",
            "Authorization",
            "privateKey",
            "key",
        ] {
            assert_eq!(v[k], "[redacted]", "{k}");
        }
        assert_eq!(v["errorCode"], "unauthorized");
        assert_eq!(v["keyId"], "ab12cd34");
        assert_eq!(v["tokenExpiresAt"], "2026-01-01T00:00:00Z");
        assert_eq!(v["status"], 401);
        assert!(!v.to_string().contains("ghs_abc") && !v.to_string().contains("BEGIN"));
    }

    #[test]
    fn ids_from_headers_are_short_and_plain() {
        assert!(valid_id("8c1f2a3b4c5d6e7f-AMS"));
        for bad in ["", "a b", "x\"}", "a\nb", &"a".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    fn noop_waker() -> Waker {
        fn clone(_: *const ()) -> RawWaker {
            RawWaker::new(std::ptr::null(), &VTABLE)
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        // SAFETY: every vtable function ignores the data pointer.
        unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
    }

    /// Pending once, then ready with the id current at each poll.
    struct Observe {
        seen: Vec<Option<String>>,
    }

    impl Future for Observe {
        type Output = Vec<Option<String>>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.seen.push(current());
            if self.seen.len() < 2 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(std::mem::take(&mut self.seen))
            }
        }
    }

    #[test]
    fn interleaved_requests_each_see_their_own_id_and_nothing_leaks() {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut a = scope("a".into(), Observe { seen: vec![] });
        let mut b = scope("b".into(), Observe { seen: vec![] });
        // a, b, a, b: the order concurrent requests take at their awaits.
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert_eq!(current(), None);
        assert!(Pin::new(&mut b).poll(&mut cx).is_pending());
        let Poll::Ready(seen_a) = Pin::new(&mut a).poll(&mut cx) else {
            panic!("a not ready")
        };
        let Poll::Ready(seen_b) = Pin::new(&mut b).poll(&mut cx) else {
            panic!("b not ready")
        };
        assert_eq!(seen_a, vec![Some("a".to_owned()), Some("a".to_owned())]);
        assert_eq!(seen_b, vec![Some("b".to_owned()), Some("b".to_owned())]);
        assert_eq!(current(), None);
    }
}
