//! Whether a client still reads what it is sent: a stream that has handed
//! data to the connection and is not asked for more within the stall limit
//! belongs to a stuck client, which is then disconnected.
//!
//! No timer runs while nothing waits to be sent (an idle follower costs no
//! wakeups); while data flows, one timer per stall limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Shared by a connection's response streams and its stall watchdog.
#[derive(Debug, Default)]
pub struct Progress {
    /// How many times the connection asked a stream for more.
    asks: AtomicU64,
    /// Whether a chunk was handed over and no more was asked for since.
    handed: AtomicBool,
    /// Woken when a chunk is handed over.
    notify: Notify,
}

impl Progress {
    /// The connection asks for the next chunk (it has room for it).
    pub fn asked(&self) {
        self.asks.fetch_add(1, Ordering::Relaxed);
        self.handed.store(false, Ordering::Relaxed);
    }

    /// A chunk was handed to the connection.
    pub fn handed(&self) {
        self.handed.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Returns once a chunk has been handed over and the connection has not
    /// asked for another for `limit`: the client stopped reading.
    pub async fn stalled(&self, limit: Duration) {
        loop {
            self.notify.notified().await;
            loop {
                let asks = self.asks.load(Ordering::Relaxed);
                tokio::time::sleep(limit).await;
                if !self.handed.load(Ordering::Relaxed) {
                    break; // caught up: nothing waits to be sent
                }
                if self.asks.load(Ordering::Relaxed) == asks {
                    return;
                }
            }
        }
    }
}
