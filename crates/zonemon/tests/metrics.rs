//! `--metrics`: a real Prometheus (Debian's `prometheus`, on loopback ports)
//! scrapes zonemon while the test makes zones, and its counters rise by
//! exactly the zones the test made; `promtool check metrics` accepts the
//! exposition.
//!
//! The machine is shared: the monitor is filtered to this test's name prefix,
//! so its counters count only this test's zones.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A port free on loopback now (the kernel picks it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `curl -sf URL`, as text; `None` when it fails.
fn get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .unwrap_or_else(|e| panic!("running curl (./dev installs it): {e}"));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Prometheus server of the test's own, killed when dropped.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) every second; waits until it is ready.
    fn start(target: &str) -> Prometheus {
        let bin = which("prometheus").expect("prometheus is not installed (./dev installs it)");
        let dir = std::env::temp_dir().join(format!("zmt-prom-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
                 scrape_configs:\n  - job_name: zonemon\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        log_to(&mut cmd, &log).unwrap();
        let mut child = cmd.spawn().expect("starting prometheus");
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        if let Err(e) = wait_ready(Some(&mut child), &log, Duration::from_secs(60), || {
            get(&ready).is_some()
        }) {
            let _ = child.kill();
            panic!("prometheus: {e}");
        }
        Prometheus { child, dir, port }
    }

    /// The value of the instant query `q`, if it has exactly one sample.
    fn query(&self, q: &str) -> Option<f64> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            q.replace(' ', "%20")
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('=', "%3D")
        );
        let v: Value = serde_json::from_str(&get(&url)?).ok()?;
        let result = v["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Waits until query `q` has the value `want` (at most 30 s); returns the last value seen.
    fn wait_value(&self, q: &str, want: f64) -> Option<f64> {
        within(Duration::from_secs(30), || self.query(q) == Some(want));
        self.query(q)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `promtool check metrics` on `exposition`; its complaints, if any.
fn promtool_check(exposition: &str, dir: &Path) -> Result<(), String> {
    let file = dir.join("exposition.txt");
    std::fs::write(&file, exposition).unwrap();
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("running promtool (./dev installs prometheus)");
    let _ = std::fs::remove_file(&file);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn prometheus_sees_transitions_rise_by_exactly_the_zones_made() {
    if !require_root("prometheus_sees_transitions_rise_by_exactly_the_zones_made") {
        return;
    }
    let p = prefix("metrics");
    let metrics_port = free_port();
    let addr = format!("127.0.0.1:{metrics_port}");
    let filter = format!("name={p}*");
    let mon = Monitor::start(&["watch", "--json", "--metrics", &addr, "--filter", &filter]);
    let prom = Prometheus::start(&addr);
    assert_eq!(
        prom.wait_value("up{job=\"zonemon\"}", 1.0),
        Some(1.0),
        "Prometheus never scraped zonemon"
    );
    let booted = "sum(zonemon_transitions_total{event=\"booted\"})";
    // Before any zone of ours: the counter is there and zero (or not yet born).
    assert!(matches!(prom.query(booted), None | Some(0.0)));

    const N: usize = 12;
    for i in 0..N {
        let code = if i % 3 == 0 { "exit 3" } else { "true" };
        run_zone(&format!("{p}{i}"), code);
    }
    assert!(
        mon.wait_for(Duration::from_secs(30), |l| count(l, &p, "down") == N),
        "zonemon did not report every zone down"
    );
    for event in ["ready", "booted", "shutdown", "down"] {
        let q = format!("sum(zonemon_transitions_total{{event=\"{event}\"}})");
        assert_eq!(prom.wait_value(&q, N as f64), Some(N as f64), "{q}");
    }
    assert_eq!(
        prom.wait_value("sum(zonemon_zones_running)", 0.0),
        Some(0.0),
        "zones still counted running after they went down"
    );
    assert_eq!(
        prom.query("zonemon_detection_latency_seconds_count"),
        Some((4 * N) as f64)
    );

    let exposition =
        get(&format!("http://{addr}/metrics")).expect("zonemon's /metrics did not answer");
    promtool_check(&exposition, &prom.dir).unwrap_or_else(|e| panic!("promtool: {e}"));
    assert!(
        get(&format!("http://{addr}/nothing-here")).is_none(),
        "404 expected"
    );
    let lines = mon.stop();
    assert_eq!(count(&lines, &p, "booted"), N);
}

#[test]
fn a_busy_metrics_address_is_a_clear_error() {
    // Needs no root: the address is refused before anything is attached.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(ZONEMON)
        .args(["watch", "--metrics", &addr])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--metrics") && err.contains(&addr), "{err}");
    let out = Command::new(ZONEMON)
        .args(["watch", "--metrics", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
