//! Approval and the project's repository. Invariants: a manual repository choice always wins
//! and is never replaced by an automatic one; approving (twice, or concurrently) starts at most
//! one repository creation at a time; an auto-created repository that lost the race is
//! recorded in the history, never silently dropped; a failed creation never undoes the
//! approval.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::create_repo::{is_our_repo, repo_description};
use super::record::{AutoCreate, GithubRepo, HistoryEvent, Project, RepoOrigin};
use super::types::{AttemptId, ProjectError, RepoFailure, SpecStatus};
use crate::ids::RepoFullName;
use crate::time::rfc3339_from_millis;

/// A creation that has not reported back after this long is presumed dead (its worker was
/// evicted or crashed) and may be taken over. GitHub answers a create in seconds; two minutes
/// leaves room for a slow run with its retry and read-back.
pub const AUTO_CREATE_STALE_MS: i64 = 2 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// An admin chose the repository.
    Manual,
    /// ghplane created it already.
    AlreadySet,
    /// Another approval is creating it right now.
    InFlight,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Manual => "manual",
            SkipReason::AlreadySet => "already_set",
            SkipReason::InFlight => "in_flight",
        }
    }
}

/// What the adapter needs to run one creation (see `create_repo` for the loop). Serialisable
/// because the project's Durable Object decides it and the request that calls GitHub runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepoPlan {
    pub attempt_id: AttemptId,
    /// The first name to try: the slug.
    pub name: String,
    /// The repository description, ending with this attempt's marker.
    pub description: String,
    /// An earlier attempt whose outcome is unknown (it failed uncertainly, or went stale and
    /// was taken over): it may have created the repository under the slug. Start the run
    /// with `timed_out_before = true`, and accept a read-back marked by either attempt.
    pub uncertain_attempt: Option<AttemptId>,
}

impl CreateRepoPlan {
    /// The read-back check: is the repository found under our name one we made?
    pub fn is_ours(&self, slug: &str, description: Option<&str>) -> bool {
        is_our_repo(description, slug, self.attempt_id.as_str())
            || self
                .uncertain_attempt
                .as_ref()
                .is_some_and(|a| is_our_repo(description, slug, a.as_str()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApproveStep {
    CreateRepo(CreateRepoPlan),
    Skip(SkipReason),
}

/// The `repo` member of the approval response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoReport {
    Created {
        full_name: RepoFullName,
    },
    Skipped(SkipReason),
    /// We created `created`, but `kept` was set meanwhile (for `reason`) and stays.
    Overridden {
        created: RepoFullName,
        kept: RepoFullName,
        reason: SkipReason,
    },
    Failed(RepoFailure),
}

/// How one creation ended, as the adapter reports it back to the project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum RepoOutcome {
    Created { repo: GithubRepo },
    Failed { code: RepoFailure },
}

/// [`on_repo_created`] or [`on_repo_failed`], whichever `outcome` calls for.
pub fn on_repo_outcome(
    project: &mut Project,
    attempt_id: &AttemptId,
    outcome: RepoOutcome,
    now_ms: i64,
) -> RepoReport {
    match outcome {
        RepoOutcome::Created { repo } => on_repo_created(project, attempt_id, repo, now_ms),
        RepoOutcome::Failed { code } => on_repo_failed(project, attempt_id, code, now_ms),
    }
}

impl RepoReport {
    /// `created`, `skipped` or `failed`: the `status` of the response and the log line.
    pub fn status(&self) -> &'static str {
        match self {
            RepoReport::Created { .. } => "created",
            RepoReport::Skipped(_) | RepoReport::Overridden { .. } => "skipped",
            RepoReport::Failed(_) => "failed",
        }
    }

    pub fn failure(&self) -> Option<RepoFailure> {
        match self {
            RepoReport::Failed(code) => Some(*code),
            _ => None,
        }
    }

    /// `{status: "created"|"skipped"|"failed", ...}`. An overridden creation is reported as
    /// skipped for the reason that won, with the unused repository named.
    pub fn to_json(&self) -> Value {
        match self {
            RepoReport::Created { full_name } => {
                json!({"status": "created", "fullName": full_name})
            }
            RepoReport::Skipped(reason) => json!({"status": "skipped", "reason": reason.as_str()}),
            RepoReport::Overridden {
                created,
                kept,
                reason,
            } => json!({
                "status": "skipped",
                "reason": reason.as_str(),
                "fullName": kept,
                "unusedRepo": created,
            }),
            RepoReport::Failed(code) => json!({
                "status": "failed",
                "code": code.code(),
                "message": code.message(),
            }),
        }
    }
}

impl ApproveStep {
    /// The response for a skipped step; a `CreateRepo` step reports after the run.
    pub fn skipped_report(&self) -> Option<RepoReport> {
        match self {
            ApproveStep::Skip(reason) => Some(RepoReport::Skipped(*reason)),
            ApproveStep::CreateRepo(_) => None,
        }
    }
}

/// Approves the spec (status → review) and decides whether a repository must be created.
/// `attempt_id` is used only when a creation starts. On error nothing changes.
pub fn approve(
    project: &mut Project,
    attempt_id: AttemptId,
    now_ms: i64,
) -> Result<ApproveStep, ProjectError> {
    project.status.check_approve()?;
    let now = rfc3339_from_millis(now_ms);
    if project.approved_at.is_none() {
        project.approved_at = Some(now.clone());
        project.record(now_ms, HistoryEvent::Approved);
        project.updated_at = now.clone();
    }
    if project.status != SpecStatus::Review {
        project.status = SpecStatus::Review;
        project.updated_at = now.clone();
    }

    match project.github_repo_origin {
        Some(RepoOrigin::Manual) if project.github_repo.is_some() => {
            return Ok(ApproveStep::Skip(SkipReason::Manual))
        }
        _ if project.github_repo.is_some() => return Ok(ApproveStep::Skip(SkipReason::AlreadySet)),
        _ => {}
    }

    let mut uncertain_attempt = last_uncertain_attempt(project);
    if let Some(running) = &project.auto_create {
        if now_ms.saturating_sub(running.started_at_ms) < AUTO_CREATE_STALE_MS {
            return Ok(ApproveStep::Skip(SkipReason::InFlight));
        }
        let stale = running.attempt_id.clone();
        project.record(
            now_ms,
            HistoryEvent::AutoCreateTakenOver {
                stale_attempt_id: stale.clone(),
            },
        );
        uncertain_attempt = Some(stale);
    }

    project.auto_create = Some(AutoCreate {
        attempt_id: attempt_id.clone(),
        started_at_ms: now_ms,
    });
    project.updated_at = now;
    Ok(ApproveStep::CreateRepo(CreateRepoPlan {
        description: repo_description(project.description.as_deref(), &project.slug, &attempt_id),
        name: project.slug.as_str().to_owned(),
        attempt_id,
        uncertain_attempt,
    }))
}

/// The most recent creation, if it ended without a clear answer.
fn last_uncertain_attempt(project: &Project) -> Option<AttemptId> {
    project.history.iter().rev().find_map(|e| match &e.event {
        HistoryEvent::RepoCreateFailed { code, attempt_id } => {
            Some(code.outcome_unknown().then(|| attempt_id.clone()))
        }
        HistoryEvent::RepoCreated { .. } | HistoryEvent::AutoCreateTakenOver { .. } => Some(None),
        _ => None,
    })?
}

fn finish_attempt(project: &mut Project, attempt_id: &AttemptId, now_ms: i64) {
    // Only our own marker is cleared: a newer attempt that took over keeps running.
    if project
        .auto_create
        .as_ref()
        .is_some_and(|a| &a.attempt_id == attempt_id)
    {
        project.auto_create = None;
    }
    project.updated_at = rfc3339_from_millis(now_ms);
}

/// A creation succeeded (or a read-back found our repository). If a repository was set
/// meanwhile (a manual override, or another attempt), that one stays and this one is
/// recorded as unused.
pub fn on_repo_created(
    project: &mut Project,
    attempt_id: &AttemptId,
    repo: GithubRepo,
    now_ms: i64,
) -> RepoReport {
    finish_attempt(project, attempt_id, now_ms);
    match &project.github_repo {
        Some(kept) if kept.full_name == repo.full_name => RepoReport::Created {
            full_name: repo.full_name,
        },
        Some(kept) => {
            let kept = kept.full_name.clone();
            let reason = match project.github_repo_origin {
                Some(RepoOrigin::Manual) => SkipReason::Manual,
                _ => SkipReason::AlreadySet,
            };
            project.record(
                now_ms,
                HistoryEvent::RepoCreatedButOverridden {
                    full_name: repo.full_name.clone(),
                    attempt_id: attempt_id.clone(),
                    kept: kept.clone(),
                },
            );
            RepoReport::Overridden {
                created: repo.full_name,
                kept,
                reason,
            }
        }
        None => {
            // Even an attempt that was taken over is accepted when it lands first: the
            // repository exists, and using it beats orphaning it.
            let full_name = repo.full_name.clone();
            project.github_repo = Some(repo);
            project.github_repo_origin = Some(RepoOrigin::Auto);
            project.record(
                now_ms,
                HistoryEvent::RepoCreated {
                    full_name: full_name.clone(),
                    attempt_id: attempt_id.clone(),
                },
            );
            RepoReport::Created { full_name }
        }
    }
}

/// A creation failed. The approval stands; approving again retries.
pub fn on_repo_failed(
    project: &mut Project,
    attempt_id: &AttemptId,
    code: RepoFailure,
    now_ms: i64,
) -> RepoReport {
    finish_attempt(project, attempt_id, now_ms);
    project.record(
        now_ms,
        HistoryEvent::RepoCreateFailed {
            code,
            attempt_id: attempt_id.clone(),
        },
    );
    RepoReport::Failed(code)
}

/// An admin's choice of repository: replaces whatever was set, in any status. A creation in
/// flight keeps its marker so its result is recognised (and recorded) as overridden.
pub fn manual_override(project: &mut Project, repo: GithubRepo, now_ms: i64) {
    let previous = project.github_repo.as_ref().map(|r| r.full_name.clone());
    let same = previous.as_ref() == Some(&repo.full_name)
        && project.github_repo_origin == Some(RepoOrigin::Manual);
    if !same {
        project.record(
            now_ms,
            HistoryEvent::ManualOverride {
                full_name: repo.full_name.clone(),
                previous,
            },
        );
    }
    project.github_repo = Some(repo);
    project.github_repo_origin = Some(RepoOrigin::Manual);
    project.updated_at = rfc3339_from_millis(now_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projects::record::tests::{project, T0};

    fn id(n: u8) -> AttemptId {
        AttemptId::from_random([n; 6])
    }

    fn repo(name: &str) -> GithubRepo {
        GithubRepo {
            full_name: RepoFullName::parse(name).unwrap(),
            default_branch: "main".into(),
            private: true,
        }
    }

    fn plan(step: ApproveStep) -> CreateRepoPlan {
        match step {
            ApproveStep::CreateRepo(p) => p,
            other => panic!("expected a creation, got {other:?}"),
        }
    }

    fn events(p: &Project) -> Vec<&HistoryEvent> {
        p.history.iter().map(|e| &e.event).collect()
    }

    #[test]
    fn approve_moves_to_review_and_plans_a_creation_named_after_the_slug() {
        let mut p = project(SpecStatus::Interviewing);
        let step = plan(approve(&mut p, id(1), T0 + 10).unwrap());
        assert_eq!(step.name, "acme-x1y2");
        assert_eq!(step.description, "Widgets [ghplane:acme-x1y2:010101010101]");
        assert_eq!(step.uncertain_attempt, None);
        assert_eq!(p.status, SpecStatus::Review);
        assert_eq!(p.approved_at.as_deref(), Some(p.updated_at.as_str()));
        assert_eq!(p.auto_create.as_ref().unwrap().attempt_id, id(1));
        assert_eq!(events(&p), [&HistoryEvent::Approved]);
    }

    #[test]
    fn approving_a_draft_is_refused_and_changes_nothing() {
        let mut p = project(SpecStatus::Draft);
        let before = p.clone();
        let err = approve(&mut p, id(1), T0).unwrap_err();
        assert_eq!(
            err,
            ProjectError::IllegalStatusTransition {
                from: SpecStatus::Draft,
                to: SpecStatus::Review
            }
        );
        assert_eq!(p, before);
    }

    #[test]
    fn a_second_approval_while_in_flight_creates_nothing() {
        let mut p = project(SpecStatus::Interviewing);
        let first = plan(approve(&mut p, id(1), T0).unwrap());
        assert_eq!(
            approve(&mut p, id(2), T0 + 1000).unwrap(),
            ApproveStep::Skip(SkipReason::InFlight)
        );
        assert_eq!(p.auto_create.as_ref().unwrap().attempt_id, first.attempt_id);
        let report = on_repo_created(&mut p, &first.attempt_id, repo("org/acme-x1y2"), T0 + 2000);
        assert_eq!(
            report.to_json(),
            json!({"status": "created", "fullName": "org/acme-x1y2"})
        );
        assert!(p.auto_create.is_none());
        assert_eq!(p.github_repo_origin, Some(RepoOrigin::Auto));
        let again = approve(&mut p, id(3), T0 + 3000).unwrap();
        assert_eq!(again, ApproveStep::Skip(SkipReason::AlreadySet));
        assert_eq!(
            again.skipped_report().unwrap().to_json(),
            json!({"status": "skipped", "reason": "already_set"})
        );
        assert_eq!(
            p.approved_at,
            Some(rfc3339_from_millis(T0)),
            "first approval kept"
        );
        let before = p.clone();
        approve(&mut p, id(4), T0 + 4000).unwrap();
        assert_eq!(p, before, "a skipped re-approval changes nothing to store");
    }

    #[test]
    fn a_stale_marker_is_taken_over_and_its_attempt_treated_as_uncertain() {
        let mut p = project(SpecStatus::Review);
        plan(approve(&mut p, id(1), T0).unwrap());
        assert_eq!(
            approve(&mut p, id(2), T0 + AUTO_CREATE_STALE_MS - 1).unwrap(),
            ApproveStep::Skip(SkipReason::InFlight)
        );
        let second = plan(approve(&mut p, id(2), T0 + AUTO_CREATE_STALE_MS).unwrap());
        assert_eq!(second.uncertain_attempt, Some(id(1)));
        assert_eq!(p.auto_create.as_ref().unwrap().attempt_id, id(2));
        assert!(events(&p).contains(&&HistoryEvent::AutoCreateTakenOver {
            stale_attempt_id: id(1)
        }));
        // The read-back accepts a repository made by either attempt, and nothing else.
        let by_first = "x [ghplane:acme-x1y2:010101010101]";
        assert!(second.is_ours("acme-x1y2", Some(by_first)));
        assert!(second.is_ours("acme-x1y2", Some(&second.description)));
        assert!(!second.is_ours("acme-x1y2", Some("someone else's")));
    }

    #[test]
    fn the_stale_attempt_landing_first_wins_and_the_other_is_recorded() {
        let mut p = project(SpecStatus::Review);
        plan(approve(&mut p, id(1), T0).unwrap());
        plan(approve(&mut p, id(2), T0 + AUTO_CREATE_STALE_MS).unwrap());
        on_repo_created(
            &mut p,
            &id(1),
            repo("org/acme-x1y2"),
            T0 + AUTO_CREATE_STALE_MS + 1,
        );
        assert_eq!(
            p.github_repo.as_ref().unwrap().full_name.as_str(),
            "org/acme-x1y2"
        );
        assert_eq!(
            p.auto_create.as_ref().unwrap().attempt_id,
            id(2),
            "the newer attempt still runs"
        );
        let r = on_repo_created(
            &mut p,
            &id(2),
            repo("org/acme-x1y2-zz99"),
            T0 + AUTO_CREATE_STALE_MS + 2,
        );
        assert_eq!(
            r.to_json(),
            json!({"status": "skipped", "reason": "already_set", "fullName": "org/acme-x1y2",
                   "unusedRepo": "org/acme-x1y2-zz99"})
        );
        assert!(p.auto_create.is_none());
        assert_eq!(
            p.github_repo.as_ref().unwrap().full_name.as_str(),
            "org/acme-x1y2"
        );
    }

    #[test]
    fn manual_override_during_creation_wins_and_the_created_repo_is_recorded() {
        let mut p = project(SpecStatus::Interviewing);
        let run = plan(approve(&mut p, id(1), T0).unwrap());
        manual_override(&mut p, repo("client/app"), T0 + 1);
        let report = on_repo_created(&mut p, &run.attempt_id, repo("org/acme-x1y2"), T0 + 2);
        assert_eq!(
            report.to_json(),
            json!({"status": "skipped", "reason": "manual", "fullName": "client/app",
                   "unusedRepo": "org/acme-x1y2"})
        );
        assert_eq!(
            p.github_repo.as_ref().unwrap().full_name.as_str(),
            "client/app"
        );
        assert_eq!(p.github_repo_origin, Some(RepoOrigin::Manual));
        assert!(p.auto_create.is_none());
        assert_eq!(
            events(&p).last().unwrap(),
            &&HistoryEvent::RepoCreatedButOverridden {
                full_name: RepoFullName::parse("org/acme-x1y2").unwrap(),
                attempt_id: id(1),
                kept: RepoFullName::parse("client/app").unwrap(),
            }
        );
        assert_eq!(
            approve(&mut p, id(2), T0 + 3).unwrap(),
            ApproveStep::Skip(SkipReason::Manual)
        );
    }

    #[test]
    fn manual_override_replaces_an_auto_repo_and_is_idempotent() {
        let mut p = project(SpecStatus::Review);
        let run = plan(approve(&mut p, id(1), T0).unwrap());
        on_repo_created(&mut p, &run.attempt_id, repo("org/acme-x1y2"), T0 + 1);
        manual_override(&mut p, repo("client/app"), T0 + 2);
        let n = p.history.len();
        assert_eq!(
            events(&p).last().unwrap(),
            &&HistoryEvent::ManualOverride {
                full_name: RepoFullName::parse("client/app").unwrap(),
                previous: Some(RepoFullName::parse("org/acme-x1y2").unwrap()),
            }
        );
        manual_override(&mut p, repo("client/app"), T0 + 3);
        assert_eq!(p.history.len(), n, "the same choice again records nothing");
        // Allowed in any status, even draft.
        let mut d = project(SpecStatus::Draft);
        manual_override(&mut d, repo("client/app"), T0);
        assert_eq!(d.github_repo_origin, Some(RepoOrigin::Manual));
    }

    #[test]
    fn failure_keeps_the_approval_and_a_new_approval_retries() {
        let mut p = project(SpecStatus::Interviewing);
        let run = plan(approve(&mut p, id(1), T0).unwrap());
        let report = on_repo_failed(&mut p, &run.attempt_id, RepoFailure::Forbidden, T0 + 1);
        let v = report.to_json();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["code"], "GITHUB_FORBIDDEN");
        assert_eq!(p.status, SpecStatus::Review);
        assert!(p.approved_at.is_some());
        assert!(p.auto_create.is_none() && p.github_repo.is_none());
        let retry = plan(approve(&mut p, id(2), T0 + 2).unwrap());
        assert_eq!(retry.uncertain_attempt, None, "a 403 created nothing");
    }

    #[test]
    fn after_an_unavailable_failure_the_next_run_reads_back_first() {
        let mut p = project(SpecStatus::Interviewing);
        plan(approve(&mut p, id(1), T0).unwrap());
        on_repo_failed(&mut p, &id(1), RepoFailure::Unavailable, T0 + 1);
        let retry = plan(approve(&mut p, id(2), T0 + 2).unwrap());
        assert_eq!(retry.uncertain_attempt, Some(id(1)));
        on_repo_failed(&mut p, &id(2), RepoFailure::NameTaken, T0 + 3);
        let third = plan(approve(&mut p, id(3), T0 + 4).unwrap());
        assert_eq!(third.uncertain_attempt, None);
    }

    #[test]
    fn a_late_failure_of_a_replaced_attempt_leaves_the_new_marker() {
        let mut p = project(SpecStatus::Review);
        plan(approve(&mut p, id(1), T0).unwrap());
        plan(approve(&mut p, id(2), T0 + AUTO_CREATE_STALE_MS).unwrap());
        on_repo_failed(
            &mut p,
            &id(1),
            RepoFailure::Unavailable,
            T0 + AUTO_CREATE_STALE_MS + 1,
        );
        assert_eq!(p.auto_create.as_ref().unwrap().attempt_id, id(2));
        assert_eq!(
            approve(&mut p, id(3), T0 + AUTO_CREATE_STALE_MS + 2).unwrap(),
            ApproveStep::Skip(SkipReason::InFlight)
        );
    }

    #[test]
    fn plans_and_outcomes_cross_the_object_boundary() {
        let mut p = project(SpecStatus::Interviewing);
        let run = plan(approve(&mut p, id(1), T0).unwrap());
        let text = serde_json::to_string(&run).unwrap();
        assert!(text.contains("\"attemptId\"") && text.contains("\"uncertainAttempt\""));
        assert_eq!(serde_json::from_str::<CreateRepoPlan>(&text).unwrap(), run);

        let created = RepoOutcome::Created {
            repo: repo("org/acme-x1y2"),
        };
        let v = serde_json::to_value(&created).unwrap();
        assert_eq!(
            v,
            json!({"outcome": "created", "repo": {"fullName": "org/acme-x1y2",
                   "defaultBranch": "main", "private": true}})
        );
        assert_eq!(serde_json::from_value::<RepoOutcome>(v).unwrap(), created);
        let failed = RepoOutcome::Failed {
            code: RepoFailure::NameTaken,
        };
        let v = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            v,
            json!({"outcome": "failed", "code": "GITHUB_REPO_NAME_TAKEN"})
        );

        let report = on_repo_outcome(&mut p, &run.attempt_id, failed, T0 + 1);
        assert_eq!(report.status(), "failed");
        assert_eq!(report.failure(), Some(RepoFailure::NameTaken));
        let run = plan(approve(&mut p, id(2), T0 + 2).unwrap());
        let report = on_repo_outcome(&mut p, &run.attempt_id, created, T0 + 3);
        assert_eq!((report.status(), report.failure()), ("created", None));
        assert_eq!(RepoReport::Skipped(SkipReason::Manual).status(), "skipped");
    }

    #[test]
    fn a_duplicate_success_report_is_harmless() {
        let mut p = project(SpecStatus::Review);
        plan(approve(&mut p, id(1), T0).unwrap());
        on_repo_created(&mut p, &id(1), repo("org/acme-x1y2"), T0 + 1);
        let n = p.history.len();
        let r = on_repo_created(&mut p, &id(1), repo("org/acme-x1y2"), T0 + 2);
        assert!(matches!(r, RepoReport::Created { .. }));
        assert_eq!(p.history.len(), n);
    }
}
