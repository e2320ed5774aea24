//! `GET /v1/zones` and `GET /v1/zones/{zone_id or name}`: the zones running
//! now, each as its newest record, plus `root`, the init's root directory
//! as the daemon sees it (what `zonemon list -p` shows).

use std::fs;
use std::os::unix::ffi::OsStrExt;

use serde_json::{Map, Value};

use crate::store::EventStore;

/// Longest root path reported, in bytes.
const MAX_ROOT: usize = 4096;

/// The running zones, in `zone_id` order, each with `root` added.
pub fn running(store: &dyn EventStore) -> Vec<Map<String, Value>> {
    store
        .running()
        .into_iter()
        .map(|r| {
            let mut obj = std::sync::Arc::unwrap_or_clone(r.object);
            let root = zone_root(&obj);
            obj.insert("root".into(), root.map_or(Value::Null, Value::from));
            obj
        })
        .collect()
}

/// The running zone `key` names: a number is a `zone_id`, anything else a
/// name (the newest zone of that name when several share it).
pub fn find(store: &dyn EventStore, key: &str) -> Option<Map<String, Value>> {
    let zones = running(store);
    let by_id = key.parse::<u64>().ok();
    zones.into_iter().rev().find(|z| match by_id {
        Some(id) => z.get("zone_id").and_then(Value::as_u64) == Some(id),
        None => z.get("name").and_then(Value::as_str) == Some(key),
    })
}

/// `/proc/<init_pid>/root` of the zone `obj`, when that process is still the
/// zone's init (its PID namespace is the zone's).
fn zone_root(obj: &Map<String, Value>) -> Option<String> {
    let pid = obj.get("init_pid")?.as_u64()?;
    let pidns = obj.get("pidns")?.as_u64()?;
    let proc_dir = format!("/proc/{pid}");
    let ns = fs::read_link(format!("{proc_dir}/ns/pid")).ok()?;
    if ns.as_os_str().as_bytes() != format!("pid:[{pidns}]").as_bytes() {
        return None; // the PID was reused: not this zone's init any more
    }
    let root = fs::read_link(format!("{proc_dir}/root")).ok()?;
    Some(zonemon_core::escape::bound(
        &String::from_utf8_lossy(root.as_os_str().as_bytes()),
        MAX_ROOT,
    ))
}
