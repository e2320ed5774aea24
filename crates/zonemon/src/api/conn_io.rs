//! The server's end of a client connection, registered for reading only.
//!
//! A tokio `UnixStream` is registered with epoll for reading and writing at
//! once (edge-triggered). A Unix stream socket reports itself writable to
//! its epoll registrations every time the peer reads and frees room in it,
//! so a client following `/v1/events` woke the API's thread once per line it
//! read: a realtime thread (the journal writer runs on it) preempting
//! whatever ran on that CPU, to find nothing to do. [`ConnIo`] writes without
//! asking first and, only when the socket is full (a client behind),
//! registers a duplicate of its descriptor for writability until the next
//! write goes through.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// A client connection: read through a registration for readability, written
/// directly (see the module's doc).
pub struct ConnIo {
    /// The connection, registered for reading.
    stream: AsyncFd<UnixStream>,
    /// A duplicate of its descriptor registered for writing, while a write would block.
    full: Option<AsyncFd<OwnedFd>>,
}

impl ConnIo {
    /// Takes over `stream` (made non-blocking here); must be called within a tokio runtime.
    pub fn new(stream: UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(ConnIo {
            stream: register(stream, Interest::READABLE)?,
            full: None,
        })
    }

    /// After a write that would have blocked: waits, registered for
    /// writability, until the socket may have room again.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.full.is_none() {
            let dup = self.stream.get_ref().as_fd().try_clone_to_owned()?;
            self.full = Some(register(dup, Interest::WRITABLE)?);
        }
        let full = self.full.as_ref().expect("registered above");
        let mut ready = ready!(full.poll_write_ready(cx))?;
        // Readiness is edge-triggered: the write that follows finds out.
        ready.clear_ready();
        Poll::Ready(Ok(()))
    }
}

/// Registers `inner`, which owns its descriptor, with the runtime's reactor for `interest`.
fn register<T: AsRawFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: `inner` (a `UnixStream` or an `OwnedFd`) owns its descriptor, which stays
    // open and the same until the `AsyncFd` is dropped: `ConnIo` only ever borrows it.
    Ok(unsafe { AsyncFd::register_with_interest(inner, interest) }?)
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut ready = ready!(this.stream.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match ready.try_io(|s| s.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match this.stream.get_ref().write(data) {
                Ok(n) => {
                    // Room again: no more wakeups for it until the socket is full again.
                    this.full = None;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(this.poll_room(cx))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(())) // nothing is buffered here
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn reads_what_the_peer_wrote_and_sees_its_end() {
        runtime().block_on(async {
            let (ours, mut theirs) = UnixStream::pair().unwrap();
            let mut io = ConnIo::new(ours).unwrap();
            let writer = std::thread::spawn(move || {
                theirs.write_all(b"GET /v1/zones").unwrap();
            });
            let mut got = Vec::new();
            io.read_to_end(&mut got).await.unwrap();
            writer.join().unwrap();
            assert_eq!(got, b"GET /v1/zones");
        });
    }

    /// A peer that reads nothing for a while fills the socket: the writer
    /// waits (registered for writability) and goes on, losing nothing, once
    /// the peer reads again.
    #[test]
    fn a_full_socket_waits_for_room_and_loses_nothing() {
        runtime().block_on(async {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let mut io = ConnIo::new(ours).unwrap();
            let total = 4 << 20; // far more than a socket buffers
            let reader = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let mut got = Vec::new();
                (&theirs).read_to_end(&mut got).unwrap();
                got
            });
            let chunk: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
            let mut sent = 0;
            while sent < total {
                io.write_all(&chunk).await.unwrap();
                sent += chunk.len();
            }
            assert!(io.full.is_some() || sent == total);
            io.shutdown().await.unwrap();
            drop(io);
            let got = reader.join().unwrap();
            assert_eq!(got.len(), total);
            assert!(got.chunks(chunk.len()).all(|c| c == chunk.as_slice()));
        });
    }

    /// The point of it all: the peer reading what was written does not make
    /// the connection ready for anything (a tokio `UnixStream` would be, for
    /// writing, and wake the server's thread).
    #[test]
    fn the_peer_reading_does_not_wake_the_writer() {
        runtime().block_on(async {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let mut io = ConnIo::new(ours).unwrap();
            io.write_all(b"{\"seq\":1}\n").await.unwrap();
            let mut line = [0u8; 10];
            (&theirs).read_exact(&mut line).unwrap();
            // No readiness of any kind was delivered for the peer's read.
            let waker = futures_noop_waker();
            let mut cx = Context::from_waker(&waker);
            tokio::task::yield_now().await;
            assert!(io.stream.poll_read_ready(&mut cx).is_pending());
            assert!(io.full.is_none(), "nothing registered for writing");
        });
    }

    fn futures_noop_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}
