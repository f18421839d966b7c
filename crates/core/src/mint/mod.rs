//! A token mint wire-compatible with fullsend's (fullsend-ai/fullsend `internal/mintcore`
//! behind its Cloudflare Worker): a GitHub Actions job trades its OIDC token for an
//! installation token cut down to a role's permissions and the repositories it may touch.
//!
//! **Invariant:** a client of fullsend's mint cannot tell this one apart: same routes,
//! same checks in the same order, same statuses, same sentences, same success bodies.
//! Error bodies are ghplane's `{"error":{"code","message"}}` with fullsend's sentence as
//! `message` (fullsend's clients read only the status), and a body over 64 KiB is 413
//! before the rest is read. Only the I/O is left to the adapter, which runs a
//! `/v1/token` request like this:
//!
//! 1. The route table's fullsend-dialect routes ([`crate::routes::ErrorDialect::Fullsend`]);
//!    for `/v1/token`, the Worker's rate limit ([`wire::rate_limit_key`],
//!    [`Denial::rate_limited`]).
//! 2. [`request::bearer_token`] (none → [`Denial::missing_bearer`]).
//! 3. [`request::parse_token_request`] with [`policy::Policy::allows_role`] — before any
//!    token check, as fullsend does.
//! 4. [`oidc::decode_jwt`], [`oidc::check_claims`], key lookup ([`oidc::key_action`] …),
//!    RS256 verification with Web Crypto; any failure → [`Denial::authentication_failed`].
//! 5. [`policy::Policy::foreign_lookups`] → read them from GitHub → [`policy::ForeignGrants`]
//!    → [`policy::Policy::check`] → [`policy::Decision`].
//! 6. App JWT for `decision.app_id` signed with `roles::pem_secret_name(role)`;
//!    [`policy::Decision::installation_paths`] → [`wire::installation_answer`] →
//!    [`policy::Decision::resolve_installation`]; `POST` [`wire::access_tokens_path`] with
//!    [`policy::Decision::token_request_body`] → [`wire::parse_token_response`] →
//!    [`wire::GrantedToken::response_body`]. Record an [`audit::MintAuditRecord`].

pub mod audit;
pub mod audit_shard;
pub mod denial;
pub mod oidc;
pub mod policy;
pub mod request;
pub mod roles;
mod text;
pub mod wire;

pub use denial::Denial;
