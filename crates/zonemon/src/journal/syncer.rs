//! Making commits durable off the readers' path: a thread that `fdatasync`s
//! the journal's write-ahead log after the writer committed.
//!
//! The writer's connection runs with `synchronous=NORMAL`: a commit is
//! written to the WAL (so it survives the daemon being killed, and every
//! reader sees it) without waiting for the disk. Readers are told at once;
//! then the syncer flushes the WAL to the disk, so a power loss or kernel
//! crash can take at most the commits of the last few milliseconds. Requests
//! that arrive while it syncs are served by one more sync (group commit); the
//! writer never waits for it, and it sleeps while nothing is committed.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

/// The writer's handle on the syncer thread; dropping it syncs what is pending and ends the thread.
pub struct Syncer {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct State {
    /// Commits asked to be synced so far.
    requested: u64,
    /// The writer is done: sync what is pending and end.
    closing: bool,
}

impl Syncer {
    /// Starts the thread syncing `wal` (the journal's `-wal` file) on request.
    pub fn start(wal: PathBuf) -> Result<Self> {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("zonemon-sync".into())
            .spawn(move || run(&theirs, &wal))
            .context("starting the journal's sync thread")?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for everything committed so far to reach the disk; returns at once.
    pub fn request(&self) {
        let (state, wake) = &*self.shared;
        state
            .lock()
            .expect("the syncer never panics holding it")
            .requested += 1;
        wake.notify_one();
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let (state, wake) = &*self.shared;
        state
            .lock()
            .expect("the syncer never panics holding it")
            .closing = true;
        wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &(Mutex<State>, Condvar), wal: &std::path::Path) {
    default_priority();
    let (state, wake) = shared;
    let mut synced = 0;
    let mut failing = false;
    loop {
        let wanted = {
            let mut s = state.lock().expect("the writer never panics holding it");
            while s.requested == synced && !s.closing {
                s = wake.wait(s).expect("the writer never panics holding it");
            }
            if s.requested == synced {
                return; // closing, nothing pending
            }
            s.requested
        };
        match sync(wal) {
            Ok(()) if failing => {
                eprintln!("zonemon: journal: {} reaches the disk again", wal.display());
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                eprintln!(
                    "zonemon: error: cannot flush the journal's log to the disk ({e:#}); \
                     committed records survive the daemon's end but not yet a power loss"
                );
                failing = true;
            }
            Err(_) => {}
        }
        synced = wanted;
    }
}

/// Puts the calling thread at the scheduler's default priority (the daemon's
/// `--priority` is for the path to clients, which the disk's flush must not
/// take a CPU from). Lowering one's own priority is always allowed.
fn default_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on the calling thread (0: itself) with a valid parameter.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        libc::setpriority(libc::PRIO_PROCESS, 0, 0);
    }
}

/// `fdatasync` of the file at `wal` (opened afresh: SQLite may recreate its log).
fn sync(wal: &std::path::Path) -> Result<()> {
    let file = match std::fs::File::open(wal) {
        Ok(f) => f,
        // No log (yet, or any more): nothing of it to flush.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", wal.display())),
    };
    file.sync_data()
        .with_context(|| format!("fdatasync {}", wal.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_on_request_and_ends_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("j.db-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let s = Syncer::start(wal.clone()).unwrap();
        for _ in 0..100 {
            s.request();
        }
        drop(s); // joins: pending requests served, the thread ends
        let gone = Syncer::start(dir.path().join("none-wal")).unwrap();
        gone.request();
        drop(gone);
        assert!(sync(&wal).is_ok());
    }
}
