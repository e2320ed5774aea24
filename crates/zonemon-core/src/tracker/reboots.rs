//! The tracker's reboot memory: recent shutdowns by zone name, so that a
//! zone booting with the name of one that shut down shortly before is
//! linked to it (`reboot_of`).
//!
//! Names are kept as a 64-bit hash keyed at random per tracker, so the
//! memory holds no strings (two names collide with a chance of 2^-64, and no
//! zone owner can aim for it); it holds at most [`REBOOT_MEMORY`] entries.

use std::hash::{BuildHasher, RandomState};

use crate::recent::RecentMap;

/// A zone booting with the name of one that shut down at most this long before is its reboot.
pub const REBOOT_WINDOW_NS: u64 = 60_000_000_000;

/// How many recent shutdowns are remembered for reboot detection.
pub(super) const REBOOT_MEMORY: usize = 4096;

/// Recent shutdowns by name: (zone id, time); and boots by name, counted.
pub(super) struct RebootMemory {
    shutdowns: RecentMap<u64, (u64, u64)>,
    /// How many zones of each recent name booted (the most recently booted names are kept).
    boots: RecentMap<u64, u32>,
    hasher: RandomState,
}

impl RebootMemory {
    /// An empty memory, allocated at its full size.
    pub(super) fn new() -> Self {
        RebootMemory {
            shutdowns: RecentMap::new(REBOOT_MEMORY),
            boots: RecentMap::new(REBOOT_MEMORY),
            hasher: RandomState::new(),
        }
    }

    /// Zone `zone_id`, named `name`, shut down at `ts_ns`.
    pub(super) fn shut_down(&mut self, name: &str, zone_id: u64, ts_ns: u64) {
        let key = self.hasher.hash_one(name);
        self.shutdowns.insert(key, (zone_id, ts_ns));
    }

    /// Zone `zone_id` booted at `ts_ns` with name `name`: the id of the zone
    /// it reboots and the time since that zone's shutdown, if it is a reboot
    /// (each shutdown is rebooted at most once).
    pub(super) fn booted(&mut self, name: &str, zone_id: u64, ts_ns: u64) -> Option<(u64, u64)> {
        let key = self.hasher.hash_one(name);
        let &(prev, at) = self.shutdowns.get(&key)?;
        if prev == zone_id || at > ts_ns || ts_ns - at > REBOOT_WINDOW_NS {
            return None;
        }
        self.shutdowns.remove(&key);
        Some((prev, ts_ns - at))
    }

    /// A zone named `name` booted: how many zones of that name booted before
    /// it (as far as the memory of [`REBOOT_MEMORY`] names goes back).
    pub(super) fn count_boot(&mut self, name: &str) -> u32 {
        let key = self.hasher.hash_one(name);
        let before = self.boots.get(&key).copied().unwrap_or(0);
        self.boots.insert(key, before.saturating_add(1));
        before
    }

    /// How many shutdowns are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shutdowns.len()
    }
}
