//! `/api/apps/{app_id}`: the app registry, and webhook secret rotation.

use ghplane_core::ids::AppId;
use ghplane_core::routes::Matched;
use ghplane_core::sealed::Secret;
use ghplane_core::tenancy::app::{PlainAppInput, RotateInput, DEFAULT_WEBHOOK_SECRET_GRACE_SECS};
use ghplane_core::tenancy::config::SealedSecret;
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde_json::json;
use worker::{Env, Method, Request, Response};

use crate::github::client::{GithubClient, Idempotent};
use crate::http::{
    json_response, no_content, query, read_json_body, read_optional_json, MAX_ADMIN_BODY,
};
use crate::objects::app_directory::client::DirectoryClient;
use crate::objects::app_store::client::{
    object_name, AppClient, CLIENT_SECRET_SLOT, PRIVATE_KEY_SLOT, WEBHOOK_SECRET_SLOT,
};
use crate::objects::sealed_registry;
use crate::secrets::Keyring;
use crate::settings;

fn app_id(m: &Matched) -> Result<AppId, ApiError> {
    AppId::parse(m.param("app_id")).map_err(ApiError::InvalidId)
}

async fn seal(
    ring: &Keyring,
    id: AppId,
    slot: &str,
    secret: &Secret,
) -> Result<SealedSecret, ApiError> {
    Ok(SealedSecret {
        sealed: ring.seal(&object_name(id), slot, secret.expose()).await?,
        fingerprint: None,
    })
}

pub async fn put_app(mut req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = app_id(m)?;
    let input = PlainAppInput::parse(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    let ring = Keyring::from_env(env).await?;
    let key = SealedSecret {
        sealed: ring
            .seal(
                &object_name(id),
                PRIVATE_KEY_SLOT,
                input.private_key.pem.expose(),
            )
            .await?,
        fingerprint: Some(input.private_key.fingerprint.clone()),
    };
    let webhook = match &input.webhook_secret {
        Some(s) => Some(seal(&ring, id, WEBHOOK_SECRET_SLOT, s).await?),
        None => None,
    };
    let client = match &input.client_secret {
        Some(s) => Some(seal(&ring, id, CLIENT_SECRET_SLOT, s).await?),
        None => None,
    };
    sealed_registry::enroll(env, "app", &id.to_string()).await?;
    let stored = AppClient::new(env, id)?
        .put(input.with_secrets(key, webhook, client))
        .await?;
    Ok(json_response(
        if stored.created { 201 } else { 200 },
        &stored.app,
    ))
}

pub async fn get_app(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let view = AppClient::new(env, app_id(m)?)?.get().await?;
    Ok(json_response(200, &view))
}

/// `GET /api/apps`: every registered app in app-id order, a page at a time, each as
/// `GET /api/apps/{app_id}` shows it (whether each secret is set, never a secret).
pub async fn list(req: Request, env: &Env) -> Result<Response, ApiError> {
    use ghplane_core::lists::apps;
    let pairs = query(&req)?;
    let q = apps::parse_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let (ids, next) = apps::page(DirectoryClient::new(env)?.list().await?, &q);
    let views = futures_util::future::try_join_all(ids.into_iter().map(|id| async move {
        match AppClient::new(env, id)?.get().await {
            Ok(view) => Ok(Some(view)),
            // Deleted since the directory answered.
            Err(ApiError::AppNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }))
    .await?;
    let apps: Vec<_> = views.into_iter().flatten().collect();
    Ok(json_response(
        200,
        &json!({"apps": apps, "nextCursor": next}),
    ))
}

pub async fn delete_app(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    AppClient::new(env, app_id(m)?)?.delete().await?;
    Ok(no_content())
}

/// Rotates the webhook secret: GitHub learns the new one first (`PATCH /app/hook/config`), so
/// a failure there changes nothing here; then the new secret becomes current and the old one
/// stays valid for `WEBHOOK_SECRET_GRACE_SECONDS`. A generated secret is never shown to anyone.
pub async fn rotate_webhook_secret(
    mut req: Request,
    env: &Env,
    m: &Matched,
) -> Result<Response, ApiError> {
    let id = app_id(m)?;
    let body = read_optional_json(&mut req, MAX_ADMIN_BODY).await?;
    let input = RotateInput::parse(&body)?;
    let grace = settings::seconds(
        env,
        settings::WEBHOOK_SECRET_GRACE_SECONDS,
        DEFAULT_WEBHOOK_SECRET_GRACE_SECS,
    )?;
    let app = AppClient::new(env, id)?;
    let secret = input.webhook_secret.unwrap_or_else(|| {
        Secret::new(
            random_bytes::<32>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    });
    if input.update_github {
        let jwt = app.jwt(None).await?;
        let github = GithubClient::from_env(env)?;
        github
            .send(
                Method::Patch,
                "/app/hook/config",
                &jwt,
                Some(&json!({"secret": secret.expose()})),
                Idempotent::Yes,
            )
            .await?;
    }
    let ring = Keyring::from_env(env).await?;
    let sealed = seal(&ring, id, WEBHOOK_SECRET_SLOT, &secret).await?;
    let view = app
        .rotate(sealed, (grace as i64).saturating_mul(1000))
        .await?;
    Ok(json_response(200, &view))
}
