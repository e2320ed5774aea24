//! The journal as the outbox: its identity (a random id kept in `meta`, so
//! that a journal made anew never reuses the message ids of the old one) and
//! the highest `seq` the stream acknowledged (`meta` key
//! `published_seq.<stream>`).
//!
//! The publisher writes these on a connection of its own: the journal is in
//! WAL mode, where readers never wait and one writer writes at a time. Its
//! writes are one small autocommit statement each, a few times a second at
//! most, without fsync (`synchronous=NORMAL`: a mark lost to a power cut
//! only makes records be published again, which the server's duplicate
//! window and the consumers' `seq` drop), and it leaves checkpoints to the
//! journal's writer; the writer's connection waits out such a statement
//! (SQLite's busy timeout) instead of failing.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};

/// The publisher's handle on the journal's marks.
pub struct Outbox {
    conn: Connection,
    key: String,
}

impl Outbox {
    /// Opens the journal at `path` (the daemon's writer made it) for publishing to `stream`.
    pub fn open(path: &Path, stream: &str) -> Result<Outbox> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the journal {} to publish it", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(Outbox {
            conn,
            key: format!("published_seq.{stream}"),
        })
    }

    /// The journal's identity, made (random) the first time it is asked for.
    pub fn journal_id(&self) -> Result<String> {
        let fresh = random_id()?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('journal_id', ?1)",
                [&fresh],
            )
            .context("giving the journal an identity")?;
        let id: String = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'journal_id'", [], |r| {
                r.get(0)
            })
            .context("reading the journal's identity")?;
        Ok(id)
    }

    /// The highest `seq` the stream acknowledged (0: none).
    pub fn acked(&self) -> Result<u64> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [&self.key], |r| {
                r.get(0)
            })
            .optional()
            .context("reading the journal's published seq")?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// Records that the stream acknowledged every record up to `seq`.
    pub fn set_acked(&self, seq: u64) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                rusqlite::params![self.key, seq.min(i64::MAX as u64) as i64],
            )
            .context("recording the published seq in the journal")?;
        Ok(())
    }
}

/// 16 hex digits from the kernel's random source.
fn random_id() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_and_the_identity_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let writer = crate::journal::schema::open_writer(&path).unwrap();
        let o = Outbox::open(&path, "ZONEMON").unwrap();
        let id = o.journal_id().unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(o.acked().unwrap(), 0);
        o.set_acked(41).unwrap();
        o.set_acked(42).unwrap();
        drop(o);
        // The writer's connection writes on meanwhile.
        writer
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', 43)",
                [],
            )
            .unwrap();
        let o = Outbox::open(&path, "ZONEMON").unwrap();
        assert_eq!((o.journal_id().unwrap(), o.acked().unwrap()), (id, 42));
        assert_eq!(Outbox::open(&path, "OTHER").unwrap().acked().unwrap(), 0);
    }
}
