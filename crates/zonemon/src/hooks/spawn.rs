//! Running one hook: exactly the configured argv, never a shell; the record as
//! one JSON line on stdin and as `ZONEMON_*` variables; a time limit after
//! which the hook's whole process group is killed.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::user::Account;

/// The `PATH` a hook runs with (its environment is otherwise only the record's variables).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How one run of a hook ended.
#[derive(Debug)]
pub enum Outcome {
    /// It exited with this status.
    Exited(i32),
    /// A signal (not ours) killed it.
    Signalled(i32),
    /// It outlived its timeout and was killed, with its process group.
    TimedOut,
    /// It could not be started.
    NotStarted(io::Error),
}

impl Outcome {
    /// Whether the run succeeded (exit status 0).
    pub fn ok(&self) -> bool {
        matches!(self, Outcome::Exited(0))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exited(code) => write!(f, "exited with status {code}"),
            Outcome::Signalled(sig) => write!(f, "was killed by signal {sig}"),
            Outcome::TimedOut => f.write_str("timed out and was killed"),
            Outcome::NotStarted(e) => write!(f, "could not be started: {e}"),
        }
    }
}

/// What to run and how.
#[derive(Debug, Clone, Copy)]
pub struct Program<'a> {
    /// The argv, as configured; `argv[0]` is the program.
    pub argv: &'a [String],
    /// Whom to run it as (`None`: the daemon's own user).
    pub user: Option<&'a Account>,
    /// How long it may run.
    pub timeout: Duration,
}

/// Runs `program` with `line` (a JSON object, without its newline) on stdin
/// and `env` as its environment (besides [`PATH`]); waits for it, at most its timeout.
pub fn run(program: Program<'_>, line: &str, env: &[(String, String)]) -> Outcome {
    let mut cmd = Command::new(&program.argv[0]);
    cmd.args(&program.argv[1..])
        .env_clear()
        .env("PATH", PATH)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own group, so a timeout kills whatever it started too.
        .process_group(0);
    // What it prints goes to the daemon's log.
    match io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => cmd.stdout(Stdio::from(fd)),
        Err(_) => cmd.stdout(Stdio::null()),
    };
    if let Some(a) = program.user {
        cmd.uid(a.uid).gid(a.gid); // and no supplementary groups (std drops them)
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::NotStarted(e),
    };
    let pid = child.id() as libc::pid_t;
    if let Some(mut stdin) = child.stdin.take() {
        // One record is far below a pipe's 64 KiB, so this never blocks; a hook
        // that exits without reading makes it fail, which is its business.
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        let _ = stdin.write_all(text.as_bytes());
    }
    let finished = match pidfd_open(pid) {
        Ok(fd) => exits_within(&fd, program.timeout),
        Err(_) => false, // cannot time it: treat as overdue rather than wait forever
    };
    if !finished {
        // SAFETY: plain syscall; -pid is the hook's own process group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    match child.wait() {
        _ if !finished => Outcome::TimedOut,
        Ok(st) => match (st.code(), st.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(sig)) => Outcome::Signalled(sig),
            (None, None) => Outcome::Exited(-1),
        },
        Err(e) => Outcome::NotStarted(e),
    }
}

/// A pidfd for `pid`: readable once the process has exited.
fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the process behind `pidfd` exits within `timeout`.
fn exits_within(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the call's duration.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        match n {
            n if n > 0 => return true,
            0 => return false,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn run_sh(script: &str, timeout: Duration, env: &[(String, String)]) -> Outcome {
        let argv = argv(&["/bin/sh", "-c", script]);
        run(
            Program {
                argv: &argv,
                user: None,
                timeout,
            },
            "{\"event\":\"booted\"}",
            env,
        )
    }

    #[test]
    fn exit_statuses_signals_and_timeouts() {
        let t = Duration::from_secs(20);
        assert!(run_sh("exit 0", t, &[]).ok());
        assert!(matches!(run_sh("exit 3", t, &[]), Outcome::Exited(3)));
        assert!(matches!(
            run_sh("kill -SEGV $$", t, &[]),
            Outcome::Signalled(11)
        ));
        let started = Instant::now();
        // The child sleep is in the hook's group: killed with it (else wait would not return).
        let out = run_sh("sleep 30 & sleep 30", Duration::from_millis(200), &[]);
        assert!(matches!(out, Outcome::TimedOut), "{out}");
        assert!(started.elapsed() < Duration::from_secs(20));
        let argv = argv(&["/nonexistent/hook"]);
        let out = run(
            Program {
                argv: &argv,
                user: None,
                timeout: t,
            },
            "{}",
            &[],
        );
        assert!(matches!(out, Outcome::NotStarted(_)), "{out}");
    }

    #[test]
    fn the_hook_gets_the_line_on_stdin_and_only_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "cat > {0}.stdin; env | sort > {0}.env",
            out.to_str().unwrap()
        );
        let env = vec![("ZONEMON_NAME".to_string(), "a;b".to_string())];
        assert!(run_sh(&script, Duration::from_secs(20), &env).ok());
        let stdin = std::fs::read_to_string(out.with_extension("stdin")).unwrap();
        assert_eq!(stdin, "{\"event\":\"booted\"}\n");
        let vars = std::fs::read_to_string(out.with_extension("env")).unwrap();
        let names: Vec<&str> = vars
            .lines()
            .map(|l| l.split('=').next().unwrap())
            .filter(|n| !["PWD", "SHLVL", "_"].contains(n)) // the shell's own
            .collect();
        assert_eq!(names, ["PATH", "ZONEMON_NAME"], "{vars}");
        assert!(vars.contains("ZONEMON_NAME=a;b\n"));
    }
}
