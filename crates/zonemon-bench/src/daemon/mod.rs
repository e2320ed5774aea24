//! Through the daemon: a `zonemon daemon` with a journal of its own,
//! measured side by side with standalone zonemon in the same run.
//!
//! - `idle`: its wakeups per thread with nothing happening, without and with the systemd watchdog.
//! - `latency`: detection latency to a client of its API against a standalone `watch` on the same zones.
//! - `throughput`: the zone rate it journals with zero loss, a record's cost (CPU, bytes), its peak RSS.
//! - `hooks`: detection latency with a hook that sleeps 1 s on every record, against none.
//! - `service` starts and stops a daemon; `journal` reads its journal file; `stream` follows its events as an API client.
//!
//! Each part runs a fresh daemon with a fresh journal under `/var/tmp` (on a
//! disk, as `/var/lib/zonemon` is; `/tmp` may be in memory).

mod hooks;
mod idle;
pub mod journal;
mod latency;
pub mod service;
mod stream;
mod throughput;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::context::Ctx;
use crate::table::Report;

/// A part of the daemon's measurements: adds its rows, its daemon journaling into the directory given.
type Part = fn(&Ctx, &mut Report, &std::path::Path) -> Result<()>;

/// Measures and adds the daemon rows; a part that fails does not keep the others from running.
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let dir = work_dir("daemon")?;
    let parts: [(&str, Part); 4] = [
        ("idle", idle::run),
        ("latency", latency::run),
        ("hooks", hooks::run),
        ("throughput", throughput::run),
    ];
    let mut failed = Vec::new();
    for (name, part) in parts {
        if crate::guard::closing() {
            break;
        }
        if !ctx.only.part_selected("daemon", name) {
            continue;
        }
        if let Err(e) = part(ctx, rep, &dir.join(name)) {
            failed.push(format!("{name}: {e:#}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// A fresh directory for this run's `what` (its journals), on a disk, removed at exit.
pub fn work_dir(what: &str) -> Result<PathBuf> {
    let var_tmp = PathBuf::from("/var/tmp");
    let base = if var_tmp.is_dir() {
        var_tmp
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("zonemon-bench-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
    let cleanup = dir.clone();
    crate::guard::on_exit(move || {
        let _ = std::fs::remove_dir_all(&cleanup);
    });
    Ok(dir)
}
