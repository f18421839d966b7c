//! Sealing secrets at rest with AES-256-GCM (the runtime's Web Crypto) under
//! `ENCRYPTION_KEY`. `ENCRYPTION_KEY_PREVIOUS` keeps older ciphertexts readable while keys
//! rotate: values sealed under it are still opened. Nothing is resealed on read; a value
//! is sealed under the current key only when it is written afresh or when the admin runs
//! `POST /api/admin/reseal` (see `routes/reseal.rs` and docs/runbook-key-rotation.md),
//! after which `ENCRYPTION_KEY_PREVIOUS` can be removed.

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
    let raw = parse_key(b64).map_err(|_| ApiError::Misconfigured(name.into()))?;
    let key = AesGcmKey::import(&raw)
        .await
        .map_err(|_| ApiError::Misconfigured(name.into()))?;
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
            .map_err(|e| fail!(e))?;
        Ok(Sealed::new(kid.clone(), &iv, &ct))
    }

    /// The id of the key new values are sealed under.
    pub fn current_kid(&self) -> &str {
        &self.current.0
    }

    /// One stored value brought under the current key: left alone when it already is,
    /// opened (with whichever key sealed it) and sealed again when it is not.
    /// Reseals each of an object's `slots` in place, counting in `report`; whether any value
    /// changed (so the caller stores its record once).
    pub async fn reseal_all(
        &self,
        object: &str,
        slots: Vec<(&str, &mut Sealed)>,
        report: &mut ResealReport,
    ) -> bool {
        let mut changed = false;
        for (slot, value) in slots {
            let outcome = self.reseal(object, slot, value).await;
            changed |= report.apply(object, slot, outcome, value);
        }
        changed
    }

    pub async fn reseal(&self, object: &str, slot: &str, sealed: &Sealed) -> Resealed {
        if sealed.kid == self.current.0 {
            return Resealed::Current;
        }
        match self.open(object, slot, sealed).await {
            Ok(plain) => match self.seal(object, slot, plain.expose()).await {
                Ok(fresh) => Resealed::Sealed(fresh),
                Err(_) => Resealed::Unopenable,
            },
            Err(_) => Resealed::Unopenable,
        }
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
            .ok_or_else(|| fail!())?;
        let iv = sealed.iv_bytes().ok_or_else(|| fail!())?;
        let ct = sealed.ct_bytes().ok_or_else(|| fail!())?;
        let pt = key
            .decrypt(&iv, &ct, &aad(object, slot))
            .await
            .map_err(|e| fail!(e))?;
        String::from_utf8(pt).map(Secret::new).map_err(|e| fail!(e))
    }
}

/// What [`Keyring::reseal`] did with one value.
pub enum Resealed {
    /// Already sealed under the current key.
    Current,
    /// Sealed again under the current key: store this instead.
    Sealed(Sealed),
    /// Neither key opens it (sealed under a key that is gone, or damaged).
    Unopenable,
}

/// What a reseal did in one object, added up over objects by the route.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResealReport {
    pub resealed: u64,
    pub already_current: u64,
    pub could_not_open: u64,
    /// `object/slot` of each value that could not be opened (never the value).
    #[serde(default)]
    pub unopenable: Vec<String>,
}

impl ResealReport {
    /// Applies [`Keyring::reseal`]'s answer for `slot` to `value`, counting it.
    pub fn apply(
        &mut self,
        object: &str,
        slot: &str,
        outcome: Resealed,
        value: &mut Sealed,
    ) -> bool {
        match outcome {
            Resealed::Current => {
                self.already_current += 1;
                false
            }
            Resealed::Sealed(fresh) => {
                *value = fresh;
                self.resealed += 1;
                true
            }
            Resealed::Unopenable => {
                self.could_not_open += 1;
                self.unopenable.push(format!("{object}/{slot}"));
                false
            }
        }
    }

    pub fn add(&mut self, other: ResealReport) {
        self.resealed += other.resealed;
        self.already_current += other.already_current;
        self.could_not_open += other.could_not_open;
        self.unopenable.extend(other.unopenable);
    }
}
