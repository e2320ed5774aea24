//! The seed's output: `Zone aap booted`, one line per transition.

use std::io::{self, Write};

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

impl<W: Write> Sink for TextSink<W> {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        if !self.all && !ev.kind.is_seed_event() && ev.kind != EventKind::Running {
            return Ok(());
        }
        if let Some(clock) = &self.timestamps {
            write!(self.out, "{} ", clock.rfc3339(ev.ts_ns))?;
        }
        writeln!(
            self.out,
            "Zone {} {}",
            escape_text(&ev.name),
            ev.kind.as_str()
        )?;
        self.out.flush()
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
    fn timestamps_and_hostile_names() {
        let clock = WallClock::new(1_117_017_038_000_000_000);
        let mut ev = sample(EventKind::Booted, "evil\nZone x shutdown\x1b[2J");
        ev.ts_ns = 5;
        assert_eq!(
            render(false, Some(clock), &[ev]),
            "2005-05-25T10:30:38.000000005Z Zone evil\\nZone x shutdown\\x1b[2J booted\n"
        );
    }
}
