//! `GET /v1/events`: the journal as NDJSON, replayed from a `seq` or a time,
//! then followed live.
//!
//! Exactness at the seam: the stream reads the journal after the last `seq`
//! it sent, in a loop woken by [`EventStore::subscribe`], marking the
//! notification seen *before* each read. A batch committed while it reads is
//! either in that read or wakes the next one: nothing is skipped, nothing sent
//! twice, whether it was committed before or after the client connected.
//!
//! Back-pressure: the stream makes its next chunk only when the connection
//! asks for it (its buffer has room), so a slow client costs a bounded buffer,
//! never the journal or the other clients. A client that falls more than
//! `max_lag` records behind what was committed since it connected gets a
//! final `{"event":"behind","resume_after":SEQ}` line and is disconnected; it
//! resumes with `after=SEQ`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::progress::Progress;
use super::query::{EventsQuery, Start};
use super::reply::Body;
use crate::store::{EventStore, StoredRecord};

/// Records read from the journal at a time.
const BATCH: usize = 256;

/// The stream's position and what it still has to do.
struct Follower {
    store: Arc<dyn EventStore>,
    /// The last `seq` read (sent or filtered out).
    after: u64,
    q: EventsQuery,
    since: Option<i128>,
    /// Woken after each committed batch.
    commits: watch::Receiver<u64>,
    /// The journal's end when the client connected: lag counts from there.
    lag_base: u64,
    max_lag: u64,
    /// With `initial`: each listed zone's `seq` as listed; its records up to it were already sent.
    listed: HashMap<u64, u64>,
    /// The `running` lines of `initial`, sent first.
    first: Option<Bytes>,
    done: bool,
    progress: Arc<Progress>,
}

/// The NDJSON body answering `q`; `max_lag` bounds how far behind the client may fall.
pub fn body(
    store: Arc<dyn EventStore>,
    q: EventsQuery,
    max_lag: u64,
    progress: Arc<Progress>,
) -> anyhow::Result<Body> {
    // Subscribed before the start is fixed: a commit after that point wakes the first wait.
    let commits = store.subscribe();
    let (after, since) = match q.start {
        Start::Now => (store.last_seq(), None),
        Start::After(seq) => (seq, None),
        Start::Since(t) => (store.seq_before_time(t)?, Some(t)),
    };
    let mut f = Follower {
        lag_base: store.last_seq(),
        store,
        after,
        q,
        since,
        commits,
        max_lag,
        listed: HashMap::new(),
        first: None,
        done: false,
        progress,
    };
    if f.q.initial {
        f.list_running();
    }
    let chunks = futures_util::stream::unfold(f, |mut f| async move {
        let chunk = f.next_chunk().await?;
        f.progress.handed();
        Some((Ok::<_, Infallible>(Frame::data(chunk)), f))
    });
    Ok(StreamBody::new(chunks).boxed_unsync())
}

impl Follower {
    /// Lists the running zones as `running` lines and follows from before the listing:
    /// records the listing already reflects are skipped by zone and `seq`.
    fn list_running(&mut self) {
        self.after = self.store.last_seq();
        let mut out = Vec::new();
        for r in self.store.running() {
            if let Some(id) = r.object.get("zone_id").and_then(Value::as_u64) {
                self.listed.insert(id, r.seq);
            }
            let mut obj = Arc::unwrap_or_clone(r.object);
            obj.insert("event".into(), "running".into());
            obj.insert("initial".into(), true.into());
            if self.q.filter.matches(&obj) {
                push_line(&mut out, &obj);
            }
        }
        self.first = (!out.is_empty()).then(|| out.into());
    }

    /// The next chunk of lines, waiting for commits while following; `None` at the end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        self.progress.asked();
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            if self.done {
                return None;
            }
            let head = self.store.last_seq();
            if head.saturating_sub(self.after.max(self.lag_base)) > self.max_lag {
                self.done = true;
                return Some(self.notice("behind", format!(
                    "this client fell more than {} records behind; reconnect with after={} to resume",
                    self.max_lag, self.after
                )));
            }
            self.commits.borrow_and_update();
            let batch = match self.store.read_after(self.after, BATCH) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "reading the journal for a client");
                    self.done = true;
                    return Some(self.notice("error", format!("reading the journal: {e:#}")));
                }
            };
            let full = batch.len() == BATCH;
            let mut out = Vec::new();
            for r in batch {
                if self.q.until.is_some_and(|u| r.unix_ns > u) {
                    self.done = true;
                    break;
                }
                self.after = r.seq;
                if self.wanted(&r) {
                    push_line(&mut out, &r.object);
                }
            }
            if !out.is_empty() {
                return Some(out.into());
            }
            if full || self.done {
                tokio::task::yield_now().await; // a long filtered replay shares the thread
                continue;
            }
            if !self.q.follow {
                return None;
            }
            self.wait_for_commits().await;
        }
    }

    /// Waits for the next commit; past `until`, stops following (one more read ends the stream).
    async fn wait_for_commits(&mut self) {
        let until = self.q.until.map(|u| {
            let now = zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME);
            std::time::Duration::from_nanos(u.saturating_sub(now).clamp(0, u64::MAX as i128) as u64)
        });
        tokio::select! {
            changed = self.commits.changed() => {
                if changed.is_err() {
                    self.done = true; // the journal's writer is gone: the daemon is stopping
                }
            }
            _ = tokio::time::sleep(until.unwrap_or_default()), if until.is_some() => {
                self.q.follow = false;
            }
        }
    }

    /// Whether record `r` goes to the client.
    fn wanted(&self, r: &StoredRecord) -> bool {
        if self.since.is_some_and(|t| r.unix_ns < t) {
            return false;
        }
        let listed = r
            .object
            .get("zone_id")
            .and_then(Value::as_u64)
            .and_then(|id| self.listed.get(&id));
        if listed.is_some_and(|&seq| r.seq <= seq) {
            return false;
        }
        self.q.filter.matches(&r.object)
    }

    /// A last line about the stream itself (`behind`, `error`), with where to resume.
    fn notice(&self, event: &str, message: String) -> Bytes {
        let now = zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME);
        let obj = json!({
            "time": zonemon_core::timefmt::rfc3339_nanos(now),
            "event": event,
            "resume_after": self.after,
            "message": message,
        });
        let mut out = Vec::new();
        push_line(&mut out, obj.as_object().expect("an object"));
        out.into()
    }
}

/// Appends `obj` as one JSON line.
fn push_line(out: &mut Vec<u8>, obj: &Map<String, Value>) {
    serde_json::to_writer(&mut *out, obj).expect("a JSON object always serializes");
    out.push(b'\n');
}
