//! `sha256=<hex>`: HMAC-SHA256 of a body under a shared secret, the one signature scheme ghplane
//! checks (GitHub's `X-Hub-Signature-256`) and makes (the deploy hook's
//! `X-Ghplane-Signature-256`, signed like GitHub's so receivers reuse their code).
//!
//! **Invariant:** a header is accepted only when it is exactly `sha256=` plus 64 lowercase hex
//! digits and equals the MAC in constant time. No input panics, and a hostile header costs one
//! length comparison.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::constant_time_eq;

pub const PREFIX: &str = "sha256=";
pub const MAC_LEN: usize = 32;
/// The only length a valid header has; checked before anything else is looked at.
pub const HEADER_LEN: usize = PREFIX.len() + 2 * MAC_LEN;

/// The HMAC-SHA256 of `body` under `secret`.
pub fn mac(secret: &[u8], body: &[u8]) -> [u8; MAC_LEN] {
    // HMAC hashes long keys and pads short ones, so no key length is refused.
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// `sha256=<lowercase hex>`, as GitHub sends it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("{PREFIX}{}", crate::hex::encode(&mac(secret, body)))
}

/// Whether `header` is `secret`'s signature of `body`, compared in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    decode(header).is_some_and(|claimed| constant_time_eq(&mac(secret, body), &claimed))
}

/// The MAC a header claims. Only what GitHub sends: lowercase prefix, lowercase hex. The
/// length test comes first so a megabyte header is refused without being scanned.
pub fn decode(header: &str) -> Option<[u8; MAC_LEN]> {
    if header.len() != HEADER_LEN {
        return None;
    }
    crate::hex::decode_lower(header.strip_prefix(PREFIX)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // GitHub's published example ("Validating webhook deliveries").
    pub(crate) const SECRET: &[u8] = b"It's a Secret to Everybody";
    pub(crate) const BODY: &[u8] = b"Hello, World!";
    pub(crate) const HEADER: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn signs_and_verifies_githubs_example() {
        assert_eq!(sign(SECRET, BODY), HEADER);
        assert!(verify(SECRET, BODY, HEADER));
        assert!(!verify(SECRET, b"Hello, World?", HEADER));
        assert!(!verify(b"another secret", BODY, HEADER));
    }

    #[test]
    fn only_the_exact_form_is_read() {
        assert_eq!(decode(HEADER).map(|m| m[0]), Some(0x75));
        for bad in [
            HEADER.to_uppercase(),
            HEADER.replacen("sha256=", "SHA256=", 1),
            HEADER.replacen("sha256=", "sha1=", 1),
            format!("{HEADER}0"),
            format!(" {HEADER}"),
            HEADER[..HEADER.len() - 1].to_owned(),
            format!("{}g", &HEADER[..HEADER.len() - 1]),
            "x".repeat(1 << 20),
        ] {
            assert_eq!(decode(&bad), None, "{bad:.80}");
            assert!(!verify(SECRET, BODY, &bad));
        }
    }
}
