//! The benchmark as a client of the daemon's API: `GET /v1/events` read
//! straight from the socket, as `curl -0 -N --unix-socket … /v1/events`
//! does. The request is HTTP/1.0, so the body is the NDJSON itself, ended by
//! the connection's close (no chunked framing to undo).

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::monitor::{Lines, Seen};

/// Longest response head accepted.
const MAX_HEAD: usize = 16 << 10;

/// A `/v1/events` stream followed live, its lines stamped as they arrive.
pub struct ApiStream {
    socket: UnixStream,
    lines: Lines,
}

impl ApiStream {
    /// Connects to the daemon at `socket` and follows its events from now
    /// on; the records of zones named `prefix…` are kept.
    pub fn open(socket: &Path, prefix: &str) -> Result<ApiStream> {
        let mut conn = UnixStream::connect(socket)
            .with_context(|| format!("connecting to {}", socket.display()))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        conn.write_all(b"GET /v1/events HTTP/1.0\r\nHost: zonemon\r\n\r\n")?;
        let head = read_head(&mut conn)?;
        let status = head.lines().next().unwrap_or("");
        if status.split_whitespace().nth(1) != Some("200") {
            bail!("GET /v1/events: {status}");
        }
        if head.to_ascii_lowercase().contains("transfer-encoding") {
            bail!("GET /v1/events over HTTP/1.0 answered with a transfer encoding: {head}");
        }
        conn.set_read_timeout(None)?;
        let lines = Lines::spawn(conn.try_clone()?, prefix, None);
        Ok(ApiStream {
            socket: conn,
            lines,
        })
    }

    /// Waits until `done` holds, for at most `timeout`; returns whether it did.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        self.lines.wait_until(timeout, done)
    }

    /// Closes the stream and returns what was seen.
    pub fn stop(self) -> Seen {
        let _ = self.socket.shutdown(Shutdown::Both);
        self.lines.finish()
    }
}

/// Reads the response head, byte by byte so that no byte of the body is taken.
fn read_head(conn: &mut UnixStream) -> Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).context("reading the response head")? == 0 {
            bail!(
                "the daemon closed the connection after {:?}",
                String::from_utf8_lossy(&head)
            );
        }
        head.push(byte[0]);
        if head.len() > MAX_HEAD {
            bail!("response head over {MAX_HEAD} bytes");
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
