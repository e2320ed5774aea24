//! Reading the journal: what the daemon finds at start-up ([`Opened`]), and
//! [`JournalStore`], the [`EventStore`] the local API serves from.
//!
//! Readers use their own read-only connections (a small pool), so a read
//! never waits on the writer (WAL); the newest committed `seq`, the zones
//! running now and the newest records are kept in memory by the writer after
//! each commit ([`Shared`]): a follower at the journal's end reads nothing
//! back from the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::recent::{Recent, RECENT_RECORDS};
use super::schema;
use super::writer::Marks;
use crate::store::{EventStore, StoredRecord};

/// What the journal held when it was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// Where the writer continues.
    pub marks: Marks,
    /// The host boot the last daemon ran in (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: Option<String>,
    /// The newest record of every zone the journal has not seen go down, by zone id.
    pub live: Vec<StoredRecord>,
}

/// Reads the marks and the zones not yet down from the journal `conn`.
pub fn opened(conn: &Connection) -> Result<Opened> {
    let meta = |key: &str| -> Result<Option<i64>> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .with_context(|| format!("reading the journal's {key}"))
    };
    let boot_id: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'boot_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let mut stmt = conn.prepare("SELECT seq, json FROM live ORDER BY zone_id")?;
    let live = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .map(|row| {
            let (seq, json) = row?;
            record(seq, None, &json)
        })
        .collect::<Result<Vec<_>>>()?;
    // A commit does not write `next_seq` or the newest record's time to
    // `meta` (retention does, before it deletes rows): they are the newest row's.
    let newest: Option<(i64, i64)> = conn
        .query_row(
            "SELECT seq, unix_ns FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .context("reading the journal's newest record")?;
    let kept_next = meta("next_seq")?.unwrap_or(1);
    let next_seq = newest.map_or(kept_next, |(seq, _)| kept_next.max(seq + 1));
    let last_unix_ns = newest.map(|(_, t)| t).or(meta("last_unix_ns")?);
    Ok(Opened {
        marks: Marks {
            next_seq: next_seq.max(1) as u64,
            max_zone_id: meta("max_zone_id")?.unwrap_or(0).max(0) as u64,
            last_unix_ns,
        },
        boot_id,
        live,
    })
}

/// A stored record from its row; its time from the column, or from the JSON `time`.
fn record(seq: i64, unix_ns: Option<i64>, json: &str) -> Result<StoredRecord> {
    let object = match serde_json::from_str(json) {
        Ok(Value::Object(m)) => m,
        _ => anyhow::bail!("the journal's record {seq} is not a JSON object"),
    };
    let unix_ns = match unix_ns {
        Some(t) => i128::from(t),
        None => object
            .get("time")
            .and_then(Value::as_str)
            .and_then(zonemon_core::timefmt::parse_rfc3339)
            .unwrap_or(0),
    };
    Ok(StoredRecord {
        seq: seq as u64,
        unix_ns,
        object: object.into(),
    })
}

/// A running zone's newest record as the zone table keeps it: its JSON text,
/// about a fifth of the memory of the parsed object (the table holds one per
/// running zone, thousands on a busy host), parsed again when a reader asks.
#[derive(Debug, Clone)]
struct RunningRow {
    seq: u64,
    unix_ns: i128,
    /// Shared, so a reader copies the table under its lock and parses outside it.
    json: Arc<str>,
}

impl RunningRow {
    /// The row of a record read back from the journal (its running zones at start-up).
    fn of(rec: &StoredRecord) -> Self {
        RunningRow {
            seq: rec.seq,
            unix_ns: rec.unix_ns,
            json: serde_json::to_string(&*rec.object)
                .expect("a JSON map always serializes")
                .into(),
        }
    }

    fn record(&self) -> StoredRecord {
        let object = match serde_json::from_str(&self.json) {
            Ok(Value::Object(m)) => m,
            _ => unreachable!("the zone table holds only JSON objects it serialized"),
        };
        StoredRecord {
            seq: self.seq,
            unix_ns: self.unix_ns,
            object: object.into(),
        }
    }
}

/// What the writer publishes after each commit, for readers.
pub struct Shared {
    last_seq: AtomicU64,
    notify: tokio::sync::watch::Sender<u64>,
    /// Zones not shut down: their newest record, by zone id.
    running: RwLock<BTreeMap<u64, RunningRow>>,
    /// The newest committed records.
    recent: Mutex<Recent>,
}

impl Shared {
    /// The state of a journal just opened.
    pub fn new(opened: &Opened) -> Arc<Self> {
        let last = opened.marks.next_seq - 1;
        let running = opened
            .live
            .iter()
            .filter(|r| event_of(&r.object) != "shutdown")
            .filter_map(|r| Some((zone_of(&r.object)?, RunningRow::of(r))))
            .collect();
        Arc::new(Shared {
            last_seq: AtomicU64::new(last),
            notify: tokio::sync::watch::Sender::new(last),
            running: RwLock::new(running),
            recent: Mutex::new(Recent::new(opened.marks.next_seq, RECENT_RECORDS)),
        })
    }

    /// Takes in a batch just committed, in `seq` order; readers are told last.
    /// `texts` are the records' JSON text as stored, one per record: the table
    /// of running zones keeps them as they are.
    pub fn published(&self, committed: &[StoredRecord], texts: &[Arc<str>]) {
        let Some(last) = committed.last().map(|r| r.seq) else {
            return;
        };
        {
            let mut running = self.running.write().expect("no writer panics holding it");
            for (rec, text) in committed.iter().zip(texts) {
                let Some(zone) = zone_of(&rec.object) else {
                    continue;
                };
                match event_of(&rec.object) {
                    "shutdown" | "down" => {
                        running.remove(&zone);
                    }
                    _ => {
                        running.insert(
                            zone,
                            RunningRow {
                                seq: rec.seq,
                                unix_ns: rec.unix_ns,
                                json: Arc::clone(text),
                            },
                        );
                    }
                }
            }
        }
        self.recent
            .lock()
            .expect("no writer panics holding it")
            .add(committed.iter().cloned());
        self.last_seq.store(last, Ordering::Release);
        self.notify.send_replace(last);
    }
}

fn event_of(object: &Map<String, Value>) -> &str {
    object.get("event").and_then(Value::as_str).unwrap_or("")
}

fn zone_of(object: &Map<String, Value>) -> Option<u64> {
    object.get("zone_id").and_then(Value::as_u64)
}

/// The journal as the API reads it. Cheap to share (`Arc`).
pub struct JournalStore {
    path: PathBuf,
    /// Idle read-only connections; one is opened when none is idle.
    pool: Mutex<Vec<Connection>>,
    shared: Arc<Shared>,
}

/// Idle connections kept for reuse.
const POOL_KEEP: usize = 4;

impl JournalStore {
    /// A store reading the journal at `path`, kept current by the writer that owns `shared`.
    pub fn new(path: &Path, shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(JournalStore {
            path: path.to_path_buf(),
            pool: Mutex::new(Vec::new()),
            shared,
        })
    }

    /// A store of the journal at `path` as it is now, with no writer (`zonemon events`).
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        let conn = schema::open_reader(path)?;
        let shared = Shared::new(&opened(&conn)?);
        let store = JournalStore::new(path, shared);
        store.pool.lock().expect("not poisoned").push(conn);
        Ok(store)
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.pool.lock().expect("not poisoned").pop();
        let conn = match idle {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        let out = f(&conn);
        let mut pool = self.pool.lock().expect("not poisoned");
        if pool.len() < POOL_KEEP {
            pool.push(conn);
        }
        out
    }
}

impl EventStore for JournalStore {
    /// From memory when it holds every record after `after`, else from the file.
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<StoredRecord>> {
        let recent = self
            .shared
            .recent
            .lock()
            .expect("no writer panics holding it")
            .after(after, limit);
        if let Some(records) = recent {
            return Ok(records);
        }
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, unix_ns, json FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                (
                    after.min(i64::MAX as u64) as i64,
                    limit.min(i64::MAX as usize) as i64,
                ),
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )?;
            rows.map(|row| {
                let (seq, t, json) = row?;
                record(seq, Some(t), &json)
            })
            .collect()
        })
        .context("reading the journal")
    }

    /// The `seq` just before the first record (in `seq` order) dated at or after
    /// `unix_ns`, so that a replay from it misses nothing dated from then on:
    /// where record times are in `seq` order (they are, but for records dated
    /// at a zone's creation on a resync), this is the highest `seq` dated before.
    fn seq_before_time(&self, unix_ns: i128) -> Result<u64> {
        let t = i64::try_from(unix_ns).unwrap_or(if unix_ns < 0 { i64::MIN } else { i64::MAX });
        self.with_conn(|conn| {
            let first: Option<i64> = conn.query_row(
                "SELECT min(seq) FROM events WHERE unix_ns >= ?1",
                [t],
                |r| r.get(0),
            )?;
            Ok(match first {
                Some(seq) => seq as u64 - 1,
                None => self.last_seq(),
            })
        })
        .context("finding a time in the journal")
    }

    fn last_seq(&self) -> u64 {
        self.shared.last_seq.load(Ordering::Acquire)
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.notify.subscribe()
    }

    fn running(&self) -> Vec<StoredRecord> {
        let rows: Vec<RunningRow> = self
            .shared
            .running
            .read()
            .expect("no writer panics holding it")
            .values()
            .cloned()
            .collect();
        rows.iter().map(RunningRow::record).collect()
    }
}
