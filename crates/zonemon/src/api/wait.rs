//! `GET /v1/wait`: the first record of a zone's transition at or after a time.
//!
//! The journal is read from `since` on, then followed: a zone that booted and
//! shut down a millisecond before the request arrived still counts, and a zone
//! that does not exist yet is waited for. Exact at the seam for the same
//! reason as the event stream (see `events`).

use std::sync::Arc;

use super::query::WaitQuery;
use crate::store::{EventStore, StoredRecord};

/// Records read from the journal at a time.
const BATCH: usize = 512;

/// The first record matching `q` (`None`: the timeout passed first).
///
/// Errors: the journal could not be read, or its writer went away (the daemon is stopping).
pub async fn first_match(
    store: Arc<dyn EventStore>,
    q: &WaitQuery,
) -> anyhow::Result<Option<StoredRecord>> {
    let search = search(store, q);
    match q.timeout {
        None => search.await.map(Some),
        Some(t) => match tokio::time::timeout(t, search).await {
            Ok(found) => found.map(Some),
            Err(_) => Ok(None),
        },
    }
}

/// Reads and follows the journal until a record matches.
async fn search(store: Arc<dyn EventStore>, q: &WaitQuery) -> anyhow::Result<StoredRecord> {
    let mut commits = store.subscribe();
    let mut after = store.seq_before_time(q.since)?;
    loop {
        commits.borrow_and_update();
        let batch = store.read_after(after, BATCH)?;
        let full = batch.len() == BATCH;
        for r in batch {
            after = r.seq;
            if q.matches(r.unix_ns, &r.object) {
                return Ok(r);
            }
        }
        if full {
            tokio::task::yield_now().await;
            continue;
        }
        commits
            .changed()
            .await
            .map_err(|_| anyhow::anyhow!("the journal closed: the daemon is stopping"))?;
    }
}
