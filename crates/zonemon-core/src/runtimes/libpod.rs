//! Podman's labels, from libpod's own state.
//!
//! Podman 4 (with its default BoltDB backend) keeps a container's labels
//! only in `/var/lib/containers/storage/libpod/bolt_state.db`: bucket `ctr`
//! → the container's id → key `config`, libpod's container config as JSON,
//! whose `labels` object holds them. Neither the OCI spec (`config.json`)
//! nor containers/storage's `containers.json` has them.
//!
//! The database changes on every Podman command, so it is not cached whole:
//! a lookup reads only the pages on the way to the one container's config
//! ([`boltdb`](super::boltdb)), without a lock (Podman is never made to
//! wait). `podman create` writes the config once and the labels never change
//! after, so the labels found for a container are kept for as long as the
//! cache holds it; a container not found is looked up again only once the
//! file has changed (its inode, size or modification time). A lookup during
//! which the file changed is not trusted: it is done again, up to
//! [`ATTEMPTS`] times. The config found must name the container looked for.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use super::boltdb::{Bolt, ReadAt};
use super::fsread::{open_beneath, FileKey, MAX_STATE_FILE};
use super::jsonpick::{self, json_str, Keep};
use crate::meta::ZoneMeta;

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

/// The labels of container `id` in libpod's container config `bytes`
/// (bounded; none is an empty map); `None` unless it is a JSON object whose
/// `id` is `id`.
pub fn parse_config_labels(bytes: &[u8], id: &str) -> Option<Labels> {
    // Of the config only its id and labels: the OCI spec in it is skipped.
    const KEYS: Keep = Keep::Keys(&[("id", Keep::All), ("labels", Keep::All)]);
    let v = jsonpick::parse(bytes, KEYS)?;
    if json_str(&v, "id")? != id {
        return None;
    }
    let labels = v.get("labels").and_then(|l| l.as_object());
    Some(ZoneMeta::default().with_labels(labels).labels)
}

/// The labels of container `id` in the libpod BoltDB `src` of `size` bytes.
pub fn read_labels<R: ReadAt + ?Sized>(src: &R, size: u64, id: &str) -> Option<Labels> {
    let mut db = Bolt::open(src, size)?;
    let config = db.get(&[b"ctr", id.as_bytes()], b"config", MAX_CONFIG)?;
    parse_config_labels(&config, id)
}

/// What changes when the file is written: inode, size, modification and change times.
fn stamp(f: &File) -> Option<(u64, u64, i64, i64, i64, i64)> {
    let m = f.metadata().ok()?;
    Some((
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

/// Containers' labels from libpod's state, looked up once per container (see the module's doc).
#[derive(Debug, Default)]
pub struct LabelCache {
    found: HashMap<String, Arc<Labels>>,
    /// Containers not found, with the version of the file they were not in.
    missed: HashMap<String, FileKey>,
    /// Lookups that read the file (for tests).
    reads: u64,
}

impl LabelCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The labels of container `id` from [`STATE_FILE`] in `dir`; `None` when
    /// the file or the container is missing or cannot be read consistently.
    pub fn get(&mut self, dir: &Path, id: &str) -> Option<Arc<Labels>> {
        if let Some(l) = self.found.get(id) {
            return Some(Arc::clone(l));
        }
        for _ in 0..ATTEMPTS {
            let (f, key) = open_beneath(dir, Path::new(STATE_FILE))?;
            if self.missed.get(id) == Some(&key) {
                return None;
            }
            let before = stamp(&f)?;
            self.reads += 1;
            let labels = read_labels(&f, key.size(), id);
            if stamp(&f)? != before {
                continue; // written meanwhile: what was read may mix two versions
            }
            return match labels {
                Some(l) => {
                    let l = Arc::new(l);
                    if self.found.len() >= CAP {
                        self.found.clear();
                    }
                    self.found.insert(id.to_string(), Arc::clone(&l));
                    self.missed.remove(id);
                    Some(l)
                }
                None => {
                    if self.missed.len() >= CAP {
                        self.missed.clear();
                    }
                    self.missed.insert(id.to_string(), key);
                    None
                }
            };
        }
        None
    }

    /// How many lookups read the file.
    pub fn reads(&self) -> u64 {
        self.reads
    }
}

/// A `bolt_state.db` that Podman 4.3 wrote, and its containers' ids.
#[cfg(test)]
pub(crate) mod fixture {
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
}

#[cfg(test)]
mod tests {
    use super::fixture::{LABELLED, MANY, PLAIN, PODMAN};
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

    #[test]
    fn labels_from_podmans_file() {
        let size = PODMAN.len() as u64;
        assert_eq!(read_labels(PODMAN, size, LABELLED), Some(labelled()));
        assert_eq!(read_labels(PODMAN, size, PLAIN), Some(Labels::new()));
        let many = read_labels(PODMAN, size, MANY).unwrap();
        assert_eq!(many.len(), MAX_LABELS, "bounded");
        assert_eq!(
            many.first_key_value().unwrap(),
            (&"zmt.many.00".to_string(), &"v00".to_string())
        );
        assert!(read_labels(PODMAN, size, &"f".repeat(64)).is_none());
    }

    #[test]
    fn config_must_name_the_container() {
        let c = br#"{"spec":{"annotations":{"x":"y"}},"id":"abc","labels":{"a":"b","n":1}}"#;
        let want: Labels = [("a".to_string(), "b".to_string())].into();
        assert_eq!(parse_config_labels(c, "abc"), Some(want));
        assert!(parse_config_labels(c, "abd").is_none());
        assert!(parse_config_labels(br#"{"labels":{"a":"b"}}"#, "abc").is_none());
        assert_eq!(
            parse_config_labels(br#"{"id":"abc","labels":null}"#, "abc"),
            Some(Labels::new())
        );
        assert!(parse_config_labels(b"[", "abc").is_none());
    }

    #[test]
    fn cache_reads_once_per_container_and_file_version() {
        let t = TempTree::new("libpod-cache");
        let path = format!("{STATE_DIR}/{STATE_FILE}");
        let dir = t.path(STATE_DIR);
        let mut c = LabelCache::new();
        assert!(c.get(&dir, LABELLED).is_none(), "no file");
        t.write(&path, PODMAN);
        assert_eq!(c.get(&dir, LABELLED).as_deref(), Some(&labelled()));
        assert_eq!(c.get(&dir, LABELLED).as_deref(), Some(&labelled()));
        assert_eq!(c.reads(), 1, "found: kept");
        let gone = "e".repeat(64);
        assert!(c.get(&dir, &gone).is_none());
        assert!(c.get(&dir, &gone).is_none());
        assert_eq!(
            c.reads(),
            2,
            "not found: not looked up again in the same file"
        );
        // A new version of the file (Podman wrote it): looked up again.
        let mut changed = PODMAN.to_vec();
        changed.extend_from_slice(&[0; 4096]);
        t.write(&path, &changed);
        assert!(c.get(&dir, &gone).is_none());
        assert_eq!(c.reads(), 3);
        // Not a regular file beneath the state directory: not read.
        let mut c = LabelCache::new();
        std::fs::remove_file(t.path(&path)).unwrap();
        t.write("elsewhere.db", PODMAN);
        std::os::unix::fs::symlink(t.path("elsewhere.db"), t.path(&path)).unwrap();
        assert!(c.get(&dir, LABELLED).is_none());
        assert_eq!(c.reads(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn config_parser_survives_mutations(input in mutated(
            br#"{"spec":{"process":{"args":["sh"]},"annotations":{"a":"b"}},"id":"abc","name":"x","labels":{"zmt.role":"web","k":"v"},"stopSignal":15}"#
        )) {
            if let Some(l) = parse_config_labels(&input, "abc") {
                prop_assert!(l.len() <= MAX_LABELS);
                prop_assert!(l.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= crate::meta::MAX_META_BYTES);
            }
        }
    }
}
