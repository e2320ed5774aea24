//! Root integration tests of `zonemon watch` on real zones made by `unshare`.
//!
//! Each test tags its zones with a name prefix of its own and counts only those.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// The JSON events of the zones named with `prefix`, once `n` of them are down.
fn run_and_collect(prefix: &str, n: usize, body: impl FnOnce()) -> Vec<Value> {
    let mon = Monitor::start(&["watch", "--json"]);
    body();
    assert!(
        mon.wait_for(WAIT, |l| count(l, prefix, "down") >= n),
        "timed out waiting for {n} zones {prefix}* to go down; got:\n{}",
        mon.lines().join("\n")
    );
    let lines = mon.stop();
    parse_json(&lines)
        .into_iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .collect()
}

fn kinds_of(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e["event"] != "ready" && e["event"] != "down")
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[test]
fn boot_and_shutdown_with_name_and_exit_code() {
    if !require_root("boot_and_shutdown_with_name_and_exit_code") {
        return;
    }
    let p = prefix("boot");
    let name = format!("{p}aap");
    let evs = run_and_collect(&p, 1, || {
        let status = run_zone(&name, "sleep 0.05; exit 7");
        assert_eq!(status.code(), Some(7));
    });
    assert_eq!(kinds_of(&evs), ["booted", "shutdown"], "{evs:#?}");
    let (booted, shutdown) = (&evs[1], &evs[2]);
    assert_eq!(evs[0]["event"], "ready");
    for e in [booted, shutdown] {
        assert_eq!(e["name"], name.as_str());
        assert_eq!(e["name_source"], "hostname");
        assert_eq!(e["hostname"], name.as_str());
        assert_eq!(e["level"], 1);
        assert_eq!(e["parent_zone_id"], Value::Null);
        assert_eq!(e["zone_id"], evs[0]["zone_id"]);
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(shutdown["exit_code"], 7);
    let uptime = shutdown["uptime_ns"].as_u64().unwrap();
    assert!(
        (50_000_000..10_000_000_000).contains(&uptime),
        "uptime {uptime}"
    );
    let pidns = std::fs::metadata("/proc/self/ns/pid")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert_ne!(
        booted["pidns"].as_u64().unwrap(),
        pidns,
        "the zone's own PID namespace"
    );
    // Life order and down.
    assert_eq!(evs.last().unwrap()["event"], "down");
    assert!(evs.last().unwrap()["shutdown_ns"].as_u64().is_some());
}

#[test]
fn killing_signal_is_reported() {
    if !require_root("killing_signal_is_reported") {
        return;
    }
    let p = prefix("signal");
    let name = format!("{p}noot");
    let mon = Monitor::start(&["watch", "--json"]);
    let zone = BackgroundZone::start(&name, "exec sleep 60");
    assert!(
        mon.wait_for(WAIT, |l| count(l, &p, "booted") == 1),
        "no boot: {:?}",
        mon.lines()
    );
    let booted = parse_json(&mon.lines())
        .into_iter()
        .find(|e| e["event"] == "booted" && e["name"] == name.as_str())
        .unwrap();
    let init = booted["init_pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the zone's init, a process this test made.
    assert_eq!(unsafe { libc::kill(init, libc::SIGKILL) }, 0);
    assert!(mon.wait_for(WAIT, |l| count(l, &p, "shutdown") == 1));
    drop(zone);
    let evs = parse_json(&mon.stop());
    let shutdown = evs
        .iter()
        .find(|e| e["event"] == "shutdown" && e["name"] == name.as_str())
        .unwrap();
    assert_eq!(shutdown["exit_signal"], 9);
    assert!(shutdown.get("exit_code").is_none());
    assert_eq!(shutdown["init_pid"], init);
}

#[test]
fn quick_reboot_reports_both_transitions_in_order() {
    if !require_root("quick_reboot_reports_both_transitions_in_order") {
        return;
    }
    let p = prefix("reboot");
    let name = format!("{p}mies");
    let evs = run_and_collect(&p, 2, || {
        run_zone(&name, "exit 1");
        run_zone(&name, "exit 2");
    });
    assert_eq!(
        kinds_of(&evs),
        ["booted", "shutdown", "booted", "shutdown"],
        "{evs:#?}"
    );
    let seed: Vec<_> = evs
        .iter()
        .filter(|e| e["event"] == "booted" || e["event"] == "shutdown")
        .collect();
    assert_eq!(seed[1]["exit_code"], 1);
    assert_eq!(seed[3]["exit_code"], 2);
    assert_eq!(seed[0]["zone_id"], seed[1]["zone_id"]);
    assert_eq!(seed[2]["zone_id"], seed[3]["zone_id"]);
    assert_ne!(
        seed[0]["zone_id"], seed[2]["zone_id"],
        "a reboot is a new zone"
    );
}

#[test]
fn nested_zone_reports_its_parent() {
    if !require_root("nested_zone_reports_its_parent") {
        return;
    }
    let p = prefix("nested");
    let (outer, inner) = (format!("{p}outer"), format!("{p}inner"));
    let evs = run_and_collect(&p, 2, || {
        let mut c = zone_cmd(
            &outer,
            "unshare --uts sh -c 'hostname \"$0\" && exec unshare --pid --fork sh -c \"sleep 0.05; exit 4\"' \"$INNER\"; sleep 0.05",
        );
        c.env("INNER", &inner);
        let mut child = c.spawn().unwrap();
        wait_timeout(&mut child, WAIT);
    });
    let boot = |n: &str| {
        evs.iter()
            .find(|e| e["event"] == "booted" && e["name"] == n)
            .unwrap_or_else(|| panic!("no boot of {n}: {evs:#?}"))
    };
    let (o, i) = (boot(&outer), boot(&inner));
    assert_eq!(o["level"], 1);
    assert_eq!(o["parent_zone_id"], Value::Null);
    assert_eq!(i["level"], 2);
    assert_eq!(i["parent_zone_id"], o["zone_id"]);
    let inner_shutdown = evs
        .iter()
        .find(|e| e["event"] == "shutdown" && e["name"] == inner.as_str())
        .unwrap();
    assert_eq!(inner_shutdown["exit_code"], 4);
    assert_eq!(inner_shutdown["parent_zone_id"], o["zone_id"]);
}

/// Compiles a C program into a temporary file and returns its path.
fn compile_c(name: &str, source: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zonemon-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let out = Command::new("cc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("running cc");
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[test]
fn multithreaded_init_whose_main_thread_exits_first() {
    if !require_root("multithreaded_init_whose_main_thread_exits_first") {
        return;
    }
    // The main thread leaves with pthread_exit; a second thread ends the process later,
    // with exit_group (status from it) or with a plain thread exit (status as the kernel's
    // wait() reports it: whatever it is, zonemon must report the same).
    let bin = compile_c(
        "mt_init",
        r#"
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
static int mode;
static void *late(void *arg) {
    (void)arg;
    usleep(100000);
    if (mode == 1) exit(5);               /* exit_group: the whole group's status is 5 */
    syscall(SYS_exit, 9);                 /* last thread leaves alone */
    return NULL;
}
int main(int argc, char **argv) {
    pthread_t t;
    mode = argc > 1 ? atoi(argv[1]) : 1;
    pthread_create(&t, NULL, late, NULL);
    pthread_exit(NULL);
}
"#,
    );
    let p = prefix("mt");
    let (a, b) = (format!("{p}group"), format!("{p}thread"));
    let mut statuses = HashMap::new();
    let evs = run_and_collect(&p, 2, || {
        statuses.insert(
            a.clone(),
            run_zone(&a, &format!("exec {} 1", bin.display())).code(),
        );
        statuses.insert(
            b.clone(),
            run_zone(&b, &format!("exec {} 2", bin.display())).code(),
        );
    });
    for name in [&a, &b] {
        let shutdowns: Vec<_> = evs
            .iter()
            .filter(|e| e["event"] == "shutdown" && e["name"] == name.as_str())
            .collect();
        assert_eq!(
            shutdowns.len(),
            1,
            "exactly one shutdown for {name}: {evs:#?}"
        );
        // What the kernel's wait() told unshare is what zonemon reports.
        assert_eq!(
            shutdowns[0]["exit_code"].as_i64().map(|c| c as i32),
            statuses[name],
            "{name}"
        );
    }
    assert_eq!(statuses[&a], Some(5));
    assert!(
        statuses[&b].is_some(),
        "a plain thread exit is a normal exit"
    );
}

#[test]
fn an_init_whose_first_exec_comes_from_another_thread_than_its_first_is_booted() {
    if !require_root("an_init_whose_first_exec_comes_from_another_thread_than_its_first_is_booted")
    {
        return;
    }
    // The zone's init never execs from its first thread: a second thread does, and the
    // kernel seats it as the leader, under the init's PID. The kernel side sees that exec
    // at its point of no return, while the exec'ing thread is not the leader yet.
    let bin = compile_c(
        "thread_exec_init",
        r#"
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
static void *run(void *arg) {
    (void)arg;
    execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
    _exit(99);
}
static int init(void *name) {
    pthread_t t;
    if (sethostname(name, strlen(name)) != 0) return 98;
    pthread_create(&t, NULL, run, NULL);
    pthread_join(t, NULL); /* ended by the exec */
    return 97;
}
static char stack[1 << 20];
int main(int argc, char **argv) {
    int status;
    pid_t pid;
    if (argc < 2) return 2;
    pid = clone(init, stack + sizeof(stack), CLONE_NEWPID | CLONE_NEWUTS | SIGCHLD, argv[1]);
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return 3;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
"#,
    );
    let p = prefix("tx");
    let name = format!("{p}zone");
    let mon = Monitor::start(&["watch", "--json"]);
    let status = Command::new(&bin).arg(&name).status().unwrap().code();
    assert!(
        mon.wait_for(WAIT, |l| count(l, &p, "down") >= 1),
        "timed out waiting for {name} to go down; got:\n{}",
        mon.lines().join("\n")
    );
    let all = parse_json(&mon.stop());
    assert_eq!(status, Some(7), "the thread's exec ran `sh -c 'exit 7'`");
    // Its `ready` came before the hostname was set: the zone is found by its id.
    let booted = all
        .iter()
        .find(|e| e["event"] == "booted" && e["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no booted for {name}: {all:#?}"));
    let evs: Vec<&Value> = all
        .iter()
        .filter(|e| e["zone_id"] == booted["zone_id"])
        .collect();
    let kinds: Vec<_> = evs.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ready", "booted", "shutdown", "down"], "{evs:#?}");
    for e in &evs {
        assert_eq!(e["init_pid"], booted["init_pid"], "one init: {evs:#?}");
    }
    assert_eq!(evs[2]["exit_code"], 7, "{evs:#?}");
}

#[test]
fn nsenter_into_a_running_zone_is_not_a_boot() {
    if !require_root("nsenter_into_a_running_zone_is_not_a_boot") {
        return;
    }
    let p = prefix("nsenter");
    let name = format!("{p}host");
    let mon = Monitor::start(&["watch", "--json"]);
    let zone = BackgroundZone::start(&name, "exec sleep 60");
    assert!(mon.wait_for(WAIT, |l| count(l, &p, "booted") == 1));
    let booted = parse_json(&mon.lines())
        .into_iter()
        .find(|e| e["event"] == "booted" && e["name"] == name.as_str())
        .unwrap();
    let init = booted["init_pid"].to_string();
    // The kernel side's namespace id is the one NS_GET_ID gives for /proc (the scan's).
    let ns = std::fs::File::open(format!("/proc/{init}/ns/pid")).unwrap();
    assert_eq!(
        booted["pidns_id"].as_u64().unwrap_or(0),
        zonemon_core::procscan::namespace_id(&ns),
        "{booted}"
    );
    drop(ns);
    for _ in 0..3 {
        let st = Command::new("nsenter")
            .args(["-t", &init, "-p", "-u", "--", "sh", "-c", "true"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    // SAFETY: killing the zone's init, a process this test made.
    unsafe { libc::kill(booted["init_pid"].as_i64().unwrap() as i32, libc::SIGKILL) };
    assert!(mon.wait_for(WAIT, |l| count(l, &p, "shutdown") == 1));
    drop(zone);
    let evs = parse_json(&mon.stop());
    // Everything about that PID namespace while the zone lived: from its ready to its
    // shutdown (the inode was other zones' before and is reused at once afterwards).
    let at = |kind: &str| {
        evs.iter()
            .position(|e| e["event"] == kind && e["zone_id"] == booted["zone_id"])
            .unwrap()
    };
    let in_zone: Vec<_> = evs[at("ready")..=at("shutdown")]
        .iter()
        .filter(|e| e["pidns"] == booted["pidns"])
        .collect();
    assert_eq!(
        summary(&in_zone)
            .iter()
            .map(|(_, k)| k.as_str())
            .collect::<Vec<_>>(),
        ["ready", "booted", "shutdown"]
    );
}

#[test]
fn unshare_pid_without_fork() {
    if !require_root("unshare_pid_without_fork") {
        return;
    }
    // `unshare --pid` without --fork: unshare's command stays in the host namespace and
    // its first child becomes the zone's init.
    let p = prefix("nofork");
    let name = format!("{p}kind");
    let evs = run_and_collect(&p, 1, || {
        let st = Command::new("unshare")
            .args([
                "--uts",
                "sh",
                "-c",
                "hostname \"$1\" && exec unshare --pid sh -c 'sleep 0.05; exit 0'",
                "sh",
                &name,
            ])
            .status()
            .unwrap();
        assert!(st.success());
    });
    assert_eq!(kinds_of(&evs), ["booted", "shutdown"], "{evs:#?}");
    assert_eq!(
        evs.iter().find(|e| e["event"] == "shutdown").unwrap()["exit_code"],
        0
    );
}

#[test]
fn hostname_set_after_boot_names_the_shutdown() {
    if !require_root("hostname_set_after_boot_names_the_shutdown") {
        return;
    }
    let p = prefix("late");
    let name = format!("{p}laat");
    let mon = Monitor::start(&["watch", "--json"]);
    let st = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--uts",
            "sh",
            "-c",
            "sleep 0.05; hostname \"$1\"; sleep 0.05",
            "sh",
            &name,
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(mon.wait_for(WAIT, |l| count(l, &p, "shutdown") == 1));
    let evs = parse_json(&mon.stop());
    let shutdown = evs
        .iter()
        .find(|e| e["event"] == "shutdown" && e["name"] == name.as_str())
        .unwrap();
    let booted = evs
        .iter()
        .find(|e| e["event"] == "booted" && e["zone_id"] == shutdown["zone_id"])
        .unwrap();
    assert_eq!(
        booted["name"],
        format!("pidns-{}", booted["pidns"]),
        "no name of its own at boot"
    );
    assert_eq!(booted["name_source"], "pidns");
    assert_eq!(shutdown["hostname"], name.as_str());
    assert_eq!(shutdown["name_source"], "hostname");
}

/// The init's cgroups are read once at its fork and not again at its execs,
/// unless the kernel side saw it moved between cgroups meanwhile: here the
/// init moves itself into a new cgroup and execs, and its shutdown is in the new one.
#[test]
fn an_init_moved_to_another_cgroup_is_read_again_at_its_next_exec() {
    if !require_root("an_init_moved_to_another_cgroup_is_read_again_at_its_next_exec") {
        return;
    }
    let p = prefix("cgmove");
    let cg = MemCg::new(&format!("{p}cg"), 1 << 30)
        .expect("a memory cgroup: cgroup v1's memory hierarchy or cgroup v2's memory controller");
    let name = format!("{p}z");
    let evs = run_and_collect(&p, 1, || {
        assert!(run_zone(&name, &cg.enter("exec sleep 0.1")).success());
    });
    let shutdown = evs.iter().find(|e| e["event"] == "shutdown").unwrap();
    let cgroup = shutdown["cgroup"].as_str().unwrap_or_default();
    assert!(
        cgroup.ends_with(&format!("/{p}cg")),
        "the shutdown is in the cgroup the init moved into before its last exec: {shutdown}"
    );
}

#[test]
fn text_output_is_the_seeds() {
    if !require_root("text_output_is_the_seeds") {
        return;
    }
    let p = prefix("seed");
    let (aap, noot) = (format!("{p}aap"), format!("{p}noot"));
    let mon = Monitor::start(&[]);
    let a = BackgroundZone::start(&aap, "sleep 0.4");
    std::thread::sleep(Duration::from_millis(100));
    run_zone(&noot, "exit 0");
    run_zone(&noot, "exit 0");
    a.wait();
    let want = [
        format!("Zone {aap} booted"),
        format!("Zone {noot} booted"),
        format!("Zone {noot} shutdown"),
        format!("Zone {noot} booted"),
        format!("Zone {noot} shutdown"),
        format!("Zone {aap} shutdown"),
    ];
    assert!(
        mon.wait_for(WAIT, |l| l.iter().filter(|l| l.contains(&p)).count()
            >= want.len())
    );
    let lines = mon.stop();
    let ours: Vec<_> = lines.iter().filter(|l| l.contains(&p)).cloned().collect();
    assert_eq!(ours, want);
}

#[test]
fn all_and_timestamps_options() {
    if !require_root("all_and_timestamps_options") {
        return;
    }
    let p = prefix("all");
    let name = format!("{p}wim");
    let mon = Monitor::start(&["--all", "--timestamps"]);
    run_zone(&name, "exit 0");
    assert!(mon.wait_for(WAIT, |l| l
        .iter()
        .any(|l| l.ends_with(&format!("Zone {name} down")))));
    let lines = mon.stop();
    let ours: Vec<_> = lines.iter().filter(|l| l.contains(&p)).collect();
    let words: Vec<_> = ours.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(words, ["ready", "booted", "shutdown", "down"]);
    for l in ours {
        let (time, rest) = l.split_once(' ').unwrap();
        assert!(
            time.len() == 30 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
        assert!(rest.starts_with("Zone "));
    }
}

/// The scheduling policy and nice value of process `pid`, from /proc.
fn sched_of(pid: i32) -> (u64, i64) {
    let fields = stat_fields(pid).unwrap();
    // After the comm: state is field 3, nice is field 19, policy is field 41.
    (
        fields[41 - 3].parse().unwrap(),
        fields[19 - 3].parse().unwrap(),
    )
}

#[test]
fn priority_option_sets_the_scheduling() {
    if !require_root("priority_option_sets_the_scheduling") {
        return;
    }
    // Once live (Monitor::start waits for the line that says so): realtime by default, still
    // at the start-up's nice -10 (what the budget would move it to; no effect under FIFO).
    for (args, want) in [
        (vec!["--json"], (libc::SCHED_FIFO as u64, -10)),
        (
            vec!["--json", "--priority", "realtime"],
            (libc::SCHED_FIFO as u64, -10),
        ),
        (vec!["--json", "--priority", "high"], (0, -10)),
        (vec!["--json", "--priority", "normal"], (0, 0)),
        // Polling: a full /proc scan at every wakeup, never realtime (with thousands of zones
        // each ran over the budget, and the loop, never sleeping, was killed at the hard limit).
        (vec!["--json", "--source", "poll"], (0, -10)),
    ] {
        let mon = Monitor::start(&args);
        assert_eq!(sched_of(mon.pid()), want, "{args:?}");
        if want.0 == libc::SCHED_FIFO as u64 {
            // Realtime under a budget: RLIMIT_RTTIME (µs) 200 ms soft, 2 s hard.
            let limits = std::fs::read_to_string(format!("/proc/{}/limits", mon.pid())).unwrap();
            let rttime: Vec<&str> = limits
                .lines()
                .find(|l| l.starts_with("Max realtime timeout"))
                .map(|l| l.split_whitespace().skip(3).take(2).collect())
                .unwrap_or_default();
            assert_eq!(rttime, ["200000", "2000000"], "{limits}");
        }
        mon.stop();
    }
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    if !require_root("sigterm_and_sigint_exit_cleanly") {
        return;
    }
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let (status, _) = Monitor::start(&["--json"]).stop_with(sig);
        assert!(status.success(), "signal {sig}: {status}");
    }
}

#[test]
fn closed_stdout_ends_zonemon_quietly() {
    if !require_root("closed_stdout_ends_zonemon_quietly") {
        return;
    }
    // `zonemon | head -1`: after the reader goes, zonemon exits 0 without an error message.
    let p = prefix("head");
    let name = format!("{p}zus");
    let mut mon = Command::new(ZONEMON)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(mon.stdout.take().unwrap());
    let mut errs = std::io::BufReader::new(mon.stderr.take().unwrap());
    let mut err = String::new();
    while !err.contains("zonemon: watching") {
        let n = std::io::BufRead::read_line(&mut errs, &mut err).unwrap();
        assert!(n > 0, "zonemon ended before watching: {err}");
    }
    let zone = BackgroundZone::start(&name, "sleep 0.1");
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    // Other tests' zones come and go meanwhile: the first line may be any zone's.
    assert!(
        first.starts_with("Zone ")
            && (first.ends_with(" booted\n") || first.ends_with(" shutdown\n")),
        "{first:?}"
    );
    // Gone with the reader; our zone's transitions make zonemon write again and see that.
    drop(out);
    zone.wait();
    let status = wait_timeout(&mut mon, WAIT);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut errs, &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("error"), "{err}");
}

/// Boots `n` zones `parallel` at a time, each with its own name and exit code, and
/// checks zonemon saw exactly one boot and one shutdown of each, with the right code.
fn churn(test: &str, n: usize, parallel: usize) {
    let p = prefix(test);
    let mon = Monitor::start(&["watch", "--json"]);
    let names: Vec<String> = (0..n).map(|i| format!("{p}{i}")).collect();
    std::thread::scope(|s| {
        for worker in 0..parallel {
            let names = &names;
            s.spawn(move || {
                for i in (worker..n).step_by(parallel) {
                    let st = run_zone(&names[i], &format!("exit {}", i % 256));
                    assert_eq!(st.code(), Some((i % 256) as i32));
                }
            });
        }
    });
    assert!(
        mon.wait_for(Duration::from_secs(180), |l| count(l, &p, "shutdown") >= n),
        "only {} shutdowns of {n}",
        count(&mon.lines(), &p, "shutdown")
    );
    let evs = parse_json(&mon.stop());
    let ours = with_prefix(&evs, &p);
    let mut boots: HashMap<&str, usize> = HashMap::new();
    let mut downs: HashMap<&str, Vec<i64>> = HashMap::new();
    for e in &ours {
        let name = e["name"].as_str().unwrap();
        match e["event"].as_str().unwrap() {
            "booted" => *boots.entry(name).or_default() += 1,
            "shutdown" => downs
                .entry(name)
                .or_default()
                .push(e["exit_code"].as_i64().unwrap_or(-1)),
            _ => {}
        }
    }
    assert_eq!(boots.len(), n, "zones booted");
    assert!(boots.values().all(|&c| c == 1), "each zone booted once");
    assert_eq!(downs.len(), n, "zones shut down");
    for (i, name) in names.iter().enumerate() {
        assert_eq!(downs[name.as_str()], [(i % 256) as i64], "{name}");
    }
}

#[test]
fn churn_2000_sequential() {
    if !require_root("churn_2000_sequential") {
        return;
    }
    churn("seq", 2000, 1);
}

#[test]
fn churn_2000_eight_at_a_time() {
    if !require_root("churn_2000_eight_at_a_time") {
        return;
    }
    churn("par", 2000, 8);
}
