//! `zonemon watch --stats`: what the event path cost, printed on stderr at exit.
//!
//! Measures, per observation, the whole userspace path (from the source's
//! record to the written line) and, within it, each call of the runtime name
//! resolvers, so that the share of naming in the event path is known. A
//! resolver call is timed twice: on the wall clock, and on the thread's CPU
//! clock with its count of context switches, which tell the work a call did
//! from the time it spent waiting (for a CPU, or asleep).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use hdrhistogram::Histogram;
use zonemon_core::{Lookup, NameResolver, ZoneFacts};

/// Longest duration told apart, in nanoseconds (longer ones count as this): a minute.
const MAX_NS: u64 = 60_000_000_000;

/// Significant decimal digits kept of each duration: percentiles are exact to 1 %.
const PRECISION_DIGITS: u8 = 2;

/// Durations in nanoseconds, counted in a fixed-size histogram (a few tens
/// of KiB however long the watch) to compute percentiles at exit.
#[derive(Debug)]
pub struct Samples {
    histogram: Histogram<u64>,
    total: u64,
}

impl Default for Samples {
    fn default() -> Self {
        Samples {
            histogram: Histogram::new_with_max(MAX_NS, PRECISION_DIGITS)
                .expect("valid histogram bounds"),
            total: 0,
        }
    }
}

impl Samples {
    /// Adds one duration.
    pub fn push(&mut self, ns: u64) {
        self.histogram.saturating_record(ns);
        self.total = self.total.saturating_add(ns);
    }

    /// The `p`-th percentile (0–100) to the histogram's precision; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        match self.histogram.is_empty() {
            true => 0,
            false => self.histogram.value_at_percentile(p),
        }
    }

    /// Sum of all durations.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// How many durations.
    pub fn len(&self) -> u64 {
        self.histogram.len()
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
    /// Each resolver call by the runtime that named the zone (`none`: no runtime did).
    pub naming_by_runtime: BTreeMap<String, Calls>,
}

/// Resolver calls: their wall-clock and on-CPU durations, and how many were
/// switched out at least once while they ran: asleep in a system call, or preempted.
#[derive(Debug, Default)]
pub struct Calls {
    /// Wall-clock durations.
    pub wall: Samples,
    /// The thread's CPU time during each call.
    pub cpu: Samples,
    /// Calls during which the thread was switched out.
    pub switched: u64,
    /// Of those, the calls during which it slept (a voluntary switch: it waited for something).
    pub blocked: u64,
    /// Of those, the calls during which it was preempted (an involuntary switch).
    pub preempted: u64,
}

impl Calls {
    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "calls": self.wall.len(),
            "p50": self.wall.percentile(50.0),
            "p99": self.wall.percentile(99.0),
            "cpu_p50": self.cpu.percentile(50.0),
            "cpu_p99": self.cpu.percentile(99.0),
            "switched": self.switched,
            "blocked": self.blocked,
            "preempted": self.preempted,
        })
    }
}

/// The calling thread's CPU time (ns) and context switches so far: (cpu, voluntary, involuntary).
fn thread_usage() -> (u64, u64, u64) {
    let cpu = zonemon_core::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) as u64;
    // SAFETY: a zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD of the calling thread into a valid rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    (cpu, ru.ru_nvcsw as u64, ru.ru_nivcsw as u64)
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
                "naming_ns_by_runtime": self.naming_by_runtime.iter().map(|(rt, c)| {
                    (rt.clone(), c.summary())
                }).collect::<serde_json::Map<_, _>>(),
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
    fn lookup(&mut self, facts: &ZoneFacts<'_>) -> Lookup {
        // The CPU clock and the switches are read outside the wall-clock window.
        let (cpu_before, slept_before, preempted_before) = thread_usage();
        let start = Instant::now();
        let answer = self.inner.lookup(facts);
        let ns = start.elapsed().as_nanos() as u64;
        let (cpu_after, slept_after, preempted_after) = thread_usage();
        let (slept, preempted) = (
            slept_after > slept_before,
            preempted_after > preempted_before,
        );
        let found = match &answer {
            Lookup::Named(name) => Some(name),
            Lookup::NotYet | Lookup::Never => None,
        };
        let mut stats = self.stats.borrow_mut();
        stats.naming.push(ns);
        stats.named += u64::from(found.is_some());
        let runtime = found.and_then(|f| f.runtime.as_deref()).unwrap_or("none");
        if !stats.naming_by_runtime.contains_key(runtime) {
            // A new key only for a runtime not seen yet: the resolvers know a handful.
            stats
                .naming_by_runtime
                .insert(runtime.to_string(), Calls::default());
        }
        let calls = stats
            .naming_by_runtime
            .get_mut(runtime)
            .expect("inserted above");
        calls.wall.push(ns);
        calls.cpu.push(cpu_after.saturating_sub(cpu_before));
        calls.switched += u64::from(slept || preempted);
        calls.blocked += u64::from(slept);
        calls.preempted += u64::from(preempted);
        answer
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
        let mut naming = Samples::default();
        naming.push(10);
        naming.push(20);
        let stats = Stats {
            handle: s,
            naming,
            named: 1,
            naming_by_runtime: BTreeMap::new(),
        };
        let v: serde_json::Value = serde_json::from_str(&stats.summary()).unwrap();
        assert_eq!(v["stats"]["observations"], 100);
        assert_eq!(v["stats"]["naming_calls"], 2);
        assert_eq!(v["stats"]["naming_share_of_event_path"], 30.0 / 5050.0);
    }

    /// Answers at once, or after sleeping 2 ms (a wait the CPU clock does not count).
    struct Slow(bool);

    impl NameResolver for Slow {
        fn lookup(&mut self, _: &ZoneFacts<'_>) -> Lookup {
            if self.0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Lookup::Never
        }
    }

    #[test]
    fn a_call_that_waits_is_told_from_one_that_works() {
        let stats = SharedStats::default();
        let facts = ZoneFacts::default();
        TimedResolver::new(Slow(false), Rc::clone(&stats)).lookup(&facts);
        TimedResolver::new(Slow(true), Rc::clone(&stats)).lookup(&facts);
        let v: serde_json::Value = serde_json::from_str(&stats.borrow().summary()).expect("JSON");
        let none = &v["stats"]["naming_ns_by_runtime"]["none"];
        assert_eq!(none["calls"], 2);
        assert!(none["p99"].as_u64().unwrap() >= 2_000_000, "{none}");
        assert!(none["cpu_p99"].as_u64().unwrap() < 1_000_000, "{none}");
        assert!(none["switched"].as_u64().unwrap() >= 1, "the sleep: {none}");
        assert!(none["blocked"].as_u64().unwrap() >= 1, "the sleep: {none}");
    }

    #[test]
    fn memory_stays_flat_and_percentiles_stay_within_one_percent() {
        let mut s = Samples::default();
        let size = std::mem::size_of_val(&s) + s.histogram.distinct_values() * 8;
        // A long watch: a million durations from 1 µs to 10 ms, uniformly.
        let n: u64 = 1_000_000;
        for i in 0..n {
            s.push(1_000 + i * 10);
        }
        assert_eq!(
            std::mem::size_of_val(&s) + s.histogram.distinct_values() * 8,
            size,
            "no growth"
        );
        for (p, exact) in [(50.0, 1_000 + 499_999 * 10), (99.0, 1_000 + 989_999 * 10)] {
            let got = s.percentile(p) as f64;
            assert!(
                (got - exact as f64).abs() <= exact as f64 * 0.01,
                "p{p}: {got} vs {exact}"
            );
        }
        assert!(s.percentile(100.0) as f64 / 10_000_990.0 > 0.99);
        assert_eq!(s.len(), n);
        s.push(u64::MAX);
        assert_eq!(s.len(), n + 1, "an absurd duration is counted, clamped");
    }
}
