//! The handle on the `MintAudit` object: its commands and their replies.

use ghplane_core::mint::audit::{MintAuditRecord, Outcome};
use ghplane_core::rpc::Command;
use ghplane_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::Env;

use crate::objects::rpc::Object;
use crate::settings;

pub const OBJECT_NAME: &str = "mint-audit";
/// Most records one listing page holds.
pub const MAX_PAGE: u32 = 100;

/// What the object is asked (every command was a POST: none is sent twice).
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MintAuditCommand {
    /// One mint decision's row. → `()`.
    Record { record: Box<MintAuditRecord> },
    /// A request refused before its OIDC token verified: only its reason is counted. → `()`.
    CountDenial { reason: String, at_ms: i64 },
    /// A page of records, newest first: `{"records", "nextCursor"}`.
    List(AuditQuery),
    /// The audit's size, drops and denial counters since `since_ms`.
    Stats { since_ms: i64 },
}

impl Command for MintAuditCommand {
    fn idempotent(&self) -> bool {
        false
    }
}

/// A listing's filters, already validated by the route.
#[derive(Default, Serialize, Deserialize)]
pub struct AuditQuery {
    pub repository: Option<String>,
    pub outcome: Option<Outcome>,
    pub since_ms: Option<i64>,
    pub limit: u32,
    /// Rows older than this sequence number (the previous page's `nextCursor`).
    pub before: Option<i64>,
}

pub struct MintAuditClient {
    object: Object,
}

impl MintAuditClient {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        let object = Object::new(env, settings::MINT_AUDIT, OBJECT_NAME)?;
        Ok(Self { object })
    }

    pub async fn record(&self, record: MintAuditRecord) -> Result<(), ApiError> {
        let record = Box::new(record);
        self.object.call(&MintAuditCommand::Record { record }).await
    }

    /// Counts a request refused before its OIDC token verified (nothing else of it).
    pub async fn count_denial(&self, reason: &str, at_ms: i64) -> Result<(), ApiError> {
        self.object
            .call(&MintAuditCommand::CountDenial {
                reason: reason.to_owned(),
                at_ms,
            })
            .await
    }

    pub async fn stats(&self, since_ms: i64) -> Result<Value, ApiError> {
        self.object
            .call(&MintAuditCommand::Stats { since_ms })
            .await
    }

    pub async fn list(&self, q: AuditQuery) -> Result<Value, ApiError> {
        self.object.call(&MintAuditCommand::List(q)).await
    }
}
