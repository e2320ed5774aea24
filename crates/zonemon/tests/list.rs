//! `zonemon list` against real zones made with `unshare(1)`. Needs root.
//!
//! Only zones whose hostname carries this run's random prefix are looked at:
//! the machine may run other zones.

// The bin crate's module, compiled into this test so that `run` itself can be tried.
#[path = "../src/list.rs"]
mod list;

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zonemon_core::listing::parseable_line;
use zonemon_core::naming::NoRuntimeNames;
use zonemon_core::procscan::{host_info, namespace_id, own_pidns, scan, ProcZone};
use zonemon_core::{NameSource, Tracker};
use zonemon_testkit::{found_within, ppid, require_root_for};

/// Whether the test may run: true as root; otherwise skips (or fails under CI).
fn have_root(test: &str) -> bool {
    require_root_for(test, "to make PID and UTS namespaces")
}

/// A prefix for this test's hostnames, different on every run.
fn random_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mix = (u64::from(std::process::id()) << 32 | u64::from(nanos))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("zmt-list-{:08x}", mix >> 32)
}

/// Processes this test started, each leading its own process group; all killed and reaped on drop.
struct Procs(Vec<Child>);

impl Procs {
    /// Starts `unshare` with `args`, in a new process group, without a shell
    /// (scripts get their strings as positional parameters).
    fn unshare(&mut self, args: &[&str]) {
        let child = Command::new("unshare")
            .args(args)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("unshare(1) starts");
        self.0.push(child);
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(pgid) = i32::try_from(child.id()) {
                // The whole group, including the zones' processes in their own PID namespaces.
                // SAFETY: kill has no memory-safety preconditions; the group is ours.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts this test's zones: `<prefix>-1` (a zone with its own hostname), and
/// `<prefix>-outer` with `<prefix>-inner` nested inside it.
fn start_zones(prefix: &str) -> Procs {
    let mut procs = Procs(Vec::new());
    let one = format!("{prefix}-1");
    procs.unshare(&[
        "--uts",
        "sh",
        "-c",
        r#"hostname "$1" && exec unshare --pid --fork --mount-proc --kill-child sleep 30"#,
        "sh",
        &one,
    ]);
    let (outer, inner) = (format!("{prefix}-outer"), format!("{prefix}-inner"));
    procs.unshare(&[
        "--pid",
        "--fork",
        "--mount-proc",
        "--uts",
        "--kill-child",
        "sh",
        "-c",
        // Not `exec`: unshare(1) would move the outer init itself into the inner UTS namespace.
        r#"hostname "$1" || exit 1; unshare --pid --fork --uts --kill-child sh -c 'hostname "$1" && exec sleep 30' sh "$2"; exit 0"#,
        "sh",
        &outer,
        &inner,
    ]);
    procs
}

/// Scans until every one of `names` is a zone's nodename (up to 5 s); returns those zones in `names` order.
fn wait_for(names: &[String]) -> Vec<ProcZone> {
    let found = || -> Vec<ProcZone> {
        let zones = scan(Path::new("/proc"));
        names
            .iter()
            .filter_map(|n| zones.iter().find(|z| &z.nodename == n).cloned())
            .collect()
    };
    found_within(Duration::from_secs(5), || {
        Some(found()).filter(|f| f.len() == names.len())
    })
    .unwrap_or_else(|| {
        panic!(
            "zones {names:?} not up after 5 s; found {:?}",
            found()
                .iter()
                .map(|z| z.nodename.clone())
                .collect::<Vec<_>>()
        )
    })
}

/// CLOCK_BOOTTIME now, in nanoseconds.
fn boottime_ns() -> u64 {
    // SAFETY: zeroed timespec is valid; clock_gettime writes into it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is valid and writable.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[test]
fn scan_finds_real_zones_nested_and_named() {
    if !have_root("scan_finds_real_zones_nested_and_named") {
        return;
    }
    let prefix = random_prefix();
    let _procs = start_zones(&prefix);
    let names = ["1", "outer", "inner"].map(|s| format!("{prefix}-{s}"));
    let found = wait_for(&names);
    let (one, outer, inner) = (&found[0], &found[1], &found[2]);
    let host = host_info().unwrap();
    let host_pidns = own_pidns().unwrap();

    assert_eq!((one.level, one.comm.as_str()), (1, "sleep"), "{one:?}");
    assert_eq!(one.parent_pidns, host_pidns, "{one:?}");
    assert_eq!(one.parent_init_pid, 0);
    assert_eq!((outer.level, outer.comm.as_str()), (1, "sh"), "{outer:?}");
    assert_eq!(outer.parent_pidns, host_pidns);
    assert_eq!(
        (inner.level, inner.comm.as_str()),
        (2, "sleep"),
        "{inner:?}"
    );
    assert_eq!(inner.parent_pidns, outer.pidns, "nested in the outer zone");
    assert_eq!(inner.parent_init_pid, outer.init_pid);
    for z in &found {
        assert_ne!(z.pidns, host_pidns);
        assert_ne!(z.utsns, host.utsns, "own UTS namespace: {z:?}");
        assert!(
            z.cgroup.as_deref().is_some_and(|c| c.starts_with('/')),
            "{z:?}"
        );
        assert_eq!(z.root.as_deref(), Some("/"), "{z:?}");
        let now = boottime_ns();
        assert!(z.start_ns > 0 && z.start_ns <= now, "{z:?} at {now}");
        assert!(
            now - z.start_ns < 15_000_000_000,
            "started moments ago: {z:?}"
        );
    }
    // The kernel's namespace ids (NS_GET_ID, Linux 6.18+) agree with the nesting.
    let host_id = namespace_id(&std::fs::File::open("/proc/self/ns/pid").unwrap());
    if host_id != 0 {
        assert_eq!(inner.parent_pidns_id, outer.pidns_id, "{inner:?}");
        assert_eq!(
            (one.parent_pidns_id, outer.parent_pidns_id),
            (host_id, host_id)
        );
        let ids: std::collections::HashSet<u64> = found.iter().map(|z| z.pidns_id).collect();
        assert_eq!(ids.len(), 3, "one id per namespace: {found:?}");
        assert!(!ids.contains(&0) && !ids.contains(&host_id), "{found:?}");
    }
    let zones = scan(Path::new("/proc"));
    let pos = |z: &ProcZone| zones.iter().position(|y| y.init_pid == z.init_pid).unwrap();
    assert!(pos(outer) < pos(inner), "parents are listed first");

    // End to end: seed a tracker with the scan, as `zonemon list` does.
    let mut tracker = Tracker::new(host, NoRuntimeNames);
    let mut roots = std::collections::HashMap::new();
    for z in &zones {
        roots.insert(tracker.seed(&z.to_observation(), 0), z.root.clone());
    }
    let running = tracker.running();
    let by_name = |n: &str| {
        running
            .iter()
            .find(|e| e.name == n)
            .unwrap_or_else(|| panic!("{n} is listed: {running:?}"))
    };
    let (e1, eo, ei) = (by_name(&names[0]), by_name(&names[1]), by_name(&names[2]));
    for (e, z) in [(e1, one), (eo, outer), (ei, inner)] {
        assert_eq!(e.name_source, NameSource::Hostname);
        assert_eq!(
            (e.init_pid, e.pidns, e.level),
            (z.init_pid, z.pidns, z.level)
        );
        assert_eq!(e.hostname.as_deref(), Some(z.nodename.as_str()));
        let line = parseable_line(e, roots[&e.zone_id].as_deref());
        assert_eq!(
            line,
            format!("{}:{}:running:/:::{}", e.zone_id, z.nodename, z.pidns)
        );
    }
    assert_eq!(e1.parent_zone_id, None);
    assert_eq!(eo.parent_zone_id, None);
    assert_eq!(ei.parent_zone_id, Some(eo.zone_id));
}

#[test]
fn list_run_prints_real_zones() {
    if !have_root("list_run_prints_real_zones") {
        return;
    }
    let prefix = random_prefix();
    let _procs = start_zones(&prefix);
    let names = ["1", "outer", "inner"].map(|s| format!("{prefix}-{s}"));
    let found = wait_for(&names);

    let mut out = Vec::new();
    list::run(true, NoRuntimeNames, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for (name, z) in names.iter().zip(&found) {
        let line = text
            .lines()
            .find(|l| l.contains(&format!(":{name}:")))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        assert!(
            line.ends_with(&format!(":{name}:running:/:::{}", z.pidns)),
            "{line}"
        );
    }

    let mut out = Vec::new();
    list::run(false, NoRuntimeNames, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("ZONE_ID  NAME"), "{text}");
    for (name, z) in names.iter().zip(&found) {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cols[2..],
            [
                "running",
                &z.pidns.to_string(),
                &z.init_pid.to_string(),
                &z.level.to_string(),
                "-",
                "-"
            ]
        );
    }
}

/// A closed pipe.
struct BrokenPipe;

impl Write for BrokenPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn list_run_returns_write_errors() {
    // Needs no root: even with no zone visible, the table's header (or the flush) fails.
    for parseable in [false, true] {
        let err = list::run(parseable, NoRuntimeNames, &mut BrokenPipe).unwrap_err();
        let io = err.downcast_ref::<io::Error>().expect("an I/O error");
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
    }
}

/// A zone whose init has not exec'd anything yet (as a runtime's init
/// before it starts the container's program) is listed `ready`.
#[test]
fn list_shows_a_zone_not_yet_booted_as_ready() {
    if !have_root("list_shows_a_zone_not_yet_booted_as_ready") {
        return;
    }
    // A child leading its own process group makes a PID namespace and forks its init; neither execs.
    // SAFETY: after fork the child makes only async-signal-safe system calls and never returns.
    let leader = unsafe { libc::fork() };
    assert!(leader >= 0, "fork failed");
    if leader == 0 {
        // SAFETY: as above: system calls only, ending in _exit.
        unsafe {
            libc::setpgid(0, 0);
            if libc::unshare(libc::CLONE_NEWPID) != 0 || libc::fork() < 0 {
                libc::_exit(1);
            }
            loop {
                libc::pause();
            }
        }
    }
    struct Group(i32);
    impl Drop for Group {
        fn drop(&mut self) {
            // SAFETY: killing and reaping the group this test made.
            unsafe {
                libc::kill(-self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
    let _group = Group(leader);
    let zone = found_within(Duration::from_secs(5), || {
        scan(Path::new("/proc"))
            .into_iter()
            .find(|z| ppid(z.init_pid as i32) == Some(leader))
    })
    .expect("the unbooted zone did not appear");
    assert!(!zone.booted, "{zone:?}");
    let mut out = Vec::new();
    list::run(true, NoRuntimeNames, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let name = format!("pidns-{}", zone.pidns);
    assert!(
        text.lines()
            .any(|l| l.contains(&format!(":{name}:ready:")) && l.ends_with(&zone.pidns.to_string())),
        "{name} listed ready in:\n{text}"
    );
}
