//! `ProjectDeploy`: one Durable Object per project, named `deploy-<slug>`: the project's
//! GitHub source, its hook secret (sealed), its deploy state machine, its credentials
//! tickets (hashed) and an outbox of the GitHub and deploy-hook calls still to make.
//!
//! This file is the shell: every event loads the machine and the outbox, lets the core decide
//! (`ghplane_core::deploy::{machine, outbox}`), stores both and arms the alarm. The other
//! files carry out what was decided: [`source`] links and unlinks (and keeps the hook
//! secret), [`outbox`] runs the due jobs, [`github`] creates GitHub deployments and mirrors
//! their statuses, [`hook`] delivers a job to the deploy hook, [`tickets`] issues and
//! redeems the credentials tickets; [`client`] is how everyone else calls this object.
//!
//! Invariants:
//! - every event (a push, a status report, the alarm) loads the machine, applies the event
//!   and stores the machine with the jobs its effects ask for in one stretch of storage
//!   operations, which no other request can interleave; the alarm is then set to the earliest
//!   of the machine's own deadline and the outbox's due jobs;
//! - network calls (GitHub, the deploy hook) happen only in the alarm, from the outbox, so a
//!   webhook delivery or a status report is answered without waiting for either;
//! - the alarm never spins and never leaves the project locked: a failed job waits its
//!   schedule (and any `Retry-After`), a failed alarm re-arms itself with backoff and, past
//!   its bound, ends the running deployment with the reason (`ghplane_core::deploy::retry`);
//! - the hook secret and tickets never sit in storage in a usable form, and no token, ticket
//!   or secret is ever logged.

pub mod client;
mod github;
mod hook;
mod outbox;
mod source;
mod tickets;

pub(crate) use crate::clock::now_ms;
use futures_util::lock::Mutex;
use ghplane_core::deploy::outbox::Outbox;
use ghplane_core::deploy::retry::{AlarmFailures, AlarmRecovery, ALARM_RETRY_CAP_MS};
use ghplane_core::deploy::{
    apply_rename, check_push, ignored_reason, report_refusal, verify_report, view, DeployConfig,
    DeployError, DeployMachine, DeploymentRef, Push, Reaction, Redeploy, Redeployed, ReportedState,
};
use ghplane_core::github::error::GithubError;
use ghplane_core::projects::ProjectSlug;
use ghplane_core::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use worker::{durable_object, Env, Request, Response, State};

use crate::objects::rpc;
use crate::settings;
use client::{
    project_of, Answer, ProjectDeployCommand, PushRequest, RedeployRequest, RenameRequest,
    StatusRequest,
};

const LINKED_KEY: &str = "source";
const MACHINE_KEY: &str = "machine";
const OUTBOX_KEY: &str = "outbox";
/// The alarm handler's consecutive failures ([`AlarmFailures`]), so its retries back off.
const ALARM_FAILURES_KEY: &str = "alarm-failures";

fn scheduled(ms: i64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        ms as f64,
    )))
}

#[durable_object]
pub struct ProjectDeploy {
    state: State,
    env: Env,
    /// Linking and unlinking touch the repository index too: one at a time.
    source_lock: Mutex<()>,
    alarm_lock: Mutex<()>,
}

impl worker::DurableObject for ProjectDeploy {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            source_lock: Mutex::new(()),
            alarm_lock: Mutex::new(()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |name, command| async move {
            let slug = project_of(&name)?;
            match command {
                ProjectDeployCommand::PutSource { linked } => {
                    rpc::reply(&self.put_source(linked).await?)
                }
                ProjectDeployCommand::GetSource => rpc::reply(&self.get_source(&slug).await?),
                ProjectDeployCommand::DeleteSource => rpc::reply(&self.delete_source(&slug).await?),
                ProjectDeployCommand::Deployments => rpc::reply(&self.list().await?),
                ProjectDeployCommand::Reseal => rpc::reply(&self.reseal(&slug).await?),
                ProjectDeployCommand::Push { push } => rpc::reply(&self.push(push).await?),
                ProjectDeployCommand::Rename { rename } => rpc::reply(&self.rename(rename).await?),
                ProjectDeployCommand::Redeploy { redeploy } => {
                    rpc::reply(&self.redeploy(&slug, redeploy).await?)
                }
                ProjectDeployCommand::Credentials { request } => {
                    rpc::reply(&self.credentials(&slug, request).await?)
                }
                ProjectDeployCommand::Status { report } => {
                    rpc::reply(&self.status(&slug, report).await?)
                }
            }
        })
        .await
    }

    /// Runs the machine and the due jobs. A failure re-arms the alarm with backoff and, past
    /// the bound, ends the running deployment (see [`AlarmFailures`]); only when even the
    /// re-arming fails is the error left to the platform's own alarm retries.
    async fn alarm(&self) -> worker::Result<Response> {
        let _one_at_a_time = self.alarm_lock.lock().await;
        match self.run_alarm().await {
            Ok(()) => {
                // Best effort: a stale count only shortens the next backoff series.
                let failures: AlarmFailures =
                    self.load(ALARM_FAILURES_KEY).await.unwrap_or_default();
                if failures.count > 0 {
                    let _ = self.state.storage().delete(ALARM_FAILURES_KEY).await;
                }
            }
            Err(e) => self.alarm_failed(&e).await?,
        }
        Response::ok("")
    }
}

impl ProjectDeploy {
    fn config(&self) -> Result<DeployConfig, ApiError> {
        let get = |name| settings::get(&self.env, name);
        DeployConfig::from_env(
            get(settings::DEPLOY_DEBOUNCE_SECONDS).as_deref(),
            get(settings::DEPLOY_TIMEOUT_SECONDS).as_deref(),
        )
        .map_err(|e| {
            ApiError::Misconfigured(std::borrow::Cow::Borrowed(
                if e.starts_with(settings::DEPLOY_DEBOUNCE_SECONDS) {
                    settings::DEPLOY_DEBOUNCE_SECONDS
                } else {
                    settings::DEPLOY_TIMEOUT_SECONDS
                },
            ))
        })
    }

    async fn load<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T, ApiError> {
        Ok(self
            .state
            .storage()
            .get(key)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default())
    }

    async fn save<T: Serialize>(&self, key: &str, value: &T) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(key, value)
            .await
            .map_err(|e| fail!(e))
    }

    async fn linked(&self) -> Result<Option<client::Linked>, ApiError> {
        self.state
            .storage()
            .get(LINKED_KEY)
            .await
            .map_err(|e| fail!(e))
    }

    async fn linked_or_404(&self, slug: &ProjectSlug) -> Result<client::Linked, ApiError> {
        self.linked()
            .await?
            .ok_or_else(|| ghplane_core::deploy::DeployError::NotLinked(slug.to_string()).into())
    }

    /// Applies one event to the machine and queues what its effects ask for (see the module
    /// invariant: nothing between the first load and the last write lets another request in).
    async fn react(
        &self,
        event: impl FnOnce(&mut DeployMachine, &DeployConfig, i64) -> Reaction,
    ) -> Result<(Reaction, DeployMachine), ApiError> {
        let cfg = self.config()?;
        self.react_with(&cfg, event).await
    }

    async fn react_with(
        &self,
        cfg: &DeployConfig,
        event: impl FnOnce(&mut DeployMachine, &DeployConfig, i64) -> Reaction,
    ) -> Result<(Reaction, DeployMachine), ApiError> {
        let cfg = *cfg;
        let mut machine: DeployMachine = self.load(MACHINE_KEY).await?;
        let mut outbox: Outbox = self.load(OUTBOX_KEY).await?;
        let now = now_ms();
        let reaction = event(&mut machine, &cfg, now);
        self.save(MACHINE_KEY, &machine).await?;
        if outbox.enqueue(&reaction.effects, now) {
            self.save(OUTBOX_KEY, &outbox).await?;
        }
        self.arm(&machine, &outbox, &cfg).await?;
        Ok((reaction, machine))
    }

    /// The alarm rings at the earliest of the machine's deadline and the due jobs.
    async fn arm(
        &self,
        machine: &DeployMachine,
        outbox: &Outbox,
        cfg: &DeployConfig,
    ) -> Result<(), ApiError> {
        let next = machine
            .desired_alarm(cfg)
            .into_iter()
            .chain(outbox.next_alarm())
            .min();
        let storage = self.state.storage();
        match next {
            Some(at) => storage.set_alarm(scheduled(at)).await,
            None => storage.delete_alarm().await,
        }
        .map_err(|e| fail!(e))
    }

    async fn rearm(&self) -> Result<(), ApiError> {
        let cfg = self.config()?;
        let machine: DeployMachine = self.load(MACHINE_KEY).await?;
        let outbox: Outbox = self.load(OUTBOX_KEY).await?;
        self.arm(&machine, &outbox, &cfg).await
    }

    /// The machine's view, plus the calls still to make (so a wait on GitHub, such as a rate
    /// limit's, is visible).
    async fn list(&self) -> Result<Value, ApiError> {
        let cfg = self.config()?;
        let machine: DeployMachine = self.load(MACHINE_KEY).await?;
        let outbox: Outbox = self.load(OUTBOX_KEY).await?;
        Ok(view::view(&machine, &outbox, &cfg))
    }

    async fn push(&self, p: PushRequest) -> Result<Answer, ApiError> {
        let linked = self.linked().await?;
        let source = linked.as_ref().map(|l| &l.source);
        if let Err(reason) = check_push(source, p.repo_id, p.installation_id, &p.branch) {
            return Ok(Answer {
                reason: Some(reason.to_owned()),
            });
        }
        let push = Push {
            delivery_id: p.delivery_id,
            before: p.before,
            sha: p.sha,
            forced: p.forced,
            pusher: p.pusher,
            message: p.message,
            seq: p.seq,
        };
        let (reaction, _) = self.react(|m, cfg, now| m.on_push(push, cfg, now)).await?;
        Ok(Answer {
            reason: reaction.ignored.map(|i| ignored_reason(i).to_owned()),
        })
    }

    /// An admin's redeploy of the branch head, through the machine like a push. A source
    /// moved to another repository or branch since the head was read makes it `stale`.
    async fn redeploy(
        &self,
        slug: &ProjectSlug,
        r: RedeployRequest,
    ) -> Result<Redeployed, ApiError> {
        let Some(linked) = self.linked().await? else {
            return Err(DeployError::RedeployWithoutSource(slug.to_string()).into());
        };
        let source = &linked.source;
        if check_push(Some(source), r.repo_id, source.installation_id, &r.branch).is_err() {
            return Ok(Redeployed::Stale);
        }
        let redeploy = Redeploy {
            sha: r.sha,
            message: r.message,
        };
        let mut outcome = None;
        self.react(|m, cfg, now| {
            let (reaction, o) = m.on_redeploy(redeploy, cfg, now);
            outcome = o;
            reaction
        })
        .await?;
        outcome.ok_or_else(|| {
            GithubError::MalformedResponse("the branch head is not a commit sha".into()).into()
        })
    }

    async fn rename(&self, r: RenameRequest) -> Result<Answer, ApiError> {
        let mut linked = self.linked().await?;
        let source = linked.as_mut().map(|l| &mut l.source);
        match apply_rename(source, r.repo_id, r.installation_id, &r.full_name) {
            Ok(changed) => {
                if let (true, Some(l)) = (changed, &linked) {
                    self.save(LINKED_KEY, l).await?;
                }
                Ok(Answer { reason: None })
            }
            Err(reason) => Ok(Answer {
                reason: Some(reason.to_owned()),
            }),
        }
    }

    /// A deployer's report: verified with the hook secret over its timestamp, this deployment's
    /// id and the exact body, within the time window; then applied. A refused report changes
    /// nothing.
    async fn status(&self, slug: &ProjectSlug, s: StatusRequest) -> Result<Value, ApiError> {
        let deployment = DeploymentRef {
            project: slug.clone(),
            number: s.number,
        };
        let linked = self.linked_or_404(slug).await?;
        let secret = self.hook_secret(&linked.project).await?;
        verify_report(
            secret.expose().as_bytes(),
            s.timestamp.as_deref(),
            &deployment,
            s.body.as_bytes(),
            &s.signature,
            now_ms(),
        )?;
        let state = ReportedState::parse_body(s.body.as_bytes())?;
        let (reaction, machine) = self
            .react(|m, cfg, now| m.on_status_report(s.number, state, cfg, now))
            .await?;
        let record = machine.deployment(s.number);
        report_refusal(reaction.ignored, &deployment, record.is_some())?;
        crate::log::event(
            "info",
            "deployment status",
            json!({"project": slug, "deployment": s.number,
                "state": record.map(|d| d.state.as_str())}),
        );
        Ok(json!({ "deployment": record }))
    }

    /// The alarm handler failed: ring again after a backoff, or, past the bound, end the
    /// running deployment with the reason (and drop the due jobs that kept failing), so the
    /// project is never locked by a fault of ghplane's own and never spins on it.
    async fn alarm_failed(&self, e: &ApiError) -> worker::Result<()> {
        let mut failures: AlarmFailures = self.load(ALARM_FAILURES_KEY).await.unwrap_or_default();
        let now = now_ms();
        let recovery = failures.record(e.code(), now);
        // Best effort: if storage is what fails, the count restarts and the bound comes later,
        // but every ring is still spaced by the backoff.
        let _ = self.save(ALARM_FAILURES_KEY, &failures).await;
        let retry_at = match recovery {
            AlarmRecovery::RetryAt { at_ms } => {
                crate::log::event(
                    "error",
                    "deploy alarm failed; retrying",
                    json!({"errorCode": e.code(), "failures": failures.count, "retryInMs": at_ms - now}),
                );
                at_ms
            }
            AlarmRecovery::GiveUp { reason } => {
                crate::log::event(
                    "error",
                    "deploy alarm failed; giving up",
                    json!({"errorCode": e.code(), "reason": reason}),
                );
                match self.give_up(&reason, now).await {
                    Ok(()) => return Ok(()),
                    Err(_) => now + ALARM_RETRY_CAP_MS,
                }
            }
        };
        self.state.storage().set_alarm(scheduled(retry_at)).await
    }
}
