//! `MintAudit`: the one Durable Object (named `mint-audit`) holding the mint's audit trail in
//! SQLite: one row per mint decision of a caller whose OIDC token verified, granted or
//! denied, and counters of the requests refused before that (per reason and minute).
//!
//! **Invariant:** rows are [`MintAuditRecord`]s, which hold no credential, cut to
//! [`MAX_RECORD_BYTES`]; a request whose token did not verify is never stored, only
//! counted. Storage stays bounded: rows older than
//! [`ghplane_core::mint::audit::AUDIT_RETENTION_DAYS`] days are deleted by a daily alarm,
//! and past the budget ([`AUDIT_MAX_ROWS`] rows or [`AUDIT_MAX_BYTES`] of JSON) the oldest
//! rows are dropped at once, counted in the stats and logged. Denial counters are kept
//! [`DENIAL_COUNT_RETENTION_MS`].

use ghplane_core::mint::audit::{
    is_counter_reason, minute_of, over_budget, MintAuditRecord, Outcome, AUDIT_MAX_BYTES,
    AUDIT_MAX_ROWS, AUDIT_RETENTION_MS, DENIAL_COUNT_RETENTION_MS, MAX_RECORD_BYTES,
};
use ghplane_core::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{durable_object, Env, Request, Response, SqlStorage, SqlStorageValue, State};

use crate::clock::now_ms;
use crate::objects::rpc;

pub mod client;

pub use client::{AuditQuery, MintAuditClient, MintAuditCommand, MAX_PAGE};

/// Rows dropped at a time when the budget is exceeded.
const DROP_BATCH: i64 = 100;
/// Per-minute counter rows a stats answer lists at most.
const MAX_STATS_MINUTES: i64 = 1_000;
use crate::objects::trim::TRIM_EVERY_MS;

#[durable_object]
pub struct MintAudit {
    state: State,
    ready: std::cell::Cell<bool>,
    alarm_armed: std::cell::Cell<bool>,
}

impl worker::DurableObject for MintAudit {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            ready: std::cell::Cell::new(false),
            alarm_armed: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |_, command: MintAuditCommand| async move {
            match command {
                MintAuditCommand::Record { record } => rpc::reply(&self.record(*record).await?),
                MintAuditCommand::CountDenial { reason, at_ms } => {
                    rpc::reply(&self.count_denial(&reason, at_ms).await?)
                }
                MintAuditCommand::List(q) => rpc::reply(&self.list(&q)?),
                MintAuditCommand::Stats { since_ms } => rpc::reply(&self.stats(since_ms)?),
            }
        })
        .await
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.trim() {
            crate::log::event(
                "error",
                "mint audit trim failed",
                json!({"errorCode": e.code()}),
            );
        }
        let _ = self.state.storage().set_alarm(TRIM_EVERY_MS).await;
        Response::ok("")
    }
}

impl MintAudit {
    fn sql(&self) -> Result<SqlStorage, ApiError> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS mint_audit (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                    repository TEXT, outcome TEXT NOT NULL, record TEXT NOT NULL)",
                None,
            )
            .map_err(|e| fail!(e))?;
            sql.exec(
                "CREATE INDEX IF NOT EXISTS mint_audit_by_repository ON mint_audit (repository, seq)",
                None,
            )
            .map_err(|e| fail!(e))?;
            sql.exec(
                "CREATE TABLE IF NOT EXISTS mint_denials (
                    minute INTEGER NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
                    PRIMARY KEY (minute, reason))",
                None,
            )
            .map_err(|e| fail!(e))?;
            // Running totals of the rows table (so the budget costs no scan per write) and
            // of what the budget dropped.
            sql.exec(
                "CREATE TABLE IF NOT EXISTS mint_audit_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",
                None,
            )
            .map_err(|e| fail!(e))?;
            if self.meta(&sql, "rows")?.is_none() {
                self.recount(&sql)?;
            }
            self.ready.set(true);
        }
        Ok(sql)
    }

    fn meta(&self, sql: &SqlStorage, key: &str) -> Result<Option<i64>, ApiError> {
        #[derive(Deserialize)]
        struct V {
            v: f64,
        }
        let rows: Vec<V> = sql
            .exec(
                "SELECT v FROM mint_audit_meta WHERE k = ?",
                vec![key.into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        Ok(rows.first().map(|r| r.v as i64))
    }

    fn set_meta(&self, sql: &SqlStorage, key: &str, v: i64) -> Result<(), ApiError> {
        sql.exec(
            "INSERT INTO mint_audit_meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            vec![key.into(), v.into()],
        )
        .map(|_| ())
        .map_err(|e| fail!(e))
    }

    /// Counts the rows and their bytes afresh (once for an audit older than the counters,
    /// and after each daily trim).
    fn recount(&self, sql: &SqlStorage) -> Result<(), ApiError> {
        #[derive(Deserialize)]
        struct Totals {
            rows: f64,
            bytes: Option<f64>,
        }
        let t: Vec<Totals> = sql
            .exec(
                "SELECT COUNT(*) AS rows, SUM(length(record)) AS bytes FROM mint_audit",
                None,
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        let (rows, bytes) = t
            .first()
            .map_or((0, 0), |t| (t.rows as i64, t.bytes.unwrap_or(0.0) as i64));
        self.set_meta(sql, "rows", rows)?;
        self.set_meta(sql, "bytes", bytes)
    }

    async fn record(&self, r: MintAuditRecord) -> Result<(), ApiError> {
        let r = r.bounded();
        let text = serde_json::to_string(&r).map_err(|e| fail!(e))?;
        if text.len() > MAX_RECORD_BYTES {
            return Err(fail!());
        }
        let outcome = match r.outcome {
            Outcome::Granted => "granted",
            Outcome::Denied => "denied",
        };
        let sql = self.sql()?;
        sql.exec(
            "INSERT INTO mint_audit (at_ms, repository, outcome, record) VALUES (?, ?, ?, ?)",
            vec![
                r.at_ms.into(),
                r.repository
                    .as_deref()
                    .map_or(SqlStorageValue::Null, Into::into),
                outcome.into(),
                text.as_str().into(),
            ],
        )
        .map_err(|e| fail!(e))?;
        let rows = self.meta(&sql, "rows")?.unwrap_or(0) + 1;
        let bytes = self.meta(&sql, "bytes")?.unwrap_or(0) + text.len() as i64;
        self.set_meta(&sql, "rows", rows)?;
        self.set_meta(&sql, "bytes", bytes)?;
        if over_budget(rows, bytes, AUDIT_MAX_ROWS, AUDIT_MAX_BYTES) {
            self.drop_oldest(&sql, rows, bytes)?;
        }
        crate::objects::trim::arm(&self.state, &self.alarm_armed).await
    }

    /// Over the budget: the oldest rows go, in batches, until it holds again; the drop is
    /// counted (see `stats`) and logged, never silent.
    fn drop_oldest(&self, sql: &SqlStorage, mut rows: i64, mut bytes: i64) -> Result<(), ApiError> {
        #[derive(Deserialize)]
        struct Old {
            seq: f64,
            len: f64,
        }
        let mut dropped = 0i64;
        while over_budget(rows, bytes, AUDIT_MAX_ROWS, AUDIT_MAX_BYTES) && rows > 0 {
            let batch: Vec<Old> = sql
                .exec(
                    "SELECT seq, length(record) AS len FROM mint_audit ORDER BY seq LIMIT ?",
                    vec![DROP_BATCH.into()],
                )
                .and_then(|c| c.to_array())
                .map_err(|e| fail!(e))?;
            let Some(last) = batch.last() else { break };
            sql.exec(
                "DELETE FROM mint_audit WHERE seq <= ?",
                vec![(last.seq as i64).into()],
            )
            .map_err(|e| fail!(e))?;
            rows -= batch.len() as i64;
            bytes -= batch.iter().map(|o| o.len as i64).sum::<i64>();
            dropped += batch.len() as i64;
        }
        self.set_meta(sql, "rows", rows.max(0))?;
        self.set_meta(sql, "bytes", bytes.max(0))?;
        let total = self.meta(sql, "dropped_rows")?.unwrap_or(0) + dropped;
        self.set_meta(sql, "dropped_rows", total)?;
        self.set_meta(sql, "dropped_at_ms", now_ms())?;
        crate::log::event(
            "warn",
            "mint audit over its storage budget: oldest rows dropped",
            json!({"dropped": dropped, "droppedTotal": total, "rows": rows, "bytes": bytes,
                "maxRows": AUDIT_MAX_ROWS, "maxBytes": AUDIT_MAX_BYTES}),
        );
        Ok(())
    }

    /// One more refusal of `reason` in its minute; nothing of the request is kept.
    async fn count_denial(&self, reason: &str, at_ms: i64) -> Result<(), ApiError> {
        let reason = if is_counter_reason(reason) {
            reason
        } else {
            "other"
        };
        self.sql()?
            .exec(
                "INSERT INTO mint_denials (minute, reason, count) VALUES (?, ?, 1)
                 ON CONFLICT(minute, reason) DO UPDATE SET count = count + 1",
                vec![minute_of(at_ms).into(), reason.into()],
            )
            .map_err(|e| fail!(e))?;
        crate::objects::trim::arm(&self.state, &self.alarm_armed).await
    }

    fn stats(&self, since_ms: i64) -> Result<Value, ApiError> {
        #[derive(Deserialize)]
        struct Count {
            minute: f64,
            reason: String,
            count: f64,
        }
        let sql = self.sql()?;
        let since = minute_of(since_ms);
        let per_minute: Vec<Count> = sql
            .exec(
                "SELECT minute, reason, count FROM mint_denials WHERE minute >= ?
                 ORDER BY minute DESC, reason LIMIT ?",
                vec![since.into(), MAX_STATS_MINUTES.into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        let totals: Vec<Count> = sql
            .exec(
                "SELECT 0 AS minute, reason, SUM(count) AS count FROM mint_denials
                 WHERE minute >= ? GROUP BY reason ORDER BY reason",
                vec![since.into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        let by_reason: serde_json::Map<String, Value> = totals
            .iter()
            .map(|c| (c.reason.clone(), json!(c.count as i64)))
            .collect();
        let total: i64 = totals.iter().map(|c| c.count as i64).sum();
        let minutes: Vec<Value> = per_minute
            .iter()
            .map(|c| {
                json!({"minute": ghplane_core::time::rfc3339_from_millis(c.minute as i64),
                    "reason": c.reason, "count": c.count as i64})
            })
            .collect();
        let dropped_at = self
            .meta(&sql, "dropped_at_ms")?
            .map(ghplane_core::time::rfc3339_from_millis);
        Ok(json!({
            "records": {
                "rows": self.meta(&sql, "rows")?.unwrap_or(0),
                "bytes": self.meta(&sql, "bytes")?.unwrap_or(0),
                "maxRows": AUDIT_MAX_ROWS,
                "maxBytes": AUDIT_MAX_BYTES,
                "maxRecordBytes": MAX_RECORD_BYTES,
            },
            "dropped": {
                "rows": self.meta(&sql, "dropped_rows")?.unwrap_or(0),
                "lastAt": dropped_at,
            },
            "unauthenticated": {
                "since": ghplane_core::time::rfc3339_from_millis(since),
                "total": total,
                "byReason": by_reason,
                "perMinute": minutes,
            },
        }))
    }

    fn list(&self, q: &AuditQuery) -> Result<Value, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            seq: f64,
            record: String,
        }
        let mut clauses = vec!["seq < ?".to_owned()];
        let mut args: Vec<SqlStorageValue> = vec![q.before.unwrap_or(i64::MAX / 2).into()];
        if let Some(r) = &q.repository {
            clauses.push("repository = ?".into());
            args.push(r.as_str().into());
        }
        if let Some(o) = q.outcome {
            clauses.push("outcome = ?".into());
            args.push(
                if o == Outcome::Granted {
                    "granted"
                } else {
                    "denied"
                }
                .into(),
            );
        }
        if let Some(since) = q.since_ms {
            clauses.push("at_ms >= ?".into());
            args.push(since.into());
        }
        let limit = q.limit.clamp(1, MAX_PAGE);
        args.push(i64::from(limit + 1).into());
        let rows: Vec<Row> = self
            .sql()?
            .exec(
                &format!(
                    "SELECT seq, record FROM mint_audit WHERE {} ORDER BY seq DESC LIMIT ?",
                    clauses.join(" AND ")
                ),
                args,
            )
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next = match (more, rows.last()) {
            (true, Some(last)) => Some((last.seq as i64).to_string()),
            _ => None,
        };
        let records: Vec<Value> = rows
            .iter()
            .filter_map(|r| {
                let mut v: Value = serde_json::from_str(&r.record).ok()?;
                v["id"] = json!((r.seq as i64).to_string());
                Some(v)
            })
            .collect();
        Ok(json!({"records": records, "nextCursor": next}))
    }

    fn trim(&self) -> Result<(), ApiError> {
        let sql = self.sql()?;
        sql.exec(
            "DELETE FROM mint_audit WHERE at_ms < ?",
            vec![(now_ms() - AUDIT_RETENTION_MS).into()],
        )
        .map_err(|e| fail!(e))?;
        sql.exec(
            "DELETE FROM mint_denials WHERE minute < ?",
            vec![(now_ms() - DENIAL_COUNT_RETENTION_MS).into()],
        )
        .map_err(|e| fail!(e))?;
        self.recount(&sql)?;
        let rows = self.meta(&sql, "rows")?.unwrap_or(0);
        let bytes = self.meta(&sql, "bytes")?.unwrap_or(0);
        if over_budget(rows, bytes, AUDIT_MAX_ROWS, AUDIT_MAX_BYTES) {
            self.drop_oldest(&sql, rows, bytes)?;
        }
        Ok(())
    }
}
