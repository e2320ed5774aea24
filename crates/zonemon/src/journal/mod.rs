//! The daemon's durable journal: every record `zonemon watch --json` would
//! print, with a host-wide `seq`, in an SQLite file (WAL, one transaction per
//! batch), written off the hot path by one thread and read by the local API
//! through [`crate::store::EventStore`].
//!
//! - `schema`: opening, checking (refusing what is unsound or newer), creating.
//! - `feed`: the hot path's bounded, never-blocking queue to the writer.
//! - `writer`: the writer (seq, batches, full disks, retention's timing), a task on the API's thread.
//! - `syncer`: the thread that flushes committed batches to the disk, off the readers' path.
//! - `recent`: the newest committed records in memory, for followers at the end.
//! - `retention`: deleting the oldest records by age and size, in small steps.
//! - `store`: what the journal held at start-up, and the reader side.

pub mod feed;
pub mod recent;
pub mod retention;
pub mod schema;
pub mod store;
pub mod syncer;
pub mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;

/// Where the daemon keeps its journal unless `--journal` says otherwise.
pub const DEFAULT_PATH: &str = "/var/lib/zonemon/journal.db";

/// Holds an exclusive lock on the journal file while it lives, so that two
/// daemons never write one journal. The kernel drops it when the process dies.
pub struct WriterLock {
    _file: std::fs::File,
}

impl WriterLock {
    /// Locks `path`, creating it (empty) and its directory if needed, or says another daemon holds it.
    pub fn take(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        // Zone names and cgroups are the host's business: not world-readable
        // (SQLite gives the -wal and -shm files the journal's mode).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .with_context(|| format!("creating the journal's directory {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        // SAFETY: flock on a descriptor we own. flock locks are separate from
        // SQLite's POSIX record locks; this descriptor stays open as long as the
        // daemon's connection, so closing it never drops SQLite's locks early.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            anyhow::bail!(
                "the journal {} is in use by another zonemon daemon ({}); one daemon per journal",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(WriterLock { _file: file })
    }
}
