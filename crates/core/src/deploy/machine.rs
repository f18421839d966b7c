//! A project's push-to-deploy state machine: exactly one deployment per burst of pushes.
//!
//! Invariants:
//! - at most one deployment runs at a time, and at most one follow-up waits behind it;
//! - a deployment always takes the newest sha seen (by `seq`); an older push never replaces a
//!   newer target, and a redelivered push (same delivery id) changes nothing;
//! - a push never moves the branch backwards: one whose `after` the branch already moved past
//!   (or already deployed) is stale whatever its delivery id or `seq`, unless it is a force
//!   push ([`BranchHistory`] decides);
//! - every event leaves the alarm at [`DeployMachine::desired_alarm`] (the running
//!   deployment's deadline, else the pending burst's fire time, else none), so a lost or
//!   early alarm is harmless: handling it re-arms.
//!
//! The machine is data plus pure transitions: events carry `now_ms`, and the outputs are
//! [`Effect`]s for the adapter to perform (arm the Durable Object alarm, dispatch a job,
//! mirror a status to GitHub).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::lineage::{BranchHistory, Step, Verdict};
use super::record::{Deployment, DeploymentState, Outcome, ReportedState, Trigger, TriggerKind};
pub use super::redeploy::{Redeploy, Redeployed};
use super::source::is_commit_sha;
use crate::ids::truncate;
use crate::time::rfc3339_from_millis;

pub use super::config::{
    DeployConfig, DEBOUNCE_CAP_FACTOR, DEFAULT_DEBOUNCE_SECONDS, DEFAULT_TIMEOUT_SECONDS,
};

/// GitHub retries a delivery within hours, not weeks; a few hundred ids cover any burst of
/// redeliveries while keeping the stored state small.
pub const MAX_RECENT_DELIVERIES: usize = 256;
pub const MAX_DEPLOYMENTS: usize = 50;
const MAX_MESSAGE_LEN: usize = 1000;
const MAX_LABEL_LEN: usize = 200;

/// A push to the linked branch, as the webhook route hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    pub delivery_id: String,
    /// The push's `before`: the branch head it moved from (all zeros for a new branch).
    pub before: String,
    /// The push's `after`: the branch head.
    pub sha: String,
    /// A force push: a deliberate move, even back to an older sha (a rollback).
    pub forced: bool,
    pub pusher: String,
    pub message: String,
    /// Delivery order as received; larger is newer.
    pub seq: u64,
}

/// Pushes not yet deployed: the debounce before a dispatch, or the follow-up behind a running
/// deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Burst {
    first_push_at_ms: i64,
    last_push_at_ms: i64,
    seq: u64,
    pushes: u32,
    trigger: Trigger,
    /// A redeploy: due at once (no debounce); a push into the burst makes it a push's again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    immediate: bool,
}

impl Burst {
    fn fire_at(&self, cfg: &DeployConfig) -> i64 {
        if self.immediate {
            return self.first_push_at_ms;
        }
        (self.last_push_at_ms + cfg.debounce_ms).min(self.first_push_at_ms + cfg.cap_ms())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Running {
    deployment_id: u64,
    sha: String,
    deadline_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Set the Durable Object alarm (replacing any earlier one).
    ArmAlarm {
        at_ms: i64,
    },
    ClearAlarm,
    /// Create the GitHub deployment, then send the hook job (issue a ticket for it). Report
    /// the GitHub id with `on_github_deployment`, a delivery failure with `on_dispatch_failed`.
    Dispatch {
        deployment_id: u64,
        sha: String,
        trigger: Trigger,
    },
    /// Post this deployment status to GitHub.
    MirrorStatus {
        deployment_id: u64,
        github_deployment_id: u64,
        state: DeploymentState,
        description: String,
    },
}

/// Why an event changed nothing (worth a log line, not an error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// The delivery id was seen already.
    Redelivery,
    /// Its `seq` is not newer than a push already taken, or the branch already moved past (or
    /// deployed) its sha.
    Stale,
    /// It moves the branch to the sha already deploying, with nothing queued.
    AlreadyDeploying,
    /// Not a commit sha, or no delivery id.
    InvalidPush,
    /// A report for a deployment that is not the running one (finished, timed out, unknown).
    NotCurrent,
    /// The same report again.
    Duplicate,
    /// An alarm or timeout before anything was due; the effects re-arm it.
    NotDue,
    /// Nothing pending or running.
    Idle,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    pub effects: Vec<Effect>,
    pub ignored: Option<Ignored>,
}

impl Reaction {
    fn done(effects: Vec<Effect>) -> Reaction {
        Reaction {
            effects,
            ignored: None,
        }
    }

    fn ignored(why: Ignored) -> Reaction {
        Reaction {
            effects: Vec::new(),
            ignored: Some(why),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Debouncing {
        sha: String,
        fire_at_ms: i64,
    },
    Running {
        deployment_id: u64,
        deadline_ms: i64,
        /// The sha that deploys next, once this one ends.
        follow_up: Option<String>,
    },
}

/// One project's deploy state, stored as JSON in its Durable Object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeployMachine {
    pending: Option<Burst>,
    running: Option<Running>,
    high_water_seq: Option<u64>,
    recent_deliveries: VecDeque<String>,
    /// What the linked branch moved past; forgotten when the source changes.
    history: BranchHistory,
    /// Newest first.
    deployments: Vec<Deployment>,
    last_deployment_id: u64,
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

impl DeployMachine {
    pub fn new() -> DeployMachine {
        DeployMachine::default()
    }

    pub fn on_push(&mut self, push: Push, cfg: &DeployConfig, now_ms: i64) -> Reaction {
        // Stored and compared in the same (cut) form, so even an oversized id is recognised.
        let delivery_id = truncate(&push.delivery_id, MAX_LABEL_LEN);
        if self.recent_deliveries.contains(&delivery_id) {
            return Reaction::ignored(Ignored::Redelivery);
        }
        if delivery_id.is_empty() || !is_commit_sha(&push.sha) {
            return Reaction::ignored(Ignored::InvalidPush);
        }
        self.recent_deliveries.push_back(delivery_id.clone());
        if self.recent_deliveries.len() > MAX_RECENT_DELIVERIES {
            self.recent_deliveries.pop_front();
        }
        if self.high_water_seq.is_some_and(|h| push.seq <= h) {
            return Reaction::ignored(Ignored::Stale);
        }
        if self.pending.is_none() && self.running.as_ref().is_some_and(|r| r.sha == push.sha) {
            return Reaction::ignored(Ignored::AlreadyDeploying);
        }
        let already_deployed = self.deployments.iter().any(|d| d.sha == push.sha);
        let step = Step {
            before: &push.before,
            after: &push.sha,
            forced: push.forced,
        };
        if self.history.observe(step, already_deployed) == Verdict::Stale {
            return Reaction::ignored(Ignored::Stale);
        }
        // Only a push taken raises the mark: a stale one that overtook a newer push on its
        // way here must not make that newer push look old.
        self.high_water_seq = Some(push.seq);

        let trigger = Trigger {
            delivery_id,
            pusher: truncate(&push.pusher, MAX_LABEL_LEN),
            sha: push.sha,
            message: truncate(&push.message, MAX_MESSAGE_LEN),
            kind: TriggerKind::Push,
        };
        match &mut self.pending {
            Some(b) => {
                b.last_push_at_ms = now_ms;
                b.seq = push.seq;
                b.pushes = b.pushes.saturating_add(1);
                b.trigger = trigger;
                b.immediate = false;
            }
            None => {
                self.pending = Some(Burst {
                    first_push_at_ms: now_ms,
                    last_push_at_ms: now_ms,
                    seq: push.seq,
                    pushes: 1,
                    trigger,
                    immediate: false,
                })
            }
        }
        if self.running.is_some() {
            // The follow-up waits for the running deployment; the alarm stays at its deadline.
            Reaction::done(Vec::new())
        } else {
            Reaction::done(vec![self.alarm_effect(cfg)])
        }
    }

    /// An admin's redeploy of the branch head, queued like a push but due at once; never in
    /// place of a queued push or a sha the branch moved past ([`Redeployed`]). `None`: bad sha.
    pub fn on_redeploy(
        &mut self,
        redeploy: Redeploy,
        cfg: &DeployConfig,
        now_ms: i64,
    ) -> (Reaction, Option<Redeployed>) {
        if !is_commit_sha(&redeploy.sha) {
            return (Reaction::ignored(Ignored::InvalidPush), None);
        }
        if self.pending.is_some() {
            return (
                Reaction::ignored(Ignored::Stale),
                Some(Redeployed::PushPending),
            );
        }
        if let Some(r) = self.running.as_ref().filter(|r| r.sha == redeploy.sha) {
            let id = r.deployment_id;
            return (
                Reaction::ignored(Ignored::AlreadyDeploying),
                Some(Redeployed::AlreadyDeploying { deployment_id: id }),
            );
        }
        if self.history.redeploy(&redeploy.sha) == Verdict::Stale {
            return (Reaction::ignored(Ignored::Stale), Some(Redeployed::Stale));
        }
        self.pending = Some(Burst {
            first_push_at_ms: now_ms,
            last_push_at_ms: now_ms,
            seq: self.high_water_seq.unwrap_or(0),
            pushes: 1,
            trigger: Trigger {
                delivery_id: String::new(),
                pusher: String::new(),
                sha: redeploy.sha,
                message: truncate(&redeploy.message, MAX_MESSAGE_LEN),
                kind: TriggerKind::Redeploy,
            },
            immediate: true,
        });
        if self.running.is_some() {
            return (Reaction::done(Vec::new()), Some(Redeployed::Queued));
        }
        let effects = self.dispatch(cfg, now_ms);
        let id = self.last_deployment_id;
        (
            Reaction::done(effects),
            Some(Redeployed::Dispatched { deployment_id: id }),
        )
    }

    pub fn on_alarm(&mut self, cfg: &DeployConfig, now_ms: i64) -> Reaction {
        if let Some(r) = &self.running {
            if now_ms >= r.deadline_ms {
                return self.on_timeout(cfg, now_ms);
            }
            return Reaction {
                effects: vec![self.alarm_effect(cfg)],
                ignored: Some(Ignored::NotDue),
            };
        }
        match &self.pending {
            Some(b) if now_ms >= b.fire_at(cfg) => Reaction::done(self.dispatch(cfg, now_ms)),
            Some(_) => Reaction {
                effects: vec![self.alarm_effect(cfg)],
                ignored: Some(Ignored::NotDue),
            },
            None => Reaction::ignored(Ignored::Idle),
        }
    }

    pub fn on_status_report(
        &mut self,
        deployment_id: u64,
        state: ReportedState,
        cfg: &DeployConfig,
        now_ms: i64,
    ) -> Reaction {
        if !self.is_running(deployment_id) {
            // A late report for a deployment that timed out stays unrecorded: the machine has
            // moved on, and rewriting history would make the mirrored status lie.
            return Reaction::ignored(Ignored::NotCurrent);
        }
        match state {
            ReportedState::InProgress => {
                let Some(d) = self.deployment_mut(deployment_id) else {
                    return Reaction::ignored(Ignored::NotCurrent);
                };
                if d.state == DeploymentState::InProgress {
                    return Reaction::ignored(Ignored::Duplicate);
                }
                d.state = DeploymentState::InProgress;
                d.started_at = Some(rfc3339_from_millis(now_ms));
                let description = format!("deploying {}", short(&d.sha));
                let d = d.clone();
                Reaction::done(mirror(&d, description).into_iter().collect())
            }
            ReportedState::Success => Reaction::done(self.finish(
                DeploymentState::Success,
                Outcome::Succeeded,
                cfg,
                now_ms,
            )),
            ReportedState::Failure => {
                Reaction::done(self.finish(DeploymentState::Failure, Outcome::Failed, cfg, now_ms))
            }
            ReportedState::Error => {
                Reaction::done(self.finish(DeploymentState::Error, Outcome::Errored, cfg, now_ms))
            }
        }
    }

    /// The running deployment ran past its deadline: it ends as `error` (`timed_out`), and
    /// whatever was pushed meanwhile deploys next.
    pub fn on_timeout(&mut self, cfg: &DeployConfig, now_ms: i64) -> Reaction {
        match &self.running {
            None => Reaction::ignored(Ignored::Idle),
            Some(r) if now_ms < r.deadline_ms => Reaction {
                effects: vec![self.alarm_effect(cfg)],
                ignored: Some(Ignored::NotDue),
            },
            Some(_) => {
                Reaction::done(self.finish(DeploymentState::Error, Outcome::TimedOut, cfg, now_ms))
            }
        }
    }

    /// The job could not be handed over (the hook failed after its retries, or GitHub refused
    /// the deployment), for `reason` (shown with the deployment). Without this the project
    /// would wait for the timeout.
    pub fn on_dispatch_failed(
        &mut self,
        deployment_id: u64,
        reason: &str,
        cfg: &DeployConfig,
        now_ms: i64,
    ) -> Reaction {
        if !self.is_running(deployment_id) {
            return Reaction::ignored(Ignored::NotCurrent);
        }
        self.set_error(deployment_id, reason);
        Reaction::done(self.finish(DeploymentState::Error, Outcome::DispatchFailed, cfg, now_ms))
    }

    /// The object's own alarm kept failing (storage, configuration) past its retry bound: the
    /// running deployment, if any, ends as `error` with `reason` so the project is not locked
    /// until its deadline by a fault that may outlast it.
    pub fn on_alarm_failed(&mut self, reason: &str, cfg: &DeployConfig, now_ms: i64) -> Reaction {
        let Some(id) = self.running.as_ref().map(|r| r.deployment_id) else {
            return Reaction {
                effects: vec![self.alarm_effect(cfg)],
                ignored: Some(Ignored::Idle),
            };
        };
        self.set_error(id, reason);
        Reaction::done(self.finish(DeploymentState::Error, Outcome::AlarmFailed, cfg, now_ms))
    }

    fn set_error(&mut self, deployment_id: u64, reason: &str) {
        if let Some(d) = self.deployment_mut(deployment_id) {
            d.error = Some(truncate(reason, MAX_LABEL_LEN));
        }
    }

    /// Records GitHub's id for a deployment. Statuses reached before it was known are
    /// mirrored now, so the order of the two calls does not matter.
    pub fn on_github_deployment(
        &mut self,
        deployment_id: u64,
        github_deployment_id: u64,
    ) -> Reaction {
        let Some(d) = self.deployment_mut(deployment_id) else {
            return Reaction::ignored(Ignored::NotCurrent);
        };
        if d.github_deployment_id == Some(github_deployment_id) {
            return Reaction::ignored(Ignored::Duplicate);
        }
        d.github_deployment_id = Some(github_deployment_id);
        let d = d.clone();
        if d.state == DeploymentState::Queued {
            return Reaction::done(Vec::new());
        }
        Reaction::done(mirror(&d, describe(&d)).into_iter().collect())
    }

    /// The project now deploys from another repository or branch: pushes queued for the old
    /// one are dropped. A running deployment finishes normally.
    pub fn on_source_changed(&mut self, cfg: &DeployConfig) -> Reaction {
        self.pending = None;
        self.history = BranchHistory::new();
        Reaction::done(vec![self.alarm_effect(cfg)])
    }

    fn dispatch(&mut self, cfg: &DeployConfig, now_ms: i64) -> Vec<Effect> {
        let Some(b) = self.pending.take() else {
            return vec![self.alarm_effect(cfg)];
        };
        self.last_deployment_id += 1;
        let id = self.last_deployment_id;
        let sha = b.trigger.sha.clone();
        self.deployments.insert(
            0,
            Deployment {
                id,
                sha: sha.clone(),
                trigger: b.trigger.clone(),
                pushes: b.pushes,
                state: DeploymentState::Queued,
                created_at: rfc3339_from_millis(now_ms),
                started_at: None,
                finished_at: None,
                github_deployment_id: None,
                outcome: None,
                error: None,
            },
        );
        self.deployments.truncate(MAX_DEPLOYMENTS);
        self.running = Some(Running {
            deployment_id: id,
            sha: sha.clone(),
            deadline_ms: now_ms + cfg.timeout_ms,
        });
        vec![
            Effect::Dispatch {
                deployment_id: id,
                sha,
                trigger: b.trigger,
            },
            self.alarm_effect(cfg),
        ]
    }

    /// Ends the running deployment and starts the follow-up: at once when the follow-up's
    /// burst has been quiet for the window (or hit the cap) while waiting, otherwise when
    /// it does. Waiting longer would only add latency; dispatching a burst still in progress
    /// would spend a deployment on a sha about to be replaced.
    fn finish(
        &mut self,
        state: DeploymentState,
        outcome: Outcome,
        cfg: &DeployConfig,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(r) = self.running.take() {
            if let Some(d) = self.deployment_mut(r.deployment_id) {
                d.state = state;
                d.outcome = Some(outcome);
                d.finished_at = Some(rfc3339_from_millis(now_ms));
                let d = d.clone();
                let description = match outcome {
                    Outcome::TimedOut => format!("no result within {} s", cfg.timeout_ms / 1000),
                    _ => describe(&d),
                };
                effects.extend(mirror(&d, description));
            }
        }
        match &self.pending {
            Some(b) if now_ms >= b.fire_at(cfg) => effects.extend(self.dispatch(cfg, now_ms)),
            _ => effects.push(self.alarm_effect(cfg)),
        }
        effects
    }

    fn is_running(&self, deployment_id: u64) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.deployment_id == deployment_id)
    }

    fn deployment_mut(&mut self, id: u64) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.id == id)
    }

    fn alarm_effect(&self, cfg: &DeployConfig) -> Effect {
        match self.desired_alarm(cfg) {
            Some(at_ms) => Effect::ArmAlarm { at_ms },
            None => Effect::ClearAlarm,
        }
    }

    /// When the alarm should ring: the running deployment's deadline, else the pending
    /// burst's fire time.
    pub fn desired_alarm(&self, cfg: &DeployConfig) -> Option<i64> {
        match (&self.running, &self.pending) {
            (Some(r), _) => Some(r.deadline_ms),
            (None, Some(b)) => Some(b.fire_at(cfg)),
            (None, None) => None,
        }
    }

    pub fn phase(&self, cfg: &DeployConfig) -> Phase {
        match (&self.running, &self.pending) {
            (Some(r), follow) => Phase::Running {
                deployment_id: r.deployment_id,
                deadline_ms: r.deadline_ms,
                follow_up: follow.as_ref().map(|b| b.trigger.sha.clone()),
            },
            (None, Some(b)) => Phase::Debouncing {
                sha: b.trigger.sha.clone(),
                fire_at_ms: b.fire_at(cfg),
            },
            (None, None) => Phase::Idle,
        }
    }

    /// Newest first, at most [`MAX_DEPLOYMENTS`].
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    pub fn deployment(&self, id: u64) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.id == id)
    }
}

fn describe(d: &Deployment) -> String {
    let sha = short(&d.sha);
    match d.outcome {
        Some(Outcome::Succeeded) => format!("deployed {sha}"),
        Some(Outcome::Failed) => format!("deploy of {sha} failed"),
        Some(Outcome::Errored) => format!("deploy of {sha} errored"),
        Some(Outcome::TimedOut) => format!("deploy of {sha} timed out"),
        Some(Outcome::DispatchFailed) => format!("deploy of {sha} could not be started"),
        Some(Outcome::AlarmFailed) => format!("deploy of {sha} stopped: ghplane failed"),
        None if d.state == DeploymentState::InProgress => format!("deploying {sha}"),
        None => format!("queued {sha}"),
    }
}

/// Nothing to mirror until GitHub's id is known; `on_github_deployment` catches up.
fn mirror(d: &Deployment, description: String) -> Option<Effect> {
    Some(Effect::MirrorStatus {
        deployment_id: d.id,
        github_deployment_id: d.github_deployment_id?,
        state: d.state,
        description,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::deploy::source::{pushed_branch, BranchName};

    pub(crate) const T0: i64 = 1_700_000_000_000;
    pub(crate) const CFG: DeployConfig = DeployConfig {
        debounce_ms: 10_000,
        timeout_ms: 900_000,
    };

    pub(crate) fn sha(n: u64) -> String {
        format!("{n:040x}")
    }

    /// A push to `sha(n)` from a branch head this test does not track.
    pub(crate) fn push(n: u64) -> Push {
        Push {
            delivery_id: format!("delivery-{n}"),
            before: "0".repeat(40),
            sha: sha(n),
            forced: false,
            pusher: "octocat".into(),
            message: format!("commit {n}"),
            seq: n,
        }
    }

    /// The push `sha(from)` → `sha(to)`, the `seq`-th received, under delivery id `id`.
    fn step(from: u64, to: u64, seq: u64, id: &str) -> Push {
        Push {
            delivery_id: id.to_owned(),
            before: sha(from),
            sha: sha(to),
            forced: false,
            pusher: "octocat".into(),
            message: format!("commit {to}"),
            seq,
        }
    }

    fn dispatches(r: &Reaction) -> Vec<(u64, String)> {
        r.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Dispatch {
                    deployment_id, sha, ..
                } => Some((*deployment_id, sha.clone())),
                _ => None,
            })
            .collect()
    }

    fn alarm(r: &Reaction) -> Option<&Effect> {
        r.effects
            .iter()
            .rfind(|e| matches!(e, Effect::ArmAlarm { .. } | Effect::ClearAlarm))
    }

    /// A machine that dispatched push 1 at T0 + window and is now running deployment 1.
    fn running() -> DeployMachine {
        let mut m = DeployMachine::new();
        m.on_push(push(1), &CFG, T0);
        let r = m.on_alarm(&CFG, T0 + CFG.debounce_ms);
        assert_eq!(dispatches(&r), [(1, sha(1))]);
        m
    }

    #[test]
    fn five_pushes_in_the_window_dispatch_once_with_the_last_sha() {
        let mut m = DeployMachine::new();
        for n in 1..=5 {
            let r = m.on_push(push(n), &CFG, T0 + n as i64 * 1000);
            assert!(dispatches(&r).is_empty());
            assert_eq!(
                alarm(&r),
                Some(&Effect::ArmAlarm {
                    at_ms: T0 + n as i64 * 1000 + CFG.debounce_ms
                })
            );
        }
        assert_eq!(m.on_alarm(&CFG, T0 + 14_999).ignored, Some(Ignored::NotDue));
        let r = m.on_alarm(&CFG, T0 + 15_000);
        assert_eq!(dispatches(&r), [(1, sha(5))]);
        assert_eq!(
            alarm(&r),
            Some(&Effect::ArmAlarm {
                at_ms: T0 + 15_000 + CFG.timeout_ms
            })
        );
        let d = &m.deployments()[0];
        assert_eq!((d.pushes, d.state), (5, DeploymentState::Queued));
        assert_eq!(d.trigger.delivery_id, "delivery-5");
        assert_eq!(d.trigger.message, "commit 5");
        assert_eq!(m.on_alarm(&CFG, T0 + 16_000).ignored, Some(Ignored::NotDue));
        assert_eq!(m.deployments().len(), 1);
    }

    #[test]
    fn a_steady_stream_of_pushes_still_deploys_at_the_cap() {
        let mut m = DeployMachine::new();
        let mut last = None;
        for n in 0..30u64 {
            let r = m.on_push(push(n + 1), &CFG, T0 + n as i64 * 5_000);
            last = alarm(&r).cloned();
        }
        assert_eq!(
            last,
            Some(Effect::ArmAlarm {
                at_ms: T0 + CFG.cap_ms()
            })
        );
        let r = m.on_alarm(&CFG, T0 + CFG.cap_ms());
        assert_eq!(dispatches(&r), [(1, sha(30))]);
    }

    #[test]
    fn pushes_while_running_queue_exactly_one_follow_up_with_the_newest_sha() {
        let mut m = running();
        let start = T0 + CFG.debounce_ms;
        for n in 2..=5 {
            let r = m.on_push(push(n), &CFG, start + n as i64 * 1000);
            assert!(r.effects.is_empty(), "the alarm stays at the deadline");
        }
        assert_eq!(
            m.phase(&CFG),
            Phase::Running {
                deployment_id: 1,
                deadline_ms: start + CFG.timeout_ms,
                follow_up: Some(sha(5))
            }
        );
        // The follow-up has been quiet for longer than the window: it dispatches at once.
        let r = m.on_status_report(1, ReportedState::Success, &CFG, start + 60_000);
        assert_eq!(dispatches(&r), [(2, sha(5))]);
        assert_eq!(m.deployment(1).unwrap().outcome, Some(Outcome::Succeeded));
        assert_eq!(m.deployment(2).unwrap().pushes, 4);
        // Nothing else is queued behind it.
        let r = m.on_status_report(2, ReportedState::Success, &CFG, start + 120_000);
        assert!(dispatches(&r).is_empty());
        assert_eq!(alarm(&r), Some(&Effect::ClearAlarm));
        assert_eq!(m.phase(&CFG), Phase::Idle);
        assert_eq!(m.deployments().len(), 2);
    }

    #[test]
    fn a_follow_up_pushed_just_before_the_end_waits_out_its_window() {
        let mut m = running();
        let end = T0 + 100_000;
        m.on_push(push(2), &CFG, end - 2_000);
        let r = m.on_status_report(1, ReportedState::Failure, &CFG, end);
        assert!(dispatches(&r).is_empty());
        assert_eq!(alarm(&r), Some(&Effect::ArmAlarm { at_ms: end + 8_000 }));
        m.on_push(push(3), &CFG, end + 1_000);
        let r = m.on_alarm(&CFG, end + 11_000);
        assert_eq!(dispatches(&r), [(2, sha(3))]);
    }

    #[test]
    fn a_redelivered_push_changes_nothing() {
        let mut m = DeployMachine::new();
        m.on_push(push(1), &CFG, T0);
        let before = m.clone();
        let mut again = push(1);
        again.seq = 9;
        let r = m.on_push(again, &CFG, T0 + 5_000);
        assert_eq!(r, Reaction::ignored(Ignored::Redelivery));
        assert_eq!(m, before);
        // Also while running, and after the deployment finished.
        let mut m = running();
        let before = m.clone();
        assert_eq!(
            m.on_push(push(1), &CFG, T0 + 20_000).ignored,
            Some(Ignored::Redelivery)
        );
        assert_eq!(m, before);
        m.on_status_report(1, ReportedState::Success, &CFG, T0 + 30_000);
        let before = m.clone();
        assert_eq!(
            m.on_push(push(1), &CFG, T0 + 40_000).ignored,
            Some(Ignored::Redelivery)
        );
        assert_eq!(m, before);
    }

    #[test]
    fn an_oversized_delivery_id_is_still_recognised() {
        let mut m = DeployMachine::new();
        let mut long = push(1);
        long.delivery_id = "x".repeat(1000);
        m.on_push(long.clone(), &CFG, T0);
        long.seq = 2;
        assert_eq!(
            m.on_push(long, &CFG, T0 + 1).ignored,
            Some(Ignored::Redelivery)
        );
    }

    #[test]
    fn the_delivery_memory_is_bounded() {
        let mut m = DeployMachine::new();
        for n in 1..=(MAX_RECENT_DELIVERIES as u64 + 1) {
            m.on_push(push(n), &CFG, T0);
        }
        assert_eq!(m.recent_deliveries.len(), MAX_RECENT_DELIVERIES);
        assert!(!m.recent_deliveries.contains(&"delivery-1".to_owned()));
        // Forgotten, but its seq is old, so it still cannot move the target back.
        assert_eq!(m.on_push(push(1), &CFG, T0).ignored, Some(Ignored::Stale));
    }

    #[test]
    fn an_older_push_never_replaces_a_newer_one() {
        // While debouncing.
        let mut m = DeployMachine::new();
        m.on_push(push(5), &CFG, T0);
        assert_eq!(
            m.on_push(push(3), &CFG, T0 + 1).ignored,
            Some(Ignored::Stale)
        );
        assert_eq!(
            m.on_push(push(5), &CFG, T0 + 2).ignored,
            Some(Ignored::Redelivery)
        );
        let r = m.on_alarm(&CFG, T0 + 20_000);
        assert_eq!(dispatches(&r), [(1, sha(5))]);
        // While running: neither a follow-up nor a replacement.
        assert_eq!(
            m.on_push(push(4), &CFG, T0 + 21_000).ignored,
            Some(Ignored::Stale)
        );
        assert!(matches!(
            m.phase(&CFG),
            Phase::Running {
                follow_up: None,
                ..
            }
        ));
        // A follow-up is not replaced by an older one either.
        m.on_push(push(8), &CFG, T0 + 22_000);
        assert_eq!(
            m.on_push(push(7), &CFG, T0 + 23_000).ignored,
            Some(Ignored::Stale)
        );
        // After it deployed.
        let r = m.on_status_report(1, ReportedState::Success, &CFG, T0 + 60_000);
        assert_eq!(dispatches(&r), [(2, sha(8))]);
        m.on_status_report(2, ReportedState::Success, &CFG, T0 + 90_000);
        assert_eq!(
            m.on_push(push(6), &CFG, T0 + 91_000).ignored,
            Some(Ignored::Stale)
        );
        assert_eq!(m.phase(&CFG), Phase::Idle);
    }

    #[test]
    fn a_redelivery_under_a_new_id_of_a_deployed_sha_is_stale() {
        let mut m = DeployMachine::new();
        m.on_push(step(0, 1, 1, "a"), &CFG, T0);
        m.on_alarm(&CFG, T0 + CFG.debounce_ms);
        m.on_status_report(1, ReportedState::Success, &CFG, T0 + 20_000);
        m.on_push(step(1, 2, 2, "b"), &CFG, T0 + 30_000);
        m.on_alarm(&CFG, T0 + 30_000 + CFG.debounce_ms);
        m.on_status_report(2, ReportedState::Success, &CFG, T0 + 50_000);
        // GitHub (or a second hook) delivers both pushes again, under new ids, newer seqs.
        for (n, again) in [(1, step(0, 1, 3, "a2")), (2, step(1, 2, 4, "b2"))] {
            let before = m.deployments().to_vec();
            let r = m.on_push(again, &CFG, T0 + 60_000 + n);
            assert_eq!(r, Reaction::ignored(Ignored::Stale), "push to {n}");
            assert_eq!(m.deployments(), before);
            assert_eq!(m.phase(&CFG), Phase::Idle);
        }
    }

    #[test]
    fn a_late_push_superseded_inside_a_burst_is_stale() {
        let mut m = DeployMachine::new();
        m.on_push(step(0, 1, 1, "a"), &CFG, T0);
        m.on_push(step(1, 2, 2, "b"), &CFG, T0 + 100);
        m.on_push(step(2, 3, 3, "c"), &CFG, T0 + 200);
        // The push to 2 again (a second hook), after the burst moved on to 3.
        let r = m.on_push(step(1, 2, 4, "b-again"), &CFG, T0 + 300);
        assert_eq!(r.ignored, Some(Ignored::Stale));
        let r = m.on_alarm(&CFG, T0 + 200 + CFG.debounce_ms);
        assert_eq!(dispatches(&r), [(1, sha(3))]);
        assert_eq!(m.deployment(1).unwrap().pushes, 3);
    }

    #[test]
    fn out_of_order_pushes_deploy_the_newest_once() {
        let mut m = DeployMachine::new();
        m.on_push(step(0, 3, 1, "s3"), &CFG, T0);
        m.on_alarm(&CFG, T0 + CFG.debounce_ms);
        m.on_status_report(1, ReportedState::Success, &CFG, T0 + 20_000);
        // 3 → 4 → 5 pushed; the push to 5 is received first (and numbered first).
        let now = T0 + 30_000;
        assert_eq!(m.on_push(step(4, 5, 2, "s5"), &CFG, now).ignored, None);
        assert_eq!(
            m.on_push(step(3, 4, 3, "s4"), &CFG, now + 100).ignored,
            Some(Ignored::Stale)
        );
        let r = m.on_alarm(&CFG, now + 100 + CFG.debounce_ms);
        assert_eq!(dispatches(&r), [(2, sha(5))]);
        m.on_status_report(2, ReportedState::Success, &CFG, now + 60_000);
        // Delivered again later still: nothing.
        assert_eq!(
            m.on_push(step(3, 4, 4, "s4-again"), &CFG, now + 70_000)
                .ignored,
            Some(Ignored::Stale)
        );
        assert_eq!(m.phase(&CFG), Phase::Idle);
        assert_eq!(m.deployments().len(), 2);
    }

    #[test]
    fn a_force_push_back_is_a_rollback_that_deploys_once() {
        let mut m = DeployMachine::new();
        let mut now = T0;
        for (n, id) in [(3, "s3"), (4, "s4"), (5, "s5")] {
            m.on_push(step(n - 1, n, n, id), &CFG, now);
            now += CFG.debounce_ms;
            m.on_alarm(&CFG, now);
            let running = m.deployments()[0].id;
            m.on_status_report(running, ReportedState::Success, &CFG, now);
        }
        let mut back = step(5, 3, 6, "rollback");
        back.forced = true;
        assert_eq!(m.on_push(back.clone(), &CFG, now).ignored, None);
        now += CFG.debounce_ms;
        let r = m.on_alarm(&CFG, now);
        assert_eq!(dispatches(&r), [(4, sha(3))]);
        m.on_status_report(4, ReportedState::Success, &CFG, now);
        // The rollback delivered again, and the pushes it rolled back: all stale.
        back.delivery_id = "rollback-again".into();
        back.seq = 7;
        assert_eq!(m.on_push(back, &CFG, now).ignored, Some(Ignored::Stale));
        assert_eq!(
            m.on_push(step(4, 5, 8, "s5-again"), &CFG, now).ignored,
            Some(Ignored::Stale)
        );
        assert_eq!(m.phase(&CFG), Phase::Idle);
        let shas: Vec<&str> = m.deployments().iter().map(|d| d.sha.as_str()).collect();
        assert_eq!(shas, [sha(3), sha(5), sha(4), sha(3)]);
    }

    #[test]
    fn a_stale_push_that_overtook_a_newer_one_does_not_hide_it() {
        let mut m = DeployMachine::new();
        m.on_push(step(0, 1, 1, "a"), &CFG, T0);
        m.on_push(step(1, 2, 2, "b"), &CFG, T0 + 1);
        // The push to 3 is numbered first, but a late copy of the push to 2 (numbered after
        // it) reaches the project first.
        assert_eq!(
            m.on_push(step(1, 2, 4, "b-again"), &CFG, T0 + 2).ignored,
            Some(Ignored::Stale)
        );
        assert_eq!(m.on_push(step(2, 3, 3, "c"), &CFG, T0 + 3).ignored, None);
        let r = m.on_alarm(&CFG, T0 + 3 + CFG.debounce_ms);
        assert_eq!(dispatches(&r), [(1, sha(3))]);
    }

    #[test]
    fn a_new_source_starts_a_new_history() {
        let mut m = DeployMachine::new();
        m.on_push(step(1, 2, 1, "a"), &CFG, T0);
        m.on_push(step(2, 3, 2, "b"), &CFG, T0 + 1);
        m.on_source_changed(&CFG);
        // The new branch happens to point at a sha the old one moved past.
        assert_eq!(m.on_push(step(9, 2, 3, "c"), &CFG, T0 + 2).ignored, None);
    }

    #[test]
    fn pushing_the_running_sha_again_queues_nothing() {
        let mut m = running();
        let mut same = push(2);
        same.sha = sha(1);
        assert_eq!(
            m.on_push(same, &CFG, T0 + 20_000).ignored,
            Some(Ignored::AlreadyDeploying)
        );
        assert!(matches!(
            m.phase(&CFG),
            Phase::Running {
                follow_up: None,
                ..
            }
        ));
    }

    #[test]
    fn a_timeout_ends_in_error_and_the_next_push_deploys() {
        let mut m = running();
        m.on_github_deployment(1, 4242);
        let deadline = T0 + CFG.debounce_ms + CFG.timeout_ms;
        assert_eq!(
            m.on_timeout(&CFG, deadline - 1).ignored,
            Some(Ignored::NotDue)
        );
        let r = m.on_alarm(&CFG, deadline);
        assert_eq!(
            r.effects,
            [
                Effect::MirrorStatus {
                    deployment_id: 1,
                    github_deployment_id: 4242,
                    state: DeploymentState::Error,
                    description: "no result within 900 s".into()
                },
                Effect::ClearAlarm
            ]
        );
        let d = m.deployment(1).unwrap();
        assert_eq!(
            (d.state, d.outcome),
            (DeploymentState::Error, Some(Outcome::TimedOut))
        );
        // A late report changes nothing.
        let before = m.clone();
        assert_eq!(
            m.on_status_report(1, ReportedState::Success, &CFG, deadline + 1)
                .ignored,
            Some(Ignored::NotCurrent)
        );
        assert_eq!(m, before);
        m.on_push(push(2), &CFG, deadline + 5);
        let r = m.on_alarm(&CFG, deadline + 5 + CFG.debounce_ms);
        assert_eq!(dispatches(&r), [(2, sha(2))]);
    }

    #[test]
    fn a_timeout_with_a_follow_up_dispatches_it() {
        let mut m = running();
        m.on_push(push(2), &CFG, T0 + 20_000);
        let r = m.on_timeout(&CFG, T0 + CFG.debounce_ms + CFG.timeout_ms);
        assert_eq!(dispatches(&r), [(2, sha(2))]);
    }

    #[test]
    fn a_failed_dispatch_frees_the_machine() {
        let mut m = running();
        m.on_push(push(2), &CFG, T0 + 11_000);
        assert_eq!(
            m.on_dispatch_failed(7, "hook answered 410", &CFG, T0 + 12_000)
                .ignored,
            Some(Ignored::NotCurrent)
        );
        let r = m.on_dispatch_failed(1, "hook answered 410", &CFG, T0 + 30_000);
        assert_eq!(dispatches(&r), [(2, sha(2))]);
        let d = m.deployment(1).unwrap();
        assert_eq!(d.outcome, Some(Outcome::DispatchFailed));
        assert_eq!(d.error.as_deref(), Some("hook answered 410"));
        assert_eq!(m.deployment(2).unwrap().error, None);
    }

    #[test]
    fn an_alarm_that_keeps_failing_ends_the_running_deployment() {
        let mut m = running();
        m.on_github_deployment(1, 99);
        m.on_push(push(2), &CFG, T0 + 11_000);
        let r = m.on_alarm_failed("alarm failed", &CFG, T0 + 60_000);
        // The reason is shown, GitHub learns, and the follow-up deploys.
        let d = m.deployment(1).unwrap();
        assert_eq!(
            (d.state, d.outcome, d.error.as_deref()),
            (
                DeploymentState::Error,
                Some(Outcome::AlarmFailed),
                Some("alarm failed")
            )
        );
        assert!(r.effects.contains(&Effect::MirrorStatus {
            deployment_id: 1,
            github_deployment_id: 99,
            state: DeploymentState::Error,
            description: format!("deploy of {} stopped: ghplane failed", &sha(1)[..7]),
        }));
        assert_eq!(dispatches(&r), [(2, sha(2))]);
        // Nothing running: nothing to end, the alarm is re-derived.
        let mut idle = DeployMachine::new();
        let r = idle.on_alarm_failed("alarm failed", &CFG, T0);
        assert_eq!(
            (r.ignored, r.effects),
            (Some(Ignored::Idle), vec![Effect::ClearAlarm])
        );
    }

    #[test]
    fn status_reports_move_forward_and_mirror_once_the_github_id_is_known() {
        let mut m = running();
        let now = T0 + 20_000;
        assert_eq!(
            m.on_status_report(2, ReportedState::InProgress, &CFG, now)
                .ignored,
            Some(Ignored::NotCurrent)
        );
        let r = m.on_status_report(1, ReportedState::InProgress, &CFG, now);
        assert!(r.effects.is_empty(), "no GitHub id yet");
        assert_eq!(m.deployment(1).unwrap().state, DeploymentState::InProgress);
        assert_eq!(
            m.on_status_report(1, ReportedState::InProgress, &CFG, now + 1)
                .ignored,
            Some(Ignored::Duplicate)
        );
        let r = m.on_github_deployment(1, 77);
        assert_eq!(
            r.effects,
            [Effect::MirrorStatus {
                deployment_id: 1,
                github_deployment_id: 77,
                state: DeploymentState::InProgress,
                description: format!("deploying {}", &sha(1)[..7])
            }]
        );
        assert_eq!(
            m.on_github_deployment(1, 77).ignored,
            Some(Ignored::Duplicate)
        );
        let r = m.on_status_report(1, ReportedState::Error, &CFG, now + 2);
        assert!(matches!(
            &r.effects[0],
            Effect::MirrorStatus {
                state: DeploymentState::Error,
                github_deployment_id: 77,
                ..
            }
        ));
        let d = m.deployment(1).unwrap();
        assert_eq!(d.outcome, Some(Outcome::Errored));
        assert!(d.started_at.is_some() && d.finished_at.is_some());
        assert_eq!(
            m.on_status_report(1, ReportedState::Success, &CFG, now + 3)
                .ignored,
            Some(Ignored::NotCurrent),
            "a final state is never left"
        );
    }

    #[test]
    fn a_github_id_for_a_queued_deployment_mirrors_nothing() {
        let mut m = running();
        assert!(m.on_github_deployment(1, 5).effects.is_empty());
        assert_eq!(m.deployment(1).unwrap().github_deployment_id, Some(5));
        assert_eq!(
            m.on_github_deployment(9, 5).ignored,
            Some(Ignored::NotCurrent)
        );
    }

    #[test]
    fn two_projects_on_different_branches_each_react_to_their_own() {
        let main = BranchName::parse("main").unwrap();
        let staging = BranchName::parse("staging").unwrap();
        let mut projects = [
            (main, DeployMachine::new()),
            (staging, DeployMachine::new()),
        ];
        let events = [
            ("refs/heads/main", false, 1),
            ("refs/heads/staging", false, 2),
            ("refs/tags/main", false, 3),
            ("refs/heads/staging", true, 4),
            ("refs/heads/main", false, 5),
        ];
        for (git_ref, deleted, n) in events {
            for (branch, m) in projects.iter_mut() {
                if pushed_branch(git_ref, deleted, &sha(n)) == Some(branch.as_str()) {
                    m.on_push(push(n), &CFG, T0 + n as i64);
                }
            }
        }
        let fire = |m: &mut DeployMachine| dispatches(&m.on_alarm(&CFG, T0 + 60_000));
        assert_eq!(fire(&mut projects[0].1), [(1, sha(5))]);
        assert_eq!(fire(&mut projects[1].1), [(1, sha(2))]);
    }

    #[test]
    fn invalid_pushes_are_refused_without_being_remembered() {
        let mut m = DeployMachine::new();
        let mut bad = push(1);
        bad.sha = "0".repeat(40);
        assert_eq!(m.on_push(bad, &CFG, T0).ignored, Some(Ignored::InvalidPush));
        let mut bad = push(2);
        bad.delivery_id.clear();
        assert_eq!(m.on_push(bad, &CFG, T0).ignored, Some(Ignored::InvalidPush));
        assert_eq!(m, DeployMachine::new());
    }

    #[test]
    fn idle_alarms_and_timeouts_do_nothing() {
        let mut m = DeployMachine::new();
        assert_eq!(m.on_alarm(&CFG, T0), Reaction::ignored(Ignored::Idle));
        assert_eq!(m.on_timeout(&CFG, T0), Reaction::ignored(Ignored::Idle));
        assert_eq!(m.desired_alarm(&CFG), None);
    }

    #[test]
    fn changing_the_source_drops_queued_pushes() {
        let mut m = DeployMachine::new();
        m.on_push(push(1), &CFG, T0);
        assert_eq!(m.on_source_changed(&CFG).effects, [Effect::ClearAlarm]);
        assert_eq!(m.phase(&CFG), Phase::Idle);
        let mut m = running();
        m.on_push(push(2), &CFG, T0 + 11_000);
        let r = m.on_source_changed(&CFG);
        assert!(matches!(r.effects[..], [Effect::ArmAlarm { .. }]));
        assert!(matches!(
            m.phase(&CFG),
            Phase::Running {
                follow_up: None,
                ..
            }
        ));
    }

    #[test]
    fn the_deployment_list_is_bounded_newest_first() {
        let mut m = DeployMachine::new();
        let mut now = T0;
        for n in 1..=(MAX_DEPLOYMENTS as u64 + 3) {
            m.on_push(push(n), &CFG, now);
            now += CFG.debounce_ms;
            m.on_alarm(&CFG, now);
            m.on_status_report(n, ReportedState::Success, &CFG, now);
        }
        assert_eq!(m.deployments().len(), MAX_DEPLOYMENTS);
        assert_eq!(m.deployments()[0].id, MAX_DEPLOYMENTS as u64 + 3);
        assert_eq!(m.deployments().last().unwrap().id, 4);
    }

    #[test]
    fn zero_debounce_dispatches_on_the_next_alarm() {
        let cfg = DeployConfig {
            debounce_ms: 0,
            timeout_ms: 1000,
        };
        let mut m = DeployMachine::new();
        let r = m.on_push(push(1), &cfg, T0);
        assert_eq!(alarm(&r), Some(&Effect::ArmAlarm { at_ms: T0 }));
        assert_eq!(dispatches(&m.on_alarm(&cfg, T0)), [(1, sha(1))]);
    }

    #[test]
    fn state_round_trips_through_storage() {
        let mut m = running();
        m.on_push(push(2), &CFG, T0 + 11_000);
        let stored = serde_json::to_string(&m).unwrap();
        let back: DeployMachine = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            serde_json::from_str::<DeployMachine>("{}").unwrap(),
            DeployMachine::new()
        );
    }

    fn redeploy(n: u64) -> Redeploy {
        Redeploy {
            sha: sha(n),
            message: format!("commit {n}"),
        }
    }

    /// Push 1 deployed and finished successfully.
    fn deployed() -> DeployMachine {
        let mut m = running();
        m.on_status_report(1, ReportedState::Success, &CFG, T0 + 20_000);
        assert_eq!(m.phase(&CFG), Phase::Idle);
        m
    }

    #[test]
    fn a_redeploy_of_the_deployed_head_makes_a_new_deployment_at_once() {
        let mut m = deployed();
        let now = T0 + 30_000;
        let (r, out) = m.on_redeploy(redeploy(1), &CFG, now);
        assert_eq!(out, Some(Redeployed::Dispatched { deployment_id: 2 }));
        assert_eq!(dispatches(&r), [(2, sha(1))]);
        assert_eq!(
            alarm(&r),
            Some(&Effect::ArmAlarm {
                at_ms: now + CFG.timeout_ms
            })
        );
        let d = &m.deployments()[0];
        assert_eq!((d.id, d.trigger.kind), (2, TriggerKind::Redeploy));
        assert_eq!(
            (d.trigger.delivery_id.as_str(), d.trigger.message.as_str()),
            ("", "commit 1")
        );
        let v = serde_json::to_value(d).unwrap();
        assert_eq!(v["trigger"]["kind"], "redeploy");
        // A push's trigger keeps its shape.
        let v = serde_json::to_value(&m.deployments()[1]).unwrap();
        assert!(v["trigger"].get("kind").is_none(), "{v}");
        // The same sha pushed again later is still a stale push.
        let mut again = push(1);
        again.delivery_id = "delivery-again".into();
        again.seq = 9;
        m.on_status_report(2, ReportedState::Success, &CFG, now + 1000);
        assert_eq!(
            m.on_push(again, &CFG, now + 2000).ignored,
            Some(Ignored::Stale)
        );
    }

    #[test]
    fn a_redeploy_never_replaces_a_push_in_flight() {
        let mut m = deployed();
        m.on_push(step(1, 2, 2, "delivery-2"), &CFG, T0 + 30_000);
        let (r, out) = m.on_redeploy(redeploy(1), &CFG, T0 + 31_000);
        assert_eq!(out, Some(Redeployed::PushPending));
        assert!(r.effects.is_empty());
        assert_eq!(
            m.phase(&CFG),
            Phase::Debouncing {
                sha: sha(2),
                fire_at_ms: T0 + 30_000 + CFG.debounce_ms
            }
        );
        // The push deploys; then GitHub's older answer (the branch moved past 1) is stale.
        let r = m.on_alarm(&CFG, T0 + 40_000);
        assert_eq!(dispatches(&r), [(2, sha(2))]);
        m.on_status_report(2, ReportedState::Success, &CFG, T0 + 41_000);
        let (r, out) = m.on_redeploy(redeploy(1), &CFG, T0 + 42_000);
        assert_eq!((out, r.effects.len()), (Some(Redeployed::Stale), 0));
        assert_eq!(m.deployments().len(), 2);
    }

    #[test]
    fn a_redeploy_while_running_queues_one_follow_up_that_a_newer_push_replaces() {
        let mut m = running();
        let (_, out) = m.on_redeploy(redeploy(1), &CFG, T0 + 11_000);
        assert_eq!(out, Some(Redeployed::AlreadyDeploying { deployment_id: 1 }));
        let (r, out) = m.on_redeploy(redeploy(3), &CFG, T0 + 12_000);
        assert_eq!((out, dispatches(&r).len()), (Some(Redeployed::Queued), 0));
        // Ends: the redeploy's follow-up goes at once (no debounce).
        let r = m.on_status_report(1, ReportedState::Success, &CFG, T0 + 13_000);
        assert_eq!(dispatches(&r), [(2, sha(3))]);
        assert_eq!(m.deployments()[0].trigger.kind, TriggerKind::Redeploy);
        // Queued again behind 2, then a newer push takes the follow-up's place.
        m.on_redeploy(redeploy(4), &CFG, T0 + 14_000);
        m.on_push(step(4, 5, 5, "delivery-5"), &CFG, T0 + 15_000);
        let r = m.on_status_report(2, ReportedState::Success, &CFG, T0 + 16_000);
        assert!(dispatches(&r).is_empty(), "the push debounces");
        let r = m.on_alarm(&CFG, T0 + 25_000);
        assert_eq!(dispatches(&r), [(3, sha(5))]);
        assert_eq!(m.deployments()[0].trigger.kind, TriggerKind::Push);
    }

    #[test]
    fn a_redeploy_of_a_malformed_sha_is_refused_and_state_round_trips() {
        let mut m = DeployMachine::new();
        let bad = Redeploy {
            sha: "main".into(),
            message: String::new(),
        };
        assert_eq!(m.on_redeploy(bad, &CFG, T0).1, None);
        m.on_push(push(1), &CFG, T0);
        m.on_alarm(&CFG, T0 + CFG.debounce_ms);
        m.on_redeploy(redeploy(2), &CFG, T0 + 11_000);
        let stored = serde_json::to_string(&m).unwrap();
        assert!(stored.contains("\"immediate\":true"), "{stored}");
        assert_eq!(serde_json::from_str::<DeployMachine>(&stored).unwrap(), m);
        let out = serde_json::to_value(Redeployed::Dispatched { deployment_id: 4 }).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"state": "dispatched", "deployment": 4})
        );
    }

    #[test]
    fn config_from_env() {
        assert_eq!(
            DeployConfig::from_env(None, None).unwrap(),
            DeployConfig::default()
        );
        assert_eq!(DeployConfig::default().debounce_ms, 10_000);
        let c = DeployConfig::from_env(Some(" 3 "), Some("60")).unwrap();
        assert_eq!(
            (c.debounce_ms, c.timeout_ms, c.cap_ms()),
            (3_000, 60_000, 18_000)
        );
        assert_eq!(
            DeployConfig::from_env(Some(""), None).unwrap(),
            DeployConfig::default()
        );
        for (d, t) in [
            (Some("-1"), None),
            (Some("x"), None),
            (None, Some("0")),
            (Some("3601"), None),
        ] {
            let err = DeployConfig::from_env(d, t).unwrap_err();
            assert!(err.contains("DEPLOY_"), "{err}");
        }
    }
}
