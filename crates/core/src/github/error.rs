//! GitHub's failure answers, classified once so every caller decides on a type, not on
//! status codes and message strings.

use serde::{Deserialize, Serialize};

/// One entry of a 422's `errors[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum GithubError {
    #[error("GitHub rejected the credentials (401): {message}")]
    Unauthorized { message: String },
    #[error("GitHub refused the request (403): {message}")]
    Forbidden { message: String },
    #[error("GitHub has no such resource (404)")]
    NotFound,
    #[error("GitHub rejected the request (422): {message}")]
    Unprocessable {
        message: String,
        errors: Vec<FieldError>,
    },
    /// Primary (429, or 403 with `x-ratelimit-remaining: 0`) or secondary rate limit, with
    /// the wait GitHub's rule gives ([`rate_limit_wait_secs`]; always `Some` when classified).
    #[error("GitHub rate limit hit; retry after {retry_after_secs:?} s")]
    RateLimited { retry_after_secs: Option<u64> },
    #[error("GitHub failed ({status})")]
    Server { status: u16 },
    #[error("GitHub could not be reached: {0}")]
    Network(String),
    #[error("GitHub answered something that is not the expected JSON: {0}")]
    MalformedResponse(String),
    #[error("GitHub answered an unexpected status {status}")]
    Unexpected { status: u16 },
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

/// GitHub's wait when it names none: "wait at least one minute before retrying".
pub const DEFAULT_RATE_LIMIT_WAIT_SECS: u64 = 60;

/// How long to wait after a rate limit, by GitHub's documented rule: `Retry-After` when
/// sent; else, when `x-ratelimit-remaining` is `0`, until `x-ratelimit-reset` (at least a
/// second); else at least [`DEFAULT_RATE_LIMIT_WAIT_SECS`].
pub fn rate_limit_wait_secs(
    retry_after: Option<u64>,
    exhausted: bool,
    reset_unix: Option<i64>,
    now_unix: i64,
) -> u64 {
    if let Some(secs) = retry_after {
        return secs;
    }
    match (exhausted, reset_unix) {
        (true, Some(reset)) => reset.saturating_sub(now_unix).max(1) as u64,
        _ => DEFAULT_RATE_LIMIT_WAIT_SECS,
    }
}

impl GithubError {
    /// Every code a GitHub failure answers with, for the OpenAPI document.
    pub const ALL_CODES: &'static [&'static str] = &[
        "github_unauthorized",
        "github_forbidden",
        "github_not_found",
        "github_rejected",
        "github_rate_limited",
        "github_unavailable",
    ];

    /// ghplane's stable code for this failure (GitHub's own status is not passed on).
    pub fn code(&self) -> &'static str {
        match self {
            GithubError::Unauthorized { .. } => "github_unauthorized",
            GithubError::Forbidden { .. } => "github_forbidden",
            GithubError::NotFound => "github_not_found",
            GithubError::Unprocessable { .. } => "github_rejected",
            GithubError::RateLimited { .. } => "github_rate_limited",
            GithubError::Server { .. }
            | GithubError::Network(_)
            | GithubError::MalformedResponse(_)
            | GithubError::Unexpected { .. } => "github_unavailable",
        }
    }

    /// The status ghplane answers with: 503 for a rate limit (with `retry_after`), else 502.
    pub fn status(&self) -> u16 {
        match self {
            GithubError::RateLimited { .. } => 503,
            _ => 502,
        }
    }

    /// GitHub's wait after a rate limit.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            GithubError::RateLimited { retry_after_secs } => *retry_after_secs,
            _ => None,
        }
    }

    /// Classifies a non-2xx answer. `header` looks a response header up by lowercase name;
    /// `now_unix` turns `x-ratelimit-reset` into a delay.
    pub fn classify(
        status: u16,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
        now_unix: i64,
    ) -> GithubError {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let message = parsed
            .as_ref()
            .map(|b| b.message.clone())
            .unwrap_or_default();
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok());
        let exhausted = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
        let secondary = message.to_ascii_lowercase().contains("rate limit");
        let limited = GithubError::RateLimited {
            retry_after_secs: Some(rate_limit_wait_secs(
                retry_after,
                exhausted,
                reset,
                now_unix,
            )),
        };
        match status {
            429 => limited,
            403 if retry_after.is_some() || exhausted || secondary => limited,
            401 => GithubError::Unauthorized { message },
            403 => GithubError::Forbidden { message },
            404 => GithubError::NotFound,
            422 => GithubError::Unprocessable {
                message,
                errors: parsed.map(|b| b.errors).unwrap_or_default(),
            },
            500..=599 => GithubError::Server { status },
            _ => GithubError::Unexpected { status },
        }
    }

    /// Worth another try later (rate limits, GitHub's own failures, the network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GithubError::RateLimited { .. } | GithubError::Server { .. } | GithubError::Network(_)
        )
    }

    /// A 422 whose `errors[]` or message says the name is taken (GitHub's wording for repos).
    pub fn is_name_taken(&self) -> bool {
        match self {
            GithubError::Unprocessable { message, errors } => {
                errors.iter().any(|e| {
                    e.field.as_deref() == Some("name")
                        && (e.code.as_deref() == Some("custom")
                            || e.code.as_deref() == Some("already_exists"))
                        && e.message
                            .as_deref()
                            .is_none_or(|m| m.contains("already exists"))
                }) || message.contains("already exists")
            }
            _ => false,
        }
    }
}

#[cfg(test)]
pub(crate) fn samples() -> Vec<GithubError> {
    vec![
        GithubError::Unauthorized {
            message: "Bad credentials".into(),
        },
        GithubError::Forbidden {
            message: String::new(),
        },
        GithubError::NotFound,
        GithubError::Unprocessable {
            message: "Validation Failed".into(),
            errors: vec![FieldError {
                resource: Some("Repository".into()),
                field: Some("name".into()),
                code: Some("custom".into()),
                message: None,
            }],
        },
        GithubError::RateLimited {
            retry_after_secs: Some(60),
        },
        GithubError::Server { status: 502 },
        GithubError::Network("reset".into()),
        GithubError::MalformedResponse("eof".into()),
        GithubError::Unexpected { status: 418 },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn maps_statuses() {
        let c = |s, b: &str| GithubError::classify(s, headers(&[]), b.as_bytes(), 0);
        assert!(
            matches!(c(401, r#"{"message":"Bad credentials"}"#), GithubError::Unauthorized { message } if message == "Bad credentials")
        );
        assert!(matches!(
            c(
                403,
                r#"{"message":"Resource not accessible by integration"}"#
            ),
            GithubError::Forbidden { .. }
        ));
        assert_eq!(c(404, "{}"), GithubError::NotFound);
        assert_eq!(c(502, "<html>"), GithubError::Server { status: 502 });
        assert_eq!(c(418, ""), GithubError::Unexpected { status: 418 });
    }

    #[test]
    fn rate_limits_from_headers() {
        let r = GithubError::classify(429, headers(&[("retry-after", "2")]), b"{}", 0);
        assert_eq!(
            r,
            GithubError::RateLimited {
                retry_after_secs: Some(2)
            }
        );
        let r = GithubError::classify(
            403,
            headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1100"),
            ]),
            b"{}",
            1000,
        );
        assert_eq!(
            r,
            GithubError::RateLimited {
                retry_after_secs: Some(100)
            }
        );
        let r = GithubError::classify(
            403,
            headers(&[]),
            br#"{"message":"You have exceeded a secondary rate limit"}"#,
            0,
        );
        assert_eq!(
            r,
            GithubError::RateLimited {
                retry_after_secs: Some(60)
            }
        );
        assert!(r.is_transient());
    }

    #[test]
    fn rate_limits_without_retry_after_follow_githubs_rule() {
        let wait = |status, h: &[(&str, &str)]| match GithubError::classify(
            status,
            headers(h),
            b"{}",
            1000,
        ) {
            GithubError::RateLimited { retry_after_secs } => retry_after_secs,
            other => panic!("{status} {h:?}: {other:?}"),
        };
        assert_eq!(wait(429, &[]), Some(60), "no headers: at least a minute");
        assert_eq!(
            wait(429, &[("x-ratelimit-reset", "1100")]),
            Some(60),
            "a reset without an exhausted budget is not the reason"
        );
        assert_eq!(
            wait(
                429,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1300")
                ]
            ),
            Some(300)
        );
        assert_eq!(
            wait(
                403,
                &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")]
            ),
            Some(1),
            "a reset already past: retry, but not in a tight loop"
        );
        assert_eq!(
            wait(403, &[("x-ratelimit-remaining", "0")]),
            Some(60),
            "exhausted, no reset"
        );
        assert_eq!(
            wait(429, &[("retry-after", "7"), ("x-ratelimit-remaining", "0")]),
            Some(7),
            "Retry-After wins"
        );
        assert_eq!(rate_limit_wait_secs(None, false, None, 0), 60);
        assert_eq!(rate_limit_wait_secs(Some(0), true, Some(50), 0), 0);
        assert_eq!(
            rate_limit_wait_secs(None, true, Some(i64::MAX), i64::MIN),
            i64::MAX as u64
        );
    }

    #[test]
    fn unprocessable_keeps_errors_and_spots_taken_names() {
        let body = br#"{"message":"Repository creation failed.","errors":[{"resource":"Repository","code":"custom","field":"name","message":"name already exists on this account"}]}"#;
        let e = GithubError::classify(422, headers(&[]), body, 0);
        assert!(e.is_name_taken());
        assert!(!e.is_transient());
        let other = GithubError::classify(
            422,
            headers(&[]),
            br#"{"message":"Validation Failed","errors":[{"field":"ref","code":"invalid"}]}"#,
            0,
        );
        assert!(!other.is_name_taken());
    }
}
