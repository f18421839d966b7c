//! Where the mint's audit rows live: not one object but shards, by the caller's organisation
//! and a time bucket, so that mints of different organisations write to different objects.
//!
//! A row of a caller whose `repository_owner` is `org`, decided at `at_ms`, goes to the
//! object `mint-audit-<slot>-<bucket>`: `slot` is a hash of the organisation (lowercased)
//! into [`SLOTS`] slots, `bucket` is `at_ms` in [`BUCKET_MS`] periods since the epoch. The
//! organisation is hashed rather than named so that callers (any GitHub organisation whose
//! OIDC token verifies is audited, allowed or not) cannot create objects without bound: at
//! most [`SLOTS`] objects per bucket. The time bucket makes retention a whole-object affair
//! (a bucket past retention is emptied and forgotten) and keeps each object's table small.
//! Refusals counted before a token verified (no organisation known) are spread over the
//! slots by their millisecond.
//!
//! Objects cannot be enumerated, so each shard enrols itself once, on its first write, in
//! the registry object [`REGISTRY_OBJECT`]; a listing reads the registry, keeps the shards
//! that can hold rows it wants ([`shards_to_read`]), and merges their pages newest first
//! ([`merge_rows`]) under a composite cursor ([`AuditCursor`]). The audit of deployments
//! older than the shards, the single object [`LEGACY_OBJECT`], is read as one more shard.
//!
//! **Invariant:** [`SLOTS`] and [`BUCKET_MS`] never change: a row is found by the shard its
//! organisation and time name; other numbers would hide the rows already written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::audit::AUDIT_RETENTION_MS;

/// How many objects the organisations are hashed into (per time bucket).
pub const SLOTS: u16 = 8;
/// The time bucket: 30 days, so a 90-day retention spans at most four buckets.
pub const BUCKET_MS: i64 = 30 * 86_400_000;
/// The single audit object of deployments older than the shards: still read, never written.
pub const LEGACY_OBJECT: &str = "mint-audit";
/// The object (of the same class) listing which shards exist.
pub const REGISTRY_OBJECT: &str = "mint-audit-shards";
const SHARD_PREFIX: &str = "mint-audit-";

/// One object of the audit. Ordered as the merge breaks ties between equal times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuditShard {
    Legacy,
    Slot { bucket: i64, slot: u16 },
}

/// The slot of an organisation: FNV-1a of its lowercased login (GitHub logins are
/// case-insensitive), modulo [`SLOTS`].
pub fn slot_of_org(org: &str) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in org.bytes() {
        hash ^= u64::from(b.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(SLOTS)) as u16
}

/// The time bucket of `at_ms`.
pub fn bucket_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(BUCKET_MS)
}

impl AuditShard {
    /// Where a decision's row of a caller of `org` (its `repository_owner`) goes.
    pub fn for_record(org: Option<&str>, at_ms: i64) -> AuditShard {
        AuditShard::Slot {
            bucket: bucket_of(at_ms),
            slot: slot_of_org(org.unwrap_or_default()),
        }
    }

    /// Where a refusal counted at `at_ms` goes (spread over the slots by the millisecond).
    pub fn for_denial(at_ms: i64) -> AuditShard {
        AuditShard::Slot {
            bucket: bucket_of(at_ms),
            slot: at_ms.rem_euclid(i64::from(SLOTS)) as u16,
        }
    }

    pub fn object_name(&self) -> String {
        match self {
            AuditShard::Legacy => LEGACY_OBJECT.to_owned(),
            AuditShard::Slot { bucket, slot } => format!("{SHARD_PREFIX}{slot}-{bucket}"),
        }
    }

    /// The shard an object name names; `None` for anything else (the registry included).
    /// Only canonical names parse, so a name and its shard are one to one.
    pub fn parse(name: &str) -> Option<AuditShard> {
        if name == LEGACY_OBJECT {
            return Some(AuditShard::Legacy);
        }
        let (slot, bucket) = name.strip_prefix(SHARD_PREFIX)?.split_once('-')?;
        let number = |s: &str| -> Option<i64> {
            let canonical = !s.is_empty()
                && s.len() <= 12
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            canonical.then(|| s.parse().ok()).flatten()
        };
        let slot = u16::try_from(number(slot)?).ok().filter(|s| *s < SLOTS)?;
        Some(AuditShard::Slot {
            bucket: number(bucket)?,
            slot,
        })
    }

    /// The first millisecond a row of this shard can have (`i64::MIN` for the legacy object).
    pub fn starts_ms(&self) -> i64 {
        match self {
            AuditShard::Legacy => i64::MIN,
            AuditShard::Slot { bucket, .. } => bucket.saturating_mul(BUCKET_MS),
        }
    }

    /// Past the last millisecond a row of this shard can have.
    pub fn ends_ms(&self) -> i64 {
        match self {
            AuditShard::Legacy => i64::MAX,
            AuditShard::Slot { bucket, .. } => bucket.saturating_add(1).saturating_mul(BUCKET_MS),
        }
    }

    /// Whether every row this shard can hold is past retention at `now_ms` (then the object
    /// is emptied and leaves the registry).
    pub fn expired(&self, now_ms: i64) -> bool {
        match self {
            AuditShard::Legacy => false,
            AuditShard::Slot { .. } => self.ends_ms().saturating_add(AUDIT_RETENTION_MS) <= now_ms,
        }
    }
}

/// A position in the merged listing: rows are ordered newest first by `at_ms`, then by shard,
/// then by the shard's sequence number. Written `<at_ms>.<shard object>.<seq>`; a record's
/// `id` is its own position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCursor {
    pub at_ms: i64,
    pub shard: AuditShard,
    pub seq: i64,
}

impl AuditCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.at_ms, self.shard.object_name(), self.seq)
    }

    /// A cursor this listing handed out; `None` for anything else.
    pub fn parse(text: &str) -> Option<AuditCursor> {
        let (at_ms, rest) = text.split_once('.')?;
        let (shard, seq) = rest.rsplit_once('.')?;
        let at_ms: i64 = at_ms.parse().ok().filter(|t| *t >= 0)?;
        let seq: i64 = seq.parse().ok().filter(|s| *s > 0)?;
        let shard = AuditShard::parse(shard)?;
        let cursor = AuditCursor { at_ms, shard, seq };
        (cursor.encode() == text).then_some(cursor)
    }

    fn key(&self) -> (i64, AuditShard, i64) {
        (self.at_ms, self.shard, self.seq)
    }
}

/// What one shard may answer after the cursor: rows with `at_ms < at_ms`, or with
/// `at_ms == at_ms` and `seq < seq_below`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowBound {
    pub at_ms: i64,
    pub seq_below: i64,
}

impl RowBound {
    pub const NONE: RowBound = RowBound {
        at_ms: i64::MAX,
        seq_below: i64::MAX,
    };
}

/// `shard`'s part of the listing after `cursor`: its rows that sort after the cursor.
pub fn bound_for(cursor: Option<&AuditCursor>, shard: AuditShard) -> RowBound {
    let Some(c) = cursor else {
        return RowBound::NONE;
    };
    let seq_below = match shard.cmp(&c.shard) {
        // At the cursor's time, a shard that sorts before the cursor's is still to come...
        std::cmp::Ordering::Less => i64::MAX,
        // ...the cursor's own shard continues below its sequence number...
        std::cmp::Ordering::Equal => c.seq,
        // ...and one that sorts after it is done (sequence numbers start at 1).
        std::cmp::Ordering::Greater => 0,
    };
    RowBound {
        at_ms: c.at_ms,
        seq_below,
    }
}

/// A row as a shard answers it: its sequence number, time and stored record (JSON text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: i64,
    pub record: String,
}

/// The shards a listing reads, in order: the legacy object, then each registered shard that
/// can hold a row at or after `since_ms`, before the cursor's time, and (with a repository
/// filter) of that repository's organisation.
pub fn shards_to_read(
    registered: impl IntoIterator<Item = AuditShard>,
    since_ms: Option<i64>,
    cursor: Option<&AuditCursor>,
    repository: Option<&str>,
) -> Vec<AuditShard> {
    let slot = repository
        .and_then(|r| r.split_once('/'))
        .map(|(owner, _)| slot_of_org(owner));
    let mut shards: Vec<AuditShard> = registered
        .into_iter()
        .filter(|s| match s {
            AuditShard::Legacy => false,
            AuditShard::Slot { slot: own, .. } => {
                slot.is_none_or(|wanted| wanted == *own)
                    && since_ms.is_none_or(|since| s.ends_ms() > since)
                    && cursor.is_none_or(|c| s.starts_ms() <= c.at_ms)
            }
        })
        .collect();
    shards.push(AuditShard::Legacy);
    shards.sort();
    shards.dedup();
    shards
}

/// One page from the shards' answers, newest first, and the cursor of the next page. Each
/// shard answered at most `limit + 1` rows after the cursor, newest first: if they hold more
/// than `limit` rows in all, at least `limit + 1` are among the answers.
pub fn merge_rows(
    answers: Vec<(AuditShard, Vec<AuditRow>)>,
    limit: usize,
) -> (Vec<(AuditCursor, String)>, Option<String>) {
    let mut rows: Vec<(AuditCursor, String)> = answers
        .into_iter()
        .flat_map(|(shard, rows)| {
            rows.into_iter().map(move |r| {
                let at = AuditCursor {
                    at_ms: r.at_ms,
                    shard,
                    seq: r.seq,
                };
                (at, r.record)
            })
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0.key()));
    rows.dedup_by(|a, b| a.0 == b.0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(c, _)| c.encode())
    } else {
        None
    };
    (rows, next)
}

/// Refusals of one reason in one minute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCount {
    pub minute: i64,
    pub reason: String,
    pub count: i64,
}

/// One shard's part of the stats.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStats {
    pub rows: i64,
    pub bytes: i64,
    pub dropped_rows: i64,
    pub dropped_at_ms: Option<i64>,
    /// Newest minute first, at most `max_minutes` of them.
    pub per_minute: Vec<MinuteCount>,
    pub by_reason: BTreeMap<String, i64>,
}

/// The shards' stats added up: sizes and drops summed (the last drop is the latest), the
/// refusals summed per reason and per (minute, reason), newest minute first, at most
/// `max_minutes` rows of those.
pub fn merge_stats(shards: Vec<ShardStats>, max_minutes: usize) -> ShardStats {
    let mut all = ShardStats::default();
    let mut minutes: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for s in shards {
        all.rows += s.rows;
        all.bytes += s.bytes;
        all.dropped_rows += s.dropped_rows;
        all.dropped_at_ms = all.dropped_at_ms.max(s.dropped_at_ms);
        for m in s.per_minute {
            *minutes.entry((m.minute, m.reason)).or_default() += m.count;
        }
        for (reason, count) in s.by_reason {
            *all.by_reason.entry(reason).or_default() += count;
        }
    }
    let mut per_minute: Vec<MinuteCount> = minutes
        .into_iter()
        .map(|((minute, reason), count)| MinuteCount {
            minute,
            reason,
            count,
        })
        .collect();
    per_minute.sort_by(|a, b| {
        b.minute
            .cmp(&a.minute)
            .then_with(|| a.reason.cmp(&b.reason))
    });
    per_minute.truncate(max_minutes);
    all.per_minute = per_minute;
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn slot(bucket: i64, slot: u16) -> AuditShard {
        AuditShard::Slot { bucket, slot }
    }

    fn row(seq: i64, at_ms: i64) -> AuditRow {
        AuditRow {
            seq,
            at_ms,
            record: format!("{seq}@{at_ms}"),
        }
    }

    #[test]
    fn names_are_fixed_and_parse_back() {
        assert_eq!(slot_of_org("bench-org"), slot_of_org("Bench-Org"));
        let s = AuditShard::for_record(Some("test-org"), 1_800_000_000_000);
        assert_eq!(s, slot(694, slot_of_org("test-org")));
        assert_eq!(slot(694, 3).object_name(), "mint-audit-3-694");
        assert_eq!(AuditShard::Legacy.object_name(), "mint-audit");
        for s in [slot(694, 3), slot(0, 0), slot(1, 7), AuditShard::Legacy] {
            assert_eq!(AuditShard::parse(&s.object_name()), Some(s));
        }
        for bad in [
            "mint-audit-shards",
            "mint-audit-8-1",
            "mint-audit-03-1",
            "mint-audit-3-01",
            "mint-audit-3",
            "mint-audit--1",
            "mint-audit-3--1",
            "mint-audit-3-1-2",
            "apps",
            "",
        ] {
            assert_eq!(AuditShard::parse(bad), None, "{bad}");
        }
        assert_eq!(AuditShard::parse(REGISTRY_OBJECT), None);
        // Organisations spread: eight of them take more than one slot.
        let slots: std::collections::BTreeSet<u16> =
            (0..8).map(|i| slot_of_org(&format!("org-{i}"))).collect();
        assert!(slots.len() > 1);
        assert!(slots.iter().all(|s| *s < SLOTS));
    }

    #[test]
    fn buckets_and_expiry() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(BUCKET_MS - 1), 0);
        assert_eq!(bucket_of(BUCKET_MS), 1);
        assert_eq!(bucket_of(-1), -1);
        let s = slot(10, 1);
        assert_eq!(s.starts_ms(), 300 * DAY);
        assert_eq!(s.ends_ms(), 330 * DAY);
        assert!(!s.expired(330 * DAY + AUDIT_RETENTION_MS - 1));
        assert!(s.expired(330 * DAY + AUDIT_RETENTION_MS));
        assert!(!AuditShard::Legacy.expired(i64::MAX));
        // Refusals spread over every slot, within the bucket of their time.
        let spread: std::collections::BTreeSet<AuditShard> = (0..16)
            .map(|i| AuditShard::for_denial(300 * DAY + i))
            .collect();
        assert_eq!(spread.len(), SLOTS as usize);
        assert!(spread.iter().all(|s| s.starts_ms() == 300 * DAY));
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = AuditCursor {
            at_ms: 1_800_000_000_000,
            shard: slot(694, 3),
            seq: 17,
        };
        assert_eq!(c.encode(), "1800000000000.mint-audit-3-694.17");
        assert_eq!(AuditCursor::parse(&c.encode()), Some(c));
        let legacy = AuditCursor {
            at_ms: 5,
            shard: AuditShard::Legacy,
            seq: 1,
        };
        assert_eq!(AuditCursor::parse("5.mint-audit.1"), Some(legacy));
        for bad in [
            "x",
            "12",
            "0",
            "1.mint-audit.0",
            "1.mint-audit.-1",
            "-1.mint-audit.1",
            "01.mint-audit.1",
            "1.mint-audit.01",
            "1.apps.1",
            "1.mint-audit-shards.1",
            "1.mint-audit-9-1.1",
            "1.mint-audit.1.2",
            "",
        ] {
            assert_eq!(AuditCursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bounds_continue_after_the_cursor() {
        let c = AuditCursor {
            at_ms: 1_000,
            shard: slot(0, 3),
            seq: 9,
        };
        assert_eq!(bound_for(None, slot(0, 1)), RowBound::NONE);
        let b = |s| bound_for(Some(&c), s);
        assert_eq!(
            b(slot(0, 3)),
            RowBound {
                at_ms: 1_000,
                seq_below: 9
            }
        );
        assert_eq!(b(slot(0, 2)).seq_below, i64::MAX);
        assert_eq!(b(AuditShard::Legacy).seq_below, i64::MAX);
        assert_eq!(b(slot(0, 4)).seq_below, 0);
        assert_eq!(b(slot(1, 0)).seq_below, 0);
    }

    /// Pages through `shards` (each one's rows, any order) like the route does.
    fn list_all(shards: &[(AuditShard, Vec<AuditRow>)], limit: usize) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut cursor: Option<AuditCursor> = None;
        loop {
            let answers = shards
                .iter()
                .map(|(shard, rows)| {
                    let bound = bound_for(cursor.as_ref(), *shard);
                    let mut rows: Vec<AuditRow> = rows
                        .iter()
                        .filter(|r| {
                            r.at_ms < bound.at_ms
                                || (r.at_ms == bound.at_ms && r.seq < bound.seq_below)
                        })
                        .cloned()
                        .collect();
                    rows.sort_by_key(|b| std::cmp::Reverse((b.at_ms, b.seq)));
                    rows.truncate(limit + 1);
                    (*shard, rows)
                })
                .collect();
            let (rows, next) = merge_rows(answers, limit);
            pages.push(rows.into_iter().map(|(_, r)| r).collect());
            match next {
                Some(n) => cursor = Some(AuditCursor::parse(&n).unwrap()),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_merge_every_shard_newest_first() {
        let shards = vec![
            (AuditShard::Legacy, vec![row(1, 10), row(2, 20)]),
            (slot(0, 1), vec![row(1, 30), row(2, 50), row(3, 50)]),
            (slot(0, 5), vec![row(1, 40), row(2, 50), row(3, 60)]),
        ];
        let pages = list_all(&shards, 2);
        assert_eq!(
            pages,
            vec![
                vec!["3@60", "2@50"],
                vec!["3@50", "2@50"],
                vec!["1@40", "1@30"],
                vec!["2@20", "1@10"],
            ]
        );
        let all: Vec<String> = list_all(&shards, 100).concat();
        assert_eq!(all.len(), 8);
        for limit in 1..=8 {
            assert_eq!(list_all(&shards, limit).concat(), all, "limit {limit}");
        }
        // Exactly a page's worth: no cursor to an empty page; nothing at all: one empty page.
        assert_eq!(list_all(&shards, 8).len(), 1);
        assert_eq!(list_all(&[], 3), vec![Vec::<String>::new()]);
    }

    #[test]
    fn merge_drops_a_row_answered_twice() {
        let (rows, next) = merge_rows(
            vec![(slot(0, 1), vec![row(1, 5)]), (slot(0, 1), vec![row(1, 5)])],
            10,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0.encode(), "5.mint-audit-1-0.1");
        assert_eq!(next, None);
    }

    #[test]
    fn listings_read_only_the_shards_that_can_answer() {
        let org_slot = slot_of_org("test-org");
        let other = (org_slot + 1) % SLOTS;
        let registered = vec![
            slot(1, org_slot),
            slot(2, org_slot),
            slot(2, other),
            slot(3, other),
            AuditShard::Legacy,
        ];
        let all = shards_to_read(registered.clone(), None, None, None);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0], AuditShard::Legacy);
        assert_eq!(
            shards_to_read(registered.clone(), None, None, Some("Test-Org/repo")),
            vec![AuditShard::Legacy, slot(1, org_slot), slot(2, org_slot)]
        );
        assert_eq!(
            shards_to_read(registered.clone(), Some(2 * BUCKET_MS), None, None),
            vec![
                AuditShard::Legacy,
                slot(2, org_slot),
                slot(2, other),
                slot(3, other)
            ]
        );
        let c = AuditCursor {
            at_ms: 2 * BUCKET_MS - 1,
            shard: slot(1, org_slot),
            seq: 4,
        };
        assert_eq!(
            shards_to_read(registered, None, Some(&c), None),
            vec![AuditShard::Legacy, slot(1, org_slot)]
        );
    }

    #[test]
    fn stats_add_up() {
        let a = ShardStats {
            rows: 2,
            bytes: 20,
            dropped_rows: 1,
            dropped_at_ms: Some(5),
            per_minute: vec![
                MinuteCount {
                    minute: 120_000,
                    reason: "bad".into(),
                    count: 2,
                },
                MinuteCount {
                    minute: 60_000,
                    reason: "bad".into(),
                    count: 1,
                },
            ],
            by_reason: BTreeMap::from([("bad".into(), 3)]),
        };
        let b = ShardStats {
            rows: 3,
            bytes: 30,
            dropped_rows: 0,
            dropped_at_ms: None,
            per_minute: vec![
                MinuteCount {
                    minute: 120_000,
                    reason: "bad".into(),
                    count: 1,
                },
                MinuteCount {
                    minute: 120_000,
                    reason: "a".into(),
                    count: 1,
                },
            ],
            by_reason: BTreeMap::from([("bad".into(), 1), ("a".into(), 1)]),
        };
        let all = merge_stats(vec![a, b], 2);
        assert_eq!((all.rows, all.bytes, all.dropped_rows), (5, 50, 1));
        assert_eq!(all.dropped_at_ms, Some(5));
        assert_eq!(
            all.by_reason,
            BTreeMap::from([("bad".into(), 4), ("a".into(), 1)])
        );
        assert_eq!(
            all.per_minute,
            vec![
                MinuteCount {
                    minute: 120_000,
                    reason: "a".into(),
                    count: 1
                },
                MinuteCount {
                    minute: 120_000,
                    reason: "bad".into(),
                    count: 3
                },
            ]
        );
        assert_eq!(merge_stats(vec![], 10), ShardStats::default());
    }
}
