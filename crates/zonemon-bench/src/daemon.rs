//! Through the daemon: detection latency to a client of the local API
//! (`zonemon watch` reading the daemon's socket), side by side with a
//! standalone `zonemon watch` watching the same zones at the same time; and
//! what journaling costs the daemon per record (CPU, bytes on disk).

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::context::Ctx;
use crate::guard::{Proc, Spawn};
use crate::latency::latencies;
use crate::monitor::{Kind, Monitor};
use crate::procstat::usage;
use crate::stats::{fmt_dist, percentile};
use crate::table::{Report, Verdict};
use crate::zones::run_unshare_zone;

/// Measures and adds the daemon rows.
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("zmb-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).context("making the daemon's directory")?;
    let outcome = measure(ctx, rep, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn measure(ctx: &Ctx, rep: &mut Report, dir: &Path) -> Result<()> {
    let journal = dir.join("journal.db");
    let socket = dir.join("zonemon.sock");
    let mut cmd = Command::new(&ctx.zonemon);
    cmd.arg("daemon")
        .arg("--journal")
        .arg(&journal)
        .arg("--socket")
        .arg(&socket)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let daemon = Proc::spawn(
        &mut cmd,
        Spawn {
            stop_signal: libc::SIGTERM,
            grace: Duration::from_secs(10),
            ..Spawn::default()
        },
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !socket.exists() {
        if Instant::now() > deadline {
            bail!("zonemon daemon did not make its socket within 60 s (does this zonemon have `daemon`?)");
        }
        thread::sleep(Duration::from_millis(50));
    }
    let socket_arg = socket.to_string_lossy().into_owned();
    let standalone = Monitor::start(&ctx.zonemon, &["--standalone".into()], &ctx.prefix, None)
        .map_err(|e| anyhow::anyhow!("standalone watch: {e}"))?;
    let client = Monitor::start(
        &ctx.zonemon,
        &["--socket".into(), socket_arg],
        &ctx.prefix,
        None,
    )
    .map_err(|e| anyhow::anyhow!("watch through the daemon: {e}"))?;
    // The client says it watches as it connects: give its stream a moment to be open.
    thread::sleep(Duration::from_millis(500));
    let before = usage(daemon.pid())?;
    let n = ctx.plan.latency_zones;
    let prefix = ctx.tag("daemon");
    for i in 0..n {
        let script = if i % 2 == 0 { "exit 0" } else { "sleep 0.01" };
        run_unshare_zone(&format!("{prefix}{i}"), script)?;
        // Idle gaps of 10-34 ms, so each transition meets a sleeping reader.
        thread::sleep(Duration::from_millis(10 + (i as u64 * 7) % 25));
    }
    for m in [&standalone, &client] {
        m.wait_until(Duration::from_secs(30), |s| {
            s.with(Kind::Down, &prefix).count() >= n
        });
    }
    let cpu_ns_used = usage(daemon.pid())?.since(&before).exec_ns;
    let (a, b) = (standalone.stop()?, client.stop()?);
    let mut daemon = daemon;
    daemon.signal(libc::SIGTERM); // it flushes the journal and exits
    daemon.wait_timeout(Duration::from_secs(10))?;
    let (lat_a, lat_b) = (latencies(&a), latencies(&b));
    let (p99_a, p99_b) = (
        percentile(&lat_a, 99.0).unwrap_or(f64::INFINITY),
        percentile(&lat_b, 99.0).unwrap_or(f64::INFINITY),
    );
    let missed = (2 * n).saturating_sub(lat_b.len());
    let ratio = p99_b / p99_a;
    rep.row(
        &format!(
            "Detection latency to a client of the daemon's API (`zonemon watch` on its socket; {} boots+shutdowns, one zone at a time)",
            lat_b.len()
        ),
        &format!(
            "{}{}",
            fmt_dist(&lat_b),
            if missed > 0 { format!(" ({missed} missed)") } else { String::new() }
        ),
        &format!(
            "standalone `watch`, the same zones at the same time: {}; p99 ratio {ratio:.2}×",
            fmt_dist(&lat_a)
        ),
        "p99 ≤ 1.5× standalone",
        Verdict::of(ratio <= 1.5 && missed == 0),
    );
    // Every record the daemon journaled in the run (other zones of the host included).
    let records = journal_records(&ctx.zonemon, &journal)?;
    let bytes: u64 = ["journal.db", "journal.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    if records > 0 {
        rep.row(
            "Daemon: CPU and journal bytes per record (watching and journaling, `synchronous=FULL`)",
            &format!(
                "{:.0} µs CPU, {} bytes per record ({records} records)",
                cpu_ns_used as f64 / records as f64 / 1e3,
                bytes / records
            ),
            "standalone `watch`: the throughput row's CPU per transition",
            "",
            Verdict::Info,
        );
    }
    Ok(())
}

/// How many records the journal holds (`zonemon events --json`).
fn journal_records(zonemon: &Path, journal: &Path) -> Result<u64> {
    let out = Command::new(zonemon)
        .args(["events", "--since", "1d", "--json", "--journal"])
        .arg(journal)
        .output()
        .context("running zonemon events")?;
    if !out.status.success() {
        bail!(
            "zonemon events: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout.iter().filter(|&&b| b == b'\n').count() as u64)
}
