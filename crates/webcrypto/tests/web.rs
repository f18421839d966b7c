//! Runs in Node under wasm-bindgen-test-runner; both Node and workerd expose
//! `globalThis.crypto.subtle`, so passing here is evidence for the worker.
#![cfg(target_arch = "wasm32")]

use ghplane_core::jwt;
use ghplane_core::pem::RsaPrivateKey;
use ghplane_webcrypto::{
    hmac_sha256, random_bytes, sha256, AesGcmKey, CryptoError, RsaSigningKey, RsaVerifyingKey,
};
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{CryptoKey, SubtleCrypto};

const PKCS1_2048: &str = include_str!("../../core/tests/fixtures/test-rsa-2048-pkcs1.pem");
const PKCS8_2048: &str = include_str!("../../core/tests/fixtures/test-rsa-2048-pkcs8.pem");
const SPKI_2048: &[u8] = include_bytes!("../../core/tests/fixtures/test-rsa-2048-spki.der");
/// `openssl dgst -sha256 -sign test-rsa-2048-pkcs1.pem -out test-rs256-message.sig test-rs256-message.txt`
const OPENSSL_SIG: &[u8] = include_bytes!("../../core/tests/fixtures/test-rs256-message.sig");
const MESSAGE: &[u8] = include_bytes!("../../core/tests/fixtures/test-rs256-message.txt");

const KEY: [u8; 32] = [7; 32];
const IV: [u8; 12] = [9; 12];

fn subtle() -> SubtleCrypto {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).unwrap();
    Reflect::get(&crypto, &"subtle".into())
        .unwrap()
        .unchecked_into()
}

async fn import_spki(der: &[u8]) -> CryptoKey {
    let alg = Object::new();
    Reflect::set(&alg, &"name".into(), &"RSASSA-PKCS1-v1_5".into()).unwrap();
    Reflect::set(&alg, &"hash".into(), &"SHA-256".into()).unwrap();
    let usages = js_sys::Array::of1(&"verify".into());
    let promise = subtle()
        .import_key_with_object("spki", &Uint8Array::from(der), &alg, false, &usages)
        .unwrap();
    JsFuture::from(promise).await.unwrap().unchecked_into()
}

async fn verify(public: &CryptoKey, signature: &[u8], data: &[u8]) -> bool {
    let promise = subtle()
        .verify_with_str_and_u8_array_and_u8_array("RSASSA-PKCS1-v1_5", public, signature, data)
        .unwrap();
    JsFuture::from(promise).await.unwrap() == JsValue::TRUE
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

async fn aes_key() -> AesGcmKey {
    AesGcmKey::import(&KEY).await.unwrap()
}

#[wasm_bindgen_test]
async fn aes_round_trip() {
    let key = aes_key().await;
    for plaintext in [&b""[..], b"x", &[0xab; 1000]] {
        let ct = key.encrypt(&IV, plaintext, b"aad").await.unwrap();
        assert_eq!(ct.len(), plaintext.len() + 16);
        if !plaintext.is_empty() {
            assert_ne!(&ct[..plaintext.len()], plaintext);
        }
        let pt = key.decrypt(&IV, &ct, b"aad").await.unwrap();
        assert_eq!(pt, plaintext);
    }
    let ct = key.encrypt(&IV, b"no aad", b"").await.unwrap();
    assert_eq!(key.decrypt(&IV, &ct, b"").await.unwrap(), b"no aad");
}

/// Known answer computed with Python `cryptography`'s AESGCM (key = 00..1f,
/// iv = a0..ab), so our bytes interoperate with other implementations.
#[wasm_bindgen_test]
async fn aes_known_answer() {
    let key: Vec<u8> = (0u8..32).collect();
    let iv: [u8; 12] = core::array::from_fn(|i| 0xa0 + i as u8);
    let key = AesGcmKey::import(&key).await.unwrap();
    let expected = hex(
        "81700c4124a5679f1500e5b07503b0aa1f8c327efdc02c4cfd6055f11ad9\
         025344eab572885383e54bac62466914",
    );
    let ct = key
        .encrypt(&iv, b"ghplane webcrypto known answer", b"ghplane aad")
        .await
        .unwrap();
    assert_eq!(ct, expected);
    assert_eq!(
        key.decrypt(&iv, &expected, b"ghplane aad").await.unwrap(),
        b"ghplane webcrypto known answer"
    );
}

#[wasm_bindgen_test]
async fn aes_rejects_anything_unauthentic() {
    let key = aes_key().await;
    let ct = key.encrypt(&IV, b"secret", b"aad").await.unwrap();

    let other = AesGcmKey::import(&[8; 32]).await.unwrap();
    assert_eq!(
        other.decrypt(&IV, &ct, b"aad").await,
        Err(CryptoError::AuthenticationFailed)
    );
    assert_eq!(
        key.decrypt(&IV, &ct, b"AAD").await,
        Err(CryptoError::AuthenticationFailed)
    );
    assert_eq!(
        key.decrypt(&[0; 12], &ct, b"aad").await,
        Err(CryptoError::AuthenticationFailed)
    );
    for i in [0, ct.len() - 1] {
        let mut tampered = ct.clone();
        tampered[i] ^= 1;
        assert_eq!(
            key.decrypt(&IV, &tampered, b"aad").await,
            Err(CryptoError::AuthenticationFailed),
            "byte {i}"
        );
    }
    for len in [0, 15, 16, ct.len() - 1] {
        assert_eq!(
            key.decrypt(&IV, &ct[..len], b"aad").await,
            Err(CryptoError::AuthenticationFailed),
            "truncated to {len}"
        );
    }
}

#[wasm_bindgen_test]
async fn aes_key_must_be_32_bytes() {
    for len in [0, 16, 31, 33] {
        let err = AesGcmKey::import(&vec![1; len]).await.unwrap_err();
        assert_eq!(
            err,
            CryptoError::InvalidKeyLength {
                expected: 32,
                actual: len
            }
        );
    }
    assert_eq!(format!("{:?}", aes_key().await), "AesGcmKey(..)");
}

#[wasm_bindgen_test]
fn random_bytes_differ() {
    let a: [u8; 32] = random_bytes();
    let b: [u8; 32] = random_bytes();
    assert_ne!(a, b);
    assert_ne!(a, [0; 32]);
    let iv: [u8; 12] = random_bytes();
    assert_ne!(iv, [0; 12]);
    let empty: [u8; 0] = random_bytes();
    assert_eq!(empty, [0u8; 0]);
}

#[wasm_bindgen_test]
fn random_bytes_beyond_the_per_call_quota() {
    // getRandomValues refuses more than 65536 bytes per call; the tail must be filled too.
    let mut big = vec![0u8; 65_536 * 2 + 100];
    ghplane_webcrypto::fill_random(&mut big);
    for chunk in big.chunks(65_536) {
        assert!(chunk.iter().any(|&b| b != 0));
    }
    assert_ne!(&big[big.len() - 32..], &[0; 32]);
}

#[wasm_bindgen_test]
async fn sha256_known_answer() {
    assert_eq!(
        sha256(b"abc").await.unwrap().to_vec(),
        hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
}

#[wasm_bindgen_test]
async fn hmac_sha256_matches_rfc_4231_and_githubs_example() {
    // RFC 4231 test case 2.
    assert_eq!(
        hmac_sha256(b"Jefe", b"what do ya want for nothing?")
            .await
            .unwrap()
            .to_vec(),
        hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
    // GitHub's "Validating webhook deliveries" example, as the core signs it.
    let (secret, body) = (b"It's a Secret to Everybody", b"Hello, World!");
    let header = ghplane_core::webhook::sign(secret, body);
    let native = hmac_sha256(secret, body).await.unwrap();
    assert_eq!(header, format!("sha256={}", to_hex(&native)));
    // A megabyte, against the core's own HMAC.
    let big = vec![b'x'; 1 << 20];
    assert_eq!(
        ghplane_core::webhook::sign(secret, &big),
        format!(
            "sha256={}",
            to_hex(&hmac_sha256(secret, &big).await.unwrap())
        )
    );
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[wasm_bindgen_test]
async fn rs256_matches_openssl_byte_for_byte() {
    // RSASSA-PKCS1-v1_5 is deterministic, so equal bytes prove the same key and padding.
    for pem in [PKCS1_2048, PKCS8_2048] {
        let parsed = RsaPrivateKey::from_pem(pem).unwrap();
        let key = RsaSigningKey::import_pkcs8(parsed.pkcs8_der())
            .await
            .unwrap();
        let signature = key.sign(MESSAGE).await.unwrap();
        assert_eq!(signature.len(), 256);
        assert_eq!(signature, OPENSSL_SIG);
    }
}

#[wasm_bindgen_test]
async fn rs256_verifies_with_the_public_key() {
    let parsed = RsaPrivateKey::from_pem(PKCS1_2048).unwrap();
    assert_eq!(parsed.public_key_spki_der(), SPKI_2048);
    let key = RsaSigningKey::import_pkcs8(parsed.pkcs8_der())
        .await
        .unwrap();
    let public = import_spki(SPKI_2048).await;

    let signature = key.sign(b"hello").await.unwrap();
    assert!(verify(&public, &signature, b"hello").await);
    assert!(!verify(&public, &signature, b"hellO").await);

    // The full App JWT path, as the worker will run it.
    let input = jwt::signing_input(&jwt::app_jwt_claims(1_700_000_000, "12345"));
    let signature = key.sign(input.as_bytes()).await.unwrap();
    let token = jwt::assemble(&input, &signature);
    let (signed, _) = token.rsplit_once('.').unwrap();
    assert_eq!(signed, input);
    assert!(verify(&public, &signature, input.as_bytes()).await);
    assert_eq!(format!("{key:?}"), "RsaSigningKey(..)");
}

#[wasm_bindgen_test]
async fn rs256_import_rejects_garbage() {
    for der in [&b""[..], b"\x30\x00", SPKI_2048] {
        match RsaSigningKey::import_pkcs8(der).await {
            Err(CryptoError::Rejected { operation, reason }) => {
                assert_eq!(operation, "importKey");
                assert!(!reason.is_empty());
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
    }
}

/// The fixture's public key as a JWK, exported by Web Crypto itself.
async fn fixture_jwk() -> String {
    let alg = Object::new();
    Reflect::set(&alg, &"name".into(), &"RSASSA-PKCS1-v1_5".into()).unwrap();
    Reflect::set(&alg, &"hash".into(), &"SHA-256".into()).unwrap();
    let usages = js_sys::Array::of1(&"verify".into());
    let promise = subtle()
        .import_key_with_object("spki", &Uint8Array::from(SPKI_2048), &alg, true, &usages)
        .unwrap();
    let key: CryptoKey = JsFuture::from(promise).await.unwrap().unchecked_into();
    let jwk = JsFuture::from(subtle().export_key("jwk", &key).unwrap())
        .await
        .unwrap();
    js_sys::JSON::stringify(&jwk).unwrap().as_string().unwrap()
}

#[wasm_bindgen_test]
async fn rs256_verify_accepts_openssl_and_refuses_tampering() {
    let key = RsaVerifyingKey::import_jwk(&fixture_jwk().await)
        .await
        .unwrap();
    assert!(key.verify(OPENSSL_SIG, MESSAGE).await.unwrap());
    let mut tampered = MESSAGE.to_vec();
    tampered[0] ^= 1;
    assert!(!key.verify(OPENSSL_SIG, &tampered).await.unwrap());
    let mut sig = OPENSSL_SIG.to_vec();
    sig[10] ^= 1;
    assert!(!key.verify(&sig, MESSAGE).await.unwrap());
    assert!(!key.verify(&sig[..100], MESSAGE).await.unwrap_or(false));
}

/// The path the mint takes: a key set parsed by the core, its JWK imported, a JWT checked.
#[wasm_bindgen_test]
async fn rs256_verify_through_the_cores_jwks() {
    let exported: serde_json::Value = serde_json::from_str(&fixture_jwk().await).unwrap();
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": exported["n"], "e": exported["e"]}]});
    let set = ghplane_core::mint::oidc::parse_jwks(jwks.to_string().as_bytes()).unwrap();
    let jwk = set.get("k1").unwrap().to_jwk_json().to_string();
    let key = RsaVerifyingKey::import_jwk(&jwk).await.unwrap();
    let signer =
        RsaSigningKey::import_pkcs8(RsaPrivateKey::from_pem(PKCS8_2048).unwrap().pkcs8_der())
            .await
            .unwrap();
    let input = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
    let sig = signer.sign(input.as_bytes()).await.unwrap();
    assert!(key.verify(&sig, input.as_bytes()).await.unwrap());
    assert!(!key.verify(&sig, b"other").await.unwrap());
}

#[wasm_bindgen_test]
async fn rs256_verify_import_rejects_garbage() {
    for bad in [
        "not json",
        "[]",
        r#"{"kty":"RSA"}"#,
        r#"{"kty":"EC","crv":"P-256"}"#,
    ] {
        assert!(
            matches!(
                RsaVerifyingKey::import_jwk(bad).await,
                Err(CryptoError::Rejected { .. })
            ),
            "{bad}"
        );
    }
}
