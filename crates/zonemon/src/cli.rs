//! The command line. The rest of the program sees only plain option structs.

use clap::{Args, Parser, Subcommand};

use std::time::Duration;

use clap::ValueEnum;

use crate::api::{ViaDaemon, WaitArgs, WatchViaDaemon};
use crate::sources::SourceKind;
use crate::watch::{Priority, WatchOptions};

/// Tells you the instant a zone boots or shuts down.
///
/// A zone is any process tree in its own PID namespace, whichever runtime made
/// it (Docker, Podman, containerd, LXC, systemd-nspawn, runc, crun, unshare).
/// zonemon watches the kernel through eBPF (no polling) and prints the seed's
/// lines: `Zone aap booted`, `Zone aap shutdown`.
#[derive(Debug, Parser)]
#[command(name = "zonemon", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    watch: WatchArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch zones boot and shut down, one line per transition, until interrupted (the default).
    ///
    /// Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF.
    /// SIGINT or SIGTERM stop it cleanly (exit status 0).
    Watch(WatchArgs),
    /// List the zones running now (from /proc; no BPF, no root needed for your own processes).
    List(ListArgs),
    /// Wait until a zone boots, shuts down or goes down, through the daemon (as `docker wait`).
    ///
    /// The zone need not exist yet, and a zone that already did it since the wait began
    /// (or since --since) counts: no race with a zone that lives a millisecond.
    Wait(WaitArgs),
}

#[derive(Debug, Args)]
struct WatchArgs {
    /// Print JSON Lines, one object per transition, every transition (schema in README.md).
    #[arg(long)]
    json: bool,
    /// Also print `ready` (the zone's init exists) and `down` (its last process is gone).
    #[arg(long)]
    all: bool,
    /// Prefix each text line with the kernel's time of the transition (RFC 3339, UTC).
    #[arg(long)]
    timestamps: bool,
    /// First report the zones already running, as `running` (JSON: "event":"running","initial":true).
    #[arg(long)]
    initial: bool,
    /// How zonemon competes for a CPU when a zone event wakes it: `normal`; `high` (nice -10: on a
    /// busy host it gets the CPU at once); `realtime` (SCHED_FIFO 1: lowest latency, as `chrt -f 1`).
    #[arg(long, value_enum, default_value_t = PriorityArg::High)]
    priority: PriorityArg,
    /// At exit, print on stderr one JSON line with what the event path cost (per observation,
    /// and the runtime name lookups within it: p50, p99, share).
    #[arg(long)]
    stats: bool,
    /// Size of the kernel-to-user ring buffer in bytes: a power of two, at least 4096.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20, value_parser = parse_ring_size)]
    ring_size: u32,
    /// Where to watch from: eBPF, the kernel's proc connector (no BPF), polling /proc, or the
    /// best that works (auto: eBPF, else the proc connector, else polling, saying so on stderr).
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    source: SourceArg,
    /// How often `--source poll` scans /proc, e.g. 1s, 100ms, 2m.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    #[command(flatten)]
    via: WatchViaDaemon,
}

/// The `--priority` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PriorityArg {
    Normal,
    High,
    Realtime,
}

/// The `--source` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SourceArg {
    Auto,
    Ebpf,
    ProcConnector,
    Poll,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Parseable output, one line per zone: zone_id:name:state:root:container_id:runtime:pidns (`:` in a field is `\:`).
    #[arg(short = 'p', long)]
    parseable: bool,
    #[command(flatten)]
    via: ViaDaemon,
}

/// What to run, decided from the command line.
#[derive(Debug, Clone)]
pub enum Action {
    /// `zonemon [watch]`: standalone with these options, or through the daemon.
    Watch(WatchOptions, WatchViaDaemon),
    /// `zonemon list [-p]`; the flag is `-p`.
    List { parseable: bool, via: ViaDaemon },
    /// `zonemon wait`.
    Wait(WaitArgs),
}

impl Cli {
    /// Turns the parsed command line into what to run.
    pub fn action(self) -> Action {
        match self.command {
            None => watch(self.watch),
            Some(Command::Watch(w)) => watch(w),
            Some(Command::List(l)) => Action::List {
                parseable: l.parseable,
                via: l.via,
            },
            Some(Command::Wait(w)) => Action::Wait(w),
        }
    }
}

fn watch(w: WatchArgs) -> Action {
    let via = w.via.clone();
    Action::Watch(w.into(), via)
}

impl From<WatchArgs> for WatchOptions {
    fn from(a: WatchArgs) -> Self {
        WatchOptions {
            json: a.json,
            all: a.all,
            timestamps: a.timestamps,
            initial: a.initial,
            stats: a.stats,
            priority: match a.priority {
                PriorityArg::Normal => Priority::Normal,
                PriorityArg::High => Priority::High,
                PriorityArg::Realtime => Priority::Realtime,
            },
            ring_bytes: a.ring_size,
            source: match a.source {
                SourceArg::Auto => SourceKind::Auto,
                SourceArg::Ebpf => SourceKind::Ebpf,
                SourceArg::ProcConnector => SourceKind::ProcConnector,
                SourceArg::Poll => SourceKind::Poll,
            },
            interval: a.interval,
        }
    }
}

/// A duration such as `1s`, `100ms`, `250us`, `2m`; at least 1 ms.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 1s, 100ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s or m)")),
    };
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(format!("`{s}` is out of range (1ms to 24h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_ring_size(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of bytes"))?;
    if n < 4096 || !n.is_power_of_two() {
        return Err(format!(
            "{n} is not a power of two of at least 4096 (try 1048576)"
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(args: &[&str]) -> Action {
        Cli::try_parse_from(args).unwrap().action()
    }

    #[test]
    fn bare_zonemon_watches() {
        let Action::Watch(w, _) = action(&["zonemon"]) else {
            panic!()
        };
        assert!(!w.json && !w.all && !w.timestamps);
        let Action::Watch(w, _) = action(&["zonemon", "--all", "--timestamps"]) else {
            panic!()
        };
        assert!(w.all && w.timestamps);
        let Action::Watch(w, _) = action(&["zonemon", "watch", "--json"]) else {
            panic!()
        };
        assert!(w.json);
    }

    #[test]
    fn list_flags() {
        assert!(matches!(
            action(&["zonemon", "list", "-p"]),
            Action::List {
                parseable: true,
                ..
            }
        ));
        assert!(matches!(
            action(&["zonemon", "list"]),
            Action::List {
                parseable: false,
                ..
            }
        ));
    }

    #[test]
    fn priority_defaults_to_high() {
        let Action::Watch(w, _) = action(&["zonemon"]) else {
            panic!()
        };
        assert_eq!(w.priority, Priority::High);
        let Action::Watch(w, _) = action(&["zonemon", "watch", "--priority", "realtime"]) else {
            panic!()
        };
        assert_eq!(w.priority, Priority::Realtime);
        let Action::Watch(w, _) = action(&["zonemon", "--priority", "normal"]) else {
            panic!()
        };
        assert_eq!(w.priority, Priority::Normal);
    }

    #[test]
    fn sources_and_intervals() {
        let Action::Watch(w, _) = action(&["zonemon"]) else {
            panic!()
        };
        assert_eq!(
            (w.source, w.interval),
            (SourceKind::Auto, Duration::from_secs(1))
        );
        let Action::Watch(w, _) = action(&[
            "zonemon",
            "watch",
            "--source",
            "poll",
            "--interval",
            "100ms",
        ]) else {
            panic!()
        };
        assert_eq!(
            (w.source, w.interval),
            (SourceKind::Poll, Duration::from_millis(100))
        );
        let Action::Watch(w, _) = action(&["zonemon", "--source", "proc-connector"]) else {
            panic!()
        };
        assert_eq!(w.source, SourceKind::ProcConnector);
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0ms").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(Cli::try_parse_from(["zonemon", "--source", "dtrace"]).is_err());
    }

    #[test]
    fn bad_ring_sizes_say_why() {
        let e = Cli::try_parse_from(["zonemon", "--ring-size", "5000"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("power of two"), "{e}");
        assert!(Cli::try_parse_from(["zonemon", "--ring-size", "lots"]).is_err());
        assert!(Cli::try_parse_from(["zonemon", "--bogus"]).is_err());
    }
}
