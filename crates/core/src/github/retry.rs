//! GitHub's etiquette on retries, decided here so the client only does transport: refusals
//! are never retried; GitHub's own failures and the network are, a few times with a growing
//! pause, and only for requests that may be sent twice; a rate limit is waited out only when
//! GitHub's wait is short (the request was not processed, so any method may go again).

use super::error::{GithubError, DEFAULT_RATE_LIMIT_WAIT_SECS};

/// Retries after the first attempt.
pub const MAX_RETRIES: u32 = 3;
/// A rate limit asking for a longer wait is returned to the caller instead of slept through:
/// a request must finish well inside the platform's limits.
pub const MAX_RATE_LIMIT_WAIT_SECS: u64 = 10;
/// The first pause after a transient failure; each retry doubles it.
pub const BACKOFF_BASE_MS: u64 = 200;

/// The pause (milliseconds) before trying again after `error`, when `retries` retries were
/// already made; `None`: give the error to the caller. `idempotent`: the request may be sent
/// twice without harm (creating a repository or a deployment may not).
pub fn next_wait_ms(error: &GithubError, idempotent: bool, retries: u32) -> Option<u64> {
    if retries >= MAX_RETRIES {
        return None;
    }
    match error {
        // GitHub's wait (at least a minute when it names none) is slept only when short;
        // otherwise the caller gets `github_rate_limited` with `retry_after`.
        GithubError::RateLimited { retry_after_secs } => {
            let secs = retry_after_secs.unwrap_or(DEFAULT_RATE_LIMIT_WAIT_SECS);
            (secs <= MAX_RATE_LIMIT_WAIT_SECS).then(|| secs * 1000)
        }
        e if e.is_transient() && idempotent => Some(BACKOFF_BASE_MS << retries),
        _ => None,
    }
}

/// GitHub's 401 for an App JWT whose `iat`/`exp` it finds off, i.e. our clock is skewed: sign
/// again with GitHub's clock (its `Date` header) and retry once.
pub fn is_jwt_clock_error(e: &GithubError) -> bool {
    match e {
        GithubError::Unauthorized { message } => {
            let m = message.to_ascii_lowercase();
            m.contains("'iat'")
                || m.contains("'exp'")
                || m.contains("issued at")
                || m.contains("expiration time")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(secs: Option<u64>) -> GithubError {
        GithubError::RateLimited {
            retry_after_secs: secs,
        }
    }

    #[test]
    fn transient_failures_back_off_three_times_when_idempotent() {
        for e in [
            GithubError::Server { status: 502 },
            GithubError::Network("reset".into()),
        ] {
            let waits: Vec<Option<u64>> = (0..4).map(|n| next_wait_ms(&e, true, n)).collect();
            assert_eq!(waits, [Some(200), Some(400), Some(800), None], "{e}");
            assert_eq!(next_wait_ms(&e, false, 0), None, "never resend a create");
        }
    }

    #[test]
    fn refusals_are_never_retried() {
        for e in [
            GithubError::Unauthorized {
                message: String::new(),
            },
            GithubError::Forbidden {
                message: String::new(),
            },
            GithubError::NotFound,
            GithubError::Unprocessable {
                message: String::new(),
                errors: vec![],
            },
            GithubError::MalformedResponse(String::new()),
            GithubError::Unexpected { status: 418 },
        ] {
            assert_eq!(next_wait_ms(&e, true, 0), None, "{e}");
        }
    }

    #[test]
    fn short_rate_limits_are_waited_out_by_any_method() {
        assert_eq!(next_wait_ms(&limited(Some(2)), false, 0), Some(2_000));
        assert_eq!(
            next_wait_ms(&limited(Some(MAX_RATE_LIMIT_WAIT_SECS)), true, 2),
            Some(10_000)
        );
        assert_eq!(next_wait_ms(&limited(Some(2)), true, MAX_RETRIES), None);
    }

    #[test]
    fn a_skewed_jwt_is_told_from_bad_credentials() {
        let unauthorized = |m: &str| GithubError::Unauthorized {
            message: m.to_owned(),
        };
        for m in [
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
            "'Expiration time' claim ('exp') is too far in the future",
        ] {
            assert!(is_jwt_clock_error(&unauthorized(m)), "{m}");
        }
        assert!(!is_jwt_clock_error(&unauthorized("Bad credentials")));
        assert!(!is_jwt_clock_error(&GithubError::Forbidden {
            message: "'exp'".into()
        }));
    }

    #[test]
    fn long_or_unnamed_rate_limits_go_back_to_the_caller() {
        assert_eq!(next_wait_ms(&limited(Some(11)), true, 0), None);
        assert_eq!(
            next_wait_ms(&limited(None), true, 0),
            None,
            "no wait named: GitHub's minute is too long to sleep"
        );
    }
}
