//! The load generator (`c/zonehold.c`, also `./dev stress`) must not load the
//! host beyond the zones it makes: while it holds zones it does not wake at
//! all, and zones that end are reaped by the kernel, never by a `waitpid(-1)`
//! that walks every held child under the kernel's `tasklist_lock` (with
//! 10,000 held, 2–3 ms during which every fork and exit on the host waits).
//! Root: its zones are PID namespaces.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use zonemon_testkit::{require_root_for, stat_fields};

const WHY: &str = "zonehold makes PID namespaces";

/// Compiles `c/zonehold.c` into a fresh directory; returns the binary.
fn build(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/zonehold.c");
    let bin = dir.join("zonehold");
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("running cc (apt-get install gcc)");
    assert!(
        out.status.success(),
        "cc {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Starts zonehold with `args`, standard input a pipe kept open; returns it
/// once it printed `live N`.
fn start(bin: &Path, args: &[&str], live: usize) -> Child {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting zonehold");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .expect("reading zonehold's first line");
    assert_eq!(line.trim(), format!("live {live}"), "zonehold's first line");
    child
}

/// The context switches of `pid` so far (voluntary + involuntary): each is a wakeup.
fn switches(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches")
        })
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// The states (`R`, `S`, `Z`, …) of `pid`'s children (every process whose
/// parent is `pid`: this kernel has no `/proc/PID/task/TID/children`).
fn children_states(pid: u32) -> Vec<char> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        // Not a process, or gone meanwhile: no fields.
        .filter_map(|p| stat_fields(p).ok())
        .filter(|f| f.get(1).and_then(|pp| pp.parse::<u32>().ok()) == Some(pid))
        .filter_map(|f| f.first()?.chars().next())
        .collect()
}

#[test]
fn holding_zones_it_sleeps_and_ended_zones_are_never_zombies() {
    if !require_root_for(
        "holding_zones_it_sleeps_and_ended_zones_are_never_zombies",
        WHY,
    ) {
        return;
    }
    let dir = fresh_dir();
    let bin = build(&dir);

    // Holding 50 zones, nothing due: not one wakeup in 1.5 s (the version that
    // polled its children woke ten times a second).
    let mut hold = start(
        &bin,
        &["--prefix", "zmtesthold-", "--live", "50", "--duration", "0"],
        50,
    );
    thread::sleep(Duration::from_millis(200));
    let before = switches(hold.id());
    thread::sleep(Duration::from_millis(1500));
    let after = switches(hold.id());
    assert_eq!(
        after,
        before,
        "zonehold woke {} times while it only held zones",
        after - before
    );
    assert_eq!(
        children_states(hold.id()).len(),
        50,
        "its 50 zones are its children"
    );
    drop(hold.stdin.take()); // standard input ends: it stops, its zones with it
    let st = hold.wait().unwrap();
    assert!(st.success(), "zonehold holding 50 zones ended with {st}");

    // Churning 200 zones a second beside 20 held: the ended ones are reaped by
    // the kernel at once, so no child is ever a zombie. It churns until its
    // standard input ends, so that every look is made while it runs (on a
    // loaded host a look through /proc takes long: no deadline to miss).
    let mut churn = start(
        &bin,
        &[
            "--prefix",
            "zmtestchurn-",
            "--live",
            "20",
            "--churn",
            "200",
            "--duration",
            "0",
        ],
        20,
    );
    let mut zombies = 0;
    let mut looked = 0;
    for _ in 0..15 {
        thread::sleep(Duration::from_millis(100));
        let states = children_states(churn.id());
        looked += states.len();
        zombies += states.iter().filter(|&&s| s == 'Z').count();
    }
    drop(churn.stdin.take());
    let st = churn.wait().unwrap();
    assert!(st.success(), "zonehold churning ended with {st}");
    let mut rest = String::new();
    std::io::Read::read_to_string(churn.stdout.as_mut().unwrap(), &mut rest).unwrap();
    let after = |word: &str| -> u64 {
        rest.split_whitespace()
            .skip_while(|w| *w != word)
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {word} in {rest:?}"))
    };
    let (churned, elapsed_ns) = (after("churned"), after("elapsed_ns"));
    // At least half the rate asked for, over the time it ran (at least 1.5 s of looks).
    assert!(
        churned * 1_000_000_000 >= 100 * elapsed_ns,
        "only {churned} zones churned in {elapsed_ns} ns at 200 a second"
    );
    assert!(
        looked >= 15 * 20,
        "saw {looked} children in 15 looks, fewer than the 20 held"
    );
    assert_eq!(zombies, 0, "{zombies} zombie children seen while churning");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system's temporary directory.
fn fresh_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zonehold-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
