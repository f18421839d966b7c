//! Which projects a push (or a rename) reaches, and what the delivery log says when it
//! reaches none.
//!
//! Invariants: a push reaches a project only through the repository index entry of its
//! repository id, and only when that entry's branch and installation match; the project's own
//! object checks the same against the source it holds (the index is a copy, and a copy may be
//! stale for a moment). Every "nothing happened" has a stable reason string, stored with the
//! delivery.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::DeployError;
use super::machine::Ignored;
use super::source::{BranchName, Source};
use crate::ids::{truncate, InstallationId, RepoFullName, RepoId};
use crate::projects::ProjectSlug;

/// A repository is followed by at most this many projects (one index object holds them all).
pub const MAX_LINKS_PER_REPO: usize = 100;

pub const NO_LINKED_PROJECT: &str = "no_linked_project";
pub const OTHER_BRANCH: &str = "other_branch";
pub const INSTALLATION_MISMATCH: &str = "installation_mismatch";

/// One entry of the repository index (`repo-<repo id>`): a project following a branch of the
/// repository through an installation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoLink {
    pub project: ProjectSlug,
    pub installation_id: InstallationId,
    pub branch: BranchName,
}

impl RepoLink {
    pub fn of(project: &ProjectSlug, source: &Source) -> RepoLink {
        RepoLink {
            project: project.clone(),
            installation_id: source.installation_id,
            branch: source.branch.clone(),
        }
    }
}

/// Adds or replaces the project's entry (a project follows one branch). `Err` when the
/// repository already has [`MAX_LINKS_PER_REPO`] other projects.
pub fn upsert_link(links: &mut Vec<RepoLink>, link: RepoLink) -> Result<(), String> {
    if let Some(existing) = links.iter_mut().find(|l| l.project == link.project) {
        *existing = link;
        return Ok(());
    }
    if links.len() >= MAX_LINKS_PER_REPO {
        return Err(format!(
            "a repository can be followed by at most {MAX_LINKS_PER_REPO} projects"
        ));
    }
    links.push(link);
    links.sort_by(|a, b| a.project.cmp(&b.project));
    Ok(())
}

/// Drops the project's entry; whether there was one.
pub fn remove_link(links: &mut Vec<RepoLink>, project: &ProjectSlug) -> bool {
    let before = links.len();
    links.retain(|l| &l.project != project);
    links.len() != before
}

/// The projects a push to `branch` of the indexed repository deploys, received through
/// `installation`; or why none.
pub fn route_push(
    links: &[RepoLink],
    installation: InstallationId,
    branch: &str,
) -> Result<Vec<ProjectSlug>, &'static str> {
    if links.is_empty() {
        return Err(NO_LINKED_PROJECT);
    }
    let on_branch: Vec<&RepoLink> = links
        .iter()
        .filter(|l| l.branch.as_str() == branch)
        .collect();
    if on_branch.is_empty() {
        return Err(OTHER_BRANCH);
    }
    let targets: Vec<ProjectSlug> = on_branch
        .iter()
        .filter(|l| l.installation_id == installation)
        .map(|l| l.project.clone())
        .collect();
    if targets.is_empty() {
        return Err(INSTALLATION_MISMATCH);
    }
    Ok(targets)
}

/// The projects whose stored `full_name` a `repository.renamed` through `installation`
/// updates; or why none. Only the installation a project deploys through speaks for it.
pub fn route_rename(
    links: &[RepoLink],
    installation: InstallationId,
) -> Result<Vec<ProjectSlug>, &'static str> {
    if links.is_empty() {
        return Err(NO_LINKED_PROJECT);
    }
    let targets: Vec<ProjectSlug> = links
        .iter()
        .filter(|l| l.installation_id == installation)
        .map(|l| l.project.clone())
        .collect();
    if targets.is_empty() {
        return Err(INSTALLATION_MISMATCH);
    }
    Ok(targets)
}

/// The project's own check of a push routed to it, against the source it holds.
pub fn check_push(
    source: Option<&Source>,
    repo_id: RepoId,
    installation: InstallationId,
    branch: &str,
) -> Result<(), &'static str> {
    let Some(s) = source.filter(|s| s.repo_id == repo_id) else {
        return Err(NO_LINKED_PROJECT);
    };
    if s.branch.as_str() != branch {
        return Err(OTHER_BRANCH);
    }
    if s.installation_id != installation {
        return Err(INSTALLATION_MISMATCH);
    }
    Ok(())
}

/// Applies a rename to the project's source: `Ok(true)` when `full_name` changed.
pub fn apply_rename(
    source: Option<&mut Source>,
    repo_id: RepoId,
    installation: InstallationId,
    new_full_name: &RepoFullName,
) -> Result<bool, &'static str> {
    let Some(s) = source.filter(|s| s.repo_id == repo_id) else {
        return Err(NO_LINKED_PROJECT);
    };
    if s.installation_id != installation {
        return Err(INSTALLATION_MISMATCH);
    }
    if &s.full_name == new_full_name {
        return Ok(false);
    }
    s.full_name = new_full_name.clone();
    Ok(true)
}

/// The delivery-log reason for a push the deploy machine did not take.
pub fn ignored_reason(why: Ignored) -> &'static str {
    match why {
        Ignored::Redelivery => "redelivered_push",
        Ignored::Stale => "stale_push",
        Ignored::AlreadyDeploying => "already_deploying",
        Ignored::InvalidPush => "invalid_push",
        Ignored::NotCurrent => "deployment_not_running",
        Ignored::Duplicate => "duplicate",
        Ignored::NotDue => "not_due",
        Ignored::Idle => "idle",
    }
}

/// The number of the next push an installation receives: larger than the last one, and at
/// least the clock (in thousandths of a millisecond), so numbers from two installations
/// compare by time too. A project re-linked through another installation then still takes
/// that installation's pushes as newer than the old ones.
pub fn next_push_seq(last: Option<u64>, now_ms: i64) -> u64 {
    let clock = u64::try_from(now_ms).unwrap_or(0).saturating_mul(1000);
    last.map_or(clock, |l| l.saturating_add(1)).max(clock)
}

/// Every reason a project may give for not taking a push or a rename.
const PROJECT_REASONS: &[&str] = &[
    NO_LINKED_PROJECT,
    OTHER_BRANCH,
    INSTALLATION_MISMATCH,
    "redelivered_push",
    "stale_push",
    "already_deploying",
    "invalid_push",
    "deployment_not_running",
    "duplicate",
    "not_due",
    "idle",
];

/// A reason as a project's object sent it back, as the stable string the delivery log
/// stores; anything unexpected becomes `ignored`.
pub fn known_reason(reason: &str) -> &'static str {
    PROJECT_REASONS
        .iter()
        .find(|r| **r == reason)
        .copied()
        .unwrap_or("ignored")
}

/// One delivery's answer from the answers of the projects it reached: accepted when any
/// project took it, otherwise the first reason.
pub fn combine(answers: &[Result<(), &'static str>]) -> Result<(), &'static str> {
    if answers.iter().any(Result::is_ok) {
        return Ok(());
    }
    Err(answers
        .iter()
        .find_map(|a| a.err())
        .unwrap_or(NO_LINKED_PROJECT))
}

/// A deployment as the public routes name it: `<project slug>.<number>`, e.g. `acme-ab12.3`.
/// Deployment numbers count per project, so the slug makes them global (and a slug never
/// contains a dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentRef {
    pub project: ProjectSlug,
    pub number: u64,
}

impl DeploymentRef {
    pub fn parse(s: &str) -> Result<DeploymentRef, String> {
        let fail = || {
            format!(
                "a deployment id is <project slug>.<number>; got {:?}",
                truncate(s, 80)
            )
        };
        let (slug, number) = s.rsplit_once('.').ok_or_else(fail)?;
        let project = ProjectSlug::parse(slug).map_err(|_| fail())?;
        let number = RepoId::parse(number).map_err(|_| fail())?.get();
        Ok(DeploymentRef { project, number })
    }
}

impl fmt::Display for DeploymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.project.as_str(), self.number)
    }
}

/// What a status report the machine ignored means to the reporter: a repeated report is
/// fine; a report for a deployment that ended or never existed is refused.
pub fn report_refusal(
    ignored: Option<Ignored>,
    deployment: &DeploymentRef,
    known: bool,
) -> Result<(), DeployError> {
    match ignored {
        None | Some(Ignored::Duplicate) => Ok(()),
        Some(_) if !known => Err(DeployError::DeploymentNotFound(deployment.to_string())),
        Some(_) => Err(DeployError::DeploymentNotRunning(deployment.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::source::SourceInput;

    fn slug(s: &str) -> ProjectSlug {
        ProjectSlug::parse(s).unwrap()
    }

    fn inst(n: u64) -> InstallationId {
        InstallationId::from_u64(n).unwrap()
    }

    fn link(p: &str, i: u64, b: &str) -> RepoLink {
        RepoLink {
            project: slug(p),
            installation_id: inst(i),
            branch: BranchName::parse(b).unwrap(),
        }
    }

    fn source(installation: u64, repo: u64, branch: &str) -> Source {
        let body = format!(
            r#"{{"installationId": {installation}, "repoId": {repo}, "branch": "{branch}"}}"#
        );
        let input = SourceInput::parse(body.as_bytes()).unwrap();
        Source::resolve(input, RepoFullName::parse("o/r").unwrap(), "R_1".into())
    }

    #[test]
    fn the_index_holds_one_entry_per_project() {
        let mut links = Vec::new();
        upsert_link(&mut links, link("web", 1, "main")).unwrap();
        upsert_link(&mut links, link("api", 1, "staging")).unwrap();
        upsert_link(&mut links, link("web", 1, "release")).unwrap();
        assert_eq!(
            links,
            [link("api", 1, "staging"), link("web", 1, "release")]
        );
        assert!(remove_link(&mut links, &slug("web")));
        assert!(!remove_link(&mut links, &slug("web")));
        assert_eq!(links, [link("api", 1, "staging")]);
        let stored = serde_json::to_string(&links).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<RepoLink>>(&stored).unwrap(),
            links
        );
    }

    #[test]
    fn the_index_is_bounded() {
        let mut links = Vec::new();
        for n in 0..MAX_LINKS_PER_REPO {
            upsert_link(&mut links, link(&format!("p{n}"), 1, "main")).unwrap();
        }
        assert!(upsert_link(&mut links, link("one-more", 1, "main")).is_err());
        // Replacing an existing entry is always possible.
        upsert_link(&mut links, link("p3", 1, "dev")).unwrap();
    }

    #[test]
    fn pushes_reach_the_projects_of_their_branch_and_installation() {
        let links = [
            link("a", 1, "main"),
            link("b", 1, "staging"),
            link("c", 2, "main"),
        ];
        assert_eq!(route_push(&links, inst(1), "main"), Ok(vec![slug("a")]));
        assert_eq!(route_push(&links, inst(2), "main"), Ok(vec![slug("c")]));
        assert_eq!(route_push(&links, inst(1), "staging"), Ok(vec![slug("b")]));
        assert_eq!(route_push(&links, inst(1), "dev"), Err(OTHER_BRANCH));
        assert_eq!(
            route_push(&links, inst(3), "staging"),
            Err(INSTALLATION_MISMATCH)
        );
        assert_eq!(route_push(&[], inst(1), "main"), Err(NO_LINKED_PROJECT));
    }

    #[test]
    fn renames_reach_the_projects_of_their_installation() {
        let links = [link("a", 1, "main"), link("b", 2, "main")];
        assert_eq!(route_rename(&links, inst(2)), Ok(vec![slug("b")]));
        assert_eq!(route_rename(&links, inst(3)), Err(INSTALLATION_MISMATCH));
        assert_eq!(route_rename(&[], inst(3)), Err(NO_LINKED_PROJECT));
    }

    #[test]
    fn the_project_checks_the_push_against_its_own_source() {
        let s = source(1, 5, "main");
        let repo = RepoId::from_u64(5).unwrap();
        assert_eq!(check_push(Some(&s), repo, inst(1), "main"), Ok(()));
        assert_eq!(
            check_push(Some(&s), repo, inst(1), "dev"),
            Err(OTHER_BRANCH)
        );
        assert_eq!(
            check_push(Some(&s), repo, inst(2), "main"),
            Err(INSTALLATION_MISMATCH)
        );
        assert_eq!(
            check_push(Some(&s), RepoId::from_u64(6).unwrap(), inst(1), "main"),
            Err(NO_LINKED_PROJECT)
        );
        assert_eq!(
            check_push(None, repo, inst(1), "main"),
            Err(NO_LINKED_PROJECT)
        );
    }

    #[test]
    fn a_rename_changes_only_the_name() {
        let mut s = source(1, 5, "main");
        let repo = RepoId::from_u64(5).unwrap();
        let new = RepoFullName::parse("o/renamed").unwrap();
        assert_eq!(
            apply_rename(Some(&mut s), repo, inst(2), &new),
            Err(INSTALLATION_MISMATCH)
        );
        assert_eq!(apply_rename(Some(&mut s), repo, inst(1), &new), Ok(true));
        assert_eq!(apply_rename(Some(&mut s), repo, inst(1), &new), Ok(false));
        assert_eq!(s.full_name, new);
        assert_eq!((s.repo_id, s.branch.as_str()), (repo, "main"));
        assert_eq!(
            apply_rename(None, repo, inst(1), &new),
            Err(NO_LINKED_PROJECT)
        );
    }

    #[test]
    fn one_answer_per_delivery() {
        assert_eq!(combine(&[Err("stale_push"), Ok(())]), Ok(()));
        assert_eq!(
            combine(&[Err("stale_push"), Err("already_deploying")]),
            Err("stale_push")
        );
        assert_eq!(combine(&[]), Err(NO_LINKED_PROJECT));
        assert_eq!(ignored_reason(Ignored::Redelivery), "redelivered_push");
        for why in [
            Ignored::Redelivery,
            Ignored::Stale,
            Ignored::AlreadyDeploying,
            Ignored::InvalidPush,
            Ignored::NotCurrent,
            Ignored::Duplicate,
            Ignored::NotDue,
            Ignored::Idle,
        ] {
            assert_eq!(known_reason(ignored_reason(why)), ignored_reason(why));
        }
        assert_eq!(known_reason(OTHER_BRANCH), OTHER_BRANCH);
        assert_eq!(known_reason("made up"), "ignored");
    }

    #[test]
    fn push_numbers_grow_and_follow_the_clock() {
        const T0: i64 = 1_700_000_000_000;
        let a = next_push_seq(None, T0);
        assert_eq!(a, 1_700_000_000_000_000);
        // Many in the same millisecond, or a clock that steps back: still growing.
        let b = next_push_seq(Some(a), T0);
        let c = next_push_seq(Some(b), T0 - 5_000);
        assert!(a < b && b < c);
        // Another installation, later: newer than both.
        assert!(next_push_seq(None, T0 + 1) > c);
        // Exact as a JavaScript number for centuries.
        assert!(next_push_seq(None, 8_000_000_000_000) < crate::ids::MAX_SAFE_ID);
    }

    #[test]
    fn deployment_refs_round_trip() {
        let r = DeploymentRef::parse("acme-ab12.3").unwrap();
        assert_eq!((r.project.as_str(), r.number), ("acme-ab12", 3));
        assert_eq!(r.to_string(), "acme-ab12.3");
        for bad in [
            "", "acme", "acme.", ".3", "acme.0", "acme.03", "acme.-1", "Acme.3", "a.b.3", "acme.x",
        ] {
            assert!(DeploymentRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refused_reports() {
        let d = DeploymentRef::parse("p.1").unwrap();
        assert_eq!(report_refusal(None, &d, true), Ok(()));
        assert_eq!(report_refusal(Some(Ignored::Duplicate), &d, true), Ok(()));
        assert_eq!(
            report_refusal(Some(Ignored::NotCurrent), &d, true)
                .unwrap_err()
                .code(),
            "deployment_not_running"
        );
        assert_eq!(
            report_refusal(Some(Ignored::NotCurrent), &d, false)
                .unwrap_err()
                .status(),
            404
        );
    }
}
