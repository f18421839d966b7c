//! Who may mint what: fullsend's mint policy, from its Worker variables to a decision.
//!
//! **Invariant:** a [`Decision`] exists only for a caller whose verified claims pass
//! fullsend's enrollment and workflow rules ([`Policy::authorize`]) and whose request
//! passes its repos-scope rules, FOREIGN grants included; every refusal on the way is the
//! [`Denial`](super::Denial) fullsend answers in that situation (status and sentence).
//! Nothing here does I/O: FOREIGN grants are read by the adapter from the
//! [`ForeignLookup`]s this module names, and handed back as [`ForeignGrants`].
//!
//! Files by concern: `config` reads the Worker variables, `authorize` decides, `foreign`
//! describes the FOREIGN reads and holds their answers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::request::RepoScope;
use super::roles::{self, Permissions};
use super::text::eq_fold;

mod authorize;
mod config;
mod foreign;

// What the tests name through `super::*`.
pub use foreign::{
    caller_allowed, foreign_variable_name, parse_foreign_allowlist, variable_value, ForeignGrants,
    ForeignLookup, ForeignScope,
};
#[cfg(test)]
use {
    super::oidc::{ActionsClaims, AuthError, DEFAULT_AUDIENCE, DEFAULT_ISSUER},
    super::request::TokenRequest,
    authorize::{repos_scope, ScopeError},
};

/// The upstream repository whose workflows every caller may run.
pub const UPSTREAM_REPO: &str = "fullsend-ai/fullsend";
/// `WORKFLOW_HOST_REPOS` when unset.
pub const DEFAULT_WORKFLOW_HOST_REPOS: &[&str] = &[UPSTREAM_REPO];
/// fullsend caches FOREIGN allow-lists (successful reads only) this long.
pub const FOREIGN_CACHE_TTL_SECS: i64 = 60;
/// fullsend's `/health` reason when only legacy `org/role` keys are configured.
pub const LEGACY_APP_IDS_REASON: &str =
    "ROLE_APP_IDS contains legacy org/role keys but no role-only keys; migration required";

/// The Worker variables the policy reads.
pub mod vars {
    /// JSON object role → App ID (a string); `org/role` keys are legacy and ignored.
    pub const ROLE_APP_IDS: &str = "ROLE_APP_IDS";
    /// Comma list; unset = every role-only key of ROLE_APP_IDS.
    pub const ALLOWED_ROLES: &str = "ALLOWED_ROLES";
    /// Comma list of orgs for per-org callers; `*` = any org.
    pub const ALLOWED_ORGS: &str = "ALLOWED_ORGS";
    /// Comma list of `owner/repo` per-repo callers; `*` = every repository (public mint).
    pub const PER_REPO_WIF_REPOS: &str = "PER_REPO_WIF_REPOS";
    /// Comma list of `owner/repo` whose workflows per-repo callers may run.
    pub const WORKFLOW_HOST_REPOS: &str = "WORKFLOW_HOST_REPOS";
    /// Comma list of workflow basenames; `*` = any; unset = none.
    pub const ALLOWED_WORKFLOW_FILES: &str = "ALLOWED_WORKFLOW_FILES";
    /// JSON object role → {permission: "read"|"write"} for roles fullsend does not define.
    pub const CUSTOM_ROLE_PERMISSIONS: &str = "CUSTOM_ROLE_PERMISSIONS";
    /// ghplane only (fullsend hard-codes it): the OIDC issuer.
    pub const OIDC_ISSUER: &str = "OIDC_ISSUER";
    /// ghplane only (fullsend hard-codes it): the audience tokens must carry.
    pub const MINT_AUDIENCE: &str = "MINT_AUDIENCE";
}

/// What kind of configuration problem (see [`PolicyProblem`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// ROLE_APP_IDS unset or empty: fullsend's Worker refuses to start. An adapter that
    /// treats the mint as optional may read this as "mint disabled".
    MissingRoleAppIds,
    InvalidRoleAppIds,
    /// Two roles whose Worker secret names collide (`my-role` / `my_role`).
    SecretNameCollision,
    InvalidCustomRoles,
    InvalidAllowedRole,
    RoleWithoutPermissions,
    RoleWithoutApp,
    InvalidIssuer,
    /// Not fatal: `fix` is allowed but no `coder` App is configured, so `fix` mints fail.
    FixWithoutCoderApp,
}

/// One thing wrong with the configuration, in fullsend's words where fullsend has words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyProblem {
    pub kind: ProblemKind,
    pub message: String,
}

impl PolicyProblem {
    fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        PolicyProblem {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The mint's configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    issuer: String,
    audience: String,
    /// Role-only keys of ROLE_APP_IDS.
    role_app_ids: BTreeMap<String, String>,
    allowed_roles: Vec<String>,
    allowed_orgs: Vec<String>,
    /// Lowercased.
    per_repo_wif_repos: BTreeSet<String>,
    /// Lowercased.
    workflow_host_repos: BTreeSet<String>,
    allowed_workflow_files: Vec<String>,
    custom_roles: BTreeMap<String, Permissions>,
    legacy_app_ids_only: bool,
}

impl Policy {
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The roles a request may name, in configured order (what `/v1/status` lists).
    pub fn allowed_roles(&self) -> &[String] {
        &self.allowed_roles
    }

    pub fn allows_role(&self, role: &str) -> bool {
        self.allowed_roles.iter().any(|r| r == role)
    }

    /// Sorted, lowercased.
    pub fn workflow_host_repos(&self) -> impl Iterator<Item = &str> {
        self.workflow_host_repos.iter().map(String::as_str)
    }

    /// `Some(reason)` when `/health` must answer 503 although the mint started: only
    /// legacy `org/role` keys in ROLE_APP_IDS.
    pub fn health_problem(&self) -> Option<&'static str> {
        self.legacy_app_ids_only.then_some(LEGACY_APP_IDS_REASON)
    }

    /// Non-fatal problems worth logging at start-up.
    pub fn warnings(&self) -> Vec<PolicyProblem> {
        let mut w = Vec::new();
        if self.allows_role("fix") && self.app_id_for("fix").is_none() {
            w.push(PolicyProblem::new(
                ProblemKind::FixWithoutCoderApp,
                "ALLOWED_ROLES contains \"fix\" but ROLE_APP_IDS has no \"coder\" entry; fix mints will fail",
            ));
        }
        w
    }

    /// The App that signs for `role` (fix → coder), as fullsend's `lookupRoleAppID`: exact
    /// key first, then a case-insensitive one; an empty ID counts as none.
    pub fn app_id_for(&self, role: &str) -> Option<&str> {
        let key = roles::app_role(role);
        self.role_app_ids
            .get(key)
            .or_else(|| {
                self.role_app_ids
                    .iter()
                    .find(|(k, _)| eq_fold(k, key))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
            .filter(|id| !id.is_empty())
    }

    /// The permissions a token for `role` asks for: fullsend's built-in row, or the
    /// CUSTOM_ROLE_PERMISSIONS row of a role fullsend does not define.
    pub fn permissions_for(&self, role: &str) -> Option<Permissions> {
        roles::builtin_permissions(role).or_else(|| self.custom_roles.get(role).cloned())
    }
}

/// How the caller is enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerMode {
    /// Owner in ALLOWED_ORGS; workflows from `{owner}/.fullsend` or upstream.
    PerOrg,
    /// Repository in PER_REPO_WIF_REPOS (or `*`); workflows from host repos or upstream;
    /// tokens for its own repository only (or via repo-level FOREIGN grants).
    PerRepo,
    /// Both: workflows from either set, per-org repos scope.
    DualEnrolled,
}

/// Which of the allowed same-org shapes a request took beyond "exactly my repository".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeShape {
    /// Cross-org, named repos (authorized by repo-level FOREIGN grants).
    ForeignRepoScoped,
    /// The caller is `{org}/.fullsend`: any repos of its org.
    FullsendAny,
    /// `[".fullsend"]`.
    EnrolledFullsend,
    /// The caller's repository and `.fullsend`.
    EnrolledPair,
}

/// Which FOREIGN grant authorized a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForeignGrantKind {
    IntraOrgRepos,
    CrossOrgRepos,
    CrossOrgInstallation,
}

/// What the policy allows: which App mints, for which org, repositories and permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub role: String,
    /// The role whose App and key sign (`coder` for `fix`).
    pub app_role: String,
    /// As configured in ROLE_APP_IDS: the App JWT's `iss`.
    pub app_id: String,
    /// Lowercased; the caller's own org unless a different `target_org` was asked for.
    pub target_org: String,
    pub repos: RepoScope,
    /// What the installation token is asked to carry.
    pub permissions: Permissions,
    pub caller_mode: CallerMode,
    pub cross_org: bool,
    pub shape: Option<ScopeShape>,
    pub foreign_grant: Option<ForeignGrantKind>,
}

#[cfg(test)]
mod tests;
