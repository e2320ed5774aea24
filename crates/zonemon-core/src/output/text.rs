//! The seed's output: `Zone aap booted`, one line per transition.

use std::io::{self, Write};

use serde_json::{Map, Value};

use super::{Sink, WallClock};
use crate::escape::escape_text;
use crate::event::{EventKind, ZoneEvent};

/// Writes `Zone <name> <event>` lines: booted and shutdown (and the `running`
/// records of zones found at start-up, which only exist when asked for), or
/// every transition with `all`.
pub struct TextSink<W: Write> {
    out: W,
    all: bool,
    timestamps: Option<WallClock>,
}

impl<W: Write> TextSink<W> {
    /// A sink writing to `out`; `all` adds ready and down lines; `timestamps` prefixes each line with the time.
    pub fn new(out: W, all: bool, timestamps: Option<WallClock>) -> Self {
        TextSink {
            out,
            all,
            timestamps,
        }
    }
}

impl<W: Write> TextSink<W> {
    /// Writes one record given as its JSON object (as [`super::JsonSink`]
    /// writes it, e.g. read back from the journal), in the same form as
    /// [`Sink::write_event`]; records that are not transitions (`lost`,
    /// `monitor-start`) write nothing. A record from the fleet (with a `host`)
    /// says where: `Zone aap booted on web-1`.
    pub fn write_object(&mut self, object: &Map<String, Value>) -> io::Result<()> {
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let (Some(kind), Some(name)) = (text("event").and_then(EventKind::from_name), text("name"))
        else {
            return Ok(());
        };
        let time = self.timestamps.as_ref().and(text("time"));
        self.write_line(kind, name, time, text("host"))
    }

    fn write_line(
        &mut self,
        kind: EventKind,
        name: &str,
        time: Option<&str>,
        host: Option<&str>,
    ) -> io::Result<()> {
        if !self.all && !kind.is_seed_event() && kind != EventKind::Running {
            return Ok(());
        }
        if let Some(time) = time {
            write!(self.out, "{time} ")?;
        }
        write!(self.out, "Zone {} {}", escape_text(name), kind.as_str())?;
        if let Some(host) = host {
            write!(self.out, " on {}", escape_text(host))?;
        }
        writeln!(self.out)?;
        self.out.flush()
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        let time = self
            .timestamps
            .as_ref()
            .map(|clock| clock.rfc3339(ev.ts_ns));
        self.write_line(ev.kind, &ev.name, time.as_deref(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    fn render(all: bool, clock: Option<WallClock>, evs: &[ZoneEvent]) -> String {
        let mut s = TextSink::new(Vec::new(), all, clock);
        for e in evs {
            s.write_event(e).unwrap();
        }
        String::from_utf8(s.out).unwrap()
    }

    #[test]
    fn seed_lines_to_the_letter() {
        let evs: Vec<_> = [
            EventKind::Ready,
            EventKind::Booted,
            EventKind::Shutdown,
            EventKind::Down,
        ]
        .into_iter()
        .map(|k| sample(k, "aap"))
        .collect();
        assert_eq!(
            render(false, None, &evs),
            "Zone aap booted\nZone aap shutdown\n"
        );
        assert_eq!(
            render(true, None, &evs),
            "Zone aap ready\nZone aap booted\nZone aap shutdown\nZone aap down\n"
        );
    }

    #[test]
    fn fleet_records_say_their_host() {
        let mut s = TextSink::new(Vec::new(), false, None);
        let rec = serde_json::json!({"event": "booted", "name": "aap", "host": "web-1\n"});
        s.write_object(rec.as_object().unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(s.out).unwrap(),
            "Zone aap booted on web-1\\n\n"
        );
    }

    #[test]
    fn timestamps_and_hostile_names() {
        let clock = WallClock::new(1_117_017_038_000_000_000);
        let mut ev = sample(EventKind::Booted, "evil\nZone x shutdown\x1b[2J");
        ev.ts_ns = 5;
        assert_eq!(
            render(false, Some(clock), &[ev]),
            "2005-05-25T10:30:38.000000005Z Zone evil\\nZone x shutdown\\x1b[2J booted\n"
        );
    }

    #[test]
    fn objects_read_back_print_as_events_do() {
        let clock = WallClock::new(0);
        let mut evs: Vec<_> = [EventKind::Ready, EventKind::Booted, EventKind::Down]
            .into_iter()
            .map(|k| sample(k, "a\nb"))
            .collect();
        evs[1].ts_ns = 7;
        for (all, timestamps) in [(false, None), (true, Some(clock.clone()))] {
            let mut s = TextSink::new(Vec::new(), all, timestamps.clone());
            for ev in &evs {
                s.write_object(&crate::output::json::to_json(ev, &clock))
                    .unwrap();
            }
            let lost = crate::output::json::lost_json(Some(3), 9, &clock);
            s.write_object(&lost).unwrap();
            assert_eq!(
                String::from_utf8(s.out).unwrap(),
                render(all, timestamps, &evs)
            );
        }
    }
}
