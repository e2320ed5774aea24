//! The journal's file: opening it, checking it is a sound zonemon journal of
//! a schema this zonemon knows, and creating it when there is none.
//!
//! A file that is not SQLite, fails `PRAGMA quick_check`, is another
//! program's database or comes from a newer zonemon is refused with a message
//! saying what to do; it is never recreated or "repaired" behind the user's back.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags};

/// The schema this zonemon writes (`PRAGMA user_version`). Version 2 has
/// the tables of version 1, but its `meta` holds `next_seq` and
/// `last_unix_ns` only as of retention's last deletion (the newest row says
/// them otherwise): a zonemon that knows only version 1 would read a stale
/// `next_seq` and reuse sequence numbers, so it must refuse the file. A
/// version-1 journal is upgraded when a writer opens it (nothing to convert).
pub const SCHEMA_VERSION: i64 = 2;

/// `PRAGMA application_id` of a zonemon journal: "zone" in ASCII.
const APPLICATION_ID: i64 = 0x7a6f_6e65;

/// The tables: every record (`events`), the newest record of each zone not
/// yet down (`live`, kept in the same transactions, never subject to
/// retention), and the high-water marks (`meta`: `max_zone_id`, `boot_id`,
/// and `next_seq` and `last_unix_ns` as retention last wrote them), which
/// survive retention deleting every row.
const CREATE: &str = "
    CREATE TABLE events (
        seq     INTEGER PRIMARY KEY,
        unix_ns INTEGER NOT NULL,
        event   TEXT NOT NULL,
        zone_id INTEGER,
        name    TEXT,
        json    TEXT NOT NULL
    );
    CREATE INDEX events_by_time ON events (unix_ns);
    CREATE TABLE live (
        zone_id INTEGER PRIMARY KEY,
        seq     INTEGER NOT NULL,
        json    TEXT NOT NULL
    );
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value
    );
";

/// The writer checkpoints the log by itself (inside a commit) only past this
/// many pages (32 MiB); below, the syncer's checkpoints keep it small.
pub const WAL_BACKSTOP_PAGES: i64 = 8192;

/// The log file is cut back to this size when SQLite restarts it (not less:
/// under churn it grows back at once, and growing a file costs more than
/// overwriting it).
const WAL_KEEP_BYTES: i64 = WAL_BACKSTOP_PAGES * 4096;

/// Opens (creating if needed) the journal at `path` for the one writer:
/// WAL, `synchronous=NORMAL` (a commit is in the log, safe from the daemon's
/// end, when it returns; [`super::syncer`] flushes the log to the disk right
/// after and checkpoints it, off the readers' path). Its directory must exist
/// (the daemon makes it when it locks the journal, [`super::WriterLock`]).
pub fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("opening the journal {}", path.display()))?;
    check(&conn, path)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        create(&conn).with_context(|| format!("creating the journal {}", path.display()))?;
    } else if version < SCHEMA_VERSION {
        // Version 1: the same tables; from now on its `meta` is written as version 2's.
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .with_context(|| format!("upgrading the journal {}", path.display()))?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .context("switching the journal to WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)?;
    Ok(conn)
}

/// Opens the journal at `path` read-only (for `zonemon events` and the API's
/// readers), with the same checks as the writer; it must exist.
pub fn open_reader(path: &Path) -> Result<Connection> {
    if !path.exists() {
        bail!(
            "there is no journal at {} (zonemon daemon writes it; --journal PATH names another)",
            path.display()
        );
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening the journal {}", path.display()))?;
    check(&conn, path)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        bail!(
            "the journal {} is empty (no zonemon daemon has written it yet)",
            path.display()
        );
    }
    Ok(conn)
}

/// Refuses a file that is not a sound zonemon journal this zonemon can read.
fn check(conn: &Connection, path: &Path) -> Result<()> {
    let shown = path.display();
    let aside = format!(
        "move it aside (mv {shown} {shown}.bad, with its -wal and -shm files if any) and start \
         again: a new, empty journal will be created"
    );
    let quick: Result<String, rusqlite::Error> =
        conn.pragma_query_value(None, "quick_check", |r| r.get(0));
    match quick {
        Ok(ok) if ok == "ok" => {}
        Ok(problem) => bail!("the journal {shown} is corrupt (quick_check: {problem}); {aside}"),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            bail!("{shown} is not a zonemon journal (not an SQLite database); {aside}")
        }
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) => {
            bail!("the journal {shown} is corrupt ({e}); {aside}")
        }
        Err(e) => return Err(e).with_context(|| format!("checking the journal {shown}")),
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    if (version == 0 && tables > 0) || (version > 0 && app != APPLICATION_ID) {
        bail!("{shown} is an SQLite database of another program, not a zonemon journal; {aside}");
    }
    if version > SCHEMA_VERSION {
        bail!(
            "the journal {shown} was written by a newer zonemon (schema {version}; this one knows \
             {SCHEMA_VERSION}): run that zonemon, or {aside}"
        );
    }
    Ok(())
}

/// Creates the tables in an empty database, in one transaction.
fn create(conn: &Connection) -> Result<()> {
    // Before any table exists: lets retention give freed pages back to the filesystem.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.execute_batch(&format!(
        "BEGIN; {CREATE} PRAGMA application_id = {APPLICATION_ID}; \
         PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<Connection>) -> String {
        format!("{:#}", r.expect_err("refused"))
    }

    #[test]
    fn creates_then_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        drop(open_writer(&path).unwrap());
        let conn = open_writer(&path).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = open_reader(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_1_journal_is_read_and_upgraded_by_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        drop(open_writer(&path).unwrap());
        let version = |c: &Connection| -> i64 {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        };
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 1)
            .unwrap();
        assert_eq!(version(&open_reader(&path).unwrap()), 1, "read as it is");
        assert_eq!(version(&open_writer(&path).unwrap()), SCHEMA_VERSION);
        assert_eq!(version(&open_reader(&path).unwrap()), SCHEMA_VERSION);
    }

    #[test]
    fn refuses_what_is_not_a_sound_journal_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        let text = "this is not a database, but it is long enough to have a header".repeat(100);
        std::fs::write(&junk, &text).unwrap();
        let e = message(open_writer(&junk));
        assert!(
            e.contains("not a zonemon journal") && e.contains("move it aside"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&junk).unwrap(), text);

        let newer = dir.path().join("newer.db");
        drop(open_writer(&newer).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let e = message(open_writer(&newer));
        assert!(
            e.contains("newer zonemon") && e.contains("move it aside"),
            "{e}"
        );
        assert!(message(open_reader(&newer)).contains("newer zonemon"));

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(message(open_writer(&other)).contains("another program"));

        assert!(message(open_reader(&dir.path().join("none.db"))).contains("no journal"));
    }

    #[test]
    fn refuses_a_corrupt_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        {
            let conn = open_writer(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
            conn.execute_batch("BEGIN").unwrap();
            for i in 0..2000 {
                conn.execute(
                    "INSERT INTO events VALUES (?1, ?1, 'booted', ?1, 'aap', '{}')",
                    [i],
                )
                .unwrap();
            }
            conn.execute_batch("COMMIT").unwrap();
        }
        // Scribble over the pages after the first (the header stays valid).
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 16384, "{}", bytes.len());
        bytes[4096..16384].fill(0xa5);
        std::fs::write(&path, &bytes).unwrap();
        let e = message(open_writer(&path));
        assert!(e.contains("corrupt") && e.contains("move it aside"), "{e}");
    }
}
