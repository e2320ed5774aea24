//! Logs (`tracing`) on stderr, in the form of zonemon's other messages:
//! `zonemon: warning: the hook queue is full … hook=page seq=42`. No
//! timestamps: under systemd the journal adds them.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Sends INFO and above to stderr for the rest of the process's life.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(Level::INFO)
        .event_format(Plain)
        .try_init();
}

/// `zonemon: LEVEL: message key=value …`.
struct Plain;

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
        let level = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            _ => "",
        };
        write!(writer, "zonemon: {level}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
