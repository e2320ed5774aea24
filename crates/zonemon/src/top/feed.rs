//! Where `zonemon top`'s records come from: one view, three feeds. Each feed
//! runs on a thread of its own and sends the records — the JSON objects of
//! `watch --json` — to the view's channel, whatever made them:
//!
//! - standalone: watch's own event loop ([`crate::watch::run_with`]) with a
//!   sink that sends each record instead of printing it (root, BPF);
//! - the local daemon: its `/v1/events` stream, as `watch` follows it
//!   ([`crate::api::follow`]; no root, only the socket's group);
//! - the fleet (`--from nats://…`): every host's records from NATS, as
//!   `watch --from` reads them ([`crate::fleet::consume::follow`]), after
//!   the zones running now from the fleet's bucket.

use std::io;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::Result;
use ratatui::crossterm::event::Event;
use serde_json::{Map, Value};
use zonemon_core::output::{lost_json, to_json, Sink, WallClock};
use zonemon_core::ZoneEvent;

use super::model::Kind;
use crate::api::{self, Daemon, ViaDaemon};
use crate::fleet::{consume, FromArgs};
use crate::pipeline::Pipeline;
use crate::sources::SourceKind;
use crate::wallclock::ClockFollower;
use crate::watch::{self, Lifecycle, Priority, WatchOptions};

/// What reaches the view's loop.
pub enum Msg {
    /// A record of the feed.
    Record(Map<String, Value>),
    /// A line for the event log (the feed's stderr, a state change).
    Say(Kind, String),
    /// The standalone feed is live, watching from this source: shown in the
    /// header for as long as it runs (and said in the log).
    Live(String),
    /// A key, a resize: from the terminal.
    Input(Event),
    /// SIGINT, SIGTERM or SIGHUP: leave.
    Stop,
    /// The feed ended (with its error, if it failed).
    Ended(Option<anyhow::Error>),
}

/// A feed chosen, not yet started.
pub enum Feed {
    /// Attach to the kernel here.
    Standalone(WatchOptions),
    /// Follow the local daemon.
    Daemon(Daemon),
    /// Follow the fleet.
    Fleet(FromArgs),
}

impl Feed {
    /// The fleet when `from` names servers, else the daemon when one answers on
    /// `via`'s socket (and `--standalone` was not given), else standalone.
    pub fn choose(via: &ViaDaemon, from: &FromArgs) -> Feed {
        if from.from.is_some() {
            return Feed::Fleet(from.clone());
        }
        match api::choose(via, "watching") {
            Some(d) => Feed::Daemon(d),
            None => Feed::Standalone(WatchOptions {
                json: true,
                all: true,
                timestamps: false,
                initial: true,
                stats: false,
                priority: Priority::High,
                ring_bytes: crate::sources::DEFAULT_RING_BYTES,
                source: SourceKind::Auto,
                interval: Duration::from_secs(1),
                metrics: None,
                filter: Default::default(),
            }),
        }
    }

    /// What the status line says the records come from.
    pub fn describe(&self) -> String {
        match self {
            Feed::Standalone(_) => "standalone".to_string(),
            Feed::Daemon(d) => format!("daemon {}", d.socket().display()),
            Feed::Fleet(f) => format!("fleet {}", f.from.as_deref().unwrap_or("")),
        }
    }

    /// Runs the feed on a thread of its own, sending to `tx` until it ends or
    /// the view is gone; its end (and error) is the last message.
    pub fn spawn(self, tx: Sender<Msg>) -> io::Result<()> {
        std::thread::Builder::new()
            .name("top-feed".into())
            .spawn(move || {
                let end = match self {
                    Feed::Standalone(opts) => standalone(&opts, tx.clone()),
                    Feed::Daemon(d) => {
                        api::follow(&d, "initial=true".into(), |rec| send(&tx, Msg::Record(rec)))
                    }
                    Feed::Fleet(from) => fleet(&from, tx.clone()),
                };
                let _ = tx.send(Msg::Ended(end.err()));
            })
            .map(drop)
    }
}

/// How far back the fleet's stream is read after its running zones are listed: what
/// changed while (or a little before) the bucket was read comes again, so no zone gone
/// meanwhile stays listed.
const FLEET_OVERLAP_NS: i128 = 10_000_000_000;

/// The fleet's running zones (the bucket), as `running` records with their host, then
/// every record from a little before the bucket was read on.
fn fleet(from: &FromArgs, tx: Sender<Msg>) -> Result<()> {
    let listed = zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME) as i128;
    for (host, mut rec) in consume::running(from)? {
        rec.insert("host".into(), host.into());
        rec.insert("event".into(), "running".into());
        rec.insert("initial".into(), true.into());
        send(&tx, Msg::Record(rec))?;
    }
    consume::follow(from, Some(listed - FLEET_OVERLAP_NS), move |rec| {
        send(&tx, Msg::Record(rec))
    })
}

/// Sends `msg`; a view that is gone stops the feed as a closed stdout stops `watch`.
fn send(tx: &Sender<Msg>, msg: Msg) -> Result<()> {
    tx.send(msg)
        .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe).into())
}

/// Watch's event loop, its records sent to the view.
fn standalone(opts: &WatchOptions, tx: Sender<Msg>) -> Result<()> {
    let clock_follower = ClockFollower::new()?;
    let sink = ChannelSink {
        tx: tx.clone(),
        clock: clock_follower.clock(),
    };
    let outcome = watch::run_with(
        opts,
        Box::new(sink),
        &mut TopLife { tx },
        clock_follower,
        None,
    );
    match outcome {
        Err(e) if watch::is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Records as objects, sent to the view.
struct ChannelSink {
    tx: Sender<Msg>,
    clock: WallClock,
}

impl ChannelSink {
    fn send(&self, rec: Map<String, Value>) -> io::Result<()> {
        self.tx
            .send(Msg::Record(rec))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Sink for ChannelSink {
    fn write_event(&mut self, ev: &ZoneEvent) -> io::Result<()> {
        self.send(to_json(ev, &self.clock))
    }

    fn write_lost(&mut self, count: Option<u64>, ts_ns: u64) -> io::Result<()> {
        self.send(lost_json(count, ts_ns, &self.clock))
    }
}

/// The standalone feed's moments: the zones running at start first, then a line once live.
struct TopLife {
    tx: Sender<Msg>,
}

impl Lifecycle for TopLife {
    fn live(&mut self, pipeline: &mut Pipeline, source: &str) -> Result<()> {
        pipeline.write_initial()?;
        send(&self.tx, Msg::Live(source.to_string()))
    }

    fn stops_with_stdout(&self) -> bool {
        false
    }
}
