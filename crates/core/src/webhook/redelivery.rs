//! Recovering deliveries that never arrived: which of an app's deliveries, as GitHub lists
//! them (`GET /app/hook/deliveries`), ghplane asks GitHub to send again
//! (`POST /app/hook/deliveries/{id}/attempts`).
//!
//! **Invariant:** a delivery is asked for at most once per sweep and only when (1) GitHub
//! never got a success for its `guid` (no attempt with status `OK`), (2) it is still inside
//! GitHub's redelivery window, (3) ghplane would process it (see
//! [`crate::webhook::claim::needs_redelivery`]) and (4) no earlier sweep asked for it. The
//! adapter checks (3) against the delivery's object and (4) against the app's own record
//! of requests; this module decides (1) and (2), and bounds the walk.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::time::parse_rfc3339_utc;

/// GitHub keeps an app's deliveries, and redelivers them, for three days.
pub const GITHUB_WINDOW_MS: i64 = 3 * 24 * 60 * 60 * 1000;
/// Deliveries this close to the end of GitHub's window are left alone: the request could
/// arrive after GitHub forgot them.
pub const WINDOW_MARGIN_MS: i64 = 10 * 60 * 1000;
/// Pages of `GET /app/hook/deliveries` (100 each) one sweep reads at most per app.
pub const MAX_PAGES: u32 = 10;
/// Redeliveries one sweep asks for at most per app (GitHub rate-limits the endpoint).
pub const MAX_REQUESTS: usize = 50;
/// Wall time one sweep of one app may take before it stops where it is.
pub const TIME_BUDGET_MS: i64 = 20_000;
/// How long the record of a request is kept: longer than GitHub's window, so a delivery is
/// never asked for twice.
pub const REQUEST_MEMORY_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Page size asked of GitHub.
pub const PER_PAGE: u32 = 100;

/// The first page of the listing.
pub fn first_page_path() -> String {
    format!("/app/hook/deliveries?per_page={PER_PAGE}")
}

/// One entry of `GET /app/hook/deliveries` (the fields used).
#[derive(Clone, Debug, Deserialize)]
pub struct HookDelivery {
    /// The numeric id, for the attempts call.
    pub id: u64,
    /// `X-GitHub-Delivery`, shared by a delivery and all its redeliveries.
    pub guid: String,
    pub delivered_at: String,
    /// `OK` when GitHub got a 2xx; otherwise what went wrong.
    pub status: String,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub installation_id: Option<u64>,
}

impl HookDelivery {
    fn succeeded(&self) -> bool {
        self.status == "OK"
    }
}

/// A delivery GitHub marks failed, inside the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub guid: String,
    /// The newest attempt's numeric id.
    pub id: u64,
    pub installation_id: Option<u64>,
    pub event: Option<String>,
}

/// True when a delivery made at `delivered_at` can still be redelivered at `now_ms`.
pub fn inside_window(delivered_at: &str, now_ms: i64) -> bool {
    parse_rfc3339_utc(delivered_at).is_some_and(|secs| {
        now_ms.saturating_sub(secs.saturating_mul(1000)) < GITHUB_WINDOW_MS - WINDOW_MARGIN_MS
    })
}

/// True when the page (GitHub lists newest first) reached deliveries past the window:
/// reading further pages cannot find anything to redeliver.
pub fn past_window(page: &[HookDelivery], now_ms: i64) -> bool {
    page.last()
        .is_some_and(|d| !inside_window(&d.delivered_at, now_ms))
}

/// The failed deliveries among everything listed, one per `guid` (its newest attempt),
/// oldest first so a capped sweep recovers in arrival order.
pub fn failed(listed: &[HookDelivery], now_ms: i64) -> Vec<Candidate> {
    let mut by_guid: BTreeMap<&str, (bool, &HookDelivery)> = BTreeMap::new();
    for d in listed {
        let entry = by_guid.entry(&d.guid).or_insert((false, d));
        entry.0 |= d.succeeded();
        if d.id > entry.1.id {
            entry.1 = d;
        }
    }
    let mut out: Vec<(i64, Candidate)> = by_guid
        .into_values()
        .filter(|(ok, d)| !ok && inside_window(&d.delivered_at, now_ms))
        .map(|(_, d)| {
            (
                parse_rfc3339_utc(&d.delivered_at).unwrap_or_default(),
                Candidate {
                    guid: d.guid.clone(),
                    id: d.id,
                    installation_id: d.installation_id,
                    event: d.event.clone(),
                },
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    out.into_iter().map(|(_, c)| c).collect()
}

/// The attempts call for a candidate.
pub fn attempts_path(id: u64) -> String {
    format!("/app/hook/deliveries/{id}/attempts")
}

/// What one sweep of one app did, as the route and the log report it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub app_id: u64,
    /// Pages of GitHub's listing read.
    pub pages: u32,
    /// Deliveries listed.
    pub listed: u32,
    /// Distinct deliveries GitHub marks failed, inside the window.
    pub failed: u32,
    /// Of those, already processed by ghplane (nothing to do).
    pub processed: u32,
    /// Of those, already asked for by an earlier sweep.
    pub already_requested: u32,
    /// Redeliveries asked for now.
    pub requested: u32,
    /// Asks GitHub refused or that failed (tried again by the next sweep).
    pub request_errors: u32,
    /// True when a bound (pages, time, requests) stopped the sweep early.
    pub truncated: bool,
    /// A failure that ended the sweep (e.g. GitHub's listing failed), as a stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2023-11-14T22:13:20Z
    const NOW: i64 = 1_700_000_000_000;

    fn d(id: u64, guid: &str, at: &str, status: &str) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.into(),
            delivered_at: at.into(),
            status: status.into(),
            event: Some("issues".into()),
            installation_id: Some(7),
        }
    }

    #[test]
    fn one_candidate_per_failed_guid_none_for_a_later_success() {
        let listed = [
            d(5, "c", "2023-11-14T22:00:00Z", "Invalid HTTP Response: 503"),
            d(4, "b", "2023-11-14T21:00:00Z", "OK"),
            d(3, "b", "2023-11-14T20:00:00Z", "Invalid HTTP Response: 500"),
            d(2, "a", "2023-11-14T19:00:00Z", "timed out"),
            d(1, "a", "2023-11-14T18:00:00Z", "Invalid HTTP Response: 500"),
        ];
        let got = failed(&listed, NOW);
        let ids: Vec<(&str, u64)> = got.iter().map(|c| (c.guid.as_str(), c.id)).collect();
        assert_eq!(
            ids,
            [("a", 2), ("c", 5)],
            "b succeeded on redelivery; a uses its newest attempt; oldest first"
        );
        assert_eq!(got[0].installation_id, Some(7));
    }

    #[test]
    fn outside_githubs_window_is_left_alone() {
        let listed = [
            d(2, "new", "2023-11-12T22:13:20Z", "failed to connect"),
            d(1, "old", "2023-11-11T22:13:20Z", "failed to connect"),
        ];
        let got: Vec<String> = failed(&listed, NOW).into_iter().map(|c| c.guid).collect();
        assert_eq!(got, ["new"]);
        assert!(past_window(&listed, NOW));
        assert!(!past_window(&listed[..1], NOW));
        assert!(!past_window(&[], NOW));
        assert!(
            !inside_window("2023-11-11T22:20:00Z", NOW),
            "inside the margin"
        );
        assert!(!inside_window("not a date", NOW));
    }

    #[test]
    fn listing_parses_githubs_example() {
        let body = r#"[{"id": 12345678, "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516", "delivered_at": "2019-06-03T00:57:16Z", "redelivery": false, "duration": 0.27, "status": "OK", "status_code": 200, "event": "issues", "action": "opened", "installation_id": 123, "repository_id": 456, "throttled_at": "2019-06-03T00:57:16Z"},
            {"id": 1, "guid": "g", "delivered_at": "2019-06-03T00:57:16Z", "status": "failed", "status_code": 0, "event": "ping", "installation_id": null}]"#;
        let listed: Vec<HookDelivery> = serde_json::from_str(body).unwrap();
        assert_eq!(listed[0].installation_id, Some(123));
        assert_eq!(listed[1].installation_id, None);
        assert_eq!(
            attempts_path(12345678),
            "/app/hook/deliveries/12345678/attempts"
        );
        assert_eq!(first_page_path(), "/app/hook/deliveries?per_page=100");
    }
}
