//! Admin access: a person signs in to the admin SPA with GitHub, and sees the organisations
//! and repositories that the app's installations give *them*.
//!
//! **Invariants.** What the SPA lists comes only from GitHub's answers for the user's own
//! token (`GET /user/installations`, `GET /user/installations/{id}/repositories`): never
//! guessed from elsewhere, never silently truncated (`incomplete` says when a cap stopped
//! a listing), and a GitHub failure is an error of a stable class, never a fallback listing.
//! The sign-in `state` is signed, expires, names only a relative return path and is
//! accepted once. Tokens are sealed at rest and never leave the worker.

pub mod audit;
pub mod cors;
pub mod installations;
pub mod oauth;
pub mod repos;
pub mod roles;
pub mod session;
pub mod state;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// True for a base64url string (no padding) of exactly `len` characters.
pub(crate) fn is_b64url(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
