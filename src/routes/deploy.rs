//! Push to deploy: `/projects/{slug}/source` and `/projects/{slug}/deployments` (admin), and
//! the two routes a deployer calls, `/api/deployments/{id}/credentials` (bearer: the job's
//! single-use ticket) and `/api/deployments/{id}/status` (signed with the hook secret).
//! Every id is parsed before any Durable Object is touched.

use ghplane_core::deploy::{
    DeployError, DeploymentRef, Source, SourceInput, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use ghplane_core::github::branches::{head_from_github, head_path};
use ghplane_core::github::error::GithubError;
use ghplane_core::ids::RepoFullName;
use ghplane_core::projects::ProjectSlug;
use ghplane_core::routes::Matched;
use ghplane_core::tenancy::token::TokenScope;
use ghplane_core::ApiError;
use serde_json::json;
use worker::{Env, Method, Request, Response};

use crate::github::client::{GithubClient, Idempotent};
use crate::http::{json_response, no_content, read_json_body, MAX_ADMIN_BODY};
use crate::objects::installation::InstallationClient;
use crate::objects::project_deploy::client::{
    CredentialsRequest, Linked, ProjectDeployClient, RedeployRequest, StatusRequest,
};
use crate::objects::project_store::client::ProjectClient;
use crate::settings;

fn project(m: &Matched) -> Result<ProjectSlug, ApiError> {
    ProjectSlug::parse(m.param("slug")).map_err(ApiError::InvalidId)
}

fn deployment(m: &Matched) -> Result<DeploymentRef, ApiError> {
    DeploymentRef::parse(m.param("deployment_id")).map_err(ApiError::InvalidId)
}

/// Every `/projects/{slug}/…` route answers 404 `project_not_found` for a project that does
/// not exist, before its deploy object is touched (which would otherwise answer as if an
/// empty project were there).
async fn existing_project(env: &Env, m: &Matched) -> Result<ProjectSlug, ApiError> {
    let slug = project(m)?;
    ProjectClient::new(env, &slug)?.get().await?;
    Ok(slug)
}

/// Checks the project exists, resolves the repository by id through the installation (its
/// token must reach it) and only then links it: a refused source stores nothing.
pub async fn put_source(mut req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    project(m)?;
    let input = SourceInput::parse(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    let slug = existing_project(env, m).await?;
    let found = InstallationClient::new(env, input.installation_id)?
        .find_repository(input.repo_id)
        .await?;
    let full_name = RepoFullName::parse(&found.full_name).map_err(|e| fail!(e))?;
    let public_url = match settings::get(env, settings::PUBLIC_URL) {
        Some(u) => u,
        None => req
            .url()
            .map_err(|e| fail!(e))?
            .origin()
            .ascii_serialization(),
    };
    let linked = Linked {
        project: slug.clone(),
        source: Source::resolve(input, full_name, found.node_id),
        public_url,
    };
    crate::objects::sealed_registry::enroll(env, "deploy", slug.as_str()).await?;
    let linked = ProjectDeployClient::new(env, &slug)?
        .put_source(&linked)
        .await?;
    let status = if linked.created { 201 } else { 200 };
    Ok(json_response(status, &linked.source))
}

pub async fn get_source(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let source = ProjectDeployClient::new(env, &existing_project(env, m).await?)?
        .get_source()
        .await?;
    Ok(json_response(200, &source))
}

pub async fn delete_source(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    ProjectDeployClient::new(env, &existing_project(env, m).await?)?
        .delete_source()
        .await?;
    Ok(no_content())
}

pub async fn list_deployments(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let deployments = ProjectDeployClient::new(env, &existing_project(env, m).await?)?
        .deployments()
        .await?;
    Ok(json_response(200, &deployments))
}

/// `POST /projects/{slug}/redeploy`: reads the source branch's head from GitHub with the
/// source installation's token, then hands it to the project's deploy object like a push
/// (what becomes of it is the core's `DeployMachine::on_redeploy`).
pub async fn redeploy(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let slug = existing_project(env, m).await?;
    let deploys = ProjectDeployClient::new(env, &slug)?;
    let source: Source = match deploys.get_source().await {
        Ok(view) => serde_json::from_value(view).map_err(|e| fail!(e))?,
        Err(ApiError::Deploy(DeployError::NotLinked(_))) => {
            return Err(DeployError::RedeployWithoutSource(slug.to_string()).into())
        }
        Err(e) => return Err(e),
    };
    let scope = TokenScope {
        repositories: vec![source.full_name.name().to_owned()],
        permissions: [("contents".to_owned(), "read".to_owned())].into(),
    };
    let token = InstallationClient::new(env, source.installation_id)?
        .token(&scope)
        .await?
        .token;
    let path = head_path(&source.full_name, source.branch.as_str());
    let resp = GithubClient::from_env(env)?
        .send(Method::Get, &path, &token, None, Idempotent::Yes)
        .await?;
    let head = head_from_github(&resp.body)
        .map_err(|e| ApiError::from(GithubError::MalformedResponse(e.to_string())))?;
    let outcome = deploys
        .redeploy(&RedeployRequest {
            repo_id: source.repo_id,
            branch: source.branch.as_str().to_owned(),
            sha: head.sha.clone(),
            message: head.message,
        })
        .await?;
    let mut body = serde_json::to_value(&outcome).map_err(|e| fail!(e))?;
    body["sha"] = json!(head.sha);
    Ok(json_response(202, &body))
}

/// The ticket travels as `Authorization: Bearer ghpdt_…` (headers stay out of access logs
/// more reliably than bodies or query strings).
pub async fn redeem_credentials(
    req: Request,
    env: &Env,
    m: &Matched,
) -> Result<Response, ApiError> {
    let d = deployment(m)?;
    let header = req.headers().get("authorization").ok().flatten();
    let ticket = header
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let grant = ProjectDeployClient::new(env, &d.project)?
        .credentials(&CredentialsRequest {
            number: d.number,
            ticket: ticket.to_owned(),
        })
        .await?;
    Ok(json_response(200, &grant))
}

pub async fn report_status(mut req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let d = deployment(m)?;
    let signature = req
        .headers()
        .get(SIGNATURE_HEADER)
        .ok()
        .flatten()
        .ok_or(DeployError::InvalidSignature)?;
    let timestamp = req.headers().get(TIMESTAMP_HEADER).ok().flatten();
    let body = read_json_body(&mut req, MAX_ADMIN_BODY).await?;
    let body = String::from_utf8(body)
        .map_err(|_| ApiError::MalformedJson("the body is not UTF-8".into()))?;
    let answer = ProjectDeployClient::new(env, &d.project)?
        .status(&StatusRequest {
            number: d.number,
            signature,
            timestamp,
            body,
        })
        .await?;
    Ok(json_response(200, &answer))
}
