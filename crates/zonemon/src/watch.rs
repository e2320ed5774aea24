//! `zonemon watch`: a source, the pipeline, the event loop, clean stops.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result};
use zonemon_core::filter::Filter;
use zonemon_core::output::{passes, FilteredSink, JsonSink, Sink, TextSink};
use zonemon_core::{procscan, Tracker};

use crate::down_timer::DownTimer;
use crate::metrics::{self, MeteredResolver, MeteredSink, Metrics, RunningZones};
use crate::pipeline::{boot_time_ns, Pipeline, Resolvers};
use crate::priority::Budget;
pub use crate::priority::Priority;
use crate::sources::{self, SourceKind};
use crate::stats::{SharedStats, TimedResolver};
use crate::wallclock::ClockFollower;

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
    /// Print what the event path cost on stderr at exit.
    pub stats: bool,
    /// How zonemon competes for a CPU.
    pub priority: Priority,
    /// Size of the kernel-to-user ring buffer in bytes (eBPF source).
    pub ring_bytes: u32,
    /// Where observations come from.
    pub source: SourceKind,
    /// The polling source's interval.
    pub interval: Duration,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Which records to show (and count in the metrics).
    pub filter: Filter,
}

/// What a monitor built on watch's event loop plugs into it besides its
/// sink: the moments of start-up, and one more descriptor to wake it (the
/// daemon's journal and watchdog). `zonemon watch` itself is [`StdoutLifecycle`].
pub trait Lifecycle {
    /// The first zone id to give out (a daemon continues its journal's).
    fn first_zone_id(&self) -> u64 {
        1
    }

    /// Called once the zones running now are seeded into the pipeline, before
    /// the records of the start-up window are handled.
    fn seeded(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        let _ = pipeline;
        Ok(())
    }

    /// Called once the start-up window is handled: the monitor is live.
    fn live(&mut self, pipeline: &mut Pipeline, source: &str) -> Result<()>;

    /// Whether the monitor stops when nobody reads its stdout any more.
    fn stops_with_stdout(&self) -> bool {
        true
    }

    /// One more descriptor the event loop sleeps on (e.g. a timer), if any.
    fn wake_fd(&self) -> Option<RawFd> {
        None
    }

    /// Called when [`Lifecycle::wake_fd`] became readable.
    fn woke(&mut self) -> Result<()> {
        Ok(())
    }
}

/// `zonemon watch`'s lifecycle: `--initial`'s records, its `--priority` and
/// a line on stderr once live.
struct StdoutLifecycle {
    initial: bool,
    priority: Priority,
}

impl Lifecycle for StdoutLifecycle {
    fn live(&mut self, pipeline: &mut Pipeline, source: &str) -> Result<()> {
        if self.initial {
            pipeline.write_initial()?;
        }
        // Realtime only now: the start-up's /proc scan, long on a host with
        // thousands of zones, would run over the realtime budget. (Any other
        // priority was applied at the start: not again, nor warned of twice.)
        if self.priority == Priority::Realtime {
            self.priority.apply();
        }
        eprintln!("zonemon: watching zone boots and shutdowns ({source}); Ctrl-C stops");
        Ok(())
    }
}

/// Runs until SIGINT/SIGTERM (returns Ok) or until stdout is closed (returns Ok, quietly).
pub fn run(opts: &WatchOptions) -> Result<()> {
    let clock_follower = ClockFollower::new()?;
    let clock = clock_follower.clock();
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
    let mut life = StdoutLifecycle {
        initial: opts.initial,
        priority: opts.priority,
    };
    // A bad or busy --metrics address is an error before anything is attached.
    let metrics = metrics::start(opts.metrics)?;
    run_with(opts, sink, &mut life, clock_follower, metrics)
}

/// Watch's event loop feeding `sink` (and `metrics`, when served), with `life` called at its moments,
/// keeping `clock_follower`'s clock (the one `sink` dates records with)
/// right across clock steps; runs until SIGINT/SIGTERM (returns Ok) or, if
/// `life` says so, until stdout is closed (returns Ok, quietly).
pub fn run_with(
    opts: &WatchOptions,
    sink: Box<dyn Sink>,
    life: &mut dyn Lifecycle,
    clock_follower: ClockFollower,
    metrics: Option<Metrics>,
) -> Result<()> {
    // SIGINT/SIGTERM write a byte to this socket, which the event loop watches: no race
    // between checking for a stop and going to sleep.
    let (signal_rx, signal_tx) = UnixStream::pair().context("creating the signal socket")?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::low_level::pipe::register(sig, signal_tx.try_clone()?)
            .context("installing signal handlers")?;
    }
    // Attached first, then the snapshot of running zones: a zone booting meanwhile is in both,
    // and the tracker merges them.
    let mut source = sources::open(opts.source, opts.ring_bytes, opts.interval)?;
    // Realtime, when asked, once live ([`Lifecycle::live`]): the start-up runs at nice -10.
    opts.priority.without_realtime().apply();

    let host = procscan::host_info().context("reading this host's UTS namespace and hostname")?;
    let chain = zonemon_core::runtimes::default_chain(Path::new("/"));
    let stats = opts.stats.then(SharedStats::default);
    let mut resolvers: Resolvers = match &stats {
        Some(s) => vec![Box::new(TimedResolver::new(chain, Rc::clone(s)))],
        None => chain,
    };
    let gauges = metrics.clone();
    let (sink, running) = match metrics {
        Some(m) => {
            resolvers = vec![Box::new(MeteredResolver::new(resolvers, m.clone()))];
            let running = RunningZones::new(m);
            let sink: Box<dyn Sink> = Box::new(MeteredSink::new(sink, running.clone()));
            (sink, Some(running))
        }
        None => (sink, None),
    };
    let sink: Box<dyn Sink> = if opts.filter.is_empty() {
        sink
    } else {
        Box::new(FilteredSink::new(sink, opts.filter.clone()))
    };
    let tracker = Tracker::new(host, resolvers)
        .with_first_id(life.first_zone_id())
        .with_oom_kills(source.sees_oom_kills())
        .with_cgroup_moves(source.sees_cgroup_moves());
    let mut pipeline = Pipeline::new(tracker, sink, stats.clone());
    // Set only while a shut-down zone waits for its `down`: a missed free is
    // reported within seconds even when nothing else happens on the host.
    let mut down_timer = DownTimer::new()?;
    let waiter = Waiter::new(
        source.wait_fd(),
        signal_rx.as_raw_fd(),
        life.stops_with_stdout(),
    )?;
    waiter
        .add(down_timer.fd(), libc::EPOLLIN as u32, TOKEN_TIMER)
        .context("watching the down timer")?;
    waiter
        .add(clock_follower.fd(), libc::EPOLLIN as u32, TOKEN_CLOCK)
        .context("watching for wall-clock changes")?;
    if let Some(fd) = life.wake_fd() {
        waiter
            .add(fd, libc::EPOLLIN as u32, TOKEN_LIFECYCLE)
            .context("watching the monitor's timer")?;
    }

    let outcome = (|| -> Result<()> {
        source.start(&mut pipeline)?;
        life.seeded(&mut pipeline)?;
        // The observations of the start-up window first (merged with the snapshot), then the zones found running.
        source.drain(&mut pipeline)?;
        if let Some(running) = &running {
            let zones = pipeline.running();
            running.seed(
                &zones
                    .into_iter()
                    .filter(|z| passes(&opts.filter, z))
                    .collect::<Vec<_>>(),
            );
        }
        life.live(&mut pipeline, &source.description())?;
        if source.scans_proc() {
            // Polling's wakeups are full /proc scans, whatever --priority says: never realtime
            // (its latency is its interval's anyway).
            crate::priority::leave_realtime();
        }
        // The zones found in /proc are checked a second from now (an init exiting while the
        // source attached leaves no record), even if nothing else happens meanwhile.
        down_timer
            .set(pipeline.next_down_check())
            .context("setting the down timer")?;
        let mut budget = Budget::of_this_thread();
        loop {
            budget.renew();
            let woke = waiter.wait();
            budget.renew(); // realtime again right after a sleep, if the budget moved it
            match woke {
                Ok(wake @ (Wake::Source | Wake::DownTimer)) => {
                    if matches!(wake, Wake::DownTimer) {
                        down_timer.clear();
                    }
                    if let (Some(m), Some(bytes)) = (&gauges, source.backlog_bytes()) {
                        m.ring_buffer_bytes.set(bytes as i64);
                    }
                    // Also when the timer woke us: a free waiting in the source is the
                    // zone's true `down`, to be taken before the sweep infers one.
                    source.drain(&mut pipeline)?;
                    pipeline.sweep_overdue(boot_time_ns(), |pid| source.holds(pid))?;
                    pipeline.idle();
                    down_timer
                        .set(pipeline.next_down_check())
                        .context("setting the down timer")?;
                }
                Ok(Wake::ClockSet) => clock_follower.follow()?,
                Ok(Wake::Lifecycle) => life.woke()?,
                Ok(Wake::Stop) => return source.drain(&mut pipeline), // deliver what is pending
                Ok(Wake::StdoutClosed) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow::Error::from(e).context("waiting for events")),
            }
        }
    })();
    if let Some(s) = stats {
        eprintln!("{}", s.borrow().summary());
    }
    match outcome {
        Err(e) if is_broken_pipe(&e) => Ok(()), // `zonemon | head -1`
        other => other,
    }
}

/// Whether `e` comes from writing to a pipe nobody reads any more.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == ErrorKind::BrokenPipe)
}

/// Why the event loop woke up.
enum Wake {
    /// The source has work.
    Source,
    /// A shut-down zone's `down` is overdue.
    DownTimer,
    /// SIGINT or SIGTERM: stop cleanly.
    Stop,
    /// Nobody reads stdout any more.
    StdoutClosed,
    /// The wall clock was set: date events anew.
    ClockSet,
    /// The lifecycle's descriptor is readable.
    Lifecycle,
}

/// Sleeps until the source has work, a stop signal came, stdout's reader
/// goes away, or the down timer fires; no periodic wakeups.
struct Waiter {
    epoll: OwnedFd,
}

const TOKEN_SOURCE: u64 = 1;
const TOKEN_STDOUT: u64 = 2;
const TOKEN_SIGNAL: u64 = 3;
const TOKEN_TIMER: u64 = 4;
const TOKEN_CLOCK: u64 = 5;
const TOKEN_LIFECYCLE: u64 = 6;

impl Waiter {
    fn new(source_fd: RawFd, signal_fd: RawFd, watch_stdout: bool) -> Result<Self> {
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
            .add(source_fd, libc::EPOLLIN as u32, TOKEN_SOURCE)
            .context("watching the source")?;
        waiter
            .add(signal_fd, libc::EPOLLIN as u32, TOKEN_SIGNAL)
            .context("watching for signals")?;
        // A pipe's write end reports EPOLLERR once its reader is gone; files and ttys cannot be watched, which is fine.
        if watch_stdout {
            let _ = waiter.add(libc::STDOUT_FILENO, 0, TOKEN_STDOUT);
        }
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
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 6];
        // SAFETY: evs is a valid buffer of 6 events.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 6, -1) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let fired = |token| evs[..n as usize].iter().any(|e| e.u64 == token);
        Ok(if fired(TOKEN_STDOUT) {
            Wake::StdoutClosed
        } else if fired(TOKEN_SIGNAL) {
            Wake::Stop
        } else if fired(TOKEN_CLOCK) {
            Wake::ClockSet
        } else if fired(TOKEN_LIFECYCLE) {
            Wake::Lifecycle
        } else if fired(TOKEN_TIMER) && !fired(TOKEN_SOURCE) {
            Wake::DownTimer
        } else {
            Wake::Source
        })
    }
}
