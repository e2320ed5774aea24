//! A bounded memory of recent things: a map that keeps at most its capacity
//! of the newest entries and forgets the oldest first.
//!
//! Its tables are allocated at their full size when it is made, so they
//! are not grown step by step on the event path, and a monitor that runs
//! for months keeps the same few hundred kilobytes.

use std::collections::HashMap;
use std::hash::Hash;

/// The newest `capacity` entries put in, by key; older ones are forgotten.
#[derive(Debug, Clone)]
pub struct RecentMap<K, V> {
    capacity: usize,
    /// Each key's value and the sequence number of its latest `insert`.
    entries: HashMap<K, (V, u64)>,
    /// The last `capacity` keys put in, with that sequence number, as a ring
    /// whose slot `next_seq % capacity` is the oldest; an entry whose key was
    /// put in again or removed since is stale and skipped.
    order: Vec<Option<(K, u64)>>,
    next_seq: u64,
}

impl<K: Hash + Eq + Copy, V> RecentMap<K, V> {
    /// An empty memory of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RecentMap {
            capacity,
            // Twice the room: removals leave tombstones, and a table at most
            // half full is cleaned in place instead of being grown.
            entries: HashMap::with_capacity(capacity * 2),
            order: vec![None; capacity],
            next_seq: 0,
        }
    }

    /// Puts `value` in at `key` (replacing an older value there), forgetting
    /// the oldest entry when the memory is full.
    pub fn insert(&mut self, key: K, value: V) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = &mut self.order[(seq % self.capacity as u64) as usize];
        if let Some((old, old_seq)) = slot.replace((key, seq)) {
            if self.entries.get(&old).is_some_and(|(_, s)| *s == old_seq) {
                self.entries.remove(&old);
            }
        }
        self.entries.insert(key, (value, seq));
    }

    /// The value at `key`, if remembered.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// Whether `key` is remembered.
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Forgets `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key).map(|(v, _)| v)
    }

    /// How many entries are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most entries it keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forgets_the_oldest_first() {
        let mut m = RecentMap::new(3);
        for k in 1..=5u32 {
            m.insert(k, k * 10);
        }
        assert_eq!(m.len(), 3);
        assert!(!m.contains(&1) && !m.contains(&2));
        assert_eq!(m.get(&5), Some(&50));
    }

    #[test]
    fn putting_a_key_in_again_makes_it_new() {
        let mut m = RecentMap::new(2);
        m.insert('a', 1);
        m.insert('b', 2);
        m.insert('a', 3); // a is now newer than b
        m.insert('c', 4); // b goes, not a
        assert_eq!(m.get(&'a'), Some(&3));
        assert!(!m.contains(&'b'));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn removed_keys_do_not_evict_their_successors() {
        let mut m = RecentMap::new(2);
        m.insert(1, ());
        m.remove(&1);
        m.insert(1, ());
        m.insert(2, ());
        assert!(
            m.contains(&1) && m.contains(&2),
            "the stale first 1 was skipped"
        );
        m.insert(3, ());
        assert!(!m.contains(&1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any run of inserts and removes (one in five) over 200 keys.
        #[test]
        fn stays_bounded_under_any_sequence(
            ops in prop::collection::vec((0..200u64, prop::bool::weighted(0.2)), 0..3_000)
        ) {
            let mut m = RecentMap::new(64);
            let room = m.entries.capacity();
            for (k, remove) in ops {
                if remove {
                    m.remove(&k);
                } else {
                    m.insert(k, k);
                }
                prop_assert!(m.len() <= m.capacity());
            }
            // `capacity()` is what the table can hold before it must grow or
            // be cleaned: tombstones lower it, so it is at most, not exactly,
            // what it was; growing would double it.
            prop_assert!(m.entries.capacity() <= room, "the table was grown");
        }
    }
}
