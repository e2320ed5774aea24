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
