//! Every error a client can see, with its stable machine code and HTTP status.
//!
//! The adapter renders these as `{"error":{"code","message"}}` in exactly one place. Codes are
//! part of the API contract (the OpenAPI document lists them): never rename one.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidId(String),
    /// A private key refused when it is stored (not when a token is first needed).
    #[error("{message}")]
    InvalidPrivateKey { code: &'static str, message: String },
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("installation {0} has no configuration")]
    InstallationNotFound(u64),
    #[error("{method} is not allowed here; allowed: {}", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        allowed: Vec<&'static str>,
    },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the server is missing required configuration: {0}")]
    Misconfigured(&'static str),
    /// The real cause is logged by the adapter, never sent.
    #[error("something went wrong")]
    Internal,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::Validation(_) => "validation_failed",
            ApiError::InvalidId(_) => "invalid_id",
            ApiError::InvalidPrivateKey { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RouteNotFound { .. } => "route_not_found",
            ApiError::InstallationNotFound(_) => "installation_not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Misconfigured(_) => "server_misconfigured",
            ApiError::Internal => "internal_error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::Validation(_)
            | ApiError::InvalidId(_)
            | ApiError::InvalidPrivateKey { .. } => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::RouteNotFound { .. } | ApiError::InstallationNotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Misconfigured(_) | ApiError::Internal => 500,
        }
    }

    /// The message sent to the client. For 5xx it is deliberately generic.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal => "Something went wrong".to_owned(),
            other => other.to_string(),
        }
    }

    /// The JSON body every error response carries.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.public_message()}})
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
        "method_not_allowed",
        "payload_too_large",
        "unsupported_media_type",
        "server_misconfigured",
        "internal_error",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_never_shows_a_cause() {
        let e = ApiError::Internal;
        assert_eq!(e.status(), 500);
        assert_eq!(e.body()["error"]["message"], "Something went wrong");
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
            ApiError::MethodNotAllowed {
                method: "GET".into(),
                allowed: vec!["PUT"],
            },
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType,
            ApiError::Misconfigured("X"),
            ApiError::Internal,
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
    fn method_not_allowed_names_the_allowed_methods() {
        let e = ApiError::MethodNotAllowed {
            method: "POST".into(),
            allowed: vec!["GET", "PUT"],
        };
        assert_eq!(e.status(), 405);
        assert!(e.to_string().contains("GET, PUT"));
    }
}
