//! Test helpers: fixture trees in a temporary directory, and pseudo-random hostile inputs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::naming::ZoneFacts;

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempTree {
    root: PathBuf,
}

impl TempTree {
    /// A new, empty, uniquely named tree.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let root = std::env::temp_dir().join(format!(
            "zonemon-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&root).expect("create temp tree");
        TempTree { root }
    }

    /// The tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` inside the tree.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `content` to `rel`, creating its directories.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }

    /// Creates directory `rel` and its parents.
    pub fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.path(rel)).expect("mkdir");
    }

    /// Writes a fake `/proc/<pid>` for a process: its `stat` (parent `ppid`,
    /// start time `start`), `status` (`NSpid` from `nspid`), `cmdline`
    /// (arguments joined by NULs) and `cgroup` (as given).
    pub fn proc(
        &self,
        pid: u32,
        ppid: u32,
        start: u64,
        nspid: &[u32],
        argv: &[&str],
        cgroup: &str,
    ) {
        let comm = argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .unwrap_or("x");
        let comm: String = comm.chars().take(15).collect();
        let mut stat = format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560");
        for _ in 10..=21 {
            stat.push_str(" 0");
        }
        stat.push_str(&format!(" {start} 0 0\n"));
        self.write(&format!("proc/{pid}/stat"), stat);
        let nspid_text: Vec<String> = nspid.iter().map(u32::to_string).collect();
        self.write(
            &format!("proc/{pid}/status"),
            format!(
                "Name:\t{comm}\nPid:\t{pid}\nPPid:\t{ppid}\nNSpid:\t{}\n",
                nspid_text.join("\t")
            ),
        );
        let mut cmd = argv.join("\0");
        cmd.push('\0');
        self.write(&format!("proc/{pid}/cmdline"), cmd);
        self.write(&format!("proc/{pid}/cgroup"), cgroup);
        if nspid.len() > 1 && nspid.last() == Some(&1) {
            let link = self.path(&format!("proc/{pid}/ns/pid"));
            std::fs::create_dir_all(link.parent().expect("has parent")).expect("mkdir");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("pid:[{PIDNS}]"), link).expect("symlink");
        }
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The PID namespace inode of the zones in fixtures.
pub const PIDNS: u32 = 4026532000;

/// The facts of a zone whose init is `init_pid`, created by `creator_pid`, in cgroup `cgroup`.
pub fn facts(init_pid: u32, creator_pid: u32, cgroup: Option<&str>) -> ZoneFacts<'_> {
    ZoneFacts {
        init_pid,
        creator_pid,
        pidns: PIDNS,
        level: 1,
        hostname: None,
        cgroup,
        more_cgroups: None,
        comm: "sh",
    }
}

/// A tiny xorshift64* generator: deterministic pseudo-random inputs without a crate.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    /// The next 64 pseudo-random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A mutation of `seed`: bytes flipped, cut, duplicated, spliced with
    /// JSON punctuation, control characters or invalid UTF-8.
    pub fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        const SPICE: &[&[u8]] = &[
            b"\"",
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b",",
            b"\\",
            b"\\u0000",
            b"\0",
            b"\n",
            b"\xff\xfe",
            b"/",
            b"..",
            b"-1",
            b"99999999999999999999",
            b"null",
            b"\x1b[31m",
            b"\xe2\x80\xae",
        ];
        let mut v = seed.to_vec();
        for _ in 0..=self.below(6) {
            let at = if v.is_empty() {
                0
            } else {
                self.below(v.len() + 1)
            };
            match self.below(6) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 => v.truncate(at),
                2 => {
                    let s = SPICE[self.below(SPICE.len())];
                    v.splice(at..at, s.iter().copied());
                }
                3 if !v.is_empty() => {
                    let end = (at + self.below(64)).min(v.len());
                    let dup: Vec<u8> = v[at.min(end)..end].to_vec();
                    v.splice(at..at, dup);
                }
                4 => {
                    let end = (at + self.below(16)).min(v.len());
                    v.drain(at..end);
                }
                _ => {
                    let b = self.next() as u8;
                    v.insert(at, b);
                }
            }
        }
        v
    }

    /// Random bytes of random length below `max`.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max.max(1));
        (0..n).map(|_| self.next() as u8).collect()
    }
}
