//! Everything the benchmark starts or changes is undone on every way out:
//! children killed, `kernel.bpf_stats_enabled` restored, dockerd stopped —
//! on success, on error, on panic and on Ctrl-C (SIGINT/SIGTERM/SIGHUP).
//!
//! Each child also gets a parent-death signal, so even a SIGKILLed benchmark
//! leaves no zone, monitor or daemon behind.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

type Undo = Box<dyn FnOnce() + Send>;

struct Registry {
    next: u64,
    undo: BTreeMap<u64, Undo>,
    closing: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    undo: BTreeMap::new(),
    closing: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registered undo action; [`disarm`] removes it once the thing is undone normally.
#[derive(Debug)]
pub struct Token(u64);

/// Registers `undo` to run at exit (in reverse order of registration).
/// If the benchmark is already shutting down, runs it at once and returns None.
pub fn on_exit(undo: impl FnOnce() + Send + 'static) -> Option<Token> {
    let mut reg = registry();
    if reg.closing {
        drop(reg);
        undo();
        return None;
    }
    reg.next += 1;
    let id = reg.next;
    reg.undo.insert(id, Box::new(undo));
    Some(Token(id))
}

/// Forgets the undo action of `token` without running it.
pub fn disarm(token: Token) {
    registry().undo.remove(&token.0);
}

/// Removes the undo action of `token` and runs it now.
pub fn undo_now(token: Token) {
    let f = registry().undo.remove(&token.0);
    if let Some(f) = f {
        f();
    }
}

/// True once Ctrl-C (or the end of the run) started undoing everything.
pub fn closing() -> bool {
    registry().closing
}

/// Runs every registered undo action, newest first; later registrations run at once.
pub fn run_all() {
    let actions: Vec<Undo> = {
        let mut reg = registry();
        reg.closing = true;
        std::mem::take(&mut reg.undo).into_values().rev().collect()
    };
    for f in actions {
        f();
    }
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once a signal asked the benchmark to stop: the signal thread undoes everything and exits
/// with 130; other threads must not carry on (no report is written), see [`halt_if_interrupted`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Blocks forever if interrupted, leaving the exit to the signal thread.
pub fn halt_if_interrupted() {
    while interrupted() {
        thread::park();
    }
}

/// Starts a thread that, on SIGINT, SIGTERM or SIGHUP, undoes everything and exits with 130.
pub fn install_signal_handler() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
                eprintln!("zonemon-bench: signal {sig}: stopping every process it started and restoring settings");
                run_all();
                std::process::exit(130);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// How a child is started and stopped.
#[derive(Debug, Clone, Copy)]
pub struct Spawn {
    /// Put the child in a process group of its own, so stopping it reaches all it started.
    pub group: bool,
    /// Start a new session (`setsid`), e.g. for a daemon.
    pub session: bool,
    /// Signal the child gets when the thread that started it dies.
    pub death_signal: i32,
    /// Signal to stop it with at exit.
    pub stop_signal: i32,
    /// How long to wait after `stop_signal` before SIGKILL.
    pub grace: Duration,
}

impl Default for Spawn {
    fn default() -> Self {
        Spawn {
            group: true,
            session: false,
            death_signal: libc::SIGKILL,
            stop_signal: libc::SIGKILL,
            grace: Duration::ZERO,
        }
    }
}

/// A child process that is stopped (and reaped) when dropped, or at exit whatever happens.
#[derive(Debug)]
pub struct Proc {
    /// The child; its pipes may be taken.
    pub child: Child,
    token: Option<Token>,
    how: Spawn,
}

/// Whether `pid` is gone or a zombie.
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// Sends `how.stop_signal`, waits up to `how.grace` for the process to die, then SIGKILLs.
fn stop_pid(pid: i32, how: Spawn) {
    let target = if how.group || how.session { -pid } else { pid };
    // SAFETY: plain kill(2) on a process (group) we started and have not reaped.
    unsafe { libc::kill(target, how.stop_signal) };
    let deadline = Instant::now() + how.grace;
    while how.stop_signal != libc::SIGKILL && !is_dead(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(target, libc::SIGKILL) };
}

impl Proc {
    /// Spawns `cmd` as described by `how` and registers it to be stopped at exit.
    pub fn spawn(cmd: &mut Command, how: Spawn) -> Result<Proc> {
        let death = how.death_signal;
        let (group, session) = (how.group, how.session);
        // SAFETY: the closure only makes async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, death as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if session {
                    if libc::setsid() < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if group && libc::setpgid(0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let pid = child.id() as i32;
        let token = on_exit(move || stop_pid(pid, how));
        Ok(Proc { child, token, how })
    }

    /// The child's PID.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the child (not its group).
    pub fn signal(&self, sig: i32) {
        // SAFETY: the child is not reaped while self lives.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the child to exit.
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        let st = self.child.wait();
        if let Some(t) = self.token.take() {
            disarm(t);
        }
        st
    }

    /// Collects the child's piped stdout and stderr (empty when not piped) and waits for it.
    pub fn output(mut self) -> io::Result<Output> {
        use std::io::Read;
        let mut err_pipe = self.child.stderr.take();
        let errs = thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(e) = err_pipe.as_mut() {
                let _ = e.read_to_end(&mut v);
            }
            v
        });
        let mut stdout = Vec::new();
        if let Some(o) = self.child.stdout.as_mut() {
            o.read_to_end(&mut stdout)?;
        }
        let stderr = errs.join().unwrap_or_default();
        let status = self.child.wait()?;
        if let Some(t) = self.token.take() {
            disarm(t);
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Waits up to `timeout` for the child to exit; None if it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait()? {
                if let Some(t) = self.token.take() {
                    disarm(t);
                }
                return Ok(Some(st));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(t) = self.token.take() {
            disarm(t);
            if let Ok(None) = self.child.try_wait() {
                stop_pid(self.pid(), self.how);
            }
            let _ = self.child.wait();
        }
    }
}
