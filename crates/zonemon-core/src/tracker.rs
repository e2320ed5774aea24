//! The zone tracker: turns observations of zone inits into zone transitions.
//!
//! Pure logic, no I/O. It owns the table of zones that are not yet down and
//! enforces each zone's state machine, ready → booted → shutdown → down, so
//! that duplicated, late or out-of-order observations never produce a
//! transition twice or backwards, and missing ones are filled in where the
//! later observation proves they happened.
//!
//! Zones are keyed by their init task, (host PID, creation time): PID
//! namespace inode numbers and PIDs are both reused, the pair is not while
//! the task exists. Every zone gets a `zone_id` of its own, unique for the
//! tracker's lifetime. Where a zone's namespace is compared (a nested zone's
//! parent, a /proc observation matched to a known zone), the kernel's
//! never-reused namespace id decides when both sides know it, the inode
//! only otherwise (see [`crate::pidns`]).
//!
//! Zones found in /proc rather than seen by the kernel side ("seeded", at
//! start-up or after lost records) have a start time of clock-tick
//! granularity; the first kernel observation of the same init takes them over.
//!
//! This file is the state machine; the identity table and its indexes are in
//! `table.rs` (no transition walks the table: its cost does not grow with the
//! number of live zones), the reboot memory in `reboots.rs`.

mod reboots;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use crate::event::{EventKind, ZoneEvent};
use crate::exit::ExitStatus;
use crate::naming::{fallback_name, Lookup, NameResolver, ZoneFacts};
use crate::observation::{Observation, ObservationKind};
use crate::pidns::PidNs;

use reboots::RebootMemory;
pub use reboots::REBOOT_WINDOW_NS;
use table::{State, TaskKey, Zone, ZoneTable};
pub use table::{DOWN_GRACE_NS, DOWN_RECHECK_MAX_NS, SEED_CHECK_NS};

/// A /proc start time has clock-tick granularity: a seeded zone matches a
/// kernel observation of the same init whose exact start is this close.
pub const SEED_START_TOLERANCE_NS: u64 = 50_000_000;

/// What the tracker must know about the host to tell a zone's own hostname from an inherited one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Inode number of the host's (the monitor's) UTS namespace.
    pub utsns: u32,
    /// The host's hostname.
    pub hostname: String,
}

/// The zone table and its state machines. `R` supplies runtime names.
pub struct Tracker<R: NameResolver> {
    host: HostInfo,
    resolver: R,
    next_id: u64,
    zones: ZoneTable,
    reboots: RebootMemory,
    /// Whether the source reports OOM kills: then a shutdown says whether it was one.
    sees_oom: bool,
    /// Whether the source reports inits moved between cgroups
    /// ([`ObservationKind::InitCgroupMove`]): then what was read of a zone's
    /// cgroups holds until the next move (see [`Tracker::cgroups_current`]).
    sees_cgroup_moves: bool,
    /// What the observation being handled says of its init's surroundings, for its lookups only.
    fresh: Option<Fresh>,
}

/// What an observation brought of its init's surroundings: it serves that
/// observation's lookups only (by the next one, the processes may have changed).
#[derive(Debug, Clone, Copy)]
struct Fresh {
    /// The init's host PID.
    init_pid: u32,
    /// Its parent's PID, read with its cgroup (0 when not read).
    ppid: u32,
    /// Found gone when /proc was read.
    gone: bool,
    /// Who was above it when it was forked.
    lineage: Option<crate::lineage::Lineage>,
}

impl<R: NameResolver> Tracker<R> {
    /// An empty tracker for a host described by `host`, naming zones with `resolver` first.
    pub fn new(host: HostInfo, resolver: R) -> Self {
        Tracker {
            host,
            resolver,
            next_id: 1,
            zones: ZoneTable::new(),
            reboots: RebootMemory::new(),
            sees_oom: false,
            sees_cgroup_moves: false,
            fresh: None,
        }
    }

    /// The same tracker, told that its source reports OOM kills
    /// ([`ObservationKind::OomVictim`]): shutdowns then carry [`Oom`](crate::exit::Oom) marks.
    pub fn with_oom_kills(mut self, sees_oom: bool) -> Self {
        self.sees_oom = sees_oom;
        self
    }

    /// The same tracker, told that its source reports every move of a zone's
    /// init between cgroups ([`ObservationKind::InitCgroupMove`]).
    pub fn with_cgroup_moves(mut self, sees_moves: bool) -> Self {
        self.sees_cgroup_moves = sees_moves;
        self
    }

    /// Whether the cgroups the tracker holds for the zone whose init is
    /// (`init_pid`, `start_ns`) are as current as a new read could make them:
    /// read at a kernel observation with no move reported since, or the init
    /// found gone ([`Observation::init_gone`]). Then an observation of
    /// that init needs no new read of them. Always `false` unless the source
    /// reports moves ([`Tracker::with_cgroup_moves`]).
    pub fn cgroups_current(&self, init_pid: u32, start_ns: u64) -> bool {
        let key = TaskKey { init_pid, start_ns };
        self.sees_cgroup_moves && self.zones.contains(&key) && self.zones.at(&key).cgroups_read
    }

    /// The same tracker, numbering zones from `first_id` on instead of 1 (a
    /// daemon continues the ids its journal has already given out).
    pub fn with_first_id(mut self, first_id: u64) -> Self {
        self.next_id = first_id.max(1);
        self
    }

    /// Number of zones that are not yet down.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether no zone is known.
    pub fn is_empty(&self) -> bool {
        self.zones.len() == 0
    }

    /// Every zone not yet down, by zone id, as a record of the state it is in
    /// now, dated at its init's creation: [`EventKind::Ready`] (its init has
    /// not exec'd yet), [`EventKind::Running`] (booted) or
    /// [`EventKind::Shutdown`] (its init exited, other processes remain).
    pub fn running(&mut self) -> Vec<ZoneEvent> {
        let mut keys: Vec<(u64, TaskKey)> = self.zones.iter().map(|(k, z)| (z.id, *k)).collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(|(_, k)| {
                let kind = match self.zones.at(&k).state() {
                    State::Ready => EventKind::Ready,
                    State::Booted => EventKind::Running,
                    State::Shutdown => EventKind::Shutdown,
                };
                self.event(k, kind, k.start_ns)
            })
            .collect()
    }

    /// Adds a zone found already running (from a /proc scan) without reporting it.
    ///
    /// `obs` is an [`ObservationKind::InitExec`] observation for a zone whose
    /// init has exec'd its program (booted), [`ObservationKind::InitFork`] for
    /// one still ready. `obs.start_ns` may be approximate (clock ticks); the
    /// first kernel observation of the same init and namespace takes the zone
    /// over, and if that is its fork, the zone was born after the kernel side
    /// attached and is reported from `ready` on. Parents must be seeded before
    /// their children. `now_ns` is when /proc was scanned: the init is checked
    /// [`SEED_CHECK_NS`] later (see [`Tracker::overdue`]) unless the kernel side
    /// sees it first. Returns the zone's id.
    pub fn seed(&mut self, obs: &Observation, now_ns: u64) -> u64 {
        let key = self.seed_zone(obs, false, now_ns);
        self.zones.at(&key).id
    }

    /// The zones seeded and not reported since, as [`EventKind::Running`]
    /// records flagged `initial`, by zone id; each is reported once.
    pub fn initial(&mut self) -> Vec<ZoneEvent> {
        let mut keys: Vec<(u64, TaskKey)> = self
            .zones
            .iter()
            .filter(|(_, z)| z.seeded && !z.reported)
            .map(|(k, z)| (z.id, *k))
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(|(_, k)| {
                self.zones.get_mut(&k).expect("listed").reported = true;
                let mut ev = self.event(k, EventKind::Running, k.start_ns);
                ev.initial = true;
                ev
            })
            .collect()
    }

    /// [`Tracker::reconcile`] after the kernel side lost records: the same
    /// transitions, flagged `resynced` (inferred, not seen as they happened).
    ///
    /// Call it only once every record the kernel did deliver is handled.
    pub fn resync(&mut self, live: &[Observation], now_ns: u64) -> Vec<ZoneEvent> {
        let mut out = self.reconcile(live, now_ns);
        out.iter_mut().for_each(|e| e.resynced = true);
        out
    }

    /// Brings the table in line with `live`, the zones a /proc scan found at
    /// `now_ns`, and returns the transitions this proves: zones gone meanwhile
    /// shut down (exit status unknown) and go down; zones that appeared are
    /// ready (and booted, if their init exec'd). Afterwards the table holds
    /// exactly the zones of `live`. This is all a polling source knows.
    pub fn reconcile(&mut self, live: &[Observation], now_ns: u64) -> Vec<ZoneEvent> {
        let mut out = Vec::new();
        let mut matched = HashSet::new();
        let mut fresh = Vec::new();
        for obs in live {
            match self.find_live(obs.init_pid, obs.pid_ns(), obs.start_ns, true) {
                Some(key) => {
                    matched.insert(key);
                    let zone = self.zones.at(&key);
                    if zone.state() == State::Ready && obs.kind == ObservationKind::InitExec {
                        out.push(self.booted_event(key, now_ns));
                    }
                }
                None => fresh.push(obs),
            }
        }
        let mut vanished: Vec<(u64, TaskKey)> = self
            .zones
            .iter()
            .filter(|(k, _)| !matched.contains(*k))
            .map(|(k, z)| (z.id, *k))
            .collect();
        vanished.sort_unstable();
        for (_, key) in vanished {
            self.retire(key, now_ns, &mut out);
        }
        for obs in fresh {
            let key = self.seed_zone(obs, true, now_ns);
            out.push(self.event(key, EventKind::Ready, obs.start_ns));
            if obs.kind == ObservationKind::InitExec {
                out.push(self.booted_event(key, now_ns));
            }
        }
        out
    }

    /// The inits (host PID, start time) of zones whose `down` is overdue at
    /// `now_ns` (shut down more than [`DOWN_GRACE_NS`] before, or due for
    /// another check), and of zones found in /proc whose check is due (see
    /// [`SEED_CHECK_NS`]): their `down`, or their init's exit, may have been
    /// missed. The caller checks whether each init still exists and says so
    /// with [`Tracker::confirm_gone`] or [`Tracker::confirm_still_there`].
    pub fn overdue(&self, now_ns: u64) -> Vec<(u32, u64)> {
        self.zones
            .overdue(now_ns)
            .map(|k| (k.init_pid, k.start_ns))
            .collect()
    }

    /// When the next zone waiting for its `down` becomes overdue (see
    /// [`Tracker::overdue`]); `None` while no shut-down zone waits. A
    /// monitor sets its timer to this, and has no timer otherwise.
    pub fn next_down_check(&self) -> Option<u64> {
        self.zones.next_down_due()
    }

    /// The init (`init_pid`, `start_ns`) of an overdue zone still exists at
    /// `now_ns`; `exiting` says it has exited and waits to be reaped (or is
    /// past releasing its memory). A zone found in /proc whose init runs needs
    /// no further check (the kernel side will see its exit); otherwise it is
    /// checked again later, after twice the previous wait (at most
    /// [`DOWN_RECHECK_MAX_NS`]).
    pub fn confirm_still_there(
        &mut self,
        init_pid: u32,
        start_ns: u64,
        now_ns: u64,
        exiting: bool,
    ) {
        let key = TaskKey { init_pid, start_ns };
        let shut_down = self.zones.contains(&key) && self.zones.at(&key).state() == State::Shutdown;
        if shut_down || exiting {
            self.zones.recheck_later(&key, now_ns);
        } else {
            self.zones.checked(&key);
        }
    }

    /// The init (`init_pid`, `start_ns`) of a zone is proven gone at `now_ns`
    /// (its /proc entry is): reports the zone down, flagged `resynced`.
    pub fn confirm_gone(&mut self, init_pid: u32, start_ns: u64, now_ns: u64) -> Vec<ZoneEvent> {
        let mut out = Vec::new();
        let key = TaskKey { init_pid, start_ns };
        if self.zones.contains(&key) {
            self.retire(key, now_ns, &mut out);
            out.iter_mut().for_each(|e| e.resynced = true);
        }
        out
    }

    /// Feeds one observation; returns the transitions it proves, in order.
    pub fn observe(&mut self, obs: &Observation) -> Vec<ZoneEvent> {
        // What was read of the init for this observation serves this observation's lookups only.
        self.fresh =
            (obs.init_ppid != 0 || obs.init_gone || obs.lineage.is_some()).then_some(Fresh {
                init_pid: obs.init_pid,
                ppid: obs.init_ppid,
                gone: obs.init_gone,
                lineage: obs.lineage,
            });
        let out = self.observe_inner(obs);
        self.fresh = None;
        out
    }

    fn observe_inner(&mut self, obs: &Observation) -> Vec<ZoneEvent> {
        let mut out = Vec::new();
        let key = TaskKey {
            init_pid: obs.init_pid,
            start_ns: obs.start_ns,
        };
        if self.zones.is_gone(&key) {
            return out; // a late observation of a zone already down
        }
        if obs.kind == ObservationKind::OomVictim {
            // Marks a zone known and not yet shut down; never makes one.
            if let Some(key) = self.find_live(key.init_pid, obs.pid_ns(), key.start_ns, false) {
                let zone = self.zones.get_mut(&key).expect("found");
                if zone.state() != State::Shutdown {
                    zone.oom.mark(obs.victim_pid == obs.init_pid);
                }
            }
            return out;
        }
        if obs.kind == ObservationKind::InitCgroupMove {
            if let Some(zone) = self.zones.get_mut(&key) {
                zone.cgroups_read = false;
            }
            return out;
        }
        if obs.kind == ObservationKind::InitFree {
            if let Some(key) = self.find_live(key.init_pid, PidNs::UNKNOWN, key.start_ns, false) {
                self.retire(key, obs.ts_ns, &mut out);
            } // else never known: created and gone while nobody watched
            return out;
        }
        let key = self.take_over_seeded(key, obs, &mut out);
        if !self.zones.contains(&key) {
            let zone = self.new_zone(obs);
            self.zones.insert(key, zone);
            if obs.kind != ObservationKind::InitExit {
                // The fork was seen, or is proven by a later observation: the zone was ready at its init's creation.
                out.push(self.event(key, EventKind::Ready, obs.start_ns));
            }
        }
        let zone = self.zones.get_mut(&key).expect("inserted above");
        if zone.state() == State::Shutdown {
            return out; // late or duplicated: the zone has already shut down
        }
        if obs.ts_ns >= zone.last_ts {
            zone.last_ts = obs.ts_ns;
            zone.utsns = obs.utsns;
            zone.nodename.clone_from(&obs.nodename);
            zone.comm.clone_from(&obs.comm);
        }
        if obs.more_cgroups.is_some() && zone.state() == State::Ready {
            zone.more_cgroups.clone_from(&obs.more_cgroups);
        }
        if obs.cgroup.is_some() {
            zone.cgroup.clone_from(&obs.cgroup);
            zone.cgroups_read = true;
        }
        if obs.init_gone {
            zone.cgroups_read = true; // nothing more to read
        }
        match obs.kind {
            ObservationKind::InitFork
            | ObservationKind::InitFree
            | ObservationKind::OomVictim
            | ObservationKind::InitCgroupMove => {}
            ObservationKind::InitExec => {
                if zone.state() == State::Ready {
                    out.push(self.booted_event(key, obs.ts_ns));
                }
            }
            ObservationKind::InitExit => {
                out.push(self.shutdown_event(key, obs.ts_ns, Some(obs.exit_status)));
            }
        }
        out
    }

    /// Moves the zone to booted and returns the transition, with `reboot_of` when it is one.
    fn booted_event(&mut self, key: TaskKey, ts_ns: u64) -> ZoneEvent {
        self.zones.set_state(&key, State::Booted);
        let mut ev = self.event(key, EventKind::Booted, ts_ns);
        if !ev.name_source.is_identity() {
            if let Some((prev, gap)) = self.reboots.booted(&ev.name, ev.zone_id, ts_ns) {
                ev.reboot_of = Some(prev);
                ev.reboot_gap_ns = Some(gap);
            }
            ev.restart_count = Some(self.reboots.count_boot(&ev.name));
        }
        ev
    }

    /// Moves the zone to shutdown and returns the transition; `status` is the
    /// wait() status when the exit was seen. Remembers the name for reboot detection.
    fn shutdown_event(&mut self, key: TaskKey, ts_ns: u64, status: Option<i32>) -> ZoneEvent {
        self.zones.shut_down(&key, status.map(|_| ts_ns));
        let mut ev = self.event(key, EventKind::Shutdown, ts_ns);
        ev.exit = status.map(ExitStatus::from_wait_status);
        ev.uptime_ns = Some(ts_ns.saturating_sub(key.start_ns));
        if self.sees_oom {
            ev.oom = Some(self.zones.at(&key).oom);
        }
        if !ev.name_source.is_identity() {
            self.reboots.shut_down(&ev.name, ev.zone_id, ts_ns);
        }
        ev
    }

    /// The zone is down (and shut down first, if its exit was never seen): report, forget.
    fn retire(&mut self, key: TaskKey, ts_ns: u64, out: &mut Vec<ZoneEvent>) {
        if self.zones.at(&key).state() != State::Shutdown {
            out.push(self.shutdown_event(key, ts_ns, None));
        }
        let mut ev = self.event(key, EventKind::Down, ts_ns);
        ev.shutdown_ns = self
            .zones
            .at(&key)
            .exit_ts()
            .map(|t| ts_ns.saturating_sub(t));
        out.push(ev);
        self.zones.retire(&key);
    }

    /// If `key` is a seeded zone's init, re-keys it to the exact kernel identity.
    /// A seeded zone never reported whose fork is seen now was born after the
    /// kernel side attached: it starts over from ready, reported from here.
    fn take_over_seeded(
        &mut self,
        key: TaskKey,
        obs: &Observation,
        out: &mut Vec<ZoneEvent>,
    ) -> TaskKey {
        if self.zones.contains(&key) {
            return key;
        }
        let Some(old) = self.find_live(key.init_pid, obs.pid_ns(), key.start_ns, false) else {
            return key;
        };
        let mut zone = self.zones.remove(&old).expect("present").seen();
        let born_while_watching = !zone.reported && obs.kind == ObservationKind::InitFork;
        zone.reported = true;
        if born_while_watching {
            zone = zone.starting_in(State::Ready);
        }
        self.zones.insert(key, zone);
        if born_while_watching {
            out.push(self.event(key, EventKind::Ready, key.start_ns));
        }
        key
    }

    /// The live zone whose init is `init_pid` and started at `start_ns`: exactly,
    /// or approximately when either side comes from /proc (`approx`, or a seeded
    /// zone), and then also in namespace `pidns` (unless unknown).
    fn find_live(
        &self,
        init_pid: u32,
        pidns: PidNs,
        start_ns: u64,
        approx: bool,
    ) -> Option<TaskKey> {
        let exact = TaskKey { init_pid, start_ns };
        if self.zones.contains(&exact) {
            return Some(exact);
        }
        self.zones
            .find_near(init_pid, start_ns, SEED_START_TOLERANCE_NS, |z| {
                (approx || z.seeded) && (pidns == PidNs::UNKNOWN || pidns.same_as(z.pidns()))
            })
    }

    fn seed_zone(&mut self, obs: &Observation, reported: bool, now_ns: u64) -> TaskKey {
        let key = TaskKey {
            init_pid: obs.init_pid,
            start_ns: obs.start_ns,
        };
        if self.zones.contains(&key) {
            return key;
        }
        let mut zone = self
            .new_zone(obs)
            .starting_in(match obs.kind {
                ObservationKind::InitFork => State::Ready,
                _ => State::Booted,
            })
            .seeded_at(now_ns);
        zone.reported = reported;
        self.zones.insert(key, zone);
        key
    }

    /// A zone known from its first observation `obs`, with the next zone id.
    fn new_zone(&mut self, obs: &Observation) -> Zone {
        let parent = (obs.level > 1)
            .then(|| self.zones.newest_in(obs.parent_ns()))
            .flatten()
            .filter(|p| obs.parent_init_pid == 0 || p.init_pid == obs.parent_init_pid);
        let id = self.next_id;
        self.next_id += 1;
        Zone::new(id, obs, parent, (self.host.utsns, &self.host.hostname))
    }

    /// A transition of the zone at `key`, named as the zone is named now.
    fn event(&mut self, key: TaskKey, kind: EventKind, ts_ns: u64) -> ZoneEvent {
        let zone = self.zones.get_mut(&key).expect("caller checked");
        // Runtimes write their state before the zone's program starts and may delete it at
        // shutdown; once the init is gone its PID may be anyone's: ask only while it lives.
        let init_alive = matches!(
            kind,
            EventKind::Ready | EventKind::Booted | EventKind::Running
        );
        if zone.runtime_name.is_none() && !zone.unclaimed && init_alive {
            let fresh = self.fresh.filter(|f| f.init_pid == zone.init_pid);
            let facts = ZoneFacts {
                init_pid: zone.init_pid,
                start_ns: key.start_ns,
                creator_pid: zone.creator_pid,
                init_ppid: fresh.map_or(0, |f| f.ppid),
                init_gone: fresh.is_some_and(|f| f.gone),
                lineage: fresh.and_then(|f| f.lineage),
                pidns: zone.pidns().inode,
                level: zone.level,
                hostname: zone.hostname(),
                cgroup: zone.cgroup.as_deref(),
                more_cgroups: zone.more_cgroups.as_deref(),
                comm: &zone.comm,
            };
            match self.resolver.lookup(&facts) {
                Lookup::Named(name) => zone.runtime_name = Some(Box::new(name)),
                Lookup::NotYet => {}
                Lookup::Never => zone.unclaimed = true,
            }
        }
        if kind != EventKind::Ready {
            // The other hierarchies' paths serve the lookups only, the last of which is at
            // the boot (a resolver asked later reads them itself): not kept for the zone's life.
            zone.more_cgroups = None;
        }
        let hostname = zone.hostname().map(str::to_string);
        let (name, name_source, runtime, container_id, k8s, meta) = match &zone.runtime_name {
            Some(r) => (
                r.name.clone(),
                r.source,
                r.runtime.clone(),
                r.container_id.clone(),
                r.k8s.clone(),
                r.meta.clone(),
            ),
            None => {
                let (n, s) = fallback_name(
                    zone.pidns().inode,
                    zone.level,
                    zone.init_pid,
                    hostname.as_deref(),
                );
                (n, s, None, None, None, None)
            }
        };
        ZoneEvent {
            kind,
            ts_ns,
            zone_id: zone.id,
            name,
            name_source,
            runtime,
            container_id,
            k8s,
            pidns: zone.pidns().inode,
            pidns_id: zone.pidns().id,
            init_pid: zone.init_pid,
            level: zone.level,
            parent_zone_id: zone.parent_zone_id,
            hostname,
            cgroup: zone.cgroup.clone(),
            exit: None,
            oom: None,
            meta,
            restart_count: None,
            uptime_ns: None,
            shutdown_ns: None,
            initial: false,
            resynced: false,
            reboot_of: None,
            reboot_gap_ns: None,
        }
    }
}
