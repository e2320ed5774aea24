//! Bounded reads of files that other people control.
//!
//! Runtime state files are read through [`open_beneath`]:
//! the state directory itself is trusted (the host's administrator chose
//! it), but nothing below it may be a symbolic link, so a container owner
//! who can plant a link in a runtime's state cannot make zonemon read
//! outside it. Only regular files are read (never FIFOs, sockets or
//! devices, which could block or have side effects), never more than a
//! given size, and every failure is a `None`, never a panic. `/proc` files
//! are opened directly ([`open_proc`]): the kernel makes those directories.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// How state files are opened: read-only, never through a symbolic link,
/// never blocking (a FIFO opens at once, and is then refused as not
/// regular), never as a controlling terminal.
pub(crate) const READ_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;

/// Largest runtime state file read (OCI `config.json`, `state.json`, …).
pub const MAX_STATE_FILE: u64 = 1 << 20;

/// Most path components allowed below a state directory.
const MAX_DEPTH: usize = 16;

/// Most entries taken from one directory listing.
pub const MAX_DIR_ENTRIES: usize = 4096;

/// Opens `dir` (symlinks in `dir` itself are followed: it is the trusted prefix).
pub(crate) fn open_dir(dir: &Path) -> Option<OwnedFd> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a non-negative fd returned by open is ours to own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `name` in the open directory `dirfd` with `flags` (and `O_CLOEXEC`).
pub(crate) fn openat(dirfd: &OwnedFd, name: &OsStr, flags: libc::c_int) -> Option<OwnedFd> {
    let c = CString::new(name.as_bytes()).ok()?;
    // SAFETY: `dirfd` is an open directory, `c` a valid NUL-terminated name.
    let fd = unsafe { libc::openat(dirfd.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    // SAFETY: a non-negative fd returned by openat is ours to own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The status of the open file `fd`.
pub(crate) fn fstat(fd: &impl AsRawFd) -> Option<libc::stat> {
    // SAFETY: zeroed is a valid bit pattern for `stat`; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `st` is a valid out pointer.
    (unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0).then_some(st)
}

/// Whether `st` is a regular file's.
pub(crate) fn is_reg(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// The status of `name` in the open directory `dirfd`, not following a
/// symbolic link (one path component to walk instead of a whole path).
pub(crate) fn stat_in(dirfd: &OwnedFd, name: &OsStr) -> Option<libc::stat> {
    let c = CString::new(name.as_bytes()).ok()?;
    // SAFETY: zeroed is a valid bit pattern for `stat`; fstatat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `dirfd` is open, `c` a valid NUL-terminated name, `st` a valid out pointer.
    let r = unsafe {
        libc::fstatat(
            dirfd.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (r == 0).then_some(st)
}

/// The plain components of `rel`: `None` if it is absolute, empty, too deep, or has `..`.
fn plain_components(rel: &Path) -> Option<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
        if out.len() > MAX_DEPTH {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Opens the directories of `rel` below `dir`, refusing symlinks; returns the last one.
fn walk_dirs(dir: &Path, comps: &[&OsStr]) -> Option<OwnedFd> {
    let mut cur = open_dir(dir)?;
    for c in comps {
        cur = openat(&cur, c, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
    }
    Some(cur)
}

/// Opens the regular file `rel` below `dir` for reading; returns it with its [`FileKey`].
///
/// `None` when `rel` is not a plain relative path (no `..`, not absolute),
/// when any component below `dir` is a symbolic link, or when the file is
/// not a regular file. The open never blocks (`O_NONBLOCK`: a FIFO opens
/// at once, and is then refused as not regular).
pub fn open_beneath(dir: &Path, rel: &Path) -> Option<(File, FileKey)> {
    regular(open_in(&open_dir(dir)?, dir, rel)?)
}

/// Opens `rel` below the open directory `dirfd`, which is `dir`, refusing
/// symlinks (`openat2`, or a walk where there is none); `None` when it is
/// missing or refused.
fn open_in(dirfd: &OwnedFd, dir: &Path, rel: &Path) -> Option<OwnedFd> {
    let comps = plain_components(rel)?;
    match openat2_beneath(dirfd, rel, READ_FLAGS) {
        Beneath::Opened(fd) => Some(fd),
        Beneath::Refused => None,
        Beneath::Unsupported => open_by_walk(dir, &comps, READ_FLAGS),
    }
}

/// `fd` as a [`File`] with its [`FileKey`], if it is a regular file.
fn regular(fd: OwnedFd) -> Option<(File, FileKey)> {
    let st = fstat(&fd)?;
    is_reg(&st).then(|| (File::from(fd), FileKey::of(&st)))
}

/// Most state directories a [`KeptDirs`] keeps open.
const MAX_KEPT_DIRS: usize = 8;

/// State directories kept open between lookups, for [`KeptDirs::open_beneath`].
///
/// Opening a file below a state directory by its path costs three system
/// calls (the directory, `openat2`, the directory's `close`), each walking
/// `/run/…` again; with the directory kept open, a file there costs its
/// `openat2` alone. A kept directory is used only while its path still leads
/// to it: when a name is missing in it, the path is `stat`ed, and a path
/// that leads elsewhere now (the runtime made its directory anew, or
/// something was mounted over it) is opened again and the name looked up
/// there, so nothing is missed that a fresh open would find. A name found
/// is not checked so: a directory renamed away whole, with its files, and
/// made anew under its old path would be read from until a name is missing
/// in it (runtimes make their state directories once, and empty them before
/// they remove them). A lookup may also take a name missing as it is
/// ([`Miss::Taken`]), when a stale directory cannot mislead it.
#[derive(Debug, Default)]
pub struct KeptDirs {
    /// (path, open directory, its device and inode).
    open: Vec<(PathBuf, OwnedFd, (u64, u64))>,
    /// Directories opened by their path (for tests).
    opens: u64,
    /// Kept directories checked against their path after a miss (for tests).
    checks: u64,
}

/// What a name missing in a kept directory leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The directory's path is `stat`ed, and looked in again if it leads
    /// elsewhere now: what a fresh open would find is found.
    Checked,
    /// Taken as it is, without a system call: for a lookup a stale directory
    /// cannot mislead, because it just found another file there (a stale
    /// directory would already have given that one), or because it does as
    /// well without the file, or looks again through a checked path.
    Taken,
}

impl KeptDirs {
    /// No directory kept yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`open_beneath`] through the kept directory `dir`, opened (and kept) if it is not yet.
    pub fn open_beneath(&mut self, dir: &Path, rel: &Path) -> Option<(File, FileKey)> {
        self.open_beneath_or(dir, rel, Miss::Checked)
    }

    /// [`KeptDirs::open_beneath`], a name missing in a kept directory leading to `miss`.
    pub fn open_beneath_or(
        &mut self,
        dir: &Path,
        rel: &Path,
        miss: Miss,
    ) -> Option<(File, FileKey)> {
        if let Some(i) = self.open.iter().position(|(p, ..)| p == dir) {
            if let Some(fd) = open_in(&self.open[i].1, dir, rel) {
                return regular(fd);
            }
            if miss == Miss::Taken {
                return None;
            }
            self.checks += 1;
            let still = std::fs::metadata(dir).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino()) == self.open[i].2
            });
            if still {
                return None; // missing where it is looked for
            }
            self.open.swap_remove(i);
        }
        let d = open_dir(dir)?;
        self.opens += 1;
        let found = open_in(&d, dir, rel);
        if let Some(st) = fstat(&d) {
            if self.open.len() >= MAX_KEPT_DIRS {
                self.open.remove(0);
            }
            self.open
                .push((dir.to_path_buf(), d, (st.st_dev, st.st_ino)));
        }
        regular(found?)
    }

    /// The file `rel` below the kept directory `dir` whole, if it is a regular
    /// file of at most `max` bytes (opened as [`KeptDirs::open_beneath_or`] opens it).
    pub fn read_beneath(
        &mut self,
        dir: &Path,
        rel: &Path,
        max: u64,
        miss: Miss,
    ) -> Option<Vec<u8>> {
        let (mut f, key) = self.open_beneath_or(dir, rel, miss)?;
        read_capped(&mut f, key.size(), max)
    }

    /// How many directories were opened by their path.
    pub fn opens(&self) -> u64 {
        self.opens
    }

    /// How many times a kept directory was checked against its path after a miss.
    pub fn checks(&self) -> u64 {
        self.checks
    }
}

/// Opens `comps` below `dir` one component at a time, refusing symlinks.
fn open_by_walk(dir: &Path, comps: &[&OsStr], flags: libc::c_int) -> Option<OwnedFd> {
    let (last, parents) = comps.split_last()?;
    openat(&walk_dirs(dir, parents)?, last, flags)
}

/// What `openat2` answered.
enum Beneath {
    Opened(OwnedFd),
    /// Missing, a symlink on the way, or not beneath.
    Refused,
    /// No `openat2` here (Linux before 5.6, or a seccomp filter): walk instead.
    Unsupported,
}

/// Opens `rel` below the open directory `dir` in one call, refusing any
/// symlink and anything not beneath it (`openat2` with `RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS`): what [`walk_dirs`] does one component at a time.
fn openat2_beneath(dir: &OwnedFd, rel: &Path, flags: libc::c_int) -> Beneath {
    let Ok(c) = CString::new(rel.as_os_str().as_bytes()) else {
        return Beneath::Refused;
    };
    // SAFETY: all zeros is a valid `open_how` (no flags, mode 0, no resolve flags).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: `dir` is open, `c` a valid NUL-terminated path, `how` a valid open_how of the size given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        // SAFETY: a non-negative fd returned by openat2 is ours to own.
        return Beneath::Opened(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL) => Beneath::Unsupported,
        _ => Beneath::Refused,
    }
}

/// Opens `path` for reading without following a symlink in its last
/// component and without blocking: for `/proc/<pid>/<file>`, whose
/// directories are the kernel's.
pub fn open_proc(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()
}

/// What identifies one version of a file: device, inode, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    size: i64,
    mtime_s: i64,
    mtime_ns: i64,
}

impl FileKey {
    fn of(st: &libc::stat) -> FileKey {
        FileKey {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime_s: st.st_mtime,
            mtime_ns: st.st_mtime_nsec,
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size.max(0) as u64
    }
}

/// Reads all of `f`, whose size is `size`, if it holds at most `max` bytes;
/// `None` if it holds more or cannot be read. A file that has not grown
/// since `size` was taken costs one `read` (asked for one byte more than
/// `size`, it comes back short: the end, as [`read_prefix`] takes it).
pub fn read_capped(f: &mut File, size: u64, max: u64) -> Option<Vec<u8>> {
    if size > max {
        return None;
    }
    let limit = usize::try_from(max.saturating_add(1)).ok()?;
    let buf = read_prefix_from(size as usize + 1, limit, |buf, _| f.read(buf))?;
    (buf.len() as u64 <= max).then_some(buf)
}

/// Reads at most `max` bytes from the start of `f` (the rest is ignored).
///
/// Made for `/proc` files, which hand over all they have in one read when the
/// buffer is large enough: a read that does not fill the buffer is taken as
/// the end (no second read to see end-of-file), so a small file costs one
/// `read`.
pub fn read_prefix(f: &mut File, max: usize) -> Option<Vec<u8>> {
    read_prefix_with(max, |buf, _| f.read(buf))
}

/// [`read_prefix`] through `read(buf, offset)`, which fills `buf` from `offset`.
pub fn read_prefix_with(
    max: usize,
    read: impl FnMut(&mut [u8], u64) -> std::io::Result<usize>,
) -> Option<Vec<u8>> {
    read_prefix_from(4096, max, read)
}

/// [`read_prefix_with`], reading `first` bytes at first (at most `max`),
/// then twice as many each time the buffer fills.
fn read_prefix_from(
    first: usize,
    max: usize,
    mut read: impl FnMut(&mut [u8], u64) -> std::io::Result<usize>,
) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; first.min(max)];
    let mut len = 0;
    while len < buf.len() {
        match read(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len < buf.len() {
                    break; // a short read: all there is
                }
                if len < max {
                    buf.resize(buf.len().saturating_mul(2).min(max), 0);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.truncate(len);
    Some(buf)
}

/// Whether `rel` below `dir` is a directory reached without symlinks.
pub fn dir_exists_beneath(dir: &Path, rel: &Path) -> bool {
    match plain_components(rel) {
        Some(comps) => walk_dirs(dir, &comps).is_some(),
        None => false,
    }
}

/// The names in directory `rel` below `dir` (`rel` empty: `dir` itself),
/// reached without symlinks: at most [`MAX_DIR_ENTRIES`], UTF-8 names only,
/// without `.`, `..` and hidden names, unsorted.
pub fn list_beneath(dir: &Path, rel: &Path) -> Vec<String> {
    let comps = if rel.as_os_str().is_empty() {
        Vec::new()
    } else {
        match plain_components(rel) {
            Some(c) => c,
            None => return Vec::new(),
        }
    };
    let Some(d) = walk_dirs(dir, &comps) else {
        return Vec::new();
    };
    let Some(fd) = openat(
        &d,
        OsStr::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK,
    ) else {
        return Vec::new();
    };
    read_dir_fd(fd)
}

fn read_dir_fd(fd: OwnedFd) -> Vec<String> {
    use std::os::fd::IntoRawFd;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is an open directory fd that fdopendir takes over (closedir closes it).
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        unsafe { libc::close(raw) };
        return Vec::new();
    }
    let mut out = Vec::new();
    while out.len() < MAX_DIR_ENTRIES {
        // SAFETY: `dirp` is a valid DIR stream until closedir below.
        let ent = unsafe { libc::readdir(dirp) };
        if ent.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        if let Ok(s) = name.to_str() {
            if !s.starts_with('.') {
                out.push(s.to_string());
            }
        }
    }
    // SAFETY: `dirp` came from fdopendir and is closed once.
    unsafe { libc::closedir(dirp) };
    out
}

/// Parsed versions of files, kept while the file is unchanged.
///
/// Keyed by path; a file is re-read and re-parsed only when its
/// [`FileKey`] changed. Failed parses are remembered too, so a malformed
/// file costs one parse per version. Holds at most `cap` entries (all are
/// forgotten when it is full). The directories read below are kept open
/// ([`KeptDirs`]).
#[derive(Debug)]
pub struct FileCache<V> {
    cap: usize,
    map: HashMap<PathBuf, (FileKey, Option<V>)>,
    dirs: KeptDirs,
}

impl<V: Clone> FileCache<V> {
    /// An empty cache holding at most `cap` files.
    pub fn new(cap: usize) -> Self {
        FileCache {
            cap: cap.max(1),
            map: HashMap::new(),
            dirs: KeptDirs::new(),
        }
    }

    /// The parse of file `rel` below `dir` (at most `max` bytes), from the
    /// cache if the file is unchanged.
    pub fn get(
        &mut self,
        dir: &Path,
        rel: &Path,
        max: u64,
        parse: impl FnOnce(&[u8]) -> Option<V>,
    ) -> Option<V> {
        self.get_or(dir, rel, max, Miss::Checked, parse)
    }

    /// [`FileCache::get`], a name missing in a kept directory leading to `miss`.
    pub fn get_or(
        &mut self,
        dir: &Path,
        rel: &Path,
        max: u64,
        miss: Miss,
        parse: impl FnOnce(&[u8]) -> Option<V>,
    ) -> Option<V> {
        let (mut f, key) = self.dirs.open_beneath_or(dir, rel, miss)?;
        let path = dir.join(rel);
        if let Some((k, v)) = self.map.get(&path) {
            if *k == key {
                return v.clone();
            }
        }
        let v = read_capped(&mut f, key.size(), max).and_then(|b| parse(&b));
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        self.map.insert(path, (key, v.clone()));
        v
    }

    /// The file `rel` below `dir` whole, not parsed nor remembered
    /// ([`KeptDirs::read_beneath`], through the directories this cache keeps open).
    pub fn read_beneath(
        &mut self,
        dir: &Path,
        rel: &Path,
        max: u64,
        miss: Miss,
    ) -> Option<Vec<u8>> {
        self.dirs.read_beneath(dir, rel, max, miss)
    }

    /// Number of files remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no file is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::testutil::TempTree;
    use std::os::unix::fs::symlink;

    /// A file below `dir` read as a lookup reads it the first time, its directory opened by its path.
    fn read_beneath(dir: &Path, rel: &Path, max: u64) -> Option<Vec<u8>> {
        KeptDirs::new().read_beneath(dir, rel, max, Miss::Checked)
    }

    #[test]
    fn reads_regular_files_beneath() {
        let t = TempTree::new("fsread-basic");
        t.write("state/a/b.json", "{}");
        let dir = t.path("state");
        assert_eq!(
            read_beneath(&dir, Path::new("a/b.json"), 10).as_deref(),
            Some(&b"{}"[..])
        );
        assert!(read_beneath(&dir, Path::new("a/missing"), 10).is_none());
        assert!(
            read_beneath(&dir, Path::new("a/b.json"), 1).is_none(),
            "too big"
        );
        assert!(
            read_beneath(&dir, Path::new("a"), 10).is_none(),
            "a directory"
        );
        assert!(read_beneath(&dir, Path::new("../state/a/b.json"), 10).is_none());
        assert!(read_beneath(&dir, Path::new("/etc/passwd"), 10).is_none());
        assert!(read_beneath(&dir, Path::new(""), 10).is_none());
    }

    #[test]
    fn refuses_symlinks_below_the_state_dir() {
        let t = TempTree::new("fsread-symlink");
        t.write("outside/secret", "secret");
        t.write("state/real/f", "ok");
        let dir = t.path("state");
        symlink(t.path("outside/secret"), t.path("state/real/link")).unwrap();
        symlink(t.path("outside"), t.path("state/dirlink")).unwrap();
        symlink("f", t.path("state/real/inside")).unwrap();
        assert!(read_beneath(&dir, Path::new("real/link"), 100).is_none());
        assert!(read_beneath(&dir, Path::new("dirlink/secret"), 100).is_none());
        assert!(
            read_beneath(&dir, Path::new("real/inside"), 100).is_none(),
            "even links that stay inside"
        );
        assert!(!dir_exists_beneath(&dir, Path::new("dirlink")));
        assert!(list_beneath(&dir, Path::new("dirlink")).is_empty());
        // The state dir itself may be reached through a link (the trusted prefix).
        symlink(t.path("state"), t.path("statelink")).unwrap();
        assert!(read_beneath(&t.path("statelink"), Path::new("real/f"), 100).is_some());
    }

    #[test]
    fn openat2_and_the_walk_agree() {
        let t = TempTree::new("fsread-agree");
        t.write("outside/secret", "secret");
        t.write("state/real/f", "ok");
        t.mkdir("state/real/sub");
        symlink(t.path("outside/secret"), t.path("state/real/link")).unwrap();
        symlink(t.path("outside"), t.path("state/dirlink")).unwrap();
        symlink("f", t.path("state/real/inside")).unwrap();
        let dir = t.path("state");
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        for (rel, opens) in [
            ("real/f", true),
            ("real/sub", true),
            ("real/link", false),
            ("dirlink/secret", false),
            ("real/inside", false),
            ("real/missing", false),
            ("real/f/x", false),
        ] {
            let comps = plain_components(Path::new(rel)).unwrap();
            let walked = open_by_walk(&dir, &comps, flags).is_some();
            let at2 = match openat2_beneath(&open_dir(&dir).unwrap(), Path::new(rel), flags) {
                Beneath::Opened(_) => true,
                Beneath::Refused => false,
                Beneath::Unsupported => walked, // an old kernel: nothing to compare
            };
            assert_eq!((walked, at2), (opens, opens), "{rel}");
        }
    }

    #[test]
    fn never_blocks_on_fifos() {
        let t = TempTree::new("fsread-fifo");
        t.mkdir("state");
        let fifo = t.path("state/fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let start = std::time::Instant::now();
        assert!(read_beneath(&t.path("state"), Path::new("fifo"), 100).is_none());
        assert!(start.elapsed().as_secs() < 2);
    }

    #[test]
    fn lists_directories() {
        let t = TempTree::new("fsread-list");
        t.write("state/a/x", "");
        t.write("state/b/x", "");
        t.write("state/.hidden", "");
        let mut names = list_beneath(&t.path("state"), Path::new(""));
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(list_beneath(&t.path("state"), Path::new("a")), ["x"]);
        assert!(list_beneath(&t.path("nope"), Path::new("")).is_empty());
    }

    #[test]
    fn cache_reparses_only_changed_files() {
        let t = TempTree::new("fsread-cache");
        t.write("state/f", "1");
        let dir = t.path("state");
        let mut cache: FileCache<String> = FileCache::new(8);
        let mut parses = 0;
        let mut get = |c: &mut FileCache<String>| {
            c.get(&dir, Path::new("f"), 100, |b| {
                parses += 1;
                Some(String::from_utf8_lossy(b).into_owned())
            })
        };
        assert_eq!(get(&mut cache).as_deref(), Some("1"));
        assert_eq!(get(&mut cache).as_deref(), Some("1"));
        t.write("state/f", "22");
        assert_eq!(get(&mut cache).as_deref(), Some("22"));
        assert_eq!(parses, 2);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn kept_directories_follow_their_path() {
        let t = TempTree::new("fsread-kept");
        t.write("state/a/f", "1");
        let dir = t.path("state");
        let mut kept = KeptDirs::new();
        let read_or = |k: &mut KeptDirs, rel: &str, miss| {
            k.read_beneath(&dir, Path::new(rel), 100, miss)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let read = |k: &mut KeptDirs, rel: &str| read_or(k, rel, Miss::Checked);
        assert_eq!(read(&mut kept, "a/f").as_deref(), Some("1"));
        t.write("state/a/g", "2");
        assert_eq!(read(&mut kept, "a/g").as_deref(), Some("2"));
        assert_eq!(kept.checks(), 0, "what is found is not checked");
        assert_eq!(read(&mut kept, "a/missing"), None);
        assert_eq!(kept.checks(), 1, "a miss is checked");
        assert_eq!(read_or(&mut kept, "a/missing", Miss::Taken), None);
        assert_eq!(kept.checks(), 1, "a miss taken as it is: no stat");
        assert_eq!(kept.opens(), 1, "one directory open for all of them");
        // Made anew (another inode at the same path): opened again, its files found.
        std::fs::rename(&dir, t.path("old")).unwrap();
        t.write("state/a/h", "3");
        assert_eq!(read(&mut kept, "a/h").as_deref(), Some("3"));
        assert_eq!(
            read(&mut kept, "a/f"),
            None,
            "the old directory's file is gone"
        );
        assert_eq!(kept.opens(), 2);
        // Something mounted over the path is seen the same way (here: a symlink put in its place).
        std::fs::rename(&dir, t.path("older")).unwrap();
        std::os::unix::fs::symlink(t.path("old"), &dir).unwrap();
        assert_eq!(read(&mut kept, "a/f").as_deref(), Some("1"));
        // Symlinks below the directory are still refused.
        std::os::unix::fs::symlink(t.path("older/a"), t.path("old/b")).unwrap();
        assert_eq!(read(&mut kept, "b/h"), None);
        assert_eq!(read(&mut kept, "../older/a/h"), None);
        // A miss taken as it is says what the kept directory holds, even when the path leads
        // elsewhere now: for a lookup that just found another file there.
        let opens = kept.opens();
        std::fs::remove_file(&dir).unwrap();
        t.write("state/a/i", "4");
        assert_eq!(read_or(&mut kept, "a/i", Miss::Taken), None);
        assert_eq!(read(&mut kept, "a/i").as_deref(), Some("4"));
        assert_eq!(kept.opens(), opens + 1);
    }

    #[test]
    fn capped_reads_take_what_the_file_holds_now() {
        let t = TempTree::new("fsread-capped");
        t.write("c/f", "abc");
        let (mut f, key) = open_beneath(&t.path("c"), Path::new("f")).unwrap();
        // Grown since its size was taken: all of it is read.
        t.write("c/f", "abcdefgh");
        assert_eq!(read_capped(&mut f, key.size(), 100).unwrap(), b"abcdefgh");
        let (mut f, key) = open_beneath(&t.path("c"), Path::new("f")).unwrap();
        assert_eq!(read_capped(&mut f, key.size(), 8).unwrap(), b"abcdefgh");
        let (mut f, key) = open_beneath(&t.path("c"), Path::new("f")).unwrap();
        assert_eq!(
            read_capped(&mut f, key.size(), 7),
            None,
            "larger than the cap"
        );
        let (mut f, _) = open_beneath(&t.path("c"), Path::new("f")).unwrap();
        t.write("c/f", "abcdefghijk");
        assert_eq!(read_capped(&mut f, 3, 10), None, "grew past the cap");
        t.write("c/empty", "");
        let (mut f, key) = open_beneath(&t.path("c"), Path::new("empty")).unwrap();
        assert_eq!(read_capped(&mut f, key.size(), 10).unwrap(), b"");
    }

    #[test]
    fn prefix_reads_truncate() {
        let t = TempTree::new("fsread-prefix");
        t.write("p/f", "abcdef");
        let (mut f, _) = open_beneath(&t.path("p"), Path::new("f")).unwrap();
        assert_eq!(read_prefix(&mut f, 3).unwrap(), b"abc");
        let big: String = (0..10_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        t.write("p/big", &big);
        for (max, want) in [
            (20_000, 10_000),
            (10_000, 10_000),
            (5_000, 5_000),
            (4_096, 4_096),
        ] {
            let (mut f, _) = open_beneath(&t.path("p"), Path::new("big")).unwrap();
            assert_eq!(
                read_prefix(&mut f, max).unwrap(),
                big.as_bytes()[..want],
                "max {max}"
            );
        }
        let stat = std::fs::File::open("/proc/self/stat").unwrap();
        let got = read_prefix(&mut { stat }, 4096).unwrap();
        assert!(got.ends_with(b"\n"), "a /proc file whole in one read");
    }
}
