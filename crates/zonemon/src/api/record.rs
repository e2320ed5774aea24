//! A journaled record (one JSON object from the daemon) turned back into the
//! [`ZoneEvent`] the text and list renderers take, so output through the
//! daemon is written by the same code as standalone output.

use serde_json::{Map, Value};
use zonemon_core::naming::K8sNames;
use zonemon_core::{EventKind, ExitStatus, NameSource, ZoneEvent};

/// The transition `obj` records, or `None` for records about no zone
/// (`lost`, `monitor-start`, `behind`) and malformed ones.
///
/// `ts_ns` is the record's time in nanoseconds since the Unix epoch: render
/// it with a `WallClock` whose offset is 0. A runtime's `name_source` comes
/// back as `Runtime("runtime")` (neither text nor list output shows it).
pub fn zone_event(obj: &Map<String, Value>) -> Option<ZoneEvent> {
    let kind = match obj.get("event")?.as_str()? {
        "ready" => EventKind::Ready,
        "booted" => EventKind::Booted,
        "shutdown" => EventKind::Shutdown,
        "down" => EventKind::Down,
        "running" => EventKind::Running,
        _ => return None,
    };
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let num = |k: &str| obj.get(k).and_then(Value::as_u64);
    let small = |k: &str| num(k).and_then(|n| u32::try_from(n).ok());
    let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
    let exit = match (num("exit_code"), num("exit_signal")) {
        (Some(code), _) => Some(ExitStatus::Code(code.min(255) as u8)),
        (None, Some(signal)) => Some(ExitStatus::Signal {
            signal: signal.min(127) as u8,
            core_dumped: flag("core_dumped"),
        }),
        (None, None) => None,
    };
    let k8s = match (
        text("k8s_namespace"),
        text("k8s_pod"),
        text("k8s_container"),
    ) {
        (Some(namespace), Some(pod), Some(container)) => Some(K8sNames {
            namespace,
            pod,
            container,
        }),
        _ => None,
    };
    let mut meta = zonemon_core::ZoneMeta::default()
        .with_image(obj.get("image").and_then(Value::as_str))
        .with_labels(obj.get("labels").and_then(Value::as_object));
    meta.pod_uid = text("k8s_pod_uid");
    meta.sandbox = flag("sandbox");
    Some(ZoneEvent {
        meta: (!meta.is_empty()).then(|| Box::new(meta)),
        restart_count: small("restart_count"),
        kind,
        ts_ns: record_time(obj).map_or(0, |t| t.clamp(0, u64::MAX as i128) as u64),
        zone_id: num("zone_id")?,
        name: text("name")?,
        name_source: match obj.get("name_source").and_then(Value::as_str) {
            Some("hostname") => NameSource::Hostname,
            Some("pidns") => NameSource::PidNs,
            Some("host-pid") => NameSource::HostPid,
            _ => NameSource::Runtime("runtime"),
        },
        runtime: text("runtime"),
        container_id: text("container_id"),
        k8s,
        pidns: small("pidns").unwrap_or(0),
        pidns_id: num("pidns_id").unwrap_or(0),
        init_pid: small("init_pid").unwrap_or(0),
        level: small("level").unwrap_or(0),
        parent_zone_id: num("parent_zone_id"),
        hostname: text("hostname"),
        cgroup: text("cgroup"),
        exit,
        oom: obj
            .get("oom_killed")
            .and_then(Value::as_bool)
            .map(|killed| zonemon_core::Oom {
                killed,
                kills: small("oom_kills").unwrap_or(0),
            }),
        uptime_ns: num("uptime_ns"),
        shutdown_ns: num("shutdown_ns"),
        initial: flag("initial"),
        resynced: flag("resynced"),
        reboot_of: num("reboot_of"),
        reboot_gap_ns: num("reboot_gap_ns"),
    })
}

/// The record's `time`, in nanoseconds since the Unix epoch.
pub fn record_time(obj: &Map<String, Value>) -> Option<i128> {
    let t = humantime::parse_rfc3339(obj.get("time")?.as_str()?).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i128)
}

/// What `zonemon wait --for shutdown` exits with for the shutdown record
/// `obj`: the exit code, 128 + the signal number when killed (as a shell
/// reports it), or `None` when the exit status is unknown.
pub fn exit_status(obj: &Map<String, Value>) -> Option<u8> {
    match zone_event(obj)?.exit? {
        ExitStatus::Code(c) => Some(c),
        ExitStatus::Signal { signal, .. } => Some(128u8.saturating_add(signal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use zonemon_core::output::{JsonSink, Sink, WallClock};

    fn event(kind: EventKind) -> ZoneEvent {
        ZoneEvent {
            ts_ns: 1_764_648_000_123_456_789,
            runtime: Some("kubernetes".into()),
            container_id: Some("abc".into()),
            k8s: Some(K8sNames {
                namespace: "default".into(),
                pod: "web-0".into(),
                container: "nginx".into(),
            }),
            level: 2,
            parent_zone_id: Some(3),
            hostname: None,
            cgroup: Some("/kubepods/x".into()),
            pidns_id: 5609219,
            resynced: true,
            ..ZoneEvent::example(kind, "default/web-0/nginx")
        }
    }

    /// The object `zonemon watch --json` writes for `ev` (with a zero clock offset).
    fn as_json(ev: &ZoneEvent) -> Map<String, Value> {
        let mut out = Vec::new();
        JsonSink::new(&mut out, WallClock::new(0))
            .write_event(ev)
            .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn round_trips_what_watch_json_writes() {
        let mut shutdown = event(EventKind::Shutdown);
        shutdown.exit = Some(ExitStatus::Signal {
            signal: 9,
            core_dumped: true,
        });
        shutdown.uptime_ns = Some(42);
        shutdown.oom = Some(zonemon_core::Oom {
            killed: true,
            kills: 2,
        });
        let mut booted = event(EventKind::Booted);
        booted.restart_count = Some(4);
        let mut meta = zonemon_core::ZoneMeta::default()
            .with_image(Some("nginx:1.27"))
            .with_labels(json!({"app": "web", "tier": "\u{1b}[31m"}).as_object());
        meta.pod_uid = Some("01b4b887".into());
        meta.sandbox = true;
        booted.meta = Some(Box::new(meta));
        booted.reboot_of = Some(2);
        booted.reboot_gap_ns = Some(5);
        let mut down = event(EventKind::Down);
        down.shutdown_ns = Some(9);
        for ev in [shutdown, booted, down, event(EventKind::Ready)] {
            assert_eq!(zone_event(&as_json(&ev)).as_ref(), Some(&ev));
        }
    }

    #[test]
    fn exit_statuses_as_a_shell_reports_them() {
        let rec = |v: Value| v.as_object().unwrap().clone();
        let base =
            json!({"event": "shutdown", "name": "a", "zone_id": 1, "time": "2025-12-02T04:00:00Z"});
        let mut code = base.clone();
        code["exit_code"] = json!(3);
        assert_eq!(exit_status(&rec(code)), Some(3));
        let mut killed = base.clone();
        killed["exit_signal"] = json!(9);
        assert_eq!(exit_status(&rec(killed)), Some(137));
        let mut unknown = base.clone();
        unknown["exit_code"] = Value::Null;
        assert_eq!(exit_status(&rec(unknown)), None);
    }

    #[test]
    fn notices_are_no_zone_events() {
        for v in [
            json!({"event": "lost", "count": 3, "time": "2025-12-02T04:00:00Z"}),
            json!({"event": "monitor-start", "time": "2025-12-02T04:00:00Z"}),
            json!({"event": "booted", "zone_id": 1}),
            json!({"event": "booted", "name": "x"}),
        ] {
            assert_eq!(zone_event(v.as_object().unwrap()), None, "{v}");
        }
    }
}
