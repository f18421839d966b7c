//! The GitHub side of a deployment: creating the GitHub deployment for a dispatch, and
//! mirroring its status changes, each with a token of the installation scoped to the one
//! repository with `deployments: write`. A status is only ever mirrored into the repository
//! the deployment was created in.

use ghplane_core::deploy::outbox::{Job, Next, Work};
use ghplane_core::deploy::{Deployment, DeploymentRef, Source};
use ghplane_core::ids::{truncate, RepoId};
use ghplane_core::tenancy::token::TokenScope;
use ghplane_core::ApiError;
use serde::Deserialize;
use serde_json::json;
use worker::Method;

use super::client::Linked;
use super::ProjectDeploy;
use crate::github::client::{GithubClient, Idempotent};
use crate::objects::installation::InstallationClient;
use crate::settings;

/// Deployment number → the repository its GitHub deployment was created in, so a status is
/// never mirrored into a repository the project has since moved away from.
const TARGETS_KEY: &str = "github-targets";
const MAX_TARGETS: usize = 50;
/// GitHub limits a deployment status description to 140 characters.
const MAX_DESCRIPTION: usize = 140;

impl ProjectDeploy {
    pub(super) async fn github_token(&self, source: &Source) -> Result<String, ApiError> {
        let scope = TokenScope {
            repositories: vec![source.full_name.name().to_owned()],
            permissions: [("deployments".to_owned(), "write".to_owned())].into(),
        };
        Ok(InstallationClient::new(&self.env, source.installation_id)?
            .token(&scope)
            .await?
            .token)
    }

    /// Creates the GitHub deployment; its id.
    pub(super) async fn create_github_deployment(
        &self,
        linked: &Linked,
        deployment: &Deployment,
        token: &str,
    ) -> Result<u64, ApiError> {
        #[derive(Deserialize)]
        struct Created {
            id: u64,
        }
        let source = &linked.source;
        let reference = DeploymentRef {
            project: linked.project.clone(),
            number: deployment.id,
        };
        let body = json!({
            "ref": deployment.sha,
            "environment": settings::environment(&self.env),
            "auto_merge": false,
            "required_contexts": [],
            "description": truncate(&format!("ghplane {reference} of {}", source.branch), MAX_DESCRIPTION),
            "payload": {"project": linked.project, "deployment": deployment.id},
        });
        let path = format!(
            "/repos/{}/{}/deployments",
            source.full_name.owner(),
            source.full_name.name()
        );
        let resp = GithubClient::from_env(&self.env)?
            .send(Method::Post, &path, token, Some(&body), Idempotent::No)
            .await?;
        Ok(resp.json::<Created>()?.id)
    }

    pub(super) async fn remember_target(
        &self,
        deployment_id: u64,
        repo: RepoId,
    ) -> Result<(), ApiError> {
        let mut targets: Vec<(u64, RepoId)> = self.load(TARGETS_KEY).await?;
        targets.retain(|(d, _)| *d != deployment_id);
        targets.push((deployment_id, repo));
        let excess = targets.len().saturating_sub(MAX_TARGETS);
        targets.drain(..excess);
        self.save(TARGETS_KEY, &targets).await
    }

    /// Mirrors one status to GitHub (a mirror job).
    pub(super) async fn mirror(&self, job: &Job) -> Result<(), ApiError> {
        let Work::Mirror {
            deployment_id,
            github_deployment_id,
            state,
            description,
        } = &job.work
        else {
            return Ok(());
        };
        let targets: Vec<(u64, RepoId)> = self.load(TARGETS_KEY).await?;
        let target = targets
            .iter()
            .find(|(d, _)| d == deployment_id)
            .map(|(_, r)| *r);
        let linked = self.linked().await?;
        let Some(linked) = linked.filter(|l| Some(l.source.repo_id) == target) else {
            // The project moved to another repository (or was unlinked): the deployment's
            // repository is no longer ours to write to.
            return self.settle(job.id, Next::Done).await;
        };
        let token = self.github_token(&linked.source).await?;
        let path = format!(
            "/repos/{}/{}/deployments/{github_deployment_id}/statuses",
            linked.source.full_name.owner(),
            linked.source.full_name.name()
        );
        let body =
            json!({"state": state.as_str(), "description": truncate(description, MAX_DESCRIPTION)});
        GithubClient::from_env(&self.env)?
            .send(Method::Post, &path, &token, Some(&body), Idempotent::No)
            .await?;
        self.settle(job.id, Next::Done).await
    }
}
