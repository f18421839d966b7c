//! The request headers of a delivery, checked before the body is read.
//!
//! **Invariant:** everything here is decided from headers alone, in a fixed order (size,
//! media type, event, delivery, hook target), so a refused delivery costs no body read and
//! the same request always gets the same error.

use std::fmt;

use serde::Serialize;

use crate::ids::{truncate, AppId};
use crate::webhook::error::WebhookError;
use crate::webhook::signature::SIGNATURE_HEADER;

pub const EVENT_HEADER: &str = "X-GitHub-Event";
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";
pub const TARGET_TYPE_HEADER: &str = "X-GitHub-Hook-Installation-Target-Type";
pub const TARGET_ID_HEADER: &str = "X-GitHub-Hook-Installation-Target-ID";
pub const CONTENT_TYPE_HEADER: &str = "Content-Type";
pub const CONTENT_LENGTH_HEADER: &str = "Content-Length";

/// GitHub caps payloads at 25 MB; anything larger is not from GitHub.
pub const MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;

const MAX_EVENT_LEN: usize = 64;
const MAX_DELIVERY_LEN: usize = 64;
/// The target type of a GitHub App's own webhook; repository and organization hooks differ.
const APP_TARGET_TYPE: &str = "integration";

/// What the headers say about a delivery, already validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryHeaders {
    /// `X-GitHub-Event`, e.g. `push`; the name [`crate::webhook::parse_event`] takes.
    pub event: String,
    pub delivery: DeliveryId,
    /// `X-GitHub-Hook-Installation-Target-ID`: the app whose secrets verify the body.
    pub target_app: Option<AppId>,
    /// The declared size; the adapter still checks the bytes it actually read.
    pub content_length: Option<u64>,
    /// `X-Hub-Signature-256` as sent; [`crate::webhook::verify`] judges it.
    pub signature: Option<String>,
}

/// `X-GitHub-Delivery`: the dedupe key. GitHub sends a GUID; redeliveries reuse it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeliveryId(String);

impl DeliveryId {
    pub fn parse(s: &str) -> Result<Self, WebhookError> {
        let ok = (1..=MAX_DELIVERY_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| DeliveryId(s.to_owned()))
            .ok_or(WebhookError::InvalidDeliveryHeader)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads the headers through `get` (the adapter's case-insensitive lookup, called with the
/// canonical names above). Size and media type come first: they are what a misconfigured
/// hook gets wrong, and their answers (413, 415) tell the owner what to fix.
pub fn check_headers(
    get: impl Fn(&str) -> Option<String>,
) -> Result<DeliveryHeaders, WebhookError> {
    let content_length = get(CONTENT_LENGTH_HEADER)
        .map(|v| content_length(&v))
        .transpose()?;
    check_content_type(get(CONTENT_TYPE_HEADER).as_deref())?;
    let event = get(EVENT_HEADER).ok_or(WebhookError::MissingEventHeader)?;
    if !is_token(&event, MAX_EVENT_LEN) {
        return Err(WebhookError::InvalidEventHeader);
    }
    let delivery =
        DeliveryId::parse(&get(DELIVERY_HEADER).ok_or(WebhookError::MissingDeliveryHeader)?)?;
    if let Some(kind) = get(TARGET_TYPE_HEADER) {
        if kind != APP_TARGET_TYPE {
            return Err(WebhookError::InvalidHookTarget(format!(
                "the hook target type is {:?}, not \"{APP_TARGET_TYPE}\"",
                truncate(&kind, 32)
            )));
        }
    }
    let target_app = get(TARGET_ID_HEADER)
        .map(|v| {
            AppId::parse(&v).map_err(|_| {
                WebhookError::InvalidHookTarget(format!(
                    "the hook target id {:?} is not an app id",
                    truncate(&v, 32)
                ))
            })
        })
        .transpose()?;
    Ok(DeliveryHeaders {
        event,
        delivery,
        target_app,
        content_length,
        signature: get(SIGNATURE_HEADER),
    })
}

/// For the bytes actually read: `Content-Length` may be absent (chunked) or wrong.
pub fn check_body_len(len: usize) -> Result<(), WebhookError> {
    if len > MAX_PAYLOAD_BYTES {
        return Err(WebhookError::PayloadTooLarge {
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

fn content_length(v: &str) -> Result<u64, WebhookError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebhookError::InvalidContentLength);
    }
    // Digits that overflow u64 are certainly over the limit.
    let n = v.parse::<u64>().unwrap_or(u64::MAX);
    if n > MAX_PAYLOAD_BYTES as u64 {
        return Err(WebhookError::PayloadTooLarge {
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(n)
}

/// `application/json`, in any case, with or without parameters such as `charset`. GitHub's
/// other choice, `application/x-www-form-urlencoded` (`payload=<json>`), is refused: the
/// signature would cover the encoded form, and one format keeps one parser.
fn check_content_type(v: Option<&str>) -> Result<(), WebhookError> {
    let essence = v.map(|v| v.split(';').next().unwrap_or("").trim());
    match essence {
        Some(e) if e.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(WebhookError::UnsupportedMediaType),
    }
}

/// RFC 9110 `token`: the characters an HTTP field value may use without quoting.
fn is_token(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn github() -> HashMap<String, String> {
        [
            ("content-type", "application/json"),
            ("content-length", "7295"),
            ("x-github-event", "push"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-github-hook-id", "292430182"),
            ("x-github-hook-installation-target-type", "integration"),
            ("x-github-hook-installation-target-id", "79929171"),
            (
                "x-hub-signature-256",
                "sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c",
            ),
            ("user-agent", "GitHub-Hookshot/044aadd"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn check(h: &HashMap<String, String>) -> Result<DeliveryHeaders, WebhookError> {
        check_headers(|name| h.get(&name.to_ascii_lowercase()).cloned())
    }

    fn with(name: &str, value: Option<&str>) -> HashMap<String, String> {
        let mut h = github();
        match value {
            Some(v) => h.insert(name.to_owned(), v.to_owned()),
            None => h.remove(name),
        };
        h
    }

    fn code(name: &str, value: Option<&str>) -> &'static str {
        match check(&with(name, value)) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn a_real_delivery_passes_typed() {
        let d = check(&github()).unwrap();
        assert_eq!(d.event, "push");
        assert_eq!(d.delivery.as_str(), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(d.target_app, Some(AppId::from_u64(79929171).unwrap()));
        assert_eq!(d.content_length, Some(7295));
        assert!(d.signature.is_some_and(|s| s.starts_with("sha256=")));
    }

    #[test]
    fn optional_headers_may_be_absent() {
        let mut h = github();
        for k in [
            "content-length",
            "x-github-hook-installation-target-type",
            "x-github-hook-installation-target-id",
            "x-hub-signature-256",
        ] {
            h.remove(k);
        }
        let d = check(&h).unwrap();
        assert_eq!(
            (d.target_app, d.content_length, d.signature),
            (None, None, None)
        );
    }

    #[test]
    fn event_header_rules() {
        assert_eq!(code("x-github-event", None), "missing_event_header");
        assert_eq!(code("x-github-event", Some("")), "invalid_event_header");
        assert_eq!(
            code("x-github-event", Some("pull request")),
            "invalid_event_header"
        );
        assert_eq!(
            code("x-github-event", Some("push\n")),
            "invalid_event_header"
        );
        assert_eq!(code("x-github-event", Some("pùsh")), "invalid_event_header");
        assert_eq!(
            code("x-github-event", Some(&"a".repeat(65))),
            "invalid_event_header"
        );
        assert_eq!(code("x-github-event", Some(&"a".repeat(64))), "ok");
        assert_eq!(
            code("x-github-event", Some("installation_repositories")),
            "ok"
        );
    }

    #[test]
    fn delivery_header_rules() {
        assert_eq!(code("x-github-delivery", None), "missing_delivery_header");
        for bad in ["", "a b", "abc_def", "{guid}", "ü", &"a".repeat(65)] {
            assert_eq!(
                code("x-github-delivery", Some(bad)),
                "invalid_delivery_header",
                "{bad:?}"
            );
        }
        for good in ["1", "ABCdef-123", &"a".repeat(64)] {
            assert_eq!(code("x-github-delivery", Some(good)), "ok", "{good:?}");
        }
    }

    #[test]
    fn hook_target_rules() {
        let t = "x-github-hook-installation-target-type";
        for bad in ["repository", "organization", "Integration", ""] {
            assert_eq!(code(t, Some(bad)), "invalid_hook_target", "{bad:?}");
        }
        let id = "x-github-hook-installation-target-id";
        for bad in ["", "0", "-1", "01", "abc", "99999999999999999999"] {
            assert_eq!(code(id, Some(bad)), "invalid_hook_target", "{bad:?}");
        }
        let e = check(&with(t, Some(&"r".repeat(10_000)))).unwrap_err();
        assert!(
            e.to_string().len() < 200,
            "the value is truncated in the message"
        );
    }

    #[test]
    fn content_type_rules() {
        let ct = "content-type";
        assert_eq!(code(ct, None), "unsupported_media_type");
        for bad in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/jsonp",
            "application/json+x",
            "",
        ] {
            assert_eq!(code(ct, Some(bad)), "unsupported_media_type", "{bad:?}");
        }
        for good in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
        ] {
            assert_eq!(code(ct, Some(good)), "ok", "{good:?}");
        }
        let e = check(&with(ct, Some("application/x-www-form-urlencoded"))).unwrap_err();
        assert_eq!(e.status(), 415);
    }

    #[test]
    fn content_length_rules() {
        let cl = "content-length";
        let limit = MAX_PAYLOAD_BYTES.to_string();
        let over = (MAX_PAYLOAD_BYTES + 1).to_string();
        assert_eq!(code(cl, Some(&limit)), "ok");
        assert_eq!(code(cl, Some("0")), "ok");
        assert_eq!(code(cl, Some(&over)), "payload_too_large");
        assert_eq!(
            code(cl, Some("99999999999999999999999999")),
            "payload_too_large"
        );
        for bad in ["", "-1", "1e9", " 12", "0x10"] {
            assert_eq!(code(cl, Some(bad)), "invalid_content_length", "{bad:?}");
        }
        let e = check(&with(cl, Some(&over))).unwrap_err();
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn order_is_size_then_media_type_then_event_then_delivery() {
        let mut h = HashMap::new();
        h.insert("content-length".to_owned(), "999999999".to_owned());
        h.insert("content-type".to_owned(), "text/plain".to_owned());
        assert_eq!(check(&h).unwrap_err().code(), "payload_too_large");
        h.remove("content-length");
        assert_eq!(check(&h).unwrap_err().code(), "unsupported_media_type");
        h.insert("content-type".to_owned(), "application/json".to_owned());
        assert_eq!(check(&h).unwrap_err().code(), "missing_event_header");
        h.insert("x-github-event".to_owned(), "ping".to_owned());
        assert_eq!(check(&h).unwrap_err().code(), "missing_delivery_header");
    }

    #[test]
    fn body_length_limit() {
        assert!(check_body_len(MAX_PAYLOAD_BYTES).is_ok());
        assert_eq!(
            check_body_len(MAX_PAYLOAD_BYTES + 1).unwrap_err().status(),
            413
        );
    }
}
