//! Root integration tests of the daemon's hooks (issue #10): a real daemon,
//! a real journal, real zones, real programs run as hooks.
//!
//! Each test writes its own config file, starts `zonemon daemon` on a journal
//! and socket of its own, and filters its hooks on its zones' name prefix, so
//! zones booted by anything else on the host never reach them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::thread;

use common::daemon::{TestDaemon, WAIT};
use common::*;
use serde_json::Value;

/// A TOML string (basic, escaped).
fn toml_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The lines of `file`, parsed as JSON records (a missing file has none).
fn records_in(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn hostile_names_reach_a_hook_only_as_data() {
    if !require_root("hostile_names_reach_a_hook_only_as_data") {
        return;
    }
    let p = prefix("hk");
    let pwned: Vec<String> = (1..=2)
        .map(|i| format!("/tmp/zmt-hk-pwn-{}-{i}", std::process::id()))
        .collect();
    let names = [
        format!("{p}$(touch {})", pwned[0]),
        format!("{p}a;touch {}", pwned[1]),
        format!("{p}'\"`id`"),
        format!("{p}a\nb"),
    ];
    // The hook keeps what it got: stdin, environment, argv, user; as nobody.
    let script = r#"cat > "$0/$ZONEMON_SEQ.json"; env -0 > "$0/$ZONEMON_SEQ.env"; printf '%s\n' "$@" > "$0/$ZONEMON_SEQ.argv"; id -u > "$0/$ZONEMON_SEQ.uid""#;
    let dir = TestDaemon::workdir("hostile");
    let out = dir.join("out");
    let config = format!(
        "[[hook]]\nname = \"keep\"\nrun = [\"/bin/sh\", \"-c\", {}, {}, \"fixed arg\"]\n\
         filter = [\"name={p}*\", \"event=booted\", \"event=shutdown\"]\nuser = \"nobody\"\n",
        toml_str(script),
        toml_str(out.to_str().unwrap()),
    );
    let d = TestDaemon::start(
        dir,
        &config,
        &["--metrics", "off", "--hook-concurrency", "2"],
    );
    d.wait_log("hooks: keep");
    for name in &names {
        // busybox's hostname sets any bytes (util-linux's refuses these names).
        let mut zone = Command::new("unshare");
        zone.args([
            "--uts",
            "sh",
            "-c",
            "busybox hostname \"$1\" && exec unshare --pid --fork --kill-child sh -c \"$2\"",
            "sh",
            name,
            "exit 7",
        ]);
        let st = zone.status().expect("running unshare");
        assert_eq!(st.code(), Some(7), "zone {name:?}");
    }
    // Two records (booted, shutdown) of each zone, each kept by one run.
    let wanted = names.len() * 2;
    wait_until(
        WAIT,
        || format!("{wanted} hook runs; log:\n{}", d.log()),
        || {
            std::fs::read_dir(d.out())
                .map(|r| {
                    r.filter_map(Result::ok)
                        .filter(|e| e.path().extension().is_some_and(|x| x == "uid"))
                        .count()
                })
                .unwrap_or(0)
                >= wanted
        },
    );
    let journal: Vec<Value> = d
        .journal_of(&p)
        .into_iter()
        .filter(|r| r["event"] == "booted" || r["event"] == "shutdown")
        .collect();
    assert_eq!(journal.len(), wanted, "{journal:?}");
    let mut seen = BTreeSet::new();
    for rec in &journal {
        let seq = rec["seq"].as_u64().unwrap();
        let file = |ext: &str| d.out().join(format!("{seq}.{ext}"));
        let got: Value =
            serde_json::from_str(&std::fs::read_to_string(file("json")).unwrap()).unwrap();
        assert_eq!(&got, rec, "the hook got exactly the journaled record");
        let env = std::fs::read(file("env")).unwrap();
        let vars: BTreeMap<String, String> = env
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| {
                let v = String::from_utf8_lossy(v);
                let (k, val) = v.split_once('=').unwrap();
                (k.to_string(), val.to_string())
            })
            .collect();
        let name = rec["name"].as_str().unwrap();
        assert_eq!(vars["ZONEMON_NAME"], name);
        assert_eq!(vars["ZONEMON_SEQ"], seq.to_string());
        assert_eq!(vars["ZONEMON_EVENT"], rec["event"].as_str().unwrap());
        if rec["event"] == "shutdown" {
            assert_eq!(vars["ZONEMON_EXIT_CODE"], "7");
        }
        assert!(
            vars.keys().all(|k| k.starts_with("ZONEMON_")
                || ["PATH", "PWD", "SHLVL", "_"].contains(&k.as_str())),
            "{vars:?}"
        );
        assert_eq!(
            std::fs::read_to_string(file("argv")).unwrap(),
            "fixed arg\n",
            "the argv is exactly the configured one"
        );
        assert_eq!(
            std::fs::read_to_string(file("uid")).unwrap().trim(),
            "65534"
        );
        seen.insert(name.to_string());
    }
    assert_eq!(
        seen,
        names.iter().cloned().collect(),
        "every hostile name, intact"
    );
    for f in &pwned {
        assert!(!Path::new(f).exists(), "{f} exists: a name was executed");
    }
}

#[test]
fn slow_crashing_failing_and_hanging_hooks_are_contained_and_counted() {
    if !require_root("slow_crashing_failing_and_hanging_hooks_are_contained_and_counted") {
        return;
    }
    let p = prefix("hkbad");
    let hang_marker = format!("{}.{}", 1000, std::process::id());
    let dir = TestDaemon::workdir("bad");
    let out = dir.join("out");
    let o = toml_str(out.to_str().unwrap());
    let filter = format!("filter = [\"name={p}*\", \"event=booted\"]");
    let config = format!(
        "[[hook]]\nname = \"slow\"\nrun = [\"/bin/sh\", \"-c\", \"sleep 2; cat > \\\"$0/slow\\\"\", {o}]\n{filter}\n\
         [[hook]]\nname = \"crash\"\nrun = [\"/bin/sh\", \"-c\", \"kill -SEGV $$\"]\n{filter}\n\
         [[hook]]\nname = \"fail\"\nrun = [\"/bin/sh\", \"-c\", \"exit 3\"]\n{filter}\n\
         [[hook]]\nname = \"hang\"\nrun = [\"/bin/sh\", \"-c\", \"sleep {hang_marker} & sleep {hang_marker}\"]\ntimeout = \"1s\"\n{filter}\n\
         [[hook]]\nname = \"quick\"\nrun = [\"/bin/sh\", \"-c\", \"cat > \\\"$0/quick\\\"\", {o}]\n{filter}\n"
    );
    let d = TestDaemon::start(dir, &config, &["--metrics", "127.0.0.1:0"]);
    run_zone(&format!("{p}0"), "exit 0");
    wait_until(
        WAIT,
        || format!("the slow hook's run; log:\n{}", d.log()),
        || d.out().join("slow").exists(),
    );
    assert!(d.out().join("quick").exists());
    d.wait_log("hook=hang");
    let log = d.log();
    for want in [
        "hook was killed by signal 11 hook=crash",
        "hook exited with status 3 hook=fail",
        "hook timed out and was killed hook=hang",
    ] {
        assert!(log.contains(want), "log lacks `{want}`:\n{log}");
    }
    // The hanging hook's whole process group went with it.
    let left = Command::new("pgrep")
        .args(["-f", &format!("sleep {hang_marker}")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    let metrics = d.metrics();
    for want in [
        "zonemon_hook_runs_total{hook=\"quick\"} 1",
        "zonemon_hook_runs_total{hook=\"slow\"} 1",
        "zonemon_hook_failures_total{hook=\"crash\"} 1",
        "zonemon_hook_failures_total{hook=\"fail\"} 1",
        "zonemon_hook_timeouts_total{hook=\"hang\"} 1",
    ] {
        assert!(metrics.contains(want), "metrics lack `{want}`:\n{metrics}");
    }
}

#[test]
fn under_a_1000_zone_churn_every_matching_event_reaches_its_hook_in_per_zone_order() {
    if !require_root(
        "under_a_1000_zone_churn_every_matching_event_reaches_its_hook_in_per_zone_order",
    ) {
        return;
    }
    let p = prefix("hkchurn");
    let dir = TestDaemon::workdir("churn");
    let file = dir.join("out/records");
    let config = format!(
        "[[hook]]\nname = \"append\"\nrun = [\"/bin/sh\", \"-c\", \"cat >> \\\"$0\\\"\", {}]\nfilter = [\"name={p}*\"]\n",
        toml_str(file.to_str().unwrap())
    );
    // A queue that holds the whole churn: this test is about order and completeness.
    let d = TestDaemon::start(
        dir,
        &config,
        &["--metrics", "off", "--hook-queue", "100000"],
    );
    burst(&p, 1000);
    wait_until(
        WAIT,
        || {
            let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
            for r in d.records() {
                let name = r["name"].as_str().unwrap_or("");
                let key = match name.starts_with(&p) {
                    true => r["event"].as_str().unwrap_or("?").to_string(),
                    false => format!("others' {}", r["event"].as_str().unwrap_or("?")),
                };
                *kinds.entry(key).or_default() += 1;
            }
            format!("the journal's 4,000 records of {p}; it has {kinds:?}")
        },
        || d.journal_of(&p).len() >= 4000,
    );
    let journal = d.journal_of(&p);
    wait_until(
        WAIT,
        || format!("{} hook runs of {}", records_in(&file).len(), journal.len()),
        || records_in(&file).len() >= journal.len(),
    );
    let got = records_in(&file);
    assert_eq!(got.len(), journal.len(), "no run twice");
    let seqs = |recs: &[Value]| {
        recs.iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        seqs(&got),
        seqs(&journal),
        "every matching record reached the hook"
    );
    // Per zone, in the order the records happened.
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for rec in &got {
        let (zone, seq) = (
            rec["zone_id"].as_u64().unwrap(),
            rec["seq"].as_u64().unwrap(),
        );
        if let Some(prev) = last.insert(zone, seq) {
            assert!(prev < seq, "zone {zone}: seq {seq} ran after {prev}");
        }
    }
    assert_eq!(last.len(), 1000);
}

#[test]
fn sighup_reloads_hooks_without_losing_a_record() {
    if !require_root("sighup_reloads_hooks_without_losing_a_record") {
        return;
    }
    let p = prefix("hkhup");
    let dir = TestDaemon::workdir("hup");
    let file = dir.join("out/records");
    let config = |tag: &str| {
        format!(
            "[[hook]]\nname = \"{tag}\"\nrun = [\"/bin/sh\", \"-c\", \"printf '%s %s\\\\n' {tag} \\\"$ZONEMON_SEQ\\\" >> \\\"$0\\\"\", {}]\nfilter = [\"name={p}*\"]\n",
            toml_str(file.to_str().unwrap())
        )
    };
    let d = TestDaemon::start(
        dir,
        &config("v1"),
        &["--metrics", "off", "--hook-queue", "100000"],
    );
    let lines = || std::fs::read_to_string(&file).unwrap_or_default();
    // Zones booting all along while the hooks are swapped twice, once refused.
    let churn = {
        let p = p.clone();
        thread::spawn(move || burst(&p, 200))
    };
    wait_until(WAIT, || "v1 runs".into(), || lines().contains("v1 "));
    d.reload(&config("v2"));
    d.wait_log("hooks=v2");
    d.reload("[[hook]]\nrun = [\"/bin/true\"]\ncolour = \"red\"\n");
    d.wait_log("the config file is refused");
    assert!(d.log().contains("line 3"), "{}", d.log());
    churn.join().unwrap();
    run_zone(&format!("{p}last"), "exit 0"); // after the refused reload: still v2
    wait_until(
        WAIT,
        || format!("the journal's 804 records of {p}"),
        || d.journal_of(&p).len() >= 804,
    );
    let journal = d.journal_of(&p);
    wait_until(
        WAIT,
        || format!("{} hook runs of {}", lines().lines().count(), journal.len()),
        || lines().lines().count() >= journal.len(),
    );
    let mut by_seq: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for l in lines().lines() {
        let (tag, seq) = l.split_once(' ').unwrap();
        by_seq
            .entry(seq.parse().unwrap())
            .or_default()
            .push(tag.to_string());
    }
    let want: BTreeSet<u64> = journal.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        by_seq.keys().copied().collect::<BTreeSet<_>>(),
        want,
        "every record, by one hook set or the other"
    );
    assert!(
        by_seq.values().all(|tags| tags.len() == 1),
        "no record twice"
    );
    let last = journal
        .iter()
        .rev()
        .find(|r| r["name"] == format!("{p}last").as_str())
        .unwrap();
    assert_eq!(by_seq[&last["seq"].as_u64().unwrap()], ["v2"]);
}
