//! `/api/installations/{installation_id}/config`: the admin's view of one tenant.

use ghplane_core::ids::InstallationId;
use ghplane_core::routes::Matched;
use ghplane_core::tenancy::config::{PlainInput, PlainPatch, PrivateKeyInput, SealedSecret};
use ghplane_core::ApiError;
use worker::{Env, Request, Response};

use crate::http::{read_json_body, MAX_ADMIN_BODY};
use crate::objects::installation::InstallationClient;
use crate::secrets::Keyring;

const PRIVATE_KEY_SLOT: &str = "privateKey";
const WEBHOOK_SECRET_SLOT: &str = "webhookSecret";

/// The id is checked before any Durable Object is touched.
fn installation_id(m: &Matched) -> Result<InstallationId, ApiError> {
    InstallationId::parse(m.param("installation_id")).map_err(ApiError::InvalidId)
}

async fn seal_key(
    ring: &Keyring,
    object: &str,
    key: &PrivateKeyInput,
) -> Result<SealedSecret, ApiError> {
    Ok(SealedSecret {
        sealed: ring
            .seal(object, PRIVATE_KEY_SLOT, key.pem.expose())
            .await?,
        fingerprint: Some(key.fingerprint.clone()),
    })
}

async fn seal_secret(
    ring: &Keyring,
    object: &str,
    secret: &ghplane_core::sealed::Secret,
) -> Result<SealedSecret, ApiError> {
    Ok(SealedSecret {
        sealed: ring
            .seal(object, WEBHOOK_SECRET_SLOT, secret.expose())
            .await?,
        fingerprint: None,
    })
}

pub async fn put_config(mut req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = installation_id(m)?;
    let input = PlainInput::parse(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    let ring = Keyring::from_env(env).await?;
    let object = id.object_name();
    let key = match &input.private_key {
        Some(k) => Some(seal_key(&ring, &object, k).await?),
        None => None,
    };
    let secret = match &input.webhook_secret {
        Some(s) => Some(seal_secret(&ring, &object, s).await?),
        None => None,
    };
    InstallationClient::new(env, id)?
        .put(&input.with_secrets(key, secret))
        .await
}

pub async fn get_config(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    InstallationClient::new(env, installation_id(m)?)?
        .get()
        .await
}

pub async fn patch_config(mut req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = installation_id(m)?;
    let patch = PlainPatch::parse(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    let ring = Keyring::from_env(env).await?;
    let object = id.object_name();
    let key = match &patch.private_key {
        Some(Some(k)) => Some(Some(seal_key(&ring, &object, k).await?)),
        Some(None) => Some(None),
        None => None,
    };
    let secret = match &patch.webhook_secret {
        Some(Some(s)) => Some(Some(seal_secret(&ring, &object, s).await?)),
        Some(None) => Some(None),
        None => None,
    };
    InstallationClient::new(env, id)?
        .patch(&patch.with_secrets(key, secret))
        .await
}

pub async fn delete_config(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    InstallationClient::new(env, installation_id(m)?)?
        .delete()
        .await
}
