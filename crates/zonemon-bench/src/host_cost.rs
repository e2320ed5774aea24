//! Cost to the host: a fork/exec/exit microbenchmark of processes that are
//! not zones, with zonemon's eBPF programs attached vs not (interleaved runs),
//! and each BPF program's cost per call from `kernel.bpf_stats_enabled`
//! (read from the `run_time_ns`/`run_cnt` of zonemon's program fds in
//! `/proc/<pid>/fdinfo`; the setting is restored afterwards, whatever happens),
//! next to the same figure of empty programs on the same tracepoints in the
//! same cycles: what the measurement itself reads for a program that does nothing.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::RawFd;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use zonemon_testkit::{MemCg, MEMORY_HOG};

use crate::context::Ctx;
use crate::daemon::work_dir;
use crate::guard;
use crate::nop_bpf::NopPrograms;
use crate::stats::{fmt_ns, median, percentile};
use crate::table::{Report, Verdict};
use crate::zones::run_unshare_zone;

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Measures and adds the host-cost rows.
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let n = ctx.plan.host_cycles;
    ctx.helpers.forkexec(n / 4)?; // warm caches
    let (mut off, mut on, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..ctx.plan.host_pairs {
        // ABBA order: a drifting machine hurts both sides alike.
        let order = if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut got = [0.0f64; 2];
        for attached in order {
            let per_cycle = if attached {
                let m = ctx.ebpf(None)?;
                thread::sleep(Duration::from_millis(200));
                let t = ctx.helpers.forkexec(n)?;
                m.stop()?;
                t
            } else {
                thread::sleep(Duration::from_millis(200));
                ctx.helpers.forkexec(n)?
            } as f64
                / n as f64;
            got[attached as usize] = per_cycle;
            if attached { &mut on } else { &mut off }.push(per_cycle);
        }
        pairs.push(got[1] / got[0]);
    }
    let (m_off, m_on) = (median(&off).unwrap(), median(&on).unwrap());
    let ratio = m_on / m_off;
    let (p25, p75) = (
        percentile(&pairs, 25.0).unwrap(),
        percentile(&pairs, 75.0).unwrap(),
    );
    let verdict = if ratio <= 1.01 {
        Verdict::Pass
    } else if p25 <= 1.01 {
        Verdict::Noisy
    } else {
        Verdict::Miss
    };
    rep.row(
        "Host cost: fork+exec+exit of non-zone processes, eBPF attached / not attached",
        &format!("ratio {ratio:.3} (per-pair p25–p75 {p25:.3}–{p75:.3})"),
        &format!(
            "not attached {} per cycle, attached {} (medians of {} interleaved runs of {n} cycles each)",
            fmt_ns(m_off),
            fmt_ns(m_on),
            ctx.plan.host_pairs
        ),
        "≤ 1.01",
        verdict,
    );
    bpf_stats(ctx, rep, m_off)
}

/// `run_time_ns` and `run_cnt` of one BPF program.
#[derive(Debug, Clone, Copy, Default)]
struct ProgStats {
    time_ns: u64,
    count: u64,
}

impl ProgStats {
    /// Time and calls since `earlier` (none: since the program was loaded).
    fn since(&self, earlier: Option<&ProgStats>) -> (u64, u64) {
        let e = earlier.copied().unwrap_or_default();
        (
            self.time_ns.saturating_sub(e.time_ns),
            self.count.saturating_sub(e.count),
        )
    }
}

fn fdinfo_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(':')
            .map(|v| v.trim().to_string())
    })
}

/// Each of `pid`'s BPF programs (only those whose file descriptor is in
/// `only`, when given) by the tracepoint its link is attached to; programs
/// without a link (zonemon's `zm_seed`, run only at start-up and after a
/// loss) are left out.
fn prog_stats(pid: i32, only: Option<&[RawFd]>) -> Result<BTreeMap<String, ProgStats>> {
    let (mut progs, mut names) = (BTreeMap::new(), BTreeMap::new());
    let dir = format!("/proc/{pid}/fdinfo");
    for e in fs::read_dir(&dir)
        .with_context(|| format!("listing {dir}"))?
        .flatten()
    {
        let fd = e.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok());
        if only.is_some_and(|only| !fd.is_some_and(|fd| only.contains(&fd))) {
            continue;
        }
        let Ok(text) = fs::read_to_string(e.path()) else {
            continue;
        };
        let Some(id) = fdinfo_field(&text, "prog_id") else {
            continue;
        };
        if let Some(cnt) = fdinfo_field(&text, "run_cnt") {
            let time_ns = fdinfo_field(&text, "run_time_ns")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let count = cnt.parse().unwrap_or(0);
            progs.insert(id.clone(), ProgStats { time_ns, count });
        }
        if let Some(tp) = fdinfo_field(&text, "tp_name") {
            names.insert(id, tp);
        }
    }
    Ok(progs
        .into_iter()
        .filter_map(|(id, s)| Some((names.get(&id)?.clone(), s)))
        .collect())
}

/// A few zones the OOM killer takes in a small memory cgroup: `mark_victim`
/// runs only then (never on an ordinary fork, exec or exit), so this is what
/// gives its cost per call a figure.
fn oom_kills(ctx: &Ctx) -> Result<()> {
    let prefix = ctx.tag("oom");
    let Some(cg) = MemCg::new(&format!("{prefix}cg"), 16 << 20) else {
        return Ok(()); // no memory cgroup here: its row says it was not called
    };
    for i in 0..3 {
        run_unshare_zone(
            &format!("{prefix}{i}"),
            &cg.enter(&format!("exec {MEMORY_HOG}")),
        )?;
    }
    Ok(())
}

/// The tracepoints whose programs run once in every fork+exec+exit cycle
/// (zonemon attaches one of the two exec tracepoints).
const PER_CYCLE: [&str; 5] = [
    "sched_process_fork",
    "sched_prepare_exec",
    "sched_process_exec",
    "sched_process_exit",
    "sched_process_free",
];

fn bpf_stats(ctx: &Ctx, rep: &mut Report, cycle_ns: f64) -> Result<()> {
    let orig = fs::read_to_string(STATS_SYSCTL)
        .with_context(|| format!("reading {STATS_SYSCTL}"))?
        .trim()
        .to_string();
    // Empty programs before zonemon's on each tracepoint, and after: with
    // bpf_stats on, a tracepoint's first program pays the scheduler clock's
    // first read in a cold cache (a cost of the measurement: without it no
    // clock is read). The ones before take it; the ones after, warm as
    // zonemon's are, are the floor.
    let first = NopPrograms::attach(&work_dir("nop-bpf-first")?)?;
    let m = ctx.ebpf(None)?;
    let nop = NopPrograms::attach(&work_dir("nop-bpf")?)?;
    let (first_fds, nop_fds) = (first.fds(), nop.fds());
    let me = std::process::id() as i32;
    let stats = || -> Result<_> {
        Ok((
            prog_stats(m.pid(), None)?,
            prog_stats(me, Some(&nop_fds))?,
            prog_stats(me, Some(&first_fds))?,
        ))
    };
    let restore_to = orig.clone();
    let token = guard::on_exit(move || {
        let _ = fs::write(STATS_SYSCTL, &restore_to);
    });
    let measured = (|| -> Result<_> {
        fs::write(STATS_SYSCTL, "1").with_context(|| format!("setting {STATS_SYSCTL}"))?;
        let before = stats()?;
        ctx.helpers.forkexec(ctx.plan.host_cycles)?;
        oom_kills(ctx)?;
        let after = stats()?;
        Ok((before, after))
    })();
    if let Some(t) = token {
        guard::undo_now(t);
    }
    let now = fs::read_to_string(STATS_SYSCTL).unwrap_or_default();
    m.stop()?;
    drop(nop);
    drop(first);
    let ((before, nop_before, first_before), (after, nop_after, first_after)) = measured?;
    let (mut per_cycle, mut floor, mut cold) = (0.0, 0.0, 0.0);
    for (name, a) in &after {
        let (dt, dc) = a.since(before.get(name));
        if dc == 0 {
            rep.row(
                &format!("BPF cost per call: {name}"),
                "n/a (not called)",
                "",
                "—",
                Verdict::Info,
            );
            continue;
        }
        let per = dt as f64 / dc as f64;
        let per_call = |after: &BTreeMap<String, ProgStats>,
                        before: &BTreeMap<String, ProgStats>| {
            after
                .get(name)
                .map(|n| n.since(before.get(name)))
                .filter(|&(_, c)| c > 0)
                .map(|(t, c)| t as f64 / c as f64)
        };
        let empty = per_call(&nop_after, &nop_before);
        // Only the scheduler's tracepoints run on every fork, exec and exit.
        if PER_CYCLE.contains(&name.as_str()) {
            per_cycle += per;
            floor += empty.unwrap_or(0.0);
            cold += per_call(&first_after, &first_before).unwrap_or(0.0);
        }
        rep.row(
            &format!("BPF cost per call: {name}"),
            &format!("{} ({dc} calls)", fmt_ns(per)),
            &format!(
                "a fork+exec+exit cycle: {}; an empty program on the same tracepoint, same calls: {}",
                fmt_ns(cycle_ns),
                empty.map_or("n/a".into(), fmt_ns)
            ),
            "—",
            Verdict::Info,
        );
    }
    let share = per_cycle / cycle_ns * 100.0;
    rep.row(
        "BPF cost per fork+exec+exit cycle (one call of each program)",
        &format!("{} = {share:.3}% of a cycle", fmt_ns(per_cycle)),
        &format!(
            "a fork+exec+exit cycle without zonemon: {}",
            fmt_ns(cycle_ns)
        ),
        "≤ 1%",
        Verdict::of(share <= 1.0),
    );
    let net = per_cycle - floor;
    rep.row(
        "BPF cost per fork+exec+exit cycle, net of what the measurement reads for empty programs",
        &format!("{} (measured {}, empty programs {})", fmt_ns(net), fmt_ns(per_cycle), fmt_ns(floor)),
        &format!(
            "empty programs on the same four tracepoints, attached right after zonemon's: each call's timing \
             (two scheduler-clock reads) and a program's entry and exit, which any program pays. \
             Empty programs attached before zonemon's read {} per cycle: a tracepoint's first program \
             also pays the clock's first read in a cold cache, a cost of the measurement alone",
            fmt_ns(cold)
        ),
        "≤ 0.5 µs",
        Verdict::of(floor > 0.0 && net <= 500.0),
    );
    rep.note(format!(
        "BPF per-call costs: kernel.bpf_stats_enabled was {orig}, set to 1 for one run of {} cycles, then restored to {} \
         (read from run_time_ns/run_cnt in zonemon's /proc/PID/fdinfo; counts include every process on the machine meanwhile).",
        ctx.plan.host_cycles,
        now.trim()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fdinfo_fields() {
        let t = "pos:\t0\nprog_id:\t866\nrun_time_ns:\t1200\nrun_cnt:\t10\n";
        assert_eq!(fdinfo_field(t, "prog_id").as_deref(), Some("866"));
        assert_eq!(fdinfo_field(t, "run_cnt").as_deref(), Some("10"));
        assert_eq!(fdinfo_field(t, "tp_name"), None);
    }
}
