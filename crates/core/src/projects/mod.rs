//! Client projects and their GitHub repository. Invariants: every project is addressed by a
//! valid [`ProjectSlug`]; its spec status only moves forward; approval creates at most one
//! private repository in the org, and a manual repository choice always wins.
//!
//! Everything here is a pure function of the stored [`Project`], the request, `now` and the
//! random bytes the caller passes; the adapter performs the GitHub calls in between.

pub mod approval;
pub mod create_repo;
pub mod github_repo;
pub mod input;
pub mod org;
pub mod record;
pub mod slug;
pub mod types;

pub use approval::{
    approve, manual_override, on_repo_created, on_repo_failed, on_repo_outcome, ApproveStep,
    CreateRepoPlan, RepoOutcome, RepoReport, SkipReason, AUTO_CREATE_STALE_MS,
};
pub use create_repo::{
    create_repo_body, is_our_repo, next_after_failure, repo_description, retry_name, CreateRepoNext,
};
pub use github_repo::{GhRepository, RepoListing};
pub use input::{GithubRepoInput, NewProject, ProjectPatch};
pub use org::{org_setting, org_token_scope, OrgAuth, OrgNotConfigured, OrgSetting};
pub use record::{
    AutoCreate, GithubRepo, HistoryEntry, HistoryEvent, Project, RepoOrigin, MAX_HISTORY,
};
pub use slug::{ProjectSlug, INDEX_OBJECT_NAME};
pub use types::{AttemptId, ProjectError, RepoFailure, SpecStatus};
