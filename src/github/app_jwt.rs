//! App JWTs (RS256 on the runtime's Web Crypto). Imported signing keys stay imported for the
//! life of the isolate, keyed by the key's public fingerprint, so a warm isolate never
//! re-parses or re-imports a PEM.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ghplane_core::jwt::{app_jwt_claims, assemble, signing_input};
use ghplane_core::pem::RsaPrivateKey;
use ghplane_core::sealed::Secret;
use ghplane_core::ApiError;
use ghplane_webcrypto::RsaSigningKey;

thread_local! {
    static KEYS: RefCell<HashMap<String, Rc<RsaSigningKey>>> = RefCell::new(HashMap::new());
}

/// The imported key for `pem`; `fingerprint` (public) names it in the cache.
pub async fn signing_key(fingerprint: &str, pem: &Secret) -> Result<Rc<RsaSigningKey>, ApiError> {
    if let Some(key) = KEYS.with(|k| k.borrow().get(fingerprint).cloned()) {
        return Ok(key);
    }
    // Keys are validated when stored, so a failure here means storage or the runtime broke.
    let parsed = RsaPrivateKey::from_pem(pem.expose()).map_err(|e| fail!(e))?;
    let key = Rc::new(
        RsaSigningKey::import_pkcs8(parsed.pkcs8_der())
            .await
            .map_err(|e| fail!(e))?,
    );
    KEYS.with(|k| k.borrow_mut().insert(fingerprint.to_owned(), key.clone()));
    Ok(key)
}

/// Signs an App JWT valid from `now − 60 s` to `now + 9 min`; returns it with its `exp`.
pub async fn sign(
    key: &RsaSigningKey,
    issuer: &str,
    now_unix: i64,
) -> Result<(String, i64), ApiError> {
    let claims = app_jwt_claims(now_unix, issuer);
    let input = signing_input(&claims);
    let signature = key.sign(input.as_bytes()).await.map_err(|e| fail!(e))?;
    Ok((assemble(&input, &signature), claims.exp))
}
