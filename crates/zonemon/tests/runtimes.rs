//! Root integration tests of runtime names on real runtimes: runc, crun,
//! Podman, LXC, systemd-nspawn, containerd with `ctr`, Docker with `dockerd`.
//!
//! Each test boots a container with a known name from a busybox-static
//! rootfs (no registry is needed), stops it, and asserts that `zonemon watch
//! --json` named its `booted`, `shutdown` and `down` events after it, with
//! the right `runtime` and `container_id`. Daemons a test needs are started
//! by the test and stopped after it (an already running one is used and left
//! alone); every container, image, mount and cgroup a test makes is removed
//! by drop guards, also when the test fails. Everything is tagged with a
//! prefix unique to the test run (`zmt-rt-…`).
//!
//! The tests run one at a time (they share daemons and, for crun, a global
//! cgroup mount). Without root or a runtime's tools a test skips, except
//! under `CI=true`, where it fails.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::scratch::Scratch;
use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// One runtime test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `test` can run: root, and every program of `tools` on PATH.
/// Missing tools skip the test, except under `CI=true` where they fail it.
fn can_run(test: &str, tools: &[&str]) -> bool {
    if !require_root(test) {
        return false;
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test} needs {} (Debian packages: runc crun podman lxc systemd-container containerd docker.io busybox-static)",
        missing.join(", ")
    );
    if in_ci() {
        panic!("{msg}; CI=true forbids skipping");
    }
    eprintln!("SKIPPED {msg}");
    false
}

/// Runs `cmd`, panicking with its output unless it succeeds; returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `cmd` with a time limit of two minutes, stdin closed.
///
/// Its output goes to files, not pipes: `runc run --detach` and the like
/// hand their stdout and stderr down to the container, which would hold a
/// pipe open for as long as it runs.
fn output(cmd: &mut Command) -> Output {
    static N: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir().join(format!(
        "zmt-rt-out-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let (out_path, err_path) = (base.with_extension("out"), base.with_extension("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let status = wait_timeout(&mut child, Duration::from_secs(120));
    let out = Output {
        status,
        stdout: fs::read(&out_path).unwrap_or_default(),
        stderr: fs::read(&err_path).unwrap_or_default(),
    };
    let _ = fs::remove_file(out_path);
    let _ = fs::remove_file(err_path);
    out
}

/// Runs `cmd` and ignores how it ends (cleanup).
fn quietly(cmd: &mut Command) {
    let _ = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs cleanup commands when dropped, in order.
struct Cleanup(Vec<Command>);

impl Cleanup {
    fn new() -> Self {
        Cleanup(Vec::new())
    }

    fn then(&mut self, prog: &str, args: &[&str]) -> &mut Command {
        let mut c = Command::new(prog);
        c.args(args);
        self.0.push(c);
        self.0.last_mut().unwrap()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.0 {
            quietly(c);
        }
    }
}

/// A daemon this test started (stopped with SIGTERM, then SIGKILL, when dropped), or one already running.
struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    /// Uses a running daemon if `ready()` already holds, else starts `cmd` in its own session and waits for `ready()`.
    fn start(mut cmd: Command, log: &Path, ready: impl Fn() -> bool) -> Daemon {
        if ready() {
            return Daemon { child: None };
        }
        log_to(&mut cmd, log).unwrap();
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let d = Daemon { child: Some(child) };
        // Not giving up when it exits: it may have lost a race to another test's daemon.
        if let Err(e) = wait_ready(None, log, Duration::from_secs(60), ready) {
            panic!(
                "{cmd:?} {e}; its log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        d
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(child) = &mut self.child else { return };
        // SAFETY: signalling the process group of the daemon we started.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
        if within(Duration::from_secs(20), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            return;
        }
        // SAFETY: as above.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
    }
}

/// The JSON events named `name`, once `downs` zones of that name are down.
fn watch(name: &str, downs: usize, body: impl FnOnce()) -> Vec<Value> {
    let mon = Monitor::start(&["watch", "--json"]);
    body();
    let done = mon.wait_for(WAIT, |lines| {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event"] == "down" && e["name"] == name)
            .count()
            >= downs
    });
    let lines = mon.stop();
    assert!(
        done,
        "timed out waiting for {downs} zone(s) named {name} to go down; zonemon printed:\n{}",
        lines.join("\n")
    );
    parse_json(&lines)
        .into_iter()
        .filter(|e| e["name"] == name)
        .collect()
}

/// Asserts that `zones` zones named `name` each booted, shut down and went
/// down, every one of those events with `runtime`, `container_id` and a
/// name source starting with `source`.
fn assert_named(evs: &[Value], zones: usize, name: &str, runtime: &str, id: &str, source: &str) {
    for e in evs {
        eprintln!(
            "{name}: zone {} {} named by {}",
            e["zone_id"], e["event"], e["name_source"]
        );
    }
    let mut ids: Vec<u64> = evs.iter().filter_map(|e| e["zone_id"].as_u64()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), zones, "zones named {name}: {evs:#?}");
    for zid in ids {
        let kinds: Vec<&str> = evs
            .iter()
            .filter(|e| e["zone_id"] == zid && e["event"] != "ready")
            .map(|e| e["event"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            kinds,
            ["booted", "shutdown", "down"],
            "zone {zid} of {name}: {evs:#?}"
        );
    }
    for e in evs.iter().filter(|e| e["event"] != "ready") {
        assert_eq!(e["runtime"], runtime, "{e}");
        assert_eq!(e["container_id"], id, "{e}");
        let src = e["name_source"].as_str().unwrap_or("");
        assert!(src.starts_with(source), "name_source {src} in {e}");
    }
}

#[test]
fn runc_container_is_named_by_its_id() {
    let _s = serial();
    if !can_run("runc_container_is_named_by_its_id", &["runc"]) {
        return;
    }
    let p = prefix("rt-runc");
    let id = format!("{p}aap");
    let scratch = Scratch::new(&p);
    let bundle = scratch.bundle(&id, "sleep 1000");
    let mut cleanup = Cleanup::new();
    cleanup.then("runc", &["delete", "--force", &id]);
    let evs = watch(&id, 1, || {
        runc_boot_and_stop(&bundle, &id, &scratch.path("runc.log"));
    });
    assert_named(&evs, 1, &id, "runc", &id, "runc-");
}

#[test]
fn runc_state_lost_while_running_keeps_the_name() {
    // The runtime's state directory disappears while the container runs: zonemon keeps the
    // name its boot had for the shutdown and down, and goes on watching.
    let _s = serial();
    if !can_run("runc_state_lost_while_running_keeps_the_name", &["runc"]) {
        return;
    }
    let p = prefix("rt-runc-lost");
    let id = format!("{p}aap");
    let scratch = Scratch::new(&p);
    let bundle = scratch.bundle(&id, "sleep 1000");
    let mut cleanup = Cleanup::new();
    cleanup.then("runc", &["delete", "--force", &id]);
    let mon = Monitor::start(&["watch", "--json"]);
    let mut runc = runc_run(&bundle, &id, &scratch.path("runc.log"));
    assert!(mon.wait_for(WAIT, |l| count(l, &id, "booted") == 1));
    let booted = parse_json(&mon.lines())
        .into_iter()
        .find(|e| e["event"] == "booted" && e["name"] == id.as_str())
        .unwrap();
    fs::remove_dir_all(Path::new("/run/runc").join(&id)).unwrap();
    let init = booted["init_pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the init of the container this test made.
    assert_eq!(unsafe { libc::kill(init, libc::SIGKILL) }, 0);
    wait_timeout(&mut runc, Duration::from_secs(30));
    let after = format!("{p}after");
    run_zone(&after, "exit 0");
    assert!(mon.wait_for(WAIT, |l| count(l, &id, "down") == 1
        && count(l, &after, "down") == 1));
    let evs = parse_json(&mon.stop());
    let ours: Vec<_> = evs
        .iter()
        .filter(|e| e["zone_id"] == booted["zone_id"])
        .collect();
    let kinds: Vec<_> = ours.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["ready", "booted", "shutdown", "down"], "{ours:#?}");
    for e in &ours[1..] {
        assert_eq!(
            (e["name"].as_str(), e["runtime"].as_str()),
            (Some(id.as_str()), Some("runc")),
            "{e}"
        );
    }
}

/// Boots runc container `id` from `bundle`, waits until it runs, kills it
/// and waits for `runc run` to return.
fn runc_boot_and_stop(bundle: &Path, id: &str, log: &Path) {
    let mut runc = runc_run(bundle, id, log);
    run(Command::new("runc").args(["kill", id, "KILL"]));
    wait_timeout(&mut runc, Duration::from_secs(30));
}

/// Starts runc container `id` from `bundle` and waits until it runs; returns `runc run`.
fn runc_run(bundle: &Path, id: &str, log: &Path) -> Child {
    // In the foreground: `runc run` is the init's parent and reaps it (a
    // detached init would be left to a PID 1 that may never reap it).
    let runc = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    wait_until_running("runc", id);
    runc
}

/// Waits (at most 30 s) until `<runtime> state <id>` says the container is running.
fn wait_until_running(runtime: &str, id: &str) {
    let state = || {
        let out = output(Command::new(runtime).args(["state", id]));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    wait_until(
        Duration::from_secs(30),
        || {
            let (out, err) = state();
            format!("{id} did not start within 30 s: {out}{err}")
        },
        || serde_json::from_str::<Value>(&state().0).is_ok_and(|v| v["status"] == "running"),
    );
}

/// crun refuses hybrid cgroups while cgroup2 holds a controller: mounting
/// hugetlb as a v1 hierarchy takes it away from cgroup2 (undone when dropped).
struct HugetlbMount(Option<PathBuf>);

impl HugetlbMount {
    fn new(dir: PathBuf) -> Self {
        let controllers = fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .or_else(|_| fs::read_to_string("/sys/fs/cgroup/cgroup.controllers"))
            .unwrap_or_default();
        let hybrid = Path::new("/sys/fs/cgroup/unified").is_dir();
        if !hybrid || controllers.trim().is_empty() {
            return HugetlbMount(None); // pure v1 or v2, or cgroup2 holds nothing
        }
        fs::create_dir_all(&dir).unwrap();
        run(Command::new("mount")
            .args(["-t", "cgroup", "-o", "hugetlb", "cgroup"])
            .arg(&dir));
        HugetlbMount(Some(dir))
    }
}

impl Drop for HugetlbMount {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            quietly(Command::new("umount").arg(d));
            let _ = fs::remove_dir(d);
        }
    }
}

#[test]
fn crun_container_is_named_by_its_id() {
    let _s = serial();
    if !can_run("crun_container_is_named_by_its_id", &["crun", "runc"]) {
        return;
    }
    let p = prefix("rt-crun");
    let id = format!("{p}aap");
    let scratch = Scratch::new(&p);
    let bundle = scratch.bundle(&id, "sleep 1000");
    let mut cleanup = Cleanup::new();
    cleanup.then("crun", &["delete", "--force", &id]);
    let _mount = HugetlbMount::new(scratch.path("hugetlb"));
    let evs = watch(&id, 1, || crun_boot_and_stop(&bundle, &id));
    drop(cleanup); // delete before the hugetlb hierarchy goes
    assert_named(&evs, 1, &id, "crun", &id, "crun-");
}

/// Boots crun container `id` from `bundle`, detached, and kills it (`crun delete` is left to the caller).
fn crun_boot_and_stop(bundle: &Path, id: &str) {
    run(Command::new("crun")
        .args(["run", "--detach", "--bundle"])
        .arg(bundle)
        .arg(id));
    thread::sleep(Duration::from_millis(200));
    run(Command::new("crun").args(["kill", id, "KILL"]));
}

/// The `docker` client of the `docker.io` package, else any on PATH.
fn docker() -> Command {
    let bin = if Path::new("/usr/bin/docker").is_file() {
        "/usr/bin/docker"
    } else {
        "docker"
    };
    Command::new(bin)
}

#[test]
fn docker_container_is_named_and_keeps_its_name_across_restart() {
    let Some(_s) = docker_test("docker_container_is_named…") else {
        return;
    };
    let d = DockerSetup::new("rt-docker", "aap");
    let (name, image) = (d.name.clone(), d.image.clone());
    let mut id = String::new();
    let evs = watch(&name, 2, || {
        id = run(docker().args(container_run_args(
            &name,
            &image,
            &[
                "zmt.role=web",
                "zmt.evil=$(touch /tmp/zmt-label)\n\u{1b}[31m",
            ],
            "sleep 1000",
        )));
        thread::sleep(Duration::from_millis(300));
        run(docker().args(["restart", "--time", "0", &name]));
        thread::sleep(Duration::from_millis(300));
        run(docker().args(["kill", &name]));
    });
    assert_eq!(id.len(), 64, "docker run printed {id}");
    assert_named(&evs, 2, &name, "docker", &id, "docker-");
    // Its image and labels, hostile ones as data; the restart counted.
    for e in evs.iter().filter(|e| e["event"] != "ready") {
        assert_eq!(e["image"], image.as_str(), "{e}");
        assert_eq!(e["labels"]["zmt.role"], "web", "{e}");
        assert_eq!(
            e["labels"]["zmt.evil"], "$(touch /tmp/zmt-label)\n\u{1b}[31m",
            "{e}"
        );
    }
    let restarts: Vec<&Value> = evs
        .iter()
        .filter(|e| e["event"] == "booted")
        .map(|e| &e["restart_count"])
        .collect();
    assert_eq!(restarts, [&Value::from(0), &Value::from(1)], "{evs:#?}");
}

/// `docker rename` is followed: once a Docker container was named, zonemon
/// parses Docker's configs ahead as Docker replaces them
/// (`runtimes/stateindex.rs`), so the next boot's name comes from memory and
/// must be the new one.
#[test]
fn docker_rename_is_followed() {
    let Some(_s) = docker_test("docker_rename_is_followed") else {
        return;
    };
    let d = DockerSetup::new("rt-dockren", "aap");
    let new = format!("{}noot", prefix("rt-dockren"));
    let mut cleanup = Cleanup::new();
    let docker_bin = docker().get_program().to_string_lossy().into_owned();
    cleanup.then(&docker_bin, &["rm", "--force", &new]);
    let mon = Monitor::start(&["watch", "--json"]);
    let id = run(docker().args(container_run_args(&d.name, &d.image, &[], "sleep 1000")));
    thread::sleep(Duration::from_millis(300));
    run(docker().args(["kill", &d.name]));
    wait_down(&mon, &d.name);
    run(docker().args(["rename", &d.name, &new]));
    run(docker().args(["start", &new]));
    thread::sleep(Duration::from_millis(300));
    run(docker().args(["kill", &new]));
    wait_down(&mon, &new);
    let source = "docker-config".to_string();
    assert_eq!(
        booted_names(&mon.stop(), &id),
        [(d.name.clone(), source.clone()), (new, source)]
    );
}

/// Waits until `mon` reported zone `name` down; fails the test if not within [`WAIT`].
fn wait_down(mon: &Monitor, name: &str) {
    let done = mon.wait_for(WAIT, |lines| {
        parse_json(lines)
            .iter()
            .any(|e| e["event"] == "down" && e["name"] == name)
    });
    assert!(done, "{name} not reported down:\n{}", mon.stderr());
}

/// The name and its source of each `booted` of container `id` in `lines`, in order.
fn booted_names(lines: &[String], id: &str) -> Vec<(String, String)> {
    parse_json(lines)
        .iter()
        .filter(|e| e["event"] == "booted" && e["container_id"] == id)
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("name_source"))
        })
        .collect()
}

#[test]
fn docker_container_killed_by_its_memory_limit_is_oom_killed() {
    let Some(_s) = docker_test("docker_container_killed_by_its_memory_limit_is_oom_killed") else {
        return;
    };
    docker_oom_kill("rt-oom", &[]);
}

#[test]
fn docker_host_pid_container_killed_by_its_memory_limit_is_oom_killed() {
    let Some(_s) =
        docker_test("docker_host_pid_container_killed_by_its_memory_limit_is_oom_killed")
    else {
        return;
    };
    let evs = docker_oom_kill("rt-oom-hostpid", &["--pid=host"]);
    assert_host_pid(&evs);
}

/// Runs a Docker container (with `extra` arguments) that overruns its 8 MiB
/// memory limit; asserts its shutdown says it was OOM-killed; returns its records.
fn docker_oom_kill(tag: &str, extra: &[&str]) -> Vec<Value> {
    let d = DockerSetup::new(tag, "hog");
    let (name, image) = (d.name.clone(), d.image.clone());
    let mut id = String::new();
    let evs = watch(&name, 1, || {
        // `tail /dev/zero` keeps all it reads: it overruns the 8 MiB limit and is OOM-killed.
        let mut args = container_run_args(&name, &image, &[], "exec tail /dev/zero");
        args.splice(1..1, ["--memory", "8m", "--memory-swap", "8m"]);
        args.splice(1..1, extra.iter().copied());
        id = run(docker().args(args));
    });
    let shutdown = evs
        .iter()
        .find(|e| e["event"] == "shutdown")
        .unwrap_or_else(|| panic!("no shutdown of {name}: {evs:#?}"));
    assert_eq!(shutdown["oom_killed"], true, "{shutdown}");
    assert_eq!(shutdown["exit_signal"], 9, "{shutdown}");
    assert_eq!(shutdown["runtime"], "docker", "{shutdown}");
    assert_eq!(shutdown["container_id"], id.as_str(), "{shutdown}");
    evs
}

/// What a Docker test runs: dockerd and its client, containerd, runc.
const DOCKER_TOOLS: &[&str] = &["dockerd", "docker", "containerd", "runc"];

/// Docker test `test`, serialised with the other runtime tests, if it can
/// run ([`can_run`]: in CI a missing tool fails it); `None`: skip it.
fn docker_test(test: &str) -> Option<MutexGuard<'static, ()>> {
    let s = serial();
    can_run(test, DOCKER_TOOLS).then_some(s)
}

/// A Docker container test's surroundings: `dockerd`, a busybox image
/// imported under the test's prefix, and the container's and image's
/// removal; dropped in that order reversed (cleanup, daemon, scratch).
struct DockerSetup {
    _cleanup: Cleanup,
    _daemon: Daemon,
    _scratch: Scratch,
    /// The container's name, `<prefix><what>`.
    name: String,
    /// The imported image.
    image: String,
    /// The daemon's socket (`-H`) when it is not the default one.
    host: Option<String>,
}

impl DockerSetup {
    /// With the host's dockerd (started unless one answers).
    fn new(tag: &str, what: &str) -> DockerSetup {
        Self::make(tag, what, false)
    }

    /// With a dockerd of the test's own whose data root, exec root (its
    /// containerd's too) and socket are below the scratch directory.
    fn own_root(tag: &str, what: &str) -> DockerSetup {
        Self::make(tag, what, true)
    }

    fn make(tag: &str, what: &str, own: bool) -> DockerSetup {
        let p = prefix(tag);
        let name = format!("{p}{what}");
        let image = format!("{p}busybox:local");
        let scratch = Scratch::new(&p);
        let tar = scratch.tar();
        let host = own.then(|| format!("unix://{}", scratch.path("docker.sock").display()));
        let client = || docker_at(host.as_deref());
        let daemon = match &host {
            None => docker_daemon(&scratch),
            Some(sock) => {
                let mut dockerd = Command::new("dockerd");
                dockerd
                    .args(["--iptables=false", "--bridge=none", "--data-root"])
                    .arg(scratch.path("data"))
                    .arg("--exec-root")
                    .arg(scratch.path("exec"))
                    .arg("--pidfile")
                    .arg(scratch.path("docker.pid"))
                    .args(["-H", sock]);
                Daemon::start(dockerd, &scratch.path("dockerd.log"), || answers(client()))
            }
        };
        let mut cleanup = Cleanup::new();
        for args in [["rm", "--force", &name], ["rmi", "--force", &image]] {
            let c = client();
            cleanup
                .then(&c.get_program().to_string_lossy(), &[])
                .args(c.get_args())
                .args(args);
        }
        run(client().arg("import").arg(&tar).arg(&image));
        DockerSetup {
            _cleanup: cleanup,
            _daemon: daemon,
            _scratch: scratch,
            name,
            image,
            host,
        }
    }

    /// The docker client, talking to this test's daemon.
    fn docker(&self) -> Command {
        docker_at(self.host.as_deref())
    }
}

/// The docker client, talking to the daemon at `host` (`-H`), else the default one.
fn docker_at(host: Option<&str>) -> Command {
    let mut c = docker();
    if let Some(h) = host {
        c.args(["-H", h]);
    }
    c
}

/// Whether the docker client `cmd` gets an answer from its daemon (`docker version`).
fn answers(mut cmd: Command) -> bool {
    cmd.arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A dockerd whose data root is not /var/lib/docker, nor its bundles under /run/containerd.
#[test]
fn docker_container_below_another_data_root_is_named() {
    let Some(_s) = docker_test("docker_container_below_another_data_root_is_named") else {
        return;
    };
    let d = DockerSetup::own_root("rt-dkroot", "aap");
    let mut id = String::new();
    let evs = watch(&d.name, 1, || {
        id = run(d
            .docker()
            .args(container_run_args(&d.name, &d.image, &[], "sleep 1000")));
        thread::sleep(Duration::from_millis(300));
        run(d.docker().args(["kill", &d.name]));
    });
    assert_eq!(id.len(), 64, "docker run printed {id}");
    assert_named(&evs, 1, &d.name, "docker", &id, "docker-config");
    for e in evs.iter().filter(|e| e["event"] != "ready") {
        assert_eq!(e["image"], d.image.as_str(), "{e}");
    }
}

/// `dockerd`, started unless one already answers.
fn docker_daemon(scratch: &Scratch) -> Daemon {
    Daemon::start(
        Command::new("dockerd"),
        &scratch.path("dockerd.log"),
        || answers(docker()),
    )
}

/// Runs a detached Docker container `name` (hostname `name`) from `image`; returns its id.
fn docker_run(image: &str, name: &str) -> String {
    run(docker().args(container_run_args(name, image, &[], "sleep 1000")))
}

/// A `containers.conf` that lets Podman run here: cgroupfs (no systemd), a
/// nofile limit within the hard limit, runc, events in a file.
fn podman_conf(scratch: &Scratch) -> PathBuf {
    let path = scratch.path("containers.conf");
    let mut f = fs::File::create(&path).unwrap();
    writeln!(
        f,
        "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
         [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\""
    )
    .unwrap();
    path
}

#[test]
fn podman_container_is_named() {
    let _s = serial();
    if !can_run("podman_container_is_named", &["podman", "conmon", "runc"]) {
        return;
    }
    let p = prefix("rt-podman");
    let name = format!("{p}aap");
    let image = format!("localhost/{p}busybox:local");
    let scratch = Scratch::new(&p);
    let tar = scratch.tar();
    let conf = podman_conf(&scratch);
    let podman = || podman(&conf);
    let mut cleanup = Cleanup::new();
    cleanup
        .then("podman", &["rm", "--force", &name])
        .env("CONTAINERS_CONF", &conf);
    cleanup
        .then("podman", &["rmi", "--force", &image])
        .env("CONTAINERS_CONF", &conf);
    run(podman().arg("import").arg(&tar).arg(&image));
    let mut id = String::new();
    let evs = watch(&name, 1, || {
        id = podman_boot_and_stop(&conf, &image, &name, &PODMAN_LABELS);
    });
    assert_eq!(id.len(), 64, "podman run printed {id}");
    assert_named(&evs, 1, &name, "podman", &id, "podman-");
    // Its image (containers.json) and labels (libpod's BoltDB state), hostile ones as data.
    for e in evs.iter().filter(|e| e["event"] != "ready") {
        assert_eq!(e["image"], image.as_str(), "{e}");
        assert_eq!(e["labels"]["zmt.role"], "web", "{e}");
        assert_eq!(
            e["labels"]["zmt.evil"], "$(touch /tmp/zmt-label)\n\u{1b}[31m",
            "{e}"
        );
        assert_eq!(e["labels"].as_object().map(|l| l.len()), Some(2), "{e}");
    }
}

/// `podman rename` between two starts of one container, under one zonemon:
/// the second start is named by the new name (libpod rewrites the config's
/// name; a config zonemon read at the first start is not used again).
#[test]
fn podman_rename_is_followed() {
    let _s = serial();
    if !can_run("podman_rename_is_followed", &["podman", "conmon", "runc"]) {
        return;
    }
    let p = prefix("rt-podren");
    let (old, new) = (format!("{p}aap"), format!("{p}noot"));
    let image = format!("localhost/{p}busybox:local");
    let scratch = Scratch::new(&p);
    let tar = scratch.tar();
    let conf = podman_conf(&scratch);
    let mut cleanup = Cleanup::new();
    for name in [&old, &new] {
        cleanup
            .then("podman", &["rm", "--force", name])
            .env("CONTAINERS_CONF", &conf);
    }
    cleanup
        .then("podman", &["rmi", "--force", &image])
        .env("CONTAINERS_CONF", &conf);
    run(podman(&conf).arg("import").arg(&tar).arg(&image));
    let mon = Monitor::start(&["watch", "--json"]);
    let id = podman_boot_and_stop(&conf, &image, &old, &[]);
    wait_down(&mon, &old);
    run(podman(&conf).args(["rename", &old, &new]));
    run(podman(&conf).args(["start", &new]));
    thread::sleep(Duration::from_millis(300));
    run(podman(&conf).args(["stop", "--time", "0", &new]));
    wait_down(&mon, &new);
    let names: Vec<String> = booted_names(&mon.stop(), &id)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, [old, new]);
}

/// The labels `podman_container_is_named` gives its container: one hostile.
const PODMAN_LABELS: [&str; 2] = [
    "zmt.role=web",
    "zmt.evil=$(touch /tmp/zmt-label)\n\u{1b}[31m",
];

/// `podman` with the `containers.conf` at `conf`.
fn podman(conf: &Path) -> Command {
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", conf);
    c
}

/// Runs a detached Podman container `name` (hostname `name`, `labels`) from
/// `image` and stops it; returns the id `podman run` printed.
fn podman_boot_and_stop(conf: &Path, image: &str, name: &str, labels: &[&str]) -> String {
    let id = run(podman(conf).args(container_run_args(name, image, labels, "sleep 1000")));
    thread::sleep(Duration::from_millis(300));
    run(podman(conf).args(["stop", "--time", "0", name]));
    id.lines().last().unwrap_or("").to_string()
}

#[test]
fn lxc_container_is_named_and_keeps_its_name_across_restart() {
    let _s = serial();
    if !can_run(
        "lxc_container_is_named…",
        &["lxc-create", "lxc-start", "lxc-stop", "lxc-destroy"],
    ) {
        return;
    }
    let p = prefix("rt-lxc");
    let name = format!("{p}aap");
    let scratch = Scratch::new(&p);
    let lxcpath = scratch.path("lxc");
    fs::create_dir_all(&lxcpath).unwrap();
    let conf = scratch.path("lxc.conf");
    fs::write(
        &conf,
        "lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n",
    )
    .unwrap();
    let lp = lxcpath.to_string_lossy().into_owned();
    let mut cleanup = Cleanup::new();
    cleanup.then("lxc-stop", &["-P", &lp, "-n", &name, "-k"]);
    cleanup.then("lxc-destroy", &["-P", &lp, "-n", &name, "-f"]);
    run(Command::new("lxc-create")
        .args(["-P", &lp, "-n", &name, "-t", "busybox", "-f"])
        .arg(&conf));
    let evs = watch(&name, 2, || {
        for _ in 0..2 {
            lxc_boot_and_stop(&lp, &name);
        }
    });
    assert_named(&evs, 2, &name, "lxc", &name, "lxc-");
}

/// Starts LXC container `name` of lxcpath `lp`, waits until it runs and kills it.
fn lxc_boot_and_stop(lp: &str, name: &str) {
    run(Command::new("lxc-start").args(["-P", lp, "-n", name]));
    run(Command::new("lxc-wait").args(["-P", lp, "-n", name, "-s", "RUNNING", "-t", "30"]));
    thread::sleep(Duration::from_millis(300));
    run(Command::new("lxc-stop").args(["-P", lp, "-n", name, "-k"]));
}

/// A cgroup of our own in every hierarchy nspawn looks at (`name=systemd`,
/// the unified one), removed with what nspawn made under it when dropped.
struct NspawnCgroups(Vec<PathBuf>);

impl NspawnCgroups {
    fn new(rel: &str) -> Self {
        let mut dirs = Vec::new();
        for h in ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"] {
            if Path::new(h).join("cgroup.procs").is_file() {
                let d = Path::new(h).join(rel);
                fs::create_dir_all(&d).unwrap();
                dirs.push(d);
            }
        }
        NspawnCgroups(dirs)
    }
}

impl Drop for NspawnCgroups {
    fn drop(&mut self) {
        for d in &self.0 {
            for sub in ["payload", "supervisor", ""] {
                let _ = fs::remove_dir(d.join(sub));
            }
            if let Some(parent) = d.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

#[test]
fn nspawn_container_is_named_by_its_machine_name() {
    let _s = serial();
    if !can_run(
        "nspawn_container_is_named_by_its_machine_name",
        &["systemd-nspawn"],
    ) {
        return;
    }
    let p = prefix("rt-nspawn");
    let name = format!("{p}aap");
    let scratch = Scratch::new(&p);
    // The host has no systemd: nspawn runs in a cgroup of its own (else it makes an unnamed /payload).
    let cgroups = NspawnCgroups::new(&format!("{}machine/{name}", p));
    let mut cleanup = Cleanup::new();
    cleanup.then(
        "rm",
        &["-rf", &format!("/run/systemd/nspawn/propagate/{name}")],
    );
    let evs = watch(&name, 1, || {
        nspawn_boot_and_stop(
            &cgroups,
            &name,
            &scratch.rootfs(),
            &scratch.path("nspawn.log"),
        );
    });
    drop(cleanup);
    assert_named(&evs, 1, &name, "nspawn", &name, "nspawn-");
}

/// Runs machine `name` from `rootfs` under systemd-nspawn in `cgroups`,
/// lets it run 1.5 s, then stops nspawn (which kills its container).
fn nspawn_boot_and_stop(cgroups: &NspawnCgroups, name: &str, rootfs: &Path, log: &Path) {
    let mut join = String::new();
    for d in &cgroups.0 {
        join.push_str(&format!("echo $$ > '{}/cgroup.procs' && ", d.display()));
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{join}exec \"$@\""))
        .arg("sh")
        .args([
            "systemd-nspawn",
            "--register=no",
            "--keep-unit",
            "--quiet",
            "-M",
            name,
            "-D",
        ])
        .arg(rootfs)
        .args(["/bin/sh", "-c", "sleep 1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    // nspawn moves the container's init into `payload` once it has made it: stopped before
    // that, nspawn gives up quietly and there is no zone, which would count against zonemon.
    let booted = || {
        cgroups.0.iter().any(|d| {
            fs::read_to_string(d.join("payload/cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        })
    };
    if !within(Duration::from_secs(20), booted) {
        eprintln!(
            "systemd-nspawn did not start container {name} within 20 s: stopping it all the same"
        );
    }
    thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child; nspawn then kills its container.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    wait_timeout(&mut child, Duration::from_secs(30));
    let said = fs::read_to_string(log).unwrap_or_default();
    eprintln!("systemd-nspawn said: {said}");
}

#[test]
fn containerd_task_is_named_by_its_id() {
    let _s = serial();
    if !can_run(
        "containerd_task_is_named_by_its_id",
        &["containerd", "ctr", "runc"],
    ) {
        return;
    }
    let p = prefix("rt-ctr");
    let id = format!("{p}aap");
    let scratch = Scratch::new(&p);
    let _daemon = containerd_daemon(&scratch);
    let mut cleanup = Cleanup::new();
    cleanup.then("ctr", &["task", "kill", "--signal", "KILL", &id]);
    cleanup.then("sh", &["-c", "sleep 0.5"]);
    cleanup.then("ctr", &["task", "delete", "--force", &id]);
    cleanup.then("ctr", &["container", "delete", &id]);
    let rootfs = scratch.rootfs();
    let evs = watch(&id, 1, || ctr_boot_and_stop(&rootfs, &id));
    assert_named(&evs, 1, &id, "containerd", &id, "containerd-");
}

/// A containerd whose state is not under /run/containerd (as k3s's, in
/// /run/k3s/containerd, or any `--state`): the task is named all the same,
/// from the bundle its shim runs in.
#[test]
fn containerd_under_another_state_root_is_named() {
    let _s = serial();
    if !can_run(
        "containerd_under_another_state_root_is_named",
        &["containerd", "ctr", "runc"],
    ) {
        return;
    }
    let p = prefix("rt-k3s");
    let id = format!("{p}aap");
    let scratch = Scratch::new(&p);
    // Short paths: the shims' sockets live below the state directory.
    let (root, state) = (scratch.path("r"), scratch.path("s"));
    let sock = state.join("c.sock").to_string_lossy().into_owned();
    let ctr = |args: &[&str]| {
        let mut c = Command::new("ctr");
        c.args(["--address", &sock]).args(args);
        c
    };
    let mut daemon_cmd = Command::new("containerd");
    daemon_cmd
        .arg("--root")
        .arg(&root)
        .arg("--state")
        .arg(&state)
        .args(["--address", &sock]);
    let ready = || {
        ctr(&["version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let _daemon = Daemon::start(daemon_cmd, &scratch.path("containerd.log"), ready);
    let mut cleanup = Cleanup::new();
    for args in [
        &["task", "kill", "--signal", "KILL", &id][..],
        &["task", "delete", "--force", &id],
        &["container", "delete", &id],
    ] {
        cleanup.then("ctr", &[&["--address", &sock][..], args].concat());
    }
    let rootfs = scratch.rootfs();
    let evs = watch(&id, 1, || {
        run(ctr(&["run", "--detach", "--env", "PATH=/bin", "--rootfs"])
            .arg(&rootfs)
            .args([&id, "/bin/sh", "-c", "sleep 1000"]));
        thread::sleep(Duration::from_millis(300));
        run(&mut ctr(&["task", "kill", "--signal", "KILL", &id]));
    });
    assert!(
        !Path::new(&format!(
            "/run/containerd/io.containerd.runtime.v2.task/default/{id}"
        ))
        .exists(),
        "the task's bundle is under the other state root"
    );
    assert_named(&evs, 1, &id, "containerd", &id, "containerd-");
}

/// `containerd`, started unless one already answers `ctr version`.
fn containerd_daemon(scratch: &Scratch) -> Daemon {
    let ctr_ok = || {
        Command::new("ctr")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    Daemon::start(
        Command::new("containerd"),
        &scratch.path("containerd.log"),
        ctr_ok,
    )
}

/// Runs containerd task `id` from `rootfs` with `ctr`, detached, and kills it.
fn ctr_boot_and_stop(rootfs: &Path, id: &str) {
    run(Command::new("ctr")
        .args(["run", "--detach", "--env", "PATH=/bin", "--rootfs"])
        .arg(rootfs)
        .args([id, "/bin/sh", "-c", "sleep 1000"]));
    thread::sleep(Duration::from_millis(300));
    run(Command::new("ctr").args(["task", "kill", "--signal", "KILL", id]));
}

// ---------------------------------------------------------------------------
// Naming benchmark (issue 3's figures): run by hand, as root, with
// `cargo test --release -p zonemon --test runtimes -- --ignored naming_benchmark --nocapture`.

/// The command that runs the benchmark.
const BENCH_CMD: &str =
    "cargo test --release -p zonemon --test runtimes -- --ignored naming_benchmark --nocapture";

/// One container the benchmark booted and stopped, and what zonemon must call it.
struct Expected {
    runtime: &'static str,
    name: String,
    id: String,
    /// Wall-clock time just before the runtime was asked to boot it.
    asked: SystemTime,
}

impl Expected {
    /// Whether `e` is an event of this container's zone. Judged by what the
    /// kernel says (cgroup path, hostname) as well as by zonemon's naming, so
    /// that a misnamed zone still counts against the runtime. The names are
    /// unique to this run (`zmt-nb-<runtime>-<pid>-<n>-<i>-aap`) and none is a
    /// substring of another, so other users' zones never match.
    fn owns(&self, e: &Value) -> bool {
        [&self.name, &self.id].into_iter().any(|t| {
            !t.is_empty()
                && (e["cgroup"].as_str().is_some_and(|c| c.contains(t.as_str()))
                    || e["hostname"] == **t
                    || e["name"] == **t
                    || e["container_id"] == **t)
        })
    }

    /// Whether `line` may be an event of this container (cheap filter before parsing).
    fn may_own(&self, line: &str) -> bool {
        line.contains(&self.name) || (!self.id.is_empty() && line.contains(&self.id))
    }

    /// Whether `e` carries exactly the expected name, runtime and container id.
    fn named_right(&self, e: &Value) -> bool {
        e["name"] == *self.name && e["runtime"] == self.runtime && e["container_id"] == *self.id
    }
}

/// Parses zonemon's `time` (`2026-11-26T06:39:53.835636403Z`, UTC).
fn parse_time(s: &str) -> Option<SystemTime> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let rest = rest.strip_suffix('Z')?;
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, "0"));
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let secs = (era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60 + sec;
    Some(UNIX_EPOCH + Duration::new(u64::try_from(secs).ok()?, nanos))
}

/// Boots and stops `rounds` containers of `runtime` named `<p><i>-aap`, one
/// at a time: `boot_and_stop(name)` boots and stops one and returns its
/// container id; the next is booted once zonemon reported this one down (or
/// after [`WAIT`]).
fn bench_rounds(
    mon: &Monitor,
    runtime: &'static str,
    rounds: usize,
    out: &mut Vec<Expected>,
    mut boot_and_stop: impl FnMut(&str) -> String,
) {
    let p = prefix(&format!("nb-{runtime}"));
    for i in 0..rounds {
        let name = format!("{p}{i}-aap");
        let asked = SystemTime::now();
        let id = boot_and_stop(&name);
        let exp = Expected {
            runtime,
            name,
            id,
            asked,
        };
        let down = mon.wait_for(WAIT, |lines| {
            lines.iter().filter(|l| exp.may_own(l)).any(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|e| e["event"] == "down" && exp.owns(&e))
            })
        });
        if !down {
            eprintln!(
                "naming_benchmark: {runtime} container {} not reported down within {WAIT:?}",
                exp.name
            );
        }
        out.push(exp);
    }
}

/// What the benchmark found for one runtime.
#[derive(Default)]
struct RuntimeTally {
    containers: usize,
    /// Transitions expected (booted, shutdown, down per container) or seen, whichever is more.
    transitions: usize,
    named: usize,
    /// Booted events' time minus the moment the runtime was asked to boot, in ms.
    boot_ms: Vec<f64>,
}

/// Tallies, per container, its zone's transitions in `events`.
fn tally(events: &[Value], expected: &[Expected]) -> Vec<(&'static str, RuntimeTally)> {
    let mut rows: Vec<(&'static str, RuntimeTally)> = Vec::new();
    for exp in expected {
        if !rows.iter().any(|(r, _)| *r == exp.runtime) {
            rows.push((exp.runtime, RuntimeTally::default()));
        }
        let row = &mut rows.iter_mut().find(|(r, _)| *r == exp.runtime).unwrap().1;
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| ["booted", "shutdown", "down"].contains(&e["event"].as_str().unwrap_or("")))
            .filter(|e| exp.owns(e))
            .collect();
        let named = mine.iter().filter(|e| exp.named_right(e)).count();
        for e in &mine {
            if !exp.named_right(e) {
                eprintln!(
                    "naming_benchmark: MISNAMED {} {}: name {} runtime {} container_id {} (expected {} {} {})",
                    e["event"], e["zone_id"], e["name"], e["runtime"], e["container_id"],
                    exp.name, exp.runtime, exp.id
                );
            }
        }
        let kinds: Vec<&str> = mine
            .iter()
            .map(|e| e["event"].as_str().unwrap_or(""))
            .collect();
        if kinds != ["booted", "shutdown", "down"] {
            eprintln!(
                "naming_benchmark: {} {}: transitions seen {kinds:?}",
                exp.runtime, exp.name
            );
        }
        if let Some(t) = mine
            .iter()
            .find(|e| e["event"] == "booted")
            .and_then(|e| parse_time(e["time"].as_str()?))
        {
            if let Ok(d) = t.duration_since(exp.asked) {
                row.boot_ms.push(d.as_secs_f64() * 1e3);
            }
        }
        row.containers += 1;
        row.transitions += mine.len().max(3);
        row.named += named;
    }
    rows
}

/// The median of `v` (0 when empty).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "–".into();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

/// The Markdown report: the table, the cost figures and what they are judged against.
/// How many zones no runtime made the naming benchmark boots, for the cost of trying every runtime.
const PLAIN_ZONES: usize = 200;

fn bench_report(
    rows: &[(&'static str, RuntimeTally)],
    missing: &[&str],
    stats: &Value,
    plain: &Value,
    rounds: usize,
) -> String {
    let sh = |c: &str, a: &[&str]| {
        Command::new(c)
            .args(a)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let mut md = String::new();
    let mut w = |s: String| {
        md.push_str(&s);
        md.push('\n');
    };
    w("# Naming benchmark (issue 3)".into());
    w(String::new());
    w(format!(
        "Command (as root): `ZONEMON_NAMING_ROUNDS={rounds} {BENCH_CMD}`  "
    ));
    w(format!(
        "Machine: Linux {}, {} CPUs (`uname -r`, `nproc`), shared with other users' workloads.",
        sh("uname", &["-r"]),
        sh("nproc", &[])
    ));
    w(String::new());
    w(format!(
        "One `zonemon watch --json --stats` watched the whole run. For each runtime, {rounds} containers \
         with names unique to the run were booted from a busybox-static rootfs and stopped, one at a time. \
         A transition (`booted`, `shutdown`, `down` of a container's zone; the zone is recognised by its \
         cgroup path and hostname as well as by its name) is named correctly when it carries exactly the \
         expected `name`, `runtime` and `container_id`; a transition that never came counts as not named."
    ));
    w(String::new());
    w("| runtime | transitions | named correctly | share | boot, median (ms) |".into());
    w("| --- | ---: | ---: | ---: | ---: |".into());
    let (mut all_t, mut all_n) = (0, 0);
    let mut boots: Vec<(f64, &str)> = Vec::new();
    for (rt, t) in rows {
        all_t += t.transitions;
        all_n += t.named;
        let b = median(&t.boot_ms);
        boots.push((b, rt));
        w(format!(
            "| {rt} | {} | {} | {} | {b:.0} |",
            t.transitions,
            t.named,
            pct(t.named, t.transitions)
        ));
    }
    for rt in missing {
        w(format!("| {rt} | not run: tools missing | | | |"));
    }
    w(format!(
        "| **all {} runtimes** | **{all_t}** | **{all_n}** | **{}** (target 100 %) | |",
        rows.len(),
        pct(all_n, all_t)
    ));
    w(String::new());
    let s = &stats["stats"];
    let p = &plain["stats"];
    let us = |v: &Value| v.as_f64().unwrap_or(0.0) / 1e3;
    let (n50, n99) = (us(&s["naming_ns"]["p50"]), us(&s["naming_ns"]["p99"]));
    let (e50, e99) = (
        us(&s["event_path_ns"]["p50"]),
        us(&s["event_path_ns"]["p99"]),
    );
    let share = s["naming_share_of_event_path"].as_f64().unwrap_or(0.0);
    boots.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (fast_ms, fast_rt) = boots.first().copied().unwrap_or((0.0, "–"));
    let of_boot = |x_us: f64| {
        if fast_ms > 0.0 {
            format!("{:.3} %", x_us / 1e3 / fast_ms * 100.0)
        } else {
            "–".into()
        }
    };
    w("| figure | value | judged against |".into());
    w("| --- | ---: | --- |".into());
    w(format!(
        "| naming cost, p50 | {n50:.1} µs per zone | {} of the fastest runtime's boot ({fast_rt}, median {fast_ms:.0} ms, same run) |",
        of_boot(n50)
    ));
    w(format!(
        "| naming cost, p99 | {n99:.1} µs per zone | {} of the fastest runtime's boot |",
        of_boot(n99)
    ));
    w(format!(
        "| naming share of the event path | {:.1} % | the whole userspace event path per observation (p50 {e50:.1} µs, p99 {e99:.1} µs) = 100 % |",
        share * 100.0
    ));
    let (p50, p99) = (us(&p["naming_ns"]["p50"]), us(&p["naming_ns"]["p99"]));
    w(format!(
        "| naming a zone no runtime made (every runtime tried), p50 / p99 | {p50:.1} / {p99:.1} µs per call | \
         {:.1} % of that run's event path (p50 {:.1} µs per observation) |",
        p["naming_share_of_event_path"].as_f64().unwrap_or(0.0) * 100.0,
        us(&p["event_path_ns"]["p50"])
    ));
    w(String::new());
    w("Naming cost by the runtime that named the zone (target: p99 ≤ 100 µs per call for every runtime):".into());
    w(String::new());
    w("| runtime | calls | p50 (µs) | p99 (µs) | p99 ≤ 100 µs | on CPU, p50 / p99 (µs) | calls switched out: asleep / preempted |".into());
    w("| --- | ---: | ---: | ---: | --- | ---: | ---: |".into());
    let by_rt = |st: &Value, only: Option<&str>| -> Vec<(String, Value)> {
        st["naming_ns_by_runtime"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| only.is_none_or(|o| o == k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut rt_rows = by_rt(s, None);
    rt_rows.retain(|(k, _)| k != "none");
    for (k, v) in by_rt(p, Some("none")) {
        rt_rows.push((format!("{k} (the plain zones)"), v));
    }
    for (rt, v) in rt_rows {
        let (r50, r99) = (us(&v["p50"]), us(&v["p99"]));
        let (c50, c99) = (us(&v["cpu_p50"]), us(&v["cpu_p99"]));
        w(format!(
            "| {rt} | {} | {r50:.1} | {r99:.1} | {} | {c50:.1} / {c99:.1} | {}: {} / {} |",
            v["calls"],
            if r99 <= 100.0 { "PASS" } else { "MISS" },
            v["switched"],
            v["blocked"],
            v["preempted"]
        ));
    }
    w(String::new());
    w(format!(
        "Costs are from `--stats`: {} observations, {} runtime-name resolver calls ({} found a runtime name), \
         over every zone zonemon saw during the run, other users' zones included. \"Naming cost\" is one call \
         of the runtime-name resolvers; the event path is the whole userspace handling of one kernel record, \
         from the ring buffer to the written line. Boot time is from asking the runtime (`runc run`, \
         `docker run` …) to zonemon's `booted` event. A call's time is wall-clock time, judged against the \
         target; \"on CPU\" is the event loop's CPU time during the same call (its work: the \
         difference is time spent waiting, for a CPU or asleep), and \"switched out\" counts the calls during \
         which the event loop was switched out at least once: asleep (it waited in a system call, a voluntary \
         switch) or preempted (an involuntary one); a call may be both.",
        s["observations"], s["naming_calls"], s["naming_calls_named"]
    ));
    w(String::new());
    w(format!(
        "The last row is from a second `zonemon watch --json --stats` that watched {PLAIN_ZONES} `unshare` zones \
         (hostname set, living 50 ms) booted one at a time after the runtimes: {} resolver calls, {} found a runtime \
         name. Every runtime's resolver looks and finds nothing: the price every zone pays.",
        p["naming_calls"], p["naming_calls_named"]
    ));
    md
}

/// The `--stats` line a stopped `zonemon --stats` printed on stderr.
fn stats_line(stderr: &str) -> Value {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["stats"].is_object())
        .unwrap_or_else(|| panic!("no stats line from zonemon --stats; stderr:\n{stderr}"))
}

#[test]
#[ignore = "benchmark: run by hand as root (see BENCH_CMD)"]
fn naming_benchmark() {
    let _s = serial();
    if !require_root("naming_benchmark") {
        return;
    }
    let rounds: usize = std::env::var("ZONEMON_NAMING_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(5);
    let mut expected = Vec::new();
    let mut missing = Vec::new();
    let mon = Monitor::start(&["watch", "--json", "--stats"]);

    if can_run("naming_benchmark/runc", &["runc"]) {
        let mut cleanup = Cleanup::new();
        let mut keep = Vec::new();
        bench_rounds(&mon, "runc", rounds, &mut expected, |id| {
            cleanup.then("runc", &["delete", "--force", id]);
            let scratch = Scratch::new(&format!("{id}-"));
            let bundle = scratch.bundle(id, "sleep 1000");
            runc_boot_and_stop(&bundle, id, &scratch.path("runc.log"));
            keep.push(scratch);
            id.to_string()
        });
    } else {
        missing.push("runc");
    }

    if can_run("naming_benchmark/crun", &["crun", "runc"]) {
        let section = Scratch::new(&prefix("nb-crun-mnt"));
        let _mount = HugetlbMount::new(section.path("hugetlb"));
        let mut keep = Vec::new();
        let mut cleanup = Cleanup::new(); // dropped first: delete before the hugetlb hierarchy goes
        bench_rounds(&mon, "crun", rounds, &mut expected, |id| {
            cleanup.then("crun", &["delete", "--force", id]);
            let scratch = Scratch::new(&format!("{id}-"));
            let bundle = scratch.bundle(id, "sleep 1000");
            crun_boot_and_stop(&bundle, id);
            keep.push(scratch);
            id.to_string()
        });
    } else {
        missing.push("crun");
    }

    if can_run("naming_benchmark/podman", &["podman", "conmon", "runc"]) {
        let p = prefix("nb-podman-img");
        let image = format!("localhost/{p}busybox:local");
        let scratch = Scratch::new(&p);
        let tar = scratch.tar();
        let conf = podman_conf(&scratch);
        let mut cleanup = Cleanup::new();
        cleanup
            .then("podman", &["rmi", "--force", &image])
            .env("CONTAINERS_CONF", &conf);
        run(podman(&conf).arg("import").arg(&tar).arg(&image));
        let mut names = Cleanup::new(); // dropped before the image goes
        bench_rounds(&mon, "podman", rounds, &mut expected, |name| {
            names
                .then("podman", &["rm", "--force", name])
                .env("CONTAINERS_CONF", &conf);
            podman_boot_and_stop(&conf, &image, name, &[])
        });
    } else {
        missing.push("podman");
    }

    if can_run(
        "naming_benchmark/lxc",
        &["lxc-create", "lxc-start", "lxc-stop", "lxc-destroy"],
    ) {
        let scratch = Scratch::new(&prefix("nb-lxc-path"));
        let lxcpath = scratch.path("lxc");
        fs::create_dir_all(&lxcpath).unwrap();
        let conf = scratch.path("lxc.conf");
        fs::write(
            &conf,
            "lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n",
        )
        .unwrap();
        let lp = lxcpath.to_string_lossy().into_owned();
        let mut cleanup = Cleanup::new();
        bench_rounds(&mon, "lxc", rounds, &mut expected, |name| {
            cleanup.then("lxc-stop", &["-P", &lp, "-n", name, "-k"]);
            cleanup.then("lxc-destroy", &["-P", &lp, "-n", name, "-f"]);
            run(Command::new("lxc-create")
                .args(["-P", &lp, "-n", name, "-t", "busybox", "-f"])
                .arg(&conf));
            lxc_boot_and_stop(&lp, name);
            name.to_string()
        });
    } else {
        missing.push("lxc");
    }

    if can_run("naming_benchmark/nspawn", &["systemd-nspawn"]) {
        let p = prefix("nb-nspawn-root");
        let scratch = Scratch::new(&p);
        let mut cgroups = Vec::new();
        let mut cleanup = Cleanup::new();
        bench_rounds(&mon, "nspawn", rounds, &mut expected, |name| {
            cleanup.then(
                "rm",
                &["-rf", &format!("/run/systemd/nspawn/propagate/{name}")],
            );
            // The host has no systemd: nspawn runs in a cgroup of its own.
            let cg = NspawnCgroups::new(&format!("{p}machine/{name}"));
            nspawn_boot_and_stop(&cg, name, &scratch.rootfs(), &scratch.path("nspawn.log"));
            cgroups.push(cg);
            name.to_string()
        });
        // `cleanup` goes first, then each of `cgroups` removes its own
        // cgroups, and the shared parent once it is empty.
    } else {
        missing.push("nspawn");
    }

    if can_run(
        "naming_benchmark/containerd",
        &["containerd", "ctr", "runc"],
    ) {
        let scratch = Scratch::new(&prefix("nb-ctr-root"));
        let _daemon = containerd_daemon(&scratch);
        let rootfs = scratch.rootfs();
        let mut cleanup = Cleanup::new(); // dropped before the daemon
        bench_rounds(&mon, "containerd", rounds, &mut expected, |id| {
            cleanup.then("ctr", &["task", "kill", "--signal", "KILL", id]);
            cleanup.then("sh", &["-c", "sleep 0.5"]);
            cleanup.then("ctr", &["task", "delete", "--force", id]);
            cleanup.then("ctr", &["container", "delete", id]);
            ctr_boot_and_stop(&rootfs, id);
            id.to_string()
        });
    } else {
        missing.push("containerd");
    }

    if can_run("naming_benchmark/docker", DOCKER_TOOLS) {
        let p = prefix("nb-docker-img");
        let image = format!("{p}busybox:local");
        let scratch = Scratch::new(&p);
        let tar = scratch.tar();
        let _daemon = docker_daemon(&scratch);
        let docker_bin = docker().get_program().to_string_lossy().into_owned();
        let mut cleanup = Cleanup::new();
        cleanup.then(&docker_bin, &["rmi", "--force", &image]);
        run(docker().arg("import").arg(&tar).arg(&image));
        let mut names = Cleanup::new(); // dropped before the image and the daemon
        bench_rounds(&mon, "docker", rounds, &mut expected, |name| {
            names.then(&docker_bin, &["rm", "--force", name]);
            let id = docker_run(&image, name);
            thread::sleep(Duration::from_millis(300));
            run(docker().args(["kill", name]));
            id
        });
    } else {
        missing.push("docker");
    }

    let (lines, stderr) = mon.stop_with_stderr();
    let events: Vec<Value> = lines
        .iter()
        .filter(|l| expected.iter().any(|e| e.may_own(l)))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let stats = stats_line(&stderr);
    // The zones no runtime made: every resolver is tried and finds nothing.
    let plain_mon = Monitor::start(&["watch", "--json", "--stats"]);
    let p = prefix("nb-plain");
    for i in 0..PLAIN_ZONES {
        run_zone(&format!("{p}{i}"), "sleep 0.05");
    }
    assert!(
        plain_mon.wait_for(Duration::from_secs(60), |l| count(l, &p, "down")
            == PLAIN_ZONES),
        "not every plain zone went down"
    );
    let (_, plain_stderr) = plain_mon.stop_with_stderr();
    let plain = stats_line(&plain_stderr);
    let rows = tally(&events, &expected);
    let md = bench_report(&rows, &missing, &stats, &plain, rounds);
    println!("\n{md}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/naming.md");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, &md).unwrap();
    println!("written to {}", path.display());
}

/// Asserts that every record in `evs` is of a zone sharing the host's PID
/// namespace: level 0, `host_pid`, and this process's PID namespace.
fn assert_host_pid(evs: &[Value]) {
    let host_pidns = fs::read_link("/proc/self/ns/pid").unwrap();
    let host_pidns = host_pidns.to_string_lossy();
    assert!(!evs.is_empty());
    for e in evs {
        assert_eq!(e["host_pid"], true, "{e}");
        assert_eq!(e["level"], 0, "{e}");
        assert_eq!(format!("pid:[{}]", e["pidns"]), host_pidns, "{e}");
    }
}

#[test]
fn docker_host_pid_container_is_named() {
    let Some(_s) = docker_test("docker_host_pid_container_is_named") else {
        return;
    };
    let d = DockerSetup::new("rt-docker-hostpid", "aap");
    let mut id = String::new();
    let evs = watch(&d.name, 1, || {
        let mut args = container_run_args(&d.name, &d.image, &[], "sleep 1000");
        args.insert(1, "--pid=host");
        id = run(docker().args(args));
        thread::sleep(Duration::from_millis(300));
        run(docker().args(["kill", &d.name]));
    });
    assert_named(&evs, 1, &d.name, "docker", &id, "docker-");
    assert_host_pid(&evs);
    let shutdown = evs.iter().find(|e| e["event"] == "shutdown").unwrap();
    assert_eq!(shutdown["exit_signal"], 9, "{shutdown}");
}

#[test]
fn podman_host_pid_container_is_named() {
    let _s = serial();
    if !can_run(
        "podman_host_pid_container_is_named",
        &["podman", "conmon", "runc"],
    ) {
        return;
    }
    let p = prefix("rt-podman-hostpid");
    let name = format!("{p}aap");
    let image = format!("localhost/{p}busybox:local");
    let scratch = Scratch::new(&p);
    let tar = scratch.tar();
    let conf = podman_conf(&scratch);
    let mut cleanup = Cleanup::new();
    for args in [["rm", "--force", &name], ["rmi", "--force", &image]] {
        cleanup.then("podman", &args).env("CONTAINERS_CONF", &conf);
    }
    run(podman(&conf).arg("import").arg(&tar).arg(&image));
    let mut id = String::new();
    let evs = watch(&name, 1, || {
        let mut args = container_run_args(&name, &image, &[], "sleep 1000");
        args.insert(1, "--pid=host");
        id = run(podman(&conf).args(args));
        id = id.lines().last().unwrap_or("").to_string();
        thread::sleep(Duration::from_millis(300));
        run(podman(&conf).args(["stop", "--time", "0", &name]));
    });
    assert_named(&evs, 1, &name, "podman", &id, "podman-");
    assert_host_pid(&evs);
}

#[test]
fn two_hundred_host_pid_runc_containers_churned_are_all_seen() {
    let _s = serial();
    if !can_run(
        "two_hundred_host_pid_runc_containers_churned_are_all_seen",
        &["runc"],
    ) {
        return;
    }
    const N: usize = 200;
    let p = prefix("rt-runc-hostpid");
    let scratch = Scratch::new(&p);
    // A bundle per container, without a PID namespace of its own, with the
    // container's id as its hostname: a container that exits before its
    // runtime's state could be read is still named right (by its hostname).
    let template = scratch.bundle("template", "exit 7");
    let mut spec: Value =
        serde_json::from_slice(&fs::read(template.join("config.json")).unwrap()).unwrap();
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "pid");
    let ids: Vec<String> = (0..N).map(|i| format!("{p}{i}")).collect();
    let mut cleanup = Cleanup::new();
    for id in &ids {
        cleanup.then("runc", &["delete", "--force", id]);
        let bundle = scratch.path(id);
        fs::create_dir_all(&bundle).unwrap();
        spec["hostname"] = Value::String(id.clone());
        fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    }
    let mon = Monitor::start(&["watch", "--json"]);
    thread::scope(|s| {
        for worker in 0..4 {
            let (ids, scratch) = (&ids, &scratch);
            s.spawn(move || {
                for id in ids.iter().skip(worker).step_by(4) {
                    let bundle = scratch.path(id);
                    let out = output(
                        Command::new("runc")
                            .args(["run", "--bundle"])
                            .arg(bundle)
                            .arg(id),
                    );
                    assert_eq!(out.status.code(), Some(7), "runc run {id}: {out:?}");
                }
            });
        }
    });
    let mine = |lines: &[String]| -> Vec<Value> {
        parse_json(lines)
            .into_iter()
            .filter(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|n| ids.iter().any(|id| id == n))
            })
            .collect()
    };
    let done = mon.wait_for(WAIT, |lines| {
        mine(lines).iter().filter(|e| e["event"] == "down").count() >= N
    });
    let (lines, stderr) = mon.stop_with_stderr();
    let evs = mine(&lines);
    let incomplete: Vec<(&String, Vec<&Value>)> = ids
        .iter()
        .map(|id| {
            (
                id,
                evs.iter()
                    .filter(|e| e["name"] == id.as_str())
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, evs)| evs.len() != 4)
        .collect();
    assert!(
        done,
        "not every container went down: {} records; incomplete: {incomplete:#?}; stderr: {stderr}",
        evs.len()
    );
    for id in &ids {
        let kinds: Vec<&str> = evs
            .iter()
            .filter(|e| e["name"] == id.as_str())
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["ready", "booted", "shutdown", "down"], "{id}");
    }
    assert_host_pid(&evs);
    for e in evs.iter().filter(|e| e["event"] == "shutdown") {
        assert_eq!(e["exit_code"], 7, "{e}");
    }
    // Most are named by runc's state; one that was gone before it could be read, by its hostname.
    let by_runc = evs
        .iter()
        .filter(|e| e["event"] == "booted" && e["runtime"] == "runc")
        .count();
    eprintln!("{by_runc} of {N} named from runc's state, the others by their hostname");
    assert!(by_runc >= N / 2, "only {by_runc} of {N} named by runc");
}
