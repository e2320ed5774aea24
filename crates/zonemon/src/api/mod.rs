//! The local API: HTTP over a Unix socket, serving the daemon's journal to
//! `zonemon watch`, `list`, `wait` and to anything that speaks HTTP
//! (`curl --unix-socket /run/zonemon/zonemon.sock http://zonemon/v1/zones`).
//! Routes and formats are documented in README.md ("Local API").
//!
//! Server side: [`serve`] binds the socket and runs the server on a thread
//! of its own with a single-threaded tokio runtime; it reads only through
//! [`crate::store::EventStore`], so the hot path (ring buffer → tracker →
//! journal queue) never waits on a client. Client side: `client` speaks to
//! the daemon and `commands` runs the CLI's commands through it.

mod args;
mod client;
mod commands;
mod record;
mod timespec;

// The server's modules: used by `zonemon daemon` through `serve`.
mod conn_io;
mod events;
mod progress;
mod query;
mod reply;
mod routes;
mod server;
mod socket;
mod wait;
mod zones;

// `zonemon daemon` starts the server (wired when its branch is merged).
#[allow(unused_imports)]
pub use server::{serve, ApiConfig, ApiServer, Beside, Limits};

// `zonemon top` follows the daemon as `watch` does; `timeline` reads it.
pub use client::{Daemon, StreamEnd};
pub use commands::{choose, follow};

pub use args::{ViaDaemon, WaitArgs, WatchViaDaemon};
pub use commands::{list, wait, watch, EXIT_WAIT_FAILED};
pub use query::{Target, WaitQuery};
pub use record::zone_event;

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/zonemon/zonemon.sock";

/// The group whose members may use the socket (when it exists).
pub const SOCKET_GROUP: &str = "zonemon";

/// The API's version: the first segment of every route.
pub const API_VERSION: &str = "v1";

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod testutil;
