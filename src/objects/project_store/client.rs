//! The handle on one project's record object (`ProjectStore`, named `project-<slug>`): its
//! command enum, replies and client. A leaf: it imports no other object.

use ghplane_core::projects::{
    AttemptId, CreateRepoPlan, GithubRepo, NewProject, ProjectPatch, ProjectSlug, RepoOutcome,
};
use ghplane_core::rpc::Command;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

const NAME_PREFIX: &str = "project-";

/// The project an object name (`ProjectSlug::object_name`) belongs to.
pub fn project_of(name: &str) -> Result<ProjectSlug, ApiError> {
    name.strip_prefix(NAME_PREFIX)
        .and_then(|slug| ProjectSlug::parse(slug).ok())
        .ok_or_else(|| fail!())
}

/// `Approve`'s answer: the project as stored, and either a creation to run or the report of
/// the step that was skipped.
#[derive(Serialize, Deserialize)]
pub struct ApproveAnswer {
    pub project: Value,
    pub plan: Option<CreateRepoPlan>,
    pub repo: Option<Value>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoResult {
    pub attempt_id: AttemptId,
    pub outcome: RepoOutcome,
}

/// Every operation of a `ProjectStore` object. Replies are the project's view unless said.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStoreCommand {
    /// Reply: `None` when the slug is taken already (the caller draws another).
    Create {
        input: NewProject,
    },
    Get,
    Patch {
        patch: ProjectPatch,
    },
    /// Reply: [`ApproveAnswer`].
    Approve,
    /// How a creation ended. Reply: the approval's response body.
    RepoResult {
        result: RepoResult,
    },
    SetGithubRepo {
        repo: GithubRepo,
    },
}

impl Command for ProjectStoreCommand {
    fn idempotent(&self) -> bool {
        use ProjectStoreCommand as C;
        match self {
            C::Create { .. } | C::Get | C::SetGithubRepo { .. } => true,
            C::Patch { .. } | C::Approve | C::RepoResult { .. } => false,
        }
    }
}

/// The route handlers' handle on one project's object.
pub struct ProjectClient {
    object: Object,
}

impl ProjectClient {
    pub fn new(env: &Env, slug: &ProjectSlug) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::PROJECTS, &slug.object_name())?;
        Ok(Self { object })
    }

    /// The new project's view; `None` when the slug is taken already.
    pub async fn create(&self, input: &NewProject) -> Result<Option<Value>, ApiError> {
        let input = input.clone();
        self.object
            .call(&ProjectStoreCommand::Create { input })
            .await
    }

    pub async fn get(&self) -> Result<Value, ApiError> {
        self.object.call(&ProjectStoreCommand::Get).await
    }

    pub async fn patch(&self, patch: &ProjectPatch) -> Result<Value, ApiError> {
        let patch = patch.clone();
        self.object
            .call(&ProjectStoreCommand::Patch { patch })
            .await
    }

    pub async fn approve(&self) -> Result<ApproveAnswer, ApiError> {
        self.object.call(&ProjectStoreCommand::Approve).await
    }

    /// Reports how a creation ended; the answer is the approval's response body.
    pub async fn repo_result(&self, result: &RepoResult) -> Result<Value, ApiError> {
        let result = result.clone();
        self.object
            .call(&ProjectStoreCommand::RepoResult { result })
            .await
    }

    pub async fn set_github_repo(&self, repo: &GithubRepo) -> Result<Value, ApiError> {
        let repo = repo.clone();
        self.object
            .call(&ProjectStoreCommand::SetGithubRepo { repo })
            .await
    }
}
