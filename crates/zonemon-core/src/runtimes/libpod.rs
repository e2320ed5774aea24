//! Podman's container configs (name, image, labels), from libpod's own state.
//!
//! Neither the OCI spec (`config.json`) nor containers/storage's
//! `containers.json` has a container's labels: only libpod's state does, in
//! its container config (JSON: `name`, `rootfsImageName`, `labels`, …), in
//! one of two databases:
//!
//! - BoltDB, Podman 4's default: `/var/lib/containers/storage/libpod/bolt_state.db`,
//!   bucket `ctr` → the container's id → key `config` ([`boltdb`](super::boltdb));
//! - SQLite, Podman 5's default: `/var/lib/containers/storage/db.sql`, table
//!   `ContainerConfig` ([`libpod_sqlite`](super::libpod_sqlite)).
//!
//! Which one Podman uses: Podman 5 with the default `database_backend`
//! keeps using BoltDB when `bolt_state.db` exists, and uses SQLite only when
//! it does not (`getDBState` in libpod/runtime.go); `database_backend =
//! "sqlite"` makes it use SQLite all the same; Podman 6 uses only SQLite.
//! zonemon does not read containers.conf: it looks in the BoltDB state first
//! (what Podman 5 uses when both exist) and in the SQLite state when the
//! BoltDB state lacks the container. Container ids are unique, so the
//! container is found in whichever state Podman keeps it.
//!
//! The databases change on every Podman command, so they are not cached
//! whole: a lookup reads the one container's config, without making Podman
//! wait (BoltDB: no lock at all; SQLite: read-only, with a busy timeout of a
//! few milliseconds). `podman create` writes the config; its image and labels
//! never change after, its name does with `podman rename` (libpod rewrites
//! the config with the new name first, then renames the container in
//! containers/storage's `containers.json`: `RenameContainer` in
//! libpod/runtime_ctr.go). So a config found is used again only while the
//! file it was read from is unchanged (its device, inode, size, modification
//! and change times, and for BoltDB its transaction id), and a container not found in a file is looked up in it
//! again only once that file has changed. The BoltDB file is kept open
//! between lookups ([`KeptFile`]). A BoltDB lookup during which the file
//! changed is not trusted: it is done again, up to [`ATTEMPTS`] times. The
//! config found must name the container looked for.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::boltdb::{Bolt, ReadAt};
use super::fsread::MAX_STATE_FILE;
use super::jsonpick::{self, json_str};
use super::keptfile::{KeptFile, Stamp};
use super::libpod_sqlite::{self as sqlite, Lookup};
use crate::meta::ZoneMeta;

/// containers/storage's graph root, below the root: where Podman 5 keeps `db.sql`.
pub const GRAPH_ROOT: &str = "var/lib/containers/storage";
/// libpod's state directory (its "static dir"), below the root.
pub const STATE_DIR: &str = "var/lib/containers/storage/libpod";
/// libpod's BoltDB state, in [`STATE_DIR`].
pub const STATE_FILE: &str = "bolt_state.db";

/// Largest container config read.
pub const MAX_CONFIG: usize = MAX_STATE_FILE as usize;

/// How many times a lookup is tried while the file keeps changing under it.
pub const ATTEMPTS: usize = 3;

/// Most containers remembered, found and not found each (all are forgotten when full).
const CAP: usize = 1024;

/// A container's labels, bounded as [`ZoneMeta::with_labels`] bounds them.
pub type Labels = BTreeMap<String, String>;

/// What zonemon takes from a container's libpod config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Its name (`name`).
    pub name: Option<String>,
    /// The name of the image it was made from (`rootfsImageName`).
    pub image: Option<String>,
    /// Its labels (`labels`), bounded.
    pub labels: Labels,
}

/// Of a container config only these: the OCI spec in it, most of its
/// bytes, and the rest are skipped.
const CONFIG_KEYS: [&str; 4] = ["id", "name", "rootfsImageName", "labels"];

/// The config of container `id` in libpod's container config JSON `bytes`
/// (labels bounded; none is an empty map); `None` unless it is a JSON
/// object whose `id` is `id`.
///
/// Only the top level is walked ([`jsonpick::pick_top`]): the values not
/// read, the OCI spec first, are skipped by their strings and brackets
/// (a spec that is not valid JSON but for those is not noticed: it is not
/// read); for a valid document, what a full parse finds.
pub fn parse_config(bytes: &[u8], id: &str) -> Option<Config> {
    config_of(&jsonpick::pick_top(bytes, &CONFIG_KEYS)?, id)
}

/// The config of container `id` in the picked config `v`.
fn config_of(v: &serde_json::Value, id: &str) -> Option<Config> {
    if json_str(v, "id")? != id {
        return None;
    }
    let text = |k: &str| json_str(v, k).filter(|s| !s.is_empty()).map(str::to_string);
    let labels = v.get("labels").and_then(|l| l.as_object());
    Some(Config {
        name: text("name"),
        image: text("rootfsImageName"),
        labels: ZoneMeta::default().with_labels(labels).labels,
    })
}

/// The config of container `id` in the libpod BoltDB `src` of `size` bytes.
pub fn read_bolt_config<R: ReadAt + ?Sized>(src: &R, size: u64, id: &str) -> Option<Config> {
    bolt_config(&mut Bolt::open(src, size)?, id)
}

/// The config of container `id` in the opened libpod BoltDB `db`.
fn bolt_config<R: ReadAt + ?Sized>(db: &mut Bolt<'_, R>, id: &str) -> Option<Config> {
    let config = db.get(&[b"ctr", id.as_bytes()], b"config", MAX_CONFIG)?;
    parse_config(&config, id)
}

/// One version of a state file: what a config was read from, or a container was missing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// The file's stamp and the transaction id of its meta in use (bbolt
    /// counts every write: a write in the same clock tick as the stamp
    /// before it changes the transaction id); none without a valid meta.
    Bolt(Stamp, Option<u64>),
    Sqlite(sqlite::Version),
}

/// A lookup of a container in one of libpod's state files, in the directory given.
type LookIn = fn(&mut ConfigCache, &Path, &str, &[Version]) -> Answer;

/// What one state file said of a container.
enum Answer {
    /// Its config, in this version of the file.
    Found(Config, Version),
    /// Not in this version of the file.
    Missing(Version),
    /// No file, or not readable now: nothing to remember.
    Unknown,
}

/// Containers' configs from libpod's state, looked up once per container and file version (see the module's doc).
#[derive(Debug, Default)]
pub struct ConfigCache {
    /// Containers found, with the version of the file their config was read from.
    found: HashMap<String, (Version, Arc<Config>)>,
    /// Containers not found, with the versions of the files they were not in.
    missed: HashMap<String, Vec<Version>>,
    /// The BoltDB state, kept open.
    bolt: KeptFile,
    /// Lookups that read a file (for tests).
    reads: u64,
}

impl ConfigCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The config of container `id` from libpod's BoltDB state in
    /// `state_dir`, else from its SQLite state in `graph_root`; `None` when
    /// neither has it (or can be read consistently now).
    pub fn get(&mut self, state_dir: &Path, graph_root: &Path, id: &str) -> Option<Arc<Config>> {
        let kept = self.found.get(id).map(|(v, c)| (*v, Arc::clone(c)));
        if let Some((v, c)) = kept {
            if self.unchanged(v, state_dir, graph_root) {
                return Some(c);
            }
            self.found.remove(id); // renamed, maybe: read again
        }
        let known = self.missed.get(id).cloned().unwrap_or_default();
        let mut missed = Vec::new();
        // One state after the other: the SQLite state is opened only when the BoltDB state
        // has not the container.
        let states: [(LookIn, &Path); 2] = [
            (Self::look_in_bolt, state_dir),
            (Self::look_in_sqlite, graph_root),
        ];
        for (look, dir) in states {
            match look(self, dir, id, &known) {
                Answer::Found(c, v) => {
                    let c = Arc::new(c);
                    if self.found.len() >= CAP {
                        self.found.clear();
                    }
                    self.found.insert(id.to_string(), (v, Arc::clone(&c)));
                    self.missed.remove(id);
                    return Some(c);
                }
                Answer::Missing(m) => missed.push(m),
                Answer::Unknown => {}
            }
        }
        if !missed.is_empty() {
            if self.missed.len() >= CAP {
                self.missed.clear();
            }
            self.missed.insert(id.to_string(), missed);
        }
        None
    }

    /// Whether the state file of version `v` is still at that version.
    fn unchanged(&mut self, v: Version, state_dir: &Path, graph_root: &Path) -> bool {
        match v {
            Version::Bolt(..) => self.bolt_version(state_dir) == Some(v),
            Version::Sqlite(s) => sqlite::version(graph_root) == Some(s),
        }
    }

    /// The BoltDB state's version now (its stamp and meta's transaction id).
    fn bolt_version(&mut self, dir: &Path) -> Option<Version> {
        let (f, stamp) = self.bolt.get(dir, STATE_FILE)?;
        let txid = Bolt::open(&f, stamp.size()).map(|db| db.txid());
        Some(Version::Bolt(stamp, txid))
    }

    fn look_in_bolt(&mut self, dir: &Path, id: &str, known: &[Version]) -> Answer {
        for _ in 0..ATTEMPTS {
            let Some((f, before)) = self.bolt.get(dir, STATE_FILE) else {
                return Answer::Unknown;
            };
            let mut db = Bolt::open(&f, before.size());
            let version = Version::Bolt(before, db.as_ref().map(|db| db.txid()));
            if known.contains(&version) {
                return Answer::Missing(version);
            }
            self.reads += 1;
            let config = db.as_mut().and_then(|db| bolt_config(db, id));
            if self.bolt.stamp_now() != Some(before) {
                continue; // written meanwhile: what was read may mix two versions
            }
            return config.map_or(Answer::Missing(version), |c| Answer::Found(c, version));
        }
        Answer::Unknown
    }

    fn look_in_sqlite(&mut self, dir: &Path, id: &str, known: &[Version]) -> Answer {
        // The version before the lookup: if the file changes during it, the
        // config found is read again next time.
        let Some(v) = sqlite::version(dir).map(Version::Sqlite) else {
            return Answer::Unknown;
        };
        if known.contains(&v) {
            return Answer::Missing(v);
        }
        self.reads += 1;
        match sqlite::lookup(dir, id, MAX_CONFIG) {
            Lookup::Found(json) => match parse_config(&json, id) {
                Some(c) => Answer::Found(c, v),
                // Unreadable config: looked up again once the file changes.
                None => sqlite::version(dir)
                    .map_or(Answer::Unknown, |v| Answer::Missing(Version::Sqlite(v))),
            },
            Lookup::Missing(v) => Answer::Missing(Version::Sqlite(v)),
            Lookup::Unknown => Answer::Unknown,
        }
    }

    /// Does once, off the event path, what the first lookup would otherwise
    /// pay for alone: opens the BoltDB state in `state_dir` (if there is
    /// one) and walks it to a container that is not there, and parses a
    /// small config, so that the code of both is paged in. Nothing is
    /// remembered of what was read. (Here the first lookup of a daemon took
    /// 150–170 µs and the next ones 80–100 µs, on the same machine.)
    pub fn warm_up(&mut self, state_dir: &Path) {
        const ID: &str = "0000000000000000000000000000000000000000000000000000000000000000";
        const CONFIG: &[u8] = br#"{"spec":{"process":{"args":["sh"]}},"id":"0000000000000000000000000000000000000000000000000000000000000000","name":"warm-up","rootfsImageName":"i","labels":{"a":"b"}}"#;
        if let Some((f, stamp)) = self.bolt.get(state_dir, STATE_FILE) {
            if let Some(mut db) = Bolt::open(&f, stamp.size()) {
                let _ = bolt_config(&mut db, ID);
            }
        }
        let _ = parse_config(CONFIG, ID);
    }

    /// How many lookups read a file.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// How many times the BoltDB state was opened.
    pub fn bolt_opens(&self) -> u64 {
        self.bolt.opens()
    }
}

/// A `bolt_state.db` that Podman 4.3 wrote, its containers' ids, and a `db.sql` with the same containers.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::runtimes::testutil::TempTree;

    /// The file (see testdata/README.md): three containers made by
    /// `podman create`; its older meta (txid 16) is from before the third.
    pub const PODMAN: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/podman-4.3-bolt_state.db"
    ));
    /// `zmt-labelled`: labels `zmt.role=web`, `zmt.evil=$(touch /tmp/x)\n\e[31m`, `io.example/empty=`.
    pub const LABELLED: &str = "ca926905cc75f7479a4364356a0b5d916e5d2429d530bdaa0f92210e73440ddd";
    /// `zmt-plain`: no labels.
    pub const PLAIN: &str = "19d6819cd1ff18f705a1c0a8d3f2dac26868b61d829e5bc365a9c4e77a58a899";
    /// `zmt-many`: 70 labels `zmt.many.NN=vNN`.
    pub const MANY: &str = "2cd87dfe83de1c0920df28362ab00927e42a3aae7daf402393c316c812ae3b51";
    /// The three containers, with their names.
    pub const CONTAINERS: [(&str, &str); 3] = [
        (LABELLED, "zmt-labelled"),
        (PLAIN, "zmt-plain"),
        (MANY, "zmt-many"),
    ];

    /// The config JSON Podman 4.3 wrote for container `id`.
    pub fn config_json(id: &str) -> Vec<u8> {
        let mut db = Bolt::open(PODMAN, PODMAN.len() as u64).unwrap();
        db.get(&[b"ctr", id.as_bytes()], b"config", MAX_CONFIG)
            .unwrap()
    }

    /// [`PODMAN`] after `podman rename zmt-labelled <name>` rewrote the
    /// labelled container's config in place (`name` as long as
    /// `zmt-labelled`: the file keeps its layout).
    pub fn renamed_labelled(name: &str) -> Vec<u8> {
        let (old, new) = (
            br#""name":"zmt-labelled""#.as_slice(),
            format!(r#""name":"{name}""#),
        );
        assert_eq!(old.len(), new.len(), "same length");
        let at = PODMAN.windows(old.len()).position(|w| w == old).unwrap();
        let mut file = PODMAN.to_vec();
        file[at..at + old.len()].copy_from_slice(new.as_bytes());
        file
    }

    /// Rewrites the file at `path` in place with `bytes`, as bbolt writes
    /// its file (same inode), with a modification time of its own (not
    /// the clock's tick, which two writes may share).
    pub fn rewrite_in_place(path: &Path, bytes: &[u8], mtime_s: u64) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all(bytes).unwrap();
        f.set_len(bytes.len() as u64).unwrap();
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime_s);
        f.set_modified(when).unwrap();
    }

    /// Writes `db.sql` in `t`'s graph root with [`CONTAINERS`] (see
    /// [`libpod_sqlite::fixture::write_db`](super::sqlite::fixture::write_db):
    /// a schema-faithful file, not one a real Podman 5 wrote).
    pub fn write_sqlite(t: &TempTree) {
        t.mkdir(GRAPH_ROOT);
        let configs: Vec<(&str, &str, Vec<u8>)> = CONTAINERS
            .iter()
            .map(|&(id, name)| (id, name, config_json(id)))
            .collect();
        let rows: Vec<(&str, &str, &[u8])> = configs
            .iter()
            .map(|(id, name, json)| (*id, *name, json.as_slice()))
            .collect();
        sqlite::fixture::write_db(&t.path(GRAPH_ROOT).join(sqlite::DB_FILE), &rows);
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{
        renamed_labelled, rewrite_in_place, write_sqlite, LABELLED, MANY, PLAIN, PODMAN,
    };
    use super::*;
    use crate::meta::MAX_LABELS;
    use crate::runtimes::testutil::{mutated, TempTree, CASES};
    use proptest::prelude::*;

    fn labelled() -> Labels {
        [
            ("io.example/empty", ""),
            ("zmt.evil", "$(touch /tmp/x)\n\u{1b}[31m"),
            ("zmt.role", "web"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn labelled_config() -> Config {
        Config {
            name: Some("zmt-labelled".into()),
            image: Some("localhost/zmt-busybox:local".into()),
            labels: labelled(),
        }
    }

    #[test]
    fn configs_from_podmans_bolt_file() {
        let size = PODMAN.len() as u64;
        assert_eq!(
            read_bolt_config(PODMAN, size, LABELLED),
            Some(labelled_config())
        );
        let plain = read_bolt_config(PODMAN, size, PLAIN).unwrap();
        assert_eq!(plain.name.as_deref(), Some("zmt-plain"));
        assert_eq!(plain.labels, Labels::new());
        let many = read_bolt_config(PODMAN, size, MANY).unwrap().labels;
        assert_eq!(many.len(), MAX_LABELS, "bounded");
        assert_eq!(
            many.first_key_value().unwrap(),
            (&"zmt.many.00".to_string(), &"v00".to_string())
        );
        assert!(read_bolt_config(PODMAN, size, &"f".repeat(64)).is_none());
    }

    #[test]
    fn config_must_name_the_container() {
        let c = br#"{"spec":{"annotations":{"x":"y"}},"id":"abc","name":"n","rootfsImageName":"","labels":{"a":"b","n":1}}"#;
        let want = Config {
            name: Some("n".into()),
            image: None,
            labels: [("a".to_string(), "b".to_string())].into(),
        };
        assert_eq!(parse_config(c, "abc"), Some(want));
        assert!(parse_config(c, "abd").is_none());
        assert!(parse_config(br#"{"labels":{"a":"b"}}"#, "abc").is_none());
        assert_eq!(
            parse_config(br#"{"id":"abc","labels":null,"name":7}"#, "abc"),
            Some(Config::default())
        );
        assert!(parse_config(b"[", "abc").is_none());
    }

    /// A fresh cache `c` over one state file: the labelled container read
    /// once and kept, a container not in the file not read again; returns
    /// that container's id.
    fn reads_once_per_container(c: &mut ConfigCache, dir: &Path, graph: &Path) -> String {
        for _ in 0..2 {
            let got = c.get(dir, graph, LABELLED);
            assert_eq!(got.as_deref(), Some(&labelled_config()));
        }
        assert_eq!(c.reads(), 1, "found: kept");
        let gone = "e".repeat(64);
        assert!(c.get(dir, graph, &gone).is_none());
        assert!(c.get(dir, graph, &gone).is_none());
        assert_eq!(
            c.reads(),
            2,
            "not found: not looked up again in the same file"
        );
        gone
    }

    #[test]
    fn cache_reads_once_per_container_and_file_version() {
        let t = TempTree::new("libpod-cache");
        let path = format!("{STATE_DIR}/{STATE_FILE}");
        let (dir, graph) = (t.path(STATE_DIR), t.path(GRAPH_ROOT));
        let mut c = ConfigCache::new();
        assert!(c.get(&dir, &graph, LABELLED).is_none(), "no file");
        t.write(&path, PODMAN);
        let gone = reads_once_per_container(&mut c, &dir, &graph);
        // A new version of the file (Podman wrote it): looked up again.
        let mut changed = PODMAN.to_vec();
        changed.extend_from_slice(&[0; 4096]);
        t.write(&path, &changed);
        assert!(c.get(&dir, &graph, &gone).is_none());
        assert_eq!(c.reads(), 3);
        // Not a regular file beneath the state directory: not read.
        let mut c = ConfigCache::new();
        std::fs::remove_file(t.path(&path)).unwrap();
        t.write("elsewhere.db", PODMAN);
        std::os::unix::fs::symlink(t.path("elsewhere.db"), t.path(&path)).unwrap();
        assert!(c.get(&dir, &graph, LABELLED).is_none());
        assert_eq!(c.reads(), 0);
    }

    #[test]
    fn a_renamed_container_is_read_again_from_the_file_kept_open() {
        let t = TempTree::new("libpod-rename");
        let path = format!("{STATE_DIR}/{STATE_FILE}");
        t.write(&path, PODMAN);
        let (dir, graph) = (t.path(STATE_DIR), t.path(GRAPH_ROOT));
        let mut c = ConfigCache::new();
        let name = |c: &mut ConfigCache| c.get(&dir, &graph, LABELLED).unwrap().name.clone();
        assert_eq!(name(&mut c).as_deref(), Some("zmt-labelled"));
        assert_eq!(name(&mut c).as_deref(), Some("zmt-labelled"));
        assert_eq!(c.reads(), 1, "the file unchanged: the config kept");
        // `podman rename`: libpod rewrites the config in place.
        rewrite_in_place(&t.path(&path), &renamed_labelled("zmt-renamed!"), 1_000);
        assert_eq!(name(&mut c).as_deref(), Some("zmt-renamed!"));
        assert_eq!(c.reads(), 2);
        let again = c.get(&dir, &graph, LABELLED).unwrap();
        assert_eq!(again.labels, labelled(), "image and labels as before");
        assert_eq!(c.reads(), 2);
        assert_eq!(c.bolt_opens(), 1, "the file kept open throughout");
    }

    #[test]
    fn warming_up_opens_the_file_and_remembers_nothing() {
        let t = TempTree::new("libpod-warm");
        let (dir, graph) = (t.path(STATE_DIR), t.path(GRAPH_ROOT));
        let mut c = ConfigCache::new();
        c.warm_up(&dir); // no state yet: nothing
        assert_eq!(c.bolt_opens(), 0);
        t.write(&format!("{STATE_DIR}/{STATE_FILE}"), PODMAN);
        c.warm_up(&dir);
        assert_eq!((c.bolt_opens(), c.reads()), (1, 0));
        assert_eq!(
            c.get(&dir, &graph, LABELLED).as_deref(),
            Some(&labelled_config())
        );
        assert_eq!((c.bolt_opens(), c.reads()), (1, 1), "found open");
    }

    #[test]
    fn sqlite_state_when_no_bolt_file() {
        let t = TempTree::new("libpod-sqlite");
        write_sqlite(&t);
        let (dir, graph) = (t.path(STATE_DIR), t.path(GRAPH_ROOT));
        let mut c = ConfigCache::new();
        reads_once_per_container(&mut c, &dir, &graph);
        let many = c.get(&dir, &graph, MANY).unwrap();
        assert_eq!(many.labels.len(), MAX_LABELS, "bounded");
        assert_eq!(many.name.as_deref(), Some("zmt-many"));
    }

    #[test]
    fn bolt_first_then_sqlite_when_both_exist() {
        let t = TempTree::new("libpod-both");
        // The SQLite state has the plain container under another name, and
        // one container of its own.
        t.mkdir(GRAPH_ROOT);
        let renamed = |id: &str, name: &str| {
            String::from_utf8(fixture::config_json(PLAIN))
                .unwrap()
                .replace(PLAIN, id)
                .replace("\"name\":\"zmt-plain\"", &format!("\"name\":\"{name}\""))
        };
        let sqlite_id = "d".repeat(64);
        let (plain, own) = (
            renamed(PLAIN, "plain-in-sqlite"),
            renamed(&sqlite_id, "only-in-sqlite"),
        );
        sqlite::fixture::write_db(
            &t.path(GRAPH_ROOT).join(sqlite::DB_FILE),
            &[
                (PLAIN, "plain-in-sqlite", plain.as_bytes()),
                (&sqlite_id, "only-in-sqlite", own.as_bytes()),
            ],
        );
        t.write(&format!("{STATE_DIR}/{STATE_FILE}"), PODMAN);
        let (dir, graph) = (t.path(STATE_DIR), t.path(GRAPH_ROOT));
        let mut c = ConfigCache::new();
        // In both: BoltDB's, as Podman 5 with both files uses BoltDB.
        let p = c.get(&dir, &graph, PLAIN).unwrap();
        assert_eq!(p.name.as_deref(), Some("zmt-plain"));
        assert_eq!(c.reads(), 1, "found in BoltDB: the SQLite state not read");
        // Only in the SQLite state (database_backend = "sqlite"): found there.
        let s = c.get(&dir, &graph, &sqlite_id).unwrap();
        assert_eq!(s.name.as_deref(), Some("only-in-sqlite"));
        // Only in BoltDB.
        assert_eq!(
            c.get(&dir, &graph, LABELLED).as_deref(),
            Some(&labelled_config())
        );
        // Neither: each file read once, not again while neither changes.
        let before = c.reads();
        assert!(c.get(&dir, &graph, &"e".repeat(64)).is_none());
        assert!(c.get(&dir, &graph, &"e".repeat(64)).is_none());
        assert_eq!(c.reads(), before + 2);
    }

    /// A config parsed whole, spec and all.
    fn parse_whole(bytes: &[u8], id: &str) -> Option<Config> {
        let keys = CONFIG_KEYS.map(|k| (k, jsonpick::Keep::All));
        let keep = jsonpick::Keep::Keys(Box::leak(Box::new(keys)));
        config_of(&jsonpick::parse(bytes, keep)?, id)
    }

    #[test]
    fn skipping_the_spec_finds_what_a_whole_parse_finds() {
        for (id, _) in fixture::CONTAINERS {
            let json = fixture::config_json(id);
            assert!(json.starts_with(br#"{"spec":{"#), "Podman's layout");
            let c = parse_config(&json, id);
            assert!(c.is_some());
            assert_eq!(c, parse_whole(&json, id));
        }
        let other = br#"{"id":"abc","spec":{},"name":"n"}"#;
        assert_eq!(
            parse_config(other, "abc").unwrap().name.as_deref(),
            Some("n")
        );
        assert!(parse_config(br#"{"spec":{"id":"abc"}"#, "abc").is_none());
        assert!(parse_config(br#"{"spec":{"id":"abc"}}"#, "abc").is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn skipping_the_spec_agrees_with_a_whole_parse(input in mutated(
            br#"{"spec":{"process":{"args":["sh","-c","x\"}"]},"annotations":{"a":"b"}},"id":"abc","name":"x","rootfsImageName":"i","labels":{"zmt.role":"web"},"stopSignal":15}"#
        )) {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&input).is_ok() {
                prop_assert_eq!(parse_config(&input, "abc"), parse_whole(&input, "abc"));
            }
        }

        #[test]
        fn config_parser_survives_mutations(input in mutated(
            br#"{"spec":{"process":{"args":["sh"]},"annotations":{"a":"b"}},"id":"abc","name":"x","rootfsImageName":"i","labels":{"zmt.role":"web","k":"v"},"stopSignal":15}"#
        )) {
            if let Some(c) = parse_config(&input, "abc") {
                let l = c.labels;
                prop_assert!(l.len() <= MAX_LABELS);
                prop_assert!(l.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= crate::meta::MAX_META_BYTES);
            }
        }
    }
}
