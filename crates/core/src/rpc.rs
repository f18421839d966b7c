//! What to do when the runtime rejects a call into one of ghplane's own Durable Objects.
//!
//! **Invariant:** only an idempotent call (GET, HEAD, PUT, DELETE) is sent again, once,
//! and only after a rejection the runtime marks `retryable` (the object was reset, e.g. by a
//! deploy) and not `overloaded` (another call would add to the load). A POST may have taken
//! effect before the reset: a delivery handed to its object, for one, is recovered by
//! GitHub's redelivery instead, never by a second hand-off that could answer `duplicate`.

use crate::ApiError;

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
        ApiError::Internal
    })
}

/// Whether a call with this HTTP method may be sent twice.
pub fn idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "PUT" | "DELETE")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            after_rejection(BROKEN, true, 1, 0.5),
            Next::Fail(ApiError::Internal)
        );
    }
}
