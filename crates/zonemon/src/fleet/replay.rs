//! `zonemon fleet-replay` (hidden; the benchmark's): N simulated hosts, each
//! a journal of its own fed with recorded records at a set rate and
//! published by the daemon's own [`Publisher`], to measure what one NATS
//! server takes.
//!
//! Each simulated host is what a daemon's journal and publisher are — the
//! journal's writer thread committing to a fresh journal, the publishing
//! thread reading it and publishing to the stream and the bucket — without
//! the kernel side: its records are a recorded run's (`zonemon events --json
//! --all` of a real journal), replayed in a loop, each dated now. The
//! outcome is one JSON line on stdout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Map, Value};
use zonemon_core::output::WallClock;
use zonemon_core::timefmt::rfc3339_nanos;

use super::args::stream_name;
use super::connect::{Auth, Servers};
use super::outbox::Outbox;
use super::setup::StreamSettings;
use super::{PublishOptions, Publisher, DEFAULT_STREAM};
use crate::journal::feed::{Feed, SharedFeed, QUEUE_RECORDS};
use crate::journal::retention::Retention;
use crate::journal::schema;
use crate::journal::store::{self as journal_store, JournalStore, Shared};
use crate::journal::writer::{self, Writer};

/// `zonemon fleet-replay`'s options.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The NATS servers (nats://HOST:PORT[,…]).
    #[arg(long, value_name = "URL[,URL…]")]
    pub publish: String,
    /// The recorded records: JSON lines as `zonemon events --json --all` writes them.
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,
    /// Simulated hosts, publishing at once.
    #[arg(long, default_value_t = 1)]
    pub hosts: usize,
    /// Records per second per host; 0: as fast as each host's publisher takes them.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// How long to feed records.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// A directory for the hosts' journals (one subdirectory each, made anew).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The hosts are `<PREFIX>-1` … `<PREFIX>-N`.
    #[arg(long, value_name = "PREFIX", default_value = "replay", value_parser = super::names::check_host_id)]
    pub host_prefix: String,
    /// The stream.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_STREAM, value_parser = stream_name)]
    pub stream: String,
}

/// Records a host may be ahead of its acknowledgements when feeding as fast as it goes
/// (well inside the journal's queue, so nothing is dropped).
const WINDOW: u64 = (QUEUE_RECORDS / 2) as u64;

/// How often the acknowledged `seq`s are read while feeding.
const SAMPLE: Duration = Duration::from_millis(50);

/// How long the hosts may take to publish what is left once feeding stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// One simulated host.
struct Host {
    feed: SharedFeed,
    writer: std::thread::JoinHandle<u64>,
    publisher: Publisher,
    outbox: Outbox,
    /// Records fed (the journal is fresh: record `k` has `seq` `k`).
    fed: u64,
    /// The highest `seq` acknowledged, as last read.
    acked: u64,
}

impl Host {
    /// A fresh journal in `dir`, its writer and its publisher as host `id`.
    fn start(dir: &Path, id: &str, args: &ReplayArgs, clock: &WallClock) -> Result<Host> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
        let path = dir.join("journal.db");
        let conn = schema::open_writer(&path)?;
        let opened = journal_store::opened(&conn)?;
        let shared = Shared::new(&opened);
        let store = JournalStore::new(&path, Arc::clone(&shared));
        let retention = Retention {
            max_age: None,
            max_bytes: None,
        };
        let writer = Writer::new(
            conn,
            path.clone(),
            clock.clone(),
            opened.marks,
            retention,
            shared,
        )?;
        let (queue, records) = writer::queue(QUEUE_RECORDS);
        let writer = std::thread::Builder::new()
            .name("zonemon-journal".into())
            .spawn(move || writer.run_blocking(records))
            .context("starting a journal writer")?;
        let opts = PublishOptions {
            servers: Servers::parse(&args.publish)
                .map_err(|e| anyhow::anyhow!("--publish: {e}"))?,
            auth: Auth::default(),
            host_id: id.to_string(),
            stream: StreamSettings {
                name: args.stream.clone(),
                replicas: 1,
                max_age: Duration::from_secs(7 * 86_400),
                duplicate_window: Duration::from_secs(600),
            },
        };
        let publisher = Publisher::start(opts, &path, store, None)?;
        Ok(Host {
            feed: Feed::new(queue, clock.clone()),
            writer,
            publisher,
            outbox: Outbox::open(&path, &args.stream)?,
            fed: 0,
            acked: 0,
        })
    }

    fn lag(&self) -> u64 {
        self.fed - self.acked
    }
}

/// The recorded records, without their `seq` and `host` (each simulated host gives its own).
fn recorded(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Ok(Value::Object(mut rec)) = serde_json::from_str::<Value>(line) {
            rec.remove("seq");
            rec.remove("host");
            out.push(rec);
        }
    }
    if out.is_empty() {
        bail!("{}: no records", path.display());
    }
    Ok(out)
}

/// Runs the replay and prints its outcome as one JSON line.
pub fn run(args: &ReplayArgs) -> Result<()> {
    let records = recorded(&args.events)?;
    let clock = WallClock::new(0);
    let mut hosts = Vec::with_capacity(args.hosts);
    for i in 1..=args.hosts {
        let id = format!("{}-{i}", args.host_prefix);
        hosts.push(Host::start(&args.dir.join(&id), &id, args, &clock)?);
    }
    let began = Instant::now();
    let feeding = Duration::from_secs_f64(args.seconds);
    let mut max_lag = 0;
    let mut sampled = Instant::now();
    while began.elapsed() < feeding {
        let now_ns = zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME);
        let due = |h: &Host| match args.rate > 0.0 {
            true => (began.elapsed().as_secs_f64() * args.rate) as u64,
            false => h.acked + WINDOW,
        };
        for h in &mut hosts {
            let due = due(h);
            let mut feed = h.feed.borrow_mut();
            while h.fed < due {
                let mut rec = records[(h.fed % records.len() as u64) as usize].clone();
                rec.insert("time".into(), Value::String(rfc3339_nanos(now_ns)));
                feed.object(rec, now_ns);
                h.fed += 1;
            }
        }
        if sampled.elapsed() >= SAMPLE {
            for h in &mut hosts {
                h.acked = h.outbox.acked()?;
                max_lag = max_lag.max(h.lag());
            }
            sampled = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let fed_for = began.elapsed();
    let stopped = Instant::now();
    loop {
        for h in &mut hosts {
            h.acked = h.outbox.acked()?;
        }
        if hosts.iter().all(|h| h.lag() == 0) || stopped.elapsed() > DRAIN_LIMIT {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let drained = stopped.elapsed();
    let fed: u64 = hosts.iter().map(|h| h.fed).sum();
    let acked: u64 = hosts.iter().map(|h| h.acked).sum();
    let mut unjournaled = 0;
    for h in hosts {
        drop(h.feed);
        unjournaled += h.writer.join().unwrap_or(0);
        h.publisher.stop();
    }
    let outcome = json!({
        "hosts": args.hosts,
        "rate_per_host": args.rate,
        "seconds": fed_for.as_secs_f64(),
        "records": fed,
        "acked": acked,
        "unjournaled": unjournaled,
        "max_lag_records": max_lag,
        "drain_seconds": drained.as_secs_f64(),
        "acked_per_second": acked as f64 / (fed_for + drained).as_secs_f64(),
    });
    println!("{outcome}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_records_lose_their_seq_and_host_and_other_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rec.jsonl");
        std::fs::write(
            &file,
            "{\"seq\":7,\"host\":\"a\",\"event\":\"booted\",\"zone_id\":3}\n\nnot json\n[1]\n\
             {\"seq\":8,\"event\":\"down\",\"zone_id\":3}\n",
        )
        .unwrap();
        let recs = recorded(&file).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            Value::Object(recs[0].clone()),
            json!({"event": "booted", "zone_id": 3})
        );
        assert!(!recs[1].contains_key("seq"));
        std::fs::write(&file, "nothing\n").unwrap();
        assert!(recorded(&file).is_err(), "no records is an error");
    }
}
