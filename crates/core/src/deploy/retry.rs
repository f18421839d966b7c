//! When a project's deploy object tries again after a failure of its own: a job (creating the
//! GitHub deployment, mirroring a status) that failed, or the alarm handler itself.
//!
//! Invariants: every retry is bounded and spaced (no tight loop, however the failure
//! repeats); a rate limit is never retried before GitHub's `Retry-After` (or a minute when
//! GitHub gave none, its documented rule); after the bound the caller ends what was waiting
//! (the running deployment ends `error` with the reason), so no project stays locked.

use serde::{Deserialize, Serialize};

use super::hook::HOOK_RETRY_DELAYS_MS;
use crate::error::ApiError;

/// GitHub's rule for a rate limit that names no time: wait at least a minute.
pub const RATE_LIMIT_DEFAULT_WAIT_MS: u64 = 60_000;
/// The first wait after an alarm handler failed; doubled after each further failure.
pub const ALARM_RETRY_BASE_MS: i64 = 2_000;
pub const ALARM_RETRY_CAP_MS: i64 = 60_000;
/// Consecutive alarm failures after which the object stops waiting for itself to heal: about
/// two minutes of tries at the base and cap above.
pub const MAX_ALARM_FAILURES: u32 = 6;

/// How a job's try failed, as far as its next try is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobFailure {
    /// GitHub said "rate limited" (429, or 403 with the rate-limit signs).
    pub rate_limited: bool,
    /// GitHub's `Retry-After` (or the time until `x-ratelimit-reset`), when it gave one.
    pub retry_after_secs: Option<u64>,
}

/// Whether GitHub refused for its rate limit (so it did not process the request).
pub fn is_rate_limited(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Github(crate::github::error::GithubError::RateLimited { .. })
    )
}

impl JobFailure {
    /// How `e` bears on the next try.
    pub fn of(e: &ApiError) -> JobFailure {
        JobFailure {
            rate_limited: is_rate_limited(e),
            retry_after_secs: e.retry_after_secs(),
        }
    }
}

/// The wait before the next try of a job that has now failed `failed_tries` times (1 after
/// the first), or `None` to give up: the hook's schedule, but never sooner than GitHub asked.
pub fn job_retry_delay_ms(failed_tries: u32, failure: JobFailure) -> Option<u64> {
    let scheduled = *HOOK_RETRY_DELAYS_MS.get(failed_tries.checked_sub(1)? as usize)?;
    let asked = failure
        .retry_after_secs
        .map(|s| s.saturating_mul(1000))
        .or(failure.rate_limited.then_some(RATE_LIMIT_DEFAULT_WAIT_MS))
        .unwrap_or(0);
    Some(scheduled.max(asked))
}

/// When each queued job may run, given in queue order as `(order key, due time)`: a job never
/// runs before an earlier job with the same key (the statuses of one GitHub deployment are
/// mirrored in the order they happened, so a status held back by a rate limit is not
/// overtaken by a later one). Jobs without a key only wait for themselves.
pub fn effective_due_times(jobs: &[(Option<u64>, i64)]) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::with_capacity(jobs.len());
    for (i, (key, due)) in jobs.iter().enumerate() {
        let behind = key.and_then(|k| (0..i).rev().find(|&j| jobs[j].0 == Some(k)).map(|j| out[j]));
        out.push(behind.map_or(*due, |b| b.max(*due)));
    }
    out
}

/// The alarm handler's consecutive failures, stored beside the machine (reset on success).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AlarmFailures {
    pub count: u32,
    /// The stable error code of the last failure (never a message: no secret can leak).
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmRecovery {
    /// Ring again then.
    RetryAt { at_ms: i64 },
    /// The bound is reached: end the running deployment with this reason, drop the jobs that
    /// were due, and start counting afresh.
    GiveUp { reason: String },
}

impl AlarmFailures {
    /// Records one more failure (with its error code) at `now_ms` and says what to do.
    pub fn record(&mut self, error_code: &str, now_ms: i64) -> AlarmRecovery {
        self.count = self.count.saturating_add(1);
        self.last_error = Some(error_code.to_owned());
        if self.count >= MAX_ALARM_FAILURES {
            let reason = format!(
                "the deploy alarm failed {} times in a row (last: {error_code})",
                self.count
            );
            *self = AlarmFailures::default();
            return AlarmRecovery::GiveUp { reason };
        }
        let wait = ALARM_RETRY_BASE_MS
            .saturating_mul(1 << (self.count - 1).min(20))
            .min(ALARM_RETRY_CAP_MS);
        AlarmRecovery::RetryAt {
            at_ms: now_ms + wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn a_failed_job_follows_the_hook_schedule_then_gives_up() {
        let plain = JobFailure::default();
        let waits: Vec<Option<u64>> = (0..=4).map(|n| job_retry_delay_ms(n, plain)).collect();
        assert_eq!(waits, [None, Some(1_000), Some(4_000), Some(16_000), None]);
    }

    #[test]
    fn a_rate_limit_waits_the_larger_of_the_schedule_and_retry_after() {
        let after = |secs| JobFailure {
            rate_limited: true,
            retry_after_secs: Some(secs),
        };
        assert_eq!(job_retry_delay_ms(1, after(30)), Some(30_000));
        assert_eq!(job_retry_delay_ms(3, after(2)), Some(16_000));
        assert_eq!(job_retry_delay_ms(1, after(0)), Some(1_000));
        // Without Retry-After or a reset time: GitHub's minute.
        let bare = JobFailure {
            rate_limited: true,
            retry_after_secs: None,
        };
        assert_eq!(job_retry_delay_ms(1, bare), Some(60_000));
        // A 503 with Retry-After is honoured too.
        let unavailable = JobFailure {
            rate_limited: false,
            retry_after_secs: Some(120),
        };
        assert_eq!(job_retry_delay_ms(2, unavailable), Some(120_000));
        // Still bounded.
        assert_eq!(job_retry_delay_ms(4, bare), None);
    }

    #[test]
    fn a_job_waits_for_the_earlier_jobs_of_its_key() {
        let jobs = [
            (Some(1), T0 + 60_000), // a status held back by a rate limit
            (None, T0),             // a dispatch: independent
            (Some(2), T0),          // another deployment's status
            (Some(1), T0),          // deployment 1's next status waits for the first
            (Some(1), T0 + 90_000),
        ];
        assert_eq!(
            effective_due_times(&jobs),
            [T0 + 60_000, T0, T0, T0 + 60_000, T0 + 90_000]
        );
        assert!(effective_due_times(&[]).is_empty());
    }

    #[test]
    fn alarm_failures_back_off_then_give_up() {
        let mut f = AlarmFailures::default();
        let mut waits = Vec::new();
        for n in 1..MAX_ALARM_FAILURES {
            match f.record("storage_error", T0) {
                AlarmRecovery::RetryAt { at_ms } => waits.push(at_ms - T0),
                other => panic!("failure {n}: {other:?}"),
            }
        }
        assert_eq!(waits, [2_000, 4_000, 8_000, 16_000, 32_000]);
        assert_eq!(f.last_error.as_deref(), Some("storage_error"));
        assert_eq!(
            f.record("server_misconfigured", T0),
            AlarmRecovery::GiveUp {
                reason: "the deploy alarm failed 6 times in a row (last: server_misconfigured)"
                    .into()
            }
        );
        assert_eq!(f, AlarmFailures::default(), "counting starts afresh");
    }

    #[test]
    fn a_stored_count_past_the_bound_gives_up_at_once() {
        // E.g. a count stored under an older, larger bound.
        let mut f = AlarmFailures {
            count: 40,
            last_error: None,
        };
        assert!(matches!(f.record("x", T0), AlarmRecovery::GiveUp { .. }));
        assert_eq!(f.count, 0);
    }

    #[test]
    fn failures_round_trip_through_storage() {
        let f = AlarmFailures {
            count: 2,
            last_error: Some("storage_error".into()),
        };
        let back: AlarmFailures =
            serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }
}
