//! The hot path's end of the journal: hands records to the writer
//! through a bounded queue and never waits. What does not fit is counted,
//! said on stderr once per episode, and recorded as a `lost` record with
//! `"reason":"queue"` as soon as the queue has room again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use serde_json::Map;
use tokio::sync::mpsc::error::TrySendError;
use zonemon_core::output::{lost_json, Sink, WallClock};
use zonemon_core::ZoneEvent;

use super::writer::{Entry, Queue};

/// Records the queue to the writer holds: about 1.8 s of the fastest churn
/// measured here (9,000 transitions/s) while the disk stalls.
pub const QUEUE_RECORDS: usize = 16_384;

/// The sending side of the journal's queue, shared by the daemon's sink and its start-up code.
pub struct Feed {
    queue: Queue,
    clock: WallClock,
    /// Records refused since the last one the queue took.
    dropped: u64,
    /// Tracker ids of zones the journal already knew at start-up → the journal's ids for them.
    ids: HashMap<u64, u64>,
}

/// A shared handle on the feed (everything on the hot path runs on one thread).
pub type SharedFeed = Rc<RefCell<Feed>>;

impl Feed {
    /// A feed into `queue`, dating its own records with `clock`.
    pub fn new(queue: Queue, clock: WallClock) -> SharedFeed {
        Rc::new(RefCell::new(Feed {
            queue,
            clock,
            dropped: 0,
            ids: HashMap::new(),
        }))
    }

    /// From now on, the zone the tracker calls `tracker_id` is the journal's `journal_id`.
    pub fn adopt(&mut self, tracker_id: u64, journal_id: u64) {
        self.ids.insert(tracker_id, journal_id);
    }

    /// The journal's id for the tracker's zone `tracker_id`.
    pub fn journal_id(&self, tracker_id: u64) -> u64 {
        self.ids.get(&tracker_id).copied().unwrap_or(tracker_id)
    }

    /// Queues one transition, with the journal's zone ids.
    pub fn event(&mut self, ev: &ZoneEvent) {
        let mut ev = Box::new(ev.clone());
        if !self.ids.is_empty() {
            ev.zone_id = self.journal_id(ev.zone_id);
            ev.parent_zone_id = ev.parent_zone_id.map(|z| self.journal_id(z));
            ev.reboot_of = ev.reboot_of.map(|z| self.journal_id(z));
        }
        self.push(Entry::Event(ev));
    }

    /// Queues one record of the daemon's own.
    pub fn object(&mut self, object: Map<String, serde_json::Value>, unix_ns: i128) {
        self.push(Entry::made(object, unix_ns));
    }

    /// Queues `entry`, or counts it if the queue is full (or the writer is gone).
    pub fn push(&mut self, entry: Entry) {
        if self.dropped > 0 {
            let now = zonemon_core::clock::boot_time_ns();
            let mut object = lost_json(Some(self.dropped), now, &self.clock);
            object.insert("reason".into(), "queue".into());
            let lost = Entry::made(object, self.clock.unix_ns(now));
            if self.queue.try_send(lost).is_err() {
                self.dropped += 1;
                return;
            }
            eprintln!(
                "zonemon: journal: the writer caught up; {} record(s) did not fit in its queue \
                 (recorded as a lost record)",
                self.dropped
            );
            self.dropped = 0;
        }
        match self.queue.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                eprintln!(
                    "zonemon: warning: the journal writer is behind (its queue of {QUEUE_RECORDS} \
                     records is full: a slow disk?); records are counted and a lost record will \
                     say how many"
                );
                self.dropped = 1;
            }
            Err(TrySendError::Closed(_)) => self.dropped += 1,
        }
    }
}

/// The daemon's sink: every transition goes to the journal.
pub struct JournalSink(pub SharedFeed);

impl Sink for JournalSink {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        self.0.borrow_mut().event(ev);
        Ok(())
    }

    fn write_lost(&mut self, count: Option<u64>, ts_ns: u64) -> io::Result<()> {
        self.0.borrow_mut().push(Entry::SourceLost { count, ts_ns });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::writer::queue;
    use zonemon_core::EventKind;

    fn lost_count(entry: &Entry) -> Option<u64> {
        match entry {
            Entry::Object(made) if made.object["event"] == "lost" => {
                assert_eq!(made.object["reason"], "queue");
                made.object["count"].as_u64()
            }
            _ => None,
        }
    }

    #[test]
    fn a_full_queue_never_blocks_and_the_loss_is_recorded_once_there_is_room() {
        let (tx, mut rx) = queue(2);
        let feed = Feed::new(tx, WallClock::new(0));
        let mut sink = JournalSink(Rc::clone(&feed));
        for ts in 0..5 {
            sink.write_lost(Some(ts), ts).unwrap(); // returns at once, full or not
        }
        let taken: Vec<Entry> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(taken.len(), 2);
        // Room again: first the count of what did not fit, then the record.
        sink.write_lost(Some(9), 9).unwrap();
        let taken: Vec<Entry> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(taken.len(), 2);
        assert_eq!(lost_count(&taken[0]), Some(3));
        assert!(matches!(taken[1], Entry::SourceLost { count: Some(9), .. }));
        // Zones the journal knew keep its ids.
        feed.borrow_mut().adopt(40, 7);
        let mut ev = crate::journal::tests::zone_event(EventKind::Booted, 40, 1);
        ev.parent_zone_id = Some(40);
        sink.write_event(&ev).unwrap();
        let Ok(Entry::Event(sent)) = rx.try_recv() else {
            panic!("not queued")
        };
        assert_eq!((sent.zone_id, sent.parent_zone_id), (7, Some(7)));
    }
}
