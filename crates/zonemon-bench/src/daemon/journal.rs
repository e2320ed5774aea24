//! Reading a daemon's journal file beside it (read-only; the journal is in
//! WAL mode, so each query sees what was committed when it began). The
//! tables are those README's "The daemon and its journal" documents.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// A read-only connection to a journal.
pub struct Journal {
    conn: Connection,
}

/// What the journal holds of one run's zones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Zones of the prefix that have a `booted`, `shutdown`, `down` record.
    pub booted: u64,
    /// See `booted`.
    pub shutdown: u64,
    /// See `booted`.
    pub down: u64,
    /// Every record of those zones (by zone id: a zone's `ready` may come before its name).
    pub records: u64,
}

impl Journal {
    /// Opens the journal at `path` read-only.
    pub fn open(path: &Path) -> Result<Journal> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening the journal {}", path.display()))?;
        Ok(Journal { conn })
    }

    /// The newest committed `seq` (0 for none).
    pub fn last_seq(&self) -> Result<u64> {
        let seq: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) FROM events", [], |r| r.get(0))
            .context("reading the journal's last seq")?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    /// The highest `seq` the fleet's stream `stream` acknowledged (0: none), as the daemon's
    /// publisher keeps it (at most 250 ms old while records flow).
    pub fn published(&self, stream: &str) -> Result<u64> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [format!("published_seq.{stream}")],
                |r| r.get(0),
            )
            .optional()
            .context("reading the journal's published seq")?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    /// `down` records after `after` of zones named `prefix…` (cheap: the rows after `after` only).
    pub fn downs_after(&self, after: u64, prefix: &str) -> Result<u64> {
        self.count(
            "SELECT count(*) FROM events WHERE seq > ?1 AND event = 'down' \
             AND substr(name, 1, ?2) = ?3",
            after,
            prefix,
        )
    }

    /// What the journal holds, after `after`, of zones named `prefix…`.
    pub fn tally_after(&self, after: u64, prefix: &str) -> Result<Tally> {
        let event = |e: &str| {
            self.count(
                &format!(
                    "SELECT count(DISTINCT zone_id) FROM events WHERE seq > ?1 AND event = '{e}' \
                     AND substr(name, 1, ?2) = ?3"
                ),
                after,
                prefix,
            )
        };
        Ok(Tally {
            booted: event("booted")?,
            shutdown: event("shutdown")?,
            down: event("down")?,
            records: self.count(
                "SELECT count(*) FROM events WHERE seq > ?1 AND zone_id IN \
                 (SELECT zone_id FROM events WHERE seq > ?1 AND event = 'booted' \
                  AND substr(name, 1, ?2) = ?3)",
                after,
                prefix,
            )?,
        })
    }

    /// Records said lost after `after` (the sum of the `lost` records' counts; one each when unknown).
    pub fn lost_after(&self, after: u64) -> Result<u64> {
        let lost: Option<i64> = self
            .conn
            .query_row(
                "SELECT sum(coalesce(json_extract(json, '$.count'), 1)) FROM events \
                 WHERE seq > ?1 AND event = 'lost'",
                [after as i64],
                |r| r.get(0),
            )
            .optional()
            .context("reading the journal's lost records")?
            .flatten();
        Ok(lost.unwrap_or(0).max(0) as u64)
    }

    fn count(&self, sql: &str, after: u64, prefix: &str) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(sql, (after as i64, prefix.len() as i64, prefix), |r| {
                r.get(0)
            })
            .context("counting the journal's records")?;
        Ok(n.max(0) as u64)
    }
}
