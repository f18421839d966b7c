//! Repositories on GitHub: create one in the org, read one, list what the org credentials
//! reach. [`run_create`] drives one creation through `ghplane_core::projects::create_repo`'s
//! decisions, so a lost answer never leads to a second repository.

use ghplane_core::github::error::GithubError;
use ghplane_core::github::pages::Pager;
use ghplane_core::ids::RepoFullName;
use ghplane_core::projects::{
    create_repo_body, next_after_failure, retry_name, CreateRepoNext, CreateRepoPlan, GhRepository,
    GithubRepo, OrgSetting, ProjectSlug, RepoFailure, RepoListing,
};
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde_json::json;
use worker::Method;

use crate::github::client::{GithubClient, Idempotent};
use crate::log;

/// Pages of a listing followed at most (100 repositories each).
const MAX_LIST_PAGES: u32 = 50;
/// POSTs and read-backs of one run, whatever GitHub answers: the decisions already bound a
/// run to about five calls; this only guards against a loop.
const MAX_CALLS: u32 = 8;

/// `POST /orgs/{org}/repos`: a private, empty repository. Never retried after a 5xx or a
/// network failure (the caller decides, see [`run_create`]).
pub async fn create_in_org(
    github: &GithubClient,
    org: &OrgSetting,
    token: &str,
    name: &str,
    description: &str,
) -> Result<GhRepository, GithubError> {
    let body = create_repo_body(name, description);
    let resp = github
        .send(
            Method::Post,
            &org.create_path(),
            token,
            Some(&body),
            Idempotent::No,
        )
        .await?;
    GhRepository::parse(&resp.body)
}

/// `GET /repos/{owner}/{repo}`.
pub async fn get(
    github: &GithubClient,
    token: &str,
    full_name: &RepoFullName,
) -> Result<GhRepository, GithubError> {
    let path = format!("/repos/{}/{}", full_name.owner(), full_name.name());
    let resp = github
        .send(Method::Get, &path, token, None, Idempotent::Yes)
        .await?;
    GhRepository::parse(&resp.body)
}

/// Every repository the org credentials reach, page after page; `true` when the page cap
/// cut the listing short.
pub async fn list(
    github: &GithubClient,
    org: &OrgSetting,
    token: &str,
) -> Result<(Vec<RepoListing>, bool), GithubError> {
    let mut rows = Vec::new();
    let mut pager = Pager::new(org.list_path(1), MAX_LIST_PAGES);
    while let Some(path) = pager.next_path().map(str::to_owned) {
        let resp = github
            .send(Method::Get, &path, token, None, Idempotent::Yes)
            .await?;
        let repos = GhRepository::parse_list(&resp.body)?;
        rows.extend(repos.iter().map(GhRepository::to_listing));
        pager.advance(resp.link.as_deref(), github.api_base());
    }
    Ok((rows, pager.capped()))
}

/// One creation run for the project `slug` in the org: the slug first, a suffixed name when
/// the slug belongs to someone else, the same name once more after an answer that was lost,
/// and a read-back (by the description's marker) when a name turns out taken after such a
/// loss.
pub async fn run_create(
    github: &GithubClient,
    org: &OrgSetting,
    token: &str,
    slug: &ProjectSlug,
    plan: &CreateRepoPlan,
) -> Result<GithubRepo, RepoFailure> {
    let mut name = plan.name.clone();
    let mut attempt: u8 = 1;
    let mut timed_out_before = plan.uncertain_attempt.is_some();
    let mut calls = 0;
    loop {
        calls += 1;
        if calls > MAX_CALLS {
            return Err(RepoFailure::Unavailable);
        }
        let err = match create_in_org(github, org, token, &name, &plan.description).await {
            Ok(repo) => return Ok(repo.to_github_repo()),
            Err(e) => e,
        };
        log_try(slug, &name, "create", &err);
        let mut next = next_after_failure(attempt, &err, timed_out_before);
        if next == CreateRepoNext::ReadBack {
            let full_name = RepoFullName::parse(&format!("{}/{name}", org.org))
                .map_err(|_| RepoFailure::Rejected)?;
            calls += 1;
            match get(github, token, &full_name).await {
                Ok(found) if plan.is_ours(slug.as_str(), found.description.as_deref()) => {
                    return Ok(found.to_github_repo())
                }
                // Taken by a repository that is not ours (or that we may not see).
                Ok(_) | Err(GithubError::NotFound) => {
                    next = next_after_failure(attempt, &err, false);
                }
                // Unknown whether it is ours: never guess; the next approval reads back again.
                Err(e) => {
                    log_try(slug, &name, "read_back", &e);
                    return Err(RepoFailure::Unavailable);
                }
            }
        }
        match next {
            CreateRepoNext::RetrySame => timed_out_before = true,
            CreateRepoNext::RetryWithSuffix => {
                name = retry_name(slug, random_bytes::<4>());
                attempt = 2;
                timed_out_before = false;
            }
            // A second read-back in a row cannot happen: `next` was recomputed without the
            // timeout, which never asks for one.
            CreateRepoNext::ReadBack => return Err(RepoFailure::Unavailable),
            CreateRepoNext::Fail(code) => return Err(code),
        }
    }
}

/// One failed GitHub call of a run: what was tried and how GitHub's answer was classified.
fn log_try(slug: &ProjectSlug, name: &str, call: &str, err: &GithubError) {
    let api = ApiError::from(err.clone());
    log::event(
        "warn",
        "project_repo_try_failed",
        json!({"slug": slug, "name": name, "call": call, "githubError": api.code()}),
    );
}
