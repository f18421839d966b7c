//! Every error a client can see, with its stable machine code and HTTP status.
//!
//! The adapter renders these as `{"error":{"code","message"}}` in exactly one place. Codes are
//! part of the API contract (the OpenAPI document lists them): never rename one.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::deploy::error::DeployError;
use crate::github::error::GithubError;
use crate::installer::error::InstallerError;
use crate::mint::denial::Denial;
use crate::pem::PemError;
use crate::webhook::error::WebhookError;

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

/// What the admin SPA does about a GitHub failure for a signed-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserAccessKind {
    /// 401: sign in again.
    SessionInvalid,
    /// 403: grant the permission or install the app.
    MissingPermissions,
    /// 503: try again, after `retry_after_secs` when known.
    Transient,
}

impl UserAccessKind {
    pub const ALL: [UserAccessKind; 3] = [
        UserAccessKind::SessionInvalid,
        UserAccessKind::MissingPermissions,
        UserAccessKind::Transient,
    ];

    pub fn code(self) -> &'static str {
        match self {
            UserAccessKind::SessionInvalid => "session_invalid",
            UserAccessKind::MissingPermissions => "missing_permissions",
            UserAccessKind::Transient => "transient",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            UserAccessKind::SessionInvalid => 401,
            UserAccessKind::MissingPermissions => 403,
            UserAccessKind::Transient => 503,
        }
    }
}

/// Why the GitHub sign-in handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OAuthCode {
    StateInvalid,
    StateExpired,
    StateReused,
    Denied,
    CodeInvalid,
    /// GitHub could not be reached or answered the code exchange unexpectedly (502).
    ExchangeFailed,
}

impl OAuthCode {
    pub const ALL: [OAuthCode; 6] = [
        OAuthCode::StateInvalid,
        OAuthCode::StateExpired,
        OAuthCode::StateReused,
        OAuthCode::Denied,
        OAuthCode::CodeInvalid,
        OAuthCode::ExchangeFailed,
    ];

    pub fn code(self) -> &'static str {
        match self {
            OAuthCode::StateInvalid => "oauth_state_invalid",
            OAuthCode::StateExpired => "oauth_state_expired",
            OAuthCode::StateReused => "oauth_state_reused",
            OAuthCode::Denied => "oauth_denied",
            OAuthCode::CodeInvalid => "oauth_code_invalid",
            OAuthCode::ExchangeFailed => "oauth_exchange_failed",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            OAuthCode::ExchangeFailed => 502,
            _ => 400,
        }
    }
}

/// Every error a client can see. The feature errors it wraps are leaf types (their files
/// import nothing that imports this one); their `From` is the `#[from]` on the variant.
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidId(String),
    /// A private key refused when it is stored (not when a token is first needed).
    #[error("privateKey: {0}")]
    PrivateKey(#[from] PemError),
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
    /// A request body names an app the registry does not hold (`app_not_registered`, 422).
    /// Not `unknown_app`: that is a webhook signed by an unregistered app (401).
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
    /// GitHub failed or refused (the `github_*` codes).
    #[error("{0}")]
    Github(#[from] GithubError),
    /// What the admin SPA does about a GitHub failure for a signed-in user.
    #[error("{message}")]
    UserAccess {
        kind: UserAccessKind,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// The GitHub sign-in handshake was refused: one of the `oauth_*` codes.
    #[error("{message}")]
    OAuth { code: OAuthCode, message: String },
    #[error("{method} is not allowed here; allowed: {}", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        allowed: Vec<String>,
    },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the server is missing required configuration: {0}")]
    Misconfigured(Cow<'static, str>),
    #[error("{0}")]
    Webhook(#[from] WebhookError),
    #[error("{0}")]
    Deploy(#[from] DeployError),
    #[error("{0}")]
    Installer(#[from] InstallerError),
    /// A mint refusal: fullsend's sentence is the message; its `detail` is logged, never sent.
    #[error("{}", .0.message)]
    Mint(Denial),
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
            ApiError::PrivateKey(e) => e.code(),
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RouteNotFound { .. } => "route_not_found",
            ApiError::InstallationNotFound(_) => "installation_not_found",
            ApiError::AppNotFound(_) => "app_not_found",
            ApiError::ServiceKeyNotFound => "service_key_not_found",
            ApiError::UnknownApp(_) => "app_not_registered",
            ApiError::InstallationSuspended(_) => "installation_suspended",
            ApiError::ProjectNotFound(_) => "project_not_found",
            ApiError::IllegalStatusTransition(_) => "illegal_status_transition",
            ApiError::GithubRepoNotFound(_) => "github_repo_not_found",
            ApiError::Github(e) => e.code(),
            ApiError::UserAccess { kind, .. } => kind.code(),
            ApiError::OAuth { code, .. } => code.code(),
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Misconfigured(_) => "server_misconfigured",
            ApiError::Webhook(e) => e.code(),
            ApiError::Deploy(e) => e.code(),
            ApiError::Installer(e) => e.code(),
            ApiError::Mint(d) => d.code,
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::Validation(_)
            | ApiError::InvalidId(_)
            | ApiError::PrivateKey(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) | ApiError::InstallationSuspended(_) => 403,
            ApiError::RouteNotFound { .. }
            | ApiError::InstallationNotFound(_)
            | ApiError::AppNotFound(_)
            | ApiError::ServiceKeyNotFound
            | ApiError::ProjectNotFound(_) => 404,
            ApiError::IllegalStatusTransition(_) => 409,
            ApiError::UnknownApp(_) | ApiError::GithubRepoNotFound(_) => 422,
            ApiError::Github(e) => e.status(),
            ApiError::UserAccess { kind, .. } => kind.status(),
            ApiError::OAuth { code, .. } => code.status(),
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Misconfigured(_) | ApiError::Internal(_) => 500,
            ApiError::Webhook(e) => e.status(),
            ApiError::Deploy(e) => e.status(),
            ApiError::Installer(e) => e.status(),
            ApiError::Mint(d) => d.status,
            ApiError::Unavailable { .. } => 503,
        }
    }

    /// The message sent to the client. For 5xx it is deliberately generic.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "Something went wrong".to_owned(),
            other => other.to_string(),
        }
    }

    /// What the log line of a server error may add to its code: where and why an internal
    /// error happened, or a mint refusal's detail. Never part of a response.
    pub fn cause(&self) -> Option<Cause> {
        match self {
            ApiError::Internal(cause) => Some(cause.clone()),
            ApiError::Mint(d) if d.status >= 500 => d.detail.clone().map(|detail| Cause {
                at: "mint".to_owned(),
                detail,
            }),
            _ => None,
        }
    }

    /// Seconds after which a retry may succeed, when GitHub said so.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::Github(e) => e.retry_after_secs(),
            ApiError::UserAccess {
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

    /// The codes of the variants that carry no feature error, for the OpenAPI document.
    pub const ALL_CODES: &'static [&'static str] = &[
        "malformed_json",
        "validation_failed",
        "invalid_id",
        "unauthorized",
        "forbidden",
        "route_not_found",
        "installation_not_found",
        "app_not_found",
        "service_key_not_found",
        "app_not_registered",
        "installation_suspended",
        "project_not_found",
        "illegal_status_transition",
        "github_repo_not_found",
        "method_not_allowed",
        "payload_too_large",
        "unsupported_media_type",
        "server_misconfigured",
        "service_unavailable",
        "internal_error",
    ];
}

impl From<Denial> for ApiError {
    fn from(d: Denial) -> ApiError {
        ApiError::Mint(d)
    }
}

/// Every code any response may carry, once each (sorted): the core's and each wrapped
/// error's. A code means one status wherever it appears (the `one_code_one_status` test).
pub fn all_codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = ApiError::ALL_CODES.to_vec();
    codes.extend(PemError::ALL_CODES);
    codes.extend(GithubError::ALL_CODES);
    codes.extend(UserAccessKind::ALL.map(UserAccessKind::code));
    codes.extend(OAuthCode::ALL.map(OAuthCode::code));
    codes.extend(WebhookError::ALL_CODES);
    codes.extend(DeployError::ALL_CODES);
    codes.extend(InstallerError::ALL_CODES);
    codes.extend(Denial::ALL_CODES);
    codes.sort_unstable();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every refusal the mint's sources build, found by reading them: `(status, "code"`
    /// after each constructor that takes both (`Denial::new`, `Self::mint_failed`, …).
    fn denials() -> Vec<Denial> {
        let mut out = Vec::new();
        for file in [
            include_str!("mint/denial.rs"),
            include_str!("mint/request.rs"),
            include_str!("mint/policy/mod.rs"),
            include_str!("mint/policy/config.rs"),
            include_str!("mint/policy/authorize.rs"),
            include_str!("mint/policy/foreign.rs"),
            include_str!("mint/wire.rs"),
        ] {
            for marker in ["::new(", "::mint_failed("] {
                for piece in file.split(marker).skip(1) {
                    let piece = piece.trim_start();
                    let digits =
                        piece.len() - piece.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                    let Ok(status) = piece[..digits].parse::<u16>() else {
                        continue;
                    };
                    let rest = piece[digits..].trim_start_matches(',').trim_start();
                    let Some(code) = rest.strip_prefix('"').and_then(|r| r.split('"').next())
                    else {
                        continue;
                    };
                    out.push(Denial::new(status, code, "").with_detail("d"));
                }
            }
        }
        out
    }

    fn wrapped<E: Into<ApiError>>(errors: Vec<E>) -> Vec<ApiError> {
        errors.into_iter().map(Into::into).collect()
    }

    /// One value of every variant, and of every variant of every error it wraps.
    fn samples() -> Vec<ApiError> {
        let mut out = vec![
            ApiError::MalformedJson("eof".into()),
            ApiError::Validation("appId: required".into()),
            ApiError::InvalidId("x".into()),
            ApiError::Unauthorized,
            ApiError::Forbidden("no".into()),
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
            ApiError::IllegalStatusTransition("draft to review".into()),
            ApiError::GithubRepoNotFound("o/r".into()),
            ApiError::MethodNotAllowed {
                method: "POST".into(),
                allowed: vec!["GET".into(), "PUT".into()],
            },
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType,
            ApiError::Misconfigured("ENCRYPTION_KEY".into()),
            ApiError::Unavailable {
                retry_after_secs: 1,
            },
            crate::internal!(),
            crate::internal!("storage get failed"),
        ];
        out.extend(UserAccessKind::ALL.map(|kind| ApiError::UserAccess {
            kind,
            message: "m".into(),
            retry_after_secs: Some(3),
        }));
        out.extend(OAuthCode::ALL.map(|code| ApiError::OAuth {
            code,
            message: "m".into(),
        }));
        out.extend(wrapped(crate::pem::samples()));
        out.extend(wrapped(crate::github::error::samples()));
        out.extend(wrapped(crate::webhook::error::samples()));
        out.extend(wrapped(crate::deploy::error::samples()));
        out.extend(wrapped(crate::installer::error::samples()));
        out.extend(wrapped(denials()));
        out
    }

    #[test]
    fn internal_never_shows_a_cause() {
        let e = crate::internal!("the cause");
        assert_eq!(e.status(), 500);
        assert!(!e.body().to_string().contains("the cause"));
        assert!(!e.body().to_string().contains("error.rs"));
        assert_eq!(e.body()["error"]["message"], "Something went wrong");
        assert_eq!(e.cause().map(|c| c.detail), Some("the cause".to_owned()));
    }

    #[test]
    fn a_mint_failure_logs_its_detail_and_sends_fullsends_sentence() {
        let e = ApiError::from(Denial::internal_error("storage get failed"));
        assert_eq!((e.status(), e.code()), (500, "internal_error"));
        assert_eq!(e.body()["error"]["message"], "internal error");
        assert!(!e.body().to_string().contains("storage"));
        assert_eq!(
            e.cause().map(|c| c.detail),
            Some("storage get failed".to_owned())
        );
        let refused = ApiError::from(Denial::authentication_failed("token expired"));
        assert_eq!(refused.cause(), None, "only a server error has a cause");
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
        let e = ApiError::from(GithubError::classify(429, |_| None, b"{}", 0));
        assert_eq!((e.status(), e.code()), (503, "github_rate_limited"));
        assert_eq!(e.retry_after_secs(), Some(60));
        assert_eq!(e.body()["error"]["retry_after"], 60);
    }

    #[test]
    fn github_failures_keep_their_codes_and_messages() {
        for (e, code, status) in [
            (GithubError::NotFound, "github_not_found", 502),
            (
                GithubError::Unauthorized {
                    message: "Bad credentials".into(),
                },
                "github_unauthorized",
                502,
            ),
            (
                GithubError::Server { status: 500 },
                "github_unavailable",
                502,
            ),
            (
                GithubError::Network("reset".into()),
                "github_unavailable",
                502,
            ),
        ] {
            let api = ApiError::from(e.clone());
            assert_eq!((api.code(), api.status()), (code, status));
            assert_eq!(api.public_message(), e.to_string());
            assert_eq!(api.retry_after_secs(), None);
        }
    }

    #[test]
    fn wrapped_errors_keep_their_code_and_status() {
        for e in crate::installer::error::samples() {
            let api = ApiError::from(e.clone());
            assert_eq!((api.code(), api.status()), (e.code(), e.status()));
        }
        for e in crate::webhook::error::samples() {
            let api = ApiError::from(e.clone());
            assert_eq!((api.code(), api.status()), (e.code(), e.status()));
        }
        let b = ApiError::from(WebhookError::UnknownApp).body();
        assert_eq!(b["error"]["code"], "unknown_app");
        assert!(b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    #[test]
    fn a_private_key_error_names_the_field() {
        let e = ApiError::from(PemError::BadBase64);
        assert_eq!((e.status(), e.code()), (400, "private_key_bad_base64"));
        assert!(e.to_string().starts_with("privateKey: "), "{e}");
    }

    #[test]
    fn every_variant_crosses_a_boundary_as_itself() {
        for e in samples() {
            let wire = serde_json::to_vec(&e).unwrap();
            let back: ApiError = serde_json::from_slice(&wire).unwrap();
            assert_eq!(back, e, "{}", String::from_utf8_lossy(&wire));
        }
        let wire = br#"{"Mint":{"status":500,"code":"made_up","message":"","detail":null}}"#;
        let back: ApiError = serde_json::from_slice(wire).unwrap();
        assert_eq!(
            back.code(),
            "internal_error",
            "an unknown code is not invented"
        );
    }

    #[test]
    fn every_code_is_listed_and_every_listed_code_is_made() {
        let listed = all_codes();
        let made: Vec<String> = samples().iter().map(|e| e.code().to_owned()).collect();
        for code in &made {
            assert!(listed.contains(&code.as_str()), "{code} is not listed");
        }
        for code in listed {
            assert!(made.iter().any(|m| m == code), "{code} has no sample");
        }
    }

    /// A client may act on a code alone: wherever a code appears, it means one status.
    #[test]
    fn one_code_one_status() {
        let mut seen: BTreeMap<String, u16> = BTreeMap::new();
        for e in samples() {
            let status = *seen.entry(e.code().to_owned()).or_insert(e.status());
            assert_eq!(status, e.status(), "{} has two statuses", e.code());
        }
        assert_eq!(
            seen["unknown_app"], 401,
            "a webhook from an unregistered app"
        );
        assert_eq!(seen["app_not_registered"], 422, "a body naming one");
    }

    #[test]
    fn user_access_classes_and_retry_after() {
        let e = ApiError::UserAccess {
            kind: UserAccessKind::Transient,
            message: "GitHub rate limit".into(),
            retry_after_secs: Some(30),
        };
        assert_eq!(e.status(), 503);
        assert_eq!(e.body()["error"]["retry_after"], 30);
        for (kind, code, status) in [
            (UserAccessKind::SessionInvalid, "session_invalid", 401),
            (
                UserAccessKind::MissingPermissions,
                "missing_permissions",
                403,
            ),
            (UserAccessKind::Transient, "transient", 503),
        ] {
            let e = ApiError::UserAccess {
                kind,
                message: String::new(),
                retry_after_secs: None,
            };
            assert_eq!((e.code(), e.status()), (code, status));
            assert!(e.body()["error"].get("retry_after").is_none());
        }
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let e = ApiError::MethodNotAllowed {
            method: "POST".into(),
            allowed: vec!["GET".into(), "PUT".into()],
        };
        assert_eq!(e.status(), 405);
        assert!(e.to_string().contains("GET, PUT"));
    }
}
