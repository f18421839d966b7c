//! The small types several project files share: a leaf that imports none of them, so
//! `record`, `input` and `create_repo` each depend on it and never on each other in a loop.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecStatus {
    Draft,
    Interviewing,
    Review,
}

impl SpecStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SpecStatus::Draft => "draft",
            SpecStatus::Interviewing => "interviewing",
            SpecStatus::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<SpecStatus> {
        match s {
            "draft" => Some(SpecStatus::Draft),
            "interviewing" => Some(SpecStatus::Interviewing),
            "review" => Some(SpecStatus::Review),
            _ => None,
        }
    }

    /// A move requested through PATCH: one step forward, or staying put (a no-op).
    pub fn check_move(self, to: SpecStatus) -> Result<(), ProjectError> {
        use SpecStatus::*;
        match (self, to) {
            (a, b) if a == b => Ok(()),
            (Draft, Interviewing) | (Interviewing, Review) => Ok(()),
            (from, to) => Err(ProjectError::IllegalStatusTransition { from, to }),
        }
    }

    /// Approval: the spec must at least be under discussion; approving a reviewed spec again
    /// is allowed (it retries a failed repository creation).
    pub fn check_approve(self) -> Result<(), ProjectError> {
        match self {
            SpecStatus::Interviewing | SpecStatus::Review => Ok(()),
            from => Err(ProjectError::IllegalStatusTransition {
                from,
                to: SpecStatus::Review,
            }),
        }
    }
}

impl std::fmt::Display for SpecStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProjectError {
    #[error("the spec status cannot move from {from} to {to}")]
    IllegalStatusTransition { from: SpecStatus, to: SpecStatus },
}

impl ProjectError {
    pub fn code(&self) -> &'static str {
        match self {
            ProjectError::IllegalStatusTransition { .. } => "illegal_status_transition",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ProjectError::IllegalStatusTransition { .. } => 409,
        }
    }
}

impl From<ProjectError> for crate::ApiError {
    fn from(e: ProjectError) -> crate::ApiError {
        match e {
            ProjectError::IllegalStatusTransition { .. } => {
                crate::ApiError::IllegalStatusTransition(e.to_string())
            }
        }
    }
}

/// Identifies one run of repository creation, so a late answer from an older run is told
/// apart from the current one. Made by the caller from random bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttemptId(String);

impl AttemptId {
    pub fn from_random(random: [u8; 6]) -> AttemptId {
        AttemptId(crate::hex::encode(&random))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a repository was not created, as the admin sees it in `repo.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepoFailure {
    /// Both the slug and a suffixed name exist already.
    #[serde(rename = "GITHUB_REPO_NAME_TAKEN")]
    NameTaken,
    #[serde(rename = "GITHUB_UNAUTHORIZED")]
    Unauthorized,
    #[serde(rename = "GITHUB_FORBIDDEN")]
    Forbidden,
    /// Network failure, GitHub 5xx, or an unreadable answer, twice in a row.
    #[serde(rename = "GITHUB_UNAVAILABLE")]
    Unavailable,
    #[serde(rename = "GITHUB_RATE_LIMITED")]
    RateLimited,
    /// 404: the org does not exist or the app is not installed on it.
    #[serde(rename = "GITHUB_ORG_NOT_FOUND")]
    OrgNotFound,
    /// Any other refusal (a 422 that is not about the name, an unexpected status).
    #[serde(rename = "GITHUB_REPO_REJECTED")]
    Rejected,
    /// `GITHUB_ORG` is not set, or no installation covers it; decided by the adapter.
    #[serde(rename = "GITHUB_ORG_NOT_CONFIGURED")]
    OrgNotConfigured,
}

impl RepoFailure {
    pub fn code(self) -> &'static str {
        match self {
            RepoFailure::NameTaken => "GITHUB_REPO_NAME_TAKEN",
            RepoFailure::Unauthorized => "GITHUB_UNAUTHORIZED",
            RepoFailure::Forbidden => "GITHUB_FORBIDDEN",
            RepoFailure::Unavailable => "GITHUB_UNAVAILABLE",
            RepoFailure::RateLimited => "GITHUB_RATE_LIMITED",
            RepoFailure::OrgNotFound => "GITHUB_ORG_NOT_FOUND",
            RepoFailure::Rejected => "GITHUB_REPO_REJECTED",
            RepoFailure::OrgNotConfigured => "GITHUB_ORG_NOT_CONFIGURED",
        }
    }

    /// What the admin should do about it.
    pub fn message(self) -> &'static str {
        match self {
            RepoFailure::NameTaken => {
                "a repository with the project's name (and a suffixed variant) already exists in the organization; choose one with PUT /projects/{slug}/github-repo"
            }
            RepoFailure::Unauthorized => {
                "GitHub rejected the org credentials; check the org app's id and private key, or GITHUB_TOKEN"
            }
            RepoFailure::Forbidden => {
                "the GitHub App (or GITHUB_TOKEN) may not create repositories in the organization: grant it the Administration (write) repository permission and accept it on the installation"
            }
            RepoFailure::Unavailable => "GitHub could not be reached; approve again to retry",
            RepoFailure::RateLimited => "GitHub's rate limit was hit; approve again later",
            RepoFailure::OrgNotFound => {
                "the organization in GITHUB_ORG does not exist or the app is not installed on it"
            }
            RepoFailure::Rejected => "GitHub refused to create the repository",
            RepoFailure::OrgNotConfigured => {
                "GITHUB_ORG is not configured, or neither GITHUB_ORG_INSTALLATION_ID (a configured installation of the app on it) nor GITHUB_TOKEN is set"
            }
        }
    }

    /// Getting the org's installation token failed with the error `code` (an [`ApiError`]
    /// code, as the installation's object rendered it): no repository was attempted.
    ///
    /// [`ApiError`]: crate::error::ApiError
    pub fn from_token_error(code: &str) -> RepoFailure {
        match code {
            "github_unauthorized" => RepoFailure::Unauthorized,
            "github_forbidden" => RepoFailure::Forbidden,
            "github_rate_limited" => RepoFailure::RateLimited,
            "github_rejected" => RepoFailure::Rejected,
            // The installation is not a configured tenant, its app is gone, GitHub does not
            // know it, or it is suspended: the org is not usable as configured.
            "installation_not_found"
            | "app_not_found"
            | "unknown_app"
            | "github_not_found"
            | "installation_suspended"
            | "server_misconfigured"
            | "forbidden"
            | "validation_failed" => RepoFailure::OrgNotConfigured,
            _ => RepoFailure::Unavailable,
        }
    }

    /// The try may have created the repository even though we saw a failure.
    pub fn outcome_unknown(self) -> bool {
        self == RepoFailure::Unavailable
    }
}
