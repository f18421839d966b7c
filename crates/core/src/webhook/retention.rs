//! How long delivery records (the dedupe keys) are kept, how many, and what they say.
//!
//! **Invariant:** a record lives at least [`RETENTION_MS`], so a redelivery within GitHub's
//! window is recognised as a duplicate, unless its object holds more than
//! [`MAX_DELIVERY_RECORDS`]: then the oldest go first, so storage stays bounded.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Seven days: longer than GitHub keeps deliveries available for manual redelivery (3 days).
pub const RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Records one object keeps, whatever their age. An installation outgrows it within a week
/// only by receiving about a delivery a minute all week long.
pub const MAX_DELIVERY_RECORDS: usize = 10_000;

/// True once a record received at `received_ms` has been kept its full retention. A
/// record stamped in the future is kept.
pub fn expired(received_ms: i64, now_ms: i64) -> bool {
    now_ms.saturating_sub(received_ms) >= RETENTION_MS
}

/// How many of the oldest records to delete so `count` fits under the cap.
pub fn over_cap(count: usize) -> usize {
    count.saturating_sub(MAX_DELIVERY_RECORDS)
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
    fn cap_bounds_storage() {
        assert_eq!(over_cap(0), 0);
        assert_eq!(over_cap(MAX_DELIVERY_RECORDS), 0);
        assert_eq!(over_cap(MAX_DELIVERY_RECORDS + 3), 3);
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
