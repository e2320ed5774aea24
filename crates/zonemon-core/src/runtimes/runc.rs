//! runc used bare: `runc run -d aap` → `aap` (the container id).
//!
//! runc keeps `/run/runc/<id>/state.json` (`init_process_pid`,
//! `init_process_start` in clock ticks) while the container exists; see
//! [`super::oci`] for the evidence used and its order.

use std::path::Path;
use std::sync::Arc;

use super::jsonpick::{self, Keep};
use super::oci::{OciResolver, OciRuntime, OciState};
use super::probe::Probe;
use super::resolver::RuntimeResolver;
use crate::naming::ResolvedName;

/// runc's default state directory, below the root.
pub const STATE_DIR: &str = "run/runc";

/// Parses runc's `state.json`: its init's PID and start time.
pub fn parse_state(bytes: &[u8]) -> Option<OciState> {
    const KEYS: Keep = Keep::Keys(&[
        ("init_process_pid", Keep::All),
        ("init_process_start", Keep::All),
    ]);
    let v = jsonpick::parse(bytes, KEYS)?;
    let pid = u32::try_from(v.get("init_process_pid")?.as_u64()?).ok()?;
    (pid > 0).then_some(OciState {
        pid,
        start_ticks: v.get("init_process_start").and_then(|s| s.as_u64()),
    })
}

/// runc's layout.
pub const RUNC: OciRuntime = OciRuntime {
    program: "runc",
    runtime: "runc",
    state_dir: STATE_DIR,
    state_file: "state.json",
    label_state: "runc-state",
    label_argv: "runc-argv",
    label_cgroup: "runc-cgroup",
    comms: &[
        "runc",
        "conmon",
        "containerd-shim*",
        "dockerd",
        "containerd",
    ],
    parse: parse_state,
};

/// Names containers that runc made by itself.
pub struct Runc {
    root: Arc<Path>,
    inner: OciResolver,
}

impl Runc {
    /// A runc resolver reading below `root`.
    pub fn new(root: &Path) -> Self {
        Runc {
            root: Arc::from(root),
            inner: OciResolver::new(RUNC, root),
        }
    }
}

impl RuntimeResolver for Runc {
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        self.inner.resolve(probe)
    }

    fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        self.inner.could_claim_later(probe)
    }

    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        Some(self.inner.comms())
    }
}

super::resolver::standalone_resolver!(Runc);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::{Forebear, Lineage};
    use crate::naming::{NameResolver, NameSource, ZoneFacts};
    use crate::runtimes::testutil::{facts, mutated, TempTree, CASES};
    use proptest::prelude::*;

    /// runc 1.1's `state.json` (trimmed of the `config` section zonemon does not read).
    fn state(id: &str, pid: u32, start: u64) -> String {
        format!(
            r#"{{"id":"{id}","init_process_pid":{pid},"init_process_start":{start},"created":"2026-11-26T05:39:03.063600976Z","config":{{"no_pivot_root":false,"rootfs":"/tmp/b/rootfs","readonlyfs":true,"labels":["bundle=/tmp/b"],"cgroups":{{"path":"","name":"{id}","parent":""}}}},"rootless":false,"cgroup_paths":{{"":"/sys/fs/cgroup/unified/{id}","cpu":"/sys/fs/cgroup/cpu/{id}","memory":"/sys/fs/cgroup/memory/{id}","pids":"/sys/fs/cgroup/pids/{id}"}},"namespace_paths":{{"NEWPID":"/proc/{pid}/ns/pid","NEWUTS":"/proc/{pid}/ns/uts"}},"external_descriptors":["/dev/null","/dev/null","/dev/null"],"intel_rdt_path":""}}"#
        )
    }

    /// `runc run -d <id>` (250) making a container: its `runc init` (260) and the init,
    /// 300, whose parent is `ppid` and whose `/proc/300/cgroup` says `cgroup`.
    fn runc_making(t: &TempTree, ppid: u32, cgroup: &str, id: &str) {
        t.proc(300, ppid, 71762, &[300, 1], &["runc:[2:INIT]"], cgroup);
        t.proc(260, 250, 71761, &[260], &["runc", "init"], "0::/zmrt-aap\n");
        t.proc(
            250,
            100,
            71760,
            &[250],
            &["runc", "run", "-d", id],
            "0::/\n",
        );
    }

    #[test]
    fn names_by_argv_at_fork_then_by_state() {
        let t = TempTree::new("runc");
        runc_making(&t, 250, "0::/zmrt-aap\n4:memory:/x/zmrt-aap\n", "zmrt-aap");
        let mut r = Runc::new(t.root());
        let at_fork = r
            .lookup(&facts(300, 260, Some("/zmrt-aap")))
            .named()
            .expect("by argv");
        assert_eq!(at_fork.name, "zmrt-aap");
        assert_eq!(at_fork.source, NameSource::Runtime("runc-argv"));
        assert_eq!(at_fork.runtime.as_deref(), Some("runc"));
        assert_eq!(at_fork.container_id.as_deref(), Some("zmrt-aap"));
        t.write(
            &format!("{STATE_DIR}/zmrt-aap/state.json"),
            state("zmrt-aap", 300, 71762),
        );
        let booted = r
            .lookup(&facts(300, 260, Some("/zmrt-aap")))
            .named()
            .unwrap();
        assert_eq!(booted.source, NameSource::Runtime("runc-state"));
        // runc has exited (create, then start): the cgroup and the state still say it.
        t.proc(300, 1, 71762, &[300, 1], &["sleep"], "0::/zmrt-aap\n");
        assert_eq!(
            r.lookup(&facts(300, 0, None)).named().unwrap().name,
            "zmrt-aap"
        );
    }

    /// The facts of [`runc_making`]'s init at its fork, in `cgroup`: the
    /// kernel's lineage lists `runc init` (260) and runc (250) above it.
    fn forked_by_runc(cgroup: &str) -> ZoneFacts<'_> {
        ZoneFacts {
            lineage: Some(Lineage::new([
                Forebear::new(260, b"runc:[1:CHILD]"),
                Forebear::new(260, b"runc:[1:CHILD]"),
                Forebear::new(250, b"runc"),
                Forebear::default(),
            ])),
            more_cgroups: Some(&[]),
            ..facts(300, 260, Some(cgroup))
        }
    }

    /// With the kernel's lineage listing runc above the init, a container
    /// directory the cgroup names, made just now and without its state yet,
    /// names the zone: runc's command line is not read (here it would say
    /// another id). A leftover directory (a `runc create` killed half-way)
    /// does not: then the command line is read.
    #[test]
    fn the_container_being_made_is_named_by_its_cgroup_without_runcs_command_line() {
        let t = TempTree::new("runc-cgroup");
        runc_making(&t, 260, "0::/zmrt-aap\n", "zmrt-noot");
        t.mkdir(&format!("{STATE_DIR}/zmrt-aap"));
        let mut r = Runc::new(t.root());
        let named = r
            .lookup(&forked_by_runc("/zmrt-aap"))
            .named()
            .expect("by cgroup");
        assert_eq!(named.name, "zmrt-aap");
        assert_eq!(named.source, NameSource::Runtime("runc-cgroup"));
        t.write(
            &format!("{STATE_DIR}/zmrt-aap/state.json"),
            state("zmrt-aap", 300, 71762),
        );
        let named = r.lookup(&forked_by_runc("/zmrt-aap")).named().unwrap();
        assert_eq!(named.source, NameSource::Runtime("runc-state"));
        // Another init's state: not this container; the command line is read.
        t.write(
            &format!("{STATE_DIR}/zmrt-aap/state.json"),
            state("zmrt-aap", 999, 5),
        );
        assert_eq!(
            r.lookup(&forked_by_runc("/zmrt-aap")).named().unwrap().name,
            "zmrt-noot"
        );
        // A leftover directory, older than a container takes to make, without a state.
        t.mkdir(&format!("{STATE_DIR}/zmrt-old"));
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        std::fs::File::open(t.path(&format!("{STATE_DIR}/zmrt-old")))
            .and_then(|d| d.set_modified(long_ago))
            .unwrap();
        assert_eq!(
            r.lookup(&forked_by_runc("/zmrt-old")).named().unwrap().name,
            "zmrt-noot"
        );
    }

    /// Just forked, the init is still in the cgroups its creator was in; one
    /// of them the monitor's own (a host whose processes share one cgroup in
    /// a hierarchy), whose last component is a valid id and even a recent
    /// directory in runc's state: it is not taken for the container's.
    #[test]
    fn a_cgroup_the_monitor_is_in_itself_names_no_container() {
        let t = TempTree::new("runc-own-cgroup");
        runc_making(
            &t,
            260,
            "4:memory:/sandbox/zmrt-shared\n0::/\n",
            "zmrt-noot",
        );
        t.write("proc/self/cgroup", "4:memory:/sandbox/zmrt-shared\n0::/\n");
        t.mkdir(&format!("{STATE_DIR}/zmrt-shared"));
        let mut r = Runc::new(t.root());
        let named = r
            .lookup(&forked_by_runc("/sandbox/zmrt-shared"))
            .named()
            .expect("by runc's command line");
        assert_eq!(named.name, "zmrt-noot");
        assert_eq!(named.source, NameSource::Runtime("runc-argv"));
    }

    #[test]
    fn finds_custom_cgroups_by_scanning_states() {
        let t = TempTree::new("runc-scan");
        t.proc(300, 1, 71762, &[300, 1], &["sleep"], "0::/machine/web\n");
        t.write(
            &format!("{STATE_DIR}/other/state.json"),
            state("other", 999, 5),
        );
        t.write(
            &format!("{STATE_DIR}/broken/state.json"),
            "{\"init_process_pid\":",
        );
        t.write(
            &format!("{STATE_DIR}/zmrt-web/state.json"),
            state("zmrt-web", 300, 71762),
        );
        let r = Runc::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .unwrap();
        assert_eq!(r.name, "zmrt-web");
    }

    #[test]
    fn scan_index_follows_new_containers_and_late_states() {
        let t = TempTree::new("runc-index");
        t.proc(300, 1, 71762, &[300, 1], &["sleep"], "0::/custom\n");
        t.write(
            &format!("{STATE_DIR}/other/state.json"),
            state("other", 999, 5),
        );
        let mut r = Runc::new(t.root());
        assert!(r.lookup(&facts(300, 0, None)).named().is_none());
        // A new container: the directory changed.
        t.write(
            &format!("{STATE_DIR}/first/state.json"),
            state("first", 300, 71762),
        );
        assert_eq!(
            r.lookup(&facts(300, 0, None)).named().unwrap().name,
            "first"
        );
        // A container whose state is written after the scan saw its directory.
        t.proc(301, 1, 80000, &[301, 1], &["sleep"], "0::/custom2\n");
        t.mkdir(&format!("{STATE_DIR}/late"));
        assert!(r.lookup(&facts(301, 0, None)).named().is_none());
        t.write(
            &format!("{STATE_DIR}/late/state.json"),
            state("late", 301, 80000),
        );
        assert_eq!(r.lookup(&facts(301, 0, None)).named().unwrap().name, "late");
    }

    #[test]
    fn a_stale_state_with_the_same_pid_does_not_hide_the_live_one() {
        let t = TempTree::new("runc-stale");
        t.proc(300, 1, 71762, &[300, 1], &["sleep"], "0::/custom\n");
        // A container killed long ago and never deleted recorded the same PID.
        for (id, start) in [("aaa-stale", 5), ("zzz-stale", 6)] {
            t.write(
                &format!("{STATE_DIR}/{id}/state.json"),
                state(id, 300, start),
            );
        }
        t.write(
            &format!("{STATE_DIR}/live/state.json"),
            state("live", 300, 71762),
        );
        let r = Runc::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .unwrap();
        assert_eq!(r.name, "live");
    }

    #[test]
    fn a_broken_leftover_state_does_not_keep_every_zone_under_suspicion() {
        let t = TempTree::new("runc-broken");
        t.proc(300, 1, 71762, &[300, 1], &["sleep"], "0::/user.slice\n");
        t.write(
            &format!("{STATE_DIR}/broken/state.json"),
            "{\"init_process_pid\":",
        );
        let mut r = Runc::new(t.root());
        let f = facts(300, 0, Some("/user.slice"));
        let probe = crate::runtimes::probe::Probe::new(t.root(), f);
        assert!(r.resolve_probe(&probe).is_none());
        assert!(
            !r.could_claim_later(&probe),
            "no runc above, nothing being created"
        );
        // A container being created (its state not written yet) keeps zones under suspicion.
        t.mkdir(&format!("{STATE_DIR}/creating"));
        let probe = crate::runtimes::probe::Probe::new(t.root(), f);
        assert!(r.resolve_probe(&probe).is_none());
        assert!(r.could_claim_later(&probe));
    }

    #[test]
    fn a_container_directory_whose_state_never_came_expires() {
        let t = TempTree::new("runc-halfway");
        t.proc(300, 1, 71762, &[300, 1], &["sleep"], "0::/user.slice\n");
        // `runc create` killed half-way, a minute ago: a directory, no state.json.
        t.mkdir(&format!("{STATE_DIR}/halfway"));
        let dir = t.root().join(STATE_DIR).join("halfway");
        let minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::open(&dir)
            .unwrap()
            .set_modified(minute_ago)
            .unwrap();
        let mut r = Runc::new(t.root());
        let probe =
            crate::runtimes::probe::Probe::new(t.root(), facts(300, 0, Some("/user.slice")));
        assert!(r.resolve_probe(&probe).is_none());
        assert!(
            !r.could_claim_later(&probe),
            "a leftover keeps no zone under suspicion"
        );
    }

    #[test]
    fn refuses_reused_pids_and_managed_containers() {
        let t = TempTree::new("runc-refuse");
        t.proc(300, 1, 71762, &[300, 1], &["sleep"], "0::/aap\n");
        // The state's init started at another time: PID 300 was reused.
        t.write(
            &format!("{STATE_DIR}/aap/state.json"),
            state("aap", 300, 1234),
        );
        assert!(Runc::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .is_none());
        // runc run by a containerd shim: containerd's resolver names it, not this one.
        t.write(
            &format!("{STATE_DIR}/aap/state.json"),
            state("aap", 300, 71762),
        );
        t.proc(300, 250, 71762, &[300, 1], &["sleep"], "0::/aap\n");
        t.proc(250, 200, 1, &[250], &["runc", "create", "aap"], "0::/\n");
        t.proc(
            200,
            1,
            1,
            &[200],
            &[
                "containerd-shim-runc-v2",
                "-namespace",
                "default",
                "-id",
                "aap",
            ],
            "0::/\n",
        );
        assert!(Runc::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn parser_survives_mutations(input in mutated(state("aap", 300, 71762))) {
            let _ = parse_state(&input);
        }
    }

    #[test]
    fn parser_reads_the_seed_and_rejects_bad_pids() {
        let seed = state("aap", 300, 71762);
        assert_eq!(parse_state(br#"{"init_process_pid":0}"#), None);
        assert_eq!(parse_state(br#"{"init_process_pid":4294967296}"#), None);
        assert_eq!(
            parse_state(seed.as_bytes()),
            Some(OciState {
                pid: 300,
                start_ticks: Some(71762)
            })
        );
    }
}
