//! A runtime's state files parsed ahead, as they change.
//!
//! A runtime that keeps one directory per container with a state file in it
//! (`<dir>/<name>/<file>`: Docker's `containers/<id>/config.v2.json`) writes
//! that file when the container is made, long before it boots. A
//! [`StateIndex`] keeps a thread asleep on inotify watches of those
//! directories; when a file changes, the thread reads and parses it, so that
//! naming the zone at its boot is a lookup in memory instead of opening and
//! reading the file on the event path.
//!
//! What the index answers is never older than the file: the event path asks
//! the kernel whether inotify holds changes nobody has read yet (one
//! `ioctl`); if it does, or if the thread is busy taking changes in, or if
//! the entry is not parsed yet, [`StateIndex::get`] answers `None` and the
//! resolver reads the file itself, as it would without an index. The thread
//! marks a changed entry stale in the same step as it takes the change from
//! the kernel, under the lock the event path tries, so a change is always
//! either still in the kernel's queue or already marked. The event path never
//! waits: a lock it cannot take at once is a `None`.
//!
//! Bounded: at most [`MAX_ENTRIES`] entries; an entry whose directory could
//! not be watched (the host's `max_user_watches`) is never answered from the
//! index; an inotify queue overflow marks every entry stale and lists the
//! directory again. Files are read as [`super::fsread`] reads them (no
//! symbolic link below the directory, regular files only, bounded size).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, TryLockError};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use super::fsread::{self, MAX_STATE_FILE};

/// Most entries an index holds.
pub const MAX_ENTRIES: usize = 16_384;

/// Changes to the state directory itself: entries made and removed.
const DIR_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// Changes in an entry's directory: its state file made, replaced (runtimes
/// write it whole and rename it into place) or removed; a file written in
/// place, when its writer closes it. Not each write (`IN_MODIFY`): Docker
/// appends a container's output to a log file in the same directory, and
/// each line would wake the thread and hold every answer back.
const ENTRY_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::ONLYDIR);

/// One container's entry.
#[derive(Debug)]
enum Entry<V> {
    /// Changed since it was last parsed (or never parsed): the thread reads it
    /// again; stamped with the change's number, so that a parse started
    /// before a later change is not kept.
    Stale(u64),
    /// The file's parse, current as long as no change is pending.
    Parsed(Option<V>),
}

/// What the thread and the event path share, under one lock.
struct Table<V> {
    inotify: Inotify,
    /// Which entry each watch is for (`None`: the state directory itself).
    watches: HashMap<WatchDescriptor, Option<String>>,
    entries: HashMap<String, Entry<V>>,
    /// Numbers the changes, for [`Entry::Stale`].
    changes: u64,
    /// The state directory is gone or moved: nothing is answered any more.
    dead: bool,
}

/// A runtime's per-container state files, parsed as they change.
pub struct StateIndex<V> {
    table: Arc<Mutex<Table<V>>>,
    /// The inotify descriptor, for the event path's `ioctl` (the lock's holder may be reading it).
    fd: i32,
    /// Written to stop the thread.
    stop: OwnedFd,
}

impl<V: Clone + Send + 'static> StateIndex<V> {
    /// Watches `dir`'s entries' `file`, parsed by `parse`; `None` when `dir`
    /// cannot be watched (it does not exist, or inotify is unavailable). The
    /// entries there now are listed and parsed by the thread, not here.
    pub fn start(dir: &Path, file: &'static str, parse: fn(&[u8]) -> Option<V>) -> Option<Self> {
        let inotify = Inotify::init().ok()?;
        let root = inotify.watches().add(dir, DIR_MASK).ok()?;
        let fd = inotify.as_raw_fd();
        let (stop_rx, stop) = pipe()?;
        let table = Arc::new(Mutex::new(Table {
            inotify,
            watches: HashMap::from([(root, None)]),
            entries: HashMap::new(),
            changes: 0,
            dead: false,
        }));
        let keeper = Keeper {
            table: Arc::clone(&table),
            dir: dir.to_path_buf(),
            file,
            parse,
            stop: stop_rx,
        };
        std::thread::Builder::new()
            .name("zonemon-index".into())
            .spawn(move || keeper.run())
            .ok()?;
        Some(StateIndex { table, fd, stop })
    }

    /// Entry `name`'s parsed file, if the index holds it current: `None` when
    /// the file may have changed since (a change not taken in yet), the entry
    /// is not parsed yet, its file did not parse, or the thread holds the
    /// table at this moment. One `ioctl`, no waiting.
    pub fn get(&self, name: &str) -> Option<V> {
        let table = match self.table.try_lock() {
            Ok(t) => t,
            Err(TryLockError::WouldBlock) => return None,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        if table.dead || pending_bytes(self.fd) != Some(0) {
            return None;
        }
        match table.entries.get(name) {
            Some(Entry::Parsed(v)) => v.clone(),
            _ => None,
        }
    }

    /// How many entries are parsed and current (for tests and statistics).
    pub fn parsed(&self) -> usize {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table
            .entries
            .values()
            .filter(|e| matches!(e, Entry::Parsed(_)))
            .count()
    }
}

impl<V> Drop for StateIndex<V> {
    fn drop(&mut self) {
        // SAFETY: one byte from a valid buffer to our own pipe.
        unsafe { libc::write(self.stop.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }
}

/// How many bytes of events the inotify descriptor `fd` holds unread.
fn pending_bytes(fd: i32) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through a valid pointer.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    (r == 0).then_some(n.max(0) as usize)
}

/// A pipe's (read end, write end), both close-on-exec.
fn pipe() -> Option<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array; the result is checked.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: pipe2 returned two descriptors that are ours to own.
    Some(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The thread that keeps the index.
struct Keeper<V> {
    table: Arc<Mutex<Table<V>>>,
    dir: PathBuf,
    file: &'static str,
    parse: fn(&[u8]) -> Option<V>,
    stop: OwnedFd,
}

impl<V: Clone> Keeper<V> {
    fn run(self) {
        leave_realtime();
        let fd = self.lock().inotify.as_raw_fd();
        let mut stale = self.list();
        // inotify's records, read into one buffer for the thread's life.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.parse_all(stale);
            if !self.sleep(fd) {
                return;
            }
            stale = self.take_changes(&mut buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table<V>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps until inotify or the stop pipe is readable; `false` to stop.
    fn sleep(&self, fd: i32) -> bool {
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            // SAFETY: a valid array of two pollfds.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if r > 0 {
                return fds[1].revents == 0;
            }
            if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return false;
            }
        }
    }

    /// Lists the state directory, watching each entry's directory and marking it stale.
    fn list(&self) -> Vec<(String, u64)> {
        let names = fsread::list_beneath(&self.dir, Path::new(""));
        let mut table = self.lock();
        names
            .into_iter()
            .filter_map(|n| self.watch_entry(&mut table, n))
            .collect()
    }

    /// Watches entry `name`'s directory and marks it stale; `None` if it cannot be indexed.
    fn watch_entry(&self, table: &mut Table<V>, name: String) -> Option<(String, u64)> {
        if !table.entries.contains_key(&name) && table.entries.len() >= MAX_ENTRIES {
            return None;
        }
        let wd = table
            .inotify
            .watches()
            .add(self.dir.join(&name), ENTRY_MASK)
            .ok()?;
        table.watches.insert(wd, Some(name.clone()));
        Some(mark(table, name))
    }

    /// Takes the changes inotify holds (read through `buf`), under the lock:
    /// the entries they touch are marked stale before the lock is let go.
    fn take_changes(&self, buf: &mut [u8]) -> Vec<(String, u64)> {
        let mut table = self.lock();
        let mut stale: Vec<(String, u64)> = Vec::new();
        let mut relist = false;
        loop {
            let events: Vec<(WatchDescriptor, EventMask, Option<String>)> =
                match table.inotify.read_events(buf) {
                    Ok(events) => events
                        .map(|e| (e.wd, e.mask, e.name.and_then(utf8)))
                        .collect(),
                    Err(_) => break, // nothing more now (or the descriptor failed)
                };
            if events.is_empty() {
                break;
            }
            for (wd, mask, name) in events {
                if mask.contains(EventMask::Q_OVERFLOW) {
                    relist = true;
                    continue;
                }
                let Some(of) = table.watches.get(&wd).cloned() else {
                    continue;
                };
                match of {
                    None => {
                        if mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
                            table.dead = true;
                        }
                        let Some(name) = name else { continue };
                        if mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
                            table.entries.remove(&name);
                        } else if mask.contains(EventMask::ISDIR) {
                            stale.extend(self.watch_entry(&mut table, name));
                        }
                    }
                    Some(entry) => {
                        if mask.contains(EventMask::IGNORED) {
                            table.watches.remove(&wd);
                            table.entries.remove(&entry);
                        } else if name.as_deref() == Some(self.file)
                            && table.entries.contains_key(&entry)
                        {
                            stale.push(mark(&mut table, entry));
                        }
                    }
                }
            }
        }
        if relist {
            let names: Vec<String> = table.entries.keys().cloned().collect();
            stale.extend(names.into_iter().map(|n| mark(&mut table, n)));
            drop(table);
            stale.extend(self.list());
        }
        stale
    }

    /// Reads and parses each stale entry's file, and keeps the parse unless
    /// the entry changed again meanwhile.
    fn parse_all(&self, stale: Vec<(String, u64)>) {
        let mut latest: HashMap<String, u64> = HashMap::new();
        for (name, change) in stale {
            latest.insert(name, change);
        }
        for (name, change) in latest {
            let rel = Path::new(&name).join(self.file);
            let parsed = fsread::open_beneath(&self.dir, &rel)
                .and_then(|(mut f, key)| fsread::read_capped(&mut f, key.size(), MAX_STATE_FILE))
                .and_then(|bytes| (self.parse)(&bytes));
            let mut table = self.lock();
            if let Some(e) = table.entries.get_mut(&name) {
                if matches!(e, Entry::Stale(c) if *c == change) {
                    *e = Entry::Parsed(parsed);
                }
            }
        }
    }
}

/// Marks entry `name` stale (made if new), returning the change's number.
fn mark<V>(table: &mut Table<V>, name: String) -> (String, u64) {
    table.changes += 1;
    let change = table.changes;
    table.entries.insert(name.clone(), Entry::Stale(change));
    (name, change)
}

/// `name` as UTF-8, if it is (runtimes' ids are).
fn utf8(name: &OsStr) -> Option<String> {
    name.to_str().map(str::to_string)
}

/// The index's thread never runs realtime, whatever the thread that made it
/// does: it is background work, and a realtime event loop must not wait
/// behind it.
fn leave_realtime() {
    // SAFETY: a zeroed sched_param is valid for SCHED_OTHER; 0 is this thread.
    unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::testutil::{within_5s, TempTree};

    fn parse(bytes: &[u8]) -> Option<String> {
        std::str::from_utf8(bytes)
            .ok()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Waits up to 5 s for `index.get(name)` to be `want`.
    fn eventually(index: &StateIndex<String>, name: &str, want: Option<&str>) -> bool {
        within_5s(|| index.get(name).as_deref() == want)
    }

    #[test]
    fn entries_made_before_and_after_the_start_are_parsed_ahead() {
        let t = TempTree::new("stateindex-ahead");
        t.write("state/old/f", "aap");
        let index = StateIndex::start(&t.path("state"), "f", parse).unwrap();
        assert!(eventually(&index, "old", Some("aap")));
        t.write("state/new/f", "noot");
        assert!(eventually(&index, "new", Some("noot")));
        // Replaced as runtimes do, through a rename.
        t.write("state/new/.tmp", "mies");
        std::fs::rename(t.path("state/new/.tmp"), t.path("state/new/f")).unwrap();
        assert!(eventually(&index, "new", Some("mies")));
        std::fs::remove_dir_all(t.path("state/old")).unwrap();
        // `get` also answers None while changes are pending, before the thread took the
        // removal in: wait for the entry to leave the table itself (on a loaded host the
        // thread may run late).
        assert!(
            within_5s(|| index.parsed() == 1),
            "{} entries parsed after one of two was removed",
            index.parsed()
        );
        assert_eq!(index.get("old"), None);
    }

    #[test]
    fn a_change_not_taken_in_yet_is_never_answered_from_the_old_parse() {
        let t = TempTree::new("stateindex-fresh");
        t.write("state/c/f", "1");
        let index = StateIndex::start(&t.path("state"), "f", parse).unwrap();
        assert!(eventually(&index, "c", Some("1")));
        // Each write is followed at once by a lookup: it may find the new
        // parse or nothing (read the file yourself), never the old one.
        for i in 2..200 {
            t.write("state/c/f", i.to_string());
            let got = index.get("c");
            assert!(
                got.is_none() || got.as_deref() == Some(i.to_string().as_str()),
                "after writing {i}: {got:?}"
            );
        }
    }

    #[test]
    fn a_log_appended_beside_the_file_holds_no_answer_back() {
        use std::io::Write;
        let t = TempTree::new("stateindex-log");
        t.write("state/c/f", "1");
        let index = StateIndex::start(&t.path("state"), "f", parse).unwrap();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(t.path("state/c/c-json.log"))
            .unwrap();
        assert!(
            eventually(&index, "c", Some("1")),
            "the log's creation taken in"
        );
        for i in 0..100 {
            writeln!(log, "line {i}").unwrap();
            assert_eq!(index.get("c").as_deref(), Some("1"), "after line {i}");
        }
    }

    #[test]
    fn what_is_not_a_regular_file_below_the_directory_is_not_read() {
        let t = TempTree::new("stateindex-safe");
        t.write("outside", "secret");
        t.write("state/a/g", "x");
        let index = StateIndex::start(&t.path("state"), "f", parse).unwrap();
        std::os::unix::fs::symlink(t.path("outside"), t.path("state/a/f")).unwrap();
        t.write("state/b/f", "fine");
        assert!(eventually(&index, "b", Some("fine")));
        assert_eq!(index.get("a"), None, "a symbolic link is not followed");
    }

    #[test]
    fn a_missing_directory_gives_no_index() {
        let t = TempTree::new("stateindex-none");
        assert!(StateIndex::start(&t.path("nowhere"), "f", parse).is_none());
    }
}
