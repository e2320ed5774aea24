//! Scale: does zonemon's cost per transition stay flat however many zones
//! are live? For 0, 1,000 and 10,000 zones kept up by the `zonehold`
//! helper (each a zone whose init, `zonepause`, waits, booted: a few pages, so that the
//! zones load the host no more than their being there does), a fresh monitor: its CPU
//! per transition over short zones made by `zonefork`, its detection latency
//! over zones booted one at a time (read by a reader under SCHED_FIFO 1, the
//! instrument of the latency rows), its peak RSS, and the machine's own
//! wakeup floor with the zones held (whether the host's wakeups slow down
//! with them, zonemon aside). The levels are run several times, interleaved: each run at the
//! most live zones lies between two runs with none and is judged against their mean (the
//! machine drifts over the phase; a neighbour sees the least of it), and the figure judged is
//! the median of those ratios.

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::context::Ctx;
use crate::latency::wakeup_floor;
use crate::monitor::Kind;
use crate::procstat::{peak_rss_kib, usage};
use crate::stats::{fmt_mib, fmt_ns, percentile};
use crate::table::{Report, Verdict};
use crate::zones::run_unshare_zone;

/// The cost at the most live zones may be at most this many times the cost with none.
const FLAT: f64 = 1.1;
/// The CPU figure's zones are made in this many batches (its median batch is the figure).
const CPU_BATCHES: usize = 6;
/// The most wakeups of the machine's own floor per run (information beside the judged
/// latency; 600 take about 9 s).
const FLOOR_WAKEUPS: usize = 600;

/// The wakeups of the machine's own floor per run, with `latency_zones` zones booted one
/// at a time (two transitions each) beside it.
fn floor_wakeups(latency_zones: usize) -> usize {
    (2 * latency_zones).min(FLOOR_WAKEUPS)
}
/// Peak RSS target with the most live zones.
const RSS_TARGET_KIB: u64 = 24 * 1024;

/// What one level of live zones measured.
struct Level {
    live: usize,
    /// zonemon's CPU per transition in each batch of short zones.
    cpu_batches: Vec<f64>,
    transitions: usize,
    /// Detection latencies of the zones booted one at a time.
    latency: Vec<f64>,
    /// The machine's own wakeup times at this level: a thread woken through a pipe, the live
    /// zones held and zonemon idle (does the host, not zonemon, slow down?).
    floor: Vec<f64>,
    peak_rss_kib: u64,
    lost: u64,
}

impl Level {
    /// The level's CPU figure: its median batch (a burst of other work on the machine spoils
    /// one batch, not the figure).
    fn cpu(&self) -> f64 {
        percentile(&self.cpu_batches, 50.0).unwrap_or(f64::NAN)
    }

    /// The level's latency figure: p99 of its samples.
    fn latency_p99(&self) -> f64 {
        percentile(&self.latency, 99.0).unwrap_or(f64::NAN)
    }
}

/// Every run at one number of live zones, pooled.
struct Pooled {
    live: usize,
    runs: usize,
    cpu_batches: Vec<f64>,
    latency: Vec<f64>,
    floor: Vec<f64>,
    peak_rss_kib: u64,
}

impl Pooled {
    /// The runs of `levels` at each number of live zones, fewest live zones first.
    fn of(levels: &[Level]) -> Vec<Pooled> {
        let mut lives: Vec<usize> = levels.iter().map(|l| l.live).collect();
        lives.sort_unstable();
        lives.dedup();
        lives
            .into_iter()
            .map(|live| {
                let runs: Vec<&Level> = levels.iter().filter(|l| l.live == live).collect();
                let all = |f: fn(&Level) -> &Vec<f64>| -> Vec<f64> {
                    runs.iter().flat_map(|l| f(l).iter().copied()).collect()
                };
                Pooled {
                    live,
                    runs: runs.len(),
                    cpu_batches: all(|l| &l.cpu_batches),
                    latency: all(|l| &l.latency),
                    floor: all(|l| &l.floor),
                    peak_rss_kib: runs.iter().map(|l| l.peak_rss_kib).max().unwrap_or(0),
                }
            })
            .collect()
    }
}

/// The runs at the most live zones, each against the runs with none just before and after
/// it (their mean): the machine drifts over the minutes the levels take, and a run compared
/// with its neighbours sees the least of that drift. One ratio per run at the most live zones.
fn round_ratios(levels: &[Level], f: fn(&Level) -> f64) -> Vec<f64> {
    let most = levels.iter().map(|l| l.live).max().unwrap_or(0);
    let none = |l: &&Level| l.live == 0;
    levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.live == most && most > 0)
        .filter_map(|(i, l)| {
            let before = levels[..i].iter().rev().find(none);
            let after = levels[i + 1..].iter().find(none);
            let base: Vec<f64> = before.into_iter().chain(after).map(f).collect();
            (!base.is_empty()).then(|| f(l) / (base.iter().sum::<f64>() / base.len() as f64))
        })
        .collect()
}

/// Measures one level: `live` zones up, then the CPU and latency runs.
fn level(ctx: &Ctx, live: usize) -> Result<Level> {
    let m = ctx.ebpf(None)?;
    m.set_reader_realtime()?; // the instrument, as the latency rows'
    let hold_prefix = ctx.tag(&format!("hold{live}"));
    let hold = ctx.helpers.hold(&hold_prefix, live)?;
    let up = m.wait_until(Duration::from_secs(120), |s| {
        s.with(Kind::Booted, &hold_prefix).count() >= live
    });
    if !up {
        bail!("zonemon did not report the {live} held zones booted within 120 s");
    }
    // CPU: short zones made as fast as 4 at a time go, in batches; zonemon's CPU over each
    // batch's transitions.
    let k = ctx.plan.scale_cpu_zones;
    let cpu_prefix = ctx.tag(&format!("scpu{live}"));
    let mut per_batch = Vec::new();
    let mut transitions = 0;
    for b in 0..CPU_BATCHES {
        let (sd0, dn0, recs0) =
            m.with_seen(|s| (s.count(Kind::Shutdown), s.count(Kind::Down), s.recs.len()));
        let u0 = usage(m.pid())?;
        let n = k / CPU_BATCHES;
        ctx.helpers.zonefork(&cpu_prefix, b * n, n, 4)?;
        m.wait_for_zones(sd0 + n, dn0 + n);
        let u = usage(m.pid())?.since(&u0);
        let t = m.with_seen(|s| s.recs[recs0..].len());
        transitions += t;
        per_batch.push(u.exec_ns as f64 / t.max(1) as f64);
    }
    // Latency: zones booted one at a time, with idle gaps, as the latency row.
    let lat_prefix = ctx.tag(&format!("slat{live}"));
    let n = ctx.plan.scale_latency_zones;
    let sd1 = m.with_seen(|s| s.count(Kind::Shutdown));
    for i in 0..n {
        let script = if i % 2 == 0 { "exit 0" } else { "sleep 0.01" };
        run_unshare_zone(&format!("{lat_prefix}{i}"), script)?;
        thread::sleep(Duration::from_millis(10 + (i as u64 * 7) % 25));
    }
    m.wait_until(Duration::from_secs(10), |s| {
        s.count(Kind::Shutdown) >= sd1 + n
    });
    let floor = wakeup_floor(floor_wakeups(n))?;
    let peak = peak_rss_kib(m.pid())?;
    let seen = m.stop()?;
    hold.release()?;
    let latency: Vec<f64> = seen
        .recs
        .iter()
        .filter(|r| {
            matches!(r.kind, Kind::Booted | Kind::Shutdown) && r.name.starts_with(&lat_prefix)
        })
        .filter_map(|r| Some((r.arrival_ns - r.time_ns?) as f64))
        .collect();
    let names: HashSet<&str> = seen
        .with(Kind::Shutdown, &lat_prefix)
        .map(|r| r.name.as_str())
        .collect();
    if names.len() < n {
        bail!(
            "zonemon reported {} of {n} latency zones' shutdowns with {live} live zones",
            names.len()
        );
    }
    Ok(Level {
        live,
        cpu_batches: per_batch,
        transitions,
        latency,
        floor,
        peak_rss_kib: peak,
        lost: seen.lost,
    })
}

/// `f` of each of `items`, as "N live: …; …", N its number of live zones.
fn by_live<T>(items: &[T], live: impl Fn(&T) -> usize, f: &dyn Fn(&T) -> String) -> String {
    items
        .iter()
        .map(|i| format!("{} live: {}", live(i), f(i)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Measures and adds the scale rows.
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let mut levels = Vec::new();
    for &live in &ctx.plan.scale_levels {
        levels.push(level(ctx, live)?);
    }
    let pooled = Pooled::of(&levels);
    let (Some(none), Some(last)) = (pooled.first(), pooled.last()) else {
        return Ok(());
    };
    if none.live != 0 || last.live == 0 {
        bail!("the scale levels must include 0 live zones and more");
    }
    let each = |f: &dyn Fn(&Pooled) -> String| by_live(&pooled, |p| p.live, f);
    let levels_list = pooled
        .iter()
        .map(|p| p.live.to_string())
        .collect::<Vec<_>>()
        .join(" / ");
    let order = levels
        .iter()
        .map(|l| l.live.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let runs_of = |live: usize, f: fn(&Level) -> f64| {
        levels
            .iter()
            .filter(|l| l.live == live)
            .map(|l| fmt_ns(f(l)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // The judged ratio: the median of the runs' ratios against their neighbours with none.
    let judged = |f: fn(&Level) -> f64| -> (f64, String) {
        let ratios = round_ratios(&levels, f);
        let listed = ratios
            .iter()
            .map(|r| format!("{r:.2}×"))
            .collect::<Vec<_>>()
            .join(", ");
        (percentile(&ratios, 50.0).unwrap_or(f64::NAN), listed)
    };
    let method = |rounds: &str, ratio: f64| {
        format!(
            "{} live vs 0, each run against the mean of the runs with none just before and after it: {rounds}; median {ratio:.2}×",
            last.live
        )
    };
    let (cpu_ratio, cpu_rounds) = judged(Level::cpu);
    rep.row(
        &format!(
            "Scale: zonemon CPU per transition with {} live zones (runs in the order {order}; {} short zones, 4 at a time, per run; a run's figure is its median batch of {CPU_BATCHES}, a level's the median of all its batches)",
            levels_list,
            ctx.plan.scale_cpu_zones
        ),
        &each(&|p| {
            format!(
                "{} (runs: {})",
                fmt_ns(percentile(&p.cpu_batches, 50.0).unwrap_or(f64::NAN)),
                runs_of(p.live, Level::cpu)
            )
        }),
        &method(&cpu_rounds, cpu_ratio),
        &format!("≤ {FLAT}× the figure with 0 live zones"),
        Verdict::of(cpu_ratio <= FLAT),
    );
    let (lat_ratio, lat_rounds) = judged(Level::latency_p99);
    rep.row(
        &format!(
            "Scale: detection latency with {} live zones (runs in the order {order}; {} boots+shutdowns per run, one zone at a time; a level's p99 over all its runs' samples)",
            levels_list,
            2 * ctx.plan.scale_latency_zones
        ),
        &each(&|p| {
            format!(
                "p50 {}, p99 {} (runs' p99: {})",
                fmt_ns(percentile(&p.latency, 50.0).unwrap_or(f64::NAN)),
                fmt_ns(percentile(&p.latency, 99.0).unwrap_or(f64::NAN)),
                runs_of(p.live, Level::latency_p99)
            )
        }),
        &format!(
            "p99 {}; the machine's own wakeup floor at each level (one sleeping thread woken through a pipe, {} times a run, \
             the live zones held, zonemon idle): p99 {}",
            method(&lat_rounds, lat_ratio),
            floor_wakeups(ctx.plan.scale_latency_zones),
            each(&|p| fmt_ns(percentile(&p.floor, 99.0).unwrap_or(f64::NAN)))
        ),
        &format!("p99 ≤ {FLAT}× the figure with 0 live zones"),
        Verdict::of(lat_ratio <= FLAT),
    );
    let base_rss = levels
        .iter()
        .filter(|l| l.live == 0)
        .map(|l| l.peak_rss_kib)
        .min()
        .unwrap_or(0);
    let per_zone =
        (last.peak_rss_kib.saturating_sub(base_rss) * 1024) as f64 / last.live.max(1) as f64;
    rep.row(
        &format!(
            "Scale: zonemon peak RSS (VmHWM) with {} live zones (the highest of its {} runs)",
            last.live, last.runs
        ),
        &format!(
            "{} ({:.0} bytes per live zone over the {} with 0 live zones)",
            fmt_mib(last.peak_rss_kib),
            per_zone,
            fmt_mib(base_rss)
        ),
        &each(&|p| fmt_mib(p.peak_rss_kib)),
        "≤ 24 MiB",
        Verdict::of(last.peak_rss_kib <= RSS_TARGET_KIB),
    );
    let alone: Vec<(u32, f64)> = [0u32, 1_000, 10_000]
        .iter()
        .map(|&n| (n, tracker_ns_per_observation(n)))
        .collect();
    let (none_ns, most_ns) = (alone[0].1, alone[2].1);
    rep.row(
        "Scale: the tracker alone (in this process: no kernel, no I/O, no naming), time per observation of short zones with 0 / 1000 / 10000 live zones in its table (best of 40 rounds)",
        &alone
            .iter()
            .map(|(n, ns)| format!("{n} live: {}", fmt_ns(*ns)))
            .collect::<Vec<_>>()
            .join("; "),
        &format!(
            "10000 live vs 0: {} per observation ({:+.1}% of zonemon's CPU per transition with 0 live zones above): \
             no walk of the table, what remains is cache misses in a larger table",
            fmt_ns(most_ns - none_ns),
            (most_ns - none_ns) * 100.0 / percentile(&none.cpu_batches, 50.0).unwrap_or(f64::NAN)
        ),
        "",
        Verdict::Info,
    );
    let per_run = |f: &dyn Fn(&Level) -> String| by_live(&levels, |l| l.live, f);
    rep.note(format!(
        "Scale: each run is a fresh zonemon; the live zones are held by `zonehold` (clone into new PID+UTS namespaces, exec of `zonepause`, \
         a program with no C library that waits in pause(2), about 12 kB resident), \
         made after zonemon started and reported booted before measuring; CPU is zonemon's sum_exec_runtime over the short zones' \
         transitions ({}); latency samples: {}; lost records: {}. Every run at the most live zones lies between two runs with none, \
         and is judged against them, so that the machine's drift over the phase falls on both sides of each comparison. \
         On this host kernel.pid_max is {}: {} live zones and the churn fit.",
        per_run(&|l| l.transitions.to_string()),
        per_run(&|l| l.latency.len().to_string()),
        per_run(&|l| l.lost.to_string()),
        std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap_or_default().trim(),
        last.live
    ));
    Ok(())
}

/// The tracker alone, in this process (no kernel, no I/O, no naming): the
/// mean time of one observation of short zones' lives (fork, exec, exit,
/// free) with `live` booted zones in its table, best of 40 rounds of 4,000
/// (the least disturbed by the rest of the machine).
pub fn tracker_ns_per_observation(live: u32) -> f64 {
    use std::time::Instant;
    use zonemon_core::naming::NoRuntimeNames;
    use zonemon_core::{HostInfo, Observation, ObservationKind, Tracker};

    let obs = |kind, pid: u32, ts: u64| {
        let mut o = Observation::new(kind);
        o.ts_ns = ts;
        o.start_ns = u64::from(pid) * 1_000;
        o.init_pid = pid;
        o.pidns = 0x1000_0000 + pid;
        o.level = 1;
        o.utsns = o.pidns;
        o.nodename = format!("zone{pid}");
        o.comm = "init".into();
        o
    };
    let host = HostInfo {
        utsns: 1,
        hostname: "host".into(),
    };
    let mut t = Tracker::new(host, NoRuntimeNames);
    for pid in 1..=live {
        t.observe(&obs(ObservationKind::InitFork, pid, 1));
        t.observe(&obs(ObservationKind::InitExec, pid, 2));
    }
    let mut best = f64::INFINITY;
    let mut next = 1_000_000u32;
    for _ in 0..40 {
        let lives: Vec<[Observation; 4]> = (0..1_000)
            .map(|_| {
                next += 1;
                [
                    obs(ObservationKind::InitFork, next, 3),
                    obs(ObservationKind::InitExec, next, 4),
                    obs(ObservationKind::InitExit, next, 5),
                    obs(ObservationKind::InitFree, next, 6),
                ]
            })
            .collect();
        let t0 = Instant::now();
        let mut n = 0;
        for life in &lives {
            for o in life {
                n += t.observe(o).len();
            }
        }
        let ns = t0.elapsed().as_nanos() as f64 / 4_000.0;
        assert_eq!(n, 4_000, "every transition reported");
        best = best.min(ns);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::{round_ratios, Level, Pooled};

    fn run(live: usize, cpu: f64) -> Level {
        Level {
            live,
            cpu_batches: vec![cpu, cpu + 1.0, cpu - 1.0],
            transitions: 0,
            latency: vec![cpu],
            floor: vec![],
            peak_rss_kib: live as u64,
            lost: 0,
        }
    }

    #[test]
    fn each_run_at_the_most_live_zones_is_judged_against_its_neighbours_with_none() {
        // The machine drifts from 10 to 20: each run with 10,000 is 10 % above its neighbours.
        let levels = [
            run(0, 10.0),
            run(1000, 50.0),
            run(10_000, 11.0 * 1.1),
            run(0, 12.0),
            run(10_000, 16.0 * 1.1),
            run(0, 20.0),
        ];
        let ratios = round_ratios(&levels, Level::cpu);
        assert_eq!(ratios.len(), 2);
        for r in ratios {
            assert!((r - 1.1).abs() < 1e-9, "{r}");
        }
        // A run with no run with none after it is judged against the one before.
        let ratios = round_ratios(&[run(0, 10.0), run(200, 15.0)], Level::latency_p99);
        assert_eq!(ratios, vec![1.5]);
        // No run with none at all: nothing to judge.
        assert!(round_ratios(&[run(200, 15.0)], Level::cpu).is_empty());
    }

    #[test]
    fn runs_at_one_level_are_pooled() {
        let levels = [run(0, 10.0), run(10_000, 30.0), run(0, 20.0)];
        let pooled = Pooled::of(&levels);
        assert_eq!(
            pooled.iter().map(|p| (p.live, p.runs)).collect::<Vec<_>>(),
            vec![(0, 2), (10_000, 1)]
        );
        assert_eq!(pooled[0].cpu_batches.len(), 6);
        assert_eq!(pooled[0].latency, vec![10.0, 20.0]);
        assert_eq!(pooled[1].peak_rss_kib, 10_000);
    }

    #[test]
    #[ignore = "a measurement, for profiling: cargo test --release -p zonemon-bench -- --ignored tracker_alone"]
    fn tracker_alone() {
        let live: u32 = std::env::var("LIVE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        eprintln!(
            "{live} live: {:.0} ns",
            super::tracker_ns_per_observation(live)
        );
    }
}
