//! Per-isolate caches of what shared objects hold, with bounded staleness: a value read from
//! an object is reused for at most `ttl_ms`, then read again. The shell keeps one per isolate
//! (a `thread_local`), hands it the clock, and forgets a key whenever this isolate writes it,
//! so its own writes are seen at once and other isolates' within `ttl_ms`.

use std::collections::HashMap;
use std::hash::Hash;

/// How stale the app directory (`apps`) and the projects' listing may be in an isolate.
pub const DIRECTORY_TTL_MS: i64 = 30_000;
pub const PROJECT_INDEX_TTL_MS: i64 = 30_000;
/// Keys an isolate keeps at most (past it, the cache starts afresh).
pub const MAX_ENTRIES: usize = 10_000;

pub struct TtlCache<K, V> {
    ttl_ms: i64,
    entries: HashMap<K, (V, i64)>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl_ms: i64) -> Self {
        TtlCache {
            ttl_ms,
            entries: HashMap::new(),
        }
    }

    /// The value read less than `ttl_ms` before `now_ms` (a clock that went back counts as
    /// stale too).
    pub fn get(&self, key: &K, now_ms: i64) -> Option<V> {
        let (value, read_at) = self.entries.get(key)?;
        let age = now_ms - read_at;
        (0..self.ttl_ms).contains(&age).then(|| value.clone())
    }

    /// How long ago `key` was read; `None` when it is not kept.
    pub fn age(&self, key: &K, now_ms: i64) -> Option<i64> {
        self.entries.get(key).map(|(_, read_at)| now_ms - read_at)
    }

    pub fn put(&mut self, key: K, value: V, now_ms: i64) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(key, (value, now_ms));
    }

    pub fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_reused_for_the_ttl_only() {
        let mut c = TtlCache::new(30_000);
        assert_eq!(c.get(&1, 0), None);
        c.put(1, Some("a"), 1_000);
        c.put(2, None, 1_000);
        assert_eq!(c.get(&1, 1_000), Some(Some("a")));
        assert_eq!(c.get(&2, 30_999), Some(None), "a miss is kept too");
        assert_eq!(c.get(&1, 31_000), None, "stale");
        assert_eq!(c.get(&1, 999), None, "the clock went back");
        assert_eq!(c.age(&1, 5_000), Some(4_000));
        c.forget(&1);
        assert_eq!(c.get(&1, 1_000), None);
        assert_eq!(c.age(&1, 1_000), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut c = TtlCache::new(10);
        for k in 0..MAX_ENTRIES + 5 {
            c.put(k, (), 0);
        }
        assert!(c.entries.len() <= MAX_ENTRIES);
        assert_eq!(c.get(&(MAX_ENTRIES + 4), 0), Some(()));
    }
}
