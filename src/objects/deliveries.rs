//! The delivery log kept inside each installation's (and each app's) Durable Object: the
//! dedupe claim and the audit trail in one SQLite table.
//!
//! A delivery id is claimed with one statement before any side effect, so the same delivery
//! posted twice, or twenty times at once, has one effect. A claim whose handling failed can be
//! claimed again, which is what GitHub's manual "redeliver" needs. Rows older than the
//! retention period, and rows over the cap, are trimmed by the object's alarm.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ghplane_core::time::rfc3339_from_millis;
use ghplane_core::webhook::{DeliveryOutcome, MAX_DELIVERY_RECORDS, RETENTION_MS};
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{SqlStorage, SqlStorageValue};

use crate::objects::internal::storage_error;

/// Listing pages hold at most this many deliveries.
pub const MAX_PAGE: u32 = 100;

pub struct DeliveryLog {
    sql: SqlStorage,
}

/// What the log records of one delivery when it is claimed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Received {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub received_at_ms: i64,
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

impl DeliveryLog {
    pub fn new(sql: SqlStorage) -> Result<Self, ApiError> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS deliveries (
                id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, event TEXT NOT NULL, action TEXT,
                repository TEXT, outcome TEXT NOT NULL, status INTEGER NOT NULL DEFAULT 0, error_code TEXT,
                reason TEXT, duration_ms INTEGER, attempts INTEGER NOT NULL DEFAULT 1)",
            None,
        )
        .map_err(storage_error)?;
        sql.exec(
            "CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (received_at, id)",
            None,
        )
        .map_err(storage_error)?;
        Ok(DeliveryLog { sql })
    }

    /// Claims the delivery: `Some(attempt)` (1 for the first) when this call owns it, `None`
    /// when it was claimed before and did not fail.
    pub fn claim(&self, d: &Received) -> Result<Option<u32>, ApiError> {
        #[derive(Deserialize)]
        struct Claimed {
            attempts: f64,
        }
        let rows: Vec<Claimed> = self
            .sql
            .exec(
                "INSERT INTO deliveries (id, received_at, event, action, repository, outcome)
                 VALUES (?, ?, ?, ?, ?, 'processing')
                 ON CONFLICT (id) DO UPDATE SET outcome = 'processing', attempts = attempts + 1,
                     received_at = excluded.received_at
                 WHERE deliveries.outcome = 'failed'
                 RETURNING attempts",
                vec![
                    d.id.as_str().into(),
                    d.received_at_ms.into(),
                    d.event.as_str().into(),
                    text(d.action.as_deref()),
                    text(d.repository.as_deref()),
                ],
            )
            .and_then(|c| c.to_array())
            .map_err(storage_error)?;
        Ok(rows.first().map(|r| r.attempts as u32))
    }

    /// Records a delivery that was refused before it could be claimed (e.g. 403), so the
    /// admin still sees it; it stays claimable.
    pub fn finish(&self, id: &str, f: &Finished) -> Result<(), ApiError> {
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
            .map_err(storage_error)?;
        Ok(())
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
            .map_err(storage_error)?;
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

    /// Drops deliveries past retention and the oldest over the cap; storage stays bounded.
    pub fn trim(&self, now_ms: i64) -> Result<(), ApiError> {
        self.sql
            .exec(
                "DELETE FROM deliveries WHERE received_at < ?",
                vec![(now_ms - RETENTION_MS).into()],
            )
            .map_err(storage_error)?;
        self.sql
            .exec(
                "DELETE FROM deliveries WHERE id IN
                   (SELECT id FROM deliveries ORDER BY received_at DESC, id DESC LIMIT -1 OFFSET ?)",
                vec![(MAX_DELIVERY_RECORDS as i64).into()],
            )
            .map_err(storage_error)?;
        Ok(())
    }
}

fn encode_cursor(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (at, id) = raw.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

/// What the webhook route hands to the object that owns a delivery: the log entry, the app
/// whose secret verified it, and what ghplane is to do.
#[derive(Serialize, Deserialize)]
pub struct DeliveryRequest {
    pub received: Received,
    pub app_id: ghplane_core::ids::AppId,
    pub action: ghplane_core::webhook::Action,
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

    /// 200 for a duplicate (GitHub's delivery already succeeded), 202 otherwise.
    pub fn status(&self) -> u16 {
        if self.outcome == DeliveryOutcome::Duplicate {
            200
        } else {
            202
        }
    }

    pub fn response(&self, delivery: &str) -> worker::Response {
        let mut body = json!({"status": self.outcome.as_str(), "delivery": delivery});
        if let Some(r) = self.reason {
            body["reason"] = json!(r);
        }
        crate::http::json_response(self.status(), &body)
    }
}

/// Claims, runs `handle`, and records the outcome; a failed handling stays claimable so
/// GitHub's manual redelivery runs it once more.
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
    let Some(attempt) = log.claim(received)? else {
        return Ok(Handled {
            outcome: DeliveryOutcome::Duplicate,
            reason: None,
        }
        .response(&received.id));
    };
    let result = handle(attempt).await;
    let duration_ms = crate::objects::internal::now_ms() - now_ms;
    match result {
        Ok(h) => {
            log.finish(
                &received.id,
                &Finished {
                    outcome: h.outcome,
                    status: h.status(),
                    error_code: None,
                    reason: h.reason,
                    duration_ms,
                },
            )?;
            // No log line for a handled delivery: the delivery log above is its record,
            // and a console line per delivery costs more CPU than the handling.
            Ok(h.response(&received.id))
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
