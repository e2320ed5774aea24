//! The API server: a thread of its own running a single-threaded tokio
//! runtime, accepting connections on the Unix socket and serving each with
//! hyper's HTTP/1 under the limits of [`Limits`].

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;
use tokio::sync::{watch, Semaphore};

use super::conn_io::ConnIo;
use super::progress::Progress;
use super::reply::ApiError;
use super::routes::{answer, Ctx};
use super::socket::{bind, BoundSocket};
use crate::priority::{Budget, Priority};
use crate::store::EventStore;

/// What the server allows one client, and all of them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more get a 503.
    pub max_connections: usize,
    /// Time a client has to send a request's headers from connecting.
    pub header_timeout: Duration,
    /// Time a client may leave data unread before it is disconnected.
    pub stall_timeout: Duration,
    /// Records committed since a follower connected that it may lag behind
    /// before it is told so and disconnected.
    pub max_lag: u64,
    /// Longest request URI (path and query), in bytes.
    pub max_uri: usize,
    /// Longest request head (request line and headers), in bytes.
    pub max_head: usize,
    /// Most headers in a request.
    pub max_headers: usize,
    /// Bytes buffered per connection on the way out (and in).
    pub buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(60),
            max_lag: 100_000,
            max_uri: 8 * 1024,
            max_head: 16 * 1024,
            max_headers: 64,
            buffer: 64 * 1024,
        }
    }
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The socket's path (default [`super::DEFAULT_SOCKET`]).
    pub socket: PathBuf,
    /// The group that may connect (mode 0660), when it exists (default `zonemon`).
    pub group: Option<String>,
    /// Per-client and global limits.
    pub limits: Limits,
    /// How the server's thread competes for a CPU (the daemon's journal
    /// writer runs on it); [`Priority::Normal`] leaves it as started.
    pub priority: Priority,
}

impl ApiConfig {
    /// Serving at `socket` for group `zonemon`, with the default limits.
    pub fn new(socket: &Path) -> Self {
        ApiConfig {
            socket: socket.to_path_buf(),
            group: Some(super::SOCKET_GROUP.to_string()),
            limits: Limits::default(),
            priority: Priority::Normal,
        }
    }
}

/// A task run on the API's thread beside the server (the journal's writer:
/// the clients following the journal are then served on the thread that
/// committed their records, with no other thread to wake). It is made on that
/// thread, so it need not be `Send`.
pub type Beside = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A running API server; [`ApiServer::stop`] (or dropping it) stops it and removes its socket.
pub struct ApiServer {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<()>>>,
    /// The server thread's id in the kernel (for tests that read its `/proc` entry).
    #[cfg(test)]
    tid: crate::thread_tid::ThreadTid,
}

/// Starts serving `store` on `config.socket` and returns once the socket
/// accepts connections.
///
/// The socket is bound here, so its errors come back at once: another
/// daemon live on the path, a path that is not a socket, no permission.
/// The server runs on a thread named `zonemon-api` with its own
/// single-threaded tokio runtime (nothing of it touches the caller's
/// threads); it reads the journal only through `store`. `beside`, if any,
/// runs on that thread until it ends by itself; [`ApiServer::stop`] waits for it.
pub fn serve(
    store: Arc<dyn EventStore>,
    config: ApiConfig,
    beside: Option<Beside>,
) -> Result<ApiServer> {
    let bound = bind(&config.socket, config.group.as_deref())?;
    bound
        .listener
        .set_nonblocking(true)
        .context("making the socket non-blocking")?;
    let (stop, stopped) = watch::channel(false);
    tracing::info!(socket = %bound.path.display(), "serving the local API");
    let ctx = Ctx {
        store,
        limits: config.limits,
    };
    let priority = config.priority;
    #[cfg(test)]
    let tid = crate::thread_tid::ThreadTid::default();
    #[cfg(test)]
    let tid_set = tid.clone();
    let thread = thread::Builder::new()
        .name("zonemon-api".into())
        .spawn(move || {
            #[cfg(test)]
            tid_set.record();
            if let Err(e) = priority.try_apply() {
                eprintln!(
                    "zonemon: warning: the local API's thread (which runs the journal's writer) \
                     cannot be given priority {priority:?}: {e}; it goes on at the daemon's"
                );
            }
            // A realtime thread the budget moved (a long replay to a fast
            // client) takes realtime back once it has slept, as an event loop
            // does: looked at before it parks and when it wakes.
            let budget = Arc::new(Mutex::new(Budget::of_this_thread()));
            let woken = Arc::clone(&budget);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(move || budget.lock().expect("never poisoned").renew())
                .on_thread_unpark(move || woken.lock().expect("never poisoned").renew())
                .build()
                .context("starting the API's runtime")?;
            rt.block_on(async move {
                let beside = async move {
                    if let Some(task) = beside {
                        task().await;
                    }
                };
                tokio::join!(accept_loop(bound, ctx, stopped), beside).0
            })
        })
        .context("starting the API thread")?;
    Ok(ApiServer {
        stop,
        thread: Some(thread),
        #[cfg(test)]
        tid,
    })
}

impl ApiServer {
    /// Stops accepting, waits for the task beside the server to end (the
    /// caller must let it: the journal's writer ends once its queue's senders
    /// are gone), disconnects every client, removes the socket and waits for
    /// the server's thread; returns what ended it if it failed.
    pub fn stop(mut self) -> Result<()> {
        self.shut()
    }

    /// The server thread's id in the kernel.
    #[cfg(test)]
    pub fn tid(&self) -> i32 {
        self.tid.get()
    }

    fn shut(&mut self) -> Result<()> {
        let _ = self.stop.send(true);
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => anyhow::bail!("the API thread panicked"),
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Err(e) = self.shut() {
            tracing::warn!(error = %format!("{e:#}"), "stopping the API server");
        }
    }
}

/// Accepts connections until told to stop; dropping the runtime afterwards ends every connection.
async fn accept_loop(
    bound: BoundSocket,
    ctx: Ctx,
    mut stopped: watch::Receiver<bool>,
) -> Result<()> {
    let listener =
        UnixListener::from_std(bound.listener.try_clone()?).context("registering the socket")?;
    let slots = Arc::new(Semaphore::new(ctx.limits.max_connections));
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted.and_then(|(s, _)| s.into_std()) {
                Ok(stream) => {
                    let slot = Arc::clone(&slots).try_acquire_owned().ok();
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        connection(stream, ctx, slot.is_some()).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of descriptors or the like: say so, breathe, go on.
                    tracing::warn!(error = %e, "accepting an API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(bound); // removes the socket file
    Ok(())
}

/// Serves one connection (one request: no keep-alive); `admitted` false answers 503.
async fn connection(stream: std::os::unix::net::UnixStream, ctx: Ctx, admitted: bool) {
    let stream = match ConnIo::new(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "registering an API connection");
            return;
        }
    };
    let limits = ctx.limits.clone();
    let progress = Arc::new(Progress::default());
    let service = {
        let progress = Arc::clone(&progress);
        service_fn(move |req| {
            let ctx = ctx.clone();
            let progress = Arc::clone(&progress);
            async move {
                Ok::<_, Infallible>(match admitted {
                    true => answer(req, ctx, progress).await,
                    false => ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many clients connected; try again later",
                    )
                    .into_response(),
                })
            }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(false)
        .max_buf_size(limits.buffer.max(8192))
        .max_header_size(limits.max_head)
        .max_headers(limits.max_headers)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        served = conn => {
            if let Err(e) = served {
                tracing::debug!(error = %e, "API connection ended with an error");
            }
        }
        _ = progress.stalled(limits.stall_timeout) => {
            tracing::info!("disconnecting an API client that stopped reading");
        }
    }
}
