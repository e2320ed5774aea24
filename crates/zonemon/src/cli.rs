//! The command line. The rest of the program sees only plain option structs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use zonemon_core::filter::Filter;

use crate::api::{ViaDaemon, WaitArgs, WatchViaDaemon};
use crate::config::{self, ConfigFile};
use crate::daemon::DaemonOptions;
use crate::events::EventsOptions;
use crate::fleet::{FleetKeys, FromArgs, PublishArgs, WatchFromArgs};
use crate::hooks::{HookSpec, Limits, Reload};
use crate::journal::{self, retention::Retention};
use crate::sources::SourceKind;
use crate::timeline::TimelineOptions;
use crate::units;
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
    /// The daemon's flags given on the command line (they override its config file).
    #[arg(skip)]
    given: Vec<String>,
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
    /// Print the shell completion script for SHELL on stdout.
    ///
    /// For example `zonemon completions bash > /etc/bash_completion.d/zonemon`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The benchmark's simulated fleet: recorded records published as N hosts at once.
    #[command(hide = true)]
    FleetReplay(crate::fleet::replay::ReplayArgs),
    /// Write the man pages (zonemon.1 and one per subcommand) into DIR.
    #[command(hide = true)]
    Manpages {
        /// The directory to write into (created if missing).
        dir: std::path::PathBuf,
    },
    /// Wait until a zone boots, shuts down or goes down, through the daemon (as `docker wait`).
    ///
    /// The zone need not exist yet, and a zone that already did it since the wait began
    /// (or since --since) counts: no race with a zone that lives a millisecond.
    /// With --from, across the fleet (by name), however late its host publishes.
    Wait(WaitArgs),
    /// Run as the host's zone monitor: watch as `watch` does and keep every record in a journal.
    ///
    /// A foreground service for systemd (Type=notify: READY=1 once attached,
    /// the watchdog when WATCHDOG_USEC is set); logs on stderr; SIGTERM stops
    /// it cleanly (exit status 0) after the journal is flushed.
    Daemon(DaemonArgs),
    /// Print the journal's history (what `zonemon daemon` recorded), in `watch`'s formats.
    Events(EventsArgs),
    /// Draw the journal's zones as a timeline: a row per name, a bar per life, exits marked.
    ///
    /// Writes a self-contained SVG or HTML file (no network fetches); hover for detail.
    Timeline(TimelineArgs),
    /// A live full-screen view of the zones: a table (sortable, filtered as you type), a log of
    /// events, transitions per second; `q` quits.
    ///
    /// Reads the local daemon when one answers on its socket (no root needed), else attaches to
    /// the kernel itself (root), or the fleet with --from. Keys: / filter (KEY=VALUE words as
    /// --filter, a bare word matches names), Esc clears it, s sort column, r reverse, ↑↓ scroll
    /// zones, PgUp/PgDn scroll events, End follow, q or Ctrl-C quit.
    Top(crate::top::TopArgs),
}

#[derive(Debug, Args)]
struct TimelineArgs {
    /// From this time on: a span ago (1h, 10m, 30d) or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since: String,
    /// Up to this time: a span ago or an RFC 3339 time (default: now).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Draw only the zones with a record that matches (as `watch --filter`; repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_filter)]
    filter: Vec<String>,
    /// The file to write: FILE.svg or FILE.html.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The journal to read.
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    journal: PathBuf,
    /// Read the records through the daemon answering on this socket instead of its journal
    /// file (no root needed, only the socket's group).
    #[arg(long, value_name = "PATH", conflicts_with = "journal")]
    socket: Option<PathBuf>,
    #[command(flatten)]
    from: FromArgs,
}

#[derive(Debug, Args)]
struct DaemonArgs {
    /// The config file (TOML): every flag here has a key (its name with `_` for `-`), and a flag
    /// given overrides it; `[[hook]]` tables define hooks. SIGHUP re-reads its hooks
    /// [default: /etc/zonemon/zonemon.toml, when it exists]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The journal (SQLite), created with its directory if missing.
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    journal: PathBuf,
    /// Delete records older than this (e.g. 30d, 12h).
    #[arg(long, value_name = "SPAN", default_value = "30d", value_parser = units::parse_span)]
    retain: Duration,
    /// Delete the oldest records while the history holds more than this (e.g. 1GiB, 500MiB; the
    /// running zones' newest records come on top).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = units::parse_size)]
    retain_size: u64,
    #[command(flatten)]
    attach: AttachArgs,
    /// The local API's Unix socket (mode 0660, group zonemon when that group exists).
    #[arg(long, value_name = "PATH", default_value = crate::api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Run a program on the records that match, e.g. '{ run = ["/usr/local/bin/page",
    /// "--urgent"], filter = ["event=shutdown", "exit=nonzero"] }': a hook table as in the
    /// config file (keys run, filter, name, user, timeout); repeatable. The record comes on its
    /// stdin (one JSON line) and as ZONEMON_* variables; no shell is involved. Hooks given here
    /// replace the config file's.
    #[arg(long, value_name = "TABLE", value_parser = config::parse_hook)]
    hook: Vec<HookSpec>,
    /// Hook runs at once.
    #[arg(long, value_name = "N", default_value_t = crate::hooks::DEFAULT_CONCURRENCY, value_parser = at_least_one)]
    hook_concurrency: usize,
    /// Hook runs waiting, beyond which new runs are dropped (counted and logged).
    #[arg(long, value_name = "N", default_value_t = crate::hooks::DEFAULT_QUEUE, value_parser = at_least_one)]
    hook_queue: usize,
    #[command(flatten)]
    publish: PublishArgs,
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Records from this time on: a span ago (1h, 10m, 30d) or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since: String,
    /// Records before this time: a span ago or an RFC 3339 time (default: up to now).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Print JSON Lines: every record as the journal has it, with its `seq` (schema in README.md).
    #[arg(long)]
    json: bool,
    /// Also print `ready` and `down`.
    #[arg(long)]
    all: bool,
    /// Prefix each text line with the record's time.
    #[arg(long)]
    timestamps: bool,
    /// The journal to read.
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    journal: PathBuf,
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
    /// At exit, print on stderr one JSON line with what the event path cost (per observation,
    /// and the runtime name lookups within it: p50, p99, share; by runtime, also on CPU and
    /// how many calls were switched out).
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    attach: AttachArgs,
    /// Show only the records that match: KEY=VALUE, repeatable; the same key given again is an
    /// OR, different keys an AND (as `docker events --filter`). Keys: name (a glob, e.g.
    /// name=web-*), event (ready, booted, shutdown, down, running, lost), runtime (docker, …,
    /// none), container_id (an id or its prefix), k8s_namespace, exit (nonzero, signal or a
    /// code; shutdown records only), image (a glob), label (label=KEY or label=KEY=VALUE), host
    /// (a glob; --from). --metrics counts what passes.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_filter)]
    filter: Vec<String>,
    #[command(flatten)]
    via: WatchViaDaemon,
    #[command(flatten)]
    fleet: WatchFromArgs,
}

/// How a monitor attaches to the kernel and what it serves: the options `watch` and
/// `daemon` share.
#[derive(Debug, Args)]
struct AttachArgs {
    /// How zonemon competes for a CPU when a zone event wakes it: `realtime` (SCHED_FIFO 1, as
    /// `chrt -f 1`, once live: it waits for no ordinary task, even on a host busy starting
    /// containers; a thread that runs 200 ms without sleeping is moved to `high` until it next
    /// sleeps; `daemon`: its event loop and its API thread, which commits and serves records,
    /// are SCHED_FIFO 2 and 1 under the same budget; `--source poll` stays at `high`: each of
    /// its wakeups is a full /proc scan); `high` (nice -10: a larger share of the CPU, not the
    /// first turn on it; `daemon`: realtime as above); `normal`.
    #[arg(long, value_enum, default_value_t = PriorityArg::Realtime)]
    priority: PriorityArg,
    /// Size of the kernel-to-user ring buffer in bytes: a power of two, at least 4096.
    #[arg(long, value_name = "BYTES", default_value_t = crate::sources::DEFAULT_RING_BYTES, value_parser = parse_ring_size)]
    ring_size: u32,
    /// Where to watch from: eBPF, the kernel's proc connector (no BPF), polling /proc, or the
    /// best that works (auto: eBPF, else the proc connector, else polling, saying so on stderr).
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    source: SourceArg,
    /// How often `--source poll` scans /proc, e.g. 1s, 100ms, 2m (a scan that outlasts it is
    /// warned of: polling then uses a whole CPU).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = units::parse_duration)]
    interval: Duration,
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9750, or `off`
    /// [default: `watch`: off; `daemon`: 127.0.0.1:9750]
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_arg)]
    metrics: Option<Listen>,
}

/// A `--metrics` value: an address, or none (`off`).
#[derive(Debug, Clone, Copy)]
struct Listen(Option<SocketAddr>);

/// Where the daemon serves metrics unless told otherwise.
pub const DEFAULT_DAEMON_METRICS: &str = "127.0.0.1:9750";

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
    #[command(flatten)]
    from: FromArgs,
}

/// What to run, decided from the command line.
#[derive(Debug, Clone)]
pub enum Action {
    /// `zonemon [watch]`: standalone with these options, or through the daemon.
    Watch(WatchOptions, WatchViaDaemon),
    /// `zonemon list [-p]`; the flag is `-p`.
    List { parseable: bool, via: ViaDaemon },
    /// `zonemon watch --from`: the fleet, with `--since`.
    WatchFleet(WatchOptions, WatchFromArgs, Option<i128>),
    /// `zonemon list --from [-p]`.
    ListFleet { parseable: bool, from: FromArgs },
    /// `zonemon wait`.
    Wait(WaitArgs),
    /// `zonemon completions SHELL`.
    Completions(clap_complete::Shell),
    /// `zonemon manpages DIR`.
    Manpages(std::path::PathBuf),
    /// `zonemon fleet-replay` (the benchmark's).
    FleetReplay(crate::fleet::replay::ReplayArgs),
    /// `zonemon daemon`.
    Daemon(DaemonOptions),
    /// `zonemon events`.
    Events(EventsOptions),
    /// `zonemon timeline`.
    Timeline(TimelineOptions),
    /// `zonemon top`.
    Top(crate::top::TopArgs),
}

impl Cli {
    /// Parses this process's command line, noting which daemon flags were given.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        Cli::parse_from_matches(Cli::command().try_get_matches()?)
    }

    fn parse_from_matches(matches: ArgMatches) -> Result<Cli, clap::Error> {
        let mut cli = Cli::from_arg_matches(&matches)?;
        if let Some(d) = matches.subcommand_matches("daemon") {
            cli.given = d
                .ids()
                .filter(|id| d.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                .map(|id| id.as_str().to_string())
                .collect();
        }
        Ok(cli)
    }

    /// Turns the parsed command line into what to run; `Err` is a usage
    /// error naming the flag (a time is read against the clock now).
    pub fn action(self) -> Result<Action, clap::Error> {
        Ok(match self.command {
            None => watch(self.watch),
            Some(Command::Watch(w)) => watch(w),
            Some(Command::List(l)) if l.from.from.is_some() => Action::ListFleet {
                parseable: l.parseable,
                from: l.from,
            },
            Some(Command::List(l)) => Action::List {
                parseable: l.parseable,
                via: l.via,
            },
            Some(Command::Wait(w)) => Action::Wait(w),
            Some(Command::Completions { shell }) => Action::Completions(shell),
            Some(Command::Manpages { dir }) => Action::Manpages(dir),
            Some(Command::FleetReplay(r)) => Action::FleetReplay(r),
            Some(Command::Daemon(d)) => Action::Daemon(d.options(&self.given)?),
            Some(Command::Events(e)) => Action::Events(e.options()?),
            Some(Command::Timeline(t)) => Action::Timeline(t.options()?),
            Some(Command::Top(t)) => Action::Top(t),
        })
    }
}

impl DaemonArgs {
    /// The daemon's options: each flag given (`given`), else the config file's key, else the
    /// flag's default.
    fn options(self, given: &[String]) -> Result<DaemonOptions, clap::Error> {
        let reload = Reload {
            path: self
                .config
                .clone()
                .unwrap_or_else(|| config::DEFAULT_PATH.into()),
            required: self.config.is_some(),
            hooks_from_flags: !self.hook.is_empty(),
        };
        let file = config::load(&reload.path, reload.required).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e:#}\n"))
        })?;
        let flag = |id: &str| given.iter().any(|g| g == id);
        /// The flag's value if given, else the file's, else the flag's default.
        fn pick<T>(given: bool, flag: T, file: Option<T>) -> T {
            match file {
                Some(f) if !given => f,
                _ => flag,
            }
        }
        let ConfigFile {
            journal,
            socket,
            retain,
            retain_size,
            priority,
            ring_size,
            source,
            interval,
            metrics,
            hook_concurrency,
            hook_queue,
            hook,
            publish,
            host_id,
            stream,
            stream_replicas,
            stream_max_age,
            stream_duplicate_window,
            nats_creds,
            nats_nkey,
            nats_user,
            nats_password_file,
            nats_tls_ca,
            nats_tls_cert,
            nats_tls_key,
        } = file;
        let fleet = FleetKeys {
            publish,
            host_id,
            stream,
            stream_replicas,
            stream_max_age,
            stream_duplicate_window,
            auth: crate::fleet::args::AuthArgs {
                nats_creds,
                nats_nkey,
                nats_user,
                nats_password_file,
                nats_tls_ca,
                nats_tls_cert,
                nats_tls_key,
            },
        };
        let publish = self.publish.options(&flag, fleet).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n"))
        })?;
        let default_metrics = Some(DEFAULT_DAEMON_METRICS.parse().expect("a valid address"));
        let metrics = match self.attach.metrics {
            Some(Listen(m)) => m,
            None => metrics.unwrap_or(default_metrics),
        };
        Ok(DaemonOptions {
            watch: WatchOptions {
                json: true,
                all: true,
                timestamps: false,
                initial: false,
                stats: false,
                priority: pick(flag("priority"), self.attach.priority.into(), priority),
                ring_bytes: pick(flag("ring_size"), self.attach.ring_size, ring_size),
                source: pick(flag("source"), self.attach.source.into(), source),
                interval: pick(flag("interval"), self.attach.interval, interval),
                metrics,
                filter: Filter::default(),
            },
            journal: pick(flag("journal"), self.journal, journal),
            socket: pick(flag("socket"), self.socket, socket),
            retention: Retention {
                max_age: Some(pick(flag("retain"), self.retain, retain)),
                max_bytes: Some(pick(flag("retain_size"), self.retain_size, retain_size)),
            },
            hooks: if self.hook.is_empty() {
                hook
            } else {
                self.hook
            },
            hook_limits: Limits {
                concurrency: pick(
                    flag("hook_concurrency"),
                    self.hook_concurrency,
                    hook_concurrency,
                ),
                queue: pick(flag("hook_queue"), self.hook_queue, hook_queue),
            },
            reload,
            publish,
        })
    }
}

/// `text` as an instant read against `now`, or a usage error naming `flag`.
fn instant(flag: &str, text: &str, now: i128) -> Result<i128, clap::Error> {
    units::parse_instant(text, now).map_err(|e| {
        clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!("invalid value for {flag}: {e}\n"),
        )
    })
}

/// Now, in nanoseconds since the Unix epoch.
fn now_unix_ns() -> i128 {
    zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME) as i128
}

impl TimelineArgs {
    fn options(self) -> Result<TimelineOptions, clap::Error> {
        let now = now_unix_ns();
        Ok(TimelineOptions {
            journal: self.journal,
            socket: self.socket,
            from: self.from,
            since_ns: instant("--since", &self.since, now)?,
            until_ns: self
                .until
                .map(|u| instant("--until", &u, now))
                .transpose()?
                .unwrap_or(now),
            filter: Filter::parse(self.filter.iter().map(String::as_str))
                .expect("each filter was checked when parsed"),
            out: self.out,
        })
    }
}

impl EventsArgs {
    fn options(self) -> Result<EventsOptions, clap::Error> {
        let now = now_unix_ns();
        let instant = |flag: &str, text: &str| instant(flag, text, now);
        Ok(EventsOptions {
            journal: self.journal,
            since_ns: instant("--since", &self.since)?,
            until_ns: self.until.map(|u| instant("--until", &u)).transpose()?,
            json: self.json,
            all: self.all,
            timestamps: self.timestamps,
        })
    }
}

fn watch(w: WatchArgs) -> Action {
    let via = w.via.clone();
    let fleet = w.fleet.clone();
    match fleet.from.from.is_some() {
        true => Action::WatchFleet(w.into(), fleet, via.since),
        false => Action::Watch(w.into(), via),
    }
}

impl From<PriorityArg> for Priority {
    fn from(p: PriorityArg) -> Self {
        match p {
            PriorityArg::Normal => Priority::Normal,
            PriorityArg::High => Priority::High,
            PriorityArg::Realtime => Priority::Realtime,
        }
    }
}

impl From<SourceArg> for SourceKind {
    fn from(s: SourceArg) -> Self {
        match s {
            SourceArg::Auto => SourceKind::Auto,
            SourceArg::Ebpf => SourceKind::Ebpf,
            SourceArg::ProcConnector => SourceKind::ProcConnector,
            SourceArg::Poll => SourceKind::Poll,
        }
    }
}

impl From<WatchArgs> for WatchOptions {
    fn from(a: WatchArgs) -> Self {
        WatchOptions {
            json: a.json,
            all: a.all,
            timestamps: a.timestamps,
            initial: a.initial,
            stats: a.stats,
            priority: a.attach.priority.into(),
            ring_bytes: a.attach.ring_size,
            source: a.attach.source.into(),
            interval: a.attach.interval,
            metrics: a.attach.metrics.and_then(|Listen(m)| m),
            filter: Filter::parse(a.filter.iter().map(String::as_str))
                .expect("each filter was checked when parsed"),
        }
    }
}

/// A `--metrics` address, or `off` for none.
pub(crate) fn parse_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    match s {
        "off" => Ok(None),
        _ => s.parse().map(Some).map_err(|_| {
            format!(
                "`{}` is not an address like 127.0.0.1:9750 (or `off`)",
                s.escape_debug()
            )
        }),
    }
}

fn parse_listen_arg(s: &str) -> Result<Listen, String> {
    parse_listen(s).map(Listen)
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(0) | Err(_) => Err(format!(
            "`{}` is not a number of at least 1",
            s.escape_debug()
        )),
        Ok(n) => Ok(n),
    }
}

/// The `--priority` called `s`, if any (for the config file).
pub(crate) fn priority(s: &str) -> Option<Priority> {
    PriorityArg::from_str(s, false).ok().map(Priority::from)
}

/// The `--source` called `s`, if any (for the config file).
pub(crate) fn source(s: &str) -> Option<SourceKind> {
    SourceArg::from_str(s, false).ok().map(SourceKind::from)
}

/// One `--filter KEY=VALUE`, checked (the key known, the value valid) and kept as given.
fn parse_filter(s: &str) -> Result<String, String> {
    Filter::parse([s]).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

/// A `--ring-size`: a power of two of at least 4096 bytes.
pub(crate) fn parse_ring_size(s: &str) -> Result<u32, String> {
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
        let matches = Cli::command().try_get_matches_from(args).unwrap();
        Cli::parse_from_matches(matches).unwrap().action().unwrap()
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
    fn priority_defaults_to_realtime() {
        let Action::Watch(w, _) = action(&["zonemon"]) else {
            panic!()
        };
        assert_eq!(w.priority, Priority::Realtime);
        let Action::Watch(w, _) = action(&["zonemon", "watch", "--priority", "high"]) else {
            panic!()
        };
        assert_eq!(w.priority, Priority::High);
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
        assert_eq!(units::parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            units::parse_duration("1.5s"),
            Ok(Duration::from_millis(1500))
        );
        assert!(units::parse_duration("0ms").is_err());
        assert!(units::parse_duration("5 parsecs").is_err());
        assert!(Cli::try_parse_from(["zonemon", "--source", "dtrace"]).is_err());
    }

    #[test]
    fn filters_are_checked_and_combined() {
        let Action::Watch(w, _) = action(&[
            "zonemon",
            "--filter",
            "name=web-*",
            "--filter",
            "event=booted",
        ]) else {
            panic!()
        };
        assert!(!w.filter.is_empty());
        let e = Cli::try_parse_from(["zonemon", "--filter", "colour=red"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--filter") && e.contains("colour") && e.contains("event, exit"),
            "{e}"
        );
        let e = Cli::try_parse_from(["zonemon", "watch", "--filter", "event=exploded"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("exploded") && e.contains("booted"), "{e}");
    }

    #[test]
    fn daemon_flags_override_the_config_file_which_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zonemon.toml");
        std::fs::write(
            &path,
            "journal = \"/srv/j.db\"\nretain = \"7d\"\nring_size = 8192\nmetrics = \"off\"\n\
             [[hook]]\nrun = [\"/bin/true\"]\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let daemon = |args: &[&str]| {
            let Action::Daemon(d) = action(&[&["zonemon", "daemon"], args].concat()) else {
                panic!()
            };
            d
        };
        let d = daemon(&["--config", config, "--ring-size", "16384"]);
        assert_eq!(d.journal, PathBuf::from("/srv/j.db"), "the file's");
        assert_eq!(d.retention.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(d.watch.ring_bytes, 16384, "the flag's, over the file's");
        assert_eq!(d.watch.metrics, None, "the file's off");
        assert_eq!(d.watch.priority, Priority::Realtime, "the default");
        assert_eq!(d.socket, PathBuf::from(crate::api::DEFAULT_SOCKET));
        assert_eq!((d.hooks.len(), d.reload.hooks_from_flags), (1, false));
        let d = daemon(&[
            "--config",
            config,
            "--metrics",
            "127.0.0.1:1",
            "--hook",
            "{ run = [\"/bin/echo\"] }",
            "--hook",
            "{ run = [\"/bin/false\"] }",
        ]);
        assert_eq!(d.watch.metrics, Some("127.0.0.1:1".parse().unwrap()));
        assert_eq!(
            d.hooks.iter().map(|h| h.name()).collect::<Vec<_>>(),
            ["echo", "false"],
            "the flags' replace the file's"
        );
        assert!(d.reload.hooks_from_flags);
        // No file where none was named: the defaults.
        let d = daemon(&["--config", "/dev/null"]);
        assert_eq!(
            d.watch.metrics,
            Some(DEFAULT_DAEMON_METRICS.parse().unwrap())
        );
        assert_eq!(d.journal, PathBuf::from(journal::DEFAULT_PATH));
        // A named file that is missing, or wrong, is an error naming it.
        for bad in ["/nonexistent/zonemon.toml", "/etc/hostname"] {
            let m = Cli::command()
                .try_get_matches_from(["zonemon", "daemon", "--config", bad])
                .unwrap();
            let e = Cli::parse_from_matches(m)
                .unwrap()
                .action()
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn fleet_flags_override_their_config_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zonemon.toml");
        std::fs::write(
            &path,
            "publish = \"nats://a:4222\"\nhost_id = \"web-1\"\nstream_max_age = \"1h\"\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let daemon = |args: &[&str]| {
            let m = Cli::command()
                .try_get_matches_from([&["zonemon", "daemon", "--config", config], args].concat())
                .unwrap();
            match Cli::parse_from_matches(m).unwrap().action() {
                Ok(Action::Daemon(d)) => Ok(d.publish),
                Ok(_) => panic!(),
                Err(e) => Err(e.to_string()),
            }
        };
        let p = daemon(&[]).unwrap().expect("publishing");
        assert_eq!(p.servers.0, ["nats://a:4222"]);
        assert_eq!((p.host_id.as_str(), p.stream.replicas), ("web-1", 1));
        assert_eq!(p.stream.max_age, Duration::from_secs(3600));
        let p = daemon(&["--host-id", "web-2", "--publish", "tls://b:1"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.host_id.as_str(), p.servers.0[0].as_str()),
            ("web-2", "tls://b:1")
        );
        let e = daemon(&["--publish", "nats://u:hunter2@b:1"]).unwrap_err();
        assert!(
            e.contains("--nats-password-file") && !e.contains("hunter2"),
            "{e}"
        );
        assert!(Cli::command()
            .try_get_matches_from(["zonemon", "daemon", "--host-id", "a.b"])
            .is_err());
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
