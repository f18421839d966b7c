//! The runtime's Web Crypto (`globalThis.crypto`), wrapped for ghplane.
//!
//! **Invariant:** all key material lives inside non-extractable `CryptoKey`s once
//! imported, and nothing in this crate (errors, `Debug`) ever renders key bytes or
//! runtime error messages, only the DOMException *name*.
//!
//! It reaches `crypto` through `globalThis` rather than `window`, because workerd and
//! Node (where the tests run) have no `window`. It builds on the host so workspace-wide
//! `cargo clippy` works, but every function needs a JS runtime and panics outside wasm.

use std::fmt;

use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Crypto, CryptoKey, SubtleCrypto};

/// AES-256 key length in bytes.
pub const AES_KEY_LEN: usize = 32;
/// AES-GCM tag length in bytes; ciphertexts are `encrypted || tag`.
pub const AES_GCM_TAG_LEN: usize = 16;

/// `getRandomValues` throws `QuotaExceededError` above this many bytes per call.
const RANDOM_CHUNK: usize = 65_536;

/// Why a Web Crypto operation failed. Carries no key material and no free-form text
/// from the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// `globalThis.crypto` or `crypto.subtle` is missing.
    Unavailable,
    /// A raw key of the wrong length was offered.
    InvalidKeyLength { expected: usize, actual: usize },
    /// The runtime refused an operation; `reason` is the DOMException name
    /// (`DataError`, `OperationError`, …) or a fixed description.
    Rejected {
        operation: &'static str,
        reason: String,
    },
    /// AES-GCM decryption failed authentication: wrong key, IV or AAD, or tampering.
    AuthenticationFailed,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::Unavailable => f.write_str("Web Crypto is not available in this runtime"),
            CryptoError::InvalidKeyLength { expected, actual } => {
                write!(f, "key must be {expected} bytes, got {actual}")
            }
            CryptoError::Rejected { operation, reason } => {
                write!(f, "Web Crypto {operation} failed: {reason}")
            }
            CryptoError::AuthenticationFailed => {
                f.write_str("decryption failed: ciphertext or associated data is not authentic")
            }
        }
    }
}

impl std::error::Error for CryptoError {}

fn crypto() -> Result<Crypto, CryptoError> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(|_| CryptoError::Unavailable)?;
    if !crypto.is_object() {
        return Err(CryptoError::Unavailable);
    }
    // Unchecked: the `Crypto` class need not be a global, and calls are structural.
    Ok(crypto.unchecked_into())
}

fn subtle() -> Result<SubtleCrypto, CryptoError> {
    let subtle = Reflect::get(crypto()?.as_ref(), &JsValue::from_str("subtle"))
        .map_err(|_| CryptoError::Unavailable)?;
    if !subtle.is_object() {
        return Err(CryptoError::Unavailable);
    }
    Ok(subtle.unchecked_into())
}

/// The DOMException name only: messages are free-form and could in principle echo input.
fn reason(err: &JsValue) -> String {
    Reflect::get(err, &JsValue::from_str("name"))
        .ok()
        .and_then(|name| name.as_string())
        .filter(|name| {
            !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .unwrap_or_else(|| "unknown error".to_string())
}

fn rejected(operation: &'static str) -> impl Fn(JsValue) -> CryptoError {
    move |err| CryptoError::Rejected {
        operation,
        reason: reason(&err),
    }
}

/// Runs a Web Crypto call whether it throws synchronously or rejects its promise.
async fn settle(call: Result<js_sys::Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(call?).await
}

fn to_bytes(operation: &'static str, value: JsValue) -> Result<Vec<u8>, CryptoError> {
    let buffer: ArrayBuffer = value.dyn_into().map_err(|_| CryptoError::Rejected {
        operation,
        reason: "result is not an ArrayBuffer".to_string(),
    })?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A SHA-256 digest or HMAC as an array.
fn to_32_bytes(operation: &'static str, value: JsValue) -> Result<[u8; 32], CryptoError> {
    to_bytes(operation, value)?
        .try_into()
        .map_err(|_| CryptoError::Rejected {
            operation,
            reason: "the result is not 32 bytes".to_string(),
        })
}

/// `{name, hash: {name: "SHA-256"}}`, the algorithm of every keyed SHA-256 operation here.
fn with_sha256(name: &str) -> Object {
    object(&[
        ("name", JsValue::from_str(name)),
        (
            "hash",
            object(&[("name", JsValue::from_str("SHA-256"))]).into(),
        ),
    ])
}

fn to_key(operation: &'static str, value: JsValue) -> Result<CryptoKey, CryptoError> {
    if !value.is_object() {
        return Err(CryptoError::Rejected {
            operation,
            reason: "result is not a CryptoKey".to_string(),
        });
    }
    Ok(value.unchecked_into())
}

fn usages(list: &[&str]) -> Array {
    list.iter().map(|u| JsValue::from_str(u)).collect()
}

/// Builds a plain JS object; `Reflect::set` on a fresh object cannot fail.
fn object(entries: &[(&str, JsValue)]) -> Object {
    let obj = Object::new();
    for (k, v) in entries {
        let _ = Reflect::set(&obj, &JsValue::from_str(k), v);
    }
    obj
}

/// Fills `buf` from the runtime's CSPRNG.
///
/// # Panics
/// If the runtime has no `crypto.getRandomValues`: with no CSPRNG there is no safe way
/// to continue, and every supported runtime has one.
pub fn fill_random(buf: &mut [u8]) {
    let crypto = crypto().expect("globalThis.crypto is required for random bytes");
    for chunk in buf.chunks_mut(RANDOM_CHUNK) {
        crypto
            .get_random_values_with_u8_array(chunk)
            .expect("crypto.getRandomValues failed");
    }
}

/// `N` bytes from the runtime's CSPRNG, for keys, IVs, nonces and ids.
///
/// # Panics
/// As [`fill_random`].
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill_random(&mut out);
    out
}

/// SHA-256 through Web Crypto.
pub async fn sha256(data: &[u8]) -> Result<[u8; 32], CryptoError> {
    const OP: &str = "digest";
    let subtle = subtle()?;
    let value = settle(subtle.digest_with_str_and_u8_array("SHA-256", data))
        .await
        .map_err(rejected(OP))?;
    to_32_bytes(OP, value)
}

/// HMAC-SHA256 of `data` under `key` through Web Crypto: native speed on a body of
/// megabytes, where the wasm `sha2` crate costs tens of milliseconds. The key is imported
/// non-extractable for this one call; an empty key is refused by the runtime.
pub async fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; 32], CryptoError> {
    HmacSha256Key::import(key).await?.sign(data).await
}

/// A non-extractable HMAC-SHA256 key, imported once for many MACs (the webhook route keeps
/// one per opened secret: the import is a third of a small delivery's crypto cost).
#[derive(Clone)]
pub struct HmacSha256Key {
    key: CryptoKey,
}

impl fmt::Debug for HmacSha256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSha256Key(..)")
    }
}

impl HmacSha256Key {
    /// Imports `key` (an empty key is refused by the runtime).
    pub async fn import(key: &[u8]) -> Result<Self, CryptoError> {
        let subtle = subtle()?;
        let algorithm = with_sha256("HMAC");
        let call = subtle.import_key_with_object(
            "raw",
            &Uint8Array::from(key),
            &algorithm,
            false,
            &usages(&["sign"]),
        );
        let imported = settle(call).await.map_err(rejected("importKey"))?;
        Ok(Self {
            key: to_key("importKey", imported)?,
        })
    }

    /// The MAC of `data`.
    pub async fn sign(&self, data: &[u8]) -> Result<[u8; 32], CryptoError> {
        const OP: &str = "sign";
        let value = settle(subtle()?.sign_with_str_and_u8_array("HMAC", &self.key, data))
            .await
            .map_err(rejected(OP))?;
        to_32_bytes(OP, value)
    }
}

/// A non-extractable AES-256-GCM key (128-bit tags).
#[derive(Clone)]
pub struct AesGcmKey {
    key: CryptoKey,
}

impl fmt::Debug for AesGcmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesGcmKey(..)")
    }
}

impl AesGcmKey {
    /// Imports 32 raw key bytes. Shorter keys are refused rather than accepted as
    /// AES-128/192: a truncated secret is a configuration error, not a weaker cipher.
    pub async fn import(raw: &[u8]) -> Result<Self, CryptoError> {
        const OP: &str = "importKey";
        if raw.len() != AES_KEY_LEN {
            return Err(CryptoError::InvalidKeyLength {
                expected: AES_KEY_LEN,
                actual: raw.len(),
            });
        }
        let subtle = subtle()?;
        let key_data = Uint8Array::from(raw);
        let call = subtle.import_key_with_str(
            "raw",
            &key_data,
            "AES-GCM",
            false,
            &usages(&["encrypt", "decrypt"]),
        );
        let value = settle(call).await.map_err(rejected(OP))?;
        Ok(Self {
            key: to_key(OP, value)?,
        })
    }

    fn params(iv: &[u8; 12], aad: &[u8]) -> Object {
        object(&[
            ("name", JsValue::from_str("AES-GCM")),
            ("iv", Uint8Array::from(&iv[..]).into()),
            ("additionalData", Uint8Array::from(aad).into()),
            ("tagLength", JsValue::from_f64((AES_GCM_TAG_LEN * 8) as f64)),
        ])
    }

    /// `ciphertext || tag`. The IV must never repeat under one key; use
    /// [`random_bytes`] for it.
    pub async fn encrypt(
        &self,
        iv: &[u8; 12],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        const OP: &str = "encrypt";
        let subtle = subtle()?;
        let call =
            subtle.encrypt_with_object_and_u8_array(&Self::params(iv, aad), &self.key, plaintext);
        let value = settle(call).await.map_err(rejected(OP))?;
        to_bytes(OP, value)
    }

    /// Inverse of [`encrypt`](Self::encrypt); any authentication failure is
    /// [`CryptoError::AuthenticationFailed`].
    pub async fn decrypt(
        &self,
        iv: &[u8; 12],
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        const OP: &str = "decrypt";
        if ciphertext.len() < AES_GCM_TAG_LEN {
            // Cannot even hold a tag: as unauthentic as a bad tag, whatever the runtime says.
            return Err(CryptoError::AuthenticationFailed);
        }
        let subtle = subtle()?;
        let call =
            subtle.decrypt_with_object_and_u8_array(&Self::params(iv, aad), &self.key, ciphertext);
        let value = settle(call).await.map_err(|err| {
            // For AES-GCM decrypt the spec raises OperationError only for input that
            // cannot authenticate (tag mismatch, impossible lengths).
            match reason(&err).as_str() {
                "OperationError" => CryptoError::AuthenticationFailed,
                _ => rejected(OP)(err),
            }
        })?;
        to_bytes(OP, value)
    }
}

/// A non-extractable RSASSA-PKCS1-v1_5 / SHA-256 signing key, i.e. RS256.
#[derive(Clone)]
pub struct RsaSigningKey {
    key: CryptoKey,
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaSigningKey(..)")
    }
}

impl RsaSigningKey {
    /// Imports PrivateKeyInfo DER, e.g. `ghplane_core::pem::RsaPrivateKey::pkcs8_der`.
    pub async fn import_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        const OP: &str = "importKey";
        let subtle = subtle()?;
        let algorithm = with_sha256("RSASSA-PKCS1-v1_5");
        let key_data = Uint8Array::from(der);
        let call = subtle.import_key_with_object(
            "pkcs8",
            &key_data,
            &algorithm,
            false,
            &usages(&["sign"]),
        );
        let value = settle(call).await.map_err(rejected(OP))?;
        Ok(Self {
            key: to_key(OP, value)?,
        })
    }

    /// The RS256 signature of `data` (deterministic for a given key and input).
    pub async fn sign(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        const OP: &str = "sign";
        let subtle = subtle()?;
        let call = subtle.sign_with_str_and_u8_array("RSASSA-PKCS1-v1_5", &self.key, data);
        let value = settle(call).await.map_err(rejected(OP))?;
        to_bytes(OP, value)
    }
}

/// A non-extractable RSASSA-PKCS1-v1_5 / SHA-256 public key, to verify RS256 signatures.
#[derive(Clone)]
pub struct RsaVerifyingKey {
    key: CryptoKey,
}

impl fmt::Debug for RsaVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaVerifyingKey(..)")
    }
}

impl RsaVerifyingKey {
    /// Imports a public JWK (`{"kty":"RSA","n","e",…}` as JSON text), e.g.
    /// `ghplane_core::mint::oidc::RsaJwk::to_jwk_json`.
    pub async fn import_jwk(jwk_json: &str) -> Result<Self, CryptoError> {
        const OP: &str = "importKey";
        let subtle = subtle()?;
        let jwk = js_sys::JSON::parse(jwk_json).map_err(|_| CryptoError::Rejected {
            operation: OP,
            reason: "the JWK is not JSON".to_string(),
        })?;
        if !jwk.is_object() {
            return Err(CryptoError::Rejected {
                operation: OP,
                reason: "the JWK is not an object".to_string(),
            });
        }
        let algorithm = with_sha256("RSASSA-PKCS1-v1_5");
        let call = subtle.import_key_with_object(
            "jwk",
            jwk.unchecked_ref(),
            &algorithm,
            false,
            &usages(&["verify"]),
        );
        let value = settle(call).await.map_err(rejected(OP))?;
        Ok(Self {
            key: to_key(OP, value)?,
        })
    }

    /// Whether `signature` is this key's RS256 signature of `data`. A signature of the
    /// wrong length is `Ok(false)`, not an error.
    pub async fn verify(&self, signature: &[u8], data: &[u8]) -> Result<bool, CryptoError> {
        const OP: &str = "verify";
        let subtle = subtle()?;
        let call = subtle.verify_with_str_and_u8_array_and_u8_array(
            "RSASSA-PKCS1-v1_5",
            &self.key,
            signature,
            data,
        );
        let value = settle(call).await.map_err(rejected(OP))?;
        Ok(value.as_bool() == Some(true))
    }
}
