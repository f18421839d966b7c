//! `/api/installers`: installing per repository (a dedicated GitHub App) or per
//! organisation, enrolling, status and uninstalling. Decisions are in
//! `ghplane_core::installer`; the owner's claim object makes them atomic.

use ghplane_core::installer::claims::ClaimRequest;
use ghplane_core::installer::{
    parse_enroll, parse_input, InstallerError, InstallerId, InstallerRecord, Target,
};
use ghplane_core::routes::Matched;
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use worker::{Env, Method, Request, Response};

use crate::clock::now_text;
use crate::github::client::{GithubClient, Idempotent};
use crate::http::{json_response, query, read_json_body, MAX_ADMIN_BODY};
use crate::objects::app_store::client::AppClient;
use crate::objects::claims::ClaimsClient;
use crate::objects::installation::InstallationClient;
use crate::objects::installer::{forget_app, InstallerClient};
use crate::objects::installer_index;
use crate::settings;

pub fn installer_id(m: &Matched) -> Result<InstallerId, ApiError> {
    InstallerId::parse(m.param("installer_id")).map_err(ApiError::InvalidId)
}

/// This worker's public origin, as the request reached it.
fn origin(req: &Request) -> Result<String, ApiError> {
    Ok(req
        .url()
        .map_err(|e| fail!(e))?
        .origin()
        .ascii_serialization())
}

/// The installer's status: its record, and the claims and conflicts its owner's object holds.
async fn status(
    env: &Env,
    record: InstallerRecord,
    service_key: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let answer = ClaimsClient::new(env, record.target.owner())?
        .apply(&ClaimRequest::View {
            installer: record.id.clone(),
            installation_id: record.installation_id,
        })
        .await?;
    Ok(record.view(
        &settings::github_web_base(env),
        answer.claims,
        answer.conflicts,
        service_key.as_deref(),
    ))
}

pub async fn create(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let target = parse_input(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    let base = origin(&req)?;
    let id = InstallerId::from_random(&random_bytes::<8>());
    let claims = ClaimsClient::new(env, target.owner())?;
    // The claim is the gate: of two installers racing for one repository, one gets here.
    let claim = match &target {
        Target::Repo { repository, .. } => ClaimRequest::ClaimRepo {
            installer: id.clone(),
            repository: repository.clone(),
        },
        Target::Org { excluded, .. } => ClaimRequest::ClaimOrg {
            installer: id.clone(),
            excluded: excluded.clone(),
        },
    };
    claims.apply(&claim).await?;
    let record = InstallerRecord::new(id.clone(), target, &base, &now_text());
    let installer = InstallerClient::new(env, &id)?;
    // The setup link's state is issued now; the setup page reuses it while it is fresh.
    let created = match installer.create(&record).await {
        Ok(_) => installer.state().await.and(installer.get().await),
        Err(e) => Err(e),
    };
    let stored = match created {
        Ok(r) => r,
        Err(e) => {
            // Nothing half-written: without its installer, the claim goes too.
            let _ = claims.apply(&ClaimRequest::Release { installer: id }).await;
            return Err(e);
        }
    };
    Ok(json_response(201, &status(env, stored, None).await?))
}

pub async fn get(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let viewed = InstallerClient::new(env, &installer_id(m)?)?.view().await?;
    Ok(json_response(
        200,
        &status(env, viewed.record, viewed.service_key).await?,
    ))
}

/// `GET /api/installers`: every installer, newest first, a page at a time: its target, phase,
/// app and installation, and the conflicts its owner's claim object holds; never the
/// service key, the setup state or the app's credentials.
pub async fn list(req: Request, env: &Env) -> Result<Response, ApiError> {
    use ghplane_core::lists::installers;
    let pairs = query(&req)?;
    let q = installers::parse_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let (rows, next) = installer_index::page(env, &q).await?;
    let items = futures_util::future::try_join_all(rows.into_iter().map(|row| async move {
        let answer = ClaimsClient::new(env, row.owner())?
            .apply(&ClaimRequest::View {
                installer: row.id.clone(),
                installation_id: row.installation_id,
            })
            .await?;
        let mut item = serde_json::to_value(&row).map_err(|e| fail!(e))?;
        item["conflicts"] = answer.conflicts.into();
        Ok::<_, ApiError>(item)
    }))
    .await?;
    Ok(json_response(
        200,
        &serde_json::json!({"installers": items, "nextCursor": next}),
    ))
}

pub async fn enroll(mut req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = installer_id(m)?;
    let body = read_json_body(&mut req, MAX_ADMIN_BODY).await?;
    let installer = InstallerClient::new(env, &id)?;
    let record = installer.get().await?;
    let Target::Org { org, .. } = &record.target else {
        return Err(InstallerError::WrongMode(format!(
            "installer {id} is a per-repository installer; only org installers enroll repositories"
        ))
        .into());
    };
    let repos = parse_enroll(&body, org)?;
    if record.uninstalled_at.is_some() {
        return Err(InstallerError::Uninstalled(id.to_string()).into());
    }
    let Some(installation) = record.installation_id else {
        return Err(InstallerError::NotInstalled(id.to_string()).into());
    };
    ClaimsClient::new(env, org)?
        .apply(&ClaimRequest::Enroll {
            installer: id.clone(),
            repositories: repos.clone(),
        })
        .await?;
    InstallationClient::new(env, installation)?
        .enroll(&repos)
        .await?;
    let record = installer.enrolled(&repos).await?;
    Ok(json_response(200, &status(env, record, None).await?))
}

/// Uninstalls, in an order that any retry can finish: GitHub's installation first (it needs
/// the app's key), then the tenant, the claims, the app's registration, and the record. A
/// second call finds the installer uninstalled and changes nothing.
pub async fn delete(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let id = installer_id(m)?;
    let installer = InstallerClient::new(env, &id)?;
    let record = installer.get().await?;
    if record.uninstalled_at.is_some() {
        return Ok(json_response(200, &status(env, record, None).await?));
    }
    if let (Some(app), Some(installation)) = (&record.app, record.installation_id) {
        match AppClient::new(env, app.app_id)?.jwt(None).await {
            Ok(jwt) => {
                let path = format!("/app/installations/{installation}");
                match GithubClient::from_env(env)?
                    .send(Method::Delete, &path, &jwt, None, Idempotent::Yes)
                    .await
                {
                    // Already gone on GitHub (e.g. the owner uninstalled it): nothing to undo.
                    Ok(_) | Err(ghplane_core::github::error::GithubError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // A retry after the registration went: GitHub's side was done before that.
            Err(ApiError::AppNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        InstallationClient::new(env, installation)?
            .purge(Some(&id))
            .await?;
    }
    let answer = ClaimsClient::new(env, record.target.owner())?
        .apply(&ClaimRequest::Release {
            installer: id.clone(),
        })
        .await?;
    crate::objects::installation::push_withheld(env, &answer.affected).await?;
    if let Some(app) = &record.app {
        forget_app(env, app.app_id).await?;
    }
    let record = installer.uninstalled().await?;
    crate::log::event(
        "info",
        "installer uninstalled",
        serde_json::json!({"installer": id.as_str(), "installation": record.installation_id}),
    );
    Ok(json_response(200, &status(env, record, None).await?))
}
