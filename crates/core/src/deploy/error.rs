//! Every way a push-to-deploy request is refused, with its stable code and HTTP status.
//! Codes are part of the API contract (the OpenAPI document lists them): never rename one.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeployError {
    #[error("project {0} has no GitHub source; link one with PUT /projects/{0}/source")]
    NotLinked(String),
    /// The installation named in a source is not a tenant ghplane knows.
    #[error(
        "installation {0} has no configuration in ghplane; its token cannot reach any repository"
    )]
    InstallationUnknown(u64),
    /// The installation's token does not reach the repository (not installed on it, or gone).
    #[error("repository {repo_id} is not reachable with installation {installation_id}'s token")]
    RepoUnreachable { repo_id: u64, installation_id: u64 },
    /// A redeploy of a project that follows no branch.
    #[error(
        "project {0} has no GitHub source to redeploy; link one with PUT /projects/{0}/source"
    )]
    RedeployWithoutSource(String),
    #[error("no deployment {0}")]
    DeploymentNotFound(String),
    /// A report for a deployment that already ended (reported, timed out or not dispatched).
    #[error("deployment {0} is not running any more; its report is not recorded")]
    DeploymentNotRunning(String),
    #[error(
        "the X-Ghplane-Signature-256 header does not match the X-Ghplane-Timestamp, the deployment and the body under the project's hook secret (see docs/deploy-signing.md)"
    )]
    InvalidSignature,
    /// A correctly signed report whose timestamp is too far from ghplane's clock: a replay,
    /// or a deployer whose clock is off.
    #[error("the X-Ghplane-Timestamp is more than 5 minutes from ghplane's clock; sign the report again with the current time")]
    ReportExpired,
    #[error("{0}")]
    Ticket(TicketError),
}

impl DeployError {
    pub const ALL_CODES: &'static [&'static str] = &[
        "source_not_linked",
        "source_installation_unknown",
        "source_repo_unreachable",
        "redeploy_without_source",
        "deployment_not_found",
        "deployment_not_running",
        "invalid_signature",
        "report_expired",
        "ticket_unknown",
        "ticket_wrong_deployment",
        "ticket_already_redeemed",
        "ticket_expired",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            DeployError::NotLinked(_) => "source_not_linked",
            DeployError::InstallationUnknown(_) => "source_installation_unknown",
            DeployError::RepoUnreachable { .. } => "source_repo_unreachable",
            DeployError::RedeployWithoutSource(_) => "redeploy_without_source",
            DeployError::DeploymentNotFound(_) => "deployment_not_found",
            DeployError::DeploymentNotRunning(_) => "deployment_not_running",
            DeployError::InvalidSignature => "invalid_signature",
            DeployError::ReportExpired => "report_expired",
            DeployError::Ticket(t) => t.code(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            DeployError::NotLinked(_) | DeployError::DeploymentNotFound(_) => 404,
            DeployError::InstallationUnknown(_) | DeployError::RepoUnreachable { .. } => 422,
            DeployError::DeploymentNotRunning(_) | DeployError::RedeployWithoutSource(_) => 409,
            DeployError::InvalidSignature | DeployError::ReportExpired => 401,
            DeployError::Ticket(t) => t.status(),
        }
    }
}

/// Why a credentials ticket (`deploy::ticket`) was not redeemed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketError {
    /// No ticket with that id (never issued, or already cleaned up).
    #[error("unknown credentials ticket")]
    Unknown,
    #[error("this ticket belongs to another deployment")]
    WrongDeployment,
    #[error("this ticket was already redeemed")]
    AlreadyRedeemed,
    #[error("this ticket has expired")]
    Expired,
}

impl TicketError {
    pub fn code(self) -> &'static str {
        match self {
            TicketError::Unknown => "ticket_unknown",
            TicketError::WrongDeployment => "ticket_wrong_deployment",
            TicketError::AlreadyRedeemed => "ticket_already_redeemed",
            TicketError::Expired => "ticket_expired",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            TicketError::Unknown => 404,
            TicketError::WrongDeployment => 403,
            TicketError::AlreadyRedeemed => 409,
            TicketError::Expired => 410,
        }
    }
}

impl From<TicketError> for DeployError {
    fn from(e: TicketError) -> DeployError {
        DeployError::Ticket(e)
    }
}

#[cfg(test)]
pub(crate) fn samples() -> Vec<DeployError> {
    vec![
        DeployError::NotLinked("a".into()),
        DeployError::InstallationUnknown(1),
        DeployError::RepoUnreachable {
            repo_id: 1,
            installation_id: 2,
        },
        DeployError::RedeployWithoutSource("a".into()),
        DeployError::DeploymentNotFound("a.1".into()),
        DeployError::DeploymentNotRunning("a.1".into()),
        DeployError::InvalidSignature,
        DeployError::ReportExpired,
        TicketError::Unknown.into(),
        TicketError::WrongDeployment.into(),
        TicketError::AlreadyRedeemed.into(),
        TicketError::Expired.into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_and_statuses_are_client_errors() {
        let samples = samples();
        for e in &samples {
            assert!(DeployError::ALL_CODES.contains(&e.code()), "{}", e.code());
            assert!((400..500).contains(&e.status()), "{}", e.code());
        }
        assert_eq!(samples.len(), DeployError::ALL_CODES.len());
        assert_eq!(
            (samples[10].code(), samples[10].status()),
            ("ticket_already_redeemed", 409)
        );
    }
}
