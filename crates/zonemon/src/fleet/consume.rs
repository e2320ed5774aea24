//! The fleet's consumers: `zonemon watch --from` (every host's records as one
//! stream), `zonemon wait --from` (the first matching record of any host) and
//! `zonemon list --from` (every host's running zones, from the bucket).
//!
//! `watch --from` shows each record once (by host, journal and `seq`), so a
//! record published again after the server's duplicate window is still shown
//! once, and each host's records in `seq` order ([`Order`]). With `--durable NAME` it reads through a durable consumer and
//! acknowledges each record after printing it; stopped by SIGINT/SIGTERM, it
//! finishes the batch in hand first, so started again it resumes exactly
//! after the last record it printed. (Killed with SIGKILL, the records it had
//! taken but not acknowledged come again after the consumer's ack wait.)

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use async_nats::jetstream;
use async_nats::jetstream::consumer::{
    pull, AckPolicy, Consumer as PullConsumerOf, DeliverPolicy, PullConsumer,
};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use zonemon_core::listing::{parseable_line, table};
use zonemon_core::output::{TextSink, WallClock};
use zonemon_core::timefmt::parse_rfc3339;

use super::args::{FromArgs, WatchFromArgs};
use super::connect::{self, ConnectFailure, Servers};
use super::setup::explain;
use super::{BUCKET, JOURNAL_HEADER};
use crate::api::{Target, WaitQuery};
use crate::watch::WatchOptions;

/// Records asked for at a time by a durable watch.
const FETCH: usize = 256;

/// Connects for a command, or says why it cannot.
async fn reach(from: &FromArgs) -> Result<(jetstream::Context, String)> {
    let servers = Servers::parse(from.from.as_deref().expect("--from given"))
        .map_err(|e| anyhow!("--from: {e}"))?;
    let shown = servers.shown();
    let client = connect::connect(&servers, &from.auth.auth(), "zonemon consumer", None)
        .await
        .map_err(|f| match f {
            ConnectFailure::Unreachable(e) | ConnectFailure::Refused(e) => e,
        })?;
    Ok((jetstream::new(client), shown))
}

fn failure(f: ConnectFailure) -> anyhow::Error {
    match f {
        ConnectFailure::Unreachable(e) | ConnectFailure::Refused(e) => e,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")
}

/// `zonemon watch --from`: until SIGINT/SIGTERM (or stdout closes).
pub fn watch(opts: &WatchOptions, args: &WatchFromArgs, since: Option<i128>) -> Result<()> {
    let opts = opts.clone();
    let mut text = TextSink::new(
        io::stdout(),
        opts.all,
        opts.timestamps.then(|| WallClock::new(0)),
    );
    let print = move |rec: Map<String, Value>| {
        if !opts.filter.matches(&rec) {
            return Ok(());
        }
        if opts.json {
            let mut out = io::stdout().lock();
            serde_json::to_writer(&mut out, &rec)?;
            out.write_all(b"\n")?;
            out.flush()?;
        } else {
            text.write_object(&rec)?;
        }
        Ok(())
    };
    runtime()?.block_on(watch_async(args, since, Box::new(print)))
}

/// The fleet's records from `since` (`None`: from now on), each once and each host's in
/// `seq` order, handed to `on_record` until SIGINT/SIGTERM or an error (as `watch --from`
/// prints them; `zonemon top`).
pub fn follow(
    from: &FromArgs,
    since: Option<i128>,
    on_record: impl FnMut(Map<String, Value>) -> Result<()> + 'static,
) -> Result<()> {
    let args = WatchFromArgs {
        from: from.clone(),
        durable: None,
    };
    runtime()?.block_on(watch_async(&args, since, Box::new(on_record)))
}

/// How long a replay waits for the stream's next message before taking it as read to its end.
const REPLAY_QUIET: Duration = Duration::from_secs(3);

/// The fleet's records stored since `since`, up to the stream's end when the replay began,
/// each once and each host's in `seq` order, handed to `on_record` (`zonemon timeline --from`).
pub fn replay(
    from: &FromArgs,
    since: i128,
    on_record: impl FnMut(Map<String, Value>) -> Result<()> + 'static,
) -> Result<()> {
    runtime()?.block_on(async {
        let (js, shown) = reach(from).await?;
        let mut stream = fleet_stream(&js, from, &shown).await?;
        let last = stream
            .info()
            .await
            .context("reading the stream's state")?
            .state
            .last_sequence;
        let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(since)
            .map_err(|e| anyhow!("--since: {e}"))?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartTime { start_time },
                ..Default::default()
            })
            .await
            .map_err(|e| failure(explain(&e, &shown)))?;
        let mut messages = consumer.messages().await?;
        let mut printer = Printer {
            out: Box::new(on_record),
            order: Order::default(),
        };
        // Nothing stored since `since` delivers nothing: a quiet while ends the replay too.
        while let Ok(Some(m)) = tokio::time::timeout(REPLAY_QUIET, messages.next()).await {
            let m = m.context("reading the stream")?;
            printer.print(&m)?;
            if m.info().is_ok_and(|i| i.stream_sequence >= last) {
                break;
            }
        }
        let rest = printer.order.expired(Duration::ZERO);
        printer.write_all(rest)
    })
}

/// Puts each host's records back in `seq` order, each once. A journal's `seq`s are
/// contiguous, so a record after a gap is held until the gap fills (a record lost by a
/// server that died is published again after the ones that followed it) or, after
/// [`HOLD`], given up on (records deleted before they were published never come).
#[derive(Default)]
pub struct Order(HashMap<(String, String), Journal>);

/// How long records wait behind a gap.
const HOLD: Duration = Duration::from_secs(90);

#[derive(Default)]
struct Journal {
    /// Every `seq` up to here was passed on (or given up on).
    floor: u64,
    held: BTreeMap<u64, Map<String, Value>>,
    since: Option<Instant>,
}

impl Journal {
    /// The held records that now follow the floor.
    fn release(&mut self, out: &mut Vec<Map<String, Value>>) {
        while let Some(rec) = self.held.remove(&(self.floor + 1)) {
            self.floor += 1;
            out.push(rec);
        }
        self.since = (!self.held.is_empty()).then(|| self.since.unwrap_or_else(Instant::now));
    }
}

impl Order {
    /// The records that may be passed on now that record `seq` of `host`'s `journal` came.
    pub fn take(
        &mut self,
        host: &str,
        journal: &str,
        seq: u64,
        rec: Map<String, Value>,
    ) -> Vec<Map<String, Value>> {
        let j = self
            .0
            .entry((host.to_string(), journal.to_string()))
            .or_insert_with(|| Journal {
                floor: seq.saturating_sub(1),
                ..Default::default()
            });
        let mut out = Vec::new();
        if seq > j.floor && !j.held.contains_key(&seq) {
            j.held.insert(seq, rec);
            j.release(&mut out);
        }
        out
    }

    /// The records held longer than `hold` behind a gap, given up on: passed on in order.
    pub fn expired(&mut self, hold: Duration) -> Vec<Map<String, Value>> {
        let mut out = Vec::new();
        for ((host, _), j) in &mut self.0 {
            if j.since.is_some_and(|t| t.elapsed() >= hold) {
                let first = *j.held.keys().next().expect("held");
                tracing::warn!(
                    "records {} to {} of host {host} never came",
                    j.floor + 1,
                    first - 1
                );
                j.floor = first - 1;
                j.since = None;
                j.release(&mut out);
            }
        }
        out
    }
}

/// The zonemon record a message carries (`None`, said in the log: it carries something else).
fn record(msg: &async_nats::Message) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(&msg.payload) {
        Ok(Value::Object(rec)) => Some(rec),
        _ => {
            tracing::warn!(
                "skipping a message on {} that is not a zonemon record",
                msg.subject
            );
            None
        }
    }
}

/// What [`Follower::next`] got.
enum Next {
    /// The stream's next message.
    Message(Box<jetstream::Message>),
    /// Nothing for a second.
    Idle,
    /// SIGINT or SIGTERM.
    Stop,
}

/// Every message of the stream from a start on, through an ordered consumer that is made
/// again from the next stream sequence after any failure (a server restarted forgets
/// ephemeral consumers). SIGINT and SIGTERM stop it.
struct Follower {
    stream: jetstream::stream::Stream,
    policy: DeliverPolicy,
    messages: Option<pull::Ordered>,
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Follower {
    /// Reads `stream` from `start`; a consumer the server refuses now is an error.
    async fn open(
        stream: jetstream::stream::Stream,
        start: DeliverPolicy,
        shown: &str,
    ) -> Result<Follower> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut f = Follower {
            stream,
            policy: start,
            messages: None,
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        };
        let consumer = f
            .consumer()
            .await
            .map_err(|e| failure(explain(&e, shown)))?;
        f.messages = Some(consumer.messages().await?);
        Ok(f)
    }

    async fn consumer(
        &self,
    ) -> Result<PullConsumerOf<pull::OrderedConfig>, jetstream::stream::ConsumerError> {
        self.stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: self.policy,
                ..Default::default()
            })
            .await
    }

    /// The next message, a second without one, or a stop.
    async fn next(&mut self) -> Result<Next> {
        loop {
            let Some(messages) = self.messages.as_mut() else {
                match self.consumer().await {
                    Ok(c) => self.messages = Some(c.messages().await?),
                    Err(e) => {
                        tracing::warn!("reading the stream again: {e}");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = self.int.recv() => return Ok(Next::Stop),
                            _ = self.term.recv() => return Ok(Next::Stop),
                        }
                    }
                }
                continue;
            };
            tokio::select! {
                m = messages.next() => match m {
                    Some(Ok(m)) => {
                        if let Ok(info) = m.info() {
                            self.policy = DeliverPolicy::ByStartSequence {
                                start_sequence: info.stream_sequence + 1,
                            };
                        }
                        return Ok(Next::Message(Box::new(m)));
                    }
                    Some(Err(e)) => {
                        tracing::warn!("reading the stream: {e}");
                        self.messages = None;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    None => self.messages = None,
                },
                _ = tokio::time::sleep(Duration::from_secs(1)) => return Ok(Next::Idle),
                _ = self.int.recv() => return Ok(Next::Stop),
                _ = self.term.recv() => return Ok(Next::Stop),
            }
        }
    }
}

/// The fleet's stream named in `from`, or why there is none.
async fn fleet_stream(
    js: &jetstream::Context,
    from: &FromArgs,
    shown: &str,
) -> Result<jetstream::stream::Stream> {
    let name = &from.stream;
    js.get_stream(name).await.map_err(|e| {
        anyhow!(
            "no stream {name} on {shown} ({e}): has a daemon published there \
             (zonemon daemon --publish)?"
        )
    })
}

/// How far before `--since` a wait across the fleet reads the stream: a record is stored
/// after its transition, by a server whose clock may differ a little from the host's.
const CLOCK_SLACK_NS: i128 = 60_000_000_000;

/// `zonemon wait --from`: the first record of any host that `q` matches (`None`: the timeout
/// passed first). The stream is read from just before `q.since` on, then followed, so a zone
/// that did it since the wait began counts however late its host published it, and a zone
/// that does not exist yet is waited for.
pub fn wait(q: &WaitQuery, from: &FromArgs) -> Result<Option<Map<String, Value>>> {
    if let Target::ZoneId(_) = q.target {
        bail!("zone ids are per host: across the fleet, wait for a zone by its name");
    }
    runtime()?.block_on(async {
        let (js, shown) = reach(from).await?;
        let stream = fleet_stream(&js, from, &shown).await?;
        let start = time::OffsetDateTime::from_unix_timestamp_nanos(q.since - CLOCK_SLACK_NS)
            .map_err(|e| anyhow!("--since: {e}"))?;
        let mut follower = Follower::open(
            stream,
            DeliverPolicy::ByStartTime { start_time: start },
            &shown,
        )
        .await?;
        let search = async {
            loop {
                match follower.next().await? {
                    Next::Message(m) => {
                        let Some(rec) = record(&m) else { continue };
                        let at = rec
                            .get("time")
                            .and_then(Value::as_str)
                            .and_then(parse_rfc3339);
                        if at.is_some_and(|t| q.matches(t, &rec)) {
                            return Ok(Some(rec));
                        }
                    }
                    Next::Idle => {}
                    Next::Stop => bail!("stopped by a signal"),
                }
            }
        };
        match q.timeout {
            None => search.await,
            Some(t) => tokio::time::timeout(t, search).await.unwrap_or(Ok(None)),
        }
    })
}

/// Prints the fleet's records that pass `opts`' filter.
struct Printer {
    /// Where each record goes, in order: printed if `watch`'s filter passes it, or to `top`.
    out: Box<dyn FnMut(Map<String, Value>) -> Result<()>>,
    order: Order,
}

impl Printer {
    /// Prints one message's record (unless seen or filtered out), and the records it releases.
    fn print(&mut self, msg: &async_nats::Message) -> Result<()> {
        let Some(rec) = record(msg) else {
            return Ok(());
        };
        let host = rec
            .get("host")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let seq = rec.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let journal = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(JOURNAL_HEADER))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let ready = self.order.take(&host, &journal, seq, rec);
        self.write_all(ready)
    }

    /// Prints the records given up waiting for.
    fn expired(&mut self) -> Result<()> {
        let ready = self.order.expired(HOLD);
        self.write_all(ready)
    }

    fn write_all(&mut self, recs: Vec<Map<String, Value>>) -> Result<()> {
        recs.into_iter().try_for_each(&mut self.out)
    }
}

async fn watch_async(
    args: &WatchFromArgs,
    since: Option<i128>,
    out: Box<dyn FnMut(Map<String, Value>) -> Result<()>>,
) -> Result<()> {
    let (js, shown) = reach(&args.from).await?;
    let stream_name = &args.from.stream;
    let stream = fleet_stream(&js, &args.from, &shown).await?;
    let deliver = match since {
        Some(t) => DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from_unix_timestamp_nanos(t)
                .map_err(|e| anyhow!("--since: {e}"))?,
        },
        None => DeliverPolicy::New,
    };
    let mut printer = Printer {
        out,
        order: Order::default(),
    };
    let watching =
        || eprintln!("zonemon: watching the fleet on {shown} (stream {stream_name}); Ctrl-C stops");
    match &args.durable {
        None => {
            let mut follower = Follower::open(stream, deliver, &shown).await?;
            watching();
            loop {
                match follower.next().await? {
                    Next::Message(m) => printer.print(&m)?,
                    Next::Idle => printer.expired()?,
                    Next::Stop => return Ok(()),
                }
            }
        }
        Some(name) => {
            let consumer: PullConsumer = stream
                .get_or_create_consumer(
                    name,
                    pull::Config {
                        durable_name: Some(name.clone()),
                        deliver_policy: deliver,
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(30),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| failure(explain(&e, &shown)))?;
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt())?;
            let mut term = signal(SignalKind::terminate())?;
            watching();
            let mut stopping = false;
            while !stopping {
                let batch = consumer
                    .fetch()
                    .max_messages(FETCH)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await;
                let mut batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!("reading the durable consumer {name}: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                // The batch in hand is printed and acknowledged whole, signal or not:
                // what the server handed out must not wait for a redelivery.
                loop {
                    tokio::select! {
                        m = batch.next() => match m {
                            Some(Ok(m)) => {
                                printer.print(&m)?;
                                m.ack().await.map_err(|e| anyhow!("acknowledging: {e}"))?;
                            }
                            Some(Err(e)) => {
                                tracing::warn!("reading the durable consumer {name}: {e}");
                                break;
                            }
                            None => break,
                        },
                        _ = int.recv() => stopping = true,
                        _ = term.recv() => stopping = true,
                    }
                }
                printer.expired()?;
            }
            js.client()
                .flush()
                .await
                .context("sending the last acknowledgements")?;
            Ok(())
        }
    }
}

/// `zonemon list --from`: the fleet's running zones from the bucket, with a host column.
pub fn list(parseable: bool, from: &FromArgs) -> Result<()> {
    let rows = running(from)?;
    write_fleet_list(rows, parseable, &mut io::stdout().lock())?;
    Ok(())
}

/// The fleet's running zones from the bucket: (host, the zone's newest record).
pub fn running(from: &FromArgs) -> Result<Vec<(String, Map<String, Value>)>> {
    runtime()?.block_on(async {
        let (js, shown) = reach(from).await?;
        let bucket = js.get_key_value(BUCKET).await.map_err(|e| {
            anyhow!(
                "no bucket {BUCKET} on {shown} ({e}): has a daemon published there \
                 (zonemon daemon --publish)?"
            )
        })?;
        let mut rows = Vec::new();
        for (key, value) in bucket_snapshot(&js, &bucket).await? {
            let Some((host, _)) = key.split_once('.') else {
                continue;
            };
            let Ok(Value::Object(rec)) = serde_json::from_slice::<Value>(&value) else {
                continue;
            };
            rows.push((host.to_string(), rec));
        }
        Ok::<_, anyhow::Error>(rows)
    })
}

/// How long reading the bucket to its end may take.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The bucket's keys with their newest values, as of this call: a watch from
/// each key's newest value, read until it reaches the bucket's last sequence
/// taken just after the watch began. (The bucket's own key listing ends only
/// at a moment with nothing left to deliver, which a fleet under constant
/// churn never has: `zonemon list --from` then never finished.)
async fn bucket_snapshot(
    js: &jetstream::Context,
    bucket: &jetstream::kv::Store,
) -> Result<BTreeMap<String, bytes::Bytes>> {
    let mut watch = bucket
        .watch_with_history(">")
        .await
        .context("reading the bucket")?;
    let last = js
        .get_stream(format!("KV_{BUCKET}"))
        .await
        .context("reading the bucket's stream")?
        .info()
        .await
        .context("reading the bucket's stream")?
        .state
        .last_sequence;
    let mut values = BTreeMap::new();
    if last == 0 {
        return Ok(values);
    }
    let read = async {
        while let Some(entry) = watch.next().await {
            let entry = entry.context("reading the bucket")?;
            match entry.operation {
                jetstream::kv::Operation::Put => {
                    values.insert(entry.key, entry.value);
                }
                jetstream::kv::Operation::Delete | jetstream::kv::Operation::Purge => {
                    values.remove(&entry.key);
                }
            }
            if entry.revision >= last || entry.delta == 0 {
                return Ok(());
            }
        }
        bail!("the bucket's watch ended early")
    };
    tokio::time::timeout(SNAPSHOT_TIMEOUT, read)
        .await
        .map_err(|_| anyhow!("reading the bucket took over {SNAPSHOT_TIMEOUT:?}"))??;
    Ok(values)
}

/// Writes the zones `rows` (host, record): the table with a HOST column first, or with
/// `parseable` one `host:zone_id:name:state:root:container_id:runtime:pidns` line per zone.
fn write_fleet_list(
    rows: Vec<(String, Map<String, Value>)>,
    parseable: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut rows: Vec<(String, zonemon_core::ZoneEvent, Option<String>)> = rows
        .into_iter()
        .filter_map(|(host, rec)| {
            let root = rec.get("root").and_then(Value::as_str).map(String::from);
            Some((host, crate::api::zone_event(&rec)?, root))
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1.zone_id).cmp(&(&b.0, b.1.zone_id)));
    if parseable {
        for (host, ev, root) in &rows {
            writeln!(out, "{host}:{}", parseable_line(ev, root.as_deref()))?;
        }
    } else {
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
        let events: Vec<_> = rows
            .iter()
            .map(|(_, e, r)| (e.clone(), r.clone()))
            .collect();
        let hosts = std::iter::once("HOST").chain(rows.iter().map(|r| r.0.as_str()));
        for (host, line) in hosts.zip(table(&events).lines()) {
            writeln!(out, "{host:<width$}  {line}")?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_come_out_once_in_seq_order_per_host_and_journal() {
        let mut o = Order::default();
        let mut take = |host: &str, journal: &str, seq: u64| -> Vec<u64> {
            let rec = json!({"seq": seq}).as_object().unwrap().clone();
            o.take(host, journal, seq, rec)
                .iter()
                .map(|r| r["seq"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(take("a", "j", 7), [7], "the first one sets the floor");
        assert_eq!(take("a", "j", 8), [8]);
        assert!(take("a", "j", 8).is_empty(), "a repeat");
        assert!(take("a", "j", 7).is_empty(), "a replay");
        assert!(take("a", "j", 10).is_empty(), "held behind 9");
        assert!(take("a", "j", 11).is_empty());
        assert!(take("a", "j", 10).is_empty(), "a repeat while held");
        assert_eq!(take("b", "j", 1), [1], "another host");
        assert_eq!(take("a", "j", 9), [9, 10, 11]);
        assert_eq!(take("a", "k", 1), [1], "a journal made anew");
        assert!(take("a", "j", 13).is_empty());
        assert!(o.expired(Duration::from_secs(3600)).is_empty());
        let given_up: Vec<u64> = o
            .expired(Duration::ZERO)
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(given_up, [13]);
    }

    #[test]
    fn the_fleet_list_has_a_host_column() {
        let rec = |id: u64, name: &str| {
            json!({"seq": 1, "event": "booted", "name": name, "zone_id": id, "init_pid": 10,
                   "pidns": 4026532000u64, "level": 1, "time": "2026-12-02T04:00:00Z"})
            .as_object()
            .unwrap()
            .clone()
        };
        let rows = vec![
            ("web-2".to_string(), rec(3, "b:c")),
            ("web-1".to_string(), rec(7, "aap")),
        ];
        let mut out = Vec::new();
        write_fleet_list(rows.clone(), true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("web-1:7:aap:running:"), "{text}");
        assert!(text.contains("\nweb-2:3:b\\:c:running:"), "{text}");
        let mut out = Vec::new();
        write_fleet_list(rows, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("HOST   ZONE_ID"), "{text}");
        assert!(
            lines[1].starts_with("web-1  ") && lines[1].contains("aap"),
            "{text}"
        );
    }
}
