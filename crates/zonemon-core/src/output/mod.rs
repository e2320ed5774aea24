//! Where transitions go: one [`Sink`] per output format.

mod filtered;
mod json;
mod text;

pub use filtered::{passes, FilteredSink};
pub use json::{lost_json, to_json, JsonSink};
pub use text::TextSink;

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::event::ZoneEvent;

/// An output of zone transitions.
///
/// Contract: each call writes one whole record and flushes it, so a reader
/// (also through a pipe) sees it at once. An error (e.g. a closed pipe) is
/// returned as is; the caller stops.
pub trait Sink {
    /// Writes one transition (or nothing, if this sink does not show its kind).
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()>;

    /// Notes that the source lost `count` records (`None`: an unknown number),
    /// detected at boot-time instant `ts_ns`. Sinks without a way to say so
    /// write nothing (the monitor also warns on stderr).
    fn write_lost(&mut self, count: Option<u64>, ts_ns: u64) -> io::Result<()> {
        let _ = (count, ts_ns);
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        (**self).write_event(ev)
    }

    fn write_lost(&mut self, count: Option<u64>, ts_ns: u64) -> io::Result<()> {
        (**self).write_lost(count, ts_ns)
    }
}

/// Converts the kernel's CLOCK_BOOTTIME timestamps to wall-clock time.
///
/// Clones share one offset: when the wall clock is stepped (NTP, `date -s`),
/// [`WallClock::set`] on any clone re-dates what every sink writes after.
#[derive(Debug, Clone, Default)]
pub struct WallClock {
    /// CLOCK_REALTIME minus CLOCK_BOOTTIME, in nanoseconds.
    boot_to_unix_ns: Arc<AtomicI64>,
}

impl WallClock {
    /// A clock whose CLOCK_REALTIME − CLOCK_BOOTTIME is `boot_to_unix_ns`.
    pub fn new(boot_to_unix_ns: i128) -> Self {
        let clock = WallClock::default();
        clock.set(boot_to_unix_ns);
        clock
    }

    /// The offset now: CLOCK_REALTIME minus CLOCK_BOOTTIME, in nanoseconds.
    pub fn boot_to_unix_ns(&self) -> i128 {
        self.boot_to_unix_ns.load(Ordering::Relaxed).into()
    }

    /// Sets the offset for this clock and every clone of it (saturating at ±292 years).
    pub fn set(&self, boot_to_unix_ns: i128) {
        let ns = boot_to_unix_ns.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        self.boot_to_unix_ns.store(ns, Ordering::Relaxed);
    }

    /// Nanoseconds since the Unix epoch of the boot-time instant `boot_ns`.
    pub fn unix_ns(&self, boot_ns: u64) -> i128 {
        boot_ns as i128 + self.boot_to_unix_ns()
    }

    /// RFC 3339 UTC text, with nanoseconds, of the boot-time instant `boot_ns`.
    pub fn rfc3339(&self, boot_ns: u64) -> String {
        crate::timefmt::rfc3339_nanos(self.unix_ns(boot_ns))
    }
}
