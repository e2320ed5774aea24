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
//! Requests that arrive meanwhile join that flush, those that arrive while it
//! syncs the next; the writer never waits for it, a request wakes no thread
//! (it arms the syncer's timer), and the syncer sleeps while nothing is committed.
//!
//! Checkpoints (copying the log's pages into the file, with two more flushes)
//! are SQLite's own `PASSIVE` ones, on a connection of this thread: they run
//! beside the writer instead of inside one of its commits, where they held up
//! the next records for milliseconds. The writer still checkpoints by itself
//! if the log ever grows past [`super::schema::WAL_BACKSTOP_PAGES`].

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

use crate::timerfd;

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
///
/// The thread sleeps on a timer that the writer's first request after a
/// flush arms for the moment the next flush is due, so that the request
/// itself wakes nobody: the syncer wakes once per flush, when it is due, not
/// also at the commit (while that commit's readers want the CPUs).
pub struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The syncer thread's id in the kernel (for tests that read its `/proc` entry).
    #[cfg(test)]
    tid: crate::thread_tid::ThreadTid,
}

/// What the writer and the syncer share.
struct Shared {
    state: Mutex<State>,
    /// Fires when a flush is due (or at once, to end the thread).
    due: OwnedFd,
}

#[derive(Debug, Default)]
struct State {
    /// Commits asked to be synced so far.
    requested: u64,
    /// Whether a commit not yet being synced asked (the timer is armed for it).
    pending: bool,
    /// When the last flush started.
    last_sync: Option<Instant>,
    /// The writer is done: sync what is pending and end.
    closing: bool,
}

impl Shared {
    /// Arms the timer to fire `after` from now (at least a nanosecond: zero
    /// would disarm it); false, said in the log, if it could not be (it cannot
    /// fail with a valid timer).
    fn arm(&self, after: Duration) -> bool {
        let after = after.max(Duration::from_nanos(1));
        match timerfd::set(&self.due, 0, after, Duration::ZERO) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "arming the journal's sync timer");
                false
            }
        }
    }
}

impl Syncer {
    /// Starts the thread syncing the journal at `journal` (its `-wal` file) on request.
    pub fn start(journal: PathBuf) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            due: timerfd::create(libc::CLOCK_MONOTONIC)
                .context("creating the journal's sync timer")?,
        });
        let theirs = Arc::clone(&shared);
        #[cfg(test)]
        let tid = crate::thread_tid::ThreadTid::default();
        #[cfg(test)]
        let tid_set = tid.clone();
        let thread = std::thread::Builder::new()
            .name("zonemon-sync".into())
            .spawn(move || {
                #[cfg(test)]
                tid_set.record();
                run(&theirs, &journal)
            })
            .context("starting the journal's sync thread")?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
            #[cfg(test)]
            tid,
        })
    }

    /// Asks for everything committed so far to reach the disk; returns at once, waking nobody.
    pub fn request(&self) {
        let mut s = self
            .shared
            .state
            .lock()
            .expect("the syncer never panics holding it");
        s.requested += 1;
        // Only the first request arms the timer; later ones join its flush
        // (or, should arming have failed, try again).
        if !s.pending {
            let now = Instant::now();
            let due = s
                .last_sync
                .map_or(now, |t| t + SYNC_EVERY)
                .max(now + SYNC_DELAY);
            s.pending = self.shared.arm(due - now);
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .expect("the syncer never panics holding it")
            .closing = true;
        // Now: what is pending is synced at once and the thread ends (a
        // thread that cannot be woken is left to the process's exit).
        if self.shared.arm(Duration::ZERO) {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn run(shared: &Shared, journal: &Path) {
    default_priority();
    let mut wal = journal.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let mut synced = 0;
    let mut sync_failing = Episode::default();
    let mut checkpoints = Checkpoints::new(journal);
    loop {
        if let Err(e) = timerfd::wait(&shared.due) {
            eprintln!("zonemon: error: the journal's sync timer failed ({e}); flushes stop");
            return;
        }
        let (wanted, closing) = {
            let mut s = shared
                .state
                .lock()
                .expect("the writer never panics holding it");
            s.pending = false;
            if s.requested != synced {
                s.last_sync = Some(Instant::now());
            }
            (s.requested, s.closing)
        };
        if wanted != synced {
            sync_failing.report(sync(&wal), "flush the journal's log to the disk");
            synced = wanted;
            checkpoints.maybe();
        }
        if closing {
            return;
        }
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

    /// A commit's request wakes no thread: the syncer wakes once per flush,
    /// when it is due ([`SYNC_DELAY`] later). The journal is on a tmpfs
    /// (`/dev/shm`), where a flush waits for no disk, so that every time
    /// the thread slept is counted.
    #[test]
    fn a_request_wakes_nobody_and_the_flush_comes_when_due() {
        let dir = tempfile::tempdir_in("/dev/shm").expect("a tmpfs at /dev/shm");
        let path = dir.path().join("j.db");
        let writer = crate::journal::schema::open_writer(&path).unwrap();
        writer
            .execute(
                "INSERT INTO meta (key, value) VALUES ('k', zeroblob(4000))",
                [],
            )
            .unwrap();
        let s = Syncer::start(path.clone()).unwrap();
        let tid = s.tid.get();
        let synced = || s.shared.state.lock().unwrap().last_sync;
        let switches =
            |tid| zonemon_testkit::voluntary_switches(std::process::id() as i32, tid).unwrap();
        for round in 0..3 {
            std::thread::sleep(SYNC_EVERY + Duration::from_millis(20)); // asleep, the next flush due at once
            let (before, last) = (switches(tid), synced());
            let asked = Instant::now();
            s.request();
            s.request(); // joins the first one's flush
            let deadline = Instant::now() + Duration::from_secs(10);
            let flushed = loop {
                match synced() {
                    Some(t) if Some(t) != last => break t,
                    _ => {}
                }
                assert!(Instant::now() < deadline, "no flush came");
                std::thread::sleep(Duration::from_millis(1));
            };
            assert!(flushed >= asked + SYNC_DELAY, "flushed before it was due");
            std::thread::sleep(Duration::from_millis(20));
            let woken = switches(tid) - before;
            assert_eq!(woken, 1, "round {round}: {woken} wakeups for one flush");
        }
        drop(s);
    }

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
