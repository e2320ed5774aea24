//! The tracker's identity table: the zones not yet down, keyed by their init
//! task, with the indexes that keep every lookup off a walk of the table.
//!
//! - the zones themselves, by init task: an exact lookup is one probe of a
//!   hash table;
//! - their keys ordered by (init PID, start time): the zones of one PID
//!   started near a given time (a /proc start time is approximate) are one
//!   descent of a small tree;
//! - the newest zone of each PID namespace, by the kernel's never-reused
//!   namespace id where known, else by inode, to find nested zones' parents
//!   (see [`crate::pidns`]);
//! - the shut-down zones waiting for their `down`, ordered by when that
//!   `down` is overdue, so the last-resort check and its timer look at the
//!   first entry only; zones found in /proc wait there too, for one check
//!   that their init did not exit before the kernel side attached;
//! - the inits of zones that went down lately (bounded), to ignore late
//!   observations of them.
//!
//! The indexed facts of a zone (its key, namespace, state and down check)
//! change only through the table's methods, which keep the indexes in step.

use std::collections::{BTreeSet, HashMap};

use crate::exit::Oom;
use crate::naming::{own_hostname, ResolvedName};
use crate::observation::Observation;
use crate::pidns::{NsIndex, PidNs};
use crate::recent::RecentMap;

/// How many zones that went down are remembered, so that a late observation of one is ignored.
pub(super) const GONE_MEMORY: usize = 4096;

/// A zone shut down this long without going down is overdue: the monitor
/// checks whether its init still exists (its `down` may have been missed).
pub const DOWN_GRACE_NS: u64 = 2_000_000_000;

/// A zone whose init was still there at a check is checked again after
/// twice the previous wait, up to this long.
pub const DOWN_RECHECK_MAX_NS: u64 = 64_000_000_000;

/// A zone found in /proc is checked this long after it was found: its init
/// may have been exiting already when the kernel side attached (then no
/// exit of it is ever seen), and by then it has surely left `do_exit`.
pub const SEED_CHECK_NS: u64 = 1_000_000_000;

/// Identity of a zone's init task while it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct TaskKey {
    pub(super) init_pid: u32,
    pub(super) start_ns: u64,
}

/// Where a zone is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum State {
    Ready,
    Booted,
    Shutdown,
}

/// A zone that is not yet down.
#[derive(Debug, Clone)]
pub(super) struct Zone {
    pub(super) id: u64,
    pub(super) level: u32,
    pub(super) init_pid: u32,
    pub(super) creator_pid: u32,
    pub(super) parent_zone_id: Option<u64>,
    pub(super) utsns: u32,
    pub(super) nodename: String,
    pub(super) parent_utsns: u32,
    pub(super) parent_nodename: String,
    pub(super) comm: String,
    pub(super) cgroup: Option<String>,
    /// The init's other cgroup paths, kept until the zone's boot lookup only.
    pub(super) more_cgroups: Option<Vec<String>>,
    /// No new read of the init's cgroups can tell more: `cgroup` (and
    /// `more_cgroups`) were read at a kernel observation with no move of the
    /// init between cgroups seen since, or the init was found gone from /proc.
    pub(super) cgroups_read: bool,
    /// Boxed: most zones have none, and 10,000 live zones should not each pay for its room.
    pub(super) runtime_name: Option<Box<ResolvedName>>,
    /// Whether the resolver said no later look can name the zone (no runtime made it).
    pub(super) unclaimed: bool,
    /// Kernel time of the newest observation applied, so that a late one never overwrites newer facts.
    pub(super) last_ts: u64,
    /// Found in /proc: the key's start time is approximate until a kernel observation takes it over.
    pub(super) seeded: bool,
    /// What the OOM killer took of it so far.
    pub(super) oom: Oom,
    /// Its existence was reported (a transition or an initial `running` record was emitted).
    pub(super) reported: bool,
    // Indexed: changed through the table only.
    pidns: PidNs,
    state: State,
    exit_ts: Option<u64>,
    /// When its `down` is overdue (shut down, exit seen, not yet down), or when a seeded
    /// zone's init is to be checked (see [`SEED_CHECK_NS`]).
    down_due: Option<u64>,
    /// How many times its init was found still there when its `down` was overdue.
    down_checks: u32,
}

impl Zone {
    /// A zone known from its first observation `obs`, with zone id `id`,
    /// inside the zone `parent` (else directly on the host `host_uts`).
    pub(super) fn new(
        id: u64,
        obs: &Observation,
        parent: Option<&Zone>,
        host_uts: (u32, &str),
    ) -> Zone {
        let (parent_utsns, parent_nodename) = match parent {
            Some(p) => (p.utsns, p.nodename.as_str()),
            None => host_uts,
        };
        Zone {
            id,
            level: obs.level,
            init_pid: obs.init_pid,
            creator_pid: obs.creator_pid,
            parent_zone_id: parent.map(|p| p.id),
            utsns: obs.utsns,
            nodename: obs.nodename.clone(),
            parent_utsns,
            parent_nodename: parent_nodename.to_string(),
            comm: obs.comm.clone(),
            cgroup: obs.cgroup.clone(),
            more_cgroups: obs.more_cgroups.clone(),
            cgroups_read: obs.cgroup.is_some(),
            runtime_name: None,
            unclaimed: false,
            last_ts: obs.ts_ns,
            seeded: false,
            oom: Oom::default(),
            reported: true,
            pidns: obs.pid_ns(),
            state: State::Ready,
            exit_ts: None,
            down_due: None,
            down_checks: 0,
        }
    }

    /// The zone's own hostname, if it has one.
    pub(super) fn hostname(&self) -> Option<&str> {
        own_hostname(
            self.utsns,
            &self.nodename,
            self.parent_utsns,
            &self.parent_nodename,
        )
    }

    /// The zone's PID namespace.
    pub(super) fn pidns(&self) -> PidNs {
        self.pidns
    }

    /// Where the zone is in its life.
    pub(super) fn state(&self) -> State {
        self.state
    }

    /// When its init's exit was seen.
    pub(super) fn exit_ts(&self) -> Option<u64> {
        self.exit_ts
    }

    /// A zone not yet in a table, found in /proc at `now_ns`: its init is checked at
    /// `now_ns` + [`SEED_CHECK_NS`] unless a kernel observation of it comes first.
    pub(super) fn seeded_at(mut self, now_ns: u64) -> Zone {
        self.seeded = true;
        // Read by a scan, not at a kernel observation: a move since may have gone unseen.
        self.cgroups_read = false;
        self.down_due = Some(now_ns.saturating_add(SEED_CHECK_NS));
        self
    }

    /// A zone not yet in a table that the kernel side has seen: no check of its init is due.
    pub(super) fn seen(mut self) -> Zone {
        self.seeded = false;
        if self.state != State::Shutdown {
            self.down_due = None;
            self.down_checks = 0;
        }
        self
    }

    /// A zone not yet in a table starts in `state` (a zone found in /proc
    /// may be booted already: then no boot lookup needs its other cgroup paths).
    pub(super) fn starting_in(mut self, state: State) -> Zone {
        debug_assert!(
            state != State::Shutdown,
            "a zone is shut down through the table"
        );
        self.state = state;
        if state == State::Booted {
            self.more_cgroups = None;
        }
        self
    }
}

/// The zones not yet down and their indexes.
#[derive(Debug)]
pub(super) struct ZoneTable {
    zones: HashMap<TaskKey, Zone>,
    /// Every zone's key, in (PID, start time) order.
    keys: BTreeSet<TaskKey>,
    /// The newest zone of each PID namespace.
    by_pidns: NsIndex<TaskKey>,
    /// (when its `down` is overdue, key) of each zone waiting for its `down`.
    down_due: BTreeSet<(u64, TaskKey)>,
    /// Inits of zones that went down lately (bounded, oldest forgotten first).
    gone: RecentMap<TaskKey, ()>,
}

impl ZoneTable {
    /// An empty table.
    pub(super) fn new() -> Self {
        ZoneTable {
            zones: HashMap::new(),
            keys: BTreeSet::new(),
            by_pidns: NsIndex::new(),
            down_due: BTreeSet::new(),
            gone: RecentMap::new(GONE_MEMORY),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.zones.len()
    }

    pub(super) fn contains(&self, key: &TaskKey) -> bool {
        self.zones.contains_key(key)
    }

    pub(super) fn get_mut(&mut self, key: &TaskKey) -> Option<&mut Zone> {
        self.zones.get_mut(key)
    }

    /// The zone at `key`, which the caller knows is there.
    pub(super) fn at(&self, key: &TaskKey) -> &Zone {
        self.zones.get(key).expect("the caller checked the key")
    }

    /// Every zone, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&TaskKey, &Zone)> {
        self.zones.iter()
    }

    /// Whether the zone of `key` went down lately.
    pub(super) fn is_gone(&self, key: &TaskKey) -> bool {
        self.gone.contains(key)
    }

    /// The newest zone of the PID namespace that is [`PidNs::same_as`] `pidns`.
    pub(super) fn newest_in(&self, pidns: PidNs) -> Option<&Zone> {
        self.by_pidns.get(pidns).and_then(|k| self.zones.get(&k))
    }

    /// The first zone (in start-time order) whose init is `init_pid`, started
    /// at most `tolerance_ns` from `start_ns`, for which `accept` holds.
    pub(super) fn find_near(
        &self,
        init_pid: u32,
        start_ns: u64,
        tolerance_ns: u64,
        accept: impl Fn(&Zone) -> bool,
    ) -> Option<TaskKey> {
        let lo = TaskKey {
            init_pid,
            start_ns: start_ns.saturating_sub(tolerance_ns),
        };
        let hi = TaskKey {
            init_pid,
            start_ns: start_ns.saturating_add(tolerance_ns),
        };
        self.keys
            .range(lo..=hi)
            .find(|k| self.zones.get(k).is_some_and(&accept))
            .copied()
    }

    /// Adds `zone` at `key` (replacing any zone there).
    pub(super) fn insert(&mut self, key: TaskKey, zone: Zone) {
        self.remove(&key);
        self.by_pidns.insert(zone.pidns, key);
        if let Some(due) = zone.down_due {
            self.down_due.insert((due, key));
        }
        self.keys.insert(key);
        self.zones.insert(key, zone);
    }

    /// Takes the zone at `key` out of the table (to put it back under another key).
    pub(super) fn remove(&mut self, key: &TaskKey) -> Option<Zone> {
        let zone = self.zones.remove(key)?;
        self.keys.remove(key);
        self.by_pidns.remove(zone.pidns, *key);
        if let Some(due) = zone.down_due {
            self.down_due.remove(&(due, *key));
        }
        Some(zone)
    }

    /// The zone at `key` went down: takes it out and remembers its init as gone.
    pub(super) fn retire(&mut self, key: &TaskKey) -> Option<Zone> {
        let zone = self.remove(key)?;
        self.gone.insert(*key, ());
        Some(zone)
    }

    /// Moves the zone at `key` to `state` (ready or booted).
    pub(super) fn set_state(&mut self, key: &TaskKey, state: State) {
        debug_assert!(state != State::Shutdown, "use shut_down");
        if let Some(z) = self.zones.get_mut(key) {
            z.state = state;
        }
    }

    /// The zone at `key` shut down; `exit_ts` is when, if its init's exit
    /// was seen: then its `down` is due within [`DOWN_GRACE_NS`].
    pub(super) fn shut_down(&mut self, key: &TaskKey, exit_ts: Option<u64>) {
        let Some(z) = self.zones.get_mut(key) else {
            return;
        };
        if let Some(due) = z.down_due.take() {
            self.down_due.remove(&(due, *key));
        }
        z.state = State::Shutdown;
        z.exit_ts = exit_ts;
        z.down_checks = 0;
        z.down_due = exit_ts.map(|t| t.saturating_add(DOWN_GRACE_NS));
        if let Some(due) = z.down_due {
            self.down_due.insert((due, *key));
        }
    }

    /// A seeded zone's init was found running (not exiting) at its check: its exit
    /// will be seen, no further check is due.
    pub(super) fn checked(&mut self, key: &TaskKey) {
        let Some(z) = self.zones.get_mut(key) else {
            return;
        };
        if z.state == State::Shutdown {
            return;
        }
        if let Some(due) = z.down_due.take() {
            self.down_due.remove(&(due, *key));
        }
    }

    /// The zone at `key` was overdue at `now_ns` but its init still exists:
    /// checks it again after twice the previous wait (at most [`DOWN_RECHECK_MAX_NS`]).
    pub(super) fn recheck_later(&mut self, key: &TaskKey, now_ns: u64) {
        let Some(z) = self.zones.get_mut(key) else {
            return;
        };
        let Some(due) = z.down_due else {
            return;
        };
        self.down_due.remove(&(due, *key));
        z.down_checks = z.down_checks.saturating_add(1);
        let wait = DOWN_GRACE_NS
            .saturating_mul(1 << z.down_checks.min(16))
            .min(DOWN_RECHECK_MAX_NS);
        let due = now_ns.saturating_add(wait);
        z.down_due = Some(due);
        self.down_due.insert((due, *key));
    }

    /// The zones whose `down` is overdue at `now_ns`, most overdue first.
    pub(super) fn overdue(&self, now_ns: u64) -> impl Iterator<Item = TaskKey> + '_ {
        self.down_due
            .range(..(now_ns.saturating_add(1), TaskKey::MIN))
            .map(|(_, k)| *k)
    }

    /// When the first zone waiting for its `down` is overdue.
    pub(super) fn next_down_due(&self) -> Option<u64> {
        self.down_due.first().map(|(due, _)| *due)
    }

    /// How many zones that went down are remembered.
    #[cfg(test)]
    pub(super) fn gone_len(&self) -> usize {
        self.gone.len()
    }

    /// Panics unless every index agrees with the zones (for tests).
    #[cfg(test)]
    pub(super) fn check_indexes(&self) {
        assert!(
            self.keys.len() == self.zones.len()
                && self.keys.iter().all(|k| self.zones.contains_key(k)),
            "keys lists exactly the zones"
        );
        for (pidns, key) in self.by_pidns.entries() {
            let z = self.zones.get(&key).expect("by_pidns points at a zone");
            assert!(
                pidns.id == z.pidns.id && (pidns.inode == 0 || pidns.inode == z.pidns.inode),
                "by_pidns at the zone's namespace: {pidns:?} {:?}",
                z.pidns
            );
        }
        let expected: BTreeSet<(u64, TaskKey)> = self
            .zones
            .iter()
            .filter_map(|(k, z)| z.down_due.map(|d| (d, *k)))
            .collect();
        assert_eq!(
            self.down_due, expected,
            "down_due lists exactly the waiting zones"
        );
        for (k, z) in &self.zones {
            assert_eq!(z.init_pid, k.init_pid);
            if z.state == State::Shutdown {
                assert_eq!(
                    z.down_due.is_some(),
                    z.exit_ts.is_some(),
                    "a shut-down zone waits for its down when its exit was seen"
                );
            } else {
                assert!(
                    z.down_due.is_none() || z.seeded,
                    "only a seeded zone's init waits for a check before its shutdown"
                );
            }
        }
    }
}

impl TaskKey {
    const MIN: TaskKey = TaskKey {
        init_pid: 0,
        start_ns: 0,
    };
}
