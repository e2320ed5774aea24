//! Detection latency to a client of the daemon's API (`zonemon watch`
//! reading the daemon's socket), side by side with a standalone `zonemon
//! watch` watching the same zones at the same time.

use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::journal::Journal;
use super::service::Service;
use crate::context::Ctx;
use crate::latency::latencies;
use crate::monitor::{Kind, Monitor};
use crate::procstat::usage;
use crate::stats::{fmt_dist, fmt_ns, percentile};
use crate::table::{Report, Verdict};
use crate::zones::run_unshare_zone;

/// Measures and adds the latency row; the daemon journals into `dir`.
pub fn run(ctx: &Ctx, rep: &mut Report, dir: &Path) -> Result<()> {
    let daemon = Service::start(&ctx.zonemon, dir, &[], &[])?;
    let standalone = Monitor::start(&ctx.zonemon, &["--standalone".into()], &ctx.prefix, None)
        .map_err(|e| anyhow!("standalone watch: {e}"))?;
    let client = daemon.client(&ctx.zonemon, &ctx.prefix)?;
    // The client says it watches as it connects: give its stream a moment to be open.
    thread::sleep(Duration::from_millis(500));
    let journal = Journal::open(&daemon.journal)?;
    let seq0 = journal.last_seq()?;
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
    let cpu_ns = usage(daemon.pid())?.since(&before).exec_ns;
    let records = journal.last_seq()? - seq0;
    let (a, b) = (standalone.stop()?, client.stop()?);
    daemon.stop()?;
    let (lat_a, lat_b) = (latencies(&a), latencies(&b));
    let (p99_a, p99_b) = (
        percentile(&lat_a, 99.0).unwrap_or(f64::INFINITY),
        percentile(&lat_b, 99.0).unwrap_or(f64::INFINITY),
    );
    let missed = (2 * n).saturating_sub(lat_b.len());
    let ratio = p99_b / p99_a;
    rep.row(
        &format!(
            "Daemon: detection latency to a client of its API (`zonemon watch` on its socket; {} boots+shutdowns, one zone at a time)",
            lat_b.len()
        ),
        &format!(
            "{}{}",
            fmt_dist(&lat_b),
            if missed > 0 { format!(" ({missed} missed)") } else { String::new() }
        ),
        &format!(
            "standalone `watch`, the same zones at the same time: {}; p99 ratio {ratio:.2}×. \
             The daemon's CPU meanwhile: {} per record ({records} records, each zone's a commit or two of its own, served to the client)",
            fmt_dist(&lat_a),
            fmt_ns(cpu_ns as f64 / records.max(1) as f64),
        ),
        "p99 ≤ 1.5× standalone",
        Verdict::of(ratio <= 1.5 && missed == 0),
    );
    Ok(())
}
