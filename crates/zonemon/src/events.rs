//! `zonemon events`: the journal's history, in `watch`'s formats.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use zonemon_core::output::{TextSink, WallClock};

use crate::journal::store::JournalStore;
use crate::store::{EventStore, StoredRecord};

/// What `zonemon events` shows (built from the command line by `cli`).
#[derive(Debug, Clone)]
pub struct EventsOptions {
    /// The journal's file.
    pub journal: PathBuf,
    /// Records from this time on (nanoseconds since the Unix epoch)…
    pub since_ns: i128,
    /// …and before this one, if given.
    pub until_ns: Option<i128>,
    /// JSON Lines (every record, with `seq`) instead of text lines.
    pub json: bool,
    /// Text output also shows ready and down.
    pub all: bool,
    /// Text output prefixes each line with the time.
    pub timestamps: bool,
}

/// Records read from the journal at a time.
const PAGE: usize = 1024;

/// Writes the journal's records dated in `[since, until)` to `out`, in `seq` order.
pub fn run(opts: &EventsOptions, out: &mut dyn Write) -> Result<()> {
    // Text lines print the records' times as the journal has them; the clock is unused.
    let clock = WallClock::new(0);
    let mut printer = if opts.json {
        Printer::Json(out)
    } else {
        Printer::Text(TextSink::new(
            out,
            opts.all,
            opts.timestamps.then_some(clock),
        ))
    };
    each_record(&opts.journal, opts.since_ns, opts.until_ns, |rec| {
        match &mut printer {
            Printer::Text(sink) => sink.write_object(&rec.object)?,
            Printer::Json(out) => {
                serde_json::to_writer(&mut **out, &*rec.object)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    })?;
    match printer {
        Printer::Text(_) => Ok(()), // each line is flushed as it is written
        Printer::Json(out) => out.flush().context("writing the records"),
    }
}

/// Calls `f` with each record of the journal at `journal` dated in
/// `[since_ns, until_ns)`, in `seq` order, a page at a time.
pub fn each_record(
    journal: &Path,
    since_ns: i128,
    until_ns: Option<i128>,
    mut f: impl FnMut(&StoredRecord) -> Result<()>,
) -> Result<()> {
    let store = JournalStore::open(journal)?;
    let mut after = store.seq_before_time(since_ns)?;
    let last = match until_ns {
        Some(until) => store.seq_before_time(until)?,
        None => store.last_seq(),
    };
    while after < last {
        let page = store.read_after(after, PAGE)?;
        let Some(end) = page.last().map(|r| r.seq) else {
            break;
        };
        for rec in page.iter().filter(|r| r.seq <= last) {
            let in_range =
                rec.unix_ns >= since_ns && until_ns.is_none_or(|until| rec.unix_ns < until);
            if in_range {
                f(rec)?;
            }
        }
        after = end;
    }
    Ok(())
}

/// Where records go, in which format.
enum Printer<'a> {
    Text(TextSink<&'a mut dyn Write>),
    Json(&'a mut dyn Write),
}
