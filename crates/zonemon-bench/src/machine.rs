//! The machine a run came from: kernel, CPUs, memory, load, and the zonemon under test.

use std::fs;
use std::path::Path;
use std::process::Command;

/// (what, value) lines describing this machine and run.
pub fn describe(zonemon: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // SAFETY: uname fills the struct we pass.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    let (release, version, arch) = if unsafe { libc::uname(&mut u) } == 0 {
        let s = |f: &[libc::c_char]| {
            // SAFETY: uname's fields are NUL-terminated.
            unsafe { std::ffi::CStr::from_ptr(f.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        (s(&u.release), s(&u.version), s(&u.machine))
    } else {
        Default::default()
    };
    out.push((
        "kernel".into(),
        format!("Linux {release} {version} ({arch})"),
    ));
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown model".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    out.push(("CPUs".into(), format!("{cpus} × {model}")));
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    out.push(("memory".into(), mem));
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    out.push((
        "load average at start".into(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    ));
    let version = Command::new(zonemon)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!(
                "; the repository here is at commit {c}{}",
                if dirty {
                    " with uncommitted changes"
                } else {
                    ""
                }
            )
        }
        None => String::new(),
    };
    let built = fs::metadata(zonemon)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| {
            format!(
                ", file dated {}",
                crate::stats::fmt_utc(d.as_nanos() as i128)
            )
        })
        .unwrap_or_default();
    out.push((
        "zonemon".into(),
        format!("{} ({version}{built}{commit})", zonemon.display()),
    ));
    out
}

/// The machine's CPU time so far, from `/proc/stat`'s `cpu` line, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Time the hypervisor ran something else while this VM's CPUs wanted to run (`steal`).
    pub steal: u64,
    /// All the CPUs' time, every state counted once (user … steal; guest time is within user).
    pub total: u64,
}

impl CpuTimes {
    /// Reads `/proc/stat` now; `None` when it cannot be read or parsed.
    pub fn now() -> Option<CpuTimes> {
        CpuTimes::parse(&fs::read_to_string("/proc/stat").ok()?)
    }

    /// Parses the `cpu` line (the sum over CPUs) of a `/proc/stat` text.
    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
        // already counted in user and nice, so only the first eight add up.
        let steal = *fields.get(7)?;
        Some(CpuTimes {
            steal,
            total: fields.iter().take(8).sum(),
        })
    }

    /// The share of the CPUs' time the hypervisor took between `self` and `later`, in percent.
    pub fn steal_percent_until(&self, later: &CpuTimes) -> Option<f64> {
        let total = later.total.checked_sub(self.total).filter(|&t| t > 0)?;
        let steal = later.steal.checked_sub(self.steal)?;
        Some(steal as f64 * 100.0 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::CpuTimes;

    const STAT: &str = "cpu  1286544 3382 697974 5556656 13991 0 8790 56301 7 9\n\
                        cpu0 627603 1651 344741 2804217 3368 0 2098 28563 0 0\n";

    #[test]
    fn the_cpu_line_gives_steal_and_the_total_without_guest_time() {
        let t = CpuTimes::parse(STAT).unwrap();
        assert_eq!(t.steal, 56301);
        assert_eq!(
            t.total,
            1286544 + 3382 + 697974 + 5556656 + 13991 + 8790 + 56301
        );
    }

    #[test]
    fn steal_is_a_share_of_the_time_between_two_readings() {
        let a = CpuTimes {
            steal: 100,
            total: 1_000,
        };
        let b = CpuTimes {
            steal: 275,
            total: 3_000,
        };
        assert_eq!(a.steal_percent_until(&b), Some(8.75));
        assert_eq!(
            b.steal_percent_until(&a),
            None,
            "time does not run backwards"
        );
        assert_eq!(a.steal_percent_until(&a), None, "no time passed");
    }

    #[test]
    fn a_text_without_a_cpu_line_or_steal_is_none() {
        assert_eq!(CpuTimes::parse("intr 1 2 3\n"), None);
        assert_eq!(CpuTimes::parse("cpu  1 2 3 4\n"), None);
        assert_eq!(CpuTimes::parse("cpu  1 2 x 4 5 6 7 8\n"), None);
    }
}
