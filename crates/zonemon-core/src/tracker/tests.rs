use super::reboots::REBOOT_MEMORY;
use super::table::GONE_MEMORY;
use super::*;
use crate::naming::{NameResolver, NameSource, NoRuntimeNames, ResolvedName, ZoneFacts};

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

/// A zone init scripted for tests: host PID `pid`, namespace `pidns` (the
/// kernel's id `ns_id`, 0 as before Linux 6.18), own UTS with hostname `name`.
#[derive(Clone, Copy)]
struct Init {
    pid: u32,
    pidns: u32,
    ns_id: u64,
    start: u64,
    name: &'static str,
}

/// The zone init `pid` of namespace `pidns`, started at `start`, with hostname `name`.
const fn init(pid: u32, pidns: u32, start: u64, name: &'static str) -> Init {
    Init {
        pid,
        pidns,
        ns_id: 0,
        start,
        name,
    }
}

impl Init {
    fn obs(&self, kind: ObservationKind, ts: u64) -> Observation {
        let mut o = Observation::new(kind);
        o.ts_ns = ts;
        o.start_ns = self.start;
        o.pidns = self.pidns;
        o.pidns_id = self.ns_id;
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
    fn oom(&self, ts: u64, victim: u32) -> Observation {
        let mut o = self.obs(ObservationKind::OomVictim, ts);
        o.victim_pid = victim;
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

#[test]
fn restart_count_counts_earlier_boots_of_the_name() {
    let mut t = tracker();
    let mut counts = Vec::new();
    for i in 0..3u32 {
        let z = init(300 + i, 4026532300 + i, 10 + u64::from(i) * 100, "web");
        let evs = feed(
            &mut t,
            &[
                z.fork(20 + u64::from(i) * 100),
                z.exec(30 + u64::from(i) * 100),
            ],
        );
        counts.push(evs[1].restart_count);
        feed(
            &mut t,
            &[
                z.exit(40 + u64::from(i) * 100, 0),
                z.free(50 + u64::from(i) * 100),
            ],
        );
    }
    assert_eq!(counts, [Some(0), Some(1), Some(2)]);
    // A zone with no name of its own (pidns-N) has no restarts to count.
    let anon = init(900, 4026532900, 10, "");
    let evs = feed(&mut t, &[anon.fork(1000), anon.exec(1001)]);
    assert_eq!(
        (evs[1].name_source, evs[1].restart_count),
        (NameSource::PidNs, None)
    );
}

#[test]
fn cgroups_read_at_the_fork_hold_until_the_init_moves() {
    let z = init(300, 4026532300, 10, "web");
    let in_cgroup = |mut o: Observation, path: &str| {
        o.cgroup = Some(path.into());
        o.more_cgroups = Some(Vec::new());
        o
    };
    let mut t = tracker().with_cgroup_moves(true);
    assert!(!t.cgroups_current(300, 10), "an unknown zone");
    feed(&mut t, &[in_cgroup(z.fork(20), "/a")]);
    assert!(
        t.cgroups_current(300, 10),
        "read at the fork, no move since"
    );
    assert!(!t.cgroups_current(300, 11), "another init at that PID");
    let evs = feed(
        &mut t,
        &[z.exec(30), z.obs(ObservationKind::InitCgroupMove, 35)],
    );
    assert_eq!(kinds(&evs), [("web", "booted")], "a move is no transition");
    assert_eq!(
        evs[0].cgroup.as_deref(),
        Some("/a"),
        "the exec kept the fork's read"
    );
    assert!(!t.cgroups_current(300, 10), "moved: to be read again");
    let evs = feed(&mut t, &[in_cgroup(z.exec(40), "/b"), z.exit(50, 0)]);
    assert!(evs.iter().all(|e| e.cgroup.as_deref() == Some("/b")));

    // An init found gone: nothing more to read of it.
    let other = init(400, 4026532400, 10, "gone");
    let mut fork = other.fork(20);
    fork.init_gone = true;
    feed(&mut t, &[fork]);
    assert!(t.cgroups_current(400, 10));

    // A source that does not report moves: what was read never holds.
    let mut blind = tracker();
    feed(&mut blind, &[in_cgroup(z.fork(20), "/a")]);
    assert!(!blind.cgroups_current(300, 10));
    // Nor does a scan's read: a move before the kernel side saw the init may have gone unseen.
    let mut t = tracker().with_cgroup_moves(true);
    t.seed(&in_cgroup(z.exec(30), "/a"), 40);
    assert!(!t.cgroups_current(300, 10));
}

#[test]
fn oom_kills_mark_the_shutdown_and_make_no_zone() {
    let z = init(300, 4026532300, 10, "hog");
    let stranger = init(400, 4026532400, 10, "stranger");
    let mut t = tracker().with_oom_kills(true);
    let evs = feed(
        &mut t,
        &[
            stranger.oom(15, 400), // a zone never seen: nothing
            z.fork(20),
            z.exec(30),
            z.oom(40, 301), // a child
            z.oom(41, 302),
            z.oom(50, 300), // the init
            z.exit(60, 9),  // killed by SIGKILL
            z.oom(70, 300), // after the shutdown: too late to count
        ],
    );
    assert_eq!(
        kinds(&evs),
        [("hog", "ready"), ("hog", "booted"), ("hog", "shutdown")]
    );
    assert_eq!(
        evs[2].oom,
        Some(crate::Oom {
            killed: true,
            kills: 2
        })
    );
    assert!(evs[..2].iter().all(|e| e.oom.is_none()));
    // A source that cannot see OOM kills says nothing either way.
    let mut t = tracker();
    let evs = feed(&mut t, &[z.fork(20), z.exec(30), z.exit(60, 0)]);
    assert_eq!(evs[2].oom, None);
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
    ns_id: 0,
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
    let mut child = init(200, 6000, 5_000, "kind").fork(5_000);
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
    let noot = init(200, 6000, 1_500, "noot");
    let mies = init(300, 7000, 1_700, "mies");
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
    let id = t.seed(&seeded, 0);
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
    let exit = 10_000;
    feed(
        &mut t,
        &[AAP.fork(1_000), AAP.exec(2_000), AAP.exit(exit, 0)],
    );
    let due = exit + DOWN_GRACE_NS;
    assert_eq!(t.next_down_check(), Some(due));
    assert!(t.overdue(due - 1).is_empty(), "within the grace period");
    assert_eq!(t.overdue(due), [(AAP.pid, AAP.start)]);
    let evs = t.confirm_gone(AAP.pid, AAP.start, due);
    assert_eq!(kinds(&evs), [("aap", "down")]);
    assert!(evs[0].resynced);
    assert_eq!(evs[0].shutdown_ns, Some(DOWN_GRACE_NS));
    assert!(t.is_empty() && t.overdue(due * 10).is_empty());
    assert_eq!(t.next_down_check(), None, "nothing waits: no timer");
    // The late free, if it comes, changes nothing; nor does a second confirmation.
    assert!(feed(&mut t, &[AAP.free(due + 1)]).is_empty());
    assert!(t.confirm_gone(AAP.pid, AAP.start, due + 2).is_empty());
}

/// A resolver that names nothing and counts its calls; it rules out the zone of `ruled_out`.
struct Counting {
    calls: std::rc::Rc<std::cell::Cell<u32>>,
    ruled_out: Option<u32>,
}

impl NameResolver for Counting {
    fn lookup(&mut self, f: &ZoneFacts<'_>) -> Lookup {
        self.calls.set(self.calls.get() + 1);
        if self.ruled_out == Some(f.init_pid) {
            Lookup::Never
        } else {
            Lookup::NotYet
        }
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
    let noot = init(200, 6000, 1_500, "noot");
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
        fn lookup(&mut self, _: &ZoneFacts<'_>) -> Lookup {
            // Answers only the first time, as a runtime whose state is deleted at shutdown.
            let found = std::mem::take(&mut self.0).then(|| ResolvedName {
                name: "web".into(),
                source: NameSource::Runtime("test-state"),
                runtime: Some("test".into()),
                container_id: Some("abc".into()),
                k8s: None,
                meta: None,
            });
            found.map_or(Lookup::NotYet, Lookup::Named)
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
    t.seed(&from_proc(AAP, true), 0);
    let evs = feed(&mut t, &[AAP.fork(1_000), AAP.exec(2_000)]);
    assert_eq!(kinds(&evs), [("aap", "ready"), ("aap", "booted")]);
    assert!(
        t.initial().is_empty(),
        "already reported, not again as running"
    );
    // A zone seen in /proc as still ready, whose exec comes after: booted once.
    let noot = init(300, 7000, 50_000, "noot");
    t.seed(&from_proc(noot, false), 0);
    let evs = feed(&mut t, &[noot.exec(60_000), noot.exec(70_000)]);
    assert_eq!(kinds(&evs), [("noot", "booted")]);
}

#[test]
fn initial_running_records_once() {
    let mut t = tracker();
    t.seed(&from_proc(AAP, true), 0);
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
    let noot = init(300, 7000, 50_000, "noot");
    let mies = init(400, 8000, 90_000, "mies");
    let wim = init(500, 9000, 95_000, "wim");
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
            ns_id: u64::from(i) + 1,
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
    assert!(t.zones.gone_len() <= GONE_MEMORY);
    assert!(t.reboots.len() <= REBOOT_MEMORY);
    t.zones.check_indexes();
}

#[test]
fn the_down_timer_is_armed_only_while_a_shut_down_zone_waits() {
    // A fake clock: times are plain numbers, nothing sleeps.
    let mut t = tracker();
    assert_eq!(t.next_down_check(), None, "no zone: no timer");
    feed(&mut t, &[AAP.fork(1_000), AAP.exec(2_000)]);
    assert_eq!(t.next_down_check(), None, "a booted zone waits for nothing");
    let noot = init(200, 6000, 1_500, "noot");
    feed(
        &mut t,
        &[noot.fork(1_500), AAP.exit(50_000, 0), noot.exit(40_000, 0)],
    );
    assert_eq!(
        t.next_down_check(),
        Some(40_000 + DOWN_GRACE_NS),
        "the earliest deadline"
    );
    assert_eq!(
        t.overdue(50_000 + DOWN_GRACE_NS),
        [(noot.pid, noot.start), (AAP.pid, AAP.start)],
        "most overdue first"
    );
    feed(&mut t, &[noot.free(41_000)]);
    assert_eq!(t.next_down_check(), Some(50_000 + DOWN_GRACE_NS));
    feed(&mut t, &[AAP.free(51_000)]);
    assert_eq!(
        t.next_down_check(),
        None,
        "every down came: the timer is off"
    );
}

#[test]
fn an_init_still_there_is_checked_again_later_and_later() {
    let mut t = tracker();
    feed(&mut t, &[AAP.fork(1), AAP.exec(2), AAP.exit(3, 0)]);
    let mut now = 3 + DOWN_GRACE_NS;
    let mut waits = Vec::new();
    for _ in 0..8 {
        assert_eq!(t.overdue(now), [(AAP.pid, AAP.start)]);
        t.confirm_still_there(AAP.pid, AAP.start, now, false);
        assert!(t.overdue(now).is_empty(), "not again at once");
        let next = t.next_down_check().expect("still waiting");
        waits.push((next - now) / 1_000_000_000);
        now = next;
    }
    assert_eq!(waits, [4, 8, 16, 32, 64, 64, 64, 64]);
    let evs = feed(&mut t, &[AAP.free(now + 1)]);
    assert_eq!(kinds(&evs), [("aap", "down")]);
    assert_eq!(t.next_down_check(), None);
}

#[test]
fn a_zone_whose_exit_was_not_seen_waits_for_no_timer() {
    let mut t = tracker();
    let evs = t.resync(&[from_proc(AAP, true)], 10);
    assert_eq!(kinds(&evs), [("aap", "ready"), ("aap", "booted")]);
    // /proc no longer has it: shut down and down at once, nothing left to wait for.
    let evs = t.resync(&[], 20);
    assert_eq!(kinds(&evs), [("aap", "shutdown"), ("aap", "down")]);
    assert_eq!(t.next_down_check(), None);
}

#[test]
fn lookups_do_not_walk_the_table() {
    // 10,000 live zones, one of them seeded with a tick-granular start:
    // each lookup finds its zone among the few of one PID.
    let mut t = tracker();
    for i in 0..10_000u32 {
        let z = Init {
            pid: 10_000 + i,
            pidns: 100_000 + i,
            ns_id: u64::from(i) + 1,
            start: u64::from(i) * 1_000_000,
            name: "live",
        };
        feed(&mut t, &[z.fork(z.start), z.exec(z.start + 1)]);
    }
    let seeded = init(5, 7, 123_456_789, "seeded");
    t.seed(&from_proc(seeded, true), 0);
    let evs = feed(
        &mut t,
        &[seeded.exit(200_000_000, 0), seeded.free(200_000_001)],
    );
    assert_eq!(kinds(&evs), [("seeded", "shutdown"), ("seeded", "down")]);
    assert_eq!(t.len(), 10_000);
    t.zones.check_indexes();
}

/// Property tests: any sequence of observations, scans and down checks keeps
/// the indexes consistent with the table and every zone's transitions in
/// life order, each at most once.
mod props {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// A few inits that share PIDs, namespaces and nearly equal start times,
    /// so that exact and approximate matches, PID reuse and inode reuse all
    /// happen; half of them with namespace ids (each its own), half without.
    fn init(i: u8) -> Init {
        const NAMES: [&str; 3] = ["aap", "noot", "host"];
        Init {
            pid: 100 + u32::from(i % 3),
            pidns: 5000 + u32::from(i % 2),
            ns_id: if i >= 6 { 1000 + u64::from(i) } else { 0 },
            start: [1_000, 30_000_000, 5_000_000_000, 5_040_000_000][usize::from(i / 3 % 4)],
            name: NAMES[usize::from(i % 3)],
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Fork(u8),
        Exec(u8),
        Exit(u8),
        Free(u8),
        Seed(u8, bool),
        Resync(Vec<(u8, bool)>),
        Sweep(u64, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        let i = 0u8..12;
        prop_oneof![
            3 => i.clone().prop_map(Op::Fork),
            3 => i.clone().prop_map(Op::Exec),
            3 => i.clone().prop_map(Op::Exit),
            3 => i.clone().prop_map(Op::Free),
            1 => (i.clone(), any::<bool>()).prop_map(|(i, b)| Op::Seed(i, b)),
            1 => proptest::collection::vec((i, any::<bool>()), 0..4).prop_map(Op::Resync),
            1 => (0u64..5, any::<bool>()).prop_map(|(s, alive)| Op::Sweep(s, alive)),
        ]
    }

    fn rank(kind: EventKind) -> u8 {
        match kind {
            EventKind::Ready => 0,
            EventKind::Running => 1,
            EventKind::Booted => 2,
            EventKind::Shutdown => 3,
            EventKind::Down => 4,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn indexes_and_transitions_stay_consistent(ops in proptest::collection::vec(op(), 1..60)) {
            let mut t = tracker();
            let mut now: u64 = 6_000_000_000;
            let mut last: HashMap<u64, u8> = HashMap::new();
            for op in ops {
                now += 100_000_000;
                let evs = match op {
                    Op::Fork(i) => t.observe(&init(i).fork(now)),
                    Op::Exec(i) => t.observe(&init(i).exec(now)),
                    Op::Exit(i) => t.observe(&init(i).exit(now, 0)),
                    Op::Free(i) => t.observe(&init(i).free(now)),
                    Op::Seed(i, booted) => {
                        t.seed(&from_proc(init(i), booted), now);
                        t.initial()
                    }
                    Op::Resync(live) => {
                        // A scan lists each PID once.
                        let mut live: Vec<_> = live.iter().map(|&(i, b)| from_proc(init(i), b)).collect();
                        live.sort_by_key(|o| o.init_pid);
                        live.dedup_by_key(|o| o.init_pid);
                        t.resync(&live, now)
                    }
                    Op::Sweep(seconds, alive) => {
                        now += seconds * 1_000_000_000;
                        let mut out = Vec::new();
                        let due = t.overdue(now);
                        if let Some(next) = t.next_down_check() {
                            prop_assert_eq!(due.is_empty(), next > now, "overdue agrees with the next check");
                        }
                        for (pid, start) in due {
                            if alive {
                                t.confirm_still_there(pid, start, now, false);
                            } else {
                                out.extend(t.confirm_gone(pid, start, now));
                            }
                        }
                        prop_assert!(t.next_down_check().is_none_or(|n| n > now));
                        out
                    }
                };
                t.zones.check_indexes();
                for ev in &evs {
                    let r = rank(ev.kind);
                    if let Some(&prev) = last.get(&ev.zone_id) {
                        prop_assert!(prev < 4, "nothing after down: {:?}", ev.kind);
                        prop_assert!(r > prev || (prev == 1 && r == 1 && ev.initial),
                            "zone {} went from {} to {:?}", ev.zone_id, prev, ev.kind);
                    }
                    last.insert(ev.zone_id, r);
                }
                let in_table: Vec<u64> = t.zones.iter().map(|(_, z)| z.id).collect();
                for (id, r) in &last {
                    prop_assert_eq!(*r == 4, !in_table.contains(id), "zone {} is down exactly when it left the table", id);
                }
            }
        }
    }
}

#[test]
fn other_cgroup_paths_are_kept_only_until_the_boot_lookup() {
    let mut t = tracker();
    let mut fork = AAP.fork(1_000);
    fork.more_cgroups = Some(vec!["/a".into(), "/b".into()]);
    let mut exec = AAP.exec(2_000);
    exec.more_cgroups = fork.more_cgroups.clone();
    let key = TaskKey {
        init_pid: AAP.pid,
        start_ns: AAP.start,
    };
    feed(&mut t, &[fork]);
    assert!(
        t.zones.at(&key).more_cgroups.is_some(),
        "ready: the boot lookup needs them"
    );
    feed(&mut t, &[exec.clone()]);
    assert!(
        t.zones.at(&key).more_cgroups.is_none(),
        "booted: no lookup left"
    );
    feed(&mut t, &[exec]);
    assert!(
        t.zones.at(&key).more_cgroups.is_none(),
        "a re-exec keeps nothing"
    );
    // A zone found booted in /proc keeps none either.
    let noot = init(300, 7000, 50_000, "noot");
    let mut seen = from_proc(noot, true);
    seen.more_cgroups = Some(vec!["/c".into()]);
    t.seed(&seen, 0);
    assert!(t.zones.iter().all(|(_, z)| z.more_cgroups.is_none()));
}

#[test]
fn a_seeded_init_that_was_already_exiting_is_shut_down_and_down_once_gone() {
    // Its exit passed before the kernel side attached: no record of it ever comes.
    let mut t = tracker();
    let found = 5_000_000_000;
    t.seed(&from_proc(AAP, true), found);
    assert_eq!(kinds(&t.initial()), [("aap", "running")]);
    assert_eq!(t.next_down_check(), Some(found + SEED_CHECK_NS));
    assert!(t.overdue(found + SEED_CHECK_NS - 1).is_empty());
    let check = found + SEED_CHECK_NS;
    let due = t.overdue(check);
    assert_eq!(due.len(), 1);
    let (pid, start) = due[0];
    // Still a zombie at the check: checked again later, nothing reported yet.
    t.confirm_still_there(pid, start, check, true);
    let later = t.next_down_check().expect("checked again");
    assert!(later > check);
    let evs = t.confirm_gone(pid, start, later);
    assert_eq!(kinds(&evs), [("aap", "shutdown"), ("aap", "down")]);
    assert!(evs.iter().all(|e| e.resynced) && evs[0].exit.is_none());
    assert!(t.is_empty() && t.next_down_check().is_none());
}

#[test]
fn a_seeded_init_found_running_or_seen_by_the_kernel_is_not_checked_again() {
    let mut t = tracker();
    let found = 5_000_000_000;
    t.seed(&from_proc(AAP, true), found);
    let noot = init(300, 7000, 50_000, "noot");
    t.seed(&from_proc(noot, true), found);
    // The kernel side sees noot's init: its exit will be seen too.
    feed(&mut t, &[noot.exec(found + 10)]);
    let check = found + SEED_CHECK_NS;
    let due = t.overdue(check);
    assert_eq!(due.len(), 1, "only aap's check is due");
    t.confirm_still_there(due[0].0, due[0].1, check, false);
    assert_eq!(
        t.next_down_check(),
        None,
        "no periodic check of running zones"
    );
    t.zones.check_indexes();
    let evs = feed(&mut t, &[AAP.exit(check + 5, 0), AAP.free(check + 6)]);
    assert_eq!(kinds(&evs), [("aap", "shutdown"), ("aap", "down")]);
}

/// The init's parent read with an observation (or its init found gone), and
/// the lineage the fork's record carried, reach that observation's lookup,
/// and no later one.
#[test]
fn the_inits_parent_serves_only_its_own_observations_lookup() {
    /// (init's parent, start time, the lineage's creator, init gone) of each lookup.
    type Seen = Vec<(u32, u64, Option<u32>, bool)>;
    struct Parents(std::rc::Rc<std::cell::RefCell<Seen>>);
    impl NameResolver for Parents {
        fn lookup(&mut self, f: &ZoneFacts<'_>) -> Lookup {
            let creator = f.lineage.map(|l| l.forebears[0].pid);
            self.0
                .borrow_mut()
                .push((f.init_ppid, f.start_ns, creator, f.init_gone));
            Lookup::NotYet
        }
    }
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let host = HostInfo {
        utsns: HOST_UTS,
        hostname: "host".into(),
    };
    let mut t = Tracker::new(host, Parents(seen.clone()));
    let mut fork = AAP.fork(AAP.start);
    fork.init_ppid = 42;
    let mut lineage = crate::lineage::Lineage::default();
    lineage.forebears[0] = crate::lineage::Forebear::new(41, b"unshare");
    fork.lineage = Some(lineage);
    t.observe(&fork);
    // The exec's record was not enriched (its cgroup came with it): the resolver reads the parent itself.
    t.observe(&AAP.exec(AAP.start + 10));
    assert_eq!(
        *seen.borrow(),
        [
            (42, AAP.start, Some(41), false),
            (0, AAP.start, None, false)
        ]
    );
    // An init found gone at its fork: that lookup is told, and reads nothing of it.
    seen.borrow_mut().clear();
    let gone = init(200, 6000, 3_000, "gone");
    let mut fork = gone.fork(3_000);
    fork.init_gone = true;
    t.observe(&fork);
    assert_eq!(*seen.borrow(), [(0, 3_000, None, true)]);
}

/// `o` as a kernel with namespace ids reports it: its PID namespace's id is `id`.
fn in_ns_id(mut o: Observation, id: u64) -> Observation {
    o.pidns_id = id;
    o
}

/// A zone nested in PID namespace (`parent_inode`, `parent_id`), its parent's init unknown.
fn nested(pid: u32, parent_inode: u32, parent_id: u64) -> Observation {
    let mut o = in_ns_id(
        init(pid, 9000 + pid, 5_000 + u64::from(pid), "kind").fork(9_000),
        900 + u64::from(pid),
    );
    o.level = 2;
    o.parent_pidns = parent_inode;
    o.parent_pidns_id = parent_id;
    o
}

#[test]
fn a_reused_namespace_inode_with_another_id_is_no_parent() {
    // aap's namespace (inode 5000, id 100) lives on; noot's is another one that
    // got the same inode (id 200): aap's free was never seen, say.
    let noot = init(300, AAP.pidns, 3_000, "noot");
    let mut t = tracker();
    let evs = feed(
        &mut t,
        &[
            in_ns_id(AAP.fork(1_000), 100),
            in_ns_id(noot.fork(3_000), 200),
        ],
    );
    let (aap_id, noot_id) = (evs[0].zone_id, evs[1].zone_id);
    let parent_of = |t: &mut Tracker<NoRuntimeNames>, o: Observation| {
        let evs = t.observe(&o);
        assert_eq!(kinds(&evs), [("kind", "ready")]);
        evs[0].parent_zone_id
    };
    assert_eq!(
        parent_of(&mut t, nested(1, AAP.pidns, 100)),
        Some(aap_id),
        "found by its id, though not the newest of its inode"
    );
    assert_eq!(parent_of(&mut t, nested(2, AAP.pidns, 200)), Some(noot_id));
    assert_eq!(
        parent_of(&mut t, nested(3, AAP.pidns, 300)),
        None,
        "a third namespace with that inode, whose init is unknown"
    );
    assert_eq!(
        parent_of(&mut t, nested(4, AAP.pidns, 0)),
        Some(noot_id),
        "no id: the newest zone of the inode, as before"
    );
    t.zones.check_indexes();
}

#[test]
fn without_namespace_ids_parents_are_found_by_inode() {
    // Neither side knows ids (a kernel before 6.18), or only one does.
    let mut t = tracker();
    let evs = feed(&mut t, &[AAP.fork(1_000)]);
    let evs2 = t.observe(&nested(1, AAP.pidns, 0));
    assert_eq!(evs2[0].parent_zone_id, Some(evs[0].zone_id));
    let evs2 = t.observe(&nested(2, AAP.pidns, 100));
    assert_eq!(
        evs2[0].parent_zone_id,
        Some(evs[0].zone_id),
        "the parent's id is unknown: the inode decides"
    );
    t.zones.check_indexes();
}

#[test]
fn a_seeded_zone_is_not_taken_over_by_a_reused_pid_in_a_reused_inode() {
    // /proc showed aap (namespace id 100); the kernel then reports PID 100 as the
    // init of another namespace with the same inode (id 200), started within
    // /proc's tick of aap's start: another zone, not aap's exact start time.
    let mut t = tracker();
    let seeded = t.seed(&in_ns_id(from_proc(AAP, true), 100), 0);
    let other = Init {
        start: AAP.start + 1_000_000,
        ..AAP
    };
    let evs = feed(
        &mut t,
        &[
            in_ns_id(other.fork(1_001_000), 200),
            in_ns_id(other.exec(1_002_000), 200),
        ],
    );
    assert_eq!(kinds(&evs), [("aap", "ready"), ("aap", "booted")]);
    assert_ne!(evs[0].zone_id, seeded, "a zone of its own");
    assert_eq!(t.len(), 2, "the seeded zone is still known");
    t.zones.check_indexes();
}

#[test]
fn a_seeded_zone_is_taken_over_when_either_side_lacks_the_namespace_id() {
    for (seeded_id, kernel_id) in [(100, 0), (0, 100), (0, 0), (100, 100)] {
        let mut t = tracker();
        let seeded = t.seed(&in_ns_id(from_proc(AAP, true), seeded_id), 0);
        let evs = feed(
            &mut t,
            &[
                in_ns_id(AAP.fork(1_000), kernel_id),
                in_ns_id(AAP.exec(2_000), kernel_id),
            ],
        );
        assert_eq!(kinds(&evs), [("aap", "ready"), ("aap", "booted")]);
        assert_eq!(evs[0].zone_id, seeded, "ids {seeded_id}/{kernel_id}");
        assert_eq!(t.len(), 1);
        t.zones.check_indexes();
    }
}

#[test]
fn resync_tells_a_reused_inode_from_the_known_zone_by_its_id() {
    // A rescan finds PID 100 within a tick of aap's start, in aap's inode but
    // another namespace: aap is gone, the scanned one is new.
    let mut t = tracker();
    let aap = feed(
        &mut t,
        &[
            in_ns_id(AAP.fork(1_000), 100),
            in_ns_id(AAP.exec(2_000), 100),
        ],
    );
    let evs = t.resync(&[in_ns_id(from_proc(AAP, true), 200)], 50_000_000);
    assert_eq!(
        kinds(&evs),
        [
            ("aap", "shutdown"),
            ("aap", "down"),
            ("aap", "ready"),
            ("aap", "booted")
        ]
    );
    assert_eq!(evs[1].zone_id, aap[0].zone_id);
    assert_ne!(evs[2].zone_id, aap[0].zone_id);
    t.zones.check_indexes();
}
