//! The zone transitions zonemon reports.

use crate::exit::{ExitStatus, Oom};
use crate::naming::{K8sNames, NameSource};

/// A zone's lifecycle transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The zone's init exists; nothing of the zone's own has run yet.
    Ready,
    /// The init exec'd the zone's program (the seed's "booted").
    Booted,
    /// The init exited; the kernel is killing the rest (the seed's "shutdown").
    Shutdown,
    /// The zone's last process is gone.
    Down,
    /// The zone was found already running (by `zonemon list`, or at start-up).
    Running,
}

impl EventKind {
    /// The word used in text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Ready => "ready",
            EventKind::Booted => "booted",
            EventKind::Shutdown => "shutdown",
            EventKind::Down => "down",
            EventKind::Running => "running",
        }
    }

    /// The transition the word `name` (as [`EventKind::as_str`] writes it) stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            EventKind::Ready,
            EventKind::Booted,
            EventKind::Shutdown,
            EventKind::Down,
            EventKind::Running,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// Whether the seed's output shows it (the rest need `--all`).
    pub fn is_seed_event(self) -> bool {
        matches!(self, EventKind::Booted | EventKind::Shutdown)
    }
}

/// One transition of one zone, with everything known about the zone at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneEvent {
    /// Which transition.
    pub kind: EventKind,
    /// When the kernel saw it (CLOCK_BOOTTIME nanoseconds).
    pub ts_ns: u64,
    /// The zone's id, unique for the monitor's lifetime.
    pub zone_id: u64,
    /// The zone's name (unescaped; sinks escape it for their format).
    pub name: String,
    /// Where the name came from.
    pub name_source: NameSource,
    /// The runtime that made the zone, when known.
    pub runtime: Option<String>,
    /// The runtime's id for the zone, when known.
    pub container_id: Option<String>,
    /// Where a Kubernetes container sits (namespace, pod, container), when it is one.
    pub k8s: Option<K8sNames>,
    /// Inode number of the zone's PID namespace.
    pub pidns: u32,
    /// The kernel's never-reused id of the zone's PID namespace (Linux
    /// 6.18+); 0 when unknown.
    pub pidns_id: u64,
    /// Host PID of the zone's init.
    pub init_pid: u32,
    /// Depth of the zone's PID namespace (1 = directly under the host's).
    pub level: u32,
    /// The enclosing zone's id; `None` at top level.
    pub parent_zone_id: Option<u64>,
    /// The zone's own hostname, when it has its own UTS namespace and set one.
    pub hostname: Option<String>,
    /// The init's cgroup path, when known.
    pub cgroup: Option<String>,
    /// How the init ended (on `Shutdown`, when known).
    pub exit: Option<ExitStatus>,
    /// What the OOM killer took of the zone (on `Shutdown`, from a source that sees OOM kills).
    pub oom: Option<Oom>,
    /// Its image, labels, pod uid and sandbox mark, from its runtime's state.
    pub meta: Option<Box<crate::meta::ZoneMeta>>,
    /// On `Booted`: how many times a zone of this name booted before (within the monitor's memory).
    pub restart_count: Option<u32>,
    /// Time from the init's creation to its exit (on `Shutdown`).
    pub uptime_ns: Option<u64>,
    /// Time from the init's exit to the zone being gone (on `Down`, when the exit was seen).
    pub shutdown_ns: Option<u64>,
    /// A zone found already running at start-up (on `Running`).
    pub initial: bool,
    /// Inferred from a /proc rescan after the kernel lost records, not seen as it happened.
    pub resynced: bool,
    /// On `Booted`: the zone of the same name that shut down moments before (a reboot).
    pub reboot_of: Option<u64>,
    /// On `Booted` with `reboot_of`: time from that zone's shutdown to this boot.
    pub reboot_gap_ns: Option<u64>,
}

impl ZoneEvent {
    /// A transition of a zone named `name` with every other field set to
    /// something recognisable (zone 7, PID 1234, its own hostname `name`):
    /// for tests and examples of the output formats.
    pub fn example(kind: EventKind, name: &str) -> ZoneEvent {
        ZoneEvent {
            kind,
            ts_ns: 1_000,
            zone_id: 7,
            name: name.into(),
            name_source: NameSource::Hostname,
            runtime: None,
            container_id: None,
            k8s: None,
            pidns: 4026532000,
            pidns_id: 0,
            init_pid: 1234,
            level: 1,
            parent_zone_id: None,
            hostname: Some(name.into()),
            cgroup: Some("/zonemon-test".into()),
            exit: None,
            oom: None,
            meta: None,
            restart_count: None,
            uptime_ns: None,
            shutdown_ns: None,
            initial: false,
            resynced: false,
            reboot_of: None,
            reboot_gap_ns: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// [`ZoneEvent::example`], for output tests.
    pub(crate) fn sample(kind: EventKind, name: &str) -> ZoneEvent {
        ZoneEvent::example(kind, name)
    }
}
