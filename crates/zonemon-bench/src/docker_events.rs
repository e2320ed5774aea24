//! Against `docker events`: with a dockerd of the benchmark's own (separate
//! data root, exec root and socket; cgroupfs; stopped afterwards), start and
//! stop containers and see, for each, whether zonemon or `docker events`
//! reported it first and by how much, and whether either missed any — with a
//! fast consumer, then with a slow one (a reader sleeping 50 ms per line) on
//! both streams. Both streams' readers, the benchmark's instruments, run under
//! SCHED_FIFO 1, so that an arrival is stamped when the tool wrote it, not
//! when a reader at the scheduler's default got a CPU back from dockerd,
//! containerd and the runtimes busy with the next containers (with the
//! readers at the scheduler's default, a realtime zonemon was first on 97
//! and 98 of 100 starts, 2026-12-03: README, *Latency depends on scheduling*).
//! `--only docker:trace` (`docker_events/trace.rs`) is a diagnostic of the starts docker is
//! first with, not part of a full run.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use zonemon_testkit::{container_run_args, log_to, wait_ready, which};

mod trace;

use crate::context::Ctx;
use crate::guard::{Proc, Spawn};
use crate::monitor::{set_thread_policy, Kind, Seen};
use crate::stats::{fmt_dist, fmt_ns, percentile, realtime_ns};
use crate::table::{Report, Verdict};

const MEASURES: [&str; 3] = [
    "container start: who reported first",
    "container stop: who reported first",
    "missed starts+stops",
];
const CONSUMERS: [(&str, Option<u64>); 2] = [
    ("fast consumer", None),
    ("slow consumer, 50 ms per line", Some(50)),
];
const ROOT: &str = "/var/lib/zonemon-bench";
const RUN: &str = "/run/zonemon-bench";

/// The measure names of the rows, for every consumer.
fn measure(consumer: &str, what: &str, n: usize) -> String {
    format!("vs docker events ({consumer}, {n} containers): {what}")
}

fn skip_all(rep: &mut Report, n: usize, why: &str) {
    for (consumer, _) in CONSUMERS {
        for what in MEASURES {
            rep.row(
                &measure(consumer, what, n),
                why,
                "",
                "zonemon first, 0 missed",
                Verdict::NotRun,
            );
        }
    }
}

/// Whether the ELF file at `path` has no program interpreter (is statically linked).
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (size, num) = (u16_at(0x36), u16_at(0x38));
    (0..num).all(|i| {
        let o = phoff + i * size;
        b.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != 3) // PT_INTERP
    })
}

/// The docker CLI talking to the benchmark's own daemon.
struct Docker {
    cli: PathBuf,
    host: String,
}

impl Docker {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.cli);
        c.arg("-H")
            .arg(&self.host)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let o = Proc::spawn(self.cmd().args(args), Spawn::default())?.output()?;
        if !o.status.success() {
            bail!(
                "docker {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }
}

/// Measures and adds the docker rows (or says why they were skipped).
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let n = ctx.plan.docker_containers;
    let Some(dockerd) = which("dockerd") else {
        skip_all(
            rep,
            n,
            "skipped: docker.io not installed (apt-get install docker.io)",
        );
        return Ok(());
    };
    // The CLI of the same package as the daemon (/usr/bin/docker next to /usr/sbin/dockerd), else any on PATH.
    let cli = dockerd
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("bin/docker"))
        .filter(|p| p.is_file())
        .or_else(|| which("docker"));
    let Some(cli) = cli else {
        skip_all(rep, n, "skipped: no docker CLI (apt-get install docker.io)");
        return Ok(());
    };
    let busybox = Path::new("/bin/busybox");
    if !is_static_elf(busybox) {
        skip_all(
            rep,
            n,
            "skipped: no static busybox for the image (apt-get install busybox-static)",
        );
        return Ok(());
    }
    let log = ctx.helpers.zonefork.with_file_name("dockerd.log");
    // Registered first, so that at exit it runs after dockerd is stopped.
    let state = crate::guard::on_exit(remove_state);
    let daemon = match start_dockerd(&dockerd, &cli, &log) {
        Ok(d) => d,
        Err(e) => {
            skip_all(rep, n, &format!("n/a (dockerd did not start: {e:#})"));
            return Ok(());
        }
    };
    let (proc_, docker) = daemon;
    let outcome = (|| -> Result<()> {
        let image = import_image(&docker, busybox, &log.with_file_name("rootfs"))?;
        if ctx.only.part_named("docker", "trace") {
            trace::run(ctx, rep, &docker, &image)?;
        }
        if !ctx.only.part_selected("docker", "events") {
            return Ok(());
        }
        for (i, (consumer, slow)) in CONSUMERS.iter().enumerate() {
            phase(
                ctx,
                rep,
                &docker,
                &image,
                consumer,
                slow.map(Duration::from_millis),
                i,
            )?;
        }
        Ok(())
    })();
    stop_dockerd(proc_);
    if let Some(t) = state {
        crate::guard::undo_now(t);
    }
    outcome
}

fn start_dockerd(dockerd: &Path, cli: &Path, log: &Path) -> Result<(Proc, Docker)> {
    std::fs::create_dir_all(RUN)?;
    let sock = format!("{RUN}/docker.sock");
    let mut cmd = Command::new(dockerd);
    cmd.args(["--iptables=false", "--bridge=none", "--data-root"])
        .arg(format!("{ROOT}/docker"))
        .arg("--exec-root")
        .arg(format!("{RUN}/exec"))
        .arg("--pidfile")
        .arg(format!("{RUN}/docker.pid"))
        .arg("-H")
        .arg(format!("unix://{sock}"));
    log_to(&mut cmd, log)?;
    let mut p = Proc::spawn(
        &mut cmd,
        Spawn {
            group: false,
            session: true,
            death_signal: libc::SIGTERM,
            stop_signal: libc::SIGTERM,
            grace: Duration::from_secs(30),
        },
    )?;
    let docker = Docker {
        cli: cli.to_path_buf(),
        host: format!("unix://{sock}"),
    };
    wait_ready(Some(&mut p.child), log, Duration::from_secs(60), || {
        docker
            .run(&["version", "--format", "{{.Server.Version}}"])
            .is_ok()
    })
    .map_err(|e| anyhow::anyhow!("dockerd {e}"))?;
    Ok((p, docker))
}

fn stop_dockerd(mut p: Proc) {
    p.signal(libc::SIGTERM);
    let _ = p.wait_timeout(Duration::from_secs(30));
}

/// Removes the daemon's state unless something is still mounted there.
fn remove_state() {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if !mounts.contains(ROOT) && !mounts.contains(RUN) {
        let _ = std::fs::remove_dir_all(ROOT);
        let _ = std::fs::remove_dir_all(RUN);
    }
}

/// `docker import` of a rootfs holding only a static busybox (no registry needed).
fn import_image(docker: &Docker, busybox: &Path, dir: &Path) -> Result<String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::copy(busybox, dir.join("bin/busybox"))?;
    for applet in ["sh", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
    }
    let tar = dir.with_extension("tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .context("running tar")?;
    if !st.success() {
        bail!("tar failed");
    }
    let image = "zonemon-bench/busybox:local";
    docker.run(&["import", tar.to_str().context("odd path")?, image])?;
    Ok(image.to_string())
}

/// One `docker events` line of ours.
struct DockerEvent {
    action: String,
    name: String,
    /// When the benchmark's reader had the line (CLOCK_REALTIME, ns).
    arrival_ns: i128,
    /// When dockerd stamped the event (`timeNano`).
    stamp_ns: Option<i128>,
}

/// What one batch of containers left on both streams.
struct Collected {
    /// The containers' names, in the order they were started.
    names: Vec<String>,
    /// zonemon's records.
    seen: Seen,
    /// `docker events` lines about the batch.
    events: Vec<DockerEvent>,
    /// The docker commands that failed.
    failures: Vec<String>,
}

fn phase(
    ctx: &Ctx,
    rep: &mut Report,
    docker: &Docker,
    image: &str,
    consumer: &str,
    slow: Option<Duration>,
    i: usize,
) -> Result<()> {
    let n = ctx.plan.docker_containers;
    let c = collect(ctx, docker, image, &ctx.tag(&format!("dk{i}")), n, slow)?;
    report(rep, consumer, n, &c.names, &c.seen, &c.events, &c.failures);
    Ok(())
}

/// Starts and stops `n` containers named `prefix…` (four at a time) while
/// zonemon and `docker events` watch, each read by a reader under SCHED_FIFO 1
/// that sleeps `slow` after each line of the batch; waits until both streams
/// are complete or stop growing.
fn collect(
    ctx: &Ctx,
    docker: &Docker,
    image: &str,
    prefix: &str,
    n: usize,
    slow: Option<Duration>,
) -> Result<Collected> {
    let label = format!("zonemon-bench={prefix}");
    let zonemon = ctx.ebpf(slow)?;
    zonemon.set_reader_realtime()?;
    let mut events_cmd = docker.cmd();
    events_cmd
        .args(["events", "--filter", "type=container", "--filter"])
        .arg(format!("label={label}"))
        .args(["--format", "{{json .}}"]);
    let mut events = Proc::spawn(&mut events_cmd, Spawn::default())?;
    let out = events.child.stdout.take().expect("piped");
    let got: Arc<Mutex<Vec<DockerEvent>>> = Arc::default();
    let sink = Arc::clone(&got);
    let hurry = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hurry_reader = Arc::clone(&hurry);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let fifo = set_thread_policy(unsafe { libc::gettid() }, libc::SCHED_FIFO, 1);
        let ok = fifo.is_ok();
        let _ = ready_tx.send(fifo);
        if ok {
            read_docker_events(out, &sink, slow, &hurry_reader);
        }
    });
    // Both readers are instruments under the same policy, or the comparison is lopsided.
    if let Err(e) = ready_rx
        .recv()
        .context("the docker events reader thread died")?
    {
        let _ = reader.join();
        return Err(e.context("the docker events reader could not get SCHED_FIFO 1"));
    }
    thread::sleep(Duration::from_secs(1)); // let the subscription settle
    let names: Vec<String> = (0..n).map(|k| format!("{prefix}{k}")).collect();
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::default();
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n || crate::guard::closing() {
                    return;
                }
                let name = names[k].as_str();
                let r = docker
                    .run(&container_run_args(
                        name,
                        image,
                        &[&label],
                        "trap 'exit 0' TERM; sleep 3600 & wait",
                    ))
                    .and_then(|_| {
                        thread::sleep(Duration::from_millis(100));
                        docker.run(&["stop", "-t", "10", name])
                    })
                    .and_then(|_| docker.run(&["rm", name]));
                if let Err(e) = r {
                    failures.lock().unwrap().push(format!("{e:#}"));
                    let _ = docker.run(&["rm", "-f", name]);
                }
            });
        }
    });
    let count = |action: &str| {
        got.lock()
            .unwrap()
            .iter()
            .filter(|e| e.action == action)
            .count()
    };
    let drain = if slow.is_some() {
        Duration::from_secs(180)
    } else {
        Duration::from_secs(30)
    };
    let deadline = Instant::now() + drain;
    while Instant::now() < deadline && !crate::guard::closing() {
        let z = zonemon.with_seen(|s| s.count(Kind::Shutdown));
        if z >= n && count("destroy") >= n {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Wait until neither stream grows any more (a slow reader may still be catching up).
    let mut last = (usize::MAX, usize::MAX);
    while Instant::now() < deadline && !crate::guard::closing() {
        let now = (
            zonemon.with_seen(|s| s.recs.len()),
            got.lock().unwrap().len(),
        );
        if now == last {
            break;
        }
        last = now;
        thread::sleep(slow.unwrap_or(Duration::from_millis(200)) * 4);
    }
    hurry.store(true, Ordering::Relaxed); // the measurement is over: drain at full speed
    drop(events);
    let _ = reader.join();
    let seen = zonemon.stop()?;
    let events = std::mem::take(&mut *got.lock().unwrap());
    Ok(Collected {
        names,
        seen,
        events,
        failures: failures.into_inner().unwrap(),
    })
}

fn read_docker_events(
    mut out: std::process::ChildStdout,
    sink: &Mutex<Vec<DockerEvent>>,
    slow: Option<Duration>,
    hurry: &std::sync::atomic::AtomicBool,
) {
    let mut buf = vec![0u8; 1 << 16];
    let mut pending = Vec::new();
    loop {
        let k = match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => k,
        };
        let chunk_time = realtime_ns();
        pending.extend_from_slice(&buf[..k]);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
            let arrival_ns = if slow.is_some() {
                realtime_ns()
            } else {
                chunk_time
            };
            if let Ok(v) = serde_json::from_slice::<Value>(&pending[start..start + pos]) {
                let action = v["Action"]
                    .as_str()
                    .or(v["status"].as_str())
                    .unwrap_or("")
                    .to_string();
                let name = v["Actor"]["Attributes"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                sink.lock().unwrap().push(DockerEvent {
                    action,
                    name,
                    arrival_ns,
                    stamp_ns: v["timeNano"].as_i64().map(i128::from),
                });
            }
            if let Some(d) = slow.filter(|_| !hurry.load(Ordering::Relaxed)) {
                thread::sleep(d);
            }
            start += pos + 1;
        }
        pending.drain(..start);
    }
}

/// zonemon's own delay for these containers' records of `kind`: from the
/// kernel's timestamp (`time`) to the line read by the benchmark's reader
/// (under SCHED_FIFO 1, it gets a CPU at once).
fn own_delay(seen: &Seen, names: &[String], kind: Kind) -> String {
    let delays: Vec<f64> = seen
        .recs
        .iter()
        .filter(|r| r.kind == kind && names.contains(&r.name))
        .filter_map(|r| Some((r.arrival_ns - r.time_ns?) as f64))
        .collect();
    format!(
        "zonemon's own delay, kernel timestamp → line read (by a reader under SCHED_FIFO 1; for the slow consumer, its time per line too): {}",
        fmt_dist(&delays)
    )
}

fn first_arrivals<'a>(items: impl Iterator<Item = (&'a str, i128)>) -> HashMap<&'a str, i128> {
    let mut m = HashMap::new();
    for (name, t) in items {
        m.entry(name).or_insert(t);
    }
    m
}

fn report(
    rep: &mut Report,
    consumer: &str,
    n: usize,
    names: &[String],
    seen: &Seen,
    events: &[DockerEvent],
    failures: &[String],
) {
    let z_boot = first_arrivals(
        seen.recs
            .iter()
            .filter(|r| r.kind == Kind::Booted)
            .map(|r| (r.name.as_str(), r.arrival_ns)),
    );
    // The kernel's moment of each `booted` (the init's exec): docker's `start` read before it
    // was a start reported before the container's program ran.
    let z_exec = first_arrivals(
        seen.recs
            .iter()
            .filter(|r| r.kind == Kind::Booted)
            .filter_map(|r| Some((r.name.as_str(), r.time_ns?))),
    );
    let z_down = first_arrivals(
        seen.recs
            .iter()
            .filter(|r| r.kind == Kind::Shutdown)
            .map(|r| (r.name.as_str(), r.arrival_ns)),
    );
    let d_start = first_arrivals(
        events
            .iter()
            .filter(|e| e.action == "start")
            .map(|e| (e.name.as_str(), e.arrival_ns)),
    );
    let d_die = first_arrivals(
        events
            .iter()
            .filter(|e| e.action == "die")
            .map(|e| (e.name.as_str(), e.arrival_ns)),
    );
    let mut z_missed = 0;
    let mut d_missed = 0;
    for (what, z, d, zev, dev, kind) in [
        (
            MEASURES[0],
            &z_boot,
            &d_start,
            "booted",
            "start",
            Kind::Booted,
        ),
        (
            MEASURES[1],
            &z_down,
            &d_die,
            "shutdown",
            "die",
            Kind::Shutdown,
        ),
    ] {
        let mut leads = Vec::new();
        let mut before_exec = 0;
        for name in names {
            let (a, b) = (z.get(name.as_str()), d.get(name.as_str()));
            z_missed += a.is_none() as usize;
            d_missed += b.is_none() as usize;
            if let (Some(a), Some(b)) = (a, b) {
                leads.push((b - a) as f64);
                let exec = z_exec.get(name.as_str());
                before_exec += (kind == Kind::Booted && exec.is_some_and(|e| b < e)) as usize;
            }
        }
        let zfirst = leads.iter().filter(|l| **l > 0.0).count();
        let both = leads.len();
        let dist = match (
            percentile(&leads, 0.0),
            percentile(&leads, 50.0),
            percentile(&leads, 99.0),
        ) {
            (Some(min), Some(p50), Some(p99)) => {
                format!(
                    ", lead min {}, p50 {}, p99 {}",
                    fmt_ns(min),
                    fmt_ns(p50),
                    fmt_ns(p99)
                )
            }
            _ => String::new(),
        };
        rep.row(
            &measure(consumer, what, n),
            &format!("zonemon `{zev}` first for {zfirst}/{both}{dist}"),
            &format!(
                "docker events `{dev}` first for {}/{both}{} (lead = docker's arrival − zonemon's; zonemon's stream also carried {} lines about other users' zones meanwhile); {}",
                both - zfirst,
                if kind == Kind::Booted && both > zfirst {
                    format!(
                        ", of which {before_exec} read before the container's init exec'd (the kernel's timestamp of `booted`): a start reported before its program ran (`--only docker:trace` shows why)"
                    )
                } else {
                    String::new()
                },
                seen.foreign,
                own_delay(seen, names, kind)
            ),
            "zonemon first",
            Verdict::of(both > 0 && zfirst == both),
        );
    }
    rep.row(
        &measure(consumer, MEASURES[2], n),
        &format!("{z_missed}/{} missed", 2 * n),
        &format!(
            "docker events: {d_missed}/{} missed{}",
            2 * n,
            if failures.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} docker commands failed: {})",
                    failures.len(),
                    failures[0]
                )
            }
        ),
        "0 missed",
        Verdict::of(z_missed == 0 && failures.is_empty()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic() {
        assert!(!is_static_elf(Path::new("/bin/sh")) || !Path::new("/lib64").exists());
        assert!(!is_static_elf(Path::new("/nonexistent")));
    }
}
