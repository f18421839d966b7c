//! Who may handle a delivery id: the dedupe decision, taken before any side effect.
//!
//! **Invariant:** a delivery has at most one handler at a time and, once one finished
//! without failing, no other: a redelivery of a finished delivery is a duplicate. A handler
//! that never finished (its isolate was evicted, a new version was deployed, it threw)
//! leaves its claim `processing`; after [`DEFAULT_LEASE_MS`] (the `DELIVERY_LEASE_SECONDS`
//! setting) that claim is taken over, so GitHub's redelivery is processed. A claim still
//! inside its lease is treated as a duplicate: it is being handled now.

use crate::webhook::DeliveryOutcome;

/// How long a handler owns a delivery id it claimed: longer than any handling takes (its
/// GitHub calls wait out at most ten seconds of rate limit and three retries).
pub const DEFAULT_LEASE_MS: i64 = 120_000;
/// The shortest lease the setting accepts: below it a slow but live handler could be
/// overtaken and the delivery handled twice.
pub const MIN_LEASE_MS: i64 = 5_000;

/// What the key table holds of a delivery id already seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A handler claimed it at `claimed_at_ms` and has not finished.
    Processing { claimed_at_ms: i64 },
    /// Its handling ended with this outcome.
    Finished(DeliveryOutcome),
}

/// The decision for a delivery id about to be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Never seen: claim it, attempt 1.
    Fresh,
    /// Its last handling failed: claim it again.
    RetryFailed,
    /// A handler claimed it and vanished (its lease is over): take it over.
    LeaseExpired,
    /// Finished without failing, or being handled right now: answer `duplicate`, do nothing.
    Duplicate,
}

impl ClaimDecision {
    /// True when this caller now owns the delivery and must handle it.
    pub fn owns(self) -> bool {
        !matches!(self, ClaimDecision::Duplicate)
    }
}

/// Decides whether the caller may handle a delivery that the key table knows as `seen`.
pub fn decide(seen: Option<Seen>, now_ms: i64, lease_ms: i64) -> ClaimDecision {
    match seen {
        None => ClaimDecision::Fresh,
        Some(Seen::Finished(DeliveryOutcome::Failed)) => ClaimDecision::RetryFailed,
        Some(Seen::Finished(_)) => ClaimDecision::Duplicate,
        Some(Seen::Processing { claimed_at_ms }) => {
            if now_ms.saturating_sub(claimed_at_ms) >= lease_ms {
                ClaimDecision::LeaseExpired
            } else {
                ClaimDecision::Duplicate
            }
        }
    }
}

/// Reads a stored key back: `processing` or a [`DeliveryOutcome`] string. `None` for a
/// value no version of ghplane wrote.
pub fn seen_from_stored(outcome: &str, claimed_at_ms: i64) -> Option<Seen> {
    if outcome == PROCESSING {
        return Some(Seen::Processing { claimed_at_ms });
    }
    DeliveryOutcome::parse(outcome).map(Seen::Finished)
}

/// The stored outcome of a claim whose handling has not finished.
pub const PROCESSING: &str = "processing";

/// The key table's row of a delivery id, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredClaim<'a> {
    pub outcome: &'a str,
    pub claimed_at_ms: i64,
    pub attempts: u32,
}

/// The claim of a delivery id: the decision and, when the caller owns it, the attempt it
/// runs (1 for the first) and writes back as `processing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub decision: ClaimDecision,
    pub attempt: Option<u32>,
}

/// Decides a claim over the key table's row of the delivery id (`None` when it has none).
/// A row holding a value no version wrote is a duplicate: never act twice on it.
pub fn claim_stored(stored: Option<StoredClaim>, now_ms: i64, lease_ms: i64) -> Claimed {
    let decision = match stored {
        None => ClaimDecision::Fresh,
        Some(row) => match seen_from_stored(row.outcome, row.claimed_at_ms) {
            Some(seen) => decide(Some(seen), now_ms, lease_ms),
            None => ClaimDecision::Duplicate,
        },
    };
    let attempt = decision
        .owns()
        .then(|| stored.map_or(1, |row| row.attempts.saturating_add(1)));
    Claimed { decision, attempt }
}

/// The lease from the `DELIVERY_LEASE_SECONDS` setting: unset → the default; a number of
/// seconds of at least [`MIN_LEASE_MS`]; anything else is a misconfiguration (`None`).
pub fn lease_ms(setting: Option<&str>) -> Option<i64> {
    match setting {
        None => Some(DEFAULT_LEASE_MS),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .filter(|ms| *ms >= MIN_LEASE_MS),
    }
}

/// Would a redelivery of this delivery be processed? True when ghplane never recorded it,
/// its handling failed, or its handler vanished: the sweep asks GitHub to redeliver only
/// those (see [`crate::webhook::redelivery`]).
pub fn needs_redelivery(seen: Option<Seen>, now_ms: i64, lease_ms: i64) -> bool {
    decide(seen, now_ms, lease_ms).owns()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const LEASE: i64 = DEFAULT_LEASE_MS;

    #[test]
    fn a_new_id_is_fresh() {
        assert_eq!(decide(None, NOW, LEASE), ClaimDecision::Fresh);
        assert!(ClaimDecision::Fresh.owns());
    }

    #[test]
    fn a_finished_delivery_stays_a_duplicate_forever() {
        for o in [
            DeliveryOutcome::Accepted,
            DeliveryOutcome::Ignored,
            DeliveryOutcome::Throttled,
            DeliveryOutcome::Duplicate,
        ] {
            let seen = Some(Seen::Finished(o));
            assert_eq!(decide(seen, NOW, LEASE), ClaimDecision::Duplicate, "{o}");
            assert_eq!(
                decide(seen, NOW + 365 * 86_400_000, LEASE),
                ClaimDecision::Duplicate,
                "{o}, a year later"
            );
        }
        assert!(!ClaimDecision::Duplicate.owns());
    }

    #[test]
    fn a_failed_delivery_is_claimed_again() {
        let seen = Some(Seen::Finished(DeliveryOutcome::Failed));
        assert_eq!(decide(seen, NOW, LEASE), ClaimDecision::RetryFailed);
    }

    #[test]
    fn a_claim_in_flight_is_a_duplicate_until_its_lease_ends() {
        let at = |claimed_at_ms| Some(Seen::Processing { claimed_at_ms });
        assert_eq!(decide(at(NOW), NOW, LEASE), ClaimDecision::Duplicate);
        assert_eq!(
            decide(at(NOW - LEASE + 1), NOW, LEASE),
            ClaimDecision::Duplicate
        );
        assert_eq!(
            decide(at(NOW - LEASE), NOW, LEASE),
            ClaimDecision::LeaseExpired
        );
        assert_eq!(
            decide(at(NOW - 10 * LEASE), NOW, LEASE),
            ClaimDecision::LeaseExpired
        );
        assert_eq!(
            decide(at(NOW + 60_000), NOW, LEASE),
            ClaimDecision::Duplicate,
            "a claim stamped in the future (clock step) is still in flight"
        );
        assert_eq!(
            decide(at(i64::MIN), i64::MAX, LEASE),
            ClaimDecision::LeaseExpired,
            "no overflow"
        );
    }

    fn row(outcome: &str, claimed_at_ms: i64, attempts: u32) -> Option<StoredClaim<'_>> {
        Some(StoredClaim {
            outcome,
            claimed_at_ms,
            attempts,
        })
    }

    #[test]
    fn a_new_delivery_is_claimed_as_attempt_one() {
        assert_eq!(
            claim_stored(None, NOW, LEASE),
            Claimed {
                decision: ClaimDecision::Fresh,
                attempt: Some(1)
            }
        );
    }

    #[test]
    fn a_failed_claim_stays_claimable_and_the_second_attempt_is_accepted() {
        // The first attempt failed: its row says so, and the redelivery owns attempt 2.
        let second = claim_stored(row("failed", NOW - 60_000, 1), NOW, LEASE);
        assert_eq!(second.decision, ClaimDecision::RetryFailed);
        assert_eq!(second.attempt, Some(2));
        // It failed again: still claimable, as attempt 3.
        let third = claim_stored(row("failed", NOW, 2), NOW + 1, LEASE);
        assert_eq!(third.attempt, Some(3));
        // The second attempt finished: its row reads accepted, and it stays done.
        let after = claim_stored(row("accepted", NOW, 2), NOW + 1, LEASE);
        assert_eq!(
            after,
            Claimed {
                decision: ClaimDecision::Duplicate,
                attempt: None
            }
        );
    }

    #[test]
    fn a_done_claim_is_a_duplicate() {
        for done in ["accepted", "ignored", "throttled", "duplicate"] {
            let c = claim_stored(row(done, NOW, 1), NOW + 365 * 86_400_000, LEASE);
            assert_eq!(c.decision, ClaimDecision::Duplicate, "{done}");
            assert_eq!(c.attempt, None, "{done}");
        }
    }

    #[test]
    fn an_expired_lease_is_reclaimable() {
        let inside = claim_stored(row(PROCESSING, NOW - LEASE + 1, 1), NOW, LEASE);
        assert_eq!(inside.decision, ClaimDecision::Duplicate, "in flight");
        assert_eq!(inside.attempt, None);
        let over = claim_stored(row(PROCESSING, NOW - LEASE, 1), NOW, LEASE);
        assert_eq!(over.decision, ClaimDecision::LeaseExpired);
        assert_eq!(over.attempt, Some(2));
    }

    #[test]
    fn a_row_no_version_wrote_is_never_acted_on() {
        let c = claim_stored(row("Processing", 0, 1), NOW, LEASE);
        assert_eq!(c.decision, ClaimDecision::Duplicate);
        assert_eq!(
            claim_stored(row("failed", NOW, u32::MAX), NOW, LEASE).attempt,
            Some(u32::MAX),
            "the attempt count saturates"
        );
    }

    #[test]
    fn stored_values_read_back() {
        assert_eq!(
            seen_from_stored("processing", 7),
            Some(Seen::Processing { claimed_at_ms: 7 })
        );
        assert_eq!(
            seen_from_stored("accepted", 7),
            Some(Seen::Finished(DeliveryOutcome::Accepted))
        );
        assert_eq!(
            seen_from_stored("failed", 7),
            Some(Seen::Finished(DeliveryOutcome::Failed))
        );
        assert_eq!(seen_from_stored("Processing", 7), None);
    }

    #[test]
    fn the_lease_setting_has_a_floor() {
        assert_eq!(lease_ms(None), Some(120_000));
        assert_eq!(lease_ms(Some("300")), Some(300_000));
        assert_eq!(lease_ms(Some(" 5 ")), Some(5_000));
        assert_eq!(lease_ms(Some("4")), None, "below the minimum");
        assert_eq!(lease_ms(Some("0")), None);
        assert_eq!(lease_ms(Some("-10")), None);
        assert_eq!(lease_ms(Some("2m")), None);
        assert_eq!(lease_ms(Some("99999999999999999")), None);
    }

    #[test]
    fn only_what_a_redelivery_would_process_is_redelivered() {
        assert!(needs_redelivery(None, NOW, LEASE));
        assert!(needs_redelivery(
            Some(Seen::Finished(DeliveryOutcome::Failed)),
            NOW,
            LEASE
        ));
        assert!(needs_redelivery(
            Some(Seen::Processing {
                claimed_at_ms: NOW - LEASE
            }),
            NOW,
            LEASE
        ));
        assert!(!needs_redelivery(
            Some(Seen::Processing { claimed_at_ms: NOW }),
            NOW,
            LEASE
        ));
        assert!(!needs_redelivery(
            Some(Seen::Finished(DeliveryOutcome::Accepted)),
            NOW,
            LEASE
        ));
    }
}
