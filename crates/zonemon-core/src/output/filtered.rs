//! A [`Sink`] that passes on only the records a [`Filter`] accepts.

use std::io;
use std::sync::LazyLock;

use super::json::{lost_json, to_json};
use super::{Sink, WallClock};
use crate::event::ZoneEvent;
use crate::filter::Filter;

/// Hands to the sink it wraps only the records `filter` matches (as their
/// JSON objects, so every output applies the same filter language).
pub struct FilteredSink<S> {
    inner: S,
    filter: Filter,
}

/// Filters look at no time: any clock serves to build the object matched.
static ANY_CLOCK: LazyLock<WallClock> = LazyLock::new(WallClock::default);

impl<S: Sink> FilteredSink<S> {
    /// Wraps `inner`, passing on what `filter` matches.
    pub fn new(inner: S, filter: Filter) -> Self {
        FilteredSink { inner, filter }
    }
}

/// Whether `filter` accepts the transition `ev`.
pub fn passes(filter: &Filter, ev: &ZoneEvent) -> bool {
    filter.is_empty() || filter.matches(&to_json(ev, &ANY_CLOCK))
}

impl<S: Sink> Sink for FilteredSink<S> {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        if passes(&self.filter, ev) {
            self.inner.write_event(ev)?;
        }
        Ok(())
    }

    fn write_lost(&mut self, count: Option<u64>, ts_ns: u64) -> io::Result<()> {
        if self.filter.matches(&lost_json(count, ts_ns, &ANY_CLOCK)) {
            self.inner.write_lost(count, ts_ns)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;
    use crate::event::EventKind;

    /// Keeps the kind and name of every record it gets (`lost` for a loss).
    #[derive(Default)]
    struct Kept(Vec<String>);

    impl Sink for Kept {
        fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
            self.0.push(format!("{} {}", ev.kind.as_str(), ev.name));
            Ok(())
        }

        fn write_lost(&mut self, _: Option<u64>, _: u64) -> io::Result<()> {
            self.0.push("lost".into());
            Ok(())
        }
    }

    #[test]
    fn passes_only_matching_records() {
        let filter = Filter::parse(["name=web-*", "event=booted"]).unwrap();
        let mut s = FilteredSink::new(Kept::default(), filter);
        s.write_event(&sample(EventKind::Booted, "web-1")).unwrap();
        s.write_event(&sample(EventKind::Shutdown, "web-1"))
            .unwrap();
        s.write_event(&sample(EventKind::Booted, "db")).unwrap();
        s.write_lost(Some(3), 5).unwrap();
        assert_eq!(s.inner.0, ["booted web-1"]);
        // A name filter alone still lets a loss through: it concerns every zone.
        let mut s = FilteredSink::new(Kept::default(), Filter::parse(["name=web-*"]).unwrap());
        s.write_lost(None, 5).unwrap();
        assert_eq!(s.inner.0, ["lost"]);
    }
}
