//! The two github.com endpoints of the web sign-in flow (GitHub's "Authorizing OAuth apps"
//! for GitHub Apps): the authorize URL the browser is sent to, and the code exchange
//! (`POST /login/oauth/access_token`), whose failures GitHub reports as a **200** carrying
//! `error`, so the status alone never means success.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use crate::error::{ApiError, OAuthCode};
use crate::sealed::Secret;

/// Path of the callback on the worker; the URL to register as the app's callback URL.
pub const CALLBACK_PATH: &str = "/api/integrations/github/callback";

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn pct_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` (and query strings) from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct_encode(k), pct_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The callback URL for a worker reached at `origin` (`scheme://host[:port]`).
pub fn callback_url(origin: &str) -> String {
    format!("{}{CALLBACK_PATH}", origin.trim_end_matches('/'))
}

/// Where the browser signs in: `{web_base}/login/oauth/authorize?client_id&redirect_uri&state`.
pub fn authorize_url(web_base: &str, client_id: &str, redirect_uri: &str, state: &str) -> String {
    format!(
        "{}/login/oauth/authorize?{}",
        web_base.trim_end_matches('/'),
        form(&[
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("state", state),
        ])
    )
}

/// The form body of the code exchange.
pub fn exchange_body(
    client_id: &str,
    client_secret: &Secret,
    code: &str,
    redirect_uri: &str,
) -> String {
    form(&[
        ("client_id", client_id),
        ("client_secret", client_secret.expose()),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ])
}

/// `Authorization` for GitHub's `/applications/{client_id}/…` endpoints: Basic with the
/// app's client id and secret.
pub fn basic_auth(client_id: &str, client_secret: &Secret) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{client_id}:{}", client_secret.expose()))
    )
}

/// GitHub's page to install the app on another account.
pub fn install_url(web_base: &str, slug: &str) -> String {
    format!(
        "{}/apps/{}/installations/new",
        web_base.trim_end_matches('/'),
        pct_encode(slug)
    )
}

/// A code GitHub would accept: short, printable, no separators.
pub fn code_ok(code: &str) -> bool {
    (1..=256).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A successful exchange. GitHub Apps with expiring user tokens also return a refresh token.
#[derive(Debug)]
pub struct UserTokens {
    pub access_token: Secret,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<Secret>,
    pub refresh_token_expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_token_expires_in: Option<i64>,
    #[serde(default)]
    error: Option<String>,
}

fn failed(why: String) -> ApiError {
    ApiError::OAuth {
        code: OAuthCode::ExchangeFailed,
        message: why,
    }
}

/// Reads GitHub's answer to the code exchange (asked for as JSON). `bad_verification_code`
/// (a wrong, used or expired code) is the caller's problem (400); anything else means the
/// worker or GitHub is wrong (502). Error descriptions are not echoed: only GitHub's code.
pub fn parse_exchange(status: u16, body: &[u8]) -> Result<UserTokens, ApiError> {
    if status != 200 {
        return Err(failed(format!(
            "GitHub answered the code exchange with status {status}"
        )));
    }
    let raw: Raw = serde_json::from_slice(body)
        .map_err(|_| failed("GitHub's code exchange answer is not JSON".into()))?;
    match (raw.error.as_deref(), raw.access_token) {
        (Some("bad_verification_code"), _) => Err(ApiError::OAuth {
            code: OAuthCode::CodeInvalid,
            message: "GitHub refused the code: it is wrong, used or expired; sign in again".into(),
        }),
        (Some(other), _) => Err(failed(format!(
            "GitHub refused the code exchange ({})",
            crate::ids::truncate(other, 64)
        ))),
        (None, Some(token)) if !token.is_empty() => Ok(UserTokens {
            access_token: Secret::new(token),
            expires_in: raw.expires_in.filter(|s| *s > 0),
            refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
            refresh_token_expires_in: raw.refresh_token_expires_in.filter(|s| *s > 0),
        }),
        (None, _) => Err(failed(
            "GitHub's code exchange answer has no access_token".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_a_browser_would_decode() {
        assert_eq!(pct_encode("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
        assert_eq!(pct_encode("Iv1.ab-c_d~"), "Iv1.ab-c_d~");
        let url = authorize_url(
            "https://github.com/",
            "Iv1.x",
            "https://w.example/api/integrations/github/callback",
            "p.s",
        );
        assert_eq!(
            url,
            "https://github.com/login/oauth/authorize?client_id=Iv1.x&redirect_uri=https%3A%2F%2Fw.example%2Fapi%2Fintegrations%2Fgithub%2Fcallback&state=p.s"
        );
    }

    #[test]
    fn exchange_answers() {
        let ok = br#"{"access_token":"ghu_x","expires_in":28800,"refresh_token":"ghr_y","refresh_token_expires_in":15897600,"scope":"","token_type":"bearer"}"#;
        let t = parse_exchange(200, ok).unwrap();
        assert_eq!(t.access_token.expose(), "ghu_x");
        assert_eq!(t.expires_in, Some(28800));
        assert_eq!(t.refresh_token.unwrap().expose(), "ghr_y");
        let legacy = parse_exchange(
            200,
            br#"{"access_token":"gho_z","scope":"","token_type":"bearer"}"#,
        )
        .unwrap();
        assert!(legacy.expires_in.is_none() && legacy.refresh_token.is_none());
        let bad = br#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#;
        assert_eq!(
            parse_exchange(200, bad).unwrap_err().code(),
            "oauth_code_invalid"
        );
        let creds = br#"{"error":"incorrect_client_credentials"}"#;
        let e = parse_exchange(200, creds).unwrap_err();
        assert_eq!((e.code(), e.status()), ("oauth_exchange_failed", 502));
        assert_eq!(
            parse_exchange(200, b"access_token=x").unwrap_err().code(),
            "oauth_exchange_failed"
        );
        assert_eq!(
            parse_exchange(500, b"{}").unwrap_err().code(),
            "oauth_exchange_failed"
        );
        assert_eq!(
            parse_exchange(200, b"{}").unwrap_err().code(),
            "oauth_exchange_failed"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(
            basic_auth("id", &Secret::new("secret".into())),
            "Basic aWQ6c2VjcmV0"
        );
        assert_eq!(
            install_url("https://github.com", "my-app"),
            "https://github.com/apps/my-app/installations/new"
        );
        assert_eq!(
            callback_url("http://127.0.0.1:8787"),
            "http://127.0.0.1:8787/api/integrations/github/callback"
        );
        assert!(code_ok("abc123_-.x"));
        assert!(!code_ok("") && !code_ok("a b") && !code_ok("a&b"));
    }
}
