//! `/projects…` and `/github/repos`: client projects, their approval and their repository.
//! Every slug is parsed before any Durable Object is touched.

use ghplane_core::github::error::GithubError;
use ghplane_core::projects::{
    GithubRepoInput, NewProject, ProjectPatch, ProjectSlug, RepoFailure, RepoOutcome,
};
use ghplane_core::routes::Matched;
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::github::client::GithubClient;
use crate::github::repos;
use crate::http::{json_response, read_json_body, MAX_ADMIN_BODY};
use crate::log;
use crate::objects::project_index::client::IndexClient;
use crate::objects::project_store::client::{ProjectClient, RepoResult};
use crate::routes::org_access::OrgAccess;

/// A fresh slug collides with an existing project about once in 1.7 million for the same
/// name; a few draws make a failure practically impossible.
const SLUG_DRAWS: usize = 4;

fn slug(m: &Matched) -> Result<ProjectSlug, ApiError> {
    ProjectSlug::parse(m.param("slug")).map_err(ApiError::InvalidId)
}

pub async fn create(mut req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let input = NewProject::parse(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    for _ in 0..SLUG_DRAWS {
        let slug = ProjectSlug::from_name(&input.name, random_bytes::<4>());
        if let Some(created) = ProjectClient::new(env, &slug)?.create(&input).await? {
            return Ok(json_response(201, &created));
        }
    }
    Err(fail!())
}

pub async fn list(env: &Env) -> Result<Response, ApiError> {
    let rows = IndexClient::new(env)?
        .list_cached(crate::clock::now_ms())
        .await?;
    Ok(json_response(200, &json!({ "projects": rows })))
}

pub async fn get(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let project = ProjectClient::new(env, &slug(m)?)?.get().await?;
    Ok(json_response(200, &project))
}

pub async fn patch(mut req: Request, env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let slug = slug(m)?;
    let patch = ProjectPatch::parse(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    let project = ProjectClient::new(env, &slug)?.patch(&patch).await?;
    Ok(json_response(200, &project))
}

/// Approves the spec, then creates the org repository when the project has none. The
/// approval stands whatever GitHub answers: the outcome is the `repo` member, and one log line.
pub async fn approve(env: &Env, m: &Matched) -> Result<Response, ApiError> {
    let slug = slug(m)?;
    let project = ProjectClient::new(env, &slug)?;
    let answer = project.approve().await?;
    let body = match (answer.plan, answer.repo) {
        (Some(plan), _) => {
            let outcome = match create_repo(env, &slug, &plan).await {
                Ok(repo) => RepoOutcome::Created { repo },
                Err(code) => RepoOutcome::Failed { code },
            };
            let result = RepoResult {
                attempt_id: plan.attempt_id,
                outcome,
            };
            match project.repo_result(&result).await {
                Ok(body) => body,
                Err(e) => {
                    // The marker stays and goes stale; the next approval reads back first, so
                    // a repository created here is still found. Say what happened meanwhile.
                    log::event(
                        "error",
                        "project_repo_result_not_stored",
                        json!({"slug": slug, "result": result.outcome, "code": e.code()}),
                    );
                    return Err(e);
                }
            }
        }
        (None, repo) => json!({"project": answer.project, "repo": repo.unwrap_or(Value::Null)}),
    };
    let repo = &body["repo"];
    log::event(
        if repo["status"] == "failed" {
            "warn"
        } else {
            "info"
        },
        "project_approved",
        json!({"slug": slug, "status": repo["status"], "githubError": repo.get("code").cloned().unwrap_or(Value::Null)}),
    );
    Ok(json_response(200, &body))
}

/// The org's credentials, then the creation run. Every way it can fail is a [`RepoFailure`].
async fn create_repo(
    env: &Env,
    slug: &ProjectSlug,
    plan: &ghplane_core::projects::CreateRepoPlan,
) -> Result<ghplane_core::projects::GithubRepo, RepoFailure> {
    let org = OrgAccess::from_env(env).map_err(|_| RepoFailure::OrgNotConfigured)?;
    let github = GithubClient::from_env(env).map_err(|_| RepoFailure::OrgNotConfigured)?;
    let token = org
        .token(env)
        .await
        .map_err(|e| RepoFailure::from_token_error(e.code()))?;
    let result = repos::run_create(&github, &org.setting, &token, slug, plan).await;
    if result == Err(RepoFailure::Unauthorized) {
        org.forget_token(env).await;
    }
    result
}

/// Stores an admin's choice of repository after GitHub showed it to the org credentials
/// (which proves access and gives its default branch). Nothing is stored otherwise.
pub async fn put_github_repo(
    mut req: Request,
    env: &Env,
    m: &Matched,
) -> Result<Response, ApiError> {
    let slug = slug(m)?;
    let input = GithubRepoInput::parse(&read_json_body(&mut req, MAX_ADMIN_BODY).await?)?;
    let project = ProjectClient::new(env, &slug)?;
    project.get().await?;
    let org = OrgAccess::require(env)?;
    let github = GithubClient::from_env(env)?;
    let token = org.admin_token(env).await?;
    let found = match repos::get(&github, &token, &input.full_name).await {
        Ok(found) => found,
        Err(GithubError::NotFound) => {
            return Err(ApiError::GithubRepoNotFound(format!(
                "GitHub shows no repository {} to the credentials of {}: check the name, or give the org app (or GITHUB_TOKEN) access to it",
                input.full_name,
                org.org()
            )))
        }
        Err(e) => {
            if matches!(e, GithubError::Unauthorized { .. }) {
                org.forget_token(env).await;
            }
            return Err(e.into());
        }
    };
    let stored = project.set_github_repo(&found.to_github_repo()).await?;
    Ok(json_response(200, &stored))
}

/// The repositories the org credentials reach, as rows an admin picks from.
pub async fn list_github_repos(env: &Env) -> Result<Response, ApiError> {
    let org = OrgAccess::require(env)?;
    let github = GithubClient::from_env(env)?;
    let token = org.admin_token(env).await?;
    let (rows, incomplete) = match repos::list(&github, &org.setting, &token).await {
        Err(e @ GithubError::Unauthorized { .. }) => {
            org.forget_token(env).await;
            return Err(e.into());
        }
        other => other?,
    };
    Ok(json_response(
        200,
        &json!({"org": org.org(), "repositories": rows, "incomplete": incomplete}),
    ))
}
