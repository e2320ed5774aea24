//! From decoded kernel records to written transitions: the tracker between a
//! source and a sink, and the recovery when the kernel side lost records.

use std::io;
use std::path::Path;

use zonemon_core::output::Sink;
use zonemon_core::{procscan, NameResolver, Observation, ObservationKind, Tracker};

use crate::decode::Record;

/// The tracker and the sink, plus the accounting of what the kernel could not deliver.
pub struct Pipeline<R: NameResolver, S: Sink> {
    tracker: Tracker<R>,
    sink: S,
    /// Kernel-side losses already reported and recovered from.
    lost_seen: u64,
}

impl<R: NameResolver, S: Sink> Pipeline<R, S> {
    /// A pipeline feeding `tracker`'s transitions to `sink`.
    pub fn new(tracker: Tracker<R>, sink: S) -> Self {
        Pipeline {
            tracker,
            sink,
            lost_seen: 0,
        }
    }

    /// Adds the zones running now (a /proc scan) to the tracker without reporting them.
    pub fn seed_from_proc(&mut self) {
        for zone in procscan::scan(Path::new("/proc")) {
            self.tracker.seed(&zone.to_observation());
        }
    }

    /// Writes the zones found at start-up and not reported since as `running` records.
    pub fn write_initial(&mut self) -> io::Result<()> {
        for ev in self.tracker.initial() {
            self.sink.write_event(&ev)?;
        }
        Ok(())
    }

    /// Handles one kernel record: tracks it and writes the transitions it proves.
    ///
    /// Returns the sink's error (e.g. a closed pipe) as is.
    pub fn handle(&mut self, rec: Record) -> io::Result<()> {
        let mut obs = rec.observation;
        enrich(&mut obs);
        for ev in self.tracker.observe(&obs) {
            self.sink.write_event(&ev)?;
        }
        Ok(())
    }

    /// Whether the kernel side's loss counter `lost_total` says records were lost since the last recovery.
    pub fn has_lost(&self, lost_total: u64) -> bool {
        lost_total > self.lost_seen
    }

    /// Recovers from lost records (call once every delivered record is handled):
    /// says so (a `lost` record and a warning on stderr), rescans /proc and
    /// writes the transitions that proves, flagged `resynced`.
    pub fn recover(&mut self, lost_total: u64, now_ns: u64) -> io::Result<()> {
        let count = lost_total.saturating_sub(self.lost_seen);
        self.lost_seen = lost_total;
        eprintln!(
            "zonemon: warning: the kernel could not deliver {count} record(s) (ring buffer full, or \
             too many dying zones); resynchronising from /proc (a larger --ring-size helps)"
        );
        self.sink.write_lost(count, now_ns)?;
        let live: Vec<Observation> = procscan::scan(Path::new("/proc"))
            .iter()
            .map(procscan::ProcZone::to_observation)
            .collect();
        for ev in self.tracker.resync(&live, now_ns) {
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
    procscan::parse_cgroup(&content)
}
