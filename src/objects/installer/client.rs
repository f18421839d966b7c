//! The handle on one installer's `InstallerStore`: its commands and their replies.

use ghplane_core::ids::{InstallationId, RepoFullName};
use ghplane_core::installer::{InstallerApp, InstallerId, InstallerRecord, PendingState};
use ghplane_core::rpc::Command;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

/// What the object is asked. Each answers the record as it now is, except `State`
/// ([`PendingState`]) and `View` ([`Viewed`]).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallerCommand {
    /// Stores a new installer's record.
    Create {
        record: Box<InstallerRecord>,
    },
    Get,
    /// The outstanding setup state, or a fresh one.
    State,
    /// Uses up the setup state `nonce` (single use).
    Consume {
        nonce: String,
    },
    SetApp {
        app: InstallerApp,
    },
    Installed(Installed),
    /// Adds repositories to an org installer's enrolled list.
    Enrolled {
        repositories: Vec<RepoFullName>,
    },
    Uninstalled,
    /// The record, and the enrollment's service key the first time only.
    View,
}

impl Command for InstallerCommand {
    /// A read, and storing a whole record, may be sent twice; the others change state
    /// relative to what is there (the old protocol's GET and PUT against its POSTs).
    fn idempotent(&self) -> bool {
        matches!(
            self,
            InstallerCommand::Create { .. } | InstallerCommand::Get
        )
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Installed {
    pub installation_id: InstallationId,
    pub misconfiguration: Option<String>,
    /// `(key id, key)`, made by the installation's object for this tenant alone.
    pub service_key: Option<(String, String)>,
}

#[derive(Serialize, Deserialize)]
pub struct Viewed {
    pub record: InstallerRecord,
    pub service_key: Option<String>,
}

/// The route handlers' handle on one installer's object.
pub struct InstallerClient {
    object: Object,
}

impl InstallerClient {
    pub fn new(env: &Env, id: &InstallerId) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::INSTALLERS, &id.object_name())?;
        Ok(Self { object })
    }

    pub async fn create(&self, record: &InstallerRecord) -> Result<InstallerRecord, ApiError> {
        self.object
            .call(&InstallerCommand::Create {
                record: Box::new(record.clone()),
            })
            .await
    }

    pub async fn get(&self) -> Result<InstallerRecord, ApiError> {
        self.object.call(&InstallerCommand::Get).await
    }

    pub async fn state(&self) -> Result<PendingState, ApiError> {
        self.object.call(&InstallerCommand::State).await
    }

    pub async fn consume(&self, nonce: &str) -> Result<InstallerRecord, ApiError> {
        self.object
            .call(&InstallerCommand::Consume {
                nonce: nonce.to_owned(),
            })
            .await
    }

    pub async fn set_app(&self, app: &InstallerApp) -> Result<InstallerRecord, ApiError> {
        self.object
            .call(&InstallerCommand::SetApp { app: app.clone() })
            .await
    }

    pub async fn installed(&self, i: &Installed) -> Result<InstallerRecord, ApiError> {
        self.object
            .call(&InstallerCommand::Installed(i.clone()))
            .await
    }

    pub async fn enrolled(&self, repos: &[RepoFullName]) -> Result<InstallerRecord, ApiError> {
        self.object
            .call(&InstallerCommand::Enrolled {
                repositories: repos.to_vec(),
            })
            .await
    }

    pub async fn uninstalled(&self) -> Result<InstallerRecord, ApiError> {
        self.object.call(&InstallerCommand::Uninstalled).await
    }

    pub async fn view(&self) -> Result<Viewed, ApiError> {
        self.object.call(&InstallerCommand::View).await
    }
}
