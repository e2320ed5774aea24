//! Docker: `docker run --name aap` → `aap`.
//!
//! Evidence that Docker made the zone: the init's cgroup (`/docker/<id>`
//! with the cgroupfs driver, `docker-<id>.scope` with systemd), or its
//! containerd shim's task in the `moby` namespace (the shim's working
//! directory, `…/io.containerd.runtime.v2.task/moby/<id>`: see `containerd`).
//! The name is `Name` (`"/aap"`) in
//! `/var/lib/docker/containers/<id>/config.v2.json`, written at
//! `docker create`, long before the container's first boot. A dockerd with
//! another `--data-root` keeps it below that root instead: the directory is
//! learnt from the container's bundle, whose spec bind-mounts
//! `<data root>/containers/<id>/hostname` on `/etc/hostname`. Containers that
//! the kubelet made through Docker (dockershim, cri-dockerd) carry the
//! `io.kubernetes.*` labels and are named `namespace/pod/container`.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::fsread::{FileCache, MAX_STATE_FILE};
use super::jsonpick::json_str;
use super::jsonpick::{self, Keep};
use super::probe::Probe;
use super::resolver::{is_hex64, resolved, resolved_k8s, RuntimeResolver};
use super::stateindex::StateIndex;
use super::{cgroup, containerd};
use crate::meta::ZoneMeta;
use crate::naming::ResolvedName;

/// Where Docker keeps its containers, below the root.
pub const CONTAINERS_DIR: &str = "var/lib/docker/containers";

/// A container's config in its directory below [`CONTAINERS_DIR`].
const CONFIG_FILE: &str = "config.v2.json";

/// The containerd namespace Docker runs its containers in.
const MOBY_NAMESPACE: &str = "moby";

/// Most `containers` directories known: Docker's default and those learnt from bundles.
const MAX_DIRS: usize = 4;

/// What zonemon keeps of a `config.v2.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// `ID`.
    pub id: String,
    /// `Name`, without its leading `/`.
    pub name: String,
    /// `State.Pid` when `State.Running` and not restarting, else 0.
    pub running_pid: u32,
    /// The Kubernetes names from `Config.Labels`, when all three are there.
    pub k8s: Option<(String, String, String)>,
    /// Its image (`Config.Image`), labels, pod uid and sandbox mark.
    pub meta: ZoneMeta,
}

/// The parts of a `config.v2.json` read: most of it (the container's whole config) is skipped.
const CONFIG_KEYS: Keep = Keep::Keys(&[
    ("ID", Keep::All),
    ("Name", Keep::All),
    (
        "State",
        Keep::Keys(&[
            ("Running", Keep::All),
            ("Restarting", Keep::All),
            ("Pid", Keep::All),
        ]),
    ),
    (
        "Config",
        Keep::Keys(&[("Labels", Keep::All), ("Image", Keep::All)]),
    ),
]);

/// Parses a Docker `config.v2.json`; `None` unless it has a string `ID` and `Name`.
pub fn parse_config(bytes: &[u8]) -> Option<DockerConfig> {
    let v = jsonpick::parse(bytes, CONFIG_KEYS)?;
    let id = json_str(&v, "ID")?.to_string();
    let name = json_str(&v, "Name")?;
    let name = name.strip_prefix('/').unwrap_or(name).to_string();
    let state = v.get("State");
    let flag = |k: &str| state.and_then(|s| s.get(k)).and_then(|b| b.as_bool()) == Some(true);
    let pid = state
        .and_then(|s| s.get("Pid"))
        .and_then(|p| p.as_u64())
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(0);
    let running_pid = if flag("Running") && !flag("Restarting") {
        pid
    } else {
        0
    };
    let labels = v.get("Config").and_then(|c| c.get("Labels"));
    let label = |k: &str| labels.and_then(|l| json_str(l, k)).map(str::to_string);
    let k8s = match (
        label("io.kubernetes.pod.namespace"),
        label("io.kubernetes.pod.name"),
        label("io.kubernetes.container.name"),
    ) {
        (Some(ns), Some(pod), Some(c)) => Some((ns, pod, c)),
        _ => None,
    };
    let config = v.get("Config");
    let mut meta = ZoneMeta::default()
        .with_image(config.and_then(|c| json_str(c, "Image")))
        .with_labels(labels.and_then(|l| l.as_object()));
    meta.pod_uid = label("io.kubernetes.pod.uid");
    // dockershim's pod sandboxes.
    meta.sandbox = label("io.kubernetes.docker.type").as_deref() == Some("podsandbox");
    Some(DockerConfig {
        id,
        name,
        running_pid,
        k8s,
        meta,
    })
}

/// What zonemon reads of a bundle's spec: its mounts' destinations and sources.
const SPEC_MOUNTS: Keep = Keep::Keys(&[(
    "mounts",
    Keep::Keys(&[("destination", Keep::All), ("source", Keep::All)]),
)]);

/// The source of the `/etc/hostname` mount in a bundle's OCI spec (`config.json`).
pub fn parse_hostname_source(bytes: &[u8]) -> Option<String> {
    let spec = jsonpick::parse(bytes, SPEC_MOUNTS)?;
    spec.get("mounts")?
        .as_array()?
        .iter()
        .find(|m| json_str(m, "destination") == Some("/etc/hostname"))
        .and_then(|m| json_str(m, "source"))
        .map(str::to_string)
}

/// The `containers` directory of container `id`'s data root, from the source
/// of its `/etc/hostname` mount (`<data root>/containers/<id>/hostname`):
/// `None` for any other shape (a relative path, a `..`, another file).
pub fn containers_dir_of(hostname_source: &str, id: &str) -> Option<PathBuf> {
    let path = Path::new(hostname_source);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !path.is_absolute() || !plain || path.file_name()? != "hostname" {
        return None;
    }
    let container = path.parent()?;
    let containers = container.parent()?;
    (container.file_name()? == id && containers.file_name()? == "containers")
        .then(|| containers.to_path_buf())
}

/// The Docker container ids in the init's cgroup paths (`/docker/<id>`, `docker-<id>.scope`).
pub fn cgroup_ids(probe: &Probe<'_>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for path in probe.cgroups() {
        let id = cgroup::prefixed_id(path, "docker-").or_else(|| {
            (cgroup::parent(path) == Some("docker"))
                .then(|| cgroup::last(path))
                .flatten()
        });
        if let Some(id) = id.filter(|i| is_hex64(i)) {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

/// Whether the init's cgroups leave room for a Docker container its cgroup
/// does not name: none is known but the root, or one's last component is a
/// container id (`--cgroup-parent` puts `<id>` below another parent). A
/// Docker container's own cgroup always ends in its id, so an init whose
/// every cgroup ends in something else (a `ctr` task's `/<ns>/<name>`) is
/// none of Docker's, and its shim's working directory is not read for Docker.
fn cgroups_allow_docker(probe: &Probe<'_>) -> bool {
    let mut known = probe
        .cgroups()
        .iter()
        .filter(|p| p.as_str() != "/")
        .peekable();
    known.peek().is_none()
        || known.any(|p| {
            cgroup::prefixed_id(p, "docker-")
                .or_else(|| cgroup::last(p))
                .is_some_and(is_hex64)
        })
}

/// The container ids of the moby containerd shims above the init (their
/// tasks in containerd's `moby` namespace).
pub fn shim_ids(probe: &Probe<'_>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for task in containerd::shim_tasks(probe) {
        if task.ns == MOBY_NAMESPACE && is_hex64(&task.id) && !ids.contains(&task.id) {
            ids.push(task.id);
        }
    }
    ids
}

/// Docker's processes that may be above its containers' inits (moby's shim first).
const PROCESSES: &[&str] = &["containerd-shim*", "dockerd", "docker-init"];

/// One data root's `containers` directory, and its configs parsed ahead once
/// a container there was named.
struct ContainersDir {
    path: PathBuf,
    /// The configs parsed ahead (`None` before, or if it failed).
    index: Option<StateIndex<DockerConfig>>,
    /// Whether the index was started (or tried).
    indexing: bool,
}

impl ContainersDir {
    fn new(path: PathBuf) -> Self {
        ContainersDir {
            path,
            index: None,
            indexing: false,
        }
    }
}

/// Names Docker's containers from `config.v2.json`.
///
/// Once a container was found, Docker is in use on this host: the
/// containers' files are then parsed ahead as Docker writes them
/// ([`StateIndex`], one per data root), and a container is named from memory
/// at its boot.
pub struct Docker {
    root: Arc<Path>,
    cache: FileCache<DockerConfig>,
    /// Where configs are looked for: Docker's default first, then the
    /// directories learnt from bundles (dockerds with another `--data-root`).
    dirs: Vec<ContainersDir>,
    /// The bundles' `/etc/hostname` mount sources read.
    sources: FileCache<String>,
}

impl Docker {
    /// A Docker resolver reading below `root`.
    pub fn new(root: &Path) -> Self {
        Docker {
            root: Arc::from(root),
            cache: FileCache::new(1024),
            dirs: vec![ContainersDir::new(root.join(CONTAINERS_DIR))],
            sources: FileCache::new(64),
        }
    }

    /// Container `id`'s config: from an index that holds it current, else read
    /// now from the directories known, else from the one its bundle shows.
    fn config(&mut self, probe: &Probe<'_>, id: &str) -> Option<DockerConfig> {
        let indexed = self
            .dirs
            .iter()
            .find_map(|d| d.index.as_ref().and_then(|i| i.get(id)));
        if indexed.is_some() {
            return indexed;
        }
        (0..self.dirs.len())
            .find_map(|k| self.read_config(k, id))
            .or_else(|| {
                let k = self.learn_dir(probe, id)?;
                self.read_config(k, id)
            })
    }

    /// Container `id`'s config read from the `k`th directory known, whose
    /// configs are then parsed ahead.
    fn read_config(&mut self, k: usize, id: &str) -> Option<DockerConfig> {
        let dir = &mut self.dirs[k];
        let cfg = self.cache.get(
            &dir.path,
            &PathBuf::from(id).join(CONFIG_FILE),
            MAX_STATE_FILE,
            parse_config,
        )?;
        if !dir.indexing {
            dir.indexing = true;
            dir.index = StateIndex::start(&dir.path, CONFIG_FILE, parse_config);
        }
        Some(cfg)
    }

    /// Learns the `containers` directory of container `id`'s data root from
    /// its bundle (its moby shim's working directory); its position among
    /// those known, `None` if the bundle does not show one or it was known.
    fn learn_dir(&mut self, probe: &Probe<'_>, id: &str) -> Option<usize> {
        let task = containerd::shim_tasks(probe)
            .into_iter()
            .find(|t| t.ns == MOBY_NAMESPACE && t.id == id)?;
        let spec = Path::new(MOBY_NAMESPACE).join(id).join("config.json");
        let source = self
            .sources
            .get(&task.dir, &spec, MAX_STATE_FILE, parse_hostname_source)?;
        let dir = containers_dir_of(&source, id)?;
        let path = self.root.join(dir.strip_prefix("/").ok()?);
        if self.dirs.iter().any(|d| d.path == path) {
            return None;
        }
        if self.dirs.len() >= MAX_DIRS {
            self.dirs.remove(1); // the default stays
        }
        self.dirs.push(ContainersDir::new(path));
        Some(self.dirs.len() - 1)
    }
}

impl Docker {
    /// The zone's name if container `id`'s `config.v2.json` is this zone's.
    fn named(&mut self, probe: &Probe<'_>, id: &str) -> Option<ResolvedName> {
        let cfg = self.config(probe, id)?;
        let pid = probe.facts().init_pid;
        if cfg.id != id || (cfg.running_pid != 0 && cfg.running_pid != pid) {
            return None; // another container's file, or another process of this one
        }
        match &cfg.k8s {
            Some((ns, pod, c)) => resolved_k8s(ns, pod, c, "docker-config", "kubernetes", Some(id)),
            None => None,
        }
        .or_else(|| resolved(&cfg.name, "docker-config", "docker", Some(id)))
        .map(|r| r.with_meta(cfg.meta.clone()))
    }
}

impl RuntimeResolver for Docker {
    /// The ids the evidence points at, best first: the cgroup's, then the
    /// moby shim's. When a cgroup's id names the zone, the processes above it
    /// are not read.
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        let from_cgroup = cgroup_ids(probe);
        if let Some(r) = from_cgroup.iter().find_map(|id| self.named(probe, id)) {
            return Some(r);
        }
        if !cgroups_allow_docker(probe) {
            return None;
        }
        shim_ids(probe)
            .iter()
            .filter(|id| !from_cgroup.contains(id))
            .find_map(|id| self.named(probe, id))
    }

    fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        probe.shows_signs_of(PROCESSES, &["docker"])
    }

    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        Some(PROCESSES)
    }
}

super::resolver::standalone_resolver!(Docker);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{NameResolver, NameSource, ZoneFacts};
    use crate::runtimes::testutil::{facts, mutated, within_5s, TempTree, CASES};
    use proptest::prelude::*;

    const ID: &str = "4f7a2c8e9b1d3f5a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a";

    /// A `config.v2.json` as Docker 20.10 writes it (trimmed of fields zonemon does not read).
    fn config(id: &str, name: &str, running: bool, pid: u32) -> String {
        format!(
            r#"{{"StreamConfig":{{}},"State":{{"Running":{running},"Paused":false,"Restarting":false,"OOMKilled":false,"RemovalInProgress":false,"Dead":false,"Pid":{pid},"ExitCode":0,"Error":"","StartedAt":"2026-11-26T05:40:00.1Z","FinishedAt":"0001-01-01T00:00:00Z","Health":null}},"ID":"{id}","Created":"2026-11-26T05:39:59.9Z","Managed":false,"Path":"sh","Args":["-c","sleep 1000"],"Config":{{"Hostname":"aap","Domainname":"","User":"","AttachStdin":false,"Tty":false,"Env":["PATH=/bin"],"Cmd":["sh","-c","sleep 1000"],"Image":"zmrt-busybox:local","Labels":{{}}}},"Image":"sha256:0e1d","NetworkSettings":{{"Bridge":"","Networks":{{}}}},"LogPath":"/var/lib/docker/containers/{id}/{id}-json.log","Name":"{name}","Driver":"overlay2","OS":"linux","RestartCount":0,"HasBeenStartedBefore":false,"HasBeenManuallyStopped":false,"MountPoints":{{}},"HostnamePath":"/var/lib/docker/containers/{id}/hostname"}}"#
        )
    }

    fn host(t: &TempTree, cgroup: &str) {
        // init 300 forked by runc (250) under the moby shim (200).
        t.proc(
            300,
            250,
            5000,
            &[300, 1],
            &["sh", "-c", "sleep 1000"],
            cgroup,
        );
        t.proc(
            250,
            200,
            4999,
            &[250],
            &[
                "runc",
                "--root",
                "/var/run/docker/runtime-runc/moby",
                "create",
                ID,
            ],
            "0::/\n",
        );
        t.proc(
            200,
            100,
            4990,
            &[200],
            &[
                "/usr/bin/containerd-shim-runc-v2",
                "-namespace",
                "moby",
                "-id",
                ID,
                "-address",
                "/run/containerd/containerd.sock",
            ],
            "0::/\n",
        );
        // A v2 shim runs in its task's bundle.
        t.cwd(200, &format!("/{}/moby/{ID}", containerd::TASK_DIR));
    }

    #[test]
    fn names_from_config_v2_by_cgroup() {
        let t = TempTree::new("docker-cgroup");
        host(
            &t,
            &format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n0::/\n"),
        );
        t.write(
            &format!("{CONTAINERS_DIR}/{ID}/config.v2.json"),
            config(ID, "/aap", false, 0),
        );
        let mut d = Docker::new(t.root());
        let cg = format!("/docker/{ID}");
        let r = d
            .lookup(&facts(300, 260, Some(&cg)))
            .named()
            .expect("named");
        assert_eq!(r.name, "aap");
        assert_eq!(r.source, NameSource::Runtime("docker-config"));
        assert_eq!(r.runtime.as_deref(), Some("docker"));
        assert_eq!(r.container_id.as_deref(), Some(ID));
        assert_eq!(r.k8s, None);
        let meta = r.meta.expect("the image");
        assert_eq!(meta.image.as_deref(), Some("zmrt-busybox:local"));
        assert!(meta.labels.is_empty() && meta.pod_uid.is_none() && !meta.sandbox);
    }

    /// Waits up to 5 s until `d`'s index holds container `id`'s config named `name`.
    fn indexed(d: &Docker, id: &str, name: &str) -> bool {
        let index = d.dirs[0]
            .index
            .as_ref()
            .expect("an index once a container was named");
        within_5s(|| index.get(id).is_some_and(|c| c.name == name))
    }

    #[test]
    fn once_a_container_is_named_the_next_ones_are_named_from_the_index() {
        let t = TempTree::new("docker-index");
        host(&t, &format!("0::/docker/{ID}\n"));
        let write = |id: &str, name: &str| {
            t.write(
                &format!("{CONTAINERS_DIR}/{id}/{CONFIG_FILE}"),
                config(id, name, false, 0),
            )
        };
        write(ID, "/aap");
        let mut d = Docker::new(t.root());
        let name_of = |d: &mut Docker, id: &str| {
            let cg = format!("/docker/{id}");
            d.lookup(&facts(300, 260, Some(&cg)))
                .named()
                .map(|r| r.name)
        };
        assert_eq!(name_of(&mut d, ID).as_deref(), Some("aap"));
        assert_eq!(d.cache.len(), 1, "the first container's config, read");
        // A container made afterwards is parsed as Docker writes it, and named from memory.
        let other = "0123456789abcdef".repeat(4);
        write(&other, "/noot");
        assert!(indexed(&d, &other, "noot"));
        assert_eq!(name_of(&mut d, &other).as_deref(), Some("noot"));
        assert_eq!(
            d.cache.len(),
            1,
            "the second container's config was not read"
        );
        // Renamed (`docker rename`): the index follows.
        write(&other, "/mies");
        assert!(indexed(&d, &other, "mies"));
        assert_eq!(name_of(&mut d, &other).as_deref(), Some("mies"));
        // The index's config is checked as a read one is: another container's file is refused.
        let third = "fedcba9876543210".repeat(4);
        t.write(
            &format!("{CONTAINERS_DIR}/{third}/{CONFIG_FILE}"),
            config(ID, "/evil", false, 0),
        );
        assert!(indexed(&d, &third, "evil"));
        assert_ne!(name_of(&mut d, &third).as_deref(), Some("evil"));
    }

    /// A bundle's spec as dockerd writes it (trimmed), its hostname file below `data_root`.
    fn bundle_spec(data_root: &str, id: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2-dev","process":{{"args":["sh"],"cwd":"/"}},"root":{{"path":"/var/lib/docker/overlay2/0e1d/merged"}},"hostname":"aap","mounts":[{{"destination":"/proc","type":"proc","source":"proc"}},{{"destination":"/etc/resolv.conf","type":"bind","source":"{data_root}/containers/{id}/resolv.conf","options":["rbind","rprivate"]}},{{"destination":"/etc/hostname","type":"bind","source":"{data_root}/containers/{id}/hostname","options":["rbind","rprivate"]}}],"linux":{{"cgroupsPath":"/docker/{id}"}}}}"#
        )
    }

    #[test]
    fn names_below_another_data_root_learnt_from_the_bundle() {
        let t = TempTree::new("docker-dataroot");
        host(&t, "0::/\n");
        let spec = |root: &str| {
            t.write(
                &format!("{}/moby/{ID}/config.json", containerd::TASK_DIR),
                bundle_spec(root, ID),
            )
        };
        let root_dir = "srv/docker";
        t.write(
            &format!("{root_dir}/containers/{ID}/{CONFIG_FILE}"),
            config(ID, "/aap", false, 0),
        );
        let mut d = Docker::new(t.root());
        let cg = |id: &str| format!("/docker/{id}");
        let name_of = |d: &mut Docker, id: &str| d.lookup(&facts(300, 260, Some(&cg(id)))).named();
        // A bundle that shows no data root (no hostname mount): not named.
        t.write(
            &format!("{}/moby/{ID}/config.json", containerd::TASK_DIR),
            r#"{"mounts":[]}"#,
        );
        assert!(name_of(&mut d, ID).is_none(), "no data root shown");
        spec(&format!("/{root_dir}"));
        let r = name_of(&mut d, ID).expect("named from the other data root");
        assert_eq!(
            (r.name.as_str(), r.source),
            ("aap", NameSource::Runtime("docker-config"))
        );
        assert_eq!(d.dirs.len(), 2, "the default and the one learnt");
        // Another container of that data root is found there, with no bundle to read.
        let other = "0123456789abcdef".repeat(4);
        t.write(
            &format!("{root_dir}/containers/{other}/{CONFIG_FILE}"),
            config(&other, "/noot", false, 0),
        );
        assert_eq!(
            name_of(&mut d, &other).map(|r| r.name).as_deref(),
            Some("noot")
        );
        assert_eq!(d.dirs.len(), 2);
    }

    #[test]
    fn a_data_root_is_only_taken_from_a_hostname_mount_of_the_container() {
        let dir = |src: &str| containers_dir_of(src, ID);
        assert_eq!(
            dir(&format!("/srv/docker/containers/{ID}/hostname")),
            Some(PathBuf::from("/srv/docker/containers"))
        );
        for bad in [
            format!("srv/docker/containers/{ID}/hostname"),
            format!("/srv/docker/containers/{ID}/../{ID}/hostname"),
            format!("/srv/docker/containers/{}/hostname", "f".repeat(64)),
            format!("/srv/docker/volumes/{ID}/hostname"),
            format!("/srv/docker/containers/{ID}/hosts"),
            "/".to_string(),
            String::new(),
        ] {
            assert_eq!(dir(&bad), None, "{bad}");
        }
        let spec = bundle_spec("/srv/docker", ID);
        assert_eq!(
            parse_hostname_source(spec.as_bytes()).as_deref(),
            Some(format!("/srv/docker/containers/{ID}/hostname").as_str())
        );
        assert_eq!(
            parse_hostname_source(br#"{"mounts":[{"destination":"/etc/hosts","source":"/x"}]}"#),
            None
        );
        assert_eq!(parse_hostname_source(br#"{"mounts":{}}"#), None);
        assert_eq!(parse_hostname_source(b"{"), None);
    }

    #[test]
    fn names_by_systemd_scope_and_by_shim() {
        let t = TempTree::new("docker-scope");
        host(&t, "0::/\n");
        t.write(
            &format!("{CONTAINERS_DIR}/{ID}/config.v2.json"),
            config(ID, "/noot", true, 300),
        );
        let mut d = Docker::new(t.root());
        let scope = format!("/system.slice/docker-{ID}.scope");
        assert_eq!(
            d.lookup(&facts(300, 0, Some(&scope))).named().unwrap().name,
            "noot"
        );
        // No cgroup known at all: the shim above runc says which container.
        assert_eq!(d.lookup(&facts(300, 0, None)).named().unwrap().name, "noot");
        // Below another parent (`--cgroup-parent`), the cgroup still ends in the id.
        let parent = format!("/batch/{ID}");
        let only = |cg| ZoneFacts {
            more_cgroups: Some(&[]),
            ..facts(300, 0, Some(cg))
        };
        assert_eq!(d.lookup(&only(&parent)).named().unwrap().name, "noot");
        // A cgroup that ends in anything else is no Docker container's: the shim's working
        // directory, which says `moby/<id>`, is not read.
        assert!(
            d.lookup(&only("/default/aap")).named().is_none(),
            "not a Docker container's cgroup"
        );
    }

    #[test]
    fn refuses_other_containers_and_missing_state() {
        let t = TempTree::new("docker-refuse");
        host(&t, "0::/\n");
        let cg = format!("/docker/{ID}");
        let mut d = Docker::new(t.root());
        assert!(
            d.lookup(&facts(300, 0, Some(&cg))).named().is_none(),
            "no config.v2.json"
        );
        // The container runs with another init: this zone is something else in its cgroup.
        t.write(
            &format!("{CONTAINERS_DIR}/{ID}/config.v2.json"),
            config(ID, "/aap", true, 999),
        );
        assert!(d.lookup(&facts(300, 0, Some(&cg))).named().is_none());
        // A file whose ID is another container's.
        let other = "f".repeat(64);
        t.write(
            &format!("{CONTAINERS_DIR}/{ID}/config.v2.json"),
            config(&other, "/aap", false, 0),
        );
        assert!(d.lookup(&facts(300, 0, Some(&cg))).named().is_none());
        // Not a Docker id.
        t.write(
            &format!("{CONTAINERS_DIR}/aap/config.v2.json"),
            config("aap", "/aap", false, 0),
        );
        assert!(d
            .lookup(&facts(300, 0, Some("/docker/aap")))
            .named()
            .is_none());
        // A nested zone in the container's cgroup.
        t.write(
            &format!("{CONTAINERS_DIR}/{ID}/config.v2.json"),
            config(ID, "/aap", false, 0),
        );
        t.proc(
            400,
            300,
            6000,
            &[400, 7, 1],
            &["sh"],
            &format!("0::/docker/{ID}\n"),
        );
        let nested = crate::naming::ZoneFacts {
            level: 2,
            ..facts(400, 300, Some(&cg))
        };
        assert!(crate::runtimes::RuntimeNames::new(t.root())
            .lookup(&nested)
            .named()
            .is_none());
    }

    #[test]
    fn refuses_symlinked_state() {
        let t = TempTree::new("docker-symlink");
        host(&t, "0::/\n");
        t.write("elsewhere/config.v2.json", config(ID, "/evil", false, 0));
        t.mkdir(&format!("{CONTAINERS_DIR}/{ID}"));
        std::os::unix::fs::symlink(
            t.path("elsewhere/config.v2.json"),
            t.path(&format!("{CONTAINERS_DIR}/{ID}/config.v2.json")),
        )
        .unwrap();
        let cg = format!("/docker/{ID}");
        assert!(Docker::new(t.root())
            .lookup(&facts(300, 0, Some(&cg)))
            .named()
            .is_none());
    }

    #[test]
    fn kubernetes_through_docker() {
        let t = TempTree::new("docker-k8s");
        host(&t, "0::/\n");
        let cfg = config(ID, "/k8s_nginx_web-0_default_6f1c_0", false, 0).replace(
            r#""Labels":{}"#,
            r#""Labels":{"io.kubernetes.container.name":"nginx","io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"default","io.kubernetes.pod.uid":"6f1c"}"#,
        );
        t.write(&format!("{CONTAINERS_DIR}/{ID}/config.v2.json"), cfg);
        let cg = format!("/kubepods/besteffort/pod6f1c/docker-{ID}.scope");
        let r = Docker::new(t.root())
            .lookup(&facts(300, 0, Some(&cg)))
            .named()
            .unwrap();
        assert_eq!(r.name, "default/web-0/nginx");
        assert_eq!(r.runtime.as_deref(), Some("kubernetes"));
        assert_eq!(r.k8s.unwrap().container, "nginx");
        let meta = r.meta.unwrap();
        assert_eq!(meta.pod_uid.as_deref(), Some("6f1c"));
        assert_eq!(meta.labels["io.kubernetes.pod.name"], "web-0");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn spec_parser_survives_mutations(input in mutated(bundle_spec("/srv/docker", ID))) {
            if let Some(src) = parse_hostname_source(&input) {
                prop_assert!(src.len() <= input.len());
            }
        }

        #[test]
        fn parser_survives_mutations(input in mutated(config(ID, "/aap", true, 300))) {
            if let Some(c) = parse_config(&input) {
                prop_assert!(c.name.len() <= input.len());
            }
        }
    }

    #[test]
    fn parser_rejects_malformed_configs() {
        assert!(parse_config(b"").is_none());
        assert!(
            parse_config(&b"[".repeat(100_000)).is_none(),
            "deep nesting"
        );
        assert!(parse_config(br#"{"ID":1,"Name":"/x"}"#).is_none());
    }
}
