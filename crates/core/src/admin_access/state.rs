//! The OAuth `state` of the GitHub sign-in: `base64url(JSON) "." base64url(HMAC-SHA256)`.
//!
//! The SPA may read the JSON (`n` nonce, `exp` unix seconds, `r` return path, `t` Turnstile
//! site key, `g` app slug, `o` the admin origin that started the flow); only the worker can
//! make one, because the key is derived from `ENCRYPTION_KEY` under a label of its own.
//! A state is good for [`STATE_TTL_SECS`]; single use is enforced by the adapter, which
//! consumes the nonce atomically before the code is exchanged.
//!
//! **Bound to its browser** (`b`, the base64url SHA-256 of a secret only that browser
//! holds): a same-site sign-in gets the secret as the short-lived HttpOnly cookie
//! [`BINDING_COOKIE`] from `start`, and the callback refuses a state whose cookie is missing
//! or different; a cross-site SPA sends `code_challenge` (the hash of a verifier it keeps)
//! and later trades the callback's one-time code plus that verifier for its session
//! (PKCE-style). A callback link sent to someone else therefore signs nobody in.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{b64url, b64url_decode, is_b64url};
use crate::error::{ApiError, OAuthCode};

/// How long a sign-in may take from `start` to `callback`.
pub const STATE_TTL_SECS: i64 = 10 * 60;
/// Length of a nonce: base64url of 16 random bytes.
pub const NONCE_LEN: usize = 22;
const MAX_STATE_LEN: usize = 2048;
const MAX_RETURN_PATH_LEN: usize = 512;
/// The cookie carrying a same-site sign-in's binding secret from `start` to the callback.
pub const BINDING_COOKIE: &str = "__Host-ghplane_oauth";
/// Length of a binding hash, a binding secret and a `code_challenge`: base64url of 32 bytes.
pub const BINDING_LEN: usize = 43;

/// Label of the state key, so the encryption key itself never signs anything.
const KEY_LABEL: &[u8] = b"ghplane:v1:oauth-state";

type HmacSha256 = Hmac<Sha256>;

/// The state signing key: `HMAC-SHA256(ENCRYPTION_KEY, "ghplane:v1:oauth-state")`.
pub fn state_key(encryption_key: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(encryption_key).expect("HMAC takes any key length");
    mac.update(KEY_LABEL);
    mac.finalize().into_bytes().into()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthState {
    /// Nonce, consumed once.
    pub n: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Where the browser goes after the callback: a relative path.
    pub r: String,
    /// `TURNSTILE_SITE_KEY`, for the SPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
    /// `GITHUB_APP_SLUG`, for the SPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g: Option<String>,
    /// The allowed admin origin whose SPA started the flow; the callback returns there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o: Option<String>,
    /// Binding: base64url SHA-256 of the secret the starting browser holds (the
    /// [`BINDING_COOKIE`], or the SPA's PKCE verifier when `o` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
}

/// base64url SHA-256 of a binding secret (a cookie value or a PKCE verifier).
pub fn binding_hash(secret: &str) -> String {
    b64url(&Sha256::digest(secret.as_bytes()))
}

/// `Set-Cookie` for a same-site sign-in's binding secret: as long as the state lives.
pub fn binding_cookie(secret: &str) -> String {
    format!(
        "{BINDING_COOKIE}={secret}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={STATE_TTL_SECS}"
    )
}

/// `Set-Cookie` that removes the binding once the callback used it.
pub fn clear_binding_cookie() -> String {
    format!("{BINDING_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

/// The binding secret in a `Cookie` header, if any.
pub fn binding_from_cookies(cookie: Option<&str>) -> Option<&str> {
    cookie?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == BINDING_COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// `code_challenge` of a cross-site `start`: base64url SHA-256 of the SPA's verifier.
pub fn code_challenge(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, ApiError> {
    match map.get("code_challenge") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if is_b64url(s, BINDING_LEN) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::Validation(
            "code_challenge: base64url (no padding) of the SHA-256 of your verifier, 43 characters"
                .into(),
        )),
    }
}

pub fn invalid(why: &str) -> ApiError {
    ApiError::OAuth {
        code: OAuthCode::StateInvalid,
        message: format!("the sign-in state is invalid: {why}; start the sign-in again"),
    }
}

/// A return path must stay on the site: one leading `/`, not `//` or `/\` (which browsers
/// read as another host), no backslash, no control characters or spaces.
pub fn return_path(path: &str) -> Result<String, String> {
    let ok = (1..=MAX_RETURN_PATH_LEN).contains(&path.len())
        && path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(path.to_owned())
    } else {
        Err("the return path must be a relative path starting with a single \"/\"".into())
    }
}

fn mac(key: &[u8; 32], payload: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    mac
}

impl OAuthState {
    /// A state for a sign-in started at `now` (unix seconds).
    pub fn new(nonce: &[u8; 16], now: i64, return_to: String) -> OAuthState {
        OAuthState {
            n: b64url(nonce),
            exp: now.saturating_add(STATE_TTL_SECS),
            r: return_to,
            t: None,
            g: None,
            o: None,
            b: None,
        }
    }

    /// Refuses a callback whose browser is not the one that started the sign-in:
    /// `presented` (the binding cookie, or the SPA's verifier) must hash to `b`.
    pub fn check_binding(&self, presented: Option<&str>) -> Result<(), ApiError> {
        let expected = self
            .b
            .as_deref()
            .ok_or_else(|| invalid("it is not bound to a browser"))?;
        let presented =
            presented.ok_or_else(|| invalid("this browser did not start the sign-in"))?;
        if crate::auth::constant_time_eq(binding_hash(presented).as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(invalid("this browser did not start the sign-in"))
        }
    }

    pub fn encode(&self, key: &[u8; 32]) -> String {
        let payload = b64url(serde_json::to_string(self).unwrap_or_default().as_bytes());
        let sig = b64url(&mac(key, &payload).finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// Checks a state from the callback: present, signed with `key`, not expired at `now`,
    /// a well-formed nonce and a relative return path. Does not consume it.
    pub fn verify(key: &[u8; 32], text: Option<&str>, now: i64) -> Result<OAuthState, ApiError> {
        let text = text
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("the state parameter is missing"))?;
        if text.len() > MAX_STATE_LEN {
            return Err(invalid("it is too long"));
        }
        let (payload, sig) = text
            .split_once('.')
            .ok_or_else(|| invalid("it is not signed"))?;
        let sig = b64url_decode(sig).ok_or_else(|| invalid("the signature is not base64url"))?;
        mac(key, payload)
            .verify_slice(&sig)
            .map_err(|_| invalid("the signature does not match"))?;
        let state: OAuthState = b64url_decode(payload)
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| invalid("the payload is not the expected JSON"))?;
        if !is_b64url(&state.n, NONCE_LEN) {
            return Err(invalid("the nonce is malformed"));
        }
        if state
            .b
            .as_deref()
            .is_some_and(|b| !is_b64url(b, BINDING_LEN))
        {
            return Err(invalid("the binding is malformed"));
        }
        if now > state.exp {
            return Err(ApiError::OAuth {
                code: OAuthCode::StateExpired,
                message: "the sign-in took longer than 10 minutes; start it again".into(),
            });
        }
        return_path(&state.r).map_err(|e| invalid(&e))?;
        Ok(state)
    }
}

/// The body of `POST /api/integrations/github/start`: `{"return_to"?: "/relative",
/// "code_challenge"?: "…"}` (the challenge is read by [`code_challenge`]).
pub fn start_input(map: &serde_json::Map<String, serde_json::Value>) -> Result<String, ApiError> {
    crate::input::reject_unknown(map, &["return_to", "code_challenge"])?;
    match map.get("return_to") {
        None | Some(serde_json::Value::Null) => Ok("/".into()),
        Some(serde_json::Value::String(s)) => return_path_param(Some(s)),
        Some(_) => Err(ApiError::Validation("return_to: must be a string".into())),
    }
}

/// `?return_to=` of `GET /oauth/authorize` (default `/`).
pub fn return_path_param(param: Option<&str>) -> Result<String, ApiError> {
    match param {
        None | Some("") => Ok("/".into()),
        Some(p) => return_path(p).map_err(|e| ApiError::Validation(format!("return_to: {e}"))),
    }
}

pub fn reused() -> ApiError {
    ApiError::OAuth {
        code: OAuthCode::StateReused,
        message: "this sign-in state was already used; start the sign-in again".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn state() -> OAuthState {
        let mut s = OAuthState::new(&[1; 16], 1_000, "/settings?tab=github".into());
        s.g = Some("my-app".into());
        s
    }

    fn code(e: ApiError) -> String {
        e.code().to_owned()
    }

    #[test]
    fn round_trips_and_is_readable_without_the_key() {
        let s = state();
        let text = s.encode(&KEY);
        assert_eq!(OAuthState::verify(&KEY, Some(&text), 1_000).unwrap(), s);
        let payload = text.split('.').next().unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&b64url_decode(payload).unwrap()).unwrap();
        assert_eq!(json["r"], "/settings?tab=github");
        assert_eq!(json["exp"], 1_600);
        assert_eq!(json["g"], "my-app");
        assert!(json.get("t").is_none());
        assert_eq!(json["n"].as_str().unwrap().len(), NONCE_LEN);
    }

    #[test]
    fn refuses_missing_tampered_foreign_and_expired() {
        let text = state().encode(&KEY);
        for bad in [None, Some(""), Some("abc"), Some("a.b")] {
            assert_eq!(
                code(OAuthState::verify(&KEY, bad, 1_000).unwrap_err()),
                "oauth_state_invalid"
            );
        }
        let other_key = state().encode(&[8; 32]);
        assert_eq!(
            code(OAuthState::verify(&KEY, Some(&other_key), 1_000).unwrap_err()),
            "oauth_state_invalid"
        );
        let mut forged = state();
        forged.r = "/admin".into();
        let (_, sig) = text.split_once('.').unwrap();
        let (payload, _) = forged
            .encode(&KEY)
            .split_once('.')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        let spliced = format!("{payload}.{sig}");
        assert_eq!(
            code(OAuthState::verify(&KEY, Some(&spliced), 1_000).unwrap_err()),
            "oauth_state_invalid"
        );
        assert!(OAuthState::verify(&KEY, Some(&text), 1_600).is_ok());
        assert_eq!(
            code(OAuthState::verify(&KEY, Some(&text), 1_601).unwrap_err()),
            "oauth_state_expired"
        );
    }

    #[test]
    fn a_state_longer_than_the_limit_is_refused_before_anything_else() {
        let why = |text: &str| match OAuthState::verify(&KEY, Some(text), 1_000).unwrap_err() {
            ApiError::OAuth { message, .. } => message,
            other => panic!("{other:?}"),
        };
        // At the limit the length passes and the next check speaks; one more is too long.
        assert!(why(&"a".repeat(MAX_STATE_LEN)).contains("it is not signed"));
        assert!(why(&"a".repeat(MAX_STATE_LEN + 1)).contains("it is too long"));
        assert_eq!(MAX_STATE_LEN, 2048);
    }

    #[test]
    fn signed_states_still_need_a_relative_path_and_a_nonce() {
        let mut s = state();
        s.r = "https://evil.test/".into();
        assert_eq!(
            code(OAuthState::verify(&KEY, Some(&s.encode(&KEY)), 1_000).unwrap_err()),
            "oauth_state_invalid"
        );
        let mut s = state();
        s.n = "short".into();
        assert!(OAuthState::verify(&KEY, Some(&s.encode(&KEY)), 1_000).is_err());
    }

    #[test]
    fn return_path_rules() {
        for ok in ["/", "/a/b?c=d#e", "/settings/github"] {
            assert!(return_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "https://evil.test",
            "//evil.test",
            "/\\evil.test",
            "/a\\b",
            "/a b",
            "/a\nb",
            "javascript:alert(1)",
            &format!("/{}", "a".repeat(600)),
        ] {
            assert!(return_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn start_inputs() {
        let parse = |v: serde_json::Value| start_input(v.as_object().unwrap());
        assert_eq!(parse(serde_json::json!({})).unwrap(), "/");
        assert_eq!(parse(serde_json::json!({"return_to": "/x"})).unwrap(), "/x");
        for bad in [
            serde_json::json!({"return_to": "https://evil.test"}),
            serde_json::json!({"return_to": 1}),
            serde_json::json!({"other": 1}),
        ] {
            assert_eq!(parse(bad).unwrap_err().code(), "validation_failed");
        }
    }

    #[test]
    fn binding_needs_the_starting_browsers_secret() {
        let secret = b64url(&[9; 32]);
        let mut s = state();
        assert_eq!(
            code(s.check_binding(Some(&secret)).unwrap_err()),
            "oauth_state_invalid",
            "an unbound state is refused"
        );
        s.b = Some(binding_hash(&secret));
        let text = s.encode(&KEY);
        let back = OAuthState::verify(&KEY, Some(&text), 1_000).unwrap();
        assert!(back.check_binding(Some(&secret)).is_ok());
        for other in [None, Some(""), Some("x"), Some(&b64url(&[8; 32])[..])] {
            assert_eq!(
                code(back.check_binding(other).unwrap_err()),
                "oauth_state_invalid",
                "{other:?}"
            );
        }
        let mut bad = state();
        bad.b = Some("short".into());
        assert!(OAuthState::verify(&KEY, Some(&bad.encode(&KEY)), 1_000).is_err());
    }

    #[test]
    fn binding_cookie_and_challenge() {
        let c = binding_cookie("abc");
        for attr in [
            "__Host-ghplane_oauth=abc",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(clear_binding_cookie().contains("Max-Age=0"));
        assert_eq!(
            binding_from_cookies(Some("a=b; __Host-ghplane_oauth=xyz ; c=d")),
            Some("xyz")
        );
        assert_eq!(binding_from_cookies(Some("__Host-ghplane_oauth=")), None);
        assert_eq!(binding_from_cookies(Some("ghplane_oauth=xyz")), None);
        assert_eq!(binding_from_cookies(None), None);
        let ok = b64url(&[1; 32]);
        let parse = |v: serde_json::Value| code_challenge(v.as_object().unwrap());
        assert_eq!(
            parse(serde_json::json!({ "code_challenge": ok })).unwrap(),
            Some(ok.clone())
        );
        assert_eq!(parse(serde_json::json!({})).unwrap(), None);
        for bad in [serde_json::json!("short"), serde_json::json!(1)] {
            assert!(parse(serde_json::json!({ "code_challenge": bad })).is_err());
        }
        // RFC 7636's S256 example: the challenge of this verifier.
        assert_eq!(
            binding_hash("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn state_key_is_labelled() {
        assert_ne!(state_key(&[0; 32]), [0; 32]);
        assert_ne!(state_key(&[0; 32]), state_key(&[1; 32]));
    }
}
