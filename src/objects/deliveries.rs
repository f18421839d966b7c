//! The delivery records kept inside each installation's (and each app's) Durable Object,
//! in two SQLite tables:
//!
//! - `delivery_keys`, the dedupe keys: one compact row per delivery id (outcome, when it was
//!   claimed, attempts), kept for the whole retention period whatever the volume, so a
//!   redelivery inside GitHub's window is always recognised;
//! - `deliveries`, the verbose log the admin reads: capped at `DELIVERY_LOG_MAX_ROWS` rows,
//!   the oldest dropped first.
//!
//! A delivery id is claimed before any side effect, in one synchronous step (read the key,
//! let the core decide, write), so the same delivery posted twice, or twenty times at once,
//! has one effect. A claim whose handling failed can be claimed again, and so can one left
//! `processing` past its lease (`DELIVERY_LEASE_SECONDS`: the handler's isolate died), which
//! is what GitHub's redelivery needs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ghplane_core::ids::InstallationId;
use ghplane_core::lists::deliveries::{DeliveryRow, DeliverySearch};
use ghplane_core::time::rfc3339_from_millis;
use ghplane_core::webhook::claim::{self, ClaimDecision, StoredClaim, PROCESSING};
pub use ghplane_core::webhook::delivery::{Delivered, DeliveryRequest, Received};
use ghplane_core::webhook::{log_cap, DeliveryOutcome, RETENTION_MS};
use ghplane_core::ApiError;
use std::cell::Cell;

use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Date, Env, SqlStorage, SqlStorageValue};

use crate::settings;

/// Listing pages hold at most this many deliveries.
pub const MAX_PAGE: u32 = 100;
/// A listing page's size when the request names none.
pub const DEFAULT_PAGE: u32 = 50;

pub struct DeliveryLog {
    sql: SqlStorage,
    lease_ms: i64,
    log_cap: usize,
}

/// How the handling of a claimed delivery ended.
pub struct Finished<'a> {
    pub outcome: DeliveryOutcome,
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub duration_ms: i64,
}

fn text(v: Option<&str>) -> SqlStorageValue {
    v.map_or(SqlStorageValue::Null, |s| {
        SqlStorageValue::String(s.to_owned())
    })
}

#[derive(Deserialize)]
struct Row {
    id: String,
    received_at: f64,
    event: String,
    action: Option<String>,
    repository: Option<String>,
    outcome: String,
    status: f64,
    error_code: Option<String>,
    reason: Option<String>,
    duration_ms: Option<f64>,
    attempts: f64,
}

#[derive(Deserialize)]
struct KeyRow {
    outcome: String,
    claimed_at: f64,
    attempts: f64,
}

impl KeyRow {
    fn stored(&self) -> StoredClaim<'_> {
        StoredClaim {
            outcome: &self.outcome,
            claimed_at_ms: self.claimed_at as i64,
            attempts: self.attempts as u32,
        }
    }
}

/// The lease and the log's cap, from the worker's settings (a malformed value is a
/// misconfiguration, never silently the default).
fn limits(env: &Env) -> Result<(i64, usize), ApiError> {
    let lease = claim::lease_ms(settings::get(env, settings::DELIVERY_LEASE_SECONDS).as_deref())
        .ok_or(ApiError::Misconfigured(
            settings::DELIVERY_LEASE_SECONDS.into(),
        ))?;
    let cap = log_cap(settings::get(env, settings::DELIVERY_LOG_MAX_ROWS).as_deref()).ok_or(
        ApiError::Misconfigured(settings::DELIVERY_LOG_MAX_ROWS.into()),
    )?;
    Ok((lease, cap))
}

impl DeliveryLog {
    pub fn new(sql: SqlStorage, env: &Env) -> Result<Self, ApiError> {
        Self::open(sql, env, &Cell::new(false))
    }

    /// [`DeliveryLog::new`] for an object that keeps `ready` for its life: the tables are
    /// created (and migrated) on its first use only, not on every delivery.
    pub fn open(sql: SqlStorage, env: &Env, ready: &Cell<bool>) -> Result<Self, ApiError> {
        let (lease_ms, log_cap) = limits(env)?;
        if !ready.get() {
            create_tables(&sql)?;
            ready.set(true);
        }
        Ok(DeliveryLog {
            sql,
            lease_ms,
            log_cap,
        })
    }

    fn key(&self, id: &str) -> Result<Option<KeyRow>, ApiError> {
        let rows: Vec<KeyRow> = self
            .sql
            .exec(
                "SELECT outcome, claimed_at, attempts FROM delivery_keys WHERE id = ?",
                vec![id.into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        Ok(rows.into_iter().next())
    }

    /// Claims the delivery: `Some(attempt)` (1 for the first) when this call owns it, `None`
    /// when it is a duplicate (finished, or in flight inside its lease). Read, decision and
    /// writes run without an `await` in between, so no other request interleaves.
    pub fn claim(&self, d: &Received) -> Result<Option<u32>, ApiError> {
        let existing = self.key(&d.id)?;
        let claimed = claim::claim_stored(
            existing.as_ref().map(KeyRow::stored),
            d.received_at_ms,
            self.lease_ms,
        );
        let Some(attempt) = claimed.attempt else {
            return Ok(None);
        };
        self.sql
            .exec(
                "INSERT INTO delivery_keys (id, outcome, claimed_at, attempts) VALUES (?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome,
                     claimed_at = excluded.claimed_at, attempts = excluded.attempts",
                vec![
                    d.id.as_str().into(),
                    PROCESSING.into(),
                    d.received_at_ms.into(),
                    i64::from(attempt).into(),
                ],
            )
            .map_err(|e| fail!(e))?;
        self.sql
            .exec(
                "INSERT INTO deliveries (id, received_at, event, action, repository, outcome, attempts)
                 VALUES (?, ?, ?, ?, ?, 'processing', ?)
                 ON CONFLICT (id) DO UPDATE SET outcome = 'processing', attempts = excluded.attempts,
                     received_at = excluded.received_at, status = 0, error_code = NULL, reason = NULL,
                     duration_ms = NULL",
                vec![
                    d.id.as_str().into(),
                    d.received_at_ms.into(),
                    d.event.as_str().into(),
                    text(d.action.as_deref()),
                    text(d.repository.as_deref()),
                    i64::from(attempt).into(),
                ],
            )
            .map_err(|e| fail!(e))?;
        if claimed.decision == ClaimDecision::Fresh {
            self.trim_log_overflow()?;
        }
        Ok(Some(attempt))
    }

    /// Keeps the verbose log within its cap as rows arrive (by insertion order, cheap on
    /// the rowid index); the dedupe keys are not touched.
    fn trim_log_overflow(&self) -> Result<(), ApiError> {
        self.sql
            .exec(
                "DELETE FROM deliveries WHERE rowid <= (SELECT max(rowid) FROM deliveries) - ?",
                vec![(self.log_cap as i64).into()],
            )
            .map_err(|e| fail!(e))?;
        Ok(())
    }

    /// Records how a claimed delivery's handling ended.
    pub fn finish(&self, id: &str, f: &Finished) -> Result<(), ApiError> {
        self.sql
            .exec(
                "UPDATE delivery_keys SET outcome = ? WHERE id = ?",
                vec![f.outcome.as_str().into(), id.into()],
            )
            .map_err(|e| fail!(e))?;
        self.sql
            .exec(
                "UPDATE deliveries SET outcome = ?, status = ?, error_code = ?, reason = ?, duration_ms = ?
                 WHERE id = ?",
                vec![
                    f.outcome.as_str().into(),
                    i64::from(f.status).into(),
                    text(f.error_code),
                    text(f.reason),
                    f.duration_ms.into(),
                    id.into(),
                ],
            )
            .map_err(|e| fail!(e))?;
        Ok(())
    }

    /// Of `ids`, those a redelivery would get processed (never seen, failed, or abandoned
    /// past the lease): what the redelivery sweep may ask GitHub for.
    pub fn unprocessed(&self, ids: &[String], now_ms: i64) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        for id in ids {
            let key = self.key(id)?;
            let claimed =
                claim::claim_stored(key.as_ref().map(KeyRow::stored), now_ms, self.lease_ms);
            if claimed.decision.owns() {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    /// Newest first; `cursor` is the opaque value a previous page returned.
    pub fn list(&self, limit: u32, cursor: Option<&str>) -> Result<Value, ApiError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let (before_at, before_id) = match cursor {
            Some(c) => decode_cursor(c).ok_or_else(|| {
                ApiError::Validation("cursor: not a cursor of this listing".into())
            })?,
            None => (i64::MAX / 2, String::new()),
        };
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT id, received_at, event, action, repository, outcome, status, error_code, reason,
                        duration_ms, attempts
                 FROM deliveries
                 WHERE received_at < ? OR (received_at = ? AND id < ?)
                 ORDER BY received_at DESC, id DESC LIMIT ?",
                vec![before_at.into(), before_at.into(), before_id.as_str().into(), i64::from(limit + 1).into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next = match (more, rows.last()) {
            (true, Some(last)) => Some(encode_cursor(last.received_at as i64, &last.id)),
            _ => None,
        };
        let items: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id, "receivedAt": rfc3339_from_millis(r.received_at as i64), "event": r.event,
                    "action": r.action, "repository": r.repository, "outcome": r.outcome, "status": r.status as u16,
                    "errorCode": r.error_code, "reason": r.reason, "durationMs": r.duration_ms.map(|d| d as i64),
                    "attempts": r.attempts as u64
                })
            })
            .collect();
        Ok(json!({"deliveries": items, "nextCursor": next}))
    }

    /// The rows `search` asks for (one tenant's part of `GET /api/deliveries`), newest
    /// first; `installation` is whose log this is.
    pub fn search(
        &self,
        installation: InstallationId,
        search: &DeliverySearch,
    ) -> Result<Vec<DeliveryRow>, ApiError> {
        let f = &search.filter;
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<SqlStorageValue> = Vec::new();
        if let Some(event) = &f.event {
            clauses.push("event = ?");
            args.push(event.as_str().into());
        }
        if let Some(outcome) = &f.outcome {
            clauses.push("outcome = ?");
            args.push(outcome.as_str().into());
        }
        if let Some(repo) = &f.repository {
            clauses.push("repository = ? COLLATE NOCASE");
            args.push(repo.as_str().into());
        }
        if let Some(since) = f.since_ms {
            clauses.push("received_at >= ?");
            args.push(since.into());
        }
        if let Some((at, id)) = &search.before {
            clauses.push(if search.inclusive {
                "(received_at < ? OR (received_at = ? AND id <= ?))"
            } else {
                "(received_at < ? OR (received_at = ? AND id < ?))"
            });
            args.extend([(*at).into(), (*at).into(), id.as_str().into()]);
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        args.push(i64::from(search.limit.clamp(1, MAX_PAGE + 1)).into());
        let rows: Vec<Row> = self
            .sql
            .exec(
                &format!(
                    "SELECT id, received_at, event, action, repository, outcome, status, error_code, reason,
                            duration_ms, attempts
                     FROM deliveries {filter} ORDER BY received_at DESC, id DESC LIMIT ?"
                ),
                args,
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        Ok(rows
            .into_iter()
            .map(|r| DeliveryRow {
                installation,
                id: r.id,
                received_at_ms: r.received_at as i64,
                event: r.event,
                action: r.action,
                repository: r.repository,
                outcome: r.outcome,
                status: r.status as u16,
                error_code: r.error_code,
                reason: r.reason,
                duration_ms: r.duration_ms.map(|d| d as i64),
                attempts: r.attempts as u64,
            })
            .collect())
    }

    /// Drops keys and log rows past retention, and the oldest log rows over the cap.
    pub fn trim(&self, now_ms: i64) -> Result<(), ApiError> {
        let cutoff = now_ms - RETENTION_MS;
        self.sql
            .exec(
                "DELETE FROM delivery_keys WHERE claimed_at < ?",
                vec![cutoff.into()],
            )
            .map_err(|e| fail!(e))?;
        self.sql
            .exec(
                "DELETE FROM deliveries WHERE received_at < ?",
                vec![cutoff.into()],
            )
            .map_err(|e| fail!(e))?;
        self.sql
            .exec(
                "DELETE FROM deliveries WHERE id IN
                   (SELECT id FROM deliveries ORDER BY received_at DESC, id DESC LIMIT -1 OFFSET ?)",
                vec![(self.log_cap as i64).into()],
            )
            .map_err(|e| fail!(e))?;
        Ok(())
    }
}

/// The log's two tables and the time index, created on first use.
fn create_tables(sql: &SqlStorage) -> Result<(), ApiError> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS deliveries (
            id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, event TEXT NOT NULL, action TEXT,
            repository TEXT, outcome TEXT NOT NULL, status INTEGER NOT NULL DEFAULT 0, error_code TEXT,
            reason TEXT, duration_ms INTEGER, attempts INTEGER NOT NULL DEFAULT 1)",
        None,
    )
    .map_err(|e| fail!(e))?;
    sql.exec(
        "CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (received_at, id)",
        None,
    )
    .map_err(|e| fail!(e))?;
    migrate_keys(sql)
}

/// Creates the key table on first use. An object written by an older version has only the
/// log (which was also the dedupe table): its rows seed the keys once, so nothing it
/// deduped is forgotten by the upgrade (a claim it left `processing` becomes reclaimable
/// after the lease, like any other).
fn migrate_keys(sql: &SqlStorage) -> Result<(), ApiError> {
    #[derive(Deserialize)]
    struct Name {
        #[allow(dead_code)]
        name: String,
    }
    let present: Vec<Name> = sql
        .exec(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'delivery_keys'",
            None,
        )
        .and_then(|c| c.to_array())
        .map_err(|e| fail!(e))?;
    if !present.is_empty() {
        return Ok(());
    }
    sql.exec(
        "CREATE TABLE IF NOT EXISTS delivery_keys (
            id TEXT PRIMARY KEY, outcome TEXT NOT NULL, claimed_at INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID",
        None,
    )
    .map_err(|e| fail!(e))?;
    sql.exec(
        "CREATE INDEX IF NOT EXISTS delivery_keys_by_time ON delivery_keys (claimed_at)",
        None,
    )
    .map_err(|e| fail!(e))?;
    sql.exec(
        "INSERT OR IGNORE INTO delivery_keys (id, outcome, claimed_at, attempts)
         SELECT id, outcome, received_at, attempts FROM deliveries",
        None,
    )
    .map_err(|e| fail!(e))?;
    Ok(())
}

fn encode_cursor(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (at, id) = raw.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

/// How a delivery was handled, as the webhook route answers GitHub.
pub struct Handled {
    pub outcome: DeliveryOutcome,
    pub reason: Option<&'static str>,
}

impl Handled {
    pub fn accepted() -> Handled {
        Handled {
            outcome: DeliveryOutcome::Accepted,
            reason: None,
        }
    }

    pub fn ignored(reason: &'static str) -> Handled {
        Handled {
            outcome: DeliveryOutcome::Ignored,
            reason: Some(reason),
        }
    }

    /// The answer to GitHub about `delivery`.
    pub fn answer(&self, delivery: &str) -> Delivered {
        Delivered {
            outcome: self.outcome,
            delivery: delivery.to_owned(),
            reason: self.reason.map(str::to_owned),
        }
    }
}

/// [`handle_delivery`], answered as an HTTP response.
pub async fn run<F, Fut>(
    log: &DeliveryLog,
    received: &Received,
    now_ms: i64,
    handle: F,
) -> Result<worker::Response, ApiError>
where
    F: FnOnce(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Handled, ApiError>>,
{
    let answer = handle_delivery(log, received, now_ms, handle).await?;
    Ok(crate::http::json_response(answer.status(), &answer))
}

/// Claims, runs `handle`, and records the outcome. A failed handling stays claimable, and so
/// does one whose handler died (after the lease), so GitHub's redelivery runs it once more.
pub async fn handle_delivery<F, Fut>(
    log: &DeliveryLog,
    received: &Received,
    now_ms: i64,
    handle: F,
) -> Result<Delivered, ApiError>
where
    F: FnOnce(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Handled, ApiError>>,
{
    let Some(attempt) = log.claim(received)? else {
        return Ok(Handled {
            outcome: DeliveryOutcome::Duplicate,
            reason: None,
        }
        .answer(&received.id));
    };
    let result = handle(attempt).await;
    let duration_ms = Date::now().as_millis() as i64 - now_ms;
    match result {
        Ok(h) => {
            let answer = h.answer(&received.id);
            log.finish(
                &received.id,
                &Finished {
                    outcome: h.outcome,
                    status: answer.status(),
                    error_code: None,
                    reason: h.reason,
                    duration_ms,
                },
            )?;
            // No log line for a handled delivery: the delivery log above is its record,
            // and a console line per delivery costs more CPU than the handling.
            Ok(answer)
        }
        Err(e) => {
            let status = e.status();
            log.finish(
                &received.id,
                &Finished {
                    outcome: DeliveryOutcome::Failed,
                    status,
                    error_code: Some(e.code()),
                    reason: None,
                    duration_ms,
                },
            )?;
            crate::log::event(
                "warn",
                "webhook",
                json!({"delivery": received.id, "event": received.event, "outcome": "failed", "errorCode": e.code()}),
            );
            Err(e)
        }
    }
}
