//! The handle on the app directory's `apps` object (see `ghplane_core::tenancy::directory`).

use ghplane_core::ids::AppId;
use ghplane_core::tenancy::app::AppRecord;
use ghplane_core::tenancy::directory::{DirectoryCommand, DirectoryEntry};
use ghplane_core::ApiError;
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

const OBJECT_NAME: &str = "apps";

pub struct DirectoryClient {
    object: Object,
}

impl DirectoryClient {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::APP_DIRECTORY, OBJECT_NAME)?;
        Ok(Self { object })
    }

    /// The app's verification material; `None` for an app that is not registered.
    pub async fn get(&self, app: AppId) -> Result<Option<DirectoryEntry>, ApiError> {
        self.object.call(&DirectoryCommand::Entry { app }).await
    }

    /// Every registered app.
    pub async fn list(&self) -> Result<Vec<AppId>, ApiError> {
        self.object.call(&DirectoryCommand::Apps).await
    }

    /// Registers the app with the webhook secrets of `record`.
    pub async fn publish(&self, record: &AppRecord) -> Result<(), ApiError> {
        let command = DirectoryCommand::Publish {
            app: record.app_id,
            entry: DirectoryEntry::of(record),
        };
        self.object.call(&command).await
    }

    pub async fn remove(&self, app: AppId) -> Result<(), ApiError> {
        self.object.call(&DirectoryCommand::Remove { app }).await
    }
}
