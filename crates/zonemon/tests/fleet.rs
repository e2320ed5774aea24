//! Root integration tests of the fleet (issue #11): real daemons publishing
//! their journals to a real `nats-server` (Debian's, JetStream on, a loopback
//! port, a temporary store), real zones, real consumers.
//!
//! Every daemon on this machine sees every zone of the machine, so each
//! "host" (a daemon with its own `--host-id`, journal and socket) journals
//! the zones of all of them; what must reach the fleet's consumers is, for
//! each host, exactly what its journal holds. Tests count only the zones they
//! made (by name prefix), and stop every server and daemon they started.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(180);
const LIVE: &str = "zonemon: daemon: journaling";

/// Whether `test` can run: root, and Debian's nats-server installed (under `CI=true`
/// a missing server fails the test).
fn can_run(test: &str) -> bool {
    if !require_root_for(test, "it makes PID namespaces and loads eBPF programs") {
        return false;
    }
    if which("nats-server").is_none() {
        assert!(
            !in_ci(),
            "{test} needs nats-server (apt-get install nats-server; ./dev installs it)"
        );
        eprintln!("SKIPPED {test}: no nats-server");
        return false;
    }
    true
}

/// A directory of the test's own, removed at the end.
fn workdir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zonemon-fleet-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts a `nats-server` of the test's ([`NatsServer`]) with its store in `dir`
/// (JetStream unless `jetstream` is false) and `extra` args; it must start.
fn nats_server(dir: &Path, jetstream: bool, extra: &[&str]) -> NatsServer {
    NatsServer::start(dir, jetstream, extra).expect("starting nats-server")
}

/// A `zonemon daemon` as one host of the fleet: its own host id, journal, socket and metrics.
struct Host {
    child: Option<Child>,
    id: String,
    dir: PathBuf,
    args: Vec<String>,
    stderr: Option<StderrReader>,
}

impl Host {
    /// Starts the daemon of host `id` in `dir`, publishing to `url`, and waits until it is live.
    fn start(dir: &Path, id: &str, url: &str, extra: &[&str]) -> Host {
        let dir = dir.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = vec!["daemon".into(), "--config".into(), "/dev/null".into()];
        for (flag, value) in [
            ("--journal", dir.join("journal.db").display().to_string()),
            ("--socket", dir.join("api.sock").display().to_string()),
            ("--metrics", "127.0.0.1:0".into()),
            ("--publish", url.into()),
            ("--host-id", id.into()),
        ] {
            args.push(flag.into());
            args.push(value);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut h = Host {
            child: None,
            id: id.into(),
            dir,
            args,
            stderr: None,
        };
        h.restart();
        h
    }

    /// Starts the daemon (again, on the same journal) and waits until it is live.
    fn restart(&mut self) {
        let mut child = Command::new(ZONEMON)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning zonemon daemon");
        let stderr = read_stderr(child.stderr.take().unwrap(), LIVE, 4 << 20);
        let up = stderr.ready.recv_timeout(WAIT).is_ok();
        self.child = Some(child);
        self.stderr = Some(stderr);
        assert!(up, "host {} did not come up:\n{}", self.id, self.log());
    }

    fn log(&self) -> String {
        self.stderr
            .as_ref()
            .map(|s| s.text.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// `kill -9`.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A metric's value (the daemon's newest start said where it serves them).
    fn metric(&self, name: &str) -> Option<i64> {
        let log = self.log();
        let addr = log
            .rsplit("serving metrics on http://")
            .next()
            .and_then(|rest| rest.split('/').next())?
            .to_string();
        let mut s = TcpStream::connect(addr).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Every journaled record of the zones named `prefix…`, in `seq` order.
    fn journal_of(&self, prefix: &str) -> Vec<Value> {
        let journal = self.dir.join("journal.db");
        let events = ["events", "--since", "1d", "--json", "--all", "--journal"];
        stdout_of(Command::new(ZONEMON).args(events).arg(journal))
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| named(r, prefix))
            .collect()
    }

    /// `zonemon list -p` through this host's daemon: (zone_id, name) of the zones named `prefix…`.
    fn running(&self, prefix: &str) -> BTreeSet<(u64, String)> {
        let socket = self.dir.join("api.sock");
        stdout_of(
            Command::new(ZONEMON)
                .args(["list", "-p", "--socket"])
                .arg(socket),
        )
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let id = f.next()?.parse().ok()?;
            let name = f.next()?;
            name.starts_with(prefix).then(|| (id, name.to_string()))
        })
        .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = wait_timeout(&mut c, WAIT);
        }
    }
}

/// What `cmd` prints on stdout; it must succeed.
fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running zonemon");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn named(r: &Value, prefix: &str) -> bool {
    r["name"].as_str().is_some_and(|n| n.starts_with(prefix))
}

/// (host, seq) → (event, name) of the records named `prefix…` of every host's journal.
fn journals(hosts: &[&Host], prefix: &str) -> BTreeMap<(String, u64), (String, String)> {
    let mut out = BTreeMap::new();
    for h in hosts {
        for r in h.journal_of(prefix) {
            out.insert(
                (h.id.clone(), r["seq"].as_u64().unwrap()),
                (
                    r["event"].as_str().unwrap().to_string(),
                    r["name"].as_str().unwrap().to_string(),
                ),
            );
        }
    }
    out
}

/// [`journals`] once they have settled: the journals first stop growing (a
/// zone's `down` may come seconds after its shutdown, inferred by the down
/// timer), then every host has published all of them. Only then is what a
/// consumer must get known.
fn settled_journals(hosts: &[&Host], prefix: &str) -> BTreeMap<(String, u64), (String, String)> {
    let mut want = journals(hosts, prefix);
    loop {
        thread::sleep(Duration::from_secs(3));
        for h in hosts {
            wait_until(
                WAIT,
                || format!("host {} to catch up:\n{}", h.id, h.log()),
                || h.metric("zonemon_publish_lag_records") == Some(0),
            );
        }
        let now = journals(hosts, prefix);
        if now.len() == want.len() {
            return now;
        }
        want = now;
    }
}

/// The records named `prefix…` among a fleet consumer's JSON lines: (host, seq, event, name).
fn consumed(lines: &[String], prefix: &str) -> Vec<(String, u64, String, String)> {
    parse_json(lines)
        .into_iter()
        .filter(|r| named(r, prefix))
        .map(|r| {
            (
                r["host"]
                    .as_str()
                    .expect("every fleet record has a host")
                    .to_string(),
                r["seq"].as_u64().unwrap(),
                r["event"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts `got` holds every record of `want` exactly once, in `seq` order within each host.
fn exactly_once_in_order(
    got: &[(String, u64, String, String)],
    want: &BTreeMap<(String, u64), (String, String)>,
) {
    let mut seen = BTreeSet::new();
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for (host, seq, event, name) in got {
        assert!(
            seen.insert((host.clone(), *seq)),
            "{host} seq {seq} came twice"
        );
        let prev = last.insert(host, *seq).unwrap_or(0);
        assert!(prev < *seq, "{host}: seq {seq} came after {prev}");
        assert_eq!(
            want.get(&(host.clone(), *seq)),
            Some(&(event.clone(), name.clone())),
            "{host} seq {seq} is not what its journal holds"
        );
    }
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !seen.contains(*k))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} records never reached the consumer, e.g. {missing:?}",
        want.len() - seen.len(),
        want.len()
    );
}

/// `zonemon list -p --from URL`: host → (zone_id, name) of the zones named `prefix…`.
fn fleet_list(url: &str, prefix: &str) -> BTreeMap<String, BTreeSet<(u64, String)>> {
    let text = stdout_of(Command::new(ZONEMON).args(["list", "-p", "--from", url]));
    let mut hosts: BTreeMap<String, BTreeSet<(u64, String)>> = BTreeMap::new();
    for l in text.lines() {
        let mut f = l.splitn(4, ':');
        let (Some(host), Some(id), Some(name)) = (f.next(), f.next(), f.next()) else {
            panic!("a bad line: {l}");
        };
        if name.starts_with(prefix) {
            hosts
                .entry(host.into())
                .or_default()
                .insert((id.parse().unwrap(), name.into()));
        }
    }
    hosts
}

/// Boots `n` zones named `<p>0` … one after the other (4 workers), each exiting at once;
/// counts them in `done`.
fn churn(p: &str, n: usize, done: &AtomicUsize) {
    thread::scope(|s| {
        for worker in 0..4 {
            s.spawn(move || {
                for i in (worker..n).step_by(4) {
                    run_zone(&format!("{p}{i}"), "exit 0");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
}

/// Zones per host in the churn (ZONEMON_FLEET_ZONES overrides, e.g. for a quick run).
fn zones_per_host() -> usize {
    std::env::var("ZONEMON_FLEET_ZONES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[test]
fn three_hosts_survive_a_bus_kill_and_a_daemon_kill_with_nothing_lost_or_doubled() {
    let test = "three_hosts_survive_a_bus_kill_and_a_daemon_kill_with_nothing_lost_or_doubled";
    if !can_run(test) {
        return;
    }
    let dir = workdir("three");
    let p = prefix("fleet");
    let mut nats = nats_server(&dir, true, &[]);
    let url = nats.url();
    let ids: Vec<String> = (1..=3)
        .map(|i| format!("zmt-{}-h{i}", std::process::id()))
        .collect();
    let mut hosts: Vec<Host> = ids
        .iter()
        .map(|id| Host::start(&dir, id, &url, &[]))
        .collect();
    // A consumer of the whole fleet, live through both outages.
    let consumer = Monitor::start(&["watch", "--from", &url, "--json", "--all", "--since", "10m"]);
    // Zones that stay up (for the inventory), one of which goes while host 2 is down.
    let live: Vec<BackgroundZone> = (0..3)
        .map(|i| BackgroundZone::start(&format!("{p}live-{i}"), "sleep 600"))
        .collect();
    for z in &live {
        z.wait_booted();
    }
    let mut live = live;

    let n = zones_per_host();
    let done = AtomicUsize::new(0);
    let total = 3 * n;
    thread::scope(|s| {
        for id in &ids {
            let (p, done) = (format!("{p}{id}-"), &done);
            s.spawn(move || churn(&p, n, done));
        }
        let reach = |k: usize| {
            wait_until(
                WAIT,
                || format!("{} of {total} zones churned", done.load(Ordering::Relaxed)),
                || done.load(Ordering::Relaxed) >= k,
            )
        };
        reach(total / 4);
        nats.kill9();
        thread::sleep(Duration::from_secs(2));
        nats.restart().expect("restarting nats-server");
        reach(total / 2);
        hosts[1].kill9();
        drop(live.remove(2));
        thread::sleep(Duration::from_secs(1));
        hosts[1].restart();
    });
    let started = Instant::now();

    // Every host publishes all it journaled; the consumer receives it all.
    let host_refs: Vec<&Host> = hosts.iter().collect();
    let want = settled_journals(&host_refs, &p);
    // (What never came is said by the check below.)
    within(Duration::from_secs(60), || {
        consumed(&consumer.lines(), &p).len() >= want.len()
    });
    let lines = consumer.stop();
    // A consumer started now reads the same from the stream.
    let later = Monitor::start(&["watch", "--from", &url, "--json", "--all", "--since", "1h"]);
    within(Duration::from_secs(60), || {
        consumed(&later.lines(), &p).len() >= want.len()
    });
    let later = later.stop();
    eprintln!(
        "{test}: the live consumer got {} records, a later one {}, of {}",
        consumed(&lines, &p).len(),
        consumed(&later, &p).len(),
        want.len()
    );
    for h in &hosts {
        for l in h
            .log()
            .lines()
            .filter(|l| l.contains("warning") || l.contains("again"))
        {
            eprintln!("{test}: {}: {l}", h.id);
        }
    }
    exactly_once_in_order(&consumed(&lines, &p), &want);
    exactly_once_in_order(&consumed(&later, &p), &want);
    for id in &ids {
        let zones = want
            .values()
            .filter(|(e, n)| e == "booted" && n.contains(id.as_str()));
        assert!(zones.count() > 0, "no zone of {id} was journaled");
    }
    // The restarted daemon said what it had to catch up.
    assert!(
        hosts[1].log().contains("publishing to stream ZONEMON"),
        "{}",
        hosts[1].log()
    );

    // The inventory is each host's running zones: exactly the two zones kept up (on every
    // host: each daemon sees every zone of this machine), and the bucket says the same.
    let kept: BTreeSet<String> = (0..2).map(|i| format!("{p}live-{i}")).collect();
    let names = |zones: &BTreeSet<(u64, String)>| -> BTreeSet<String> {
        zones.iter().map(|(_, n)| n.clone()).collect()
    };
    wait_until(
        WAIT,
        || {
            // What each host's daemon wrongly has running, with every record it journaled of it.
            let mut why = String::new();
            for h in &hosts {
                let running = h.running(&p);
                let extra: Vec<_> = running.iter().filter(|(_, n)| !kept.contains(n)).collect();
                let missing: Vec<_> = kept.difference(&names(&running)).cloned().collect();
                why += &format!("\nhost {}: list -p {running:?}", h.id);
                if !missing.is_empty() {
                    why += &format!("\n  missing {missing:?}");
                }
                for (id, name) in extra {
                    why += &format!("\n  still running: zone {id} {name}; its records:");
                    for r in h
                        .journal_of(name)
                        .iter()
                        .filter(|r| r["name"] == name.as_str())
                    {
                        why += &format!("\n    {r}");
                    }
                }
            }
            format!(
                "the inventory to be the zones kept up: bucket {:?}{why}",
                fleet_list(&url, &p)
            )
        },
        || {
            let fleet = fleet_list(&url, &p);
            hosts.iter().all(|h| {
                let running = h.running(&p);
                names(&running) == kept && fleet.get(&h.id) == Some(&running)
            })
        },
    );
    eprintln!(
        "{test}: {} records of {total} zones on 3 hosts, each exactly once; settled in {:?}",
        want.len(),
        started.elapsed()
    );
    drop(live);
    drop(hosts);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_durable_consumer_stopped_and_started_resumes_with_no_loss_and_no_repeat() {
    let test = "a_durable_consumer_stopped_and_started_resumes_with_no_loss_and_no_repeat";
    if !can_run(test) {
        return;
    }
    let dir = workdir("durable");
    let p = prefix("durable");
    let nats = nats_server(&dir, true, &[]);
    let url = nats.url();
    let host = Host::start(&dir, &format!("zmt-{}-d", std::process::id()), &url, &[]);
    let args = [
        "watch",
        "--from",
        &url,
        "--json",
        "--all",
        "--durable",
        "zmt-d",
        "--since",
        "10m",
    ];
    let first = Monitor::start(&args);
    let done = AtomicUsize::new(0);
    let mut lines = Vec::new();
    thread::scope(|s| {
        s.spawn(|| churn(&p, 200, &done));
        // Stopped mid-stream, then started again while the zones churn on.
        wait_until(
            WAIT,
            || "the first consumer to get 100 records".into(),
            || consumed(&first.lines(), &p).len() >= 100,
        );
        lines = first.stop_with(libc::SIGTERM).1;
    });
    assert!(
        done.load(Ordering::Relaxed) == 200,
        "the churn did not finish"
    );
    let n_first = consumed(&lines, &p).len();
    let second = Monitor::start(&args);
    // Settled: a late `down` journaled after `want` was read would reach the
    // consumer as a record its journal did not hold.
    let want = settled_journals(&[&host], &p);
    within(Duration::from_secs(60), || {
        n_first + consumed(&second.lines(), &p).len() >= want.len()
    });
    thread::sleep(Duration::from_millis(500)); // a repeat would show by now
    lines.extend(second.stop());
    exactly_once_in_order(&consumed(&lines, &p), &want);
    assert!(n_first < want.len(), "the first consumer got everything");
    drop(host);
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs a daemon that must refuse to start; returns its stderr.
fn refused(dir: &Path, id: &str, url: &str, extra: &[&str]) -> String {
    let d = dir.join(id);
    std::fs::create_dir_all(&d).unwrap();
    let mut child = Command::new(ZONEMON)
        .args([
            "daemon",
            "--config",
            "/dev/null",
            "--metrics",
            "off",
            "--publish",
            url,
        ])
        .args(["--host-id", id, "--journal"])
        .arg(d.join("journal.db"))
        .arg("--socket")
        .arg(d.join("api.sock"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = wait_timeout(&mut child, WAIT);
    assert!(!status.success(), "the daemon started:\n{err}");
    assert!(!err.contains(LIVE), "the daemon went live:\n{err}");
    err
}

#[test]
fn other_stream_settings_bad_credentials_and_no_jetstream_are_clear_errors() {
    let test = "other_stream_settings_bad_credentials_and_no_jetstream_are_clear_errors";
    if !can_run(test) {
        return;
    }
    let dir = workdir("errors");
    let id = format!("zmt-{}-e", std::process::id());

    // A stream made with other settings (by a daemon told a 1h max age).
    let nats = nats_server(&dir, true, &[]);
    drop(Host::start(
        &dir,
        &id,
        &nats.url(),
        &["--stream-max-age", "1h"],
    ));
    let e = refused(&dir, &id, &nats.url(), &[]);
    assert!(
        e.contains("exists with other settings") && e.contains("max age 1h, not 7days"),
        "{e}"
    );
    // Told the same settings, it uses the stream and says so.
    let h = Host::start(&dir, &id, &nats.url(), &["--stream-max-age", "1h"]);
    assert!(
        h.log().contains("it existed, with zonemon's settings"),
        "{}",
        h.log()
    );
    drop(h);
    drop(nats);

    // Credentials refused: said without the password.
    let secret = "s3cret-zonemon-pw";
    let nats = nats_server(
        &dir.join("auth"),
        true,
        &["--user", "zonemon", "--pass", secret],
    );
    let pw = dir.join("password");
    std::fs::write(&pw, "not-the-password\n").unwrap();
    let creds = [
        "--nats-user",
        "zonemon",
        "--nats-password-file",
        pw.to_str().unwrap(),
    ];
    let e = refused(&dir, &id, &nats.url(), &creds);
    assert!(e.contains("refused zonemon's credentials"), "{e}");
    let out = Command::new(ZONEMON)
        .args(["list", "--from", &nats.url()])
        .args(creds)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("refused zonemon's credentials"),
        "{e}"
    );
    // The right one works, and never shows.
    std::fs::write(&pw, format!("{secret}\n")).unwrap();
    let h = Host::start(&dir, &id, &nats.url(), &creds);
    assert!(!h.log().contains(secret), "{}", h.log());
    drop(h);
    // A password in the URL is refused before anything, without echoing it.
    let e = refused(
        &dir,
        &id,
        &format!("nats://zonemon:{secret}@127.0.0.1:{}", nats.port),
        &[],
    );
    assert!(
        e.contains("--nats-password-file") && !e.contains(secret),
        "{e}"
    );
    drop(nats);

    // A server without JetStream.
    let nats = nats_server(&dir.join("nojs"), false, &[]);
    let e = refused(&dir, &id, &nats.url(), &[]);
    assert!(e.contains("has no JetStream") && e.contains("-js"), "{e}");
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `zonemon wait --from URL ARGS…`, started now with its output piped.
fn wait_from(url: &str, args: &[&str]) -> Child {
    Command::new(ZONEMON)
        .args(["wait", "--from", url])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning zonemon wait --from")
}

#[test]
fn wait_from_the_fleet_sees_zones_already_gone_not_yet_born_and_published_late() {
    let test = "wait_from_the_fleet_sees_zones_already_gone_not_yet_born_and_published_late";
    if !can_run(test) {
        return;
    }
    let dir = workdir("wait");
    let p = prefix("fleet-wait");
    let mut nats = nats_server(&dir, true, &[]);
    let url = nats.url();
    let id = format!("zmt-{}-w", std::process::id());
    let host = Host::start(&dir, &id, &url, &[]);

    // A zone that shut down before the wait began: --since says it counts.
    let gone = format!("{p}gone");
    let before = unix_seconds_ago(1.0);
    assert_eq!(run_zone(&gone, "exit 7").code(), Some(7));
    let out = wait_output(&mut wait_from(
        &url,
        &[&gone, "--since", &before, "--timeout", "60s", "--json"],
    ));
    assert_eq!(out.status.code(), Some(7), "the zone's exit code; {out:?}");
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (rec["event"].as_str(), rec["host"].as_str()),
        (Some("shutdown"), Some(id.as_str())),
        "{rec}"
    );
    // Without --since only what happens from now on counts: nothing does.
    let out = wait_output(&mut wait_from(&url, &[&gone, "--timeout", "2s"]));
    assert_eq!(out.status.code(), Some(124), "{out:?}");

    // A zone that does not exist yet, waited for booted and shut down at once; the
    // wait begins when the test asks (on a loaded host the client may read its clock
    // only after the zone is gone, hence --since).
    let born = format!("{p}born");
    let since = unix_seconds_ago(1.0);
    let mut shutdown = wait_from(&url, &[&born, "--since", &since, "--timeout", "120s"]);
    let mut booted = wait_from(&url, &[&born, "--for", "booted", "--since", &since]);
    assert_eq!(run_zone(&born, "exit 3").code(), Some(3));
    let out = wait_output(&mut shutdown);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Zone {born} shutdown on {id}\n")
    );
    let out = wait_output(&mut booted);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // A zone that runs while the bus is down: its host publishes it later, and the
    // wait (following through the outage) still gets it.
    let late = format!("{p}late");
    let since = unix_seconds_ago(1.0);
    let mut waiter = wait_from(&url, &[&late, "--since", &since, "--timeout", "120s"]);
    thread::sleep(Duration::from_millis(500));
    nats.kill9();
    assert_eq!(run_zone(&late, "exit 5").code(), Some(5));
    thread::sleep(Duration::from_secs(1));
    nats.restart().expect("restarting nats-server");
    let out = wait_output(&mut waiter);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{out:?}\nhost log:\n{}",
        host.log()
    );

    // Zone ids are per host: refused across the fleet.
    let out = wait_output(&mut wait_from(&url, &["42", "--timeout", "1s"]));
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("zone ids are per host"),
        "{out:?}"
    );
    drop(host);
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
}
