//! The org's credentials for the routes that act on `GITHUB_ORG` (project repositories, the
//! staff team check): which credential applies is the core's decision
//! (`ghplane_core::projects::org_setting`); this only fetches it.

use ghplane_core::projects::{org_setting, org_token_scope, OrgAuth, OrgNotConfigured, OrgSetting};
use ghplane_core::ApiError;
use worker::Env;

use crate::objects::installation::InstallationClient;
use crate::settings;

/// The org's credentials: the installation token of the app on `GITHUB_ORG` (minted by that
/// installation's Durable Object, which caches it sealed), else the `GITHUB_TOKEN` secret.
/// Which one applies is decided by `ghplane_core::projects::org_setting`.
pub(crate) struct OrgAccess {
    pub(crate) setting: OrgSetting,
}

impl OrgAccess {
    pub(crate) fn from_env(env: &Env) -> Result<OrgAccess, OrgNotConfigured> {
        let org = settings::get(env, settings::GITHUB_ORG);
        let installation = settings::get(env, settings::GITHUB_ORG_INSTALLATION_ID);
        let token_set = settings::get(env, settings::GITHUB_TOKEN).is_some();
        let setting = org_setting(org.as_deref(), installation.as_deref(), token_set)?;
        Ok(OrgAccess { setting })
    }

    /// For routes that need the org: a missing setting is the server's misconfiguration.
    pub(crate) fn require(env: &Env) -> Result<OrgAccess, ApiError> {
        OrgAccess::from_env(env).map_err(|e| ApiError::Misconfigured(e.var.into()))
    }

    pub(crate) fn org(&self) -> &str {
        &self.setting.org
    }

    /// A bearer token for the org. Errors are those of the installation's object (its
    /// config missing, GitHub refusing the mint, ...).
    pub(crate) async fn token(&self, env: &Env) -> Result<String, ApiError> {
        match self.setting.auth {
            OrgAuth::Installation(id) => InstallationClient::new(env, id)?
                .token(&org_token_scope())
                .await
                .map(|grant| grant.token),
            OrgAuth::Token => settings::require(env, settings::GITHUB_TOKEN),
        }
    }

    /// GitHub answered 401 to the token: the next call mints a fresh one. Best effort.
    pub(crate) async fn forget_token(&self, env: &Env) {
        if let OrgAuth::Installation(id) = self.setting.auth {
            if let Ok(client) = InstallationClient::new(env, id) {
                let _ = client.forget_token(&org_token_scope()).await;
            }
        }
    }

    /// [`OrgAccess::token`] for admin routes: an installation the server names but cannot
    /// use (no tenant config, unknown app) is a misconfiguration, not a missing resource.
    pub(crate) async fn admin_token(&self, env: &Env) -> Result<String, ApiError> {
        self.token(env).await.map_err(|e| match e {
            ApiError::InstallationNotFound(_)
            | ApiError::AppNotFound(_)
            | ApiError::UnknownApp(_) => {
                ApiError::Misconfigured(settings::GITHUB_ORG_INSTALLATION_ID.into())
            }
            other => other,
        })
    }
}
