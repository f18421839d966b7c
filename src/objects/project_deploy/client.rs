//! The handle on one project's deploy object (`ProjectDeploy`, named `deploy-<slug>`): its
//! command enum, the requests and replies it carries, and the client the route handlers and
//! the installations' objects call. A leaf: it imports no other object.

use ghplane_core::deploy::{Redeployed, Source};
use ghplane_core::ids::{InstallationId, RepoFullName, RepoId};
use ghplane_core::projects::ProjectSlug;
use ghplane_core::rpc::Command;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::Env;

use crate::objects::rpc::Object;
use crate::secrets::ResealReport;
use crate::settings;

const NAME_PREFIX: &str = "deploy-";

/// The one place the object's name is formatted.
pub fn object_name(project: &ProjectSlug) -> String {
    format!("{NAME_PREFIX}{}", project.as_str())
}

/// The project an object name (from [`object_name`]) belongs to.
pub fn project_of(name: &str) -> Result<ProjectSlug, ApiError> {
    name.strip_prefix(NAME_PREFIX)
        .and_then(|slug| ProjectSlug::parse(slug).ok())
        .ok_or_else(|| fail!())
}

/// The project's source as stored, with what the jobs need to name it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linked {
    pub project: ProjectSlug,
    pub source: Source,
    /// The origin the credentials and status URLs of jobs start with.
    pub public_url: String,
}

impl Linked {
    /// The source as the API shows it.
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(&self.source).unwrap_or_default();
        v["project"] = json!(self.project);
        v
    }
}

/// A push routed here by the installation's object.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushRequest {
    pub repo_id: RepoId,
    pub installation_id: InstallationId,
    pub branch: String,
    pub delivery_id: String,
    /// The push's `before` and `forced`: what the branch history learns from.
    pub before: String,
    pub sha: String,
    pub forced: bool,
    pub pusher: String,
    pub message: String,
    pub seq: u64,
}

/// An admin's redeploy: the head of `branch` of repository `repo_id`, as GitHub reported it
/// (checked against the stored source: it may have moved meanwhile).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeployRequest {
    pub repo_id: RepoId,
    pub branch: String,
    pub sha: String,
    pub message: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenameRequest {
    pub repo_id: RepoId,
    pub installation_id: InstallationId,
    pub full_name: RepoFullName,
}

/// A project's answer to a push or a rename: `reason` is why it took nothing.
#[derive(Serialize, Deserialize)]
pub struct Answer {
    pub reason: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct CredentialsRequest {
    pub number: u64,
    pub ticket: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct StatusRequest {
    pub number: u64,
    pub signature: String,
    /// `X-Ghplane-Timestamp`, as sent (the signature covers it).
    pub timestamp: Option<String>,
    /// The raw body, as signed.
    pub body: String,
}

/// What linking a source answers: the source as shown (with the hook secret, the one time it
/// is made), and whether the project had none before (201 rather than 200).
#[derive(Serialize, Deserialize)]
pub struct SourceLinked {
    pub created: bool,
    pub source: Value,
}

/// Every operation of a `ProjectDeploy` object.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectDeployCommand {
    /// Links (or moves) the source. Reply: [`SourceLinked`].
    PutSource { linked: Linked },
    /// Reply: the source's view.
    GetSource,
    /// Unlinks. Reply: `()`.
    DeleteSource,
    /// Reply: the deployments' view.
    Deployments,
    /// Reply: [`ResealReport`].
    Reseal,
    /// Reply: [`Answer`].
    Push { push: PushRequest },
    /// Reply: [`Answer`].
    Rename { rename: RenameRequest },
    /// Reply: [`Redeployed`].
    Redeploy { redeploy: RedeployRequest },
    /// Redeems a ticket for a token. Reply: the grant.
    Credentials { request: CredentialsRequest },
    /// A deployer's signed report. Reply: `{"deployment": …}`.
    Status { report: StatusRequest },
}

impl Command for ProjectDeployCommand {
    fn idempotent(&self) -> bool {
        use ProjectDeployCommand as C;
        match self {
            C::PutSource { .. } | C::GetSource | C::DeleteSource | C::Deployments => true,
            C::Reseal
            | C::Push { .. }
            | C::Rename { .. }
            | C::Redeploy { .. }
            | C::Credentials { .. }
            | C::Status { .. } => false,
        }
    }
}

/// The handle on one project's deploy object.
pub struct ProjectDeployClient {
    object: Object,
}

impl ProjectDeployClient {
    pub fn new(env: &Env, project: &ProjectSlug) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::DEPLOYS, &object_name(project))?;
        Ok(Self { object })
    }

    pub async fn reseal(&self) -> Result<ResealReport, ApiError> {
        self.object.call(&ProjectDeployCommand::Reseal).await
    }

    pub async fn put_source(&self, linked: &Linked) -> Result<SourceLinked, ApiError> {
        let linked = linked.clone();
        self.object
            .call(&ProjectDeployCommand::PutSource { linked })
            .await
    }

    pub async fn get_source(&self) -> Result<Value, ApiError> {
        self.object.call(&ProjectDeployCommand::GetSource).await
    }

    pub async fn delete_source(&self) -> Result<(), ApiError> {
        self.object.call(&ProjectDeployCommand::DeleteSource).await
    }

    pub async fn deployments(&self) -> Result<Value, ApiError> {
        self.object.call(&ProjectDeployCommand::Deployments).await
    }

    pub async fn push(&self, push: &PushRequest) -> Result<Answer, ApiError> {
        let push = push.clone();
        self.object.call(&ProjectDeployCommand::Push { push }).await
    }

    pub async fn redeploy(&self, redeploy: &RedeployRequest) -> Result<Redeployed, ApiError> {
        let redeploy = redeploy.clone();
        self.object
            .call(&ProjectDeployCommand::Redeploy { redeploy })
            .await
    }

    pub async fn rename(&self, rename: &RenameRequest) -> Result<Answer, ApiError> {
        let rename = rename.clone();
        self.object
            .call(&ProjectDeployCommand::Rename { rename })
            .await
    }

    pub async fn credentials(&self, request: &CredentialsRequest) -> Result<Value, ApiError> {
        let request = request.clone();
        self.object
            .call(&ProjectDeployCommand::Credentials { request })
            .await
    }

    pub async fn status(&self, report: &StatusRequest) -> Result<Value, ApiError> {
        let report = report.clone();
        self.object
            .call(&ProjectDeployCommand::Status { report })
            .await
    }
}
