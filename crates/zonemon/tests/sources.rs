//! The sources without BPF pass the same end-to-end boot/shutdown/name tests
//! as eBPF (slow zones, for polling), and `--source auto` falls back, saying so.

mod common;

use std::process::ExitStatus;
use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// A zone that lives at least 0.5 s and then until the test releases it:
/// polling sees a zone only if it outlives a scan of /proc, and on a host
/// running thousands of zones one scan takes over a second.
struct HeldZone {
    zone: BackgroundZone,
    release: std::path::PathBuf,
}

impl HeldZone {
    /// Boots zone `name`, which exits with `code` once released.
    fn start(name: &str, code: u8) -> HeldZone {
        let release = std::env::temp_dir().join(format!("{name}.release"));
        let _ = std::fs::remove_file(&release);
        let script = format!(
            "sleep 0.5; while [ ! -e '{}' ]; do sleep 0.05; done; exit {code}",
            release.display()
        );
        HeldZone {
            zone: BackgroundZone::start(name, &script),
            release,
        }
    }

    /// Lets the zone exit once `seen` says the monitor saw it boot; returns the zone's status.
    fn release_when(self, mon: &Monitor, seen: impl Fn(&[String]) -> bool) -> ExitStatus {
        assert!(
            mon.wait_for(WAIT, seen),
            "the zone's boot was not seen: {:?}\n{}",
            mon.lines(),
            mon.stderr()
        );
        std::fs::write(&self.release, b"").expect("writing the release file");
        let status = self.zone.wait();
        let _ = std::fs::remove_file(&self.release);
        status
    }
}

/// Boots a slow zone under `zonemon watch --json ARGS` and returns its events.
fn slow_zone_events(
    test: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Vec<Value>, String, String) {
    let p = prefix(test);
    let name = format!("{p}aap");
    let mon = Monitor::start_with_env(args, env);
    let status = HeldZone::start(&name, 3).release_when(&mon, |l| count(l, &p, "booted") == 1);
    assert_eq!(status.code(), Some(3));
    assert!(
        mon.wait_for(WAIT, |l| count(l, &p, "down") == 1),
        "no down for {name}: {:?}\n{}",
        mon.lines(),
        mon.stderr()
    );
    let (lines, stderr) = mon.stop_with_stderr();
    let evs = parse_json(&lines);
    (
        evs.into_iter()
            .filter(|e| e["name"] == name.as_str())
            .collect(),
        name,
        stderr,
    )
}

fn assert_life(evs: &[Value], name: &str) {
    let kinds: Vec<_> = evs.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ready", "booted", "shutdown", "down"], "{evs:#?}");
    assert!(evs.iter().all(|e| e["zone_id"] == evs[0]["zone_id"]
        && e["name_source"] == "hostname"
        && e["name"] == name));
    assert_eq!(evs[0]["level"], 1);
}

#[test]
fn proc_connector_sees_boot_shutdown_name_and_status() {
    if !require_root("proc_connector_sees_boot_shutdown_name_and_status") {
        return;
    }
    let (evs, name, _) = slow_zone_events(
        "conn",
        &["watch", "--json", "--source", "proc-connector"],
        &[],
    );
    assert_life(&evs, &name);
    assert_eq!(evs[2]["exit_code"], 3);
    let uptime = evs[2]["uptime_ns"].as_u64().unwrap();
    assert!(uptime >= 400_000_000, "uptime {uptime}");
}

#[test]
fn polling_sees_slow_zones_with_names() {
    if !require_root("polling_sees_slow_zones_with_names") {
        return;
    }
    let (evs, name, _) = slow_zone_events(
        "poll",
        &["watch", "--json", "--source", "poll", "--interval", "100ms"],
        &[],
    );
    assert_life(&evs, &name);
    assert_eq!(
        evs[2]["exit_code"],
        Value::Null,
        "polling cannot know the exit status"
    );
}

#[test]
fn polling_text_output_is_the_seeds() {
    if !require_root("polling_text_output_is_the_seeds") {
        return;
    }
    let p = prefix("polltext");
    let name = format!("{p}noot");
    let mon = Monitor::start(&["--source", "poll", "--interval", "50ms"]);
    let booted = format!("Zone {name} booted");
    HeldZone::start(&name, 0).release_when(&mon, |l| l.contains(&booted));
    let want = [
        format!("Zone {name} booted"),
        format!("Zone {name} shutdown"),
    ];
    assert!(mon.wait_for(WAIT, |l| l.iter().filter(|l| l.contains(&p)).count() == 2));
    let lines = mon.stop();
    let ours: Vec<_> = lines.iter().filter(|l| l.contains(&p)).cloned().collect();
    assert_eq!(ours, want);
}

#[test]
fn polling_that_falls_behind_says_so() {
    if !require_root("polling_that_falls_behind_says_so") {
        return;
    }
    // 300 more processes make one scan of /proc outlast a 1 ms interval on any host.
    let mut sleepers: Vec<_> = (0..300)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("spawning sleep")
        })
        .collect();
    let mon = Monitor::start(&["watch", "--source", "poll", "--interval", "1ms"]);
    within(WAIT, || mon.stderr().contains("polling falls behind"));
    let (_, stderr) = mon.stop_with_stderr();
    for s in &mut sleepers {
        let _ = s.kill();
        let _ = s.wait();
    }
    let line = stderr
        .lines()
        .find(|l| l.contains("polling falls behind"))
        .unwrap_or_else(|| panic!("no warning that polling falls behind:\n{stderr}"));
    assert!(line.starts_with("zonemon: warning: "), "{line}");
    assert!(line.contains("against --interval 1ms"), "{line}");
    assert!(line.contains("raise --interval"), "{line}");
}

#[test]
fn auto_falls_back_when_ebpf_fails_and_says_so() {
    if !require_root("auto_falls_back_when_ebpf_fails_and_says_so") {
        return;
    }
    let (evs, name, stderr) = slow_zone_events(
        "auto",
        &["watch", "--json"],
        &[("ZONEMON_DISABLE_EBPF", "1")],
    );
    assert!(stderr.contains("eBPF is unavailable"), "{stderr}");
    assert!(
        stderr.contains("falling back to the kernel's proc connector"),
        "{stderr}"
    );
    assert!(
        stderr.contains("watching zone boots and shutdowns (the proc connector)"),
        "{stderr}"
    );
    assert_life(&evs, &name);
    // Asked for eBPF explicitly, it fails instead of falling back.
    let out = std::process::Command::new(ZONEMON)
        .args(["watch", "--source", "ebpf"])
        .env("ZONEMON_DISABLE_EBPF", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZONEMON_DISABLE_EBPF"));
}

#[test]
fn stats_report_the_cost_of_the_event_path() {
    if !require_root("stats_report_the_cost_of_the_event_path") {
        return;
    }
    let (_, _, stderr) = slow_zone_events("stats", &["watch", "--json", "--stats"], &[]);
    // Printed at exit: find the stats line in what the monitor said once stopped.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("{\"stats\""))
        .map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("no stats line in {stderr}"));
    let v: Value = serde_json::from_str(&line).unwrap();
    let s = &v["stats"];
    assert!(s["observations"].as_u64().unwrap() >= 4, "{s}");
    // At least the zone's lookup at ready (a zone no runtime made is not looked up again).
    assert!(s["naming_calls"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["event_path_ns"]["p50"].as_u64().unwrap() > 0);
    let share = s["naming_share_of_event_path"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share), "{share}");
}

#[test]
fn auto_uses_ebpf_when_it_works() {
    if !require_root("auto_uses_ebpf_when_it_works") {
        return;
    }
    let (evs, name, stderr) = slow_zone_events("autoebpf", &["watch", "--json"], &[]);
    assert!(
        stderr.contains("(eBPF)") && !stderr.contains("falling back"),
        "{stderr}"
    );
    assert_life(&evs, &name);
}
