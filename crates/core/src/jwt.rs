//! GitHub App JWTs (RS256), minus the signature, which Web Crypto computes.
//!
//! **Invariant:** every JWT built here is valid at GitHub for the clock it was built
//! with: `iat` is backdated and `exp` stays under GitHub's 10-minute cap, so modest
//! drift between our clock and GitHub's does not get the token refused. When drift is
//! larger, [`clock_from_http_date`] lets the caller rebuild with GitHub's own clock.

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

/// Unix seconds of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form of
/// GitHub's `Date` header. The weekday name must be valid but is not cross-checked:
/// the point is to recover a clock, not to police the sender.
pub fn clock_from_http_date(date: &str) -> Option<i64> {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];

    let b = date.trim().as_bytes();
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    //  0123456789012345678901234567 8
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    if !DAYS.contains(&&b[0..3]) {
        return None;
    }
    let day = digits(&b[5..7])?;
    let month = MONTHS.iter().position(|m| *m == &b[8..11])? as i64 + 1;
    let year = digits(&b[12..16])?;
    let hour = digits(&b[17..19])?;
    let minute = digits(&b[20..22])?;
    // 60 is a leap second; IMF-fixdate allows it.
    let second = digits(&b[23..25])?;
    if day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn http_date_known_values() {
        assert_eq!(
            clock_from_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            clock_from_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(0)
        );
        assert_eq!(
            clock_from_http_date("Tue, 14 Nov 2023 22:13:20 GMT"),
            Some(1_700_000_000)
        );
        assert_eq!(
            clock_from_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        assert_eq!(
            clock_from_http_date("Fri, 31 Dec 1999 23:59:59 GMT"),
            Some(946_684_799)
        );
        assert_eq!(
            clock_from_http_date("Wed, 31 Dec 1969 23:59:59 GMT"),
            Some(-1)
        );
        assert_eq!(
            clock_from_http_date(" Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
            Some(784_111_777)
        );
    }

    #[test]
    fn http_date_agrees_with_day_count_over_centuries() {
        // Walk day by day from 1900 and check the day count is continuous.
        let mut prev = clock_from_http_date("Mon, 01 Jan 1900 00:00:00 GMT").unwrap();
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut first = true;
        for year in 1900..2101 {
            for (m, name) in MONTHS.iter().enumerate() {
                for day in 1..=days_in_month(year, m as i64 + 1) {
                    let s = format!("Mon, {day:02} {name} {year} 00:00:00 GMT");
                    let t = clock_from_http_date(&s).unwrap();
                    if !first {
                        assert_eq!(t - prev, 86_400, "{s}");
                    }
                    first = false;
                    prev = t;
                }
            }
        }
        assert_eq!(
            prev,
            clock_from_http_date("Thu, 31 Dec 2100 00:00:00 GMT").unwrap()
        );
    }

    #[test]
    fn http_date_rejects_other_shapes() {
        for s in [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 08:49:+7 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMTX",
            "Sun, 06 Nov 199a 08:49:37 GMT",
            "Sun, 0é Nov 1994 08:49:3 GMT",
            "Sun,\u{a0}06 Nov 1994 08:49:37GMT",
        ] {
            assert_eq!(clock_from_http_date(s), None, "{s:?}");
        }
        assert!(clock_from_http_date("Sun, 31 Dec 1995 23:59:60 GMT").is_some());
    }
}
