//! GitHub's failure answers, classified once so every caller decides on a type, not on
//! status codes and message strings.

use serde::Deserialize;

/// One entry of a 422's `errors[]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
    /// Primary (429, or 403 with `x-ratelimit-remaining: 0`) or secondary rate limit.
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

impl GithubError {
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
        let reset_in = header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|reset| reset.saturating_sub(now_unix).max(0) as u64);
        let exhausted = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
        let secondary = message.to_ascii_lowercase().contains("rate limit");
        match status {
            429 => GithubError::RateLimited {
                // As for a secondary limit: without headers, GitHub asks for at least a minute.
                retry_after_secs: retry_after.or(reset_in).or(Some(60)),
            },
            403 if retry_after.is_some() || exhausted || secondary => GithubError::RateLimited {
                // GitHub's guidance for a secondary limit without headers: wait at least a minute.
                retry_after_secs: retry_after
                    .or(if exhausted { reset_in } else { None })
                    .or(Some(60)),
            },
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
