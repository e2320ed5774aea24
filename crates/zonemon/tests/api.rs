//! Root tests of the local API against a real `zonemon daemon` (real journal,
//! real socket, real zones), through the real clients: `zonemon watch`,
//! `list` and `wait` with `--socket`, and raw HTTP for what a client would
//! never send.
//!
//! Each test runs a daemon of its own (`--journal` and `--socket` in a
//! temporary directory) and counts only its own zones (name prefix).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// What the daemon prints on stderr once it is live.
const LIVE: &str = "zonemon: daemon: journaling";

/// A `zonemon daemon` with its journal and socket in a directory of its own.
struct ApiDaemon {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    stderr: StderrReader,
}

impl ApiDaemon {
    /// Starts the daemon and waits until it is live.
    fn start(test: &str) -> ApiDaemon {
        let dir = std::env::temp_dir().join(format!("zonemon-api-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Others must be able to reach the socket's directory for the permission test.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.join("api.sock");
        let mut child = Command::new(ZONEMON)
            .args([
                "daemon",
                "--config",
                "/dev/null",
                "--metrics",
                "off",
                "--journal",
            ])
            .arg(dir.join("journal.db"))
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning zonemon daemon");
        let stderr = read_stderr(child.stderr.take().unwrap(), LIVE, 1 << 20);
        let mut d = ApiDaemon {
            child,
            dir,
            socket,
            stderr,
        };
        if d.stderr.ready.recv_timeout(WAIT).is_err() {
            let _ = d.child.kill();
            panic!("the daemon did not come up; stderr:\n{}", d.log());
        }
        d
    }

    fn log(&self) -> String {
        self.stderr.text.lock().unwrap().clone()
    }

    /// `zonemon ARGS --socket SOCKET`, run to its end.
    fn zonemon(&self, args: &[&str]) -> Output {
        Command::new(ZONEMON)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .stdin(Stdio::null())
            .output()
            .expect("running zonemon")
    }

    /// `zonemon ARGS --socket SOCKET` started in the background, stdout and stderr piped.
    fn spawn(&self, args: &[&str]) -> Child {
        Command::new(ZONEMON)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning zonemon")
    }

    /// `GET target` over the socket as raw HTTP; returns the status and the de-chunked body.
    fn get(&self, target: &str) -> (u16, String) {
        raw_http(
            &self.socket,
            format!("GET {target} HTTP/1.1\r\nHost: zonemon\r\n\r\n").as_bytes(),
        )
    }

    /// Every journaled record of zones whose name starts with `prefix`, in `seq` order.
    fn journal_of(&self, prefix: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!(
            "/v1/events?after=0&follow=false&filter=name%3D{prefix}*"
        ));
        assert_eq!(status, 200, "{body}");
        body.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .collect()
    }

    /// Waits until the journal holds `n` records of zones named `prefix…`.
    fn wait_journaled(&self, prefix: &str, n: usize) -> Vec<Value> {
        found_within(WAIT, || {
            let recs = self.journal_of(prefix);
            (recs.len() >= n).then_some(recs)
        })
        .unwrap_or_else(|| {
            panic!(
                "{} of {n} records of {prefix} journaled",
                self.journal_of(prefix).len()
            )
        })
    }
}

impl Drop for ApiDaemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = wait_timeout(&mut self.child, WAIT);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `request` on a new connection and reads the whole answer: status and de-chunked body.
fn raw_http(socket: &Path, request: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(socket).expect("connecting to the daemon");
    s.set_read_timeout(Some(WAIT)).unwrap();
    // A server refusing a request before it has all of it (headers too large)
    // answers and closes: the rest of the write then fails with EPIPE, and
    // the answer is still there to read.
    if let Err(e) = s.write_all(request) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "sending: {e}");
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, body.to_string());
    }
    let (mut rest, mut out) = (body, String::new());
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    (status, out)
}

/// The transitions of each zone of `records`, by name, in order.
fn transitions_by_name(records: &[Value]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut by_name = std::collections::BTreeMap::<String, Vec<String>>::new();
    for r in records {
        by_name
            .entry(r["name"].as_str().unwrap().to_string())
            .or_default()
            .push(r["event"].as_str().unwrap().to_string());
    }
    by_name
}

/// Reads `child`'s stdout line by line on a thread; returns the shared lines.
fn collect_lines(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let sink = std::sync::Arc::clone(&lines);
    thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Now, in Unix seconds (as `--since` takes it).
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn root(test: &str) -> bool {
    require_root_for(test, "to run zonemon daemon and make zones")
}

#[test]
fn replay_then_follow_across_the_seam_under_churn() {
    if !root("replay_then_follow_across_the_seam_under_churn") {
        return;
    }
    let d = ApiDaemon::start("seam");
    let p = prefix("seam");
    let began = unix_now() - 1.0;
    let n = 40;
    let churn = {
        let p = p.clone();
        thread::spawn(move || {
            for i in 0..n {
                // Two at a time: commits keep coming while the client replays and turns to follow.
                let a = BackgroundZone::start(&format!("{p}{i}a"), "exit 0");
                let b = BackgroundZone::start(&format!("{p}{i}b"), "sleep 0.01");
                a.wait();
                b.wait();
            }
        })
    };
    // The client starts when part of the churn is journaled: replay, seam, then live.
    d.wait_journaled(&p, 20);
    let since = format!("{began:.3}");
    let mut client = d.spawn(&["watch", "--json", "--since", &since]);
    let lines = collect_lines(&mut client);
    churn.join().unwrap();
    let expected = d.wait_journaled(&p, 2 * n * 4);
    let printed = || -> Vec<Value> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect()
    };
    let mine = |got: &[Value]| -> Vec<Value> {
        got.iter()
            .filter(|r| r["name"].as_str().is_some_and(|s| s.starts_with(&p)))
            .cloned()
            .collect()
    };
    // (What never came is said by the comparison below.)
    within(WAIT, || mine(&printed()).len() >= expected.len());
    let printed = printed();
    // Every line the client printed, of any zone: `seq` strictly increasing (no duplicate).
    let seqs: Vec<u64> = printed.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let got = mine(&printed);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(client.id() as i32, libc::SIGINT) };
    let status = wait_timeout(&mut client, WAIT);
    assert!(
        status.success(),
        "watch through the daemon exits 0 on SIGINT"
    );
    assert_eq!(got, expected, "exactly the journal's records, in order");
    let by_name = transitions_by_name(&got);
    assert_eq!(by_name.len(), 2 * n);
    for (name, events) in by_name {
        assert_eq!(events, ["ready", "booted", "shutdown", "down"], "{name}");
    }
}

#[test]
fn wait_for_a_zone_that_does_not_exist_yet() {
    if !root("wait_for_a_zone_that_does_not_exist_yet") {
        return;
    }
    let d = ApiDaemon::start("wait-new");
    let name = format!("{}z", prefix("wait-new"));
    // The wait begins when the test asks for it: on a loaded host the client may
    // only read its clock after the zone is gone, so say when with --since.
    let since = unix_seconds_ago(1.0);
    let mut waiter = d.spawn(&["wait", &name, "--timeout", "60s", "--since", &since]);
    let mut booted = d.spawn(&[
        "wait", &name, "--for", "booted", "--json", "--since", &since,
    ]);
    assert_eq!(run_zone(&name, "exit 3").code(), Some(3));
    let out = wait_output(&mut waiter);
    assert_eq!(out.status.code(), Some(3), "the zone's exit code; {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Zone {name} shutdown\n")
    );
    let out = wait_output(&mut booted);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (rec["event"].as_str(), rec["name"].as_str()),
        (Some("booted"), Some(name.as_str()))
    );
    assert!(rec["seq"].as_u64().is_some());
}

#[test]
fn wait_for_a_zone_already_shut_down_and_timeouts() {
    if !root("wait_for_a_zone_already_shut_down_and_timeouts") {
        return;
    }
    let d = ApiDaemon::start("wait-old");
    let name = format!("{}z", prefix("wait-old"));
    let before = unix_seconds_ago(1.0);
    assert_eq!(run_zone(&name, "exit 7").code(), Some(7));
    d.wait_journaled(&name, 4);
    // It shut down before this wait began, and --since says that counts.
    let out = d.zonemon(&["wait", &name, "--since", &before, "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    // By zone_id too.
    let id = d.journal_of(&name)[0]["zone_id"]
        .as_u64()
        .unwrap()
        .to_string();
    let out = d.zonemon(&["wait", &id, "--for", "down", "--since", &before]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Without --since, only what happens from now on counts: nothing does.
    let out = d.zonemon(&["wait", &name, "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    let out = d.zonemon(&[
        "wait",
        "no-such-zone-ever",
        "--for",
        "booted",
        "--timeout",
        "500ms",
    ]);
    assert_eq!(out.status.code(), Some(124), "{out:?}");
}

#[test]
fn wait_reports_a_killed_zone_as_128_plus_the_signal() {
    if !root("wait_reports_a_killed_zone_as_128_plus_the_signal") {
        return;
    }
    let d = ApiDaemon::start("wait-kill");
    let name = format!("{}z", prefix("wait-kill"));
    let mut waiter = d.spawn(&["wait", &name, "--timeout", "60s"]);
    let zone = BackgroundZone::start(&name, "sleep 60");
    let init = zone.wait_booted();
    // SAFETY: killing the init of the zone this test made.
    unsafe { libc::kill(init, libc::SIGKILL) };
    let out = wait_output(&mut waiter);
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    drop(zone);
}

#[test]
fn the_socket_refuses_users_outside_its_group_and_serves_members() {
    if !root("the_socket_refuses_users_outside_its_group_and_serves_members") {
        return;
    }
    // The group the daemon gives its socket to; made here if this host has none yet.
    let made = Command::new("groupadd")
        .args(["--force", "--system", "zonemon"])
        .status()
        .expect("groupadd runs");
    assert!(made.success(), "groupadd zonemon");
    let d = ApiDaemon::start("perm");
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660, "socket mode");
    let gid = group_gid("zonemon");
    assert_eq!(meta.gid(), gid, "socket group");
    let as_nobody = |groups: &[&str], args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid", "nobody", "--regid", "nogroup"])
            .args(groups)
            .arg("--")
            .arg(ZONEMON)
            .args(args)
            .arg("--socket")
            .arg(&d.socket)
            .stdin(Stdio::null())
            .output()
            .expect("setpriv runs")
    };
    let outsider = as_nobody(&["--clear-groups"], &["wait", "x", "--timeout", "1s"]);
    let err = String::from_utf8_lossy(&outsider.stderr);
    assert_eq!(outsider.status.code(), Some(125), "{err}");
    assert!(err.contains("ermission denied"), "{err}");
    let gid = gid.to_string();
    let member = as_nobody(&["--groups", &gid], &["wait", "x", "--timeout", "1s"]);
    assert_eq!(member.status.code(), Some(124), "served: {member:?}");
    let listed = as_nobody(&["--groups", &gid], &["list", "-p"]);
    let err = String::from_utf8_lossy(&listed.stderr);
    assert!(
        listed.status.success() && err.contains("through the daemon"),
        "{err}"
    );
}

#[test]
fn watch_and_list_through_the_daemon_print_as_standalone_does() {
    if !root("watch_and_list_through_the_daemon_print_as_standalone_does") {
        return;
    }
    let d = ApiDaemon::start("formats");
    let p = prefix("formats");
    // From now on (`--since`), not from whenever the client's request arrives:
    // the zone may boot before it does.
    let since = format!("{:.3}", unix_now());
    let mut text = d.spawn(&["watch", "--all", "--since", &since]);
    let lines = collect_lines(&mut text);
    let zone = BackgroundZone::start(&format!("{p}run"), "sleep 60");
    zone.wait_booted();
    d.wait_journaled(&p, 2);
    let list = d.zonemon(&["list", "-p"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    let line = listed
        .lines()
        .find(|l| l.contains(&format!(":{p}run:")))
        .unwrap_or_else(|| panic!("{p}run not listed:\n{listed}"));
    assert!(line.contains(":running:/:"), "{line}");
    assert!(String::from_utf8_lossy(&list.stderr).contains("listing through the daemon"));
    drop(zone);
    d.wait_journaled(&p, 4);
    let mine = |lines: &[String]| -> Vec<String> {
        lines.iter().filter(|l| l.contains(&p)).cloned().collect()
    };
    within(WAIT, || mine(&lines.lock().unwrap()).len() >= 4);
    assert_eq!(
        mine(&lines.lock().unwrap()),
        ["ready", "booted", "shutdown", "down"].map(|e| format!("Zone {p}run {e}"))
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(text.id() as i32, libc::SIGTERM) };
    assert!(wait_timeout(&mut text, WAIT).success());
    let mut err = String::new();
    text.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("watching through the daemon"), "{err}");
}

#[test]
fn malformed_huge_and_slow_requests_are_refused_not_obeyed() {
    if !root("malformed_huge_and_slow_requests_are_refused_not_obeyed") {
        return;
    }
    let d = ApiDaemon::start("malformed");
    let mut slow = UnixStream::connect(&d.socket).unwrap();
    slow.write_all(b"GET /v1/zo").unwrap(); // and never the rest
    for (request, status) in [
        (
            b"GET /v1/events?after=x HTTP/1.1\r\nHost: z\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"GET /v1/wait?for=exploded&name=a HTTP/1.1\r\nHost: z\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"DELETE /v1/zones HTTP/1.1\r\nHost: z\r\n\r\n".to_vec(),
            405,
        ),
        (
            b"GET /v1/zones HTTP/1.1\r\nHost: z\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
            413,
        ),
        (
            format!(
                "GET /v1/zones/{} HTTP/1.1\r\nHost: z\r\n\r\n",
                "n".repeat(10_000)
            )
            .into_bytes(),
            414,
        ),
        (b"\x16\x03\x01 not http at all\r\n\r\n".to_vec(), 400),
        (
            format!(
                "GET /v1/zones HTTP/1.1\r\nHost: z\r\nX: {}\r\n\r\n",
                "h".repeat(100_000)
            )
            .into_bytes(),
            431,
        ),
    ] {
        let (got, body) = raw_http(&d.socket, &request);
        assert_eq!(
            got,
            status,
            "{}: {body}",
            String::from_utf8_lossy(&request[..20])
        );
        // Ours carry a JSON error; what hyper's parser refuses itself has no body.
        if !body.is_empty() {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["error"].is_string(), "{body}");
        }
    }
    // The stuck client holds up nobody and is cut by the header timeout.
    assert_eq!(d.get("/v1/version").0, 200);
    slow.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(d.log().contains(LIVE), "still running");
    assert_eq!(d.get("/v1/zones").0, 200);
}

/// The id of group `name` (from `getent group`).
fn group_gid(name: &str) -> u32 {
    let out = Command::new("getent")
        .args(["group", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .unwrap_or_else(|| panic!("group {name} exists"))
}
