//! Shared harness for the root integration tests: the zonemon binary as a
//! child process, and real zones made with `unshare`.
//!
//! The machine is shared: every test names its zones with a prefix of its own
//! ([`prefix`]) and counts only those.
//!
//! What the benchmark uses too (the root check, the zone recipe, zonemon's
//! stderr, daemons, /proc) is in `zonemon-testkit`, re-exported here.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;
pub use zonemon_testkit::*;

pub mod daemon;
pub mod scratch;

/// Path of the zonemon binary under test.
pub const ZONEMON: &str = env!("CARGO_BIN_EXE_zonemon");

/// A name prefix unique to this test run and `test`, e.g. `zmt-boot-4711-`.
pub fn prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "zmt-{test}-{}-{}-",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running `zonemon` with its stdout collected line by line.
pub struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Monitor {
    /// Starts `zonemon ARGS` and waits until it says it is watching.
    pub fn start(args: &[&str]) -> Monitor {
        Monitor::start_with_env(args, &[])
    }

    /// Starts `zonemon ARGS` with extra environment variables and waits until it says it is watching.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Monitor {
        let mut child = Command::new(ZONEMON)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning zonemon");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let err = read_stderr(child.stderr.take().unwrap(), WATCHING, usize::MAX);
        let mut mon = Monitor {
            child,
            lines,
            stderr: err.text,
        };
        if err.ready.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = mon.child.kill();
            panic!(
                "zonemon did not start watching within 30 s; stderr:\n{}",
                mon.stderr()
            );
        }
        mon
    }

    /// Everything printed on stdout so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The host PID of the monitor.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits until `done(lines)` holds, for at most `timeout`; returns whether it did.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        within(timeout, || done(&self.lines()))
    }

    /// Sends `signal`, waits for the exit and returns its status and the output lines.
    pub fn stop_with(mut self, signal: i32) -> (ExitStatus, Vec<String>) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), signal) };
        let status = wait_timeout(&mut self.child, Duration::from_secs(30));
        thread::sleep(Duration::from_millis(50)); // let the reader threads finish
        let lines = self.lines();
        (status, lines)
    }

    /// Stops with SIGINT, asserts a clean exit (status 0, no lost records) and returns the lines.
    pub fn stop(self) -> Vec<String> {
        self.stop_with_stderr().0
    }

    /// As [`Monitor::stop`], also returning everything printed on stderr, to the end.
    pub fn stop_with_stderr(self) -> (Vec<String>, String) {
        let stderr = Arc::clone(&self.stderr);
        let (status, lines) = self.stop_with(libc::SIGINT);
        let stderr = stderr.lock().unwrap().clone();
        assert!(
            status.success(),
            "zonemon exited with {status}; stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("could not deliver") && !stderr.contains("were lost"),
            "zonemon lost records:\n{stderr}"
        );
        (lines, stderr)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit for at most `timeout` (then kills it and panics).
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    if let Some(status) = found_within(timeout, || child.try_wait().expect("waiting for a child")) {
        return status;
    }
    let _ = child.kill();
    panic!("child {} did not exit within {timeout:?}", child.id());
}

/// Boots a zone named `name` running `script` and waits for it to end; returns unshare's status
/// (which is the zone init's).
pub fn run_zone(name: &str, script: &str) -> ExitStatus {
    let mut child = zone_cmd(name, script).spawn().expect("spawning unshare");
    wait_timeout(&mut child, Duration::from_secs(60))
}

/// Boots zones `<p>0` … `<p>{n-1}`, 8 at a time, each exiting at once.
pub fn burst(p: &str, n: usize) {
    thread::scope(|s| {
        for worker in 0..8 {
            s.spawn(move || {
                for i in (worker..n).step_by(8) {
                    run_zone(&format!("{p}{i}"), "exit 0");
                }
            });
        }
    });
}

/// A zone left running in the background, killed (with everything it started) when dropped.
pub struct BackgroundZone {
    child: Child,
}

impl BackgroundZone {
    /// Boots a zone named `name` running `script` without waiting for it.
    pub fn start(name: &str, script: &str) -> BackgroundZone {
        let mut cmd = zone_cmd(name, script);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        BackgroundZone {
            child: cmd.spawn().expect("spawning unshare"),
        }
    }

    /// Waits until the zone's init has exec'd the script (the zone is booted) and returns the
    /// init's host PID. Panics after 30 s.
    pub fn wait_booted(&self) -> i32 {
        // The tree is unshare(--uts) → sh → exec unshare(--pid --fork) → init, which runs
        // `sh -c script` once it has exec'd: the init is the child of our child whose name is
        // no longer `unshare`.
        let outer = self.child.id() as i32;
        // PID 1 of its own namespace, past its exec: not `hostname`, which the
        // shell runs briefly as a child of its own before it execs unshare.
        found_within(Duration::from_secs(30), || {
            children(outer)
                .into_iter()
                .find(|&pid| comm(pid).is_some_and(|c| c != "unshare") && is_ns_init(pid))
        })
        .expect("zone did not boot within 30 s")
    }

    /// Waits for the zone to end on its own.
    pub fn wait(mut self) -> ExitStatus {
        wait_timeout(&mut self.child, Duration::from_secs(60))
    }
}

impl Drop for BackgroundZone {
    fn drop(&mut self) {
        // SAFETY: killing the process group we made.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Whether `pid` is PID 1 of a PID namespace below the host's (its `NSpid` ends in 1).
pub fn is_ns_init(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_some_and(|ids| {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                ids.len() >= 2 && ids.last() == Some(&"1")
            })
    })
}

/// The PIDs of the live children of `parent`, read from `/proc/*/stat`.
pub fn children(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| ppid(pid) == Some(parent))
        .collect()
}

/// The command name of `pid`, if it lives.
pub fn comm(pid: i32) -> Option<String> {
    let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(c.trim_end().to_string())
}

/// Parses JSON lines; panics on a line that is not a JSON object.
pub fn parse_json(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect()
}

/// The events whose zone name starts with `prefix`.
pub fn with_prefix<'a>(events: &'a [Value], prefix: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .collect()
}

/// The `event` field of each of `events`, with the name.
pub fn summary(events: &[&Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["event"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Counts the JSON events of `kind` whose name starts with `prefix`, in `lines`.
pub fn count(lines: &[String], prefix: &str, kind: &str) -> usize {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == kind && e["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .count()
}

/// The Unix time `secs` seconds ago, as `--since` takes it (seconds, 3 decimals).
pub fn unix_seconds_ago(secs: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    format!("{:.3}", now - secs)
}

/// Waits (90 s at most) for `child`, started with piped stdout and stderr; what it said.
pub fn wait_output(child: &mut Child) -> Output {
    let status = wait_timeout(child, Duration::from_secs(90));
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}
