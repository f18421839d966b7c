//! Sealing secrets at rest with AES-256-GCM (the runtime's Web Crypto) under
//! `ENCRYPTION_KEY`. `ENCRYPTION_KEY_PREVIOUS` keeps older ciphertexts readable while keys
//! rotate: values sealed under it are opened, and resealed under the current key on write.

use std::cell::RefCell;
use std::rc::Rc;

use ghplane_core::sealed::{aad, key_id, parse_key, Sealed, Secret};
use ghplane_core::ApiError;
use ghplane_webcrypto::{random_bytes, AesGcmKey};
use worker::Env;

use crate::settings;

pub struct Keyring {
    current: (String, AesGcmKey),
    previous: Option<(String, AesGcmKey)>,
}

thread_local! {
    /// Imported keys live as long as the isolate; the raw values are the cache key so a
    /// changed secret is picked up without a restart.
    static CACHE: RefCell<Option<(String, Rc<Keyring>)>> = const { RefCell::new(None) };
}

async fn import(b64: &str, name: &'static str) -> Result<(String, AesGcmKey), ApiError> {
    let raw = parse_key(b64).map_err(|_| ApiError::Misconfigured(name))?;
    let key = AesGcmKey::import(&raw)
        .await
        .map_err(|_| ApiError::Misconfigured(name))?;
    Ok((key_id(&raw), key))
}

impl Keyring {
    pub async fn from_env(env: &Env) -> Result<Rc<Keyring>, ApiError> {
        let current = settings::require(env, settings::ENCRYPTION_KEY)?;
        let previous = settings::get(env, settings::ENCRYPTION_KEY_PREVIOUS);
        let cache_key = format!("{current}|{}", previous.as_deref().unwrap_or(""));
        if let Some(ring) = CACHE.with(|c| {
            c.borrow()
                .as_ref()
                .filter(|(k, _)| *k == cache_key)
                .map(|(_, r)| r.clone())
        }) {
            return Ok(ring);
        }
        let ring = Rc::new(Keyring {
            current: import(&current, settings::ENCRYPTION_KEY).await?,
            previous: match previous {
                Some(p) => Some(import(&p, settings::ENCRYPTION_KEY_PREVIOUS).await?),
                None => None,
            },
        });
        CACHE.with(|c| *c.borrow_mut() = Some((cache_key, ring.clone())));
        Ok(ring)
    }

    /// Seals `plaintext` for `slot` of `object` (both bound in as associated data).
    pub async fn seal(
        &self,
        object: &str,
        slot: &str,
        plaintext: &str,
    ) -> Result<Sealed, ApiError> {
        let iv: [u8; 12] = random_bytes();
        let (kid, key) = &self.current;
        let ct = key
            .encrypt(&iv, plaintext.as_bytes(), &aad(object, slot))
            .await
            .map_err(|_| ApiError::Internal)?;
        Ok(Sealed::new(kid.clone(), &iv, &ct))
    }

    /// Opens a sealed value; fails (as an internal error, logged by the caller) when the key
    /// that sealed it is gone or the value was moved to another slot.
    pub async fn open(
        &self,
        object: &str,
        slot: &str,
        sealed: &Sealed,
    ) -> Result<Secret, ApiError> {
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|(kid, _)| *kid == sealed.kid)
            .map(|(_, k)| k)
            .ok_or(ApiError::Internal)?;
        let iv = sealed.iv_bytes().ok_or(ApiError::Internal)?;
        let ct = sealed.ct_bytes().ok_or(ApiError::Internal)?;
        let pt = key
            .decrypt(&iv, &ct, &aad(object, slot))
            .await
            .map_err(|_| ApiError::Internal)?;
        String::from_utf8(pt)
            .map(Secret::new)
            .map_err(|_| ApiError::Internal)
    }
}
