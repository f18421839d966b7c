//! Per-operation cost of the crypto the worker does on its hot paths, on the runtime's Web
//! Crypto: RS256 App JWT signing and AES-256-GCM opening of a sealed secret. Prints numbers
//! for `make bench`; asserts nothing about time.
#![cfg(all(target_arch = "wasm32", feature = "bench"))]

use ghplane_core::jwt::{app_jwt_claims, assemble, signing_input};
use ghplane_core::pem::RsaPrivateKey;
use ghplane_webcrypto::{AesGcmKey, RsaSigningKey};
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

const PKCS1_2048: &str = include_str!("../../core/tests/fixtures/test-rsa-2048-pkcs1.pem");

fn now_ms() -> f64 {
    js_sys::Date::now()
}

#[wasm_bindgen_test]
async fn bench_crypto() {
    let key = RsaSigningKey::import_pkcs8(RsaPrivateKey::from_pem(PKCS1_2048).unwrap().pkcs8_der())
        .await
        .unwrap();
    let rounds = 300;
    let started = now_ms();
    for i in 0..rounds {
        let input = signing_input(&app_jwt_claims(1_700_000_000 + i, "Iv1.bench"));
        let sig = key.sign(input.as_bytes()).await.unwrap();
        assert!(!assemble(&input, &sig).is_empty());
    }
    let rs256 = (now_ms() - started) / rounds as f64;

    let aes = AesGcmKey::import(&[7u8; 32]).await.unwrap();
    let secret = vec![b'k'; 1700]; // about the size of a sealed PEM
    let ct = aes
        .encrypt(&[1; 12], &secret, b"ghplane:v1:app-1:privateKey")
        .await
        .unwrap();
    let rounds = 3000;
    let started = now_ms();
    for _ in 0..rounds {
        aes.decrypt(&[1; 12], &ct, b"ghplane:v1:app-1:privateKey")
            .await
            .unwrap();
    }
    let open = (now_ms() - started) / rounds as f64;
    console_log!("BENCH rs256_sign_ms={rs256:.4} aes_gcm_open_ms={open:.4}");
}
