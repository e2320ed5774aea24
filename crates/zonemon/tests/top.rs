//! `zonemon top` in a real terminal: each test runs it in a tmux session of
//! its own (a private tmux server, `tmux -L`), boots real zones with a name
//! prefix of its own, reads the screen with `capture-pane` and types with
//! `send-keys`. Only the test's own zones are looked for (the machine is
//! shared); every wait has a generous deadline and no timing is asserted.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::daemon::TestDaemon;
use common::*;

/// How long a test waits for the screen to show something.
const WAIT: Duration = Duration::from_secs(30);

/// A tmux server of the test's own running one command in a 160×40 pane; killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `zonemon ARGS` in a new pane; after it exits the pane shows `EXIT=<status>`.
    fn start(test: &str, args: &[&str]) -> Tmux {
        let socket = format!("zmt-top-{test}-{}", std::process::id());
        let mut shell = quote(ZONEMON);
        for a in args {
            shell.push(' ');
            shell.push_str(&quote(a));
        }
        shell.push_str("; echo EXIT=$?; sleep 600");
        let t = Tmux { socket };
        let _ = t.tmux(&["kill-server"]);
        let out = t.tmux(&[
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "40",
            "-s",
            "top",
            &shell,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux")
    }

    /// The pane's text now.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "top"]).stdout)
            .into_owned()
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "top", "-l", text]);
    }

    /// Presses keys by tmux's names (`Enter`, `BSpace`, `q`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Waits until the screen passes `done`; panics with `what` and the screen after [`WAIT`].
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        found_within(WAIT, || Some(self.screen()).filter(|s| done(s)))
            .unwrap_or_else(|| panic!("never {what}; the screen:\n{}", self.screen()))
    }

    /// `#{name}` of the pane (e.g. `alternate_on`, `pane_pid`).
    fn pane(&self, name: &str) -> String {
        let out = self.tmux(&[
            "display-message",
            "-p",
            "-t",
            "top",
            &format!("#{{{name}}}"),
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits for `zonemon top` to exit and checks it exited 0 and gave the terminal back.
    fn assert_left_cleanly(&self) {
        let s = self.wait_for("exited", |s| s.contains("EXIT="));
        assert!(s.contains("EXIT=0"), "exit status not 0:\n{s}");
        assert!(
            !s.contains("q quit"),
            "the view is still on the screen:\n{s}"
        );
        assert_eq!(
            self.pane("alternate_on"),
            "0",
            "the alternate screen was not left"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// `s` single-quoted for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Whether the test may run: root and tmux; under `CI=true` their absence fails the test.
fn may_run(test: &str) -> bool {
    require_root_and_program(
        test,
        "it makes PID namespaces and loads eBPF programs",
        "tmux",
    )
}

/// Whether a row of the zone table starts with `name` (event log lines start with a time).
fn row(screen: &str, name: &str) -> bool {
    screen.lines().any(|l| l.starts_with(name))
}

/// Boots a zone named `name` that runs until dropped.
fn zone(name: &str) -> BackgroundZone {
    let z = BackgroundZone::start(name, "sleep 600");
    z.wait_booted();
    z
}

/// A zone whose name is any bytes (busybox's hostname sets them; util-linux's refuses
/// control characters), killed with everything it started when dropped.
struct HostileZone(std::process::Child);

impl HostileZone {
    fn start(name: &str) -> HostileZone {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--uts",
            "sh",
            "-c",
            "busybox hostname \"$1\" && exec unshare --pid --fork --kill-child sleep 600",
            "sh",
            name,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        HostileZone(cmd.spawn().expect("spawning unshare"))
    }
}

impl Drop for HostileZone {
    fn drop(&mut self) {
        // SAFETY: killing the process group this test made.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

#[test]
fn top_standalone_shows_zones_come_and_go_filters_escapes_and_quits() {
    if !may_run("top_standalone_shows_zones_come_and_go_filters_escapes_and_quits") {
        return;
    }
    let p = prefix("top");
    let t = Tmux::start("standalone", &["top", "--standalone"]);
    t.wait_for("went live", |s| s.contains("watching ("));
    // Only this test's zones: typed as a filter, as a person would.
    t.keys(&["/"]);
    t.type_text(&p);
    t.keys(&["Enter"]);
    let web = zone(&format!("{p}web-1"));
    let db = zone(&format!("{p}db-1"));
    let started = Instant::now();
    t.wait_for("showed both zones", |s| {
        row(s, &format!("{p}web-1")) && row(s, &format!("{p}db-1"))
    });
    eprintln!("both zones shown {:?} after they booted", started.elapsed());

    // Typing narrows the table (and the log) as it goes.
    t.keys(&["/"]);
    t.type_text("web");
    let s = t.wait_for("narrowed to web-1", |s| {
        row(s, &format!("{p}web-1")) && !s.contains(&format!("{p}db-1"))
    });
    assert!(s.contains(&format!("filter: {p}web")), "{s}");
    t.keys(&["BSpace", "BSpace", "BSpace", "Enter"]);
    t.wait_for("showed db-1 again", |s| row(s, &format!("{p}db-1")));

    // A zone that goes down leaves the table (its events stay in the log).
    drop(db);
    let s = t.wait_for("dropped db-1", |s| !row(s, &format!("{p}db-1")));
    assert!(row(&s, &format!("{p}web-1")), "{s}");
    assert!(
        s.contains(&format!("down     {p}db-1")),
        "the log says so:\n{s}"
    );

    // A hostile name is shown escaped: its escape sequence never reaches the terminal.
    let evil = HostileZone::start(&format!("{p}evil\u{1b}[31mred\u{7}"));
    let s = t.wait_for("showed the hostile zone", |s| {
        s.contains(&format!("{p}evil\\x1b[31mred\\x07"))
    });
    assert!(!s.contains(&format!("{p}evilred")), "{s}");
    let colored = t.tmux(&["capture-pane", "-p", "-e", "-t", "top"]).stdout;
    let colored = String::from_utf8_lossy(&colored);
    assert!(!colored.contains("\u{7}"), "a BEL reached the terminal");

    // q leaves: exit status 0, the terminal given back.
    t.keys(&["q"]);
    t.assert_left_cleanly();
    drop((web, evil));
}

#[test]
fn top_through_the_daemon_shows_its_zones_and_stops_on_sigterm() {
    if !may_run("top_through_the_daemon_shows_its_zones_and_stops_on_sigterm") {
        return;
    }
    let p = prefix("topd");
    let dir = TestDaemon::workdir("top");
    let d = TestDaemon::start(dir.clone(), "", &["--metrics", "off"]);
    let socket = dir.join("api.sock");
    // Running before top starts: shown from the daemon's list of running zones.
    let before = zone(&format!("{p}before"));
    let filter = format!("name={p}*");
    let t = Tmux::start(
        "daemon",
        &[
            "top",
            "--socket",
            socket.to_str().unwrap(),
            "--filter",
            &filter,
        ],
    );
    let s = t.wait_for("showed the zone running before", |s| {
        row(s, &format!("{p}before"))
    });
    assert!(
        s.contains(&format!("daemon {}", socket.display())),
        "the source is the daemon:\n{s}"
    );
    let after = zone(&format!("{p}after"));
    t.wait_for("showed the new zone", |s| row(s, &format!("{p}after")));
    drop(after);
    t.wait_for("dropped the zone gone down", |s| {
        !row(s, &format!("{p}after"))
    });

    // SIGTERM to zonemon (the pane's shell's child): it leaves cleanly.
    let shell: i32 = t.pane("pane_pid").parse().expect("the pane's pid");
    let top = children(shell)
        .into_iter()
        .find(|&pid| comm(pid).as_deref() == Some("zonemon"))
        .expect("zonemon runs in the pane");
    // SAFETY: signalling the process this test started.
    unsafe { libc::kill(top, libc::SIGTERM) };
    t.assert_left_cleanly();
    drop((before, d));
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

#[test]
fn top_and_timeline_from_the_fleet_show_hosts_and_their_zones() {
    let test = "top_and_timeline_from_the_fleet_show_hosts_and_their_zones";
    if !may_run(test) || !require_root_and_program(test, "it makes PID namespaces", "nats-server") {
        return;
    }
    let p = prefix("topf");
    let dir = TestDaemon::workdir("topfleet");
    let nats = NatsServer::start(&dir, true, &[]).expect("starting nats-server");
    let host = format!("h-top-{}", std::process::id());
    let d = TestDaemon::start(
        dir.clone(),
        "",
        &[
            "--metrics",
            "off",
            "--publish",
            &nats.url(),
            "--host-id",
            &host,
        ],
    );
    // Running since before what top reads again of the stream (10 s): only the fleet's
    // bucket can list it.
    let early = zone(&format!("{p}early"));
    thread::sleep(Duration::from_secs(12));
    let filter = format!("name={p}*");
    let t = Tmux::start(
        "fleet",
        &["top", "--from", &nats.url(), "--filter", &filter],
    );
    t.wait_for("followed the fleet", |s| s.contains("watching the fleet"));
    t.wait_for("showed the zone running before", |s| {
        s.lines()
            .any(|l| l.starts_with(&host) && l.contains(&format!("{p}early")))
    });
    let z = zone(&format!("{p}far"));
    let s = t.wait_for("showed the fleet's zone", |s| {
        s.lines()
            .any(|l| l.starts_with(&host) && l.contains(&format!("{p}far")))
    });
    assert!(
        s.lines().any(|l| l.starts_with("HOST")),
        "a host column:\n{s}"
    );
    drop(z);
    t.wait_for("dropped the zone gone down", |s| {
        !s.lines()
            .any(|l| l.starts_with(&host) && l.contains(&format!("{p}far")))
    });
    t.keys(&["q"]);
    t.assert_left_cleanly();

    // `zonemon timeline --from` draws the fleet's zones, a row per host and name.
    let svg = dir.join("fleet.svg");
    let st = Command::new(ZONEMON)
        .args([
            "timeline",
            "--from",
            &nats.url(),
            "--since",
            "10m",
            "--filter",
            &filter,
        ])
        .arg("--out")
        .arg(&svg)
        .status()
        .expect("running zonemon timeline");
    assert!(st.success());
    let text = std::fs::read_to_string(&svg).unwrap();
    for name in ["early", "far"] {
        let row = format!("data-name=\"{host}: {p}{name}\"");
        assert!(text.contains(&row), "no row {row} in\n{text}");
    }
    drop((early, d, nats));
}
