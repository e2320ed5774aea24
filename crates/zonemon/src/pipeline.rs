//! From observations to written transitions: the tracker between a source and
//! a sink, and the recovery when a source lost observations.

use std::io;
use std::path::Path;
use std::time::Instant;

use zonemon_core::output::Sink;
use zonemon_core::procscan::{self, ProcZone};
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
    /// How many times the heap was trimmed.
    trims: u64,
    /// Where to record the cost of each observation (`--stats`).
    stats: Option<SharedStats>,
}

/// After this many observations the allocator gives freed memory back, once
/// the loop is idle, so that a long churn leaves no fragmentation behind (the
/// live heap is flat). Not between records: `malloc_trim` on a warmed heap
/// costs 0.1–2 ms.
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
            trims: 0,
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

    /// Adds `zones` (parents first), found in /proc just now, to the tracker without reporting them.
    pub fn seed(&mut self, zones: &[ProcZone]) {
        let now = boot_time_ns();
        for zone in zones {
            self.tracker.seed(&zone.to_observation(), now);
        }
    }

    /// Every zone not yet down, as a record of the state it is in now (see [`Tracker::running`]).
    pub fn running(&mut self) -> Vec<zonemon_core::ZoneEvent> {
        self.tracker.running()
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
        let current = obs.kind == ObservationKind::InitExec
            && self.tracker.cgroups_current(obs.init_pid, obs.start_ns);
        if !current {
            enrich(Path::new("/proc"), &mut obs);
        }
        for ev in self.tracker.observe(&obs) {
            self.sink.write_event(&ev)?;
        }
        if let (Some(stats), Some(start)) = (&self.stats, start) {
            stats
                .borrow_mut()
                .handle
                .push(start.elapsed().as_nanos() as u64);
        }
        self.since_trim = self.since_trim.saturating_add(1);
        Ok(())
    }

    /// Called when the source has nothing pending and the loop is about to
    /// sleep: gives freed memory back to the system if many observations
    /// were handled since the last time (off the event path).
    pub fn idle(&mut self) {
        if self.since_trim >= TRIM_EVERY {
            self.since_trim = 0;
            self.trims += 1;
            // SAFETY: malloc_trim only releases free memory of glibc's heap.
            unsafe { libc::malloc_trim(0) };
        }
    }

    /// Reports down the zones whose `down` is overdue (shut down more than
    /// two seconds ago, see [`zonemon_core::tracker::DOWN_GRACE_NS`]) and
    /// whose init /proc no longer has: a free the kernel side did not see
    /// must not leave a zone shut down forever. An init still there, or one
    /// whose zone the source says it still `holds` (a host-PID zone's other
    /// processes run on), is checked again later. Zones found in /proc are checked once, a second
    /// after (see [`zonemon_core::tracker::SEED_CHECK_NS`]): an init that was
    /// already exiting when the kernel side attached is reported shut down
    /// and down once it is gone. Cheap when nothing is due (one look at the
    /// first deadline); the event loop calls it after each batch and when
    /// the timer set to [`Pipeline::next_down_check`] fires.
    pub fn sweep_overdue(&mut self, now_ns: u64, holds: impl Fn(u32) -> bool) -> io::Result<()> {
        for (pid, start_ns) in self.tracker.overdue(now_ns) {
            let exiting = procscan::process_exiting(Path::new("/proc"), pid, start_ns)
                .or_else(|| holds(pid).then_some(true));
            match exiting {
                Some(exiting) => {
                    self.tracker
                        .confirm_still_there(pid, start_ns, now_ns, exiting);
                }
                None => {
                    for ev in self.tracker.confirm_gone(pid, start_ns, now_ns) {
                        self.sink.write_event(&ev)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// When the next shut-down zone's `down` becomes overdue (CLOCK_BOOTTIME
    /// ns); `None` while no zone waits for one.
    pub fn next_down_check(&self) -> Option<u64> {
        self.tracker.next_down_check()
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
    /// transitions that proves, flagged `resynced`. Returns that scan, so a
    /// source that follows zones itself follows exactly the ones the tracker
    /// now knows (a second scan would leave a window between the two).
    pub fn recover(&mut self, count: Option<u64>, now_ns: u64) -> io::Result<Vec<ProcZone>> {
        self.recover_with(count, now_ns, || procscan::scan(Path::new("/proc")))
    }

    /// [`Self::recover`] with the zones running now from `scan`, called once.
    pub fn recover_with(
        &mut self,
        count: Option<u64>,
        now_ns: u64,
        scan: impl FnOnce() -> Vec<ProcZone>,
    ) -> io::Result<Vec<ProcZone>> {
        let what = count.map_or("some".to_string(), |n| n.to_string());
        tracing::warn!(
            "{what} observation(s) were lost (the kernel could not deliver them); \
             resynchronising from /proc (for eBPF, a larger --ring-size helps)"
        );
        self.sink.write_lost(count, now_ns)?;
        let zones = scan();
        let live: Vec<Observation> = zones.iter().map(ProcZone::to_observation).collect();
        for ev in self.tracker.resync(&live, now_ns) {
            self.sink.write_event(&ev)?;
        }
        Ok(zones)
    }
}

/// Adds what the observation lacks and userspace can still read below
/// `proc_root`: the init's cgroup paths and parent (read once, for the JSON
/// `cgroup` and the name resolvers), only while its PID is still that init's.
/// [`Pipeline::handle`] skips it for an exec when the tracker's copy is
/// current (read at the fork, with no move between cgroups reported since, or
/// the init found gone then): a zone's init is read once, not at every exec.
/// An init proved gone (no process has its PID and start time any more) is
/// marked so ([`Observation::init_gone`]): neither the name resolvers nor a
/// later observation look for it again.
fn enrich(proc_root: &Path, obs: &mut Observation) {
    let wanted = matches!(
        obs.kind,
        ObservationKind::InitFork | ObservationKind::InitExec
    );
    if obs.cgroup.is_some() || !wanted {
        return;
    }
    match procscan::cgroups_if_started_at(proc_root, obs.init_pid, obs.start_ns) {
        Ok(init) => {
            obs.cgroup = init.cgroup;
            obs.more_cgroups = Some(init.more_cgroups);
            obs.init_ppid = init.ppid;
        }
        Err(procscan::NotRead::Gone) => obs.init_gone = true,
        Err(procscan::NotRead::Unreadable) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_is_trimmed_only_when_idle() {
        let mut p = crate::testsink::pipeline(crate::testsink::SharedBuf::default());
        for _ in 0..2 * TRIM_EVERY {
            p.handle(Observation::new(ObservationKind::InitFree))
                .unwrap();
        }
        assert_eq!(p.trims, 0, "never on the event path");
        p.idle();
        assert_eq!(p.trims, 1);
        p.idle();
        assert_eq!(p.trims, 1, "not again until many more observations");
    }

    /// A fake `/proc/300` that started `ticks` clock ticks after boot, in cgroup `/other`.
    fn fake_proc(ticks: u64) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("zonemon-enrich-{}-{ticks}", std::process::id()));
        let dir = root.join("300");
        std::fs::create_dir_all(&dir).unwrap();
        let stat =
            format!("300 (sleep) S 1 300 300 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {ticks} 0 0");
        std::fs::write(dir.join("stat"), stat).unwrap();
        std::fs::write(dir.join("cgroup"), "0::/other\n").unwrap();
        root
    }

    fn exec_of_init_started_at(start_ns: u64) -> Observation {
        let mut obs = Observation::new(ObservationKind::InitExec);
        obs.init_pid = 300;
        obs.start_ns = start_ns;
        obs
    }

    #[test]
    fn takes_the_cgroup_of_the_zones_own_init() {
        let tick = 1_000_000_000 / clock_ticks_per_s();
        let root = fake_proc(500);
        let mut obs = exec_of_init_started_at(500 * tick + 3_000_000);
        enrich(&root, &mut obs);
        assert!(!obs.init_gone);
        assert_eq!(obs.cgroup.as_deref(), Some("/other"));
        assert_eq!(obs.init_ppid, 1, "its parent, for the name resolvers");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_reused_pid_does_not_lend_its_cgroup() {
        let tick = 1_000_000_000 / clock_ticks_per_s();
        // PID 300 now belongs to a process started 20 s after the zone's init.
        let root = fake_proc(700 + 20_000_000_000 / tick);
        let gone = |obs: &mut Observation| {
            obs.init_gone = false;
            enrich(&root, obs);
            obs.init_gone
        };
        let mut obs = exec_of_init_started_at(700 * tick);
        assert!(gone(&mut obs), "the zone's init is gone");
        assert_eq!(obs.cgroup, None);
        assert_eq!(obs.more_cgroups, None);
        assert_eq!(obs.init_ppid, 0);
        // No process at all has the PID: gone too.
        std::fs::remove_dir_all(root.join("300")).unwrap();
        assert!(gone(&mut obs));
        // One whose files cannot be read may still exist: not gone.
        std::fs::create_dir_all(root.join("300")).unwrap();
        assert!(!gone(&mut obs));
        std::fs::remove_dir_all(root).unwrap();
    }

    /// Clock ticks per second, as /proc counts them.
    fn clock_ticks_per_s() -> u64 {
        // SAFETY: sysconf has no memory-safety preconditions.
        u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100)
    }
}
