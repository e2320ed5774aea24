//! The command-line options of the commands that use the daemon (flattened
//! into `watch` and `list` by `cli`), and of `zonemon wait`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::fleet::FromArgs;

use super::query::{Target, WaitQuery};
use super::timespec::{parse_duration, parse_time};
use super::DEFAULT_SOCKET;

/// Whether and where to reach the daemon.
#[derive(Debug, Clone, Args)]
pub struct ViaDaemon {
    /// Attach to the kernel yourself (root, BPF) even when a daemon answers on its socket.
    #[arg(long)]
    pub standalone: bool,
    /// The daemon's socket; used when it exists and answers (then no root is needed, only the
    /// socket's group), else zonemon attaches itself.
    #[arg(long, value_name = "PATH", env = "ZONEMON_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

/// `watch`'s options about the daemon.
#[derive(Debug, Clone, Args)]
pub struct WatchViaDaemon {
    /// Replay the daemon's journal from TIME, then follow live, with no gap and no duplicate at
    /// the seam: 10m (ago), 2026-12-02T04:00:00Z (UTC) or Unix seconds. Needs the daemon.
    #[arg(long, value_name = "TIME", value_parser = time_arg, conflicts_with_all = ["initial", "standalone"])]
    pub since: Option<i128>,
    #[command(flatten)]
    pub via: ViaDaemon,
}

/// The transitions `zonemon wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WaitFor {
    /// The zone's init exec'd the zone's program.
    Booted,
    /// The zone's init exited (exit status: the zone's exit code).
    Shutdown,
    /// The zone's last process is gone.
    Down,
}

impl WaitFor {
    /// The `event` word of the transition.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitFor::Booted => "booted",
            WaitFor::Shutdown => "shutdown",
            WaitFor::Down => "down",
        }
    }
}

/// What `zonemon wait` exits with besides the zone's own exit code.
pub const WAIT_EXIT_STATUSES: &str = "\
Exit status:
  0        the zone booted / went down (--for booted, --for down), or shut down with code 0
  1-255    --for shutdown: the zone's exit code; 128+N when a signal N killed it (137 for SIGKILL)
  124      --timeout passed first (as timeout(1))
  125      zonemon wait failed: no daemon (or NATS server) answers, bad arguments, or the daemon refused or stopped
  126      --for shutdown: the zone shut down but its exit status is unknown (seen by a /proc rescan)";

/// `zonemon wait`.
#[derive(Debug, Clone, Args)]
#[command(after_help = WAIT_EXIT_STATUSES)]
pub struct WaitArgs {
    /// The zone: its name, or its zone_id when all digits. It need not exist yet.
    #[arg(value_name = "NAME|ZONE_ID")]
    pub zone: String,
    /// The transition to wait for.
    #[arg(long = "for", value_enum, default_value_t = WaitFor::Shutdown)]
    pub event: WaitFor,
    /// Give up after this long (exit status 124): 30s, 5m, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub timeout: Option<Duration>,
    /// Count transitions since TIME (default: when the wait began, so a zone that did it a
    /// moment before the daemon saw the request still counts): 10m (ago), RFC 3339 UTC, Unix seconds.
    #[arg(long, value_name = "TIME", value_parser = time_arg)]
    pub since: Option<i128>,
    /// Print the matching record as a JSON line (with "seq") instead of a `Zone <name> <event>` line.
    #[arg(long)]
    pub json: bool,
    /// The daemon's socket.
    #[arg(long, value_name = "PATH", env = "ZONEMON_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// With --from: wait across the whole fleet (by name; zone ids are per host) instead of this host.
    #[command(flatten)]
    pub from: FromArgs,
}

impl WaitArgs {
    /// What to wait for, the wait having begun at `began` (ns since the Unix epoch).
    /// Errors: the zone is all digits but no zone id (empty, or too large).
    pub fn query(&self, began: i128) -> anyhow::Result<WaitQuery> {
        let target = match self.zone.bytes().all(|b| b.is_ascii_digit()) {
            true => Target::ZoneId(
                self.zone
                    .parse()
                    .map_err(|_| anyhow::anyhow!("`{}` is not a zone id", self.zone))?,
            ),
            false => Target::Name(self.zone.clone()),
        };
        Ok(WaitQuery {
            target,
            event: self.event.as_str(),
            since: self.since.unwrap_or(began),
            timeout: self.timeout,
        })
    }
}

/// A time argument, resolved now to nanoseconds since the Unix epoch.
fn time_arg(s: &str) -> Result<i128, String> {
    parse_time(s, zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME))
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}
