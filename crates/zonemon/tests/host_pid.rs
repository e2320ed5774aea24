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

/// Makes the test process a child subreaper (for the whole test binary), so
/// that it can reap the children a zone's init leaves behind.
fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
}

/// A scratch root filesystem with `/dev/null`, which the shell gives a background job as its input.
fn scratch_with_dev_null(prefix: &str) -> Scratch {
    let scratch = Scratch::new(prefix);
    let null = scratch.rootfs().join("dev/null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .expect("running mknod");
    assert!(made.success(), "mknod {}", null.display());
    scratch
}

/// A process the test process adopted (a zone's init left it behind), killed and reaped when dropped.
struct Adopted(i32);

impl Adopted {
    /// The process whose PID a zone wrote to `file`, waiting for it.
    fn from_pid_file(file: &std::path::Path) -> Adopted {
        for _ in 0..600 {
            if let Some(pid) = fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return Adopted(pid);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no PID in {}", file.display());
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        // SAFETY: kill and waitpid on a child of this process.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// The records of the host-PID zone whose init is `pid`.
fn zone_events(lines: &[String], pid: u32) -> Vec<Value> {
    parse_json(lines)
        .into_iter()
        .filter(|e| e["init_pid"] == pid && e["level"] == 0)
        .collect()
}

/// What the records of that zone say, in order.
fn zone_kinds(lines: &[String], pid: u32) -> Vec<String> {
    zone_events(lines, pid)
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits past the last-resort sweep's grace (2 s after a shutdown) and checks
/// that the zone of `pid` is still not down: `why` it is held.
fn still_up_after_the_grace(mon: &Monitor, pid: u32, why: &str) {
    std::thread::sleep(Duration::from_secs(3));
    let lines = mon.lines();
    assert!(
        !zone_kinds(&lines, pid).contains(&"down".to_string()),
        "down while {why}: {:#?}",
        zone_events(&lines, pid)
    );
}

/// Waits for the down of the zone of `pid` and checks it was seen, not inferred; returns its records.
fn seen_down(mon: Monitor, pid: u32) -> Vec<Value> {
    let done = mon.wait_for(WAIT, |lines| {
        zone_kinds(lines, pid).contains(&"down".to_string())
    });
    let lines = mon.stop();
    assert!(done, "the zone never went down: {lines:#?}");
    let evs = zone_events(&lines, pid);
    assert_ne!(
        evs.last().unwrap()["resynced"],
        true,
        "the down was inferred, not seen: {evs:#?}"
    );
    evs
}

/// The host-PID zone's down comes when its last process is gone, not its
/// init: a child the init left behind, then a process that joined the zone's
/// mount namespace and exec'd there (as `docker exec` does), keep it up
/// past the last-resort sweep's grace, and the down follows the last of them.
#[test]
fn a_host_pid_zone_is_down_when_its_last_process_is_gone() {
    if !require_root("a_host_pid_zone_is_down_when_its_last_process_is_gone") {
        return;
    }
    become_subreaper();
    let p = prefix("hostpid-last");
    let scratch = scratch_with_dev_null(&p);
    let mon = Monitor::start(&["watch", "--json"]);

    let zone_cg = TestCgroup::new(&format!("{p}zone"));
    let mut zone = zone_cg.spawn(&format!(
        "unshare --mount --root={} /bin/sh -c 'sleep 1000 & echo $! > /member.pid; exit 5'",
        scratch.rootfs().display()
    ));
    let zone_pid = zone.id();
    assert_eq!(zone.wait().unwrap().code(), Some(5));
    let member = Adopted::from_pid_file(&scratch.rootfs().join("member.pid"));
    assert!(
        mon.wait_for(WAIT, |lines| zone_kinds(lines, zone_pid)
            .contains(&"shutdown".to_string())),
        "the zone's init exit was not reported: {:#?}",
        mon.lines()
    );
    // A process joins the zone's mount namespace and root, and execs there.
    let mut joiner = Command::new("nsenter")
        .args(["--target", &member.0.to_string(), "--mount", "--root"])
        .args(["/bin/sleep", "1000"])
        .spawn()
        .expect("spawning nsenter");
    still_up_after_the_grace(&mon, zone_pid, "the init's child runs");
    drop(member);
    still_up_after_the_grace(&mon, zone_pid, "the process that joined the zone runs");
    joiner.kill().unwrap();
    joiner.wait().unwrap();
    let evs = seen_down(mon, zone_pid);
    let kinds: Vec<&str> = evs.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ready", "booted", "shutdown", "down"], "{evs:#?}");
    assert_eq!(evs[2]["exit_code"], 5);
}

/// The same for a host-PID zone that was running before zonemon started: its
/// processes found in /proc (the init, its child, the short-lived ones its
/// loop forks) are counted, and its down follows the last of them.
#[test]
fn a_host_pid_zone_found_running_is_down_when_its_last_process_is_gone() {
    if !require_root("a_host_pid_zone_found_running_is_down_when_its_last_process_is_gone") {
        return;
    }
    become_subreaper();
    let p = prefix("hostpid-found");
    let scratch = scratch_with_dev_null(&p);
    let zone_cg = TestCgroup::new(&format!("{p}zone"));
    let mut zone = zone_cg.spawn(&format!(
        "unshare --mount --root={} /bin/sh -c \
         'sleep 1000 & echo $! > /member.pid; while [ ! -e /go ]; do sleep 0.05; done; exit 6'",
        scratch.rootfs().display()
    ));
    let zone_pid = zone.id();
    let member = Adopted::from_pid_file(&scratch.rootfs().join("member.pid"));
    let mon = Monitor::start(&["watch", "--json"]);

    fs::write(scratch.rootfs().join("go"), "").unwrap();
    assert_eq!(zone.wait().unwrap().code(), Some(6));
    assert!(
        mon.wait_for(WAIT, |lines| zone_kinds(lines, zone_pid)
            .contains(&"shutdown".to_string())),
        "the zone's init exit was not reported: {:#?}",
        mon.lines()
    );
    still_up_after_the_grace(&mon, zone_pid, "the init's child runs");
    drop(member);
    let evs = seen_down(mon, zone_pid);
    let kinds: Vec<&str> = evs.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["shutdown", "down"], "{evs:#?}");
    assert_eq!(evs[0]["exit_code"], 6);
}
