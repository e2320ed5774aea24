//! Which records a reader wants: `KEY=VALUE` filters in the style of Docker's
//! `--filter`, matched against a record's JSON object.
//!
//! Semantics: the same key given more than once matches any of its values
//! (OR); different keys must all match (AND); an unknown key or a malformed
//! value is an error that names what is accepted. No filter matches
//! everything.
//!
//! Keys: `event`; `name` (a glob); `runtime` (`docker`, …, or `none` for a
//! zone no runtime made); `container_id` (the id or a prefix of it, as
//! `docker ps --filter id=`); `k8s_namespace`; `exit` (`nonzero`, a code such
//! as `exit=137`, or `signal`: only `shutdown` records carry an exit, so an
//! `exit` filter passes no other transition); `host` (a glob: the host a fleet
//! record comes from, `zonemon watch --from`; a record without a host
//! matches no `host` filter).
//!
//! Notices that concern no zone (`lost`, `monitor-start`: objects without a
//! `zone_id`) pass every filter about zones (`name`, `runtime`, …), so a
//! filtered stream still says when records were lost; an `event` filter
//! selects them like any other record, and so does a `host` filter (a notice
//! comes from a host too).

use std::fmt;

use serde_json::{Map, Value};

/// The keys [`Filter`] accepts, in the order error messages list them.
pub const KEYS: [&str; 9] = [
    "container_id",
    "event",
    "exit",
    "host",
    "image",
    "k8s_namespace",
    "label",
    "name",
    "runtime",
];

/// The `event` values a record can carry (see README's JSON schema).
pub const EVENTS: [&str; 7] = [
    "ready",
    "booted",
    "shutdown",
    "down",
    "running",
    "lost",
    "monitor-start",
];

/// A set of `KEY=VALUE` filters; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `event=…` values; empty: any event.
    events: Vec<String>,
    /// `name=…` globs; empty: any name.
    names: Vec<glob::Pattern>,
    /// `runtime=…` values (`none`: no runtime); empty: any.
    runtimes: Vec<String>,
    /// `container_id=…` ids or prefixes; empty: any.
    container_ids: Vec<String>,
    /// `k8s_namespace=…` values; empty: any.
    k8s_namespaces: Vec<String>,
    /// `exit=…` conditions; empty: any (and records without an exit).
    exits: Vec<ExitCond>,
    /// `image=…` globs; empty: any image (or none).
    images: Vec<glob::Pattern>,
    /// `label=KEY[=VALUE]` conditions: the label set (to that value, when given).
    labels: Vec<(String, Option<String>)>,
    /// `host=…` globs; empty: any host (and records without one).
    hosts: Vec<glob::Pattern>,
}

/// One `exit=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExitCond {
    /// `nonzero`: an exit code other than 0, or a signal.
    NonZero,
    /// `signal`: killed by a signal.
    Signal,
    /// A number: exactly that exit code.
    Code(i64),
}

impl ExitCond {
    fn parse(value: &str) -> Result<ExitCond, FilterError> {
        match value {
            "nonzero" => Ok(ExitCond::NonZero),
            "signal" => Ok(ExitCond::Signal),
            v => v.parse().map(ExitCond::Code).map_err(|_| {
                FilterError(format!(
                    "exit filter `{}`: use nonzero, signal or an exit code (0-255)",
                    v.escape_debug()
                ))
            }),
        }
    }

    /// Whether the `shutdown` record `object` ended this way.
    fn matches(self, object: &Map<String, Value>) -> bool {
        let code = object.get("exit_code").and_then(Value::as_i64);
        let signalled = object.get("exit_signal").is_some_and(|s| !s.is_null());
        match self {
            ExitCond::NonZero => signalled || code.is_some_and(|c| c != 0),
            ExitCond::Signal => signalled,
            ExitCond::Code(want) => code == Some(want),
        }
    }
}

/// Why a filter was refused; its text says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

impl Filter {
    /// Parses filters such as `name=web-*` and `event=booted`.
    pub fn parse<'a>(specs: impl IntoIterator<Item = &'a str>) -> Result<Filter, FilterError> {
        let mut filter = Filter::default();
        for spec in specs {
            let Some((key, value)) = spec.split_once('=') else {
                return Err(FilterError(format!(
                    "filter `{}` is not KEY=VALUE (keys: {})",
                    spec.escape_debug(),
                    KEYS.join(", ")
                )));
            };
            filter.add(key, value)?;
        }
        Ok(filter)
    }

    /// Adds one `key=value` filter.
    pub fn add(&mut self, key: &str, value: &str) -> Result<(), FilterError> {
        match key {
            "event" if EVENTS.contains(&value) => self.events.push(value.to_string()),
            "event" => {
                return Err(FilterError(format!(
                    "unknown event `{}` in filter (events: {})",
                    value.escape_debug(),
                    EVENTS.join(", ")
                )))
            }
            "name" => self.names.push(glob::Pattern::new(value).map_err(|e| {
                FilterError(format!("name filter `{}`: {e}", value.escape_debug()))
            })?),
            "host" => self.hosts.push(glob::Pattern::new(value).map_err(|e| {
                FilterError(format!("host filter `{}`: {e}", value.escape_debug()))
            })?),
            "runtime" => self.runtimes.push(value.to_string()),
            "container_id" if !value.is_empty() => self.container_ids.push(value.to_string()),
            "container_id" => {
                return Err(FilterError(
                    "container_id filter: give an id or a prefix of one".into(),
                ))
            }
            "k8s_namespace" => self.k8s_namespaces.push(value.to_string()),
            "exit" => self.exits.push(ExitCond::parse(value)?),
            "image" => self.images.push(glob::Pattern::new(value).map_err(|e| {
                FilterError(format!("image filter `{}`: {e}", value.escape_debug()))
            })?),
            "label" if !value.is_empty() && !value.starts_with('=') => {
                self.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                })
            }
            "label" => {
                return Err(FilterError(
                    "label filter: give label=KEY or label=KEY=VALUE".into(),
                ))
            }
            _ => {
                return Err(FilterError(format!(
                    "unknown filter key `{}` (keys: {})",
                    key.escape_debug(),
                    KEYS.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// Whether no filter was given (everything matches).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.names.is_empty()
            && self.runtimes.is_empty()
            && self.container_ids.is_empty()
            && self.k8s_namespaces.is_empty()
            && self.exits.is_empty()
            && self.images.is_empty()
            && self.labels.is_empty()
            && self.hosts.is_empty()
    }

    /// Whether `object` is a record this filter asks for, taken literally (for
    /// hooks): as [`Filter::matches`], except that a notice about no zone
    /// passes a filter with zone keys (`name`, `exit`, …) only when its
    /// `event` key names it, so that `exit=nonzero` never runs a hook on a
    /// `lost` or `monitor-start` record.
    pub fn selects(&self, object: &Map<String, Value>) -> bool {
        let zone_keys = !(self.names.is_empty()
            && self.runtimes.is_empty()
            && self.container_ids.is_empty()
            && self.k8s_namespaces.is_empty()
            && self.exits.is_empty()
            && self.images.is_empty()
            && self.labels.is_empty());
        if zone_keys && !object.contains_key("zone_id") && self.events.is_empty() {
            return false;
        }
        self.matches(object)
    }

    /// Whether the record `object` (one JSON line of `watch --json`) passes every key.
    pub fn matches(&self, object: &Map<String, Value>) -> bool {
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let any = |wanted: &[String], got: Option<&str>| {
            wanted.is_empty() || got.is_some_and(|g| wanted.iter().any(|w| w == g))
        };
        let events_ok = any(&self.events, text("event"))
            && (self.hosts.is_empty()
                || text("host").is_some_and(|h| self.hosts.iter().any(|p| p.matches(h))));
        // A notice about no zone (lost records, a monitor start): told whatever the zone filters.
        if !object.contains_key("zone_id") {
            return events_ok;
        }
        let names_ok = self.names.is_empty()
            || text("name").is_some_and(|n| self.names.iter().any(|p| p.matches(n)));
        let runtimes_ok = any(&self.runtimes, Some(text("runtime").unwrap_or("none")));
        let ids_ok = self.container_ids.is_empty()
            || text("container_id").is_some_and(|id| {
                self.container_ids
                    .iter()
                    .any(|p| id.starts_with(p.as_str()))
            });
        let k8s_ok = any(&self.k8s_namespaces, text("k8s_namespace"));
        let exits_ok = self.exits.is_empty()
            || (text("event") == Some("shutdown") && self.exits.iter().any(|c| c.matches(object)));
        let images_ok = self.images.is_empty()
            || text("image").is_some_and(|i| self.images.iter().any(|p| p.matches(i)));
        let labels = object.get("labels").and_then(Value::as_object);
        let labels_ok = self.labels.is_empty()
            || self.labels.iter().any(|(k, want)| {
                let got = labels.and_then(|l| l.get(k)).and_then(Value::as_str);
                match want {
                    Some(v) => got == Some(v.as_str()),
                    None => got.is_some(),
                }
            });
        events_ok
            && names_ok
            && runtimes_ok
            && ids_ok
            && k8s_ok
            && exits_ok
            && images_ok
            && labels_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn booted(name: &str) -> Map<String, Value> {
        obj(json!({"event": "booted", "name": name, "zone_id": 1}))
    }

    #[test]
    fn no_filter_matches_everything() {
        let f = Filter::parse([]).unwrap();
        assert!(f.is_empty());
        assert!(f.matches(&booted("aap")));
        assert!(f.matches(&obj(json!({"event": "lost", "count": 3}))));
    }

    #[test]
    fn images_and_labels() {
        let web = obj(json!({"event": "booted", "name": "w", "zone_id": 1,
            "image": "docker.io/library/nginx:1.27", "labels": {"app": "web", "tier": "front"}}));
        let bare = obj(
            json!({"event": "booted", "name": "b", "zone_id": 2, "image": null, "labels": null}),
        );
        let f = |specs: &[&str]| Filter::parse(specs.iter().copied()).unwrap();
        assert!(f(&["image=*nginx:*"]).matches(&web));
        assert!(!f(&["image=*redis*"]).matches(&web));
        assert!(!f(&["image=*"]).matches(&bare));
        assert!(f(&["label=app"]).matches(&web));
        assert!(f(&["label=app=web"]).matches(&web));
        assert!(!f(&["label=app=db"]).matches(&web));
        assert!(f(&["label=app=db", "label=tier=front"]).matches(&web), "OR");
        assert!(!f(&["label=app=web", "image=*redis*"]).matches(&web), "AND");
        assert!(!f(&["label=app"]).matches(&bare));
        for bad in ["label=", "label==x"] {
            let e = Filter::parse([bad]).unwrap_err().to_string();
            assert!(e.contains("label=KEY"), "{e}");
        }
    }

    #[test]
    fn notices_reach_hooks_only_when_asked_for() {
        let lost = obj(json!({"event": "lost", "count": 3}));
        assert!(Filter::parse([]).unwrap().selects(&lost));
        assert!(!Filter::parse(["exit=nonzero"]).unwrap().selects(&lost));
        assert!(!Filter::parse(["name=web-*"]).unwrap().selects(&lost));
        assert!(Filter::parse(["name=web-*", "event=lost"])
            .unwrap()
            .selects(&lost));
        assert!(!Filter::parse(["event=booted"]).unwrap().selects(&lost));
        assert!(Filter::parse(["name=web-*"])
            .unwrap()
            .selects(&booted("web-1")));
        // A stream still says what it lost, whatever its zone filters.
        assert!(Filter::parse(["name=web-*"]).unwrap().matches(&lost));
    }

    #[test]
    fn same_key_is_or_different_keys_are_and() {
        let f = Filter::parse(["name=web-*", "name=db", "event=booted"]).unwrap();
        assert!(f.matches(&booted("web-1")));
        assert!(f.matches(&booted("db")));
        assert!(!f.matches(&booted("db2")));
        assert!(!f.matches(&obj(
            json!({"event": "shutdown", "name": "db", "zone_id": 2})
        )));
        let f = Filter::parse(["event=booted", "event=shutdown"]).unwrap();
        assert!(f.matches(&obj(
            json!({"event": "shutdown", "name": "x", "zone_id": 2})
        )));
        assert!(!f.matches(&obj(json!({"event": "ready", "name": "x", "zone_id": 2}))));
    }

    #[test]
    fn globs_see_slashes_and_brackets() {
        let f = Filter::parse(["name=default/*/nginx"]).unwrap();
        assert!(f.matches(&booted("default/web-0/nginx")));
        assert!(!f.matches(&booted("kube-system/web-0/nginx")));
        let f = Filter::parse(["name=zone-[0-9]"]).unwrap();
        assert!(f.matches(&booted("zone-7")) && !f.matches(&booted("zone-x")));
    }

    #[test]
    fn notices_pass_name_filters_but_not_event_filters() {
        let lost = obj(json!({"event": "lost", "count": 3}));
        assert!(Filter::parse(["name=aap"]).unwrap().matches(&lost));
        assert!(!Filter::parse(["event=booted"]).unwrap().matches(&lost));
        assert!(Filter::parse(["event=lost"]).unwrap().matches(&lost));
        // A zone record without a name string is a zone all the same: not a notice.
        let odd = obj(json!({"event": "booted", "zone_id": 4}));
        assert!(!Filter::parse(["name=*"]).unwrap().matches(&odd));
    }

    #[test]
    fn errors_name_what_is_accepted() {
        let e = Filter::parse(["colour=red"]).unwrap_err().to_string();
        assert!(e.contains("colour") && e.contains("event, exit"), "{e}");
        assert!(e.contains("runtime") && e.contains("container_id"), "{e}");
        let e = Filter::parse(["exit=sometimes"]).unwrap_err().to_string();
        assert!(e.contains("nonzero") && e.contains("signal"), "{e}");
        assert!(Filter::parse(["container_id="]).is_err());
        let e = Filter::parse(["event=exploded"]).unwrap_err().to_string();
        assert!(e.contains("exploded") && e.contains("booted"), "{e}");
        let e = Filter::parse(["name"]).unwrap_err().to_string();
        assert!(e.contains("KEY=VALUE"), "{e}");
        assert!(Filter::parse(["name=[unclosed"]).is_err());
        let e = Filter::parse(["bad\nkey=1"]).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
    }

    fn shutdown(code: Option<i64>, signal: Option<i64>) -> Map<String, Value> {
        let mut m = obj(json!({"event": "shutdown", "name": "x", "zone_id": 3}));
        match (code, signal) {
            (_, Some(s)) => m.insert("exit_signal".into(), s.into()),
            (c, None) => m.insert("exit_code".into(), json!(c)),
        };
        m
    }

    #[test]
    fn exits_pass_only_shutdowns_that_ended_so() {
        let nonzero = Filter::parse(["exit=nonzero"]).unwrap();
        assert!(nonzero.matches(&shutdown(Some(3), None)));
        assert!(nonzero.matches(&shutdown(None, Some(9))));
        assert!(!nonzero.matches(&shutdown(Some(0), None)));
        // An exit never seen (resynced) is not a non-zero exit.
        assert!(!nonzero.matches(&shutdown(None, None)));
        assert!(!nonzero.matches(&booted("x")));
        let f = Filter::parse(["exit=137", "exit=signal"]).unwrap();
        assert!(f.matches(&shutdown(Some(137), None)) && f.matches(&shutdown(None, Some(15))));
        assert!(!f.matches(&shutdown(Some(1), None)));
        // Notices about no zone pass, as for every zone filter.
        assert!(nonzero.matches(&obj(json!({"event": "lost", "count": 1}))));
    }

    #[test]
    fn hosts_are_globs_on_every_record() {
        let f = Filter::parse(["host=web-*", "name=aap"]).unwrap();
        let on = |host: &str| {
            let mut m = booted("aap");
            m.insert("host".into(), host.into());
            m
        };
        assert!(f.matches(&on("web-1")) && !f.matches(&on("db-1")));
        assert!(!f.matches(&booted("aap")), "a record without a host");
        let lost = obj(json!({"event": "lost", "host": "db-1"}));
        assert!(!f.matches(&lost), "a notice from another host");
        assert!(Filter::parse(["host=db-?"]).unwrap().matches(&lost));
        assert!(Filter::parse(["host=[x"]).is_err());
    }

    #[test]
    fn runtimes_ids_and_namespaces() {
        let docker = obj(json!({"event": "booted", "name": "web", "zone_id": 1,
            "runtime": "docker", "container_id": "4f2a9c", "k8s_namespace": null}));
        let pod = obj(
            json!({"event": "booted", "name": "prod/web-0/nginx", "zone_id": 2,
            "runtime": "kubernetes", "container_id": "77ee", "k8s_namespace": "prod"}),
        );
        let bare = obj(json!({"event": "booted", "name": "aap", "zone_id": 3, "runtime": null}));
        let f = Filter::parse(["runtime=docker", "runtime=none"]).unwrap();
        assert!(f.matches(&docker) && f.matches(&bare) && !f.matches(&pod));
        let f = Filter::parse(["container_id=4f2"]).unwrap();
        assert!(f.matches(&docker) && !f.matches(&pod) && !f.matches(&bare));
        let f = Filter::parse(["k8s_namespace=prod", "runtime=kubernetes"]).unwrap();
        assert!(f.matches(&pod) && !f.matches(&docker));
    }

    proptest::proptest! {
        /// Against a model: same key = any of its values, different keys = all of them.
        #[test]
        fn or_within_a_key_and_across_keys(
            events in proptest::sample::subsequence(EVENTS.to_vec(), 0..4),
            names in proptest::collection::vec("[a-c]{1,2}", 0..3),
            event in proptest::sample::select(EVENTS.to_vec()),
            name in "[a-c]{1,2}",
        ) {
            let specs: Vec<String> = events
                .iter()
                .map(|e| format!("event={e}"))
                .chain(names.iter().map(|n| format!("name={n}")))
                .collect();
            let f = Filter::parse(specs.iter().map(String::as_str)).unwrap();
            let record = obj(json!({"event": event, "name": name, "zone_id": 1}));
            let model = (events.is_empty() || events.contains(&event))
                && (names.is_empty() || names.contains(&name));
            proptest::prop_assert_eq!(f.matches(&record), model);
        }
    }
}
