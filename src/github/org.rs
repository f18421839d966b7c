//! The org's credentials: the installation token of the app on `GITHUB_ORG` (minted by that
//! installation's Durable Object, which caches it sealed), else the `GITHUB_TOKEN` secret.
//! Which one applies is decided by `ghplane_core::projects::org_setting`.

use ghplane_core::projects::{org_setting, org_token_scope, OrgAuth, OrgNotConfigured, OrgSetting};
use ghplane_core::ApiError;
use worker::Env;

use crate::objects::installation::InstallationClient;
use crate::settings;

pub struct OrgAccess {
    pub setting: OrgSetting,
}

impl OrgAccess {
    pub fn from_env(env: &Env) -> Result<OrgAccess, OrgNotConfigured> {
        let org = settings::get(env, settings::GITHUB_ORG);
        let installation = settings::get(env, settings::GITHUB_ORG_INSTALLATION_ID);
        let token_set = settings::get(env, settings::GITHUB_TOKEN).is_some();
        let setting = org_setting(org.as_deref(), installation.as_deref(), token_set)?;
        Ok(OrgAccess { setting })
    }

    /// For routes that need the org: a missing setting is the server's misconfiguration.
    pub fn require(env: &Env) -> Result<OrgAccess, ApiError> {
        OrgAccess::from_env(env).map_err(|e| ApiError::Misconfigured(e.var.into()))
    }

    pub fn org(&self) -> &str {
        &self.setting.org
    }

    /// A bearer token for the org. Errors are those of the installation's object (its
    /// config missing, GitHub refusing the mint, ...), already in the public shape.
    pub async fn token(&self, env: &Env) -> Result<String, ApiError> {
        match self.setting.auth {
            OrgAuth::Installation(id) => InstallationClient::new(env, id)?
                .token(&org_token_scope())
                .await
                .map(|grant| grant.token),
            OrgAuth::Token => settings::require(env, settings::GITHUB_TOKEN),
        }
    }

    /// GitHub answered 401 to the token: the next call mints a fresh one. Best effort.
    pub async fn forget_token(&self, env: &Env) {
        if let OrgAuth::Installation(id) = self.setting.auth {
            if let Ok(client) = InstallationClient::new(env, id) {
                let _ = client.forget_token(&org_token_scope()).await;
            }
        }
    }

    /// [`OrgAccess::token`] for admin routes: an installation the server names but cannot
    /// use (no tenant config, unknown app) is a misconfiguration, not a missing resource.
    pub async fn admin_token(&self, env: &Env) -> Result<String, ApiError> {
        let misconfigured = || ApiError::Misconfigured(settings::GITHUB_ORG_INSTALLATION_ID.into());
        self.token(env).await.map_err(|e| match e {
            ApiError::InstallationNotFound(_)
            | ApiError::AppNotFound(_)
            | ApiError::UnknownApp(_) => misconfigured(),
            // Until the installation's object answers typed errors: goes with `Relayed`.
            ApiError::Relayed { ref code, .. }
                if matches!(code.as_str(), "installation_not_found" | "app_not_found") =>
            {
                misconfigured()
            }
            e => e,
        })
    }
}
