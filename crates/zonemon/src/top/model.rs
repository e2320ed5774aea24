//! What `zonemon top` knows, built only from records (the JSON objects of
//! `watch --json`, as any feed delivers them): the zones running now, the
//! last end of each name, a bounded log of events, the transition rate, and
//! the losses and resyncs seen.
//!
//! Invariants: a zone is in the table from its first record until its `down`
//! (or a `shutdown` seen again as resynced); every string shown comes out of
//! here escaped and bounded (names are hostile); memory is bounded whatever
//! the feed sends (zones, names remembered, log lines).

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};
use zonemon_core::escape::{bound, escape_text, MAX_NAME_LEN};
use zonemon_core::filter::Filter;
use zonemon_core::timefmt::parse_rfc3339;

use super::rate::Rate;

/// Events kept for the log.
pub const LOG_LINES: usize = 2000;
/// Zones kept at most (a feed that never says `down` cannot grow the table without bound).
pub const MAX_ZONES: usize = 100_000;
/// Names whose last end is remembered.
const MAX_NAMES: usize = 4096;

/// A zone's state, as its newest record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Its init exists, not yet exec'd.
    Ready,
    /// Booted (or found running).
    Running,
    /// Its init exited; waiting for its `down`.
    Shutdown,
}

impl State {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Running => "running",
            State::Shutdown => "shutdown",
        }
    }
}

/// How a zone ended: its exit and the OOM killer's part in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// `"0"`, `"3"`, `"SIG9"`, or `"?"` when the exit was not seen.
    pub exit: String,
    /// Whether it failed: a non-zero code or a signal.
    pub failed: bool,
    /// The OOM killer took its init, or other processes of it.
    pub oom: bool,
}

impl Ending {
    /// The end a `shutdown` record tells.
    fn of(rec: &Map<String, Value>) -> Ending {
        let code = rec.get("exit_code").and_then(Value::as_i64);
        let signal = rec.get("exit_signal").and_then(Value::as_i64);
        let oom = rec.get("oom_killed").and_then(Value::as_bool) == Some(true)
            || rec.get("oom_kills").and_then(Value::as_u64).unwrap_or(0) > 0;
        let (exit, failed) = match (signal, code) {
            (Some(s), _) => (format!("SIG{s}"), true),
            (None, Some(c)) => (c.to_string(), c != 0),
            (None, None) => ("?".to_string(), false),
        };
        Ending { exit, failed, oom }
    }
}

/// One zone of the table; every text field is escaped.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The zone's newest record, for the filter.
    pub record: Map<String, Value>,
    /// The host it runs on (fleet records), escaped.
    pub host: Option<String>,
    /// Its zone id on that host.
    pub zone_id: u64,
    /// Its name, escaped and bounded.
    pub name: String,
    /// Its runtime, escaped, or `-`.
    pub runtime: String,
    /// Where it is in its life.
    pub state: State,
    /// When it started (Unix ns): its first record's time.
    pub since_ns: i128,
    /// How long it lived, once shut down.
    pub uptime_ns: Option<u64>,
    /// How many zones of its name booted before it (the monitor's count).
    pub restarts: u64,
    /// Its own end, or its name's previous one.
    pub last: Option<Ending>,
}

impl Zone {
    /// Its uptime at `now_ns` (frozen once shut down).
    pub fn uptime_ns(&self, now_ns: i128) -> u64 {
        self.uptime_ns
            .unwrap_or_else(|| u64::try_from(now_ns - self.since_ns).unwrap_or(0))
    }
}

/// What an event of the log is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `booted` or `running`.
    Up,
    /// `ready` or `down`.
    Quiet,
    /// A clean `shutdown` (exit 0, or unknown).
    Ended,
    /// A `shutdown` with a non-zero exit, a signal or an OOM kill.
    Failed,
    /// Records were lost.
    Lost,
    /// Anything else the feed says (a monitor start, a resume, a warning).
    Notice,
}

/// One line of the event log.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// The record, for the filter (`None` for the feed's own messages, always shown).
    pub record: Option<Map<String, Value>>,
    /// Its colour.
    pub kind: Kind,
    /// The time shown (`HH:MM:SS` UTC), or empty.
    pub time: String,
    /// The text: escaped.
    pub text: String,
}

/// The key of a zone: its host (empty when standalone or local) and zone id.
type Key = (String, u64);

/// What `zonemon top` shows, built from records.
#[derive(Default)]
pub struct Model {
    zones: HashMap<Key, Zone>,
    /// The last end of each (host, name), oldest first for eviction.
    ends: HashMap<(String, String), Ending>,
    end_order: VecDeque<(String, String)>,
    log: VecDeque<LogLine>,
    /// Transitions per second.
    pub rate: Rate,
    /// Records lost, as `lost` notices counted them.
    pub lost: u64,
    /// `lost` notices (some cannot count).
    pub lost_notices: u64,
    /// Transitions inferred by a resync.
    pub resynced: u64,
    /// Whether any record came with a host (fleet mode: a host column).
    pub fleet: bool,
}

impl Model {
    /// Takes one record arriving at second `now_s` of the rate counter.
    pub fn take(&mut self, rec: Map<String, Value>, now_s: u64) {
        let event = rec
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let event = event.as_str();
        let host = rec.get("host").and_then(Value::as_str).map(escape_text);
        self.fleet |= host.is_some();
        let initial = rec.get("initial").and_then(Value::as_bool) == Some(true);
        if rec.get("resynced").and_then(Value::as_bool) == Some(true) {
            self.resynced += 1;
        }
        if matches!(event, "ready" | "booted" | "shutdown" | "down") && !initial {
            self.rate.count(now_s);
        }
        let Some(zone_id) = rec.get("zone_id").and_then(Value::as_u64) else {
            return self.notice(event, rec);
        };
        let key = (host.clone().unwrap_or_default(), zone_id);
        let name = bound(
            &escape_text(rec.get("name").and_then(Value::as_str).unwrap_or("")),
            MAX_NAME_LEN,
        );
        let time_ns = rec
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .unwrap_or(0);
        let kind = match event {
            "booted" | "running" => Kind::Up,
            "shutdown" => {
                let end = Ending::of(&rec);
                let kind = match end.failed || end.oom {
                    true => Kind::Failed,
                    false => Kind::Ended,
                };
                self.remember_end(key.0.clone(), name.clone(), end);
                kind
            }
            _ => Kind::Quiet,
        };
        let text = log_text(host.as_deref(), event, &name, &rec);
        self.push_log(LogLine {
            record: Some(rec.clone()),
            kind,
            time: clock_text(time_ns),
            text,
        });
        match event {
            "down" => {
                self.zones.remove(&key);
            }
            "ready" | "booted" | "running" | "shutdown" => {
                self.update_zone(key, name, event, time_ns, rec)
            }
            _ => {}
        }
    }

    /// A message of the feed's own (a warning on its stderr, a state change), shown in the log.
    pub fn say(&mut self, kind: Kind, text: &str) {
        self.push_log(LogLine {
            record: None,
            kind,
            time: String::new(),
            text: escape_text(text),
        });
    }

    /// Makes or updates the zone `key` (host, zone id) from its record `rec`.
    fn update_zone(
        &mut self,
        key: Key,
        name: String,
        event: &str,
        time_ns: i128,
        rec: Map<String, Value>,
    ) {
        let state = match event {
            "ready" => State::Ready,
            "shutdown" => State::Shutdown,
            _ => State::Running,
        };
        let last = self.ends.get(&(key.0.clone(), name.clone())).cloned();
        let restarts = rec.get("restart_count").and_then(Value::as_u64);
        let uptime_ns = rec.get("uptime_ns").and_then(Value::as_u64);
        let runtime = rec
            .get("runtime")
            .and_then(Value::as_str)
            .map_or_else(|| "-".to_string(), escape_text);
        if !self.zones.contains_key(&key) && self.zones.len() >= MAX_ZONES {
            return;
        }
        let host = rec
            .get("host")
            .and_then(Value::as_str)
            .map(|_| key.0.clone());
        let zone_id = key.1;
        let zone = self.zones.entry(key).or_insert_with(|| Zone {
            record: Map::new(),
            host,
            zone_id,
            name: String::new(),
            runtime: String::new(),
            state,
            since_ns: time_ns,
            uptime_ns: None,
            restarts: 0,
            last: None,
        });
        zone.record = rec;
        zone.name = name;
        zone.runtime = runtime;
        zone.state = state;
        zone.restarts = restarts.unwrap_or(zone.restarts);
        zone.last = last;
        if state == State::Shutdown {
            zone.uptime_ns = uptime_ns.or(Some(zone.uptime_ns(time_ns)));
        }
    }

    fn remember_end(&mut self, host: String, name: String, end: Ending) {
        let key = (host, name);
        if self.ends.insert(key.clone(), end).is_none() {
            self.end_order.push_back(key);
            if self.end_order.len() > MAX_NAMES {
                if let Some(old) = self.end_order.pop_front() {
                    self.ends.remove(&old);
                }
            }
        }
    }

    fn notice(&mut self, event: &str, rec: Map<String, Value>) {
        let time_ns = rec
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .unwrap_or(0);
        let host = rec.get("host").and_then(Value::as_str).map(escape_text);
        let from = host.map(|h| format!("{h}: ")).unwrap_or_default();
        let (kind, text) = match event {
            "lost" => {
                self.lost_notices += 1;
                let count = rec.get("count").and_then(Value::as_u64);
                self.lost += count.unwrap_or(0);
                let n = count.map_or("some".to_string(), |n| n.to_string());
                let why = rec
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(|r| format!(" ({})", escape_text(r)))
                    .unwrap_or_default();
                (
                    Kind::Lost,
                    format!("{from}LOST {n} record(s){why}: resynchronising"),
                )
            }
            "monitor-start" => (Kind::Notice, format!("{from}monitor started")),
            other => (Kind::Notice, format!("{from}{}", escape_text(other))),
        };
        self.push_log(LogLine {
            record: Some(rec),
            kind,
            time: clock_text(time_ns),
            text,
        });
    }

    fn push_log(&mut self, line: LogLine) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// How long until the uptime shown of some running zone `filter` passes
    /// changes (its last digit: a second while under a minute, then a minute,
    /// then an hour past a day); `None` while no such zone runs.
    pub fn next_uptime_change(&self, filter: &Filter, now_ns: i128) -> Option<std::time::Duration> {
        const S: u64 = 1_000_000_000;
        self.zones
            .values()
            .filter(|z| z.uptime_ns.is_none() && filter.matches(&z.record))
            .map(|z| {
                let up = z.uptime_ns(now_ns);
                let step = match up / S {
                    0..60 => S,
                    60..86_400 => 60 * S,
                    _ => 3600 * S,
                };
                std::time::Duration::from_nanos(step - up % step)
            })
            .min()
    }

    /// How many zones are known.
    pub fn zone_count(&self) -> usize {
        self.zones.len()
    }

    /// The zones `filter` passes, sorted by `sort` (reversed when `reverse`) at `now_ns`.
    pub fn rows(&self, filter: &Filter, sort: Sort, reverse: bool, now_ns: i128) -> Vec<&Zone> {
        let mut rows: Vec<&Zone> = self
            .zones
            .values()
            .filter(|z| filter.matches(&z.record))
            .collect();
        rows.sort_by(|a, b| {
            let by = match sort {
                Sort::Name => a.name.cmp(&b.name),
                Sort::Host => a.host.cmp(&b.host),
                Sort::Runtime => a.runtime.cmp(&b.runtime),
                Sort::State => a.state.cmp(&b.state),
                // Newest first, as `top` shows the busiest first.
                Sort::Uptime => a.uptime_ns(now_ns).cmp(&b.uptime_ns(now_ns)),
                Sort::Restarts => b.restarts.cmp(&a.restarts),
            };
            by.then_with(|| (&a.host, &a.name, a.zone_id).cmp(&(&b.host, &b.name, b.zone_id)))
        });
        if reverse {
            rows.reverse();
        }
        rows
    }

    /// The log lines `filter` passes (the feed's own messages always), oldest first.
    pub fn log(&self, filter: &Filter) -> Vec<&LogLine> {
        self.log
            .iter()
            .filter(|l| l.record.as_ref().is_none_or(|r| filter.matches(r)))
            .collect()
    }
}

/// The columns the table can be sorted by, in the order `s` steps through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// By name (the default).
    #[default]
    Name,
    /// By host (fleet).
    Host,
    /// By runtime.
    Runtime,
    /// By state.
    State,
    /// Youngest first.
    Uptime,
    /// Most restarted first.
    Restarts,
}

impl Sort {
    /// The next column.
    pub fn next(self) -> Sort {
        match self {
            Sort::Name => Sort::Host,
            Sort::Host => Sort::Runtime,
            Sort::Runtime => Sort::State,
            Sort::State => Sort::Uptime,
            Sort::Uptime => Sort::Restarts,
            Sort::Restarts => Sort::Name,
        }
    }
}

/// The log line of a zone's record: `[host ]event name[ detail]`.
fn log_text(host: Option<&str>, event: &str, name: &str, rec: &Map<String, Value>) -> String {
    let mut text = match host {
        Some(h) => format!("{h}  {event:<8} {name}"),
        None => format!("{event:<8} {name}"),
    };
    if event == "shutdown" {
        let end = Ending::of(rec);
        text.push_str(&format!("  exit {}", end.exit));
        if rec.get("oom_killed").and_then(Value::as_bool) == Some(true) {
            text.push_str("  OOM-KILLED");
        } else if let Some(n) = rec
            .get("oom_kills")
            .and_then(Value::as_u64)
            .filter(|&n| n > 0)
        {
            text.push_str(&format!("  OOM kills: {n}"));
        }
    }
    if let Some(n) = rec
        .get("restart_count")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0)
    {
        text.push_str(&format!("  restart #{n}"));
    }
    if rec.get("resynced").and_then(Value::as_bool) == Some(true) {
        text.push_str("  (resynced)");
    }
    text
}

/// `HH:MM:SS` (UTC) of a Unix time in ns; empty for none.
fn clock_text(unix_ns: i128) -> String {
    if unix_ns <= 0 {
        return String::new();
    }
    let secs = (unix_ns / 1_000_000_000) as i64;
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// A duration as `top` shows it: `42s`, `5m02s`, `3h07m`, `2d04h`.
pub fn duration_text(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn zone(event: &str, id: u64, name: &str, time: &str) -> Map<String, Value> {
        rec(json!({"event": event, "zone_id": id, "name": name, "time": time}))
    }

    const T0: &str = "2026-12-02T10:00:00Z";
    const T1: &str = "2026-12-02T10:00:05Z";

    #[test]
    fn a_zone_is_shown_from_its_first_record_until_down() {
        let mut m = Model::default();
        let none = Filter::default();
        m.take(zone("ready", 1, "aap", T0), 0);
        assert_eq!(m.rows(&none, Sort::Name, false, 0)[0].state, State::Ready);
        m.take(zone("booted", 1, "aap", T1), 0);
        let now = parse_rfc3339("2026-12-02T10:01:00Z").unwrap();
        let rows = m.rows(&none, Sort::Name, false, now);
        assert_eq!(
            (rows[0].state, rows[0].uptime_ns(now)),
            (State::Running, 60_000_000_000)
        );
        let mut down = zone("shutdown", 1, "aap", T1);
        down.insert("exit_code".into(), 3.into());
        down.insert("uptime_ns".into(), 5_000_000_000u64.into());
        m.take(down, 0);
        let rows = m.rows(&none, Sort::Name, false, now);
        assert_eq!(rows[0].state, State::Shutdown);
        assert_eq!(rows[0].uptime_ns(now), 5_000_000_000, "frozen at its end");
        assert_eq!(rows[0].last.as_ref().unwrap().exit, "3");
        m.take(zone("down", 1, "aap", T1), 0);
        assert_eq!(m.zone_count(), 0);
        assert_eq!(m.rate.total(), 4);
    }

    #[test]
    fn a_restarted_name_shows_its_previous_end_and_oom() {
        let mut m = Model::default();
        let mut end = zone("shutdown", 1, "db", T0);
        end.insert("exit_signal".into(), 9.into());
        end.insert("oom_killed".into(), true.into());
        m.take(end, 0);
        m.take(zone("down", 1, "db", T0), 0);
        let mut again = zone("booted", 2, "db", T1);
        again.insert("restart_count".into(), 1.into());
        m.take(again, 0);
        let rows = m.rows(&Filter::default(), Sort::Name, false, 0);
        let last = rows[0].last.clone().unwrap();
        assert_eq!(
            (rows[0].restarts, last.exit.as_str(), last.oom),
            (1, "SIG9", true)
        );
        let log: Vec<_> = m.log(&Filter::default());
        assert_eq!(log[0].kind, Kind::Failed);
        assert!(log[0].text.contains("OOM-KILLED"), "{}", log[0].text);
    }

    #[test]
    fn hostile_names_are_escaped() {
        let mut m = Model::default();
        m.take(zone("booted", 1, "\u{1b}[2Jevil\nline", T0), 0);
        let rows = m.rows(&Filter::default(), Sort::Name, false, 0);
        assert_eq!(rows[0].name, "\\x1b[2Jevil\\nline");
        let log: Vec<_> = m.log(&Filter::default());
        assert!(!log[0].text.chars().any(char::is_control));
    }

    #[test]
    fn the_filter_narrows_the_table_and_the_log_but_not_notices() {
        let mut m = Model::default();
        m.take(zone("booted", 1, "web-1", T0), 0);
        m.take(zone("booted", 2, "db", T0), 0);
        m.take(rec(json!({"event": "lost", "count": 7, "time": T0})), 0);
        m.say(Kind::Notice, "hello");
        let f = Filter::parse(["name=web-*"]).unwrap();
        let rows = m.rows(&f, Sort::Name, false, 0);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "web-1");
        let log: Vec<_> = m.log(&f).iter().map(|l| l.kind).collect();
        assert_eq!(log, [Kind::Up, Kind::Lost, Kind::Notice]);
        assert_eq!((m.lost, m.lost_notices), (7, 1));
    }

    #[test]
    fn sorts_by_each_column_and_reverses() {
        let mut m = Model::default();
        for (id, name, rt, restarts) in [
            (1, "b", "lxc", 0),
            (2, "a", "runc", 5),
            (3, "c", "docker", 1),
        ] {
            let mut r = zone("booted", id, name, T0);
            r.insert("runtime".into(), rt.into());
            r.insert("restart_count".into(), restarts.into());
            m.take(r, 0);
        }
        let names = |sort, rev| -> Vec<String> {
            m.rows(&Filter::default(), sort, rev, 0)
                .iter()
                .map(|z| z.name.clone())
                .collect()
        };
        assert_eq!(names(Sort::Name, false), ["a", "b", "c"]);
        assert_eq!(names(Sort::Name, true), ["c", "b", "a"]);
        assert_eq!(names(Sort::Runtime, false), ["c", "b", "a"]);
        assert_eq!(names(Sort::Restarts, false), ["a", "c", "b"]);
        let mut s = Sort::Name;
        for _ in 0..6 {
            s = s.next();
        }
        assert_eq!(s, Sort::Name, "`s` cycles through every column");
    }

    #[test]
    fn fleet_zones_are_keyed_by_host() {
        let mut m = Model::default();
        for host in ["h1", "h2"] {
            let mut r = zone("booted", 1, "same", T0);
            r.insert("host".into(), host.into());
            m.take(r, 0);
        }
        assert!(m.fleet);
        assert_eq!(m.zone_count(), 2);
        let f = Filter::parse(["host=h2"]).unwrap();
        assert_eq!(
            m.rows(&f, Sort::Host, false, 0)[0].host.as_deref(),
            Some("h2")
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut m = Model::default();
        for i in 0..(LOG_LINES as u64 + 10) {
            m.take(zone("ready", i, "z", T0), 0);
            m.take(zone("down", i, "z", T0), 0);
        }
        assert_eq!(m.log.len(), LOG_LINES);
        assert_eq!(m.zone_count(), 0);
        for i in 0..(MAX_NAMES + 10) {
            m.take(zone("shutdown", 1, &format!("n{i}"), T0), 0);
        }
        assert_eq!(m.ends.len(), MAX_NAMES);
    }

    #[test]
    fn the_next_uptime_change_is_the_next_digit_shown() {
        let mut m = Model::default();
        let all = Filter::default();
        assert_eq!(m.next_uptime_change(&all, 0), None, "no zone: no wakeup");
        m.take(zone("booted", 1, "old", T0), 0);
        let t0 = parse_rfc3339(T0).unwrap();
        let d = |ns: i128| m.next_uptime_change(&all, t0 + ns).unwrap().as_nanos();
        assert_eq!(d(1_500_000_000), 500_000_000);
        assert_eq!(d(61_000_000_000), 59_000_000_000);
        let other = Filter::parse(["name=else"]).unwrap();
        assert_eq!(
            m.next_uptime_change(&other, t0),
            None,
            "a zone not shown: no wakeup"
        );
        m.take(zone("shutdown", 1, "old", T0), 0);
        assert_eq!(
            m.next_uptime_change(&all, t0),
            None,
            "a frozen uptime never changes"
        );
    }

    #[test]
    fn initial_records_are_not_transitions() {
        let mut m = Model::default();
        let mut r = zone("running", 1, "old", T0);
        r.insert("initial".into(), true.into());
        m.take(r, 0);
        assert_eq!((m.zone_count(), m.rate.total()), (1, 0));
    }

    #[test]
    fn durations_read_as_top_shows_them() {
        let s = 1_000_000_000;
        assert_eq!(duration_text(42 * s), "42s");
        assert_eq!(duration_text(302 * s), "5m02s");
        assert_eq!(duration_text((3 * 3600 + 7 * 60) * s), "3h07m");
        assert_eq!(duration_text((2 * 86_400 + 4 * 3600) * s), "2d04h");
        assert_eq!(clock_text(parse_rfc3339(T1).unwrap()), "10:00:05");
    }
}
