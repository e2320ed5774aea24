//! The eBPF source: records from the kernel side's ring buffer.
//!
//! Everything of it is in this folder: the BPF programs (`zonemon.bpf.c`, and
//! `first_ns.bpf.c`, which the loader runs once before it loads them),
//! the record layout they share with user space (`zonemon.h`, the one
//! definition the Rust types are generated from), the generated skeleton
//! ([`skel`]), loading and attaching ([`load`]), and decoding ([`decode`](mod@decode)).

mod decode;
pub mod load;
mod skel;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use super::{Source, DISABLE_EBPF_ENV};
use zonemon_core::procscan::{self, ProcZone};
use zonemon_core::Observation;

use crate::pipeline::{boot_time_ns, Pipeline};
use decode::{decode, DecodeError};
use skel::types::{zm_host_zone, zm_seed, zm_seed_op};
use skel::ZonemonSkel;

/// Records taken from the ring buffer at a time: bounds the queue below.
const BATCH: usize = 64;

/// Records decoded by the ring buffer's callback, waiting for the pipeline.
type Queue = Rc<RefCell<VecDeque<Result<Observation, DecodeError>>>>;

/// The BPF programs, attached, and the consumer of their ring buffer.
pub struct EbpfSource {
    // Field order is drop order: the consumer goes before the object it reads.
    ring: RingBuffer<'static>,
    queue: Queue,
    skel: ZonemonSkel<'static>,
    /// Kernel-side losses already reported and recovered from.
    lost_seen: u64,
    /// The programs' recursion misses when last asked, and when that was.
    misses: (u64, Option<Instant>),
}

/// How often the programs' recursion misses are asked for at most: five
/// system calls, 25–50 µs here, which every record would otherwise pay.
const MISSES_EVERY: Duration = Duration::from_millis(100);

impl EbpfSource {
    /// Loads and attaches the BPF programs with a ring buffer of `ring_bytes`.
    pub fn open(ring_bytes: u32) -> Result<Self> {
        if std::env::var_os(DISABLE_EBPF_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
            bail!("disabled by the environment variable {DISABLE_EBPF_ENV}");
        }
        // The object's storage must outlive the skeleton, which lives as long as the watch: one small leak per process.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let skel = load::load(storage, ring_bytes)?;
        let queue = Queue::new(RefCell::new(VecDeque::with_capacity(BATCH)));
        let mut builder = RingBufferBuilder::new();
        let sink = Rc::clone(&queue);
        builder.add(&skel.maps.events, move |bytes: &[u8]| {
            sink.borrow_mut().push_back(decode(bytes));
            0
        })?;
        let ring = builder
            .build()
            .context("setting up the ring buffer consumer")?;
        Ok(EbpfSource {
            ring,
            queue,
            skel,
            lost_seen: 0,
            misses: (0, None),
        })
    }

    /// What the kernel side could not deliver so far: ring-buffer drops,
    /// dying zones it could not track (their `down` would be missing), and
    /// runs of its programs the kernel skipped (recursion misses: a
    /// tracepoint hit while one of them already ran on that CPU, e.g. from an
    /// NMI; the transition it would have seen is missing). The counters are
    /// read each time; the recursion misses at most every [`MISSES_EVERY`],
    /// so a miss is found at the first drain after that.
    fn lost_total(&mut self) -> u64 {
        let counters = match self.skel.maps.bss_data.as_deref() {
            // SAFETY: the counters live in the object's mmap'd .bss, updated
            // atomically by the kernel; a volatile read sees a whole u64.
            Some(bss) => unsafe {
                std::ptr::read_volatile(&bss.dropped)
                    + std::ptr::read_volatile(&bss.dying_overflow)
                    + std::ptr::read_volatile(&bss.host_overflow)
            },
            None => 0,
        };
        counters + self.recursion_misses()
    }

    /// The recursion misses of all the programs, asked for again when the last answer is older than [`MISSES_EVERY`].
    fn recursion_misses(&mut self) -> u64 {
        let (known, asked) = self.misses;
        if asked.is_some_and(|t| t.elapsed() < MISSES_EVERY) {
            return known;
        }
        let progs = &self.skel.progs;
        let now = [
            &progs.zm_fork,
            &progs.zm_exec,
            &progs.zm_exec_done,
            &progs.zm_exit,
            &progs.zm_free,
            &progs.zm_oom,
            &progs.zm_cgroup,
        ]
        .into_iter()
        .filter(|p| p.autoload()) // the exec program not loaded has no fd
        .map(|p| recursion_misses(p.as_fd()))
        .sum::<u64>();
        self.misses = (now, Some(Instant::now()));
        now
    }

    /// Tells the kernel side of the host-PID zones among `zones` (a /proc
    /// scan) and of their processes, so that it sees their inits' exits and
    /// counts what is left of each (the zone is down when its last process
    /// is freed). The ones it knows already (it saw their exec) are left as
    /// they are. A process that exited before it was counted is taken out again.
    fn follow_host_pid(&self, zones: &[ProcZone]) {
        let inits: HashMap<u32, &ProcZone> = zones
            .iter()
            .filter(|z| z.level == 0 && z.mntns != 0)
            .map(|z| (z.init_pid, z))
            .collect();
        if inits.is_empty() {
            return;
        }
        let proc_root = Path::new("/proc");
        let seed = |op: zm_seed_op, tgid: u32, mntns: u32, start_ns: u64| {
            self.seed(zm_seed {
                op: op.0,
                tgid,
                mntns_inum: mntns,
                _pad: 0,
                start_ns,
            })
        };
        // Every process is added before any is taken out again, so that an
        // init that already exited leaves its zone to the processes still there.
        let mut added: Vec<(u32, u32)> = inits
            .values()
            .filter(|z| seed(zm_seed_op::ZM_SEED_INIT, z.init_pid, z.mntns, z.start_ns))
            .map(|z| (z.init_pid, z.mntns))
            .collect();
        let mntns: HashSet<u32> = inits.values().map(|z| z.mntns).collect();
        added.extend(
            procscan::processes_in_mount_namespaces(proc_root, &mntns)
                .into_iter()
                .filter(|&(pid, ns)| {
                    !inits.contains_key(&pid) && seed(zm_seed_op::ZM_SEED_MEMBER, pid, ns, 0)
                }),
        );
        for (pid, ns) in added {
            if procscan::process_has_exited(proc_root, pid) {
                seed(zm_seed_op::ZM_SEED_GONE, pid, ns, 0);
            }
        }
    }

    /// Runs the kernel side's `zm_seed` program on `seed`: whether it changed anything.
    fn seed(&self, seed: zm_seed) -> bool {
        match load::run_seed(&self.skel, seed) {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(
                    "cannot tell the kernel side of a process of a host-PID container \
                     ({e}): that container's down may come early"
                );
                false
            }
        }
    }

    /// Whether the host-PID zone whose init is `init_pid` still has processes
    /// (its init may have exited and been reaped before the others).
    fn host_zone_held(&self, init_pid: u32) -> bool {
        let map = &self.skel.maps.host_zones;
        map.keys().any(|key| {
            map.lookup(&key, MapFlags::ANY)
                .ok()
                .flatten()
                .filter(|v| v.len() == std::mem::size_of::<zm_host_zone>())
                // SAFETY: a value of the map, of the size of its type (plain old data).
                .map(|v| unsafe { std::ptr::read_unaligned(v.as_ptr().cast::<zm_host_zone>()) })
                .is_some_and(|zone| zone.init_tgid == init_pid)
        })
    }

    /// Bytes of records in the ring buffer not consumed yet (its only ring is number 0).
    fn ring_backlog(&self) -> u64 {
        use libbpf_rs::AsRawLibbpf;
        // SAFETY: the ring_buffer pointer is valid while `self.ring` lives; libbpf
        // reads the producer and consumer positions, nothing is changed.
        unsafe {
            let ring = libbpf_sys::ring_buffer__ring(self.ring.as_libbpf_object().as_ptr(), 0);
            if ring.is_null() {
                return 0;
            }
            libbpf_sys::ring__avail_data_size(ring) as u64
        }
    }

    /// Consumes the ring buffer and hands every record to the pipeline, a
    /// batch at a time, so that a burst never piles up in memory here.
    fn consume(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        loop {
            let n = self.ring.consume_raw_n(BATCH);
            if n < 0 {
                return Err(std::io::Error::from_raw_os_error(-n))
                    .context("reading the ring buffer");
            }
            for_each_queued(&self.queue, |rec| {
                match rec {
                    Ok(obs) => pipeline.handle(obs)?,
                    Err(e) => tracing::warn!("{e}"),
                }
                Ok(())
            })?;
            if (n as usize) < BATCH {
                return Ok(());
            }
        }
    }
}

/// Hands each queued record to `f`, in order, the queue not borrowed while
/// `f` runs (it may reach the ring buffer's callback, which pushes to it).
fn for_each_queued(
    queue: &Queue,
    mut f: impl FnMut(Result<Observation, DecodeError>) -> Result<()>,
) -> Result<()> {
    loop {
        // A statement of its own: the borrow ends here, before `f` runs.
        let next = queue.borrow_mut().pop_front();
        match next {
            Some(rec) => f(rec)?,
            None => return Ok(()),
        }
    }
}

/// How many runs of the BPF program `prog` the kernel skipped so far
/// (`bpf_prog_info.recursion_misses`); 0 if it cannot say.
fn recursion_misses(prog: BorrowedFd<'_>) -> u64 {
    // SAFETY: bpf_prog_info is plain old data, zeroed is valid and asks for no arrays.
    let mut info: libbpf_rs::libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: a valid program fd and a buffer of `len` bytes.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len)
    };
    if rc == 0 {
        info.recursion_misses
    } else {
        0
    }
}

impl Source for EbpfSource {
    fn description(&self) -> String {
        "eBPF".into()
    }

    fn wait_fd(&self) -> RawFd {
        self.ring.epoll_fd()
    }

    fn backlog_bytes(&self) -> Option<u64> {
        Some(self.ring_backlog())
    }

    fn start(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        let zones = procscan::scan(Path::new("/proc"));
        self.follow_host_pid(&zones);
        pipeline.seed(&zones);
        Ok(())
    }

    fn sees_oom_kills(&self) -> bool {
        true
    }

    fn sees_cgroup_moves(&self) -> bool {
        true
    }

    fn holds(&self, init_pid: u32) -> bool {
        self.host_zone_held(init_pid)
    }

    fn drain(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        self.consume(pipeline)?;
        let lost = self.lost_total();
        if lost > self.lost_seen {
            // Handle everything that was delivered, then rebuild the truth from /proc.
            self.consume(pipeline)?;
            let zones = pipeline.recover(Some(lost - self.lost_seen), boot_time_ns())?;
            self.follow_host_pid(&zones);
            self.lost_seen = lost;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonemon_core::{lineage, ObservationKind};

    fn record(pid: u32) -> Result<Observation, DecodeError> {
        let mut obs = Observation::new(ObservationKind::InitExec);
        obs.init_pid = pid;
        Ok(obs)
    }

    #[test]
    fn the_queue_is_not_borrowed_while_a_record_is_handled() {
        let queue = Queue::default();
        queue.borrow_mut().push_back(record(1));
        let mut seen = Vec::new();
        for_each_queued(&queue, |rec| {
            let pid = rec.expect("decoded").init_pid;
            seen.push(pid);
            if pid == 1 {
                // What the ring buffer's callback does if handling a record consumes it again.
                queue.borrow_mut().push_back(record(2));
            }
            Ok(())
        })
        .expect("handled");
        assert_eq!(seen, [1, 2]);
    }

    /// Boots an `unshare` zone whose creator, `unshare` itself, has `args`
    /// after `unshare --pid --fork --`; returns the creator's command line
    /// as the zone's INIT_FORK record carries it (`None`: not copied).
    fn creators_copied_cmdline(src: &mut EbpfSource, args: &[&str]) -> Option<Vec<u8>> {
        let mut child = std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--"])
            .args(args)
            .spawn()
            .expect("unshare runs");
        let creator = child.id();
        assert!(child.wait().expect("unshare ends").success(), "{args:?}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            src.ring
                .poll(Duration::from_millis(100))
                .expect("ring polled");
            // Other zones of the host's may be queued too: only this creator's fork counts.
            let fork = src.queue.borrow_mut().drain(..).find_map(|rec| {
                rec.ok().filter(|o| {
                    o.kind == zonemon_core::ObservationKind::InitFork && o.creator_pid == creator
                })
            });
            if let Some(fork) = fork {
                let lineage = fork.lineage.expect("a fork's lineage");
                assert_eq!(lineage.forebears[0].comm(), b"unshare");
                return lineage.creator_cmdline.map(|c| c.bytes().to_vec());
            }
        }
        panic!("no INIT_FORK record of creator {creator} within 10 s");
    }

    #[test]
    fn a_zones_fork_record_carries_its_creators_command_line() {
        let test = "a_zones_fork_record_carries_its_creators_command_line";
        if !zonemon_testkit::require_root(test) {
            return;
        }
        let mut src = EbpfSource::open(crate::sources::DEFAULT_RING_BYTES).expect("eBPF source");
        let tag = format!("zmt-cmdline-{}", std::process::id());
        let got = creators_copied_cmdline(&mut src, &["true", &tag]);
        let want = format!("unshare\0--pid\0--fork\0--\0true\0{tag}\0");
        assert_eq!(
            got.as_deref().map(String::from_utf8_lossy),
            Some(want.as_str().into())
        );
        // Longer than the record holds: left to /proc, not cut.
        let long = "x".repeat(lineage::CMDLINE_LEN);
        assert_eq!(creators_copied_cmdline(&mut src, &["true", &long]), None);
    }
}
