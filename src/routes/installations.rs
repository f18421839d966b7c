//! `/api/installations/{installation_id}/config`: the admin's view of one tenant.

use ghplane_core::github::branches;
use ghplane_core::ids::{AppId, InstallationId};
use ghplane_core::input::parse_object;
use ghplane_core::routes::Matched;
use ghplane_core::tenancy::config::{PlainInput, PlainPatch, PrivateKeyInput, SealedSecret};
use ghplane_core::tenancy::listing;
use ghplane_core::tenancy::token::ServiceKey;
use ghplane_core::ApiError;
use worker::{Env, Request, Response};

use crate::http::{json_response, no_content, read_json_body, read_optional_json, MAX_ADMIN_BODY};
use crate::objects::app_store::client::AppClient;
use crate::objects::installation::{InstallationClient, PRIVATE_KEY_SLOT, WEBHOOK_SECRET_SLOT};
use crate::objects::sealed_registry;
use crate::objects::tenant_index;
use crate::secrets::Keyring;

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
    require_app(env, input.app_id).await?;
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
    sealed_registry::enroll(env, "installation", &id.to_string()).await?;
    let written = InstallationClient::new(env, id)?
        .put(&input.with_secrets(key, secret))
        .await?;
    let status = if written.created { 201 } else { 200 };
    Ok(json_response(status, &written.config))
}

/// `GET /api/installations`: the tenant listing, a page at a time (`tenant_index.rs`). The
/// query is checked before any object is touched.
pub async fn list(req: Request, env: &Env) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let query = listing::parse_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok(json_response(200, &tenant_index::page(env, &query).await?))
}

pub async fn get_config(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let config = InstallationClient::new(env, installation_id(m)?)?
        .get()
        .await?;
    Ok(json_response(200, &config))
}

pub async fn patch_config(mut req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = installation_id(m)?;
    let patch = PlainPatch::parse(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    if let Some(app) = patch.app_id {
        require_app(env, app).await?;
    }
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
    sealed_registry::enroll(env, "installation", &id.to_string()).await?;
    let config = InstallationClient::new(env, id)?
        .patch(&patch.with_secrets(key, secret))
        .await?;
    Ok(json_response(200, &config))
}

pub async fn delete_config(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    InstallationClient::new(env, installation_id(m)?)?
        .delete()
        .await?;
    Ok(no_content())
}

/// An installation names its app; one of an app the registry does not hold is refused.
async fn require_app(env: &Env, app: AppId) -> Result<(), ApiError> {
    if AppClient::new(env, app)?.exists().await? {
        Ok(())
    } else {
        Err(ApiError::UnknownApp(app.get()))
    }
}

pub async fn create_service_key(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let key = InstallationClient::new(env, installation_id(m)?)?
        .create_service_key()
        .await?;
    Ok(json_response(201, &key))
}

pub async fn list_service_keys(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let keys = InstallationClient::new(env, installation_id(m)?)?
        .list_service_keys()
        .await?;
    Ok(json_response(200, &keys))
}

pub async fn delete_service_key(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let key_id = m.param("key_id");
    if key_id.len() != 8 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::InvalidId(
            "a service key id is 8 hex digits".into(),
        ));
    }
    InstallationClient::new(env, installation_id(m)?)?
        .delete_service_key(key_id)
        .await?;
    Ok(no_content())
}

/// A tenant's workload trades its service key for a scoped installation token. A key of
/// another installation is refused here, before that installation's object is touched.
pub async fn installation_token(
    mut req: Request,
    env: &Env,
    m: &Matched,
) -> Result<Response, ApiError> {
    let id = installation_id(m)?;
    let header = req.headers().get("authorization").ok().flatten();
    let key = ServiceKey::from_header(header.as_deref()).ok_or(ApiError::Unauthorized)?;
    if key.installation_id != id {
        return Err(ApiError::Forbidden(
            "this service key belongs to another installation".into(),
        ));
    }
    // The bytes decide, never `Content-Length`: a chunked scope is a scope (an absent or
    // empty body asks for the whole installation).
    let bytes = read_optional_json(&mut req, MAX_ADMIN_BODY).await?;
    let body = if bytes.is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::Value::Object(parse_object(&bytes)?)
    };
    let grant = InstallationClient::new(env, id)?
        .service_token(&key, &body)
        .await?;
    Ok(json_response(200, &grant))
}

pub async fn list_repositories(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let repositories = InstallationClient::new(env, installation_id(m)?)?
        .repositories()
        .await?;
    Ok(json_response(200, &repositories))
}

/// `GET /api/installations/{installation_id}/repositories/{owner}/{repo}/branches`: one page
/// of the repository's branches, read with the installation's token (private repositories
/// included); `?cursor=` from the previous page's `nextCursor`. Id, repository and cursor are
/// checked before any object is touched.
pub async fn list_branches(req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = installation_id(m)?;
    let repo = branches::repository(m.param("owner"), m.param("repo"))?;
    let url = req.url().map_err(|e| fail!(e))?;
    let mut cursor = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "cursor" if cursor.is_none() => cursor = Some(v.into_owned()),
            other => {
                return Err(ApiError::Validation(format!(
                    "{}: not a parameter of this listing",
                    ghplane_core::ids::truncate(other, 40)
                )))
            }
        }
    }
    let page = branches::page_of(cursor.as_deref())?;
    let found = InstallationClient::new(env, id)?
        .branches(&repo, page)
        .await?;
    Ok(json_response(200, &found))
}
