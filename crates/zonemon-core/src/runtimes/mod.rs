//! Runtime names: which runtime made a zone, and the name and id it gave it.
//!
//! One module per runtime, each a [`NameResolver`] (and a [`RuntimeResolver`],
//! the form [`RuntimeNames`] chains: the contract is in [`resolver`], what a
//! resolver looks at, the [`Probe`] of a zone, in [`probe`]). Each works only from what exists on
//! the host at the moment of the event: the init's cgroup paths, the
//! command lines of the processes that made it (shim, conmon,
//! `[lxc monitor]`, nspawn, runc/crun), and the runtime's own state files.
//! No sockets, no waiting (but for at most [`libpod_sqlite::BUSY_TIMEOUT`]
//! on a Podman holding its SQLite state locked), bounded reads ([`fsread`]),
//! and every path read is below `root` (`/` in production, a fixture tree in
//! tests).
//!
//! The order of [`default_chain`] goes from the most specific evidence to
//! the least: Docker, Podman and CRI-O (whose containers also leave plain
//! runc state behind), containerd (and Kubernetes through it), LXC,
//! systemd-nspawn, then bare crun and runc.
//!
//! Only zones at the first level below the host's PID namespace are named
//! from host state: a zone nested inside a container shares its
//! container's cgroup and ancestors, but the host's runtimes did not make it.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use crate::naming::{Lookup, NameResolver, ZoneFacts};
use comms::CommFilter;
use probe::Probe;
use procfiles::ProcFiles;
use resolver::RuntimeResolver;

pub mod boltdb;
pub mod cgroup;
pub mod comms;
pub mod containerd;
pub mod crio;
pub mod crun;
pub mod docker;
pub mod fsread;
pub mod jsonpick;
pub mod keptfile;
pub mod libpod;
pub mod libpod_sqlite;
pub mod lxc;
pub mod nspawn;
pub mod oci;
pub mod podman;
pub mod probe;
pub mod procfiles;
pub mod procfs;
pub mod resolver;
pub mod runc;
pub mod stateindex;

#[cfg(test)]
pub(crate) mod testutil;

pub use containerd::Containerd;
pub use crio::CriO;
pub use crun::Crun;
pub use docker::Docker;
pub use lxc::Lxc;
pub use nspawn::Nspawn;
pub use podman::Podman;
pub use runc::Runc;

/// Every runtime resolver, most specific first, sharing one look at `/proc` per event.
///
/// `root` is `/` in production; every file read is below it. The chain is
/// one [`RuntimeNames`] in a `Vec`, so a caller may append resolvers of its own.
pub fn default_chain(root: &Path) -> Vec<Box<dyn NameResolver>> {
    vec![Box::new(RuntimeNames::new(root))]
}

/// The runtime resolvers in order, as one [`NameResolver`]; the first name found wins.
pub struct RuntimeNames {
    root: Arc<Path>,
    resolvers: Vec<Box<dyn RuntimeResolver>>,
    /// `/proc` files kept open between lookups (the processes that start zones mostly stay).
    files: RefCell<ProcFiles>,
    /// The command names of the processes whose command lines some resolver looks at.
    comms: CommFilter,
}

impl RuntimeNames {
    /// Every runtime this crate knows, in [`default_chain`]'s order, reading below `root`.
    pub fn new(root: &Path) -> Self {
        Self::with_resolvers(
            root,
            vec![
                Box::new(Docker::new(root)),
                Box::new(Podman::new(root)),
                Box::new(CriO::new(root)),
                Box::new(Containerd::new(root)),
                Box::new(Lxc::new(root)),
                Box::new(Nspawn::new(root)),
                Box::new(Crun::new(root)),
                Box::new(Runc::new(root)),
            ],
        )
    }

    /// The given resolvers, in order, reading below `root`.
    pub fn with_resolvers(root: &Path, resolvers: Vec<Box<dyn RuntimeResolver>>) -> Self {
        RuntimeNames {
            root: Arc::from(root),
            comms: CommFilter::union(resolvers.iter().map(|r| r.ancestor_comms())),
            resolvers,
            files: RefCell::new(ProcFiles::new()),
        }
    }
}

impl NameResolver for RuntimeNames {
    /// Every runtime is asked for a name first; only when none has one, the
    /// cheaper question whether any shows signs of making the zone. Of the
    /// processes the kernel listed above the init, only those whose command
    /// name some resolver looks for are read ([`comms`]).
    fn lookup(&mut self, facts: &ZoneFacts<'_>) -> Lookup {
        let probe = Probe::with_files(&self.root, *facts, &self.files).reading_only(&self.comms);
        if probe.nested() {
            return Lookup::Never; // the host's runtimes did not make it
        }
        if let Some(name) = self
            .resolvers
            .iter_mut()
            .find_map(|r| r.resolve_probe(&probe))
        {
            return Lookup::Named(name);
        }
        if self.resolvers.iter().any(|r| r.could_claim_later(&probe)) {
            Lookup::NotYet
        } else {
            Lookup::Never
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{facts, mutated, mutated_any, Bytes, TempTree};
    use super::*;
    use crate::escape::MAX_NAME_LEN;
    use crate::lineage::{Forebear, Lineage};
    use proptest::prelude::*;
    use proptest::test_runner::TestRunner;

    #[test]
    fn a_nested_zone_is_never_named_here() {
        let t = TempTree::new("nested");
        t.proc(100, 50, 777, &[100, 1], &["sleep", "1000"], "0::/aap\n");
        // A zone inside the container: the host's runtimes did not make it.
        t.proc(200, 100, 9, &[200, 5, 1], &["sh"], "0::/aap\n");
        let nested = ZoneFacts {
            level: 2,
            ..facts(200, 100, Some("/aap"))
        };
        let mut chain = RuntimeNames::new(t.root());
        assert_eq!(chain.lookup(&nested), Lookup::Never);
        assert!(Probe::new(t.root(), nested).nested());
    }

    #[test]
    fn a_zone_without_signs_of_a_runtime_is_ruled_out() {
        let t = TempTree::new("unclaimed");
        // An `unshare` zone: no runtime above it, a cgroup of no runtime's scheme.
        t.proc(100, 50, 777, &[100, 1], &["sleep", "9"], "0::/user.slice\n");
        t.proc(
            50,
            40,
            1,
            &[50],
            &["unshare", "--pid", "--fork", "sleep"],
            "0::/\n",
        );
        t.proc(40, 1, 1, &[40], &["bash"], "0::/\n");
        let mut chain = RuntimeNames::new(t.root());
        let f = facts(100, 50, Some("/user.slice"));
        assert_eq!(chain.lookup(&f), Lookup::Never);

        // runc is creating a container whose directory is not made yet: ask again later.
        t.proc(200, 60, 778, &[200, 1], &["runc", "init"], "0::/aap\n");
        t.proc(60, 40, 1, &[60], &["runc", "init"], "0::/aap\n");
        let f = facts(200, 60, Some("/aap"));
        assert_eq!(chain.lookup(&f), Lookup::NotYet);
        // Made now, without its state yet: the container the cgroup names.
        t.mkdir(&format!("{}/aap", runc::STATE_DIR));
        let named = chain.lookup(&f).named().expect("named");
        assert_eq!(
            (named.name.as_str(), named.source),
            ("aap", crate::naming::NameSource::Runtime("runc-cgroup"))
        );

        // A Docker-looking cgroup is a sign too, whatever is above the init.
        let id = "ab".repeat(32);
        let cg = format!("/docker/{id}");
        t.proc(300, 1, 779, &[300, 1], &["sleep"], &format!("0::{cg}\n"));
        let f = facts(300, 0, Some(&cg));
        assert_eq!(chain.lookup(&f), Lookup::NotYet);
    }

    #[test]
    fn default_chain_names_nothing_on_an_empty_host() {
        let t = TempTree::new("empty-host");
        let mut chain = default_chain(t.root());
        assert_eq!(chain.lookup(&facts(100, 60, Some("/x"))), Lookup::Never);
        assert_eq!(chain.lookup(&facts(0, 0, None)), Lookup::Never);
    }

    /// A container id that every runtime's files in [`hostile_round`] name.
    const HOSTILE_ID: &str = "4f7a2c8e9b1d3f5a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a";

    /// Every runtime's file for one container, [`HOSTILE_ID`], whose init is PID 300 (path, content).
    fn runtime_files() -> Vec<(String, String)> {
        let id = HOSTILE_ID;
        vec![
            (
                format!("{}/{id}/config.v2.json", docker::CONTAINERS_DIR),
                format!(r#"{{"ID":"{id}","Name":"/aap","State":{{"Running":true,"Pid":300}}}}"#),
            ),
            (
                format!("{}/containers.json", podman::STORAGE_DIRS[0]),
                format!(r#"[{{"id":"{id}","names":["aap"]}}]"#),
            ),
            (
                format!("{}/{id}/userdata/config.json", crio::USERDATA_DIRS[0]),
                r#"{"annotations":{"io.kubernetes.pod.namespace":"ns","io.kubernetes.pod.name":"p","io.kubernetes.container.name":"c"}}"#.to_string(),
            ),
            (
                format!("{}/k8s.io/{id}/config.json", containerd::TASK_DIR),
                r#"{"annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"c","io.kubernetes.cri.sandbox-name":"p","io.kubernetes.cri.sandbox-namespace":"ns"}}"#.to_string(),
            ),
            (format!("{}/k8s.io/{id}/init.pid", containerd::TASK_DIR), "300".to_string()),
            (format!("{}/{id}/state.json", runc::STATE_DIR), r#"{"init_process_pid":300,"init_process_start":5000}"#.to_string()),
            (format!("{}/{id}/status", crun::STATE_DIR), r#"{"pid":300,"process-start-time":5000}"#.to_string()),
            ("var/lib/lxc/aap/config".to_string(), "lxc.uts.name = aap\n".to_string()),
        ]
    }

    /// The init's cgroup in each runtime's scheme, for [`HOSTILE_ID`].
    fn runtime_cgroups() -> [String; 7] {
        let id = HOSTILE_ID;
        [
            format!("0::/docker/{id}\n"),
            format!("0::/libpod_parent/libpod-{id}\n"),
            format!("0::/kubepods/crio-{id}\n"),
            format!("0::/kubepods/burstable/podx/{id}\n"),
            "0::/lxc.payload.aap\n".to_string(),
            "0::/machine.slice/machine-aap.scope\n".to_string(),
            format!("0::/{id}\n"),
        ]
    }

    /// One round of a hostile host: every runtime's file for one container
    /// (path, content; as written or mutated), then a mutation of the zone's
    /// `/proc/<pid>/cgroup` and one of its parent's command line.
    fn hostile_round() -> impl Strategy<Value = (Vec<(String, Bytes)>, Bytes, Bytes)> {
        let files = runtime_files();
        let cgroups = runtime_cgroups();
        let parents: [&[u8]; 5] = [
            b"[lxc monitor] /var/lib/lxc aap\0",
            b"systemd-nspawn\0-M\0aap\0-D\0/r\0",
            b"/usr/bin/conmon\0-c\0x\0-n\0aap\0--exit-command\0/usr/bin/podman\0",
            b"containerd-shim-runc-v2\0-namespace\0k8s.io\0-id\0x\0",
            b"runc\0run\0-d\0aap\0",
        ];
        let files: Vec<_> = files
            .into_iter()
            .map(|(path, seed)| {
                let as_written = Just(Bytes(seed.clone().into_bytes()));
                (Just(path), prop_oneof![1 => as_written, 3 => mutated(seed)])
            })
            .collect();
        (files, mutated_any(&cgroups), mutated_any(&parents))
    }

    /// Processes seen above real zones: their command line (`ID` for
    /// [`HOSTILE_ID`]) and the command name the kernel had for them at the fork.
    const FOREBEARS: [(&str, &[u8]); 13] = [
        ("runc\0run\0-d\0aap\0", b"runc"),
        ("runc\0init\0", b"runc:[1:CHILD]"),
        (
            "runc\0--root\0/run/runc\0create\0--bundle\0/b\0ID\0",
            b"runc",
        ),
        ("crun\0run\0-d\0aap\0", b"crun"),
        (
            "/usr/bin/conmon\0-c\0ID\0-n\0aap\0--exit-command\0/usr/bin/podman\0",
            b"conmon",
        ),
        (
            "/usr/bin/conmon\0-c\0ID\0-n\0k8s_c_p_ns_0123_0\0",
            b"conmon",
        ),
        (
            "/usr/bin/containerd-shim-runc-v2\0-namespace\0moby\0-id\0ID\0",
            b"containerd-shim",
        ),
        (
            "/usr/bin/containerd-shim-runc-v2\0-namespace\0k8s.io\0-id\0ID\0",
            b"containerd-shim",
        ),
        ("[lxc monitor] /var/lib/lxc aap\0", b"lxc-start"),
        ("systemd-nspawn\0-M\0aap\0-D\0/r\0", b"systemd-nspawn"),
        ("bash\0", b"bash"),
        ("unshare\0--pid\0--fork\0sleep\0", b"unshare"),
        ("/usr/bin/runtimes-d86659abc\0--test\0", b"runtimes-d86659"),
    ];

    /// Writes zone init 300 in cgroup `cg` below the processes `chain`
    /// (command line, command name): the creator (PID 50), the init's parent
    /// (PID 50 too, or 51 when the creator forked with `clone_parent`) and
    /// two generations above (60, 70), each with its `stat`. Returns the facts
    /// of the lookup without and with the kernel's lineage.
    fn zone_below<'a>(
        t: &TempTree,
        chain: &[(&str, &[u8]); 4],
        clone_parent: bool,
        cg: &'a str,
    ) -> (ZoneFacts<'a>, ZoneFacts<'a>) {
        // (PID, parent PID, which of `chain`), the init's parent second.
        let procs: &[(u32, u32, usize)] = if clone_parent {
            &[(50, 51, 0), (51, 60, 1), (60, 70, 2), (70, 1, 3)]
        } else {
            &[(50, 60, 0), (60, 70, 2), (70, 1, 3)]
        };
        for &(pid, ppid, i) in procs {
            t.proc(pid, ppid, 10, &[pid], &["x"], "0::/\n");
            let cmdline = chain[i].0.replace("ID", HOSTILE_ID);
            // A containerd shim runs in its task's bundle.
            let args: Vec<&str> = cmdline.split('\0').collect();
            if let Some(w) = args
                .windows(4)
                .find(|w| w[0] == "-namespace" && w[2] == "-id")
            {
                t.cwd(pid, &format!("/{}/{}/{}", containerd::TASK_DIR, w[1], w[3]));
            }
            t.write(&format!("proc/{pid}/cmdline"), cmdline);
        }
        let (parent, i) = if clone_parent { (51, 1) } else { (50, 0) };
        t.proc(300, parent, 5000, &[300, 1], &["sh"], &format!("0::{cg}\n"));
        let lineage = Lineage::new([
            Forebear::new(50, chain[0].1),
            Forebear::new(parent, chain[i].1),
            Forebear::new(60, chain[2].1),
            Forebear::new(70, chain[3].1),
        ]);
        let without = facts(300, 50, Some(cg));
        (
            without,
            ZoneFacts {
                lineage: Some(lineage),
                ..without
            },
        )
    }

    #[test]
    fn a_zone_with_no_runtime_above_reads_no_process() {
        let t = TempTree::new("lineage-plain");
        let bash = FOREBEARS[10];
        let chain = [FOREBEARS[11], FOREBEARS[11], bash, FOREBEARS[12]];
        let (without, with) = zone_below(&t, &chain, false, "/user.slice");
        let mut names = RuntimeNames::new(t.root());
        assert_eq!(names.lookup(&without), Lookup::Never);
        let walked = names.files.borrow().opens();
        assert!(walked >= 3, "the walk read the processes above: {walked}");
        let mut names = RuntimeNames::new(t.root());
        assert_eq!(names.lookup(&with), Lookup::Never);
        assert_eq!(
            names.files.borrow().opens(),
            1,
            "only the init's stat: no process above is read"
        );
    }

    #[test]
    fn only_the_runtime_processes_above_are_read() {
        let t = TempTree::new("lineage-runc");
        t.write(
            &format!("{}/{HOSTILE_ID}/state.json", runc::STATE_DIR),
            r#"{"init_process_pid":300,"init_process_start":5000}"#,
        );
        // runc's init stages, `runc create` (with CLONE_PARENT), a shell, the harness.
        let chain = [FOREBEARS[1], FOREBEARS[2], FOREBEARS[10], FOREBEARS[12]];
        let cg = format!("/{HOSTILE_ID}");
        let (without, with) = zone_below(&t, &chain, true, &cg);
        let named = RuntimeNames::new(t.root()).lookup(&without);
        assert!(
            matches!(&named, Lookup::Named(n) if n.name == HOSTILE_ID),
            "{named:?}"
        );
        let mut names = RuntimeNames::new(t.root());
        assert_eq!(names.lookup(&with), named);
        assert_eq!(
            names.files.borrow().opens(),
            1,
            "the init's stat only: its cgroup names the container, whose state records the init"
        );
        // A process passing itself off as `bash` is not read: its `runc run` names nothing.
        let disguised = [FOREBEARS[0], FOREBEARS[0], FOREBEARS[10], FOREBEARS[12]];
        let t = TempTree::new("lineage-disguised");
        let (without, mut with) = zone_below(&t, &disguised, false, "/user.slice");
        assert!(RuntimeNames::new(t.root())
            .lookup(&without)
            .named()
            .is_some());
        let mut l = with.lineage.unwrap();
        l.forebears[0] = Forebear::new(50, b"bash");
        l.forebears[1] = l.forebears[0];
        with.lineage = Some(l);
        assert_eq!(RuntimeNames::new(t.root()).lookup(&with), Lookup::Never);
    }

    /// A chain of processes from [`FOREBEARS`] above a zone of one of the runtimes' cgroups.
    fn chains() -> impl Strategy<Value = ([(&'static str, &'static [u8]); 4], bool, usize)> {
        let one = prop::sample::select(FOREBEARS.to_vec());
        (
            [one.clone(), one.clone(), one.clone(), one],
            any::<bool>(),
            0..runtime_cgroups().len() + 1,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// With the command names the processes really have, the kernel's
        /// lineage changes no answer: only what is read to find it.
        #[test]
        fn a_true_lineage_gives_the_same_answer((chain, clone_parent, cg) in chains()) {
            let t = TempTree::new("lineage-same");
            for (path, content) in runtime_files() {
                t.write(&path, content);
            }
            let cgroups = runtime_cgroups();
            let cg = cgroups.get(cg).map_or("/user.slice", |c| c.trim_start_matches("0::").trim_end());
            let (without, with) = zone_below(&t, &chain, clone_parent, cg);
            let full = RuntimeNames::new(t.root()).lookup(&without);
            prop_assert_eq!(RuntimeNames::new(t.root()).lookup(&with), full);
        }

        /// Any command names at all (the processes set them): no panic, and a
        /// name, when there is one, bounded as ever.
        #[test]
        fn hostile_command_names(
            (chain, clone_parent, cg) in chains(),
            comms in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 4),
            pick in prop::collection::vec(0..FOREBEARS.len() + 1, 4),
        ) {
            let t = TempTree::new("lineage-hostile");
            for (path, content) in runtime_files() {
                t.write(&path, content);
            }
            let cgroups = runtime_cgroups();
            let cg = cgroups.get(cg).map_or("/user.slice", |c| c.trim_start_matches("0::").trim_end());
            let (_, mut with) = zone_below(&t, &chain, clone_parent, cg);
            let mut l = with.lineage.unwrap();
            for ((f, comm), pick) in l.forebears.iter_mut().zip(&comms).zip(pick) {
                // Another process's command name, or random bytes.
                let comm = FOREBEARS.get(pick).map_or(&comm[..], |p| p.1);
                *f = Forebear::new(f.pid, comm);
            }
            with.lineage = Some(l);
            if let Lookup::Named(r) = RuntimeNames::new(t.root()).lookup(&with) {
                prop_assert!(!r.name.trim().is_empty());
                prop_assert!(r.name.len() <= 3 * (MAX_NAME_LEN + 3) + 2, "{:?}", r);
            }
        }
    }

    /// Runs [`hostile_round`]s through a fresh chain per case. The cases share
    /// one tree (every round rewrites every file in it): a tree per case would
    /// double the file system calls, and with them the test's time.
    #[test]
    fn the_chain_survives_hostile_hosts() {
        let t = TempTree::new("hostile");
        let config = ProptestConfig {
            cases: 64,
            source_file: Some(file!()),
            ..ProptestConfig::default()
        };
        let rounds = prop::collection::vec(hostile_round(), 1..=8);
        let result = TestRunner::new(config).run(&rounds, |rounds| {
            let mut chain = RuntimeNames::new(t.root());
            for (files, cg, parent) in rounds {
                for (path, content) in files {
                    t.write(&path, content.0);
                }
                t.proc(
                    300,
                    250,
                    5000,
                    &[300, 1],
                    &["sh"],
                    &String::from_utf8_lossy(&cg),
                );
                t.proc(250, 1, 4000, &[250], &["x"], "0::/\n");
                t.write("proc/250/cmdline", parent.0);
                let cg_fact = String::from_utf8_lossy(&cg)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("0::")
                    .to_string();
                if let Lookup::Named(r) = chain.lookup(&facts(300, 250, Some(&cg_fact))) {
                    prop_assert!(!r.name.trim().is_empty());
                    prop_assert!(r.name.len() <= 3 * (MAX_NAME_LEN + 3) + 2, "{:?}", r);
                    prop_assert!(r.container_id.is_none_or(|c| c.len() <= MAX_NAME_LEN + 3));
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}
