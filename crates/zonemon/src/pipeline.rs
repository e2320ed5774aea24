//! From observations to written transitions: the tracker between a source and
//! a sink, and the recovery when a source lost observations.

use std::io;
use std::path::Path;
use std::time::Instant;

use zonemon_core::output::Sink;
use zonemon_core::procscan::{self, ProcZone};
use zonemon_core::tracker::SEED_START_TOLERANCE_NS;
use zonemon_core::{NameResolver, Observation, ObservationKind, Tracker};

use crate::stats::SharedStats;

pub use zonemon_core::clock::{boot_time_ns, clock_ns};

/// The runtime name resolvers, tried in order.
pub type Resolvers = Vec<Box<dyn NameResolver>>;

/// The tracker and the sink every source feeds.
pub struct Pipeline {
    tracker: Tracker<Resolvers>,
    sink: Box<dyn Sink>,
    /// Observations handled since the heap was last trimmed.
    since_trim: u32,
    /// Where to record the cost of each observation (`--stats`).
    stats: Option<SharedStats>,
}

/// A zone shut down longer ago than this without going down is checked in /proc.
const DOWN_GRACE_NS: u64 = 2_000_000_000;

/// Every this many observations the allocator gives freed memory back, so
/// that a long churn leaves no fragmentation behind (the live heap is flat).
const TRIM_EVERY: u32 = 4096;

impl Pipeline {
    /// A pipeline feeding `tracker`'s transitions to `sink`, timing each observation into `stats`.
    pub fn new(
        tracker: Tracker<Resolvers>,
        sink: Box<dyn Sink>,
        stats: Option<SharedStats>,
    ) -> Self {
        Pipeline {
            tracker,
            sink,
            since_trim: 0,
            stats,
        }
    }

    /// The tracker, for a monitor that reconciles its own records with it (the daemon at start-up).
    pub fn tracker(&mut self) -> &mut Tracker<Resolvers> {
        &mut self.tracker
    }

    /// Adds the zones running now (a /proc scan) to the tracker without reporting them.
    pub fn seed_from_proc(&mut self) {
        self.seed(&procscan::scan(Path::new("/proc")));
    }

    /// Adds `zones` (parents first) to the tracker without reporting them.
    pub fn seed(&mut self, zones: &[ProcZone]) {
        for zone in zones {
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

    /// Tracks one observation and writes the transitions it proves.
    ///
    /// Returns the sink's error (e.g. a closed pipe) as is.
    pub fn handle(&mut self, mut obs: Observation) -> io::Result<()> {
        let start = self.stats.is_some().then(Instant::now);
        enrich(&mut obs);
        for ev in self.tracker.observe(&obs) {
            self.sink.write_event(&ev)?;
        }
        if let (Some(stats), Some(start)) = (&self.stats, start) {
            stats
                .borrow_mut()
                .handle
                .push(start.elapsed().as_nanos() as u64);
        }
        self.since_trim += 1;
        if self.since_trim == TRIM_EVERY {
            self.since_trim = 0;
            // SAFETY: malloc_trim only releases free memory of glibc's heap.
            unsafe { libc::malloc_trim(0) };
        }
        Ok(())
    }

    /// Reports down the zones whose `down` is overdue (shut down more than
    /// two seconds ago) and whose init /proc no longer has: a free the kernel
    /// side did not see must not leave a zone shut down forever. Cheap when
    /// nothing is overdue; called after each batch, so it adds no wakeups.
    pub fn sweep_overdue(&mut self, now_ns: u64) -> io::Result<()> {
        for (pid, start_ns) in self.tracker.overdue(now_ns, DOWN_GRACE_NS) {
            let alive = procscan::process_start_ns(Path::new("/proc"), pid)
                .is_some_and(|s| s.abs_diff(start_ns) <= SEED_START_TOLERANCE_NS);
            if !alive {
                for ev in self.tracker.confirm_gone(pid, start_ns, now_ns) {
                    self.sink.write_event(&ev)?;
                }
            }
        }
        Ok(())
    }

    /// Brings the tracker in line with `live` (a /proc scan at `now_ns`) and writes what that proves.
    pub fn reconcile(&mut self, live: &[Observation], now_ns: u64) -> io::Result<()> {
        for ev in self.tracker.reconcile(live, now_ns) {
            self.sink.write_event(&ev)?;
        }
        Ok(())
    }

    /// Recovers after the source lost `count` observations (`None`: an
    /// unknown number; call once everything delivered is handled): says so
    /// (a `lost` record and a warning on stderr), rescans /proc and writes the
    /// transitions that proves, flagged `resynced`.
    pub fn recover(&mut self, count: Option<u64>, now_ns: u64) -> io::Result<()> {
        let what = count.map_or("some".to_string(), |n| n.to_string());
        eprintln!(
            "zonemon: warning: {what} observation(s) were lost (the kernel could not deliver them); \
             resynchronising from /proc (for eBPF, a larger --ring-size helps)"
        );
        self.sink.write_lost(count, now_ns)?;
        let live: Vec<Observation> = procscan::scan(Path::new("/proc"))
            .iter()
            .map(ProcZone::to_observation)
            .collect();
        for ev in self.tracker.resync(&live, now_ns) {
            self.sink.write_event(&ev)?;
        }
        Ok(())
    }
}

/// Adds what the observation lacks and userspace can still read: the
/// init's cgroup paths (read once, for the JSON `cgroup` and the name resolvers).
fn enrich(obs: &mut Observation) {
    if obs.cgroup.is_none()
        && matches!(
            obs.kind,
            ObservationKind::InitFork | ObservationKind::InitExec
        )
    {
        if let Ok(content) = std::fs::read_to_string(format!("/proc/{}/cgroup", obs.init_pid)) {
            let (best, more) = procscan::parse_cgroups(&content);
            obs.cgroup = best;
            obs.more_cgroups = Some(more);
        }
    }
}
