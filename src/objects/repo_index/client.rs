//! The handle on one repository's index entry (`RepoIndex`, named `repo-<repo id>`): its
//! command enum and client. A leaf: it imports no other object.

use ghplane_core::deploy::RepoLink;
use ghplane_core::ids::RepoId;
use ghplane_core::projects::ProjectSlug;
use ghplane_core::rpc::Command;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

/// The one place the object's name is formatted.
pub fn object_name(repo: RepoId) -> String {
    format!("repo-{repo}")
}

/// Every operation of a `RepoIndex` object.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoIndexCommand {
    /// Reply: the projects that follow the repository.
    Links,
    /// Adds or replaces a project's link. Reply: `()`.
    Upsert { link: RepoLink },
    /// Drops a project's link (nothing to drop is fine). Reply: `()`.
    Remove { project: ProjectSlug },
}

impl Command for RepoIndexCommand {
    fn idempotent(&self) -> bool {
        // A read, and writes that set or drop one project's link.
        true
    }
}

/// A handle on one repository's index entry.
pub struct RepoIndexClient {
    object: Object,
}

impl RepoIndexClient {
    pub fn new(env: &Env, repo: RepoId) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::REPO_INDEX, &object_name(repo))?;
        Ok(Self { object })
    }

    pub async fn links(&self) -> Result<Vec<RepoLink>, ApiError> {
        self.object.call(&RepoIndexCommand::Links).await
    }

    pub async fn upsert(&self, link: &RepoLink) -> Result<(), ApiError> {
        let link = link.clone();
        self.object.call(&RepoIndexCommand::Upsert { link }).await
    }

    pub async fn remove(&self, project: &ProjectSlug) -> Result<(), ApiError> {
        let project = project.clone();
        self.object
            .call(&RepoIndexCommand::Remove { project })
            .await
    }
}
