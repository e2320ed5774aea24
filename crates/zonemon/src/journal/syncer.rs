//! Making commits durable off the readers' path: a thread that `fdatasync`s
//! the journal's write-ahead log after the writer committed, and folds the
//! log into the database file (a checkpoint) at most once a second.
//!
//! The writer's connection runs with `synchronous=NORMAL`: a commit is
//! written to the WAL (so it survives the daemon being killed, and every
//! reader sees it) without waiting for the disk. Readers are told at once;
//! then the syncer flushes the WAL to the disk, [`SYNC_DELAY`] after the first
//! commit a flush covers and at most every [`SYNC_EVERY`], so a power loss or
//! kernel crash can take at most the commits of the last 10–20 milliseconds.
//! Requests that arrive meanwhile or while it syncs join the next flush; the
//! writer never waits for it, and it sleeps while nothing is committed.
//!
//! Checkpoints (copying the log's pages into the file, with two more flushes)
//! are SQLite's own `PASSIVE` ones, on a connection of this thread: they run
//! beside the writer instead of inside one of its commits, where they held up
//! the next records for milliseconds. The writer still checkpoints by itself
//! if the log ever grows past [`super::schema::WAL_BACKSTOP_PAGES`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

/// Flushes start at most this often: under churn, one flush covers the commits
/// of the last few milliseconds instead of each commit paying for its own.
const SYNC_EVERY: Duration = Duration::from_millis(10);

/// A flush starts this long after the first commit it covers: the disk's
/// work (the filesystem's journal, the device's interrupts) then does not
/// compete for a CPU with the readers being handed that commit.
const SYNC_DELAY: Duration = Duration::from_millis(2);

/// The log is folded into the file after a sync at most this often.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The writer's handle on the syncer thread; dropping it syncs what is pending and ends the thread.
pub struct Syncer {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct State {
    /// Commits asked to be synced so far.
    requested: u64,
    /// When the first commit not yet being synced asked.
    pending_since: Option<Instant>,
    /// The writer is done: sync what is pending and end.
    closing: bool,
}

impl Syncer {
    /// Starts the thread syncing the journal at `journal` (its `-wal` file) on request.
    pub fn start(journal: PathBuf) -> Result<Self> {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("zonemon-sync".into())
            .spawn(move || run(&theirs, &journal))
            .context("starting the journal's sync thread")?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for everything committed so far to reach the disk; returns at once.
    pub fn request(&self) {
        let (state, wake) = &*self.shared;
        let mut s = state.lock().expect("the syncer never panics holding it");
        s.requested += 1;
        // Only the first request wakes the syncer; later ones join its flush.
        if s.pending_since.is_none() {
            s.pending_since = Some(Instant::now());
            wake.notify_one();
        }
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

fn run(shared: &(Mutex<State>, Condvar), journal: &Path) {
    default_priority();
    let mut wal = journal.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let (state, wake) = shared;
    let mut synced = 0;
    let mut sync_failing = Episode::default();
    let mut checkpoints = Checkpoints::new(journal);
    let mut last_sync: Option<Instant> = None;
    loop {
        let wanted = {
            let mut s = state.lock().expect("the writer never panics holding it");
            while s.requested == synced && !s.closing {
                s = wake.wait(s).expect("the writer never panics holding it");
            }
            if s.requested == synced {
                return; // closing, nothing pending
            }
            // Let the commits of the next moments join this flush (unless the writer is done).
            let since = s.pending_since.unwrap_or_else(Instant::now);
            let due = last_sync
                .map_or(since, |t| t + SYNC_EVERY)
                .max(since + SYNC_DELAY);
            let wait = due.saturating_duration_since(Instant::now());
            if !wait.is_zero() && !s.closing {
                s = wake
                    .wait_timeout_while(s, wait, |s| !s.closing)
                    .expect("the writer never panics holding it")
                    .0;
            }
            s.pending_since = None;
            s.requested
        };
        last_sync = Some(Instant::now());
        sync_failing.report(sync(&wal), "flush the journal's log to the disk");
        synced = wanted;
        checkpoints.maybe();
    }
}

/// A kind of failure said on stderr once per episode, and its end.
#[derive(Default)]
struct Episode {
    failing: bool,
}

impl Episode {
    fn report(&mut self, outcome: Result<()>, what: &str) {
        match outcome {
            Ok(()) if self.failing => {
                eprintln!("zonemon: journal: can {what} again");
                self.failing = false;
            }
            Ok(()) => {}
            Err(e) if !self.failing => {
                eprintln!(
                    "zonemon: error: cannot {what} ({e:#}); committed records survive the \
                     daemon's end but not yet a power loss"
                );
                self.failing = true;
            }
            Err(_) => {}
        }
    }
}

/// The syncer's checkpoints: on a connection of its own, at most every [`CHECKPOINT_EVERY`].
struct Checkpoints<'a> {
    journal: &'a Path,
    conn: Option<Connection>,
    last: Instant,
    failing: Episode,
}

impl<'a> Checkpoints<'a> {
    fn new(journal: &'a Path) -> Self {
        Checkpoints {
            journal,
            conn: None,
            last: Instant::now(),
            failing: Episode::default(),
        }
    }

    /// Folds the log into the file if the last checkpoint is old enough.
    fn maybe(&mut self) {
        if self.last.elapsed() < CHECKPOINT_EVERY {
            return;
        }
        self.last = Instant::now();
        let outcome = self.checkpoint();
        self.failing
            .report(outcome, "fold the journal's log into its file (checkpoint)");
    }

    fn checkpoint(&mut self) -> Result<()> {
        if self.conn.is_none() {
            let conn = Connection::open_with_flags(
                self.journal,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("opening {}", self.journal.display()))?;
            // A checkpoint copies frames without the page cache: keep it small.
            conn.pragma_update(None, "cache_size", -64)?;
            self.conn = Some(conn);
        }
        let conn = self.conn.as_ref().expect("opened above");
        // (busy, frames in the log, frames checkpointed): PASSIVE never waits, busy is 0.
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .with_context(|| format!("checkpointing {}", self.journal.display()))
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
fn sync(wal: &Path) -> Result<()> {
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
    fn syncs_and_checkpoints_on_request_and_ends_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let writer = crate::journal::schema::open_writer(&path).unwrap();
        // Committed to the log only: the file does not hold them yet.
        for k in 0..100 {
            writer
                .execute(
                    "INSERT INTO meta (key, value) VALUES (?1, zeroblob(4000))",
                    [k],
                )
                .unwrap();
        }
        let file_size = || std::fs::metadata(&path).unwrap().len();
        let before = file_size();
        let s = Syncer::start(path.clone()).unwrap();
        for _ in 0..100 {
            s.request();
        }
        drop(s); // joins: pending requests served, the thread ends
        assert!(sync(&dir.path().join("j.db-wal")).is_ok());
        assert!(
            sync(&dir.path().join("none-wal")).is_ok(),
            "no log: nothing to flush"
        );
        // A checkpoint is due at the first sync a second after the last one.
        let mut c = Checkpoints::new(&path);
        c.maybe();
        assert!(c.conn.is_none(), "not due yet");
        c.last -= CHECKPOINT_EVERY;
        c.maybe();
        assert!(c.conn.is_some() && !c.failing.failing);
        assert!(
            file_size() >= before + 100 * 4000,
            "the log was folded into the file: {before} -> {}",
            file_size()
        );
    }
}
