//! `ProjectDeploy`: one Durable Object per project, named `deploy-<slug>`: the project's
//! GitHub source, its hook secret (sealed), its deploy state machine, its credentials
//! tickets (hashed) and an outbox of the GitHub and deploy-hook calls still to make.
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

use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::future::{select, Either};
use futures_util::lock::Mutex;
use futures_util::pin_mut;
use ghplane_core::deploy::retry::{
    effective_due_times, job_retry_delay_ms, AlarmFailures, AlarmRecovery, JobFailure,
    ALARM_RETRY_CAP_MS,
};
use ghplane_core::deploy::{
    apply_rename, check_push, hook_body, hook_retry_delay_ms, ignored_reason, keep_stored,
    redeem_stored, release_stored, report_refusal, signature, token_scope, verify_report,
    DeployConfig, DeployError, DeployMachine, Deployment, DeploymentRef, DeploymentState, Effect,
    Phase, Push, Reaction, RepoLink, ReportedState, Source, Ticket, SIGNATURE_HEADER,
};
use ghplane_core::ids::{truncate, InstallationId, RepoFullName, RepoId};
use ghplane_core::projects::ProjectSlug;
use ghplane_core::sealed::{Sealed, Secret};
use ghplane_core::tenancy::token::TokenScope;
use ghplane_core::time::rfc3339_from_millis;
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{
    durable_object, AbortController, Delay, Env, Fetch, Headers, Method, Request, RequestInit,
    Response, State,
};

use crate::github::client::{GithubClient, Idempotent};
use crate::http::{error_response, json_response, no_content};
use crate::objects::installation::InstallationClient;
use crate::objects::internal::{self, now_ms};
use crate::objects::repo_index::RepoIndexClient;
use crate::secrets::{Keyring, ResealReport};
use crate::settings;

const LINKED_KEY: &str = "source";
const SECRET_KEY: &str = "hook-secret";
const MACHINE_KEY: &str = "machine";
const TICKETS_KEY: &str = "tickets";
const OUTBOX_KEY: &str = "outbox";
/// Deployment number → the repository its GitHub deployment was created in, so a status is
/// never mirrored into a repository the project has since moved away from.
const TARGETS_KEY: &str = "github-targets";
/// The alarm handler's consecutive failures ([`AlarmFailures`]), so its retries back off.
const ALARM_FAILURES_KEY: &str = "alarm-failures";
const SECRET_SLOT: &str = "hookSecret";
const TICKET_SLOT: &str = "ticket";
const HOOK_SECRET_PREFIX: &str = "ghpdh_";
/// A deployer that has not answered the job by then is treated as not answering at all.
const HOOK_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TARGETS: usize = 50;
/// GitHub limits a deployment status description to 140 characters.
const MAX_DESCRIPTION: usize = 140;

pub fn object_name(project: &ProjectSlug) -> String {
    format!("deploy-{}", project.as_str())
}

/// The project's source as stored, with what the jobs need to name it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linked {
    pub project: ProjectSlug,
    pub source: Source,
    /// The origin the credentials and status URLs of jobs start with.
    pub public_url: String,
}

impl Linked {
    fn view(&self) -> Value {
        let mut v = serde_json::to_value(&self.source).unwrap_or_default();
        v["project"] = json!(self.project);
        v
    }
}

/// A push routed here by the installation's object.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushRequest {
    pub repo_id: RepoId,
    pub installation_id: InstallationId,
    pub branch: String,
    pub delivery_id: String,
    /// The push's `before` and `forced`: what the branch history learns from.
    pub before: String,
    pub sha: String,
    pub forced: bool,
    pub pusher: String,
    pub message: String,
    pub seq: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenameRequest {
    pub repo_id: RepoId,
    pub installation_id: InstallationId,
    pub full_name: RepoFullName,
}

/// A project's answer to a push or a rename: `reason` is why it took nothing.
#[derive(Serialize, Deserialize)]
pub struct Answer {
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct CredentialsRequest {
    pub number: u64,
    pub ticket: String,
}

#[derive(Serialize, Deserialize)]
pub struct StatusRequest {
    pub number: u64,
    pub signature: String,
    /// `X-Ghplane-Timestamp`, as sent (the signature covers it).
    pub timestamp: Option<String>,
    /// The raw body, as signed.
    pub body: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobTicket {
    sealed: Sealed,
    expires_at_ms: i64,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
enum Work {
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

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Job {
    id: u64,
    due_at_ms: i64,
    tries: u32,
    work: Work,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Outbox {
    next_id: u64,
    jobs: Vec<Job>,
}

impl Job {
    fn view(&self) -> Value {
        let (kind, deployment) = match &self.work {
            Work::Dispatch { deployment_id, .. } => ("dispatch", deployment_id),
            Work::Mirror { deployment_id, .. } => ("mirror", deployment_id),
        };
        json!({"type": kind, "deployment": deployment, "tries": self.tries,
            "nextAttemptAt": rfc3339_from_millis(self.due_at_ms)})
    }
}

impl Outbox {
    /// When each job may run (in queue order): the statuses of one deployment go in order.
    fn due_times(&self) -> Vec<(&Job, i64)> {
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

    /// Queues the effects that call out; the alarm effects are implied by `arm`.
    fn enqueue(&mut self, effects: &[Effect], now_ms: i64) -> bool {
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
}

fn scheduled(ms: i64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        ms as f64,
    )))
}

fn is_running(machine: &DeployMachine, cfg: &DeployConfig, id: u64) -> bool {
    matches!(machine.phase(cfg), Phase::Running { deployment_id, .. } if deployment_id == id)
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

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let slug = url
            .query_pairs()
            .find(|(k, _)| k == "slug")
            .and_then(|(_, v)| ProjectSlug::parse(&v).ok());
        let Some(slug) = slug else {
            return Ok(error_response(&fail!()));
        };
        let result = match (req.method(), url.path()) {
            (Method::Put, "/source") => match internal::body::<Linked>(&mut req).await {
                Ok(linked) => self.put_source(linked).await,
                Err(e) => Err(e),
            },
            (Method::Get, "/source") => self.get_source(&slug).await,
            (Method::Delete, "/source") => self.delete_source(&slug).await,
            (Method::Get, "/deployments") => self.list().await,
            (Method::Post, "/reseal") => self.reseal(&slug).await.map(|r| json_response(200, &r)),
            (Method::Post, "/push") => match internal::body::<PushRequest>(&mut req).await {
                Ok(p) => self.push(p).await.map(|a| json_response(200, &a)),
                Err(e) => Err(e),
            },
            (Method::Post, "/rename") => match internal::body::<RenameRequest>(&mut req).await {
                Ok(r) => self.rename(r).await.map(|a| json_response(200, &a)),
                Err(e) => Err(e),
            },
            (Method::Post, "/credentials") => {
                match internal::body::<CredentialsRequest>(&mut req).await {
                    Ok(c) => self.credentials(&slug, c).await,
                    Err(e) => Err(e),
                }
            }
            (Method::Post, "/status") => match internal::body::<StatusRequest>(&mut req).await {
                Ok(s) => self.status(&slug, s).await,
                Err(e) => Err(e),
            },
            _ => Err(fail!()),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
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

    async fn linked(&self) -> Result<Option<Linked>, ApiError> {
        self.state
            .storage()
            .get(LINKED_KEY)
            .await
            .map_err(|e| fail!(e))
    }

    /// The hook secret under the current key (a job's ticket lives minutes and is left to
    /// expire).
    async fn reseal(&self, project: &ProjectSlug) -> Result<ResealReport, ApiError> {
        let mut report = ResealReport::default();
        let storage = self.state.storage();
        let Some(mut sealed) = storage
            .get::<Sealed>(SECRET_KEY)
            .await
            .map_err(|e| fail!(e))?
        else {
            return Ok(report);
        };
        let ring = Keyring::from_env(&self.env).await?;
        let object = object_name(project);
        let outcome = ring.reseal(&object, SECRET_SLOT, &sealed).await;
        if report.apply(&object, SECRET_SLOT, outcome, &mut sealed) {
            storage
                .put(SECRET_KEY, &sealed)
                .await
                .map_err(|e| fail!(e))?;
        }
        Ok(report)
    }

    async fn hook_secret(&self, ring: &Keyring, project: &ProjectSlug) -> Result<Secret, ApiError> {
        let sealed: Sealed = self
            .state
            .storage()
            .get(SECRET_KEY)
            .await
            .map_err(|e| fail!(e))?
            .ok_or_else(|| fail!())?;
        ring.open(&object_name(project), SECRET_SLOT, &sealed).await
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
            .chain(outbox.due_times().into_iter().map(|(_, due)| due))
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

    async fn edit_job(&self, id: u64, edit: impl FnOnce(&mut Job)) -> Result<(), ApiError> {
        let mut outbox: Outbox = self.load(OUTBOX_KEY).await?;
        if let Some(job) = outbox.jobs.iter_mut().find(|j| j.id == id) {
            edit(job);
            self.save(OUTBOX_KEY, &outbox).await?;
        }
        Ok(())
    }

    async fn drop_job(&self, id: u64) -> Result<(), ApiError> {
        let mut outbox: Outbox = self.load(OUTBOX_KEY).await?;
        outbox.jobs.retain(|j| j.id != id);
        self.save(OUTBOX_KEY, &outbox).await
    }

    async fn put_source(&self, linked: Linked) -> Result<Response, ApiError> {
        let _one_at_a_time = self.source_lock.lock().await;
        let previous = self.linked().await?;
        // The index learns of the new repository before the source points at it, and forgets
        // the old one after: a push in between reaches this object, which checks it against
        // the stored source.
        RepoIndexClient::new(&self.env, linked.source.repo_id)?
            .upsert(&RepoLink::of(&linked.project, &linked.source))
            .await?;
        if let Some(p) = previous
            .as_ref()
            .filter(|p| p.source.repo_id != linked.source.repo_id)
        {
            RepoIndexClient::new(&self.env, p.source.repo_id)?
                .remove(&linked.project)
                .await?;
        }
        let has_secret = self
            .state
            .storage()
            .get::<Sealed>(SECRET_KEY)
            .await
            .map_err(|e| fail!(e))?
            .is_some();
        let new_secret = if has_secret {
            None
        } else {
            let secret = format!(
                "{HOOK_SECRET_PREFIX}{}",
                URL_SAFE_NO_PAD.encode(random_bytes::<32>())
            );
            let ring = Keyring::from_env(&self.env).await?;
            let sealed = ring
                .seal(&object_name(&linked.project), SECRET_SLOT, &secret)
                .await?;
            Some((secret, sealed))
        };
        if let Some((_, sealed)) = &new_secret {
            self.save(SECRET_KEY, sealed).await?;
        }
        self.save(LINKED_KEY, &linked).await?;
        let moved = previous.as_ref().is_some_and(|p| {
            p.source.repo_id != linked.source.repo_id || p.source.branch != linked.source.branch
        });
        if moved {
            self.react(|m, cfg, _| m.on_source_changed(cfg)).await?;
        }
        let mut view = linked.view();
        if let Some((secret, _)) = new_secret {
            view["hookSecret"] = json!(secret);
        }
        Ok(json_response(
            if previous.is_none() { 201 } else { 200 },
            &view,
        ))
    }

    async fn get_source(&self, slug: &ProjectSlug) -> Result<Response, ApiError> {
        let linked = self
            .linked()
            .await?
            .ok_or_else(|| DeployError::NotLinked(slug.as_str().to_owned()))?;
        Ok(json_response(200, &linked.view()))
    }

    /// Unlinks: the index entry, the source, the hook secret and the tickets go, and pushes
    /// queued for the old source are dropped. A running deployment ends by its report or its
    /// deadline (a report can no longer be signed, so by its deadline).
    async fn delete_source(&self, slug: &ProjectSlug) -> Result<Response, ApiError> {
        let _one_at_a_time = self.source_lock.lock().await;
        let linked = self
            .linked()
            .await?
            .ok_or_else(|| DeployError::NotLinked(slug.as_str().to_owned()))?;
        RepoIndexClient::new(&self.env, linked.source.repo_id)?
            .remove(&linked.project)
            .await?;
        self.state
            .storage()
            .delete_multiple(vec![LINKED_KEY, SECRET_KEY, TICKETS_KEY])
            .await
            .map_err(|e| fail!(e))?;
        self.react(|m, cfg, _| m.on_source_changed(cfg)).await?;
        Ok(no_content())
    }

    /// The machine's view, plus the calls still to make (so a wait on GitHub, such as a rate
    /// limit's, is visible).
    async fn list(&self) -> Result<Response, ApiError> {
        let cfg = self.config()?;
        let machine: DeployMachine = self.load(MACHINE_KEY).await?;
        let outbox: Outbox = self.load(OUTBOX_KEY).await?;
        let mut view = machine.view(&cfg);
        view["jobs"] = outbox.jobs.iter().map(Job::view).collect();
        Ok(json_response(200, &view))
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

    /// Redeems the ticket, then asks the installation for a token of the linked repository
    /// with `contents: read` only. The ticket is used up before the token is asked for, so
    /// two racing redemptions cannot both succeed; it is given back only if no token came.
    async fn credentials(
        &self,
        slug: &ProjectSlug,
        c: CredentialsRequest,
    ) -> Result<Response, ApiError> {
        let linked = self
            .linked()
            .await?
            .ok_or_else(|| DeployError::NotLinked(slug.as_str().to_owned()))?;
        let mut tickets: Vec<Ticket> = self.load(TICKETS_KEY).await?;
        redeem_stored(&mut tickets, &c.ticket, c.number, now_ms()).map_err(DeployError::from)?;
        self.save(TICKETS_KEY, &tickets).await?;
        let scope: TokenScope =
            serde_json::from_value(token_scope(&linked.source.full_name)).map_err(|e| fail!(e))?;
        let installation = InstallationClient::new(&self.env, linked.source.installation_id)?;
        match installation.token(&scope).await {
            Ok(grant) => {
                crate::log::event(
                    "info",
                    "deploy credentials issued",
                    json!({"project": slug, "deployment": c.number}),
                );
                Ok(json_response(
                    200,
                    &json!({"token": grant.token, "expiresAt": grant.expires_at,
                        "repositories": grant.repositories, "permissions": grant.permissions}),
                ))
            }
            Err(e) => {
                let mut tickets: Vec<Ticket> = self.load(TICKETS_KEY).await?;
                release_stored(&mut tickets, &c.ticket);
                self.save(TICKETS_KEY, &tickets).await?;
                Err(e)
            }
        }
    }

    /// A deployer's report: verified with the hook secret over its timestamp, this deployment's
    /// id and the exact body, within the time window; then applied. A refused report changes
    /// nothing.
    async fn status(&self, slug: &ProjectSlug, s: StatusRequest) -> Result<Response, ApiError> {
        let deployment = DeploymentRef {
            project: slug.clone(),
            number: s.number,
        };
        let linked = self
            .linked()
            .await?
            .ok_or_else(|| DeployError::NotLinked(slug.as_str().to_owned()))?;
        let ring = Keyring::from_env(&self.env).await?;
        let secret = self.hook_secret(&ring, &linked.project).await?;
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
        Ok(json_response(200, &json!({"deployment": record})))
    }

    async fn run_alarm(&self) -> Result<(), ApiError> {
        self.react(|m, cfg, now| m.on_alarm(cfg, now)).await?;
        // Each due job once per ring, oldest first; a job that must wait re-arms the alarm.
        let mut tried = HashSet::new();
        loop {
            let outbox: Outbox = self.load(OUTBOX_KEY).await?;
            let now = now_ms();
            let Some(job) = outbox
                .due_times()
                .into_iter()
                .filter(|(j, due)| *due <= now && !tried.contains(&j.id))
                .map(|(j, _)| j)
                .min_by_key(|j| j.id)
                .cloned()
            else {
                break;
            };
            tried.insert(job.id);
            let result = match &job.work {
                Work::Dispatch { .. } => self.dispatch(&job).await,
                Work::Mirror { .. } => self.mirror(&job).await,
            };
            if let Err(e) = result {
                self.job_failed(&job, &e).await?;
            }
        }
        self.rearm().await
    }

    /// A job that failed on our side or GitHub's: tried again on the hook's schedule (never
    /// sooner than a rate limit's `Retry-After`, a minute when GitHub named no time), then
    /// given up (a dispatch then ends its deployment, which starts any follow-up).
    async fn job_failed(&self, job: &Job, e: &ApiError) -> Result<(), ApiError> {
        let tries = job.tries + 1;
        let kind = match job.work {
            Work::Dispatch { .. } => "dispatch",
            Work::Mirror { .. } => "mirror",
        };
        let failure = JobFailure {
            rate_limited: e.code() == "github_rate_limited",
            retry_after_secs: e.retry_after_secs(),
        };
        let wait = job_retry_delay_ms(tries, failure);
        crate::log::event(
            "warn",
            "deploy job failed",
            json!({"job": kind, "tries": tries, "errorCode": e.code(), "retryInMs": wait}),
        );
        match wait {
            Some(wait) => {
                self.edit_job(job.id, |j| {
                    j.tries = tries;
                    j.due_at_ms = now_ms() + wait as i64;
                })
                .await
            }
            None => match job.work {
                Work::Dispatch { deployment_id, .. } => {
                    let reason = format!("not dispatched after {tries} tries (last: {})", e.code());
                    self.dispatch_failed(job.id, deployment_id, &reason).await
                }
                Work::Mirror { .. } => self.drop_job(job.id).await,
            },
        }
    }

    async fn dispatch_failed(
        &self,
        job: u64,
        deployment_id: u64,
        reason: &str,
    ) -> Result<(), ApiError> {
        self.drop_job(job).await?;
        self.react(|m, cfg, now| m.on_dispatch_failed(deployment_id, reason, cfg, now))
            .await?;
        Ok(())
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

    async fn give_up(&self, reason: &str, now: i64) -> Result<(), ApiError> {
        let mut outbox: Outbox = self.load(OUTBOX_KEY).await?;
        let before = outbox.jobs.len();
        outbox.jobs.retain(|j| j.due_at_ms > now);
        if outbox.jobs.len() != before {
            self.save(OUTBOX_KEY, &outbox).await?;
        }
        // The configuration may be what fails: the defaults still end the deployment.
        let cfg = self.config().unwrap_or_default();
        self.react_with(&cfg, |m, cfg, now| m.on_alarm_failed(reason, cfg, now))
            .await?;
        Ok(())
    }

    async fn github_token(&self, source: &Source) -> Result<String, ApiError> {
        let scope = TokenScope {
            repositories: vec![source.full_name.name().to_owned()],
            permissions: [("deployments".to_owned(), "write".to_owned())].into(),
        };
        Ok(InstallationClient::new(&self.env, source.installation_id)?
            .token(&scope)
            .await?
            .token)
    }

    async fn create_github_deployment(
        &self,
        linked: &Linked,
        deployment: &Deployment,
        token: &str,
    ) -> Result<u64, ApiError> {
        #[derive(Deserialize)]
        struct Created {
            id: u64,
        }
        let source = &linked.source;
        let reference = DeploymentRef {
            project: linked.project.clone(),
            number: deployment.id,
        };
        let body = json!({
            "ref": deployment.sha,
            "environment": settings::environment(&self.env),
            "auto_merge": false,
            "required_contexts": [],
            "description": truncate(&format!("ghplane {reference} of {}", source.branch), MAX_DESCRIPTION),
            "payload": {"project": linked.project, "deployment": deployment.id},
        });
        let path = format!(
            "/repos/{}/{}/deployments",
            source.full_name.owner(),
            source.full_name.name()
        );
        let resp = GithubClient::from_env(&self.env)?
            .send(Method::Post, &path, token, Some(&body), Idempotent::No)
            .await?;
        Ok(resp.json::<Created>()?.id)
    }

    async fn remember_target(&self, deployment_id: u64, repo: RepoId) -> Result<(), ApiError> {
        let mut targets: Vec<(u64, RepoId)> = self.load(TARGETS_KEY).await?;
        targets.retain(|(d, _)| *d != deployment_id);
        targets.push((deployment_id, repo));
        let excess = targets.len().saturating_sub(MAX_TARGETS);
        targets.drain(..excess);
        self.save(TARGETS_KEY, &targets).await
    }

    /// Issues the deployment's ticket: stored hashed, kept sealed in the job for its retries.
    async fn issue_ticket(
        &self,
        ring: &Keyring,
        project: &ProjectSlug,
        job: u64,
        deployment_id: u64,
    ) -> Result<Ticket, ApiError> {
        let now = now_ms();
        let mut ticket = Ticket::issue(random_bytes::<32>(), deployment_id, now);
        ticket.expires_at_ms = now
            + ghplane_core::deploy::ticket::ticket_ttl_ms(
                settings::get(&self.env, settings::DEPLOY_TICKET_TTL_SECONDS).as_deref(),
            )
            .map_err(|_| ApiError::Misconfigured(settings::DEPLOY_TICKET_TTL_SECONDS.into()))?;
        let sealed = ring
            .seal(&object_name(project), TICKET_SLOT, &ticket.id)
            .await?;
        let mut tickets: Vec<Ticket> = self.load(TICKETS_KEY).await?;
        keep_stored(&mut tickets, ticket.stored(), now);
        self.save(TICKETS_KEY, &tickets).await?;
        let kept = JobTicket {
            sealed,
            expires_at_ms: ticket.expires_at_ms,
        };
        self.edit_job(job, |j| {
            j.work = Work::Dispatch {
                deployment_id,
                ticket: Some(kept),
            }
        })
        .await?;
        Ok(ticket)
    }

    async fn dispatch(&self, job: &Job) -> Result<(), ApiError> {
        let Work::Dispatch {
            deployment_id: id,
            ticket,
        } = &job.work
        else {
            return Ok(());
        };
        let id = *id;
        let cfg = self.config()?;
        let machine: DeployMachine = self.load(MACHINE_KEY).await?;
        let Some(deployment) = machine
            .deployment(id)
            .filter(|_| is_running(&machine, &cfg, id))
            .cloned()
        else {
            // It ended meanwhile (timed out, or the project was unlinked and relinked).
            return self.drop_job(job.id).await;
        };
        let Some(linked) = self.linked().await? else {
            return self
                .dispatch_failed(job.id, id, "the project was unlinked")
                .await;
        };
        if deployment.github_deployment_id.is_none() {
            // No token means nothing was sent: an outage of the token mint is retried on the
            // job's schedule (`job_failed`), like any failure before the deployment is asked for.
            let token = self.github_token(&linked.source).await?;
            match self
                .create_github_deployment(&linked, &deployment, &token)
                .await
            {
                Ok(github_id) => {
                    self.remember_target(id, linked.source.repo_id).await?;
                    self.react(|m, _, _| m.on_github_deployment(id, github_id))
                        .await?;
                    crate::log::event(
                        "info",
                        "github deployment created",
                        json!({"project": linked.project, "deployment": id, "githubDeploymentId": github_id}),
                    );
                }
                // A rate limit means GitHub did not process the request: try again when it says.
                Err(e) if e.code() == "github_rate_limited" => return Err(e),
                // Anything else may have created it: creating a deployment is not repeated
                // blindly, so GitHub's refusal or failure ends this one, with its reason.
                Err(e) => {
                    crate::log::event(
                        "warn",
                        "github deployment not created",
                        json!({"project": linked.project, "deployment": id, "errorCode": e.code()}),
                    );
                    let reason = format!("GitHub did not create the deployment ({})", e.code());
                    return self.dispatch_failed(job.id, id, &reason).await;
                }
            }
        }
        let Some(hook) = linked.source.deploy_hook_url.clone() else {
            // No hook: whoever watches GitHub's deployments reports; or the deadline ends it.
            return self.drop_job(job.id).await;
        };
        let ring = Keyring::from_env(&self.env).await?;
        let ticket = match ticket {
            Some(t) => Ticket {
                id: ring
                    .open(&object_name(&linked.project), TICKET_SLOT, &t.sealed)
                    .await?
                    .expose()
                    .to_owned(),
                deployment_id: id,
                expires_at_ms: t.expires_at_ms,
                redeemed: false,
            },
            None => {
                self.issue_ticket(&ring, &linked.project, job.id, id)
                    .await?
            }
        };
        let machine: DeployMachine = self.load(MACHINE_KEY).await?;
        let Some(deployment) = machine.deployment(id).cloned() else {
            return self.drop_job(job.id).await;
        };
        let reference = DeploymentRef {
            project: linked.project.clone(),
            number: id,
        };
        let base = linked.public_url.trim_end_matches('/');
        let body = hook_body(
            &linked.project,
            &linked.source,
            &deployment,
            &ticket,
            &format!("{base}/api/deployments/{reference}/credentials"),
            &format!("{base}/api/deployments/{reference}/status"),
        )
        .to_string();
        let secret = self.hook_secret(&ring, &linked.project).await?;
        let sig = signature(secret.expose().as_bytes(), body.as_bytes());
        let answer = post_hook(hook.as_str(), &body, &sig).await;
        let tries = job.tries + 1;
        let fields =
            json!({"project": linked.project, "deployment": id, "status": answer, "tries": tries});
        if answer.is_some_and(|s| (200..300).contains(&s)) {
            crate::log::event("info", "deploy hook delivered", fields);
            return self.drop_job(job.id).await;
        }
        match hook_retry_delay_ms(tries, answer) {
            Some(wait) => {
                crate::log::event("warn", "deploy hook failed; retrying", fields);
                self.edit_job(job.id, |j| {
                    j.tries = tries;
                    j.due_at_ms = now_ms() + wait as i64;
                })
                .await
            }
            None => {
                crate::log::event("warn", "deploy hook failed; giving up", fields);
                let reason = match answer {
                    Some(status) => format!("the deploy hook answered {status} (try {tries})"),
                    None => format!("the deploy hook did not answer (try {tries})"),
                };
                self.dispatch_failed(job.id, id, &reason).await
            }
        }
    }

    async fn mirror(&self, job: &Job) -> Result<(), ApiError> {
        let Work::Mirror {
            deployment_id,
            github_deployment_id,
            state,
            description,
        } = &job.work
        else {
            return Ok(());
        };
        let targets: Vec<(u64, RepoId)> = self.load(TARGETS_KEY).await?;
        let target = targets
            .iter()
            .find(|(d, _)| d == deployment_id)
            .map(|(_, r)| *r);
        let linked = self.linked().await?;
        let Some(linked) = linked.filter(|l| Some(l.source.repo_id) == target) else {
            // The project moved to another repository (or was unlinked): the deployment's
            // repository is no longer ours to write to.
            return self.drop_job(job.id).await;
        };
        let token = self.github_token(&linked.source).await?;
        let path = format!(
            "/repos/{}/{}/deployments/{github_deployment_id}/statuses",
            linked.source.full_name.owner(),
            linked.source.full_name.name()
        );
        let body =
            json!({"state": state.as_str(), "description": truncate(description, MAX_DESCRIPTION)});
        GithubClient::from_env(&self.env)?
            .send(Method::Post, &path, &token, Some(&body), Idempotent::No)
            .await?;
        self.drop_job(job.id).await
    }
}

/// POSTs the signed job; the status, or `None` when no answer came in time.
async fn post_hook(url: &str, body: &str, signature: &str) -> Option<u16> {
    let headers = Headers::new();
    headers.set("content-type", "application/json").ok()?;
    headers
        .set("user-agent", concat!("ghplane/", env!("CARGO_PKG_VERSION")))
        .ok()?;
    headers.set(SIGNATURE_HEADER, signature).ok()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let req = Request::new_with_init(url, &init).ok()?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(req);
    let send = fetch.send_with_signal(&signal);
    let timeout = Delay::from(HOOK_TIMEOUT);
    pin_mut!(send);
    pin_mut!(timeout);
    match select(send, timeout).await {
        Either::Left((Ok(resp), _)) => Some(resp.status_code()),
        Either::Left((Err(_), _)) => None,
        Either::Right(_) => {
            controller.abort();
            None
        }
    }
}

/// The route handlers' handle on one project's deploy object.
pub struct ProjectDeployClient {
    stub: crate::objects::internal::ObjectStub,
    project: ProjectSlug,
}

impl ProjectDeployClient {
    pub fn new(env: &Env, project: &ProjectSlug) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, settings::DEPLOYS, &object_name(project))?;
        Ok(Self {
            stub,
            project: project.clone(),
        })
    }

    fn url(&self, op: &str) -> String {
        format!("https://deploy/{op}?slug={}", self.project.as_str())
    }

    pub async fn reseal(&self) -> Result<ResealReport, ApiError> {
        let resp =
            internal::call::<()>(&self.stub, Method::Post, &self.url("reseal"), None, &[]).await?;
        internal::json(resp).await
    }

    pub async fn put_source(&self, linked: &Linked) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Put,
            &self.url("source"),
            Some(linked),
            &[],
        )
        .await
    }

    pub async fn get_source(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Get, &self.url("source"), None, &[]).await
    }

    pub async fn delete_source(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Delete, &self.url("source"), None, &[]).await
    }

    pub async fn deployments(&self) -> Result<Response, ApiError> {
        internal::call::<()>(&self.stub, Method::Get, &self.url("deployments"), None, &[]).await
    }

    pub async fn push(&self, push: &PushRequest) -> Result<Answer, ApiError> {
        let resp =
            internal::call(&self.stub, Method::Post, &self.url("push"), Some(push), &[]).await?;
        internal::json(resp).await
    }

    pub async fn rename(&self, rename: &RenameRequest) -> Result<Answer, ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            &self.url("rename"),
            Some(rename),
            &[],
        )
        .await?;
        internal::json(resp).await
    }

    pub async fn credentials(&self, c: &CredentialsRequest) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Post,
            &self.url("credentials"),
            Some(c),
            &[],
        )
        .await
    }

    pub async fn status(&self, s: &StatusRequest) -> Result<Response, ApiError> {
        internal::call(&self.stub, Method::Post, &self.url("status"), Some(s), &[]).await
    }
}
