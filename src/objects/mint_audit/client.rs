//! The handle on the mint audit's objects (class `MintAudit`): the shards its rows and
//! counters are written to, the legacy single object still read, and the registry of shards
//! (see `ghplane_core::mint::audit_shard`). Writes go to one shard; listings and stats read
//! the registry, then the shards that can answer, and merge.

use ghplane_core::mint::audit::{MintAuditRecord, Outcome};
use ghplane_core::mint::audit_shard::{
    bound_for, merge_rows, merge_stats, shards_to_read, AuditCursor, AuditRow, AuditShard,
    RowBound, ShardStats, REGISTRY_OBJECT,
};
use ghplane_core::rpc::Command;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

/// Most records one listing page holds.
pub const MAX_PAGE: u32 = 100;
/// Per-minute counter rows a stats answer lists at most.
pub const MAX_STATS_MINUTES: usize = 1_000;

/// What an object of the class is asked. A shard answers the first four; the registry
/// (`mint-audit-shards`) the last three. Externally tagged, as every command (`ghplane_core::rpc`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MintAuditCommand {
    /// One mint decision's row. → `()`.
    Record { record: Box<MintAuditRecord> },
    /// A request refused before its OIDC token verified: only its reason is counted. → `()`.
    CountDenial { reason: String, at_ms: i64 },
    /// This shard's part of a page: `Vec<AuditRow>`, newest first.
    List(ShardQuery),
    /// This shard's size, drops and denial counters since `since_ms`: `ShardStats`.
    Stats { since_ms: i64 },
    /// Registry: a shard exists (sent once, by the shard, on its first write). → `()`.
    Enrol { shard: String },
    /// Registry: a shard past retention is gone. → `()`.
    Forget { shard: String },
    /// Registry: every shard's object name, `Vec<String>`.
    Shards,
}

impl Command for MintAuditCommand {
    fn idempotent(&self) -> bool {
        // Writing a row or counting a refusal twice would count it twice.
        !matches!(
            self,
            MintAuditCommand::Record { .. } | MintAuditCommand::CountDenial { .. }
        )
    }
}

/// One shard's part of a listing: its filtered rows after `bound`, at most `limit`.
#[derive(Serialize, Deserialize)]
pub struct ShardQuery {
    pub repository: Option<String>,
    pub outcome: Option<Outcome>,
    pub since_ms: Option<i64>,
    pub limit: u32,
    pub bound: RowBound,
}

/// A listing's filters, already validated by the route.
#[derive(Default)]
pub struct AuditQuery {
    pub repository: Option<String>,
    pub outcome: Option<Outcome>,
    pub since_ms: Option<i64>,
    pub limit: u32,
    /// Rows after this position (the previous page's `nextCursor`).
    pub cursor: Option<AuditCursor>,
}

fn object(env: &Env, name: &str) -> Result<Object, ApiError> {
    Object::new(env, settings::MINT_AUDIT, name)
}

/// Stores a decision's row in its organisation's shard of its time.
pub async fn record(env: &Env, record: MintAuditRecord) -> Result<(), ApiError> {
    let shard = AuditShard::for_record(record.repository_owner.as_deref(), record.at_ms);
    let record = Box::new(record);
    object(env, &shard.object_name())?
        .call(&MintAuditCommand::Record { record })
        .await
}

/// Counts a request refused before its OIDC token verified (nothing else of it).
pub async fn count_denial(env: &Env, reason: &str, at_ms: i64) -> Result<(), ApiError> {
    let shard = AuditShard::for_denial(at_ms);
    object(env, &shard.object_name())?
        .call(&MintAuditCommand::CountDenial {
            reason: reason.to_owned(),
            at_ms,
        })
        .await
}

/// The registry's handle (used by a shard to enrol or leave).
pub fn registry(env: &Env) -> Result<Object, ApiError> {
    object(env, REGISTRY_OBJECT)
}

/// Every shard the registry knows (names it cannot parse are skipped).
async fn registered(env: &Env) -> Result<Vec<AuditShard>, ApiError> {
    let names: Vec<String> = registry(env)?.call(&MintAuditCommand::Shards).await?;
    Ok(names.iter().filter_map(|n| AuditShard::parse(n)).collect())
}

/// A page of records, newest first: `{"records", "nextCursor"}`, each record with its `id`
/// (its position in the listing).
pub async fn list(env: &Env, q: AuditQuery) -> Result<Value, ApiError> {
    let limit = q.limit.clamp(1, MAX_PAGE);
    let shards = shards_to_read(
        registered(env).await?,
        q.since_ms,
        q.cursor.as_ref(),
        q.repository.as_deref(),
    );
    let calls = shards.into_iter().map(|shard| {
        let command = MintAuditCommand::List(ShardQuery {
            repository: q.repository.clone(),
            outcome: q.outcome,
            since_ms: q.since_ms,
            limit: limit + 1,
            bound: bound_for(q.cursor.as_ref(), shard),
        });
        async move {
            let rows: Vec<AuditRow> = object(env, &shard.object_name())?.call(&command).await?;
            Ok::<_, ApiError>((shard, rows))
        }
    });
    let answers = futures_util::future::try_join_all(calls).await?;
    let (rows, next) = merge_rows(answers, limit as usize);
    let records: Vec<Value> = rows
        .into_iter()
        .filter_map(|(at, text)| {
            let mut v: Value = serde_json::from_str(&text).ok()?;
            v["id"] = json!(at.encode());
            Some(v)
        })
        .collect();
    Ok(json!({"records": records, "nextCursor": next}))
}

/// Every shard's stats since `since_ms`, added up.
pub async fn stats(env: &Env, since_ms: i64) -> Result<ShardStats, ApiError> {
    let shards = shards_to_read(registered(env).await?, None, None, None);
    let calls = shards.into_iter().map(|shard| async move {
        object(env, &shard.object_name())?
            .call::<_, ShardStats>(&MintAuditCommand::Stats { since_ms })
            .await
    });
    let answers = futures_util::future::try_join_all(calls).await?;
    Ok(merge_stats(answers, MAX_STATS_MINUTES))
}
