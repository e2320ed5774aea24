//! Where the metrics are fed: a [`Sink`] wrapper that counts what is written,
//! and a [`NameResolver`] wrapper that times each lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use zonemon_core::clock::boot_time_ns;
use zonemon_core::output::Sink;
use zonemon_core::{EventKind, Lookup, NameResolver, ZoneEvent, ZoneFacts};

use super::{runtime_label, Metrics};

/// The zones counted in `zonemon_zones_running`, shared by the sink that
/// counts transitions and whoever seeds the zones found at start-up.
#[derive(Clone)]
pub struct RunningZones {
    metrics: Metrics,
    /// Each counted zone, with the runtime label it was counted under.
    zones: Rc<RefCell<HashMap<u64, &'static str>>>,
}

impl RunningZones {
    /// An empty set feeding `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        RunningZones {
            metrics,
            zones: Rc::default(),
        }
    }

    /// Counts the zones of `zones` that are ready or running (found at
    /// start-up, not reported); counting a zone twice counts it once.
    pub fn seed(&self, zones: &[ZoneEvent]) {
        for ev in zones {
            if matches!(ev.kind, EventKind::Ready | EventKind::Running) {
                self.count(ev);
            }
        }
    }

    fn count(&self, ev: &ZoneEvent) {
        let runtime = runtime_label(ev.runtime.as_deref());
        match self.zones.borrow().get(&ev.zone_id) {
            Some(&before) if before == runtime => return,
            _ => {}
        }
        // Named later than it was counted (ready, then named at booted): move it.
        self.uncount(ev.zone_id);
        self.zones.borrow_mut().insert(ev.zone_id, runtime);
        self.metrics
            .zones_running
            .with_label_values(&[runtime])
            .inc();
    }

    fn uncount(&self, zone_id: u64) {
        let removed = self.zones.borrow_mut().remove(&zone_id);
        if let Some(runtime) = removed {
            self.metrics
                .zones_running
                .with_label_values(&[runtime])
                .dec();
        }
    }
}

/// Counts every record written through it, then hands it to the sink it wraps.
pub struct MeteredSink<S> {
    inner: S,
    metrics: Metrics,
    running: RunningZones,
}

impl<S: Sink> MeteredSink<S> {
    /// Wraps `inner`, feeding `running`'s metrics.
    pub fn new(inner: S, running: RunningZones) -> Self {
        MeteredSink {
            inner,
            metrics: running.metrics.clone(),
            running,
        }
    }
}

impl<S: Sink> Sink for MeteredSink<S> {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        self.inner.write_event(ev)?;
        if !ev.resynced && !ev.initial {
            let latency_ns = boot_time_ns().saturating_sub(ev.ts_ns);
            self.metrics
                .detection_latency_seconds
                .observe(latency_ns as f64 / 1e9);
        }
        self.metrics
            .transitions
            .with_label_values(&[ev.kind.as_str(), runtime_label(ev.runtime.as_deref())])
            .inc();
        match ev.kind {
            EventKind::Ready | EventKind::Booted | EventKind::Running => self.running.count(ev),
            EventKind::Shutdown | EventKind::Down => self.running.uncount(ev.zone_id),
        }
        Ok(())
    }

    fn write_lost(&mut self, count: Option<u64>, ts_ns: u64) -> io::Result<()> {
        self.inner.write_lost(count, ts_ns)?;
        self.metrics.lost_records.inc_by(count.unwrap_or(1));
        self.metrics.resyncs.inc();
        Ok(())
    }
}

/// Times every lookup of the resolver it wraps into `zonemon_naming_seconds`.
pub struct MeteredResolver<R> {
    inner: R,
    metrics: Metrics,
}

impl<R> MeteredResolver<R> {
    /// Wraps `inner`, feeding `metrics`.
    pub fn new(inner: R, metrics: Metrics) -> Self {
        MeteredResolver { inner, metrics }
    }
}

impl<R: NameResolver> NameResolver for MeteredResolver<R> {
    fn lookup(&mut self, facts: &ZoneFacts<'_>) -> Lookup {
        let start = Instant::now();
        let answer = self.inner.lookup(facts);
        self.metrics
            .naming_seconds
            .observe(start.elapsed().as_secs_f64());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, zone_id: u64, runtime: Option<&str>) -> ZoneEvent {
        let mut ev = ZoneEvent::example(kind, &format!("z{zone_id}"));
        ev.zone_id = zone_id;
        ev.runtime = runtime.map(str::to_string);
        ev
    }

    /// A sink that keeps nothing.
    struct Null;
    impl Sink for Null {
        fn write_event(&mut self, _: &ZoneEvent) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn running_zones_follow_their_lives_and_names() {
        let (m, _) = Metrics::new();
        let running = RunningZones::new(m.clone());
        let mut sink = MeteredSink::new(Null, running.clone());
        let gauge = |rt: &str| m.zones_running.with_label_values(&[rt]).get();
        // Found at start-up: counted once even when seeded twice.
        running.seed(&[event(EventKind::Running, 1, Some("lxc"))]);
        running.seed(&[
            event(EventKind::Running, 1, Some("lxc")),
            event(EventKind::Shutdown, 9, None),
        ]);
        assert_eq!((gauge("lxc"), gauge("none")), (1, 0));
        // Ready unnamed, then named at booted: moves from none to docker.
        sink.write_event(&event(EventKind::Ready, 2, None)).unwrap();
        assert_eq!(gauge("none"), 1);
        sink.write_event(&event(EventKind::Booted, 2, Some("docker")))
            .unwrap();
        assert_eq!((gauge("none"), gauge("docker")), (0, 1));
        for kind in [EventKind::Shutdown, EventKind::Down] {
            sink.write_event(&event(kind, 2, Some("docker"))).unwrap();
            sink.write_event(&event(kind, 1, Some("lxc"))).unwrap();
        }
        assert_eq!((gauge("docker"), gauge("lxc")), (0, 0));
        let count = |ev: &str, rt: &str| m.transitions.with_label_values(&[ev, rt]).get();
        assert_eq!(
            (
                count("ready", "none"),
                count("booted", "docker"),
                count("down", "lxc")
            ),
            (1, 1, 1)
        );
        sink.write_lost(Some(5), 1).unwrap();
        sink.write_lost(None, 2).unwrap();
        assert_eq!((m.lost_records.get(), m.resyncs.get()), (6, 2));
        assert_eq!(m.detection_latency_seconds.get_sample_count(), 6);
    }
}
