//! The seam between the daemon's journal and its readers (the local API).
//!
//! The journal (SQLite, written by the daemon off the hot path) implements
//! [`EventStore`]; the API server and everything it serves (`watch`, `events`,
//! `wait`, `list` through the daemon) only read through it. One record is one
//! line of `zonemon watch --json` plus its host-wide sequence number.

use std::sync::Arc;

use anyhow::Result;
use serde_json::{Map, Value};

/// One journaled record: a transition, a `lost` notice, or a `monitor-start`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Host-wide sequence number: only grows, also across daemon restarts; never 0.
    pub seq: u64,
    /// The record's time (the kernel's timestamp of the transition), nanoseconds since the Unix epoch.
    pub unix_ns: i128,
    /// The whole JSON object, as `zonemon watch --json` writes it, with `"seq"`
    /// added; shared, so that the copies readers and the zone table keep cost nothing.
    pub object: Arc<Map<String, Value>>,
}

/// Read access to the journal, shared by the API server's tasks.
///
/// Contract: every method is cheap to call from an async task (short SQLite
/// reads, no waiting on the writer); records are returned in `seq` order; a
/// record is visible to readers only once it is committed.
pub trait EventStore: Send + Sync + 'static {
    /// Up to `limit` committed records with `seq > after`, in `seq` order.
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<StoredRecord>>;

    /// The `seq` just before the first record dated at or after `unix_ns`
    /// (the last `seq` if none is): a replay "since T" reads after it.
    /// (Not "the highest `seq` dated before T": resynced `ready` records are
    /// dated at the zone's creation, long before their `seq`, and one of them
    /// would make a replay skip everything before it.)
    fn seq_before_time(&self, unix_ns: i128) -> Result<u64>;

    /// The highest committed `seq` (0 for an empty journal).
    fn last_seq(&self) -> u64;

    /// Changes (to the new highest committed `seq`) after every committed batch:
    /// followers wait on it instead of polling.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;

    /// The zones running now: for each zone not shut down, its newest record
    /// (`ready`, `booted` or `running`), in `zone_id` order.
    fn running(&self) -> Vec<StoredRecord>;
}
