//! `zonemon watch`: the eBPF source, the event loop, clean stops.

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use libbpf_rs::RingBufferBuilder;
use zonemon_core::naming::NoRuntimeNames;
use zonemon_core::output::{JsonSink, Sink, TextSink, WallClock};
use zonemon_core::{procscan, Tracker};

use crate::decode::decode;
use crate::ebpf;
use crate::pipeline::Pipeline;

/// How `zonemon watch` runs (built from the command line by `cli`).
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// JSON Lines instead of the seed's text.
    pub json: bool,
    /// Text output also shows ready and down.
    pub all: bool,
    /// Text output prefixes each line with the time.
    pub timestamps: bool,
    /// Report the zones already running at start-up first, as `running`.
    pub initial: bool,
    /// Size of the kernel-to-user ring buffer in bytes.
    pub ring_bytes: u32,
}

/// Runs until SIGINT/SIGTERM (returns Ok) or until stdout is closed (returns Ok, quietly).
pub fn run(opts: &WatchOptions) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let mut storage = MaybeUninit::uninit();
    let skel = ebpf::load(&mut storage, opts.ring_bytes)?;

    let clock = wall_clock();
    let out = io::stdout().lock();
    let sink: Box<dyn Sink> = if opts.json {
        Box::new(JsonSink::new(out, clock))
    } else {
        Box::new(TextSink::new(
            out,
            opts.all,
            opts.timestamps.then_some(clock),
        ))
    };
    let host = procscan::host_info().context("reading this host's UTS namespace and hostname")?;
    let mut pipeline = Pipeline::new(Tracker::new(host, NoRuntimeNames), sink);
    // Attached first, then the snapshot: a zone booting meanwhile is in both, and the tracker merges them.
    pipeline.seed_from_proc();

    let pipeline = RefCell::new(pipeline);
    let failure: RefCell<Option<io::Error>> = RefCell::new(None);
    let mut builder = RingBufferBuilder::new();
    builder.add(&skel.maps.events, |bytes: &[u8]| {
        let rec = match decode(bytes) {
            Ok(rec) => rec,
            Err(e) => {
                eprintln!("zonemon: warning: {e}");
                return 0;
            }
        };
        match pipeline.borrow_mut().handle(rec) {
            Ok(()) => 0,
            Err(e) => {
                *failure.borrow_mut() = Some(e);
                -1
            }
        }
    })?;
    let ring = builder
        .build()
        .context("setting up the ring buffer consumer")?;
    let waiter = Waiter::new(ring.epoll_fd())?;
    let bss = skel
        .maps
        .bss_data
        .as_deref()
        .context("the BPF object has no .bss")?;
    // What the kernel side could not deliver: ring-buffer drops, and dying zones it could not track.
    // SAFETY: the counters live in the BPF object's mmap'd .bss, updated atomically by the
    // kernel; a volatile read sees a whole u64.
    let lost_total = || unsafe {
        std::ptr::read_volatile(&bss.dropped) + std::ptr::read_volatile(&bss.dying_overflow)
    };
    // Handles every record delivered so far; if the kernel lost some, rebuilds the truth from /proc.
    let drain = || -> Result<()> {
        ring.consume()?;
        let lost = lost_total();
        if pipeline.borrow().has_lost(lost) {
            ring.consume()?;
            pipeline.borrow_mut().recover(lost, boot_time_ns())?;
        }
        Ok(())
    };

    let outcome = (|| -> Result<()> {
        // The records of the start-up window first (merged with the snapshot), then the zones found running.
        drain()?;
        if opts.initial {
            pipeline.borrow_mut().write_initial()?;
        }
        eprintln!("zonemon: watching zone boots and shutdowns (eBPF); Ctrl-C stops");
        while !stop.load(Ordering::Relaxed) {
            match waiter.wait() {
                Ok(Wake::Ring) => drain()?,
                Ok(Wake::StdoutClosed) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow::Error::from(e).context("waiting for kernel events")),
            }
        }
        drain() // deliver what is already in the ring
    })();
    let failure = failure.borrow_mut().take();
    match failure {
        Some(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()), // `zonemon | head -1`
        Some(e) => Err(anyhow::Error::from(e).context("writing events to stdout")),
        None => outcome,
    }
}

/// Nanoseconds of `clock` now.
fn now(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// CLOCK_BOOTTIME now, the clock of the kernel's timestamps.
fn boot_time_ns() -> u64 {
    now(libc::CLOCK_BOOTTIME) as u64
}

/// CLOCK_REALTIME − CLOCK_BOOTTIME now, to date the kernel's boot-time stamps.
fn wall_clock() -> WallClock {
    let before = now(libc::CLOCK_BOOTTIME);
    let real = now(libc::CLOCK_REALTIME);
    let after = now(libc::CLOCK_BOOTTIME);
    WallClock {
        boot_to_unix_ns: real - (before + after) / 2,
    }
}

/// Why the event loop woke up.
enum Wake {
    /// The ring buffer has records.
    Ring,
    /// Nobody reads stdout any more.
    StdoutClosed,
}

/// Sleeps until the ring buffer has records or stdout's reader goes away; no periodic wakeups.
struct Waiter {
    epoll: OwnedFd,
}

const TOKEN_RING: u64 = 1;
const TOKEN_STDOUT: u64 = 2;

impl Waiter {
    fn new(ring_fd: RawFd) -> Result<Self> {
        // SAFETY: plain syscall; the returned fd is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("epoll_create1");
        }
        // SAFETY: fd is a fresh descriptor we own.
        let waiter = Waiter {
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        waiter
            .add(ring_fd, libc::EPOLLIN as u32, TOKEN_RING)
            .context("watching the ring buffer")?;
        // A pipe's write end reports EPOLLERR once its reader is gone; files and ttys cannot be watched, which is fine.
        let _ = waiter.add(libc::STDOUT_FILENO, 0, TOKEN_STDOUT);
        Ok(waiter)
    }

    fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: valid epoll fd and event struct.
        let rc =
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self) -> io::Result<Wake> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // SAFETY: evs is a valid buffer of 2 events.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 2, -1) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let fired = &evs[..n as usize];
        if fired.iter().any(|e| e.u64 == TOKEN_STDOUT) {
            return Ok(Wake::StdoutClosed);
        }
        Ok(Wake::Ring)
    }
}
