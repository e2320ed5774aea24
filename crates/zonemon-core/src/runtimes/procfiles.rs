//! Open handles on the `/proc/<pid>` files the resolvers read, kept between lookups.
//!
//! Opening `/proc/<pid>/stat` costs an `openat`, a `read` and a `close`; the
//! processes above a zone's init (the shell or daemon that starts zones) are
//! mostly the same from one zone to the next. [`ProcFiles`] keeps the files
//! it opened and reads them again with one `pread` each: what is read is
//! always current (the kernel makes the content at each read, after an exec
//! too). A handle stays bound to the process it was opened for: once that
//! process is gone, reads through it fail (`ESRCH`) even if its PID was
//! given to another, so a failed read is answered by opening the path again,
//! exactly as a fresh open would have been. At most [`CAPACITY`] files are
//! kept; the least recently used is closed first.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::fsread;

/// Most files kept open.
pub const CAPACITY: usize = 64;

/// Handles on `/proc/<pid>/<file>`, read again with one `pread` each.
#[derive(Debug, Default)]
pub struct ProcFiles {
    /// (pid, file name, handle, last use).
    open: Vec<(u32, &'static str, File, u64)>,
    /// Counts uses, for the least recently used.
    clock: u64,
    /// Files opened (for tests).
    opens: u64,
}

impl ProcFiles {
    /// No file open yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `max` bytes of `/proc/<pid>/<file>` below `proc_root` (`None`
    /// when the process or the file does not exist), through a kept handle
    /// when there is one.
    pub fn read(
        &mut self,
        proc_root: &Path,
        pid: u32,
        file: &'static str,
        max: usize,
    ) -> Option<Vec<u8>> {
        if pid == 0 {
            return None;
        }
        self.clock += 1;
        let now = self.clock;
        if let Some(i) = self
            .open
            .iter()
            .position(|(p, f, ..)| *p == pid && *f == file)
        {
            if let Some(b) = pread_prefix(&self.open[i].2, max) {
                self.open[i].3 = now;
                return Some(b);
            }
            // The process it was opened for is gone: the PID may be another's now.
            self.open.swap_remove(i);
        }
        let mut f = fsread::open_proc(&proc_root.join(format!("{pid}/{file}")))?;
        self.opens += 1;
        let b = fsread::read_prefix(&mut f, max)?;
        if self.open.len() >= CAPACITY {
            if let Some(oldest) = (0..self.open.len()).min_by_key(|&i| self.open[i].3) {
                self.open.swap_remove(oldest);
            }
        }
        self.open.push((pid, file, f, now));
        Some(b)
    }

    /// How many files were opened (the other reads went through kept handles).
    pub fn opens(&self) -> u64 {
        self.opens
    }

    /// How many files are kept open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no file is kept open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// At most `max` bytes from the start of `f`, read with `pread` (see
/// [`fsread::read_prefix`]: a short read is the end). `None` on error.
fn pread_prefix(f: &File, max: usize) -> Option<Vec<u8>> {
    fsread::read_prefix_with(max, |buf, offset| f.read_at(buf, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn rereads_current_content_through_kept_handles() {
        let t = crate::runtimes::testutil::TempTree::new("procfiles");
        t.write("proc/7/cmdline", "a\0b\0");
        let mut p = ProcFiles::new();
        let root = t.path("proc");
        assert_eq!(p.read(&root, 7, "cmdline", 100).unwrap(), b"a\0b\0");
        // Written in place (as the kernel makes it anew at each read): the kept handle sees it.
        std::fs::write(t.path("proc/7/cmdline"), "c\0").unwrap();
        assert_eq!(p.read(&root, 7, "cmdline", 100).unwrap(), b"c\0");
        assert_eq!(p.read(&root, 7, "cmdline", 1).unwrap(), b"c", "bounded");
        assert_eq!(p.opens(), 1);
        assert!(p.read(&root, 8, "cmdline", 100).is_none());
        assert!(p.read(&root, 0, "cmdline", 100).is_none());
    }

    #[test]
    fn keeps_at_most_capacity_files() {
        let t = crate::runtimes::testutil::TempTree::new("procfiles-cap");
        let root = t.path("proc");
        let mut p = ProcFiles::new();
        for pid in 1..=(CAPACITY as u32 + 10) {
            t.write(&format!("proc/{pid}/stat"), pid.to_string());
            assert_eq!(
                p.read(&root, pid, "stat", 64).unwrap(),
                pid.to_string().as_bytes()
            );
            // The first stays in use: never the least recently used.
            assert_eq!(p.read(&root, 1, "stat", 64).unwrap(), b"1");
        }
        assert_eq!(p.len(), CAPACITY);
        assert_eq!(p.opens(), CAPACITY as u64 + 10);
    }

    /// A real process: its handle follows it, and once it is gone (its PID
    /// free for anyone) the path is opened again.
    #[test]
    fn a_handle_on_a_gone_process_is_not_read() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep");
        let pid = child.id();
        let proc_root = Path::new("/proc");
        let mut p = ProcFiles::new();
        let stat = p.read(proc_root, pid, "stat", 4096).expect("stat");
        assert!(String::from_utf8_lossy(&stat).starts_with(&format!("{pid} (sleep) ")));
        let again = p.read(proc_root, pid, "stat", 4096).expect("stat again");
        assert!(String::from_utf8_lossy(&again).starts_with(&format!("{pid} (sleep) ")));
        assert_eq!(p.opens(), 1, "read again through the kept handle");
        child.kill().unwrap();
        child.wait().unwrap();
        // Gone and reaped: the kept handle fails, the path is tried again and is not there.
        assert!(p.read(proc_root, pid, "stat", 4096).is_none());
        assert_eq!(p.len(), 0);
    }
}
