//! The at-rest form of a secret: AES-256-GCM ciphertext plus the id of the key that sealed it,
//! so `ENCRYPTION_KEY` can rotate while older values stay readable.
//!
//! The encryption itself runs on the runtime's Web Crypto (crate `ghplane-webcrypto`); this
//! module only decides the format, the key ids and the associated data.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Format version.
    pub v: u8,
    /// [`key_id`] of the key that sealed it.
    pub kid: String,
    /// 12-byte nonce, base64.
    pub iv: String,
    /// Ciphertext with the GCM tag, base64.
    pub ct: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed(kid={})", self.kid)
    }
}

/// A short public name for a key: the first 8 hex digits of its SHA-256. Enough to pick the
/// right key among a handful, useless for guessing it.
pub fn key_id(key: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(key)[..4])
}

/// Associated data binding a ciphertext to the object and slot it was written for, so a
/// ciphertext copied into another tenant's record or another field fails to decrypt.
pub fn aad(object: &str, slot: &str) -> Vec<u8> {
    format!("ghplane:v1:{object}:{slot}").into_bytes()
}

/// Parses `ENCRYPTION_KEY`-style values: standard base64 of exactly 32 bytes.
pub fn parse_key(b64: &str) -> Result<[u8; 32], &'static str> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|_| "not base64")?;
    bytes.try_into().map_err(|_| "not 32 bytes")
}

impl Sealed {
    pub fn new(kid: String, iv: &[u8; 12], ct: &[u8]) -> Sealed {
        Sealed {
            v: 1,
            kid,
            iv: STANDARD.encode(iv),
            ct: STANDARD.encode(ct),
        }
    }

    pub fn iv_bytes(&self) -> Option<[u8; 12]> {
        STANDARD.decode(&self.iv).ok()?.try_into().ok()
    }

    pub fn ct_bytes(&self) -> Option<Vec<u8>> {
        STANDARD.decode(&self.ct).ok()
    }
}

/// A plaintext secret in memory. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_stable_and_short() {
        assert_eq!(key_id(&[0u8; 32]), "66687aad");
        assert_ne!(key_id(&[0u8; 32]), key_id(&[1u8; 32]));
    }

    #[test]
    fn parse_key_wants_32_bytes() {
        assert!(parse_key(&STANDARD.encode([7u8; 32])).is_ok());
        assert_eq!(parse_key(&STANDARD.encode([7u8; 31])), Err("not 32 bytes"));
        assert_eq!(parse_key("***"), Err("not base64"));
    }

    #[test]
    fn sealed_round_trips_bytes_and_hides_them_in_debug() {
        let s = Sealed::new("abcd0123".into(), &[9u8; 12], b"cipher");
        assert_eq!(s.iv_bytes(), Some([9u8; 12]));
        assert_eq!(s.ct_bytes().as_deref(), Some(&b"cipher"[..]));
        assert_eq!(format!("{s:?}"), "Sealed(kid=abcd0123)");
        assert_eq!(
            format!("{:?}", Secret::new("hunter2".into())),
            "Secret(<redacted>)"
        );
    }

    #[test]
    fn aad_differs_per_slot() {
        assert_ne!(
            aad("install-1", "privateKey"),
            aad("install-1", "webhookSecret")
        );
        assert_ne!(
            aad("install-1", "privateKey"),
            aad("install-2", "privateKey")
        );
    }
}
