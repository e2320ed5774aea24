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
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// One runtime test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
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

fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
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

/// A scratch directory with a busybox-static root filesystem, removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(prefix.trim_end_matches('-'));
        let _ = fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in [
            "bin", "proc", "sys", "dev", "tmp", "etc", "usr", "root", "run",
        ] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("busybox (Debian package busybox-static)");
        fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "sleep", "hostname", "true", "cat", "ls", "init"] {
            symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        fs::write(rootfs.join("etc/hostname"), "zmt\n").unwrap();
        fs::write(rootfs.join("etc/os-release"), "ID=busybox\nNAME=zmt\n").unwrap();
        Scratch { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// A tar of the rootfs, for `docker import` and `podman import`.
    fn tar(&self) -> PathBuf {
        let tar = self.path("rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(self.rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        tar
    }

    /// An OCI bundle running `sh -c script` with hostname `hostname`, from `runc spec`.
    fn bundle(&self, hostname: &str, script: &str) -> PathBuf {
        let bundle = self.path("bundle");
        fs::create_dir_all(&bundle).unwrap();
        let rootfs = bundle.join("rootfs");
        if !rootfs.exists() {
            symlink(self.rootfs(), &rootfs).unwrap();
        }
        run(Command::new("runc").arg("spec").current_dir(&bundle));
        let path = bundle.join("config.json");
        let mut spec: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        spec["process"]["terminal"] = Value::Bool(false);
        spec["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
        spec["hostname"] = Value::String(hostname.into());
        spec["root"]["path"] = Value::String(self.rootfs().to_string_lossy().into_owned());
        fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        bundle
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
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
        let logf = fs::File::create(log).unwrap();
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let d = Daemon { child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready() {
            if Instant::now() > deadline {
                panic!(
                    "{cmd:?} did not come up within 60 s; its log:\n{}",
                    fs::read_to_string(log).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
        d
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(child) = &mut self.child else { return };
        // SAFETY: signalling the process group of the daemon we started.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
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
        // In the foreground: `runc run` is the init's parent and reaps it (a
        // detached init would be left to a PID 1 that may never reap it).
        let mut runc = Command::new("runc")
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(scratch.path("runc.log")).unwrap())
            .spawn()
            .unwrap();
        wait_until_running("runc", &id);
        run(Command::new("runc").args(["kill", &id, "KILL"]));
        wait_timeout(&mut runc, Duration::from_secs(30));
    });
    assert_named(&evs, 1, &id, "runc", &id, "runc-");
}

/// Waits (at most 30 s) until `<runtime> state <id>` says the container is running.
fn wait_until_running(runtime: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = output(Command::new(runtime).args(["state", id]));
        let state = String::from_utf8_lossy(&out.stdout).into_owned();
        if serde_json::from_str::<Value>(&state).is_ok_and(|v| v["status"] == "running") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} did not start within 30 s: {state}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        thread::sleep(Duration::from_millis(50));
    }
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
    let evs = watch(&id, 1, || {
        run(Command::new("crun")
            .args(["run", "--detach", "--bundle"])
            .arg(&bundle)
            .arg(&id));
        thread::sleep(Duration::from_millis(200));
        run(Command::new("crun").args(["kill", &id, "KILL"]));
    });
    drop(cleanup); // delete before the hugetlb hierarchy goes
    assert_named(&evs, 1, &id, "crun", &id, "crun-");
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
    let _s = serial();
    if !can_run(
        "docker_container_is_named…",
        &["dockerd", "docker", "containerd", "runc"],
    ) {
        return;
    }
    let p = prefix("rt-docker");
    let name = format!("{p}aap");
    let image = format!("{p}busybox:local");
    let scratch = Scratch::new(&p);
    let tar = scratch.tar();
    let docker_ok = || {
        docker()
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let _daemon = Daemon::start(
        Command::new("dockerd"),
        &scratch.path("dockerd.log"),
        docker_ok,
    );
    let mut cleanup = Cleanup::new();
    let docker_bin = docker().get_program().to_string_lossy().into_owned();
    cleanup.then(&docker_bin, &["rm", "--force", &name]);
    cleanup.then(&docker_bin, &["rmi", "--force", &image]);
    run(docker().arg("import").arg(&tar).arg(&image));
    let mut id = String::new();
    let evs = watch(&name, 2, || {
        id = run(docker().args([
            "run",
            "--detach",
            "--name",
            &name,
            "--hostname",
            &name,
            "--network",
            "none",
            &image,
            "/bin/sh",
            "-c",
            "sleep 1000",
        ]));
        thread::sleep(Duration::from_millis(300));
        run(docker().args(["restart", "--time", "0", &name]));
        thread::sleep(Duration::from_millis(300));
        run(docker().args(["kill", &name]));
    });
    assert_eq!(id.len(), 64, "docker run printed {id}");
    assert_named(&evs, 2, &name, "docker", &id, "docker-");
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
    let podman = || {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &conf);
        c
    };
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
        id = run(podman().args([
            "run",
            "--detach",
            "--name",
            &name,
            "--hostname",
            &name,
            "--network=none",
            &image,
            "/bin/sh",
            "-c",
            "sleep 1000",
        ]));
        thread::sleep(Duration::from_millis(300));
        run(podman().args(["stop", "--time", "0", &name]));
    });
    let id = id.lines().last().unwrap_or("").to_string();
    assert_eq!(id.len(), 64, "podman run printed {id}");
    assert_named(&evs, 1, &name, "podman", &id, "podman-");
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
            run(Command::new("lxc-start").args(["-P", &lp, "-n", &name]));
            run(Command::new("lxc-wait")
                .args(["-P", &lp, "-n", &name, "-s", "RUNNING", "-t", "30"]));
            thread::sleep(Duration::from_millis(300));
            run(Command::new("lxc-stop").args(["-P", &lp, "-n", &name, "-k"]));
        }
    });
    assert_named(&evs, 2, &name, "lxc", &name, "lxc-");
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
                &name,
                "-D",
            ])
            .arg(scratch.rootfs())
            .args(["/bin/sh", "-c", "sleep 1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(scratch.path("nspawn.log")).unwrap())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(1500));
        // SAFETY: signalling our own child; nspawn then kills its container.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_timeout(&mut child, Duration::from_secs(30));
        let log = fs::read_to_string(scratch.path("nspawn.log")).unwrap_or_default();
        eprintln!("systemd-nspawn said: {log}");
    });
    drop(cleanup);
    assert_named(&evs, 1, &name, "nspawn", &name, "nspawn-");
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
    let ctr_ok = || {
        Command::new("ctr")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let _daemon = Daemon::start(
        Command::new("containerd"),
        &scratch.path("containerd.log"),
        ctr_ok,
    );
    let mut cleanup = Cleanup::new();
    cleanup.then("ctr", &["task", "kill", "--signal", "KILL", &id]);
    cleanup.then("sh", &["-c", "sleep 0.5"]);
    cleanup.then("ctr", &["task", "delete", "--force", &id]);
    cleanup.then("ctr", &["container", "delete", &id]);
    let rootfs = scratch.rootfs();
    let evs = watch(&id, 1, || {
        run(Command::new("ctr")
            .args(["run", "--detach", "--env", "PATH=/bin", "--rootfs"])
            .arg(&rootfs)
            .args([&id, "/bin/sh", "-c", "sleep 1000"]));
        thread::sleep(Duration::from_millis(300));
        run(Command::new("ctr").args(["task", "kill", "--signal", "KILL", &id]));
    });
    assert_named(&evs, 1, &id, "containerd", &id, "containerd-");
}
