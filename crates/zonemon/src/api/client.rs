//! A small blocking client of the local API: hyper's HTTP/1 client over the
//! Unix socket, on a current-thread tokio runtime of the calling command
//! (the commands that use it have no hot path of their own).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokio::runtime::Runtime;

/// Longest NDJSON line accepted from the daemon.
const MAX_LINE: usize = 4 << 20;

/// Longest whole JSON answer accepted from the daemon.
const MAX_DOCUMENT: usize = 64 << 20;

/// How long the daemon has to answer the first request before it is taken as absent.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A daemon that answered on its socket.
pub struct Daemon {
    socket: PathBuf,
    rt: Runtime,
}

/// How a stream of records ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The daemon ended it (replay done, `until` reached, the daemon stopping, or a final notice).
    Closed,
    /// The record handler asked to stop.
    Stopped,
    /// SIGINT or SIGTERM arrived.
    Signalled,
}

impl Daemon {
    /// The daemon at `socket`, if it answers `GET /v1/version`; else why not.
    pub fn reach(socket: &Path) -> Result<Daemon, String> {
        if !socket.exists() {
            return Err("no socket there".into());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let d = Daemon {
            socket: socket.to_path_buf(),
            rt,
        };
        match d.block(PROBE_TIMEOUT, d.get_json_async("/v1/version")) {
            Ok((StatusCode::OK, _)) => Ok(d),
            Ok((status, v)) => Err(format!("it answered {status}: {}", error_text(&v))),
            Err(e) => Err(format!("{e:#}")),
        }
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET target` as a JSON document; a non-2xx answer is an error with the daemon's message.
    pub fn get_json(&self, target: &str) -> Result<Value> {
        let (status, v) = self.rt.block_on(self.get_json_async(target))?;
        if !status.is_success() {
            bail!("the daemon answered {status}: {}", error_text(&v));
        }
        Ok(v)
    }

    /// `GET target` as a status and a JSON document, giving up after `limit`
    /// (`Ok(None)`); `None` waits as long as it takes.
    pub fn get_json_within(
        &self,
        target: &str,
        limit: Option<Duration>,
    ) -> Result<Option<(StatusCode, Value)>> {
        let req = self.get_json_async(target);
        match limit {
            None => self.rt.block_on(req).map(Some),
            Some(limit) => match self
                .rt
                .block_on(async { tokio::time::timeout(limit, req).await })
            {
                Ok(answer) => answer.map(Some),
                Err(_) => Ok(None),
            },
        }
    }

    /// `GET target` as NDJSON: calls `on_record` for each record until the
    /// stream ends, `on_record` returns `Ok(false)`, or SIGINT/SIGTERM arrives.
    pub fn stream(
        &self,
        target: &str,
        mut on_record: impl FnMut(Map<String, Value>) -> Result<bool>,
    ) -> Result<StreamEnd> {
        self.rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt()).context("catching SIGINT")?;
            let mut term = signal(SignalKind::terminate()).context("catching SIGTERM")?;
            let resp = self.get(target).await?;
            if !resp.status().is_success() {
                let status = resp.status();
                let v = read_document(resp).await.unwrap_or(Value::Null);
                bail!("the daemon answered {status}: {}", error_text(&v));
            }
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let frame = tokio::select! {
                    f = body.frame() => f,
                    _ = int.recv() => return Ok(StreamEnd::Signalled),
                    _ = term.recv() => return Ok(StreamEnd::Signalled),
                };
                let Some(frame) = frame else {
                    return Ok(StreamEnd::Closed);
                };
                let frame = frame.context("reading from the daemon")?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    let record: Map<String, Value> = serde_json::from_slice(&line)
                        .context("the daemon sent a line that is not a JSON object")?;
                    if !on_record(record)? {
                        return Ok(StreamEnd::Stopped);
                    }
                }
                if buf.len() > MAX_LINE {
                    bail!("the daemon sent a line longer than {MAX_LINE} bytes");
                }
            }
        })
    }

    fn block<T>(&self, limit: Duration, f: impl Future<Output = Result<T>>) -> Result<T> {
        self.rt
            .block_on(async { tokio::time::timeout(limit, f).await })
            .map_err(|_| anyhow!("no answer within {limit:?}"))?
    }

    async fn get_json_async(&self, target: &str) -> Result<(StatusCode, Value)> {
        let resp = self.get(target).await?;
        let status = resp.status();
        Ok((status, read_document(resp).await?))
    }

    /// Sends `GET target` on a new connection and returns the answer's head.
    async fn get(&self, target: &str) -> Result<Response<Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("connecting to {}", self.socket.display()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("speaking HTTP to the daemon")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(target)
            .header(HOST, "zonemon")
            .body(Empty::<Bytes>::new())
            .context("making the request")?;
        sender.send_request(req).await.context("asking the daemon")
    }
}

/// The whole body of `resp` as JSON.
async fn read_document(resp: Response<Incoming>) -> Result<Value> {
    let body = http_body_util::Limited::new(resp.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the daemon's answer: {e}"))?
        .to_bytes();
    serde_json::from_slice(&body).context("the daemon's answer is not JSON")
}

/// The `error` of an error document, or the document itself.
fn error_text(v: &Value) -> String {
    match v.get("error").and_then(Value::as_str) {
        Some(e) => e.to_string(),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::api::server::Limits;
    use crate::api::testutil::{MemStore, TestServer};

    const T0: i128 = 1_764_648_000_000_000_000;

    #[test]
    fn reaches_a_live_daemon_only() {
        let store = MemStore::new();
        let s = TestServer::start(Arc::clone(&store), Limits::default());
        let d = Daemon::reach(&s.path).expect("a live server answers");
        assert_eq!(d.get_json("/v1/version").unwrap()["api"], "v1");
        let e = d.get_json("/v1/zones/nobody").unwrap_err().to_string();
        assert!(e.contains("404") && e.contains("nobody"), "{e}");
        let missing = s.path.with_file_name("missing.sock");
        assert_eq!(Daemon::reach(&missing).err().unwrap(), "no socket there");
        let stale = s.path.with_file_name("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let e = Daemon::reach(&stale).err().unwrap();
        assert!(e.contains("connecting"), "{e}");
    }

    #[test]
    fn streams_records_and_stops_when_asked() {
        let store = MemStore::new();
        for i in 0..600 {
            store.add("booted", i, "z", T0 + i as i128);
        }
        let s = TestServer::start(Arc::clone(&store), Limits::default());
        let d = Daemon::reach(&s.path).unwrap();
        let mut seen = Vec::new();
        let end = d
            .stream("/v1/events?after=0&follow=false", |r| {
                seen.push(r["seq"].as_u64().unwrap());
                Ok(true)
            })
            .unwrap();
        assert_eq!(end, StreamEnd::Closed);
        assert_eq!(seen, (1..=600).collect::<Vec<_>>());
        let mut n = 0;
        let end = d
            .stream("/v1/events?after=0", |_| {
                n += 1;
                Ok(n < 10)
            })
            .unwrap();
        assert_eq!((end, n), (StreamEnd::Stopped, 10));
        let e = d.stream("/v1/events?after=x", |_| Ok(true)).unwrap_err();
        assert!(e.to_string().contains("400"), "{e}");
    }

    #[test]
    fn a_request_can_be_given_up() {
        let store = MemStore::new();
        let s = TestServer::start(Arc::clone(&store), Limits::default());
        let d = Daemon::reach(&s.path).unwrap();
        let r = d
            .get_json_within("/v1/wait?name=never", Some(Duration::from_millis(200)))
            .unwrap();
        assert!(r.is_none());
    }
}
