//! Logs (`tracing`) on stderr, in the form of zonemon's other messages:
//! `zonemon: warning: the hook queue is full … hook=page seq=42`. No
//! timestamps: under systemd the journal adds them.
//!
//! This is the one place user-facing warnings go through: a warning that
//! repeats (the same `warn!` in the code) is printed at most
//! [`BURST`] times per [`WINDOW`]; the next one printed after that says how
//! many were held back. Errors are never held back.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Sends INFO and above to stderr for the rest of the process's life.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(Level::INFO)
        .event_format(Plain::default())
        .try_init();
}

/// How many times one warning is printed per [`WINDOW`].
pub const BURST: u32 = 5;

/// The window [`BURST`] counts in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// One warning's count in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    printed: u32,
    held_back: u64,
}

/// Per-callsite windows: how often each warning was printed lately.
#[derive(Debug, Default)]
struct RateLimit {
    windows: HashMap<Identifier, Window>,
}

impl RateLimit {
    /// Whether the warning from `site` is printed at `now`; if so, how many
    /// of it were held back before (to say so). `None`: hold it back.
    fn admit(&mut self, site: Identifier, now: Instant) -> Option<u64> {
        let w = self.windows.entry(site).or_insert(Window {
            start: now,
            printed: 0,
            held_back: 0,
        });
        if now.duration_since(w.start) >= WINDOW {
            w.start = now;
            w.printed = 0;
        }
        if w.printed >= BURST {
            w.held_back += 1;
            return None;
        }
        w.printed += 1;
        Some(std::mem::take(&mut w.held_back))
    }
}

/// `zonemon: LEVEL: message key=value …`, warnings rate-limited per callsite.
#[derive(Default)]
struct Plain {
    limit: Mutex<RateLimit>,
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The NATS client's own notes ("connected", "event: …") are not zonemon's news;
        // its warnings and errors are.
        let meta = event.metadata();
        if meta.target().starts_with("async_nats") && *meta.level() > Level::WARN {
            return Ok(());
        }
        let level = match *meta.level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            _ => "",
        };
        let mut held_back = 0;
        if *meta.level() == Level::WARN {
            let mut limit = self.limit.lock().unwrap_or_else(|p| p.into_inner());
            match limit.admit(meta.callsite(), Instant::now()) {
                Some(n) => held_back = n,
                None => return Ok(()),
            }
        }
        write!(writer, "zonemon: {level}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        if held_back > 0 {
            write!(
                writer,
                " ({held_back} more like this were not printed: at most {BURST} a minute)"
            )?;
        }
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::callsite::Callsite;

    /// Not zero-sized: two statics need two addresses, a callsite's identity.
    struct Site(#[allow(dead_code)] u8);
    impl Callsite for Site {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unreachable!("only its identity is used")
        }
    }
    static A: Site = Site(1);
    static B: Site = Site(2);

    #[test]
    fn a_repeated_warning_is_held_back_then_counted() {
        let mut limit = RateLimit::default();
        let t0 = Instant::now();
        let a = || Identifier(&A);
        for _ in 0..BURST {
            assert_eq!(limit.admit(a(), t0), Some(0));
        }
        for _ in 0..7 {
            assert_eq!(limit.admit(a(), t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(
            limit.admit(Identifier(&B), t0),
            Some(0),
            "another warning is its own"
        );
        assert_eq!(
            limit.admit(a(), t0 + WINDOW),
            Some(7),
            "the next window prints it again, saying how many were held back"
        );
        assert_eq!(
            limit.admit(a(), t0 + WINDOW),
            Some(0),
            "and counts from zero"
        );
    }
}
