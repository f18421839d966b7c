//! What a linked branch has already moved past, learnt from the `before` → `after` of every
//! push received (in the order received, whatever the delivery ids), so that a late push
//! (a redelivery under a new delivery id, a second hook on the same repository, a push that
//! overtook its predecessor) never moves the deployed branch backwards.
//!
//! Invariants:
//! - a push whose `after` the branch already moved past, or that is already the branch head,
//!   is stale: it deploys nothing;
//! - a force push (`forced: true`) is a deliberate move, back or sideways: it is taken even
//!   onto a sha the branch moved past, unless the branch has since moved away from the sha it
//!   started from (then it is itself a late delivery);
//! - memory is bounded: at most [`MAX_PAST_SHAS`] shas are remembered, oldest forgotten
//!   first.
//!
//! Only `before`/`after` are used: git ancestry is not known here. So after a rollback to S3
//! the commits rolled away from (S4, S5) stay "moved past": pushing them again fast-forward
//! deploys nothing; a new commit on top, or a force push, deploys.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// About 10 KiB of shas: far more than the pushes of any burst or redelivery window.
pub const MAX_PAST_SHAS: usize = 256;

/// One push as the branch history sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step<'a> {
    /// The branch head before the push (all zeros when the push created the branch).
    pub before: &'a str,
    /// The branch head after the push.
    pub after: &'a str,
    pub forced: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The branch moves to `after`: deploy it.
    Moves,
    /// A push the branch already moved past (or is at): deploy nothing.
    Stale,
}

/// The history of one linked branch, stored with the project's deploy machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BranchHistory {
    /// The `after` of the newest push taken.
    head: Option<String>,
    /// Shas the branch moved away from, oldest first.
    past: VecDeque<String>,
}

fn is_zero(sha: &str) -> bool {
    sha.bytes().all(|b| b == b'0')
}

impl BranchHistory {
    pub fn new() -> BranchHistory {
        BranchHistory::default()
    }

    pub fn head(&self) -> Option<&str> {
        self.head.as_deref()
    }

    /// Whether the branch has moved away from `sha`.
    pub fn moved_past(&self, sha: &str) -> bool {
        self.past.iter().any(|p| p == sha)
    }

    /// Learns from one push, in the order received, and says whether it moves the branch.
    /// `already_deployed` says that `after` was deployed already (the deploy machine's own
    /// memory, which outlives this one's for the shas it deployed): a plain push never deploys
    /// such a sha again.
    pub fn observe(&mut self, step: Step<'_>, already_deployed: bool) -> Verdict {
        let at_head = self.head.as_deref() == Some(step.after);
        let stale = if step.forced {
            // A force push starts at the head of its time; if the branch has moved away from
            // there since, this is a late delivery of an old force push.
            at_head || self.moved_past(step.before)
        } else {
            at_head || already_deployed || self.moved_past(step.after)
        };
        // Whatever the verdict, the branch was at `before` and left it (unless `before` is
        // where it is now: a late push from the current head to a sha it moved past).
        if self.head.as_deref() != Some(step.before) {
            self.remember(step.before);
        }
        if stale {
            return Verdict::Stale;
        }
        if let Some(head) = self.head.take() {
            if head != step.after {
                self.remember(&head);
            }
        }
        // A force push back to a sha the branch had left makes it the head again.
        self.past.retain(|p| p != step.after);
        self.head = Some(step.after.to_owned());
        Verdict::Moves
    }

    /// An admin's redeploy of `sha`, the branch head as GitHub reported it: stale if the
    /// branch already moved past it (a newer push was received: GitHub's answer is older),
    /// else `sha` is the head from now on (a push not received yet may have put it there).
    pub fn redeploy(&mut self, sha: &str) -> Verdict {
        if self.moved_past(sha) {
            return Verdict::Stale;
        }
        if let Some(head) = self.head.take() {
            if head != sha {
                self.remember(&head);
            }
        }
        self.head = Some(sha.to_owned());
        Verdict::Moves
    }

    fn remember(&mut self, sha: &str) {
        if is_zero(sha) || sha.is_empty() || self.moved_past(sha) {
            return;
        }
        self.past.push_back(sha.to_owned());
        if self.past.len() > MAX_PAST_SHAS {
            self.past.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO: &str = "0000000000000000000000000000000000000000";

    fn s(n: u64) -> String {
        format!("{n:040x}")
    }

    fn step<'a>(before: &'a str, after: &'a str) -> Step<'a> {
        Step {
            before,
            after,
            forced: false,
        }
    }

    fn forced<'a>(before: &'a str, after: &'a str) -> Step<'a> {
        Step {
            before,
            after,
            forced: true,
        }
    }

    /// A branch pushed S1 → S2 → … → Sn, each received in order.
    fn pushed_to(n: u64) -> BranchHistory {
        let mut h = BranchHistory::new();
        assert_eq!(h.observe(step(ZERO, &s(1)), false), Verdict::Moves);
        for k in 2..=n {
            assert_eq!(h.observe(step(&s(k - 1), &s(k)), false), Verdict::Moves);
        }
        h
    }

    #[test]
    fn pushes_in_order_move_the_head() {
        let h = pushed_to(3);
        assert_eq!(h.head(), Some(s(3).as_str()));
        assert!(h.moved_past(&s(1)) && h.moved_past(&s(2)));
        assert!(!h.moved_past(&s(3)));
        assert!(
            !h.moved_past(ZERO),
            "a branch creation's zero sha is not a commit"
        );
    }

    #[test]
    fn a_late_redelivery_of_an_older_push_is_stale() {
        let mut h = pushed_to(3);
        let before = h.clone();
        assert_eq!(h.observe(step(&s(1), &s(2)), false), Verdict::Stale);
        assert_eq!(h.observe(step(ZERO, &s(1)), false), Verdict::Stale);
        assert_eq!(h, before, "nothing new was learnt");
    }

    #[test]
    fn a_redelivery_of_the_head_push_is_stale() {
        let mut h = pushed_to(3);
        assert_eq!(h.observe(step(&s(2), &s(3)), false), Verdict::Stale);
        assert_eq!(h.head(), Some(s(3).as_str()));
    }

    #[test]
    fn out_of_order_arrival_keeps_the_newest() {
        // S3 → S4 → S5 pushed; the push to S5 arrives before the push to S4.
        let mut h = pushed_to(3);
        assert_eq!(h.observe(step(&s(4), &s(5)), false), Verdict::Moves);
        assert_eq!(h.observe(step(&s(3), &s(4)), false), Verdict::Stale);
        assert_eq!(h.head(), Some(s(5).as_str()));
        assert!(h.moved_past(&s(3)) && h.moved_past(&s(4)));
        // The next push continues from S5.
        assert_eq!(h.observe(step(&s(5), &s(6)), false), Verdict::Moves);
    }

    #[test]
    fn a_sha_already_deployed_is_not_deployed_again_by_a_plain_push() {
        // The history was trimmed (or the push came through a gap): the machine's memory of
        // deployed shas still refuses it.
        let mut h = BranchHistory::new();
        assert_eq!(h.observe(step(&s(7), &s(8)), true), Verdict::Stale);
        assert_eq!(h.head(), None);
    }

    #[test]
    fn a_force_push_back_is_a_rollback_and_moves() {
        let mut h = pushed_to(5);
        assert_eq!(h.observe(forced(&s(5), &s(3)), true), Verdict::Moves);
        assert_eq!(h.head(), Some(s(3).as_str()));
        assert!(!h.moved_past(&s(3)), "the head is not behind itself");
        assert!(h.moved_past(&s(5)));
        // Its redelivery is stale, and so are the old pushes to S4 and S5.
        assert_eq!(h.observe(forced(&s(5), &s(3)), true), Verdict::Stale);
        assert_eq!(h.observe(step(&s(3), &s(4)), true), Verdict::Stale);
        assert_eq!(h.observe(step(&s(4), &s(5)), true), Verdict::Stale);
        assert_eq!(h.head(), Some(s(3).as_str()), "late pushes never moved it");
        // A new commit on top of the rollback deploys.
        assert_eq!(h.observe(step(&s(3), &s(9)), false), Verdict::Moves);
        // The force push redelivered once the branch moved on again is still stale.
        assert_eq!(h.observe(forced(&s(5), &s(3)), true), Verdict::Stale);
        assert_eq!(h.head(), Some(s(9).as_str()));
    }

    #[test]
    fn a_forced_push_to_a_new_sha_moves() {
        let mut h = pushed_to(2);
        assert_eq!(h.observe(forced(&s(2), &s(20)), false), Verdict::Moves);
        assert_eq!(h.head(), Some(s(20).as_str()));
        assert!(h.moved_past(&s(2)));
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let n = MAX_PAST_SHAS as u64 + 10;
        let h = pushed_to(n);
        assert_eq!(h.past.len(), MAX_PAST_SHAS);
        assert!(!h.moved_past(&s(1)), "the oldest are forgotten");
        assert!(h.moved_past(&s(n - 1)));
        let stored = serde_json::to_string(&h).unwrap();
        assert!(stored.len() < 12 * 1024, "{} bytes", stored.len());
    }

    #[test]
    fn round_trips_through_storage() {
        let h = pushed_to(4);
        let back: BranchHistory =
            serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert_eq!(
            serde_json::from_str::<BranchHistory>("{}").unwrap(),
            BranchHistory::new()
        );
    }
}
