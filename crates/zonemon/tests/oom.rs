//! Root integration tests of OOM kills (issue #12): zones in a memory cgroup
//! with a small limit allocate until the kernel's OOM killer takes them, and
//! the `shutdown` record says so (`oom_killed`, `oom_kills`), seen through
//! the `mark_victim` tracepoint.
//!
//! The memory cgroup is cgroup v1's memory hierarchy where the host mounts it
//! (as these machines do), else cgroup v2's; v2's group kill
//! (`memory.oom.group`) is covered where the host has v2's memory controller.

mod common;

use common::*;
use serde_json::Value;

/// Runs `zones` (name, script) one after another under `zonemon watch --json`; their `shutdown` records by name.
fn shutdowns(zones: &[(String, String)]) -> Vec<Value> {
    let mon = Monitor::start(&["watch", "--json"]);
    for (name, script) in zones {
        run_zone(name, script);
    }
    let names: Vec<&str> = zones.iter().map(|(n, _)| n.as_str()).collect();
    let done = mon.wait_for(std::time::Duration::from_secs(60), |lines| {
        parse_json(lines)
            .iter()
            .filter(|e| e["event"] == "shutdown" && names.iter().any(|n| e["name"] == *n))
            .count()
            >= zones.len()
    });
    let lines = mon.stop();
    assert!(
        done,
        "not every zone shut down; zonemon printed:\n{}",
        lines.join("\n")
    );
    names
        .iter()
        .map(|n| {
            parse_json(&lines)
                .into_iter()
                .find(|e| e["event"] == "shutdown" && e["name"] == *n)
                .unwrap()
        })
        .collect()
}

#[test]
fn an_oom_killed_init_and_an_oom_killed_child_are_told_apart() {
    if !require_root("an_oom_killed_init_and_an_oom_killed_child_are_told_apart") {
        return;
    }
    let p = prefix("oom");
    let cg = MemCg::new(&format!("{p}cg"), 16 << 20)
        .expect("a memory cgroup: cgroup v1's memory hierarchy or cgroup v2's memory controller");
    let got = shutdowns(&[
        // The init itself grows until the OOM killer takes it.
        (format!("{p}init"), cg.enter(&format!("exec {MEMORY_HOG}"))),
        // A child is taken twice; the init survives and exits 0.
        (
            format!("{p}child"),
            cg.enter(&format!("{MEMORY_HOG}; {MEMORY_HOG}; exit 0")),
        ),
        // No OOM kill at all.
        (format!("{p}calm"), "exit 3".into()),
    ]);
    let (init, child, calm) = (&got[0], &got[1], &got[2]);
    assert_eq!(init["oom_killed"], true, "{init}");
    assert_eq!(init["exit_signal"], 9, "{init}");
    assert_eq!(init["oom_kills"], 0, "{init}");
    assert_eq!(child["oom_killed"], false, "{child}");
    assert_eq!(child["oom_kills"], 2, "{child}");
    assert_eq!(child["exit_code"], 0, "{child}");
    assert_eq!(
        (calm["oom_killed"].clone(), calm["oom_kills"].clone()),
        (Value::Bool(false), Value::from(0)),
        "{calm}"
    );
}

#[test]
fn a_cgroup_killed_as_a_group_marks_its_init() {
    if !require_root("a_cgroup_killed_as_a_group_marks_its_init") {
        return;
    }
    let p = prefix("oomgroup");
    let Some(cg) = MemCg::new(&format!("{p}cg"), 16 << 20).filter(|c| c.v2) else {
        // Not a failure, even in CI: these hosts mount v1's memory hierarchy, and v1 has no group kill.
        eprintln!("a_cgroup_killed_as_a_group_marks_its_init: this host has no cgroup v2 memory controller; not run");
        return;
    };
    cg.set("memory.oom.group", "1");
    // The init only sleeps; its child grows. With oom.group the whole cgroup goes.
    let got = shutdowns(&[(
        format!("{p}group"),
        cg.enter(&format!("{MEMORY_HOG} & sleep 60")),
    )]);
    assert_eq!(got[0]["oom_killed"], true, "{}", got[0]);
    assert_eq!(got[0]["exit_signal"], 9, "{}", got[0]);
}
