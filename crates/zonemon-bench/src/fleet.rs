//! The fleet (README's "Fleet"): a `zonemon daemon --publish` to a real
//! `nats-server` (Debian's, JetStream on, loopback, its store on a disk).
//!
//! - *latency*: from the kernel's timestamp to the line a fleet consumer
//!   (`zonemon watch --from --json`) reads, zones one at a time;
//! - *the recorded run*: zones made 8 at a time as fast as they go while the
//!   daemon journals them; its journal, written out as JSON lines, is what
//!   the simulated hosts replay, and its record rate is the peak rate of a host;
//! - *catch-up*: the server killed, zones made for the outage, the server
//!   started again: how fast the daemon publishes what it journaled meanwhile,
//!   and whether the consumer got every zone;
//! - *sustained rate* and *hosts*: `zonemon fleet-replay` (the daemon's own
//!   journal writer and publisher, without the kernel side): one host as fast
//!   as it goes, then 1, 2, 4 … hosts each at the peak rate, until a count
//!   falls behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use zonemon_testkit::{which, NatsServer};

use crate::context::Ctx;
use crate::daemon::journal::Journal;
use crate::daemon::service::Service;
use crate::daemon::work_dir;
use crate::latency::latencies;
use crate::monitor::{Kind, Monitor};
use crate::procstat::usage;
use crate::stats::{fmt_dist, fmt_ns, percentile};
use crate::table::{Report, Verdict};
use crate::zones::{run_unshare_batch, run_unshare_zone};

/// The stream the daemon publishes to (its default).
const STREAM: &str = "ZONEMON";

/// Measures and adds the fleet's rows; without `nats-server`, says so in them.
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    if which("nats-server").is_none() {
        rep.row(
            "Fleet (NATS JetStream)",
            "skipped: no nats-server (apt-get install nats-server; ./dev installs it)",
            "",
            "",
            Verdict::NotRun,
        );
        return Ok(());
    }
    let dir = work_dir("fleet")?;
    let mut nats = NatsServer::start(&dir.join("nats"), true, &[])
        .map_err(|e| anyhow!("starting nats-server: {e}"))?;
    let url = nats.url();
    let daemon = Service::start(
        &ctx.zonemon,
        &dir.join("host"),
        &[],
        &["--publish", &url, "--host-id", "bench-1"],
    )?;
    let consumer = Monitor::start(
        &ctx.zonemon,
        &["--from".into(), url.clone()],
        &ctx.prefix,
        None,
    )
    .map_err(|e| anyhow!("zonemon watch --from: {e}"))?;
    // The consumer says it watches once its consumer exists: give it a moment to be fed.
    thread::sleep(Duration::from_millis(500));
    latency(ctx, rep, &consumer)?;
    let recorded = dir.join("recorded.jsonl");
    let peak = record(ctx, &daemon, &recorded)?;
    catch_up(ctx, rep, &mut nats, &daemon, &consumer, peak)?;
    consumer.stop()?;
    daemon.stop()?;
    // The simulated hosts' journals are not what is measured: in memory when it can be.
    let shm = PathBuf::from("/dev/shm");
    let hosts_dir = match shm.is_dir() {
        true => shm.join(format!("zonemon-bench-fleet-{}", std::process::id())),
        false => dir.join("hosts"),
    };
    let cleanup = hosts_dir.clone();
    crate::guard::on_exit(move || {
        let _ = std::fs::remove_dir_all(&cleanup);
    });
    let replay = Replay {
        zonemon: &ctx.zonemon,
        url: &url,
        events: &recorded,
        dir: &hosts_dir,
        server: nats.pid().context("nats-server is not running")? as i32,
        store: dir.join("nats/js"),
    };
    sustained(ctx, rep, &replay, peak)?;
    hosts(ctx, rep, &replay, peak)?;
    let _ = std::fs::remove_dir_all(&hosts_dir);
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Kernel to fleet consumer, zones one at a time.
fn latency(ctx: &Ctx, rep: &mut Report, consumer: &Monitor) -> Result<()> {
    let n = ctx.plan.latency_zones;
    let prefix = ctx.tag("fleet");
    for i in 0..n {
        let script = if i % 2 == 0 { "exit 0" } else { "sleep 0.01" };
        run_unshare_zone(&format!("{prefix}{i}"), script)?;
        // Idle gaps of 10-34 ms, so each transition meets a sleeping daemon and consumer.
        thread::sleep(Duration::from_millis(10 + (i as u64 * 7) % 25));
    }
    consumer.wait_until(Duration::from_secs(60), |s| {
        s.with(Kind::Down, &prefix).count() >= n
    });
    // The consumer has seen only these zones so far (it reads what is published from its start).
    let lat = consumer.with_seen(|s| latencies(s, ""));
    let missed = (2 * n).saturating_sub(lat.len());
    let p99 = percentile(&lat, 99.0).unwrap_or(f64::INFINITY);
    rep.row(
        &format!(
            "Fleet: latency from the kernel's timestamp to a fleet consumer (`zonemon watch --from`, loopback nats-server; {} boots+shutdowns, one zone at a time)",
            lat.len()
        ),
        &format!(
            "{}{}",
            fmt_dist(&lat),
            if missed > 0 { format!(" ({missed} missed)") } else { String::new() }
        ),
        "daemon → journal → publisher → nats-server (file store) → ordered consumer → line read",
        "p99 ≤ 5 ms",
        Verdict::of(p99 <= 5e6 && missed == 0),
    );
    Ok(())
}

/// Makes the recorded run and writes the daemon's journal out to `file`; returns its
/// record rate (records journaled per second while the zones were made): a host's peak.
fn record(ctx: &Ctx, daemon: &Service, file: &Path) -> Result<f64> {
    let journal = Journal::open(&daemon.journal)?;
    let seq0 = journal.last_seq()?;
    let prefix = ctx.tag("fleetrec");
    let names: Vec<String> = (0..ctx.plan.fleet_record_zones)
        .map(|i| format!("{prefix}{i}"))
        .collect();
    let batch = run_unshare_batch(&names, |_| "exit 0".into(), 8)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while journal.downs_after(seq0, &prefix)? < batch.made as u64 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let records = journal.last_seq()? - seq0;
    let out = Command::new(&ctx.zonemon)
        .args(["events", "--json", "--all", "--since", "1d", "--journal"])
        .arg(&daemon.journal)
        .output()
        .context("running zonemon events")?;
    if !out.status.success() {
        bail!(
            "zonemon events: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::write(file, &out.stdout).with_context(|| format!("writing {}", file.display()))?;
    Ok(records as f64 / batch.elapsed.as_secs_f64().max(1e-3))
}

/// The bus down for the plan's outage while zones are made; how fast the daemon catches up.
fn catch_up(
    ctx: &Ctx,
    rep: &mut Report,
    nats: &mut NatsServer,
    daemon: &Service,
    consumer: &Monitor,
    peak: f64,
) -> Result<()> {
    let journal = Journal::open(&daemon.journal)?;
    let settled = |j: &Journal| -> Result<bool> { Ok(j.published(STREAM)? >= j.last_seq()?) };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !settled(&journal)? && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    nats.kill9();
    let outage = ctx.plan.fleet_outage;
    let down = Instant::now();
    let prefix = ctx.tag("fleetout");
    let mut made = 0;
    while down.elapsed() < outage && !crate::guard::closing() {
        let names: Vec<String> = (made..made + 20).map(|i| format!("{prefix}{i}")).collect();
        made += run_unshare_batch(&names, |_| "exit 0".into(), 2)?.made;
    }
    let outage = down.elapsed();
    // The outage's last downs (a second or so after their shutdowns) are journaled too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal.downs_after(0, &prefix)? < made as u64 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let acked = journal.published(STREAM)?;
    let target = journal.last_seq()?;
    nats.restart()
        .map_err(|e| anyhow!("restarting nats-server: {e}"))?;
    let up = Instant::now();
    // The first mark above what was acknowledged before the outage: records journaled
    // during it are being acknowledged (marks are written every 250 ms while records flow).
    let mut first: Option<(Instant, u64)> = None;
    let deadline = up + Duration::from_secs(600);
    let done = loop {
        let now = journal.published(STREAM)?;
        if first.is_none() && now > acked {
            first = Some((Instant::now(), now));
        }
        if now >= target {
            break Instant::now();
        }
        if Instant::now() > deadline {
            bail!("the daemon did not catch up within 600 s of the server's restart ({now} of {target})");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let behind = target - acked;
    let total = done - up;
    let rate = match first {
        Some((t, seq)) if done - t >= Duration::from_millis(500) => {
            format!(
                "{:.0} records/s",
                (target - seq) as f64 / (done - t).as_secs_f64()
            )
        }
        _ => {
            "too few marks to tell a rate (all acknowledged within 500 ms of the first mark)".into()
        }
    };
    let rate_value = first
        .filter(|(t, _)| done - *t >= Duration::from_millis(500))
        .map(|(t, seq)| (target - seq) as f64 / (done - t).as_secs_f64());
    consumer.wait_until(Duration::from_secs(60), |s| {
        s.with(Kind::Down, &prefix).count() >= made
    });
    let got = consumer.with_seen(|s| s.with(Kind::Shutdown, &prefix).count());
    rep.row(
        &format!(
            "Fleet: catch-up after a {} s bus outage (nats-server killed with -9, zones made meanwhile, started again)",
            outage.as_secs()
        ),
        &format!(
            "{behind} records behind, all published {:.1} s after the server was back (the client's \
             reconnect and the republished last ≤ 4,096 acknowledged records included); from the first \
             mark on: {rate}",
            total.as_secs_f64()
        ),
        &format!(
            "{made} zones made during the outage; the fleet consumer got the shutdown of {got} of them; \
             a host's peak: {peak:.0} records/s"
        ),
        "nothing lost; catch-up faster than a host's peak",
        Verdict::of(got == made && rate_value.is_none_or(|r| r > peak)),
    );
    Ok(())
}

/// How far a simulated host may fall behind, in time of its records, and still count as
/// kept up with: on this shared 2-CPU machine a host's publisher, its journal writer and the
/// server all wait for a CPU, and stalls of a second or two come and go.
const LAG_LIMIT: Duration = Duration::from_secs(5);

/// `zonemon fleet-replay` against the benchmark's server.
struct Replay<'a> {
    zonemon: &'a Path,
    url: &'a str,
    events: &'a Path,
    dir: &'a Path,
    server: i32,
    store: PathBuf,
}

/// What one replay did (its JSON line), with the server's CPU and store growth meanwhile.
struct Replayed {
    out: Value,
    server_cpu_ns: u64,
    store_bytes: u64,
}

impl Replayed {
    fn num(&self, key: &str) -> f64 {
        self.out[key].as_f64().unwrap_or(0.0)
    }

    /// Every record published, none dropped, no host ever more than [`LAG_LIMIT`] of its
    /// records behind (a backlog that does not grow; the journal holds the rest meanwhile),
    /// and what was left published within a second of the feeding's end.
    fn kept_up(&self, rate: f64) -> bool {
        self.num("acked") == self.num("records")
            && self.num("unjournaled") == 0.0
            && self.num("max_lag_records") <= rate.max(1.0) * LAG_LIMIT.as_secs_f64()
            && self.num("drain_seconds") <= 1.0
    }

    /// The largest lag of a host, in seconds of its records.
    fn lag_seconds(&self, rate: f64) -> f64 {
        self.num("max_lag_records") / rate.max(1.0)
    }
}

impl Replay<'_> {
    fn run(&self, hosts: usize, rate: f64, seconds: Duration, tag: &str) -> Result<Replayed> {
        let before = usage(self.server)?.exec_ns;
        let bytes = dir_bytes(&self.store);
        let out = Command::new(self.zonemon)
            .args(["fleet-replay", "--publish", self.url, "--events"])
            .arg(self.events)
            .arg("--dir")
            .arg(self.dir)
            .args(["--hosts", &hosts.to_string(), "--rate", &rate.to_string()])
            .args(["--seconds", &seconds.as_secs_f64().to_string()])
            .args(["--host-prefix", tag])
            .output()
            .context("running zonemon fleet-replay")?;
        if !out.status.success() {
            bail!(
                "zonemon fleet-replay: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let out: Value = serde_json::from_str(line.trim())
            .with_context(|| format!("fleet-replay's outcome: {line}"))?;
        let _ = std::fs::remove_dir_all(self.dir);
        Ok(Replayed {
            out,
            server_cpu_ns: usage(self.server)?.exec_ns.saturating_sub(before),
            store_bytes: dir_bytes(&self.store).saturating_sub(bytes),
        })
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// One host publishing as fast as it goes.
fn sustained(ctx: &Ctx, rep: &mut Report, replay: &Replay, peak: f64) -> Result<()> {
    let r = replay.run(1, 0.0, ctx.plan.fleet_sustain, "sustain")?;
    let rate = r.num("acked_per_second");
    let acked = r.num("acked").max(1.0);
    rep.row(
        &format!(
            "Fleet: sustained publishing rate, one host as fast as it goes for {} s (the daemon's journal writer and publisher, `zonemon fleet-replay`)",
            ctx.plan.fleet_sustain.as_secs()
        ),
        &format!(
            "{rate:.0} records/s ({:.0} records, each a stream message and a bucket update or delete)",
            r.num("acked")
        ),
        &format!(
            "nats-server CPU {} per record, store {:.0} bytes per record; a host's peak: {peak:.0} records/s",
            fmt_ns(r.server_cpu_ns as f64 / acked),
            r.store_bytes as f64 / acked
        ),
        "≥ a host's peak record rate",
        Verdict::of(rate >= peak),
    );
    Ok(())
}

/// Hosts at the peak rate each, more and more, until a count falls behind.
fn hosts(ctx: &Ctx, rep: &mut Report, replay: &Replay, peak: f64) -> Result<()> {
    let step = ctx.plan.fleet_step;
    let mut best: Option<(usize, Replayed)> = None;
    let mut behind: Option<(usize, Replayed)> = None;
    for &n in &ctx.plan.fleet_hosts {
        if crate::guard::closing() {
            break;
        }
        let r = replay.run(n, peak, step, &format!("h{n}"))?;
        eprintln!(
            "zonemon-bench: fleet: {n} hosts at {peak:.0} records/s each: {}",
            r.out
        );
        if r.kept_up(peak) {
            best = Some((n, r));
        } else {
            behind = Some((n, r));
            break;
        }
    }
    let Some((n, r)) = best else {
        bail!("not even one host kept up at {peak:.0} records/s");
    };
    let per_record = r.server_cpu_ns as f64 / r.num("acked").max(1.0);
    let projected = 1e9 / per_record.max(1.0) / peak;
    let over = match &behind {
        Some((m, b)) => format!(
            "{m} fell behind (a host up to {:.1} s behind, {:.1} s to drain at the end)",
            b.lag_seconds(peak),
            b.num("drain_seconds")
        ),
        None => "no count tried fell behind".into(),
    };
    rep.row(
        &format!(
            "Fleet: hosts one nats-server on this machine takes, each at a host's peak ({peak:.0} records/s, the recorded run's), {} s per count",
            step.as_secs()
        ),
        &format!(
            "{n} hosts ({:.0} records/s in all, every one acknowledged, a host at most {:.1} s behind); {over}",
            r.num("acked_per_second"),
            r.lag_seconds(peak)
        ),
        &format!(
            "the simulated hosts share the 2 CPUs with the server; nats-server CPU {} per record: \
             a core of its own would take {projected:.0} hosts at that peak (projected)",
            fmt_ns(per_record)
        ),
        "no host more than 5 s behind, all published within 1 s of the end",
        Verdict::Info,
    );
    Ok(())
}
