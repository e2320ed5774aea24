//! JSON Lines: one flat object per transition (schema in README.md).

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::{Sink, WallClock};
use crate::event::{EventKind, ZoneEvent};
use crate::exit::ExitStatus;
use crate::meta::ZoneMeta;

/// Writes every transition as one JSON object per line.
pub struct JsonSink<W: Write> {
    out: W,
    clock: WallClock,
}

impl<W: Write> JsonSink<W> {
    /// A sink writing to `out`, dating events with `clock`.
    pub fn new(out: W, clock: WallClock) -> Self {
        JsonSink { out, clock }
    }
}

/// Room made in a transition's object: as much as growing it to its usual ~25 fields and the journal's `seq` ends with.
const OBJECT_FIELDS: usize = 32;

/// The JSON object of one transition.
pub fn to_json(ev: &ZoneEvent, clock: &WallClock) -> Map<String, Value> {
    // Room for the fields of nearly every record, and the journal's `seq`: no regrowing.
    let mut m = Map::with_capacity(OBJECT_FIELDS);
    m.insert("time".into(), clock.rfc3339(ev.ts_ns).into());
    m.insert("event".into(), ev.kind.as_str().into());
    m.insert("name".into(), ev.name.clone().into());
    m.insert("name_source".into(), ev.name_source.as_str().into());
    m.insert("zone_id".into(), ev.zone_id.into());
    m.insert("pidns".into(), ev.pidns.into());
    if ev.pidns_id != 0 {
        m.insert("pidns_id".into(), ev.pidns_id.into());
    }
    m.insert("init_pid".into(), ev.init_pid.into());
    m.insert("level".into(), ev.level.into());
    if ev.level == 0 {
        m.insert("host_pid".into(), true.into());
    }
    m.insert("parent_zone_id".into(), json!(ev.parent_zone_id));
    m.insert("hostname".into(), json!(ev.hostname));
    m.insert("cgroup".into(), json!(ev.cgroup));
    m.insert("runtime".into(), json!(ev.runtime));
    m.insert("container_id".into(), json!(ev.container_id));
    let k8s = ev.k8s.as_ref();
    m.insert("k8s_namespace".into(), json!(k8s.map(|k| &k.namespace)));
    m.insert("k8s_pod".into(), json!(k8s.map(|k| &k.pod)));
    m.insert("k8s_container".into(), json!(k8s.map(|k| &k.container)));
    let meta = ev.meta.as_deref();
    m.insert(
        "k8s_pod_uid".into(),
        json!(meta.and_then(|m| m.pod_uid.as_ref())),
    );
    m.insert("image".into(), json!(meta.and_then(|m| m.image.as_ref())));
    m.insert(
        "labels".into(),
        meta.map_or(Value::Null, ZoneMeta::labels_json),
    );
    if meta.is_some_and(|m| m.sandbox) {
        m.insert("sandbox".into(), true.into());
    }
    if let Some(n) = ev.restart_count {
        m.insert("restart_count".into(), n.into());
    }
    if ev.kind == EventKind::Shutdown {
        match ev.exit {
            Some(ExitStatus::Code(c)) => {
                m.insert("exit_code".into(), c.into());
            }
            Some(ExitStatus::Signal {
                signal,
                core_dumped,
            }) => {
                m.insert("exit_signal".into(), signal.into());
                m.insert("core_dumped".into(), core_dumped.into());
            }
            None => {
                m.insert("exit_code".into(), Value::Null);
            }
        }
        m.insert("uptime_ns".into(), json!(ev.uptime_ns));
        m.insert("oom_killed".into(), json!(ev.oom.map(|o| o.killed)));
        m.insert("oom_kills".into(), json!(ev.oom.map(|o| o.kills)));
    }
    if ev.kind == EventKind::Down {
        m.insert("shutdown_ns".into(), json!(ev.shutdown_ns));
    }
    if let Some(prev) = ev.reboot_of {
        m.insert("reboot_of".into(), prev.into());
        m.insert("reboot_gap_ns".into(), json!(ev.reboot_gap_ns));
    }
    if ev.initial {
        m.insert("initial".into(), true.into());
    }
    if ev.resynced {
        m.insert("resynced".into(), true.into());
    }
    m
}

/// The JSON object saying `count` records were lost (null: an unknown number), detected at `ts_ns`.
pub fn lost_json(count: Option<u64>, ts_ns: u64, clock: &WallClock) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("time".into(), clock.rfc3339(ts_ns).into());
    m.insert("event".into(), "lost".into());
    m.insert("count".into(), json!(count));
    m
}

impl<W: Write> JsonSink<W> {
    fn write_line(&mut self, object: &Map<String, Value>) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, object)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        self.write_line(&to_json(ev, &self.clock))
    }

    fn write_lost(&mut self, count: Option<u64>, ts_ns: u64) -> io::Result<()> {
        self.write_line(&lost_json(count, ts_ns, &self.clock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    #[test]
    fn a_clock_set_after_the_sink_was_made_dates_its_next_lines() {
        let clock = WallClock::new(0);
        let mut s = JsonSink::new(Vec::new(), clock.clone());
        let ev = sample(EventKind::Booted, "aap");
        s.write_event(&ev).unwrap();
        // The wall clock was stepped forward by one day: the watch sets the shared offset anew.
        clock.set(86_400_000_000_000);
        s.write_event(&ev).unwrap();
        let text = String::from_utf8(s.out).unwrap();
        let times: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["time"].clone())
            .collect();
        assert_eq!(
            times,
            [
                "1970-01-01T00:00:00.000001000Z",
                "1970-01-02T00:00:00.000001000Z"
            ]
        );
    }

    #[test]
    fn shutdown_object() {
        let mut ev = sample(EventKind::Shutdown, "a\"\n");
        ev.exit = Some(ExitStatus::Signal {
            signal: 9,
            core_dumped: false,
        });
        ev.uptime_ns = Some(42);
        ev.parent_zone_id = Some(1);
        let mut s = JsonSink::new(Vec::new(), WallClock::new(0));
        s.write_event(&ev).unwrap();
        let text = String::from_utf8(s.out).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000001000Z");
        assert_eq!(v["event"], "shutdown");
        assert_eq!(v["name"], "a\"\n");
        assert_eq!(v["exit_signal"], 9);
        assert!(v.get("exit_code").is_none());
        assert_eq!(v["uptime_ns"], 42);
        assert_eq!(v["parent_zone_id"], 1);
        assert_eq!(v["zone_id"], 7);
        assert_eq!(v["pidns"], 4026532000u32);
    }

    #[test]
    fn booted_and_down_objects() {
        let clock = WallClock::new(0);
        let v = to_json(&sample(EventKind::Booted, "aap"), &clock);
        assert_eq!(v["parent_zone_id"], Value::Null);
        assert!(v.get("exit_code").is_none() && v.get("uptime_ns").is_none());
        for key in [
            "time",
            "event",
            "name",
            "name_source",
            "zone_id",
            "pidns",
            "init_pid",
            "level",
            "hostname",
            "cgroup",
        ] {
            assert!(v.contains_key(key), "{key}");
        }
        assert!(
            v.get("reboot_of").is_none()
                && v.get("initial").is_none()
                && v.get("resynced").is_none()
                && v.get("host_pid").is_none()
                && v.get("pidns_id").is_none()
        );
        let mut host_pid = sample(EventKind::Booted, "aap");
        host_pid.level = 0;
        assert_eq!(to_json(&host_pid, &clock)["host_pid"], true);
        let mut with_id = sample(EventKind::Booted, "aap");
        with_id.pidns_id = 5609219;
        assert_eq!(to_json(&with_id, &clock)["pidns_id"], 5609219);
        let mut reboot = sample(EventKind::Booted, "aap");
        reboot.reboot_of = Some(3);
        reboot.reboot_gap_ns = Some(1_500_000);
        reboot.resynced = true;
        let v = to_json(&reboot, &clock);
        assert_eq!(
            (
                v["reboot_of"].clone(),
                v["reboot_gap_ns"].clone(),
                v["resynced"].clone()
            ),
            (json!(3), json!(1_500_000), json!(true))
        );
        let mut running = sample(EventKind::Running, "aap");
        running.initial = true;
        let v = to_json(&running, &clock);
        assert_eq!(
            (v["event"].clone(), v["initial"].clone()),
            (json!("running"), json!(true))
        );
        let mut s = JsonSink::new(Vec::new(), clock.clone());
        s.write_lost(Some(42), 1_000).unwrap();
        let v: Value = serde_json::from_slice(&s.out).unwrap();
        assert_eq!(
            v,
            json!({"time": "1970-01-01T00:00:00.000001000Z", "event": "lost", "count": 42})
        );
        let mut pod = sample(EventKind::Booted, "default/web-0/nginx");
        pod.k8s = Some(crate::naming::K8sNames {
            namespace: "default".into(),
            pod: "web-0".into(),
            container: "nginx".into(),
        });
        let v = to_json(&pod, &clock);
        assert_eq!(
            (
                v["k8s_namespace"].clone(),
                v["k8s_pod"].clone(),
                v["k8s_container"].clone()
            ),
            (json!("default"), json!("web-0"), json!("nginx"))
        );
        assert_eq!(
            to_json(&sample(EventKind::Booted, "aap"), &clock)["k8s_pod"],
            Value::Null
        );
        let mut down = sample(EventKind::Down, "aap");
        down.shutdown_ns = Some(5);
        assert_eq!(to_json(&down, &clock)["shutdown_ns"], 5);
    }
}
