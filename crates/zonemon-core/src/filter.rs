//! Which records a reader wants: `KEY=VALUE` filters in the style of Docker's
//! `--filter`, matched against a record's JSON object.
//!
//! Semantics: the same key given more than once matches any of its values
//! (OR); different keys must all match (AND); an unknown key or a malformed
//! value is an error that names what is accepted. No filter matches
//! everything.
//!
//! Notices that concern no zone (`lost`, `monitor-start`: objects without a
//! `name`) pass a `name` filter, so a filtered stream still says when records
//! were lost; an `event` filter selects them like any other record.

use std::fmt;

use serde_json::{Map, Value};

/// The keys [`Filter`] accepts, in the order error messages list them.
pub const KEYS: [&str; 2] = ["event", "name"];

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
        self.events.is_empty() && self.names.is_empty()
    }

    /// Whether the record `object` (one JSON line of `watch --json`) passes every key.
    pub fn matches(&self, object: &Map<String, Value>) -> bool {
        let event = object.get("event").and_then(Value::as_str);
        let events_ok =
            self.events.is_empty() || event.is_some_and(|e| self.events.iter().any(|v| v == e));
        let names_ok = match object.get("name").and_then(Value::as_str) {
            _ if self.names.is_empty() => true,
            Some(name) => self.names.iter().any(|p| p.matches(name)),
            // A notice about no zone (lost records, a monitor start): always told.
            None => !object.contains_key("zone_id"),
        };
        events_ok && names_ok
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
        assert!(e.contains("colour") && e.contains("event, name"), "{e}");
        let e = Filter::parse(["event=exploded"]).unwrap_err().to_string();
        assert!(e.contains("exploded") && e.contains("booted"), "{e}");
        let e = Filter::parse(["name"]).unwrap_err().to_string();
        assert!(e.contains("KEY=VALUE"), "{e}");
        assert!(Filter::parse(["name=[unclosed"]).is_err());
        let e = Filter::parse(["bad\nkey=1"]).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
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
