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

// The server's modules: used by `zonemon daemon` through `serve` (its branch
// is merged separately; then these `allow`s go).
#[allow(dead_code)]
mod events;
#[allow(dead_code)]
mod progress;
#[allow(dead_code)]
mod query;
#[allow(dead_code)]
mod reply;
#[allow(dead_code)]
mod routes;
#[allow(dead_code)]
mod server;
#[allow(dead_code)]
mod socket;
#[allow(dead_code)]
mod wait;
#[allow(dead_code)]
mod zones;

// `zonemon daemon` starts the server (wired when its branch is merged).
#[allow(unused_imports)]
pub use server::{serve, ApiConfig, ApiServer, Limits};

pub use args::{ViaDaemon, WaitArgs, WatchViaDaemon};
pub use commands::{list, wait, watch, EXIT_WAIT_FAILED};

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/zonemon/zonemon.sock";

/// The group whose members may use the socket (when it exists).
#[allow(dead_code)]
pub const SOCKET_GROUP: &str = "zonemon";

/// The API's version: the first segment of every route.
#[allow(dead_code)]
pub const API_VERSION: &str = "v1";

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod testutil;
