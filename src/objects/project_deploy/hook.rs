//! Delivering a dispatch job to the project's deploy hook: the job's body, signed with the
//! hook secret, POSTed with a timeout. What follows the answer is the core's decision
//! (`ghplane_core::deploy::outbox::after_hook`).

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::pin_mut;
use ghplane_core::deploy::outbox::{after_hook, Job, Next};
use ghplane_core::deploy::{
    hook_body, signature, DeployMachine, DeploymentRef, Ticket, SIGNATURE_HEADER,
};
use ghplane_core::ApiError;
use serde_json::json;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

use super::client::Linked;
use super::{now_ms, ProjectDeploy, MACHINE_KEY};

/// A deployer that has not answered the job by then is treated as not answering at all.
const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

impl ProjectDeploy {
    /// Sends dispatch `job` (deployment `ticket.deployment_id`) to the hook; what becomes of
    /// the job.
    pub(super) async fn deliver(
        &self,
        job: &Job,
        linked: &Linked,
        ticket: &Ticket,
    ) -> Result<Next, ApiError> {
        let Some(hook) = linked.source.deploy_hook_url.as_ref() else {
            return Ok(Next::Done);
        };
        let id = ticket.deployment_id;
        // Read again: creating the GitHub deployment changed the record.
        let machine: DeployMachine = self.load(MACHINE_KEY).await?;
        let Some(deployment) = machine.deployment(id) else {
            return Ok(Next::Done);
        };
        let reference = DeploymentRef {
            project: linked.project.clone(),
            number: id,
        };
        let base = linked.public_url.trim_end_matches('/');
        let body = hook_body(
            &linked.project,
            &linked.source,
            deployment,
            ticket,
            &format!("{base}/api/deployments/{reference}/credentials"),
            &format!("{base}/api/deployments/{reference}/status"),
        )
        .to_string();
        let secret = self.hook_secret(&linked.project).await?;
        let sig = signature(secret.expose().as_bytes(), body.as_bytes());
        let answer = post_hook(hook.as_str(), &body, &sig).await;
        let next = after_hook(job, answer, now_ms());
        let fields = json!({"project": linked.project, "deployment": id, "status": answer,
            "tries": job.tries + 1});
        let message = match next {
            Next::Done => "deploy hook delivered",
            Next::Retry { .. } => "deploy hook failed; retrying",
            Next::Fail { .. } => "deploy hook failed; giving up",
        };
        crate::log::event(
            if next == Next::Done { "info" } else { "warn" },
            message,
            fields,
        );
        Ok(next)
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
