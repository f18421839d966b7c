//! Keeps a tenant's row in the tenant listing (`tenant_index.rs`) in step with its config.
//!
//! The object remembers the row it last published (`LISTED_KEY`) and publishes only when the
//! current row differs, so a delivery that changes nothing about the tenant never calls the
//! index. One sync at a time per tenant: each reads the config when it starts, so the last
//! one to finish publishes the latest row, whatever order the writes raced in.

use ghplane_core::ids::InstallationId;
use ghplane_core::tenancy::listing::{listing_change, ListingChange, TenantRow};
use ghplane_core::ApiError;
use serde_json::json;

use super::InstallationStore;
use crate::objects::tenant_index;

/// The row this tenant last published to the listing; absent when none is listed.
const LISTED_KEY: &str = "tenant-listing";

impl InstallationStore {
    /// Publishes (or withdraws) this tenant's listing row if it changed. A failure is logged,
    /// never fails the request, and is retried on the object's next request.
    pub(super) async fn sync_listing(&self, id: InstallationId) {
        let _one_at_a_time = self.listing.lock().await;
        let outcome = self.publish_row(id).await;
        self.listing_synced.set(outcome.is_ok());
        if let Err(e) = outcome {
            crate::log::event(
                "warn",
                "tenant listing sync failed",
                json!({"installation": id.get(), "errorCode": e.code()}),
            );
        }
    }

    async fn publish_row(&self, id: InstallationId) -> Result<(), ApiError> {
        let current = self.load().await?.map(|r| TenantRow::of(&r));
        let storage = self.state.storage();
        let listed: Option<TenantRow> = storage.get(LISTED_KEY).await.map_err(|e| fail!(e))?;
        match listing_change(current, listed.as_ref()) {
            ListingChange::Nothing => Ok(()),
            ListingChange::Publish(row) => {
                tenant_index::publish(&self.env, &row).await?;
                storage.put(LISTED_KEY, &row).await.map_err(|e| fail!(e))
            }
            ListingChange::Withdraw => {
                tenant_index::withdraw(&self.env, id).await?;
                storage
                    .delete(LISTED_KEY)
                    .await
                    .map(|_| ())
                    .map_err(|e| fail!(e))
            }
        }
    }

    /// Whether this instance still has to check its row (it has not since it woke, or the
    /// last publication failed).
    pub(super) fn listing_unchecked(&self) -> bool {
        !self.listing_synced.get()
    }
}
