//! What every measurement needs: the zonemon binary, the plan (smoke or full),
//! this run's zone-name prefix, the C helpers, and which sources this zonemon offers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::monitor::{Monitor, Source};
use crate::zones::Helpers;

/// How much of everything to do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Smoke mode (CI): small numbers.
    pub smoke: bool,
    /// fork+exec+exit cycles per host-cost run.
    pub host_cycles: usize,
    /// Interleaved attached/not-attached pairs of host-cost runs.
    pub host_pairs: usize,
    /// Zones for the eBPF latency figure (one at a time).
    pub latency_zones: usize,
    /// Slow zones for the comparison sources' latency.
    pub compare_zones: usize,
    /// Zones per churn parallelism.
    pub churn_zones: usize,
    /// The idle window.
    pub idle: Duration,
    /// Throughput ramp: zones at a time.
    pub throughput_steps: Vec<usize>,
    /// Zones per throughput step.
    pub throughput_zones: usize,
    /// Memory checkpoints (zones made so far).
    pub memory_zones: Vec<usize>,
    /// Containers per `docker events` phase.
    pub docker_containers: usize,
    /// Live zones held at each scale level.
    pub scale_levels: Vec<usize>,
    /// Short zones per scale level for the CPU figure.
    pub scale_cpu_zones: usize,
    /// Zones per scale level for the latency figure (one at a time).
    pub scale_latency_zones: usize,
    /// Zones the daemon journals as fast as the maker goes (its peak RSS is read after them).
    pub daemon_zones: usize,
    /// Parallelisms the zone maker is tried at alone, to find its fastest here.
    pub daemon_parallel: Vec<usize>,
    /// Zones per try of the maker alone.
    pub daemon_probe_zones: usize,
    /// Zones per client of the daemon's latency figure (one at a time): a p99 of
    /// two noisy tails is compared, so more than the other latency figures.
    pub daemon_latency_zones: usize,
    /// The daemon's idle window.
    pub daemon_idle: Duration,
    /// Zones of the fleet's recorded run (made 8 at a time, as fast as they go).
    pub fleet_record_zones: usize,
    /// How long the bus is down for the catch-up figure.
    pub fleet_outage: Duration,
    /// How long one host publishes as fast as it can for the sustained rate.
    pub fleet_sustain: Duration,
    /// Simulated hosts tried at the peak rate (in order, until one count falls behind).
    pub fleet_hosts: Vec<usize>,
    /// How long each count of simulated hosts replays.
    pub fleet_step: Duration,
}

impl Plan {
    /// The numbers for `--smoke` (under 3 minutes) or the full run.
    pub fn new(smoke: bool) -> Plan {
        if smoke {
            Plan {
                smoke,
                host_cycles: 500,
                host_pairs: 3,
                latency_zones: 40,
                compare_zones: 6,
                churn_zones: 60,
                idle: Duration::from_secs(5),
                throughput_steps: vec![1, 4, 16],
                throughput_zones: 300,
                memory_zones: vec![1000],
                docker_containers: 10,
                scale_levels: vec![0, 200, 0],
                scale_cpu_zones: 100,
                scale_latency_zones: 10,
                daemon_zones: 2000,
                daemon_parallel: vec![8, 32],
                daemon_probe_zones: 1000,
                daemon_latency_zones: 40,
                daemon_idle: Duration::from_secs(5),
                fleet_record_zones: 200,
                fleet_outage: Duration::from_secs(3),
                fleet_sustain: Duration::from_secs(2),
                fleet_hosts: vec![1, 4],
                fleet_step: Duration::from_secs(2),
            }
        } else {
            Plan {
                smoke,
                host_cycles: 1000,
                host_pairs: 20,
                latency_zones: 300,
                compare_zones: 40,
                churn_zones: 1000,
                idle: Duration::from_secs(60),
                throughput_steps: vec![1, 2, 4, 8, 16, 32, 64],
                throughput_zones: 3000,
                memory_zones: vec![1000, 100_000],
                docker_containers: 100,
                scale_levels: vec![0, 1000, 10_000, 0, 10_000, 0, 10_000, 0],
                scale_cpu_zones: 3000,
                scale_latency_zones: 1000,
                daemon_zones: 100_000,
                daemon_parallel: vec![4, 8, 16, 32],
                daemon_probe_zones: 5000,
                daemon_latency_zones: 1500,
                daemon_idle: Duration::from_secs(10),
                fleet_record_zones: 2000,
                fleet_outage: Duration::from_secs(300),
                fleet_sustain: Duration::from_secs(20),
                fleet_hosts: vec![1, 2, 4, 8, 16, 32, 64, 128],
                fleet_step: Duration::from_secs(15),
            }
        }
    }
}

/// The comparison sources, in table order.
pub fn comparison_sources() -> Vec<Source> {
    vec![
        Source::ProcConnector,
        Source::Poll(Duration::from_millis(100)),
        Source::Poll(Duration::from_secs(1)),
    ]
}

/// Shared state of one benchmark run.
pub struct Ctx {
    /// The zonemon binary under test.
    pub zonemon: PathBuf,
    /// How much to do.
    pub plan: Plan,
    /// Every zone of this run is named `prefix…`.
    pub prefix: String,
    /// Compiled C helpers.
    pub helpers: Helpers,
    /// This zonemon has no `--source` flag: its default (eBPF) source was used.
    pub ebpf_default: bool,
    /// Each comparison source and whether this zonemon offers it (Err: why not).
    pub sources: Vec<(Source, Result<(), String>)>,
    /// What `--only` selects.
    pub only: Only,
}

/// `--only` as given: a measurement's name alone, or `name:part` for one of its parts.
#[derive(Debug, Default, Clone)]
pub struct Only(pub Vec<String>);

impl Only {
    /// Whether measurement `name` is selected (alone or by one of its parts; all are when none is given).
    pub fn selected(&self, name: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|o| o.split(':').next() == Some(name))
    }

    /// The parts of measurement `name` named (`daemon:latency` names `latency`).
    fn parts<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter_map(move |o| o.strip_prefix(name)?.strip_prefix(':'))
    }

    /// Whether the part `part` of measurement `name` is selected: the
    /// measurement selected whole, or this part named (`daemon:latency`).
    pub fn part_selected(&self, name: &str, part: &str) -> bool {
        self.selected(name) && {
            let mut parts = self.parts(name).peekable();
            parts.peek().is_none() || parts.any(|p| p == part)
        }
    }

    /// Whether the part `part` of measurement `name` is named itself
    /// (`docker:trace`): for parts that a run does not include by default.
    pub fn part_named(&self, name: &str, part: &str) -> bool {
        self.parts(name).any(|p| p == part)
    }
}

impl Ctx {
    /// The name prefix of one phase, e.g. `zmb4711x3f-churn8-`.
    pub fn tag(&self, tag: &str) -> String {
        format!("{}{tag}-", self.prefix)
    }

    /// Starts the eBPF monitor; `slow` delays the reader after each line.
    pub fn ebpf(&self, slow: Option<Duration>) -> Result<Monitor> {
        Monitor::start(&self.zonemon, &self.ebpf_args(), &self.prefix, slow)
            .map_err(|e| anyhow!("eBPF source: {e}"))
    }

    /// The arguments that pick the eBPF source (none when it is zonemon's default).
    fn ebpf_args(&self) -> Vec<String> {
        if self.ebpf_default {
            Vec::new()
        } else {
            Source::Ebpf.args()
        }
    }

    /// Starts an eBPF monitor with `extra` arguments (e.g. `--priority high`).
    pub fn ebpf_with(&self, extra: &[&str]) -> Result<Monitor> {
        let mut args = self.ebpf_args();
        args.extend(extra.iter().map(|a| a.to_string()));
        Monitor::start(&self.zonemon, &args, &self.prefix, None)
            .map_err(|e| anyhow!("eBPF source: {e}"))
    }

    /// Starts a monitor on `source`.
    pub fn start(&self, source: Source) -> Result<Monitor> {
        if source == Source::Ebpf {
            return self.ebpf(None);
        }
        Monitor::start(&self.zonemon, &source.args(), &self.prefix, None)
            .map_err(|e| anyhow!("{} source: {e}", source.label()))
    }

    /// The comparison sources this zonemon offers.
    pub fn available(&self) -> Vec<Source> {
        self.sources
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(s, _)| *s)
            .collect()
    }

    /// Whether `source` is offered.
    pub fn has(&self, source: Source) -> bool {
        self.available().contains(&source)
    }

    /// The longest poll interval among the available sources (how long to wait for a last scan).
    pub fn slowest_poll(&self) -> Duration {
        self.available()
            .iter()
            .map(|s| match s {
                Source::Poll(d) => *d,
                _ => Duration::ZERO,
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// The table text for a source that is not offered.
pub const UNAVAILABLE: &str = "n/a (source unavailable)";

#[cfg(test)]
mod tests {
    use super::Only;

    fn only(list: &[&str]) -> Only {
        Only(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn selects_measurements_and_their_parts() {
        let all = only(&[]);
        assert!(all.selected("docker") && all.part_selected("docker", "events"));
        assert!(!all.part_named("docker", "trace"));

        let docker = only(&["docker", "scale"]);
        assert!(docker.selected("scale") && !docker.selected("daemon"));
        assert!(docker.part_selected("docker", "events"));
        assert!(!docker.part_named("docker", "trace"));

        let traced = only(&["docker:trace"]);
        assert!(traced.selected("docker") && traced.part_named("docker", "trace"));
        assert!(!traced.part_selected("docker", "events"));

        let daemon = only(&["daemon:latency", "daemon:hooks"]);
        assert!(daemon.part_selected("daemon", "hooks") && !daemon.part_selected("daemon", "idle"));
        assert!(!daemon.part_named("daemonx", "hooks"));
    }
}
