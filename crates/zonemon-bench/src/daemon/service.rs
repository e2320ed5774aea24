//! A `zonemon daemon` of the benchmark's own: its journal and socket in a
//! directory of this run, no service manager unless asked for.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use zonemon_testkit::{read_stderr, StderrReader};

use crate::guard::{Proc, Spawn};
use crate::monitor::Monitor;

/// What the daemon says on stderr once it is live (after `READY=1`).
const LIVE: &str = "zonemon: daemon: journaling";

/// A running `zonemon daemon`.
pub struct Service {
    proc: Proc,
    /// Its journal file.
    pub journal: PathBuf,
    /// Its API socket.
    pub socket: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Service {
    /// Starts `zonemon daemon` journaling to `dir/journal.db`, serving
    /// `dir/zonemon.sock`, with `env` added to its environment (e.g.
    /// `WATCHDOG_USEC`) and `args` to its command line; no config file, no
    /// metrics (the host's must not change what is measured); returns once it is live.
    pub fn start(
        zonemon: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<Service> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let journal = dir.join("journal.db");
        let socket = dir.join("zonemon.sock");
        let mut cmd = Command::new(zonemon);
        cmd.args(["daemon", "--config", "/dev/null", "--metrics", "off"])
            .args(args)
            .arg("--journal")
            .arg(&journal)
            .arg("--socket")
            .arg(&socket)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut proc = Proc::spawn(
            &mut cmd,
            Spawn {
                stop_signal: libc::SIGTERM,
                grace: Duration::from_secs(10),
                ..Spawn::default()
            },
        )?;
        let StderrReader { text, ready } =
            read_stderr(proc.child.stderr.take().expect("piped"), LIVE, 1 << 16);
        match ready.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => Ok(Service {
                proc,
                journal,
                socket,
                stderr: text,
            }),
            Err(RecvTimeoutError::Timeout) => bail!(
                "zonemon daemon was not live within 60 s: {}",
                text.lock().unwrap().trim()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                let _ = proc.wait_timeout(Duration::from_secs(5));
                bail!(
                    "zonemon daemon did not start (does this zonemon have `daemon`?): {}",
                    text.lock().unwrap().trim()
                )
            }
        }
    }

    /// The daemon's PID.
    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    /// Starts `zonemon watch --json` reading this daemon's socket; it keeps the records of zones named `prefix…`.
    pub fn client(&self, zonemon: &Path, prefix: &str) -> Result<Monitor> {
        let args = ["--socket".to_string(), self.socket.display().to_string()];
        Monitor::start(zonemon, &args, prefix, None)
            .map_err(|e| anyhow::anyhow!("watch through the daemon: {e}"))
    }

    /// SIGTERM: the daemon commits what is queued, closes its journal (which
    /// takes the write-ahead log into the file) and exits 0.
    pub fn stop(mut self) -> Result<()> {
        self.proc.signal(libc::SIGTERM);
        match self.proc.wait_timeout(Duration::from_secs(10))? {
            Some(st) if st.success() => Ok(()),
            Some(st) => bail!(
                "zonemon daemon exited with {st}: {}",
                self.stderr.lock().unwrap().trim()
            ),
            None => bail!("zonemon daemon did not stop within 10 s of SIGTERM"),
        }
    }
}
