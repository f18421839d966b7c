//! Linking and unlinking the project's source, with the repository index kept in step, and
//! the hook secret that signs the jobs and the deployers' reports (made on the first link,
//! stored sealed, shown once).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ghplane_core::deploy::RepoLink;
use ghplane_core::projects::ProjectSlug;
use ghplane_core::sealed::{Sealed, Secret};
use ghplane_core::ApiError;
use ghplane_webcrypto::random_bytes;
use serde_json::{json, Value};

use super::client::{object_name, Linked, SourceLinked};
use super::tickets::TICKETS_KEY;
use super::{ProjectDeploy, LINKED_KEY};
use crate::objects::repo_index::RepoIndexClient;
use crate::secrets::{Keyring, ResealReport};

const SECRET_KEY: &str = "hook-secret";
const SECRET_SLOT: &str = "hookSecret";
const HOOK_SECRET_PREFIX: &str = "ghpdh_";

impl ProjectDeploy {
    pub(super) async fn put_source(&self, linked: Linked) -> Result<SourceLinked, ApiError> {
        let _one_at_a_time = self.source_lock.lock().await;
        let previous = self.linked().await?;
        // The index learns of the new repository before the source points at it, and forgets
        // the old one after: a push in between reaches this object, which checks it against
        // the stored source.
        RepoIndexClient::new(&self.env, linked.source.repo_id)?
            .upsert(&RepoLink::of(&linked.project, &linked.source))
            .await?;
        if let Some(p) = previous
            .as_ref()
            .filter(|p| p.source.repo_id != linked.source.repo_id)
        {
            RepoIndexClient::new(&self.env, p.source.repo_id)?
                .remove(&linked.project)
                .await?;
        }
        let has_secret = self
            .state
            .storage()
            .get::<Sealed>(SECRET_KEY)
            .await
            .map_err(|e| fail!(e))?
            .is_some();
        let new_secret = if has_secret {
            None
        } else {
            let secret = format!(
                "{HOOK_SECRET_PREFIX}{}",
                URL_SAFE_NO_PAD.encode(random_bytes::<32>())
            );
            let ring = Keyring::from_env(&self.env).await?;
            let sealed = ring
                .seal(&object_name(&linked.project), SECRET_SLOT, &secret)
                .await?;
            Some((secret, sealed))
        };
        if let Some((_, sealed)) = &new_secret {
            self.save(SECRET_KEY, sealed).await?;
        }
        self.save(LINKED_KEY, &linked).await?;
        let moved = previous.as_ref().is_some_and(|p| {
            p.source.repo_id != linked.source.repo_id || p.source.branch != linked.source.branch
        });
        if moved {
            self.react(|m, cfg, _| m.on_source_changed(cfg)).await?;
        }
        let mut view = linked.view();
        if let Some((secret, _)) = new_secret {
            view["hookSecret"] = json!(secret);
        }
        Ok(SourceLinked {
            created: previous.is_none(),
            source: view,
        })
    }

    pub(super) async fn get_source(&self, slug: &ProjectSlug) -> Result<Value, ApiError> {
        Ok(self.linked_or_404(slug).await?.view())
    }

    /// Unlinks: the index entry, the source, the hook secret and the tickets go, and pushes
    /// queued for the old source are dropped. A running deployment ends by its report or its
    /// deadline (a report can no longer be signed, so by its deadline).
    pub(super) async fn delete_source(&self, slug: &ProjectSlug) -> Result<(), ApiError> {
        let _one_at_a_time = self.source_lock.lock().await;
        let linked = self.linked_or_404(slug).await?;
        RepoIndexClient::new(&self.env, linked.source.repo_id)?
            .remove(&linked.project)
            .await?;
        self.state
            .storage()
            .delete_multiple(vec![LINKED_KEY, SECRET_KEY, TICKETS_KEY])
            .await
            .map_err(|e| fail!(e))?;
        self.react(|m, cfg, _| m.on_source_changed(cfg)).await?;
        Ok(())
    }

    /// The hook secret under the current key (a job's ticket lives minutes and is left to
    /// expire).
    pub(super) async fn reseal(&self, project: &ProjectSlug) -> Result<ResealReport, ApiError> {
        let mut report = ResealReport::default();
        let storage = self.state.storage();
        let Some(mut sealed) = storage
            .get::<Sealed>(SECRET_KEY)
            .await
            .map_err(|e| fail!(e))?
        else {
            return Ok(report);
        };
        let ring = Keyring::from_env(&self.env).await?;
        let object = object_name(project);
        let outcome = ring.reseal(&object, SECRET_SLOT, &sealed).await;
        if report.apply(&object, SECRET_SLOT, outcome, &mut sealed) {
            storage
                .put(SECRET_KEY, &sealed)
                .await
                .map_err(|e| fail!(e))?;
        }
        Ok(report)
    }

    pub(super) async fn hook_secret(&self, project: &ProjectSlug) -> Result<Secret, ApiError> {
        let sealed: Sealed = self
            .state
            .storage()
            .get(SECRET_KEY)
            .await
            .map_err(|e| fail!(e))?
            .ok_or_else(|| fail!())?;
        let ring = Keyring::from_env(&self.env).await?;
        ring.open(&object_name(project), SECRET_SLOT, &sealed).await
    }
}
