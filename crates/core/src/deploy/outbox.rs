//! A project deploy object's outbox: the GitHub and deploy-hook calls its machine's effects
//! ask for, queued in storage and run by the object's alarm. This module decides which
//! effects become jobs, which job runs next, and what becomes of a job after each try (done,
//! tried again later, or given up); the object only loads, applies the decision, stores and
//! arms its alarm.
//!
//! Invariants:
//! - each due job is tried at most once per alarm ring, oldest first ([`Outbox::next_due`]),
//!   so a ring always ends and the alarm never spins;
//! - the statuses of one deployment are mirrored in the order they happened (a status held
//!   back by a rate limit is not overtaken: [`effective_due_times`]);
//! - every failure is retried on a bounded schedule (never sooner than GitHub's `Retry-After`)
//!   and then given up; a dispatch given up ends its deployment with the reason, so no
//!   project stays locked.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::hook::hook_retry_delay_ms;
use super::machine::Effect;
use super::record::DeploymentState;
use super::retry::{effective_due_times, is_rate_limited, job_retry_delay_ms, JobFailure};
use crate::error::ApiError;
use crate::sealed::Sealed;

/// A dispatch's ticket, sealed, kept in its job so every try sends the same one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTicket {
    pub sealed: Sealed,
    pub expires_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Work {
    /// Create the GitHub deployment, then deliver the job to the hook (same ticket on every
    /// try, so a retry is the same job).
    Dispatch {
        deployment_id: u64,
        ticket: Option<JobTicket>,
    },
    Mirror {
        deployment_id: u64,
        github_deployment_id: u64,
        state: DeploymentState,
        description: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: u64,
    pub due_at_ms: i64,
    /// Failed tries so far.
    pub tries: u32,
    pub work: Work,
}

impl Job {
    /// `dispatch` or `mirror`, for logs and the API's view.
    pub fn kind(&self) -> &'static str {
        match self.work {
            Work::Dispatch { .. } => "dispatch",
            Work::Mirror { .. } => "mirror",
        }
    }

    pub fn deployment_id(&self) -> u64 {
        match self.work {
            Work::Dispatch { deployment_id, .. } | Work::Mirror { deployment_id, .. } => {
                deployment_id
            }
        }
    }
}

/// The queue as stored (under `outbox`), oldest job first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbox {
    pub next_id: u64,
    pub jobs: Vec<Job>,
}

impl Outbox {
    /// When each job may run (in queue order): the statuses of one deployment go in order.
    pub fn due_times(&self) -> Vec<(&Job, i64)> {
        let keyed: Vec<(Option<u64>, i64)> = self
            .jobs
            .iter()
            .map(|j| match &j.work {
                Work::Mirror { deployment_id, .. } => (Some(*deployment_id), j.due_at_ms),
                Work::Dispatch { .. } => (None, j.due_at_ms),
            })
            .collect();
        self.jobs.iter().zip(effective_due_times(&keyed)).collect()
    }

    /// Queues the effects that call out, due at once; the alarm effects are implied by the
    /// object's arming. Whether anything was queued (the outbox then needs storing).
    pub fn enqueue(&mut self, effects: &[Effect], now_ms: i64) -> bool {
        let mut queued = false;
        for effect in effects {
            let work = match effect {
                Effect::Dispatch { deployment_id, .. } => Work::Dispatch {
                    deployment_id: *deployment_id,
                    ticket: None,
                },
                Effect::MirrorStatus {
                    deployment_id,
                    github_deployment_id,
                    state,
                    description,
                } => Work::Mirror {
                    deployment_id: *deployment_id,
                    github_deployment_id: *github_deployment_id,
                    state: *state,
                    description: description.clone(),
                },
                Effect::ArmAlarm { .. } | Effect::ClearAlarm => continue,
            };
            self.next_id += 1;
            self.jobs.push(Job {
                id: self.next_id,
                due_at_ms: now_ms,
                tries: 0,
                work,
            });
            queued = true;
        }
        queued
    }

    /// When the alarm must ring for the jobs: the earliest due time, if any job is queued.
    pub fn next_alarm(&self) -> Option<i64> {
        self.due_times().into_iter().map(|(_, due)| due).min()
    }

    /// The job to try next in this ring: the oldest one due by `now_ms` and not `tried` yet.
    pub fn next_due(&self, now_ms: i64, tried: &HashSet<u64>) -> Option<&Job> {
        self.due_times()
            .into_iter()
            .filter(|(j, due)| *due <= now_ms && !tried.contains(&j.id))
            .map(|(j, _)| j)
            .min_by_key(|j| j.id)
    }

    pub fn job_mut(&mut self, id: u64) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    /// Drops job `id`; whether it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.jobs.len();
        self.jobs.retain(|j| j.id != id);
        self.jobs.len() != before
    }

    /// Drops every job due by `now_ms` (the alarm gave up on them); whether any went.
    pub fn drop_due(&mut self, now_ms: i64) -> bool {
        let before = self.jobs.len();
        self.jobs.retain(|j| j.due_at_ms > now_ms);
        self.jobs.len() != before
    }

    /// Applies a job's [`Next`] (for `Fail`, the object also ends the deployment).
    pub fn settle(&mut self, id: u64, next: &Next) {
        match next {
            Next::Retry { tries, due_at_ms } => {
                if let Some(job) = self.job_mut(id) {
                    job.tries = *tries;
                    job.due_at_ms = *due_at_ms;
                }
            }
            Next::Done | Next::Fail { .. } => {
                self.remove(id);
            }
        }
    }
}

/// What becomes of a job after a try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Done (or no longer wanted): drop it.
    Done,
    /// Try again then, counting `tries` failed tries.
    Retry { tries: u32, due_at_ms: i64 },
    /// Given up: drop it and end deployment `deployment_id` with `reason`.
    Fail { deployment_id: u64, reason: String },
}

/// A try that failed on our side or GitHub's: tried again on the hook's schedule (never
/// sooner than a rate limit's `Retry-After`, a minute when GitHub named no time), then given
/// up; a dispatch given up ends its deployment, a status mirror is just dropped.
pub fn after_error(job: &Job, e: &ApiError, now_ms: i64) -> Next {
    let tries = job.tries + 1;
    match job_retry_delay_ms(tries, JobFailure::of(e)) {
        Some(wait) => Next::Retry {
            tries,
            due_at_ms: now_ms + wait as i64,
        },
        None => match job.work {
            Work::Dispatch { deployment_id, .. } => Next::Fail {
                deployment_id,
                reason: format!("not dispatched after {tries} tries (last: {})", e.code()),
            },
            Work::Mirror { .. } => Next::Done,
        },
    }
}

/// A dispatch whose hook answered `answer` (`None`: no answer in time): done on a 2xx, else
/// tried again on the hook's schedule, then given up with what the hook last did.
pub fn after_hook(job: &Job, answer: Option<u16>, now_ms: i64) -> Next {
    if answer.is_some_and(|s| (200..300).contains(&s)) {
        return Next::Done;
    }
    let tries = job.tries + 1;
    match hook_retry_delay_ms(tries, answer) {
        Some(wait) => Next::Retry {
            tries,
            due_at_ms: now_ms + wait as i64,
        },
        None => Next::Fail {
            deployment_id: job.deployment_id(),
            reason: match answer {
                Some(status) => format!("the deploy hook answered {status} (try {tries})"),
                None => format!("the deploy hook did not answer (try {tries})"),
            },
        },
    }
}

/// Creating the GitHub deployment failed with `e`: `None` when GitHub did not process the
/// request (a rate limit), so the job is tried again ([`after_error`]); else the reason the
/// deployment ends. Anything but a rate limit may have created it, and creating is not
/// repeated blindly.
pub fn creation_refused(e: &ApiError) -> Option<String> {
    (!is_rate_limited(e)).then(|| format!("GitHub did not create the deployment ({})", e.code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::record::Trigger;

    const T0: i64 = 1_700_000_000_000;

    fn trigger() -> Trigger {
        Trigger {
            delivery_id: "d-1".into(),
            pusher: "octocat".into(),
            sha: "a".repeat(40),
            message: "m".into(),
            kind: Default::default(),
        }
    }

    fn dispatch(deployment_id: u64) -> Effect {
        Effect::Dispatch {
            deployment_id,
            sha: "a".repeat(40),
            trigger: trigger(),
        }
    }

    fn mirror(deployment_id: u64, state: DeploymentState) -> Effect {
        Effect::MirrorStatus {
            deployment_id,
            github_deployment_id: 900 + deployment_id,
            state,
            description: format!("deployment {deployment_id}"),
        }
    }

    fn rate_limited(retry_after_secs: Option<u64>) -> ApiError {
        ApiError::Github(crate::github::error::GithubError::RateLimited { retry_after_secs })
    }

    fn unavailable() -> ApiError {
        ApiError::Github(crate::github::error::GithubError::Server { status: 503 })
    }

    #[test]
    fn only_calls_out_become_jobs_numbered_in_order() {
        let mut outbox = Outbox::default();
        assert!(!outbox.enqueue(&[Effect::ArmAlarm { at_ms: T0 }, Effect::ClearAlarm], T0));
        assert!(outbox.jobs.is_empty());
        assert!(outbox.enqueue(
            &[
                dispatch(1),
                Effect::ArmAlarm { at_ms: T0 + 5 },
                mirror(1, DeploymentState::InProgress)
            ],
            T0
        ));
        let summary: Vec<_> = outbox
            .jobs
            .iter()
            .map(|j| (j.id, j.kind(), j.deployment_id(), j.due_at_ms, j.tries))
            .collect();
        assert_eq!(
            summary,
            [(1, "dispatch", 1, T0, 0), (2, "mirror", 1, T0, 0)]
        );
        assert_eq!(
            outbox.jobs[0].work,
            Work::Dispatch {
                deployment_id: 1,
                ticket: None
            }
        );
        outbox.enqueue(&[dispatch(2)], T0 + 1);
        assert_eq!(outbox.next_id, 3);
    }

    #[test]
    fn each_due_job_runs_once_per_ring_oldest_first() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[dispatch(1), dispatch(2)], T0);
        outbox.enqueue(&[dispatch(3)], T0 + 10_000);
        let mut tried = HashSet::new();
        let mut order = Vec::new();
        while let Some(job) = outbox.next_due(T0, &tried) {
            tried.insert(job.id);
            order.push(job.id);
        }
        assert_eq!(order, [1, 2], "job 3 is not due yet, and none runs twice");
        assert_eq!(outbox.next_alarm(), Some(T0));
        assert!(Outbox::default().next_alarm().is_none());
    }

    #[test]
    fn a_held_back_status_is_not_overtaken_by_a_later_one() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[mirror(1, DeploymentState::InProgress)], T0);
        outbox.enqueue(&[mirror(1, DeploymentState::Success)], T0 + 1);
        outbox.settle(
            1,
            &Next::Retry {
                tries: 1,
                due_at_ms: T0 + 60_000,
            },
        );
        assert!(outbox.next_due(T0 + 1, &HashSet::new()).is_none());
        assert_eq!(outbox.next_alarm(), Some(T0 + 60_000));
        assert_eq!(
            outbox.next_due(T0 + 60_000, &HashSet::new()).map(|j| j.id),
            Some(1)
        );
    }

    #[test]
    fn settling_retries_in_place_or_drops() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[dispatch(1), dispatch(2), dispatch(3)], T0);
        let retry = Next::Retry {
            tries: 2,
            due_at_ms: T0 + 4_000,
        };
        outbox.settle(1, &retry);
        assert_eq!(
            (outbox.jobs[0].tries, outbox.jobs[0].due_at_ms),
            (2, T0 + 4_000)
        );
        outbox.settle(2, &Next::Done);
        outbox.settle(
            3,
            &Next::Fail {
                deployment_id: 3,
                reason: "r".into(),
            },
        );
        outbox.settle(99, &retry);
        assert_eq!(outbox.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [1]);
        assert!(!outbox.remove(2));
        assert!(outbox.remove(1));
    }

    #[test]
    fn giving_up_drops_the_due_jobs_only() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[dispatch(1)], T0);
        outbox.enqueue(&[mirror(2, DeploymentState::Queued)], T0 + 5_000);
        assert!(outbox.drop_due(T0));
        assert_eq!(outbox.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [2]);
        assert!(!outbox.drop_due(T0));
    }

    #[test]
    fn a_failed_dispatch_is_retried_on_schedule_then_ends_its_deployment() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[dispatch(7)], T0);
        let mut job = outbox.jobs[0].clone();
        let mut waits = Vec::new();
        let last = loop {
            match after_error(&job, &unavailable(), T0) {
                Next::Retry { tries, due_at_ms } => {
                    waits.push(due_at_ms - T0);
                    job.tries = tries;
                }
                other => break other,
            }
        };
        assert_eq!(waits, [1_000, 4_000, 16_000]);
        assert_eq!(
            last,
            Next::Fail {
                deployment_id: 7,
                reason: "not dispatched after 4 tries (last: github_unavailable)".into()
            }
        );
    }

    #[test]
    fn a_failed_mirror_is_dropped_after_its_tries() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[mirror(1, DeploymentState::Success)], T0);
        let mut job = outbox.jobs[0].clone();
        job.tries = 3;
        assert_eq!(after_error(&job, &unavailable(), T0), Next::Done);
    }

    #[test]
    fn a_rate_limit_waits_for_github() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[mirror(1, DeploymentState::Success)], T0);
        let job = &outbox.jobs[0];
        assert_eq!(
            after_error(job, &rate_limited(Some(30)), T0),
            Next::Retry {
                tries: 1,
                due_at_ms: T0 + 30_000
            }
        );
        assert_eq!(
            after_error(job, &rate_limited(None), T0),
            Next::Retry {
                tries: 1,
                due_at_ms: T0 + 60_000
            },
            "GitHub's minute when it named no time"
        );
        let busy = ApiError::Unavailable {
            retry_after_secs: 9,
        };
        assert_eq!(
            after_error(job, &busy, T0),
            Next::Retry {
                tries: 1,
                due_at_ms: T0 + 9_000
            }
        );
    }

    #[test]
    fn a_hook_answer_decides_the_dispatch() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[dispatch(4)], T0);
        let mut job = outbox.jobs[0].clone();
        assert_eq!(after_hook(&job, Some(202), T0), Next::Done);
        assert_eq!(
            after_hook(&job, Some(503), T0),
            Next::Retry {
                tries: 1,
                due_at_ms: T0 + 1_000
            }
        );
        assert_eq!(
            after_hook(&job, Some(400), T0),
            Next::Fail {
                deployment_id: 4,
                reason: "the deploy hook answered 400 (try 1)".into()
            },
            "a refusal is not retried"
        );
        job.tries = 3;
        assert_eq!(
            after_hook(&job, None, T0),
            Next::Fail {
                deployment_id: 4,
                reason: "the deploy hook did not answer (try 4)".into()
            }
        );
    }

    #[test]
    fn only_a_rate_limited_creation_is_tried_again() {
        assert_eq!(creation_refused(&rate_limited(Some(5))), None);
        assert_eq!(
            creation_refused(&unavailable()).as_deref(),
            Some("GitHub did not create the deployment (github_unavailable)")
        );
        assert!(is_rate_limited(&rate_limited(None)));
        assert!(!is_rate_limited(&ApiError::Unavailable {
            retry_after_secs: 1
        }));
    }

    #[test]
    fn the_stored_shape_is_unchanged() {
        let mut outbox = Outbox::default();
        outbox.enqueue(&[dispatch(1), mirror(1, DeploymentState::InProgress)], T0);
        let stored = serde_json::json!({
            "nextId": 2,
            "jobs": [
                {"id": 1, "dueAtMs": T0, "tries": 0,
                 "work": {"type": "dispatch", "deploymentId": 1, "ticket": null}},
                {"id": 2, "dueAtMs": T0, "tries": 0,
                 "work": {"type": "mirror", "deploymentId": 1, "githubDeploymentId": 901,
                          "state": "in_progress", "description": "deployment 1"}}
            ]
        });
        assert_eq!(serde_json::to_value(&outbox).unwrap(), stored);
        assert_eq!(serde_json::from_value::<Outbox>(stored).unwrap(), outbox);
        let ticket = serde_json::json!({"type": "dispatch", "deploymentId": 3,
            "ticket": {"sealed": {"v": 1, "kid": "k", "iv": "i", "ct": "c"}, "expiresAtMs": 5}});
        let Work::Dispatch {
            ticket: Some(t), ..
        } = serde_json::from_value::<Work>(ticket).unwrap()
        else {
            panic!("a dispatch with its ticket")
        };
        assert_eq!((t.sealed.kid.as_str(), t.expires_at_ms), ("k", 5));
    }
}
