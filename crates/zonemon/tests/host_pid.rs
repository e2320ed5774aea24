//! Containers that share the host's PID namespace, made without a runtime:
//! a process that changes its mount namespace *and* its root, then execs, is
//! a zone (level 0, `host_pid`); what services and cgroup managers do every
//! day is not. The real runtimes' `--pid=host` containers are in runtimes.rs.
//!
//! Root tests: they boot zones and make cgroups, each named with a prefix of
//! its own, and count only their own processes (by PID).

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use common::scratch::Scratch;
use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// A cgroup made by the test in the v1 `pids` hierarchy (or cgroup2 where that is all there is), removed when dropped.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let base = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
            .into_iter()
            .map(PathBuf::from)
            .find(|b| b.join("cgroup.procs").exists())
            .expect("a cgroup filesystem under /sys/fs/cgroup");
        let dir = base.join(name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TestCgroup(dir)
    }

    /// `sh -c` that moves itself into this cgroup, then runs `then` (in the same process).
    fn spawn(&self, then: &str) -> Child {
        let procs = self.0.join("cgroup.procs");
        Command::new("sh")
            .arg("-c")
            .arg(format!("echo $$ > {} && exec {then}", procs.display()))
            .spawn()
            .expect("spawning sh")
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Its processes have ended; the directory goes (retried: a reaped task may linger a moment).
        for _ in 0..50 {
            if fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn ordinary_cgroup_and_mount_activity_makes_no_zone_and_a_changed_root_does() {
    if !require_root("ordinary_cgroup_and_mount_activity_makes_no_zone_and_a_changed_root_does") {
        return;
    }
    let p = prefix("hostpid");
    let scratch = Scratch::new(&p);
    let mon = Monitor::start(&["watch", "--json"]);

    // A plain mkdir and rmdir in a cgroup filesystem.
    drop(TestCgroup::new(&format!("{p}plain")));
    // A process moved into a new cgroup that then execs (what a unit's scope is).
    let moved = TestCgroup::new(&format!("{p}scope"));
    let mut scope = moved.spawn("true");
    let scope_pid = scope.id();
    assert!(scope.wait().unwrap().success());
    // A service with a private mount namespace on the host's root (PrivateTmp=).
    let private = TestCgroup::new(&format!("{p}service"));
    let mut service = private.spawn("unshare --mount sh -c 'mount -t tmpfs zmt /tmp && exec true'");
    let service_pid = service.id();
    assert!(service.wait().unwrap().success());
    // Then a process that changes its mount namespace and its root, and execs: a zone.
    // The kernel side's records are in order: the others' would come before its down.
    let zone_cg = TestCgroup::new(&format!("{p}zone"));
    let mut zone = zone_cg.spawn(&format!(
        "unshare --mount --root={} /bin/sh -c 'exit 5'",
        scratch.rootfs().display()
    ));
    let zone_pid = zone.id();
    assert_eq!(zone.wait().unwrap().code(), Some(5));

    let of = |lines: &[String], pid: u32| -> Vec<Value> {
        parse_json(lines)
            .into_iter()
            .filter(|e| e["init_pid"] == pid && e["level"] == 0)
            .collect()
    };
    let done = mon.wait_for(WAIT, |lines| {
        of(lines, zone_pid).iter().any(|e| e["event"] == "down")
    });
    let lines = mon.stop();
    assert!(done, "the changed-root zone never went down: {lines:#?}");
    let zone_evs = of(&lines, zone_pid);
    let kinds: Vec<&str> = zone_evs
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["ready", "booted", "shutdown", "down"],
        "{zone_evs:#?}"
    );
    assert_eq!(zone_evs[2]["exit_code"], 5);
    assert!(zone_evs
        .iter()
        .all(|e| e["host_pid"] == true && e["name_source"] == "host-pid"));
    assert_eq!(zone_evs[1]["name"], format!("host-pid-{zone_pid}"));
    for (what, pid) in [
        ("the scope's process", scope_pid),
        ("the service", service_pid),
    ] {
        assert_eq!(
            of(&lines, pid),
            Vec::<Value>::new(),
            "{what} was taken for a zone"
        );
    }
}
