//! What to do when the runtime rejects a call into one of ghplane's own Durable Objects.
//!
//! **Invariant:** only an idempotent call (GET, HEAD, PUT, DELETE) is sent again, once,
//! and only after a rejection the runtime marks `retryable` (the object was reset, e.g. by a
//! deploy) and not `overloaded` (another call would add to the load). A POST may have taken
//! effect before the reset: a delivery handed to its object, for one, is recovered by
//! GitHub's redelivery instead, never by a second hand-off that could answer `duplicate`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// One Durable Object class's command enum: the client sends one value, the object matches
/// it. Replies are the named types each client method decodes; errors come back as
/// [`ApiError`] values (serde), so callers match variants, never code strings.
///
/// Keep command enums externally tagged (serde's default, `{"variant": {..}}`): an internally
/// tagged one (`#[serde(tag = "op")]`) is decoded through serde's buffered `Content`, which
/// repeats the deserializer of every type it carries; across the objects that was the largest
/// single share of the wasm bundle (docs/performance.md, "Bundle").
pub trait Command: Serialize + DeserializeOwned {
    /// Whether the command may be sent twice (a reset object's call is retried once): reads,
    /// and writes that set a value rather than add one.
    fn idempotent(&self) -> bool;
}

/// What travels to an object: its own name (the one the stub was made from, so the object
/// never has to be told its id another way) and the command.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<N, C> {
    pub to: N,
    pub command: C,
}

/// Decodes an object's answer: `ok` is whether it carried a reply (else an [`ApiError`]).
/// Bytes that decode as neither are an internal error at the caller.
pub fn decode<R: DeserializeOwned>(ok: bool, bytes: &[u8]) -> Result<R, ApiError> {
    if ok {
        serde_json::from_slice(bytes).map_err(undecodable)
    } else {
        Err(decode_error(bytes))
    }
}

/// [`decode`]'s error side, kept out of its generic body (one copy, not one per reply type).
fn decode_error(bytes: &[u8]) -> ApiError {
    serde_json::from_slice(bytes).unwrap_or_else(undecodable)
}

fn undecodable(e: serde_json::Error) -> ApiError {
    crate::internal!(e)
}

/// What the caller is told to wait when an object is busy.
pub const RETRY_AFTER_SECS: u64 = 1;
/// The pause before the one retry: a base plus up to this much jitter (ms), so callers that
/// failed together do not retry together.
pub const RETRY_PAUSE_MS: u64 = 25;
pub const RETRY_JITTER_MS: u64 = 100;

/// The runtime's verdict on a rejected call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub retryable: bool,
    pub overloaded: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Pause this many milliseconds, then send the call once more.
    Retry { pause_ms: u64 },
    /// Give up with this error.
    Fail(ApiError),
}

/// Decides after `attempts` tries (1 after the first) rejected as `r`; `jitter` in `0.0..1.0`.
pub fn after_rejection(r: Rejection, idempotent: bool, attempts: u32, jitter: f64) -> Next {
    if r.retryable && !r.overloaded && idempotent && attempts < 2 {
        let extra = (jitter.clamp(0.0, 1.0) * RETRY_JITTER_MS as f64) as u64;
        return Next::Retry {
            pause_ms: RETRY_PAUSE_MS + extra,
        };
    }
    Next::Fail(if r.retryable || r.overloaded {
        ApiError::Unavailable {
            retry_after_secs: RETRY_AFTER_SECS,
        }
    } else {
        crate::internal!("the object call was rejected")
    })
}

/// Whether a call with this HTTP method may be sent twice.
pub fn idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "PUT" | "DELETE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_errors_decode_as_themselves() {
        let ok: Vec<u32> = decode(true, b"[1,2]").unwrap();
        assert_eq!(ok, vec![1, 2]);
        let wire = serde_json::to_vec(&ApiError::ProjectNotFound("p-1".into())).unwrap();
        assert_eq!(
            decode::<()>(false, &wire),
            Err(ApiError::ProjectNotFound("p-1".into()))
        );
        let garbled = decode::<()>(false, b"<html>").unwrap_err();
        assert_eq!(garbled.code(), "internal_error");
        let wrong_shape = decode::<Vec<u32>>(true, b"{}").unwrap_err();
        assert_eq!(wrong_shape.code(), "internal_error");
    }

    const RESET: Rejection = Rejection {
        retryable: true,
        overloaded: false,
    };
    const OVERLOADED: Rejection = Rejection {
        retryable: true,
        overloaded: true,
    };
    const BROKEN: Rejection = Rejection {
        retryable: false,
        overloaded: false,
    };
    const BUSY: ApiError = ApiError::Unavailable {
        retry_after_secs: 1,
    };

    #[test]
    fn a_reset_idempotent_call_is_retried_once_with_jitter() {
        assert_eq!(
            after_rejection(RESET, true, 1, 0.0),
            Next::Retry { pause_ms: 25 }
        );
        assert_eq!(
            after_rejection(RESET, true, 1, 0.999),
            Next::Retry { pause_ms: 124 }
        );
        assert_eq!(
            after_rejection(RESET, true, 1, 7.0),
            Next::Retry { pause_ms: 125 },
            "jitter is bounded"
        );
        assert_eq!(after_rejection(RESET, true, 2, 0.5), Next::Fail(BUSY));
    }

    #[test]
    fn a_post_is_never_sent_twice() {
        assert_eq!(after_rejection(RESET, false, 1, 0.5), Next::Fail(BUSY));
        assert!(!idempotent("POST") && !idempotent("PATCH"));
        assert!(
            idempotent("GET") && idempotent("HEAD") && idempotent("PUT") && idempotent("DELETE")
        );
    }

    #[test]
    fn overloaded_is_503_at_once() {
        assert_eq!(after_rejection(OVERLOADED, true, 1, 0.5), Next::Fail(BUSY));
        let overloaded_only = Rejection {
            retryable: false,
            overloaded: true,
        };
        assert_eq!(
            after_rejection(overloaded_only, true, 1, 0.5),
            Next::Fail(BUSY)
        );
        assert_eq!(BUSY.status(), 503);
    }

    #[test]
    fn anything_else_is_an_internal_error() {
        let Next::Fail(e) = after_rejection(BROKEN, true, 1, 0.5) else {
            panic!("a broken object is not retried")
        };
        assert_eq!((e.status(), e.code()), (500, "internal_error"));
        assert!(matches!(e, ApiError::Internal(c) if c.detail == "the object call was rejected"));
    }
}
