//! The journal against a real SQLite file in a temporary directory: the
//! writer, the reader side, retention, and a full database (SQLite's
//! `max_page_count` makes it report SQLITE_FULL as a full disk would).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use zonemon_core::output::WallClock;
use zonemon_core::{EventKind, ZoneEvent};

use super::retention::{used_bytes, Retention};
use super::schema;
use super::store::{opened, JournalStore, Shared};
use super::writer::{Entry, Writer};
use crate::store::EventStore;

/// CLOCK_REALTIME − CLOCK_BOOTTIME of the tests' clock.
const BOOT_TO_UNIX_NS: i128 = 1_800_000_000_000_000_000;

/// The tests' wall clock.
fn clock() -> WallClock {
    WallClock::new(BOOT_TO_UNIX_NS)
}

fn event(kind: EventKind, zone_id: u64, ts_ns: u64) -> Entry {
    Entry::Event(Box::new(zone_event(kind, zone_id, ts_ns)))
}

/// A transition of zone `zone_id` (named `zone<id>`) at boot-time `ts_ns`.
pub fn zone_event(kind: EventKind, zone_id: u64, ts_ns: u64) -> ZoneEvent {
    let mut ev = ZoneEvent::example(kind, &format!("zone{zone_id}"));
    ev.ts_ns = ts_ns;
    ev.zone_id = zone_id;
    ev.pidns = 4026532000 + zone_id as u32;
    ev.init_pid = 1000 + zone_id as u32;
    ev.cgroup = None;
    ev
}

/// The four transitions of zone `id`, at `t`, `t+1` … (boot-time ns).
fn life(id: u64, t: u64) -> Vec<Entry> {
    [
        EventKind::Ready,
        EventKind::Booted,
        EventKind::Shutdown,
        EventKind::Down,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, k)| event(k, id, t + i as u64))
    .collect()
}

/// A writer on the journal at `path` as it is now, and the store its commits feed.
fn writer(path: &Path, retention: Retention) -> (Writer, Arc<JournalStore>) {
    let conn = schema::open_writer(path).unwrap();
    let start = opened(&conn).unwrap();
    let shared = Shared::new(&start);
    let store = JournalStore::new(path, Arc::clone(&shared));
    let w = Writer::new(
        conn,
        path.to_path_buf(),
        clock(),
        start.marks,
        retention,
        shared,
    )
    .unwrap();
    (w, store)
}

const KEEP_ALL: Retention = Retention {
    max_age: None,
    max_bytes: None,
};

fn events_of(recs: &[crate::store::StoredRecord]) -> Vec<(u64, String)> {
    recs.iter()
        .map(|r| (r.seq, r.object["event"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn batches_get_increasing_seqs_and_readers_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let (mut w, store) = writer(&path, KEEP_ALL);
    let mut follow = store.subscribe();
    assert_eq!(store.last_seq(), 0);
    let mut batch = life(1, 100);
    batch.push(Entry::SourceLost {
        count: Some(3),
        ts_ns: 200,
    });
    batch.extend(life(2, 300).into_iter().take(2));
    w.commit(batch);
    assert!(follow.has_changed().unwrap());
    assert_eq!(*follow.borrow_and_update(), 7);
    assert_eq!(store.last_seq(), 7);
    let recs = store.read_after(0, 100).unwrap();
    assert_eq!(
        events_of(&recs),
        [
            (1, "ready"),
            (2, "booted"),
            (3, "shutdown"),
            (4, "down"),
            (5, "lost"),
            (6, "ready"),
            (7, "booted")
        ]
        .map(|(s, e)| (s, e.to_string()))
    );
    // The whole watch --json object, with seq first.
    let first = &recs[0];
    assert_eq!(first.object.keys().next().map(String::as_str), Some("seq"));
    assert_eq!(first.object["zone_id"], 1);
    assert_eq!(first.object["time"], "2027-01-15T08:00:00.000000100Z");
    assert_eq!(first.unix_ns, clock().unix_ns(100));
    assert_eq!(recs[4].object["count"], 3);
    // Pages, and times.
    assert_eq!(events_of(&store.read_after(5, 1).unwrap())[0].0, 6);
    assert_eq!(store.seq_before_time(clock().unix_ns(300)).unwrap(), 5);
    assert_eq!(store.seq_before_time(0).unwrap(), 0);
    assert_eq!(store.seq_before_time(i128::MAX).unwrap(), 7);
    // Zone 2 runs; zone 1 is gone.
    let running = store.running();
    assert_eq!(running.len(), 1);
    assert_eq!(
        (running[0].seq, running[0].object["zone_id"].clone()),
        (7, json!(2))
    );
}

#[test]
fn seq_and_zone_ids_continue_across_reopening_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let (mut w, _) = writer(&path, KEEP_ALL);
    w.commit(life(7, 10));
    w.commit(life(8, 20).into_iter().take(2).collect());
    drop(w);
    // Commits leave the marks to the newest row: read back from it.
    let before = opened(&schema::open_reader(&path).unwrap()).unwrap().marks;
    assert_eq!((before.next_seq, before.max_zone_id), (7, 8));
    assert!(before.last_unix_ns.is_some());
    // Retention deletes every record older than a millisecond (all of them).
    let (w, _) = writer(
        &path,
        Retention {
            max_age: Some(Duration::from_millis(1)),
            max_bytes: None,
        },
    );
    let (tx, rx) = super::writer::queue(4);
    drop(tx);
    assert_eq!(w.run_blocking(rx), 0); // nothing queued: enforces retention and ends
    let conn = schema::open_reader(&path).unwrap();
    let count: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);
    let again = opened(&conn).unwrap();
    assert_eq!(
        (again.marks.next_seq, again.marks.max_zone_id),
        (7, 8),
        "marks survive retention"
    );
    assert_eq!(
        again.marks.last_unix_ns, before.last_unix_ns,
        "so does the newest record's time (the daemon's absence is measured from it)"
    );
    // Zone 8 is still running: its newest record is kept out of retention's reach.
    assert_eq!(again.live.len(), 1);
    assert_eq!(again.live[0].object["event"], "booted");
    let (mut w, store) = writer(&path, KEEP_ALL);
    assert_eq!(store.running().len(), 1);
    w.commit(life(9, 30));
    assert_eq!(events_of(&store.read_after(0, 10).unwrap())[0].0, 7);
}

#[test]
fn a_full_database_counts_what_it_could_not_keep_then_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let (mut w, store) = writer(&path, KEEP_ALL);
    w.commit(life(1, 10));
    let pages: i64 = schema::open_reader(&path)
        .unwrap()
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    // No room: every batch fails as on a full disk.
    w.set_max_pages(pages);
    for id in 2..50 {
        w.commit(life(id, 100 * id));
    }
    // What fitted in the last page's room went in; the rest did not.
    let kept = store.last_seq();
    let failed = 48 * 4 - (kept - 4);
    assert!(failed >= 4 * 40, "only {failed} records failed");
    // Room again.
    w.set_max_pages(1 << 30);
    w.commit(life(99, 10_000));
    let recs = store.read_after(kept, 100).unwrap();
    assert_eq!(recs[0].object["event"], "lost");
    assert_eq!(recs[0].object["reason"], "journal");
    assert_eq!(recs[0].object["count"], failed);
    assert_eq!(recs[0].seq, kept + 1);
    assert_eq!(recs.len(), 5);
    assert!(recs[1..].iter().all(|r| r.object["zone_id"] == 99));
}

/// Runs size retention to `limit` bytes until it says it is done (in fewer than 100 steps).
fn trim_to(conn: &rusqlite::Connection, limit: u64) {
    let retention = Retention {
        max_age: None,
        max_bytes: Some(limit),
    };
    let marks = opened(conn).unwrap().marks.high_water();
    let mut steps = 0;
    while retention.step(conn, 0, marks).unwrap() {
        steps += 1;
        assert!(steps < 100, "retention does not converge");
    }
}

#[test]
fn retention_by_size_keeps_the_newest_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let limit = 64 * 1024;
    let (mut w, store) = writer(
        &path,
        Retention {
            max_age: None,
            max_bytes: Some(limit),
        },
    );
    for id in 1..=500 {
        w.commit(life(id, id * 10));
    }
    let conn = schema::open_writer(&path).unwrap();
    assert!(used_bytes(&conn).unwrap() > limit);
    trim_to(&conn, limit);
    assert!(used_bytes(&conn).unwrap() <= limit);
    let kept = store.read_after(0, 10_000).unwrap();
    assert!(!kept.is_empty() && kept.len() < 2000);
    assert_eq!(kept.last().unwrap().seq, 2000, "the newest is kept");
    let seqs: Vec<u64> = kept.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (seqs[0]..=2000).collect::<Vec<_>>(),
        "the oldest went first"
    );
}

#[test]
fn retention_by_size_keeps_the_newest_history_when_running_zones_alone_exceed_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let limit = 16 * 1024;
    let (mut w, store) = writer(&path, KEEP_ALL);
    // 400 zones of others that keep running: their newest records alone exceed the limit.
    for id in 1..=400 {
        w.commit(life(id, id * 10).into_iter().take(2).collect());
    }
    for id in 401..=700 {
        w.commit(life(id, id * 10));
    }
    let conn = schema::open_writer(&path).unwrap();
    let live: i64 = conn
        .query_row("SELECT coalesce(sum(length(json)), 0) FROM live", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(live as u64 > limit, "the running zones take {live} bytes");
    trim_to(&conn, limit);
    let kept = store.read_after(0, 10_000).unwrap();
    assert!(!kept.is_empty(), "the newest history is kept");
    assert_eq!(
        kept.last().unwrap().seq,
        800 + 1200,
        "the newest record is kept"
    );
    assert!(kept.len() < 1200, "the oldest went: {} kept", kept.len());
}

#[test]
fn retention_catches_up_on_a_quiet_journal_without_a_further_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let limit = 64 * 1024;
    let (w, _store) = writer(
        &path,
        Retention {
            max_age: None,
            max_bytes: Some(limit),
        },
    );
    let (tx, rx) = super::writer::queue(4096);
    let running = std::thread::spawn(move || w.run_blocking(rx));
    // One life, then a pause: the writer commits it and checks retention (all is
    // within the limit), then the rest arrives within a second of that check.
    for entry in life(1, 10) {
        tx.blocking_send(entry).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    for id in 2..=500 {
        for entry in life(id, id * 10) {
            tx.blocking_send(entry).unwrap();
        }
    }
    // The sender stays open and sends nothing more: retention must still run.
    let conn = schema::open_writer(&path).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let committed = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM events WHERE seq = 2000", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    while committed(&conn) == 0 || used_bytes(&conn).unwrap() > limit {
        assert!(
            std::time::Instant::now() < deadline,
            "the journal stayed at {} bytes over a {limit}-byte limit",
            used_bytes(&conn).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(tx);
    assert_eq!(running.join().unwrap(), 0);
}

#[test]
fn objects_of_the_daemon_are_kept_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let (mut w, store) = writer(&path, KEEP_ALL);
    let Value::Object(start) = json!({"time": "2027-01-15T08:00:00.000000000Z",
        "event": "monitor-start", "boot_id": "b00t", "gap_ns": null})
    else {
        unreachable!()
    };
    w.commit(vec![Entry::made(start.clone(), BOOT_TO_UNIX_NS)]);
    let rec = &store.read_after(0, 1).unwrap()[0];
    let mut expect = Map::new();
    expect.insert("seq".into(), 1.into());
    expect.extend(start);
    assert_eq!(*rec.object, expect);
    let conn = schema::open_reader(&path).unwrap();
    assert_eq!(opened(&conn).unwrap().boot_id.as_deref(), Some("b00t"));
}

#[test]
fn live_rows_follow_each_zone_across_and_within_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let (mut w, _store) = writer(&path, KEEP_ALL);
    let live = |path: &Path| -> Vec<(u64, String)> {
        let conn = schema::open_reader(path).unwrap();
        opened(&conn)
            .unwrap()
            .live
            .iter()
            .map(|r| (r.seq, r.object["event"].as_str().unwrap().to_string()))
            .collect()
    };
    // Zone 1 lives and ends within one batch: no row; zone 2 keeps its newest; zone 3 is ready.
    let mut batch = life(1, 100);
    batch.extend(life(2, 200).into_iter().take(2));
    batch.extend(life(3, 300).into_iter().take(1));
    w.commit(batch);
    assert_eq!(
        live(&path),
        [(6, "booted".to_string()), (7, "ready".to_string())]
    );
    // Zone 2 goes down in the next batch; zone 3 shuts down.
    let mut batch: Vec<Entry> = life(2, 200).into_iter().skip(2).collect();
    batch.push(event(EventKind::Shutdown, 3, 302));
    w.commit(batch);
    assert_eq!(live(&path), [(10, "shutdown".to_string())]);
    // A writer opened afresh knows zone 3 has a row and deletes it when it goes down.
    drop(w);
    let (mut w, _store) = writer(&path, KEEP_ALL);
    w.commit(vec![event(EventKind::Down, 3, 303)]);
    assert!(live(&path).is_empty());
}

/// CPU per record of the writer alone, by batch size (not a pass/fail test:
/// `cargo test --release -p zonemon --lib journal::tests::writer_cost -- --ignored --nocapture`).
#[test]
#[ignore]
fn writer_cost() {
    fn thread_cpu_ns() -> u64 {
        zonemon_core::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) as u64
    }
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let sizes: Vec<usize> = std::env::var("BATCHES")
        .map(|v| v.split(',').map(|n| n.parse().unwrap()).collect())
        .unwrap_or_else(|_| vec![1, 2, 4, 8, 16, 64]);
    for (k, per_batch) in sizes.into_iter().enumerate() {
        let path = dir.path().join(format!("j{k}.db"));
        let (mut w, _store) = writer(&path, KEEP_ALL);
        let zones = 4000;
        let entries: Vec<Entry> = (0..zones as u64)
            .flat_map(|z| life(z + 1, z * 10))
            .collect();
        let n = entries.len();
        let mut entries = entries.into_iter().peekable();
        let start = thread_cpu_ns();
        while entries.peek().is_some() {
            w.commit(entries.by_ref().take(per_batch).collect());
        }
        let ns = thread_cpu_ns() - start;
        println!(
            "batch {per_batch}: {:.1} µs CPU per record",
            ns as f64 / n as f64 / 1000.0
        );
    }
}
