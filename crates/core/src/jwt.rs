//! GitHub App JWTs (RS256), minus the signature, which Web Crypto computes.
//!
//! **Invariant:** every JWT built here is valid at GitHub for the clock it was built
//! with: `iat` is backdated and `exp` stays under GitHub's 10-minute cap, so modest
//! drift between our clock and GitHub's does not get the token refused. When drift is
//! larger, [`crate::time::parse_http_date`] lets the caller rebuild with GitHub's own clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Backdating of `iat`, as GitHub's documentation recommends against clock drift.
pub const IAT_BACKDATE_SECS: i64 = 60;
/// GitHub refuses an `exp` more than 10 minutes past its own clock; 9 minutes leaves a
/// minute for ours to run fast.
pub const EXP_AFTER_NOW_SECS: i64 = 540;

/// base64url of `{"alg":"RS256","typ":"JWT"}`; constant, so computed once by hand.
const HEADER_B64: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

/// Claims of a GitHub App JWT: `iss` is the App's client ID or numeric App ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppJwtClaims {
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// Claims for a JWT minted at `now_unix` (seconds) on the caller's clock.
pub fn app_jwt_claims(now_unix: i64, issuer: &str) -> AppJwtClaims {
    AppJwtClaims {
        iat: now_unix.saturating_sub(IAT_BACKDATE_SECS),
        exp: now_unix.saturating_add(EXP_AFTER_NOW_SECS),
        iss: issuer.to_string(),
    }
}

/// `base64url(header) "." base64url(claims)`: the bytes RS256 signs.
pub fn signing_input(claims: &AppJwtClaims) -> String {
    // Hand-formatted so there is no serializer error path; `Value`'s Display does
    // the JSON string escaping of `iss`.
    let json = format!(
        r#"{{"iat":{},"exp":{},"iss":{}}}"#,
        claims.iat,
        claims.exp,
        serde_json::Value::String(claims.iss.clone())
    );
    format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(json))
}

/// The compact JWT: `signing_input "." base64url(signature)`.
pub fn assemble(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64_json(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn claims_window() {
        let c = app_jwt_claims(1_700_000_000, "Iv1.abc");
        assert_eq!(c.iat, 1_699_999_940);
        assert_eq!(c.exp, 1_700_000_540);
        assert_eq!(c.iss, "Iv1.abc");
        assert!(c.exp - c.iat <= 600);
    }

    #[test]
    fn claims_saturate_instead_of_overflowing() {
        let c = app_jwt_claims(i64::MAX, "1");
        assert_eq!(c.exp, i64::MAX);
        let c = app_jwt_claims(i64::MIN, "1");
        assert_eq!(c.iat, i64::MIN);
    }

    #[test]
    fn header_constant_is_what_it_claims() {
        assert_eq!(
            b64_json(HEADER_B64),
            serde_json::json!({"alg": "RS256", "typ": "JWT"})
        );
    }

    #[test]
    fn signing_input_shape() {
        let c = app_jwt_claims(1_700_000_000, "123456");
        let input = signing_input(&c);
        let (header, payload) = input.split_once('.').unwrap();
        assert_eq!(header, HEADER_B64);
        assert!(!payload.contains(['=', '+', '/', '.']));
        assert_eq!(
            b64_json(payload),
            serde_json::json!({"iat": 1_699_999_940, "exp": 1_700_000_540, "iss": "123456"})
        );
        let back: AppJwtClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            input,
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.\
             eyJpYXQiOjE2OTk5OTk5NDAsImV4cCI6MTcwMDAwMDU0MCwiaXNzIjoiMTIzNDU2In0"
        );
    }

    #[test]
    fn issuer_is_json_escaped() {
        let c = app_jwt_claims(0, "a\"b\\c\n\u{1}é");
        let input = signing_input(&c);
        let payload = input.split_once('.').unwrap().1;
        let back: AppJwtClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(back.iss, c.iss);
    }

    #[test]
    fn assemble_appends_base64url_signature() {
        assert_eq!(assemble("h.p", &[0xfb, 0xff, 0xfe]), "h.p.-__-");
        assert_eq!(assemble("h.p", &[]), "h.p.");
        let jwt = assemble(&signing_input(&app_jwt_claims(0, "1")), &[1; 256]);
        assert_eq!(jwt.split('.').count(), 3);
        assert_eq!(jwt.rsplit('.').next().unwrap().len(), 342);
    }
}
