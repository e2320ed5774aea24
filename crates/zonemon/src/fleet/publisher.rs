//! The daemon's publisher: a thread with a tokio runtime of its own that
//! reads the journal (the outbox) after the highest acknowledged `seq`,
//! publishes each record to the stream and each zone's state to the bucket,
//! waits for the acknowledgements, and records the new highest `seq` in the
//! journal.
//!
//! It never holds records of its own and never slows the journal's writer:
//! it is woken by the writer's commits (the store's notification) and reads
//! committed rows on its own connections. While the servers cannot be
//! reached it waits and retries; the daemon journals on, and the lag
//! (records journaled but not acknowledged) is a metric and is logged.
//! After any outage, publishing resumes at the first record not
//! acknowledged: records published again carry the same `Nats-Msg-Id`, which
//! the server drops within its duplicate window (and consumers by `seq`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::connect::{self, Auth, ConnectFailure, Servers};
use super::names::{msg_id, subject, zone_key};
use super::outbox::Outbox;
use super::setup::{self, StreamSettings};
use super::{BUCKET, JOURNAL_HEADER};
use crate::journal::store::JournalStore;
use crate::metrics::Metrics;
use crate::store::{EventStore, StoredRecord};

/// What the daemon publishes, where, and as which host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOptions {
    /// The NATS servers.
    pub servers: Servers,
    /// Credentials and TLS.
    pub auth: Auth,
    /// This host's id (one subject token).
    pub host_id: String,
    /// The stream and the settings it is created with.
    pub stream: StreamSettings,
}

/// Records read and published at a time (each zone record is two messages: the stream's
/// and the bucket's).
const BATCH: usize = 512;

/// Records published again after the connection to the servers was lost and made again: a
/// server killed at once may lose the last records it acknowledged but had not yet written
/// (a single server writes its store asynchronously); the duplicate window drops those it kept.
const REWIND: u64 = 4096;

/// How long an acknowledgement may take (a loaded server answers late; a publish given up
/// on is published again, after the ones that followed it).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the daemon waits at start-up to learn whether the servers refuse it.
const FIRST_CONTACT: Duration = Duration::from_secs(20);

/// How long a stopping daemon keeps publishing what is left.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How often the acknowledged `seq` is written to the journal while records flow.
const MARK_EVERY: Duration = Duration::from_millis(250);

/// How often the lag is logged while the servers cannot be reached.
const LAG_LOG_EVERY: Duration = Duration::from_secs(30);

/// The publishing thread; [`Publisher::stop`] ends it.
pub struct Publisher {
    thread: std::thread::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Publisher {
    /// Starts publishing the journal at `journal` (read through `store`). Waits for the first
    /// contact with the servers: credentials refused, no JetStream or a stream with other
    /// settings are an error; servers that cannot be reached are not (publishing starts when
    /// they can).
    pub fn start(
        opts: PublishOptions,
        journal: &Path,
        store: Arc<JournalStore>,
        metrics: Option<Metrics>,
    ) -> Result<Publisher> {
        let outbox = Outbox::open(journal, &opts.stream.name)?;
        let journal_id = outbox.journal_id()?;
        let acked = outbox.acked()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (first_tx, first_rx) = mpsc::channel();
        let state = State {
            opts,
            journal: journal.to_path_buf(),
            store,
            metrics,
            outbox,
            journal_id,
            acked,
            marked: acked,
            stopped,
            first: Some(first_tx),
            reconciled: false,
            connections: Arc::new(AtomicU64::new(0)),
            connections_seen: 0,
        };
        let thread = std::thread::Builder::new()
            .name("zonemon-publish".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = state
                            .first
                            .as_ref()
                            .map(|f| f.send(Err(anyhow!("starting the publisher's runtime: {e}"))));
                        return;
                    }
                };
                rt.block_on(state.run());
            })
            .context("starting the publisher")?;
        match first_rx.recv_timeout(FIRST_CONTACT) {
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Ok(Ok(())) | Err(mpsc::RecvTimeoutError::Timeout) => Ok(Publisher { thread, stop }),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                bail!("the publisher ended at start-up")
            }
        }
    }

    /// Publishes what is left (for a few seconds at most), records the acknowledged `seq`, ends.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        if self.thread.join().is_err() {
            tracing::error!("the publisher panicked");
        }
    }
}

/// How publishing stopped.
enum Pumped {
    /// The daemon is stopping.
    Stop,
    /// A publish failed (the servers went away, …): resume from the acknowledged `seq`.
    Failed(anyhow::Error),
}

/// The publishing thread's state.
struct State {
    opts: PublishOptions,
    journal: PathBuf,
    store: Arc<JournalStore>,
    metrics: Option<Metrics>,
    outbox: Outbox,
    journal_id: String,
    /// The highest `seq` acknowledged (with its bucket update).
    acked: u64,
    /// The highest `seq` recorded as acknowledged in the journal.
    marked: u64,
    stopped: tokio::sync::watch::Receiver<bool>,
    /// Told the outcome of the first contact with the servers.
    first: Option<mpsc::Sender<Result<()>>>,
    /// Whether the bucket was brought in line with the journal since this daemon started.
    reconciled: bool,
    /// Connections to the servers lost (counted by the client's events).
    connections: Arc<AtomicU64>,
    /// The losses already seen by the publishing loop.
    connections_seen: u64,
}

impl State {
    async fn run(mut self) {
        let servers = self.opts.servers.shown();
        let mut down_since: Option<Instant> = None;
        let mut last_lag_log = Instant::now();
        let mut backoff = Duration::from_millis(200);
        while !self.stopping() {
            let name = format!("zonemon {}", self.opts.host_id);
            let connected = connect::connect(
                &self.opts.servers,
                &self.opts.auth,
                &name,
                Some(Arc::clone(&self.connections)),
            )
            .await;
            let failure = match connected {
                Ok(client) => {
                    self.connections_seen = self.connections.load(Ordering::Relaxed);
                    let js = jetstream::ContextBuilder::new()
                        .timeout(ACK_TIMEOUT)
                        .build(client);
                    match self.serve(&js, &servers, &mut down_since).await {
                        Ok(()) => break,
                        Err(f) => f,
                    }
                }
                Err(f) => f,
            };
            let (e, fatal) = match failure {
                ConnectFailure::Unreachable(e) => (e, false),
                ConnectFailure::Refused(e) => (e, true),
            };
            if let Some(first) = self.first.take() {
                if fatal {
                    let _ = first.send(Err(e));
                    return;
                }
                let _ = first.send(Ok(()));
            }
            let lag = self.lag();
            if down_since.is_none() || last_lag_log.elapsed() >= LAG_LOG_EVERY {
                match down_since {
                    None => tracing::warn!(
                        "not publishing: {e:#}; journaling goes on and publishing resumes from \
                         seq {} when the servers answer (lag {lag} records)",
                        self.acked + 1
                    ),
                    Some(t) => tracing::warn!(
                        "still not publishing after {}s: {e:#} (lag {lag} records)",
                        t.elapsed().as_secs()
                    ),
                }
                last_lag_log = Instant::now();
            }
            down_since.get_or_insert_with(Instant::now);
            self.mark();
            let wait = if fatal {
                Duration::from_secs(30)
            } else {
                backoff
            };
            backoff = (backoff * 2).min(Duration::from_secs(5));
            let mut stopped = self.stopped.clone();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|s| *s) => {}
            }
        }
        self.mark();
    }

    /// Sets up the stream and the bucket, then publishes until stopped (`Ok`) or a failure.
    async fn serve(
        &mut self,
        js: &jetstream::Context,
        servers: &str,
        down_since: &mut Option<Instant>,
    ) -> Result<(), ConnectFailure> {
        loop {
            let created = setup::stream(js, &self.opts.stream, servers).await?;
            let bucket = setup::bucket(js, self.opts.stream.replicas, servers).await?;
            if let Some(first) = self.first.take() {
                let how = if created {
                    "created it"
                } else {
                    "it existed, with zonemon's settings"
                };
                tracing::info!(
                    "publishing to stream {} on {servers} ({how}) as host {}, from seq {}",
                    self.opts.stream.name,
                    self.opts.host_id,
                    self.acked + 1
                );
                let _ = first.send(Ok(()));
            }
            if let Some(t) = down_since.take() {
                tracing::info!(
                    "publishing again after {}s; catching up {} records",
                    t.elapsed().as_secs(),
                    self.lag()
                );
            }
            match self.pump(js, &bucket).await {
                Pumped::Stop => return Ok(()),
                Pumped::Failed(e) => {
                    self.mark();
                    tracing::warn!(
                        "publishing failed: {e:#}; resuming from seq {} (lag {} records)",
                        self.acked + 1,
                        self.lag()
                    );
                    *down_since = Some(Instant::now());
                    let mut stopped = self.stopped.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stopped.wait_for(|s| *s) => return Ok(()),
                    }
                }
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.stopped.borrow()
    }

    /// Records journaled and not acknowledged.
    fn lag(&self) -> u64 {
        let lag = self.store.last_seq().saturating_sub(self.acked);
        if let Some(m) = &self.metrics {
            m.publish_lag_records.set(lag as i64);
        }
        lag
    }

    /// Writes the acknowledged `seq` to the journal if it moved.
    fn mark(&mut self) {
        if self.acked == self.marked {
            return;
        }
        match self.outbox.set_acked(self.acked) {
            Ok(()) => self.marked = self.acked,
            Err(e) => tracing::warn!(
                "cannot record the published seq in the journal {}: {e:#}",
                self.journal.display()
            ),
        }
    }

    /// Publishes batches until stopped or a failure.
    async fn pump(&mut self, js: &jetstream::Context, bucket: &kv::Store) -> Pumped {
        let mut notified = self.store.subscribe();
        let mut stopped = self.stopped.clone();
        let mut stop_by: Option<Instant> = None;
        let mut last_mark = Instant::now();
        loop {
            let connections = self.connections.load(Ordering::Relaxed);
            if connections != self.connections_seen {
                self.connections_seen = connections;
                let from = self.acked.saturating_sub(REWIND);
                tracing::info!(
                    "the connection to the servers was lost: publishing again from seq {} (what \
                     they kept is dropped as a duplicate)",
                    from + 1
                );
                self.acked = from;
            }
            if stop_by.is_none() && self.stopping() {
                stop_by = Some(Instant::now() + STOP_GRACE);
            }
            if stop_by.is_some_and(|t| Instant::now() >= t) {
                return Pumped::Stop;
            }
            let records = match self.store.read_after(self.acked, BATCH) {
                Ok(r) => r,
                Err(e) => return Pumped::Failed(e),
            };
            if records.is_empty() {
                self.mark();
                self.lag();
                if stop_by.is_some() {
                    return Pumped::Stop;
                }
                if !self.reconciled {
                    if let Err(e) = self.reconcile(bucket).await {
                        return Pumped::Failed(e.context("bringing the bucket in line"));
                    }
                    self.reconciled = true;
                    continue;
                }
                notified.borrow_and_update();
                if self.store.last_seq() > self.acked {
                    continue;
                }
                tokio::select! {
                    _ = notified.changed() => {}
                    _ = stopped.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            if records[0].seq > self.acked + 1 {
                tracing::warn!(
                    "records {} to {} were deleted by the journal's retention before they were \
                     published (the servers were unreachable for longer than --retain allows)",
                    self.acked + 1,
                    records[0].seq - 1
                );
            }
            if let Err(e) = self.publish(js, &records).await {
                return Pumped::Failed(e);
            }
            if let Some(m) = &self.metrics {
                m.published_records.inc_by(records.len() as u64);
            }
            self.lag();
            if last_mark.elapsed() >= MARK_EVERY {
                self.mark();
                last_mark = Instant::now();
            }
        }
    }

    /// Publishes `records` (and their zones' states), pipelined, and waits for every
    /// acknowledgement in order, moving `acked` as they come.
    async fn publish(&mut self, js: &jetstream::Context, records: &[StoredRecord]) -> Result<()> {
        let host = self.opts.host_id.clone();
        let mut pending: Vec<(u64, bool, PublishAckFuture)> = Vec::with_capacity(records.len() * 2);
        for rec in records {
            let object = with_host(&rec.object, &host);
            let payload = bytes::Bytes::from(
                serde_json::to_vec(&Value::Object(object)).expect("a JSON map serializes"),
            );
            let event = rec
                .object
                .get("event")
                .and_then(Value::as_str)
                .unwrap_or("");
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(msg_id(&host, &self.journal_id, rec.seq))
                .header(JOURNAL_HEADER, self.journal_id.as_str());
            let zone = zone_op(&rec.object, &host);
            let ack = js
                .send_publish(subject(&host, event), message)
                .await
                .with_context(|| format!("publishing record {}", rec.seq))?;
            pending.push((rec.seq, zone.is_none(), ack));
            if let Some((key, put)) = zone {
                let message = if put {
                    PublishMessage::build().payload(payload)
                } else {
                    PublishMessage::build().header("KV-Operation", "DEL")
                };
                let ack = js
                    .send_publish(format!("$KV.{BUCKET}.{key}"), message)
                    .await
                    .with_context(|| format!("updating the bucket for record {}", rec.seq))?;
                pending.push((rec.seq, true, ack));
            }
        }
        for (seq, last_of_record, ack) in pending {
            ack.await
                .with_context(|| format!("waiting for the acknowledgement of record {seq}"))?;
            if last_of_record {
                self.acked = seq;
            }
        }
        Ok(())
    }

    /// Brings this host's keys in the bucket in line with the zones the journal has running
    /// (after a restart, or a bucket lost or edited): deletes the others, puts the missing.
    async fn reconcile(&mut self, bucket: &kv::Store) -> Result<()> {
        let host = self.opts.host_id.clone();
        let prefix = format!("{host}.");
        let want: HashMap<String, StoredRecord> = self
            .store
            .running()
            .into_iter()
            .filter_map(|r| {
                let zone = r.object.get("zone_id")?.as_u64()?;
                Some((zone_key(&host, zone), r))
            })
            .collect();
        let mut have = HashSet::new();
        let mut keys = bucket.keys().await.context("listing the bucket's keys")?;
        while let Some(key) = keys.next().await {
            let key = key.context("listing the bucket's keys")?;
            if key.starts_with(&prefix) {
                have.insert(key);
            }
        }
        let (mut put, mut deleted) = (0, 0);
        for key in have.iter().filter(|k| !want.contains_key(*k)) {
            bucket.delete(key).await.context("deleting a key")?;
            deleted += 1;
        }
        for (key, rec) in want.iter().filter(|(k, _)| !have.contains(*k)) {
            let value = serde_json::to_vec(&Value::Object(with_host(&rec.object, &host)))?;
            bucket
                .put(key, value.into())
                .await
                .context("putting a key")?;
            put += 1;
        }
        if put + deleted > 0 {
            tracing::info!(
                "the bucket {BUCKET} brought in line with the journal: {put} zone(s) put, \
                 {deleted} removed"
            );
        }
        Ok(())
    }
}

/// The record as published: the journal's object with `host` (after `seq`).
fn with_host(object: &Map<String, Value>, host: &str) -> Map<String, Value> {
    let mut out = Map::with_capacity(object.len() + 1);
    for (k, v) in object {
        out.insert(k.clone(), v.clone());
        if k == "seq" {
            out.insert("host".into(), host.into());
        }
    }
    out.entry("host").or_insert_with(|| host.into());
    out
}

/// What a record does to the bucket: `(key, true)` puts the zone (it runs), `(key, false)`
/// deletes it (it shut down or went down); `None` for notices about no zone.
fn zone_op(object: &Map<String, Value>, host: &str) -> Option<(String, bool)> {
    let zone = object.get("zone_id")?.as_u64()?;
    let event = object.get("event").and_then(Value::as_str)?;
    let put = !matches!(event, "shutdown" | "down");
    Some((zone_key(host, zone), put))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn records_carry_their_host_after_seq() {
        let r =
            obj(json!({"seq": 3, "time": "t", "event": "booted", "name": "a.b*", "zone_id": 9}));
        let out = with_host(&r, "web-1");
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["seq", "host", "time", "event", "name", "zone_id"]);
        assert_eq!(zone_op(&r, "web-1"), Some(("web-1.9".into(), true)));
        let down = obj(json!({"seq": 4, "event": "down", "zone_id": 9}));
        assert_eq!(zone_op(&down, "h"), Some(("h.9".into(), false)));
        let lost = obj(json!({"seq": 5, "event": "lost"}));
        assert_eq!(zone_op(&lost, "h"), None);
        assert_eq!(with_host(&lost, "h")["host"], "h");
    }
}
