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
//! tracker's lifetime.
//!
//! Zones found in /proc rather than seen by the kernel side ("seeded", at
//! start-up or after lost records) have a start time of clock-tick
//! granularity; the first kernel observation of the same init takes them over.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use crate::event::{EventKind, ZoneEvent};
use crate::exit::ExitStatus;
use crate::naming::{
    fallback_name, own_hostname, NameResolver, NameSource, ResolvedName, ZoneFacts,
};
use crate::observation::{Observation, ObservationKind};
use crate::recent::RecentMap;

/// A /proc start time has clock-tick granularity: a seeded zone matches a
/// kernel observation of the same init whose exact start is this close.
pub const SEED_START_TOLERANCE_NS: u64 = 50_000_000;

/// How many zones that went down are remembered, so that a late observation of one is ignored.
const GONE_MEMORY: usize = 4096;

/// A zone booting with the name of one that shut down at most this long before is its reboot.
pub const REBOOT_WINDOW_NS: u64 = 60_000_000_000;

/// How many recent shutdowns are remembered for reboot detection.
const REBOOT_MEMORY: usize = 4096;

/// What the tracker must know about the host to tell a zone's own hostname from an inherited one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Inode number of the host's (the monitor's) UTS namespace.
    pub utsns: u32,
    /// The host's hostname.
    pub hostname: String,
}

/// Identity of a zone's init task while it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct TaskKey {
    init_pid: u32,
    start_ns: u64,
}

/// Where a zone is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Ready,
    Booted,
    Shutdown,
}

/// A zone that is not yet down.
#[derive(Debug, Clone)]
struct Zone {
    id: u64,
    state: State,
    pidns: u32,
    level: u32,
    init_pid: u32,
    creator_pid: u32,
    parent_zone_id: Option<u64>,
    utsns: u32,
    nodename: String,
    parent_utsns: u32,
    parent_nodename: String,
    comm: String,
    cgroup: Option<String>,
    more_cgroups: Option<Vec<String>>,
    runtime_name: Option<ResolvedName>,
    /// Whether the resolver said no later look can name the zone (no runtime made it).
    unclaimed: bool,
    exit_ts: Option<u64>,
    /// Kernel time of the newest observation applied, so that a late one never overwrites newer facts.
    last_ts: u64,
    /// Found in /proc: the key's start time is approximate until a kernel observation takes it over.
    seeded: bool,
    /// Its existence was reported (a transition or an initial `running` record was emitted).
    reported: bool,
}

impl Zone {
    fn hostname(&self) -> Option<&str> {
        own_hostname(
            self.utsns,
            &self.nodename,
            self.parent_utsns,
            &self.parent_nodename,
        )
    }
}

/// The zone table and its state machines. `R` supplies runtime names.
pub struct Tracker<R: NameResolver> {
    host: HostInfo,
    resolver: R,
    next_id: u64,
    zones: HashMap<TaskKey, Zone>,
    /// The newest zone of each PID namespace inode, to find nested zones' parents.
    by_pidns: HashMap<u32, TaskKey>,
    /// Inits of zones that went down lately (bounded, oldest forgotten first).
    gone: RecentMap<TaskKey, ()>,
    /// Recent shutdowns by the [`Tracker::name_key`] of their name: (zone
    /// id, time), for reboot detection (bounded).
    shutdowns: RecentMap<u64, (u64, u64)>,
    /// The keyed hash behind [`Tracker::name_key`], random per tracker.
    name_hasher: RandomState,
}

impl<R: NameResolver> Tracker<R> {
    /// An empty tracker for a host described by `host`, naming zones with `resolver` first.
    pub fn new(host: HostInfo, resolver: R) -> Self {
        Tracker {
            host,
            resolver,
            next_id: 1,
            zones: HashMap::new(),
            by_pidns: HashMap::new(),
            gone: RecentMap::new(GONE_MEMORY),
            shutdowns: RecentMap::new(REBOOT_MEMORY),
            name_hasher: RandomState::new(),
        }
    }

    /// The same tracker, numbering zones from `first_id` on instead of 1 (a
    /// daemon continues the ids its journal has already given out).
    pub fn with_first_id(mut self, first_id: u64) -> Self {
        self.next_id = first_id.max(1);
        self
    }

    /// A zone name as a key of the reboot memory: a 64-bit hash keyed at
    /// random per tracker, so the memory holds no strings (two names
    /// collide with a chance of 2^-64, and no zone owner can aim for it).
    fn name_key(&self, name: &str) -> u64 {
        self.name_hasher.hash_one(name)
    }

    /// Number of zones that are not yet down.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether no zone is known.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
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
                let kind = match self.zones[&k].state {
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
    /// their children. Returns the zone's id.
    pub fn seed(&mut self, obs: &Observation) -> u64 {
        let key = self.seed_zone(obs, false);
        self.zones[&key].id
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
            match self.find_live(obs.init_pid, obs.pidns, obs.start_ns, true) {
                Some(key) => {
                    matched.insert(key);
                    let zone = self.zones.get_mut(&key).expect("found");
                    if zone.state == State::Ready && obs.kind == ObservationKind::InitExec {
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
            let key = self.seed_zone(obs, true);
            out.push(self.event(key, EventKind::Ready, obs.start_ns));
            if obs.kind == ObservationKind::InitExec {
                out.push(self.booted_event(key, now_ns));
            }
        }
        out
    }

    /// The inits (host PID, start time) of zones that shut down more than
    /// `grace_ns` before `now_ns` and are still not down: their `down` may
    /// have been missed. The caller checks whether each init still exists.
    pub fn overdue(&self, now_ns: u64, grace_ns: u64) -> Vec<(u32, u64)> {
        self.zones
            .iter()
            .filter(|(_, z)| z.state == State::Shutdown)
            .filter(|(_, z)| {
                z.exit_ts
                    .is_some_and(|t| now_ns.saturating_sub(t) > grace_ns)
            })
            .map(|(k, _)| (k.init_pid, k.start_ns))
            .collect()
    }

    /// The init (`init_pid`, `start_ns`) of a zone is proven gone at `now_ns`
    /// (its /proc entry is): reports the zone down, flagged `resynced`.
    pub fn confirm_gone(&mut self, init_pid: u32, start_ns: u64, now_ns: u64) -> Vec<ZoneEvent> {
        let mut out = Vec::new();
        let key = TaskKey { init_pid, start_ns };
        if self.zones.contains_key(&key) {
            self.retire(key, now_ns, &mut out);
            out.iter_mut().for_each(|e| e.resynced = true);
        }
        out
    }

    /// Feeds one observation; returns the transitions it proves, in order.
    pub fn observe(&mut self, obs: &Observation) -> Vec<ZoneEvent> {
        let mut out = Vec::new();
        let key = TaskKey {
            init_pid: obs.init_pid,
            start_ns: obs.start_ns,
        };
        if self.gone.contains(&key) {
            return out; // a late observation of a zone already down
        }
        if obs.kind == ObservationKind::InitFree {
            if let Some(key) = self.find_live(key.init_pid, 0, key.start_ns, false) {
                self.retire(key, obs.ts_ns, &mut out);
            } // else never known: created and gone while nobody watched
            return out;
        }
        let key = self.take_over_seeded(key, obs, &mut out);
        if !self.zones.contains_key(&key) {
            let zone = self.new_zone(obs);
            self.insert(key, zone);
            if obs.kind != ObservationKind::InitExit {
                // The fork was seen, or is proven by a later observation: the zone was ready at its init's creation.
                out.push(self.event(key, EventKind::Ready, obs.start_ns));
            }
        }
        let zone = self.zones.get_mut(&key).expect("inserted above");
        if zone.state == State::Shutdown {
            return out; // late or duplicated: the zone has already shut down
        }
        if obs.ts_ns >= zone.last_ts {
            zone.last_ts = obs.ts_ns;
            zone.utsns = obs.utsns;
            zone.nodename.clone_from(&obs.nodename);
            zone.comm.clone_from(&obs.comm);
        }
        if obs.more_cgroups.is_some() {
            zone.more_cgroups.clone_from(&obs.more_cgroups);
        }
        if obs.cgroup.is_some() {
            zone.cgroup.clone_from(&obs.cgroup);
        }
        match obs.kind {
            ObservationKind::InitFork | ObservationKind::InitFree => {}
            ObservationKind::InitExec => {
                if zone.state == State::Ready {
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
        self.zones.get_mut(&key).expect("caller checked").state = State::Booted;
        let mut ev = self.event(key, EventKind::Booted, ts_ns);
        if ev.name_source != NameSource::PidNs {
            let name = self.name_key(&ev.name);
            if let Some(&(prev, at)) = self.shutdowns.get(&name) {
                if prev != ev.zone_id && at <= ts_ns && ts_ns - at <= REBOOT_WINDOW_NS {
                    ev.reboot_of = Some(prev);
                    ev.reboot_gap_ns = Some(ts_ns - at);
                    self.shutdowns.remove(&name);
                }
            }
        }
        ev
    }

    /// Moves the zone to shutdown and returns the transition; `status` is the
    /// wait() status when the exit was seen. Remembers the name for reboot detection.
    fn shutdown_event(&mut self, key: TaskKey, ts_ns: u64, status: Option<i32>) -> ZoneEvent {
        let zone = self.zones.get_mut(&key).expect("caller checked");
        zone.state = State::Shutdown;
        zone.exit_ts = status.map(|_| ts_ns);
        let mut ev = self.event(key, EventKind::Shutdown, ts_ns);
        ev.exit = status.map(ExitStatus::from_wait_status);
        ev.uptime_ns = Some(ts_ns.saturating_sub(key.start_ns));
        if ev.name_source != NameSource::PidNs {
            let name = self.name_key(&ev.name);
            self.shutdowns.insert(name, (ev.zone_id, ts_ns));
        }
        ev
    }

    /// The zone is down (and shut down first, if its exit was never seen): report, forget.
    fn retire(&mut self, key: TaskKey, ts_ns: u64, out: &mut Vec<ZoneEvent>) {
        if self.zones[&key].state != State::Shutdown {
            out.push(self.shutdown_event(key, ts_ns, None));
        }
        let mut ev = self.event(key, EventKind::Down, ts_ns);
        ev.shutdown_ns = self.zones[&key].exit_ts.map(|t| ts_ns.saturating_sub(t));
        out.push(ev);
        let zone = self.zones.remove(&key).expect("present");
        if self.by_pidns.get(&zone.pidns) == Some(&key) {
            self.by_pidns.remove(&zone.pidns);
        }
        self.gone.insert(key, ());
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
        if self.zones.contains_key(&key) {
            return key;
        }
        let Some(old) = self.find_live(key.init_pid, obs.pidns, key.start_ns, false) else {
            return key;
        };
        let mut zone = self.zones.remove(&old).expect("present");
        zone.seeded = false;
        let born_while_watching = !zone.reported && obs.kind == ObservationKind::InitFork;
        zone.reported = true;
        if born_while_watching {
            zone.state = State::Ready;
        }
        self.insert(key, zone);
        if born_while_watching {
            out.push(self.event(key, EventKind::Ready, key.start_ns));
        }
        key
    }

    /// The live zone whose init is `init_pid` and started at `start_ns`: exactly,
    /// or approximately when either side comes from /proc (`approx`, or a seeded
    /// zone), and then also in namespace `pidns` (unless 0).
    fn find_live(&self, init_pid: u32, pidns: u32, start_ns: u64, approx: bool) -> Option<TaskKey> {
        let exact = TaskKey { init_pid, start_ns };
        if self.zones.contains_key(&exact) {
            return Some(exact);
        }
        self.zones
            .iter()
            .find(|(k, z)| {
                (approx || z.seeded)
                    && k.init_pid == init_pid
                    && (pidns == 0 || pidns == z.pidns)
                    && k.start_ns.abs_diff(start_ns) <= SEED_START_TOLERANCE_NS
            })
            .map(|(k, _)| *k)
    }

    fn seed_zone(&mut self, obs: &Observation, reported: bool) -> TaskKey {
        let key = TaskKey {
            init_pid: obs.init_pid,
            start_ns: obs.start_ns,
        };
        if self.zones.contains_key(&key) {
            return key;
        }
        let mut zone = self.new_zone(obs);
        zone.state = match obs.kind {
            ObservationKind::InitFork => State::Ready,
            _ => State::Booted,
        };
        zone.seeded = true;
        zone.reported = reported;
        self.insert(key, zone);
        key
    }

    fn insert(&mut self, key: TaskKey, zone: Zone) {
        self.by_pidns.insert(zone.pidns, key);
        self.zones.insert(key, zone);
    }

    fn new_zone(&mut self, obs: &Observation) -> Zone {
        let parent = (obs.level > 1)
            .then(|| self.by_pidns.get(&obs.parent_pidns))
            .flatten()
            .and_then(|k| self.zones.get(k))
            .filter(|p| obs.parent_init_pid == 0 || p.init_pid == obs.parent_init_pid);
        let (parent_utsns, parent_nodename) = match parent {
            Some(p) => (p.utsns, p.nodename.clone()),
            None => (self.host.utsns, self.host.hostname.clone()),
        };
        let id = self.next_id;
        self.next_id += 1;
        Zone {
            id,
            state: State::Ready,
            pidns: obs.pidns,
            level: obs.level,
            init_pid: obs.init_pid,
            creator_pid: obs.creator_pid,
            parent_zone_id: parent.map(|p| p.id),
            utsns: obs.utsns,
            nodename: obs.nodename.clone(),
            parent_utsns,
            parent_nodename,
            comm: obs.comm.clone(),
            cgroup: obs.cgroup.clone(),
            more_cgroups: obs.more_cgroups.clone(),
            runtime_name: None,
            unclaimed: false,
            exit_ts: None,
            last_ts: obs.ts_ns,
            seeded: false,
            reported: true,
        }
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
            let facts = ZoneFacts {
                init_pid: zone.init_pid,
                creator_pid: zone.creator_pid,
                pidns: zone.pidns,
                level: zone.level,
                hostname: zone.hostname(),
                cgroup: zone.cgroup.as_deref(),
                more_cgroups: zone.more_cgroups.as_deref(),
                comm: &zone.comm,
            };
            let found = self.resolver.resolve(&facts);
            let unclaimed = found.is_none() && !self.resolver.may_name_later(&facts);
            zone.runtime_name = found;
            zone.unclaimed = unclaimed;
        }
        let hostname = zone.hostname().map(str::to_string);
        let (name, name_source, runtime, container_id, k8s) = match &zone.runtime_name {
            Some(r) => (
                r.name.clone(),
                r.source,
                r.runtime.clone(),
                r.container_id.clone(),
                r.k8s.clone(),
            ),
            None => {
                let (n, s) = fallback_name(zone.pidns, hostname.as_deref());
                (n, s, None, None, None)
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
            pidns: zone.pidns,
            init_pid: zone.init_pid,
            level: zone.level,
            parent_zone_id: zone.parent_zone_id,
            hostname,
            cgroup: zone.cgroup.clone(),
            exit: None,
            uptime_ns: None,
            shutdown_ns: None,
            initial: false,
            resynced: false,
            reboot_of: None,
            reboot_gap_ns: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{NameSource, NoRuntimeNames};

    const HOST_UTS: u32 = 4026531838;

    fn tracker() -> Tracker<NoRuntimeNames> {
        Tracker::new(
            HostInfo {
                utsns: HOST_UTS,
                hostname: "host".into(),
            },
            NoRuntimeNames,
        )
    }

    /// A zone init scripted for tests: host PID `pid`, namespace `pidns`, own UTS with hostname `name`.
    #[derive(Clone, Copy)]
    struct Init {
        pid: u32,
        pidns: u32,
        start: u64,
        name: &'static str,
    }

    impl Init {
        fn obs(&self, kind: ObservationKind, ts: u64) -> Observation {
            let mut o = Observation::new(kind);
            o.ts_ns = ts;
            o.start_ns = self.start;
            o.pidns = self.pidns;
            o.parent_pidns = 4026531836;
            o.level = 1;
            o.init_pid = self.pid;
            o.utsns = self.pidns + 1;
            o.nodename = self.name.into();
            o.comm = "sh".into();
            o
        }
        fn fork(&self, ts: u64) -> Observation {
            self.obs(ObservationKind::InitFork, ts)
        }
        fn exec(&self, ts: u64) -> Observation {
            self.obs(ObservationKind::InitExec, ts)
        }
        fn exit(&self, ts: u64, status: i32) -> Observation {
            let mut o = self.obs(ObservationKind::InitExit, ts);
            o.exit_status = status;
            o
        }
        fn free(&self, ts: u64) -> Observation {
            let mut o = Observation::new(ObservationKind::InitFree);
            o.ts_ns = ts;
            o.start_ns = self.start;
            o.init_pid = self.pid;
            o
        }
    }

    fn feed<R: NameResolver>(t: &mut Tracker<R>, obs: &[Observation]) -> Vec<ZoneEvent> {
        obs.iter().flat_map(|o| t.observe(o)).collect()
    }

    fn kinds(evs: &[ZoneEvent]) -> Vec<(&str, &str)> {
        evs.iter()
            .map(|e| (e.name.as_str(), e.kind.as_str()))
            .collect()
    }

    const AAP: Init = Init {
        pid: 100,
        pidns: 5000,
        start: 1_000,
        name: "aap",
    };

    #[test]
    fn full_life_in_order() {
        let mut t = tracker();
        let evs = feed(
            &mut t,
            &[
                AAP.fork(1_000),
                AAP.exec(2_000),
                AAP.exit(10_000, 3 << 8),
                AAP.free(12_000),
            ],
        );
        assert_eq!(
            kinds(&evs),
            [
                ("aap", "ready"),
                ("aap", "booted"),
                ("aap", "shutdown"),
                ("aap", "down")
            ]
        );
        assert_eq!(evs[1].name_source, NameSource::Hostname);
        assert_eq!(evs[2].exit, Some(ExitStatus::Code(3)));
        assert_eq!(evs[2].uptime_ns, Some(9_000));
        assert_eq!(evs[3].shutdown_ns, Some(2_000));
        assert!(evs
            .iter()
            .all(|e| e.zone_id == evs[0].zone_id && e.parent_zone_id.is_none()));
        assert!(t.is_empty(), "a down zone is forgotten");
    }

    #[test]
    fn duplicates_and_late_observations_change_nothing() {
        let mut t = tracker();
        let evs = feed(
            &mut t,
            &[
                AAP.fork(1_000),
                AAP.exec(2_000),
                AAP.exec(3_000),
                AAP.fork(1_000),
                AAP.exit(10_000, 0),
                AAP.exit(10_000, 0),
                AAP.exec(2_500),
            ],
        );
        assert_eq!(
            kinds(&evs),
            [("aap", "ready"), ("aap", "booted"), ("aap", "shutdown")]
        );
    }

    #[test]
    fn inode_reuse_makes_a_new_zone() {
        // The same PID namespace inode (and even the same host PID) comes back at once.
        let mut t = tracker();
        let noot = Init {
            start: 20_000,
            name: "noot",
            ..AAP
        };
        let evs = feed(
            &mut t,
            &[
                AAP.fork(1_000),
                AAP.exec(2_000),
                AAP.exit(10_000, 0),
                noot.fork(20_000),
                noot.exec(20_500),
                AAP.free(21_000),
                noot.exit(30_000, 1 << 8),
            ],
        );
        assert_eq!(
            kinds(&evs),
            [
                ("aap", "ready"),
                ("aap", "booted"),
                ("aap", "shutdown"),
                ("noot", "ready"),
                ("noot", "booted"),
                ("aap", "down"),
                ("noot", "shutdown")
            ]
        );
        assert_ne!(evs[0].zone_id, evs[3].zone_id);
        assert_eq!(
            evs[5].zone_id, evs[0].zone_id,
            "the late free is the old zone's"
        );
        assert_eq!(evs[6].zone_id, evs[3].zone_id);
    }

    #[test]
    fn nested_zone_knows_its_parent() {
        let mut t = tracker();
        let mut child = Init {
            pid: 200,
            pidns: 6000,
            start: 5_000,
            name: "kind",
        }
        .fork(5_000);
        child.level = 2;
        child.parent_pidns = AAP.pidns;
        child.parent_init_pid = AAP.pid;
        let evs = feed(&mut t, &[AAP.fork(1_000), AAP.exec(2_000), child.clone()]);
        assert_eq!(evs[2].parent_zone_id, Some(evs[0].zone_id));
        assert_eq!(evs[2].level, 2);
        // A child sharing its parent's UTS namespace has no hostname of its own.
        let mut t = tracker();
        child.utsns = AAP.pidns + 1;
        child.nodename = "aap".into();
        let evs = feed(&mut t, &[AAP.fork(1_000), AAP.exec(2_000), child]);
        assert_eq!(evs[2].name, "pidns-6000");
        assert_eq!(evs[2].name_source, NameSource::PidNs);
    }

    #[test]
    fn out_of_order_across_cpus() {
        // Exec delivered before its fork, free before exit: every transition once, in life order.
        let mut t = tracker();
        let evs = feed(&mut t, &[AAP.exec(2_000), AAP.fork(1_000)]);
        assert_eq!(kinds(&evs), [("aap", "ready"), ("aap", "booted")]);
        assert_eq!(
            evs[0].ts_ns, AAP.start,
            "ready is dated at the init's creation"
        );
        let evs = feed(&mut t, &[AAP.free(12_000), AAP.exit(10_000, 0)]);
        assert_eq!(kinds(&evs), [("aap", "shutdown"), ("aap", "down")]);
    }

    #[test]
    fn running_reports_each_zone_in_its_state() {
        let mut t = tracker();
        let noot = Init {
            pid: 200,
            pidns: 6000,
            start: 1_500,
            name: "noot",
        };
        let mies = Init {
            pid: 300,
            pidns: 7000,
            start: 1_700,
            name: "mies",
        };
        feed(
            &mut t,
            &[AAP.fork(1_000), noot.fork(1_500), noot.exec(2_000)],
        );
        feed(
            &mut t,
            &[mies.fork(1_700), mies.exec(1_800), mies.exit(3_000, 0)],
        );
        assert_eq!(
            kinds(&t.running()),
            [("aap", "ready"), ("noot", "running"), ("mies", "shutdown")]
        );
    }

    #[test]
    fn zone_running_before_the_monitor() {
        let mut t = tracker();
        // /proc gives a start time with tick granularity.
        let mut seeded = AAP.exec(0);
        seeded.start_ns = AAP.start + 4_000_000;
        let id = t.seed(&seeded);
        assert_eq!(t.len(), 1);
        let running = t.running();
        assert_eq!(kinds(&running), [("aap", "running")]);
        assert_eq!(running[0].zone_id, id);
        let evs = feed(
            &mut t,
            &[AAP.exit(5_000_000_000, 9), AAP.free(5_000_001_000)],
        );
        assert_eq!(kinds(&evs), [("aap", "shutdown"), ("aap", "down")]);
        assert_eq!(evs[0].zone_id, id);
        assert!(t.running().is_empty());
        assert_eq!(
            evs[0].exit,
            Some(ExitStatus::Signal {
                signal: 9,
                core_dumped: false
            })
        );
        assert_eq!(
            evs[0].uptime_ns,
            Some(5_000_000_000 - AAP.start),
            "uptime from the real start"
        );
        assert!(t.is_empty());
    }

    #[test]
    fn unknown_zone_exiting_is_still_reported() {
        let mut t = tracker();
        let evs = feed(&mut t, &[AAP.exit(10_000, 0), AAP.free(11_000)]);
        assert_eq!(kinds(&evs), [("aap", "shutdown"), ("aap", "down")]);
        // A free of a task never seen is not a zone.
        assert!(feed(&mut t, &[Init { pid: 9, ..AAP }.free(1)]).is_empty());
    }

    #[test]
    fn multithreaded_init_shuts_down_once() {
        // The kernel reports the group's death once, from whichever thread is last; the
        // tracker must ignore any repeat and keep the leader's identity.
        let mut t = tracker();
        let evs = feed(
            &mut t,
            &[
                AAP.fork(1_000),
                AAP.exec(2_000),
                AAP.exit(9_000, 7 << 8),
                AAP.exit(9_500, 0),
            ],
        );
        assert_eq!(
            kinds(&evs),
            [("aap", "ready"), ("aap", "booted"), ("aap", "shutdown")]
        );
        assert_eq!(evs[2].exit, Some(ExitStatus::Code(7)));
    }

    #[test]
    fn hostname_set_after_boot_names_later_events() {
        let mut t = tracker();
        let unnamed = Init {
            name: "host",
            ..AAP
        };
        let evs = feed(
            &mut t,
            &[unnamed.fork(1_000), unnamed.exec(2_000), AAP.exit(9_000, 0)],
        );
        assert_eq!(evs[1].name, "pidns-5000");
        assert_eq!(evs[1].hostname, None);
        assert_eq!(evs[2].name, "aap");
        assert_eq!(evs[2].hostname.as_deref(), Some("aap"));
    }

    #[test]
    fn exit_before_boot_is_a_shutdown_without_boot() {
        let mut t = tracker();
        let evs = feed(
            &mut t,
            &[AAP.fork(1_000), AAP.exit(3_000, 1 << 8), AAP.exec(2_000)],
        );
        assert_eq!(kinds(&evs), [("aap", "ready"), ("aap", "shutdown")]);
    }

    #[test]
    fn missed_exit_is_filled_in_by_the_free() {
        let mut t = tracker();
        let evs = feed(&mut t, &[AAP.fork(1_000), AAP.exec(2_000), AAP.free(9_000)]);
        assert_eq!(
            kinds(&evs),
            [
                ("aap", "ready"),
                ("aap", "booted"),
                ("aap", "shutdown"),
                ("aap", "down")
            ]
        );
        assert_eq!(evs[2].exit, None);
        assert_eq!(evs[3].shutdown_ns, None);
    }

    #[test]
    fn overdue_downs_are_confirmed_from_outside() {
        let mut t = tracker();
        feed(
            &mut t,
            &[AAP.fork(1_000), AAP.exec(2_000), AAP.exit(10_000, 0)],
        );
        assert!(
            t.overdue(10_500, 1_000).is_empty(),
            "within the grace period"
        );
        assert_eq!(t.overdue(20_000, 1_000), [(AAP.pid, AAP.start)]);
        let evs = t.confirm_gone(AAP.pid, AAP.start, 20_000);
        assert_eq!(kinds(&evs), [("aap", "down")]);
        assert!(evs[0].resynced);
        assert_eq!(evs[0].shutdown_ns, Some(10_000));
        assert!(t.is_empty() && t.overdue(30_000, 1_000).is_empty());
        // The late free, if it comes, changes nothing; nor does a second confirmation.
        assert!(feed(&mut t, &[AAP.free(40_000)]).is_empty());
        assert!(t.confirm_gone(AAP.pid, AAP.start, 50_000).is_empty());
    }

    /// A resolver that names nothing and counts its calls; it rules out the zone of `ruled_out`.
    struct Counting {
        calls: std::rc::Rc<std::cell::Cell<u32>>,
        ruled_out: Option<u32>,
    }

    impl NameResolver for Counting {
        fn resolve(&mut self, _: &ZoneFacts<'_>) -> Option<ResolvedName> {
            self.calls.set(self.calls.get() + 1);
            None
        }
        fn may_name_later(&mut self, f: &ZoneFacts<'_>) -> bool {
            self.ruled_out != Some(f.init_pid)
        }
    }

    /// A tracker with a [`Counting`] resolver, and its call counter.
    fn counting(ruled_out: Option<u32>) -> (Tracker<Counting>, std::rc::Rc<std::cell::Cell<u32>>) {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let host = HostInfo {
            utsns: HOST_UTS,
            hostname: "host".into(),
        };
        let resolver = Counting {
            calls: calls.clone(),
            ruled_out,
        };
        (Tracker::new(host, resolver), calls)
    }

    #[test]
    fn resolvers_are_asked_only_while_the_init_lives() {
        let (mut t, calls) = counting(None);
        feed(
            &mut t,
            &[AAP.fork(1), AAP.exec(2), AAP.exit(3, 0), AAP.free(4)],
        );
        assert_eq!(
            calls.get(),
            2,
            "at ready and booted, not at shutdown or down"
        );
    }

    #[test]
    fn a_zone_no_runtime_can_name_is_looked_up_once() {
        let (mut t, calls) = counting(Some(AAP.pid));
        let evs = feed(&mut t, &[AAP.fork(1), AAP.exec(2)]);
        assert_eq!(kinds(&evs), [("aap", "ready"), ("aap", "booted")]);
        assert_eq!(
            calls.get(),
            1,
            "ruled out at ready: not asked again at booted"
        );
        let noot = Init {
            pid: 200,
            pidns: 6000,
            start: 1_500,
            name: "noot",
        };
        feed(&mut t, &[noot.fork(3), noot.exec(4)]);
        assert_eq!(
            calls.get(),
            3,
            "a zone that may still be named is asked again"
        );
    }

    #[test]
    fn runtime_names_stick_for_the_zone_life() {
        struct Once(bool);
        impl NameResolver for Once {
            fn resolve(&mut self, _: &ZoneFacts<'_>) -> Option<ResolvedName> {
                // Answers only the first time, as a runtime whose state is deleted at shutdown.
                std::mem::take(&mut self.0).then(|| ResolvedName {
                    name: "web".into(),
                    source: NameSource::Runtime("test-state"),
                    runtime: Some("test".into()),
                    container_id: Some("abc".into()),
                    k8s: None,
                })
            }
        }
        let mut t = Tracker::new(
            HostInfo {
                utsns: HOST_UTS,
                hostname: "host".into(),
            },
            Once(true),
        );
        let evs: Vec<_> = [AAP.fork(1), AAP.exec(2), AAP.exit(3, 0), AAP.free(4)]
            .iter()
            .flat_map(|o| t.observe(o))
            .collect();
        assert!(evs
            .iter()
            .all(|e| e.name == "web" && e.runtime.as_deref() == Some("test")));
        assert_eq!(evs[3].name_source.as_str(), "test-state");
    }

    /// /proc's view of `init` (tick-granular start time), as a scan gives it.
    fn from_proc(init: Init, booted: bool) -> Observation {
        let kind = if booted {
            ObservationKind::InitExec
        } else {
            ObservationKind::InitFork
        };
        let mut o = init.obs(kind, 0);
        o.start_ns = init.start - init.start % 10_000_000 + 10_000_000;
        o.ts_ns = o.start_ns;
        o
    }

    #[test]
    fn handover_reports_a_zone_booting_during_start_up_exactly_once() {
        // Attached, then scanned: the zone shows in /proc, and its fork and exec are in the ring.
        let mut t = tracker();
        t.seed(&from_proc(AAP, true));
        let evs = feed(&mut t, &[AAP.fork(1_000), AAP.exec(2_000)]);
        assert_eq!(kinds(&evs), [("aap", "ready"), ("aap", "booted")]);
        assert!(
            t.initial().is_empty(),
            "already reported, not again as running"
        );
        // A zone seen in /proc as still ready, whose exec comes after: booted once.
        let noot = Init {
            pid: 300,
            pidns: 7000,
            start: 50_000,
            name: "noot",
        };
        t.seed(&from_proc(noot, false));
        let evs = feed(&mut t, &[noot.exec(60_000), noot.exec(70_000)]);
        assert_eq!(kinds(&evs), [("noot", "booted")]);
    }

    #[test]
    fn initial_running_records_once() {
        let mut t = tracker();
        t.seed(&from_proc(AAP, true));
        let first = t.initial();
        assert_eq!(kinds(&first), [("aap", "running")]);
        assert!(first[0].initial);
        assert!(t.initial().is_empty());
        let evs = feed(&mut t, &[AAP.exec(5_000), AAP.exit(9_000, 0)]);
        assert_eq!(
            kinds(&evs),
            [("aap", "shutdown")],
            "a re-exec of a running zone is no boot"
        );
    }

    #[test]
    fn resync_after_lost_records() {
        let mut t = tracker();
        let noot = Init {
            pid: 300,
            pidns: 7000,
            start: 50_000,
            name: "noot",
        };
        let mies = Init {
            pid: 400,
            pidns: 8000,
            start: 90_000,
            name: "mies",
        };
        let wim = Init {
            pid: 500,
            pidns: 9000,
            start: 95_000,
            name: "wim",
        };
        feed(
            &mut t,
            &[
                AAP.fork(1_000),
                AAP.exec(2_000),
                noot.fork(50_000),
                wim.fork(95_000),
            ],
        );
        // Lost: aap's exit and free, noot's exec, mies's whole start, wim's exec.
        // /proc now shows noot and wim booted, mies booted, aap gone.
        let live = [
            from_proc(noot, true),
            from_proc(mies, true),
            from_proc(wim, true),
        ];
        let evs = t.resync(&live, 1_000_000);
        assert!(evs.iter().all(|e| e.resynced));
        let mut got = kinds(&evs);
        got.sort();
        assert_eq!(
            got,
            [
                ("aap", "down"),
                ("aap", "shutdown"),
                ("mies", "booted"),
                ("mies", "ready"),
                ("noot", "booted"),
                ("wim", "booted")
            ]
        );
        assert_eq!(t.len(), 3, "the table is /proc's truth");
        // Records delivered after the resync: no transition twice, real ones still reported.
        let evs = feed(
            &mut t,
            &[
                AAP.free(1_100_000),
                mies.exec(1_200_000),
                mies.exit(2_000_000, 0),
                mies.free(2_100_000),
            ],
        );
        assert_eq!(kinds(&evs), [("mies", "shutdown"), ("mies", "down")]);
        assert!(!evs[0].resynced);
        // A zone whose exit was lost shuts down (status unknown) when /proc no longer has it.
        let evs = t.resync(&[from_proc(noot, true)], 3_000_000);
        assert_eq!(kinds(&evs), [("wim", "shutdown"), ("wim", "down")]);
        assert_eq!(evs[0].exit, None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn reboot_is_linked_to_the_zone_it_replaces() {
        let mut t = tracker();
        let again = Init {
            pid: 101,
            start: 30_000,
            ..AAP
        };
        let evs = feed(
            &mut t,
            &[
                AAP.fork(1_000),
                AAP.exec(2_000),
                AAP.exit(20_000, 0),
                again.fork(30_000),
                again.exec(31_000),
            ],
        );
        let boots: Vec<_> = evs.iter().filter(|e| e.kind == EventKind::Booted).collect();
        assert_eq!(boots[0].reboot_of, None);
        assert_eq!(boots[1].reboot_of, Some(boots[0].zone_id));
        assert_eq!(boots[1].reboot_gap_ns, Some(11_000));
        // Unnamed zones (pidns-N) never count: inode numbers are reused.
        let mut t = tracker();
        let a = Init {
            name: "host",
            ..AAP
        };
        let b = Init {
            name: "host",
            pid: 101,
            start: 30_000,
            ..AAP
        };
        let evs = feed(
            &mut t,
            &[
                a.fork(1_000),
                a.exec(2_000),
                a.exit(20_000, 0),
                b.fork(30_000),
                b.exec(31_000),
            ],
        );
        assert!(evs.iter().all(|e| e.reboot_of.is_none()));
        // Too long ago is no reboot.
        let mut t = tracker();
        let late = Init {
            pid: 101,
            start: 20_000 + REBOOT_WINDOW_NS + 1,
            ..AAP
        };
        let evs = feed(
            &mut t,
            &[
                AAP.fork(1_000),
                AAP.exec(2_000),
                AAP.exit(20_000, 0),
                late.exec(late.start + 1),
            ],
        );
        assert!(evs.iter().all(|e| e.reboot_of.is_none()));
    }

    #[test]
    fn memory_is_bounded_after_many_zones() {
        let mut t = tracker();
        for i in 0..100_000u32 {
            let z = Init {
                pid: 1_000 + i,
                pidns: 5_000 + (i % 7),
                start: u64::from(i) * 100,
                name: "churn",
            };
            let base = u64::from(i) * 100;
            let evs = feed(
                &mut t,
                &[
                    z.fork(base),
                    z.exec(base + 1),
                    z.exit(base + 2, 0),
                    z.free(base + 3),
                ],
            );
            assert_eq!(evs.len(), 4);
        }
        assert!(t.is_empty());
        assert!(t.gone.len() <= GONE_MEMORY);
        assert!(t.shutdowns.len() <= REBOOT_MEMORY);
        assert!(t.by_pidns.is_empty());
    }
}
