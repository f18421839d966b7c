//! `ProjectStore`: one Durable Object per project, named `project-<slug>`, holding the
//! project record (its listing row lives in `ProjectIndex`, `project_index`).
//!
//! Every change is a read-modify-write of the one record under a lock, so the decisions in
//! `ghplane_core::projects` always see the latest state. The lock is NOT held across the
//! GitHub calls of an approval (those run in the request, between `Approve` and
//! `RepoResult`): the in-flight marker that `Approve` stores is what makes a second approval
//! create nothing, and what lets a manual override win while a creation runs.

pub mod client;

pub(crate) use crate::clock::now_ms;
use futures_util::lock::Mutex;
use ghplane_core::projects::{
    approve, manual_override, on_repo_outcome, ApproveStep, AttemptId, GithubRepo, NewProject,
    Project, ProjectPatch, ProjectSlug,
};
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde_json::{json, Value};
use worker::{durable_object, Env, Request, Response, State};

use crate::log;
use crate::objects::project_index::client::IndexClient;
use crate::objects::rpc;
use client::{project_of, ApproveAnswer, ProjectStoreCommand, RepoResult};

const RECORD_KEY: &str = "project";

#[durable_object]
pub struct ProjectStore {
    state: State,
    env: Env,
    lock: Mutex<()>,
}

impl worker::DurableObject for ProjectStore {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            lock: Mutex::new(()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |name, command| async move {
            let slug = project_of(&name)?;
            match command {
                ProjectStoreCommand::Create { input } => {
                    rpc::reply(&self.create(slug, input).await?)
                }
                ProjectStoreCommand::Get => rpc::reply(&self.existing(&slug).await?.view()),
                ProjectStoreCommand::Patch { patch } => {
                    rpc::reply(&self.patch(&slug, patch).await?)
                }
                ProjectStoreCommand::Approve => rpc::reply(&self.approve(&slug).await?),
                ProjectStoreCommand::RepoResult { result } => {
                    rpc::reply(&self.repo_result(&slug, result).await?)
                }
                ProjectStoreCommand::SetGithubRepo { repo } => {
                    rpc::reply(&self.github_repo(&slug, repo).await?)
                }
            }
        })
        .await
    }
}

impl ProjectStore {
    /// The record is kept as JSON text: its history entries are flattened, tagged enums,
    /// which round-trip exactly through serde_json.
    async fn load(&self) -> Result<Option<Project>, ApiError> {
        let text: Option<String> = self
            .state
            .storage()
            .get(RECORD_KEY)
            .await
            .map_err(|e| fail!(e))?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| fail!(e)))
            .transpose()
    }

    async fn existing(&self, slug: &ProjectSlug) -> Result<Project, ApiError> {
        self.load()
            .await?
            .ok_or_else(|| ApiError::ProjectNotFound(slug.to_string()))
    }

    /// Stores the project, then its listing row. The record is the truth: a listing row that
    /// could not be written is logged and rewritten with the project's next change.
    async fn save(&self, project: &Project) -> Result<(), ApiError> {
        let text = serde_json::to_string(project).map_err(|e| fail!(e))?;
        self.state
            .storage()
            .put(RECORD_KEY, text)
            .await
            .map_err(|e| fail!(e))?;
        let synced = match IndexClient::new(&self.env) {
            Ok(index) => index.upsert(&project.summary()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            log::event(
                "error",
                "project_index_sync_failed",
                json!({"slug": project.slug, "code": e.code()}),
            );
        }
        Ok(())
    }

    /// A new project under a fresh slug; `None` when the slug is taken, so the caller draws
    /// another.
    async fn create(
        &self,
        slug: ProjectSlug,
        input: NewProject,
    ) -> Result<Option<Value>, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        if self.load().await?.is_some() {
            return Ok(None);
        }
        let project = Project::new(slug, input, now_ms());
        self.save(&project).await?;
        Ok(Some(project.view()))
    }

    async fn patch(&self, slug: &ProjectSlug, patch: ProjectPatch) -> Result<Value, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut project = self.existing(slug).await?;
        project.apply_patch(patch, now_ms())?;
        self.save(&project).await?;
        Ok(project.view())
    }

    /// Approves and, when a repository must be created, stores the in-flight marker before
    /// answering: the caller creates the repository only after this is durable.
    async fn approve(&self, slug: &ProjectSlug) -> Result<ApproveAnswer, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut project = self.existing(slug).await?;
        let before = project.clone();
        let attempt = AttemptId::from_random(random_bytes::<6>());
        let step = approve(&mut project, attempt, now_ms())?;
        if project != before {
            self.save(&project).await?;
        }
        Ok(match step {
            ApproveStep::CreateRepo(plan) => ApproveAnswer {
                project: project.view(),
                plan: Some(plan),
                repo: None,
            },
            skip => ApproveAnswer {
                project: project.view(),
                plan: None,
                repo: skip.skipped_report().map(|r| r.to_json()),
            },
        })
    }

    async fn repo_result(&self, slug: &ProjectSlug, result: RepoResult) -> Result<Value, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut project = self.existing(slug).await?;
        let report = on_repo_outcome(&mut project, &result.attempt_id, result.outcome, now_ms());
        self.save(&project).await?;
        Ok(json!({"project": project.view(), "repo": report.to_json()}))
    }

    async fn github_repo(&self, slug: &ProjectSlug, repo: GithubRepo) -> Result<Value, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut project = self.existing(slug).await?;
        manual_override(&mut project, repo, now_ms());
        self.save(&project).await?;
        Ok(project.view())
    }
}
