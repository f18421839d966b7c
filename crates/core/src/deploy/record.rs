//! One deployment as `GET /projects/:slug/deployments` shows it. Invariant: a deployment's
//! state only moves forward (queued → in_progress → a final state) and a final state is
//! never left.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::input::{invalid, parse_object, reject_unknown};

/// The push that caused a deployment (the newest of its burst), or an admin's redeploy of
/// the branch head (`kind: "redeploy"`, no delivery id, no pusher).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub delivery_id: String,
    pub pusher: String,
    pub sha: String,
    pub message: String,
    /// Absent for a push (so a push's trigger, stored or sent, keeps its shape).
    #[serde(default, skip_serializing_if = "TriggerKind::is_push")]
    pub kind: TriggerKind,
}

/// What started a deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    #[default]
    Push,
    /// `POST /projects/{slug}/redeploy`: the branch head as GitHub reported it.
    Redeploy,
}

impl TriggerKind {
    pub fn is_push(&self) -> bool {
        *self == TriggerKind::Push
    }
}

/// GitHub's deployment status vocabulary, so mirroring is a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Queued,
    InProgress,
    Success,
    Failure,
    Error,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Queued => "queued",
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Success => "success",
            DeploymentState::Failure => "failure",
            DeploymentState::Error => "error",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentState::Success | DeploymentState::Failure | DeploymentState::Error
        )
    }
}

/// Why a deployment ended, finer than its state (an `error` may be a timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Errored,
    /// No final report arrived within `DEPLOY_TIMEOUT_SECONDS`.
    TimedOut,
    /// The hook could not be delivered (or the GitHub deployment not created).
    DispatchFailed,
    /// ghplane's own deploy alarm kept failing past its retries.
    AlarmFailed,
}

/// What a deploy runner reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportedState {
    InProgress,
    Success,
    Failure,
    Error,
}

impl ReportedState {
    pub fn parse(s: &str) -> Option<ReportedState> {
        match s {
            "in_progress" => Some(ReportedState::InProgress),
            "success" => Some(ReportedState::Success),
            "failure" => Some(ReportedState::Failure),
            "error" => Some(ReportedState::Error),
            _ => None,
        }
    }

    /// The body of a status report: `{state}`.
    pub fn parse_body(body: &[u8]) -> Result<ReportedState, ApiError> {
        let map = parse_object(body)?;
        reject_unknown(&map, &["state"])?;
        map.get("state")
            .and_then(Value::as_str)
            .and_then(ReportedState::parse)
            .ok_or_else(|| invalid("state", "must be in_progress, success, failure or error"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    pub trigger: Trigger,
    /// Pushes folded into this deployment (1 for a lone push).
    pub pushes: u32,
    pub state: DeploymentState,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub github_deployment_id: Option<u64>,
    pub outcome: Option<Outcome>,
    /// Why it ended in `error` when ghplane could not carry it out (a dispatch that failed,
    /// an alarm that kept failing): a stable code and short words, never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_states_parse() {
        assert_eq!(
            ReportedState::parse_body(br#"{"state":"success"}"#).unwrap(),
            ReportedState::Success
        );
        assert_eq!(
            ReportedState::parse_body(br#"{"state":"in_progress"}"#).unwrap(),
            ReportedState::InProgress
        );
        for body in [
            &br#"{}"#[..],
            br#"{"state":"queued"}"#,
            br#"{"state":1}"#,
            br#"{"state":"success","x":1}"#,
        ] {
            let err = ReportedState::parse_body(body).unwrap_err();
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn states_use_github_words() {
        for s in [
            DeploymentState::Queued,
            DeploymentState::InProgress,
            DeploymentState::Success,
            DeploymentState::Failure,
            DeploymentState::Error,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(!DeploymentState::InProgress.is_final());
        assert!(DeploymentState::Error.is_final());
    }
}
