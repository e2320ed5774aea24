//! Daemons (dockerd, containerd) and their containers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The first file named `prog` in a directory of `PATH`.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Sends `cmd`'s stdout and stderr to a new file at `log` (truncating it)
/// and closes its stdin, as for a daemon.
pub fn log_to(cmd: &mut Command, log: &Path) -> std::io::Result<()> {
    let f = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null()).stdout(f.try_clone()?).stderr(f);
    Ok(())
}

/// Why [`wait_ready`] gave up on a daemon.
#[derive(Debug)]
pub struct NotReady {
    /// The daemon's exit status if it exited; `None` if it still ran when the time was up.
    pub exited: Option<ExitStatus>,
    /// How long it was given.
    pub timeout: Duration,
    /// Its log file.
    pub log: PathBuf,
}

impl NotReady {
    /// The last `n` lines of the daemon's log, joined with ` / ` (one line).
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut tail: Vec<&str> = text.lines().rev().take(n).collect();
        tail.reverse();
        tail.join(" / ")
    }
}

impl fmt::Display for NotReady {
    /// One line: what happened and the end of the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.exited {
            Some(st) => write!(f, "exited ({st})")?,
            None => write!(f, "did not answer within {:?}", self.timeout)?,
        }
        write!(f, "; log {}: {}", self.log.display(), self.log_tail(3))
    }
}

impl std::error::Error for NotReady {}

/// Waits until `ready()` holds, trying every 200 ms for at most `timeout`,
/// for a daemon just started (writing to `log`, see [`log_to`]). With
/// `Some(daemon)`, gives up as soon as that process exits; with `None`, waits
/// the whole time (e.g. where a daemon that exits may have lost a race to
/// another instance that will answer).
pub fn wait_ready(
    mut daemon: Option<&mut Child>,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + timeout;
    let not_ready = |exited| NotReady {
        exited,
        timeout,
        log: log.to_path_buf(),
    };
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(Ok(Some(st))) = daemon.as_mut().map(|d| d.try_wait()) {
            return Err(not_ready(Some(st)));
        }
        if Instant::now() > deadline {
            return Err(not_ready(None));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// `run --detach --name NAME --hostname NAME --network=none [--label LABEL]… IMAGE /bin/sh -c SCRIPT`:
/// the arguments with which `docker` or `podman` starts a detached container
/// named and hostnamed `name`, without a network, whose init runs `sh -c script`.
pub fn container_run_args<'a>(
    name: &'a str,
    image: &'a str,
    labels: &[&'a str],
    script: &'a str,
) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--detach",
        "--name",
        name,
        "--hostname",
        name,
        "--network=none",
    ];
    for label in labels {
        args.extend(["--label", label]);
    }
    args.extend([image, "/bin/sh", "-c", script]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_the_path() {
        assert!(which("sh").is_some());
        assert!(which("no-such-program-zmt").is_none());
    }

    #[test]
    fn container_arguments() {
        assert_eq!(
            container_run_args("n", "img", &["k=v"], "sleep 1").join(" "),
            "run --detach --name n --hostname n --network=none --label k=v img /bin/sh -c sleep 1"
        );
    }

    #[test]
    fn a_daemon_that_exits_is_not_ready() {
        let dir = std::env::temp_dir().join(format!("zmt-kit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("d.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo starting; echo broken >&2; exit 3"]);
        log_to(&mut cmd, &log).unwrap();
        let mut child = cmd.spawn().unwrap();
        let e = wait_ready(Some(&mut child), &log, Duration::from_secs(30), || false).unwrap_err();
        assert_eq!(e.exited.and_then(|s| s.code()), Some(3));
        assert!(e.to_string().ends_with("starting / broken"), "{e}");
        let t0 = Instant::now();
        let e = wait_ready(None, &log, Duration::from_millis(300), || false).unwrap_err();
        assert!(e.exited.is_none() && t0.elapsed() >= Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(dir);
    }
}
