//! `POST /api/admin/reseal`: brings every stored secret under the current `ENCRYPTION_KEY`,
//! so `ENCRYPTION_KEY_PREVIOUS` can be removed afterwards (docs/runbook-key-rotation.md).
//!
//! Idempotent and bounded: each call handles at most `limit` objects from the registry of
//! objects holding sealed secrets (`objects/sealed_registry.rs`) after `cursor`, and answers
//! what it did (`resealed`, `alreadyCurrent`, `couldNotOpen`, which object and slot could
//! not be opened, never a value) with the `nextCursor` to call with until `done`. The first
//! call (no cursor) also enrolls what the older indexes list: every app of the app
//! directory, every project of the project index and the org's installation. Tenant
//! configs and signed-in users enroll themselves when they are written or first used
//! (`enrolledOnUse` in every answer).

use ghplane_core::ids::{AppId, GithubUserId, InstallationId};
use ghplane_core::projects::ProjectSlug;
use ghplane_core::routes::Matched;
use ghplane_core::tenancy::directory::Holder;
use ghplane_core::ApiError;
use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::http::{json_response, read_optional_json, MAX_ADMIN_BODY};
use crate::objects::app_directory::client::DirectoryClient;
use crate::objects::app_store::client::AppClient;
use crate::objects::github_user_store::client::GithubUserClient;
use crate::objects::installation::InstallationClient;
use crate::objects::project_deploy::client::ProjectDeployClient;
use crate::objects::project_index::client::IndexClient;
use crate::objects::sealed_registry;
use crate::secrets::{Keyring, ResealReport};

const DEFAULT_LIMIT: u32 = 25;
const MAX_LIMIT: u32 = 100;

fn input(bytes: &[u8]) -> Result<(Option<String>, u32), ApiError> {
    if bytes.is_empty() {
        return Ok((None, DEFAULT_LIMIT));
    }
    let map = ghplane_core::input::parse_object(bytes)?;
    let bad = |m: &str| ApiError::Validation(m.to_owned());
    if let Some(k) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "cursor" | "limit"))
    {
        return Err(bad(&format!(
            "unknown field {}",
            ghplane_core::ids::truncate(k, 40)
        )));
    }
    let cursor = match map.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if Holder::from_key(c).is_some() => Some(c.clone()),
        Some(_) => return Err(bad("cursor: the nextCursor of the previous answer")),
    };
    let limit = match map.get("limit") {
        None | Some(Value::Null) => DEFAULT_LIMIT,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=u64::from(MAX_LIMIT)).contains(n))
            .ok_or_else(|| bad("limit: must be 1 to 100"))? as u32,
    };
    Ok((cursor, limit))
}

/// Kinds whose objects written before the registry are in no index: each enrolls itself
/// on its first request after the upgrade (`sealed_registry::enroll_self`), so one never
/// used since is not found. Every answer names them (docs/runbook-key-rotation.md).
const ENROLLED_ON_USE: &[&str] = &["installation", "user"];

/// Enrolls the apps of the directory, the projects of the index and the org's own
/// installation (objects written before the registry existed).
async fn enroll_known(env: &Env) -> Result<(), ApiError> {
    for app in DirectoryClient::new(env)?.list().await? {
        sealed_registry::enroll(env, "app", &app.to_string()).await?;
    }
    if let Some(id) = crate::settings::get(env, crate::settings::GITHUB_ORG_INSTALLATION_ID)
        .and_then(|v| InstallationId::parse(&v).ok())
    {
        sealed_registry::enroll(env, "installation", &id.to_string()).await?;
    }
    for row in IndexClient::new(env)?.list().await? {
        if let Some(slug) = row.get("slug").and_then(Value::as_str) {
            sealed_registry::enroll(env, "deploy", slug).await?;
        }
    }
    Ok(())
}

async fn reseal_one(env: &Env, h: &Holder) -> Result<ResealReport, ApiError> {
    let bad = |_| fail!();
    match h.kind.as_str() {
        "app" => {
            AppClient::new(env, AppId::parse(&h.id).map_err(bad)?)?
                .reseal()
                .await
        }
        "installation" => {
            InstallationClient::new(env, InstallationId::parse(&h.id).map_err(bad)?)?
                .reseal()
                .await
        }
        "user" => {
            GithubUserClient::new(env, GithubUserId::parse(&h.id).map_err(bad)?)?
                .reseal()
                .await
        }
        "deploy" => {
            ProjectDeployClient::new(env, &ProjectSlug::parse(&h.id).map_err(bad)?)?
                .reseal()
                .await
        }
        _ => Ok(ResealReport::default()),
    }
}

pub async fn reseal(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let (cursor, limit) = input(&read_optional_json(&mut req, MAX_ADMIN_BODY).await?)?;
    let ring = Keyring::from_env(env).await?;
    if cursor.is_none() {
        enroll_known(env).await?;
    }
    let page = sealed_registry::page(env, cursor.as_deref(), limit).await?;
    let mut report = ResealReport::default();
    let mut failed_objects = Vec::new();
    for h in &page.holders {
        match reseal_one(env, h).await {
            Ok(r) => report.add(r),
            Err(e) => failed_objects.push(json!({"object": h.key(), "errorCode": e.code()})),
        }
    }
    crate::log::event(
        if report.could_not_open > 0 || !failed_objects.is_empty() {
            "warn"
        } else {
            "info"
        },
        "reseal batch",
        json!({"objects": page.holders.len(), "resealed": report.resealed,
            "alreadyCurrent": report.already_current, "couldNotOpen": report.could_not_open,
            "failedObjects": failed_objects.len(), "done": page.done}),
    );
    Ok(json_response(
        200,
        &json!({
            "keyId": ring.current_kid(),
            "objects": page.holders.len(),
            "resealed": report.resealed,
            "alreadyCurrent": report.already_current,
            "couldNotOpen": report.could_not_open,
            "unopenable": report.unopenable,
            "failedObjects": failed_objects,
            "enrolledOnUse": ENROLLED_ON_USE,
            "nextCursor": if page.done { None } else { page.last.clone() },
            "done": page.done,
        }),
    ))
}
