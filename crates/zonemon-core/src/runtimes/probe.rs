//! What a runtime resolver looks at for one event: the [`Probe`] of a zone.
//!
//! Each part (the init's `/proc` entry, its cgroup paths, the processes
//! above it) is read at most once per event and only when a resolver asks.

use std::cell::{OnceCell, RefCell};
use std::path::{Path, PathBuf};

use super::comms::{comm_matches, CommFilter};
use super::procfiles::ProcFiles;
use super::{fsread, procfs};
use crate::lineage::{Forebear, LINEAGE_LEN};
use crate::naming::ZoneFacts;

/// How many generations of the init's ancestors are looked at (parent,
/// grandparent, great-grandparent): enough to see a shim or conmon above
/// the `runc create` that forks the init.
pub const MAX_ANCESTOR_DEPTH: usize = 3;

// The kernel's lineage lists the same processes: the creator and these generations.
const _: () = assert!(LINEAGE_LEN == MAX_ANCESTOR_DEPTH + 1);

/// A process above the zone's init: its host PID and command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ancestor {
    /// Host PID.
    pub pid: u32,
    /// Its arguments (lossy UTF-8, bounded).
    pub args: Vec<String>,
}

/// What the resolvers look at for one event, each part read at most once and only when asked.
///
/// `/proc/<init>` is used only while it still is the zone's init: while
/// `/proc/<init>/ns/pid` is the zone's PID namespace. After the init is
/// gone its PID may belong to anyone, but never to a process of that
/// namespace (when a namespace's init dies, no process can enter it).
pub struct Probe<'a> {
    root: &'a Path,
    facts: ZoneFacts<'a>,
    /// Handles kept between lookups, when the caller keeps them.
    files: Option<&'a RefCell<ProcFiles>>,
    /// Whose command lines are worth reading, among the processes the kernel listed.
    comms: Option<&'a CommFilter>,
    /// (init still there, parent PID, start ticks).
    init: OnceCell<InitInfo>,
    cgroups: OnceCell<Vec<String>>,
    ancestors: OnceCell<Vec<Ancestor>>,
    /// The command line of each process of the kernel's lineage, read at most once, when asked.
    forebears: [OnceCell<Option<Ancestor>>; LINEAGE_LEN],
    /// The working directory of each process above the init (of the kernel's lineage, else
    /// of [`Probe::ancestors`]), by its place there, read at most once, when asked.
    cwds: [OnceCell<Option<PathBuf>>; LINEAGE_LEN],
}

#[derive(Debug, Clone, Copy, Default)]
struct InitInfo {
    alive: bool,
    ppid: Option<u32>,
    start_ticks: Option<u64>,
}

impl<'a> Probe<'a> {
    /// A probe of the zone `facts` describes, reading below `root`.
    pub fn new(root: &'a Path, facts: ZoneFacts<'a>) -> Self {
        Probe {
            root,
            facts,
            files: None,
            comms: None,
            init: OnceCell::new(),
            cgroups: OnceCell::new(),
            ancestors: OnceCell::new(),
            forebears: Default::default(),
            cwds: Default::default(),
        }
    }

    /// A probe that reads `/proc` through `files`, whose handles are kept between lookups.
    pub fn with_files(root: &'a Path, facts: ZoneFacts<'a>, files: &'a RefCell<ProcFiles>) -> Self {
        Probe {
            files: Some(files),
            ..Self::new(root, facts)
        }
    }

    /// The same probe, reading the command line of a process the kernel
    /// listed above the init ([`ZoneFacts::lineage`]) only when `comms` wants
    /// its command name.
    pub fn reading_only(self, comms: &'a CommFilter) -> Self {
        Probe {
            comms: Some(comms),
            ..self
        }
    }

    /// The facts the tracker gave.
    pub fn facts(&self) -> &ZoneFacts<'a> {
        &self.facts
    }

    /// `rel` (e.g. `run/runc`) below the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The root every path is read below.
    pub fn root(&self) -> &Path {
        self.root
    }

    /// Reads at most `max` bytes of `/proc/<pid>/<file>`.
    pub fn read_proc(&self, pid: u32, file: &str, max: usize) -> Option<Vec<u8>> {
        if pid == 0 {
            return None;
        }
        if let (Some(files), Some(file)) = (self.files, kept_file(file)) {
            return files.borrow_mut().read(&self.path("proc"), pid, file, max);
        }
        let mut f = fsread::open_proc(&self.path(&format!("proc/{pid}/{file}")))?;
        fsread::read_prefix(&mut f, max)
    }

    fn init(&self) -> InitInfo {
        *self.init.get_or_init(|| {
            let pid = self.facts.init_pid;
            if pid == 0 || self.facts.pidns == 0 || self.facts.init_gone {
                return InitInfo::default(); // found gone for this event: not looked for again
            }
            // With the init's start time known, its stat says whether the PID still is the
            // init's (as `pipeline::enrich` checks it); else its PID namespace does.
            let start_ns = self.facts.start_ns;
            if start_ns != 0 && self.facts.init_ppid != 0 {
                // Read for this event, with the start time checked: not read again.
                return InitInfo {
                    alive: true,
                    ppid: Some(self.facts.init_ppid),
                    start_ticks: Some(start_ns / crate::procscan::ns_per_clock_tick()),
                };
            }
            if start_ns == 0 {
                let link = std::fs::read_link(self.path("proc").join(format!("{pid}/ns/pid")));
                let same_ns = link
                    .is_ok_and(|l| l.to_string_lossy() == format!("pid:[{}]", self.facts.pidns));
                if !same_ns {
                    return InitInfo::default();
                }
            }
            let stat = self.read_proc(pid, "stat", procfs::MAX_STAT);
            let stat = stat
                .as_deref()
                .and_then(|s| procfs::parse_stat(&String::from_utf8_lossy(s)))
                .filter(|&(_, ticks)| start_ns == 0 || started_at(ticks, start_ns));
            InitInfo {
                alive: stat.is_some(),
                ppid: stat.map(|s| s.0),
                start_ticks: stat.map(|s| s.1),
            }
        })
    }

    /// Whether `/proc/<init_pid>` still is the zone's init.
    pub fn init_alive(&self) -> bool {
        self.init().alive
    }

    /// Whether the zone is nested in another zone (its PID namespace is
    /// more than one level below the host's).
    pub fn nested(&self) -> bool {
        self.facts.level > 1
    }

    /// The init's start time in clock ticks since boot (as runc and crun record it), when known.
    pub fn init_start_ticks(&self) -> Option<u64> {
        self.init().start_ticks
    }

    /// The init's cgroup paths: the tracker's first, then each hierarchy's,
    /// as read for this event or else from `/proc/<init>/cgroup`.
    pub fn cgroups(&self) -> &[String] {
        self.cgroups.get_or_init(|| {
            let mut out: Vec<String> = Vec::new();
            let mut add = |p: &str| {
                if p.len() <= procfs::MAX_CGROUP_PATH && !out.iter().any(|o| o == p) {
                    out.push(p.to_string());
                }
            };
            if let Some(c) = self.facts.cgroup {
                add(c);
            }
            if let Some(more) = self.facts.more_cgroups {
                more.iter().for_each(|p| add(p));
            } else if self.init_alive() {
                let content = self.read_proc(self.facts.init_pid, "cgroup", 64 * 1024);
                if let Some(c) = content {
                    for p in procfs::parse_cgroup_paths(&String::from_utf8_lossy(&c)) {
                        add(&p);
                    }
                }
            }
            out
        })
    }

    /// The processes above the init: its creator, then its parent and up
    /// to [`MAX_ANCESTOR_DEPTH`] generations (host PID 1 excluded), each once.
    /// Empty when the init is gone. When the kernel listed them
    /// ([`ZoneFacts::lineage`]), no `stat` is read to find them, and the
    /// command lines only of those whose command name the probe's
    /// [`CommFilter`] wants (the others are left out, as if gone).
    pub fn ancestors(&self) -> &[Ancestor] {
        self.ancestors.get_or_init(|| {
            let mut out: Vec<Ancestor> = Vec::new();
            let info = self.init();
            if !info.alive {
                return out;
            }
            if let Some(lineage) = &self.facts.lineage {
                return lineage
                    .above(self.facts.init_pid)
                    .filter(|(_, f)| self.comms.is_none_or(|c| c.wants(f.comm())))
                    .filter_map(|(i, f)| self.forebear(i, f.pid).cloned())
                    .collect();
            }
            let push = |pid: u32, out: &mut Vec<Ancestor>| {
                if pid > 1 && pid != self.facts.init_pid && !out.iter().any(|a| a.pid == pid) {
                    out.extend(self.ancestor(pid));
                }
            };
            push(self.facts.creator_pid, &mut out);
            let mut pid = info.ppid.unwrap_or(0);
            for depth in 0..MAX_ANCESTOR_DEPTH {
                if pid <= 1 {
                    break;
                }
                push(pid, &mut out);
                if depth + 1 == MAX_ANCESTOR_DEPTH {
                    break;
                }
                pid = self
                    .read_proc(pid, "stat", procfs::MAX_STAT)
                    .and_then(|s| procfs::parse_stat(&String::from_utf8_lossy(&s)))
                    .map_or(0, |s| s.0);
            }
            out
        })
    }

    /// The ancestors that may be one of `progs` (argv\[0\]'s basename; an
    /// entry ending in `*` matches a prefix), in [`Probe::ancestors`]' order:
    /// when the kernel listed the processes above the init
    /// ([`ZoneFacts::lineage`]), those whose command name is one of `progs`
    /// (the others' command lines are not read: the evidence of one runtime
    /// costs nothing to the others); else all of them. Callers still test
    /// what the command line says. A command line is read only when the
    /// iterator reaches its process: a caller that stops at the first match
    /// reads no further (nspawn's two processes are both above its inits).
    pub fn ancestors_like<'s, 'p>(
        &'s self,
        progs: &'p [&'p str],
    ) -> impl Iterator<Item = &'s Ancestor> + use<'s, 'p, 'a> {
        let listed = self.listed_like(progs);
        let all = listed.is_none().then(|| self.ancestors().iter());
        let listed = listed
            .into_iter()
            .flatten()
            .filter_map(|(i, f)| self.forebear(i, f.pid));
        listed.chain(all.into_iter().flatten())
    }

    /// When the kernel listed the processes above the init
    /// ([`ZoneFacts::lineage`]), those whose command name is one of `progs`,
    /// with their places in the list (none once the init is gone); `None`
    /// when it did not list them.
    fn listed_like<'s, 'p>(
        &'s self,
        progs: &'p [&'p str],
    ) -> Option<impl Iterator<Item = (usize, &'s Forebear)> + use<'s, 'p, 'a>> {
        let lineage = self.facts.lineage.as_ref()?;
        let alive = self.init_alive();
        Some(
            lineage
                .above(self.facts.init_pid)
                .filter(move |(_, f)| alive && progs.iter().any(|p| comm_matches(p, f.comm()))),
        )
    }

    /// Whether the kernel's lineage lists, above the init, a process whose
    /// command name is one of `progs` (as [`Probe::ancestors_like`] matches
    /// them), no file read; `None` when the kernel did not list them.
    pub fn lists_one_of(&self, progs: &[&str]) -> Option<bool> {
        Some(self.listed_like(progs)?.next().is_some())
    }

    /// The working directories of the processes above the init that are one
    /// of `progs`, each read at most once per probe. When the kernel listed
    /// the processes, chosen by their command names alone, as
    /// [`Probe::ancestors_like`] chooses them, and no command line is read (a process's
    /// command line is read through its memory, under its memory map's lock,
    /// which a process still starting up may hold; its working directory is
    /// not); else by the program their command line runs ([`Probe::ancestors`]).
    /// Processes that are gone are left out.
    pub fn working_dirs_like(&self, progs: &[&str]) -> Vec<&Path> {
        let cwd = |i: usize, pid: u32| {
            self.cwds
                .get(i)?
                .get_or_init(|| std::fs::read_link(self.path(&format!("proc/{pid}/cwd"))).ok())
                .as_deref()
        };
        match self.listed_like(progs) {
            Some(listed) => listed.filter_map(|(i, f)| cwd(i, f.pid)).collect(),
            None => self
                .ancestors()
                .iter()
                .enumerate()
                .filter(|(_, a)| procfs::program_is_one_of(&a.args, progs))
                .filter_map(|(i, a)| cwd(i, a.pid))
                .collect(),
        }
    }

    /// Process `i` of the kernel's lineage, `pid`, with its command line (read once), unless it is gone.
    /// The creator's (`i` 0) is the one the kernel copied at the fork when it did: none is read.
    fn forebear(&self, i: usize, pid: u32) -> Option<&Ancestor> {
        self.forebears[i]
            .get_or_init(|| {
                let copied = self.facts.lineage.as_ref().and_then(|l| l.creator_cmdline);
                match copied {
                    Some(cmdline) if i == 0 => Some(Ancestor {
                        pid,
                        args: procfs::parse_cmdline(cmdline.bytes()),
                    }),
                    _ => self.ancestor(pid),
                }
            })
            .as_ref()
    }

    /// Process `pid` with its command line, unless it is gone.
    fn ancestor(&self, pid: u32) -> Option<Ancestor> {
        let b = self.read_proc(pid, "cmdline", procfs::MAX_CMDLINE)?;
        Some(Ancestor {
            pid,
            args: procfs::parse_cmdline(&b),
        })
    }

    /// Whether some ancestor is one of `progs` (argv\[0\]'s basename; an
    /// entry ending in `*` matches a prefix) or some cgroup path contains one
    /// of `cgroup_words`: the cheap signs of a runtime, for
    /// [`super::resolver::RuntimeResolver::could_claim_later`].
    pub fn shows_signs_of(&self, progs: &[&str], cgroup_words: &[&str]) -> bool {
        self.ancestors_like(progs)
            .any(|a| procfs::program_is_one_of(&a.args, progs))
            || self
                .cgroups()
                .iter()
                .any(|c| cgroup_words.iter().any(|w| c.contains(w)))
    }

    /// The nearest ancestor whose program (argv\[0\]'s basename) is `prog`.
    pub fn ancestor_named(&self, prog: &str) -> Option<&Ancestor> {
        self.ancestors_like(std::slice::from_ref(&prog))
            .find(|a| procfs::program(&a.args) == prog)
    }
}

/// The `/proc/<pid>` files whose handles are worth keeping: the ones read of every ancestor.
fn kept_file(file: &str) -> Option<&'static str> {
    match file {
        "stat" => Some("stat"),
        "cmdline" => Some("cmdline"),
        _ => None,
    }
}

/// Whether a process that started `ticks` clock ticks after boot is the one
/// that started at `start_ns` (CLOCK_BOOTTIME ns), within
/// [`crate::tracker::SEED_START_TOLERANCE_NS`] (a PID is not reused that fast).
fn started_at(ticks: u64, start_ns: u64) -> bool {
    ticks
        .saturating_mul(crate::procscan::ns_per_clock_tick())
        .abs_diff(start_ns)
        <= crate::tracker::SEED_START_TOLERANCE_NS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::{Cmdline, Lineage};
    use crate::runtimes::testutil::{facts, TempTree};

    #[test]
    fn probe_reads_proc_once_and_checks_the_init() {
        let t = TempTree::new("probe");
        t.proc(
            100,
            50,
            777,
            &[100, 1],
            &["sleep", "1000"],
            "0::/aap\n4:memory:/m/aap\n",
        );
        t.proc(50, 40, 1, &[50], &["runc", "run", "-d", "aap"], "0::/\n");
        t.proc(40, 1, 1, &[40], &["bash"], "0::/\n");
        t.proc(60, 50, 1, &[60], &["runc", "init"], "0::/\n");
        let f = facts(100, 60, Some("/aap"));
        let p = Probe::new(t.root(), f);
        assert!(p.init_alive());
        assert!(!p.nested());
        assert_eq!(p.init_start_ticks(), Some(777));
        assert_eq!(p.cgroups(), ["/aap", "/m/aap"]);
        let pids: Vec<u32> = p.ancestors().iter().map(|a| a.pid).collect();
        assert_eq!(pids, [60, 50, 40]);
        assert_eq!(p.ancestor_named("runc").unwrap().pid, 60);

        // The event read the cgroup file already: the probe does not read it again.
        let given = ["/given".to_string()];
        let p = Probe::new(
            t.root(),
            ZoneFacts {
                more_cgroups: Some(&given),
                ..f
            },
        );
        assert_eq!(p.cgroups(), ["/aap", "/given"]);

        // Another namespace now owns PID 100: /proc/100 is not the zone's init any more.
        let mut other = f;
        other.pidns = 4026532999;
        let p = Probe::new(t.root(), other);
        assert!(!p.init_alive());
        assert_eq!(p.cgroups(), ["/aap"], "only what the tracker saw");
        assert!(p.ancestors().is_empty());
    }

    #[test]
    fn with_a_start_time_the_init_is_told_by_it() {
        let t = TempTree::new("probe-start");
        t.proc(100, 50, 3000, &[100, 1], &["sleep", "1000"], "0::/aap\n");
        t.proc(50, 1, 1, &[50], &["runc", "run", "aap"], "0::/\n");
        let tick = crate::procscan::ns_per_clock_tick();
        let f = ZoneFacts {
            start_ns: 3000 * tick + 3_000_000,
            ..facts(100, 50, Some("/aap"))
        };
        // No PID namespace link is read: the start time says it is the init.
        std::fs::remove_file(t.path("proc/100/ns/pid")).unwrap();
        let files = RefCell::new(ProcFiles::new());
        let p = Probe::with_files(t.root(), f, &files);
        assert!(p.init_alive());
        assert_eq!(p.ancestor_named("runc").unwrap().pid, 50);
        // A process that started 20 s later has PID 100 now: not the init.
        let later = ZoneFacts {
            start_ns: 3000 * tick - 20_000_000_000,
            ..f
        };
        let p = Probe::with_files(t.root(), later, &files);
        assert!(!p.init_alive());
        assert!(p.ancestors().is_empty());
        assert_eq!(
            files.borrow().opens(),
            3,
            "the init's stat, runc's cmdline and stat: each opened once"
        );
        // The init's parent read for this event (with its start time checked): its stat is not read.
        let told = ZoneFacts { init_ppid: 50, ..f };
        let files = RefCell::new(ProcFiles::new());
        let p = Probe::with_files(t.root(), told, &files);
        assert!(p.init_alive());
        assert_eq!(p.init_start_ticks(), Some(3000));
        assert_eq!(p.ancestor_named("runc").unwrap().pid, 50);
        assert_eq!(files.borrow().opens(), 2, "runc's cmdline and stat only");
        // The init found gone for this event: nothing of it, nor above it, is read.
        let gone = ZoneFacts {
            init_gone: true,
            ..f
        };
        let files = RefCell::new(ProcFiles::new());
        let p = Probe::with_files(t.root(), gone, &files);
        assert!(!p.init_alive());
        assert!(p.ancestors().is_empty() && p.cgroups() == ["/aap"]);
        assert_eq!(files.borrow().opens(), 0);
    }

    #[test]
    fn the_nearest_process_of_a_program_is_read_and_no_further() {
        let t = TempTree::new("probe-nearest");
        let nspawn = ["systemd-nspawn", "-M", "aap", "-D", "/r"];
        t.proc(100, 60, 3000, &[100, 1], &["sh"], "0::/aap\n");
        t.proc(60, 50, 2990, &[60], &nspawn, "0::/\n");
        t.proc(50, 40, 2980, &[50], &nspawn, "0::/\n");
        let tick = crate::procscan::ns_per_clock_tick();
        let lineage = Lineage::new([
            Forebear::new(60, b"systemd-nspawn"),
            Forebear::new(60, b"systemd-nspawn"),
            Forebear::new(50, b"systemd-nspawn"),
            Forebear::new(40, b"bash"),
        ]);
        let f = ZoneFacts {
            start_ns: 3000 * tick,
            init_ppid: 60,
            lineage: Some(lineage),
            ..facts(100, 60, Some("/aap"))
        };
        let files = RefCell::new(ProcFiles::new());
        let p = Probe::with_files(t.root(), f, &files);
        assert_eq!(p.ancestor_named("systemd-nspawn").unwrap().pid, 60);
        assert_eq!(
            files.borrow().opens(),
            1,
            "the creator's command line only: nspawn's outer process above it is not read"
        );
        // Asked for all of them, both are read, each once.
        assert_eq!(p.ancestors_like(&["systemd-nspawn"]).count(), 2);
        assert_eq!(p.ancestor_named("systemd-nspawn").unwrap().pid, 60);
        assert_eq!(files.borrow().opens(), 2);

        // The kernel copied the creator's command line at the fork: it is not read, and
        // it is the command line of then (the process may have changed it since).
        let copied = Cmdline::new(b"systemd-nspawn\0-M\0noot\0-D\0/r\0").unwrap();
        let f = ZoneFacts {
            lineage: Some(Lineage {
                creator_cmdline: Some(copied),
                ..lineage
            }),
            ..f
        };
        let files = RefCell::new(ProcFiles::new());
        let p = Probe::with_files(t.root(), f, &files);
        let a = p.ancestor_named("systemd-nspawn").unwrap();
        assert_eq!((a.pid, a.args[2].as_str()), (60, "noot"));
        assert_eq!(files.borrow().opens(), 0, "no command line read");
        // The others' are read as before.
        let outer: Vec<u32> = p
            .ancestors_like(&["systemd-nspawn"])
            .map(|a| a.pid)
            .collect();
        assert_eq!(outer, [60, 50]);
        assert_eq!(files.borrow().opens(), 1);
    }
}
