//! The query strings of the API's routes, parsed and checked. An unknown
//! parameter, a repeated one, or a malformed value is refused with a message
//! naming what is accepted.

use std::time::Duration;

use zonemon_core::filter::Filter;

use super::reply::ApiError;
use super::timespec::{parse_duration, parse_time};

/// Where an event stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the journal's end: only what is committed from now on.
    Now,
    /// After this `seq`.
    After(u64),
    /// At the first record at or after this time (ns since the Unix epoch).
    Since(i128),
}

/// `GET /v1/events`.
#[derive(Debug, Clone)]
pub struct EventsQuery {
    /// Where the stream starts.
    pub start: Start,
    /// Stop at the first record after this time (ns since the Unix epoch).
    pub until: Option<i128>,
    /// Keep the stream open for new records once the journal's end is reached.
    pub follow: bool,
    /// First send the zones running now, as `running` records with `"initial":true`.
    pub initial: bool,
    /// Which records to send.
    pub filter: Filter,
}

/// The transitions `GET /v1/wait` waits for.
pub const WAIT_EVENTS: [&str; 3] = ["booted", "shutdown", "down"];

/// Which zone a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Zones with exactly this name.
    Name(String),
    /// The zone with this `zone_id`.
    ZoneId(u64),
}

impl Target {
    /// Whether the record `object` is about this zone.
    pub fn matches(&self, object: &serde_json::Map<String, serde_json::Value>) -> bool {
        match self {
            Target::Name(n) => object.get("name").and_then(|v| v.as_str()) == Some(n),
            Target::ZoneId(id) => object.get("zone_id").and_then(|v| v.as_u64()) == Some(*id),
        }
    }
}

/// `GET /v1/wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitQuery {
    /// The zone waited for.
    pub target: Target,
    /// The transition waited for: one of [`WAIT_EVENTS`].
    pub event: &'static str,
    /// Records before this time do not count (ns since the Unix epoch).
    pub since: i128,
    /// How long to wait at most; `None`: until the client goes away.
    pub timeout: Option<Duration>,
}

impl WaitQuery {
    /// Whether the record `object`, dated `unix_ns`, is the transition waited for
    /// (the daemon's journal and the fleet's stream are searched with it alike).
    pub fn matches(
        &self,
        unix_ns: i128,
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        unix_ns >= self.since
            && object.get("event").and_then(|v| v.as_str()) == Some(self.event)
            && self.target.matches(object)
    }
}

/// A query string's `key=value` pairs, percent-decoded.
struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `query`, refusing keys not in `accepted`.
    fn parse(query: Option<&str>, accepted: &[&str]) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !accepted.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter `{}` (accepted: {})",
                k.escape_debug(),
                accepted.join(", ")
            )));
        }
        Ok(Params(pairs))
    }

    /// Every value of `key`.
    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, which may be given once at most.
    fn one<'a>(&'a self, key: &'a str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.all(key);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "`{key}` given more than once"
            )));
        }
        Ok(first)
    }

    /// A time value of `key`, if given.
    fn time(&self, key: &str, now: i128) -> Result<Option<i128>, ApiError> {
        self.one(key)?
            .map(|v| parse_time(v, now).map_err(|e| ApiError::bad_request(format!("{key}: {e}"))))
            .transpose()
    }

    /// A `true`/`false` value of `key`, or `default`.
    fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.one(key)? {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "{key}: `{}` is not true or false",
                v.escape_debug()
            ))),
        }
    }

    /// A decimal number value of `key`, if given.
    fn number(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.one(key)?
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!("{key}: `{}` is not a number", v.escape_debug()))
                })
            })
            .transpose()
    }
}

impl EventsQuery {
    /// Parses the query of `GET /v1/events`; `now` resolves relative times.
    ///
    /// `follow` defaults to true unless `until` is given (as `docker events`).
    pub fn parse(query: Option<&str>, now: i128) -> Result<EventsQuery, ApiError> {
        let p = Params::parse(
            query,
            &["after", "since", "until", "follow", "initial", "filter"],
        )?;
        let after = p.number("after")?;
        let since = p.time("since", now)?;
        let start = match (after, since) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request("give `after` or `since`, not both"))
            }
            (Some(seq), None) => Start::After(seq),
            (None, Some(t)) => Start::Since(t),
            (None, None) => Start::Now,
        };
        let until = p.time("until", now)?;
        let follow = p.flag("follow", until.is_none())?;
        let initial = p.flag("initial", false)?;
        if initial && start != Start::Now {
            return Err(ApiError::bad_request(
                "`initial` lists the zones running now: it cannot start at `after` or `since`",
            ));
        }
        let filter =
            Filter::parse(p.all("filter")).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(EventsQuery {
            start,
            until,
            follow,
            initial,
            filter,
        })
    }
}

impl WaitQuery {
    /// Parses the query of `GET /v1/wait`; `now` is the default `since` and resolves relative times.
    pub fn parse(query: Option<&str>, now: i128) -> Result<WaitQuery, ApiError> {
        let p = Params::parse(query, &["name", "zone_id", "for", "since", "timeout"])?;
        let target = match (p.one("name")?, p.number("zone_id")?) {
            (Some(name), None) if !name.is_empty() => Target::Name(name.to_string()),
            (None, Some(id)) => Target::ZoneId(id),
            _ => {
                return Err(ApiError::bad_request(
                    "give the zone as `name` or `zone_id` (one of them)",
                ))
            }
        };
        let event = match p.one("for")? {
            None => "shutdown",
            Some(e) => WAIT_EVENTS.into_iter().find(|w| *w == e).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "for: `{}` is not one of {}",
                    e.escape_debug(),
                    WAIT_EVENTS.join(", ")
                ))
            })?,
        };
        let since = p.time("since", now)?.unwrap_or(now);
        let timeout = p
            .one("timeout")?
            .map(|v| parse_duration(v).map_err(|e| ApiError::bad_request(format!("timeout: {e}"))))
            .transpose()?;
        Ok(WaitQuery {
            target,
            event,
            since,
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i128 = 1_764_648_000_000_000_000;

    fn events(q: &str) -> Result<EventsQuery, String> {
        EventsQuery::parse(Some(q), NOW).map_err(|e| e.message)
    }

    #[test]
    fn events_defaults_and_starts() {
        let q = events("").unwrap();
        assert_eq!(
            (q.start, q.until, q.follow, q.initial),
            (Start::Now, None, true, false)
        );
        assert_eq!(events("after=42").unwrap().start, Start::After(42));
        let q = events("since=10m&until=1m").unwrap();
        assert_eq!(q.start, Start::Since(NOW - 600_000_000_000));
        assert_eq!(q.until, Some(NOW - 60_000_000_000));
        assert!(
            !q.follow,
            "until ends the stream unless follow says otherwise"
        );
        assert!(events("since=10m&until=1m&follow=true").unwrap().follow);
        assert!(events("initial=true").unwrap().initial);
        let q = events("filter=name%3Dweb-*&filter=event=booted").unwrap();
        assert!(!q.filter.is_empty());
    }

    #[test]
    fn events_errors_say_what_is_accepted() {
        let e = events("colour=red").unwrap_err();
        assert!(e.contains("colour") && e.contains("after, since"), "{e}");
        assert!(events("after=1&since=10m")
            .unwrap_err()
            .contains("not both"));
        assert!(events("after=-1").unwrap_err().contains("not a number"));
        assert!(events("after=1&after=2")
            .unwrap_err()
            .contains("more than once"));
        assert!(events("since=yesterday")
            .unwrap_err()
            .starts_with("since: "));
        assert!(events("follow=maybe")
            .unwrap_err()
            .contains("true or false"));
        assert!(events("initial=true&after=3").is_err());
        assert!(events("filter=size=big")
            .unwrap_err()
            .contains(&format!("keys: {}", zonemon_core::filter::KEYS.join(", "))));
    }

    #[test]
    fn wait_queries() {
        let q = WaitQuery::parse(Some("name=aap"), NOW).unwrap();
        assert_eq!(
            q,
            WaitQuery {
                target: Target::Name("aap".into()),
                event: "shutdown",
                since: NOW,
                timeout: None
            }
        );
        let q = WaitQuery::parse(Some("zone_id=7&for=booted&since=1s&timeout=30s"), NOW).unwrap();
        assert_eq!(q.target, Target::ZoneId(7));
        assert_eq!((q.event, q.since), ("booted", NOW - 1_000_000_000));
        assert_eq!(q.timeout, Some(Duration::from_secs(30)));
        for bad in [
            "",
            "name=a&zone_id=1",
            "name=",
            "name=a&for=exploded",
            "name=a&timeout=x",
        ] {
            assert!(WaitQuery::parse(Some(bad), NOW).is_err(), "{bad}");
        }
    }
}
