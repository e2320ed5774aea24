//! The load generator (`c/zonehold.c`, also `./dev stress`) must not load the
//! host beyond the zones it makes: while it holds zones it does not wake at
//! all, and zones that end are reaped by the kernel, never by a `waitpid(-1)`
//! that walks every held child under the kernel's `tasklist_lock` (with
//! 10,000 held, 2–3 ms during which every fork and exit on the host waits).
//! The zones the benchmark holds run `c/zonepause.c`, a few pages each.
//! Root: its zones are PID namespaces.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use zonemon_testkit::{require_root_for, stat_fields, status_field, status_value, within};

const WHY: &str = "zonehold makes PID namespaces";

/// Compiles `src` into `out` with `flags`, panicking with cc's errors if it fails.
fn cc(src: &Path, out: &Path, flags: &[&str]) {
    let run = Command::new("cc")
        .args(["-O2", "-Wall"])
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(src)
        .output()
        .expect("running cc (apt-get install gcc)");
    assert!(
        run.status.success(),
        "cc {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Compiles `c/<name>.c` into `dir` with `flags`; returns the binary.
fn build_c(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("c/{name}.c"));
    let bin = dir.join(name);
    cc(&src, &bin, flags);
    bin
}

/// Runs zonehold to hold 3 zones named `prefix…` for 1 s (`more` adds to its
/// command), for a run that must stop at its first zone; returns its exit code,
/// stdout and stderr.
fn first_zone_refused(
    bin: &Path,
    prefix: &str,
    more: impl FnOnce(&mut Command),
) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(bin);
    // Without the check it would hold them for 1 s and exit 0.
    cmd.args(["--prefix", prefix, "--live", "3", "--duration", "1"]);
    more(&mut cmd);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Compiles `c/zonehold.c` into `dir`; returns the binary.
fn build(dir: &Path) -> PathBuf {
    build_c(dir, "zonehold", &[])
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
    ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
        .iter()
        .map(|key| status_value(&status, key).unwrap())
        .sum()
}

/// The `/proc/PID/stat` fields (state first) of `pid`'s children (every process whose
/// parent is `pid`: this kernel has no `/proc/PID/task/TID/children`), with their PIDs.
fn children(pid: u32) -> Vec<(i32, Vec<String>)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        // Not a process, or gone meanwhile: no fields.
        .filter_map(|p| Some((p, stat_fields(p).ok()?)))
        .filter(|(_, f)| f.get(1).and_then(|pp| pp.parse::<u32>().ok()) == Some(pid))
        .collect()
}

/// The states (`R`, `S`, `Z`, …) of `pid`'s children.
fn children_states(pid: u32) -> Vec<char> {
    children(pid)
        .iter()
        .filter_map(|(_, f)| f.first()?.chars().next())
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
    let dir = fresh_dir("sleeps");
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

/// A fresh directory under the system's temporary directory, for test `test`.
fn fresh_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zonehold-test-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn held_zones_exec_the_init_given_a_few_pages_each() {
    if !require_root_for("held_zones_exec_the_init_given_a_few_pages_each", WHY) {
        return;
    }
    let dir = fresh_dir("init");
    let bin = build(&dir);
    // As the benchmark builds it (zones.rs): no C library.
    let init = build_c(
        &dir,
        "zonepause",
        &["-static", "-nostdlib", "-fno-stack-protector"],
    );
    let mut hold = start(
        &bin,
        &[
            "--prefix",
            "zmtestinit-",
            "--live",
            "20",
            "--duration",
            "0",
            "--init",
            init.to_str().unwrap(),
        ],
        20,
    );
    // zonehold says `live` once its zones are cloned; each execs its init and sleeps soon
    // after (on a loaded host, later): wait up to 10 s for all of them to.
    let exe = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    within(Duration::from_secs(10), || {
        let zones = children(hold.id());
        zones.len() == 20
            && zones
                .iter()
                .all(|(pid, f)| exe(*pid).as_ref() == Some(&init) && f[0] == "S")
    });
    let zones = children(hold.id());
    assert_eq!(zones.len(), 20, "its 20 zones are its children");
    for (pid, fields) in &zones {
        assert_eq!(
            exe(*pid).as_ref(),
            Some(&init),
            "zone init {pid} runs the --init program"
        );
        // Waiting in pause(2), each init's resident memory is a few pages (zonehold's own init,
        // the glibc program, has about 750 kB resident: 10,000 of them loaded the host's memory
        // management, see zonepause.c).
        assert_eq!(fields[0], "S", "zone init {pid} sleeps");
        let rss = status_field(*pid, "VmRSS").unwrap();
        assert!(rss <= 32, "zone init {pid} has {rss} kB resident");
    }
    // A program that cannot be exec'd is refused before any zone is made.
    let out = Command::new(&bin)
        .args(["--live", "1", "--init", "/nonexistent/zonepause"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "zonehold with a missing --init");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--init /nonexistent/zonepause"),
        "the error names the flag and the program: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One that passes the access check but is no program: the first zone's exec fails, and
    // zonehold says so and stops instead of holding zones that exited.
    let not_a_program = dir.join("not-a-program");
    std::fs::write(&not_a_program, "neither ELF nor a script\n").unwrap();
    std::fs::set_permissions(
        &not_a_program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (code, stdout, stderr) = first_zone_refused(&bin, "zmtestnotprog-", |c| {
        c.arg("--init").arg(&not_a_program);
    });
    assert_eq!(
        code,
        Some(2),
        "zonehold with --init not a program: {stderr}"
    );
    assert!(
        stderr.contains("cannot exec") && stderr.contains(not_a_program.to_str().unwrap()),
        "the error names the program: {stderr}"
    );
    assert!(
        !stdout.contains("live 3\n"),
        "no `live` line for zones that could not exec"
    );
    drop(hold.stdin.take());
    let st = hold.wait().unwrap();
    assert!(st.success(), "zonehold holding 20 zones ended with {st}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_zone_that_cannot_set_its_hostname_is_reported_as_such() {
    if !require_root_for(
        "a_zone_that_cannot_set_its_hostname_is_reported_as_such",
        WHY,
    ) {
        return;
    }
    let dir = fresh_dir("hostname");
    let bin = build(&dir);
    // As root in a fresh UTS namespace sethostname does not fail: a preloaded one that refuses.
    let src = dir.join("refuse.c");
    std::fs::write(
        &src,
        "#include <errno.h>\n#include <stddef.h>\nint sethostname(const char *n, size_t l) { (void)n; (void)l; errno = EPERM; return -1; }\n",
    )
    .unwrap();
    let lib = dir.join("refuse.so");
    cc(&src, &lib, &["-shared", "-fPIC"]);
    let (code, _, stderr) = first_zone_refused(&bin, "zmtestnoname-", |c| {
        c.env("LD_PRELOAD", &lib);
    });
    assert_eq!(
        code,
        Some(2),
        "zonehold whose zones cannot name themselves: {stderr}"
    );
    assert!(
        stderr.contains("cannot set their hostname (zmtestnoname-0)")
            && stderr.contains("Operation not permitted")
            && !stderr.contains("cannot exec"),
        "the error says which step failed: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
