//! How an installation's object keeps the owner's claims in step with GitHub, and the guard
//! it checks before serving: a `repo`-mode app's installation is enrolled only when it covers
//! exactly its repository, and an org installation never serves a repository a dedicated app
//! owns (its tokens refuse it, its deliveries for it are ignored with the reason logged).

use ghplane_core::ids::{AppId, InstallationId, RepoFullName};
use ghplane_core::installer::claims::ClaimRequest;
use ghplane_core::installer::{dedicated_coverage, Guard, InstallerError, InstallerId};
use ghplane_core::tenancy::app::AppMode;
use ghplane_core::tenancy::config::InstallationRecord;
use ghplane_core::webhook::Action;
use ghplane_core::ApiError;
use serde_json::json;
use worker::Env;

use super::client::push_withheld;
use super::{now_text, InstallationStore, TOKENS_KEY};
use crate::objects::app_store::client::AppClient;
use crate::objects::claims::ClaimsClient;
use crate::objects::installer::{Installed, InstallerClient};

pub(super) const GUARD_KEY: &str = "guard";
/// The installer whose uninstall ended this installation: later deliveries are refused.
/// Kept by `purge` on purpose.
const TOMBSTONE_KEY: &str = "uninstalled-by";

/// The app's mode as its registry entry says; `None` when the app is not registered.
async fn app_mode(env: &Env, app: AppId) -> Result<Option<AppMode>, ApiError> {
    let Some(view) = AppClient::new(env, app)?.find().await? else {
        return Ok(None);
    };
    Ok(Some(
        match (view["mode"].as_str(), view["repository"].as_str()) {
            (Some("repo"), Some(r)) => AppMode::Repo {
                repository: RepoFullName::parse(r).map_err(|e| fail!(e))?,
            },
            _ => AppMode::Org,
        },
    ))
}

impl InstallationStore {
    pub(super) async fn guard(&self) -> Result<Guard, ApiError> {
        Ok(self
            .state
            .storage()
            .get(GUARD_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default())
    }

    /// Stores the guard; a changed guard drops every cached token, so none minted under the
    /// old one is handed out again.
    async fn save_guard(&self, guard: &Guard) -> Result<(), ApiError> {
        if self.guard().await? == *guard {
            return Ok(());
        }
        let storage = self.state.storage();
        if guard.is_empty() {
            storage.delete(GUARD_KEY).await.map_err(|e| fail!(e))?;
        } else {
            storage.put(GUARD_KEY, guard).await.map_err(|e| fail!(e))?;
        }
        storage.delete(TOKENS_KEY).await.map_err(|e| fail!(e))?;
        Ok(())
    }

    pub(super) async fn set_withheld(&self, withheld: Vec<RepoFullName>) -> Result<(), ApiError> {
        let mut guard = self.guard().await?;
        guard.withheld = withheld;
        self.save_guard(&guard).await
    }

    /// Why a delivery about a repository is not acted on, if it is not.
    pub(super) async fn guard_ignores(
        &self,
        action: &Action,
    ) -> Result<Option<&'static str>, ApiError> {
        let repo = match action {
            Action::IssueWork { repo, .. } => repo,
            Action::Push { full_name, .. } => full_name,
            Action::RepoRenamed { new_full_name, .. } => new_full_name,
            _ => return Ok(None),
        };
        let guard = self.guard().await?;
        if guard.misconfiguration.is_some() {
            return Ok(Some("installation_misconfigured"));
        }
        if guard.withholds(repo.as_str()) {
            crate::log::event(
                "warn",
                "delivery for a repository served by its dedicated app ignored",
                json!({"repository": repo.as_str(), "reason": "repository_served_by_dedicated_app"}),
            );
            return Ok(Some("repository_served_by_dedicated_app"));
        }
        Ok(None)
    }

    /// After `installation.created` / `installation_repositories` was stored.
    pub(super) async fn claims_after_write(
        &self,
        id: InstallationId,
        app: AppId,
        record: &InstallationRecord,
    ) -> Result<(), ApiError> {
        match app_mode(&self.env, app).await? {
            None => Ok(()),
            Some(AppMode::Repo { repository }) => {
                self.bind_dedicated(id, app, &repository, record).await
            }
            Some(AppMode::Org) => self.cover_org(id, app, record).await,
        }
    }

    async fn bind_dedicated(
        &self,
        id: InstallationId,
        app: AppId,
        target: &RepoFullName,
        record: &InstallationRecord,
    ) -> Result<(), ApiError> {
        let coverage = dedicated_coverage(
            target,
            record.repository_selection.as_deref(),
            &record.repositories,
        );
        let answer = ClaimsClient::new(&self.env, target.owner())?
            .apply(&ClaimRequest::Bind {
                app_id: app,
                repository: target.clone(),
                installation_id: id,
                repo_id: coverage.clone().ok().flatten(),
                misconfiguration: coverage.err(),
            })
            .await?;
        let mut guard = self.guard().await?;
        guard.misconfiguration = answer.misconfiguration.clone();
        self.save_guard(&guard).await?;
        if let Some(reason) = &answer.misconfiguration {
            crate::log::event(
                "warn",
                "dedicated installation misconfigured",
                json!({"installation": id.get(), "app": app.get(), "reason": reason}),
            );
        }
        // Service credentials for this tenant alone, once: the installer shows the key once.
        let service_key =
            if answer.misconfiguration.is_none() && self.service_keys().await?.is_empty() {
                let issued = self.issue_service_key(id).await?;
                Some((issued.id, issued.key))
            } else {
                None
            };
        if let Some(installer) = &answer.installer {
            InstallerClient::new(&self.env, installer)?
                .installed(&Installed {
                    installation_id: id,
                    misconfiguration: answer.misconfiguration,
                    service_key,
                })
                .await?;
        }
        Ok(())
    }

    async fn cover_org(
        &self,
        id: InstallationId,
        app: AppId,
        record: &InstallationRecord,
    ) -> Result<(), ApiError> {
        let Some(account) = &record.account else {
            return Ok(());
        };
        let answer = ClaimsClient::new(&self.env, &account.login)?
            .apply(&ClaimRequest::Cover {
                installation_id: id,
                app_id: app,
                all: record.repository_selection.as_deref() == Some("all"),
                repositories: record.repositories.clone(),
            })
            .await?;
        for repo in &answer.new_conflicts {
            crate::log::event(
                "warn",
                "org installation reaches a repository with a dedicated app",
                json!({"installation": id.get(), "repository": repo.as_str(), "conflict": true}),
            );
        }
        self.set_withheld(answer.withheld).await?;
        if let Some(installer) = &answer.installer {
            InstallerClient::new(&self.env, installer)?
                .installed(&Installed {
                    installation_id: id,
                    misconfiguration: None,
                    service_key: None,
                })
                .await?;
        }
        Ok(())
    }

    /// Before `installation.deleted` purges the tenant: the claims go, the installer is
    /// uninstalled and its app's registration (credentials, webhook secret) is deleted, the
    /// same end state as `DELETE /api/installers/{id}`.
    pub(super) async fn claims_before_purge(
        &self,
        id: InstallationId,
        app: AppId,
        record: Option<&InstallationRecord>,
    ) -> Result<(), ApiError> {
        let owner = match app_mode(&self.env, app).await? {
            None => return Ok(()),
            Some(AppMode::Repo { repository }) => repository.owner().to_owned(),
            Some(AppMode::Org) => match record.and_then(|r| r.account.as_ref()) {
                Some(a) => a.login.clone(),
                None => return Ok(()),
            },
        };
        let answer = ClaimsClient::new(&self.env, &owner)?
            .apply(&ClaimRequest::ReleaseInstallation {
                installation_id: id,
            })
            .await?;
        push_withheld(&self.env, &answer.affected).await?;
        if let Some(installer) = &answer.installer {
            self.tombstone(installer).await?;
            InstallerClient::new(&self.env, installer)?
                .uninstalled()
                .await?;
            crate::objects::installer::forget_app(&self.env, app).await?;
            crate::log::event(
                "info",
                "installer uninstalled on GitHub",
                json!({"installer": installer.as_str(), "installation": id.get(), "at": now_text()}),
            );
        }
        Ok(())
    }

    pub(super) async fn tombstone(&self, installer: &InstallerId) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(TOMBSTONE_KEY, installer)
            .await
            .map_err(|e| fail!(e))
    }

    /// Refuses deliveries for an installation its installer uninstalled.
    pub(super) async fn refuse_if_uninstalled(&self) -> Result<(), ApiError> {
        let by: Option<InstallerId> = self
            .state
            .storage()
            .get(TOMBSTONE_KEY)
            .await
            .map_err(|e| fail!(e))?;
        match by {
            Some(i) => Err(InstallerError::Uninstalled(i.to_string()).into()),
            None => Ok(()),
        }
    }
}
