//! The hooks' bounded queue: which run may start next.
//!
//! Runs of one hook for one zone start in the order their records came and
//! never overlap (a hook sees one zone's events in order); runs for other
//! zones, or of other hooks, overtake a zone whose previous run is still going.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// Queued items, each with the key that orders it (hook and zone).
#[derive(Debug)]
pub struct Schedule<K, T> {
    queue: VecDeque<(K, T)>,
    /// Keys with a run going now.
    busy: HashSet<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, T> Schedule<K, T> {
    /// An empty schedule holding at most `capacity` queued items.
    pub fn new(capacity: usize) -> Self {
        Schedule {
            queue: VecDeque::new(),
            busy: HashSet::new(),
            capacity,
        }
    }

    /// Queues `item` under `key`; gives it back when the queue is full.
    pub fn push(&mut self, key: K, item: T) -> Result<(), T> {
        if self.queue.len() >= self.capacity {
            return Err(item);
        }
        self.queue.push_back((key, item));
        Ok(())
    }

    /// The oldest item whose key has no run going, marked going; `None` if every queued key is busy.
    pub fn start(&mut self) -> Option<(K, T)> {
        let at = self
            .queue
            .iter()
            .position(|(k, _)| !self.busy.contains(k))?;
        let (key, item) = self.queue.remove(at)?;
        self.busy.insert(key.clone());
        Some((key, item))
    }

    /// The run under `key` ended: its next item may start.
    pub fn done(&mut self, key: &K) {
        self.busy.remove(key);
    }

    /// How many items wait.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Empties the queue, returning what was in it (at shutdown).
    pub fn drain(&mut self) -> Vec<(K, T)> {
        self.queue.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn a_busy_zone_is_overtaken_and_keeps_its_order() {
        let mut s = Schedule::new(3);
        s.push("a", 1).unwrap();
        s.push("a", 2).unwrap();
        s.push("b", 3).unwrap();
        assert_eq!(s.push("c", 4), Err(4), "full");
        assert_eq!(s.start(), Some(("a", 1)));
        assert_eq!(s.start(), Some(("b", 3)), "a is busy: b overtakes");
        assert_eq!(s.start(), None);
        s.done(&"a");
        assert_eq!(s.start(), Some(("a", 2)));
        s.done(&"a");
        s.done(&"b");
        assert_eq!(s.queued(), 0);
    }

    /// One step of a random schedule: queue an item for a key, start one, or end one going.
    #[derive(Debug, Clone)]
    enum Step {
        Push(u8),
        Start,
        Done(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..4).prop_map(Step::Push),
            Just(Step::Start),
            (0usize..8).prop_map(Step::Done),
        ]
    }

    proptest! {
        /// Whatever the interleaving: runs of a key never overlap, start in the
        /// order they were queued, and nothing queued is lost or run twice.
        #[test]
        fn per_key_order_and_no_overlap(steps in proptest::collection::vec(step(), 0..200)) {
            let mut s = Schedule::new(16);
            let mut pushed: HashMap<u8, Vec<u32>> = HashMap::new();
            let mut started: HashMap<u8, Vec<u32>> = HashMap::new();
            let mut going: Vec<u8> = Vec::new();
            let mut n = 0u32;
            for st in steps {
                match st {
                    Step::Push(k) => {
                        n += 1;
                        if s.push(k, n).is_ok() {
                            pushed.entry(k).or_default().push(n);
                        }
                    }
                    Step::Start => {
                        if let Some((k, item)) = s.start() {
                            prop_assert!(!going.contains(&k), "key {} overlaps", k);
                            going.push(k);
                            started.entry(k).or_default().push(item);
                        }
                    }
                    Step::Done(i) if !going.is_empty() => {
                        let k = going.remove(i % going.len());
                        s.done(&k);
                    }
                    Step::Done(_) => {}
                }
            }
            for k in going.drain(..) {
                s.done(&k);
            }
            while let Some((k, item)) = s.start() {
                started.entry(k).or_default().push(item);
                s.done(&k);
            }
            prop_assert_eq!(started, pushed);
        }
    }
}
