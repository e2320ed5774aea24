//! The journal's one writer: a task that takes records from the hot path's
//! bounded queue, gives each the next `seq` and commits everything queued in
//! one transaction, then tells readers, then asks the syncer to flush the
//! log to the disk (readers never wait for the disk; see `syncer`).
//!
//! In the daemon the task runs on the local API's thread (see
//! [`crate::api::serve`]): the clients following the journal are served on
//! the thread that committed their records, right after the commit, with no
//! wakeup of another thread in between. Elsewhere [`Writer::run_blocking`]
//! gives it a thread of its own.
//!
//! Invariants: `seq` only grows, also across restarts (its high-water mark is
//! committed in `meta` with every batch, so retention deleting rows never
//! makes one reused); a batch is all in or all out; a batch that cannot be
//! committed (a full disk, an I/O error) is counted, said on stderr once per
//! episode, and — when writing works again — recorded as a `lost` record with
//! `"reason":"journal"` and the count, ahead of the records that follow.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode};
use serde_json::{Map, Value};
use tokio::sync::mpsc::{self, error::TryRecvError};
use zonemon_core::output::{lost_json, to_json, WallClock};
use zonemon_core::ZoneEvent;

use super::retention::{HighWater, Retention};
use super::store::Shared;
use super::syncer::Syncer;
use crate::store::StoredRecord;

/// The sending end of the writer's queue: the hot path only ever `try_send`s.
pub type Queue = mpsc::Sender<Entry>;

/// The writer's end of its queue.
pub type Records = mpsc::Receiver<Entry>;

/// A queue to a writer that holds at most `capacity` entries.
pub fn queue(capacity: usize) -> (Queue, Records) {
    mpsc::channel(capacity)
}

/// What the hot path hands the writer.
#[derive(Debug)]
pub enum Entry {
    /// A zone transition, as the tracker reported it.
    Event(Box<ZoneEvent>),
    /// The source lost `count` observations (`None`: an unknown number), noticed at boot-time `ts_ns`.
    SourceLost {
        /// How many, when the source can tell.
        count: Option<u64>,
        /// When it was noticed (CLOCK_BOOTTIME ns).
        ts_ns: u64,
    },
    /// A record made whole by the daemon (`monitor-start`, a queue `lost`, a
    /// zone resynced at start); boxed, as the queue's every slot is as large as its largest entry.
    Object(Box<MadeRecord>),
}

impl Entry {
    /// A record the daemon made whole itself, dated `unix_ns`.
    pub fn made(object: Map<String, Value>, unix_ns: i128) -> Self {
        Entry::Object(Box::new(MadeRecord { object, unix_ns }))
    }
}

/// A record the daemon made whole itself.
#[derive(Debug)]
pub struct MadeRecord {
    /// The JSON object, without `seq`.
    pub object: Map<String, Value>,
    /// Its time, nanoseconds since the Unix epoch.
    pub unix_ns: i128,
}

/// The most records committed in one transaction: enough to amortise a
/// commit's fixed cost, few enough that a writer catching up after a stall
/// holds a bounded number of records in memory at once (each is a JSON object
/// while it is committed and handed to readers).
const MAX_BATCH: usize = 1024;

/// Under sustained churn (see [`Load`]) a batch gathers what arrives for this
/// long after its first record before it is committed: a commit has a fixed
/// cost (the pages it rewrites, the readers told, a flush asked for) that one
/// record at a time paid again and again. Idle or one zone at a time, a record
/// is committed as soon as it arrives.
const GATHER: Duration = Duration::from_millis(5);

/// Retention is checked after a commit at most this often: a check is a
/// read of the index and the page counts, kept off the path of the next batch.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

/// The pause between two steps of retention that follow each other.
const RETENTION_PAUSE: Duration = Duration::from_millis(1);

/// Where the writer starts from (read from the journal when it was opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    /// The next record's `seq`.
    pub next_seq: u64,
    /// The highest zone id the journal ever held.
    pub max_zone_id: u64,
    /// The time of the newest record written (even if retention deleted it since).
    pub last_unix_ns: Option<i64>,
}

impl Marks {
    /// What retention keeps in `meta` before it deletes records.
    pub fn high_water(&self) -> HighWater {
        HighWater {
            next_seq: self.next_seq,
            last_unix_ns: self.last_unix_ns,
        }
    }
}

/// The writer's state.
pub struct Writer {
    conn: Connection,
    path: PathBuf,
    clock: WallClock,
    marks: Marks,
    retention: Retention,
    shared: Arc<Shared>,
    syncer: Syncer,
    /// Records that could not be committed since the last commit that worked.
    unjournaled: u64,
    /// Whether retention must be checked the next time the queue is empty
    /// (at start, at most every [`RETENTION_EVERY`] after a commit, and at exit).
    retention_due: bool,
    /// Whether records were committed since retention was last checked: a
    /// check is then due [`RETENTION_EVERY`] after the last one, even if no
    /// record follows (a quiet host must not keep a journal over its limit).
    retention_pending: bool,
    /// When retention was last checked.
    retention_checked: Instant,
    /// Told every committed batch, after readers (each must return at once: hooks, metrics).
    subscribers: Vec<Subscriber>,
    /// How busy the queue has been lately: whether batches wait to gather.
    load: Load,
    /// The zones the `live` table has a row of (as committed).
    in_live: HashSet<u64>,
    /// Transactions committed and the records in them, said at exit.
    commits: u64,
    records: u64,
}

/// The records that arrived in the current and the previous window of
/// [`Load::WINDOW`]: the writer is under sustained churn (and batches wait
/// [`GATHER`] to grow) when either holds [`Load::BUSY`] records or more.
/// One zone at a time (four records per zone, zones tens of milliseconds
/// apart) never is.
#[derive(Debug)]
struct Load {
    start: Instant,
    current: usize,
    previous: usize,
}

impl Load {
    const WINDOW: Duration = Duration::from_millis(50);
    /// 64 records in 50 ms: 1,280 records (320 zones) a second.
    const BUSY: usize = 64;

    fn new(now: Instant) -> Self {
        Load {
            start: now,
            current: 0,
            previous: 0,
        }
    }

    /// Counts `n` records arrived at `now`.
    fn add(&mut self, n: usize, now: Instant) {
        let since = now.saturating_duration_since(self.start);
        if since >= Self::WINDOW {
            self.previous = if since < 2 * Self::WINDOW {
                self.current
            } else {
                0
            };
            self.current = 0;
            self.start = now;
        }
        self.current += n;
    }

    fn busy(&self) -> bool {
        self.current.max(self.previous) >= Self::BUSY
    }
}

/// Records just committed, and the JSON text of each as stored.
type Committed = (Vec<StoredRecord>, Vec<Arc<str>>);

/// Something told of every committed batch, in `seq` order.
pub type Subscriber = Box<dyn FnMut(&[StoredRecord]) + Send>;

impl Writer {
    /// A writer committing to `conn` (the journal at `path`), from `marks` on;
    /// starts the thread that flushes the journal's log to the disk.
    pub fn new(
        conn: Connection,
        path: PathBuf,
        clock: WallClock,
        marks: Marks,
        retention: Retention,
        shared: Arc<Shared>,
    ) -> anyhow::Result<Self> {
        let in_live = conn
            .prepare("SELECT zone_id FROM live")?
            .query_map([], |r| r.get::<_, i64>(0))?
            .map(|z| z.map(|z| z as u64))
            .collect::<rusqlite::Result<HashSet<u64>>>()?;
        Ok(Writer {
            in_live,
            commits: 0,
            records: 0,
            conn,
            syncer: Syncer::start(path.clone())?,
            path,
            clock,
            marks,
            retention,
            shared,
            unjournaled: 0,
            retention_due: true,
            retention_pending: false,
            retention_checked: Instant::now(),
            subscribers: Vec::new(),
            load: Load::new(Instant::now()),
        })
    }

    /// Also tells `subscriber` of every batch committed; it must never wait.
    pub fn also_to(&mut self, subscriber: Subscriber) {
        self.subscribers.push(subscriber);
    }

    /// [`Writer::run`] on the calling thread (with a runtime of its own).
    pub fn run_blocking(self, queue: Records) -> u64 {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime with a timer (no I/O) always builds")
            .block_on(self.run(queue))
    }

    /// Commits what arrives on `queue`, a batch at a time, until every sender
    /// is gone and the queue is empty; enforces retention while idle.
    /// Returns how many records never reached the journal.
    ///
    /// A commit runs on the task's thread without yielding (the records'
    /// order and the batch's atomicity need nothing else); between commits,
    /// and between retention's steps, the thread's other tasks run.
    pub async fn run(mut self, mut queue: Records) -> u64 {
        // One allocation for every batch: growing a new vector record by
        // record, under churn, was most of the writer's time in malloc.
        let mut batch: Vec<Entry> = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = if self.retention_due {
                match queue.try_recv() {
                    Ok(entry) => entry,
                    Err(TryRecvError::Empty) => {
                        self.retention_due = self.retention_step();
                        if self.retention_due {
                            // A pause between steps (thousands of them after a long
                            // absence): the thread's other tasks run, and a realtime
                            // thread sleeps well within its budget.
                            tokio::time::sleep(RETENTION_PAUSE).await;
                        }
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else if self.retention_pending {
                let wait = RETENTION_EVERY.saturating_sub(self.retention_checked.elapsed());
                match tokio::time::timeout(wait, queue.recv()).await {
                    Ok(Some(entry)) => entry,
                    Ok(None) => break,
                    Err(_) => {
                        self.retention_pending = false;
                        self.retention_due = true;
                        continue;
                    }
                }
            } else {
                match queue.recv().await {
                    Some(entry) => entry,
                    None => break,
                }
            };
            let arrived = Instant::now();
            batch.push(first);
            take_queued(&mut queue, &mut batch);
            self.load.add(batch.len(), arrived);
            if self.load.busy() && batch.len() < MAX_BATCH {
                // Sleeping, not waiting on the queue: the records that arrive
                // meanwhile wake no one.
                tokio::time::sleep(GATHER.saturating_sub(arrived.elapsed())).await;
                let before = batch.len();
                take_queued(&mut queue, &mut batch);
                self.load.add(batch.len() - before, Instant::now());
            }
            if let Some(committed) = self.commit_and_publish(&mut batch) {
                // The followers woken by the commit are served first.
                tokio::task::yield_now().await;
                self.after_commit(&committed);
            }
        }
        self.retention_due = true;
        while self.retention_due {
            self.retention_due = self.retention_step();
        }
        tracing::info!(
            records = self.records,
            transactions = self.commits,
            "the journal writer is done"
        );
        if self.unjournaled > 0 {
            eprintln!(
                "zonemon: error: {} record(s) could not be written to the journal {} before exit",
                self.unjournaled,
                self.path.display()
            );
        }
        self.unjournaled
    }

    /// Commits `batch` in one transaction and tells readers, the
    /// subscribers and the syncer, or counts it as unjournaled.
    #[cfg(test)]
    pub fn commit(&mut self, mut batch: Vec<Entry>) {
        if let Some(committed) = self.commit_and_publish(&mut batch) {
            self.after_commit(&committed);
        }
    }

    /// Commits `batch` in one transaction and tells readers, or counts it as
    /// unjournaled; returns what was committed, for [`Writer::after_commit`].
    /// Leaves `batch` empty either way.
    fn commit_and_publish(&mut self, batch: &mut Vec<Entry>) -> Option<Vec<StoredRecord>> {
        let n = batch.len() as u64;
        let result = self.try_commit(batch);
        batch.clear();
        match result {
            Ok((committed, texts)) => {
                if self.unjournaled > 0 {
                    eprintln!(
                        "zonemon: journal: writing again; {} record(s) could not be journaled \
                         (recorded as a lost record, seq {})",
                        self.unjournaled, committed[0].seq
                    );
                    self.unjournaled = 0;
                }
                self.retention_pending = true;
                self.commits += 1;
                self.records += committed.len() as u64;
                self.shared.published(&committed, &texts);
                Some(committed)
            }
            Err(e) => {
                if self.unjournaled == 0 {
                    let why = if e.sqlite_error_code() == Some(ErrorCode::DiskFull) {
                        "its filesystem is full"
                    } else {
                        "a write failed"
                    };
                    eprintln!(
                        "zonemon: error: cannot write the journal {} ({why}: {e}); watching goes \
                         on, records that cannot be journaled are counted and a lost record will \
                         say how many once writing works again",
                        self.path.display()
                    );
                }
                self.unjournaled += n;
                None
            }
        }
    }

    /// What follows a commit, off the readers' path: the subscribers are told
    /// and the syncer is asked to flush the log.
    fn after_commit(&mut self, committed: &[StoredRecord]) {
        for tell in &mut self.subscribers {
            tell(committed);
        }
        self.syncer.request();
    }

    /// The JSON object and time of one entry.
    fn object(clock: &WallClock, entry: Entry) -> (Map<String, Value>, i128) {
        match entry {
            Entry::Event(ev) => (to_json(&ev, clock), clock.unix_ns(ev.ts_ns)),
            Entry::SourceLost { count, ts_ns } => {
                (lost_json(count, ts_ns, clock), clock.unix_ns(ts_ns))
            }
            Entry::Object(object) => (object.object, object.unix_ns),
        }
    }

    /// Commits `batch` in one transaction; each entry becomes its JSON object
    /// only as it is inserted. Returns the records committed and their JSON
    /// text (as stored), in the same order.
    fn try_commit(&mut self, batch: &mut Vec<Entry>) -> rusqlite::Result<Committed> {
        let mut marks = self.marks;
        let mut committed = Vec::with_capacity(batch.len() + 1);
        let mut texts = Vec::with_capacity(batch.len() + 1);
        let clock = self.clock.clone();
        let records = batch.drain(..).map(|e| Self::object(&clock, e));
        // Each zone's `live` row after this batch, by zone: its newest record
        // (seq, text) or none (down). A zone's earlier records in the batch
        // never reach `live`, and a zone that boots and goes down within the
        // batch never touches it.
        let mut newest: BTreeMap<u64, Option<(u64, Arc<str>)>> = BTreeMap::new();
        let tx = self.conn.transaction()?;
        let mut boot_id = None;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (seq, unix_ns, event, zone_id, name, json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let lost = (self.unjournaled > 0).then(|| journal_lost(self.unjournaled, &self.clock));
            for (mut full, unix_ns) in lost.into_iter().chain(records) {
                let seq = marks.next_seq;
                marks.next_seq += 1;
                full.shift_insert(0, "seq".into(), seq.into());
                let text: Arc<str> = serde_json::to_string(&full)
                    .expect("a JSON map always serializes")
                    .into();
                let event = full.get("event").and_then(Value::as_str).unwrap_or("");
                let zone_id = full.get("zone_id").and_then(Value::as_u64);
                let name = full.get("name").and_then(Value::as_str);
                let time = i64::try_from(unix_ns).unwrap_or(i64::MAX);
                insert.execute(params![
                    seq as i64,
                    time,
                    event,
                    zone_id.map(|z| z as i64),
                    name,
                    &*text
                ])?;
                if let Some(zone) = zone_id {
                    marks.max_zone_id = marks.max_zone_id.max(zone);
                    newest.insert(zone, (event != "down").then(|| (seq, Arc::clone(&text))));
                }
                if event == "monitor-start" {
                    boot_id = full
                        .get("boot_id")
                        .and_then(Value::as_str)
                        .map(String::from);
                }
                marks.last_unix_ns = Some(time);
                committed.push(StoredRecord {
                    seq,
                    unix_ns,
                    object: Arc::new(full),
                });
                texts.push(text);
            }
            let mut live = tx.prepare_cached(
                "INSERT OR REPLACE INTO live (zone_id, seq, json) VALUES (?1, ?2, ?3)",
            )?;
            let mut gone = tx.prepare_cached("DELETE FROM live WHERE zone_id = ?1")?;
            for (zone, row) in &newest {
                match row {
                    Some((seq, text)) => {
                        live.execute(params![*zone as i64, *seq as i64, &**text])?;
                    }
                    None if self.in_live.contains(zone) => {
                        gone.execute([*zone as i64])?;
                    }
                    None => {}
                }
            }
            // `next_seq` and the newest record's time are the newest row's: written
            // to `meta` only before retention deletes rows (two pages less per commit).
            let mut meta =
                tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
            if marks.max_zone_id != self.marks.max_zone_id {
                meta.execute(params!["max_zone_id", marks.max_zone_id as i64])?;
            }
            if let Some(id) = boot_id {
                meta.execute(params!["boot_id", id])?;
            }
        }
        tx.commit()?;
        self.marks = marks;
        for (zone, row) in newest {
            if row.is_some() {
                self.in_live.insert(zone);
            } else {
                self.in_live.remove(&zone);
            }
        }
        Ok((committed, texts))
    }

    /// One step of retention; whether another is due.
    fn retention_step(&mut self) -> bool {
        self.retention_checked = Instant::now();
        let now = self.clock.unix_ns(zonemon_core::clock::boot_time_ns());
        match self
            .retention
            .step(&self.conn, now, self.marks.high_water())
        {
            Ok(more) => more,
            Err(e) => {
                eprintln!(
                    "zonemon: warning: cannot enforce the journal's retention in {}: {e}",
                    self.path.display()
                );
                false
            }
        }
    }
}

/// Moves what is queued into `batch`, up to [`MAX_BATCH`] records; never waits.
fn take_queued(queue: &mut Records, batch: &mut Vec<Entry>) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(entry) => batch.push(entry),
            Err(_) => break,
        }
    }
}

/// The record saying `count` records did not reach the journal, dated now.
fn journal_lost(count: u64, clock: &WallClock) -> (Map<String, Value>, i128) {
    let now = zonemon_core::clock::boot_time_ns();
    let mut object = lost_json(Some(count), now, clock);
    object.insert("reason".into(), "journal".into());
    (object, clock.unix_ns(now))
}

#[cfg(test)]
impl Writer {
    /// Caps this connection's database at `pages` pages: SQLite then reports
    /// SQLITE_FULL, as on a full disk.
    pub fn set_max_pages(&self, pages: i64) {
        self.conn
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;

    #[test]
    fn churn_is_busy_one_zone_at_a_time_is_not() {
        let t0 = Instant::now();
        let mut load = Load::new(t0);
        // One zone (four records) every 20 ms.
        for k in 0..50u64 {
            load.add(4, t0 + Duration::from_millis(20 * k));
            assert!(!load.busy());
        }
        // 2,000 records a second: busy within the first window.
        let t1 = t0 + Duration::from_secs(2);
        for k in 0..200u64 {
            load.add(1, t1 + Duration::from_micros(500 * k));
        }
        assert!(load.busy());
        // Quiet for two windows: not busy any more.
        load.add(1, t1 + Duration::from_millis(300));
        assert!(!load.busy());
    }
}
