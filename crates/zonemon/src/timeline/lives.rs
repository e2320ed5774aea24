//! From journal records to lives: one per zone (ready → booted → shutdown →
//! down), grouped in rows by zone name, restarts on the same row.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// How a life ended, as its `shutdown` record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Not shut down within the window.
    Running,
    /// Its init exited with this code.
    Code(i64),
    /// A signal killed its init.
    Signal(i64),
    /// The OOM killer took its init.
    Oom,
    /// It shut down, how is unknown.
    Unknown,
}

impl End {
    /// The class the pictures mark it with (`ok`, `nonzero`, `signal`, `oom`, …).
    pub fn class(self) -> &'static str {
        match self {
            End::Running => "running",
            End::Code(0) => "ok",
            End::Code(_) => "nonzero",
            End::Signal(_) => "signal",
            End::Oom => "oom",
            End::Unknown => "unknown",
        }
    }

    /// Words for a tooltip.
    pub fn describe(self) -> String {
        match self {
            End::Running => "still running".into(),
            End::Code(c) => format!("exit {c}"),
            End::Signal(s) => format!("killed by signal {s}"),
            End::Oom => "OOM-killed".into(),
            End::Unknown => "exit unknown".into(),
        }
    }

    /// Whether it is worth a look (a failure of some kind).
    pub fn is_failure(self) -> bool {
        matches!(self, End::Code(c) if c != 0) || matches!(self, End::Signal(_) | End::Oom)
    }
}

/// One zone's life, times in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Life {
    /// The zone's id.
    pub zone_id: u64,
    /// Its first moment in the window (ready, else booted, else its first record).
    pub start_ns: i128,
    /// When it booted, if it did within the window.
    pub booted_ns: Option<i128>,
    /// When it shut down, if it did.
    pub shutdown_ns: Option<i128>,
    /// When it was gone (down), else when it shut down, if it did.
    pub end_ns: Option<i128>,
    /// How it ended.
    pub end: End,
}

/// The lives of one zone name, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The zone name (unescaped).
    pub name: String,
    /// Its lives.
    pub lives: Vec<Life>,
}

/// Collects lives from records (in `seq` order); `keep` says which records
/// select their zone: a zone is drawn whole when any of its records is kept.
#[derive(Default)]
pub struct Collector {
    /// By host (empty for a local journal) and zone id.
    lives: HashMap<(String, u64), (String, Life)>,
    selected: std::collections::HashSet<(String, u64)>,
}

impl Collector {
    /// Takes one record dated `unix_ns`; `selected`: whether it passed the filter.
    pub fn add(&mut self, object: &Map<String, Value>, unix_ns: i128, selected: bool) {
        let Some(zone) = object.get("zone_id").and_then(Value::as_u64) else {
            return; // lost records, monitor starts: not a zone's
        };
        // A fleet's records: zone ids are per host, and a row is a host's name.
        let host = object.get("host").and_then(Value::as_str).unwrap_or("");
        let key = (host.to_string(), zone);
        if selected {
            self.selected.insert(key.clone());
        }
        let name = match (host, object.get("name").and_then(Value::as_str)) {
            (_, None | Some("")) => String::new(),
            ("", Some(n)) => n.to_string(),
            (h, Some(n)) => format!("{h}: {n}"),
        };
        let (row_name, life) = self.lives.entry(key).or_insert_with(|| {
            (
                name.to_string(),
                Life {
                    zone_id: zone,
                    start_ns: unix_ns,
                    booted_ns: None,
                    shutdown_ns: None,
                    end_ns: None,
                    end: End::Running,
                },
            )
        });
        if !name.is_empty() {
            *row_name = name; // the newest name (a runtime's, once found)
        }
        life.start_ns = life.start_ns.min(unix_ns);
        match object.get("event").and_then(Value::as_str) {
            Some("booted") => life.booted_ns = Some(unix_ns),
            Some("shutdown") => {
                life.shutdown_ns = Some(unix_ns);
                life.end_ns.get_or_insert(unix_ns);
                life.end = end_of(object);
            }
            Some("down") => {
                life.end_ns = Some(unix_ns);
                if life.end == End::Running {
                    life.end = End::Unknown;
                }
            }
            _ => {}
        }
    }

    /// The selected zones' lives by name, rows ordered by their first life's start.
    pub fn rows(self) -> Vec<Row> {
        let mut by_name: BTreeMap<String, Vec<Life>> = BTreeMap::new();
        for (zone, (name, life)) in self.lives {
            if self.selected.contains(&zone) {
                by_name.entry(name).or_default().push(life);
            }
        }
        let mut rows: Vec<Row> = by_name
            .into_iter()
            .map(|(name, mut lives)| {
                lives.sort_by_key(|l| (l.start_ns, l.zone_id));
                Row { name, lives }
            })
            .collect();
        rows.sort_by_key(|r| (r.lives[0].start_ns, r.name.clone()));
        rows
    }
}

/// How the `shutdown` record `object` says the zone ended.
fn end_of(object: &Map<String, Value>) -> End {
    if object.get("oom_killed").and_then(Value::as_bool) == Some(true) {
        return End::Oom;
    }
    if let Some(sig) = object.get("exit_signal").and_then(Value::as_i64) {
        return End::Signal(sig);
    }
    match object.get("exit_code").and_then(Value::as_i64) {
        Some(c) => End::Code(c),
        None => End::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(event: &str, zone: u64, name: &str, extra: Value) -> Map<String, Value> {
        let mut v = json!({"event": event, "zone_id": zone, "name": name});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_fleets_hosts_get_rows_of_their_own_whatever_their_zone_ids() {
        let mut c = Collector::default();
        for host in ["h1", "h2"] {
            c.add(&rec("booted", 1, "web", json!({"host": host})), 10, true);
        }
        c.add(
            &rec("shutdown", 1, "web", json!({"host": "h2", "exit_code": 1})),
            20,
            true,
        );
        let rows = c.rows();
        let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["h1: web", "h2: web"]);
        assert_eq!(rows[0].lives[0].end, End::Running);
        assert_eq!(rows[1].lives[0].end, End::Code(1));
    }

    #[test]
    fn restarts_share_a_row_and_ends_are_told_apart() {
        let mut c = Collector::default();
        let none = json!({});
        let steps = [
            (rec("ready", 1, "web", none.clone()), 10),
            (rec("booted", 1, "web", none.clone()), 11),
            (rec("shutdown", 1, "web", json!({"exit_code": 3})), 20),
            (rec("down", 1, "web", none.clone()), 21),
            (rec("booted", 2, "web", none.clone()), 30),
            (
                rec(
                    "shutdown",
                    2,
                    "web",
                    json!({"exit_signal": 9, "oom_killed": true}),
                ),
                40,
            ),
            (rec("booted", 3, "db", none.clone()), 5),
            (
                json!({"event": "lost", "count": 2})
                    .as_object()
                    .unwrap()
                    .clone(),
                6,
            ),
        ];
        for (r, t) in &steps {
            c.add(r, *t, true);
        }
        let rows = c.rows();
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["db", "web"]
        );
        let web = &rows[1].lives;
        assert_eq!(web.len(), 2);
        assert_eq!(
            (web[0].start_ns, web[0].end_ns, web[0].end),
            (10, Some(21), End::Code(3))
        );
        assert_eq!((web[1].end_ns, web[1].end), (Some(40), End::Oom));
        assert_eq!(rows[0].lives[0].end, End::Running);
        assert!(End::Code(3).is_failure() && !End::Code(0).is_failure());
    }

    #[test]
    fn a_zone_is_drawn_whole_when_any_record_is_selected() {
        let mut c = Collector::default();
        c.add(&rec("booted", 1, "web", json!({})), 1, false);
        c.add(&rec("shutdown", 1, "web", json!({"exit_code": 1})), 2, true);
        c.add(&rec("booted", 2, "calm", json!({})), 1, false);
        let rows = c.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].lives[0].booted_ns, Some(1));
    }
}
