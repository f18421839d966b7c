//! Every refusal the mint answers with: HTTP status, fullsend's exact sentence, a stable code.
//!
//! **Invariant:** the wire body is fullsend's, `{"error":"<message>"}`, and the message is
//! one of fullsend's sentences; what went wrong in detail (which claim, which GitHub call)
//! lives only in `detail`, which is for logs and audit and never leaves the worker.

use std::fmt;

use super::text::go_json_escape;

/// fullsend's client-visible sentences, verbatim (`internal/mintcore/handler.go`,
/// `repos_scope.go`, and the Worker adapter `workersrc/src/index.ts`).
pub mod msg {
    pub const NOT_FOUND: &str = "not found";
    pub const METHOD_NOT_ALLOWED: &str = "method not allowed";
    pub const MISSING_BEARER: &str = "missing or invalid Authorization header";
    pub const BODY_UNREADABLE: &str = "failed to read request body";
    pub const INVALID_JSON: &str = "invalid JSON body";
    pub const ROLE_REQUIRED: &str = "role is required";
    pub const INVALID_ROLE: &str = "invalid role format";
    pub const ROLE_NOT_ALLOWED: &str = "role not allowed";
    pub const REPOS_REQUIRED: &str = "repos is required";
    pub const INVALID_REPO: &str = "invalid repo name";
    pub const INVALID_TARGET_ORG: &str = "invalid target_org";
    pub const AUTHENTICATION_FAILED: &str = "authentication failed";
    pub const SAME_ORG_REQUIRES_REPOS: &str = "same-org mint requires non-empty repos";
    pub const PER_REPO_SCOPE: &str =
        "per-repo mint requires repos to be exactly the requesting repository";
    pub const PER_ORG_SCOPE: &str = "repos scope not allowed for per-org caller";
    pub const MINT_FAILED: &str = "mint failed";
    pub const INTERNAL_ERROR: &str = "internal error";
    /// From the Worker adapter, not Go: its rate limiter answers with the code as message.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// From the Worker adapter: any configuration error at start-up.
    pub const INIT_FAILED: &str = "mint initialization failed";
}

/// A refusal. `message` is what the client reads; `code` is ours, stable, for logs, audit
/// and metrics; `detail` is the internal cause.
#[derive(Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
}

impl Denial {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Denial {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// fullsend's error body, byte for byte (Go's encoder escapes HTML and ends with `\n`).
    pub fn body(&self) -> String {
        let json = serde_json::json!({ "error": self.message }).to_string();
        go_json_escape(json) + "\n"
    }

    pub fn not_found() -> Self {
        Self::new(404, "not_found", msg::NOT_FOUND)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(405, "method_not_allowed", msg::METHOD_NOT_ALLOWED)
    }
    pub fn missing_bearer() -> Self {
        Self::new(401, "missing_bearer", msg::MISSING_BEARER)
    }
    /// For the adapter when the body cannot be read at all.
    pub fn body_unreadable() -> Self {
        Self::new(400, "body_unreadable", msg::BODY_UNREADABLE)
    }
    pub fn invalid_json() -> Self {
        Self::new(400, "invalid_json", msg::INVALID_JSON)
    }
    /// One answer for every authentication and authorization failure of the caller's
    /// identity, so a client cannot probe which check it failed.
    pub fn authentication_failed(detail: impl fmt::Display) -> Self {
        Self::new(401, "authentication_failed", msg::AUTHENTICATION_FAILED)
            .with_detail(detail.to_string())
    }
    /// fullsend hides every mint-stage failure behind "mint failed" unless it chose a
    /// client-safe sentence; the status still tells 403 (refused) from 502 (GitHub).
    pub fn mint_failed(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(status, code, msg::MINT_FAILED).with_detail(detail)
    }
    /// A GitHub call failed (non-2xx, network, undecodable answer).
    pub fn github_failure(detail: impl Into<String>) -> Self {
        Self::mint_failed(502, "github_failure", detail)
    }
    /// The role's private key is not available to the worker.
    pub fn pem_unavailable(detail: impl Into<String>) -> Self {
        Self::mint_failed(403, "pem_unavailable", detail)
    }
    /// Signing the App JWT failed (a key that does not parse, Web Crypto refusing it).
    pub fn app_jwt_failed(detail: impl Into<String>) -> Self {
        Self::mint_failed(500, "app_jwt_failed", detail)
    }
    /// The Worker adapter's limiter: 60 requests a minute per host and client IP.
    pub fn rate_limited() -> Self {
        Self::new(429, "rate_limited", msg::RATE_LIMITED)
    }
    /// The configuration did not pass the start-up check; `detail` names the problems.
    pub fn init_failed(detail: impl Into<String>) -> Self {
        Self::new(500, "init_failed", msg::INIT_FAILED).with_detail(detail)
    }
    pub fn internal_error(detail: impl Into<String>) -> Self {
        Self::new(500, "internal_error", msg::INTERNAL_ERROR).with_detail(detail)
    }
}

impl fmt::Debug for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {:?}", self.status, self.code, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_fullsends_shape() {
        assert_eq!(Denial::not_found().body(), "{\"error\":\"not found\"}\n");
        let d = Denial::authentication_failed("token expired");
        assert_eq!(d.status, 401);
        assert_eq!(d.body(), "{\"error\":\"authentication failed\"}\n");
        assert!(!d.body().contains("expired"));
    }

    #[test]
    fn mint_stage_failures_hide_detail() {
        for d in [
            Denial::github_failure("GET /orgs/x/installation returned 500"),
            Denial::pem_unavailable("CODER_APP_PEM missing"),
            Denial::app_jwt_failed("bad key"),
        ] {
            assert_eq!(d.body(), "{\"error\":\"mint failed\"}\n");
        }
        assert_eq!(Denial::github_failure("").status, 502);
        assert_eq!(Denial::pem_unavailable("").status, 403);
        assert_eq!(Denial::app_jwt_failed("").status, 500);
    }

    #[test]
    fn adapter_level_answers() {
        let r = Denial::rate_limited();
        assert_eq!(
            (r.status, r.body().as_str()),
            (429, "{\"error\":\"rate_limited\"}\n")
        );
        let i = Denial::init_failed("ROLE_APP_IDS");
        assert_eq!(i.status, 500);
        assert_eq!(i.body(), "{\"error\":\"mint initialization failed\"}\n");
    }
}
