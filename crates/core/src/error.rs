//! Every error a client can see, with its stable machine code and HTTP status.
//!
//! The adapter renders these as `{"error":{"code","message"}}` in exactly one place. Codes are
//! part of the API contract (the OpenAPI document lists them): never rename one.

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

/// Why a 500 happened: where (`file:line`) and, when known, what failed. The renderer logs it
/// once; it is never sent to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    pub at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What an underlying failure may say about itself in a log line. Implemented only for
/// errors whose text never quotes the input (serde_json's does for a wrong-typed string, so
/// only its category and position are kept).
pub trait Detail {
    fn detail(&self) -> String;
}

impl Detail for serde_json::Error {
    fn detail(&self) -> String {
        format!(
            "json {:?} error at line {} column {}",
            self.classify(),
            self.line(),
            self.column()
        )
    }
}

impl Detail for String {
    fn detail(&self) -> String {
        self.clone()
    }
}

impl Detail for &str {
    fn detail(&self) -> String {
        (*self).to_owned()
    }
}

/// `ApiError::Internal` with the current `file:line` and, optionally, a [`Detail`].
#[macro_export]
macro_rules! internal {
    () => {
        $crate::ApiError::Internal($crate::error::Cause {
            at: concat!(file!(), ":", line!()).to_owned(),
            detail: String::new(),
        })
    };
    ($e:expr) => {
        $crate::ApiError::Internal($crate::error::Cause {
            at: concat!(file!(), ":", line!()).to_owned(),
            detail: $crate::error::Detail::detail(&$e),
        })
    };
}

/// Codes are `&'static str` in memory; an error that crossed an object boundary gets its
/// code back from the list of every code (an unknown one cannot be told apart from a bug).
fn intern<'de, D: Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
    let code = String::deserialize(d)?;
    Ok(all_codes()
        .into_iter()
        .find(|c| *c == code)
        .unwrap_or("internal_error"))
}

/// A stable error code. An alias and not `&'static str` in the variants: serde would take a
/// `&str` field as borrowed from the input, and errors must deserialize from owned bytes.
pub type Code = &'static str;

#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidId(String),
    /// A private key refused when it is stored (not when a token is first needed).
    #[error("{message}")]
    InvalidPrivateKey {
        #[serde(deserialize_with = "intern")]
        code: Code,
        message: String,
    },
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("installation {0} has no configuration")]
    InstallationNotFound(u64),
    #[error("app {0} is not registered")]
    AppNotFound(u64),
    #[error("no such service key")]
    ServiceKeyNotFound,
    /// A reference to an app the registry does not hold.
    #[error("app {0} is not registered; register it with PUT /api/apps/{0} first")]
    UnknownApp(u64),
    #[error("installation {0} is suspended on GitHub; no token is issued")]
    InstallationSuspended(u64),
    #[error("no project {0}")]
    ProjectNotFound(String),
    /// A spec status move the project's state machine refuses.
    #[error("{0}")]
    IllegalStatusTransition(String),
    /// A repository named in a request that GitHub does not show to our credentials.
    #[error("{0}")]
    GithubRepoNotFound(String),
    /// GitHub failed or refused; `code` is one of the `github_*` codes.
    #[error("{message}")]
    Github {
        #[serde(deserialize_with = "intern")]
        code: Code,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// What the admin SPA does about a GitHub failure for a signed-in user: `session_invalid`
    /// (401: sign in again), `missing_permissions` (403: grant or install), `transient` (503:
    /// try again, after `retry_after_secs` when known).
    #[error("{message}")]
    UserAccess {
        #[serde(deserialize_with = "intern")]
        code: Code,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// The GitHub sign-in handshake was refused: one of the `oauth_*` codes.
    #[error("{message}")]
    OAuth {
        #[serde(deserialize_with = "intern")]
        code: Code,
        message: String,
    },
    #[error("{method} is not allowed here; allowed: {}", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        // Never crosses an object boundary (only the route table answers it).
        #[serde(skip_deserializing)]
        allowed: Vec<Code>,
    },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the server is missing required configuration: {0}")]
    Misconfigured(std::borrow::Cow<'static, str>),
    /// An error of a feature module (webhooks, projects, deploys, mint) with its own stable
    /// code and status; each module lists its codes, and `ALL_CODES` includes them.
    #[error("{message}")]
    Coded {
        status: u16,
        #[serde(deserialize_with = "intern")]
        code: Code,
        message: String,
    },
    /// An error another Durable Object already rendered, passed through unchanged.
    #[error("{message}")]
    Relayed {
        status: u16,
        code: String,
        message: String,
    },
    /// One of ghplane's own parts (a Durable Object) is overloaded or restarting, and a
    /// retry did not help: try again after `retry_after_secs`.
    #[error("the service is busy; try again shortly")]
    Unavailable { retry_after_secs: u64 },
    /// The real cause is logged by the renderer, never sent.
    #[error("something went wrong")]
    Internal(Cause),
}

impl ApiError {
    pub fn code(&self) -> &str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::Validation(_) => "validation_failed",
            ApiError::InvalidId(_) => "invalid_id",
            ApiError::InvalidPrivateKey { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RouteNotFound { .. } => "route_not_found",
            ApiError::InstallationNotFound(_) => "installation_not_found",
            ApiError::AppNotFound(_) => "app_not_found",
            ApiError::ServiceKeyNotFound => "service_key_not_found",
            ApiError::UnknownApp(_) => "unknown_app",
            ApiError::InstallationSuspended(_) => "installation_suspended",
            ApiError::ProjectNotFound(_) => "project_not_found",
            ApiError::IllegalStatusTransition(_) => "illegal_status_transition",
            ApiError::GithubRepoNotFound(_) => "github_repo_not_found",
            ApiError::Github { code, .. } => code,
            ApiError::UserAccess { code, .. } | ApiError::OAuth { code, .. } => code,
            ApiError::Relayed { code, .. } => code,
            ApiError::Coded { code, .. } => code,
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Misconfigured(_) => "server_misconfigured",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::Validation(_)
            | ApiError::InvalidId(_)
            | ApiError::InvalidPrivateKey { .. } => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) | ApiError::InstallationSuspended(_) => 403,
            ApiError::RouteNotFound { .. }
            | ApiError::InstallationNotFound(_)
            | ApiError::AppNotFound(_)
            | ApiError::ServiceKeyNotFound
            | ApiError::ProjectNotFound(_) => 404,
            ApiError::IllegalStatusTransition(_) => 409,
            ApiError::UnknownApp(_) | ApiError::GithubRepoNotFound(_) => 422,
            ApiError::Github {
                code: "github_rate_limited",
                ..
            } => 503,
            ApiError::Github { .. } => 502,
            ApiError::UserAccess {
                code: "session_invalid",
                ..
            } => 401,
            ApiError::UserAccess {
                code: "missing_permissions",
                ..
            } => 403,
            ApiError::UserAccess { .. } => 503,
            ApiError::OAuth {
                code: "oauth_exchange_failed",
                ..
            } => 502,
            ApiError::OAuth { .. } => 400,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Misconfigured(_) | ApiError::Internal(_) => 500,
            ApiError::Unavailable { .. } => 503,
            ApiError::Relayed { status, .. } | ApiError::Coded { status, .. } => *status,
        }
    }

    /// The message sent to the client. For 5xx it is deliberately generic.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "Something went wrong".to_owned(),
            other => other.to_string(),
        }
    }

    /// Seconds after which a retry may succeed, when GitHub said so.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::Github {
                retry_after_secs, ..
            }
            | ApiError::UserAccess {
                retry_after_secs, ..
            } => *retry_after_secs,
            ApiError::Unavailable { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The JSON body every error response carries (`retry_after` only when known).
    pub fn body(&self) -> serde_json::Value {
        let mut body =
            serde_json::json!({"error": {"code": self.code(), "message": self.public_message()}});
        if let Some(secs) = self.retry_after_secs() {
            body["error"]["retry_after"] = secs.into();
        }
        body
    }

    /// Every code, for the OpenAPI document and its test.
    pub const ALL_CODES: &'static [&'static str] = &[
        "malformed_json",
        "validation_failed",
        "invalid_id",
        "private_key_not_pem",
        "private_key_unsupported",
        "private_key_bad_base64",
        "private_key_not_rsa",
        "private_key_malformed",
        "private_key_too_small",
        "unauthorized",
        "forbidden",
        "route_not_found",
        "installation_not_found",
        "app_not_found",
        "service_key_not_found",
        "unknown_app",
        "installation_suspended",
        "project_not_found",
        "illegal_status_transition",
        "github_repo_not_found",
        "github_unauthorized",
        "github_forbidden",
        "github_not_found",
        "github_rejected",
        "github_rate_limited",
        "github_unavailable",
        "session_invalid",
        "missing_permissions",
        "transient",
        "oauth_state_invalid",
        "oauth_state_expired",
        "oauth_state_reused",
        "oauth_denied",
        "oauth_code_invalid",
        "oauth_exchange_failed",
        "method_not_allowed",
        "payload_too_large",
        "unsupported_media_type",
        "server_misconfigured",
        "service_unavailable",
        "internal_error",
    ];
}

/// Every code any response may carry: the core's and each feature module's.
pub fn all_codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = ApiError::ALL_CODES.to_vec();
    codes.extend(crate::webhook::WebhookError::ALL_CODES);
    codes.extend(crate::deploy::DeployError::ALL_CODES);
    codes.extend(crate::installer::InstallerError::ALL_CODES);
    codes.extend(crate::mint::Denial::ALL_CODES);
    codes.sort_unstable();
    codes.dedup();
    codes
}

impl From<crate::webhook::WebhookError> for ApiError {
    fn from(e: crate::webhook::WebhookError) -> ApiError {
        ApiError::Coded {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<crate::projects::ProjectError> for ApiError {
    fn from(e: crate::projects::ProjectError) -> ApiError {
        match e {
            crate::projects::ProjectError::IllegalStatusTransition { .. } => {
                ApiError::IllegalStatusTransition(e.to_string())
            }
        }
    }
}

impl From<crate::deploy::DeployError> for ApiError {
    fn from(e: crate::deploy::DeployError) -> ApiError {
        ApiError::Coded {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<crate::github::error::GithubError> for ApiError {
    fn from(e: crate::github::error::GithubError) -> ApiError {
        use crate::github::error::GithubError as G;
        let (code, retry_after_secs) = match &e {
            G::Unauthorized { .. } => ("github_unauthorized", None),
            G::Forbidden { .. } => ("github_forbidden", None),
            G::NotFound => ("github_not_found", None),
            G::Unprocessable { .. } => ("github_rejected", None),
            G::RateLimited { retry_after_secs } => ("github_rate_limited", *retry_after_secs),
            G::Server { .. } | G::Network(_) | G::MalformedResponse(_) | G::Unexpected { .. } => {
                ("github_unavailable", None)
            }
        };
        ApiError::Github {
            code,
            message: e.to_string(),
            retry_after_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_never_shows_a_cause() {
        let e = crate::internal!("the cause");
        assert_eq!(e.status(), 500);
        assert!(!e.body().to_string().contains("the cause"));
        assert_eq!(e.body()["error"]["message"], "Something went wrong");
    }

    #[test]
    fn a_busy_object_is_503_with_retry_after() {
        let e = ApiError::Unavailable {
            retry_after_secs: 1,
        };
        assert_eq!((e.status(), e.code()), (503, "service_unavailable"));
        assert_eq!(e.retry_after_secs(), Some(1));
        assert_eq!(e.body()["error"]["retry_after"], 1);
    }

    #[test]
    fn a_rate_limit_without_headers_tells_the_caller_a_minute() {
        let e = ApiError::from(crate::github::error::GithubError::classify(
            429,
            |_| None,
            b"{}",
            0,
        ));
        assert_eq!((e.status(), e.code()), (503, "github_rate_limited"));
        assert_eq!(e.retry_after_secs(), Some(60));
    }

    #[test]
    fn every_variant_code_is_listed() {
        let samples = [
            ApiError::MalformedJson(String::new()),
            ApiError::Validation(String::new()),
            ApiError::InvalidId(String::new()),
            ApiError::Unauthorized,
            ApiError::Forbidden(String::new()),
            ApiError::RouteNotFound {
                method: "GET".into(),
                path: "/".into(),
            },
            ApiError::InstallationNotFound(1),
            ApiError::AppNotFound(1),
            ApiError::ServiceKeyNotFound,
            ApiError::UnknownApp(1),
            ApiError::InstallationSuspended(1),
            ApiError::ProjectNotFound("p-1".into()),
            ApiError::GithubRepoNotFound(String::new()),
            ApiError::Unavailable {
                retry_after_secs: 1,
            },
            ApiError::from(crate::projects::ProjectError::IllegalStatusTransition {
                from: crate::projects::SpecStatus::Draft,
                to: crate::projects::SpecStatus::Review,
            }),
            ApiError::from(crate::github::error::GithubError::NotFound),
            crate::admin_access::installations::classify(
                &crate::github::error::GithubError::NotFound,
            ),
            crate::admin_access::state::invalid("x"),
            ApiError::OAuth {
                code: "oauth_exchange_failed",
                message: String::new(),
            },
            ApiError::MethodNotAllowed {
                method: "GET".into(),
                allowed: vec!["PUT"],
            },
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType,
            ApiError::Misconfigured("X".into()),
            crate::internal!(),
        ];
        for e in samples {
            assert!(
                ApiError::ALL_CODES.contains(&e.code()),
                "{} missing",
                e.code()
            );
        }
    }

    #[test]
    fn project_errors_keep_their_code_and_status() {
        let core = crate::projects::ProjectError::IllegalStatusTransition {
            from: crate::projects::SpecStatus::Review,
            to: crate::projects::SpecStatus::Draft,
        };
        let api = ApiError::from(core.clone());
        assert_eq!((api.code(), api.status()), (core.code(), core.status()));
        assert_eq!(api.to_string(), core.to_string());
    }

    #[test]
    fn user_access_classes_and_retry_after() {
        let e = ApiError::UserAccess {
            code: "transient",
            message: "GitHub rate limit".into(),
            retry_after_secs: Some(30),
        };
        assert_eq!(e.status(), 503);
        assert_eq!(e.body()["error"]["retry_after"], 30);
        for (code, status) in [
            ("session_invalid", 401),
            ("missing_permissions", 403),
            ("transient", 503),
        ] {
            let e = ApiError::UserAccess {
                code,
                message: String::new(),
                retry_after_secs: None,
            };
            assert_eq!(e.status(), status);
            assert!(e.body()["error"].get("retry_after").is_none());
            assert!(ApiError::ALL_CODES.contains(&code));
        }
    }

    #[test]
    fn errors_cross_a_boundary_as_themselves() {
        for e in [
            ApiError::ProjectNotFound("p-1".into()),
            ApiError::from(crate::github::error::GithubError::NotFound),
            ApiError::Unavailable {
                retry_after_secs: 1,
            },
            ApiError::Misconfigured("ENCRYPTION_KEY".into()),
            crate::internal!("storage get failed".to_owned()),
        ] {
            let wire = serde_json::to_vec(&e).unwrap();
            let back: ApiError = serde_json::from_slice(&wire).unwrap();
            assert_eq!(back, e);
        }
        let wire = br#"{"Github":{"code":"made_up","message":"","retry_after_secs":null}}"#;
        let back: ApiError = serde_json::from_slice(wire).unwrap();
        assert_eq!(
            back.code(),
            "internal_error",
            "an unknown code is not invented"
        );
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let e = ApiError::MethodNotAllowed {
            method: "POST".into(),
            allowed: vec!["GET", "PUT"],
        };
        assert_eq!(e.status(), 405);
        assert!(e.to_string().contains("GET, PUT"));
    }
}
