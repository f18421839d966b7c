//! `MintAudit`: the class of the mint's audit objects, in SQLite. A shard
//! (`mint-audit-<slot>-<bucket>`, see `ghplane_core::mint::audit_shard`) holds one row per
//! mint decision of a caller whose OIDC token verified, granted or denied, of the
//! organisations hashed to its slot during its 30-day bucket, and counters of the requests
//! refused before that (per reason and minute). The legacy single object `mint-audit` has
//! the same tables and is still read (and trimmed), never written. The registry
//! (`mint-audit-shards`) lists the shards: each one enrols itself on its first write.
//!
//! **Invariant:** rows are [`MintAuditRecord`]s, which hold no credential, cut to
//! [`MAX_RECORD_BYTES`]; a request whose token did not verify is never stored, only
//! counted. Storage stays bounded: rows older than
//! [`ghplane_core::mint::audit::AUDIT_RETENTION_DAYS`] days are deleted by a daily alarm,
//! and past the budget ([`AUDIT_MAX_ROWS`] rows or [`AUDIT_MAX_BYTES`] of JSON, per object)
//! the oldest rows are dropped at once, counted in the stats and logged. Denial counters are
//! kept [`DENIAL_COUNT_RETENTION_MS`]. A shard whose whole bucket is past retention empties
//! its storage and leaves the registry.

use std::cell::Cell;

use ghplane_core::mint::audit::{
    is_counter_reason, minute_of, over_budget, MintAuditRecord, Outcome, AUDIT_MAX_BYTES,
    AUDIT_MAX_ROWS, AUDIT_RETENTION_MS, DENIAL_COUNT_RETENTION_MS, MAX_RECORD_BYTES,
};
use ghplane_core::mint::audit_shard::{AuditRow, AuditShard, MinuteCount, ShardStats};
use ghplane_core::ApiError;
use serde::Deserialize;
use serde_json::json;
use worker::{durable_object, Env, Request, Response, SqlStorage, SqlStorageValue, State};

use crate::clock::now_ms;
use crate::objects::rpc;
use crate::objects::trim::TRIM_EVERY_MS;

pub mod client;

pub use client::{AuditQuery, MintAuditCommand, ShardQuery, MAX_PAGE, MAX_STATS_MINUTES};

/// Rows dropped at a time when the budget is exceeded.
const DROP_BATCH: i64 = 100;
/// Numbers cross into SQLite as JS numbers: bounds above this are this.
const MAX_SAFE: i64 = (1 << 53) - 1;

#[durable_object]
pub struct MintAudit {
    state: State,
    env: Env,
    ready: Cell<bool>,
    alarm_armed: Cell<bool>,
    /// Whether this shard is known to be in the registry (checked once per object life).
    enrolled: Cell<bool>,
}

impl worker::DurableObject for MintAudit {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            ready: Cell::new(false),
            alarm_armed: Cell::new(false),
            enrolled: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::serve(req, |name, command: MintAuditCommand| async move {
            match command {
                MintAuditCommand::Record { record } => {
                    rpc::reply(&self.record(&name, *record).await?)
                }
                MintAuditCommand::CountDenial { reason, at_ms } => {
                    rpc::reply(&self.count_denial(&name, &reason, at_ms).await?)
                }
                MintAuditCommand::List(q) => rpc::reply(&self.list(&q)?),
                MintAuditCommand::Stats { since_ms } => rpc::reply(&self.stats(since_ms)?),
                MintAuditCommand::Enrol { shard } => rpc::reply(&self.enrol(&shard, true)?),
                MintAuditCommand::Forget { shard } => rpc::reply(&self.enrol(&shard, false)?),
                MintAuditCommand::Shards => rpc::reply(&self.shards()?),
            }
        })
        .await
    }

    async fn alarm(&self) -> worker::Result<Response> {
        match self.expire().await {
            // The whole bucket is past retention: nothing left, no alarm again.
            Ok(true) => return Response::ok(""),
            Ok(false) => {}
            Err(e) => crate::log::event(
                "error",
                "mint audit shard expiry failed",
                json!({"errorCode": e.code()}),
            ),
        }
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

fn outcome_text(o: Outcome) -> &'static str {
    match o {
        Outcome::Granted => "granted",
        Outcome::Denied => "denied",
    }
}

impl MintAudit {
    fn exec<T: serde::de::DeserializeOwned>(
        sql: &SqlStorage,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> Result<Vec<T>, ApiError> {
        sql.exec(query, args)
            .and_then(|c| c.to_array())
            .map_err(|e| fail!(e))
    }

    fn run(sql: &SqlStorage, query: &str, args: Vec<SqlStorageValue>) -> Result<(), ApiError> {
        sql.exec(query, args).map(|_| ()).map_err(|e| fail!(e))
    }

    fn sql(&self) -> Result<SqlStorage, ApiError> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            for statement in [
                "CREATE TABLE IF NOT EXISTS mint_audit (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                    repository TEXT, outcome TEXT NOT NULL, record TEXT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS mint_audit_by_repository ON mint_audit (repository, seq)",
                // The listing's order (newest first, across shards by time).
                "CREATE INDEX IF NOT EXISTS mint_audit_by_time ON mint_audit (at_ms, seq)",
                "CREATE INDEX IF NOT EXISTS mint_audit_by_repository_time
                    ON mint_audit (repository, at_ms, seq)",
                "CREATE TABLE IF NOT EXISTS mint_denials (
                    minute INTEGER NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
                    PRIMARY KEY (minute, reason))",
                // Running totals of the rows table (so the budget costs no scan per write),
                // of what the budget dropped, and the shard this object is.
                "CREATE TABLE IF NOT EXISTS mint_audit_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",
            ] {
                Self::run(&sql, statement, vec![])?;
            }
            if self.meta(&sql, "rows")?.is_none() {
                self.recount(&sql)?;
            }
            self.ready.set(true);
        }
        Ok(sql)
    }

    /// The tables for a read; `None` for an object never written (a read creates nothing).
    fn sql_if_written(&self) -> Result<Option<SqlStorage>, ApiError> {
        if self.ready.get() {
            return self.sql().map(Some);
        }
        #[derive(Deserialize)]
        struct Name {
            #[allow(dead_code)]
            name: String,
        }
        let sql = self.state.storage().sql();
        let tables: Vec<Name> = Self::exec(
            &sql,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'mint_audit'",
            vec![],
        )?;
        if tables.is_empty() {
            return Ok(None);
        }
        self.sql().map(Some)
    }

    fn meta(&self, sql: &SqlStorage, key: &str) -> Result<Option<i64>, ApiError> {
        #[derive(Deserialize)]
        struct V {
            v: f64,
        }
        let rows: Vec<V> = Self::exec(
            sql,
            "SELECT v FROM mint_audit_meta WHERE k = ?",
            vec![key.into()],
        )?;
        Ok(rows.first().map(|r| r.v as i64))
    }

    fn set_meta(&self, sql: &SqlStorage, key: &str, v: i64) -> Result<(), ApiError> {
        Self::run(
            sql,
            "INSERT INTO mint_audit_meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            vec![key.into(), v.into()],
        )
    }

    /// Counts the rows and their bytes afresh (once for an audit older than the counters,
    /// and after each daily trim).
    fn recount(&self, sql: &SqlStorage) -> Result<(), ApiError> {
        #[derive(Deserialize)]
        struct Totals {
            rows: f64,
            bytes: Option<f64>,
        }
        let t: Vec<Totals> = Self::exec(
            sql,
            "SELECT COUNT(*) AS rows, SUM(length(record)) AS bytes FROM mint_audit",
            vec![],
        )?;
        let (rows, bytes) = t
            .first()
            .map_or((0, 0), |t| (t.rows as i64, t.bytes.unwrap_or(0.0) as i64));
        self.set_meta(sql, "rows", rows)?;
        self.set_meta(sql, "bytes", bytes)
    }

    /// Before a shard's first write: its name in the registry (once per shard: the shard
    /// remembers it), so listings find it. The legacy object is never written.
    async fn enrolled(&self, name: &str, sql: &SqlStorage) -> Result<(), ApiError> {
        if self.enrolled.get() {
            return Ok(());
        }
        let Some(AuditShard::Slot { bucket, slot }) = AuditShard::parse(name) else {
            return Err(fail!());
        };
        if self.meta(sql, "shard_bucket")?.is_none() {
            client::registry(&self.env)?
                .call::<_, ()>(&MintAuditCommand::Enrol {
                    shard: name.to_owned(),
                })
                .await?;
            self.set_meta(sql, "shard_slot", i64::from(slot))?;
            self.set_meta(sql, "shard_bucket", bucket)?;
        }
        self.enrolled.set(true);
        Ok(())
    }

    async fn record(&self, name: &str, r: MintAuditRecord) -> Result<(), ApiError> {
        let r = r.bounded();
        let text = serde_json::to_string(&r).map_err(|e| fail!(e))?;
        if text.len() > MAX_RECORD_BYTES {
            return Err(fail!());
        }
        let sql = self.sql()?;
        self.enrolled(name, &sql).await?;
        Self::run(
            &sql,
            "INSERT INTO mint_audit (at_ms, repository, outcome, record) VALUES (?, ?, ?, ?)",
            vec![
                r.at_ms.into(),
                r.repository
                    .as_deref()
                    .map_or(SqlStorageValue::Null, Into::into),
                outcome_text(r.outcome).into(),
                text.as_str().into(),
            ],
        )?;
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
            let batch: Vec<Old> = Self::exec(
                sql,
                "SELECT seq, length(record) AS len FROM mint_audit ORDER BY seq LIMIT ?",
                vec![DROP_BATCH.into()],
            )?;
            let Some(last) = batch.last() else { break };
            Self::run(
                sql,
                "DELETE FROM mint_audit WHERE seq <= ?",
                vec![(last.seq as i64).into()],
            )?;
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
    async fn count_denial(&self, name: &str, reason: &str, at_ms: i64) -> Result<(), ApiError> {
        let reason = if is_counter_reason(reason) {
            reason
        } else {
            "other"
        };
        let sql = self.sql()?;
        self.enrolled(name, &sql).await?;
        Self::run(
            &sql,
            "INSERT INTO mint_denials (minute, reason, count) VALUES (?, ?, 1)
             ON CONFLICT(minute, reason) DO UPDATE SET count = count + 1",
            vec![minute_of(at_ms).into(), reason.into()],
        )?;
        crate::objects::trim::arm(&self.state, &self.alarm_armed).await
    }

    /// This object's size, drops, and refusals counted since `since_ms`.
    fn stats(&self, since_ms: i64) -> Result<ShardStats, ApiError> {
        #[derive(Deserialize)]
        struct Count {
            minute: f64,
            reason: String,
            count: f64,
        }
        let Some(sql) = self.sql_if_written()? else {
            return Ok(ShardStats::default());
        };
        let since = minute_of(since_ms);
        let per_minute: Vec<Count> = Self::exec(
            &sql,
            "SELECT minute, reason, count FROM mint_denials WHERE minute >= ?
             ORDER BY minute DESC, reason LIMIT ?",
            vec![since.into(), (MAX_STATS_MINUTES as i64).into()],
        )?;
        let totals: Vec<Count> = Self::exec(
            &sql,
            "SELECT 0 AS minute, reason, SUM(count) AS count FROM mint_denials
             WHERE minute >= ? GROUP BY reason ORDER BY reason",
            vec![since.into()],
        )?;
        let count = |c: &Count| MinuteCount {
            minute: c.minute as i64,
            reason: c.reason.clone(),
            count: c.count as i64,
        };
        Ok(ShardStats {
            rows: self.meta(&sql, "rows")?.unwrap_or(0),
            bytes: self.meta(&sql, "bytes")?.unwrap_or(0),
            dropped_rows: self.meta(&sql, "dropped_rows")?.unwrap_or(0),
            dropped_at_ms: self.meta(&sql, "dropped_at_ms")?,
            per_minute: per_minute.iter().map(count).collect(),
            by_reason: totals
                .iter()
                .map(|c| (c.reason.clone(), c.count as i64))
                .collect(),
        })
    }

    /// This shard's rows after the bound that pass the filters, newest first.
    fn list(&self, q: &ShardQuery) -> Result<Vec<AuditRow>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            seq: f64,
            at_ms: f64,
            record: String,
        }
        let Some(sql) = self.sql_if_written()? else {
            return Ok(Vec::new());
        };
        let at = q.bound.at_ms.min(MAX_SAFE);
        let mut clauses = vec!["(at_ms < ? OR (at_ms = ? AND seq < ?))".to_owned()];
        let mut args: Vec<SqlStorageValue> =
            vec![at.into(), at.into(), q.bound.seq_below.min(MAX_SAFE).into()];
        if let Some(r) = &q.repository {
            clauses.push("repository = ?".into());
            args.push(r.as_str().into());
        }
        if let Some(o) = q.outcome {
            clauses.push("outcome = ?".into());
            args.push(outcome_text(o).into());
        }
        if let Some(since) = q.since_ms {
            clauses.push("at_ms >= ?".into());
            args.push(since.into());
        }
        args.push(i64::from(q.limit.clamp(1, MAX_PAGE + 1)).into());
        let rows: Vec<Row> = Self::exec(
            &sql,
            &format!(
                "SELECT seq, at_ms, record FROM mint_audit WHERE {}
                 ORDER BY at_ms DESC, seq DESC LIMIT ?",
                clauses.join(" AND ")
            ),
            args,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| AuditRow {
                seq: r.seq as i64,
                at_ms: r.at_ms as i64,
                record: r.record,
            })
            .collect())
    }

    fn trim(&self) -> Result<(), ApiError> {
        let sql = self.sql()?;
        Self::run(
            &sql,
            "DELETE FROM mint_audit WHERE at_ms < ?",
            vec![(now_ms() - AUDIT_RETENTION_MS).into()],
        )?;
        Self::run(
            &sql,
            "DELETE FROM mint_denials WHERE minute < ?",
            vec![(now_ms() - DENIAL_COUNT_RETENTION_MS).into()],
        )?;
        self.recount(&sql)?;
        let rows = self.meta(&sql, "rows")?.unwrap_or(0);
        let bytes = self.meta(&sql, "bytes")?.unwrap_or(0);
        if over_budget(rows, bytes, AUDIT_MAX_ROWS, AUDIT_MAX_BYTES) {
            self.drop_oldest(&sql, rows, bytes)?;
        }
        Ok(())
    }

    /// A shard whose whole bucket is past retention leaves the registry and empties its
    /// storage; `true` when it did.
    async fn expire(&self) -> Result<bool, ApiError> {
        let Some(sql) = self.sql_if_written()? else {
            return Ok(false);
        };
        let (Some(slot), Some(bucket)) = (
            self.meta(&sql, "shard_slot")?,
            self.meta(&sql, "shard_bucket")?,
        ) else {
            return Ok(false);
        };
        let Ok(slot) = u16::try_from(slot) else {
            return Err(fail!("shard slot out of range"));
        };
        let shard = AuditShard::Slot { bucket, slot };
        if !shard.expired(now_ms()) {
            return Ok(false);
        }
        client::registry(&self.env)?
            .call::<_, ()>(&MintAuditCommand::Forget {
                shard: shard.object_name(),
            })
            .await?;
        self.state
            .storage()
            .delete_all()
            .await
            .map_err(|e| fail!(e))?;
        self.ready.set(false);
        self.enrolled.set(false);
        Ok(true)
    }

    /// Registry: records (or forgets) a shard's name.
    fn enrol(&self, shard: &str, present: bool) -> Result<(), ApiError> {
        if AuditShard::parse(shard).is_none() {
            return Err(fail!());
        }
        let sql = self.registry_sql()?;
        let statement = if present {
            "INSERT INTO mint_audit_shards (name) VALUES (?) ON CONFLICT(name) DO NOTHING"
        } else {
            "DELETE FROM mint_audit_shards WHERE name = ?"
        };
        Self::run(&sql, statement, vec![shard.into()])
    }

    /// Registry: every shard's name.
    fn shards(&self) -> Result<Vec<String>, ApiError> {
        #[derive(Deserialize)]
        struct Name {
            name: String,
        }
        let rows: Vec<Name> = Self::exec(
            &self.registry_sql()?,
            "SELECT name FROM mint_audit_shards ORDER BY name",
            vec![],
        )?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }

    fn registry_sql(&self) -> Result<SqlStorage, ApiError> {
        let sql = self.state.storage().sql();
        Self::run(
            &sql,
            "CREATE TABLE IF NOT EXISTS mint_audit_shards (name TEXT PRIMARY KEY)",
            vec![],
        )?;
        Ok(sql)
    }
}
