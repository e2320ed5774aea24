//! Memory: zonemon's peak RSS (`VmHWM`) after 1,000 zones and, in the full
//! run, after 100,000 zones, in one monitor's lifetime (flat = no growth).

use std::collections::HashSet;

use anyhow::Result;

use crate::context::Ctx;
use crate::monitor::Kind;
use crate::procstat::peak_rss_kib;
use crate::stats::fmt_mib;
use crate::table::{Report, Verdict};

const TARGET_KIB: u64 = 16 * 1024;

/// Measures and adds the memory rows.
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let prefix = ctx.tag("mem");
    let m = ctx.ebpf(None)?;
    let start = peak_rss_kib(m.pid())?;
    let mut made = 0;
    let mut last: Option<(usize, u64)> = None;
    for &target in &ctx.plan.memory_zones {
        while made < target {
            let chunk = (target - made).min(5000);
            let b = ctx
                .helpers
                .zonefork(&prefix, made, chunk, 8, &["/bin/true"])?;
            made += b.made;
            m.wait_for_zones(made, made);
        }
        let hwm = peak_rss_kib(m.pid())?;
        let (seen, lost) = m.with_seen(|s| {
            let b: HashSet<&str> = s
                .with(Kind::Booted, &prefix)
                .map(|r| r.name.as_str())
                .collect();
            let d: HashSet<&str> = s
                .with(Kind::Shutdown, &prefix)
                .map(|r| r.name.as_str())
                .collect();
            (b.len() + d.len(), s.lost)
        });
        let downs_missing = m.with_seen(|s| made.saturating_sub(s.count(Kind::Down)));
        let (comparison, flat) = match last {
            None => (format!("at start: {}", fmt_mib(start)), true),
            Some((n, prev)) => (
                format!(
                    "after {n} zones: {} (growth {})",
                    fmt_mib(prev),
                    fmt_mib(hwm.saturating_sub(prev))
                ),
                hwm <= prev + 1024,
            ),
        };
        rep.row(
            &format!("Memory: zonemon peak RSS (VmHWM) after {target} zones"),
            &format!(
                "{} (seen {seen}/{} boots+shutdowns, {lost} lost, {downs_missing} downs missing)",
                fmt_mib(hwm),
                2 * made
            ),
            &comparison,
            if last.is_none() {
                "≤ 16 MiB"
            } else {
                "≤ 16 MiB, flat"
            },
            Verdict::of(hwm <= TARGET_KIB && flat),
        );
        last = Some((target, hwm));
    }
    m.stop()?;
    if ctx.plan.smoke {
        rep.row(
            "Memory: zonemon peak RSS (VmHWM) after 100000 zones",
            "n/a (full mode only)",
            "",
            "≤ 16 MiB, flat",
            Verdict::NotRun,
        );
    }
    Ok(())
}
