//! The daemon under churn: the zone rate it journals with zero loss, what a
//! record costs it (CPU by thread, bytes on disk) and its peak RSS, with the
//! zone maker (`zonefork`) alone on this machine side by side.
//!
//! The maker is first run alone at a few parallelisms to find its fastest
//! rate here; then a fresh daemon journals while the maker makes every zone
//! of the plan at that parallelism, as fast as it can. Nothing reads the
//! daemon's API meanwhile: the journal file is read at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::journal::{Journal, Tally};
use super::service::Service;
use crate::context::Ctx;
use crate::procstat::{peak_rss_kib, thread_usage, threads_since, Usage};
use crate::stats::{fmt_mib, fmt_ns};
use crate::table::{Report, Verdict};
use crate::zones::Batch;

/// The target rate while journaling.
const TARGET_RATE: f64 = 2000.0;
/// The target for the daemon's peak RSS.
const TARGET_RSS_KIB: u64 = 32 * 1024;
/// The longest the journal may take to take in the last records once the maker is done.
const CATCH_UP: Duration = Duration::from_secs(30);

/// Measures and adds the throughput, cost and memory rows; the daemon journals into `dir`.
pub fn run(ctx: &Ctx, rep: &mut Report, dir: &Path) -> Result<()> {
    let (parallel, alone) = fastest_maker(ctx)?;
    let daemon = Service::start(&ctx.zonemon, dir, &[], &[])?;
    let journal = Journal::open(&daemon.journal)?;
    let rss_start = peak_rss_kib(daemon.pid())?;
    let prefix = ctx.tag("dtp");
    let n = ctx.plan.daemon_zones;
    let seq0 = journal.last_seq()?;
    let before = thread_usage(daemon.pid())?;
    let made = ctx.helpers.zonefork(&prefix, 0, n, parallel)?;
    let ended = Instant::now();
    while journal.downs_after(seq0, &prefix)? < made.made as u64
        && ended.elapsed() < CATCH_UP
        && !crate::guard::closing()
    {
        thread::sleep(Duration::from_millis(50));
    }
    let caught_up = ended.elapsed();
    let cpu = threads_since(&thread_usage(daemon.pid())?, &before);
    let rss = peak_rss_kib(daemon.pid())?;
    let records = journal.last_seq()? - seq0;
    let tally = journal.tally_after(seq0, &prefix)?;
    let lost = journal.lost_after(seq0)?;
    // A fresh journal: its last seq is how many records it holds.
    let all_records = journal.last_seq()?;
    drop(journal);
    daemon.stop()?;
    let bytes = journal_bytes(dir)?;

    let complete = complete(&tally, made.made as u64);
    let rate = made.rate();
    rep.row(
        &format!("Daemon: zone rate journaled with zero loss (`zonefork`, {parallel} at a time, {} zones, as fast as the maker goes)", made.made),
        &format!(
            "{rate:.0} zones/s ({:.0} records/s); journaled {} of the {} records of these zones, {lost} lost; the journal had them all {} after the last zone ended",
            rate * 4.0,
            tally.records,
            4 * made.made,
            fmt_ns(caught_up.as_nanos() as f64),
        ),
        &maker_alone(&alone, parallel),
        "≥ 2,000 zones/s, 0 lost",
        Verdict::of(rate >= TARGET_RATE && complete && lost == 0 && made.failed == 0),
    );
    rep.row(
        "Daemon: cost per journaled record (same run)",
        &format!(
            "{} CPU per record ({}), {} bytes on disk per record",
            fmt_ns(total_ns(&cpu) as f64 / records.max(1) as f64),
            by_thread(&cpu, records),
            bytes / all_records.max(1),
        ),
        &format!(
            "{records} records in the window (these zones' and the host's others); the event loop's share is what a standalone `watch` spends (the throughput row's CPU per transition); {all_records} records in {bytes} bytes after the daemon stopped"
        ),
        "",
        Verdict::Info,
    );
    rep.row(
        &format!("Daemon: peak RSS (VmHWM) after {} zones", made.made),
        &fmt_mib(rss),
        &format!("at start: {}", fmt_mib(rss_start)),
        "≤ 32 MiB",
        Verdict::of(rss <= TARGET_RSS_KIB && complete),
    );
    Ok(())
}

/// Runs the maker alone at each parallelism of the plan; returns the fastest
/// parallelism and every run, by parallelism.
fn fastest_maker(ctx: &Ctx) -> Result<(usize, BTreeMap<usize, Batch>)> {
    let mut alone = BTreeMap::new();
    for &p in &ctx.plan.daemon_parallel {
        let b = ctx.helpers.zonefork(
            &ctx.tag(&format!("alone{p}")),
            0,
            ctx.plan.daemon_probe_zones,
            p,
        )?;
        alone.insert(p, b);
    }
    let best = alone
        .iter()
        .max_by(|a, b| a.1.rate().total_cmp(&b.1.rate()))
        .map(|(p, _)| *p)
        .unwrap_or(8);
    Ok((best, alone))
}

/// The comparison cell: the maker's rate alone, and whether it could reach the target at all.
fn maker_alone(alone: &BTreeMap<usize, Batch>, parallel: usize) -> String {
    let rates: Vec<String> = alone
        .iter()
        .map(|(p, b)| format!("{p} at a time {:.0}/s", b.rate()))
        .collect();
    let best = alone.get(&parallel).map_or(0.0, Batch::rate);
    let verdict = if best < TARGET_RATE {
        format!(
            "this machine cannot make 2,000 zones/s even with no monitor (the maker alone: {best:.0}/s at best), so the target cannot be met here"
        )
    } else {
        format!("the maker alone: {best:.0}/s at best")
    };
    format!(
        "the zone maker alone, no daemon ({} zones a run): {}; {verdict}",
        alone.values().next().map_or(0, |b| b.made),
        rates.join(", ")
    )
}

/// Whether the journal has every zone's boot, shutdown and down, and four records of each.
fn complete(t: &Tally, zones: u64) -> bool {
    t.booted == zones && t.shutdown == zones && t.down == zones && t.records == 4 * zones
}

fn total_ns(cpu: &BTreeMap<String, Usage>) -> u64 {
    cpu.values().map(|u| u.exec_ns).sum()
}

/// "event loop 40 µs, zonemon-api 30 µs, …" per record.
fn by_thread(cpu: &BTreeMap<String, Usage>, records: u64) -> String {
    cpu.iter()
        .map(|(name, u)| {
            format!(
                "{name} {}",
                fmt_ns(u.exec_ns as f64 / records.max(1) as f64)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The journal's size on disk: the file, and its write-ahead log if one is left.
fn journal_bytes(dir: &Path) -> Result<u64> {
    let mut bytes = 0;
    for name in ["journal.db", "journal.db-wal"] {
        match std::fs::metadata(dir.join(name)) {
            Ok(m) => bytes += m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(bytes)
}
