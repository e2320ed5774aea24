//! Prometheus metrics (`--metrics ADDR`): what zonemon saw and what it cost.
//!
//! The hot path only touches atomics (prometheus-client's counters, gauges
//! and histograms); the exposition is encoded by the crate, never by hand,
//! when `/metrics` is scraped, on the server's own thread (`server`).
//!
//! Conventions: the `zonemon_` prefix, `_total` counters, base units
//! (`_seconds`, `_bytes`), and only labels with a bounded set of values
//! (`event`, `runtime`): never one per zone.

mod server;
mod sink;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Result;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use server::serve;
pub use sink::{MeteredResolver, MeteredSink, RunningZones};

/// The runtimes a `runtime` label may name; anything else is `other`, a zone no runtime made `none`.
const RUNTIMES: [&str; 9] = [
    "docker",
    "podman",
    "containerd",
    "kubernetes",
    "cri-o",
    "lxc",
    "nspawn",
    "runc",
    "crun",
];

/// The bounded `runtime` label value of a zone's runtime.
pub fn runtime_label(runtime: Option<&str>) -> &'static str {
    match runtime {
        None => "none",
        Some(r) => RUNTIMES
            .iter()
            .find(|k| **k == r)
            .copied()
            .unwrap_or("other"),
    }
}

/// Every metric zonemon exposes, cheap to clone (each is a shared handle).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Zones running now (ready or booted, not shut down), by runtime.
    pub zones_running: IntGaugeVec,
    /// Transitions reported, by event and runtime.
    pub transitions: IntCounterVec,
    /// Records the source could not deliver (a loss of unknown size counts 1).
    pub lost_records: IntCounter,
    /// Resynchronisations from /proc after a loss.
    pub resyncs: IntCounter,
    /// Time of one runtime-name lookup.
    pub naming_seconds: Histogram,
    /// From the kernel's timestamp of a transition to its record written.
    pub detection_latency_seconds: Histogram,
    /// Bytes of the kernel-to-user ring buffer holding records not yet read (eBPF source only).
    pub ring_buffer_bytes: IntGauge,
    /// The journal's last committed `seq` (daemon only).
    pub journal_seq: IntGauge,
    /// The journal's size on disk, its write-ahead log included (daemon only),
    /// measured when the metrics are scraped.
    pub journal_bytes: JournalBytes,
    /// Hook runs made, by hook (the configured names: a bounded set).
    pub hook_runs: IntCounterVec,
    /// Hook runs that failed (a non-zero exit, a signal, not started), by hook.
    pub hook_failures: IntCounterVec,
    /// Hook runs killed at their timeout, by hook.
    pub hook_timeouts: IntCounterVec,
    /// Hook runs dropped (the queue was full, or the daemon stopped first), by hook.
    pub hook_dropped: IntCounterVec,
    /// Records journaled and not yet acknowledged by the fleet's stream (`--publish`).
    pub publish_lag_records: IntGauge,
    /// Records published to the fleet's stream and acknowledged.
    pub published_records: IntCounter,
}

/// Serves fresh metrics at `addr` when given (see [`serve`]); the handles to update them.
pub fn start(addr: Option<SocketAddr>) -> Result<Option<Metrics>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let (m, registry) = Metrics::new();
    let bound = serve(addr, registry)?;
    eprintln!("zonemon: serving metrics on http://{bound}/metrics");
    Ok(Some(m))
}

impl Metrics {
    /// Fresh metrics, and the registry that exposes them.
    pub fn new() -> (Metrics, Registry) {
        // Names are constants and label sets fixed: registering cannot fail.
        let reg = Registry::new_custom(Some("zonemon".into()), None).expect("a valid prefix");
        fn register<T: prometheus::core::Collector + Clone + 'static>(reg: &Registry, m: T) -> T {
            reg.register(Box::new(m.clone()))
                .expect("a unique, valid metric");
            m
        }
        // 10 µs .. ~0.3 s: naming costs tens of µs, latency under a millisecond.
        let buckets = || exponential_buckets(1e-5, 2.0, 16).expect("valid buckets");
        let gauge =
            |name: &str, help: &str| register(&reg, IntGauge::new(name, help).expect("valid"));
        let per_hook = |name: &str, help: &str| {
            register(
                &reg,
                IntCounterVec::new(Opts::new(name, help), &["hook"]).expect("valid"),
            )
        };
        let m = Metrics {
            zones_running: register(
                &reg,
                IntGaugeVec::new(
                    Opts::new("zones_running", "Zones running now (ready or booted, not shut down), by runtime"),
                    &["runtime"],
                )
                .expect("valid"),
            ),
            transitions: register(
                &reg,
                IntCounterVec::new(
                    Opts::new("transitions_total", "Zone transitions reported, by event and runtime"),
                    &["event", "runtime"],
                )
                .expect("valid"),
            ),
            lost_records: register(
                &reg,
                IntCounter::new(
                    "lost_records_total",
                    "Records the kernel side or the source could not deliver (an unknown count counts 1)",
                )
                .expect("valid"),
            ),
            resyncs: register(
                &reg,
                IntCounter::new(
                    "resyncs_total",
                    "Resynchronisations of the zone table from /proc after lost records",
                )
                .expect("valid"),
            ),
            naming_seconds: register(
                &reg,
                Histogram::with_opts(
                    HistogramOpts::new("naming_seconds", "Time of one runtime-name lookup")
                        .buckets(buckets()),
                )
                .expect("valid"),
            ),
            detection_latency_seconds: register(
                &reg,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "detection_latency_seconds",
                        "From the kernel's timestamp of a transition to its record written",
                    )
                    .buckets(buckets()),
                )
                .expect("valid"),
            ),
            ring_buffer_bytes: gauge(
                "ring_buffer_bytes",
                "Bytes of the kernel-to-user ring buffer holding records not yet read",
            ),
            journal_seq: gauge("journal_seq", "The journal's last committed sequence number"),
            journal_bytes: register(
                &reg,
                JournalBytes {
                    gauge: IntGauge::new(
                        "journal_bytes",
                        "The journal's size on disk, its write-ahead log included",
                    )
                    .expect("valid"),
                    path: Arc::new(OnceLock::new()),
                },
            ),
            hook_runs: per_hook("hook_runs_total", "Hook runs made, by hook"),
            hook_failures: per_hook(
                "hook_failures_total",
                "Hook runs that exited non-zero, were killed by a signal or could not start, by hook",
            ),
            hook_timeouts: per_hook(
                "hook_timeouts_total",
                "Hook runs killed at their timeout, by hook",
            ),
            hook_dropped: per_hook(
                "hook_dropped_total",
                "Hook runs dropped because the queue was full or the daemon stopped, by hook",
            ),
            publish_lag_records: gauge(
                "publish_lag_records",
                "Records journaled and not yet acknowledged by the fleet's stream (--publish)",
            ),
            published_records: register(
                &reg,
                IntCounter::new(
                    "published_records_total",
                    "Records published to the fleet's stream and acknowledged",
                )
                .expect("valid"),
            ),
        };
        (m, reg)
    }
}

/// The journal's size on disk with its write-ahead log, measured (two
/// `stat`s) when the metrics are gathered, not on the journal writer's
/// thread after every commit.
#[derive(Clone, Debug)]
pub struct JournalBytes {
    gauge: IntGauge,
    /// The journal's path, once the daemon has opened it.
    path: Arc<OnceLock<PathBuf>>,
}

impl JournalBytes {
    /// From now on the gauge measures the journal at `path` (and its `-wal` file).
    pub fn measure(&self, path: PathBuf) {
        let _ = self.path.set(path);
    }
}

impl Collector for JournalBytes {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Some(path) = self.path.get() {
            let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            self.gauge.set((size(path) + size(Path::new(&wal))) as i64);
        }
        self.gauge.collect()
    }
}

/// The exposition of `reg` in Prometheus's text format (0.0.4).
pub fn encode(reg: &Registry) -> String {
    TextEncoder::new()
        .encode_to_string(&reg.gather())
        .unwrap_or_else(|e| format!("# zonemon: encoding the metrics failed: {e}\n"))
}

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let (m, reg) = Metrics::new();
        m.transitions
            .with_label_values(&["booted", runtime_label(Some("docker"))])
            .inc();
        m.naming_seconds.observe(42e-6);
        let text = encode(&reg);
        for line in [
            "zonemon_transitions_total{event=\"booted\",runtime=\"docker\"} 1",
            "# TYPE zonemon_naming_seconds histogram",
            "# TYPE zonemon_lost_records_total counter",
            "zonemon_lost_records_total 0",
        ] {
            assert!(text.contains(line), "lacks {line}:\n{text}");
        }
    }

    #[test]
    fn the_journal_is_measured_when_scraped() {
        let (m, reg) = Metrics::new();
        assert!(
            encode(&reg).contains("zonemon_journal_bytes 0"),
            "no journal yet"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        m.journal_bytes.measure(path.clone());
        assert!(encode(&reg).contains("zonemon_journal_bytes 4096"));
        std::fs::write(dir.path().join("journal.db-wal"), vec![0u8; 1000]).unwrap();
        let text = encode(&reg);
        assert!(text.contains("zonemon_journal_bytes 5096"), "{text}");
    }

    #[test]
    fn runtime_labels_are_bounded() {
        assert_eq!(runtime_label(Some("lxc")), "lxc");
        assert_eq!(runtime_label(Some("$(rm -rf /)")), "other");
        assert_eq!(runtime_label(None), "none");
    }
}
