//! The redelivery sweep of one app, run inside its `AppStore`: list the app's deliveries on
//! GitHub, find those GitHub marks failed and ghplane never processed, and ask GitHub to
//! send each of them again, once.
//!
//! What was asked for is remembered in the object's SQLite table `redelivery_requests`
//! (the marker is written before GitHub is asked, in one synchronous step, so two sweeps
//! at once never ask twice), for longer than GitHub keeps deliveries. A request GitHub
//! refused is forgotten again so the next sweep retries it. The walk is bounded by pages,
//! time and requests (`ghplane_core::webhook::redelivery`).

use std::collections::BTreeMap;

use ghplane_core::github::pages::Pager;
use ghplane_core::ids::{AppId, InstallationId};
use ghplane_core::webhook::redelivery::{
    self, attempts_path, failed, first_page_path, past_window, Candidate, HookDelivery, SweepReport,
};
use ghplane_core::ApiError;
use serde::Deserialize;
use serde_json::json;
use worker::{Env, Method, SqlStorage};

use crate::clock::now_ms;
use crate::github::client::{GithubClient, Idempotent};
use crate::objects::app_store::as_app;
use crate::objects::app_store::AppStore;
use crate::objects::deliveries::DeliveryLog;
use crate::objects::installation::client::InstallationClient;

fn requests_table(sql: &SqlStorage) -> Result<(), ApiError> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS redelivery_requests (
            guid TEXT PRIMARY KEY, github_id INTEGER NOT NULL, requested_at INTEGER NOT NULL)",
        None,
    )
    .map(|_| ())
    .map_err(|e| fail!(e))
}

/// Writes the marker; false when an earlier sweep already asked for `guid`.
fn mark(sql: &SqlStorage, c: &Candidate, now: i64) -> Result<bool, ApiError> {
    #[derive(Deserialize)]
    struct Inserted {
        #[allow(dead_code)]
        guid: String,
    }
    let rows: Vec<Inserted> = sql
        .exec(
            "INSERT INTO redelivery_requests (guid, github_id, requested_at) VALUES (?, ?, ?)
             ON CONFLICT (guid) DO NOTHING RETURNING guid",
            vec![c.guid.as_str().into(), (c.id as f64).into(), now.into()],
        )
        .and_then(|cur| cur.to_array())
        .map_err(|e| fail!(e))?;
    Ok(!rows.is_empty())
}

fn unmark(sql: &SqlStorage, guid: &str) -> Result<(), ApiError> {
    sql.exec(
        "DELETE FROM redelivery_requests WHERE guid = ?",
        vec![guid.into()],
    )
    .map(|_| ())
    .map_err(|e| fail!(e))
}

/// Drops markers older than GitHub's window (with room to spare).
pub(crate) fn trim_requests(sql: &SqlStorage, now: i64) -> Result<(), ApiError> {
    requests_table(sql)?;
    sql.exec(
        "DELETE FROM redelivery_requests WHERE requested_at < ?",
        vec![(now - redelivery::REQUEST_MEMORY_MS).into()],
    )
    .map(|_| ())
    .map_err(|e| fail!(e))
}

/// Of the candidates, the guids ghplane would process if redelivered: asked of the object
/// that owns each delivery (the installation's, or this app's own log).
async fn unprocessed(
    env: &Env,
    own_log: &DeliveryLog,
    candidates: &[Candidate],
    now: i64,
) -> Result<Vec<String>, ApiError> {
    let mut by_owner: BTreeMap<Option<u64>, Vec<String>> = BTreeMap::new();
    for c in candidates {
        by_owner
            .entry(c.installation_id)
            .or_default()
            .push(c.guid.clone());
    }
    let mut out = Vec::new();
    for (owner, guids) in by_owner {
        let installation = owner.and_then(|id| InstallationId::from_u64(id).ok());
        match installation {
            Some(id) => out.extend(
                InstallationClient::new(env, id)?
                    .unprocessed(&guids)
                    .await?,
            ),
            None => out.extend(own_log.unprocessed(&guids, now)?),
        }
    }
    Ok(out)
}

impl AppStore {
    /// One sweep of this app; see the module's documentation.
    pub(crate) async fn sweep(&self, app: AppId) -> Result<SweepReport, ApiError> {
        let started = now_ms();
        let sql = self.state.storage().sql();
        requests_table(&sql)?;
        let own_log = DeliveryLog::new(sql.clone(), &self.env)?;
        let github = GithubClient::from_env(&self.env)?;
        let mut report = SweepReport {
            app_id: app.get(),
            ..SweepReport::default()
        };
        let mut listed: Vec<HookDelivery> = Vec::new();
        let mut pager = Pager::new(first_page_path(), redelivery::MAX_PAGES);
        while let Some(path) = pager.next_path().map(str::to_owned) {
            if now_ms() - started > redelivery::TIME_BUDGET_MS {
                report.truncated = true;
                break;
            }
            let resp = match as_app::send(
                &self.env,
                &github,
                app,
                Method::Get,
                &path,
                None,
                Idempotent::Yes,
            )
            .await?
            {
                Ok(resp) => resp,
                Err(e) => {
                    // What was read so far is still worth acting on.
                    report.error = Some(ApiError::from(e).code().to_owned());
                    report.truncated = true;
                    break;
                }
            };
            let page: Vec<HookDelivery> = resp.json().map_err(ApiError::from)?;
            report.pages += 1;
            report.listed += page.len() as u32;
            let done = past_window(&page, now_ms());
            listed.extend(page);
            pager.advance(resp.link.as_deref(), github.api_base());
            if done {
                pager.stop();
            }
        }
        report.truncated |= pager.capped();
        let now = now_ms();
        let candidates = failed(&listed, now);
        report.failed = candidates.len() as u32;
        let wanted = unprocessed(&self.env, &own_log, &candidates, now).await?;
        report.processed = report.failed.saturating_sub(wanted.len() as u32);
        for c in candidates.iter().filter(|c| wanted.contains(&c.guid)) {
            if report.requested as usize >= redelivery::MAX_REQUESTS
                || now_ms() - started > redelivery::TIME_BUDGET_MS
            {
                report.truncated = true;
                break;
            }
            if !mark(&sql, c, now_ms())? {
                report.already_requested += 1;
                continue;
            }
            let failure = match as_app::send(
                &self.env,
                &github,
                app,
                Method::Post,
                &attempts_path(c.id),
                None,
                Idempotent::No,
            )
            .await
            {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(ApiError::from(e)),
                Err(e) => Some(e),
            };
            match failure {
                None => report.requested += 1,
                Some(e) => {
                    // Forgotten again, so the next sweep asks once more.
                    unmark(&sql, &c.guid)?;
                    report.request_errors += 1;
                    crate::log::event(
                        "warn",
                        "redelivery request failed",
                        json!({"app": app.get(), "delivery": c.guid, "errorCode": e.code()}),
                    );
                }
            }
        }
        crate::log::event(
            if report.error.is_some() || report.request_errors > 0 {
                "warn"
            } else {
                "info"
            },
            "redelivery sweep",
            serde_json::to_value(&report).unwrap_or_default(),
        );
        Ok(report)
    }
}
