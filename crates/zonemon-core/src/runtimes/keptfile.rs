//! A state file kept open between lookups (libpod's `bolt_state.db`).
//!
//! Opening a file beneath a state directory costs a handful of system calls
//! (the directory, `openat2`, `fstat`, two `close`s), and even a `stat` of
//! its whole path walks every component; a file that is read on every lookup
//! is opened once and kept, with its directory (the trusted prefix, as
//! [`open_beneath`](super::fsread::open_beneath) trusts it). Each use then
//! costs one `fstatat` of the name in the kept directory: the kept handle is
//! used only while the name still is that file (same device and inode) and
//! a regular file, not a symbolic link; else the name is opened again in
//! the directory, not following a symbolic link. When the name is missing
//! in the kept directory, the directory is opened again by its path (Podman
//! made it anew). A kept handle keeps its inode alive, so another file
//! cannot have taken its inode number meanwhile. The file is read a few
//! pages at a time, here and there (a database): it is opened with
//! `POSIX_FADV_RANDOM`, so that a page not in the page cache is read alone,
//! without the readahead of the pages around it.
//!
//! The kept file is read through a read-only shared mapping of it, made once
//! per file (again when it grew): reading a page of it costs no system call,
//! where a `pread` per page cost a cold system call each on the event path.
//! The bytes handed out are never more than the file's size at the
//! `fstatat` of the same use. A mapped file that shrank below that would
//! fault on access (`SIGBUS`); BoltDB only ever grows its file, and only the
//! host's root can write libpod's state.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use memmap2::{Mmap, MmapOptions};

use super::boltdb::ReadAt;
use super::fsread::{fstat, is_reg, open_dir, openat, stat_in, READ_FLAGS};

/// What changes when a file is written: device, inode, size, modification
/// and change times (the change time too: a write within the same clock
/// tick as the one before it may leave the modification time as it was,
/// and a database rewritten in place keeps its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of a file whose status is `st`.
    pub fn of(st: &libc::stat) -> Stamp {
        Stamp {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size.max(0) as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether `self` and `other` are stamps of the same file (device and inode).
    fn same_file(&self, other: &Stamp) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// Where a kept file's bytes are read from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Its mapping, as long as its size.
    Mapped(&'a [u8]),
    /// The file itself (`pread`), when it could not be mapped.
    File(&'a File),
}

impl ReadAt for Source<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> bool {
        match self {
            Source::Mapped(bytes) => bytes.read_exact_at(buf, offset),
            Source::File(f) => f.read_exact_at(buf, offset),
        }
    }
}

/// One regular file in a state directory, kept open between uses (see the module's doc).
#[derive(Debug, Default)]
pub struct KeptFile {
    dir: Option<OwnedFd>,
    kept: Option<(File, Stamp)>,
    /// The kept file mapped (`None`: not yet, or it cannot be).
    map: Option<Mmap>,
    /// Times the file was opened (for tests).
    opens: u64,
    /// Times it was mapped (for tests).
    maps: u64,
}

impl KeptFile {
    /// Nothing kept yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The regular file `name` (one path component) in `dir`, to read its
    /// first `stamp.size()` bytes from (mapped, else the file), and its stamp
    /// now; `None` when it is missing, not a regular file, a symbolic link,
    /// or `name` is not one plain component.
    pub fn get(&mut self, dir: &Path, name: &str) -> Option<(Source<'_>, Stamp)> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return None;
        }
        let name = OsStr::new(name);
        let st = self.stat(dir, name).filter(is_reg);
        let Some(now) = st.as_ref().map(Stamp::of) else {
            self.kept = None;
            self.map = None;
            return None;
        };
        if !self.kept.as_ref().is_some_and(|(_, s)| s.same_file(&now)) {
            self.kept = None;
            self.map = None;
            let fd = openat(self.dir.as_ref()?, name, READ_FLAGS)?;
            self.opens += 1;
            // SAFETY: `fd` is open; the advice only changes the kernel's readahead for it.
            unsafe { libc::posix_fadvise(fd.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
            let opened = fstat(&fd).filter(is_reg).map(|st| Stamp::of(&st))?;
            if !opened.same_file(&now) {
                return None; // replaced between the stat and the open: looked at again next time
            }
            self.kept = Some((File::from(fd), opened));
        }
        let (f, _) = self.kept.as_ref()?;
        let len = usize::try_from(now.size()).ok()?;
        if len > 0 && self.map.as_ref().is_none_or(|m| m.len() < len) {
            // SAFETY: a read-only shared mapping of a regular file we hold
            // open; its bytes may change as the file is written (readers
            // check the stamp after reading, as they would after `pread`s).
            // Only its first `len` bytes, the size just stamped, are read.
            self.map = unsafe { MmapOptions::new().len(len).map(f) }.ok();
            self.maps += 1;
        }
        let src = match &self.map {
            Some(m) if m.len() >= len => Source::Mapped(&m[..len]),
            _ => Source::File(f),
        };
        Some((src, now))
    }

    /// The status of `name` in the kept directory, the directory opened
    /// again by its path when the name is not there.
    fn stat(&mut self, dir: &Path, name: &OsStr) -> Option<libc::stat> {
        if let Some(st) = self.dir.as_ref().and_then(|d| stat_in(d, name)) {
            return Some(st);
        }
        self.dir = open_dir(dir);
        stat_in(self.dir.as_ref()?, name)
    }

    /// The kept file's stamp as its handle sees it now (after a read: did it change meanwhile?).
    pub fn stamp_now(&self) -> Option<Stamp> {
        let (f, _) = self.kept.as_ref()?;
        fstat(f).map(|st| Stamp::of(&st))
    }

    /// How many times the file was opened.
    pub fn opens(&self) -> u64 {
        self.opens
    }

    /// How many times the file was mapped.
    pub fn maps(&self) -> u64 {
        self.maps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::testutil::TempTree;
    use std::os::unix::fs::symlink;

    fn content(k: &mut KeptFile, dir: &Path) -> Option<String> {
        let (src, stamp) = k.get(dir, "db")?;
        let mut buf = vec![0u8; stamp.size() as usize];
        assert!(src.read_exact_at(&mut buf, 0));
        assert!(
            !src.read_exact_at(&mut [0u8], stamp.size()),
            "not past its size"
        );
        Some(String::from_utf8(buf).unwrap())
    }

    #[test]
    fn opened_once_while_the_name_is_the_same_file() {
        let t = TempTree::new("keptfile");
        t.write("state/db", "one");
        let dir = t.path("state");
        let mut k = KeptFile::new();
        let (_, first) = k.get(&dir, "db").unwrap();
        // Written in place: the same file, a new stamp, not opened again.
        std::fs::write(t.path("state/db"), "two!").unwrap();
        assert_eq!(content(&mut k, &dir).as_deref(), Some("two!"));
        let (_, second) = k.get(&dir, "db").unwrap();
        assert_ne!(first, second);
        assert_eq!(k.stamp_now(), Some(second));
        assert_eq!(k.opens(), 1);
        assert_eq!(k.maps(), 2, "mapped again when it grew");
        // Written in place, smaller: the same mapping, only its new size read.
        std::fs::write(t.path("state/db"), "2").unwrap();
        assert_eq!(content(&mut k, &dir).as_deref(), Some("2"));
        assert_eq!(k.maps(), 2);
        // Replaced by another file (a rename over it): opened again.
        t.write("state/new", "three");
        std::fs::rename(t.path("state/new"), t.path("state/db")).unwrap();
        assert_eq!(content(&mut k, &dir).as_deref(), Some("three"));
        assert_eq!(k.opens(), 2);
        // The directory made anew: opened again by its path.
        std::fs::rename(t.path("state"), t.path("old-state")).unwrap();
        std::fs::remove_file(t.path("old-state/db")).unwrap();
        t.write("state/db", "four");
        assert_eq!(content(&mut k, &dir).as_deref(), Some("four"));
        assert_eq!(k.opens(), 3);
    }

    #[test]
    fn refuses_what_open_beneath_refuses() {
        let t = TempTree::new("keptfile-refuse");
        t.write("outside/secret", "secret");
        t.write("state/db", "ok");
        let dir = t.path("state");
        let mut k = KeptFile::new();
        assert_eq!(content(&mut k, &dir).as_deref(), Some("ok"));
        // The kept file replaced by a symlink: not read, through the link nor the kept handle.
        std::fs::remove_file(t.path("state/db")).unwrap();
        symlink(t.path("outside/secret"), t.path("state/db")).unwrap();
        assert!(k.get(&dir, "db").is_none());
        assert!(k.stamp_now().is_none(), "the handle is dropped");
        // A directory, a missing file, names that are not one component.
        std::fs::remove_file(t.path("state/db")).unwrap();
        assert!(k.get(&dir, "db").is_none());
        t.mkdir("state/db");
        assert!(k.get(&dir, "db").is_none());
        for name in ["", ".", "..", "../outside/secret", "sub/db"] {
            assert!(k.get(&dir, name).is_none(), "{name:?}");
        }
        assert_eq!(k.opens(), 1);
    }
}
