//! Installers: how a tenant comes in, either through a **dedicated GitHub App for one
//! repository** (`repo` mode) or through an **org-level app** (`org` mode).
//!
//! **Invariant:** a repository is served by at most one mode. The owner's claim object
//! ([`claims::Claims`]) decides every claim and coverage change of that owner's
//! repositories one at a time, so two installers racing for a repository cannot both win,
//! and a repository an org installation gains while a dedicated app owns it is withheld
//! from the org installation ([`Guard`]) and recorded as a conflict.
//!
//! An installer moves through [`Phase`]s: the app is created from a manifest
//! ([`manifest`]), installed on GitHub (the `installation.created` webhook enrolls it, or
//! records why it cannot), and uninstalled, which is final.

pub mod claims;
pub mod error;
pub mod manifest;
pub mod pages;
pub mod state;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ids::{AppId, InstallationId, RepoFullName};
use crate::input::{invalid, parse_object, reject_unknown};
use crate::sealed::Sealed;
use crate::tenancy::token::TokenScope;

pub use error::InstallerError;

/// 16 lowercase hex digits, random.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstallerId(String);

impl InstallerId {
    pub fn parse(s: &str) -> Result<InstallerId, String> {
        if s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(InstallerId(s.to_owned()))
        } else {
            Err("an installer id is 16 lowercase hex digits".into())
        }
    }

    pub fn from_random(bytes: &[u8; 8]) -> InstallerId {
        InstallerId(crate::hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Durable Object name of this installer's record.
    pub fn object_name(&self) -> String {
        format!("installer-{}", self.0)
    }
}

impl<'de> Deserialize<'de> for InstallerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        InstallerId::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for InstallerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A GitHub login (user or organisation): 1–39 of `[A-Za-z0-9-]`, not starting with `-`.
pub fn parse_login(s: &str) -> Result<String, String> {
    if (1..=39).contains(&s.len())
        && !s.starts_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "must be a GitHub login, got {:?}",
            crate::ids::truncate(s, 60)
        ))
    }
}

/// The name of the claim object that decides for `owner`'s repositories. Logins are
/// case-insensitive on GitHub, so the name is lowercase.
pub fn claims_object_name(owner: &str) -> String {
    format!("claims-{}", owner.to_ascii_lowercase())
}

/// Which account GitHub creates the app under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AccountKind {
    #[default]
    Organization,
    User,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "mode",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Target {
    /// A dedicated app for exactly this repository.
    Repo {
        repository: RepoFullName,
        #[serde(default)]
        account: AccountKind,
    },
    /// An org-level app; `excluded` repositories keep (or may get) dedicated apps.
    Org {
        org: String,
        #[serde(default)]
        excluded: Vec<RepoFullName>,
    },
}

impl Target {
    /// The account whose claim object decides for this target.
    pub fn owner(&self) -> &str {
        match self {
            Target::Repo { repository, .. } => repository.owner(),
            Target::Org { org, .. } => org,
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            Target::Repo { .. } => "repo",
            Target::Org { .. } => "org",
        }
    }

    pub fn account(&self) -> AccountKind {
        match self {
            Target::Repo { account, .. } => *account,
            Target::Org { .. } => AccountKind::Organization,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Repo { repository, .. } => repository.to_string(),
            Target::Org { org, .. } => format!("the organisation {org}"),
        }
    }
}

fn repo_list(field: &str, v: &Value) -> Result<Vec<RepoFullName>, ApiError> {
    let items = v
        .as_array()
        .ok_or_else(|| invalid(field, "must be an array of \"owner/name\""))?;
    if items.len() > 1000 {
        return Err(invalid(field, "has too many entries"));
    }
    let mut out: Vec<RepoFullName> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let name = item
            .as_str()
            .ok_or_else(|| invalid(&f, "must be a string"))?;
        let repo = RepoFullName::parse(name).map_err(|e| invalid(&f, &e))?;
        if !out.iter().any(|r| same_name(r, &repo)) {
            out.push(repo);
        }
    }
    Ok(out)
}

pub fn same_name(a: &RepoFullName, b: &RepoFullName) -> bool {
    a.as_str().eq_ignore_ascii_case(b.as_str())
}

/// `POST /api/installers`.
pub fn parse_input(body: &[u8]) -> Result<Target, ApiError> {
    let map = parse_object(body)?;
    reject_unknown(&map, &["mode", "repository", "account", "org", "exclude"])?;
    match map.get("mode").and_then(Value::as_str) {
        Some("repo") => {
            if map.contains_key("org") || map.contains_key("exclude") {
                return Err(invalid("org", "is only for mode \"org\""));
            }
            let repo = map
                .get("repository")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("repository", "is required for mode \"repo\""))?;
            let account = match map.get("account").and_then(Value::as_str) {
                None | Some("organization") => AccountKind::Organization,
                Some("user") => AccountKind::User,
                Some(_) => return Err(invalid("account", "must be \"organization\" or \"user\"")),
            };
            Ok(Target::Repo {
                repository: RepoFullName::parse(repo).map_err(|e| invalid("repository", &e))?,
                account,
            })
        }
        Some("org") => {
            if map.contains_key("repository") || map.contains_key("account") {
                return Err(invalid("repository", "is only for mode \"repo\""));
            }
            let org = map
                .get("org")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("org", "is required for mode \"org\""))?;
            let org = parse_login(org).map_err(|e| invalid("org", &e))?;
            let excluded = match map.get("exclude") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => repo_list("exclude", v)?,
            };
            if let Some(r) = excluded
                .iter()
                .find(|r| !r.owner().eq_ignore_ascii_case(&org))
            {
                return Err(invalid("exclude", &format!("{r} is not in {org}")));
            }
            Ok(Target::Org { org, excluded })
        }
        _ => Err(invalid("mode", "must be \"repo\" or \"org\"")),
    }
}

/// `POST /api/installers/{id}/enroll`: `{"repositories": ["owner/name", …]}`.
pub fn parse_enroll(body: &[u8], org: &str) -> Result<Vec<RepoFullName>, ApiError> {
    let map = parse_object(body)?;
    reject_unknown(&map, &["repositories"])?;
    let repos = repo_list(
        "repositories",
        map.get("repositories")
            .ok_or_else(|| invalid("repositories", "is required"))?,
    )?;
    if repos.is_empty() {
        return Err(invalid("repositories", "must list at least one repository"));
    }
    if let Some(r) = repos.iter().find(|r| !r.owner().eq_ignore_ascii_case(org)) {
        return Err(invalid("repositories", &format!("{r} is not in {org}")));
    }
    Ok(repos)
}

/// The setup link's nonce while it is outstanding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingState {
    pub nonce: String,
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallerApp {
    pub app_id: AppId,
    pub slug: String,
    pub html_url: String,
    pub owner: Option<String>,
}

/// The service key made at enrollment: shown once by the installer's status, then only
/// its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceKeyHandoff {
    pub id: String,
    pub sealed: Option<Sealed>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallerRecord {
    pub id: InstallerId,
    pub target: Target,
    /// This worker's public origin when the installer was created: the manifest's URLs.
    pub base_url: String,
    pub state: Option<PendingState>,
    pub app: Option<InstallerApp>,
    pub installation_id: Option<InstallationId>,
    pub misconfiguration: Option<String>,
    pub service_key: Option<ServiceKeyHandoff>,
    #[serde(default)]
    pub enrolled: Vec<RepoFullName>,
    pub uninstalled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    AwaitingApp,
    AwaitingInstallation,
    Misconfigured,
    Active,
    Uninstalled,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::AwaitingApp => "awaiting_app",
            Phase::AwaitingInstallation => "awaiting_installation",
            Phase::Misconfigured => "misconfigured",
            Phase::Active => "active",
            Phase::Uninstalled => "uninstalled",
        }
    }
}

/// What the installation's own object checks before it mints a token or acts on a
/// delivery: a misconfigured dedicated installation gets nothing, and an org installation
/// never serves a repository a dedicated app owns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guard {
    pub misconfiguration: Option<String>,
    pub withheld: Vec<RepoFullName>,
}

impl Guard {
    pub fn is_empty(&self) -> bool {
        self.misconfiguration.is_none() && self.withheld.is_empty()
    }

    pub fn withholds(&self, repo: &str) -> bool {
        self.withheld
            .iter()
            .any(|w| w.as_str().eq_ignore_ascii_case(repo) || w.name().eq_ignore_ascii_case(repo))
    }

    /// Refuses a token for a misconfigured installation, a withheld repository, or (when
    /// some are withheld) a token not narrowed to named repositories.
    pub fn check_token(
        &self,
        installation: InstallationId,
        scope: &TokenScope,
    ) -> Result<(), InstallerError> {
        if let Some(reason) = &self.misconfiguration {
            return Err(InstallerError::Misconfigured {
                installation: installation.get(),
                reason: reason.clone(),
            });
        }
        if self.withheld.is_empty() {
            return Ok(());
        }
        let names = || {
            self.withheld
                .iter()
                .map(RepoFullName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if scope.repositories.is_empty() {
            return Err(InstallerError::Withheld(format!(
                "{} served only through dedicated apps; name the repositories this token is for",
                names()
            )));
        }
        if let Some(r) = scope.repositories.iter().find(|r| self.withholds(r)) {
            return Err(InstallerError::Withheld(format!(
                "repository {r} is served only through its dedicated app, not this org installation"
            )));
        }
        Ok(())
    }
}

impl InstallerRecord {
    pub fn new(id: InstallerId, target: Target, base_url: &str, now: &str) -> InstallerRecord {
        InstallerRecord {
            id,
            target,
            base_url: base_url.trim_end_matches('/').to_owned(),
            state: None,
            app: None,
            installation_id: None,
            misconfiguration: None,
            service_key: None,
            enrolled: Vec::new(),
            uninstalled_at: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    pub fn phase(&self) -> Phase {
        if self.uninstalled_at.is_some() {
            Phase::Uninstalled
        } else if self.app.is_none() {
            Phase::AwaitingApp
        } else if self.installation_id.is_none() {
            Phase::AwaitingInstallation
        } else if self.misconfiguration.is_some() {
            Phase::Misconfigured
        } else {
            Phase::Active
        }
    }

    pub fn setup_url(&self) -> String {
        format!("{}/setup/{}", self.base_url, self.id)
    }

    /// Where the app is installed: GitHub's install page of the app.
    pub fn install_url(&self) -> Option<String> {
        self.app
            .as_ref()
            .map(|a| format!("{}/installations/new", a.html_url.trim_end_matches('/')))
    }

    /// Where the owner deletes the app (GitHub has no API for it).
    pub fn delete_app_url(&self, web_base: &str) -> Option<String> {
        let app = self.app.as_ref()?;
        let web = web_base.trim_end_matches('/');
        Some(match self.target.account() {
            AccountKind::Organization => format!(
                "{web}/organizations/{}/settings/apps/{}/advanced",
                app.owner.as_deref().unwrap_or(self.target.owner()),
                app.slug
            ),
            AccountKind::User => format!("{web}/settings/apps/{}/advanced", app.slug),
        })
    }

    /// The one thing the admin has to do next, in words.
    pub fn next_step(&self, web_base: &str, conflicts: usize) -> String {
        let install_on = match &self.target {
            Target::Repo { repository, .. } => {
                format!("only the repository {repository} (\"Only select repositories\")")
            }
            Target::Org { org, .. } => format!("the organisation {org}"),
        };
        let step = match self.phase() {
            Phase::AwaitingApp => format!(
                "Open {} in a browser and create the GitHub App on GitHub.",
                self.setup_url()
            ),
            Phase::AwaitingInstallation => format!(
                "Install the app on {install_on}: {}",
                self.install_url().unwrap_or_default()
            ),
            Phase::Misconfigured => format!(
                "Fix the installation on GitHub: {}. Change its repository access to {install_on}.",
                self.misconfiguration.as_deref().unwrap_or_default()
            ),
            Phase::Active => match &self.target {
                Target::Repo { .. } => {
                    "Done: hand the service key to the tenant's workload (it reaches this repository only).".to_owned()
                }
                Target::Org { .. } if self.enrolled.is_empty() => format!(
                    "Enroll repositories: ghplane admin enroll {} owner/name…",
                    self.id
                ),
                Target::Org { .. } => "Done: enrolled repositories are served.".to_owned(),
            },
            Phase::Uninstalled => format!(
                "Delete the app on GitHub: {}",
                self.delete_app_url(web_base).unwrap_or_else(|| "nothing to delete".into())
            ),
        };
        if conflicts > 0 && self.phase() != Phase::Uninstalled {
            format!(
                "{step} Resolve {conflicts} conflict(s): remove the listed repositories from the org-level installation on GitHub; until then ghplane serves them only through their dedicated apps."
            )
        } else {
            step
        }
    }

    /// `GET /api/installers/{id}`; `claims` and `conflicts` come from the claim object,
    /// `service_key` is the key shown this once (if any).
    pub fn view(
        &self,
        web_base: &str,
        claims: Vec<Value>,
        conflicts: Vec<Value>,
        service_key: Option<&str>,
    ) -> Value {
        let (repository, org, excluded) = match &self.target {
            Target::Repo { repository, .. } => (Some(repository.as_str()), None, Vec::new()),
            Target::Org { org, excluded } => (
                None,
                Some(org.as_str()),
                excluded.iter().map(RepoFullName::as_str).collect(),
            ),
        };
        let key = self.service_key.as_ref().map(|k| {
            let mut v = json!({"id": k.id});
            if let Some(plain) = service_key {
                v["key"] = json!(plain);
            }
            v
        });
        json!({
            "id": self.id,
            "mode": self.target.mode(),
            "repository": repository,
            "org": org,
            "exclude": excluded,
            "phase": self.phase().as_str(),
            "setupUrl": self.setup_url(),
            "appId": self.app.as_ref().map(|a| a.app_id),
            "appSlug": self.app.as_ref().map(|a| a.slug.as_str()),
            "appUrl": self.app.as_ref().map(|a| a.html_url.as_str()),
            "installUrl": self.install_url(),
            "installationId": self.installation_id,
            "misconfiguration": self.misconfiguration,
            "serviceKey": key,
            "enrolled": self.enrolled.iter().map(RepoFullName::as_str).collect::<Vec<_>>(),
            "claims": claims,
            "conflicts": conflicts.clone(),
            "deleteAppUrl": if self.phase() == Phase::Uninstalled { self.delete_app_url(web_base) } else { None },
            "nextStep": self.next_step(web_base, conflicts.len()),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "uninstalledAt": self.uninstalled_at,
        })
    }
}

/// Whether an installation of a dedicated app for `target` covers exactly that repository:
/// its GitHub id when so, the reason it is misconfigured otherwise.
pub fn dedicated_coverage(
    target: &RepoFullName,
    selection: Option<&str>,
    repositories: &[crate::tenancy::config::Repository],
) -> Result<Option<u64>, String> {
    if selection == Some("all") {
        return Err(format!(
            "it was granted all repositories of the account; a dedicated app must be installed on {target} only"
        ));
    }
    match repositories {
        [only] if same_name(&only.full_name, target) => Ok(only.id),
        [] => Err(format!(
            "it was granted no repository; it must be granted {target} only"
        )),
        repos => Err(format!(
            "it was granted {} ({}); a dedicated app must be installed on {target} only",
            if repos.len() == 1 {
                "another repository".to_owned()
            } else {
                format!("{} repositories", repos.len())
            },
            repos
                .iter()
                .map(|r| r.full_name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Target, ApiError> {
        parse_input(v.to_string().as_bytes())
    }

    #[test]
    fn parses_both_modes() {
        assert_eq!(
            parse(json!({"mode": "repo", "repository": "octo/api"})).unwrap(),
            Target::Repo {
                repository: RepoFullName::parse("octo/api").unwrap(),
                account: AccountKind::Organization
            }
        );
        let org =
            parse(json!({"mode": "org", "org": "octo", "exclude": ["octo/a", "OCTO/a"]})).unwrap();
        assert_eq!(org.owner(), "octo");
        let Target::Org { excluded, .. } = org else {
            panic!()
        };
        assert_eq!(excluded.len(), 1);
    }

    #[test]
    fn refuses_bad_bodies() {
        for (body, needle) in [
            (json!({}), "mode"),
            (json!({"mode": "repo"}), "repository"),
            (json!({"mode": "repo", "repository": "x"}), "repository"),
            (json!({"mode": "org"}), "org"),
            (json!({"mode": "org", "org": "-x"}), "org"),
            (
                json!({"mode": "org", "org": "o", "exclude": ["p/r"]}),
                "exclude",
            ),
            (
                json!({"mode": "repo", "repository": "o/r", "org": "o"}),
                "org",
            ),
            (
                json!({"mode": "repo", "repository": "o/r", "account": "x"}),
                "account",
            ),
            (json!({"mode": "repo", "repository": "o/r", "x": 1}), "x"),
        ] {
            let e = parse(body.clone()).unwrap_err();
            assert!(e.to_string().contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn installer_ids() {
        let id = InstallerId::from_random(&[0xab; 8]);
        assert_eq!(id.as_str(), "abababababababab");
        assert_eq!(InstallerId::parse(id.as_str()).unwrap(), id);
        for bad in ["", "ABABABABABABABAB", "abab", "zzzzzzzzzzzzzzzz"] {
            assert!(InstallerId::parse(bad).is_err(), "{bad}");
        }
    }

    fn record() -> InstallerRecord {
        InstallerRecord::new(
            InstallerId::from_random(&[1; 8]),
            parse(json!({"mode": "repo", "repository": "octo/api"})).unwrap(),
            "https://gp.example/",
            "t0",
        )
    }

    #[test]
    fn phases_and_next_steps() {
        let mut r = record();
        assert_eq!(r.phase(), Phase::AwaitingApp);
        assert!(r
            .next_step("https://github.com", 0)
            .contains("https://gp.example/setup/0101010101010101"));
        r.app = Some(InstallerApp {
            app_id: AppId::from_u64(5).unwrap(),
            slug: "gp-octo-api".into(),
            html_url: "https://github.com/apps/gp-octo-api".into(),
            owner: Some("octo".into()),
        });
        assert!(r
            .next_step("https://github.com", 0)
            .contains("https://github.com/apps/gp-octo-api/installations/new"));
        r.installation_id = Some(InstallationId::from_u64(9).unwrap());
        assert_eq!(r.phase(), Phase::Active);
        assert!(r.next_step("w", 2).contains("2 conflict(s)"));
        r.misconfiguration = Some("covers 2 repositories".into());
        assert_eq!(r.phase(), Phase::Misconfigured);
        r.uninstalled_at = Some("t1".into());
        let v = r.view("https://github.com", vec![], vec![], None);
        assert_eq!(v["phase"], "uninstalled");
        assert_eq!(
            v["deleteAppUrl"],
            "https://github.com/organizations/octo/settings/apps/gp-octo-api/advanced"
        );
    }

    #[test]
    fn guard_rules() {
        let inst = InstallationId::from_u64(3).unwrap();
        let scope = |repos: &[&str]| TokenScope {
            repositories: repos.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(Guard::default().check_token(inst, &scope(&[])).is_ok());
        let g = Guard {
            misconfiguration: Some("x".into()),
            withheld: vec![],
        };
        assert_eq!(
            g.check_token(inst, &scope(&["a"])).unwrap_err().code(),
            "installation_misconfigured"
        );
        let g = Guard {
            misconfiguration: None,
            withheld: vec![RepoFullName::parse("o/api").unwrap()],
        };
        assert_eq!(
            g.check_token(inst, &scope(&[])).unwrap_err().code(),
            "repository_withheld"
        );
        assert_eq!(
            g.check_token(inst, &scope(&["web", "API"]))
                .unwrap_err()
                .code(),
            "repository_withheld"
        );
        assert!(g.check_token(inst, &scope(&["web"])).is_ok());
    }
}

#[cfg(test)]
mod coverage_tests {
    use super::*;
    use crate::tenancy::config::Repository;

    #[test]
    fn dedicated_installations_cover_exactly_their_repository() {
        let t = RepoFullName::parse("o/a").unwrap();
        let r = |n: &str, id| Repository {
            full_name: RepoFullName::parse(n).unwrap(),
            id: Some(id),
        };
        assert_eq!(
            dedicated_coverage(&t, Some("selected"), &[r("O/a", 4)]),
            Ok(Some(4))
        );
        assert!(dedicated_coverage(&t, Some("all"), &[r("o/a", 4)])
            .unwrap_err()
            .contains("all repositories"));
        assert!(
            dedicated_coverage(&t, Some("selected"), &[r("o/a", 4), r("o/b", 5)])
                .unwrap_err()
                .contains("2 repositories")
        );
        assert!(dedicated_coverage(&t, Some("selected"), &[r("o/b", 5)]).is_err());
        assert!(dedicated_coverage(&t, None, &[]).is_err());
    }
}
