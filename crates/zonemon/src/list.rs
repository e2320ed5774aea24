//! `zonemon list [-p]`: the zones running now, found in `/proc` (no BPF needed).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use zonemon_core::listing::write_list;
use zonemon_core::procscan::{host_info, scan};
use zonemon_core::{NameResolver, Tracker};

/// Writes the zones running now to `out`: a table, or with `parseable` one
/// `zone_id:name:state:root:container_id:runtime:pidns` line per zone.
///
/// Zones are named by `resolver` first, then by hostname, then by PID
/// namespace. A write error (such as a closed pipe) is returned.
pub fn run(
    parseable: bool,
    resolver: impl NameResolver,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let zones = scan(Path::new("/proc"));
    let host = host_info().context("reading the host's UTS namespace and hostname")?;
    let mut tracker = Tracker::new(host, resolver);
    let mut roots = HashMap::new();
    // `scan` sorts parents before their children, as `seed` needs.
    for zone in &zones {
        let id = tracker.seed(&zone.to_observation(), 0);
        roots.insert(id, zone.root.clone());
    }
    let rows: Vec<_> = tracker
        .running()
        .into_iter()
        .map(|ev| {
            let root = roots.remove(&ev.zone_id).flatten();
            (ev, root)
        })
        .collect();
    write_list(&rows, parseable, out)?;
    Ok(())
}
