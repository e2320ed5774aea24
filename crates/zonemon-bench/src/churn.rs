//! Completeness under churn: short-lived zones (`exit 0` and `sleep 0.01`,
//! alternating) 1, 8 and 32 at a time, watched by every source at once; the
//! share of boots and shutdowns each source reported, by zone name.

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use anyhow::Result;

use crate::context::{Ctx, UNAVAILABLE};
use crate::monitor::{Kind, Monitor, Seen, Source};
use crate::stats::fmt_pct;
use crate::table::{ChurnGroup, Report, Verdict};
use crate::zones::run_unshare_batch;

/// Zones at a time.
pub const PARALLEL: [usize; 3] = [1, 8, 32];

/// Distinct zones of `prefix` seen booted plus distinct zones seen shut down.
fn seen_share(seen: &Seen, prefix: &str) -> usize {
    let booted: HashSet<&str> = seen
        .with(Kind::Booted, prefix)
        .map(|r| r.name.as_str())
        .collect();
    let down: HashSet<&str> = seen
        .with(Kind::Shutdown, prefix)
        .map(|r| r.name.as_str())
        .collect();
    booted.len() + down.len()
}

/// Measures and adds the churn rows.
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let n = ctx.plan.churn_zones;
    let ebpf = ctx.ebpf(None)?;
    let mut others: Vec<(Source, Monitor)> = Vec::new();
    for s in ctx.available() {
        others.push((s, ctx.start(s)?));
    }
    let mut batches = Vec::new();
    for p in PARALLEL {
        let prefix = ctx.tag(&format!("churn{p}"));
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        let before = ebpf.with_seen(|s| s.count(Kind::Shutdown));
        let b = run_unshare_batch(
            &names,
            |i| {
                if i % 2 == 0 {
                    "exit 0".into()
                } else {
                    "sleep 0.01".into()
                }
            },
            p,
        )?;
        ebpf.wait_until(Duration::from_secs(30), |s| {
            s.count(Kind::Shutdown) >= before + n
        });
        batches.push((p, prefix, b));
    }
    // A last scan for the pollers, so zones they did see get their shutdown.
    thread::sleep(ctx.slowest_poll() + Duration::from_millis(500));
    let ebpf_seen = ebpf.stop()?;
    let mut other_seen = Vec::new();
    for (s, m) in others {
        other_seen.push((s, m.stop()?));
    }
    for (p, prefix, b) in &batches {
        let total = 2 * n;
        let ours = seen_share(&ebpf_seen, prefix);
        let mut cells = Vec::new();
        let mut shares = vec![(
            Source::Ebpf.label(),
            Some(ours as f64 * 100.0 / total as f64),
        )];
        for (source, offered) in &ctx.sources {
            match (offered, other_seen.iter().find(|(s, _)| s == source)) {
                (Ok(()), Some((_, seen))) => {
                    let k = seen_share(seen, prefix);
                    cells.push(format!(
                        "{} {} ({k}/{total})",
                        source.label(),
                        fmt_pct(k, total)
                    ));
                    shares.push((source.label(), Some(k as f64 * 100.0 / total as f64)));
                }
                _ => {
                    cells.push(format!("{} {UNAVAILABLE}", source.label()));
                    shares.push((source.label(), None));
                }
            }
        }
        rep.row(
            &format!("Completeness under churn, {p} at a time ({n} zones: `exit 0` / `sleep 0.01`), boots+shutdowns seen"),
            &format!("{} ({ours}/{total})", fmt_pct(ours, total)),
            &cells.join("; "),
            "100%",
            Verdict::of(ours == total && b.failed == 0),
        );
        rep.churn.push(ChurnGroup {
            parallel: *p,
            shares,
        });
    }
    rep.note(format!(
        "Churn: zones made with the unshare recipe (its own UTS and PID namespaces, hostname set before the init exists); rates reached: {}; \
         all sources watched the same zones at the same time; eBPF lost records: {}.",
        batches
            .iter()
            .map(|(p, _, b)| format!("{p} at a time {:.0} zones/s{}", b.rate(), if b.failed > 0 { format!(" ({} failed)", b.failed) } else { String::new() }))
            .collect::<Vec<_>>()
            .join(", "),
        ebpf_seen.lost
    ));
    Ok(())
}
