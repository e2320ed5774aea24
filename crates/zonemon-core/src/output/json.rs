//! JSON Lines: one flat object per transition (schema in README.md).

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::{Sink, WallClock};
use crate::event::{EventKind, ZoneEvent};
use crate::exit::ExitStatus;

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

/// The JSON object of one transition.
pub fn to_json(ev: &ZoneEvent, clock: &WallClock) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("time".into(), clock.rfc3339(ev.ts_ns).into());
    m.insert("event".into(), ev.kind.as_str().into());
    m.insert("name".into(), ev.name.clone().into());
    m.insert("name_source".into(), ev.name_source.as_str().into());
    m.insert("zone_id".into(), ev.zone_id.into());
    m.insert("pidns".into(), ev.pidns.into());
    m.insert("init_pid".into(), ev.init_pid.into());
    m.insert("level".into(), ev.level.into());
    m.insert("parent_zone_id".into(), json!(ev.parent_zone_id));
    m.insert("hostname".into(), json!(ev.hostname));
    m.insert("cgroup".into(), json!(ev.cgroup));
    m.insert("runtime".into(), json!(ev.runtime));
    m.insert("container_id".into(), json!(ev.container_id));
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
    }
    if ev.kind == EventKind::Down {
        m.insert("shutdown_ns".into(), json!(ev.shutdown_ns));
    }
    m
}

impl<W: Write> Sink for JsonSink<W> {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &to_json(ev, &self.clock))?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    #[test]
    fn shutdown_object() {
        let mut ev = sample(EventKind::Shutdown, "a\"\n");
        ev.exit = Some(ExitStatus::Signal {
            signal: 9,
            core_dumped: false,
        });
        ev.uptime_ns = Some(42);
        ev.parent_zone_id = Some(1);
        let mut s = JsonSink::new(Vec::new(), WallClock { boot_to_unix_ns: 0 });
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
        let clock = WallClock { boot_to_unix_ns: 0 };
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
        let mut down = sample(EventKind::Down, "aap");
        down.shutdown_ns = Some(5);
        assert_eq!(to_json(&down, &clock)["shutdown_ns"], 5);
    }
}
