//! Who may mint what: fullsend's mint policy, from its Worker variables to a decision.
//!
//! **Invariant:** a [`Decision`] exists only for a caller whose verified claims pass
//! fullsend's enrollment and workflow rules ([`Policy::authorize`]) and whose request
//! passes its repos-scope rules, FOREIGN grants included; every refusal on the way is the
//! [`Denial`] fullsend answers in that situation (status and sentence). Nothing here does
//! I/O: FOREIGN grants are read by the adapter from the [`ForeignLookup`]s this module
//! names, and handed back as [`ForeignGrants`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::denial::{msg, Denial};
use super::oidc::{ActionsClaims, AuthError, DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use super::request::{RepoScope, TokenRequest};
use super::roles::{self, Permissions};
use super::text::{eq_fold, go_lower, go_quote, is_role_name, is_strict_role_name, split_csv};

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
    /// Reads and checks the variables (an unset variable and an empty one are the same,
    /// as with fullsend's `getEnv`). Every problem is reported, not just the first.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Policy, Vec<PolicyProblem>> {
        let var = |name: &str| get(name).unwrap_or_default();
        let mut problems = Vec::new();

        let custom_roles = parse_custom_roles(&var(vars::CUSTOM_ROLE_PERMISSIONS), &mut problems);

        let raw_ids = var(vars::ROLE_APP_IDS);
        let all_ids = parse_role_app_ids(&raw_ids, &mut problems);
        let role_app_ids: BTreeMap<String, String> = all_ids
            .iter()
            .filter(|(k, _)| !k.contains('/'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let legacy_app_ids_only =
            role_app_ids.is_empty() && all_ids.iter().any(|(k, _)| k.contains('/'));

        let raw_roles = var(vars::ALLOWED_ROLES);
        let allowed_roles: Vec<String> = if raw_roles.is_empty() {
            role_app_ids.keys().cloned().collect()
        } else {
            let mut roles = Vec::new();
            for entry in split_csv(&raw_roles) {
                if is_role_name(&entry) {
                    roles.push(entry);
                } else {
                    problems.push(PolicyProblem::new(
                        ProblemKind::InvalidAllowedRole,
                        format!(
                            "ALLOWED_ROLES contains invalid entry {}: must match ^[a-z][a-z0-9_-]*$",
                            go_quote(&entry)
                        ),
                    ));
                }
            }
            roles
        };
        for role in &allowed_roles {
            if !roles::is_builtin(role) && !custom_roles.contains_key(role) {
                problems.push(PolicyProblem::new(
                    ProblemKind::RoleWithoutPermissions,
                    format!(
                        "ALLOWED_ROLES contains {} but RolePermissions has no entry for it",
                        go_quote(role)
                    ),
                ));
            }
            // Exact key, as fullsend checks it; `fix` needs its own key even though it
            // signs with the coder App.
            if !role_app_ids.contains_key(role) {
                problems.push(PolicyProblem::new(
                    ProblemKind::RoleWithoutApp,
                    format!(
                        "ALLOWED_ROLES contains {} but ROLE_APP_IDS has no entry for it",
                        go_quote(role)
                    ),
                ));
            }
        }

        let issuer = match var(vars::OIDC_ISSUER).trim() {
            "" => DEFAULT_ISSUER.to_owned(),
            s => {
                if !(s.starts_with("https://") || s.starts_with("http://"))
                    || s.len() <= "https://".len()
                {
                    problems.push(PolicyProblem::new(
                        ProblemKind::InvalidIssuer,
                        format!("OIDC_ISSUER must be an http(s) URL, got {}", go_quote(s)),
                    ));
                }
                s.to_owned()
            }
        };
        let audience = match var(vars::MINT_AUDIENCE).trim() {
            "" => DEFAULT_AUDIENCE.to_owned(),
            s => s.to_owned(),
        };

        let mut workflow_host_repos: BTreeSet<String> = split_csv(&var(vars::WORKFLOW_HOST_REPOS))
            .iter()
            .map(|s| go_lower(s))
            .collect();
        if workflow_host_repos.is_empty() {
            workflow_host_repos = DEFAULT_WORKFLOW_HOST_REPOS
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Policy {
            issuer,
            audience,
            role_app_ids,
            allowed_roles,
            allowed_orgs: split_csv(&var(vars::ALLOWED_ORGS)),
            per_repo_wif_repos: split_csv(&var(vars::PER_REPO_WIF_REPOS))
                .iter()
                .map(|s| go_lower(s))
                .collect(),
            workflow_host_repos,
            allowed_workflow_files: split_csv(&var(vars::ALLOWED_WORKFLOW_FILES)),
            custom_roles,
            legacy_app_ids_only,
        })
    }

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

    fn org_allowed(&self, owner: &str) -> Result<(), String> {
        if owner.is_empty() {
            return Err("missing repository_owner claim".into());
        }
        if self
            .allowed_orgs
            .iter()
            .any(|o| o == "*" || eq_fold(o, owner))
        {
            return Ok(());
        }
        Err(format!(
            "repository_owner {} not in allowed orgs",
            go_quote(owner)
        ))
    }

    fn is_public(&self) -> bool {
        self.per_repo_wif_repos.contains("*")
    }

    fn is_per_repo(&self, repository: &str) -> bool {
        self.is_public() || self.per_repo_wif_repos.contains(&go_lower(repository))
    }

    /// fullsend's `verifyOIDCRequest` after signature verification: enrollment (per-repo
    /// via PER_REPO_WIF_REPOS, else the owner in ALLOWED_ORGS) and the workflow rules.
    /// A repository enrolled both ways (outside public mode) may run workflows allowed in
    /// either mode and gets per-org repos scope.
    pub fn authorize(&self, claims: &ActionsClaims) -> Result<CallerMode, AuthError> {
        if claims.repository_owner.is_empty() {
            return Err(AuthError::NotAuthorized(
                "missing repository_owner claim".into(),
            ));
        }
        let per_repo = self.is_per_repo(&claims.repository);
        if !per_repo {
            self.org_allowed(&claims.repository_owner)
                .map_err(AuthError::NotAuthorized)?;
        }
        let dual =
            per_repo && !self.is_public() && self.org_allowed(&claims.repository_owner).is_ok();
        let mode = match (per_repo, dual) {
            (_, true) => CallerMode::DualEnrolled,
            (true, false) => CallerMode::PerRepo,
            (false, _) => CallerMode::PerOrg,
        };
        let mut checked = self.check_workflow_ref(
            &claims.job_workflow_ref,
            &claims.repository,
            mode == CallerMode::PerRepo,
        );
        if checked.is_err() && dual {
            checked = self.check_workflow_ref(&claims.job_workflow_ref, &claims.repository, true);
        }
        checked.map_err(AuthError::WorkflowRef)?;
        Ok(mode)
    }

    /// fullsend's `ValidateWorkflowRef`, over the lowercased ref: per-repo callers run
    /// workflows of the upstream repo or a WORKFLOW_HOST_REPOS repo; per-org callers those
    /// of `{owner}/.fullsend` or upstream. Either way the file must sit directly under
    /// `.github/workflows/` (anything after it is the "basename") and be allow-listed.
    fn check_workflow_ref(
        &self,
        job_ref: &str,
        repository: &str,
        per_repo: bool,
    ) -> Result<(), String> {
        if job_ref.is_empty() {
            return Err("missing job_workflow_ref claim".into());
        }
        let lower = go_lower(job_ref);
        let upstream = format!("{UPSTREAM_REPO}/");
        let rel = if per_repo {
            lower
                .strip_prefix(&upstream)
                .or_else(|| {
                    self.workflow_host_repos
                        .iter()
                        .find_map(|h| lower.strip_prefix(&format!("{h}/")))
                })
                .ok_or("job_workflow_ref does not reference an allowed workflow host repo")?
        } else {
            let own = repository
                .find('/')
                .filter(|&i| i > 0)
                .map(|i| format!("{}/.fullsend/", go_lower(&repository[..i])));
            own.and_then(|p| lower.strip_prefix(&p))
                .or_else(|| lower.strip_prefix(&upstream))
                .ok_or("job_workflow_ref does not reference .fullsend or upstream repo")?
        };
        // Up to the `@ref`. (A ref with no path before it leaves no workflow file either way.)
        let path = rel.split_once('@').map_or(rel, |(path, _)| path);
        let file = path
            .strip_prefix(".github/workflows/")
            .ok_or("job_workflow_ref does not reference a workflow file")?;
        if self
            .allowed_workflow_files
            .iter()
            .any(|w| w == "*" || eq_fold(w, file))
        {
            Ok(())
        } else {
            Err(format!(
                "workflow file {} not in allowed list",
                go_quote(file)
            ))
        }
    }

    /// Authorization and repos scope without FOREIGN grants: what must still be read.
    fn prepare(&self, claims: &ActionsClaims, req: &TokenRequest) -> Result<Prepared, Denial> {
        let mode = self.authorize(claims).map_err(|e| Denial::auth(&e))?;
        let caller_org = go_lower(&claims.repository_owner);
        let target_org = match go_lower(req.target_org.as_deref().unwrap_or("").trim()) {
            t if t.is_empty() => caller_org.clone(),
            t => t,
        };
        let foreign = !eq_fold(&target_org, &caller_org);
        let repos = req.repos.names();
        let per_repo = mode == CallerMode::PerRepo;
        let (shape, pending) = match repos_scope(foreign, &claims.repository, repos, per_repo) {
            Ok(shape) if !foreign => (shape, Pending::Nothing),
            Ok(shape) if repos.is_empty() => (shape, Pending::CrossOrgInstallation),
            Ok(shape) => (shape, Pending::CrossOrgRepos),
            // Only the per-repo "not your own repository" refusal can be lifted, by
            // repo-level grants on every requested repository. (`repos_scope` gives it only
            // to a per-repo caller that named repositories: no guard is needed here.)
            Err(ScopeError::PerRepoCrossRepo) => (None, Pending::IntraOrgRepos),
            Err(e) => return Err(e.denial()),
        };
        Ok(Prepared {
            mode,
            caller_org,
            target_org,
            foreign,
            shape,
            pending,
        })
    }

    /// The FOREIGN variables [`Policy::check`] needs read for this request, in the order
    /// it consults them (empty when none are needed or the request is refused anyway).
    /// The adapter may stop at the first one that does not allow the caller.
    pub fn foreign_lookups(
        &self,
        claims: &ActionsClaims,
        req: &TokenRequest,
    ) -> Vec<ForeignLookup> {
        let Ok(prep) = self.prepare(claims, req) else {
            return Vec::new();
        };
        // Reading a variable needs the role's App; without one every read fails, which
        // `check` treats exactly as fullsend treats its failed read.
        let Some(app_id) = self.app_id_for(&req.role) else {
            return Vec::new();
        };
        let lookup = |scope| ForeignLookup {
            scope,
            role: req.role.clone(),
            app_id: app_id.to_owned(),
        };
        let repos_in = |org: &str| {
            req.repos
                .names()
                .iter()
                .map(|r| {
                    lookup(ForeignScope::Repo {
                        org: org.to_owned(),
                        repo: r.clone(),
                    })
                })
                .collect()
        };
        match prep.pending {
            Pending::Nothing => Vec::new(),
            Pending::IntraOrgRepos => repos_in(&prep.caller_org),
            Pending::CrossOrgRepos => repos_in(&prep.target_org),
            Pending::CrossOrgInstallation => vec![lookup(ForeignScope::Org {
                org: prep.target_org.clone(),
            })],
        }
    }

    /// The whole policy for a `/v1/token` request whose token verified: enrollment and
    /// workflow (401 "authentication failed"), repos scope (403 with fullsend's sentence),
    /// FOREIGN grants for cross-org and intra-org cross-repo access (a lookup missing from
    /// `grants` counts as a failed read), and the role's App (403 "mint failed").
    pub fn check(
        &self,
        claims: &ActionsClaims,
        req: &TokenRequest,
        grants: &ForeignGrants,
    ) -> Result<Decision, Denial> {
        let prep = self.prepare(claims, req)?;
        let lookups = self.foreign_lookups(claims, req);
        let all_allow = || {
            !lookups.is_empty()
                && lookups.iter().all(|l| {
                    grants.allows(l, &claims.repository, &claims.repository_owner) == Some(true)
                })
        };
        let foreign_grant = match prep.pending {
            Pending::Nothing => None,
            Pending::IntraOrgRepos => {
                if !all_allow() {
                    return Err(ScopeError::PerRepoCrossRepo.denial());
                }
                Some(ForeignGrantKind::IntraOrgRepos)
            }
            Pending::CrossOrgRepos => {
                if !all_allow() {
                    return Err(Denial::mint_failed(
                        403,
                        "foreign_repos_not_authorized",
                        "foreign caller not authorized for target repos",
                    ));
                }
                Some(ForeignGrantKind::CrossOrgRepos)
            }
            Pending::CrossOrgInstallation => {
                let answer = lookups
                    .first()
                    .and_then(|l| grants.allows(l, &claims.repository, &claims.repository_owner));
                match answer {
                    None => {
                        return Err(Denial::github_failure(format!(
                            "reading {} on {} failed",
                            foreign_variable_name(&req.role),
                            prep.target_org
                        )))
                    }
                    Some(false) => {
                        return Err(Denial::mint_failed(
                            403,
                            "foreign_org_not_authorized",
                            "foreign caller not authorized for target org",
                        ))
                    }
                    Some(true) => Some(ForeignGrantKind::CrossOrgInstallation),
                }
            }
        };
        let app_id = self.app_id_for(&req.role).ok_or_else(|| {
            Denial::mint_failed(
                403,
                "app_not_configured",
                format!("no app ID configured for role {}", go_quote(&req.role)),
            )
        })?;
        let permissions = self.permissions_for(&req.role).ok_or_else(|| {
            Denial::github_failure(format!(
                "no permissions defined for role {}",
                go_quote(&req.role)
            ))
        })?;
        Ok(Decision {
            role: req.role.clone(),
            app_role: roles::app_role(&req.role).to_owned(),
            app_id: app_id.to_owned(),
            target_org: prep.target_org,
            repos: req.repos.clone(),
            permissions,
            caller_mode: prep.mode,
            cross_org: prep.foreign,
            shape: prep.shape,
            foreign_grant,
        })
    }
}

struct Prepared {
    mode: CallerMode,
    caller_org: String,
    target_org: String,
    foreign: bool,
    shape: Option<ScopeShape>,
    pending: Pending,
}

enum Pending {
    Nothing,
    IntraOrgRepos,
    CrossOrgRepos,
    CrossOrgInstallation,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeError {
    SameOrgEmpty,
    PerRepoCrossRepo,
    PerOrg,
}

impl ScopeError {
    fn denial(self) -> Denial {
        match self {
            ScopeError::SameOrgEmpty => {
                Denial::new(403, "same_org_requires_repos", msg::SAME_ORG_REQUIRES_REPOS)
            }
            ScopeError::PerRepoCrossRepo => Denial::new(403, "per_repo_scope", msg::PER_REPO_SCOPE),
            ScopeError::PerOrg => Denial::new(403, "per_org_scope", msg::PER_ORG_SCOPE),
        }
    }
}

/// fullsend's `validateReposScope`.
fn repos_scope(
    foreign: bool,
    requesting_repo: &str,
    repos: &[String],
    per_repo: bool,
) -> Result<Option<ScopeShape>, ScopeError> {
    if foreign {
        return Ok((!repos.is_empty()).then_some(ScopeShape::ForeignRepoScoped));
    }
    if repos.is_empty() {
        return Err(ScopeError::SameOrgEmpty);
    }
    let bare = requesting_repo.rsplit('/').next().unwrap_or("");
    if repos.len() == 1 && eq_fold(&repos[0], bare) {
        return Ok(None);
    }
    if per_repo {
        return Err(ScopeError::PerRepoCrossRepo);
    }
    if eq_fold(bare, ".fullsend") {
        return Ok(Some(ScopeShape::FullsendAny));
    }
    if repos.len() == 1 && eq_fold(&repos[0], ".fullsend") {
        return Ok(Some(ScopeShape::EnrolledFullsend));
    }
    if let [a, b] = repos {
        if (eq_fold(a, bare) && eq_fold(b, ".fullsend"))
            || (eq_fold(b, bare) && eq_fold(a, ".fullsend"))
        {
            return Ok(Some(ScopeShape::EnrolledPair));
        }
    }
    Err(ScopeError::PerOrg)
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

/// The org or repository whose `FULLSEND_FOREIGN_<ROLE>_REPOS` variable to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignScope {
    /// An org variable: authorizes installation-wide tokens on a foreign org.
    Org { org: String },
    /// A repository variable: authorizes tokens naming that repository.
    Repo { org: String, repo: String },
}

/// One FOREIGN variable read. The adapter, as the role's App (`app_id`, key of
/// `roles::pem_secret_name(role)`): finds the installation ([`Self::installation_path`],
/// whose `account.login` must equal the org ignoring case), creates a token with
/// [`Self::token_request_body`], reads [`Self::variable_path`] with it (404 = unset), and
/// records the outcome in [`ForeignGrants`]. Any other failure is a failed read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignLookup {
    pub scope: ForeignScope,
    pub role: String,
    pub app_id: String,
}

impl ForeignLookup {
    pub fn org(&self) -> &str {
        match &self.scope {
            ForeignScope::Org { org } | ForeignScope::Repo { org, .. } => org,
        }
    }

    /// `FULLSEND_FOREIGN_<ROLE>_REPOS`.
    pub fn variable(&self) -> String {
        foreign_variable_name(&self.role)
    }

    /// fullsend's cache key (successful reads are cached [`FOREIGN_CACHE_TTL_SECS`]).
    pub fn cache_key(&self) -> String {
        match &self.scope {
            ForeignScope::Org { org } => format!("{}/{}", go_lower(org), go_lower(&self.role)),
            ForeignScope::Repo { org, repo } => format!(
                "{}/{}/{}",
                go_lower(org),
                go_lower(repo),
                go_lower(&self.role)
            ),
        }
    }

    /// GitHub REST path finding the App's installation (App JWT).
    pub fn installation_path(&self) -> String {
        match &self.scope {
            ForeignScope::Org { org } => format!("/orgs/{org}/installation"),
            ForeignScope::Repo { org, repo } => format!("/repos/{org}/{repo}/installation"),
        }
    }

    /// Body of `POST /app/installations/{id}/access_tokens` for the token that reads the
    /// variable: only the variable-read permission, and only that repository.
    pub fn token_request_body(&self) -> String {
        let body = match &self.scope {
            ForeignScope::Org { .. } => serde_json::json!({
                "permissions": roles::to_permissions(roles::FOREIGN_ORG_POLICY_PERMISSIONS),
            }),
            ForeignScope::Repo { repo, .. } => serde_json::json!({
                "permissions": roles::to_permissions(roles::FOREIGN_REPO_POLICY_PERMISSIONS),
                "repositories": [repo],
            }),
        };
        body.to_string()
    }

    /// GitHub REST path of the variable (installation token).
    pub fn variable_path(&self) -> String {
        let name = self.variable();
        match &self.scope {
            ForeignScope::Org { org } => format!("/orgs/{org}/actions/variables/{name}"),
            ForeignScope::Repo { org, repo } => {
                format!("/repos/{org}/{repo}/actions/variables/{name}")
            }
        }
    }
}

/// `FULLSEND_FOREIGN_<ROLE>_REPOS` (role uppercased, hyphens kept).
pub fn foreign_variable_name(role: &str) -> String {
    format!("FULLSEND_FOREIGN_{}_REPOS", role.to_uppercase())
}

/// A FOREIGN variable's value: comma list of `owner/repo` (that repository) or `owner`
/// (any repository of that owner).
pub fn parse_foreign_allowlist(value: &str) -> Vec<String> {
    split_csv(value)
}

/// Whether an allow-list admits the calling workflow's repository (case-insensitive).
pub fn caller_allowed(allowlist: &[String], repository: &str, repository_owner: &str) -> bool {
    allowlist.iter().any(|e| {
        if e.contains('/') {
            eq_fold(e, repository)
        } else {
            eq_fold(e, repository_owner)
        }
    })
}

/// Decodes a 200 answer of GitHub's "get a variable" (`{"name","value"}`) to its value.
/// A 404 is not an answer to decode: it means unset, record `None`.
pub fn variable_value(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Var {
        #[serde(default)]
        value: Option<String>,
    }
    serde_json::from_slice::<Var>(body)
        .ok()
        .map(|v| v.value.unwrap_or_default())
}

/// The FOREIGN variables the adapter read, by lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForeignGrants {
    /// Cache key → allow-list, or `None` for a failed read.
    read: BTreeMap<String, Option<Vec<String>>>,
}

impl ForeignGrants {
    pub fn new() -> Self {
        Self::default()
    }

    /// A read that answered: `Some(value)` (200) or `None` (404, unset).
    pub fn record_value(&mut self, lookup: &ForeignLookup, value: Option<&str>) {
        let list = value.map(parse_foreign_allowlist).unwrap_or_default();
        self.read.insert(lookup.cache_key(), Some(list));
    }

    /// An allow-list from the adapter's cache.
    pub fn record_allowlist(&mut self, lookup: &ForeignLookup, allowlist: Vec<String>) {
        self.read.insert(lookup.cache_key(), Some(allowlist));
    }

    /// A read that failed (installation lookup, token, or variable call).
    pub fn record_failure(&mut self, lookup: &ForeignLookup) {
        self.read.insert(lookup.cache_key(), None);
    }

    /// The allow-list read for `lookup`, to cache; `None` if it failed or was not read.
    pub fn allowlist(&self, lookup: &ForeignLookup) -> Option<&[String]> {
        self.read.get(&lookup.cache_key())?.as_deref()
    }

    /// `None` when the read failed or is missing.
    pub fn allows(&self, lookup: &ForeignLookup, repository: &str, owner: &str) -> Option<bool> {
        self.allowlist(lookup)
            .map(|list| caller_allowed(list, repository, owner))
    }
}

fn parse_custom_roles(
    raw: &str,
    problems: &mut Vec<PolicyProblem>,
) -> BTreeMap<String, Permissions> {
    let mut out = BTreeMap::new();
    if raw.is_empty() {
        return out;
    }
    let bad = |problems: &mut Vec<PolicyProblem>, why: String| {
        problems.push(PolicyProblem::new(
            ProblemKind::InvalidCustomRoles,
            format!("failed to parse CUSTOM_ROLE_PERMISSIONS: {why}"),
        ));
    };
    let v: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            bad(problems, e.to_string());
            return out;
        }
    };
    let roles_obj = match v {
        Value::Null => return out,
        Value::Object(m) => m,
        _ => {
            bad(
                problems,
                "want a JSON object of role → {permission: level}".into(),
            );
            return out;
        }
    };
    let mut parsed = BTreeMap::new();
    for (role, perms) in roles_obj {
        let perms: BTreeMap<String, String> = match perms {
            Value::Null => BTreeMap::new(),
            Value::Object(p) => {
                let mut m = BTreeMap::new();
                for (k, level) in p {
                    match level {
                        Value::String(s) => m.insert(k, s),
                        Value::Null => m.insert(k, String::new()),
                        _ => {
                            bad(
                                problems,
                                format!("role {}: levels must be strings", go_quote(&role)),
                            );
                            return out;
                        }
                    };
                }
                m
            }
            _ => {
                bad(
                    problems,
                    format!("role {}: want an object", go_quote(&role)),
                );
                return out;
            }
        };
        parsed.insert(role, perms);
    }
    let before = problems.len();
    let register = |m: String| {
        PolicyProblem::new(
            ProblemKind::InvalidCustomRoles,
            format!("registering custom role permissions: {m}"),
        )
    };
    for (role, perms) in &parsed {
        if !is_strict_role_name(role) {
            problems.push(register(format!(
                "custom role name invalid: invalid role name {}",
                go_quote(role)
            )));
            continue;
        }
        if roles::is_builtin(role) {
            problems.push(register(format!(
                "custom role {} collides with built-in role",
                go_quote(role)
            )));
            continue;
        }
        for (perm, level) in perms {
            if level != "read" && level != "write" {
                problems.push(register(format!(
                    "custom role {}: permission {} has invalid level {} (must be read or write)",
                    go_quote(role),
                    go_quote(perm),
                    go_quote(level)
                )));
            }
        }
    }
    if problems.len() == before {
        out = parsed;
    }
    out
}

/// ROLE_APP_IDS as fullsend's Worker and Go read it: present, a JSON object (the Worker
/// says which type it got), secret names not colliding, every value a string.
fn parse_role_app_ids(raw: &str, problems: &mut Vec<PolicyProblem>) -> Vec<(String, String)> {
    if raw.is_empty() {
        problems.push(PolicyProblem::new(
            ProblemKind::MissingRoleAppIds,
            "missing required Worker env: ROLE_APP_IDS",
        ));
        return Vec::new();
    }
    let invalid = |m: String| PolicyProblem::new(ProblemKind::InvalidRoleAppIds, m);
    let entries = match serde_json::from_str::<JsonTop>(raw) {
        Err(e) => {
            problems.push(invalid(format!("failed to parse ROLE_APP_IDS: {e}")));
            return Vec::new();
        }
        Ok(JsonTop::Other(kind)) => {
            problems.push(invalid(format!(
                "ROLE_APP_IDS must be a JSON object (got {kind})"
            )));
            return Vec::new();
        }
        Ok(JsonTop::Object(entries)) => entries,
    };

    // The Worker stores each role's key as `<ROLE>_APP_PEM`, hyphens as underscores.
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut collisions = Vec::new();
    for (role, _) in &entries {
        let secret = role.replace('-', "_").to_uppercase();
        // `entries` holds each key once (`JsonTop` merges a repeated key), so a match is
        // always another role.
        match seen.iter().find(|(s, _)| *s == secret) {
            Some((_, first)) => collisions.push(format!(
                "\"{first}\" and \"{role}\" both map to secret {secret}_APP_PEM"
            )),
            None => seen.push((secret, role)),
        }
    }
    if !collisions.is_empty() {
        problems.push(PolicyProblem::new(
            ProblemKind::SecretNameCollision,
            format!(
                "role name secret collision after hyphen→underscore normalization: {}",
                collisions.join("; ")
            ),
        ));
    }

    let mut ids = Vec::new();
    for (role, value) in entries {
        match value {
            Value::String(s) => ids.push((role, s)),
            Value::Null => ids.push((role, String::new())),
            other => {
                problems.push(invalid(format!(
                    "failed to parse ROLE_APP_IDS: json: cannot unmarshal {} into Go value of type string",
                    go_json_kind(&other)
                )));
                return Vec::new();
            }
        }
    }
    ids
}

fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::String(_) => "string",
        Value::Null => "null",
    }
}

/// A JSON document's top level: an object's entries in document order (a repeated key
/// keeps its first position and last value, as `JSON.parse` does), or its JS type name.
enum JsonTop {
    Object(Vec<(String, Value)>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for JsonTop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonTop;
            // Every JSON type has its `visit_` below, so serde_json never asks what was
            // expected: no change here can be observed (an equivalent mutant).
            #[cfg_attr(test, mutants::skip)]
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonTop, A::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    match entries.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => entries.push((k, v)),
                    }
                }
                Ok(JsonTop::Object(entries))
            }
            fn visit_unit<E>(self) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("null"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<JsonTop, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(JsonTop::Other("array"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("string"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests;
