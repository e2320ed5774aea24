//! Throughput: the highest zone rate zonemon follows with zero loss (no
//! `lost` record, every zone's boot and shutdown seen), ramping how many
//! zones are made at a time with the `zonefork` helper (the cheapest zone:
//! clone into new PID+UTS namespaces, sethostname, exec a static program
//! that exits at once), and zonemon's CPU time per transition.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::context::Ctx;
use crate::monitor::Kind;
use crate::procstat::usage;
use crate::stats::fmt_ns;
use crate::table::{Report, Verdict};

struct Step {
    parallel: usize,
    rate: f64,
    lossless: bool,
    cpu_per_transition_ns: f64,
    maker_cpu_per_zone_ns: f64,
    seen: usize,
    lost: u64,
    /// How long after the last zone ended zonemon had reported every shutdown and down.
    waited: Duration,
    downs_missing: usize,
}

/// Measures and adds the throughput rows.
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let k = ctx.plan.throughput_zones;
    let m = ctx.ebpf(None)?;
    let mut steps = Vec::new();
    for &p in &ctx.plan.throughput_steps {
        let prefix = ctx.tag(&format!("tp{p}"));
        let (sd0, dn0, lost0, recs0) = m.with_seen(|s| {
            (
                s.count(Kind::Shutdown),
                s.count(Kind::Down),
                s.lost,
                s.recs.len(),
            )
        });
        let u0 = usage(m.pid())?;
        let b = ctx.helpers.zonefork(&prefix, 0, k, p)?;
        let waited = Instant::now();
        m.wait_for_zones(sd0 + k, dn0 + k);
        let u = usage(m.pid())?.since(&u0);
        let waited = waited.elapsed();
        let downs_missing = m.with_seen(|s| (dn0 + k).saturating_sub(s.count(Kind::Down)));
        let (seen, transitions, lost) = m.with_seen(|s| {
            let new = &s.recs[recs0..];
            let booted: HashSet<&str> = new
                .iter()
                .filter(|r| r.kind == Kind::Booted)
                .map(|r| r.name.as_str())
                .collect();
            let down: HashSet<&str> = new
                .iter()
                .filter(|r| r.kind == Kind::Shutdown)
                .map(|r| r.name.as_str())
                .collect();
            (booted.len() + down.len(), new.len(), s.lost - lost0)
        });
        steps.push(Step {
            parallel: p,
            rate: b.rate(),
            lossless: lost == 0 && seen == 2 * k && b.failed == 0,
            cpu_per_transition_ns: u.exec_ns as f64 / transitions.max(1) as f64,
            maker_cpu_per_zone_ns: b.cpu_ns.unwrap_or(0) as f64 / b.made.max(1) as f64,
            seen,
            lost,
            waited,
            downs_missing,
        });
    }
    m.stop()?;
    let ramp = steps
        .iter()
        .map(|s| {
            format!(
                "{}: {:.0}/s{}{}",
                s.parallel,
                s.rate,
                if s.lossless {
                    String::new()
                } else {
                    format!(" LOSS (seen {}/{}, lost {})", s.seen, 2 * k, s.lost)
                },
                if s.downs_missing > 0 {
                    format!(" ({} downs missing)", s.downs_missing)
                } else {
                    String::new()
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let best = steps
        .iter()
        .filter(|s| s.lossless)
        .max_by(|a, b| a.rate.total_cmp(&b.rate));
    let fastest = steps.iter().map(|s| s.rate).fold(0.0, f64::max);
    match best {
        Some(b) => {
            rep.row(
                &format!("Throughput: highest zone rate with zero loss ({k} zones per step, ramp of zones at a time)"),
                &format!("{:.0} zones/s ({} at a time, {:.0} transitions/s), 0 lost", b.rate, b.parallel, b.rate * 4.0),
                &format!("what this machine can make, by zones at a time: {ramp}"),
                "zero loss at the machine's fastest rate",
                Verdict::of(b.rate >= fastest),
            );
            rep.row(
                "zonemon CPU per transition (at that rate)",
                &fmt_ns(b.cpu_per_transition_ns),
                &format!(
                    "making the zone costs {} CPU per zone (zone maker and the zone, user+system)",
                    fmt_ns(b.maker_cpu_per_zone_ns)
                ),
                "—",
                Verdict::Info,
            );
        }
        None => {
            rep.row(
                "Throughput: highest zone rate with zero loss",
                "none: every step lost zones",
                &ramp,
                "zero loss",
                Verdict::Miss,
            );
            rep.row(
                "zonemon CPU per transition (at that rate)",
                "n/a (no lossless step)",
                "",
                "—",
                Verdict::Info,
            );
        }
    }
    rep.note(format!(
        "Throughput steps, time from the last zone's end until zonemon had printed every shutdown and down: {}.",
        steps
            .iter()
            .map(|s| format!(
                "{} at a time {}{}",
                s.parallel,
                fmt_ns(s.waited.as_nanos() as f64),
                if s.downs_missing > 0 { format!(" ({} downs still missing)", s.downs_missing) } else { String::new() }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    rep.note(
        "Throughput zones come from the zonefork helper (clone(CLONE_NEWPID|CLONE_NEWUTS), sethostname, exec zoneinit, a static program that exits 0): \
         the cheapest zone possible, so the ramp finds the machine's limit rather than the shell's; a transition is any of ready/booted/shutdown/down; \
         zonemon's CPU is its sum_exec_runtime over the step.",
    );
    Ok(())
}
