//! The fleet: every host's journal published to NATS JetStream, and the
//! commands that read the whole fleet back (`watch --from`, `list --from`).
//!
//! The journal is the outbox (`publisher`): a thread of the daemon reads
//! committed records after the highest `seq` the server acknowledged (kept in
//! the journal, `outbox`), publishes each to `zonemon.events.<host>.<event>`
//! with a `Nats-Msg-Id` of host, journal and `seq`, and keeps the running
//! zones in the key-value bucket `zonemon-zones` (`<host>.<zone_id>`).
//!
//! - `names`: host ids, subjects, keys and message ids (hostile input made safe).
//! - `connect`: servers, credentials and TLS; connecting with clear errors.
//! - `setup`: the stream and the bucket, created or checked.
//! - `outbox`: the journal's identity and its highest acknowledged `seq`.
//! - `publisher`: the daemon's publishing thread.
//! - `consume`: `zonemon watch --from`, `wait --from` and `list --from`.
//! - `replay`: the benchmark's simulated hosts (`zonemon fleet-replay`, hidden).

pub mod args;
pub mod connect;
pub mod consume;
pub mod names;
pub mod outbox;
pub mod publisher;
pub mod replay;
pub mod setup;

pub use args::{FleetKeys, FromArgs, PublishArgs, WatchFromArgs};
pub use publisher::{PublishOptions, Publisher};

/// The stream the daemon publishes to unless told otherwise.
pub const DEFAULT_STREAM: &str = "ZONEMON";

/// The key-value bucket of running zones.
pub const BUCKET: &str = "zonemon-zones";

/// Every record's subject starts with this.
pub const SUBJECT_PREFIX: &str = "zonemon.events";

/// The header naming the journal a record comes from (with the host, what `seq` counts within).
pub const JOURNAL_HEADER: &str = "Zonemon-Journal";
