//! How long delivery records are kept, how many, and what they say.
//!
//! **Invariant:** a delivery's dedupe key (its id and outcome, a compact row apart from the
//! verbose log) lives [`RETENTION_MS`] whatever the volume, so a redelivery within GitHub's
//! window is always recognised as a duplicate. The verbose delivery log lives as long but
//! at most [`MAX_DELIVERY_RECORDS`] rows per object (the `DELIVERY_LOG_MAX_ROWS` setting):
//! its oldest rows go first, so it stays bounded for the admin's listing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Seven days: longer than GitHub keeps deliveries available for manual redelivery (3 days).
pub const RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Rows of the verbose delivery log one object keeps by default, whatever their age. The
/// dedupe keys are not capped: a busy installation loses old log rows, never dedupe.
pub const MAX_DELIVERY_RECORDS: usize = 10_000;
/// Bounds of `DELIVERY_LOG_MAX_ROWS`.
pub const MIN_LOG_ROWS: usize = 100;
pub const MAX_LOG_ROWS: usize = 1_000_000;

/// The log's cap from the `DELIVERY_LOG_MAX_ROWS` setting: unset → the default; a whole
/// number within [`MIN_LOG_ROWS`]..=[`MAX_LOG_ROWS`]; anything else is a misconfiguration
/// (`None`).
pub fn log_cap(setting: Option<&str>) -> Option<usize> {
    match setting {
        None => Some(MAX_DELIVERY_RECORDS),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (MIN_LOG_ROWS..=MAX_LOG_ROWS).contains(n)),
    }
}

/// True once a record received at `received_ms` has been kept its full retention. A
/// record stamped in the future is kept.
pub fn expired(received_ms: i64, now_ms: i64) -> bool {
    now_ms.saturating_sub(received_ms) >= RETENTION_MS
}

/// What became of a delivery; stored with its record and returned to GitHub's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Verified and acted on (or queued).
    Accepted,
    /// The delivery id was already recorded: nothing is done twice.
    Duplicate,
    /// Verified, but nothing to do (see [`crate::webhook::IgnoreReason`]).
    Ignored,
    /// Verified, but carrying it out failed.
    Failed,
    /// Verified, but over the installation's containers-per-hour quota.
    Throttled,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 5] = [
        DeliveryOutcome::Accepted,
        DeliveryOutcome::Duplicate,
        DeliveryOutcome::Ignored,
        DeliveryOutcome::Failed,
        DeliveryOutcome::Throttled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Accepted => "accepted",
            DeliveryOutcome::Duplicate => "duplicate",
            DeliveryOutcome::Ignored => "ignored",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Throttled => "throttled",
        }
    }

    /// For reading a stored record back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for DeliveryOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn kept_at_least_seven_days() {
        assert!(!expired(NOW, NOW));
        assert!(!expired(NOW - RETENTION_MS + 1, NOW));
        assert!(expired(NOW - RETENTION_MS, NOW));
        assert!(expired(NOW - RETENTION_MS - 1, NOW));
        assert!(!expired(NOW + 1000, NOW), "future stamps are kept");
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        assert!(expired(i64::MIN, i64::MAX));
        assert!(!expired(i64::MAX, i64::MIN));
    }

    #[test]
    fn the_log_cap_is_a_bounded_setting() {
        assert_eq!(log_cap(None), Some(10_000));
        assert_eq!(log_cap(Some("100")), Some(100));
        assert_eq!(log_cap(Some(" 250000 ")), Some(250_000));
        assert_eq!(log_cap(Some("99")), None);
        assert_eq!(log_cap(Some("1000001")), None);
        assert_eq!(log_cap(Some("-1")), None);
        assert_eq!(log_cap(Some("lots")), None);
    }

    #[test]
    fn outcome_strings_are_stable() {
        let strings: Vec<_> = DeliveryOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            strings,
            ["accepted", "duplicate", "ignored", "failed", "throttled"]
        );
        for o in DeliveryOutcome::ALL {
            assert_eq!(DeliveryOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
            assert_eq!(o.to_string(), o.as_str());
        }
        assert_eq!(DeliveryOutcome::parse("Accepted"), None);
    }
}
