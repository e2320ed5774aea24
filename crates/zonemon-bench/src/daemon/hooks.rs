//! A slow hook never delays detection: two daemons watch the same zones at
//! the same time, one running a hook that sleeps 1 s on every record, the
//! other none; a client of each measures its detection latency.

use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::Result;

use super::service::Service;
use crate::context::Ctx;
use crate::latency::latencies;
use crate::monitor::Kind;
use crate::stats::{fmt_dist, percentile};
use crate::table::{Report, Verdict};
use crate::zones::run_unshare_zone;

/// The hook: a second's sleep on every record.
const SLOW_HOOK: &str = r#"{ name = "sleep", run = ["/bin/sleep", "1"] }"#;

/// Measures and adds the hook row; the daemons journal below `dir`.
pub fn run(ctx: &Ctx, rep: &mut Report, dir: &Path) -> Result<()> {
    let plain = Service::start(&ctx.zonemon, &dir.join("plain"), &[], &[])?;
    let hooked = Service::start(
        &ctx.zonemon,
        &dir.join("hooked"),
        &[],
        &["--hook", SLOW_HOOK],
    )?;
    let (a, b) = (
        plain.client(&ctx.zonemon, &ctx.prefix)?,
        hooked.client(&ctx.zonemon, &ctx.prefix)?,
    );
    thread::sleep(Duration::from_millis(500));
    let n = ctx.plan.latency_zones;
    let prefix = ctx.tag("hooks");
    for i in 0..n {
        run_unshare_zone(&format!("{prefix}{i}"), "exit 0")?;
        thread::sleep(Duration::from_millis(10 + (i as u64 * 7) % 25));
    }
    for m in [&a, &b] {
        m.wait_until(Duration::from_secs(30), |s| {
            s.with(Kind::Down, &prefix).count() >= n
        });
    }
    let (a, b) = (a.stop()?, b.stop()?);
    plain.stop()?;
    hooked.stop()?;
    let (lat_a, lat_b) = (latencies(&a, &prefix), latencies(&b, &prefix));
    let p = |l: &[f64], q: f64| percentile(l, q).unwrap_or(f64::INFINITY);
    let (r50, r99) = (
        p(&lat_b, 50.0) / p(&lat_a, 50.0),
        p(&lat_b, 99.0) / p(&lat_a, 99.0),
    );
    let missed = (2 * n).saturating_sub(lat_b.len());
    rep.row(
        &format!(
            "Daemon with a hook that sleeps 1 s on every record: detection latency to an API client ({} boots+shutdowns)",
            lat_b.len()
        ),
        &format!(
            "{}{}; ratio to no hook p50 {r50:.2}×, p99 {r99:.2}×",
            fmt_dist(&lat_b),
            if missed > 0 { format!(" ({missed} missed)") } else { String::new() }
        ),
        &format!(
            "a daemon without hooks, the same zones at the same time: {} (the hook's runs queue, 4 at a time; what does not fit is dropped and counted)",
            fmt_dist(&lat_a)
        ),
        "the same (p99 ≤ 1.25×)",
        Verdict::of(r99 <= 1.25 && missed == 0),
    );
    Ok(())
}
