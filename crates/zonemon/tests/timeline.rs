//! Root integration tests of `zonemon timeline` (issue #13): a real daemon
//! journals zones the test makes (restarts, exit codes, a signal, an OOM
//! kill); the SVG is parsed and checked for them, and the HTML is opened in
//! headless Chromium, its rendered DOM checked and a screenshot kept
//! (`target/test-artifacts/timeline.png`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::daemon::{TestDaemon, WAIT};
use common::*;

/// Makes the test's zones under a daemon; returns it once every zone is down in its journal.
fn journaled_zones(test: &str, p: &str) -> TestDaemon {
    let d = TestDaemon::start(TestDaemon::workdir(test), "", &["--metrics", "off"]);
    for script in ["exit 0", "exit 3", "exit 0"] {
        run_zone(&format!("{p}web"), script);
    }
    // Killed from the host: a namespace's init ignores SIGKILL from within.
    let db = BackgroundZone::start(&format!("{p}db"), "exec sleep 100");
    let init = db.wait_booted();
    // SAFETY: killing the zone's init we started.
    unsafe { libc::kill(init, libc::SIGKILL) };
    db.wait();
    let cg = MemCg::new(&format!("{p}cg"), 16 << 20).expect("a memory cgroup");
    run_zone(&format!("{p}hog"), &cg.enter(&format!("exec {MEMORY_HOG}")));
    let downs = || {
        d.journal_of(p)
            .iter()
            .filter(|r| r["event"] == "down")
            .count()
    };
    wait_until(
        WAIT,
        || format!("the journal has {} of the zones' 5 downs", downs()),
        || downs() >= 5,
    );
    d
}

/// `zonemon timeline` of the test's zones of the last 10 minutes into `out`.
fn timeline(d: &TestDaemon, p: &str, out: &Path) {
    let journal = d.journal();
    timeline_from(
        p,
        out,
        &["--since", "10m", "--journal", journal.to_str().unwrap()],
    );
}

/// `zonemon timeline ARGS` of the test's zones into `out`.
fn timeline_from(p: &str, out: &Path, args: &[&str]) {
    let st = Command::new(ZONEMON)
        .args(["timeline", "--filter", &format!("name={p}*")])
        .args(args)
        .arg("--out")
        .arg(out)
        .status()
        .expect("running zonemon timeline");
    assert!(st.success());
}

/// `unix_s` (seconds since the Unix epoch) as RFC 3339 UTC, by date(1).
fn rfc3339(unix_s: u64) -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ", "-d"])
        .arg(format!("@{unix_s}"))
        .output()
        .expect("running date");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_svg_shows_each_zones_lives_and_exits() {
    if !require_root("the_svg_shows_each_zones_lives_and_exits") {
        return;
    }
    let p = prefix("tlsvg");
    let d = journaled_zones("tlsvg", &p);
    let out = d.out().join("t.svg");
    timeline(&d, &p, &out);
    let text = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let mut rows: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
    for row in doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("row"))
    {
        let name = row.attribute("data-name").unwrap().to_string();
        let lives: u64 = row
            .children()
            .filter(|n| n.attribute("class") == Some("life"))
            .map(|n| n.attribute("data-lives").unwrap().parse::<u64>().unwrap())
            .sum();
        let marks = row
            .children()
            .filter_map(|n| {
                n.attribute("class")?
                    .strip_prefix("exit ")
                    .map(String::from)
            })
            .collect();
        rows.insert(name, (lives, marks));
    }
    assert_eq!(rows.len(), 3, "only the test's zones: {rows:?}");
    let web = &rows[&format!("{p}web")];
    assert_eq!(web.0, 3, "three lives on one row");
    // Lives of one second may merge into one bar, which marks its worst end.
    assert!(web.1.contains(&"nonzero".to_string()), "{web:?}");
    assert_eq!(rows[&format!("{p}db")], (1, vec!["signal".to_string()]));
    assert_eq!(rows[&format!("{p}hog")], (1, vec!["oom".to_string()]));

    // Through the daemon's API (--socket) the picture of the same span is the journal's.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (since, until) = (rfc3339(now - 600), rfc3339(now + 1));
    let (from_file, from_api) = (d.out().join("file.svg"), d.out().join("api.svg"));
    let journal = d.journal();
    let socket = journal.with_file_name("api.sock");
    let span = ["--since", since.as_str(), "--until", until.as_str()];
    timeline_from(
        &p,
        &from_file,
        &[&span[..], &["--journal", journal.to_str().unwrap()]].concat(),
    );
    timeline_from(
        &p,
        &from_api,
        &[&span[..], &["--socket", socket.to_str().unwrap()]].concat(),
    );
    let (file_svg, api_svg) = (
        std::fs::read_to_string(&from_file).unwrap(),
        std::fs::read_to_string(&from_api).unwrap(),
    );
    assert!(file_svg.contains(&format!("{p}hog")), "{file_svg}");
    assert_eq!(
        api_svg, file_svg,
        "the daemon's records draw the same picture"
    );
}

#[test]
fn the_html_renders_in_chromium() {
    if !require_root("the_html_renders_in_chromium") {
        return;
    }
    let Some(chromium) = which("chromium") else {
        assert!(
            !in_ci(),
            "CI=true: chromium (Debian package chromium) is missing"
        );
        eprintln!("the_html_renders_in_chromium: no chromium; skipped");
        return;
    };
    let p = prefix("tlhtml");
    let d = journaled_zones("tlhtml", &p);
    let out = d.out().join("t.html");
    timeline(&d, &p, &out);
    let url = format!("file://{}", out.display());
    let headless = |extra: &[&str]| {
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
            ])
            .arg(format!(
                "--user-data-dir={}",
                d.out().join("chromium").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .expect("running chromium")
    };
    let dom = headless(&["--dump-dom"]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    for zone in ["web", "db", "hog"] {
        assert!(
            dom_text.contains(&format!("data-name=\"{p}{zone}\"")),
            "the rendered DOM lacks {zone}: {}",
            String::from_utf8_lossy(&dom.stderr)
        );
    }
    assert!(dom_text.contains("5 lives of 3 zone names"), "{dom_text}");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("timeline.png");
    let _ = std::fs::remove_file(&png);
    headless(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1280,400",
    ]);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "no screenshot at {}", png.display());
}
