//! Admin sessions: after the sign-in, the browser holds an opaque session token, as an
//! `HttpOnly; Secure; SameSite=Lax` cookie or (for an SPA on another site) as
//! `Authorization: Bearer`. The token names its user's Durable Object and carries a random
//! secret whose SHA-256 alone is stored there, so a leaked store holds no usable session.
//!
//! `Authorization: Bearer` that is not a session token is a GitHub user token the SPA
//! passes through (read-only listings only; never stored).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{b64url, is_b64url};
use crate::auth::constant_time_eq;
use crate::ids::GithubUserId;
use crate::sealed::Secret;

/// A session lasts at most this long (and never beyond its user token).
pub const SESSION_TTL_SECS: i64 = 12 * 60 * 60;
/// Sessions one user may hold at once (browsers, devices); the oldest goes first.
pub const MAX_SESSIONS: usize = 10;
/// Host-only, HTTPS-only, whole-site: what the `__Host-` prefix makes browsers enforce.
pub const COOKIE_NAME: &str = "__Host-ghplane_session";
pub const TOKEN_PREFIX: &str = "ghpas_";
const SECRET_LEN: usize = 43;

/// `ghpas_<github user id>_<43 base64url characters>`.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionToken {
    pub user: GithubUserId,
    pub secret: String,
}

impl SessionToken {
    /// A new token for `user` from 32 random bytes.
    pub fn generate(user: GithubUserId, random: &[u8; 32]) -> (String, SessionToken) {
        let secret = b64url(random);
        (
            format!("{TOKEN_PREFIX}{user}_{secret}"),
            SessionToken { user, secret },
        )
    }

    pub fn parse(text: &str) -> Option<SessionToken> {
        let (user, secret) = text.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
        // The secret may itself contain `_`: split at the first one after the id.
        let user = GithubUserId::parse(user).ok()?;
        is_b64url(secret, SECRET_LEN).then(|| SessionToken {
            user,
            secret: secret.to_owned(),
        })
    }
}

pub fn hash_secret(secret: &str) -> String {
    crate::hex::encode(&Sha256::digest(secret.as_bytes()))
}

/// A session as its user's object stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    pub hash: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl StoredSession {
    pub fn matches(&self, secret: &str, now: i64) -> bool {
        now < self.expires_at
            && constant_time_eq(self.hash.as_bytes(), hash_secret(secret).as_bytes())
    }
}

/// Adds `new`, dropping expired sessions and, past [`MAX_SESSIONS`], the oldest.
pub fn admit(sessions: &mut Vec<StoredSession>, new: StoredSession, now: i64) {
    sessions.retain(|s| s.expires_at > now);
    sessions.push(new);
    sessions.sort_by_key(|s| std::cmp::Reverse(s.expires_at));
    sessions.truncate(MAX_SESSIONS);
}

/// When a session opened at `now` ends: after [`SESSION_TTL_SECS`], or a minute before the
/// user token expires when that is sooner (a session is only as good as its token).
pub fn expires_at(now: i64, token_expires_in: Option<i64>) -> i64 {
    let by_token = token_expires_in.map_or(SESSION_TTL_SECS, |s| s.saturating_sub(60).max(60));
    now.saturating_add(SESSION_TTL_SECS.min(by_token))
}

/// Who a request says it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    Session(SessionToken),
    /// A session token that does not parse: refused, never passed to GitHub.
    MalformedSession,
    /// A GitHub user token passed through by the SPA.
    UserToken(Secret),
}

/// The credential of a request: `Authorization: Bearer …` wins over the cookie.
pub fn credential(authorization: Option<&str>, cookie: Option<&str>) -> Option<Credential> {
    if let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")) {
        let token = token.trim();
        if token.starts_with(TOKEN_PREFIX) {
            return Some(
                SessionToken::parse(token)
                    .map_or(Credential::MalformedSession, Credential::Session),
            );
        }
        let plausible =
            (1..=255).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
        return plausible.then(|| Credential::UserToken(Secret::new(token.to_owned())));
    }
    let value = cookie?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, v)| v.trim())?;
    Some(SessionToken::parse(value).map_or(Credential::MalformedSession, Credential::Session))
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str, max_age_secs: i64) -> String {
    format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age_secs}")
}

/// `Set-Cookie` that ends the session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> GithubUserId {
        GithubUserId::from_u64(583231).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let (text, token) = SessionToken::generate(user(), &[0xfb; 32]);
        assert!(text.starts_with("ghpas_583231_"));
        assert_eq!(SessionToken::parse(&text), Some(token));
        for bad in [
            "",
            "ghpas_",
            "ghpas_0_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "ghpas_12_short",
            "ghpas_x_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "gho_583231_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(SessionToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stored_sessions_match_secret_and_time() {
        let (_, token) = SessionToken::generate(user(), &[3; 32]);
        let stored = StoredSession {
            hash: hash_secret(&token.secret),
            expires_at: 100,
        };
        assert!(stored.matches(&token.secret, 99));
        assert!(!stored.matches(&token.secret, 100));
        assert!(!stored.matches("other", 99));
    }

    #[test]
    fn admit_prunes_and_bounds() {
        let mut sessions = Vec::new();
        for i in 0..15 {
            admit(
                &mut sessions,
                StoredSession {
                    hash: format!("{i}"),
                    expires_at: 1_000 + i,
                },
                0,
            );
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert_eq!(sessions[0].hash, "14");
        admit(
            &mut sessions,
            StoredSession {
                hash: "new".into(),
                expires_at: 5_000,
            },
            1_009,
        );
        assert_eq!(sessions.len(), 6, "expired ones are dropped");
    }

    #[test]
    fn expiry_follows_the_token() {
        assert_eq!(expires_at(0, None), SESSION_TTL_SECS);
        assert_eq!(expires_at(0, Some(28_800)), 28_740);
        assert_eq!(expires_at(0, Some(10)), 60);
    }

    #[test]
    fn credentials_from_headers() {
        let (text, token) = SessionToken::generate(user(), &[9; 32]);
        assert_eq!(
            credential(Some(&format!("Bearer {text}")), None),
            Some(Credential::Session(token))
        );
        let cookie = format!("a=b; {COOKIE_NAME}={text}; c=d");
        assert!(matches!(
            credential(None, Some(&cookie)),
            Some(Credential::Session(_))
        ));
        assert!(matches!(
            credential(Some("Bearer ghu_abc"), Some(&cookie)),
            Some(Credential::UserToken(_))
        ));
        assert_eq!(
            credential(Some("Bearer ghpas_1_x"), None),
            Some(Credential::MalformedSession)
        );
        assert_eq!(
            credential(None, Some(&format!("{COOKIE_NAME}=junk"))),
            Some(Credential::MalformedSession)
        );
        assert_eq!(credential(None, Some("other=1")), None);
        assert_eq!(credential(Some("Basic abc"), None), None);
        assert_eq!(credential(Some("Bearer "), None), None);
        assert_eq!(credential(None, None), None);
    }

    #[test]
    fn cookies() {
        let c = set_cookie("t", 60);
        for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
