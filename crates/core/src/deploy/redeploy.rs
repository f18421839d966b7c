//! An admin's redeploy of a branch head: what it asks for and what became of it. The machine
//! ([`super::machine::DeployMachine::on_redeploy`]) decides; these are its words.

use serde::{Deserialize, Serialize};

/// An admin's redeploy: the branch head GitHub reported, and its commit message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redeploy {
    pub sha: String,
    pub message: String,
}

/// What became of a redeploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Redeployed {
    /// A new deployment of the sha, dispatched now.
    Dispatched {
        #[serde(rename = "deployment")]
        deployment_id: u64,
    },
    /// Queued behind the running deployment: it dispatches when that one ends.
    Queued,
    /// That sha is deploying right now with nothing queued: no second deployment.
    AlreadyDeploying {
        #[serde(rename = "deployment")]
        deployment_id: u64,
    },
    /// A push is already queued (it deploys the newest sha ghplane has seen): the redeploy
    /// does not replace it, so the branch never moves back behind a push in flight.
    PushPending,
    /// The branch already moved past that sha (GitHub's answer was older than a push
    /// received): nothing deploys.
    Stale,
}
