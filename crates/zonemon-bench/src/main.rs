//! `zonemon-bench`: proves the seed's claim in numbers. One command measures,
//! side by side on this machine, what zonemon's eBPF source costs the host,
//! how soon it reports, whether it misses anything under churn, what it costs
//! idle, how fast it can go and how much memory it needs — against the proc
//! connector, /proc polling, a `zonemon list -p` loop and `docker events` —
//! and writes one Markdown table and one SVG picture.

mod churn;
mod context;
mod daemon;
mod docker_events;
mod fleet;
mod guard;
mod host_cost;
mod idle;
mod latency;
mod machine;
mod memory;
mod monitor;
mod nop_bpf;
mod procstat;
mod scale;
mod stats;
mod svg;
mod table;
mod throughput;
mod tracefs;
mod zones;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::context::{comparison_sources, Ctx, Plan};
use crate::monitor::Monitor;
use crate::table::{Report, Verdict};
use crate::zones::Helpers;

/// Benchmarks zonemon against polling, the proc connector and `docker events`, in one run.
///
/// Needs root (it loads eBPF programs through zonemon and makes PID namespaces).
/// Prints one Markdown table and writes it, with the machine and the command,
/// to --out; draws detection latency and completeness under churn into an SVG
/// next to it. Exits non-zero only on a genuine error, never on a missed target.
#[derive(Debug, Parser)]
#[command(name = "zonemon-bench", version)]
struct Args {
    /// Short run for CI (under 3 minutes): fewer zones and repetitions, a 5 s idle window, no 100,000-zone memory run.
    #[arg(long)]
    smoke: bool,
    /// The zonemon binary to measure (default: `zonemon` next to this binary, else target/release/zonemon).
    #[arg(long, value_name = "PATH")]
    zonemon: Option<PathBuf>,
    /// Where to write the Markdown report; the SVG goes next to it with the extension .svg.
    #[arg(long, value_name = "FILE", default_value = "bench/results.md")]
    out: PathBuf,
    /// Run only these measurements (comma-separated: host-cost,latency,churn,idle,throughput,memory,scale,daemon,fleet,docker); `daemon:PART` runs one part of the daemon's (idle, latency, hooks, throughput); `docker:events` is the measured part of `docker`; `docker:trace` is a diagnostic no full run includes (why docker is sometimes first with a start: 500 containers while a trace of runc's init runs; its syscall event slows every system call on the host meanwhile).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    only: Vec<String>,
}

/// A measurement: adds its rows to the report.
type Measure = fn(&Ctx, &mut Report) -> Result<()>;

/// The measurements, in table order.
const MEASUREMENTS: [(&str, Measure); 10] = [
    ("host-cost", host_cost::run),
    ("latency", latency::run),
    ("churn", churn::run),
    ("idle", idle::run),
    ("throughput", throughput::run),
    ("memory", memory::run),
    ("scale", scale::run),
    ("daemon", daemon::run),
    ("fleet", fleet::run),
    ("docker", docker_events::run),
];

fn find_zonemon(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--zonemon {}: no such file", p.display());
        }
        return Ok(p);
    }
    let mut candidates = Vec::new();
    if let Ok(me) = std::env::current_exe() {
        candidates.push(me.with_file_name("zonemon"));
    }
    candidates.push(PathBuf::from("target/release/zonemon"));
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/zonemon"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| p.canonicalize().unwrap_or(p))
        .context("no zonemon binary found: build it with `cargo build --release -p zonemon` or pass --zonemon PATH")
}

/// Quotes a command-line word for a POSIX shell when needed.
fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// Which comparison sources this zonemon offers: each is started once and stopped.
fn probe_sources(zonemon: &Path, prefix: &str) -> Vec<(monitor::Source, Result<(), String>)> {
    comparison_sources()
        .into_iter()
        .map(|s| {
            let r = match Monitor::start(zonemon, &s.args(), prefix, None) {
                Ok(m) => m.stop().map(|_| ()).map_err(|e| format!("{e:#}")),
                Err(e) => Err(e.to_string().lines().next().unwrap_or("").to_string()),
            };
            (s, r)
        })
        .collect()
}

fn run(args: &Args) -> Result<bool> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("zonemon-bench needs root: it loads eBPF programs (through zonemon), makes PID namespaces and sets kernel.bpf_stats_enabled; run it with sudo");
    }
    guard::install_signal_handler()?;
    let started = Instant::now();
    let zonemon = find_zonemon(args.zonemon.clone())?;
    let plan = Plan::new(args.smoke);
    let pid = std::process::id();
    let prefix = format!(
        "zmb{pid}x{:x}-",
        (stats::realtime_ns() / 1_000_000_000) as u64 & 0xffff
    );
    let tmp = std::env::temp_dir().join(format!("zonemon-bench-{pid}"));
    let tmp_clean = tmp.clone();
    guard::on_exit(move || {
        let _ = std::fs::remove_dir_all(&tmp_clean);
    });
    let helpers = Helpers::build(&tmp)?;
    let command = std::env::args()
        .map(|a| shell_word(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut rep = Report::default();
    rep.header.push((
        "command".into(),
        format!(
            "`{command}` (run as root from {})",
            std::env::current_dir()?.display()
        ),
    ));
    rep.header
        .push(("date".into(), stats::fmt_utc(stats::realtime_ns())));
    rep.header.push((
        "mode".into(),
        if args.smoke {
            "smoke (CI: small numbers)".into()
        } else {
            "full".into()
        },
    ));
    rep.header.extend(machine::describe(&zonemon));

    eprintln!(
        "zonemon-bench: zonemon {}, zones named {prefix}…",
        zonemon.display()
    );
    let (probe, ebpf_default) = monitor::start_ebpf(&zonemon, &prefix, None, &[])?;
    probe.stop()?;
    let sources = probe_sources(&zonemon, &prefix);
    if ebpf_default {
        rep.note("This zonemon has no --source flag: its default source (eBPF) was used as the eBPF source.");
    }
    for (s, r) in &sources {
        if let Err(why) = r {
            rep.note(format!(
                "{} source unavailable in this zonemon ({}): {why}",
                s.label(),
                s.args().join(" ")
            ));
        }
    }
    let ctx = Ctx {
        zonemon: zonemon.clone(),
        plan,
        prefix,
        helpers,
        ebpf_default,
        sources,
        only: context::Only(args.only.clone()),
    };
    let mut failed = false;
    // The CPU time the hypervisor took from this VM during each measurement (`steal`):
    // a run whose figures moved with it says so in its header.
    let mut steals = Vec::new();
    for (name, measure) in MEASUREMENTS {
        if !ctx.only.selected(name) {
            continue;
        }
        eprintln!(
            "zonemon-bench: measuring {name} ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let cpu0 = machine::CpuTimes::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| measure(&ctx, &mut rep)));
        let err = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(p) => Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
            ),
        };
        if let Some(e) = err {
            failed = true;
            eprintln!("zonemon-bench: {name} failed: {e}");
            rep.row(
                &format!("{name} (measurement failed)"),
                &format!("error: {e}"),
                "",
                "",
                Verdict::Error,
            );
        }
        let steal = cpu0
            .zip(machine::CpuTimes::now())
            .and_then(|(a, b)| a.steal_percent_until(&b));
        let steal_text = steal.map_or_else(|| "unknown".to_string(), |p| format!("{p:.1} %"));
        steals.push(format!("{name} {steal_text}"));
        eprintln!(
            "zonemon-bench: {name} took {:.0} s (steal {steal_text})",
            t.elapsed().as_secs_f64()
        );
        if guard::closing() {
            break;
        }
    }
    guard::halt_if_interrupted();
    rep.header.push((
        "CPU time taken by the hypervisor (steal), by measurement".into(),
        steals.join(", "),
    ));
    rep.header.push((
        "duration".into(),
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    ));

    let svg_path = args.out.with_extension("svg");
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let svg_name = svg_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let md = rep.markdown(svg_name.as_deref());
    std::fs::write(&args.out, &md).with_context(|| format!("writing {}", args.out.display()))?;
    let title = format!(
        "zonemon {} — {}",
        if ctx.plan.smoke {
            "smoke benchmark"
        } else {
            "benchmark"
        },
        rep.header
            .iter()
            .find(|(k, _)| k == "kernel")
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    );
    std::fs::write(&svg_path, svg::draw(&title, &rep.latency, &rep.churn))
        .with_context(|| format!("writing {}", svg_path.display()))?;
    println!("{md}");
    eprintln!(
        "zonemon-bench: wrote {} and {}",
        args.out.display(),
        svg_path.display()
    );
    Ok(!failed)
}

fn main() {
    let args = Args::parse();
    let outcome = catch_unwind(AssertUnwindSafe(|| run(&args)));
    guard::halt_if_interrupted();
    guard::run_all();
    let code = match outcome {
        Ok(Ok(true)) => 0,
        Ok(Ok(false)) => {
            eprintln!("zonemon-bench: some measurements failed (see the ERROR rows)");
            1
        }
        Ok(Err(e)) => {
            eprintln!("zonemon-bench: {e:#}");
            1
        }
        Err(_) => 101,
    };
    // Give the reader threads no chance to outlive the cleanup.
    std::thread::sleep(Duration::from_millis(10));
    std::process::exit(code);
}
