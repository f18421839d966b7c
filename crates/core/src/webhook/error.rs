//! Every way a webhook delivery is refused, with its stable code and HTTP status.
//!
//! **Invariant:** the same request always gets the same answer, and a message never carries
//! more than a short, truncated piece of what the sender sent. Codes are part of the
//! contract with whoever reads GitHub's delivery log: never rename one.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::webhook::signature::SignatureError;

#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookError {
    #[error("the X-GitHub-Event header is missing")]
    MissingEventHeader,
    #[error("the X-GitHub-Event header must be 1-64 token characters")]
    InvalidEventHeader,
    #[error("the X-GitHub-Delivery header is missing")]
    MissingDeliveryHeader,
    #[error("the X-GitHub-Delivery header must be 1-64 characters of [A-Za-z0-9-]")]
    InvalidDeliveryHeader,
    /// A repository or organization hook, or a target id that is not an app id.
    #[error("this endpoint only takes GitHub App webhooks: {0}")]
    InvalidHookTarget(String),
    #[error("the Content-Length header is not a decimal number")]
    InvalidContentLength,
    #[error("the payload signature is invalid: {0}")]
    InvalidSignature(SignatureError),
    /// Without a known app there is no secret to verify with, so this is an auth failure.
    #[error("no GitHub App is registered for this delivery")]
    UnknownApp,
    #[error("installation {installation} does not belong to app {app}")]
    InstallationAppMismatch { installation: u64, app: u64 },
    #[error("the payload is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the payload must be application/json (configure the app's webhook content type)")]
    UnsupportedMediaType,
    #[error("the payload is not a valid webhook payload: {0}")]
    MalformedPayload(String),
}

impl WebhookError {
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::MissingEventHeader => "missing_event_header",
            WebhookError::InvalidEventHeader => "invalid_event_header",
            WebhookError::MissingDeliveryHeader => "missing_delivery_header",
            WebhookError::InvalidDeliveryHeader => "invalid_delivery_header",
            WebhookError::InvalidHookTarget(_) => "invalid_hook_target",
            WebhookError::InvalidContentLength => "invalid_content_length",
            WebhookError::InvalidSignature(_) => "invalid_signature",
            WebhookError::UnknownApp => "unknown_app",
            WebhookError::InstallationAppMismatch { .. } => "installation_app_mismatch",
            WebhookError::PayloadTooLarge { .. } => "payload_too_large",
            WebhookError::UnsupportedMediaType => "unsupported_media_type",
            WebhookError::MalformedPayload(_) => "malformed_payload",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            WebhookError::MissingEventHeader
            | WebhookError::InvalidEventHeader
            | WebhookError::MissingDeliveryHeader
            | WebhookError::InvalidDeliveryHeader
            | WebhookError::InvalidHookTarget(_)
            | WebhookError::InvalidContentLength
            | WebhookError::MalformedPayload(_) => 400,
            WebhookError::InvalidSignature(_) | WebhookError::UnknownApp => 401,
            WebhookError::InstallationAppMismatch { .. } => 403,
            WebhookError::PayloadTooLarge { .. } => 413,
            WebhookError::UnsupportedMediaType => 415,
        }
    }

    /// Every code, for the OpenAPI document and its test.
    pub const ALL_CODES: &'static [&'static str] = &[
        "missing_event_header",
        "invalid_event_header",
        "missing_delivery_header",
        "invalid_delivery_header",
        "invalid_hook_target",
        "invalid_content_length",
        "invalid_signature",
        "unknown_app",
        "installation_app_mismatch",
        "payload_too_large",
        "unsupported_media_type",
        "malformed_payload",
    ];
}

impl From<SignatureError> for WebhookError {
    fn from(e: SignatureError) -> Self {
        WebhookError::InvalidSignature(e)
    }
}

/// Longest piece of a parser message kept: serde_json quotes offending values, and a
/// 25 MB payload must not come back in an error body or a log line.
const MAX_DETAIL_LEN: usize = 200;

impl From<serde_json::Error> for WebhookError {
    fn from(e: serde_json::Error) -> Self {
        WebhookError::MalformedPayload(crate::ids::truncate(&e.to_string(), MAX_DETAIL_LEN))
    }
}

#[cfg(test)]
pub(crate) fn samples() -> Vec<WebhookError> {
    tests::samples()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn samples() -> Vec<WebhookError> {
        vec![
            WebhookError::MissingEventHeader,
            WebhookError::InvalidEventHeader,
            WebhookError::MissingDeliveryHeader,
            WebhookError::InvalidDeliveryHeader,
            WebhookError::InvalidHookTarget(String::new()),
            WebhookError::InvalidContentLength,
            WebhookError::InvalidSignature(SignatureError::Mismatch),
            WebhookError::UnknownApp,
            WebhookError::InstallationAppMismatch {
                installation: 1,
                app: 2,
            },
            WebhookError::PayloadTooLarge { limit: 1 },
            WebhookError::UnsupportedMediaType,
            WebhookError::MalformedPayload(String::new()),
        ]
    }

    #[test]
    fn every_variant_code_is_listed_once() {
        let codes: Vec<_> = samples().iter().map(WebhookError::code).collect();
        assert_eq!(codes, WebhookError::ALL_CODES);
    }

    #[test]
    fn statuses_follow_the_contract() {
        let status = |code: &str| {
            samples()
                .into_iter()
                .find(|e| e.code() == code)
                .map(|e| e.status())
        };
        for (code, want) in [
            ("missing_event_header", 400),
            ("missing_delivery_header", 400),
            ("malformed_payload", 400),
            ("invalid_signature", 401),
            ("unknown_app", 401),
            ("installation_app_mismatch", 403),
            ("payload_too_large", 413),
            ("unsupported_media_type", 415),
        ] {
            assert_eq!(status(code), Some(want), "{code}");
        }
    }

    #[test]
    fn parser_details_are_truncated() {
        let long = format!("\"{}\"", "x".repeat(10_000));
        let e: WebhookError = serde_json::from_str::<u64>(&long).unwrap_err().into();
        assert_eq!(e.code(), "malformed_payload");
        assert!(e.to_string().len() < 300, "{}", e.to_string().len());
    }
}
