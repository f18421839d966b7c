//! How a deployer signs a status report, and how ghplane checks it.
//!
//! Invariant: a report's signature covers a timestamp and the deployment it reports on as
//! well as the exact body, so a captured report verifies nowhere else: not on another
//! deployment (of this project or another), and not after [`REPORT_WINDOW_SECS`] (nor that far
//! ahead of ghplane's clock). The recipe, for deployers, is in `docs/deploy-signing.md`:
//!
//! ```text
//! X-Ghplane-Timestamp: <unix seconds>
//! X-Ghplane-Signature-256: sha256=<hex HMAC-SHA256(hook secret, "<timestamp>.<deployment id>.<body>")>
//! ```
//!
//! where `<deployment id>` is the id in the status URL (`acme-ab12.3`).

use super::error::DeployError;
use super::hook::{signature, verify_signature};
use super::routing::DeploymentRef;

pub const TIMESTAMP_HEADER: &str = "X-Ghplane-Timestamp";
/// How far a report's timestamp may be from ghplane's clock, either way.
pub const REPORT_WINDOW_SECS: i64 = 300;

/// The bytes a report's signature covers: `<timestamp>.<deployment id>.<body>`.
pub fn signed_bytes(timestamp: &str, deployment: &DeploymentRef, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{timestamp}.{deployment}.").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The `X-Ghplane-Signature-256` value of a report (what a deployer computes).
pub fn report_signature(
    secret: &[u8],
    timestamp: &str,
    deployment: &DeploymentRef,
    body: &[u8],
) -> String {
    signature(secret, &signed_bytes(timestamp, deployment, body))
}

/// Checks a report: the signature over timestamp, deployment and body first (so a forger
/// learns nothing about the clock), then the timestamp's distance from `now_ms`.
pub fn verify_report(
    secret: &[u8],
    timestamp: Option<&str>,
    deployment: &DeploymentRef,
    body: &[u8],
    signature_header: &str,
    now_ms: i64,
) -> Result<(), DeployError> {
    let timestamp = timestamp
        .map(str::trim)
        .ok_or(DeployError::InvalidSignature)?;
    let seconds = parse_seconds(timestamp).ok_or(DeployError::InvalidSignature)?;
    if !verify_signature(
        secret,
        &signed_bytes(timestamp, deployment, body),
        signature_header,
    ) {
        return Err(DeployError::InvalidSignature);
    }
    if (now_ms.div_euclid(1000) - seconds).abs() > REPORT_WINDOW_SECS {
        return Err(DeployError::ReportExpired);
    }
    Ok(())
}

/// Unix seconds as plain decimal digits (no sign, no fraction), as the recipe sends them.
fn parse_seconds(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projects::ProjectSlug;

    const SECRET: &[u8] = b"ghpdh_secret";
    const NOW_MS: i64 = 1_700_000_000_123;
    const BODY: &[u8] = br#"{"state":"success"}"#;

    fn dep(n: u64) -> DeploymentRef {
        DeploymentRef {
            project: ProjectSlug::parse("acme-ab12").unwrap(),
            number: n,
        }
    }

    fn check(ts: &str, d: &DeploymentRef, sig: &str) -> Result<(), DeployError> {
        verify_report(SECRET, Some(ts), d, BODY, sig, NOW_MS)
    }

    #[test]
    fn the_recipe_is_an_hmac_of_timestamp_deployment_and_body() {
        // The documented recipe, computed independently of `report_signature`.
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(br#"1700000000.acme-ab12.3.{"state":"success"}"#);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let sig = report_signature(SECRET, "1700000000", &dep(3), BODY);
        assert_eq!(sig, format!("sha256={hex}"));
        assert_eq!(check("1700000000", &dep(3), &sig), Ok(()));
    }

    #[test]
    fn a_report_verifies_only_for_its_own_deployment() {
        let sig = report_signature(SECRET, "1700000000", &dep(3), BODY);
        assert_eq!(
            check("1700000000", &dep(4), &sig),
            Err(DeployError::InvalidSignature)
        );
        let other = DeploymentRef {
            project: ProjectSlug::parse("other-cd34").unwrap(),
            number: 3,
        };
        assert_eq!(
            check("1700000000", &other, &sig),
            Err(DeployError::InvalidSignature)
        );
        // Nor with another timestamp, body or secret, nor the body-only signature of old.
        assert_eq!(
            check("1700000001", &dep(3), &sig),
            Err(DeployError::InvalidSignature)
        );
        let body_only = signature(SECRET, BODY);
        assert_eq!(
            check("1700000000", &dep(3), &body_only),
            Err(DeployError::InvalidSignature)
        );
        assert_eq!(
            verify_report(b"other", Some("1700000000"), &dep(3), BODY, &sig, NOW_MS),
            Err(DeployError::InvalidSignature)
        );
    }

    #[test]
    fn reports_older_or_newer_than_the_window_are_refused() {
        let now = NOW_MS / 1000;
        for (offset, ok) in [
            (0, true),
            (-REPORT_WINDOW_SECS, true),
            (REPORT_WINDOW_SECS, true),
            (-REPORT_WINDOW_SECS - 1, false),
            (REPORT_WINDOW_SECS + 1, false),
            (-86_400, false),
        ] {
            let ts = (now + offset).to_string();
            let sig = report_signature(SECRET, &ts, &dep(3), BODY);
            let want = if ok {
                Ok(())
            } else {
                Err(DeployError::ReportExpired)
            };
            assert_eq!(check(&ts, &dep(3), &sig), want, "offset {offset}");
        }
    }

    #[test]
    fn a_missing_or_malformed_timestamp_is_a_bad_signature() {
        let sig = report_signature(SECRET, "1700000000", &dep(3), BODY);
        assert_eq!(
            verify_report(SECRET, None, &dep(3), BODY, &sig, NOW_MS),
            Err(DeployError::InvalidSignature)
        );
        for ts in [
            "",
            "-1700000000",
            "1700000000.5",
            "1e9",
            "17000000000000",
            "now",
        ] {
            let sig = report_signature(SECRET, ts, &dep(3), BODY);
            assert_eq!(
                check(ts, &dep(3), &sig),
                Err(DeployError::InvalidSignature),
                "{ts:?}"
            );
        }
    }
}
