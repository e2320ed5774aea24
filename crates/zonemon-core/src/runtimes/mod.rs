//! Runtime names: which runtime made a zone, and the name and id it gave it.
//!
//! One module per runtime, each a [`NameResolver`] (and a [`RuntimeResolver`],
//! the form [`RuntimeNames`] chains). Each works only from what exists on
//! the host at the moment of the event: the init's cgroup paths, the
//! command lines of the processes that made it (shim, conmon,
//! `[lxc monitor]`, nspawn, runc/crun), and the runtime's own state files.
//! No sockets, no waiting, bounded reads ([`fsread`]), and every path read
//! is below `root` (`/` in production, a fixture tree in tests).
//!
//! The order of [`default_chain`] goes from the most specific evidence to
//! the least: Docker, Podman and CRI-O (whose containers also leave plain
//! runc state behind), containerd (and Kubernetes through it), LXC,
//! systemd-nspawn, then bare crun and runc.
//!
//! Only zones at the first level below the host's PID namespace are named
//! from host state: a zone nested inside a container shares its
//! container's cgroup and ancestors, but the host's runtimes did not make it.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::escape::{bound, MAX_NAME_LEN};
use crate::naming::{K8sNames, NameResolver, NameSource, ResolvedName, ZoneFacts};

pub mod boltdb;
pub mod cgroup;
pub mod containerd;
pub mod crio;
pub mod crun;
pub mod docker;
pub mod fsread;
pub mod jsonpick;
pub mod libpod;
pub mod lxc;
pub mod nspawn;
pub mod oci;
pub mod podman;
pub mod procfs;
pub mod runc;

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

/// How many generations of the init's ancestors are looked at (parent,
/// grandparent, great-grandparent): enough to see a shim or conmon above
/// the `runc create` that forks the init.
pub const MAX_ANCESTOR_DEPTH: usize = 3;

/// Every runtime resolver, most specific first, sharing one look at `/proc` per event.
///
/// `root` is `/` in production; every file read is below it. The chain is
/// one [`RuntimeNames`] in a `Vec`, so a caller may append resolvers of its own.
pub fn default_chain(root: &Path) -> Vec<Box<dyn NameResolver>> {
    vec![Box::new(RuntimeNames::new(root))]
}

/// A runtime resolver that works from a shared [`Probe`] of the zone.
pub trait RuntimeResolver: Send {
    /// Names the zone `probe` describes, or `None` to let the next runtime try.
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName>;

    /// After [`RuntimeResolver::resolve_probe`] found nothing: whether the
    /// zone shows any sign of this runtime (its processes above the init,
    /// its cgroup naming scheme, a container it is creating), so that a later
    /// look, once its state is written, might name it. `true` when unsure.
    fn could_claim_later(&self, _probe: &Probe<'_>) -> bool {
        true
    }
}

/// The runtime resolvers in order, as one [`NameResolver`]; the first name found wins.
pub struct RuntimeNames {
    root: Arc<Path>,
    resolvers: Vec<Box<dyn RuntimeResolver>>,
    /// The zone (init PID, PID namespace) of the last lookup, when it found
    /// no name and no runtime shows any sign of having made it.
    unclaimed: Option<(u32, u32)>,
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
            resolvers,
            unclaimed: None,
        }
    }
}

impl NameResolver for RuntimeNames {
    fn resolve(&mut self, facts: &ZoneFacts<'_>) -> Option<ResolvedName> {
        self.unclaimed = None;
        let probe = Probe::new(&self.root, *facts);
        let found = if probe.nested() {
            None // the host's runtimes did not make it: never named here
        } else {
            self.resolvers
                .iter_mut()
                .find_map(|r| r.resolve_probe(&probe))
        };
        if found.is_none()
            && (probe.nested() || !self.resolvers.iter().any(|r| r.could_claim_later(&probe)))
        {
            self.unclaimed = Some((facts.init_pid, facts.pidns));
        }
        found
    }

    fn may_name_later(&mut self, facts: &ZoneFacts<'_>) -> bool {
        self.unclaimed != Some((facts.init_pid, facts.pidns))
    }
}

/// Implements [`NameResolver`] for a runtime resolver with a `root: Arc<Path>` field.
macro_rules! standalone_resolver {
    ($t:ty) => {
        impl $crate::naming::NameResolver for $t {
            fn resolve(
                &mut self,
                facts: &$crate::naming::ZoneFacts<'_>,
            ) -> Option<$crate::naming::ResolvedName> {
                let root = std::sync::Arc::clone(&self.root);
                let probe = $crate::runtimes::Probe::new(&root, *facts);
                if probe.nested() {
                    return None;
                }
                $crate::runtimes::RuntimeResolver::resolve_probe(self, &probe)
            }
        }
    };
}
pub(crate) use standalone_resolver;

/// A process above the zone's init: its host PID and command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ancestor {
    /// Host PID.
    pub pid: u32,
    /// Its arguments (lossy UTF-8, bounded).
    pub args: Vec<String>,
}

/// What the resolvers look at for one event, each part read at most once and only when asked.
///
/// `/proc/<init>` is used only while it still is the zone's init: while
/// `/proc/<init>/ns/pid` is the zone's PID namespace. After the init is
/// gone its PID may belong to anyone, but never to a process of that
/// namespace (when a namespace's init dies, no process can enter it).
pub struct Probe<'a> {
    root: &'a Path,
    facts: ZoneFacts<'a>,
    /// (init still there, parent PID, start ticks).
    init: OnceCell<InitInfo>,
    cgroups: OnceCell<Vec<String>>,
    ancestors: OnceCell<Vec<Ancestor>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct InitInfo {
    alive: bool,
    ppid: Option<u32>,
    start_ticks: Option<u64>,
}

impl<'a> Probe<'a> {
    /// A probe of the zone `facts` describes, reading below `root`.
    pub fn new(root: &'a Path, facts: ZoneFacts<'a>) -> Self {
        Probe {
            root,
            facts,
            init: OnceCell::new(),
            cgroups: OnceCell::new(),
            ancestors: OnceCell::new(),
        }
    }

    /// The facts the tracker gave.
    pub fn facts(&self) -> &ZoneFacts<'a> {
        &self.facts
    }

    /// `rel` (e.g. `run/runc`) below the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The root every path is read below.
    pub fn root(&self) -> &Path {
        self.root
    }

    /// Reads at most `max` bytes of `/proc/<pid>/<file>`.
    pub fn read_proc(&self, pid: u32, file: &str, max: usize) -> Option<Vec<u8>> {
        if pid == 0 {
            return None;
        }
        let mut f = fsread::open_proc(&self.path(&format!("proc/{pid}/{file}")))?;
        fsread::read_prefix(&mut f, max)
    }

    fn init(&self) -> InitInfo {
        *self.init.get_or_init(|| {
            let pid = self.facts.init_pid;
            if pid == 0 || self.facts.pidns == 0 {
                return InitInfo::default();
            }
            let link = std::fs::read_link(self.path("proc").join(format!("{pid}/ns/pid")));
            let same_ns =
                link.is_ok_and(|l| l.to_string_lossy() == format!("pid:[{}]", self.facts.pidns));
            if !same_ns {
                return InitInfo::default();
            }
            let stat = self.read_proc(pid, "stat", procfs::MAX_STAT);
            let stat = stat
                .as_deref()
                .and_then(|s| procfs::parse_stat(&String::from_utf8_lossy(s)));
            InitInfo {
                alive: stat.is_some(),
                ppid: stat.map(|s| s.0),
                start_ticks: stat.map(|s| s.1),
            }
        })
    }

    /// Whether `/proc/<init_pid>` still is the zone's init.
    pub fn init_alive(&self) -> bool {
        self.init().alive
    }

    /// Whether the zone is nested in another zone (its PID namespace is
    /// more than one level below the host's).
    pub fn nested(&self) -> bool {
        self.facts.level > 1
    }

    /// The init's start time in clock ticks since boot (as runc and crun record it), when known.
    pub fn init_start_ticks(&self) -> Option<u64> {
        self.init().start_ticks
    }

    /// The init's cgroup paths: the tracker's first, then each hierarchy's,
    /// as read for this event or else from `/proc/<init>/cgroup`.
    pub fn cgroups(&self) -> &[String] {
        self.cgroups.get_or_init(|| {
            let mut out: Vec<String> = Vec::new();
            let mut add = |p: &str| {
                if p.len() <= procfs::MAX_CGROUP_PATH && !out.iter().any(|o| o == p) {
                    out.push(p.to_string());
                }
            };
            if let Some(c) = self.facts.cgroup {
                add(c);
            }
            if let Some(more) = self.facts.more_cgroups {
                more.iter().for_each(|p| add(p));
            } else if self.init_alive() {
                let content = self.read_proc(self.facts.init_pid, "cgroup", 64 * 1024);
                if let Some(c) = content {
                    for p in procfs::parse_cgroup_paths(&String::from_utf8_lossy(&c)) {
                        add(&p);
                    }
                }
            }
            out
        })
    }

    /// The processes above the init: its creator, then its parent and up
    /// to [`MAX_ANCESTOR_DEPTH`] generations (host PID 1 excluded), each once.
    /// Empty when the init is gone.
    pub fn ancestors(&self) -> &[Ancestor] {
        self.ancestors.get_or_init(|| {
            let mut out: Vec<Ancestor> = Vec::new();
            let info = self.init();
            if !info.alive {
                return out;
            }
            let push = |pid: u32, out: &mut Vec<Ancestor>| {
                if pid > 1 && pid != self.facts.init_pid && !out.iter().any(|a| a.pid == pid) {
                    if let Some(b) = self.read_proc(pid, "cmdline", procfs::MAX_CMDLINE) {
                        out.push(Ancestor {
                            pid,
                            args: procfs::parse_cmdline(&b),
                        });
                    }
                }
            };
            push(self.facts.creator_pid, &mut out);
            let mut pid = info.ppid.unwrap_or(0);
            for depth in 0..MAX_ANCESTOR_DEPTH {
                if pid <= 1 {
                    break;
                }
                push(pid, &mut out);
                if depth + 1 == MAX_ANCESTOR_DEPTH {
                    break;
                }
                pid = self
                    .read_proc(pid, "stat", procfs::MAX_STAT)
                    .and_then(|s| procfs::parse_stat(&String::from_utf8_lossy(&s)))
                    .map_or(0, |s| s.0);
            }
            out
        })
    }

    /// Whether some ancestor is one of `progs` (argv\[0\]'s basename; an
    /// entry ending in `*` matches a prefix) or some cgroup path contains one
    /// of `cgroup_words`: the cheap signs of a runtime, for
    /// [`RuntimeResolver::could_claim_later`].
    pub fn shows_signs_of(&self, progs: &[&str], cgroup_words: &[&str]) -> bool {
        let prog_matches = |p: &str| {
            progs.iter().any(|want| match want.strip_suffix('*') {
                Some(prefix) => p.starts_with(prefix),
                None => p == *want,
            })
        };
        self.ancestors()
            .iter()
            .any(|a| prog_matches(procfs::program(&a.args)))
            || self
                .cgroups()
                .iter()
                .any(|c| cgroup_words.iter().any(|w| c.contains(w)))
    }

    /// The nearest ancestor whose program (argv\[0\]'s basename) is `prog`.
    pub fn ancestor_named(&self, prog: &str) -> Option<&Ancestor> {
        self.ancestors()
            .iter()
            .find(|a| procfs::program(&a.args) == prog)
    }
}

/// Whether `s` can be a container id and a path component: 1 to 255
/// bytes of `[A-Za-z0-9_.+-]`, not starting with `.` (so never `.` or `..`).
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
}

/// Whether `s` is 64 lowercase hex digits (Docker, Podman and CRI-O ids).
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A [`ResolvedName`] from raw runtime values: `None` when the name is
/// empty or blank; name, id and Kubernetes names are bounded to
/// [`MAX_NAME_LEN`].
pub fn resolved(
    name: &str,
    label: &'static str,
    runtime: &'static str,
    container_id: Option<&str>,
) -> Option<ResolvedName> {
    if name.trim().is_empty() {
        return None;
    }
    Some(ResolvedName {
        name: bound(name, MAX_NAME_LEN),
        source: NameSource::Runtime(label),
        runtime: Some(runtime.to_string()),
        container_id: container_id
            .filter(|c| !c.is_empty())
            .map(|c| bound(c, MAX_NAME_LEN)),
        k8s: None,
        meta: None,
    })
}

/// A [`ResolvedName`] for a Kubernetes container: named `namespace/pod/container`.
/// `None` when any of the three is blank.
pub fn resolved_k8s(
    namespace: &str,
    pod: &str,
    container: &str,
    label: &'static str,
    runtime: &'static str,
    container_id: Option<&str>,
) -> Option<ResolvedName> {
    if [namespace, pod, container]
        .iter()
        .any(|s| s.trim().is_empty())
    {
        return None;
    }
    let k8s = K8sNames {
        namespace: bound(namespace, MAX_NAME_LEN),
        pod: bound(pod, MAX_NAME_LEN),
        container: bound(container, MAX_NAME_LEN),
    };
    let mut r = resolved(&k8s.zone_name(), label, runtime, container_id)?;
    r.k8s = Some(k8s);
    Some(r)
}

/// The string at `key` of a JSON object, if it is one.
pub(crate) fn json_str<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v str> {
    v.get(key)?.as_str()
}

/// The part of an OCI runtime spec (`config.json`) read: its annotations (the
/// rest, the whole process, mounts and Linux config, is skipped).
pub(crate) const SPEC_KEYS: jsonpick::Keep =
    jsonpick::Keep::Keys(&[("annotations", jsonpick::Keep::All)]);

/// The OCI annotations of a runtime spec (`config.json`), if any.
pub(crate) fn annotations(
    spec: &serde_json::Value,
) -> Option<&serde_json::Map<String, serde_json::Value>> {
    spec.get("annotations")?.as_object()
}

#[cfg(test)]
mod tests {
    use super::testutil::{facts, mutated, mutated_any, Bytes, TempTree};
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestRunner;

    #[test]
    fn ids() {
        assert!(valid_id("zmrt-runc1"));
        assert!(valid_id("a.b_c+d"));
        assert!(!valid_id(""));
        assert!(!valid_id("."));
        assert!(!valid_id(".."));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"a".repeat(256)));
        assert!(is_hex64(&"ab12".repeat(16)));
        assert!(!is_hex64(&"AB12".repeat(16)));
        assert!(!is_hex64("abc"));
    }

    #[test]
    fn resolved_names_are_bounded() {
        let r = resolved(&"x".repeat(10_000), "l", "runc", Some(&"i".repeat(9_999))).unwrap();
        assert!(r.name.len() <= MAX_NAME_LEN + 3);
        assert!(r.container_id.unwrap().len() <= MAX_NAME_LEN + 3);
        assert!(resolved("  ", "l", "runc", None).is_none());
        let k = resolved_k8s("ns", "pod", "c", "l", "kubernetes", Some("id")).unwrap();
        assert_eq!(k.name, "ns/pod/c");
        assert_eq!(k.k8s.unwrap().pod, "pod");
        assert!(resolved_k8s("ns", "", "c", "l", "kubernetes", None).is_none());
    }

    #[test]
    fn probe_reads_proc_once_and_checks_the_init() {
        let t = TempTree::new("probe");
        t.proc(
            100,
            50,
            777,
            &[100, 1],
            &["sleep", "1000"],
            "0::/aap\n4:memory:/m/aap\n",
        );
        t.proc(50, 40, 1, &[50], &["runc", "run", "-d", "aap"], "0::/\n");
        t.proc(40, 1, 1, &[40], &["bash"], "0::/\n");
        t.proc(60, 50, 1, &[60], &["runc", "init"], "0::/\n");
        let f = facts(100, 60, Some("/aap"));
        let p = Probe::new(t.root(), f);
        assert!(p.init_alive());
        assert!(!p.nested());
        assert_eq!(p.init_start_ticks(), Some(777));
        assert_eq!(p.cgroups(), ["/aap", "/m/aap"]);
        let pids: Vec<u32> = p.ancestors().iter().map(|a| a.pid).collect();
        assert_eq!(pids, [60, 50, 40]);
        assert_eq!(p.ancestor_named("runc").unwrap().pid, 60);

        // The event read the cgroup file already: the probe does not read it again.
        let given = ["/given".to_string()];
        let p = Probe::new(
            t.root(),
            ZoneFacts {
                more_cgroups: Some(&given),
                ..f
            },
        );
        assert_eq!(p.cgroups(), ["/aap", "/given"]);

        // Another namespace now owns PID 100: /proc/100 is not the zone's init any more.
        let mut other = f;
        other.pidns = 4026532999;
        let p = Probe::new(t.root(), other);
        assert!(!p.init_alive());
        assert_eq!(p.cgroups(), ["/aap"], "only what the tracker saw");
        assert!(p.ancestors().is_empty());

        // A nested zone is named by nobody here.
        t.proc(200, 100, 9, &[200, 5, 1], &["sh"], "0::/aap\n");
        let nested = ZoneFacts {
            level: 2,
            ..facts(200, 100, Some("/aap"))
        };
        let mut chain = RuntimeNames::new(t.root());
        assert!(chain.resolve(&nested).is_none());
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
        assert!(chain.resolve(&f).is_none());
        assert!(!chain.may_name_later(&f));
        assert!(
            chain.may_name_later(&facts(101, 50, None)),
            "only that zone"
        );

        // runc is creating a container whose state is not written yet: ask again later.
        t.proc(200, 60, 778, &[200, 1], &["runc", "init"], "0::/aap\n");
        t.proc(60, 40, 1, &[60], &["runc", "init"], "0::/aap\n");
        t.mkdir(&format!("{}/aap", runc::STATE_DIR));
        let f = facts(200, 60, Some("/aap"));
        assert!(chain.resolve(&f).is_none());
        assert!(chain.may_name_later(&f));

        // A Docker-looking cgroup is a sign too, whatever is above the init.
        let id = "ab".repeat(32);
        let cg = format!("/docker/{id}");
        t.proc(300, 1, 779, &[300, 1], &["sleep"], &format!("0::{cg}\n"));
        let f = facts(300, 0, Some(&cg));
        assert!(chain.resolve(&f).is_none());
        assert!(chain.may_name_later(&f));
    }

    #[test]
    fn default_chain_names_nothing_on_an_empty_host() {
        let t = TempTree::new("empty-host");
        let mut chain = default_chain(t.root());
        assert!(chain.resolve(&facts(100, 60, Some("/x"))).is_none());
        assert!(chain.resolve(&facts(0, 0, None)).is_none());
    }

    /// A container id that every runtime's files in [`hostile_round`] name.
    const HOSTILE_ID: &str = "4f7a2c8e9b1d3f5a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a";

    /// One round of a hostile host: every runtime's file for one container
    /// (path, content; as written or mutated), then a mutation of the zone's
    /// `/proc/<pid>/cgroup` and one of its parent's command line.
    fn hostile_round() -> impl Strategy<Value = (Vec<(String, Bytes)>, Bytes, Bytes)> {
        let id = HOSTILE_ID;
        let files: Vec<(String, String)> = vec![
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
        ];
        let cgroups = [
            format!("0::/docker/{id}\n"),
            format!("0::/libpod_parent/libpod-{id}\n"),
            format!("0::/kubepods/crio-{id}\n"),
            format!("0::/kubepods/burstable/podx/{id}\n"),
            "0::/lxc.payload.aap\n".to_string(),
            "0::/machine.slice/machine-aap.scope\n".to_string(),
            format!("0::/{id}\n"),
        ];
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
                if let Some(r) = chain.resolve(&facts(300, 250, Some(&cg_fact))) {
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
