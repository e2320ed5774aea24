//! Where observations of zone inits come from: eBPF (the product), the
//! kernel's process connector, or polling /proc (the seed's baseline).
//!
//! Every source is driven the same way by `watch`: it sleeps on the source's
//! descriptor, then lets the source drain what is pending into the pipeline.

mod ebpf;
mod poll;
mod proc_connector;

use std::os::fd::RawFd;
use std::time::Duration;

use anyhow::Result;

use crate::pipeline::Pipeline;

pub use ebpf::EbpfSource;
pub use poll::PollSource;
pub use proc_connector::ProcConnectorSource;

/// The kernel-to-user ring buffer's default size: 2 MiB, about 12,000
/// records (160 bytes each and an 8-byte header), over a second of the
/// fastest churn measured here. Its pages are mapped twice (the ring wraps
/// in the address space), so it adds twice its size to zonemon's RSS.
pub const DEFAULT_RING_BYTES: u32 = 2 << 20;

/// Which source `zonemon watch` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// eBPF, else the proc connector, else polling every second — saying so on stderr.
    Auto,
    /// eBPF on the scheduler's process tracepoints.
    Ebpf,
    /// The kernel's netlink process connector (fork/exec/exit), no BPF.
    ProcConnector,
    /// Scanning /proc at each interval and diffing.
    Poll,
}

/// A producer of zone observations.
///
/// Contract: `start` runs once, after the source is attached to the kernel,
/// and seeds the pipeline with the zones already running; then, each time
/// `wait_fd` becomes readable, `drain` feeds the pipeline everything pending
/// without blocking. Errors are fatal to the watch.
pub trait Source {
    /// How messages name this source (e.g. `eBPF`, `polling /proc every 1s`).
    fn description(&self) -> String;

    /// A descriptor that becomes readable when `drain` has work.
    fn wait_fd(&self) -> RawFd;

    /// Seeds the pipeline with the zones running now (from /proc).
    fn start(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        pipeline.seed_from_proc();
        Ok(())
    }

    /// Feeds the pipeline everything pending.
    fn drain(&mut self, pipeline: &mut Pipeline) -> Result<()>;

    /// Whether the source reports OOM kills (so a shutdown can say it was not one).
    fn sees_oom_kills(&self) -> bool {
        false
    }

    /// Whether the source reports every move of a zone's init between
    /// cgroups (so what was read of them holds until one).
    fn sees_cgroup_moves(&self) -> bool {
        false
    }

    /// Whether the zone whose init is `init_pid` still has processes the
    /// source follows although its init is gone (a host-PID zone's other
    /// processes): then its `down` is not overdue.
    fn holds(&self, _init_pid: u32) -> bool {
        false
    }

    /// Bytes of records waiting in the kernel for `drain`, where the source can tell.
    fn backlog_bytes(&self) -> Option<u64> {
        None
    }

    /// Whether every `drain` is long work, never to run realtime
    /// ([`crate::priority::leave_realtime`]): a full `/proc` scan.
    fn scans_proc(&self) -> bool {
        false
    }
}

/// Environment variable that makes the eBPF source fail to open, to exercise
/// `--source auto`'s fallback (tests, and hosts where eBPF misbehaves).
pub const DISABLE_EBPF_ENV: &str = "ZONEMON_DISABLE_EBPF";

/// Opens the source `kind` (for `Auto`, the best one that works, saying on stderr why not the others).
pub fn open(kind: SourceKind, ring_bytes: u32, interval: Duration) -> Result<Box<dyn Source>> {
    match kind {
        SourceKind::Ebpf => Ok(Box::new(EbpfSource::open(ring_bytes)?)),
        SourceKind::ProcConnector => Ok(Box::new(ProcConnectorSource::open()?)),
        SourceKind::Poll => Ok(Box::new(PollSource::open(interval)?)),
        SourceKind::Auto => {
            let ebpf_err = match EbpfSource::open(ring_bytes) {
                Ok(s) => return Ok(Box::new(s)),
                // Without privileges no source can watch the host's zones: say so, do not limp on.
                Err(e) if e.is::<ebpf::load::NotPrivileged>() => return Err(e),
                Err(e) => e,
            };
            eprintln!(
                "zonemon: warning: eBPF is unavailable: {ebpf_err:#}\n\
                 zonemon: falling back to the kernel's proc connector (it can miss zones that live \
                 only microseconds, and reports down together with shutdown)"
            );
            let conn_err = match ProcConnectorSource::open() {
                Ok(s) => return Ok(Box::new(s)),
                Err(e) => e,
            };
            eprintln!(
                "zonemon: warning: the proc connector is unavailable: {conn_err:#}\n\
                 zonemon: falling back to polling /proc every {interval:?} (it misses zones that live \
                 less than that, and knows no exit status)"
            );
            Ok(Box::new(PollSource::open(interval)?))
        }
    }
}
