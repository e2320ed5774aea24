//! Runs `zonemon-bench --smoke` for real (root: it loads eBPF and makes zones)
//! and parses the table it wrote: every expected row exists, its figures parse,
//! nothing failed, and it finished in under 3 minutes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zonemon_testkit::require_root;

const BENCH: &str = env!("CARGO_BIN_EXE_zonemon-bench");

/// Builds zonemon (release) and returns its path.
fn zonemon() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "zonemon"])
        .current_dir(&workspace)
        .status()
        .expect("running cargo build -p zonemon");
    assert!(st.success(), "cargo build --release -p zonemon failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let path = target.join("release/zonemon");
    assert!(path.is_file(), "no {}", path.display());
    path
}

/// The first number in `s` (e.g. `1.025` in `ratio 1.025 (…)`).
fn first_number(s: &str) -> Option<f64> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let digits: String = s[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().ok()
}

/// Table rows by measure: [zonemon, comparison, target, verdict].
fn parse_table(md: &str) -> Vec<(String, [String; 4])> {
    let mut lines = md.lines().skip_while(|l| !l.starts_with("| measure |"));
    let header = lines.next().expect("no table header");
    assert_eq!(
        header,
        "| measure | zonemon | comparison | target | verdict |"
    );
    assert!(lines.next().unwrap().starts_with("| ---"));
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<String> = l
                .trim()
                .trim_start_matches('|')
                .trim_end_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            assert_eq!(cells.len(), 5, "row without 5 cells: {l}");
            (
                cells[0].clone(),
                [
                    cells[1].clone(),
                    cells[2].clone(),
                    cells[3].clone(),
                    cells[4].clone(),
                ],
            )
        })
        .collect()
}

#[test]
fn smoke_mode_runs_and_its_table_parses() {
    if !require_root("smoke_mode_runs_and_its_table_parses") {
        return;
    }
    let zonemon = zonemon();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-smoke-{}", std::process::id()));
    let out = dir.join("results.md");
    let t0 = Instant::now();
    let run = Command::new(BENCH)
        .arg("--smoke")
        .arg("--zonemon")
        .arg(&zonemon)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("running zonemon-bench");
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "zonemon-bench --smoke failed ({}):\n{stderr}",
        run.status
    );
    // Not a timing target (that is the benchmark's job): a guard against a hang. On a
    // quiet machine the smoke run takes under 3 minutes; on one loaded by thousands of
    // other zones it took 6.
    assert!(
        took < Duration::from_secs(15 * 60),
        "smoke mode took {took:?} (a hang guard: 15 minutes)"
    );

    let md = std::fs::read_to_string(&out).expect("reading the report");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        md.trim(),
        "printed and written tables differ"
    );
    for key in ["command", "kernel", "CPUs", "memory"] {
        assert!(
            md.contains(&format!("- **{key}**: ")),
            "no {key} in the report header"
        );
    }
    let rows = parse_table(&md);
    let by: HashMap<&str, &[String; 4]> = rows.iter().map(|(m, c)| (m.as_str(), c)).collect();
    let find = |prefix: &str| -> &[String; 4] {
        by.iter()
            .find(|(m, _)| m.starts_with(prefix))
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("no row `{prefix}…` in:\n{md}"))
    };
    for (m, c) in &rows {
        assert!(
            ["PASS", "MISS", "UNCLEAR (noise)", "info", "not run"].contains(&c[3].as_str()),
            "row `{m}` has verdict {}: {}",
            c[3],
            c[0]
        );
    }
    // Rows that must carry a measured figure.
    let measured = [
        "Host cost: fork+exec+exit",
        "BPF cost per call: sched_process_fork",
        "BPF cost per call: sched_prepare_exec",
        "BPF cost per call: sched_process_exit",
        "BPF cost per call: sched_process_free",
        "BPF cost per fork+exec+exit cycle",
        "Detection latency",
        "Completeness under churn, 1 at a time",
        "Completeness under churn, 8 at a time",
        "Completeness under churn, 32 at a time",
        "Idle cost over 5 s",
        "Throughput: highest zone rate",
        "zonemon CPU per transition",
        "Memory: zonemon peak RSS (VmHWM) after 1000 zones",
        "Scale: zonemon CPU per transition",
        "Scale: detection latency",
        "Scale: zonemon peak RSS",
        "Daemon idle over",
        "Daemon: detection latency to a client of its API",
        "Daemon: zone rate journaled with zero loss",
        "Daemon: cost per journaled record",
        "Daemon: peak RSS (VmHWM) after",
    ];
    for prefix in measured {
        let c = find(prefix);
        assert!(
            first_number(&c[0]).is_some(),
            "row `{prefix}`: no number in `{}`",
            c[0]
        );
    }
    // The fleet's rows need nats-server (./dev installs it; under CI=true it must be there).
    if zonemon_testkit::which("nats-server").is_some() || zonemon_testkit::in_ci() {
        for prefix in [
            "Fleet: latency from the kernel's timestamp to a fleet consumer",
            "Fleet: catch-up after a",
            "Fleet: sustained publishing rate",
            "Fleet: hosts one nats-server on this machine takes",
        ] {
            let c = find(prefix);
            assert!(
                first_number(&c[0]).is_some(),
                "row `{prefix}`: no number in `{}`",
                c[0]
            );
        }
    }
    let ratio = first_number(&find("Host cost")[0]).unwrap();
    assert!(
        ratio > 0.5 && ratio < 2.0,
        "implausible host-cost ratio {ratio}"
    );
    assert!(find("Detection latency")[0].starts_with("p50 "));
    for p in [1, 8, 32] {
        let c = find(&format!("Completeness under churn, {p} at a time"));
        let share = first_number(&c[0]).unwrap();
        assert!((0.0..=100.0).contains(&share));
        // Each comparison source: a share, or said to be unavailable.
        for part in c[1].split("; ") {
            assert!(
                part.contains("n/a (source unavailable)") || part.contains('%'),
                "churn comparison `{part}`"
            );
        }
    }
    // Rows that may say why they were not measured.
    let mut optional = vec!["Memory: zonemon peak RSS (VmHWM) after 100000 zones".to_string()];
    for consumer in ["fast consumer", "slow consumer, 50 ms per line"] {
        for what in [
            "container start: who reported first",
            "container stop: who reported first",
            "missed starts+stops",
        ] {
            optional.push(format!(
                "vs docker events ({consumer}, 10 containers): {what}"
            ));
        }
    }
    for prefix in &optional {
        let c = find(prefix);
        assert!(
            first_number(&c[0]).is_some() || c[0].starts_with("n/a") || c[0].starts_with("skipped"),
            "row `{prefix}`: neither a figure nor a reason: `{}`",
            c[0]
        );
    }
    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("reading the SVG");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    eprintln!("zonemon-bench --smoke took {took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn finds_numbers() {
    assert_eq!(first_number("ratio 1.025 (x)"), Some(1.025));
    assert_eq!(first_number("n/a (source unavailable)"), None);
}
