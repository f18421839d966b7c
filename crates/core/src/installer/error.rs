//! Every way an installer request is refused, with its stable code and HTTP status.
//!
//! Codes are part of the API contract (the OpenAPI document and the admin CLI show them):
//! never rename one.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstallerError {
    #[error("installer {0} does not exist")]
    NotFound(String),
    #[error("{repository} already has a dedicated app (installer {holder}); uninstall it first")]
    RepositoryClaimed { repository: String, holder: String },
    #[error("{repository} is covered by {by}; a repository is never served by both an org-level installation and a dedicated app")]
    CoveredByOrg { repository: String, by: String },
    #[error("organisation {org} has repositories with dedicated apps ({repositories}); list them in \"exclude\" or uninstall those first")]
    OrgHasDedicated { org: String, repositories: String },
    #[error("organisation {org} already has an org-level installer ({holder})")]
    OrgClaimed { org: String, holder: String },
    #[error("installer {0} is not installed on GitHub yet; install its app first")]
    NotInstalled(String),
    #[error("{0}")]
    WrongMode(String),
    #[error("installer {0} was uninstalled; create a new installer")]
    Uninstalled(String),
    #[error("installation {installation} is misconfigured and gets no tokens: {reason}")]
    Misconfigured { installation: u64, reason: String },
    #[error("{0}")]
    Withheld(String),
    #[error("the setup link is not valid: {0}")]
    InvalidState(Cow<'static, str>),
    #[error("GitHub did not accept the app creation code (it was already used or has expired); start again from the setup page")]
    CodeRejected,
}

impl InstallerError {
    pub fn code(&self) -> &'static str {
        match self {
            InstallerError::NotFound(_) => "installer_not_found",
            InstallerError::RepositoryClaimed { .. } => "repository_claimed",
            InstallerError::CoveredByOrg { .. } => "repository_covered_by_org",
            InstallerError::OrgHasDedicated { .. } => "org_has_dedicated_repositories",
            InstallerError::OrgClaimed { .. } => "org_already_claimed",
            InstallerError::NotInstalled(_) => "installer_not_installed",
            InstallerError::WrongMode(_) => "installer_mode_mismatch",
            InstallerError::Uninstalled(_) => "installer_uninstalled",
            InstallerError::Misconfigured { .. } => "installation_misconfigured",
            InstallerError::Withheld(_) => "repository_withheld",
            InstallerError::InvalidState(_) => "invalid_setup_state",
            InstallerError::CodeRejected => "manifest_code_rejected",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            InstallerError::NotFound(_) => 404,
            InstallerError::RepositoryClaimed { .. }
            | InstallerError::CoveredByOrg { .. }
            | InstallerError::OrgHasDedicated { .. }
            | InstallerError::OrgClaimed { .. }
            | InstallerError::NotInstalled(_)
            | InstallerError::WrongMode(_)
            | InstallerError::Uninstalled(_) => 409,
            InstallerError::Misconfigured { .. } | InstallerError::Withheld(_) => 403,
            InstallerError::InvalidState(_) | InstallerError::CodeRejected => 400,
        }
    }

    /// Every code, for the OpenAPI document and its test.
    pub const ALL_CODES: &'static [&'static str] = &[
        "installer_not_found",
        "repository_claimed",
        "repository_covered_by_org",
        "org_has_dedicated_repositories",
        "org_already_claimed",
        "installer_not_installed",
        "installer_mode_mismatch",
        "installer_uninstalled",
        "installation_misconfigured",
        "repository_withheld",
        "invalid_setup_state",
        "manifest_code_rejected",
    ];
}

#[cfg(test)]
pub(crate) fn samples() -> Vec<InstallerError> {
    vec![
        InstallerError::NotFound("x".into()),
        InstallerError::RepositoryClaimed {
            repository: "o/r".into(),
            holder: "x".into(),
        },
        InstallerError::CoveredByOrg {
            repository: "o/r".into(),
            by: "x".into(),
        },
        InstallerError::OrgHasDedicated {
            org: "o".into(),
            repositories: "o/r".into(),
        },
        InstallerError::OrgClaimed {
            org: "o".into(),
            holder: "x".into(),
        },
        InstallerError::NotInstalled("x".into()),
        InstallerError::WrongMode("x".into()),
        InstallerError::Uninstalled("x".into()),
        InstallerError::Misconfigured {
            installation: 1,
            reason: "r".into(),
        },
        InstallerError::Withheld("x".into()),
        InstallerError::InvalidState("x".into()),
        InstallerError::CodeRejected,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed() {
        let samples = samples();
        for e in samples {
            assert!(
                InstallerError::ALL_CODES.contains(&e.code()),
                "{}",
                e.code()
            );
        }
    }
}
