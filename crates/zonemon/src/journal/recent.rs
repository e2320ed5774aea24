//! The newest committed records, kept in memory by the writer after each
//! commit, so that the local API's followers — which are mostly at the
//! journal's end — get a new record without reading it back from SQLite.
//!
//! Only committed records are ever here (the writer adds a batch after its
//! transaction committed), in `seq` order with no gap; a reader further
//! behind than the oldest record kept reads the file instead.

use std::collections::VecDeque;

use crate::store::StoredRecord;

/// How many of the newest records are kept: a few batches of a busy host,
/// about 1–2 MiB.
pub const RECENT_RECORDS: usize = 1024;

/// The newest committed records, contiguous in `seq`.
#[derive(Debug)]
pub struct Recent {
    /// The `seq` the next committed record will have.
    next: u64,
    records: VecDeque<StoredRecord>,
    cap: usize,
}

impl Recent {
    /// Nothing kept yet; the next record committed gets `next_seq`.
    pub fn new(next_seq: u64, cap: usize) -> Self {
        Recent {
            next: next_seq,
            records: VecDeque::with_capacity(cap.min(RECENT_RECORDS)),
            cap: cap.max(1),
        }
    }

    /// Takes in records just committed, in `seq` order, dropping the oldest beyond the cap.
    /// A batch that does not continue the last one (never, from the one writer)
    /// starts the memory afresh rather than leave a gap in it.
    pub fn add(&mut self, batch: impl IntoIterator<Item = StoredRecord>) {
        for rec in batch {
            if rec.seq != self.next {
                self.records.clear();
            }
            self.next = rec.seq + 1;
            if self.records.len() == self.cap {
                self.records.pop_front();
            }
            self.records.push_back(rec);
        }
    }

    /// Up to `limit` records with `seq > after`, in `seq` order, if memory has
    /// every committed record after `after` it knows of; `None` when some
    /// are older than the oldest kept (read the file).
    pub fn after(&self, after: u64, limit: usize) -> Option<Vec<StoredRecord>> {
        let first = self.records.front().map_or(self.next, |r| r.seq);
        if after.saturating_add(1) < first {
            return None;
        }
        let skip = usize::try_from(after + 1 - first).unwrap_or(usize::MAX);
        Some(
            self.records
                .iter()
                .skip(skip)
                .take(limit)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn rec(seq: u64) -> StoredRecord {
        StoredRecord {
            seq,
            unix_ns: seq as i128,
            object: Map::new().into(),
        }
    }

    fn seqs(v: Option<Vec<StoredRecord>>) -> Option<Vec<u64>> {
        v.map(|v| v.into_iter().map(|r| r.seq).collect())
    }

    #[test]
    fn serves_what_it_holds_and_refers_older_reads_to_the_file() {
        let mut r = Recent::new(5, 4);
        // Nothing committed yet: the journal's end (4) and after it are known; before it, not.
        assert_eq!(seqs(r.after(4, 10)), Some(vec![]));
        assert_eq!(seqs(r.after(3, 10)), None);
        r.add((5..=7).map(rec));
        assert_eq!(seqs(r.after(4, 10)), Some(vec![5, 6, 7]));
        assert_eq!(seqs(r.after(5, 1)), Some(vec![6]));
        assert_eq!(seqs(r.after(7, 10)), Some(vec![]));
        assert_eq!(seqs(r.after(99, 10)), Some(vec![]));
        r.add((8..=10).map(rec)); // 5 and 6 fall out
        assert_eq!(seqs(r.after(6, 10)), Some(vec![7, 8, 9, 10]));
        assert_eq!(seqs(r.after(5, 10)), None);
        assert_eq!(seqs(r.after(0, 10)), None);
        // A gap (never from the one writer) forgets what came before it.
        r.add([rec(20)]);
        assert_eq!(seqs(r.after(19, 10)), Some(vec![20]));
        assert_eq!(seqs(r.after(10, 10)), None);
    }
}
