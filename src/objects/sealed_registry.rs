//! The registry of objects that hold sealed secrets: one object of the `AppDirectory` class,
//! named `sealed-holders`, with one key per holder (`holder:<kind>:<name>`). Written when a
//! route stores a sealed secret in an object (apps, tenant configs, signed-in users, deploy
//! hook secrets), read page by page by `POST /api/admin/reseal`, which also enrolls what the
//! older indexes already list (the app directory, the project index).
//!
//! An enrollment is idempotent and holds no secret, only the kind and the object's id.

use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::{Env, Method};

use crate::objects::internal;
use crate::settings;

pub const OBJECT_NAME: &str = "sealed-holders";
pub const PREFIX: &str = "holder:";

/// The kinds of holders, as written in keys.
pub const KINDS: &[&str] = &["app", "installation", "user", "deploy"];

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub kind: String,
    pub id: String,
}

impl Holder {
    pub fn key(&self) -> String {
        format!("{PREFIX}{}:{}", self.kind, self.id)
    }

    pub fn from_key(key: &str) -> Option<Holder> {
        let (kind, id) = key.strip_prefix(PREFIX)?.split_once(':')?;
        KINDS.contains(&kind).then(|| Holder {
            kind: kind.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// A page of holders after `after` (a key), at most `limit`.
#[derive(Serialize, Deserialize)]
pub struct Page {
    pub holders: Vec<Holder>,
    pub last: Option<String>,
    pub done: bool,
}

fn stub(env: &Env) -> Result<internal::ObjectStub, ApiError> {
    internal::stub(env, settings::APP_DIRECTORY, OBJECT_NAME)
}

/// Records that the object `kind`/`id` holds sealed secrets.
pub async fn enroll(env: &Env, kind: &str, id: &str) -> Result<(), ApiError> {
    let holder = Holder {
        kind: kind.to_owned(),
        id: id.to_owned(),
    };
    let resp = internal::call(
        &stub(env)?,
        Method::Put,
        "https://directory/holders",
        Some(&holder),
        &[],
    )
    .await?;
    internal::expect_success(resp).await
}

/// Holders after the key `after`, in key order.
pub async fn page(env: &Env, after: Option<&str>, limit: u32) -> Result<Page, ApiError> {
    let mut url = format!("https://directory/holders?limit={limit}");
    if let Some(a) = after {
        url.push_str("&after=");
        url.push_str(&ghplane_core::admin_access::oauth::pct_encode(a));
    }
    let resp = internal::call::<()>(&stub(env)?, Method::Get, &url, None, &[]).await?;
    internal::json(resp).await
}

/// The storage key an object keeps once it has enrolled itself.
const ENROLLED_KEY: &str = "sealed-registry-enrolled";

/// Called by an object that holds sealed secrets (a tenant config, a signed-in user's link)
/// when it wakes: enrolls it once, and remembers that in its own storage.
///
/// Routes enroll what they write, but objects written by a version older than the registry
/// are in no index the reseal can walk. Each enrolls itself the first time it serves any
/// request after the upgrade (a delivery, a mint, an admin read, a sign-in), so the reseal
/// finds every tenant and user that was active since; `docs/runbook-key-rotation.md` says
/// how to reach the others before dropping the previous key. Failures are logged and retried
/// on the next wake: they never fail the request.
pub async fn enroll_self(state: &worker::State, env: &Env, kind: &str, id: &str, holds: bool) {
    if !holds {
        return;
    }
    let storage = state.storage();
    if let Ok(Some(true)) = storage.get::<bool>(ENROLLED_KEY).await {
        return;
    }
    let outcome = match enroll(env, kind, id).await {
        Ok(()) => storage.put(ENROLLED_KEY, true).await.map_err(|e| fail!(e)),
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        crate::log::event(
            "warn",
            "sealed holder self-enrolment failed",
            serde_json::json!({"kind": kind, "id": id, "errorCode": e.code()}),
        );
    }
}
