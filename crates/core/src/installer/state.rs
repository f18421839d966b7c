//! The `state` of the GitHub App Manifest flow: `<installer>.<expires>.<nonce>.<mac>`.
//!
//! **Invariant:** a callback is acted on only when its state carries a MAC under a key
//! derived from `ENCRYPTION_KEY` (checked first, in constant time, so a forged state touches
//! no Durable Object), has not expired, and its nonce is the one the installer still holds
//! (single use: the installer forgets it when the callback consumes it).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::constant_time_eq;
use crate::installer::{InstallerError, InstallerId};

type HmacSha256 = Hmac<Sha256>;

/// How long a setup link stays valid; the setup page issues a fresh one when it has expired.
pub const STATE_TTL_SECS: i64 = 60 * 60;
const MAX_STATE_LEN: usize = 200;

/// The MAC key for states: its own key, derived so a state MAC never doubles as anything else.
pub fn derive_key(encryption_key: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(encryption_key).expect("HMAC takes any key length");
    m.update(b"ghplane/installer-state/v1");
    m.finalize().into_bytes().into()
}

fn mac(key: &[u8; 32], payload: &str) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(payload.as_bytes());
    m.finalize().into_bytes().into()
}

/// A fresh state for `installer`; `nonce` is random hex chosen by the caller.
pub fn sign(key: &[u8; 32], installer: &InstallerId, nonce: &str, expires_at: i64) -> String {
    let payload = format!("{installer}.{expires_at}.{nonce}");
    let tag = URL_SAFE_NO_PAD.encode(mac(key, &payload));
    format!("{payload}.{tag}")
}

#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedState {
    pub installer: InstallerId,
    pub nonce: String,
    pub expires_at: i64,
}

/// Checks the MAC, then the expiry. The nonce is checked (and consumed) by the installer.
pub fn verify(key: &[u8; 32], state: &str, now: i64) -> Result<VerifiedState, InstallerError> {
    let forged = InstallerError::InvalidState("it was not issued by this ghplane".into());
    if state.len() > MAX_STATE_LEN {
        return Err(forged);
    }
    let (payload, tag) = state.rsplit_once('.').ok_or(forged.clone())?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| forged.clone())?;
    if !constant_time_eq(&mac(key, payload), &tag) {
        return Err(forged);
    }
    let mut parts = payload.splitn(3, '.');
    let (Some(id), Some(exp), Some(nonce)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(forged);
    };
    let installer = InstallerId::parse(id).map_err(|_| forged.clone())?;
    let expires_at: i64 = exp.parse().map_err(|_| forged)?;
    if now >= expires_at {
        return Err(InstallerError::InvalidState(
            "it has expired; open the setup page again".into(),
        ));
    }
    Ok(VerifiedState {
        installer,
        nonce: nonce.to_owned(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> InstallerId {
        InstallerId::parse("0123456789abcdef").unwrap()
    }

    #[test]
    fn round_trip_then_expiry() {
        let key = derive_key(&[7; 32]);
        let s = sign(&key, &id(), "n0nce", 1_000);
        let v = verify(&key, &s, 999).unwrap();
        assert_eq!(
            (v.installer, v.nonce.as_str(), v.expires_at),
            (id(), "n0nce", 1_000)
        );
        let e = verify(&key, &s, 1_000).unwrap_err();
        assert_eq!(e.code(), "invalid_setup_state");
        assert!(e.to_string().contains("expired"));
    }

    #[test]
    fn forged_or_altered_states_are_refused_before_expiry_is_read() {
        let key = derive_key(&[7; 32]);
        let other = derive_key(&[8; 32]);
        let s = sign(&key, &id(), "n", 1_000);
        let later = s.replace(".1000.", ".9999.");
        for bad in [
            sign(&other, &id(), "n", 1_000),
            later,
            String::new(),
            "x".into(),
            format!("{s}x"),
            "a".repeat(500),
        ] {
            let e = verify(&key, &bad, 0).unwrap_err();
            assert!(e.to_string().contains("not issued"), "{bad}: {e}");
        }
    }
}
