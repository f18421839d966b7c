//! `X-Hub-Signature-256`: HMAC-SHA256 over the exact bytes received.
//!
//! **Invariant:** a delivery is trusted only when its header is exactly `sha256=` plus 64
//! lowercase hex digits and equals, in constant time, the MAC under one of the app's
//! non-empty secrets. No input panics, and a hostile header costs one length comparison.

use thiserror::Error;

use crate::auth::constant_time_eq;
pub use crate::signature::sign;
use crate::signature::{decode, mac, MAC_LEN};

pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SignatureError {
    /// A misconfiguration, not the sender's fault, but still no proof: fail closed.
    #[error("no webhook secret is configured for this app")]
    NoSecret,
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not sha256=<64 lowercase hex digits>")]
    Malformed,
    #[error("the signature does not match the payload")]
    Mismatch,
}

/// Accepts the delivery when any secret (the current one and, during a rotation, the
/// previous one) signed `body`. Empty secrets are skipped: an HMAC under an empty key is
/// something anyone can compute.
pub fn verify(secrets: &[&[u8]], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let claim = Claim::check(secrets, header)?;
    let macs: Vec<[u8; MAC_LEN]> = claim.secrets().iter().map(|s| mac(s, body)).collect();
    claim.judge(&macs)
}

/// Everything [`verify`] decides before hashing, so the worker can compute the MACs with
/// the runtime's native HMAC (a push may be 25 MB) and still leave every decision here.
#[derive(Debug)]
pub struct Claim<'a> {
    secrets: Vec<&'a [u8]>,
    claimed: [u8; MAC_LEN],
}

impl<'a> Claim<'a> {
    /// At least one non-empty secret and a well-formed header, in that order.
    pub fn check(secrets: &[&'a [u8]], header: Option<&str>) -> Result<Self, SignatureError> {
        let secrets: Vec<&[u8]> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        let header = header.ok_or(SignatureError::Missing)?;
        let claimed = decode(header).ok_or(SignatureError::Malformed)?;
        Ok(Self { secrets, claimed })
    }

    /// The secrets to compute an HMAC-SHA256 of the body under, in order.
    pub fn secrets(&self) -> &[&'a [u8]] {
        &self.secrets
    }

    /// The verdict, given one MAC per secret of [`Claim::secrets`]: constant-time equality
    /// with the header's. A missing MAC never matches.
    pub fn judge(&self, macs: &[[u8; MAC_LEN]]) -> Result<(), SignatureError> {
        if macs.len() == self.secrets.len()
            && macs.iter().any(|m| constant_time_eq(m, &self.claimed))
        {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // GitHub's published example ("Validating webhook deliveries").
    use crate::signature::tests::{BODY, HEADER, SECRET};
    use crate::signature::HEADER_LEN;

    #[test]
    fn a_claim_is_judged_on_macs_computed_elsewhere() {
        let claim = Claim::check(&[b"", SECRET], Some(HEADER)).unwrap();
        assert_eq!(claim.secrets(), &[SECRET]);
        assert_eq!(claim.judge(&[mac(SECRET, BODY)]), Ok(()));
        assert_eq!(
            claim.judge(&[mac(SECRET, b"other")]),
            Err(SignatureError::Mismatch)
        );
        // One MAC per secret, or no verdict but a mismatch.
        assert_eq!(claim.judge(&[]), Err(SignatureError::Mismatch));
        assert_eq!(
            claim.judge(&[mac(SECRET, BODY), mac(SECRET, BODY)]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            Claim::check(&[b""], Some(HEADER)).unwrap_err(),
            SignatureError::NoSecret
        );
        assert_eq!(
            Claim::check(&[SECRET], Some("sha256=00")).unwrap_err(),
            SignatureError::Malformed
        );
    }

    #[test]
    fn githubs_published_vector_verifies() {
        assert_eq!(verify(&[SECRET], BODY, Some(HEADER)), Ok(()));
        assert_eq!(sign(SECRET, BODY), HEADER);
    }

    #[test]
    fn one_changed_body_byte_fails() {
        let mut body = BODY.to_vec();
        for i in 0..body.len() {
            body[i] ^= 0x01;
            assert_eq!(
                verify(&[SECRET], &body, Some(HEADER)),
                Err(SignatureError::Mismatch),
                "byte {i}"
            );
            body[i] ^= 0x01;
        }
        assert_eq!(
            verify(&[SECRET], b"Hello, World!\n", Some(HEADER)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_fails() {
        assert_eq!(
            verify(&[b"It's a Secret to Everybody!"], BODY, Some(HEADER)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        let upper_hex = format!("sha256={}", HEADER[7..].to_ascii_uppercase());
        let megabyte = format!("sha256={}", "a".repeat(1024 * 1024));
        let cases: Vec<(Option<String>, SignatureError)> = vec![
            (None, SignatureError::Missing),
            (Some(String::new()), SignatureError::Malformed),
            (
                Some("sha1=7d38cdd689735b008b3c702edd92eea23791c5f6".into()),
                SignatureError::Malformed,
            ),
            (Some(HEADER[7..].to_owned()), SignatureError::Malformed),
            (
                Some(HEADER.replace("sha256=", "SHA256=")),
                SignatureError::Malformed,
            ),
            (
                Some(HEADER.replace("sha256=", "Sha256=")),
                SignatureError::Malformed,
            ),
            (Some(upper_hex), SignatureError::Malformed),
            (
                Some(HEADER[..HEADER.len() - 1].to_owned()),
                SignatureError::Malformed,
            ),
            (Some(format!("{HEADER}7")), SignatureError::Malformed),
            (Some(format!("{HEADER} ")), SignatureError::Malformed),
            (
                Some(format!(" {}", &HEADER[..HEADER.len() - 1])),
                SignatureError::Malformed,
            ),
            (Some(HEADER.replace('e', "g")), SignatureError::Malformed),
            (
                Some(format!("sha256={}", "z".repeat(64))),
                SignatureError::Malformed,
            ),
            (
                Some(format!("sha256={}", "é".repeat(32))),
                SignatureError::Malformed,
            ),
            (
                Some(format!("sha256:{}", &HEADER[7..])),
                SignatureError::Malformed,
            ),
            (
                Some(format!("sha256={}", "0".repeat(64))),
                SignatureError::Mismatch,
            ),
            (Some(megabyte), SignatureError::Malformed),
        ];
        for (header, want) in cases {
            let shown = header.as_deref().map(|h| crate::ids::truncate(h, 80));
            assert_eq!(
                verify(&[SECRET], BODY, header.as_deref()),
                Err(want),
                "{shown:?}"
            );
        }
    }

    #[test]
    fn multibyte_header_of_the_right_length_does_not_panic() {
        // 71 bytes whose 7th byte is inside a multi-byte character: strip_prefix must not
        // slice through it.
        let h = format!("sha256é{}", "a".repeat(HEADER_LEN - 8));
        assert_eq!(h.len(), HEADER_LEN);
        assert_eq!(
            verify(&[SECRET], BODY, Some(&h)),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn either_secret_verifies_during_rotation() {
        let old: &[u8] = b"old secret";
        let new: &[u8] = b"new secret";
        let by_old = sign(old, BODY);
        let by_new = sign(new, BODY);
        assert_eq!(verify(&[new, old], BODY, Some(&by_old)), Ok(()));
        assert_eq!(verify(&[new, old], BODY, Some(&by_new)), Ok(()));
        assert_eq!(
            verify(&[new], BODY, Some(&by_old)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&[b"third"], BODY, Some(&by_new)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn no_usable_secret_fails_closed() {
        let by_empty = sign(b"", BODY);
        assert_eq!(
            verify(&[], BODY, Some(HEADER)),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(
            verify(&[b""], BODY, Some(&by_empty)),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(verify(&[b"", SECRET], BODY, Some(HEADER)), Ok(()));
    }

    #[test]
    fn empty_body_is_signed_like_any_other() {
        let h = sign(SECRET, b"");
        assert_eq!(h.len(), HEADER_LEN);
        assert_eq!(verify(&[SECRET], b"", Some(&h)), Ok(()));
        assert_eq!(
            verify(&[SECRET], b" ", Some(&h)),
            Err(SignatureError::Mismatch)
        );
    }
}
