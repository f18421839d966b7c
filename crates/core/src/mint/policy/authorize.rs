//! fullsend's authorization: enrollment and workflow rules, the repos scope, and the
//! FOREIGN grants a request needs, up to a [`Decision`].

use super::super::denial::{msg, Denial};
use super::super::oidc::{ActionsClaims, AuthError};
use super::super::request::TokenRequest;
use super::super::roles;
use super::super::text::{eq_fold, go_lower, go_quote};
use super::{
    foreign_variable_name, CallerMode, Decision, ForeignGrantKind, ForeignGrants, ForeignLookup,
    ForeignScope, Policy, ScopeShape, UPSTREAM_REPO,
};

impl Policy {
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
    pub(super) fn check_workflow_ref(
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScopeError {
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
pub(super) fn repos_scope(
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
