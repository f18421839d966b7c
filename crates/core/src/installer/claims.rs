//! The claims of one owner's repositories: which mode serves each, and where an org-level
//! installation reaches a repository a dedicated app owns.
//!
//! **Invariant:** [`Claims::apply`] is the only way claims change, and the owner's claim
//! object runs it one request at a time, so every check-then-claim is atomic. A repository is
//! matched by GitHub id when both sides know it, by case-insensitive `owner/name` until then.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ids::{AppId, InstallationId, RepoFullName};
use crate::installer::{same_name, InstallerError, InstallerId};
use crate::tenancy::config::Repository;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dedicated {
    pub repository: RepoFullName,
    pub repo_id: Option<u64>,
    /// `None` for a `repo`-mode app registered by hand (`PUT /api/apps`).
    pub installer: Option<InstallerId>,
    pub app_id: Option<AppId>,
    pub installation_id: Option<InstallationId>,
    pub since: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgInstaller {
    pub installer: InstallerId,
    pub app_id: Option<AppId>,
    pub installation_id: Option<InstallationId>,
    pub excluded: Vec<RepoFullName>,
    pub enrolled: Vec<RepoFullName>,
    pub since: String,
}

/// What an org-level installation reaches, as its webhooks say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    pub installation_id: InstallationId,
    pub app_id: AppId,
    /// `repository_selection: all`: every repository of the owner, present and future.
    pub all: bool,
    pub repositories: Vec<Repository>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub repository: RepoFullName,
    pub installer: Option<InstallerId>,
    pub org_installation: InstallationId,
    pub since: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    #[serde(default)]
    pub dedicated: Vec<Dedicated>,
    #[serde(default)]
    pub org_installers: Vec<OrgInstaller>,
    #[serde(default)]
    pub coverage: Vec<Coverage>,
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
}

/// One request to an owner's claim object.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum ClaimRequest {
    /// A `repo` installer is created.
    ClaimRepo {
        installer: InstallerId,
        repository: RepoFullName,
    },
    /// An `org` installer is created.
    ClaimOrg {
        installer: InstallerId,
        excluded: Vec<RepoFullName>,
    },
    /// The installer's app now exists.
    SetApp {
        installer: InstallerId,
        app_id: AppId,
    },
    /// A `repo`-mode app was installed; `misconfiguration` when it does not cover exactly
    /// its repository.
    Bind {
        app_id: AppId,
        repository: RepoFullName,
        installation_id: InstallationId,
        repo_id: Option<u64>,
        misconfiguration: Option<String>,
    },
    /// An org-level installation's repositories, as they now are.
    Cover {
        installation_id: InstallationId,
        app_id: AppId,
        all: bool,
        repositories: Vec<Repository>,
    },
    Enroll {
        installer: InstallerId,
        repositories: Vec<RepoFullName>,
    },
    /// The installer is uninstalled: its claims and conflicts go.
    Release { installer: InstallerId },
    /// `installation.deleted`, of either mode.
    ReleaseInstallation { installation_id: InstallationId },
    View {
        installer: InstallerId,
        installation_id: Option<InstallationId>,
    },
}

impl crate::rpc::Command for ClaimRequest {
    /// Each request moves the owner's claims from the state it finds; sent twice, the second
    /// could answer a conflict with the first, so none is resent.
    fn idempotent(&self) -> bool {
        false
    }
}

/// An org installation whose withheld repositories changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Affected {
    pub installation_id: InstallationId,
    pub withheld: Vec<RepoFullName>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimAnswer {
    /// The installer a `Bind`, `Cover` or `ReleaseInstallation` concerned.
    pub installer: Option<InstallerId>,
    pub misconfiguration: Option<String>,
    /// `Cover`: what the org installation must not serve.
    pub withheld: Vec<RepoFullName>,
    /// `Cover`: conflicts this request found for the first time.
    pub new_conflicts: Vec<RepoFullName>,
    pub affected: Vec<Affected>,
    pub claims: Vec<Value>,
    pub conflicts: Vec<Value>,
}

fn same_repo(name: &RepoFullName, id: Option<u64>, r: &Repository) -> bool {
    matches!((id, r.id), (Some(a), Some(b)) if a == b) || same_name(name, &r.full_name)
}

impl Coverage {
    fn covers(&self, name: &RepoFullName, id: Option<u64>) -> bool {
        self.all || self.repositories.iter().any(|r| same_repo(name, id, r))
    }
}

fn holder(d: &Dedicated) -> String {
    match (&d.installer, d.app_id) {
        (Some(i), _) => i.to_string(),
        (None, Some(a)) => format!("app {a}"),
        (None, None) => "unknown".into(),
    }
}

impl Claims {
    pub fn apply(&mut self, req: ClaimRequest, now: &str) -> Result<ClaimAnswer, InstallerError> {
        let mut answer = ClaimAnswer::default();
        match req {
            ClaimRequest::ClaimRepo {
                installer,
                repository,
            } => self.claim_repo(Some(installer), &repository, None, now)?,
            ClaimRequest::ClaimOrg {
                installer,
                excluded,
            } => self.claim_org(installer, excluded, now)?,
            ClaimRequest::SetApp { installer, app_id } => {
                for d in self
                    .dedicated
                    .iter_mut()
                    .filter(|d| d.installer.as_ref() == Some(&installer))
                {
                    d.app_id = Some(app_id);
                }
                for o in self
                    .org_installers
                    .iter_mut()
                    .filter(|o| o.installer == installer)
                {
                    o.app_id = Some(app_id);
                }
            }
            ClaimRequest::Bind {
                app_id,
                repository,
                installation_id,
                repo_id,
                misconfiguration,
            } => {
                let (installer, misconfiguration) = self.bind(
                    app_id,
                    &repository,
                    installation_id,
                    repo_id,
                    misconfiguration,
                    now,
                );
                answer.installer = installer;
                answer.misconfiguration = misconfiguration;
            }
            ClaimRequest::Cover {
                installation_id,
                app_id,
                all,
                repositories,
            } => {
                let coverage = Coverage {
                    installation_id,
                    app_id,
                    all,
                    repositories,
                };
                self.coverage
                    .retain(|c| c.installation_id != installation_id);
                self.coverage.push(coverage);
                if let Some(o) = self
                    .org_installers
                    .iter_mut()
                    .find(|o| o.app_id == Some(app_id))
                {
                    o.installation_id = Some(installation_id);
                    answer.installer = Some(o.installer.clone());
                }
                answer.withheld = self.withheld_for(installation_id);
                answer.new_conflicts = self.refresh_conflicts(installation_id, now);
            }
            ClaimRequest::Enroll {
                installer,
                repositories,
            } => {
                if let Some(r) = repositories
                    .iter()
                    .find_map(|r| self.dedicated.iter().find(|d| same_name(&d.repository, r)))
                {
                    return Err(InstallerError::RepositoryClaimed {
                        repository: r.repository.to_string(),
                        holder: holder(r),
                    });
                }
                let o = self
                    .org_installers
                    .iter_mut()
                    .find(|o| o.installer == installer)
                    .ok_or_else(|| InstallerError::NotFound(installer.to_string()))?;
                for r in repositories {
                    o.excluded.retain(|e| !same_name(e, &r));
                    if !o.enrolled.iter().any(|e| same_name(e, &r)) {
                        o.enrolled.push(r);
                    }
                }
            }
            ClaimRequest::Release { installer } => {
                answer.affected = self.release(&installer);
            }
            ClaimRequest::ReleaseInstallation { installation_id } => {
                let dedicated = self
                    .dedicated
                    .iter()
                    .find(|d| d.installation_id == Some(installation_id))
                    .cloned();
                let org = self
                    .org_installers
                    .iter()
                    .find(|o| o.installation_id == Some(installation_id))
                    .map(|o| o.installer.clone());
                if let Some(d) = dedicated {
                    answer.installer = d.installer.clone();
                    match &d.installer {
                        Some(i) => answer.affected = self.release(i),
                        None => {
                            self.dedicated
                                .retain(|x| x.installation_id != Some(installation_id));
                            answer.affected = self.recompute();
                        }
                    }
                } else if let Some(i) = org {
                    answer.installer = Some(i.clone());
                    answer.affected = self.release(&i);
                }
                self.coverage
                    .retain(|c| c.installation_id != installation_id);
                self.conflicts
                    .retain(|c| c.org_installation != installation_id);
            }
            ClaimRequest::View {
                installer,
                installation_id,
            } => {
                answer.claims = self.claims_of(&installer);
                answer.conflicts = self
                    .conflicts
                    .iter()
                    .filter(|c| {
                        c.installer.as_ref() == Some(&installer)
                            || (installation_id.is_some()
                                && Some(c.org_installation) == installation_id)
                    })
                    .map(|c| {
                        json!({"repository": c.repository, "dedicatedInstaller": c.installer,
                            "orgInstallation": c.org_installation, "since": c.since})
                    })
                    .collect();
            }
        }
        Ok(answer)
    }

    fn claim_repo(
        &mut self,
        installer: Option<InstallerId>,
        repository: &RepoFullName,
        repo_id: Option<u64>,
        now: &str,
    ) -> Result<(), InstallerError> {
        if let Some(d) = self
            .dedicated
            .iter()
            .find(|d| same_name(&d.repository, repository))
        {
            if installer.is_some() && d.installer == installer {
                return Ok(());
            }
            return Err(InstallerError::RepositoryClaimed {
                repository: repository.to_string(),
                holder: holder(d),
            });
        }
        if let Some(c) = self.coverage.iter().find(|c| c.covers(repository, repo_id)) {
            return Err(InstallerError::CoveredByOrg {
                repository: repository.to_string(),
                by: format!(
                    "the org-level installation {}{}",
                    c.installation_id,
                    if c.all { " (all repositories)" } else { "" }
                ),
            });
        }
        if let Some(o) = self
            .org_installers
            .iter()
            .find(|o| !o.excluded.iter().any(|e| same_name(e, repository)))
        {
            return Err(InstallerError::CoveredByOrg {
                repository: repository.to_string(),
                by: format!("the org-level installer {}", o.installer),
            });
        }
        self.dedicated.push(Dedicated {
            repository: repository.clone(),
            repo_id,
            installer,
            app_id: None,
            installation_id: None,
            since: now.to_owned(),
        });
        Ok(())
    }

    fn claim_org(
        &mut self,
        installer: InstallerId,
        excluded: Vec<RepoFullName>,
        now: &str,
    ) -> Result<(), InstallerError> {
        let org = || {
            excluded
                .first()
                .map(|r| r.owner().to_owned())
                .unwrap_or_default()
        };
        if let Some(o) = self
            .org_installers
            .iter()
            .find(|o| o.installer != installer)
        {
            return Err(InstallerError::OrgClaimed {
                org: org(),
                holder: o.installer.to_string(),
            });
        }
        if self.org_installers.iter().any(|o| o.installer == installer) {
            return Ok(());
        }
        let dedicated: Vec<&str> = self
            .dedicated
            .iter()
            .filter(|d| !excluded.iter().any(|e| same_name(e, &d.repository)))
            .map(|d| d.repository.as_str())
            .collect();
        if !dedicated.is_empty() {
            return Err(InstallerError::OrgHasDedicated {
                org: self.dedicated[0].repository.owner().to_owned(),
                repositories: dedicated.join(", "),
            });
        }
        self.org_installers.push(OrgInstaller {
            installer,
            app_id: None,
            installation_id: None,
            excluded,
            enrolled: Vec::new(),
            since: now.to_owned(),
        });
        Ok(())
    }

    fn bind(
        &mut self,
        app_id: AppId,
        repository: &RepoFullName,
        installation_id: InstallationId,
        repo_id: Option<u64>,
        misconfiguration: Option<String>,
        now: &str,
    ) -> (Option<InstallerId>, Option<String>) {
        let found = self
            .dedicated
            .iter()
            .position(|d| same_name(&d.repository, repository));
        let index = match found {
            Some(i) => {
                let d = &self.dedicated[i];
                if d.app_id.is_some_and(|a| a != app_id) {
                    return (
                        None,
                        Some(format!(
                            "{repository} is owned by another dedicated app (installer {})",
                            holder(d)
                        )),
                    );
                }
                i
            }
            // A `repo`-mode app registered by hand claims its repository when installed.
            None => match self.claim_repo(None, repository, repo_id, now) {
                Ok(()) => self.dedicated.len() - 1,
                Err(e) => return (None, Some(e.to_string())),
            },
        };
        let d = &mut self.dedicated[index];
        d.app_id = Some(app_id);
        d.installation_id = Some(installation_id);
        if repo_id.is_some() {
            d.repo_id = repo_id;
        }
        (d.installer.clone(), misconfiguration)
    }

    /// The dedicated repositories an org installation reaches.
    pub fn withheld_for(&self, installation_id: InstallationId) -> Vec<RepoFullName> {
        let Some(c) = self
            .coverage
            .iter()
            .find(|c| c.installation_id == installation_id)
        else {
            return Vec::new();
        };
        self.dedicated
            .iter()
            .filter(|d| c.covers(&d.repository, d.repo_id))
            .map(|d| d.repository.clone())
            .collect()
    }

    /// Conflicts of one org installation, recomputed; returns the new ones. A repository the
    /// org installer excluded is expected under `all` and is withheld without a conflict.
    fn refresh_conflicts(
        &mut self,
        installation_id: InstallationId,
        now: &str,
    ) -> Vec<RepoFullName> {
        let Some(c) = self
            .coverage
            .iter()
            .find(|c| c.installation_id == installation_id)
        else {
            return Vec::new();
        };
        let excluded: Vec<RepoFullName> = self
            .org_installers
            .iter()
            .filter(|o| o.app_id == Some(c.app_id) && c.all)
            .flat_map(|o| o.excluded.clone())
            .collect();
        let expected: Vec<(RepoFullName, Option<InstallerId>)> = self
            .dedicated
            .iter()
            .filter(|d| c.covers(&d.repository, d.repo_id))
            .filter(|d| !excluded.iter().any(|e| same_name(e, &d.repository)))
            .map(|d| (d.repository.clone(), d.installer.clone()))
            .collect();
        self.conflicts.retain(|k| {
            k.org_installation != installation_id
                || expected.iter().any(|(r, _)| same_name(r, &k.repository))
        });
        let mut new = Vec::new();
        for (repository, installer) in expected {
            let known = self.conflicts.iter().any(|k| {
                k.org_installation == installation_id && same_name(&k.repository, &repository)
            });
            if !known {
                new.push(repository.clone());
                self.conflicts.push(Conflict {
                    repository,
                    installer,
                    org_installation: installation_id,
                    since: now.to_owned(),
                });
            }
        }
        new
    }

    fn release(&mut self, installer: &InstallerId) -> Vec<Affected> {
        let installations: Vec<InstallationId> = self
            .org_installers
            .iter()
            .filter(|o| &o.installer == installer)
            .filter_map(|o| o.installation_id)
            .collect();
        self.dedicated
            .retain(|d| d.installer.as_ref() != Some(installer));
        self.org_installers.retain(|o| &o.installer != installer);
        self.coverage
            .retain(|c| !installations.contains(&c.installation_id));
        self.conflicts.retain(|c| {
            c.installer.as_ref() != Some(installer) && !installations.contains(&c.org_installation)
        });
        self.recompute()
    }

    /// Every org installation's withheld list, after dedicated claims went away.
    fn recompute(&mut self) -> Vec<Affected> {
        let dedicated = &self.dedicated;
        self.conflicts.retain(|k| {
            dedicated
                .iter()
                .any(|d| same_name(&d.repository, &k.repository))
        });
        self.coverage
            .iter()
            .map(|c| Affected {
                installation_id: c.installation_id,
                withheld: self.withheld_for(c.installation_id),
            })
            .collect()
    }

    fn claims_of(&self, installer: &InstallerId) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .dedicated
            .iter()
            .filter(|d| d.installer.as_ref() == Some(installer))
            .map(|d| {
                json!({"scope": "repository", "mode": "repo", "repository": d.repository, "repositoryId": d.repo_id,
                    "installationId": d.installation_id, "since": d.since})
            })
            .collect();
        for o in self
            .org_installers
            .iter()
            .filter(|o| &o.installer == installer)
        {
            out.push(json!({"scope": "organization", "mode": "org", "repository": null, "repositoryId": null,
                "installationId": o.installation_id, "since": o.since}));
            for r in &o.enrolled {
                out.push(json!({"scope": "repository", "mode": "org", "repository": r, "repositoryId": null,
                    "installationId": o.installation_id, "since": o.since}));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> InstallerId {
        InstallerId::from_random(&[n; 8])
    }
    fn repo(s: &str) -> RepoFullName {
        RepoFullName::parse(s).unwrap()
    }
    fn inst(n: u64) -> InstallationId {
        InstallationId::from_u64(n).unwrap()
    }
    fn app(n: u64) -> AppId {
        AppId::from_u64(n).unwrap()
    }
    fn claim(c: &mut Claims, i: u8, r: &str) -> Result<ClaimAnswer, InstallerError> {
        c.apply(
            ClaimRequest::ClaimRepo {
                installer: id(i),
                repository: repo(r),
            },
            "t",
        )
    }
    fn cover(c: &mut Claims, installation: u64, all: bool, repos: &[&str]) -> ClaimAnswer {
        c.apply(
            ClaimRequest::Cover {
                installation_id: inst(installation),
                app_id: app(1),
                all,
                repositories: repos
                    .iter()
                    .map(|r| Repository {
                        full_name: repo(r),
                        id: None,
                    })
                    .collect(),
            },
            "t",
        )
        .unwrap()
    }

    #[test]
    fn one_dedicated_claim_per_repository() {
        let mut c = Claims::default();
        claim(&mut c, 1, "o/a").unwrap();
        claim(&mut c, 1, "o/a").unwrap();
        assert_eq!(
            claim(&mut c, 2, "O/A").unwrap_err().code(),
            "repository_claimed"
        );
        claim(&mut c, 2, "o/b").unwrap();
        c.apply(ClaimRequest::Release { installer: id(1) }, "t")
            .unwrap();
        claim(&mut c, 2, "o/a").unwrap();
    }

    #[test]
    fn org_coverage_refuses_repo_claims() {
        let mut c = Claims::default();
        cover(&mut c, 9, true, &[]);
        assert_eq!(
            claim(&mut c, 1, "o/a").unwrap_err().code(),
            "repository_covered_by_org"
        );
        let mut c = Claims::default();
        cover(&mut c, 9, false, &["o/a"]);
        assert_eq!(
            claim(&mut c, 1, "o/a").unwrap_err().code(),
            "repository_covered_by_org"
        );
        claim(&mut c, 1, "o/b").unwrap();
        c.apply(
            ClaimRequest::ReleaseInstallation {
                installation_id: inst(9),
            },
            "t",
        )
        .unwrap();
        claim(&mut c, 2, "o/a").unwrap();
    }

    #[test]
    fn org_installer_and_dedicated_apps_exclude_each_other() {
        let mut c = Claims::default();
        claim(&mut c, 1, "o/a").unwrap();
        let org = |c: &mut Claims, ex: &[&str]| {
            c.apply(
                ClaimRequest::ClaimOrg {
                    installer: id(5),
                    excluded: ex.iter().map(|r| repo(r)).collect(),
                },
                "t",
            )
        };
        assert_eq!(
            org(&mut c, &[]).unwrap_err().code(),
            "org_has_dedicated_repositories"
        );
        org(&mut c, &["o/a"]).unwrap();
        assert_eq!(
            c.apply(
                ClaimRequest::ClaimOrg {
                    installer: id(6),
                    excluded: vec![]
                },
                "t"
            )
            .unwrap_err()
            .code(),
            "org_already_claimed"
        );
        assert_eq!(
            claim(&mut c, 2, "o/b").unwrap_err().code(),
            "repository_covered_by_org"
        );
        let enroll = |c: &mut Claims, r: &str| {
            c.apply(
                ClaimRequest::Enroll {
                    installer: id(5),
                    repositories: vec![repo(r)],
                },
                "t",
            )
        };
        assert_eq!(
            enroll(&mut c, "o/a").unwrap_err().code(),
            "repository_claimed"
        );
        enroll(&mut c, "o/b").unwrap();
        let v = c
            .apply(
                ClaimRequest::View {
                    installer: id(5),
                    installation_id: None,
                },
                "t",
            )
            .unwrap();
        assert_eq!(v.claims.len(), 2);
    }

    #[test]
    fn org_gaining_a_dedicated_repository_is_a_conflict_and_withheld() {
        let mut c = Claims::default();
        claim(&mut c, 1, "o/a").unwrap();
        let bound = c
            .apply(
                ClaimRequest::Bind {
                    app_id: app(7),
                    repository: repo("o/a"),
                    installation_id: inst(70),
                    repo_id: Some(42),
                    misconfiguration: None,
                },
                "t",
            )
            .unwrap();
        assert_eq!(bound.installer, Some(id(1)));
        let a = cover(&mut c, 9, false, &["o/b"]);
        assert!(a.withheld.is_empty() && c.conflicts.is_empty());
        let a = cover(&mut c, 9, false, &["o/b", "o/a"]);
        assert_eq!(a.withheld, vec![repo("o/a")]);
        assert_eq!(a.new_conflicts, vec![repo("o/a")]);
        assert!(cover(&mut c, 9, false, &["o/b", "o/a"])
            .new_conflicts
            .is_empty());
        let v = c
            .apply(
                ClaimRequest::View {
                    installer: id(1),
                    installation_id: None,
                },
                "t",
            )
            .unwrap();
        assert_eq!(v.conflicts.len(), 1);
        assert_eq!(v.claims[0]["repositoryId"], 42);
        // Uninstalling the dedicated app frees the repository for the org installation.
        let r = c
            .apply(
                ClaimRequest::ReleaseInstallation {
                    installation_id: inst(70),
                },
                "t",
            )
            .unwrap();
        assert_eq!(r.installer, Some(id(1)));
        assert_eq!(
            r.affected,
            vec![Affected {
                installation_id: inst(9),
                withheld: vec![]
            }]
        );
        assert!(c.conflicts.is_empty() && c.dedicated.is_empty());
    }

    #[test]
    fn bind_of_an_app_without_installer_claims_or_reports() {
        let mut c = Claims::default();
        let bind = |c: &mut Claims, a: u64, r: &str| {
            c.apply(
                ClaimRequest::Bind {
                    app_id: app(a),
                    repository: repo(r),
                    installation_id: inst(a * 10),
                    repo_id: None,
                    misconfiguration: None,
                },
                "t",
            )
            .unwrap()
        };
        assert_eq!(bind(&mut c, 3, "o/a").misconfiguration, None);
        assert!(bind(&mut c, 4, "o/a")
            .misconfiguration
            .unwrap()
            .contains("another dedicated app"));
        cover(&mut c, 9, true, &[]);
        assert!(bind(&mut c, 5, "o/z")
            .misconfiguration
            .unwrap()
            .contains("org-level installation 9"));
    }

    // Gaps `make mutants` found (docs/testing.md): each request touches only what it names.

    fn org(c: &mut Claims, i: u8, excluded: &[&str]) -> Result<ClaimAnswer, InstallerError> {
        c.apply(
            ClaimRequest::ClaimOrg {
                installer: id(i),
                excluded: excluded.iter().map(|r| repo(r)).collect(),
            },
            "t",
        )
    }

    fn bind(c: &mut Claims, a: u64, r: &str, installation: u64) -> ClaimAnswer {
        c.apply(
            ClaimRequest::Bind {
                app_id: app(a),
                repository: repo(r),
                installation_id: inst(installation),
                repo_id: None,
                misconfiguration: None,
            },
            "t",
        )
        .unwrap()
    }

    #[test]
    fn a_refusal_names_who_holds_the_repository() {
        let mut c = Claims::default();
        claim(&mut c, 1, "o/a").unwrap();
        match claim(&mut c, 2, "o/a").unwrap_err() {
            InstallerError::RepositoryClaimed { holder, .. } => {
                assert_eq!(holder, id(1).to_string())
            }
            other => panic!("{other:?}"),
        }
        // An app registered by hand holds its repository as "app <id>".
        bind(&mut c, 7, "o/b", 70);
        match claim(&mut c, 2, "o/b").unwrap_err() {
            InstallerError::RepositoryClaimed { holder, .. } => assert_eq!(holder, "app 7"),
            other => panic!("{other:?}"),
        }
        let mut c = Claims::default();
        c.dedicated.push(Dedicated {
            repository: repo("o/c"),
            repo_id: None,
            installer: None,
            app_id: None,
            installation_id: None,
            since: "t".into(),
        });
        match claim(&mut c, 2, "o/c").unwrap_err() {
            InstallerError::RepositoryClaimed { holder, .. } => assert_eq!(holder, "unknown"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_app_reaches_only_its_installer() {
        let mut c = Claims::default();
        claim(&mut c, 1, "o/a").unwrap();
        claim(&mut c, 2, "o/b").unwrap();
        c.apply(
            ClaimRequest::SetApp {
                installer: id(1),
                app_id: app(11),
            },
            "t",
        )
        .unwrap();
        let apps: Vec<_> = c.dedicated.iter().map(|d| d.app_id).collect();
        assert_eq!(apps, [Some(app(11)), None]);

        let mut c = Claims::default();
        org(&mut c, 5, &[]).unwrap();
        c.org_installers.push(OrgInstaller {
            installer: id(6),
            app_id: None,
            installation_id: None,
            excluded: Vec::new(),
            enrolled: Vec::new(),
            since: "t".into(),
        });
        c.apply(
            ClaimRequest::SetApp {
                installer: id(5),
                app_id: app(55),
            },
            "t",
        )
        .unwrap();
        let apps: Vec<_> = c.org_installers.iter().map(|o| o.app_id).collect();
        assert_eq!(apps, [Some(app(55)), None]);
    }

    #[test]
    fn cover_links_the_org_installer_of_that_app_only() {
        let mut c = Claims::default();
        org(&mut c, 5, &[]).unwrap();
        c.apply(
            ClaimRequest::SetApp {
                installer: id(5),
                app_id: app(2),
            },
            "t",
        )
        .unwrap();
        // `cover` reports as app 1: not this installer's app.
        assert_eq!(cover(&mut c, 9, true, &[]).installer, None);
        assert_eq!(c.org_installers[0].installation_id, None);
        let answer = c
            .apply(
                ClaimRequest::Cover {
                    installation_id: inst(8),
                    app_id: app(2),
                    all: true,
                    repositories: Vec::new(),
                },
                "t",
            )
            .unwrap();
        assert_eq!(answer.installer, Some(id(5)));
        assert_eq!(c.org_installers[0].installation_id, Some(inst(8)));
    }

    #[test]
    fn enrolling_an_excluded_repository_takes_it_off_the_exclusions() {
        let mut c = Claims::default();
        org(&mut c, 5, &["o/a", "o/b"]).unwrap();
        c.apply(
            ClaimRequest::Enroll {
                installer: id(5),
                repositories: vec![repo("o/a")],
            },
            "t",
        )
        .unwrap();
        assert_eq!(c.org_installers[0].excluded, [repo("o/b")]);
        assert_eq!(c.org_installers[0].enrolled, [repo("o/a")]);
    }

    #[test]
    fn claiming_the_org_again_is_a_no_op() {
        let mut c = Claims::default();
        org(&mut c, 5, &[]).unwrap();
        org(&mut c, 5, &[]).unwrap();
        assert_eq!(c.org_installers.len(), 1);
    }

    #[test]
    fn releasing_an_installation_releases_only_it() {
        let mut c = Claims::default();
        // An installer's app and an app registered by hand (no installer), each bound to its
        // own installation.
        claim(&mut c, 1, "o/a").unwrap();
        bind(&mut c, 1, "o/a", 10);
        bind(&mut c, 2, "o/b", 20);
        cover(&mut c, 30, false, &["p/x"]);
        cover(&mut c, 40, false, &["p/y"]);
        let answer = c
            .apply(
                ClaimRequest::ReleaseInstallation {
                    installation_id: inst(20),
                },
                "t",
            )
            .unwrap();
        assert_eq!(answer.installer, None);
        let left: Vec<_> = c.dedicated.iter().map(|d| d.repository.clone()).collect();
        assert_eq!(left, [repo("o/a")]);
        c.apply(
            ClaimRequest::ReleaseInstallation {
                installation_id: inst(30),
            },
            "t",
        )
        .unwrap();
        let covered: Vec<_> = c.coverage.iter().map(|c| c.installation_id).collect();
        assert_eq!(covered, [inst(40)]);
        assert_eq!(
            c.dedicated.len(),
            1,
            "an org installation frees no repository"
        );
    }

    #[test]
    fn a_view_shows_the_installers_and_its_installations_conflicts_only() {
        let mut c = Claims::default();
        for (n, r, org_installation) in [(1, "o/a", 10), (2, "o/b", 20), (3, "o/c", 30)] {
            c.conflicts.push(Conflict {
                repository: repo(r),
                installer: Some(id(n)),
                org_installation: inst(org_installation),
                since: "t".into(),
            });
        }
        let view = |c: &mut Claims, i: u8, installation: Option<u64>| -> Vec<String> {
            c.apply(
                ClaimRequest::View {
                    installer: id(i),
                    installation_id: installation.map(inst),
                },
                "t",
            )
            .unwrap()
            .conflicts
            .iter()
            .map(|v| v["repository"].as_str().unwrap().to_owned())
            .collect()
        };
        assert_eq!(view(&mut c, 1, None), ["o/a"]);
        assert_eq!(view(&mut c, 9, None), Vec::<String>::new());
        assert_eq!(view(&mut c, 9, Some(20)), ["o/b"]);
        assert_eq!(view(&mut c, 1, Some(30)), ["o/a", "o/c"]);
    }

    #[test]
    fn conflicts_are_refreshed_per_org_installation() {
        let mut c = Claims::default();
        claim(&mut c, 1, "o/a").unwrap();
        claim(&mut c, 2, "o/b").unwrap();
        assert_eq!(
            cover(&mut c, 10, false, &["o/a"]).new_conflicts,
            [repo("o/a")]
        );
        // Another installation's refresh leaves installation 10's conflict alone.
        assert_eq!(
            cover(&mut c, 20, false, &["o/b"]).new_conflicts,
            [repo("o/b")]
        );
        let all: Vec<_> = c
            .conflicts
            .iter()
            .map(|k| (k.repository.clone(), k.org_installation))
            .collect();
        assert_eq!(all, [(repo("o/a"), inst(10)), (repo("o/b"), inst(20))]);
        // A repository newly reached is a new conflict even though the installation has one.
        assert_eq!(
            cover(&mut c, 10, false, &["o/a", "o/b"]).new_conflicts,
            [repo("o/b")]
        );
        assert_eq!(c.conflicts.len(), 3);
    }

    #[test]
    fn releasing_an_installation_keeps_other_installations_conflicts_and_org_installers() {
        let mut c = Claims::default();
        claim(&mut c, 1, "o/a").unwrap();
        claim(&mut c, 2, "o/b").unwrap();
        cover(&mut c, 10, false, &["o/a"]);
        cover(&mut c, 20, false, &["o/b"]);
        c.apply(
            ClaimRequest::ReleaseInstallation {
                installation_id: inst(10),
            },
            "t",
        )
        .unwrap();
        let left: Vec<_> = c.conflicts.iter().map(|k| k.org_installation).collect();
        assert_eq!(left, [inst(20)]);

        let mut c = Claims::default();
        org(&mut c, 5, &[]).unwrap();
        c.apply(
            ClaimRequest::SetApp {
                installer: id(5),
                app_id: app(2),
            },
            "t",
        )
        .unwrap();
        c.apply(
            ClaimRequest::Cover {
                installation_id: inst(8),
                app_id: app(2),
                all: true,
                repositories: Vec::new(),
            },
            "t",
        )
        .unwrap();
        // Another installation going away leaves the org installer in place.
        let answer = c
            .apply(
                ClaimRequest::ReleaseInstallation {
                    installation_id: inst(99),
                },
                "t",
            )
            .unwrap();
        assert_eq!(answer.installer, None);
        assert_eq!(c.org_installers.len(), 1);
        let answer = c
            .apply(
                ClaimRequest::ReleaseInstallation {
                    installation_id: inst(8),
                },
                "t",
            )
            .unwrap();
        assert_eq!(answer.installer, Some(id(5)));
        assert!(c.org_installers.is_empty());
    }

    /// Dedicated o/a (installer 1) and o/b (installer 2); org installer 5 (app 2, excluding
    /// both) installed as 8 on both; another app's installation 9 on o/b.
    fn org_with_conflicts() -> Claims {
        let mut c = Claims::default();
        claim(&mut c, 1, "o/a").unwrap();
        claim(&mut c, 2, "o/b").unwrap();
        org(&mut c, 5, &["o/a", "o/b"]).unwrap();
        c.apply(
            ClaimRequest::SetApp {
                installer: id(5),
                app_id: app(2),
            },
            "t",
        )
        .unwrap();
        let cover_as = |c: &mut Claims, installation: u64, a: u64, all: bool, repos: &[&str]| {
            c.apply(
                ClaimRequest::Cover {
                    installation_id: inst(installation),
                    app_id: app(a),
                    all,
                    repositories: repos
                        .iter()
                        .map(|r| Repository {
                            full_name: repo(r),
                            id: None,
                        })
                        .collect(),
                },
                "t",
            )
            .unwrap()
            .new_conflicts
        };
        // Exclusions are expected only under `all`: listed by name, they conflict.
        assert_eq!(
            cover_as(&mut c, 8, 2, false, &["o/a", "o/b"]),
            [repo("o/a"), repo("o/b")]
        );
        assert_eq!(
            cover_as(&mut c, 8, 2, true, &[]),
            Vec::<RepoFullName>::new()
        );
        assert_eq!(
            cover_as(&mut c, 8, 2, false, &["o/a", "o/b"]),
            [repo("o/a"), repo("o/b")]
        );
        // Another app's `all` installation is not excused by installer 5's exclusions.
        assert_eq!(
            cover_as(&mut c, 9, 3, true, &[]),
            [repo("o/a"), repo("o/b")]
        );
        assert_eq!(
            cover_as(&mut c, 9, 3, false, &["o/b"]),
            Vec::<RepoFullName>::new()
        );
        c
    }

    fn conflict_pairs(c: &Claims) -> Vec<(String, u64)> {
        c.conflicts
            .iter()
            .map(|k| (k.repository.to_string(), k.org_installation.get()))
            .collect()
    }

    #[test]
    fn releasing_the_org_installer_takes_its_installation_and_conflicts_only() {
        let mut c = org_with_conflicts();
        assert_eq!(
            conflict_pairs(&c),
            [("o/a".into(), 8), ("o/b".into(), 8), ("o/b".into(), 9)]
        );
        c.apply(ClaimRequest::Release { installer: id(5) }, "t")
            .unwrap();
        assert!(c.org_installers.is_empty());
        let covered: Vec<_> = c.coverage.iter().map(|k| k.installation_id).collect();
        assert_eq!(covered, [inst(9)]);
        assert_eq!(conflict_pairs(&c), [("o/b".into(), 9)]);
        assert_eq!(c.dedicated.len(), 2);
    }

    #[test]
    fn releasing_a_dedicated_installer_leaves_the_org_installer_alone() {
        let mut c = org_with_conflicts();
        c.apply(ClaimRequest::Release { installer: id(1) }, "t")
            .unwrap();
        assert_eq!(c.org_installers.len(), 1);
        let covered: Vec<_> = c.coverage.iter().map(|k| k.installation_id).collect();
        assert_eq!(covered, [inst(8), inst(9)]);
        assert_eq!(conflict_pairs(&c), [("o/b".into(), 8), ("o/b".into(), 9)]);
    }
}
