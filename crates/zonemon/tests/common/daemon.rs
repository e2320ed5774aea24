//! A `zonemon daemon` started by a test: its config file, journal and socket
//! in a directory of its own, its stderr collected.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{read_stderr, wait_timeout, wait_until, StderrReader, ZONEMON};

/// How long a test waits for the daemon.
pub const WAIT: Duration = Duration::from_secs(120);
/// What the daemon says on stderr once it is live.
const LIVE: &str = "zonemon: daemon: journaling";

/// A `zonemon daemon` with its config, journal and socket in a directory of its own.
pub struct TestDaemon {
    child: Child,
    dir: PathBuf,
    stderr: StderrReader,
}

impl TestDaemon {
    /// A fresh directory for `test`'s daemon, with `out/` for its hooks to write in.
    pub fn workdir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zonemon-hooks-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("out")).unwrap();
        // Hooks that run as nobody write here.
        for d in [dir.clone(), dir.join("out")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        dir
    }

    /// Writes `config` (TOML) into `dir` and starts the daemon with it, the journal and socket
    /// in `dir`, and `args`; waits until it is live.
    pub fn start(dir: PathBuf, config: &str, args: &[&str]) -> TestDaemon {
        write_config(&dir.join("zonemon.toml"), config);
        let mut child = Command::new(ZONEMON)
            .arg("daemon")
            .arg("--config")
            .arg(dir.join("zonemon.toml"))
            .arg("--journal")
            .arg(dir.join("journal.db"))
            .arg("--socket")
            .arg(dir.join("api.sock"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning zonemon daemon");
        let stderr = read_stderr(child.stderr.take().unwrap(), LIVE, 4 << 20);
        let mut d = TestDaemon { child, dir, stderr };
        if d.stderr.ready.recv_timeout(WAIT).is_err() {
            let _ = d.child.kill();
            panic!("the daemon did not come up; stderr:\n{}", d.log());
        }
        d
    }

    pub fn log(&self) -> String {
        self.stderr.text.lock().unwrap().clone()
    }

    /// The daemon's journal.
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.db")
    }

    /// Where the test's hooks write.
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// Waits until the daemon's log holds `text`.
    pub fn wait_log(&self, text: &str) {
        wait_until(
            WAIT,
            || format!("the daemon never logged `{text}`; its log:\n{}", self.log()),
            || self.log().contains(text),
        );
    }

    /// Every record of the journal, as JSON, in `seq` order.
    pub fn records(&self) -> Vec<Value> {
        let out = Command::new(ZONEMON)
            .args(["events", "--since", "1d", "--json", "--journal"])
            .arg(self.dir.join("journal.db"))
            .output()
            .expect("running zonemon events");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect()
    }

    /// Every journaled record of zones whose name starts with `prefix`, in `seq` order.
    pub fn journal_of(&self, prefix: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .collect()
    }

    /// The metrics the daemon serves (it was started with `--metrics 127.0.0.1:0`).
    pub fn metrics(&self) -> String {
        let log = self.log();
        let addr = log
            .split("serving metrics on http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("the daemon says where it serves metrics");
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    /// SIGHUP: re-read the config file.
    pub fn reload(&self, config: &str) {
        write_config(&self.dir.join("zonemon.toml"), config);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) };
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = wait_timeout(&mut self.child, WAIT);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes a config file whole (a reload never reads half of one).
pub fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
