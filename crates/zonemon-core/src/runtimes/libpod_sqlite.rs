//! One container's config from libpod's SQLite state, `db.sql`.
//!
//! Podman 5 keeps its state in SQLite unless a BoltDB state exists (see
//! [`libpod`](super::libpod) for which one is read first). The file is
//! `db.sql` in containers/storage's graph root (rootful:
//! `/var/lib/containers/storage/db.sql`), and the container's config is the
//! `JSON` column of table `ContainerConfig(ID, Name, PodID, JSON)` (libpod's
//! `sqlite_state_internal.go`, `createSQLiteTables`; the same
//! `ContainerConfig` struct as the BoltDB state's `config`, written by Go as
//! a BLOB, though the column says TEXT).
//!
//! Podman's database, never zonemon's: it is opened read-only, so nothing is
//! written to it and no file is created beside it, and with a busy timeout
//! of [`BUSY_TIMEOUT`], so a Podman holding it locked (every Podman write is
//! an exclusive transaction) delays a lookup by at most that, and the
//! lookup is [`Lookup::Unknown`] rather than a miss. Podman ≥ 4.6 uses the
//! rollback journal (its commit 1fb3cdf8a8 "sqlite: disable WAL mode"),
//! whose read-only readers take SQLite's shared lock and create nothing. A
//! database an older Podman left in WAL mode is read only without creating
//! anything too: with its `-wal` and `-shm` present (a Podman has it open),
//! through them and read-only (`readonly_shm=1`); with neither (every Podman
//! has closed it, so the main file holds everything), as an immutable file,
//! trusted only if neither the file nor its `-wal` changed meanwhile.
//!
//! The file is hostile input like any runtime state: it must be a regular
//! file below the storage directory (no symlink anywhere: `O_NOFOLLOW`)
//! that starts with an SQLite header (SQLite takes a shorter file for an
//! empty database, and deletes the `-wal` beside one, even read-only),
//! `ContainerConfig` must be a table (a view could run any query), the
//! schema is not trusted (`trusted_schema` off, defensive mode on), a config
//! larger than [`MAX_CONFIG`](super::libpod::MAX_CONFIG) is not read, and a
//! corrupt file is a miss, never a panic.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::fsread::{open_beneath, FileKey};

/// libpod's SQLite state, in the graph root.
pub const DB_FILE: &str = "db.sql";

/// Longest a lookup waits for a Podman that holds the database locked.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(5);

/// One version of the database: the main file and its write-ahead log, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    db: FileKey,
    wal: Option<FileKey>,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The container's config JSON.
    Found(Vec<u8>),
    /// Not in this version of the database (or it is not a libpod database, or corrupt).
    Missing(Version),
    /// No database, or it could not be read now (locked, or changed during
    /// the read): nothing to remember, try again later.
    Unknown,
}

/// How the database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Rollback journal: SQLite's shared lock.
    Journal,
    /// WAL, with its `-wal` and `-shm` present: through them, read-only.
    LiveWal,
    /// WAL, without them: the main file alone, unlocked.
    ClosedWal,
}

/// The start of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The database in `dir` (opened beneath it: a regular file, no symlink),
/// its version, and how to read it (`None`: not an SQLite database); `None`
/// if it is missing, or in WAL mode with only one of `-wal` and `-shm`.
fn inspect(dir: &Path) -> Option<(Version, Option<Mode>)> {
    let (mut f, db) = open_beneath(dir, Path::new(DB_FILE))?;
    let side = |suffix: &str| open_beneath(dir, Path::new(&format!("{DB_FILE}{suffix}")));
    let wal = side("-wal").map(|(_, k)| k);
    let version = Version { db, wal };
    // A file without a whole header is never given to SQLite: it would take
    // it for an empty database and delete a `-wal` beside it.
    let mut header = [0u8; 100];
    if f.read_exact(&mut header).is_err() || !header.starts_with(MAGIC) {
        return Some((version, None));
    }
    // WAL mode: the file format's read and write versions are 2.
    if header[18] != 2 || header[19] != 2 {
        return Some((version, Some(Mode::Journal)));
    }
    match (wal.is_some(), side("-shm").is_some()) {
        (true, true) => Some((version, Some(Mode::LiveWal))),
        (false, false) => Some((version, Some(Mode::ClosedWal))),
        _ => None, // a Podman is opening or closing it
    }
}

/// The current version of the database in `dir`, `None` if it has none.
pub fn version(dir: &Path) -> Option<Version> {
    inspect(dir).map(|(v, _)| v)
}

/// The config JSON of container `id` from the database [`DB_FILE`] in `dir`, at most `max` bytes.
pub fn lookup(dir: &Path, id: &str, max: usize) -> Lookup {
    let Some((before, mode)) = inspect(dir) else {
        return Lookup::Unknown;
    };
    let Some(mode) = mode else {
        return Lookup::Missing(before);
    };
    let result = open(&dir.join(DB_FILE), mode).and_then(|c| read_config(&c, id, max));
    if mode == Mode::ClosedWal && version(dir) != Some(before) {
        return Lookup::Unknown; // unlocked, and a Podman wrote meanwhile
    }
    match result {
        Ok(Some(json)) => Lookup::Found(json),
        Ok(None) => Lookup::Missing(before),
        Err(e) if is_busy(&e) => Lookup::Unknown,
        Err(_) => Lookup::Missing(before),
    }
}

/// Whether `e` says another connection holds the database.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Opens `path` read-only as `mode` says, not trusting its schema.
fn open(path: &Path, mode: Mode) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_URI;
    let query = match mode {
        Mode::Journal => "mode=ro",
        Mode::LiveWal => "mode=ro&readonly_shm=1",
        Mode::ClosedWal => "mode=ro&immutable=1",
    };
    let c = Connection::open_with_flags(format!("file:{}?{query}", uri_path(path)), flags)?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    c.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    Ok(c)
}

/// `path` for a `file:` URI: every byte but letters, digits and `/._-` percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::fmt::Write;
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The `JSON` of container `id` in `ContainerConfig`, if it is a table and the JSON is at most `max` bytes.
fn read_config(c: &Connection, id: &str, max: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    let is_table = c
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'ContainerConfig'",
            [],
            |_| Ok(()),
        )
        .optional()?;
    if is_table.is_none() {
        return Ok(None);
    }
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    c.query_row(
        "SELECT JSON FROM ContainerConfig WHERE ID = ?1 AND octet_length(JSON) <= ?2",
        (id, max),
        |row| {
            Ok(match row.get_ref(0)? {
                ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
                _ => None,
            })
        },
    )
    .optional()
    .map(Option::flatten)
}

/// Podman 5's SQLite schema, and a `db.sql` built with it for tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    /// Podman's own `CREATE TABLE` statements (see the file's header).
    pub const SCHEMA: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/podman-5.4-sqlite-schema.sql"
    ));

    /// Writes `path` as Podman 5 would lay it out: its schema, its
    /// `DBConfig` row, and for each container (id, name, config JSON) the
    /// rows `addContainer` inserts, the JSON as a BLOB as Go binds it.
    ///
    /// Schema-faithful, not written by a real Podman 5: Debian bookworm's
    /// Podman 4.3 has no SQLite backend, so the configs are the ones
    /// Podman 4.3 wrote into the BoltDB fixture (the same Go struct).
    pub fn write_db(path: &Path, containers: &[(&str, &str, &[u8])]) {
        let mut c = Connection::open(path).unwrap();
        c.execute_batch(SCHEMA).unwrap();
        let tx = c.transaction().unwrap();
        tx.execute(
            "INSERT INTO DBconfig VALUES (1, 1, 'linux', '/var/lib/containers/storage/libpod', \
             '/run/libpod', '/var/lib/containers/storage', '/run/containers/storage', \
             'overlay', '/var/lib/containers/storage/volumes')",
            [],
        )
        .unwrap();
        for (id, name, json) in containers {
            add_container(&tx, id, name, json);
        }
        tx.commit().unwrap();
    }

    /// Adds a container's rows in `tx` as Podman's `addContainer` does (no pod, created state).
    pub fn add_container(tx: &rusqlite::Transaction<'_>, id: &str, name: &str, json: &[u8]) {
        tx.execute("INSERT INTO IDNamespace VALUES (?1)", [id])
            .unwrap();
        tx.execute(
            "INSERT INTO ContainerConfig VALUES (?1, ?2, NULL, ?3)",
            (id, name, json),
        )
        .unwrap();
        tx.execute(
            "INSERT INTO ContainerState VALUES (?1, 1, 0, ?2)",
            (id, br#"{"state":1,"exitCode":0}"#.as_slice()),
        )
        .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::write_db;
    use super::*;
    use crate::runtimes::libpod::fixture::{config_json, LABELLED, PLAIN};
    use crate::runtimes::libpod::MAX_CONFIG;
    use crate::runtimes::testutil::TempTree;
    use proptest::prelude::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    const DIR: &str = "storage";

    /// A graph root with a `db.sql` holding the labelled and the plain container.
    fn tree(tag: &str) -> (TempTree, std::path::PathBuf) {
        let t = TempTree::new(tag);
        t.mkdir(DIR);
        let (l, p) = (config_json(LABELLED), config_json(PLAIN));
        write_db(
            &t.path(DIR).join(DB_FILE),
            &[(LABELLED, "zmt-labelled", &l), (PLAIN, "zmt-plain", &p)],
        );
        let dir = t.path(DIR);
        (t, dir)
    }

    /// The names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn found(l: Lookup) -> Vec<u8> {
        match l {
            Lookup::Found(j) => j,
            other => panic!("not found: {other:?}"),
        }
    }

    #[test]
    fn reads_configs_from_podman5_schema() {
        let (_t, dir) = tree("sqlite-read");
        assert_eq!(
            found(lookup(&dir, LABELLED, MAX_CONFIG)),
            config_json(LABELLED)
        );
        assert_eq!(found(lookup(&dir, PLAIN, MAX_CONFIG)), config_json(PLAIN));
        let v = version(&dir).unwrap();
        assert_eq!(
            lookup(&dir, &"e".repeat(64), MAX_CONFIG),
            Lookup::Missing(v)
        );
        // Larger than the bound: not read.
        let small = config_json(PLAIN).len() - 1;
        assert_eq!(lookup(&dir, PLAIN, small), Lookup::Missing(v));
        // The JSON as TEXT (another writer than Go's) reads the same.
        let c = Connection::open(dir.join(DB_FILE)).unwrap();
        c.execute("UPDATE ContainerConfig SET JSON = CAST(JSON AS TEXT)", [])
            .unwrap();
        drop(c);
        assert_eq!(found(lookup(&dir, PLAIN, MAX_CONFIG)), config_json(PLAIN));
        // No database: nothing to remember.
        assert_eq!(
            lookup(&dir.join("nowhere"), PLAIN, MAX_CONFIG),
            Lookup::Unknown
        );
        assert_eq!(version(&dir.join("nowhere")), None);
    }

    #[test]
    fn reading_leaves_the_database_as_it_was() {
        let (_t, dir) = tree("sqlite-untouched");
        let path = dir.join(DB_FILE);
        let (bytes, v) = (std::fs::read(&path).unwrap(), version(&dir));
        for id in [LABELLED, PLAIN, "x"] {
            lookup(&dir, id, MAX_CONFIG);
        }
        assert_eq!(listing(&dir), [DB_FILE], "no journal, -wal or -shm created");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(version(&dir), v, "not even its modification time");
    }

    #[test]
    fn wal_database_read_without_creating_files() {
        let (_t, dir) = tree("sqlite-wal");
        let path = dir.join(DB_FILE);
        let c = Connection::open(&path).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(c);
        // Closed by every writer: the main file alone, nothing created.
        assert_eq!(listing(&dir), [DB_FILE]);
        assert_eq!(
            found(lookup(&dir, LABELLED, MAX_CONFIG)),
            config_json(LABELLED)
        );
        assert_eq!(listing(&dir), [DB_FILE]);
        // A writer has it open, with a container only in the -wal.
        let mut w = Connection::open(&path).unwrap();
        w.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        let id = "a".repeat(64);
        let json = String::from_utf8(config_json(PLAIN))
            .unwrap()
            .replace(PLAIN, &id);
        let tx = w.transaction().unwrap();
        super::fixture::add_container(&tx, &id, "in-wal", json.as_bytes());
        tx.commit().unwrap();
        let live = listing(&dir);
        assert_eq!(live.len(), 3, "{live:?}");
        assert_eq!(found(lookup(&dir, &id, MAX_CONFIG)), json.as_bytes());
        assert_eq!(listing(&dir), live);
        drop(w);
        // Half there (a writer opening or closing it): tried again later.
        std::fs::write(dir.join(format!("{DB_FILE}-wal")), b"").unwrap();
        assert_eq!(lookup(&dir, LABELLED, MAX_CONFIG), Lookup::Unknown);
        assert_eq!(
            listing(&dir),
            [DB_FILE.to_string(), format!("{DB_FILE}-wal")]
        );
    }

    /// Another process, the `sqlite3` shell, holds the database as Podman's
    /// transactions do (`BEGIN EXCLUSIVE`): the lookup says busy (it
    /// waited at most `BUSY_TIMEOUT`), not missing; once it commits, found.
    #[test]
    fn locked_by_another_writer_is_busy_not_missing() {
        let (_t, dir) = tree("sqlite-locked");
        let mut sh = Command::new("sqlite3")
            .arg(dir.join(DB_FILE))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the sqlite3 shell (./dev installs it)");
        let mut stdin = sh.stdin.take().unwrap();
        // The shell waits for the lookups below to let go of their read lock
        // (without a busy timeout its BEGIN failed when one held it, the
        // UPDATE committed on its own and no lock was ever held).
        writeln!(
            stdin,
            ".timeout 10000\nBEGIN EXCLUSIVE; UPDATE ContainerState SET State = 2;"
        )
        .unwrap();
        stdin.flush().unwrap();
        // The shell takes the lock when it gets there: wait for it (bounded).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match lookup(&dir, LABELLED, MAX_CONFIG) {
                Lookup::Unknown => break,
                Lookup::Found(_) => {
                    assert!(std::time::Instant::now() < deadline, "never locked");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Lookup::Missing(v) => panic!("a locked database read as missing: {v:?}"),
            }
        }
        let mut cache = crate::runtimes::libpod::ConfigCache::new();
        let nowhere = dir.join("no-bolt");
        assert!(cache.get(&nowhere, &dir, LABELLED).is_none());
        writeln!(stdin, "COMMIT;").unwrap();
        drop(stdin);
        assert!(sh.wait().unwrap().success());
        assert_eq!(
            found(lookup(&dir, LABELLED, MAX_CONFIG)),
            config_json(LABELLED)
        );
        let c = cache
            .get(&nowhere, &dir, LABELLED)
            .expect("busy was not remembered as missing");
        assert_eq!(c.name.as_deref(), Some("zmt-labelled"));
    }

    #[test]
    fn hostile_files_are_misses_not_panics() {
        let (t, dir) = tree("sqlite-hostile");
        let path = dir.join(DB_FILE);
        let good = std::fs::read(&path).unwrap();
        let missing = |what: &str| match lookup(&dir, LABELLED, MAX_CONFIG) {
            Lookup::Missing(_) => {}
            other => panic!("{what}: {other:?}"),
        };
        std::fs::write(&path, b"").unwrap();
        missing("empty");
        let wal = dir.join(format!("{DB_FILE}-wal"));
        std::fs::write(&wal, b"a write-ahead log").unwrap();
        missing("empty, a -wal beside");
        assert!(wal.exists(), "the -wal left alone");
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&path, b"not a database at all, just text").unwrap();
        missing("text");
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        missing("truncated");
        let mut bad = good.clone();
        for b in bad[100..].iter_mut().step_by(7) {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &bad).unwrap();
        missing("scrambled");
        // A view could run any query: not read.
        std::fs::remove_file(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "CREATE VIEW ContainerConfig(ID, Name, PodID, JSON) AS \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                 SELECT '{LABELLED}', 'x', NULL, '{{}}' FROM n"
            ))
            .unwrap();
        missing("view");
        // A JSON column of another type.
        std::fs::remove_file(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "CREATE TABLE ContainerConfig(ID, Name, PodID, JSON); \
                 INSERT INTO ContainerConfig VALUES ('{LABELLED}', 'x', NULL, 42)"
            ))
            .unwrap();
        missing("integer JSON");
        // Not a regular file, or behind a symlink: not opened.
        std::fs::remove_file(&path).unwrap();
        t.write("elsewhere.sql", &good);
        std::os::unix::fs::symlink(t.path("elsewhere.sql"), &path).unwrap();
        assert_eq!(lookup(&dir, LABELLED, MAX_CONFIG), Lookup::Unknown);
        std::fs::remove_file(&path).unwrap();
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(lookup(&dir, LABELLED, MAX_CONFIG), Lookup::Unknown);
    }

    #[test]
    fn uri_path_escapes_all_but_plain_bytes() {
        assert_eq!(uri_path(Path::new("/var/lib/a_b-c.d")), "/var/lib/a_b-c.d");
        assert_eq!(
            uri_path(Path::new("/t/x?mode=rw#%")),
            "/t/x%3Fmode%3Drw%23%25"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Bytes of Podman's database overwritten anywhere: never a panic,
        /// never another container's config.
        #[test]
        fn survives_corrupted_databases(spots in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24)) {
            let (_t, dir) = tree("sqlite-corrupt");
            let path = dir.join(DB_FILE);
            let mut bytes = std::fs::read(&path).unwrap();
            for (i, b) in spots {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            std::fs::write(&path, &bytes).unwrap();
            if let Lookup::Found(json) = lookup(&dir, LABELLED, MAX_CONFIG) {
                prop_assert!(json.len() <= MAX_CONFIG);
            }
        }
    }
}
