//! What the kernel says about a process's CPU time, wakeups and memory (`/proc/<pid>/…`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use zonemon_testkit::{status_field, status_value};

/// CPU time and context switches of one process (all its threads).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// utime + stime, in clock ticks (`/proc/<pid>/stat`).
    pub ticks: u64,
    /// cutime + cstime: of its waited-for children, in clock ticks.
    pub child_ticks: u64,
    /// Sum of the threads' `sum_exec_runtime` in ns (`/proc/<pid>/task/*/schedstat`): exact, not tick-sampled.
    pub exec_ns: u64,
    /// Voluntary context switches (sleeps), summed over threads.
    pub voluntary: u64,
    /// Involuntary context switches (preemptions), summed over threads.
    pub involuntary: u64,
}

impl Usage {
    /// `self - earlier`, field by field (saturating).
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            child_ticks: self.child_ticks.saturating_sub(earlier.child_ticks),
            exec_ns: self.exec_ns.saturating_sub(earlier.exec_ns),
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }

    /// utime + stime in ms.
    pub fn cpu_ms(&self) -> f64 {
        self.ticks as f64 * 1000.0 / clk_tck() as f64
    }

    /// utime + stime + cutime + cstime in ms.
    pub fn cpu_with_children_ms(&self) -> f64 {
        (self.ticks + self.child_ticks) as f64 * 1000.0 / clk_tck() as f64
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of utime/stime.
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Fields after the command name of `/proc/<pid>/stat` (index 0 is the state).
fn stat_fields(pid: i32) -> Result<Vec<String>> {
    zonemon_testkit::stat_fields(pid).with_context(|| format!("reading /proc/{pid}/stat"))
}

/// CPU time and context switches of `pid` now.
pub fn usage(pid: i32) -> Result<Usage> {
    let f = stat_fields(pid)?;
    let num = |i: usize| -> u64 { f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    // utime, stime, cutime, cstime are fields 14-17 of stat; index 0 here is field 3.
    let mut u = Usage {
        ticks: num(11) + num(12),
        child_ticks: num(13) + num(14),
        ..Usage::default()
    };
    for dir in tasks(pid)? {
        add_task(&mut u, &dir);
    }
    Ok(u)
}

/// CPU time and context switches of `pid`'s threads now, by thread name
/// (`comm`; threads of the same name summed). Ticks are not filled in.
pub fn thread_usage(pid: i32) -> Result<BTreeMap<String, Usage>> {
    let mut by_name = BTreeMap::new();
    for dir in tasks(pid)? {
        let main = dir.file_name().is_some_and(|tid| *tid == *pid.to_string());
        let name = match fs::read_to_string(dir.join("comm")) {
            // Named by its place, not its name: the main thread's is the program's file name.
            Ok(_) if main => MAIN_THREAD.to_string(),
            Ok(comm) => comm.trim().to_string(),
            Err(_) => continue, // the thread ended meanwhile
        };
        add_task(by_name.entry(name).or_default(), &dir);
    }
    Ok(by_name)
}

/// The name [`thread_usage`] gives a process's main thread (its thread id
/// is the process's), whatever the program's file is called: zonemon's
/// event loop.
pub const MAIN_THREAD: &str = "event loop";

/// Per-thread usage since `before` (threads that started meanwhile count from zero).
pub fn threads_since(
    now: &BTreeMap<String, Usage>,
    before: &BTreeMap<String, Usage>,
) -> BTreeMap<String, Usage> {
    now.iter()
        .map(|(name, u)| (name.clone(), before.get(name).map_or(*u, |b| u.since(b))))
        .collect()
}

/// `/proc/<pid>/task/<tid>` of each of `pid`'s threads.
fn tasks(pid: i32) -> Result<Vec<PathBuf>> {
    Ok(fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("listing /proc/{pid}/task"))?
        .flatten()
        .map(|t| t.path())
        .collect())
}

/// Adds one thread's run time and context switches (`dir`: its `/proc/<pid>/task/<tid>`) to `u`.
fn add_task(u: &mut Usage, dir: &Path) {
    if let Ok(s) = fs::read_to_string(dir.join("schedstat")) {
        u.exec_ns += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    if let Ok(s) = fs::read_to_string(dir.join("status")) {
        u.voluntary += status_value(&s, "voluntary_ctxt_switches").unwrap_or(0);
        u.involuntary += status_value(&s, "nonvoluntary_ctxt_switches").unwrap_or(0);
    }
}

/// Peak resident set size (`VmHWM`) of `pid`, in KiB.
pub fn peak_rss_kib(pid: i32) -> Result<u64> {
    status_field(pid, "VmHWM").with_context(|| format!("reading VmHWM of /proc/{pid}/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_usage_and_memory() {
        let me = std::process::id() as i32;
        let u = usage(me).unwrap();
        assert!(u.exec_ns > 0);
        assert!(peak_rss_kib(me).unwrap() > 0);
        let threads = thread_usage(me).unwrap();
        assert!(threads.values().map(|t| t.exec_ns).sum::<u64>() > 0);
    }
}
