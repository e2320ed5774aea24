//! Test helpers: fixture trees in a temporary directory, and proptest
//! strategies for hostile inputs (mutations of real files).

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::collection;
use proptest::prelude::*;
use proptest::sample::{self, Index};

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

    /// Makes fake process `pid`'s working directory `/proc/<pid>/cwd` a link to `host_path`.
    pub fn cwd(&self, pid: u32, host_path: &str) {
        let link = self.path(&format!("proc/{pid}/cwd"));
        std::fs::create_dir_all(link.parent().expect("has parent")).expect("mkdir");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(host_path, link).expect("symlink");
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
        start_ns: 0,
        init_ppid: 0,
        init_gone: false,
        creator_pid,
        pidns: PIDNS,
        level: 1,
        hostname: None,
        cgroup,
        more_cgroups: None,
        comm: "sh",
        lineage: None,
    }
}

/// Whether `cond` holds within 5 s (asked as [`zonemon_testkit::within`] asks): for what a
/// thread does in the background.
pub fn within_5s(cond: impl FnMut() -> bool) -> bool {
    zonemon_testkit::within(std::time::Duration::from_secs(5), cond)
}

/// How many cases a mutation property runs: enough to reach the odd corners of
/// a parser, few enough that the unit suite stays fast.
pub const CASES: u32 = 4_000;

/// What mutations splice into an input: JSON punctuation, escapes, control
/// characters, invalid UTF-8, path tricks, odd numbers, an ANSI escape and a
/// right-to-left override. A long run of one of them makes deep nesting, huge
/// numbers and long strings.
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

/// One edit of a byte string. Positions are [`Index`]es, resolved against the
/// length the string has when the edit is applied, so any list of edits fits
/// any input and shrinks towards the front of it.
#[derive(Clone, Debug)]
enum Edit {
    /// Flip one bit (`0..8`) of a byte.
    FlipBit(Index, u8),
    /// Replace a byte.
    Replace(Index, u8),
    /// Insert a byte.
    Insert(Index, u8),
    /// Cut everything from a position on.
    Truncate(Index),
    /// Remove up to this many bytes from a position.
    Cut(Index, usize),
    /// Repeat up to this many bytes from a position, in place.
    Duplicate(Index, usize),
    /// Insert this many copies of a piece of [`SPICE`] (one, or a long run).
    Splice(Index, &'static [u8], usize),
}

impl Edit {
    /// Applies the edit to `v`; an edit of a byte in an empty string does nothing.
    fn apply(&self, v: &mut Vec<u8>) {
        let gap = |at: &Index, v: &Vec<u8>| at.index(v.len() + 1);
        match self {
            Edit::FlipBit(at, bit) if !v.is_empty() => {
                let i = at.index(v.len());
                v[i] ^= 1 << bit;
            }
            Edit::Replace(at, b) if !v.is_empty() => {
                let i = at.index(v.len());
                v[i] = *b;
            }
            Edit::FlipBit(..) | Edit::Replace(..) => {}
            Edit::Insert(at, b) => v.insert(gap(at, v), *b),
            Edit::Truncate(at) => v.truncate(gap(at, v)),
            Edit::Cut(at, n) => {
                let at = gap(at, v);
                v.drain(at..(at + n).min(v.len()));
            }
            Edit::Duplicate(at, n) => {
                let at = gap(at, v);
                let dup = v[at..(at + n).min(v.len())].to_vec();
                v.splice(at..at, dup);
            }
            Edit::Splice(at, piece, n) => {
                let at = gap(at, v);
                v.splice(at..at, piece.repeat(*n));
            }
        }
    }
}

/// Any one [`Edit`], each kind about as likely as another.
fn edit() -> impl Strategy<Value = Edit> {
    let spice = || sample::select(SPICE);
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Edit::FlipBit(at, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), 0..16usize).prop_map(|(at, n)| Edit::Cut(at, n)),
        (any::<Index>(), 0..64usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        (any::<Index>(), spice()).prop_map(|(at, s)| Edit::Splice(at, s, 1)),
        (any::<Index>(), spice(), 2..512usize).prop_map(|(at, s, n)| Edit::Splice(at, s, n)),
    ]
}

/// A byte string that prints as an escaped byte-string literal, so that a
/// shrunk failing input is readable.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Mutations of `seed`: one to six [`Edit`]s — bytes flipped, replaced or
/// inserted, the end cut off, ranges cut or duplicated, JSON punctuation,
/// control characters or invalid UTF-8 spliced in, alone or in long runs.
pub fn mutated(seed: impl AsRef<[u8]>) -> impl Strategy<Value = Bytes> {
    mutated_any(&[seed])
}

/// Mutations (as [`mutated`]) of any one of `seeds` (not empty).
pub fn mutated_any<S: AsRef<[u8]>>(seeds: &[S]) -> impl Strategy<Value = Bytes> {
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_ref().to_vec()).collect();
    (sample::select(seeds), collection::vec(edit(), 1..=6)).prop_map(|(mut v, edits)| {
        for e in &edits {
            e.apply(&mut v);
        }
        Bytes(v)
    })
}
