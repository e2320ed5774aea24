//! containerd (`ctr run … aap`: `aap`), and Kubernetes through containerd's
//! CRI plugin (`namespace/pod/container`).
//!
//! Evidence: the shim above the init (`containerd-shim-runc-v2`, found by
//! its command name in the kernel's lineage) and its working directory, the
//! bundle of the task it was started for,
//! `<state>/io.containerd.runtime.v2.task/<ns>/<id>` (for Kubernetes one shim
//! serves a whole pod and its task is the pod sandbox's); and the init's
//! cgroup (`/<ns>/<id>` for `ctr`, `cri-containerd-<id>.scope` or
//! `/kubepods/…/pod<uid>/<id>` for Kubernetes). Each task's bundle holds the
//! OCI spec (`config.json`, written before the task is created) and, once
//! created, the init's PID (`init.pid`), which must be this zone's init.
//! The shim's command line (`-namespace <ns> -id <id>`) says the same as its
//! working directory, but is not read: reading a command line goes through
//! the process's memory, under its memory map's lock, which a shim still
//! starting its task may hold.
//! The CRI plugin writes the Kubernetes names into the spec's annotations:
//! `io.kubernetes.cri.sandbox-namespace`, `io.kubernetes.cri.sandbox-name`,
//! `io.kubernetes.cri.container-name` (absent for a sandbox, named `POD`).
//!
//! containerd's state root is not always `/run/containerd` (k3s and RKE2 use
//! `/run/k3s/containerd`, a dockerd-started containerd `/run/docker/containerd`,
//! any containerd `--state`): the shim's working directory says where the
//! task bundles are, wherever that is. It is read only when needed: when the
//! kernel lists a shim above the init and the init's cgroup names a task
//! whose bundle is in a task directory already known (containerd's default,
//! or one a shim's working directory showed before), that bundle names the
//! zone (its `init.pid`, once written, must be the init all the same).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fsread::{self, FileCache, Miss, MAX_STATE_FILE};
use super::jsonpick::{annotations, SPEC_KEYS};
use super::probe::Probe;
use super::resolver::{resolved, resolved_k8s, valid_id, RuntimeResolver};
use super::stateindex::StateIndex;
use super::{cgroup, jsonpick};
use crate::escape::{bound, MAX_NAME_LEN};
use crate::meta::ZoneMeta;
use crate::naming::ResolvedName;

/// Where containerd's v2 shims keep their task bundles, below the root.
pub const TASK_DIR: &str = "run/containerd/io.containerd.runtime.v2.task";

/// The containerd namespace of the Kubernetes CRI plugin.
pub const K8S_NAMESPACE: &str = "k8s.io";

/// Most bundles of one namespace searched for the init's PID.
const MAX_SCAN: usize = 1024;

/// What zonemon keeps of a task bundle's `config.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    /// (namespace, pod, container) from the CRI annotations, when they are complete.
    pub k8s: Option<(String, String, String)>,
    /// The spec's annotations as labels; the CRI's image, pod uid and sandbox mark.
    pub meta: ZoneMeta,
}

/// Parses a bundle's OCI spec: `None` unless it is a JSON object.
pub fn parse_bundle(bytes: &[u8]) -> Option<BundleInfo> {
    let spec = jsonpick::parse(bytes, SPEC_KEYS)?;
    spec.as_object()?;
    let ann = annotations(&spec);
    let get = |k: &str| ann.and_then(|a| a.get(k)).and_then(|v| v.as_str());
    let mut meta = ZoneMeta::default()
        .with_image(get("io.kubernetes.cri.image-name"))
        .with_labels(ann);
    meta.pod_uid = get("io.kubernetes.cri.sandbox-uid").map(|u| bound(u, MAX_NAME_LEN));
    meta.sandbox = get("io.kubernetes.cri.container-type") == Some("sandbox");
    let k8s = ann.and_then(|ann| {
        let get = |k: &str| ann.get(k).and_then(|v| v.as_str());
        let kind = get("io.kubernetes.cri.container-type")?;
        let container = match (kind, get("io.kubernetes.cri.container-name")) {
            (_, Some(c)) => c,
            ("sandbox", None) => "POD",
            _ => return None,
        };
        Some((
            get("io.kubernetes.cri.sandbox-namespace")?.to_string(),
            get("io.kubernetes.cri.sandbox-name")?.to_string(),
            container.to_string(),
        ))
    });
    Some(BundleInfo { k8s, meta })
}

/// The PID in an `init.pid` file.
pub fn parse_pid_file(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Most task directories remembered from shims' working directories.
const MAX_KNOWN_DIRS: usize = 4;

/// Most containerd namespaces whose specs are parsed ahead ([`StateIndex`]), one thread each.
const MAX_INDEXES: usize = 4;

/// Names containerd's tasks from their bundles.
///
/// Once a task of a namespace was named, containerd is in use there: the
/// specs of that namespace's tasks are then parsed ahead as containerd
/// writes them ([`StateIndex`], one per namespace, at most four),
/// and a task is named from memory at its fork (its `init.pid` is still read).
pub struct Containerd {
    root: Arc<Path>,
    cache: FileCache<BundleInfo>,
    /// The task directories known (containerd's default first, then those
    /// shims' working directories showed), looked in before a shim's
    /// working directory is read.
    known: Vec<PathBuf>,
    /// The namespace directories (`<task dir>/<ns>`) indexed, or tried, and their indexes.
    indexes: Vec<(PathBuf, Option<StateIndex<BundleInfo>>)>,
}

impl Containerd {
    /// A containerd resolver reading below `root`.
    pub fn new(root: &Path) -> Self {
        Containerd {
            root: Arc::from(root),
            cache: FileCache::new(1024),
            known: vec![root.join(TASK_DIR)],
            indexes: Vec::new(),
        }
    }

    /// Task `id`'s spec in namespace directory `ns_dir`, if its index holds it current.
    fn indexed(&self, ns_dir: &Path, id: &str) -> Option<BundleInfo> {
        let (_, index) = self.indexes.iter().find(|(d, _)| d == ns_dir)?;
        index.as_ref()?.get(id)
    }

    /// Starts parsing the specs in `ns_dir` ahead, a task of it having been named, unless
    /// that was done (or tried) already or [`MAX_INDEXES`] namespaces are.
    fn index(&mut self, ns_dir: PathBuf) {
        if self.indexes.len() < MAX_INDEXES && !self.indexes.iter().any(|(d, _)| *d == ns_dir) {
            let index = StateIndex::start(&ns_dir, "config.json", parse_bundle);
            self.indexes.push((ns_dir, index));
        }
    }

    /// Remembers the task directory `dir`, shown by a shim's working directory.
    fn learn(&mut self, dir: &Path) {
        if !self.known.iter().any(|k| k == dir) {
            if self.known.len() > MAX_KNOWN_DIRS {
                self.known.remove(1); // the default stays
            }
            self.known.push(dir.to_path_buf());
        }
    }

    /// The bundle of task `ns/id` in the task directory `dir`, if it exists and, when its
    /// init's PID is known, that is `pid` (or `strict`: the PID must be known and match);
    /// a missing spec leads to `miss`.
    fn bundle(
        &mut self,
        probe: &Probe<'_>,
        dir: &Path,
        (ns, id): (&str, &str),
        strict: bool,
        miss: Miss,
    ) -> Option<BundleInfo> {
        let task = PathBuf::from(ns).join(id);
        let ns_dir = dir.join(ns);
        let info = match self.indexed(&ns_dir, id) {
            Some(info) => info,
            None => {
                let info = self.cache.get_or(
                    dir,
                    &task.join("config.json"),
                    MAX_STATE_FILE,
                    miss,
                    parse_bundle,
                )?;
                self.index(ns_dir);
                info
            }
        };
        // Found in the same kept directory as the spec: not written yet (runc is still making
        // the init) needs no check of the directory's path.
        let init = self
            .cache
            .read_beneath(dir, &task.join("init.pid"), 64, Miss::Taken)
            .and_then(|b| parse_pid_file(&b));
        match init {
            Some(p) if p != probe.facts().init_pid => None,
            None if strict => None,
            _ => Some(info),
        }
    }

    fn named(id: &str, b: &BundleInfo) -> Option<ResolvedName> {
        match &b.k8s {
            Some((ns, pod, c)) => {
                resolved_k8s(ns, pod, c, "cri-annotations", "kubernetes", Some(id))
            }
            None => resolved(id, "containerd-bundle", "containerd", Some(id)),
        }
        .map(|r| r.with_meta(b.meta.clone()))
    }
}

/// The name containerd gives its v2 shims' task directory, below its state root.
const TASK_DIR_NAME: &str = "io.containerd.runtime.v2.task";

/// The task a containerd shim above the init was started for, as its working
/// directory shows it: a v2 shim runs in that task's bundle,
/// `<state>/io.containerd.runtime.v2.task/<ns>/<id>`, wherever the state root
/// is. For Kubernetes one shim serves a whole pod, and its task is the pod's
/// sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimTask {
    /// The task directory (`…/io.containerd.runtime.v2.task`), below the probe's root.
    pub dir: PathBuf,
    /// The task's containerd namespace (`default`, `k8s.io`, `moby`, …).
    pub ns: String,
    /// The task's id.
    pub id: String,
}

impl ShimTask {
    /// The task whose bundle is `cwd` (a host path), below `root`; `None` unless
    /// it is a bundle's path with a valid namespace and id.
    pub fn of_bundle(root: &Path, cwd: &Path) -> Option<ShimTask> {
        let id = cwd.file_name()?.to_str()?;
        let ns_dir = cwd.parent()?;
        let ns = ns_dir.file_name()?.to_str()?;
        let dir = ns_dir.parent()?;
        if dir.file_name()? != TASK_DIR_NAME || !valid_id(ns) || !valid_id(id) {
            return None;
        }
        Some(ShimTask {
            dir: root.join(dir.strip_prefix("/").ok()?),
            ns: ns.to_string(),
            id: id.to_string(),
        })
    }
}

/// The tasks of the containerd shims above the init, nearest first, from
/// their working directories: no shim's command line is read.
pub fn shim_tasks(probe: &Probe<'_>) -> Vec<ShimTask> {
    probe
        .working_dirs_like(SHIM)
        .into_iter()
        .filter_map(|cwd| ShimTask::of_bundle(probe.root(), cwd))
        .collect()
}

impl Containerd {
    /// Looks for the zone's task in the task directory `dir`: by the
    /// cgroup's candidates (`nss` × `ids`), then by the shim's own task, then
    /// among the shim namespace's tasks for the one whose init.pid is ours.
    fn resolve_in(
        &mut self,
        probe: &Probe<'_>,
        dir: &Path,
        nss: &[String],
        ids: &[String],
        shim: Option<&ShimTask>,
    ) -> Option<ResolvedName> {
        // From the cgroup: the bundle must exist, and its init.pid match when written.
        for ns in nss {
            for id in ids {
                if let Some(b) = self.bundle(probe, dir, (ns, id), false, Miss::Checked) {
                    return Self::named(id, &b);
                }
            }
        }
        let shim = shim?;
        // The shim's own task (ctr: one shim per container), before runc has written init.pid…
        if let Some(b) = self.bundle(probe, dir, (&shim.ns, &shim.id), false, Miss::Checked) {
            return Self::named(&shim.id, &b);
        }
        // …or another task of the shim's (a pod's container): the one whose init.pid is ours.
        for id in fsread::list_beneath(dir, Path::new(&shim.ns))
            .iter()
            .take(MAX_SCAN)
        {
            if valid_id(id) && *id != shim.id {
                if let Some(b) = self.bundle(probe, dir, (&shim.ns, id), true, Miss::Checked) {
                    return Self::named(id, &b);
                }
            }
        }
        None
    }
}

fn push(v: &mut Vec<String>, s: &str) {
    if valid_id(s) && !v.iter().any(|x| x == s) && v.len() < 8 {
        v.push(s.to_string());
    }
}

/// containerd's shims (`containerd-shim-runc-v2`, …): the parent of every task's init.
pub const SHIM: &[&str] = &["containerd-shim*"];

/// containerd's processes that may be above its tasks' inits (the shim first).
const PROCESSES: &[&str] = &["containerd-shim*", "containerd"];

/// The containerd namespaces and task ids the init's cgroups suggest, each once.
fn cgroup_candidates(probe: &Probe<'_>) -> (Vec<String>, Vec<String>) {
    let (mut nss, mut ids) = (Vec::new(), Vec::new());
    for path in probe.cgroups() {
        if let Some(id) = cgroup::prefixed_id(path, "cri-containerd-") {
            push(&mut ids, id);
            push(&mut nss, K8S_NAMESPACE);
        } else if let Some(id) = cgroup::last(path) {
            push(&mut ids, id);
            // `/kubepods/…/pod<uid>/<id>`: the parent is the pod, not a namespace.
            if let Some(ns) = cgroup::parent(path).filter(|_| !path.contains("/kubepods")) {
                push(&mut nss, ns);
            }
            push(&mut nss, K8S_NAMESPACE);
        }
    }
    (nss, ids)
}

impl RuntimeResolver for Containerd {
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        // Made once, and only for a zone with a shim above or a Kubernetes cgroup.
        let candidates = std::cell::OnceCell::new();
        let candidates = || candidates.get_or_init(|| cgroup_candidates(probe));
        if probe.lists_one_of(SHIM) == Some(true) {
            // The kernel lists a shim above: the task the cgroup names, in a known directory.
            // A miss there is taken as it is: the shim's own directory is looked in below.
            let (cgroup_nss, ids) = candidates();
            let known = std::mem::take(&mut self.known);
            let found = known.iter().find_map(|dir| {
                cgroup_nss
                    .iter()
                    .flat_map(|ns| ids.iter().map(move |id| (ns, id)))
                    .find_map(|(ns, id)| {
                        let b = self.bundle(probe, dir, (ns, id), false, Miss::Taken)?;
                        Some((id, b))
                    })
            });
            self.known = known;
            if let Some((id, b)) = found {
                return Self::named(id, &b);
            }
        }
        let shim = shim_tasks(probe).into_iter().next();
        if let Some(s) = &shim {
            self.learn(&s.dir);
        }
        let kubernetes_cgroup = probe.cgroups().iter().any(|p| {
            p.contains("/kubepods") || cgroup::prefixed_id(p, "cri-containerd-").is_some()
        });
        if shim.is_none() && !kubernetes_cgroup {
            // Every containerd task's init runs under its shim (its parent, a subreaper): with
            // no shim above and no Kubernetes cgroup to go by, no directory is worth a look.
            return None;
        }
        // The shim's namespace first, then the cgroup's.
        let (cgroup_nss, ids) = candidates();
        let mut nss = Vec::new();
        if let Some(s) = &shim {
            push(&mut nss, &s.ns);
        }
        for ns in cgroup_nss {
            push(&mut nss, ns);
        }
        // Where the shim's bundles are, then containerd's default state root.
        let mut dirs = Vec::with_capacity(2);
        dirs.extend(shim.as_ref().map(|s| s.dir.clone()));
        let default = probe.path(TASK_DIR);
        if !dirs.contains(&default) {
            dirs.push(default);
        }
        for dir in &dirs {
            if let Some(named) = self.resolve_in(probe, dir, &nss, ids, shim.as_ref()) {
                return Some(named);
            }
        }
        None
    }

    fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        probe.shows_signs_of(PROCESSES, &["kubepods", "cri-containerd"])
    }

    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        Some(PROCESSES)
    }
}

super::resolver::standalone_resolver!(Containerd);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::{Forebear, Lineage};
    use crate::naming::{NameResolver, NameSource, ZoneFacts};
    use crate::runtimes::testutil::{facts, mutated_any, within_5s, TempTree, CASES};
    use proptest::prelude::*;

    const SANDBOX: &str = "2f8ce2bd696584bcc7d7c107135a38354d6766bc7ea7dd137bb4acfc92592268";
    const CTR: &str = "7be7ca56452ce0f69575654683e3b8cdc61d8898d06caf92fbf5ffffcd856bd7";
    const POD_UID: &str = "01b4b887-7635-4346-9c20-58a294bbb034";

    /// A plain `ctr run` spec (trimmed): no annotations.
    fn ctr_spec(id: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2-dev","process":{{"user":{{"uid":0,"gid":0}},"args":["sh","-c","sleep 1000"],"env":["PATH=/bin"],"cwd":"/"}},"root":{{"path":"rootfs"}},"mounts":[{{"destination":"/proc","type":"proc","source":"proc"}}],"linux":{{"cgroupsPath":"/default/{id}","namespaces":[{{"type":"pid"}},{{"type":"ipc"}},{{"type":"uts"}},{{"type":"mount"}},{{"type":"network"}}]}}}}"#
        )
    }

    /// A CRI container spec as containerd 1.6's CRI plugin writes it (trimmed).
    fn cri_container_spec() -> String {
        format!(
            r#"{{"ociVersion":"1.0.2-dev","process":{{"args":["/coredns","-conf","/etc/coredns/Corefile"],"cwd":"/"}},"root":{{"path":"rootfs"}},"hostname":"","annotations":{{"io.kubernetes.cri.container-name":"coredns","io.kubernetes.cri.container-type":"container","io.kubernetes.cri.image-name":"k8s.gcr.io/coredns/coredns:v1.8.6","io.kubernetes.cri.sandbox-id":"{SANDBOX}","io.kubernetes.cri.sandbox-name":"coredns-6d4b75cb6d-w4b72","io.kubernetes.cri.sandbox-namespace":"kube-system","io.kubernetes.cri.sandbox-uid":"{POD_UID}"}},"linux":{{"cgroupsPath":"/kubepods/burstable/pod{POD_UID}/{CTR}","namespaces":[{{"type":"pid"}},{{"type":"ipc","path":"/proc/4100/ns/ipc"}},{{"type":"uts","path":"/proc/4100/ns/uts"}},{{"type":"mount"}},{{"type":"network","path":"/proc/4100/ns/net"}}]}}}}"#
        )
    }

    /// The pod's sandbox (pause) spec: no container name.
    fn cri_sandbox_spec() -> String {
        format!(
            r#"{{"ociVersion":"1.0.2-dev","process":{{"args":["/pause"]}},"annotations":{{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-id":"{SANDBOX}","io.kubernetes.cri.sandbox-log-directory":"/var/log/pods/kube-system_coredns-6d4b75cb6d-w4b72_{POD_UID}","io.kubernetes.cri.sandbox-name":"coredns-6d4b75cb6d-w4b72","io.kubernetes.cri.sandbox-namespace":"kube-system","io.kubernetes.cri.sandbox-uid":"{POD_UID}"}},"linux":{{"cgroupsPath":"/kubepods/burstable/pod{POD_UID}/{SANDBOX}"}}}}"#
        )
    }

    fn shim(id: &str, ns: &str) -> Vec<String> {
        [
            "/usr/bin/containerd-shim-runc-v2",
            "-namespace",
            ns,
            "-id",
            id,
            "-address",
            "/run/containerd/containerd.sock",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn task(t: &TempTree, ns: &str, id: &str, spec: &str, pid: Option<u32>) {
        t.write(&format!("{TASK_DIR}/{ns}/{id}/config.json"), spec);
        t.write(
            &format!("{TASK_DIR}/{ns}/{id}/address"),
            "unix:///run/containerd/s/6c1d",
        );
        t.write(
            &format!("{TASK_DIR}/{ns}/{id}/runtime"),
            "io.containerd.runc.v2",
        );
        if let Some(p) = pid {
            t.write(&format!("{TASK_DIR}/{ns}/{id}/init.pid"), p.to_string());
        }
    }

    fn host_ctr(t: &TempTree, id: &str, cg: &str) {
        t.proc(300, 250, 5000, &[300, 1], &["sh"], cg);
        t.proc(
            250,
            200,
            4999,
            &[250],
            &[
                "runc",
                "--root",
                "/run/containerd/runc/default",
                "create",
                id,
            ],
            "0::/\n",
        );
        let s = shim(id, "default");
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        t.proc(200, 1, 4990, &[200], &s, "0::/\n");
        t.cwd(200, &format!("/{TASK_DIR}/default/{id}"));
    }

    #[test]
    fn names_a_ctr_task_before_and_after_init_pid() {
        let t = TempTree::new("containerd-ctr");
        host_ctr(&t, "zmrt-aap", "0::/default/zmrt-aap\n");
        task(&t, "default", "zmrt-aap", &ctr_spec("zmrt-aap"), None);
        let mut c = Containerd::new(t.root());
        let r = c
            .lookup(&facts(300, 260, Some("/default/zmrt-aap")))
            .named()
            .expect("at fork");
        assert_eq!(r.name, "zmrt-aap");
        assert_eq!(r.source, NameSource::Runtime("containerd-bundle"));
        assert_eq!(r.runtime.as_deref(), Some("containerd"));
        assert_eq!(r.container_id.as_deref(), Some("zmrt-aap"));
        task(&t, "default", "zmrt-aap", &ctr_spec("zmrt-aap"), Some(300));
        assert_eq!(
            c.lookup(&facts(300, 0, None)).named().unwrap().name,
            "zmrt-aap",
            "by shim"
        );
        // init.pid says another process: not this zone.
        task(&t, "default", "zmrt-aap", &ctr_spec("zmrt-aap"), Some(301));
        assert!(c.lookup(&facts(300, 0, None)).named().is_none());
    }

    #[test]
    fn once_a_task_is_named_the_next_ones_specs_are_parsed_ahead() {
        let t = TempTree::new("containerd-index");
        host_ctr(&t, "zmrt-aap", "0::/default/zmrt-aap\n");
        task(&t, "default", "zmrt-aap", &ctr_spec("zmrt-aap"), None);
        let mut c = Containerd::new(t.root());
        let name_of = |c: &mut Containerd, id: &str| {
            let cg = format!("/default/{id}");
            c.lookup(&facts(300, 260, Some(&cg)))
                .named()
                .map(|r| r.name)
        };
        assert_eq!(name_of(&mut c, "zmrt-aap").as_deref(), Some("zmrt-aap"));
        assert_eq!(c.cache.len(), 1, "the first task's spec, read");
        // A task made afterwards in that namespace is parsed as containerd writes its spec.
        task(&t, "default", "zmrt-noot", &ctr_spec("zmrt-noot"), None);
        let ns_dir = t.root().join(TASK_DIR).join("default");
        assert!(
            within_5s(|| c.indexed(&ns_dir, "zmrt-noot").is_some()),
            "not indexed within 5 s"
        );
        assert_eq!(name_of(&mut c, "zmrt-noot").as_deref(), Some("zmrt-noot"));
        assert_eq!(c.cache.len(), 1, "the second task's spec was not read");
        // Its init.pid is still checked: a task whose init is another process is not this zone.
        task(
            &t,
            "default",
            "zmrt-noot",
            &ctr_spec("zmrt-noot"),
            Some(301),
        );
        assert_ne!(name_of(&mut c, "zmrt-noot").as_deref(), Some("zmrt-noot"));
        // One index per namespace, started once.
        assert_eq!(c.indexes.len(), 1);
    }

    #[test]
    fn names_a_kubernetes_container_under_the_pods_shim() {
        let t = TempTree::new("containerd-k8s");
        // The pod's shim was started for the sandbox; our init's cgroup is unknown.
        t.proc(300, 200, 5000, &[300, 1], &["/coredns"], "0::/\n");
        let s = shim(SANDBOX, K8S_NAMESPACE);
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        t.proc(200, 1, 4990, &[200], &s, "0::/\n");
        t.cwd(200, &format!("/{TASK_DIR}/{K8S_NAMESPACE}/{SANDBOX}"));
        task(&t, K8S_NAMESPACE, SANDBOX, &cri_sandbox_spec(), Some(4100));
        task(&t, K8S_NAMESPACE, CTR, &cri_container_spec(), Some(300));
        let r = Containerd::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .expect("named");
        assert_eq!(r.name, "kube-system/coredns-6d4b75cb6d-w4b72/coredns");
        assert_eq!(r.source, NameSource::Runtime("cri-annotations"));
        assert_eq!(r.runtime.as_deref(), Some("kubernetes"));
        assert_eq!(r.container_id.as_deref(), Some(CTR));
        assert_eq!(r.k8s.unwrap().namespace, "kube-system");
        let meta = r.meta.expect("the CRI's image, pod uid and annotations");
        assert_eq!(
            meta.image.as_deref(),
            Some("k8s.gcr.io/coredns/coredns:v1.8.6")
        );
        assert_eq!(meta.pod_uid.as_deref(), Some(POD_UID));
        assert!(!meta.sandbox);
        assert_eq!(meta.labels["io.kubernetes.cri.container-name"], "coredns");
        // The sandbox itself.
        let r = Containerd::new(t.root())
            .lookup(&facts(
                4100,
                0,
                Some(&format!("/kubepods/burstable/pod{POD_UID}/{SANDBOX}")),
            ))
            .named()
            .unwrap();
        assert_eq!(r.name, "kube-system/coredns-6d4b75cb6d-w4b72/POD");
        assert!(r.meta.unwrap().sandbox, "the pod's sandbox is marked");
    }

    #[test]
    fn names_tasks_under_any_state_root_from_the_shims_bundle() {
        let t = TempTree::new("containerd-k3s");
        let k3s = "run/k3s/containerd/io.containerd.runtime.v2.task";
        t.proc(300, 200, 5000, &[300, 1], &["/coredns"], "0::/\n");
        let s = shim(SANDBOX, K8S_NAMESPACE);
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        t.proc(200, 1, 4990, &[200], &s, "0::/\n");
        for (id, spec, pid) in [
            (SANDBOX, cri_sandbox_spec(), 4100),
            (CTR, cri_container_spec(), 300),
        ] {
            t.write(&format!("{k3s}/{K8S_NAMESPACE}/{id}/config.json"), spec);
            t.write(
                &format!("{k3s}/{K8S_NAMESPACE}/{id}/init.pid"),
                pid.to_string(),
            );
        }
        // Not under /run/containerd: unknown until the shim's working directory tells.
        let mut c = Containerd::new(t.root());
        assert!(c.lookup(&facts(300, 0, None)).named().is_none());
        std::os::unix::fs::symlink(
            format!("/{k3s}/{K8S_NAMESPACE}/{SANDBOX}"),
            t.path("proc/200/cwd"),
        )
        .unwrap();
        let r = Containerd::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .expect("named from the shim's bundle");
        assert_eq!(r.name, "kube-system/coredns-6d4b75cb6d-w4b72/coredns");
        assert_eq!(r.container_id.as_deref(), Some(CTR));
        // A working directory that is not a task bundle as containerd makes them is not believed.
        let t2 = TempTree::new("containerd-k3s-liar");
        let elsewhere = "run/k3s/containerd/not-the-task-dir";
        t2.proc(300, 200, 5000, &[300, 1], &["/coredns"], "0::/\n");
        t2.proc(200, 1, 4990, &[200], &s, "0::/\n");
        t2.write(
            &format!("{elsewhere}/{K8S_NAMESPACE}/{CTR}/config.json"),
            cri_container_spec(),
        );
        t2.write(
            &format!("{elsewhere}/{K8S_NAMESPACE}/{CTR}/init.pid"),
            "300",
        );
        t2.cwd(200, &format!("/{elsewhere}/{K8S_NAMESPACE}/{SANDBOX}"));
        assert!(Containerd::new(t2.root())
            .lookup(&facts(300, 0, None))
            .named()
            .is_none());
    }

    #[test]
    fn a_shims_task_is_its_working_directory() {
        let root = Path::new("/host");
        let task = |cwd: &str| ShimTask::of_bundle(root, Path::new(cwd));
        assert_eq!(
            task(&format!("/{TASK_DIR}/default/aap")),
            Some(ShimTask {
                dir: root.join(TASK_DIR),
                ns: "default".into(),
                id: "aap".into(),
            })
        );
        let k3s = task("/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc").unwrap();
        assert_eq!(
            k3s.dir,
            root.join("run/k3s/containerd/io.containerd.runtime.v2.task")
        );
        for not_a_bundle in [
            "/",
            "/root",
            "/run/containerd/io.containerd.runtime.v2.task",
            "/run/containerd/io.containerd.runtime.v2.task/default",
            "/run/containerd/other/default/aap",
            "/run/containerd/io.containerd.runtime.v2.task/../aap",
            "/run/containerd/io.containerd.runtime.v2.task/default/aap (deleted)",
            "io.containerd.runtime.v2.task/default/aap",
        ] {
            assert_eq!(task(not_a_bundle), None, "{not_a_bundle}");
        }
    }

    /// With the kernel's lineage, the shim is found by its command name and
    /// its working directory: its command line is not read.
    #[test]
    fn the_shims_command_line_is_not_read() {
        let t = TempTree::new("containerd-no-cmdline");
        host_ctr(&t, "zmrt-aap", "0::/\n");
        task(&t, "default", "zmrt-aap", &ctr_spec("zmrt-aap"), Some(300));
        // A command line that would say another task, were it read.
        t.write(
            "proc/200/cmdline",
            "containerd-shim-runc-v2\0-namespace\0x\0-id\0y\0",
        );
        let lineage = Lineage::new([
            Forebear::new(250, b"runc"),
            Forebear::new(250, b"runc"),
            Forebear::new(200, b"containerd-shim"),
            Forebear::default(),
        ]);
        let f = ZoneFacts {
            lineage: Some(lineage),
            ..facts(300, 250, None)
        };
        let r = Containerd::new(t.root()).lookup(&f).named().expect("named");
        assert_eq!(r.container_id.as_deref(), Some("zmrt-aap"));
    }

    /// The kernel's lineage with the shim, pid 200, above runc, pid 250; `cgroup` the init's only one.
    fn under_shim(init: u32, cgroup: &str) -> ZoneFacts<'_> {
        ZoneFacts {
            lineage: Some(Lineage::new([
                Forebear::new(250, b"runc"),
                Forebear::new(250, b"runc"),
                Forebear::new(200, b"containerd-shim"),
                Forebear::default(),
            ])),
            more_cgroups: Some(&[]),
            ..facts(init, 250, Some(cgroup))
        }
    }

    /// With the shim listed by the kernel and the task named by the cgroup in
    /// a known task directory, the shim's working directory is not read: here
    /// it cannot be (no link), and the task is named all the same. A task
    /// directory elsewhere is learnt from a shim's working directory once.
    #[test]
    fn a_task_the_cgroup_names_in_a_known_directory_needs_no_working_directory() {
        let t = TempTree::new("containerd-known-dir");
        host_ctr(&t, "zmrt-aap", "0::/default/zmrt-aap\n");
        task(&t, "default", "zmrt-aap", &ctr_spec("zmrt-aap"), None);
        std::fs::remove_file(t.path("proc/200/cwd")).unwrap();
        let mut c = Containerd::new(t.root());
        let r = c
            .lookup(&under_shim(300, "/default/zmrt-aap"))
            .named()
            .expect("named from the default directory");
        assert_eq!(r.container_id.as_deref(), Some("zmrt-aap"));
        // Under another state root (k3s): unknown until a shim's working directory shows it.
        let k3s = "run/k3s/containerd/io.containerd.runtime.v2.task";
        t.write(&format!("{k3s}/k8s.io/noot/config.json"), ctr_spec("noot"));
        t.write(&format!("{k3s}/k8s.io/mies/config.json"), ctr_spec("mies"));
        let noot = under_shim(300, "/k8s.io/noot");
        assert!(
            c.lookup(&noot).named().is_none(),
            "no shim directory: not found"
        );
        t.cwd(200, &format!("/{k3s}/k8s.io/noot"));
        assert_eq!(c.lookup(&noot).named().unwrap().name, "noot");
        std::fs::remove_file(t.path("proc/200/cwd")).unwrap();
        let mies = under_shim(300, "/k8s.io/mies");
        assert_eq!(c.lookup(&mies).named().unwrap().name, "mies", "learnt");
        // init.pid, once written, must still be this init.
        task(&t, "default", "zmrt-aap", &ctr_spec("zmrt-aap"), Some(301));
        assert!(c
            .lookup(&under_shim(300, "/default/zmrt-aap"))
            .named()
            .is_none());
    }

    #[test]
    fn names_by_systemd_cri_scope() {
        let t = TempTree::new("containerd-scope");
        task(&t, K8S_NAMESPACE, CTR, &cri_container_spec(), None);
        let cg = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod01b4b887_7635_4346_9c20_58a294bbb034.slice/cri-containerd-{CTR}.scope");
        let r = Containerd::new(t.root())
            .lookup(&facts(300, 0, Some(&cg)))
            .named()
            .unwrap();
        assert_eq!(r.name, "kube-system/coredns-6d4b75cb6d-w4b72/coredns");
    }

    #[test]
    fn refuses_what_is_not_a_task() {
        let t = TempTree::new("containerd-refuse");
        let mut c = Containerd::new(t.root());
        assert!(c
            .lookup(&facts(300, 0, Some("/default/aap")))
            .named()
            .is_none());
        t.write(&format!("{TASK_DIR}/default/aap/config.json"), "{broken");
        assert!(c
            .lookup(&facts(300, 0, Some("/default/aap")))
            .named()
            .is_none());
        assert!(c
            .lookup(&facts(300, 0, Some("/../../etc")))
            .named()
            .is_none());
        // Symlinked namespace directory.
        t.write("elsewhere/aap/config.json", ctr_spec("aap"));
        std::os::unix::fs::symlink(t.path("elsewhere"), t.path(&format!("{TASK_DIR}/evil")))
            .unwrap();
        assert!(c
            .lookup(&facts(300, 0, Some("/evil/aap")))
            .named()
            .is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn parsers_survive_mutations(
            input in mutated_any(&[cri_container_spec(), cri_sandbox_spec(), ctr_spec("x")])
        ) {
            if let Some(BundleInfo {
                k8s: Some((a, b, c)),
                ..
            }) = parse_bundle(&input)
            {
                prop_assert!(a.len() + b.len() + c.len() <= input.len() + 3);
            }
            let _ = parse_pid_file(&input[..input.len().min(20)]);
        }
    }

    #[test]
    fn parsers_reject_malformed_files() {
        assert_eq!(parse_pid_file(b"300\n"), Some(300));
        assert_eq!(parse_pid_file(b"-1"), None);
        assert!(parse_bundle(b"[]").is_none());
    }
}
