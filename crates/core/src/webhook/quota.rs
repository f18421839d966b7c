//! Containers per hour: a sliding one-hour window over the start times of past containers.
//!
//! **Invariant:** at most `max_per_hour` starts fall in any window `(now - 1h, now]`, and a
//! history that is pruned before each write never holds more than the window's entries.

pub const HOUR_MS: i64 = 60 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Try again after `retry_after_ms` (at least 1), when the oldest start that blocks
    /// this one leaves the window.
    Throttled {
        retry_after_ms: i64,
    },
}

/// Whether one more container may start at `now_ms`. `history_ms` need not be sorted or
/// pruned. Starts stamped after `now_ms` (another isolate's clock running ahead) count as
/// inside the window: skew must not buy extra containers.
pub fn admit(history_ms: &[i64], now_ms: i64, max_per_hour: u32) -> Admission {
    if max_per_hour == 0 {
        return Admission::Throttled {
            retry_after_ms: HOUR_MS,
        };
    }
    let mut recent: Vec<i64> = history_ms
        .iter()
        .copied()
        .filter(|&t| in_window(t, now_ms))
        .collect();
    let max = max_per_hour as usize;
    if recent.len() < max {
        return Admission::Admitted;
    }
    // A slot opens once only `max - 1` recent starts remain, that is when the oldest
    // `len - max + 1` have left: when the one at 0-based index `len - max` turns an hour old.
    let k = recent.len() - max;
    let (_, &mut blocking, _) = recent.select_nth_unstable(k);
    Admission::Throttled {
        retry_after_ms: blocking
            .saturating_add(HOUR_MS)
            .saturating_sub(now_ms)
            .max(1),
    }
}

/// Drops starts an hour old or older, so stored history stays bounded by the limit.
pub fn prune(history_ms: &mut Vec<i64>, now_ms: i64) {
    history_ms.retain(|&t| in_window(t, now_ms));
}

/// Prunes, decides, and records the start when admitted: the one call a store makes.
pub fn take(history_ms: &mut Vec<i64>, now_ms: i64, max_per_hour: u32) -> Admission {
    prune(history_ms, now_ms);
    let admission = admit(history_ms, now_ms, max_per_hour);
    if admission == Admission::Admitted {
        history_ms.push(now_ms);
    }
    admission
}

fn in_window(t: i64, now_ms: i64) -> bool {
    t > now_ms.saturating_sub(HOUR_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn admits_below_the_limit() {
        assert_eq!(admit(&[], NOW, 1), Admission::Admitted);
        assert_eq!(admit(&[NOW - 10, NOW - 20], NOW, 3), Admission::Admitted);
    }

    #[test]
    fn throttles_at_the_limit_until_the_oldest_leaves() {
        let h = [NOW - 30 * 60_000, NOW - 10 * 60_000];
        assert_eq!(
            admit(&h, NOW, 2),
            Admission::Throttled {
                retry_after_ms: 30 * 60_000
            }
        );
        // Order does not matter.
        assert_eq!(admit(&[h[1], h[0]], NOW, 2), admit(&h, NOW, 2));
        // After waiting, it is admitted.
        assert_eq!(admit(&h, NOW + 30 * 60_000, 2), Admission::Admitted);
        assert_ne!(admit(&h, NOW + 30 * 60_000 - 1, 2), Admission::Admitted);
    }

    #[test]
    fn over_the_limit_waits_for_enough_to_leave() {
        // Five starts against a limit of two (the limit was lowered): four must leave,
        // the fourth oldest being two minutes old.
        let h: Vec<i64> = (1..=5).map(|m| NOW - m * 60_000).collect();
        assert_eq!(
            admit(&h, NOW, 2),
            Admission::Throttled {
                retry_after_ms: HOUR_MS - 2 * 60_000
            }
        );
    }

    #[test]
    fn the_window_is_exactly_one_hour() {
        assert_eq!(admit(&[NOW - HOUR_MS], NOW, 1), Admission::Admitted);
        assert_eq!(
            admit(&[NOW - HOUR_MS + 1], NOW, 1),
            Admission::Throttled { retry_after_ms: 1 }
        );
    }

    #[test]
    fn zero_admits_nothing() {
        assert!(matches!(admit(&[], NOW, 0), Admission::Throttled { .. }));
        let mut h = vec![];
        assert!(matches!(take(&mut h, NOW, 0), Admission::Throttled { .. }));
        assert!(h.is_empty());
    }

    #[test]
    fn future_stamps_count_and_retry_is_positive() {
        let h = [NOW + 5 * 60_000];
        assert_eq!(
            admit(&h, NOW, 1),
            Admission::Throttled {
                retry_after_ms: HOUR_MS + 5 * 60_000
            }
        );
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        assert_eq!(
            admit(&[i64::MIN, i64::MAX], i64::MIN, 5),
            Admission::Admitted
        );
        assert!(matches!(
            admit(&[i64::MAX], i64::MIN, 1),
            Admission::Throttled { retry_after_ms } if retry_after_ms > 0
        ));
        let mut h = vec![i64::MIN, 0, i64::MAX];
        prune(&mut h, i64::MAX);
        assert_eq!(h, [i64::MAX]);
    }

    #[test]
    fn prune_keeps_only_the_last_hour() {
        let mut h = vec![NOW - HOUR_MS - 1, NOW - HOUR_MS, NOW - HOUR_MS + 1, NOW];
        prune(&mut h, NOW);
        assert_eq!(h, [NOW - HOUR_MS + 1, NOW]);
    }

    #[test]
    fn take_records_and_stays_bounded() {
        let mut h = Vec::new();
        let mut admitted = 0;
        // One attempt a second for three hours against 10 per hour.
        for s in 0..3 * 3600 {
            if take(&mut h, NOW + s * 1000, 10) == Admission::Admitted {
                admitted += 1;
            }
            assert!(h.len() <= 10);
        }
        assert_eq!(admitted, 30);
    }
}
