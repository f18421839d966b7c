//! `MintAudit`: the one Durable Object (named `mint-audit`) holding the mint's audit trail in
//! SQLite: one row per mint decision, granted or denied.
//!
//! **Invariant:** rows are [`MintAuditRecord`]s, which hold no credential; storage stays
//! bounded: rows older than
//! [`ghplane_core::mint::audit::AUDIT_RETENTION_DAYS`] days are deleted, and never more than
//! [`MAX_RECORDS`] are kept (the oldest go first). A daily alarm trims.

use ghplane_core::mint::audit::{MintAuditRecord, Outcome, AUDIT_RETENTION_MS};
use ghplane_core::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{durable_object, Env, Method, Request, Response, SqlStorage, SqlStorageValue, State};

use crate::http::{error_response, json_response, no_content};
use crate::objects::internal::{self, now_ms, storage_error};

pub const OBJECT_NAME: &str = "mint-audit";
/// The most rows kept, whatever their age.
pub const MAX_RECORDS: i64 = 1_000_000;
pub const MAX_PAGE: u32 = 100;
const TRIM_EVERY_MS: i64 = 24 * 60 * 60 * 1000;

/// A listing's filters, already validated by the route.
#[derive(Default, serde::Serialize, Deserialize)]
pub struct AuditQuery {
    pub repository: Option<String>,
    pub outcome: Option<Outcome>,
    pub since_ms: Option<i64>,
    pub limit: u32,
    /// Rows older than this sequence number (the previous page's `nextCursor`).
    pub before: Option<i64>,
}

#[durable_object]
pub struct MintAudit {
    state: State,
    #[allow(dead_code)]
    env: Env,
    ready: std::cell::Cell<bool>,
    alarm_armed: std::cell::Cell<bool>,
}

impl worker::DurableObject for MintAudit {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            ready: std::cell::Cell::new(false),
            alarm_armed: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match (req.method(), req.path().as_str()) {
            (Method::Post, "/record") => match internal::body::<MintAuditRecord>(&mut req).await {
                Ok(r) => self.record(&r).await.map(|_| no_content()),
                Err(e) => Err(e),
            },
            (Method::Post, "/list") => match internal::body::<AuditQuery>(&mut req).await {
                Ok(q) => self.list(&q).map(|v| json_response(200, &v)),
                Err(e) => Err(e),
            },
            _ => Err(ApiError::Internal),
        };
        Ok(result.unwrap_or_else(|e| error_response(&e)))
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
            .map_err(storage_error)?;
            sql.exec(
                "CREATE INDEX IF NOT EXISTS mint_audit_by_repository ON mint_audit (repository, seq)",
                None,
            )
            .map_err(storage_error)?;
            self.ready.set(true);
        }
        Ok(sql)
    }

    async fn record(&self, r: &MintAuditRecord) -> Result<(), ApiError> {
        let text = serde_json::to_string(r).map_err(|_| ApiError::Internal)?;
        let outcome = match r.outcome {
            Outcome::Granted => "granted",
            Outcome::Denied => "denied",
        };
        self.sql()?
            .exec(
                "INSERT INTO mint_audit (at_ms, repository, outcome, record) VALUES (?, ?, ?, ?)",
                vec![
                    r.at_ms.into(),
                    r.repository
                        .as_deref()
                        .map_or(SqlStorageValue::Null, Into::into),
                    outcome.into(),
                    text.into(),
                ],
            )
            .map_err(storage_error)?;
        // The trim alarm re-arms itself, so one check per object life is enough.
        if !self.alarm_armed.get() {
            let storage = self.state.storage();
            if storage.get_alarm().await.map_err(storage_error)?.is_none() {
                storage
                    .set_alarm(TRIM_EVERY_MS)
                    .await
                    .map_err(storage_error)?;
            }
            self.alarm_armed.set(true);
        }
        Ok(())
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
            .map_err(storage_error)?;
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
        .map_err(storage_error)?;
        sql.exec(
            "DELETE FROM mint_audit WHERE seq IN (SELECT seq FROM mint_audit ORDER BY seq DESC LIMIT -1 OFFSET ?)",
            vec![MAX_RECORDS.into()],
        )
        .map_err(storage_error)?;
        Ok(())
    }
}

pub struct MintAuditClient {
    stub: crate::objects::internal::ObjectStub,
}

impl MintAuditClient {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        let stub = crate::objects::internal::stub(env, crate::settings::MINT_AUDIT, OBJECT_NAME)?;
        Ok(Self { stub })
    }

    pub async fn record(&self, r: &MintAuditRecord) -> Result<(), ApiError> {
        let resp = internal::call(
            &self.stub,
            Method::Post,
            "https://mint-audit/record",
            Some(r),
            &[],
        )
        .await?;
        if resp.status_code() == 204 {
            Ok(())
        } else {
            Err(internal::relayed(resp).await)
        }
    }

    pub async fn list(&self, q: &AuditQuery) -> Result<Response, ApiError> {
        internal::call(
            &self.stub,
            Method::Post,
            "https://mint-audit/list",
            Some(q),
            &[],
        )
        .await
    }
}
