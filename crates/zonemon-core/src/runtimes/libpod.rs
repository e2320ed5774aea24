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
use super::jsonpick::{self, Keep};
use super::json_str;
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
