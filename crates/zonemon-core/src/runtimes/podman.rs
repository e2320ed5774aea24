//! Podman: `podman run --name aap` → `aap`.
//!
//! Evidence that Podman made the zone: the init's cgroup
//! (`/libpod_parent/libpod-<id>` with cgroupfs, `libpod-<id>.scope` with
//! systemd: Podman's own naming, CRI-O's is `crio-<id>`), else Podman's
//! `conmon` above it (`conmon … -c <id> … -n <name> … --exit-command
//! /usr/bin/podman`), whose command line is read only when the cgroup does
//! not give the id (or for its `-n` as the last resort; its `-c` must then
//! be the cgroup's id). The name is the container's `name` in libpod's
//! config ([`libpod`]: its BoltDB or SQLite state), which
//! also has the image and the labels: `podman rename` rewrites it first
//! (then containers/storage's names). When libpod's state lacks the
//! container, the name is the first of its `names` in containers/storage's
//! `containers.json` (`/var/lib/containers/storage/overlay-containers/containers.json`,
//! written at `podman create`, renamed by `podman rename`), and else
//! conmon's `-n`. Podman does not put the name in the OCI annotations.
//!
//! `containers.json` holds every container of the host: it is read only
//! when libpod's state lacks the container, and parsed once per change
//! (keyed by inode, size and mtime) into an id → name map.
//!
//! The image is libpod's `rootfsImageName` (the same name Podman gives
//! containers/storage as `image-name`), else `containers.json`'s
//! `image-name`; the labels are only in libpod's state.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::fsread::FileCache;
use super::jsonpick::{self, Keep};
use super::libpod::{self, Config, ConfigCache};
use super::probe::{Ancestor, Probe};
use super::resolver::{is_hex64, resolved, RuntimeResolver};
use super::{cgroup, procfs};
use crate::meta::ZoneMeta;
use crate::naming::ResolvedName;

/// The storage directories where containers/storage keeps `containers.json`, one per storage driver, below the root.
pub const STORAGE_DIRS: [&str; 4] = [
    "var/lib/containers/storage/overlay-containers",
    "var/lib/containers/storage/vfs-containers",
    "var/lib/containers/storage/btrfs-containers",
    "var/lib/containers/storage/zfs-containers",
];

/// Largest `containers.json` read: it lists every container of the host.
pub const MAX_CONTAINERS_JSON: u64 = 16 << 20;

/// Parses containers/storage's `containers.json` into id → first name.
///
/// Entries that are not objects, or lack a string `id` or a string first
/// name, are skipped; `None` when the whole is not a JSON array.
pub fn parse_containers_json(bytes: &[u8]) -> Option<HashMap<String, Stored>> {
    // Of each container only its id, names and metadata: layers and flags are skipped.
    const KEYS: Keep = Keep::Keys(&[
        ("id", Keep::All),
        ("names", Keep::All),
        ("metadata", Keep::All),
    ]);
    let v = jsonpick::parse(bytes, KEYS)?;
    let mut out = HashMap::new();
    for c in v.as_array()? {
        let id = c.get("id").and_then(|i| i.as_str());
        let name = c
            .get("names")
            .and_then(|n| n.as_array())
            .and_then(|n| n.first())
            .and_then(|n| n.as_str());
        // `metadata` is a JSON document of its own, in a string.
        let image = c
            .get("metadata")
            .and_then(|m| m.as_str())
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            .and_then(|m| m.get("image-name")?.as_str().map(str::to_string));
        if let (Some(id), Some(name)) = (id, name) {
            out.insert(
                id.to_string(),
                Stored {
                    name: name.to_string(),
                    image,
                },
            );
        }
    }
    Some(out)
}

/// What `containers.json` holds of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its first name.
    pub name: String,
    /// The name of the image it was made from (`metadata`'s `image-name`).
    pub image: Option<String>,
}

/// Whether `a` is Podman's conmon (not CRI-O's): its exit command is `podman`.
pub fn is_podman_conmon(a: &Ancestor) -> bool {
    procfs::program(&a.args) == "conmon"
        && procfs::option(&a.args, &["--exit-command"])
            .is_some_and(|c| c.rsplit('/').next() == Some("podman"))
}

/// Names Podman's containers from libpod's state, else from
/// `containers.json`, else from conmon's `-n`; their labels from libpod's state.
pub struct Podman {
    root: Arc<Path>,
    cache: FileCache<Arc<HashMap<String, Stored>>>,
    configs: ConfigCache,
}

impl Podman {
    /// A Podman resolver reading below `root`, libpod's state opened and its
    /// code paged in ([`ConfigCache::warm_up`]).
    pub fn new(root: &Path) -> Self {
        let mut configs = ConfigCache::new();
        configs.warm_up(&root.join(libpod::STATE_DIR));
        Podman {
            root: Arc::from(root),
            cache: FileCache::new(STORAGE_DIRS.len()),
            configs,
        }
    }

    fn stored(&mut self, probe: &Probe<'_>, id: &str) -> Option<Stored> {
        for dir in STORAGE_DIRS {
            let names = self.cache.get(
                &probe.path(dir),
                Path::new("containers.json"),
                MAX_CONTAINERS_JSON,
                |b| parse_containers_json(b).map(Arc::new),
            );
            if let Some(n) = names.and_then(|m| m.get(id).cloned()) {
                return Some(n);
            }
        }
        None
    }

    /// The container's config in libpod's state.
    fn config(&mut self, probe: &Probe<'_>, id: &str) -> Option<Arc<Config>> {
        self.configs.get(
            &probe.path(libpod::STATE_DIR),
            &probe.path(libpod::GRAPH_ROOT),
            id,
        )
    }
}

/// The zone's image (`image` if given, else libpod's config's) and labels (libpod's config's).
fn meta(image: Option<&str>, config: Option<&Config>) -> ZoneMeta {
    let image = image.or(config.and_then(|c| c.image.as_deref()));
    ZoneMeta::default().with_image(image).with_label_pairs(
        config
            .iter()
            .flat_map(|c| c.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    )
}

/// Podman's processes that may be above its containers' inits.
const PROCESSES: &[&str] = &["conmon", "podman"];

/// Podman's conmon among the processes above the init (their command lines are read).
fn podman_conmon<'p>(probe: &'p Probe<'_>) -> Option<&'p Ancestor> {
    probe
        .ancestors_like(&["conmon"])
        .find(|a| is_podman_conmon(a))
}

/// The container id conmon was given (`-c`).
fn conmon_id(conmon: &Ancestor) -> Option<&str> {
    procfs::option(&conmon.args, &["-c", "--cid"]).filter(|id| is_hex64(id))
}

impl RuntimeResolver for Podman {
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        let from_cgroup = probe
            .cgroups()
            .iter()
            .filter_map(|p| cgroup::prefixed_id(p, "libpod-"))
            .find(|id| is_hex64(id))
            .map(str::to_string);
        // A `libpod-<id>` cgroup is Podman's own naming: conmon's command
        // line is read only when the cgroup does not give the id, or for its
        // name as the last resort.
        let mut conmon = None;
        let id = match from_cgroup {
            Some(id) => id,
            None => {
                let c = podman_conmon(probe)?;
                conmon = Some(c);
                conmon_id(c)?.to_string()
            }
        };
        let config = self.config(probe, &id);
        let config = config.as_deref();
        // libpod's config is renamed first by `podman rename`: its name is Podman's.
        if let Some(name) = config.and_then(|c| c.name.as_deref()) {
            let r = resolved(name, "podman-libpod", "podman", Some(&id))?;
            return Some(r.with_meta(meta(None, config)));
        }
        if let Some(c) = self.stored(probe, &id) {
            let r = resolved(&c.name, "podman-storage", "podman", Some(&id))?;
            return Some(r.with_meta(meta(c.image.as_deref(), config)));
        }
        let conmon = conmon.or_else(|| podman_conmon(probe))?;
        if conmon_id(conmon) != Some(id.as_str()) {
            return None; // contradicting evidence
        }
        let name = procfs::option(&conmon.args, &["-n", "--name"])?;
        let r = resolved(name, "podman-conmon", "podman", Some(&id))?;
        Some(r.with_meta(meta(None, config)))
    }

    fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        probe.shows_signs_of(PROCESSES, &["libpod"])
    }

    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        Some(PROCESSES)
    }
}

super::resolver::standalone_resolver!(Podman);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{NameResolver, NameSource};
    use crate::runtimes::testutil::{facts, mutated, TempTree, CASES};
    use proptest::prelude::*;

    const ID: &str = "9c1e5b7d3a2f4e6c8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e";
    const OTHER: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    /// `containers.json` as containers/storage writes it (one line, `metadata` a JSON string).
    fn containers_json(entries: &[(&str, &str)]) -> String {
        let items: Vec<String> = entries
            .iter()
            .map(|(id, name)| {
                format!(
                    r#"{{"id":"{id}","names":["{name}"],"image":"a3f0c2d8e1b9","layer":"77aa{id}","metadata":"{{\"image-name\":\"localhost/zmrt-busybox:local\",\"image-id\":\"a3f0c2d8e1b9\",\"name\":\"{name}\",\"created-at\":1700000000,\"mountlabel\":\"\"}}","created":"2026-11-26T05:41:00.123456789Z","flags":{{"MountLabel":"","ProcessLabel":""}}}}"#
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    /// Writes `containers.json` of the overlay driver with `entries`.
    fn write_containers_json(t: &TempTree, entries: &[(&str, &str)]) {
        t.write(
            &format!("{}/containers.json", STORAGE_DIRS[0]),
            containers_json(entries),
        );
    }

    fn conmon_argv(id: &str, name: &str) -> Vec<String> {
        let ud = format!("/var/lib/containers/storage/overlay-containers/{id}/userdata");
        let run = format!("/run/containers/storage/overlay-containers/{id}/userdata");
        [
            "/usr/bin/conmon",
            "--api-version",
            "1",
            "-c",
            id,
            "-u",
            id,
            "-r",
            "/usr/sbin/runc",
            "-b",
            &ud,
            "-p",
            &format!("{run}/pidfile"),
            "-n",
            name,
            "--exit-dir",
            "/run/libpod/exits",
            "--full-attach",
            "-s",
            "-l",
            &format!("k8s-file:{ud}/ctr.log"),
            "--log-level",
            "warning",
            "--conmon-pidfile",
            &format!("{run}/conmon.pid"),
            "--exit-command",
            "/usr/bin/podman",
            "--exit-command-arg",
            "--root",
            "--exit-command-arg",
            "/var/lib/containers/storage",
            "--exit-command-arg",
            "container",
            "--exit-command-arg",
            "cleanup",
            "--exit-command-arg",
            id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn host(t: &TempTree, id: &str, name: &str) {
        let cg = format!(
            "0::/\n4:memory:/libpod_parent/libpod-{id}\n8:pids:/libpod_parent/libpod-{id}\n"
        );
        t.proc(300, 250, 5000, &[300, 1], &["sh"], &cg);
        t.proc(
            250,
            200,
            4999,
            &[250],
            &["/usr/sbin/runc", "create", "--bundle", "/b", id],
            "0::/\n",
        );
        let argv = conmon_argv(id, name);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        t.proc(200, 1, 4990, &[200], &argv, "0::/\n");
    }

    #[test]
    fn names_from_containers_json() {
        let t = TempTree::new("podman");
        host(&t, ID, "aap");
        write_containers_json(&t, &[(OTHER, "noot"), (ID, "aap")]);
        let mut p = Podman::new(t.root());
        let r = p.lookup(&facts(300, 260, None)).named().expect("named");
        assert_eq!(r.name, "aap");
        assert_eq!(r.source, NameSource::Runtime("podman-storage"));
        assert_eq!(r.runtime.as_deref(), Some("podman"));
        assert_eq!(r.container_id.as_deref(), Some(ID));
        assert_eq!(
            r.meta.unwrap().image.as_deref(),
            Some("localhost/zmrt-busybox:local"),
            "metadata's image-name"
        );
        // From the cached map, and after a rename (a new file version).
        assert_eq!(p.lookup(&facts(300, 0, None)).named().unwrap().name, "aap");
        write_containers_json(&t, &[(ID, "mies-renamed")]);
        assert_eq!(
            p.lookup(&facts(300, 0, None)).named().unwrap().name,
            "mies-renamed"
        );
    }

    /// Names, images and labels from libpod's state, which `write_state` writes.
    fn names_and_labels_from_libpod(tag: &str, write_state: fn(&TempTree)) {
        use crate::runtimes::libpod::fixture;
        let t = TempTree::new(tag);
        let id = fixture::LABELLED;
        host(&t, id, "conmon-says");
        write_state(&t);
        let mut p = Podman::new(t.root());
        // No containers.json: named from libpod's config, before conmon.
        let r = p.lookup(&facts(300, 0, None)).named().unwrap();
        assert_eq!(r.name, "zmt-labelled");
        assert_eq!(r.source, NameSource::Runtime("podman-libpod"));
        let meta = r.meta.unwrap();
        assert_eq!(meta.labels["zmt.role"], "web");
        assert_eq!(meta.labels["zmt.evil"], "$(touch /tmp/x)\n\u{1b}[31m");
        assert_eq!(meta.labels["io.example/empty"], "");
        assert_eq!(
            meta.image.as_deref(),
            Some("localhost/zmt-busybox:local"),
            "rootfsImageName"
        );
        // libpod's config comes first, for the name as for the image
        // (containers.json differs only while `podman rename` is between the two).
        let json = format!("{}/containers.json", STORAGE_DIRS[0]);
        t.write(&json, containers_json(&[(id, "zmt-renamed")]));
        let r = p.lookup(&facts(300, 0, None)).named().unwrap();
        assert_eq!(r.name, "zmt-labelled");
        assert_eq!(r.source, NameSource::Runtime("podman-libpod"));
        let meta = r.meta.unwrap();
        assert_eq!(meta.image.as_deref(), Some("localhost/zmt-busybox:local"));
        assert_eq!(meta.labels.len(), 3);
        // A container libpod's state does not have: named from
        // containers.json, else from conmon, without labels.
        host(&t, ID, "aap");
        t.write(&json, containers_json(&[(id, "zmt-renamed"), (ID, "noot")]));
        let r = p.lookup(&facts(300, 0, None)).named().unwrap();
        assert_eq!(
            (r.name.as_str(), r.source),
            ("noot", NameSource::Runtime("podman-storage"))
        );
        let meta = r.meta.unwrap();
        assert_eq!(meta.image.as_deref(), Some("localhost/zmrt-busybox:local"));
        assert!(meta.labels.is_empty());
        t.write(&json, containers_json(&[(id, "zmt-renamed")]));
        let r = p.lookup(&facts(300, 0, None)).named().unwrap();
        assert_eq!(
            (r.name.as_str(), r.source),
            ("aap", NameSource::Runtime("podman-conmon"))
        );
        assert!(r.meta.is_none_or(|m| m.labels.is_empty()));
    }

    #[test]
    fn names_and_labels_from_podman4_bolt_state() {
        use crate::runtimes::libpod::{fixture, STATE_DIR, STATE_FILE};
        names_and_labels_from_libpod("podman-bolt", |t| {
            t.write(&format!("{STATE_DIR}/{STATE_FILE}"), fixture::PODMAN)
        });
    }

    /// Podman 5's SQLite state (`db.sql`, schema-faithful: see
    /// `libpod_sqlite::fixture::write_db`), no BoltDB state.
    #[test]
    fn names_and_labels_from_podman5_sqlite_state() {
        names_and_labels_from_libpod(
            "podman-sqlite",
            crate::runtimes::libpod::fixture::write_sqlite,
        );
    }

    /// `podman rename` of a container zonemon named before: the new name,
    /// although containers.json still has the old one.
    #[test]
    fn follows_podman_rename_in_libpods_state() {
        use crate::runtimes::libpod::{fixture, STATE_DIR, STATE_FILE};
        let t = TempTree::new("podman-rename");
        let id = fixture::LABELLED;
        host(&t, id, "conmon-says");
        let bolt = format!("{STATE_DIR}/{STATE_FILE}");
        t.write(&bolt, fixture::PODMAN);
        write_containers_json(&t, &[(id, "zmt-labelled")]);
        let mut p = Podman::new(t.root());
        assert_eq!(
            p.lookup(&facts(300, 0, None)).named().unwrap().name,
            "zmt-labelled"
        );
        let renamed = fixture::renamed_labelled("zmt-renamed!");
        fixture::rewrite_in_place(&t.path(&bolt), &renamed, 1_000);
        let r = p.lookup(&facts(300, 0, None)).named().unwrap();
        assert_eq!(r.name, "zmt-renamed!");
        assert_eq!(r.meta.unwrap().labels["zmt.role"], "web");
    }

    /// The cgroup names the container: no process above the init is read.
    #[test]
    fn reads_conmon_only_when_the_cgroup_does_not_name_the_container() {
        use crate::naming::ZoneFacts;
        use crate::runtimes::procfiles::ProcFiles;
        use std::cell::RefCell;
        let t = TempTree::new("podman-no-conmon");
        host(&t, ID, "aap");
        write_containers_json(&t, &[(ID, "aap")]);
        let mut p = Podman::new(t.root());
        let files = RefCell::new(ProcFiles::new());
        let read = [];
        let resolve = |p: &mut Podman, cgroup: &str| {
            let f = ZoneFacts {
                more_cgroups: Some(&read),
                ..facts(300, 250, Some(cgroup))
            };
            p.resolve_probe(&Probe::with_files(t.root(), f, &files))
        };
        let r = resolve(&mut p, &format!("/libpod_parent/libpod-{ID}")).unwrap();
        assert_eq!(
            (r.name.as_str(), r.container_id.as_deref()),
            ("aap", Some(ID))
        );
        assert_eq!(files.borrow().opens(), 0, "no /proc file read");
        // The cgroup does not say: conmon's command line does.
        let r = resolve(&mut p, "/").unwrap();
        assert_eq!(
            (r.name.as_str(), r.container_id.as_deref()),
            ("aap", Some(ID))
        );
        assert!(files.borrow().opens() > 0);
    }

    #[test]
    fn falls_back_to_conmon_name() {
        let t = TempTree::new("podman-conmon");
        host(&t, ID, "aap");
        t.write(&format!("{}/containers.json", STORAGE_DIRS[0]), "[not json");
        let r = Podman::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .unwrap();
        assert_eq!(r.name, "aap");
        assert_eq!(r.source, NameSource::Runtime("podman-conmon"));
    }

    #[test]
    fn cgroup_alone_with_systemd_scope() {
        let t = TempTree::new("podman-scope");
        t.write(
            &format!("{}/containers.json", STORAGE_DIRS[1]),
            containers_json(&[(ID, "vfsbox")]),
        );
        let cg = format!("/machine.slice/libpod-{ID}.scope");
        let r = Podman::new(t.root())
            .lookup(&facts(300, 0, Some(&cg)))
            .named()
            .unwrap();
        assert_eq!(r.name, "vfsbox");
        // conmon's own cgroup is not the container's.
        let cg = format!("/machine.slice/libpod-conmon-{ID}.scope");
        assert!(Podman::new(t.root())
            .lookup(&facts(300, 0, Some(&cg)))
            .named()
            .is_none());
    }

    #[test]
    fn refuses_crio_conmon_and_contradictions() {
        let t = TempTree::new("podman-refuse");
        host(&t, ID, "aap");
        write_containers_json(&t, &[(ID, "aap")]);
        // The cgroup says one container that neither libpod's state nor
        // containers.json has, and conmon, read for its name, another.
        let cg = format!("/libpod_parent/libpod-{OTHER}");
        assert!(Podman::new(t.root())
            .lookup(&facts(300, 0, Some(&cg)))
            .named()
            .is_none());
        // CRI-O's conmon has no podman exit command.
        let a = Ancestor {
            pid: 2,
            args: [
                "conmon",
                "-c",
                ID,
                "-n",
                "k8s_x",
                "--exit-dir",
                "/var/run/crio/exits",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        };
        assert!(!is_podman_conmon(&a));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn parser_survives_mutations(
            input in mutated(containers_json(&[(ID, "aap"), (OTHER, "noot")]))
        ) {
            if let Some(m) = parse_containers_json(&input) {
                prop_assert!(m.len() <= 2 + input.len() / 10);
            }
        }
    }

    #[test]
    fn parser_rejects_malformed_lists() {
        assert!(parse_containers_json(b"{}").is_none());
        assert_eq!(
            parse_containers_json(br#"[1,{"id":"a"},{"id":"b","names":[]}]"#)
                .unwrap()
                .len(),
            0
        );
    }
}
