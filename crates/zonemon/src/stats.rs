//! `zonemon watch --stats`: what the event path cost, printed on stderr at exit.
//!
//! Measures, per observation, the whole userspace path (from the source's
//! record to the written line) and, within it, each call of the runtime name
//! resolvers, so that the share of naming in the event path is known.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use zonemon_core::{NameResolver, ResolvedName, ZoneFacts};

/// Durations in nanoseconds, kept to compute percentiles at exit.
#[derive(Debug, Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    /// Adds one duration.
    pub fn push(&mut self, ns: u64) {
        self.0.push(ns);
    }

    /// The `p`-th percentile (0–100), nearest rank; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        let mut v = self.0.clone();
        v.sort_unstable();
        match v.len() {
            0 => 0,
            n => v[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1],
        }
    }

    /// Sum of all durations.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// How many durations.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The costs gathered during one watch.
#[derive(Debug, Default)]
pub struct Stats {
    /// Whole userspace path per observation.
    pub handle: Samples,
    /// Each runtime-name resolver call.
    pub naming: Samples,
    /// Calls that found a runtime name.
    pub named: u64,
}

impl Stats {
    /// One JSON line summarising the costs, for stderr.
    pub fn summary(&self) -> String {
        let share = match self.handle.total() {
            0 => 0.0,
            t => self.naming.total() as f64 / t as f64,
        };
        serde_json::json!({
            "stats": {
                "observations": self.handle.len(),
                "event_path_ns": {"p50": self.handle.percentile(50.0), "p99": self.handle.percentile(99.0)},
                "naming_calls": self.naming.len(),
                "naming_calls_named": self.named,
                "naming_ns": {"p50": self.naming.percentile(50.0), "p99": self.naming.percentile(99.0)},
                "naming_share_of_event_path": share,
            }
        })
        .to_string()
    }
}

/// Shared handle on the stats of a watch.
pub type SharedStats = Rc<RefCell<Stats>>;

/// A resolver that times every call of the one it wraps.
pub struct TimedResolver<R> {
    inner: R,
    stats: SharedStats,
}

impl<R> TimedResolver<R> {
    /// Wraps `inner`, recording into `stats`.
    pub fn new(inner: R, stats: SharedStats) -> Self {
        TimedResolver { inner, stats }
    }
}

impl<R: NameResolver> NameResolver for TimedResolver<R> {
    fn resolve(&mut self, facts: &ZoneFacts<'_>) -> Option<ResolvedName> {
        let start = Instant::now();
        let found = self.inner.resolve(facts);
        let mut stats = self.stats.borrow_mut();
        stats.naming.push(start.elapsed().as_nanos() as u64);
        stats.named += u64::from(found.is_some());
        found
    }

    fn may_name_later(&mut self, facts: &ZoneFacts<'_>) -> bool {
        self.inner.may_name_later(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_summary() {
        let mut s = Samples::default();
        assert_eq!(s.percentile(50.0), 0);
        for ns in 1..=100 {
            s.push(ns);
        }
        assert_eq!(
            (s.percentile(50.0), s.percentile(99.0), s.percentile(100.0)),
            (50, 99, 100)
        );
        let stats = Stats {
            handle: s,
            naming: Samples(vec![10, 20]),
            named: 1,
        };
        let v: serde_json::Value = serde_json::from_str(&stats.summary()).unwrap();
        assert_eq!(v["stats"]["observations"], 100);
        assert_eq!(v["stats"]["naming_calls"], 2);
        assert_eq!(v["stats"]["naming_share_of_event_path"], 30.0 / 5050.0);
    }
}
