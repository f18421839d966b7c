//! Runs the outbox's due jobs from the alarm: each due job once per ring, oldest first; what
//! follows each try (done, again later, given up) is the core's decision
//! (`ghplane_core::deploy::outbox`), applied and stored here.

use std::collections::HashSet;

use ghplane_core::deploy::outbox::{after_error, creation_refused, Job, Next, Outbox, Work};
use ghplane_core::deploy::{DeployConfig, DeployMachine, Phase};
use ghplane_core::ApiError;
use serde_json::json;

use super::{now_ms, ProjectDeploy, MACHINE_KEY, OUTBOX_KEY};

fn is_running(machine: &DeployMachine, cfg: &DeployConfig, id: u64) -> bool {
    matches!(machine.phase(cfg), Phase::Running { deployment_id, .. } if deployment_id == id)
}

impl ProjectDeploy {
    pub(super) async fn run_alarm(&self) -> Result<(), ApiError> {
        self.react(|m, cfg, now| m.on_alarm(cfg, now)).await?;
        // Each due job once per ring, oldest first; a job that must wait re-arms the alarm.
        let mut tried = HashSet::new();
        loop {
            let outbox: Outbox = self.load(OUTBOX_KEY).await?;
            let Some(job) = outbox.next_due(now_ms(), &tried).cloned() else {
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

    /// Creates the GitHub deployment (once), then delivers the job to the deploy hook, if
    /// the source has one.
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
            return self.settle(job.id, Next::Done).await;
        };
        let Some(linked) = self.linked().await? else {
            return self
                .fail_dispatch(job.id, id, "the project was unlinked".to_owned())
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
                Err(e) => {
                    // A rate limit means GitHub did not process the request: try again when
                    // it says. Anything else ends this deployment, with its reason.
                    let Some(reason) = creation_refused(&e) else {
                        return Err(e);
                    };
                    crate::log::event(
                        "warn",
                        "github deployment not created",
                        json!({"project": linked.project, "deployment": id, "errorCode": e.code()}),
                    );
                    return self.fail_dispatch(job.id, id, reason).await;
                }
            }
        }
        if linked.source.deploy_hook_url.is_none() {
            // No hook: whoever watches GitHub's deployments reports; or the deadline ends it.
            return self.settle(job.id, Next::Done).await;
        }
        let ticket = self
            .job_ticket(&linked.project, job.id, id, ticket.as_ref())
            .await?;
        let next = self.deliver(job, &linked, &ticket).await?;
        self.settle(job.id, next).await
    }

    /// A job that failed on our side or GitHub's: tried again later or given up, as the core
    /// decides.
    async fn job_failed(&self, job: &Job, e: &ApiError) -> Result<(), ApiError> {
        let now = now_ms();
        let next = after_error(job, e, now);
        let retry_in = match &next {
            Next::Retry { due_at_ms, .. } => Some(due_at_ms - now),
            _ => None,
        };
        crate::log::event(
            "warn",
            "deploy job failed",
            json!({"job": job.kind(), "tries": job.tries + 1, "errorCode": e.code(), "retryInMs": retry_in}),
        );
        self.settle(job.id, next).await
    }

    /// Stores what follows a try: the job retried or dropped; a dispatch given up ends its
    /// deployment (which starts any follow-up).
    pub(super) async fn settle(&self, job: u64, next: Next) -> Result<(), ApiError> {
        let mut outbox: Outbox = self.load(OUTBOX_KEY).await?;
        outbox.settle(job, &next);
        self.save(OUTBOX_KEY, &outbox).await?;
        if let Next::Fail {
            deployment_id,
            reason,
        } = next
        {
            self.react(|m, cfg, now| m.on_dispatch_failed(deployment_id, &reason, cfg, now))
                .await?;
        }
        Ok(())
    }

    async fn fail_dispatch(
        &self,
        job: u64,
        deployment_id: u64,
        reason: String,
    ) -> Result<(), ApiError> {
        self.settle(
            job,
            Next::Fail {
                deployment_id,
                reason,
            },
        )
        .await
    }

    /// The alarm kept failing: drop the jobs that were due and end the running deployment.
    pub(super) async fn give_up(&self, reason: &str, now: i64) -> Result<(), ApiError> {
        let mut outbox: Outbox = self.load(OUTBOX_KEY).await?;
        if outbox.drop_due(now) {
            self.save(OUTBOX_KEY, &outbox).await?;
        }
        // The configuration may be what fails: the defaults still end the deployment.
        let cfg = self.config().unwrap_or_default();
        self.react_with(&cfg, |m, cfg, now| m.on_alarm_failed(reason, cfg, now))
            .await?;
        Ok(())
    }
}
