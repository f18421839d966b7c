//! The tenant's config: written by the admin (sealed secrets only; the store hands back only
//! the redacted view), re-sealed on a key rotation, extended by an org installer's
//! enrollment, and dropped with everything else of the tenant on purge.

use ghplane_core::ids::{InstallationId, RepoFullName};
use ghplane_core::installer::InstallerId;
use ghplane_core::tenancy::config::{InstallationRecord, Repository, SealedInput, SealedPatch};
use ghplane_core::ApiError;
use serde_json::Value;

use super::client::{Written, PRIVATE_KEY_SLOT, WEBHOOK_SECRET_SLOT};
use super::{now_text, InstallationStore, CONFIG_KEY, SERVICE_KEYS_KEY, TOKENS_KEY};
use crate::secrets::{Keyring, ResealReport};

impl InstallationStore {
    async fn save(&self, record: &InstallationRecord) -> Result<(), ApiError> {
        self.state
            .storage()
            .put(CONFIG_KEY, record)
            .await
            .map_err(|e| fail!(e))
    }

    pub(super) async fn put(
        &self,
        id: InstallationId,
        input: SealedInput,
    ) -> Result<Written, ApiError> {
        let previous = self.load().await?;
        let record = InstallationRecord::replace(id, input, previous.as_ref(), &now_text());
        self.save(&record).await?;
        Ok(Written {
            created: previous.is_none(),
            config: record.view(),
        })
    }

    pub(super) async fn patch(
        &self,
        id: InstallationId,
        patch: SealedPatch,
    ) -> Result<Value, ApiError> {
        let record = self.existing(id).await?.patched(patch, &now_text());
        self.save(&record).await?;
        Ok(record.view())
    }

    /// Deleting a tenant drops its config, keys, tokens and work (the delivery log stays).
    pub(super) async fn delete(&self, id: InstallationId) -> Result<(), ApiError> {
        self.existing(id).await?;
        self.purge().await
    }

    /// `POST /api/installers/{id}/enroll`: the repositories join the tenant's config.
    pub(super) async fn enroll(
        &self,
        id: InstallationId,
        repos: Vec<RepoFullName>,
    ) -> Result<Value, ApiError> {
        let mut record = self.existing(id).await?;
        for repo in repos {
            if !record
                .repositories
                .iter()
                .any(|r| ghplane_core::installer::same_name(&r.full_name, &repo))
            {
                record.repositories.push(Repository {
                    full_name: repo,
                    id: None,
                });
            }
        }
        record.updated_at = now_text();
        self.save(&record).await?;
        Ok(record.view())
    }

    /// The config's sealed values under the current key; cached installation tokens are
    /// dropped instead (they are minted again on demand).
    pub(super) async fn reseal(&self, id: InstallationId) -> Result<ResealReport, ApiError> {
        let mut report = ResealReport::default();
        self.state
            .storage()
            .delete(TOKENS_KEY)
            .await
            .map_err(|e| fail!(e))?;
        let Some(mut record) = self.load().await? else {
            return Ok(report);
        };
        let ring = Keyring::from_env(&self.env).await?;
        let object = id.object_name();
        let mut slots = Vec::new();
        if let Some(k) = record.private_key.as_mut() {
            slots.push((PRIVATE_KEY_SLOT, &mut k.sealed));
        }
        if let Some(w) = record.webhook_secret.as_mut() {
            slots.push((WEBHOOK_SECRET_SLOT, &mut w.sealed));
        }
        let changed = ring.reseal_all(&object, slots, &mut report).await;
        if changed {
            self.save(&record).await?;
        }
        Ok(report)
    }

    /// An uninstall's purge: with `by`, the installation is tombstoned first.
    pub(super) async fn purge_uninstalled(&self, by: Option<InstallerId>) -> Result<(), ApiError> {
        if let Some(installer) = &by {
            self.tombstone(installer).await?;
        }
        self.purge().await
    }

    /// Drops the tenant: config, service keys, tokens, the guard and work. The delivery log
    /// stays, so the admin can still see what happened, and so does the tombstone.
    pub(super) async fn purge(&self) -> Result<(), ApiError> {
        self.state
            .storage()
            .delete_multiple(vec![
                CONFIG_KEY,
                SERVICE_KEYS_KEY,
                TOKENS_KEY,
                super::events::QUOTA_KEY,
                super::claims::GUARD_KEY,
            ])
            .await
            .map_err(|e| fail!(e))?;
        self.drop_work()
    }
}
