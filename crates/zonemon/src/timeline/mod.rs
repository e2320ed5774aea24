//! `zonemon timeline`: a picture of zones' lives from the journal (its file,
//! or through the daemon's API), as a self-contained SVG or HTML file (no
//! network fetches).

mod lives;
mod svg;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};
use zonemon_core::filter::Filter;
use zonemon_core::timefmt::{parse_rfc3339, rfc3339_nanos};

use crate::api::{Daemon, StreamEnd};
use crate::events::each_record;
use crate::fleet::{consume, FromArgs};
use lives::Collector;

/// What `zonemon timeline` draws (built from the command line by `cli`).
#[derive(Debug, Clone)]
pub struct TimelineOptions {
    /// The journal to read…
    pub journal: PathBuf,
    /// …or the daemon answering on this socket…
    pub socket: Option<PathBuf>,
    /// …or the fleet, when it names servers (`--from`).
    pub from: FromArgs,
    /// From this time (nanoseconds since the Unix epoch)…
    pub since_ns: i128,
    /// …to this one (default: now).
    pub until_ns: i128,
    /// Which zones: those with a record that passes.
    pub filter: Filter,
    /// Where to write: `.svg` or `.html`.
    pub out: PathBuf,
}

/// The file kinds `--out` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Svg,
    Html,
}

/// Draws the journal's zones of `[since, until)` into `opts.out`; says on stderr how many.
pub fn run(opts: &TimelineOptions) -> Result<()> {
    let format = match opts.out.extension().and_then(|e| e.to_str()) {
        Some("svg") => Format::Svg,
        Some("html" | "htm") => Format::Html,
        _ => bail!(
            "--out {}: give a file ending in .svg or .html",
            opts.out.display()
        ),
    };
    let mut collector = Collector::default();
    records(opts, |rec, unix_ns| {
        collector.add(rec, unix_ns, opts.filter.selects(rec));
    })?;
    let rows = collector.rows();
    let lives: usize = rows.iter().map(|r| r.lives.len()).sum();
    let picture = svg::render(&rows, opts.since_ns, opts.until_ns);
    let text = match format {
        Format::Svg => picture,
        Format::Html => html(&picture, opts, rows.len(), lives),
    };
    std::fs::write(&opts.out, text).with_context(|| format!("writing {}", opts.out.display()))?;
    eprintln!(
        "zonemon: timeline: {lives} lives of {} zone names, {} to {}, in {}",
        rows.len(),
        svg::local(opts.since_ns),
        svg::local(opts.until_ns),
        opts.out.display()
    );
    Ok(())
}

/// Calls `f` with each record dated in `[since, until)` and its time, in `seq` order (each
/// host's, for the fleet): from the journal file, through the daemon's API when
/// `opts.socket` is given, or from the fleet's stream when `opts.from` names servers.
fn records(opts: &TimelineOptions, mut f: impl FnMut(&Map<String, Value>, i128)) -> Result<()> {
    let in_span = move |rec: &Map<String, Value>| {
        let at = rec
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339);
        at.filter(|&t| t >= opts.since_ns && t < opts.until_ns)
    };
    if opts.from.from.is_some() {
        let (tx, rx) = std::sync::mpsc::channel();
        consume::replay(&opts.from, opts.since_ns, move |rec| {
            let _ = tx.send(rec);
            Ok(())
        })?;
        for rec in rx.try_iter() {
            if let Some(t) = in_span(&rec) {
                f(&rec, t);
            }
        }
        return Ok(());
    }
    let Some(socket) = &opts.socket else {
        return each_record(&opts.journal, opts.since_ns, Some(opts.until_ns), |rec| {
            f(&rec.object, rec.unix_ns);
            Ok(())
        });
    };
    let daemon = Daemon::reach(socket)
        .map_err(|why| anyhow!("no daemon answers at {} ({why})", socket.display()))?;
    let target = format!(
        "/v1/events?since={}&until={}",
        rfc3339_nanos(opts.since_ns),
        rfc3339_nanos(opts.until_ns)
    );
    let end = daemon.stream(&target, |rec| {
        if let Some(t) = in_span(&rec) {
            f(&rec, t);
        }
        Ok(true)
    })?;
    match end {
        StreamEnd::Closed | StreamEnd::Stopped => Ok(()),
        StreamEnd::Signalled => bail!("interrupted"),
    }
}

/// A page around the picture, with a legend.
fn html(picture: &str, opts: &TimelineOptions, names: usize, lives: usize) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>zonemon timeline</title><style>body{{font-family:sans-serif;margin:1em}}\
         .legend span{{display:inline-block;margin-right:1.2em}}\
         .dot{{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.3em}}</style>\
         </head><body><h1>zonemon timeline</h1>\
         <p id=\"summary\">{lives} lives of {names} zone names, {} to {} (local time). \
         Hover over a bar or a mark for its detail.</p>\
         <p class=\"legend\"><span><i class=\"dot\" style=\"background:#5cb85c\"></i>exit 0</span>\
         <span><i class=\"dot\" style=\"background:#d9534f\"></i>non-zero exit</span>\
         <span><i class=\"dot\" style=\"background:#f0ad4e\"></i>killed by a signal</span>\
         <span><i class=\"dot\" style=\"background:#8e44ad\"></i>OOM-killed</span></p>\n{picture}</body></html>\n",
        svg::xml(&svg::local(opts.since_ns)),
        svg::xml(&svg::local(opts.until_ns)),
    )
}
