//! Finding the zones running now from `/proc`, without BPF.
//!
//! A zone's init is a process that is PID 1 of a PID namespace other than
//! the one `/proc` was mounted for: its `NSpid:` line has more than one
//! entry and the last one is 1. A container sharing the host's PID namespace
//! (`--pid=host`) is a zone too: its init is the oldest process of a mount
//! namespace other than the host's whose root directory is not the host's
//! (what the kernel side sees as the first exec there; see [`HostMounts`]).
//! Processes come and go while the scan runs;
//! any process whose files vanish or cannot be read is skipped silently.
//!
//! The parsers are pure and never panic, whatever the input.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::escape::{bound, bounded_lossy};
use crate::observation::{Observation, ObservationKind};
use crate::pidns::{NsIndex, PidNs};
use crate::tracker::HostInfo;

/// Most entries an `NSpid:` line can have: the kernel nests PID namespaces at most 32 deep.
const MAX_NSPID_ENTRIES: usize = 33;

/// Longest cgroup or root path kept, in bytes.
const MAX_PATH_LEN: usize = 4096;

/// Most bytes read from one `/proc` file.
const MAX_FILE_LEN: u64 = 1 << 20;

/// ioctl on an nsfs file: the namespace's never-reused id (`ns_common.ns_id`),
/// Linux 6.18+ (`include/uapi/linux/nsfs.h`: `_IOR(NSIO, 13, __u64)`).
const NS_GET_ID: libc::Ioctl = libc::_IOR::<u64>(0xb7, 13);

/// The PIDs of a task in each PID namespace from the `/proc` mount's down to
/// its own, from the `NSpid:` line of `/proc/PID/status`.
///
/// `None` when there is no such line, it is empty, has too many entries, or
/// any entry is not a number.
pub fn parse_nspid(status: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let mut pids = Vec::new();
    for field in line.split_ascii_whitespace() {
        if pids.len() == MAX_NSPID_ENTRIES {
            return None;
        }
        pids.push(parse_decimal(field)?);
    }
    (!pids.is_empty()).then_some(pids)
}

/// The inode number in a namespace link such as `pid:[4026531836]`.
pub fn parse_ns_link(link: &str) -> Option<u32> {
    let (kind, rest) = link.split_once(":[")?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    parse_decimal(rest.strip_suffix(']')?)
}

/// The start time, in clock ticks since boot, from `/proc/PID/stat` (its 22nd field).
///
/// The command name (field 2) is in parentheses and may itself contain
/// spaces and `)`, so fields are counted from after the last `)`.
pub fn parse_starttime_ticks(stat: &str) -> Option<u64> {
    parse_decimal(stat_field(stat, 22)?)
}

/// Field `n` (numbered from 1, `n` ≥ 3) of a `/proc/PID/stat` line. The
/// command name (field 2) may hold spaces and `)`, so fields are counted
/// after the last `)`.
pub fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (the state).
    rest.split_ascii_whitespace().nth(n.checked_sub(3)?)
}

/// A task's cgroup paths from `/proc/PID/cgroup`: the one that best
/// identifies it ([`parse_cgroup`]), and every other hierarchy's distinct path.
pub fn parse_cgroups(content: &str) -> (Option<String>, Vec<String>) {
    let best = parse_cgroup(content);
    let more = crate::runtimes::procfs::parse_cgroup_paths(content)
        .into_iter()
        .filter(|p| Some(p) != best.as_ref())
        .collect();
    (best, more)
}

/// The cgroup path that best identifies a task, from `/proc/PID/cgroup`.
///
/// The unified (`0::`) hierarchy's path when it is not `/`; else the first
/// path that is not `/` among the v1 hierarchies, preferring `memory`,
/// `pids`, `cpu`, `name=systemd`, then any other in file order; else `/`.
/// `None` when the content has no cgroup line at all.
pub fn parse_cgroup(content: &str) -> Option<String> {
    // (hierarchy id, controllers, path) of each well-formed line.
    let lines: Vec<(&str, &str, &str)> = content
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let numeric = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
            (numeric && path.starts_with('/')).then_some((id, controllers, path))
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let useful = |path: &str| path != "/";
    let unified = lines
        .iter()
        .find(|(id, controllers, path)| *id == "0" && controllers.is_empty() && useful(path));
    let has = |controllers: &str, want: &str| controllers.split(',').any(|c| c == want);
    let v1 = || {
        ["memory", "pids", "cpu", "name=systemd"]
            .iter()
            .find_map(|want| {
                lines
                    .iter()
                    .find(|(_, controllers, path)| has(controllers, want) && useful(path))
            })
            .or_else(|| {
                lines
                    .iter()
                    .find(|(_, controllers, path)| !controllers.is_empty() && useful(path))
            })
    };
    let path = unified.or_else(v1).map_or("/", |(_, _, path)| *path);
    Some(bound(path, MAX_PATH_LEN))
}

/// The parent PID from the `PPid:` line of /proc/PID/status (the text of the file).
pub fn parse_ppid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| parse_decimal(v.trim()))
}

/// Whether the process whose `/proc/PID/status` is `status` has exited and
/// waits to be reaped (state `Z`, zombie, or `X`, dead): its zone has shut down.
pub fn has_exited(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .is_some_and(|v| matches!(v.trim_start().as_bytes().first(), Some(b'Z' | b'X')))
}

/// A plain unsigned decimal number (no sign, no spaces), without overflow.
fn parse_decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A zone found running by [`scan`]: its init process and its namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcZone {
    /// PID of the zone's init, as the scanned `/proc` numbers it.
    pub init_pid: u32,
    /// Inode number of the zone's PID namespace.
    pub pidns: u32,
    /// Depth of the zone's PID namespace below the `/proc` mount's (1 = directly under it).
    pub level: u32,
    /// Inode number of the parent PID namespace; 0 when it could not be found.
    pub parent_pidns: u32,
    /// The kernel's never-reused id of the zone's PID namespace (see
    /// [`namespace_id`]); 0 when the kernel has none (before Linux 6.18) or it could not be read.
    pub pidns_id: u64,
    /// The kernel's never-reused id of the parent PID namespace; 0 as for `pidns_id`
    /// or when `parent_pidns` is.
    pub parent_pidns_id: u64,
    /// PID of the parent namespace's init, when that is a zone found by the
    /// same scan (level > 1); else 0.
    pub parent_init_pid: u32,
    /// Inode number of the init's UTS namespace; 0 when it could not be read.
    pub utsns: u32,
    /// The hostname inside the init's UTS namespace; empty when it could not be read.
    pub nodename: String,
    /// The init's command name.
    pub comm: String,
    /// The init's cgroup path (see [`parse_cgroup`]), when readable.
    pub cgroup: Option<String>,
    /// The init's other cgroup paths (see [`parse_cgroups`]).
    pub more_cgroups: Vec<String>,
    /// The init's root directory as the scanner sees it, when readable.
    pub root: Option<String>,
    /// Inode number of the init's mount namespace; 0 when it could not be read.
    pub mntns: u32,
    /// When the init was created, CLOCK_BOOTTIME nanoseconds (clock-tick granularity).
    pub start_ns: u64,
    /// Whether the init has exec'd the zone's program. /proc keeps no exec
    /// count: an init still running its parent's executable is taken as not
    /// yet booted (the runtime's forked child before its exec).
    pub booted: bool,
}

impl ProcZone {
    /// The zone's PID namespace.
    pub fn pid_ns(&self) -> PidNs {
        PidNs {
            inode: self.pidns,
            id: self.pidns_id,
        }
    }

    /// The parent PID namespace.
    pub fn parent_ns(&self) -> PidNs {
        PidNs {
            inode: self.parent_pidns,
            id: self.parent_pidns_id,
        }
    }

    /// The zone as an observation for [`crate::Tracker::seed`] and
    /// [`crate::Tracker::resync`]: [`ObservationKind::InitExec`] when booted,
    /// else [`ObservationKind::InitFork`].
    ///
    /// The observation is dated at the init's creation (`ts_ns == start_ns`),
    /// so that any kernel observation of the zone counts as newer. The
    /// creator PID is unknown (0).
    pub fn to_observation(&self) -> Observation {
        let kind = match self.booted {
            true => ObservationKind::InitExec,
            false => ObservationKind::InitFork,
        };
        let mut obs = Observation::new(kind);
        obs.ts_ns = self.start_ns;
        obs.start_ns = self.start_ns;
        obs.pidns = self.pidns;
        obs.parent_pidns = self.parent_pidns;
        obs.pidns_id = self.pidns_id;
        obs.parent_pidns_id = self.parent_pidns_id;
        obs.parent_init_pid = self.parent_init_pid;
        obs.level = self.level;
        obs.init_pid = self.init_pid;
        obs.utsns = self.utsns;
        obs.nodename.clone_from(&self.nodename);
        obs.comm.clone_from(&self.comm);
        obs.cgroup.clone_from(&self.cgroup);
        obs.more_cgroups = Some(self.more_cgroups.clone());
        obs
    }
}

/// The zones running now, from the `/proc` mounted at `proc_root`, sorted by
/// (level, init PID) so that parents come before their children.
///
/// Needs root to see namespaces and hostnames of other users' processes;
/// processes it cannot read are left out.
pub fn scan(proc_root: &Path) -> Vec<ProcZone> {
    let Ok(dir) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let ns_per_tick = ns_per_clock_tick();
    // The calling thread's UTS namespace: zones sharing it need no `setns`.
    let own_uts = read_ns(&proc_root.join("thread-self/ns/uts")).ok();
    let host = HostMounts::read(proc_root).ok();
    let mut zones: Vec<ProcZone> = dir
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name();
            let name = name.to_str()?;
            // Only thread-group leaders are listed; skip `self`, `sys` and the like.
            let pid = parse_decimal::<u32>(name)?;
            scan_one(&entry.path(), pid, ns_per_tick, own_uts, host.as_ref())
        })
        .collect();
    link_parents(&mut zones);
    keep_first_per_mount_namespace(&mut zones);
    zones.sort_by_key(|z| (z.level, z.init_pid));
    zones
}

/// What tells a host-PID container's processes from the host's: the host's
/// mount namespace and root directory, as PID 1 has them. A process of the
/// host's PID namespace in another mount namespace *and* under another root
/// runs in a container's filesystem; a service with a private mount
/// namespace on the host's root (systemd's `PrivateTmp=`) does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMounts {
    /// Inode number of the host's mount namespace.
    pub mntns: u32,
    /// Device of the host's root directory (`st_dev`, userspace encoding).
    pub root_dev: u64,
    /// Inode number of the host's root directory.
    pub root_ino: u64,
}

impl HostMounts {
    /// The host's, from PID 1 of the `/proc` mounted at `proc_root`, else (where PID 1 may not
    /// be looked into) from this process, which then must run in the host's mount namespace
    /// and root (zonemon's unit gives it no private ones).
    pub fn read(proc_root: &Path) -> io::Result<HostMounts> {
        Self::of(&proc_root.join("1")).or_else(|_| Self::of(&proc_root.join("self")))
    }

    /// The mount namespace and root directory of the process at `dir` (`/proc/PID`).
    fn of(dir: &Path) -> io::Result<HostMounts> {
        let root = fs::metadata(dir.join("root"))?;
        Ok(HostMounts {
            mntns: read_ns(&dir.join("ns/mnt"))?,
            root_dev: root.dev(),
            root_ino: root.ino(),
        })
    }

    /// The root directory's device in the kernel's own encoding (`MAJOR << 20 | MINOR`), as
    /// the BPF side reads it from the superblock.
    pub fn kernel_root_dev(&self) -> u32 {
        let major = libc::major(self.root_dev as libc::dev_t);
        let minor = libc::minor(self.root_dev as libc::dev_t);
        (major << 20) | (minor & 0xf_ffff)
    }

    /// Whether a process of the host's PID namespace in mount namespace `mntns`, whose root
    /// directory is (`root_dev`, `root_ino`), runs in a container's filesystem.
    pub fn is_container(&self, mntns: u32, root_dev: u64, root_ino: u64) -> bool {
        mntns != 0 && mntns != self.mntns && (root_dev, root_ino) != (self.root_dev, self.root_ino)
    }
}

/// Keeps one host-PID zone per mount namespace, the oldest (its first process;
/// a later process that entered it from outside, such as `docker exec`, is not a zone).
fn keep_first_per_mount_namespace(zones: &mut Vec<ProcZone>) {
    let mut first: HashMap<u32, (u64, u32)> = HashMap::new();
    for z in zones.iter().filter(|z| z.level == 0) {
        let e = first.entry(z.mntns).or_insert((z.start_ns, z.init_pid));
        *e = (*e).min((z.start_ns, z.init_pid));
    }
    zones.retain(|z| z.level != 0 || first.get(&z.mntns) == Some(&(z.start_ns, z.init_pid)));
}

/// When host PID `pid` was created (CLOCK_BOOTTIME ns, clock-tick
/// granularity), or `None` if no such process exists now.
pub fn process_start_ns(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = read_lossy(&proc_root.join(pid.to_string()).join("stat")).ok()?;
    Some(parse_starttime_ticks(&stat)?.saturating_mul(ns_per_clock_tick()))
}

/// Whether host PID `pid`, if it is still the process that started at `start_ns`
/// (CLOCK_BOOTTIME ns, matched to `/proc`'s clock-tick precision), has exited: a
/// zombie waiting to be reaped, or a process past releasing its memory in the
/// kernel's exit path (it has no `exe` any more). `None` when no such process exists.
pub fn process_exiting(proc_root: &Path, pid: u32, start_ns: u64) -> Option<bool> {
    let dir = File::open(proc_root.join(pid.to_string())).ok()?;
    let stat = read_lossy_at(&dir, c"stat")?;
    let started = parse_starttime_ticks(&stat)?.saturating_mul(ns_per_clock_tick());
    if started.abs_diff(start_ns) > crate::tracker::SEED_START_TOLERANCE_NS {
        return None;
    }
    let zombie = matches!(parse_state(&stat), Some('Z' | 'X'));
    let no_exe = fs::read_link(proc_root.join(pid.to_string()).join("exe"))
        .is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
    Some(zombie || no_exe)
}

/// The processes of the `/proc` mounted at `proc_root` whose mount namespace
/// is one of `mntns`: (host PID, mount namespace inode), in no order. Reads
/// one link per process; processes it cannot read are left out.
pub fn processes_in_mount_namespaces(
    proc_root: &Path,
    mntns: &std::collections::HashSet<u32>,
) -> Vec<(u32, u32)> {
    let Ok(dir) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let pid = parse_decimal::<u32>(entry.file_name().to_str()?)?;
        let ns = read_ns(&entry.path().join("ns/mnt")).ok()?;
        mntns.contains(&ns).then_some((pid, ns))
    })
    .collect()
}

/// The kernel's flag on a task that has begun to exit (`PF_EXITING`, set before
/// the exit tracepoints fire), in `/proc/PID/stat`'s 9th field.
const PF_EXITING: u64 = 0x4;

/// Whether host PID `pid` has exited or begun to (gone from `/proc`, a zombie,
/// or flagged `PF_EXITING`): once this says no, the kernel's exit tracepoint has
/// not fired for it yet.
pub fn process_has_exited(proc_root: &Path, pid: u32) -> bool {
    let Ok(stat) = read_lossy(&proc_root.join(pid.to_string()).join("stat")) else {
        return true;
    };
    matches!(parse_state(&stat), Some('Z' | 'X') | None)
        || parse_flags(&stat).is_none_or(|f| f & PF_EXITING != 0)
}

/// The kernel's task flags (`PF_*`) from `/proc/PID/stat` (its 9th field).
pub fn parse_flags(stat: &str) -> Option<u64> {
    parse_decimal(stat_field(stat, 9)?)
}

/// The state letter (`R`, `S`, `Z` …) from `/proc/PID/stat` (its 3rd field).
pub fn parse_state(stat: &str) -> Option<char> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// The cgroup paths of process `pid` ([`parse_cgroups`]), only if it is
/// still the process that started at `start_ns` (CLOCK_BOOTTIME ns, matched
/// to `/proc`'s clock-tick precision): after PID reuse, another process's
/// cgroup must not be taken for a zone's. Both files are read through one
/// handle on `/proc/PID`, which stays bound to the process it was opened for
/// (reads through it fail once that process is gone), so the start time and
/// the cgroup are of the same process.
pub fn cgroups_if_started_at(
    proc_root: &Path,
    pid: u32,
    start_ns: u64,
) -> Result<StartedInit, NotRead> {
    let dir = File::open(proc_root.join(pid.to_string())).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NotRead::Gone,
        _ => NotRead::Unreadable,
    })?;
    let stat = read_lossy_at(&dir, c"stat").ok_or(NotRead::Unreadable)?;
    let (ppid, ticks) = crate::runtimes::procfs::parse_stat(&stat).ok_or(NotRead::Unreadable)?;
    let started = ticks.saturating_mul(ns_per_clock_tick());
    if started.abs_diff(start_ns) > crate::tracker::SEED_START_TOLERANCE_NS {
        return Err(NotRead::Gone);
    }
    let cgroups = read_lossy_at(&dir, c"cgroup").ok_or(NotRead::Unreadable)?;
    let (cgroup, more_cgroups) = parse_cgroups(&cgroups);
    Ok(StartedInit {
        ppid,
        cgroup,
        more_cgroups,
    })
}

/// Why [`cgroups_if_started_at`] read nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRead {
    /// No process with that PID and start time exists any more (none has
    /// the PID, or another process does): nothing of it can ever be read.
    Gone,
    /// The process may exist, but its files could not be read.
    Unreadable,
}

/// What [`cgroups_if_started_at`] read of an init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedInit {
    /// Its parent's PID.
    pub ppid: u32,
    /// The cgroup path that best identifies it.
    pub cgroup: Option<String>,
    /// Every other hierarchy's distinct path.
    pub more_cgroups: Vec<String>,
}

/// At most [`MAX_FILE_LEN`] bytes of file `name` in the open directory `dir`, as text.
fn read_lossy_at(dir: &File, name: &std::ffi::CStr) -> Option<String> {
    // SAFETY: `dir` is an open directory and `name` a NUL-terminated name; the result is checked.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a non-negative fd returned by openat is ours to own.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let buf = crate::runtimes::fsread::read_prefix(&mut file, MAX_FILE_LEN as usize)?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The zone whose init is host PID `pid`, if that process is one and still
/// exists (`parent_init_pid` is left 0: [`scan`] links parents, a single
/// lookup cannot).
pub fn zone_at(proc_root: &Path, pid: u32) -> Option<ProcZone> {
    let own_uts = read_ns(&proc_root.join("thread-self/ns/uts")).ok();
    scan_one(
        &proc_root.join(pid.to_string()),
        pid,
        ns_per_clock_tick(),
        own_uts,
        HostMounts::read(proc_root).ok().as_ref(),
    )
}

/// Sets each nested zone's `parent_init_pid` from the zone whose PID namespace is its parent
/// (by namespace id where both know theirs, see [`PidNs::same_as`]).
fn link_parents(zones: &mut [ProcZone]) {
    let mut init_of = NsIndex::new();
    for z in zones.iter() {
        init_of.insert(z.pid_ns(), z.init_pid);
    }
    for z in zones.iter_mut() {
        z.parent_init_pid = match z.level > 1 && z.parent_pidns != 0 {
            true => init_of.get(z.parent_ns()).unwrap_or(0),
            false => 0,
        };
    }
}

/// The zone whose init is `pid` (at `dir`), or `None` if it is not a zone init or vanished.
/// With `host`, a process of the host's PID namespace in a container's filesystem whose
/// parent is not in the same mount namespace counts too, as a host-PID zone (level 0).
fn scan_one(
    dir: &Path,
    pid: u32,
    ns_per_tick: u64,
    own_uts: Option<u32>,
    host: Option<&HostMounts>,
) -> Option<ProcZone> {
    let status = read_lossy(&dir.join("status")).ok()?;
    let nspid = parse_nspid(&status)?;
    // An init that exited and is not reaped yet (its reaper may take a while) runs no zone.
    if has_exited(&status) {
        return None;
    }
    let mntns = read_ns(&dir.join("ns/mnt")).unwrap_or(0);
    let host_pid = match nspid.as_slice() {
        [_] => {
            if !host.is_some_and(|h| is_host_pid_init(dir, &status, mntns, h)) {
                return None;
            }
            true
        }
        [_, .., 1] => false,
        _ => return None,
    };
    let ticks = parse_starttime_ticks(&read_lossy(&dir.join("stat")).ok()?)?;
    let pidns = read_ns(&dir.join("ns/pid")).ok()?;
    let pidns_file = File::open(dir.join("ns/pid")).ok();
    let pidns_id = pidns_file.as_ref().map_or(0, namespace_id);
    let comm_bytes = read_bounded(&dir.join("comm")).ok()?;
    let comm = bounded_lossy(comm_bytes.strip_suffix(b"\n").unwrap_or(&comm_bytes));
    let utsns = read_ns(&dir.join("ns/uts")).unwrap_or(0);
    let nodename = match own_uts {
        Some(own) if own == utsns => own_nodename().unwrap_or_default(),
        _ => nodename_in(&dir.join("ns/uts")).unwrap_or_default(),
    };
    let (cgroup, more_cgroups) = read_lossy(&dir.join("cgroup"))
        .map(|c| parse_cgroups(&c))
        .unwrap_or_default();
    let root = fs::read_link(dir.join("root"))
        .ok()
        .map(|p| bound(&p.to_string_lossy(), MAX_PATH_LEN));
    let parent = match (host_pid, &pidns_file) {
        (false, Some(ns)) => parent_ns(ns).unwrap_or_default(),
        _ => PidNs::UNKNOWN,
    };
    // A host-PID zone is known from its exec in the container's filesystem: booted.
    let booted = host_pid
        || match (fs::read_link(dir.join("exe")), parse_ppid(&status)) {
            (Ok(exe), Some(ppid)) => dir
                .parent()
                .and_then(|proc_root| {
                    fs::read_link(proc_root.join(ppid.to_string()).join("exe")).ok()
                })
                .is_none_or(|parent_exe| parent_exe != exe),
            _ => true,
        };
    // The PID may have been reused while we read: the start time must not have changed.
    let again = parse_starttime_ticks(&read_lossy(&dir.join("stat")).ok()?)?;
    if again != ticks {
        return None;
    }
    Some(ProcZone {
        init_pid: pid,
        pidns,
        level: (nspid.len() - 1) as u32,
        parent_pidns: parent.inode,
        pidns_id,
        parent_pidns_id: parent.id,
        parent_init_pid: 0,
        utsns,
        nodename,
        comm,
        cgroup,
        more_cgroups,
        root,
        mntns,
        start_ns: ticks.saturating_mul(ns_per_tick),
        booted,
    })
}

/// Whether the host-PID-namespace process at `dir` (in mount namespace `mntns`) runs in a
/// container's filesystem and its parent does not share its mount namespace.
fn is_host_pid_init(dir: &Path, status: &str, mntns: u32, host: &HostMounts) -> bool {
    if mntns == 0 || mntns == host.mntns {
        return false; // nearly every process: one readlink
    }
    // Kernel threads (kthreadd's children, such as kdevtmpfs) have mount namespaces of their own.
    if parse_ppid(status).is_none_or(|ppid| ppid == 0 || ppid == 2) {
        return false;
    }
    let Ok(root) = fs::metadata(dir.join("root")) else {
        return false;
    };
    if !host.is_container(mntns, root.dev(), root.ino()) {
        return false;
    }
    let parent_mntns = parse_ppid(status)
        .zip(dir.parent())
        .and_then(|(ppid, proc_root)| {
            read_ns(&proc_root.join(ppid.to_string()).join("ns/mnt")).ok()
        });
    parent_mntns != Some(mntns)
}

/// Nanoseconds per clock tick (`sysconf(_SC_CLK_TCK)`, the unit of `/proc` start times).
pub(crate) fn ns_per_clock_tick() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    match u64::try_from(hz) {
        Ok(hz) if hz > 0 => 1_000_000_000 / hz,
        _ => 10_000_000, // USER_HZ is 100 on every Linux architecture
    }
}

/// At most [`MAX_FILE_LEN`] bytes of a file.
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::open(path)?.take(MAX_FILE_LEN).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A `/proc` file as text; invalid UTF-8 (a command name, say) becomes U+FFFD.
fn read_lossy(path: &Path) -> io::Result<String> {
    Ok(String::from_utf8_lossy(&read_bounded(path)?).into_owned())
}

/// The inode number a namespace link (`/proc/PID/ns/*`) points to.
fn read_ns(link: &Path) -> io::Result<u32> {
    let target = fs::read_link(link)?;
    target
        .to_str()
        .and_then(parse_ns_link)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a namespace link"))
}

/// The parent of the PID namespace `ns`, an open `/proc/PID/ns/pid` (ioctl
/// `NS_GET_PARENT`): its inode number and id (see [`namespace_id`]).
fn parent_ns(ns: &File) -> io::Result<PidNs> {
    // SAFETY: NS_GET_PARENT takes no argument and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), libc::NS_GET_PARENT) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    let parent = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let ino = parent.metadata()?.ino();
    let inode = u32::try_from(ino)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "inode too large"))?;
    Ok(PidNs {
        inode,
        id: namespace_id(&parent),
    })
}

/// The kernel's never-reused id of the namespace `ns`, an open nsfs file
/// such as `/proc/PID/ns/pid` (ioctl `NS_GET_ID`): the id the eBPF source
/// reads from `ns_common.ns_id`. 0 when the kernel has none (before Linux
/// 6.18 the ioctl fails with `ENOTTY`) or `ns` is no namespace.
pub fn namespace_id(ns: &File) -> u64 {
    let mut id: u64 = 0;
    // SAFETY: NS_GET_ID writes one u64 through its argument, which points at `id`.
    let rc = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_ID, &mut id as *mut u64) };
    if rc < 0 {
        0
    } else {
        id
    }
}

/// The calling thread's own UTS namespace, to come back to after reading a
/// zone's, and whether the thread is away from it now.
struct OwnUts {
    ns: io::Result<File>,
    away: Cell<bool>,
}

thread_local! {
    /// Opened at a thread's first hostname read, when it is in its own namespace.
    static OWN_UTS: OwnUts = OwnUts {
        ns: File::open("/proc/thread-self/ns/uts"),
        away: Cell::new(false),
    };
}

/// Makes the calling thread join the UTS namespace `ns` (only this thread: a
/// UTS namespace is a thread's, not the process's).
fn join_uts(ns: &File) -> io::Result<()> {
    // SAFETY: `ns` is an open file; setns checks that it is a UTS namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWUTS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Brings the calling thread back to its own UTS namespace if a read left it away.
fn come_home(own: &OwnUts) -> io::Result<()> {
    if own.away.get() {
        let ns = own
            .ns
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
        join_uts(ns)?;
        own.away.set(false);
    }
    Ok(())
}

/// The hostname inside the UTS namespace at `ns_path`: the calling thread
/// joins that namespace, reads its nodename and rejoins its own. No other
/// thread sees the switch, and no thread is made: a thread per zone, as
/// before, was 3,000 thread creations for one `/proc` scan on a host with
/// 3,000 zones, each one a message to every listener of the kernel's proc
/// connector (the polling source, scanning ten times a second, made 7,000 a
/// second and overflowed a proc-connector zonemon's 16 MiB socket buffer).
/// Should rejoining fail (the kernel out of memory), the thread stays away
/// until a later read or [`own_nodename`] brings it back: each read joins
/// its zone's namespace first, so no hostname read here is wrong meanwhile.
fn nodename_in(ns_path: &Path) -> io::Result<String> {
    let ns = File::open(ns_path)?;
    OWN_UTS.with(|own| {
        if own.ns.is_err() {
            // No way back: do not leave.
            return Err(io::Error::other(
                "this thread's own UTS namespace is unknown",
            ));
        }
        join_uts(&ns)?;
        own.away.set(true);
        let name = uname_nodename();
        let _ = come_home(own); // else the next read or own_nodename tries again
        name
    })
}

/// The hostname of the calling thread's own UTS namespace (zonemon's: the host's).
fn own_nodename() -> io::Result<String> {
    OWN_UTS.with(|own| {
        come_home(own)?;
        uname_nodename()
    })
}

/// The calling thread's UTS nodename (hostname), bounded.
fn uname_nodename() -> io::Result<String> {
    // SAFETY: utsname is plain old data; all zeroes is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes: Vec<u8> = u
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(bounded_lossy(&bytes))
}

/// What the tracker must know about the host: the monitor's own UTS namespace and hostname.
pub fn host_info() -> io::Result<HostInfo> {
    Ok(HostInfo {
        utsns: read_ns(Path::new("/proc/self/ns/uts"))?,
        hostname: own_nodename()?,
    })
}

/// Inode number of the monitor's own PID namespace.
pub fn own_pidns() -> io::Result<u32> {
    read_ns(Path::new("/proc/self/ns/pid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STATUS: &str = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
        Ngid:\t0\nPid:\t4242\nPPid:\t4241\nTracerPid:\t0\nNStgid:\t4242\t1\n\
        NSpid:\t4242\t1\nNSpgid:\t4240\t0\nNSsid:\t4000\t0\nVmPeak:\t    2300 kB\n";

    const STAT: &str = "5570 (cat) R 5568 5568 4985 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 \
        51347 3133440 412 18446744073709551615 94438776061952 94438776081833 0\n";

    #[test]
    fn nspid() {
        assert_eq!(parse_nspid(STATUS), Some(vec![4242, 1]));
        assert_eq!(parse_nspid("NSpid:\t1\n"), Some(vec![1]));
        assert_eq!(parse_nspid("NSpid: 10 5  1"), Some(vec![10, 5, 1]));
        assert_eq!(parse_nspid("NSpid:\t10\t5\t1"), Some(vec![10, 5, 1]));
        assert_eq!(parse_nspid("Name:\tx\n"), None, "missing line");
        assert_eq!(parse_nspid("NSpid:\n"), None, "empty line");
        assert_eq!(parse_nspid("NSpid:\t12\tx\n"), None, "garbage entry");
        assert_eq!(parse_nspid("NSpid:\t-1\n"), None);
        assert_eq!(parse_nspid("NSpid:\t+1\n"), None);
        assert_eq!(parse_nspid("NSpid:\t99999999999\n"), None, "overflow");
        assert_eq!(parse_nspid("NSpid:\t12\t"), Some(vec![12]), "truncated");
        assert_eq!(parse_nspid(""), None);
        // A hostile name that looks like the line does not fool it: the real line comes first.
        assert_eq!(
            parse_nspid("Name:\tNSpid:\t1\t1\nNSpid:\t7\n"),
            Some(vec![7])
        );
        let deep: String = (0..33).map(|i| format!("\t{}", i + 2)).collect();
        assert_eq!(
            parse_nspid(&format!("NSpid:{deep}")).map(|v| v.len()),
            Some(33)
        );
        let huge = format!("NSpid:{}", "\t7".repeat(1_000_000));
        assert_eq!(parse_nspid(&huge), None, "more entries than nesting allows");
    }

    #[test]
    fn ns_link() {
        assert_eq!(parse_ns_link("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_ns_link("uts:[4026531838]"), Some(4026531838));
        assert_eq!(parse_ns_link("pid_for_children:[1]"), Some(1));
        assert_eq!(parse_ns_link("pid:[4026531836"), None, "truncated");
        assert_eq!(parse_ns_link("pid:4026531836"), None);
        assert_eq!(parse_ns_link(":[5]"), None);
        assert_eq!(parse_ns_link("pid:[]"), None);
        assert_eq!(parse_ns_link("pid:[-5]"), None);
        assert_eq!(parse_ns_link("pid:[99999999999]"), None, "overflow");
        assert_eq!(parse_ns_link("pid:[5] "), None);
        assert_eq!(parse_ns_link("/some/path"), None);
        assert_eq!(parse_ns_link(""), None);
    }

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat = "12 (a) b) S 1 12 12 0 -1 4194564";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 4), Some("1"));
        assert_eq!(stat_field(stat, 9), Some("4194564"));
        assert_eq!(stat_field(stat, 10), None);
        assert_eq!(
            stat_field(stat, 2),
            None,
            "the command name is not a field here"
        );
        assert_eq!(stat_field("12 a S", 3), None, "no parenthesis");
    }

    #[test]
    fn flags() {
        let stat = "12 (a) b) S 1 12 12 0 -1 4194564 5 0 0 0";
        assert_eq!(parse_flags(stat), Some(4194564));
        assert_eq!(parse_flags("12 (a) S 1 12"), None);
        assert_eq!(parse_flags("garbage"), None);
    }

    #[test]
    fn this_process_has_not_exited_and_a_missing_one_has() {
        let proc_root = Path::new("/proc");
        assert!(!process_has_exited(proc_root, std::process::id()));
        assert!(process_has_exited(proc_root, u32::MAX));
    }

    #[test]
    fn processes_are_found_by_mount_namespace() {
        let proc_root = Path::new("/proc");
        let own = read_ns(Path::new("/proc/self/ns/mnt")).expect("own mount namespace");
        let found = processes_in_mount_namespaces(proc_root, &[own].into_iter().collect());
        assert!(found.contains(&(std::process::id(), own)), "{found:?}");
        assert!(found.iter().all(|&(_, ns)| ns == own));
        assert!(processes_in_mount_namespaces(proc_root, &Default::default()).is_empty());
    }

    #[test]
    fn state() {
        assert_eq!(parse_state("42 (a) b) Z 1 2"), Some('Z'));
        assert_eq!(parse_state("42 (sh) S 1"), Some('S'));
        assert_eq!(parse_state("42 (sh)"), None);
        assert_eq!(parse_state("no parens"), None);
    }

    #[test]
    fn starttime() {
        assert_eq!(parse_starttime_ticks(STAT), Some(51347));
        // A command name with spaces and parentheses.
        let odd = STAT.replace("(cat)", "(a) b ) (c))");
        assert_eq!(parse_starttime_ticks(&odd), Some(51347));
        let digits = STAT.replace(
            "(cat)",
            "(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20)",
        );
        assert_eq!(parse_starttime_ticks(&digits), Some(51347));
        assert_eq!(
            parse_starttime_ticks("5570 (cat) R 5568"),
            None,
            "truncated"
        );
        assert_eq!(parse_starttime_ticks("5570 cat R 1 2 3"), None, "no parens");
        let bad = STAT.replace(" 51347 ", " 51x47 ");
        assert_eq!(parse_starttime_ticks(&bad), None);
        assert_eq!(parse_starttime_ticks(""), None);
        assert_eq!(parse_starttime_ticks(")"), None);
    }

    #[test]
    fn cgroup_unified_wins() {
        assert_eq!(
            parse_cgroup("0::/system.slice/docker-abc.scope\n").as_deref(),
            Some("/system.slice/docker-abc.scope")
        );
        let hybrid = "4:memory:/mem/x\n0::/unified/y\n";
        assert_eq!(parse_cgroup(hybrid).as_deref(), Some("/unified/y"));
    }

    #[test]
    fn cgroup_v1_preference() {
        // As on these machines: unified is `/`, memory carries the path.
        let content = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
            4:memory:/process_api/f19af7\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        assert_eq!(
            parse_cgroup(content).as_deref(),
            Some("/process_api/f19af7")
        );
        let content = "9:name=systemd:/sd\n8:pids:/p\n3:cpu,cpuacct:/c\n4:memory:/m\n0::/\n";
        assert_eq!(parse_cgroup(content).as_deref(), Some("/m"));
        let content = "9:name=systemd:/sd\n8:pids:/p\n3:cpu,cpuacct:/c\n4:memory:/\n";
        assert_eq!(parse_cgroup(content).as_deref(), Some("/p"));
        let content = "9:name=systemd:/sd\n3:cpu,cpuacct:/c\n2:cpuset:/s\n";
        assert_eq!(parse_cgroup(content).as_deref(), Some("/c"));
        let content = "9:name=systemd:/sd\n2:cpuacct:/a\n";
        assert_eq!(
            parse_cgroup(content).as_deref(),
            Some("/sd"),
            "cpuacct is not cpu"
        );
        let content = "7:blkio:/b\n6:freezer:/f\n";
        assert_eq!(parse_cgroup(content).as_deref(), Some("/b"), "any other");
    }

    #[test]
    fn cgroups_best_first_then_the_others() {
        let hybrid = "9:name=systemd:/\n4:memory:/m/aap\n3:pids:/m/aap\n1:cpu:/c/aap\n0::/\n";
        let (best, more) = parse_cgroups(hybrid);
        assert_eq!(best.as_deref(), Some("/m/aap"));
        assert_eq!(more, ["/", "/c/aap"]);
        assert_eq!(parse_cgroups("0::/u\n"), (Some("/u".into()), vec![]));
        assert_eq!(parse_cgroups(""), (None, vec![]));
    }

    #[test]
    fn cgroup_root_and_garbage() {
        assert_eq!(parse_cgroup("0::/\n").as_deref(), Some("/"));
        assert_eq!(parse_cgroup("4:memory:/\n0::/\n").as_deref(), Some("/"));
        assert_eq!(parse_cgroup(""), None);
        assert_eq!(parse_cgroup("garbage\n"), None);
        assert_eq!(parse_cgroup("x::/a\n"), None, "non-numeric hierarchy");
        assert_eq!(parse_cgroup("0::relative\n"), None);
        assert_eq!(
            parse_cgroup("0::/a:b:c\n").as_deref(),
            Some("/a:b:c"),
            "colons in the path"
        );
        let long = format!("0::/{}\n", "x".repeat(100_000));
        let got = parse_cgroup(&long).unwrap();
        assert!(got.len() <= MAX_PATH_LEN + '…'.len_utf8() && got.ends_with('…'));
        // A truncated file: the last line is cut but still well-formed.
        assert_eq!(parse_cgroup("4:memory:/m\n0::").as_deref(), Some("/m"));
    }

    /// Byte strings made of fragments of real `/proc` files, plus random bytes.
    fn hostile_input() -> impl Strategy<Value = String> {
        const PIECES: &[&str] = &[
            "NSpid:",
            "\t",
            " ",
            "\n",
            "1",
            "4294967295",
            "4294967296",
            ")",
            "(",
            ":",
            "::",
            "0::/",
            "memory",
            "cpu,cpuacct",
            "name=systemd",
            "/",
            "pid:[",
            "]",
            "-",
            "…",
            "\u{0}",
        ];
        let piece = prop_oneof![
            1 => any::<u8>().prop_map(|b| vec![b]),
            2 => prop::sample::select(PIECES).prop_map(|p| p.as_bytes().to_vec()),
        ];
        prop::collection::vec(piece, 0..60)
            .prop_map(|pieces| String::from_utf8_lossy(&pieces.concat()).into_owned())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        #[test]
        fn parsers_never_panic(s in hostile_input()) {
            let _ = parse_nspid(&s);
            let _ = parse_ns_link(&s);
            let _ = parse_starttime_ticks(&s);
            if let Some(c) = parse_cgroup(&s) {
                prop_assert!(c.starts_with('/'), "{:?} -> {:?}", s, c);
            }
            // Also behind a valid prefix, so the parsers get past their first check.
            let _ = parse_nspid(&format!("NSpid:\t{s}"));
            let _ = parse_ns_link(&format!("pid:[{s}"));
            let _ = parse_starttime_ticks(&format!("1 (x) {s}"));
            let _ = parse_cgroup(&format!("0::/{s}"));
        }
    }

    #[test]
    fn parsers_reject_huge_input() {
        let huge = "x".repeat(10_000_000);
        assert_eq!(parse_nspid(&huge), None);
        assert_eq!(parse_ns_link(&huge), None);
        assert_eq!(parse_starttime_ticks(&huge), None);
        assert_eq!(parse_cgroup(&huge), None);
    }

    #[test]
    fn parses_ppid() {
        assert_eq!(
            parse_ppid("Name:\tsh\nPPid:\t4711\nNSpid:\t5\t1\n"),
            Some(4711)
        );
        assert_eq!(parse_ppid("PPid:\t-1\n"), None);
        assert_eq!(parse_ppid("PPid:\t99999999999999999999\n"), None);
        assert_eq!(parse_ppid("Name: x\n"), None);
    }

    #[test]
    fn observation_carries_every_field() {
        let z = ProcZone {
            init_pid: 4242,
            pidns: 4026532001,
            level: 2,
            parent_pidns: 4026532000,
            pidns_id: 5609220,
            parent_pidns_id: 5609219,
            parent_init_pid: 4000,
            utsns: 4026532002,
            nodename: "aap".into(),
            comm: "sleep".into(),
            cgroup: Some("/zone".into()),
            more_cgroups: vec!["/zone-m".into()],
            root: Some("/".into()),
            mntns: 0,
            start_ns: 513_470_000_000,
            booted: true,
        };
        let o = z.to_observation();
        assert_eq!(
            o.more_cgroups.as_deref(),
            Some(&["/zone-m".to_string()][..])
        );
        assert_eq!(o.kind, ObservationKind::InitExec);
        let ready = ProcZone {
            booted: false,
            ..z.clone()
        }
        .to_observation();
        assert_eq!(ready.kind, ObservationKind::InitFork);
        assert_eq!(
            (
                o.init_pid,
                o.pidns,
                o.level,
                o.parent_pidns,
                o.parent_init_pid
            ),
            (4242, 4026532001, 2, 4026532000, 4000)
        );
        assert_eq!((o.pidns_id, o.parent_pidns_id), (5609220, 5609219));
        assert_eq!(
            (o.utsns, o.nodename.as_str(), o.comm.as_str()),
            (4026532002, "aap", "sleep")
        );
        assert_eq!(o.cgroup.as_deref(), Some("/zone"));
        assert_eq!((o.start_ns, o.ts_ns), (513_470_000_000, 513_470_000_000));
    }

    /// A zone of a scan: init `init_pid` in PID namespace `pidns` at `level`, under `parent_pidns`.
    fn scanned(init_pid: u32, pidns: u32, level: u32, parent_pidns: u32) -> ProcZone {
        ProcZone {
            init_pid,
            pidns,
            level,
            parent_pidns,
            pidns_id: 0,
            parent_pidns_id: 0,
            parent_init_pid: 99,
            utsns: 0,
            nodename: String::new(),
            comm: String::new(),
            cgroup: None,
            more_cgroups: Vec::new(),
            root: None,
            mntns: 0,
            start_ns: 0,
            booted: true,
        }
    }

    #[test]
    fn parents_are_linked_by_pid_namespace() {
        let zone = scanned;
        let mut zones = vec![
            zone(300, 12, 3, 11),
            zone(100, 10, 1, 1),
            zone(200, 11, 2, 10),
            zone(400, 13, 2, 77), // parent not found by the scan
            zone(500, 14, 2, 0),  // parent unknown
        ];
        link_parents(&mut zones);
        let parents: Vec<u32> = zones.iter().map(|z| z.parent_init_pid).collect();
        assert_eq!(parents, [200, 0, 100, 0, 0]);
    }

    #[test]
    fn parents_are_linked_by_namespace_id_where_known() {
        // Namespace 10/id 100 was freed during the scan and its inode reused by 10/id 200.
        let with_ids = |mut z: ProcZone, id, parent_id| {
            z.pidns_id = id;
            z.parent_pidns_id = parent_id;
            z
        };
        let mut zones = vec![
            with_ids(scanned(100, 10, 1, 1), 100, 0),
            with_ids(scanned(150, 10, 1, 1), 200, 0),
            with_ids(scanned(200, 11, 2, 10), 101, 100),
            with_ids(scanned(300, 12, 2, 10), 102, 300), // a third namespace of inode 10
            with_ids(scanned(400, 13, 2, 10), 103, 0),   // its parent's id unknown
        ];
        link_parents(&mut zones);
        let parents: Vec<u32> = zones.iter().map(|z| z.parent_init_pid).collect();
        assert_eq!(parents, [0, 0, 100, 0, 150]);
    }

    /// Whether this kernel has namespace ids (Linux 6.18 or later), from its release string.
    fn kernel_has_namespace_ids() -> bool {
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release.trim().split(['.', '-']);
        let mut next = || {
            parts
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or(0)
        };
        (next(), next()) >= (6, 18)
    }

    #[test]
    fn namespace_ids_are_read_with_ns_get_id() {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        assert_eq!(NS_GET_ID, 0x8008_b70d, "_IOR(0xb7, 13, __u64)");
        let own = File::open("/proc/self/ns/pid").unwrap();
        let id = namespace_id(&own);
        if kernel_has_namespace_ids() {
            assert_ne!(id, 0, "Linux 6.18+ gives every namespace an id");
        }
        let again = File::open("/proc/thread-self/ns/pid").unwrap();
        assert_eq!(namespace_id(&again), id, "the same namespace, the same id");
        let uts = File::open("/proc/self/ns/uts").unwrap();
        if id != 0 {
            assert_ne!(
                namespace_id(&uts),
                id,
                "ids are unique across namespace types"
            );
        }
        let not_a_namespace = File::open("/proc/self/status").unwrap();
        assert_eq!(namespace_id(&not_a_namespace), 0);
    }

    /// A fake `/proc` in a temporary directory, removed on drop.
    struct FakeProc(std::path::PathBuf);

    impl FakeProc {
        fn new() -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir()
                .join(format!("zonemon-procscan-{}-{nanos}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            FakeProc(dir)
        }

        /// A process directory; `nspid` is its NSpid line's content, `None` files are left out.
        fn process(&self, pid: &str, nspid: &str, pidns: Option<u32>, comm: &[u8]) {
            let dir = self.0.join(pid);
            fs::create_dir_all(dir.join("ns")).unwrap();
            fs::write(
                dir.join("status"),
                STATUS.replace("4242\t1\nNSpgid", &format!("{nspid}\nNSpgid")),
            )
            .unwrap();
            fs::write(dir.join("stat"), STAT.replace("(cat)", "(x) y)")).unwrap();
            let mut c = comm.to_vec();
            c.push(b'\n');
            fs::write(dir.join("comm"), c).unwrap();
            fs::write(dir.join("cgroup"), "4:memory:/zone-m\n0::/\n").unwrap();
            if let Some(ns) = pidns {
                std::os::unix::fs::symlink(format!("pid:[{ns}]"), dir.join("ns/pid")).unwrap();
                std::os::unix::fs::symlink(format!("uts:[{}]", ns + 1), dir.join("ns/uts"))
                    .unwrap();
            }
            std::os::unix::fs::symlink("/var/lib/zone/rootfs", dir.join("root")).unwrap();
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn exited_inits_are_told_by_their_state() {
        assert!(!has_exited(STATUS));
        assert!(has_exited("Name:\tsleep\nState:\tZ (zombie)\n"));
        assert!(has_exited("State:\tX (dead)\n"));
        assert!(!has_exited("State:\tS (sleeping)\n") && !has_exited(""));
    }

    #[test]
    fn scans_a_fake_proc() {
        let p = FakeProc::new();
        p.process("4242", "4242\t1", Some(4026532001), b"sleep");
        p.process("4300", "4300\t7\t1", Some(4026532011), b"bad\xffname\x1b");
        p.process("50", "50", Some(4026531836), b"host"); // not in a zone
        p.process("51", "51\t2", Some(4026532001), b"child"); // in a zone, not its init
        p.process("52", "52\t1", None, b"unreadable"); // namespace links missing
        p.process("self", "53\t1", Some(4026532099), b"self");
        fs::create_dir_all(p.0.join("60")).unwrap(); // vanished: no files
        fs::write(p.0.join("61"), "a file").unwrap();
        let zones = scan(&p.0);
        let got: Vec<(u32, u32, u32)> = zones
            .iter()
            .map(|z| (z.init_pid, z.pidns, z.level))
            .collect();
        assert_eq!(got, [(4242, 4026532001, 1), (4300, 4026532011, 2)]);
        let z = &zones[0];
        assert_eq!(z.comm, "sleep");
        assert_eq!(z.utsns, 4026532002);
        assert_eq!(z.nodename, "", "a fake UTS link cannot be joined");
        assert_eq!(z.parent_pidns, 0, "a fake PID link has no parent");
        assert_eq!(z.cgroup.as_deref(), Some("/zone-m"));
        assert_eq!(z.root.as_deref(), Some("/var/lib/zone/rootfs"));
        assert_eq!(z.start_ns, 51347 * ns_per_clock_tick());
        assert_eq!(zones[1].comm, "bad\u{fffd}name\x1b", "raw; sinks escape");
        assert!(scan(&p.0.join("missing")).is_empty());
    }

    /// The last PID the kernel gave out (`/proc/loadavg`'s last field).
    fn last_pid() -> u64 {
        let l = fs::read_to_string("/proc/loadavg").unwrap();
        l.split('/')
            .next_back()
            .unwrap()
            .split_whitespace()
            .next_back()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn a_zones_hostname_is_read_in_this_thread_which_comes_home() {
        if !zonemon_testkit::require_root_for(
            "a_zones_hostname_is_read_in_this_thread_which_comes_home",
            "joining a zone's UTS namespace takes CAP_SYS_ADMIN",
        ) {
            return;
        }
        // A process with a UTS namespace and a hostname of its own.
        let mut zone = std::process::Command::new("unshare")
            .args([
                "--uts",
                "sh",
                "-c",
                "hostname zmtest-uts-name && exec sleep 30",
            ])
            .spawn()
            .expect("running unshare (util-linux)");
        let ns_path = format!("/proc/{}/ns/uts", zone.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while nodename_in(Path::new(&ns_path)).ok().as_deref() != Some("zmtest-uts-name") {
            assert!(
                std::time::Instant::now() < deadline,
                "the zone's hostname never read"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let home = fs::read_link("/proc/thread-self/ns/uts").unwrap();
        let before = last_pid();
        const READS: u64 = 200;
        for _ in 0..READS {
            assert_eq!(nodename_in(Path::new(&ns_path)).unwrap(), "zmtest-uts-name");
        }
        let after = last_pid();
        let pid_max: u64 = fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let made = (after + pid_max - before) % pid_max;
        // A thread per read (the way before) takes a PID each: 200 at least.
        assert!(
            made < READS / 2,
            "{made} PIDs given out during {READS} reads"
        );
        assert_eq!(
            fs::read_link("/proc/thread-self/ns/uts").unwrap(),
            home,
            "back in its own namespace"
        );
        assert_eq!(own_nodename().unwrap(), host_info().unwrap().hostname);
        assert_ne!(own_nodename().unwrap(), "zmtest-uts-name");
        zone.kill().unwrap();
        zone.wait().unwrap();
    }

    #[test]
    fn own_namespaces_are_readable() {
        let host = host_info().expect("/proc/self/ns/uts");
        assert_ne!(host.utsns, 0);
        assert_ne!(own_pidns().expect("/proc/self/ns/pid"), 0);
    }
}
