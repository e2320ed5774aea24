//! A running `zonemon watch --json`, its stdout read through a pipe by a
//! thread that notes when each line arrived, and the zone events of this
//! benchmark (names with the run's prefix) kept for the measurements.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use zonemon_testkit::{read_stderr, StderrReader, WATCHING};

use crate::guard::{Proc, Spawn};
use crate::stats::{parse_rfc3339, realtime_ns};

/// A zonemon event source, as chosen with `--source`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// `--source ebpf`: the product.
    Ebpf,
    /// `--source proc-connector`: the kernel's netlink process connector.
    ProcConnector,
    /// `--source poll --interval DUR`: scanning /proc every DUR.
    Poll(Duration),
}

impl Source {
    /// The `zonemon watch` arguments that select this source.
    pub fn args(&self) -> Vec<String> {
        match self {
            Source::Ebpf => vec!["--source".into(), "ebpf".into()],
            Source::ProcConnector => vec!["--source".into(), "proc-connector".into()],
            Source::Poll(d) => vec![
                "--source".into(),
                "poll".into(),
                "--interval".into(),
                if d.as_millis() % 1000 == 0 {
                    format!("{}s", d.as_secs())
                } else {
                    format!("{}ms", d.as_millis())
                },
            ],
        }
    }

    /// Short name for tables and the picture.
    pub fn label(&self) -> String {
        match self {
            Source::Ebpf => "eBPF".into(),
            Source::ProcConnector => "proc connector".into(),
            Source::Poll(d) if d.as_millis() % 1000 == 0 => format!("poll {} s", d.as_secs()),
            Source::Poll(d) => format!("poll {} ms", d.as_millis()),
        }
    }
}

/// A zone transition as zonemon printed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `ready`.
    Ready,
    /// `booted`.
    Booted,
    /// `shutdown`.
    Shutdown,
    /// `down`.
    Down,
    /// Anything else (e.g. `running`).
    Other,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "ready" => Kind::Ready,
            "booted" => Kind::Booted,
            "shutdown" => Kind::Shutdown,
            "down" => Kind::Down,
            _ => Kind::Other,
        }
    }
}

/// One of this benchmark's zone events.
#[derive(Debug, Clone)]
pub struct Rec {
    /// The transition.
    pub kind: Kind,
    /// The zone's name.
    pub name: String,
    /// The kernel's timestamp (`time`), ns since the epoch.
    pub time_ns: Option<i128>,
    /// When the benchmark's reader had the line, ns since the epoch (CLOCK_REALTIME).
    pub arrival_ns: i128,
    /// The zone init's PID on the host (`init_pid`).
    pub init_pid: Option<u32>,
}

/// What the reader collected so far.
#[derive(Debug, Default)]
pub struct Seen {
    /// This run's zone events, in arrival order.
    pub recs: Vec<Rec>,
    /// Number of each kind among `recs`.
    pub counts: HashMap<Kind, usize>,
    /// Sum of the `count` of `lost` records.
    pub lost: u64,
    /// Number of `lost` records.
    pub lost_records: u64,
    /// Lines about zones that are not this run's (other users of the machine).
    pub foreign: u64,
    /// Lines that were not JSON objects.
    pub garbage: u64,
    /// stdout reached end of file.
    pub eof: bool,
    /// Thread id of the benchmark's reader thread.
    pub reader_tid: i32,
    /// The monitor is being stopped: a slow reader stops sleeping.
    pub hurry: bool,
}

impl Seen {
    /// How many events of `kind` the run's zones had.
    pub fn count(&self, kind: Kind) -> usize {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// Records of `kind` whose names start with `prefix`.
    pub fn with<'a>(&'a self, kind: Kind, prefix: &'a str) -> impl Iterator<Item = &'a Rec> + 'a {
        self.recs
            .iter()
            .filter(move |r| r.kind == kind && r.name.starts_with(prefix))
    }
}

/// Why a monitor did not start.
#[derive(Debug)]
pub enum StartError {
    /// zonemon exited before watching (e.g. the flag or source is not available); its stderr.
    Refused(String),
    /// Anything else.
    Other(anyhow::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Refused(s) => write!(f, "zonemon refused to start: {}", s.trim()),
            StartError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

/// A stream of zonemon's JSON lines read by a thread of the benchmark, which
/// stamps each chunk as it arrives and keeps this run's zone events.
pub struct Lines {
    seen: Arc<Mutex<Seen>>,
    reader: Option<JoinHandle<()>>,
}

impl Lines {
    /// Starts reading `from` on a thread of its own. Events of zones named
    /// `prefix…` are kept; `slow` makes the reader sleep that long after each of those lines.
    pub fn spawn(from: impl Read + Send + 'static, prefix: &str, slow: Option<Duration>) -> Lines {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Arc::clone(&seen);
        let prefix = prefix.to_string();
        let reader = thread::spawn(move || read_loop(from, &sink, &prefix, slow));
        Lines {
            seen,
            reader: Some(reader),
        }
    }

    /// Looks at what was collected so far.
    pub fn with_seen<R>(&self, f: impl FnOnce(&Seen) -> R) -> R {
        f(&self.seen.lock().unwrap())
    }

    /// Waits until `done` holds, for at most `timeout`; returns whether it did.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.with_seen(&done) {
                return true;
            }
            if Instant::now() >= deadline || crate::guard::closing() {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Tells a slow reader to stop sleeping: the measurement is over.
    pub fn hurry(&self) {
        self.seen.lock().unwrap().hurry = true;
    }

    /// Waits for the reader to reach the end of its stream and returns what was seen.
    pub fn finish(mut self) -> Seen {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        seen
    }
}

/// A running zonemon.
pub struct Monitor {
    proc: Proc,
    lines: Lines,
    stderr: Arc<Mutex<String>>,
}

impl Monitor {
    /// Starts `zonemon watch --json ARGS` and waits until it says it is watching.
    /// Events of zones named `prefix…` are kept; `slow` makes the reader sleep that long after each of those lines.
    pub fn start(
        zonemon: &Path,
        args: &[String],
        prefix: &str,
        slow: Option<Duration>,
    ) -> Result<Monitor, StartError> {
        let mut cmd = Command::new(zonemon);
        cmd.args(["watch", "--json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut proc = Proc::spawn(
            &mut cmd,
            Spawn {
                stop_signal: libc::SIGINT,
                grace: Duration::from_secs(5),
                ..Spawn::default()
            },
        )
        .map_err(StartError::Other)?;
        let out = proc.child.stdout.take().expect("piped stdout");
        let err = proc.child.stderr.take().expect("piped stderr");
        let StderrReader {
            text: stderr,
            ready: ready_rx,
        } = read_stderr(err, WATCHING, 1 << 16);
        let mut mon = Monitor {
            proc,
            lines: Lines::spawn(out, prefix, slow),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match ready_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => return Ok(mon),
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(_)) = mon.proc.wait_timeout(Duration::ZERO) {
                        thread::sleep(Duration::from_millis(50)); // let stderr's reader finish
                        return Err(StartError::Refused(mon.stderr()));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = mon.proc.wait_timeout(Duration::from_secs(5));
                    return Err(StartError::Refused(mon.stderr()));
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(StartError::Other(anyhow::anyhow!(
                        "zonemon did not start watching within 60 s; stderr: {}",
                        mon.stderr().trim()
                    )))
                }
            }
        }
    }

    /// The monitor's PID.
    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    /// Puts the benchmark's reader thread of this monitor (not zonemon) under SCHED_FIFO 1.
    pub fn set_reader_realtime(&self) -> Result<()> {
        let reader = self.lines.with_seen(|s| s.reader_tid);
        if reader <= 0 {
            bail!("the reader thread has not started");
        }
        set_thread_policy(reader, libc::SCHED_FIFO, 1)
    }

    /// Everything zonemon wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Looks at what was collected so far.
    pub fn with_seen<R>(&self, f: impl FnOnce(&Seen) -> R) -> R {
        self.lines.with_seen(f)
    }

    /// Waits until `done` holds, for at most `timeout`; returns whether it did.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        self.lines.wait_until(timeout, done)
    }

    /// Waits until `shutdowns` shutdowns (up to 30 s) and then `downs` downs (up to 2 s more:
    /// a missing `down` is a finding, not a reason to stall) have been seen in all.
    pub fn wait_for_zones(&self, shutdowns: usize, downs: usize) {
        self.wait_until(Duration::from_secs(30), |s| {
            s.count(Kind::Shutdown) >= shutdowns
        });
        self.wait_until(Duration::from_secs(2), |s| s.count(Kind::Down) >= downs);
    }

    /// Stops zonemon (SIGINT), waits for it and its output, and returns what was seen.
    pub fn stop(mut self) -> Result<Seen> {
        self.lines.hurry();
        self.proc.signal(libc::SIGINT);
        let status = self.proc.wait_timeout(Duration::from_secs(10))?;
        if status.is_none() {
            bail!("zonemon did not stop within 10 s of SIGINT");
        }
        Ok(self.lines.finish())
    }
}

/// Starts the eBPF monitor: `--source ebpf`, or, if this zonemon has no `--source` flag yet,
/// its default (which is eBPF). Returns the monitor and whether the fallback was used.
pub fn start_ebpf(
    zonemon: &Path,
    prefix: &str,
    slow: Option<Duration>,
    extra: &[String],
) -> Result<(Monitor, bool)> {
    let mut args = Source::Ebpf.args();
    args.extend_from_slice(extra);
    match Monitor::start(zonemon, &args, prefix, slow) {
        Ok(m) => Ok((m, false)),
        Err(StartError::Refused(e)) if e.contains("--source") => {
            match Monitor::start(zonemon, extra, prefix, slow) {
                Ok(m) => Ok((m, true)),
                Err(e) => Err(anyhow::anyhow!("{e}")).context("starting zonemon's eBPF source"),
            }
        }
        Err(e) => Err(anyhow::anyhow!("{e}")).context("starting zonemon --source ebpf"),
    }
}

fn read_loop(mut out: impl Read, seen: &Mutex<Seen>, prefix: &str, slow: Option<Duration>) {
    // SAFETY: gettid has no preconditions.
    seen.lock().unwrap().reader_tid = unsafe { libc::gettid() };
    let mut buf = vec![0u8; 1 << 16];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk_time = realtime_ns();
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + pos];
            let arrival = if slow.is_some() {
                realtime_ns()
            } else {
                chunk_time
            };
            let ours = handle_line(line, arrival, seen, prefix);
            // The slow consumer is slow on the lines it cares about (this run's zones) and
            // skips other users' zones at once, as `docker events --filter` does for it.
            // A stopping monitor is drained at full speed: the measurement is over.
            if let Some(d) = slow.filter(|_| ours) {
                if !seen.lock().unwrap().hurry {
                    thread::sleep(d);
                }
            }
            start += pos + 1;
        }
        pending.drain(..start);
    }
    seen.lock().unwrap().eof = true;
}

/// Notes one line; returns whether it was about one of this run's zones.
fn handle_line(line: &[u8], arrival_ns: i128, seen: &Mutex<Seen>, prefix: &str) -> bool {
    let parsed: Option<Value> = serde_json::from_slice(line).ok();
    let mut s = seen.lock().unwrap();
    let Some(v) = parsed.filter(Value::is_object) else {
        s.garbage += 1;
        return false;
    };
    let event = v["event"].as_str().unwrap_or("");
    if event == "lost" {
        s.lost += v["count"].as_u64().unwrap_or(1);
        s.lost_records += 1;
        return false;
    }
    // Match by name, or by hostname when a runtime resolver named the zone otherwise.
    let ours = |k: &str| v[k].as_str().filter(|n| n.starts_with(prefix));
    let Some(name) = ours("name").or_else(|| ours("hostname")) else {
        s.foreign += 1;
        return false;
    };
    let kind = Kind::parse(event);
    *s.counts.entry(kind).or_default() += 1;
    s.recs.push(Rec {
        kind,
        name: name.to_string(),
        time_ns: v["time"].as_str().and_then(parse_rfc3339),
        arrival_ns,
        init_pid: v["init_pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
    });
    true
}

/// Puts thread `tid` under scheduling `policy` at realtime `priority` (0 for SCHED_OTHER).
pub fn set_thread_policy(tid: i32, policy: libc::c_int, priority: i32) -> Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: plain syscall on a thread id with a valid parameter struct.
    if unsafe { libc::sched_setscheduler(tid, policy, &param) } != 0 {
        return Err(std::io::Error::last_os_error()).context("sched_setscheduler");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_this_runs_zones_and_counts_losses() {
        let seen = Mutex::new(Seen::default());
        let ours =
            br#"{"time":"2026-11-26T05:37:09.349334525Z","event":"booted","name":"zmb1-a-1"}"#;
        handle_line(ours, 7, &seen, "zmb1-");
        handle_line(br#"{"event":"booted","name":"other"}"#, 8, &seen, "zmb1-");
        handle_line(br#"{"event":"lost","count":3}"#, 9, &seen, "zmb1-");
        handle_line(b"not json", 9, &seen, "zmb1-");
        let s = seen.into_inner().unwrap();
        assert_eq!(s.count(Kind::Booted), 1);
        assert_eq!((s.foreign, s.lost, s.lost_records, s.garbage), (1, 3, 1, 1));
        assert_eq!(s.recs[0].arrival_ns, 7);
        assert!(s.recs[0].time_ns.is_some());
    }

    #[test]
    fn source_flags() {
        assert_eq!(Source::Poll(Duration::from_millis(100)).args()[3], "100ms");
        assert_eq!(Source::Poll(Duration::from_secs(1)).args()[3], "1s");
        assert_eq!(Source::Poll(Duration::from_secs(1)).label(), "poll 1 s");
    }
}
