//! The mint's audit trail: writing a decision's record or a refusal's count (never failing
//! the mint), and the admin's listing and stats.

use ghplane_core::mint::audit::minute_of;
use ghplane_core::mint::audit::{
    MintAuditRecord, Outcome, AUDIT_MAX_BYTES, AUDIT_MAX_ROWS, MAX_RECORD_BYTES,
};
use ghplane_core::mint::audit_shard::AuditCursor;
use ghplane_core::routes::Matched;
use ghplane_core::ApiError;
use serde_json::json;
use worker::{Env, Request, Response};

use crate::clock::now_ms;
use crate::http::json_response;
use crate::objects::mint_audit::{client, AuditQuery};

/// Stores a decision's record; a failure is logged, and the mint's answer stands.
pub(super) async fn record(env: &Env, record: &MintAuditRecord) {
    let written = client::record(env, record.clone().bounded()).await;
    if let Err(e) = written {
        crate::log::cause(&e);
        crate::log::event(
            "error",
            "mint audit write failed",
            json!({"errorCode": e.code(), "outcome": record.outcome, "status": record.status}),
        );
    }
}

/// Counts a request refused before its token verified, by `reason`.
pub(super) async fn count_denial(env: &Env, reason: &str) {
    let counted = client::count_denial(env, reason, now_ms()).await;
    if let Err(e) = counted {
        crate::log::cause(&e);
        crate::log::event(
            "error",
            "mint denial count failed",
            json!({"errorCode": e.code(), "reason": reason}),
        );
    }
}

/// `GET /api/mint/audit` (admin).
pub async fn list_audit(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let mut q = AuditQuery {
        limit: 50,
        ..AuditQuery::default()
    };
    let bad = |m: &str| ApiError::Validation(m.to_owned());
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "repository" => {
                if v.is_empty() || v.len() > 200 {
                    return Err(bad("repository: owner/name"));
                }
                q.repository = Some(v.into_owned());
            }
            "outcome" => {
                q.outcome = Some(match v.as_ref() {
                    "granted" => Outcome::Granted,
                    "denied" => Outcome::Denied,
                    _ => return Err(bad("outcome: granted or denied")),
                })
            }
            "since" => {
                let secs = ghplane_core::time::parse_rfc3339_utc(&v)
                    .ok_or_else(|| bad("since: an RFC 3339 UTC time"))?;
                q.since_ms = Some(secs * 1000);
            }
            "limit" => {
                q.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| bad("limit: must be 1 to 100"))?;
            }
            "cursor" => {
                q.cursor = Some(
                    AuditCursor::parse(&v)
                        .ok_or_else(|| bad("cursor: not a cursor of this listing"))?,
                );
            }
            other => {
                return Err(bad(&format!(
                    "unknown query parameter {}",
                    ghplane_core::ids::truncate(other, 40)
                )))
            }
        }
    }
    let page = client::list(env, q).await?;
    Ok(json_response(200, &page))
}

/// `GET /api/mint/audit/stats` (admin): the audit's size against its budget, rows the
/// budget dropped, and the requests refused before their token verified, per reason and
/// minute since `since` (default: the last hour).
pub async fn audit_stats(req: Request, env: &Env, _m: &Matched) -> Result<Response, ApiError> {
    let url = req.url().map_err(|e| fail!(e))?;
    let mut since_ms = now_ms() - 60 * 60 * 1000;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "since" => {
                let secs = ghplane_core::time::parse_rfc3339_utc(&v).ok_or_else(|| {
                    ApiError::Validation("since: an RFC 3339 UTC time".to_owned())
                })?;
                since_ms = secs * 1000;
            }
            other => {
                return Err(ApiError::Validation(format!(
                    "unknown query parameter {}",
                    ghplane_core::ids::truncate(other, 40)
                )))
            }
        }
    }
    let s = client::stats(env, since_ms).await?;
    let rfc3339 = ghplane_core::time::rfc3339_from_millis;
    let since = minute_of(since_ms);
    let minutes: Vec<_> = s
        .per_minute
        .iter()
        .map(|c| json!({"minute": rfc3339(c.minute), "reason": c.reason, "count": c.count}))
        .collect();
    let stats = json!({
        "records": {
            "rows": s.rows,
            "bytes": s.bytes,
            "maxRows": AUDIT_MAX_ROWS,
            "maxBytes": AUDIT_MAX_BYTES,
            "maxRecordBytes": MAX_RECORD_BYTES,
        },
        "dropped": {"rows": s.dropped_rows, "lastAt": s.dropped_at_ms.map(rfc3339)},
        "unauthenticated": {
            "since": rfc3339(since),
            "total": s.by_reason.values().sum::<i64>(),
            "byReason": s.by_reason,
            "perMinute": minutes,
        },
    });
    Ok(json_response(200, &stats))
}
