//! From decoded kernel records to written transitions: the tracker between a source and a sink.

use std::io;

use zonemon_core::output::Sink;
use zonemon_core::{NameResolver, Observation, ObservationKind, Tracker};

use crate::decode::Record;

/// The tracker and the sink, plus the accounting of what the kernel could not deliver.
pub struct Pipeline<R: NameResolver, S: Sink> {
    tracker: Tracker<R>,
    sink: S,
    dropped_seen: u64,
}

impl<R: NameResolver, S: Sink> Pipeline<R, S> {
    /// A pipeline feeding `tracker`'s transitions to `sink`.
    pub fn new(tracker: Tracker<R>, sink: S) -> Self {
        Pipeline {
            tracker,
            sink,
            dropped_seen: 0,
        }
    }

    /// The tracker, e.g. to seed it with zones already running.
    pub fn tracker_mut(&mut self) -> &mut Tracker<R> {
        &mut self.tracker
    }

    /// Handles one kernel record: reports lost records, tracks, writes the transitions.
    ///
    /// Returns the sink's error (e.g. a closed pipe) as is.
    pub fn handle(&mut self, rec: Record) -> io::Result<()> {
        if rec.dropped > self.dropped_seen {
            eprintln!(
                "zonemon: warning: the kernel could not deliver {} record(s) (ring buffer full): \
                 some transitions are missing; a larger --ring-size helps",
                rec.dropped - self.dropped_seen
            );
            self.dropped_seen = rec.dropped;
        }
        let mut obs = rec.observation;
        enrich(&mut obs);
        for ev in self.tracker.observe(&obs) {
            self.sink.write_event(&ev)?;
        }
        Ok(())
    }
}

/// Adds what the kernel record lacks and userspace can still read: the init's cgroup path.
fn enrich(obs: &mut Observation) {
    if matches!(
        obs.kind,
        ObservationKind::InitFork | ObservationKind::InitExec
    ) {
        obs.cgroup = cgroup_of(obs.init_pid);
    }
}

/// The cgroup path of host PID `pid`, if it still exists.
fn cgroup_of(pid: u32) -> Option<String> {
    let content = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    zonemon_core::procscan::parse_cgroup(&content)
}
