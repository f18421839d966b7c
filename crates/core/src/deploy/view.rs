//! The body of `GET /projects/:slug/deployments`: the machine's deployments and what is
//! pending, plus the outbox's calls still to make (so a wait on GitHub, such as a rate
//! limit's, is visible). Rendering only: nothing here decides.

use serde_json::{json, Value};

use super::machine::{DeployConfig, DeployMachine, Phase};
use super::outbox::{Job, Outbox};
use crate::time::rfc3339_from_millis;

pub fn view(machine: &DeployMachine, outbox: &Outbox, cfg: &DeployConfig) -> Value {
    let phase = machine.phase(cfg);
    let running = match &phase {
        Phase::Running { deployment_id, .. } => Some(*deployment_id),
        _ => None,
    };
    let pending = match phase {
        Phase::Debouncing { sha, fire_at_ms } => {
            json!({"sha": sha, "dispatchAt": rfc3339_from_millis(fire_at_ms)})
        }
        Phase::Running {
            follow_up: Some(sha),
            ..
        } => json!({"sha": sha, "dispatchAt": null}),
        _ => Value::Null,
    };
    json!({
        "deployments": machine.deployments(),
        "running": running,
        "pending": pending,
        "jobs": outbox.jobs.iter().map(job_view).collect::<Vec<_>>(),
    })
}

fn job_view(job: &Job) -> Value {
    json!({"type": job.kind(), "deployment": job.deployment_id(), "tries": job.tries,
        "nextAttemptAt": rfc3339_from_millis(job.due_at_ms)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::machine::tests::{push, sha, CFG, T0};

    #[test]
    fn the_view_shows_the_running_deployment_its_follow_up_and_the_jobs() {
        let mut m = DeployMachine::new();
        let mut outbox = Outbox::default();
        m.on_push(push(1), &CFG, T0);
        let r = m.on_alarm(&CFG, T0 + CFG.debounce_ms);
        outbox.enqueue(&r.effects, T0 + CFG.debounce_ms);
        m.on_push(push(2), &CFG, T0 + 11_000);
        let v = view(&m, &outbox, &CFG);
        assert_eq!(v["running"], 1);
        assert_eq!(v["pending"]["sha"], sha(2));
        assert_eq!(v["pending"]["dispatchAt"], Value::Null);
        assert_eq!(v["deployments"][0]["state"], "queued");
        assert_eq!(v["deployments"][0]["trigger"]["pusher"], "octocat");
        assert_eq!(v["deployments"][0]["githubDeploymentId"], Value::Null);
        assert_eq!(
            v["jobs"],
            json!([{"type": "dispatch", "deployment": 1, "tries": 0,
                "nextAttemptAt": rfc3339_from_millis(T0 + CFG.debounce_ms)}])
        );
    }

    #[test]
    fn a_debouncing_burst_shows_when_it_dispatches() {
        let mut m = DeployMachine::new();
        m.on_push(push(1), &CFG, T0);
        let v = view(&m, &Outbox::default(), &CFG);
        assert_eq!(v["running"], Value::Null);
        assert_eq!(
            v["pending"],
            json!({"sha": sha(1), "dispatchAt": rfc3339_from_millis(T0 + CFG.debounce_ms)})
        );
        assert_eq!(v["jobs"], json!([]));
        let idle = view(&DeployMachine::new(), &Outbox::default(), &CFG);
        assert_eq!(idle["pending"], Value::Null);
        assert_eq!(idle["deployments"], json!([]));
    }
}
