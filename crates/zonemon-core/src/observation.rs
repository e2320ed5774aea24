//! What a source (eBPF, or a scan of `/proc`) saw of a zone's init.

use crate::pidns::PidNs;

/// Which moment of a zone init's life an [`Observation`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationKind {
    /// The init was created: PID 1 of a new PID namespace exists.
    InitFork,
    /// The init exec'd a program.
    InitExec,
    /// The init's last thread exited; `exit_status` is set.
    InitExit,
    /// The init was reaped and freed: nothing of the zone is left.
    /// Only `ts_ns`, `start_ns` and `init_pid` are meaningful.
    InitFree,
    /// The OOM killer chose the zone's process `victim_pid` (its init when
    /// that is `init_pid`). Proves no transition; the zone's shutdown says it.
    OomVictim,
    /// The init was moved to another cgroup (in any hierarchy). Proves no
    /// transition: what was read of its cgroups before may be out of date.
    InitCgroupMove,
}

/// One observation of a zone's init, in the kernel's terms.
///
/// Times are CLOCK_BOOTTIME nanoseconds. The pair (`init_pid`, `start_ns`)
/// identifies the init task for as long as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// What happened.
    pub kind: ObservationKind,
    /// When the kernel saw it.
    pub ts_ns: u64,
    /// When the init task was created.
    pub start_ns: u64,
    /// Inode number of the zone's PID namespace.
    pub pidns: u32,
    /// Inode number of the parent PID namespace.
    pub parent_pidns: u32,
    /// The kernel's never-reused id of the zone's PID namespace (Linux 6.18+); 0 when unknown.
    pub pidns_id: u64,
    /// The kernel's never-reused id of the parent PID namespace; 0 when unknown or the host's.
    pub parent_pidns_id: u64,
    /// Host PID of the parent namespace's init; 0 when the parent is the host.
    pub parent_init_pid: u32,
    /// Depth of the zone's PID namespace (1 = directly under the host's).
    pub level: u32,
    /// Host PID of the zone's init.
    pub init_pid: u32,
    /// Host PID of the process that created the init (0 when unknown).
    pub creator_pid: u32,
    /// Inode number of the init's UTS namespace (0 when unknown).
    pub utsns: u32,
    /// The init's UTS nodename (hostname) at the time of the observation.
    pub nodename: String,
    /// The init's command name at the time of the observation.
    pub comm: String,
    /// wait()-style exit status (for [`ObservationKind::InitExit`]).
    pub exit_status: i32,
    /// Host PID of the OOM killer's victim (for [`ObservationKind::OomVictim`]).
    pub victim_pid: u32,
    /// The init's cgroup path, when the source knows it.
    pub cgroup: Option<String>,
    /// The init's other cgroup paths (one per hierarchy, on hosts with
    /// cgroup v1), when the source read them with `cgroup`: `Some` spares
    /// the name resolvers reading `/proc/<init>/cgroup` again.
    pub more_cgroups: Option<Vec<String>>,
    /// Host PID of the init's parent, when it was read from `/proc` with
    /// `cgroup` for this observation (0 otherwise): spares the name resolvers
    /// reading the init's `stat` again.
    pub init_ppid: u32,
    /// Whether `/proc` was read for this observation and the init was gone
    /// (no process with its PID and start time): the name resolvers read
    /// nothing of it, and no later observation reads its cgroups again.
    pub init_gone: bool,
    /// Who was above the init when it was forked, when the source saw it
    /// ([`ObservationKind::InitFork`] of the eBPF source): spares the name
    /// resolvers walking `/proc` for them.
    pub lineage: Option<crate::lineage::Lineage>,
}

impl Observation {
    /// An observation of `kind` with every other field zeroed; for sources and tests to fill in.
    pub fn new(kind: ObservationKind) -> Self {
        Observation {
            kind,
            ts_ns: 0,
            start_ns: 0,
            pidns: 0,
            parent_pidns: 0,
            pidns_id: 0,
            parent_pidns_id: 0,
            parent_init_pid: 0,
            level: 0,
            init_pid: 0,
            creator_pid: 0,
            utsns: 0,
            nodename: String::new(),
            comm: String::new(),
            exit_status: 0,
            victim_pid: 0,
            cgroup: None,
            init_ppid: 0,
            init_gone: false,
            more_cgroups: None,
            lineage: None,
        }
    }

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
}
