//! Every refusal the mint answers with: HTTP status, fullsend's exact sentence, a stable code.
//!
//! **Invariant:** the client reads ghplane's error shape, `{"error":{"code","message"}}`,
//! whose `message` is one of fullsend's sentences (fullsend's own body is
//! `{"error":"<message>"}`; its clients read only the status, so the shape is ghplane's and
//! the words are fullsend's); what went wrong in detail (which claim, which GitHub call)
//! lives only in `detail`, which is for logs and audit and never leaves the worker.

use std::fmt;

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
    /// ghplane only: fullsend would read the first 64 KiB and answer "invalid JSON body".
    pub const PAYLOAD_TOO_LARGE: &str = "request body too large (max 65536 bytes)";
}

/// A refusal. `message` is what the client reads; `code` is ours, stable, for logs, audit
/// and metrics; `detail` is the internal cause.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Denial {
    pub status: u16,
    #[serde(deserialize_with = "listed_code")]
    pub code: Code,
    pub message: String,
    pub detail: Option<String>,
}

/// A stable code. An alias, not `&'static str` in the field: serde would take a `&str` field
/// as borrowed from the input, and a denial must deserialize from owned bytes.
type Code = &'static str;

/// A code is `&'static str` in memory: one that crossed an object boundary is found again
/// in [`Denial::ALL_CODES`] (an unknown one cannot be told apart from a bug).
fn listed_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
    let code = <String as serde::Deserialize>::deserialize(d)?;
    Ok(Denial::ALL_CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("internal_error"))
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

    /// ghplane's error body with fullsend's sentence as `message`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }

    /// Over [`crate::mint::request::MAX_BODY_BYTES`]: refused before the rest is read
    /// (fullsend reads the first 64 KiB and fails on what it read; ghplane says why).
    pub fn payload_too_large() -> Self {
        Self::new(413, "payload_too_large", msg::PAYLOAD_TOO_LARGE)
    }

    /// Every code a denial may carry, for the OpenAPI document.
    pub const ALL_CODES: &'static [&'static str] = &[
        "not_found",
        "method_not_allowed",
        "missing_bearer",
        "body_unreadable",
        "invalid_json",
        "payload_too_large",
        "role_required",
        "invalid_role",
        "role_not_allowed",
        "repos_required",
        "too_many_repos",
        "invalid_repo_name",
        "invalid_target_org",
        "authentication_failed",
        "same_org_requires_repos",
        "per_repo_scope",
        "per_org_scope",
        "foreign_repos_not_authorized",
        "foreign_org_not_authorized",
        "app_not_configured",
        "repo_not_covered",
        "installation_mismatch",
        "github_failure",
        "pem_unavailable",
        "app_jwt_failed",
        "rate_limited",
        "init_failed",
        "internal_error",
    ];

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
    /// A failed token or enrollment check: "authentication failed" for the client; the
    /// check's stable code and words (`token_expired: token expired`) for the audit.
    pub fn auth(e: &super::oidc::AuthError) -> Self {
        Self::authentication_failed(format!("{}: {e}", e.code()))
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

    fn message(d: &Denial) -> String {
        d.body()["error"]["message"].as_str().unwrap().to_owned()
    }

    #[test]
    fn body_is_ghplanes_shape_with_fullsends_sentence() {
        assert_eq!(
            Denial::not_found().body(),
            serde_json::json!({"error": {"code": "not_found", "message": "not found"}})
        );
        let d = Denial::authentication_failed("token expired");
        assert_eq!(d.status, 401);
        assert_eq!(message(&d), "authentication failed");
        assert!(!d.body().to_string().contains("expired"));
    }

    #[test]
    fn mint_stage_failures_hide_detail() {
        for d in [
            Denial::github_failure("GET /orgs/x/installation returned 500"),
            Denial::pem_unavailable("CODER_APP_PEM missing"),
            Denial::app_jwt_failed("bad key"),
        ] {
            assert_eq!(message(&d), "mint failed");
            assert!(!d.body().to_string().contains("installation"));
        }
        assert_eq!(Denial::github_failure("").status, 502);
        assert_eq!(Denial::pem_unavailable("").status, 403);
        assert_eq!(Denial::app_jwt_failed("").status, 500);
    }

    #[test]
    fn adapter_level_answers() {
        let r = Denial::rate_limited();
        assert_eq!((r.status, message(&r).as_str()), (429, "rate_limited"));
        let i = Denial::init_failed("ROLE_APP_IDS");
        assert_eq!(i.status, 500);
        assert_eq!(message(&i), "mint initialization failed");
        assert_eq!(Denial::payload_too_large().status, 413);
    }

    #[test]
    fn every_constructor_code_is_listed() {
        for d in [
            Denial::not_found(),
            Denial::method_not_allowed(),
            Denial::missing_bearer(),
            Denial::body_unreadable(),
            Denial::invalid_json(),
            Denial::payload_too_large(),
            Denial::authentication_failed(""),
            Denial::github_failure(""),
            Denial::pem_unavailable(""),
            Denial::app_jwt_failed(""),
            Denial::rate_limited(),
            Denial::init_failed(""),
            Denial::internal_error(""),
        ] {
            assert!(Denial::ALL_CODES.contains(&d.code), "{}", d.code);
        }
        // Codes made elsewhere in the module, found by reading its source.
        for file in [
            include_str!("request.rs"),
            include_str!("policy/authorize.rs"),
            include_str!("wire.rs"),
        ] {
            for piece in file.split("Denial::new(").skip(1) {
                let code = piece.split('"').nth(1).unwrap();
                assert!(Denial::ALL_CODES.contains(&code), "{code}");
            }
            for piece in file.split("Denial::mint_failed(").skip(1) {
                if let Some(code) = piece.split('"').nth(1).filter(|c| !c.contains(' ')) {
                    assert!(Denial::ALL_CODES.contains(&code), "{code}");
                }
            }
        }
    }
}
