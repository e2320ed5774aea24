//! `zonemon watch`, `list` and `wait` through the daemon. Output is written
//! by the same sinks and listing code as standalone, from the journaled
//! records; JSON lines are the records as journaled (`watch --json`'s
//! objects plus `"seq"`).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use hyper::StatusCode;
use serde_json::{Map, Value};
use zonemon_core::listing::write_list;
use zonemon_core::output::{Sink, TextSink, WallClock};
use zonemon_core::timefmt::rfc3339_nanos;

use super::args::{ViaDaemon, WaitArgs, WaitFor, WatchViaDaemon};
use super::client::{Daemon, StreamEnd};
use super::query::{Target, WaitQuery};
use super::record::{exit_status, zone_event};
use crate::watch::WatchOptions;

/// Record times are Unix nanoseconds already.
fn unix_clock() -> WallClock {
    WallClock::new(0)
}

/// `zonemon wait`'s exit status when `--timeout` passed first.
const EXIT_TIMEOUT: u8 = 124;
/// `zonemon wait`'s exit status when it failed.
pub const EXIT_WAIT_FAILED: u8 = 125;
/// `zonemon wait --for shutdown`'s exit status when the zone's exit status is unknown.
const EXIT_UNKNOWN: u8 = 126;

/// The daemon to use, or `None` for standalone; says on stderr why standalone.
pub fn choose(args: &ViaDaemon, doing: &str) -> Option<Daemon> {
    // Not "zonemon: watching …": that line says a standalone watch is attached and live.
    if args.standalone {
        eprintln!("zonemon: --standalone: {doing} without the daemon");
        return None;
    }
    match Daemon::reach(&args.socket) {
        Ok(d) => Some(d),
        Err(why) => {
            eprintln!(
                "zonemon: no daemon answers at {} ({why}): {doing} standalone",
                args.socket.display()
            );
            None
        }
    }
}

/// `zonemon watch` through the daemon when one answers: `None` means run standalone.
pub fn watch(opts: &WatchOptions, args: &WatchViaDaemon) -> Option<Result<()>> {
    let Some(daemon) = choose(&args.via, "watching") else {
        return args.since.map(|_| {
            Err(anyhow!(
                "--since replays the daemon's journal, and no daemon answers at {}",
                args.via.socket.display()
            ))
        });
    };
    if opts.metrics.is_some() {
        return Some(Err(anyhow!(
            "--metrics is served by the process that watches the kernel: give it to \
             `zonemon daemon`, or watch with --standalone"
        )));
    }
    Some(watch_through(&daemon, opts, args.since))
}

fn watch_through(daemon: &Daemon, opts: &WatchOptions, since: Option<i128>) -> Result<()> {
    // Woken by each record as a standalone watch is by the kernel: it competes
    // for a CPU as --priority says, when it may (root or CAP_SYS_NICE; the
    // daemon's users need neither, and go on quietly at their own priority),
    // but never realtime: a replay from --since may run long without sleeping.
    let _ = opts.priority.without_realtime().try_apply();
    let start = match since {
        Some(t) => format!("since={}", rfc3339_nanos(t)),
        None if opts.initial => "initial=true".to_string(),
        None => String::new(),
    };
    eprintln!(
        "zonemon: watching through the daemon at {}; Ctrl-C stops",
        daemon.socket().display()
    );
    let mut out = io::stdout().lock();
    let mut text = TextSink::new(io::stdout(), opts.all, opts.timestamps.then(unix_clock));
    follow(daemon, start, |rec| {
        if let Some("lost") = rec.get("event").and_then(Value::as_str) {
            if !opts.json {
                eprintln!(
                    "zonemon: warning: the daemon lost {} record(s) at {} (it resynchronised from /proc)",
                    rec.get("count").and_then(Value::as_u64).map_or("some".into(), |n| n.to_string()),
                    rec.get("time").and_then(Value::as_str).unwrap_or("?")
                );
            }
        }
        if !opts.filter.matches(&rec) {
            return Ok(());
        }
        if opts.json {
            write_json(&mut out, &rec)?;
        } else if let Some(ev) = zone_event(&rec) {
            text.write_event(&ev)?;
        }
        Ok(())
    })
}

/// Follows the daemon's records from `start` (a query such as `initial=true`,
/// `since=…`, or empty for "from now on"), calling `on_record` for each, until
/// SIGINT/SIGTERM (`Ok`); a client that fell behind resumes where the daemon
/// says, by itself, saying so on stderr. The daemon's `error` notice, or its
/// end of the stream, is an error.
pub fn follow(
    daemon: &Daemon,
    mut start: String,
    mut on_record: impl FnMut(Map<String, Value>) -> Result<()>,
) -> Result<()> {
    loop {
        let mut resume = None;
        let end = daemon.stream(&format!("/v1/events?{start}"), |rec| {
            match rec.get("event").and_then(Value::as_str) {
                Some("behind") => {
                    resume = rec.get("resume_after").and_then(Value::as_u64);
                    eprintln!("zonemon: warning: fell behind the daemon; catching up from where it left off");
                    return Ok(true);
                }
                Some("error") => bail!("the daemon: {}", message(&rec)),
                _ => {}
            }
            on_record(rec)?;
            Ok(true)
        })?;
        match (end, resume) {
            (StreamEnd::Closed, Some(seq)) => start = format!("after={seq}"),
            (StreamEnd::Closed, None) => bail!("the daemon ended the stream (is it stopping?)"),
            (StreamEnd::Stopped | StreamEnd::Signalled, _) => return Ok(()),
        }
    }
}

/// `zonemon list` through the daemon when one answers: `None` means run standalone.
pub fn list(parseable: bool, args: &ViaDaemon) -> Option<Result<()>> {
    let daemon = choose(args, "listing")?;
    eprintln!(
        "zonemon: listing through the daemon at {}",
        daemon.socket().display()
    );
    Some((|| {
        let zones = daemon.get_json("/v1/zones")?;
        let rows: Vec<_> = zones
            .as_array()
            .context("the daemon's zone list is not an array")?
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|z| {
                let root = z.get("root").and_then(Value::as_str).map(str::to_string);
                Some((zone_event(z)?, root))
            })
            .collect();
        write_list(&rows, parseable, &mut io::stdout().lock())?;
        Ok(())
    })())
}

/// `zonemon wait`: the exit status documented in [`super::args::WAIT_EXIT_STATUSES`].
pub fn wait(args: &WaitArgs) -> ExitCode {
    let began = zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME);
    let found = args.query(began).and_then(|q| match args.from.from {
        Some(_) => crate::fleet::consume::wait(&q, &args.from),
        None => wait_through(args, &q),
    });
    match found.and_then(|rec| answer(args, rec)) {
        Ok(code) => ExitCode::from(code),
        Err(e) if crate::watch::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zonemon: error: {e:#}");
            ExitCode::from(EXIT_WAIT_FAILED)
        }
    }
}

/// The record the daemon found for `q` (`None`: the timeout passed first).
fn wait_through(args: &WaitArgs, q: &WaitQuery) -> Result<Option<Map<String, Value>>> {
    let daemon = Daemon::reach(&args.socket).map_err(|why| {
        anyhow!(
            "zonemon wait needs the daemon, and none answers at {} ({why})",
            args.socket.display()
        )
    })?;
    let zone = match &q.target {
        Target::ZoneId(id) => format!("zone_id={id}"),
        Target::Name(name) => format!(
            "name={}",
            form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        ),
    };
    let since = rfc3339_nanos(q.since);
    let mut target = format!("/v1/wait?{zone}&for={}&since={since}", q.event);
    if let Some(t) = q.timeout {
        target.push_str(&format!("&timeout={}ms", t.as_millis().max(1)));
    }
    // The daemon answers at the timeout; a margin covers a daemon too busy to.
    let limit = q.timeout.map(|t| t + std::time::Duration::from_secs(5));
    let (status, answer) = match daemon.get_json_within(&target, limit)? {
        None => return Ok(None),
        Some(a) => a,
    };
    if status == StatusCode::REQUEST_TIMEOUT {
        return Ok(None);
    }
    let rec = answer.as_object().cloned().unwrap_or_default();
    if !status.is_success() {
        bail!("the daemon answered {status}: {}", message(&rec));
    }
    Ok(Some(rec))
}

/// Prints the record found (`None`: the timeout passed first) and says the exit status.
fn answer(args: &WaitArgs, rec: Option<Map<String, Value>>) -> Result<u8> {
    let Some(rec) = rec else {
        return Ok(EXIT_TIMEOUT);
    };
    let mut out = io::stdout().lock();
    if args.json {
        write_json(&mut out, &rec)?;
    } else {
        TextSink::new(&mut out, true, None).write_object(&rec)?;
    }
    Ok(match args.event {
        WaitFor::Shutdown => exit_status(&rec).unwrap_or(EXIT_UNKNOWN),
        WaitFor::Booted | WaitFor::Down => 0,
    })
}

/// One record as one JSON line, flushed.
fn write_json(out: &mut impl Write, rec: &Map<String, Value>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, rec)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The `message` or `error` text of a notice or error document.
fn message(rec: &Map<String, Value>) -> String {
    rec.get("message")
        .or_else(|| rec.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("(no message)")
        .to_string()
}
