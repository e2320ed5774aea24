//! For the API's unit tests: an in-memory [`EventStore`], a server on a
//! temporary socket, and raw HTTP over a Unix socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::server::{serve, ApiConfig, ApiServer, Limits};
use crate::store::{EventStore, StoredRecord};

/// A journal in memory: records get `seq` 1, 2, … as they are appended.
pub struct MemStore {
    records: Mutex<Vec<StoredRecord>>,
    commits: watch::Sender<u64>,
}

impl MemStore {
    /// An empty journal.
    pub fn new() -> Arc<MemStore> {
        Arc::new(MemStore {
            records: Mutex::new(Vec::new()),
            commits: watch::channel(0).0,
        })
    }

    /// Commits one record of zone `zone_id` named `name` at `unix_ns`; returns its `seq`.
    pub fn add(&self, event: &str, zone_id: u64, name: &str, unix_ns: i128) -> u64 {
        let object = json!({
            "time": zonemon_core::timefmt::rfc3339_nanos(unix_ns),
            "event": event, "name": name, "name_source": "hostname", "zone_id": zone_id,
            "pidns": 4026532000u64 + zone_id, "init_pid": 100_000 + zone_id, "level": 1,
            "parent_zone_id": null, "hostname": name, "cgroup": null, "runtime": null,
            "container_id": null,
        });
        self.add_object(object.as_object().unwrap().clone(), unix_ns)
    }

    /// Commits `object` (`seq` is added) at `unix_ns`; returns its `seq`.
    pub fn add_object(&self, mut object: Map<String, Value>, unix_ns: i128) -> u64 {
        let mut records = self.records.lock().unwrap();
        let seq = records.len() as u64 + 1;
        object.insert("seq".into(), seq.into());
        records.push(StoredRecord {
            seq,
            unix_ns,
            object: object.into(),
        });
        drop(records);
        self.commits.send_replace(seq);
        seq
    }
}

impl MemStore {
    /// The highest `seq` committed.
    pub fn last_seq_now(&self) -> u64 {
        self.records.lock().unwrap().len() as u64
    }
}

impl EventStore for MemStore {
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<StoredRecord>> {
        let records = self.records.lock().unwrap();
        Ok(records
            .iter()
            .skip(after as usize)
            .take(limit)
            .cloned()
            .collect())
    }

    fn seq_before_time(&self, unix_ns: i128) -> Result<u64> {
        let records = self.records.lock().unwrap();
        Ok(records
            .iter()
            .filter(|r| r.unix_ns < unix_ns)
            .map(|r| r.seq)
            .max()
            .unwrap_or(0))
    }

    fn last_seq(&self) -> u64 {
        self.records.lock().unwrap().len() as u64
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    fn running(&self) -> Vec<StoredRecord> {
        let records = self.records.lock().unwrap();
        let mut newest = std::collections::BTreeMap::new();
        for r in records.iter() {
            let Some(id) = r.object.get("zone_id").and_then(Value::as_u64) else {
                continue;
            };
            match r.object["event"].as_str() {
                Some("ready" | "booted" | "running") => {
                    newest.insert(id, r.clone());
                }
                _ => {
                    newest.remove(&id);
                }
            }
        }
        newest.into_values().collect()
    }
}

/// A server on a fresh socket in the temporary directory.
pub struct TestServer {
    /// The server (stopped on drop).
    pub server: Option<ApiServer>,
    /// Its socket.
    pub path: PathBuf,
}

impl TestServer {
    /// Serves `store` with `limits`.
    pub fn start(store: Arc<MemStore>, limits: Limits) -> TestServer {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "zonemon-api-test-{}-{}/api.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut config = ApiConfig::new(&path);
        config.group = None;
        config.limits = limits;
        let server = serve(store, config, None).expect("the test server starts");
        TestServer {
            server: Some(server),
            path,
        }
    }

    /// A connection to the server.
    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.path).expect("connecting to the test server");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Sends `raw` bytes and reads the whole answer (the server closes after one request).
    pub fn raw(&self, raw: &[u8]) -> Answer {
        let mut s = self.connect();
        s.write_all(raw).unwrap();
        let mut text = Vec::new();
        let _ = s.read_to_end(&mut text);
        Answer::parse(&text)
    }

    /// `GET target`.
    pub fn get(&self, target: &str) -> Answer {
        self.raw(format!("GET {target} HTTP/1.1\r\nHost: zonemon\r\n\r\n").as_bytes())
    }

    /// Opens `GET target` and returns a reader positioned at the body (chunked NDJSON).
    pub fn open(&self, target: &str) -> Lines {
        let mut s = self.connect();
        write!(s, "GET {target} HTTP/1.1\r\nHost: zonemon\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Lines {
            r,
            pending: Vec::new(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().unwrap();
        }
        let _ = std::fs::remove_dir_all(self.path.parent().unwrap());
    }
}

/// A whole HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code (0 when there was no status line).
    pub status: u16,
    /// The head, as text.
    pub head: String,
    /// The body, de-chunked.
    pub body: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = match head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            true => dechunk(body),
            false => body.to_string(),
        };
        Answer {
            status,
            head: head.to_string(),
            body,
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// The body's NDJSON lines.
    pub fn lines(&self) -> Vec<Value> {
        self.body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// An open NDJSON stream, read record by record.
pub struct Lines {
    r: BufReader<UnixStream>,
    pending: Vec<Value>,
}

impl Lines {
    /// The next record, or `None` at the end of the stream.
    pub fn next(&mut self) -> Option<Value> {
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.remove(0));
            }
            // One chunk: a hex size line, the data, CRLF.
            let mut size = String::new();
            if self.r.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                return None;
            }
            let mut data = vec![0; n + 2];
            self.r.read_exact(&mut data).ok()?;
            let text = String::from_utf8(data[..n].to_vec()).unwrap();
            self.pending = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
    }

    /// The underlying socket.
    pub fn socket(&self) -> &UnixStream {
        self.r.get_ref()
    }
}
