//! The handle on the registry of objects that hold sealed secrets: the `AppDirectory`
//! class's object `sealed-holders`, one key per holder (`holder:<kind>:<name>`, see
//! `ghplane_core::tenancy::directory`). Written when a
//! route stores a sealed secret in an object (apps, tenant configs, signed-in users, deploy
//! hook secrets), read page by page by `POST /api/admin/reseal`, which also enrolls what the
//! older indexes already list (the app directory, the project index).
//!
//! An enrollment is idempotent and holds no secret, only the kind and the object's id.

use ghplane_core::tenancy::directory::{DirectoryCommand, Holder, HolderPage};
use ghplane_core::ApiError;
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

pub const OBJECT_NAME: &str = "sealed-holders";

fn registry(env: &Env) -> Result<Object, ApiError> {
    Object::new(env, settings::APP_DIRECTORY, OBJECT_NAME)
}

/// Records that the object `kind`/`id` holds sealed secrets.
pub async fn enroll(env: &Env, kind: &str, id: &str) -> Result<(), ApiError> {
    let holder = Holder {
        kind: kind.to_owned(),
        id: id.to_owned(),
    };
    registry(env)?
        .call(&DirectoryCommand::Enroll { holder })
        .await
}

/// At most `limit` holders after the key `after`, in key order.
pub async fn page(env: &Env, after: Option<&str>, limit: u32) -> Result<HolderPage, ApiError> {
    let command = DirectoryCommand::Holders {
        after: after.map(str::to_owned),
        limit,
    };
    registry(env)?.call(&command).await
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
