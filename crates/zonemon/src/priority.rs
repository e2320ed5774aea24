//! `--priority`: how zonemon competes for a CPU when a zone event wakes it.
//!
//! `realtime`, the default, is SCHED_FIFO 1 under a CPU budget: a thread
//! that runs [`RT_BUDGET`] without sleeping (zonemon sleeps between every
//! burst of records, so only a runaway one would) gets `SIGXCPU` from the
//! kernel (`RLIMIT_RTTIME`), whose handler moves that thread to `high`
//! (SCHED_OTHER, nice -10) and says so on stderr: a realtime zonemon can
//! never keep the host from its CPUs. Should the handler fail, the hard
//! limit, [`RT_HARD_LIMIT`], is the kernel's SIGKILL. An event loop that
//! was moved takes realtime back when it next goes to sleep ([`Budget::renew`]):
//! one that never sleeps again stays at `high`. Work that may run long
//! without sleeping (the start-up `/proc` scan, a client's replay of the
//! journal) runs at [`Priority::without_realtime`], nice -10: realtime comes
//! once the watch is live. `high` is nice -10 throughout. The daemon's event
//! loop and API thread are realtime unless `normal` (the event loop at
//! SCHED_FIFO 2, above the API thread's 1: see `daemon::event_loop_priority`),
//! the API thread moved by a long replay to a fast client.
//!
//! Why realtime by default: under a container runtime's churn (dockerd,
//! containerd, shims and runc busy on every CPU) a woken zonemon at nice -10
//! waited up to 44 ms for a CPU (`perf sched`, 2026-12-04), while its
//! records were due in under a millisecond; realtime, it waits for no
//! ordinary task (README, *Latency depends on scheduling*).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

/// How zonemon competes for a CPU when a zone event wakes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The scheduler's default.
    Normal,
    /// nice -10: a larger share of the CPU than ordinary work, but not always the first turn on it.
    High,
    /// SCHED_FIFO priority 1, as `chrt -f 1`, under [`RT_BUDGET`] (the default).
    Realtime,
    /// SCHED_FIFO priority 2, under [`RT_BUDGET`]: above [`Priority::Realtime`]
    /// threads of the same process (the daemon's event loop, which its API
    /// thread must not keep from the kernel's next record).
    RealtimeFirst,
}

/// How long a realtime thread may run without sleeping before it is moved to [`Priority::High`].
pub const RT_BUDGET: Duration = Duration::from_millis(200);

/// `RLIMIT_RTTIME`'s hard limit: the kernel kills a realtime zonemon that ran this long without sleeping.
pub const RT_HARD_LIMIT: Duration = Duration::from_secs(2);

/// How many times the `SIGXCPU` handler moved a thread to `high`.
static DEMOTIONS: AtomicU64 = AtomicU64::new(0);

/// What the `SIGXCPU` handler writes (a fixed string: a handler may only `write`).
const DEMOTED: &[u8] =
    b"zonemon: warning: a realtime (SCHED_FIFO) thread ran 200 ms without sleeping; \
it is moved to nice -10, as --priority high (it takes realtime back when it next sleeps)\n";

impl Priority {
    /// Applies the priority to the calling thread and the threads it starts
    /// from now on; says on stderr if it cannot (the watch goes on).
    pub fn apply(self) {
        if let Err(e) = self.try_apply() {
            eprintln!(
                "zonemon: warning: cannot set --priority {self:?}: {e} (going on with the default)"
            );
        }
    }

    /// The same priority with realtime replaced by `high` (nice -10): for
    /// work that may run long without sleeping, and so over the realtime
    /// budget (the start-up's `/proc` scan, a client's replay of the journal).
    pub fn without_realtime(self) -> Priority {
        match self {
            Priority::Realtime | Priority::RealtimeFirst => Priority::High,
            other => other,
        }
    }

    /// Applies the priority as [`Priority::apply`] does, or says why it cannot
    /// (raising one's priority takes root or `CAP_SYS_NICE`).
    pub fn try_apply(self) -> io::Result<()> {
        match self {
            Priority::Normal => Ok(()),
            Priority::High => be_high(),
            Priority::Realtime => be_fifo(1),
            Priority::RealtimeFirst => be_fifo(2),
        }
    }
}

/// The calling thread at SCHED_FIFO `level`, under the budget.
fn be_fifo(level: libc::c_int) -> io::Result<()> {
    budget()?;
    let param = libc::sched_param {
        sched_priority: level,
    };
    // SAFETY: valid sched_param for the calling thread.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) })
}

/// A thread's realtime, taken back after the budget moved it to `high`
/// (the event loop's, and the local API's thread's).
#[derive(Debug)]
pub struct Budget {
    /// The thread's SCHED_FIFO priority when the loop began (`None`: not realtime).
    realtime: Option<libc::c_int>,
    /// [`DEMOTIONS`] when last looked at.
    seen: u64,
    /// While the thread is moved to `high`: its sleeps so far (voluntary
    /// context switches) when that was noticed. Realtime comes back only
    /// after one more.
    moved_at: Option<u64>,
}

impl Budget {
    /// The calling thread's priority now (it is the one [`Budget::renew`] restores).
    pub fn of_this_thread() -> Budget {
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain syscalls on the calling thread, into a valid sched_param.
        let fifo = unsafe {
            libc::sched_getscheduler(0) == libc::SCHED_FIFO
                && libc::sched_getparam(0, &mut param) == 0
        };
        Budget {
            realtime: fifo.then_some(param.sched_priority),
            seen: DEMOTIONS.load(Ordering::Relaxed),
            moved_at: None,
        }
    }

    /// Called by the loop before it waits and when it wakes: a realtime
    /// thread the budget moved to `high` is realtime again once it has slept
    /// since (its run without sleeping ended). One atomic load unless some
    /// thread was moved.
    ///
    /// Not before: the kernel counts a realtime thread's run until it sleeps
    /// *at realtime*, so a loop that never sleeps (records arriving faster
    /// than it handles them), made realtime again at every turn, would add to
    /// that count a tick at a time up to the hard limit's SIGKILL. It stays at
    /// `high` instead. Made realtime again, it sleeps 50 µs at once, which
    /// starts the kernel's count afresh.
    pub fn renew(&mut self) {
        let Some(level) = self.realtime else {
            return;
        };
        let now = DEMOTIONS.load(Ordering::Relaxed);
        if now != self.seen {
            self.seen = now;
            if !is_fifo() {
                self.moved_at = Some(sleeps_so_far());
            }
            return;
        }
        let Some(at) = self.moved_at else {
            return;
        };
        if sleeps_so_far() == at {
            return; // not slept since it was moved
        }
        self.moved_at = None;
        // The kernel raised the soft limit by a second with its signal: without this, the
        // hard limit's SIGKILL would come before the next signal.
        let _ = budget();
        let param = libc::sched_param {
            sched_priority: level,
        };
        // SAFETY: plain syscalls on the calling thread with a valid sched_param.
        unsafe {
            if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 {
                libc::usleep(50);
            }
        }
    }
}

/// Whether the calling thread is SCHED_FIFO.
fn is_fifo() -> bool {
    // SAFETY: a plain syscall on the calling thread.
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_FIFO }
}

/// The calling thread's voluntary context switches so far: each a sleep (a
/// wait for an event, or I/O that blocked).
fn sleeps_so_far() -> u64 {
    // SAFETY: rusage is plain old data; getrusage fills it for the calling thread.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    u.ru_nvcsw as u64
}

/// The calling thread at nice -10.
fn be_high() -> io::Result<()> {
    // SAFETY: a plain syscall on the calling thread (Linux: PRIO_PROCESS 0 is the thread).
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -10) })
}

/// `Err` with errno when a syscall returned non-zero.
fn check(ret: libc::c_int) -> io::Result<()> {
    match ret {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sets `RLIMIT_RTTIME` (never above a lower limit already set) and, once per
/// process, the `SIGXCPU` handler that moves the thread over budget to `high`.
fn budget() -> io::Result<()> {
    static HANDLER: Once = Once::new();
    let mut result = Ok(());
    HANDLER.call_once(|| {
        // SAFETY: a zeroed sigaction with a handler that makes only async-signal-safe syscalls.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = over_budget as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = libc::SA_RESTART;
        // SAFETY: installing a handler for SIGXCPU, whose default would end the process.
        result = check(unsafe { libc::sigaction(libc::SIGXCPU, &act, std::ptr::null_mut()) });
    });
    result?;
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reading this process's limit into a valid struct.
    check(unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut old) })?;
    let us = |d: Duration| d.as_micros() as libc::rlim_t;
    let new = libc::rlimit {
        rlim_cur: old.rlim_cur.min(us(RT_BUDGET)),
        rlim_max: old.rlim_max.min(us(RT_HARD_LIMIT)),
    };
    // SAFETY: setting this process's limit from a valid struct (lowering needs no privilege).
    check(unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &new) })
}

/// `SIGXCPU`: the kernel sends it to the realtime thread that ran over
/// [`RT_BUDGET`] without sleeping; that thread goes on at nice -10.
extern "C" fn over_budget(_sig: libc::c_int) {
    DEMOTIONS.fetch_add(1, Ordering::Relaxed);
    to_high();
    // SAFETY: a write of a static buffer, async-signal-safe; its result is ignored (nothing
    // else could be done here).
    unsafe { libc::write(2, DEMOTED.as_ptr().cast(), DEMOTED.len()) };
}

/// The calling thread at SCHED_OTHER, nice -10 (`high`); async-signal-safe.
fn to_high() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on the calling thread; their results are ignored (the thread
    // goes on as it is).
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        libc::setpriority(libc::PRIO_PROCESS, 0, -10);
    }
}

/// Moves the calling thread, if realtime, to `high` (nice -10) for good: for
/// an event loop whose every wakeup is long work (polling `/proc`: on a host
/// with thousands of zones each scan runs longer than the budget, and longer
/// than the interval, so that the loop never sleeps and would be moved back
/// and forth until the hard limit killed it).
pub fn leave_realtime() {
    if is_fifo() {
        to_high();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The calling thread's policy and nice value.
    fn sched() -> (libc::c_int, libc::c_int) {
        // SAFETY: plain syscalls on the calling thread.
        unsafe {
            (
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS, 0),
            )
        }
    }

    #[test]
    fn work_that_may_run_long_is_never_realtime() {
        for (p, want) in [
            (Priority::Normal, Priority::Normal),
            (Priority::High, Priority::High),
            (Priority::Realtime, Priority::High),
            (Priority::RealtimeFirst, Priority::High),
        ] {
            assert_eq!(p.without_realtime(), want, "{p:?}");
        }
    }

    #[test]
    fn the_handlers_message_states_the_budget() {
        let msg = String::from_utf8_lossy(DEMOTED);
        assert!(
            msg.contains(&format!(" {} ms ", RT_BUDGET.as_millis())),
            "{msg}"
        );
        assert!(msg.ends_with('\n'));
    }

    #[test]
    fn a_realtime_thread_that_never_sleeps_is_moved_to_high_not_killed() {
        if !zonemon_testkit::require_root_for(
            "a_realtime_thread_that_never_sleeps_is_moved_to_high_not_killed",
            "it sets SCHED_FIFO",
        ) {
            return;
        }
        let spun = std::thread::spawn(|| {
            Priority::Realtime.try_apply().expect("SCHED_FIFO as root");
            assert_eq!(sched().0, libc::SCHED_FIFO);
            let start = Instant::now();
            // Spins without a syscall that sleeps: the budget's SIGXCPU must end it.
            while sched().0 == libc::SCHED_FIFO {
                assert!(
                    start.elapsed() < RT_HARD_LIMIT,
                    "still realtime after {:?}",
                    start.elapsed()
                );
                std::hint::spin_loop();
            }
            (sched(), start.elapsed())
        })
        .join()
        .expect("the spinning thread");
        assert_eq!(spun.0, (libc::SCHED_OTHER, -10), "moved to high");
        assert!(
            spun.1 >= RT_BUDGET / 2,
            "not before its budget: {:?}",
            spun.1
        );
    }

    /// Runs `body` on a new thread made realtime, with its [`Budget`]; `None` when the test
    /// cannot run (not root, outside CI).
    fn on_a_realtime_loop<T: Send + 'static>(
        test: &str,
        body: impl FnOnce(&mut Budget) -> T + Send + 'static,
    ) -> Option<T> {
        if !zonemon_testkit::require_root_for(test, "it sets SCHED_FIFO") {
            return None;
        }
        let looped = std::thread::spawn(|| {
            Priority::Realtime.try_apply().expect("SCHED_FIFO as root");
            body(&mut Budget::of_this_thread())
        });
        Some(looped.join().expect("the realtime thread"))
    }

    #[test]
    fn an_event_loop_that_never_sleeps_stays_at_high() {
        let Some((policy, turns)) =
            on_a_realtime_loop("an_event_loop_that_never_sleeps_stays_at_high", |budget| {
                let start = Instant::now();
                let mut turns = 0;
                // Turns of 20 ms of work with no sleep between them (records waiting at every
                // wait). Made realtime again at each turn, as before, it went on adding to the
                // kernel's count of its run until the hard limit's SIGKILL (a polling zonemon on
                // a host with 3,000 zones was killed so).
                while start.elapsed() < RT_BUDGET + std::time::Duration::from_millis(1300) {
                    let turn = Instant::now();
                    while turn.elapsed() < std::time::Duration::from_millis(20) {
                        std::hint::spin_loop();
                    }
                    budget.renew();
                    turns += 1;
                }
                (sched().0, turns)
            })
        else {
            return;
        };
        assert_eq!(
            policy,
            libc::SCHED_OTHER,
            "after {turns} turns without a sleep it is at high, not realtime again"
        );
    }

    #[test]
    fn an_event_loop_moved_by_its_budget_is_realtime_again_when_it_sleeps() {
        let Some((policies, soft_limit)) = on_a_realtime_loop(
            "an_event_loop_moved_by_its_budget_is_realtime_again_when_it_sleeps",
            |budget| {
                let start = Instant::now();
                while sched().0 == libc::SCHED_FIFO && start.elapsed() < RT_HARD_LIMIT {
                    std::hint::spin_loop(); // a long scan
                }
                let moved = sched().0;
                budget.renew(); // the loop is about to wait: it has not slept since it was moved
                assert_eq!(sched().0, libc::SCHED_OTHER, "no realtime before a sleep");
                budget.renew(); // a wait that did not sleep (records waiting)
                assert_eq!(
                    sched().0,
                    libc::SCHED_OTHER,
                    "a loop that does not sleep stays at high"
                );
                std::thread::sleep(std::time::Duration::from_millis(1)); // the wait slept
                budget.renew();
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: reading this process's limit into a valid struct.
                unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut limit) };
                ((moved, sched().0), limit.rlim_cur as u128)
            },
        ) else {
            return;
        };
        assert_eq!(policies, (libc::SCHED_OTHER, libc::SCHED_FIFO));
        assert_eq!(
            soft_limit,
            RT_BUDGET.as_micros(),
            "the budget is renewed too (the kernel raised it with its signal)"
        );
        let mut normal = Budget::of_this_thread();
        normal.renew();
        assert_ne!(
            sched().0,
            libc::SCHED_FIFO,
            "a thread not realtime at first stays as it was"
        );
    }
}
