//! What an installation's Durable Object does with the webhook deliveries routed to it:
//! dedupe and audit them, keep the tenant in step with GitHub, hand issues over as work
//! items within the tenant's hourly quota, and route pushes and renames to the projects that
//! follow the repository (`deploy.rs`).

use ghplane_core::ids::InstallationId;
use ghplane_core::tenancy::config::InstallationRecord;
use ghplane_core::tenancy::lifecycle::{apply, Lifecycle};
use ghplane_core::webhook::delivery::{Delivered, DeliveryPage, DeliveryRequest};
use ghplane_core::webhook::{
    quota, work_item_key, Action, Admission, DeliveryOutcome, WebhookError,
};
use ghplane_core::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::SqlStorageValue;

use super::client::{WorkItem, WorkItems};
use super::{now_ms, now_text, InstallationStore, CONFIG_KEY, TOKENS_KEY};
use crate::objects::deliveries::{handle_delivery, DeliveryLog, Handled, DEFAULT_PAGE};
use crate::objects::mint_app::MintAppClient;

pub(super) const QUOTA_KEY: &str = "quota";
/// The delivery log's reason for an `installation.created` GitHub does not confirm as the
/// signing app's: nothing was created.
const NOT_CONFIRMED: &str = "installation_not_confirmed";
/// How often the alarm trims the delivery log.
const TRIM_EVERY_MS: i64 = 24 * 60 * 60 * 1000;

impl InstallationStore {
    pub(super) fn deliveries(&self) -> Result<DeliveryLog, ApiError> {
        DeliveryLog::open(self.state.storage().sql(), &self.env, &self.log_ready)
    }

    pub(super) fn list_deliveries(&self, page: &DeliveryPage) -> Result<Value, ApiError> {
        self.deliveries()?
            .list(page.limit.unwrap_or(DEFAULT_PAGE), page.cursor.as_deref())
    }

    /// Test seam, compiled only into the end-to-end build (cargo feature `e2e-seams`, never
    /// in a deployed worker): the first handling of deliveries whose id starts with
    /// `fail-first-` fails before any side effect, to prove that a failed delivery is
    /// processed once on redelivery.
    fn fails_first_attempt(&self, delivery: &str) -> bool {
        cfg!(feature = "e2e-seams") && delivery.starts_with("fail-first-")
    }

    fn work_table(&self) -> Result<(), ApiError> {
        if self.work_ready.get() {
            return Ok(());
        }
        self.state
            .storage()
            .sql()
            .exec(
                "CREATE TABLE IF NOT EXISTS work_items (
                    key TEXT PRIMARY KEY, issue_id INTEGER NOT NULL, number INTEGER NOT NULL, repo TEXT NOT NULL,
                    title TEXT, label TEXT, delivery TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL)",
                None,
            )
            .map_err(|e| fail!(e))?;
        self.work_ready.set(true);
        Ok(())
    }

    pub(super) async fn deliver(
        &self,
        id: InstallationId,
        req: DeliveryRequest,
    ) -> Result<Delivered, ApiError> {
        let record = self.load().await?;
        // One app's secret must never steer another app's tenant; refused before anything is written.
        if let Some(r) = record.as_ref().filter(|r| r.app_id != req.app_id) {
            return Err(WebhookError::InstallationAppMismatch {
                installation: id.get(),
                app: r.app_id.get(),
            }
            .into());
        }
        self.refuse_if_uninstalled().await?;
        let log = self.deliveries()?;
        self.arm_trim().await?;
        let req = &req;
        handle_delivery(&log, &req.received, now_ms(), |attempt| async move {
            if attempt == 1 && self.fails_first_attempt(&req.received.id) {
                return Err(fail!());
            }
            self.handle(id, record, req).await
        })
        .await
    }

    async fn handle(
        &self,
        id: InstallationId,
        record: Option<InstallationRecord>,
        req: &DeliveryRequest,
    ) -> Result<Handled, ApiError> {
        // A repository a dedicated app owns is not this installation's to act on.
        let guarded = self.guard_ignores(&req.action).await?;
        // A tenant is created only for an installation GitHub confirms belongs to the app
        // that signed: any registered app's secret can sign a delivery naming any id.
        let unconfirmed = record.is_none()
            && matches!(req.action, Action::UpsertTenant { .. })
            && !crate::objects::app_store::as_app::owns_installation(
                &self.env,
                req.app_id,
                id.get(),
            )
            .await?;
        if unconfirmed {
            crate::log::event(
                "warn",
                "webhook",
                json!({"delivery": req.received.id, "installation": id.get(), "app": req.app_id.get(),
                    "outcome": "ignored", "reason": NOT_CONFIRMED}),
            );
            return Ok(Handled::ignored(NOT_CONFIRMED));
        }
        match &req.action {
            Action::UpsertTenant { .. }
            | Action::PurgeTenant { .. }
            | Action::SetSuspended { .. }
            | Action::RefreshPermissions { .. }
            | Action::ChangeRepositories { .. } => {
                // The token mint's cached lookups of this installation may be stale now.
                MintAppClient::new(&self.env, req.app_id)?
                    .forget(id)
                    .await?;
                match apply(record.clone(), &req.action, req.app_id, &now_text()) {
                    Lifecycle::Write(r) => {
                        let storage = self.state.storage();
                        storage.put(CONFIG_KEY, &*r).await.map_err(|e| fail!(e))?;
                        if r.suspended {
                            // A suspended tenant keeps no usable token.
                            storage.delete(TOKENS_KEY).await.map_err(|e| fail!(e))?;
                        }
                        if matches!(
                            req.action,
                            Action::UpsertTenant { .. } | Action::ChangeRepositories { .. }
                        ) {
                            self.claims_after_write(id, req.app_id, &r).await?;
                        }
                        self.sync_listing(id).await;
                        Ok(Handled::accepted())
                    }
                    Lifecycle::Purge => {
                        // Claims first: a failure here leaves the tenant for the redelivery.
                        self.claims_before_purge(id, req.app_id, record.as_ref())
                            .await?;
                        self.purge().await?;
                        self.sync_listing(id).await;
                        Ok(Handled::accepted())
                    }
                    Lifecycle::Unchanged(reason) => Ok(Handled::ignored(reason)),
                }
            }
            Action::Ignored { reason, .. } => Ok(Handled::ignored(reason.as_str())),
            _ if record.is_none() => Ok(Handled::ignored("unknown_installation")),
            _ if guarded.is_some() => Ok(Handled::ignored(guarded.unwrap_or_default())),
            Action::IssueWork {
                issue_id,
                number,
                repo,
                title,
                label,
                ..
            } => {
                let record = record.expect("checked above");
                if !record.permissions.can_process_issues {
                    return Ok(Handled::ignored("issues_not_enabled"));
                }
                let key = work_item_key(id, *issue_id);
                self.work_item(
                    &key,
                    *issue_id,
                    *number,
                    repo.as_str(),
                    title,
                    label.as_deref(),
                    &req.received.id,
                    &record,
                )
                .await
            }
            Action::Push { .. } | Action::RepoRenamed { .. } => {
                self.route_to_projects(id, req).await
            }
            Action::Ping { .. } => Ok(Handled::accepted()),
        }
    }

    /// Drops every work item (the tenant is purged).
    pub(super) fn drop_work(&self) -> Result<(), ApiError> {
        self.work_table()?;
        self.state
            .storage()
            .sql()
            .exec("DELETE FROM work_items", None)
            .map_err(|e| fail!(e))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn work_item(
        &self,
        key: &str,
        issue_id: u64,
        number: u64,
        repo: &str,
        title: &str,
        label: Option<&str>,
        delivery: &str,
        record: &InstallationRecord,
    ) -> Result<Handled, ApiError> {
        self.work_table()?;
        let sql = self.state.storage().sql();
        #[derive(Deserialize)]
        struct State {
            state: String,
        }
        let existing: Vec<State> = sql
            .exec(
                "SELECT state FROM work_items WHERE key = ?",
                vec![key.into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        if existing.first().is_some_and(|s| s.state != "throttled") {
            return Ok(Handled::ignored("work_item_exists"));
        }
        let now = now_ms();
        let mut history: Vec<i64> = self
            .state
            .storage()
            .get(QUOTA_KEY)
            .await
            .map_err(|e| fail!(e))?
            .unwrap_or_default();
        let admission = quota::take(
            &mut history,
            now,
            record.permissions.max_containers_per_hour,
        );
        let state = match admission {
            Admission::Admitted => {
                self.state
                    .storage()
                    .put(QUOTA_KEY, &history)
                    .await
                    .map_err(|e| fail!(e))?;
                "queued"
            }
            Admission::Throttled { .. } => "throttled",
        };
        sql.exec(
            "INSERT INTO work_items (key, issue_id, number, repo, title, label, delivery, state, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET state = excluded.state, delivery = excluded.delivery",
            vec![
                key.into(),
                (issue_id as i64).into(),
                (number as i64).into(),
                repo.into(),
                title.into(),
                label.map_or(SqlStorageValue::Null, Into::into),
                delivery.into(),
                state.into(),
                now.into(),
            ],
        )
        .map_err(|e| fail!(e))?;
        Ok(match admission {
            Admission::Admitted => Handled::accepted(),
            Admission::Throttled { .. } => Handled {
                outcome: DeliveryOutcome::Throttled,
                reason: Some("quota_exhausted"),
            },
        })
    }

    pub(super) fn list_work(&self) -> Result<WorkItems, ApiError> {
        self.work_table()?;
        #[derive(Deserialize)]
        struct Row {
            key: String,
            issue_id: f64,
            number: f64,
            repo: String,
            title: Option<String>,
            label: Option<String>,
            delivery: String,
            state: String,
            created_at: f64,
        }
        let rows: Vec<Row> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT * FROM work_items ORDER BY created_at DESC, key LIMIT 500",
                None,
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        let work_items = rows
            .into_iter()
            .map(|r| WorkItem {
                key: r.key,
                issue_id: r.issue_id as u64,
                number: r.number as u64,
                repository: r.repo,
                title: r.title,
                label: r.label,
                delivery: r.delivery,
                state: r.state,
                created_at: ghplane_core::time::rfc3339_from_millis(r.created_at as i64),
            })
            .collect();
        Ok(WorkItems { work_items })
    }

    /// Once per wake: the alarm stays set until it fires (which re-arms it).
    async fn arm_trim(&self) -> Result<(), ApiError> {
        if self.trim_armed.get() {
            return Ok(());
        }
        let storage = self.state.storage();
        if storage.get_alarm().await.map_err(|e| fail!(e))?.is_none() {
            storage
                .set_alarm(TRIM_EVERY_MS)
                .await
                .map_err(|e| fail!(e))?;
        }
        self.trim_armed.set(true);
        Ok(())
    }

    /// The daily trim of the delivery log.
    pub(super) async fn trim(&self) -> Result<(), ApiError> {
        self.deliveries()?.trim(now_ms())?;
        self.state
            .storage()
            .set_alarm(TRIM_EVERY_MS)
            .await
            .map_err(|e| fail!(e))?;
        self.trim_armed.set(true);
        Ok(())
    }
}
