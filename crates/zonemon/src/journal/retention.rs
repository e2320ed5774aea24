//! Retention: the journal keeps records for so long (`--retain`) and within
//! so many bytes (`--retain-size`), deleting the oldest in small steps so
//! that no step holds the writer for long.
//!
//! Zones still running keep their newest record in the `live` table, which
//! retention never touches and `--retain-size` does not count: the limit
//! bounds the history, so a host running more zones than the limit holds
//! records of still keeps its newest history. The high-water marks in `meta`
//! survive too, so sequence numbers and zone ids are never reused: the
//! writer's `next_seq` and its newest record's time, which a commit does not
//! write (they are the newest row's), are written there before any record is
//! deleted.

use std::time::Duration;

use rusqlite::Connection;

/// At most this many records are deleted per step.
const STEP_ROWS: i64 = 1000;

/// What the writer has written so far, kept in `meta` before records are
/// deleted (the newest row, which says it otherwise, may go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighWater {
    /// The next record's `seq`.
    pub next_seq: u64,
    /// The time of the newest record written, if any.
    pub last_unix_ns: Option<i64>,
}

impl HighWater {
    /// Writes the marks to `meta` (before a deletion, in the same connection).
    fn keep(&self, conn: &Connection) -> rusqlite::Result<()> {
        let mut put =
            conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
        put.execute(("next_seq", self.next_seq as i64))?;
        if let Some(t) = self.last_unix_ns {
            put.execute(("last_unix_ns", t))?;
        }
        Ok(())
    }
}

/// How much of the journal to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Records older than this (by their time) are deleted.
    pub max_age: Option<Duration>,
    /// The oldest records are deleted while the history's share of the
    /// database's pages in use exceeds this many bytes (the running zones'
    /// newest records and the WAL file, a few MiB at most, come on top).
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// Deletes at most one step's worth of the oldest records that break the
    /// policy at `now_unix_ns`, in one transaction, after writing `marks` to
    /// `meta`. Returns whether more must go. A step that deletes nothing only
    /// reads (an index lookup and two pragmas).
    pub fn step(
        &self,
        conn: &Connection,
        now_unix_ns: i128,
        marks: HighWater,
    ) -> rusqlite::Result<bool> {
        if let Some(age) = self.max_age {
            let cutoff = now_unix_ns - age.as_nanos() as i128;
            let cutoff = i64::try_from(cutoff).unwrap_or(i64::MIN);
            let oldest: Option<i64> = conn
                .prepare_cached("SELECT min(unix_ns) FROM events")?
                .query_row([], |r| r.get(0))?;
            if oldest.is_some_and(|t| t < cutoff) {
                marks.keep(conn)?;
                let gone = conn
                    .prepare_cached(
                        "DELETE FROM events WHERE seq IN \
                         (SELECT seq FROM events WHERE unix_ns < ?1 ORDER BY unix_ns LIMIT ?2)",
                    )?
                    .execute((cutoff, STEP_ROWS))?;
                if gone as i64 == STEP_ROWS {
                    return Ok(true);
                }
            }
        }
        let Some(max_bytes) = self.max_bytes else {
            return Ok(false);
        };
        // The whole file within the limit: the history, a share of it, is too (no count).
        let used = used_bytes(conn)?;
        if used <= max_bytes {
            return Ok(false);
        }
        let rows = scalar(conn, "SELECT count(*) FROM events")?;
        if rows == 0 {
            return Ok(false); // what is left is the running zones and the marks: kept
        }
        let live = scalar(conn, "SELECT count(*) FROM live")?;
        let history = history_share(used, rows, live);
        if history <= max_bytes {
            return Ok(false);
        }
        let per_row = (history / rows).max(1);
        let excess_rows = ((history - max_bytes) / per_row + 1) as i64;
        marks.keep(conn)?;
        let gone = conn.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?1)",
            [excess_rows.clamp(1, STEP_ROWS)],
        )? as u64;
        // Give the freed pages back to the filesystem (the database was made with
        // auto_vacuum=INCREMENTAL); the pragma frees one page per step.
        let mut vacuum = conn.prepare_cached("PRAGMA incremental_vacuum")?;
        let mut steps = vacuum.query([])?;
        while steps.next()?.is_some() {}
        let left = rows.saturating_sub(gone);
        Ok(left > 0 && history_share(used_bytes(conn)?, left, live) > max_bytes)
    }
}

/// The history's share of `used` bytes: its `rows` records' share of all
/// rows, theirs and the `live` table's.
fn history_share(used: u64, rows: u64, live: u64) -> u64 {
    (used as u128 * rows as u128 / (rows + live).max(1) as u128) as u64
}

/// The one integer `sql` returns (a count, a pragma), negative as 0.
fn scalar(conn: &Connection, sql: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached(sql)?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|v| v.max(0) as u64)
}

/// Bytes of the database's pages in use (the file minus its free pages).
pub fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pragma = |sql: &str| scalar(conn, sql);
    Ok(
        (pragma("PRAGMA page_count")? - pragma("PRAGMA freelist_count")?)
            * pragma("PRAGMA page_size")?,
    )
}
