//! `zonemon top`: a live full-screen view of the zones — a table (sortable,
//! filtered as you type with `--filter`'s language), a log of events coloured
//! by kind, the transitions per second as a sparkline, and the records lost
//! and resynced — from any of three feeds (standalone, the local daemon, the
//! fleet), which only send it records.
//!
//! - `model`: what the records say (zones, ends, log, counters); pure.
//! - `rate`: the transitions/s counter; pure.
//! - `state`: the filter, sort and scroll chosen, and what each key does.
//! - `view`: drawing a model and a state.
//! - `feed`: the three feeds, each on a thread of its own.
//! - `terminal`: taking the terminal and always giving it back.
//!
//! The loop sleeps on one channel (records, keys, resizes, signals, the
//! feed's end) and redraws after what changed, at most [`FRAME`] apart; with
//! nothing arriving it wakes only when a shown uptime or the moving
//! sparkline would change, and never while no zone is shown and the
//! sparkline is flat.

mod args;
mod feed;
mod model;
mod rate;
mod state;
mod terminal;
mod view;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event};

pub use args::TopArgs;
use feed::{Feed, Msg};
use model::{Kind, Model};
use state::{Action, ViewState};
use terminal::{Screen, StderrCapture};
use view::Now;

/// The shortest time between two frames (about 30 a second).
pub const FRAME: Duration = Duration::from_millis(33);

/// Messages handled between two looks at the clock: a flood of records still lets keys through.
const BATCH: usize = 4096;

/// Runs the view until `q`, Ctrl-C, SIGINT, SIGTERM or SIGHUP (Ok), or until the feed fails (its error).
pub fn run(args: &TopArgs) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    let said = tx.clone();
    // Before the feed is chosen: what it says (no daemon answers…) goes to the log.
    let capture = StderrCapture::start(move |line| {
        let _ = said.send(Msg::Say(Kind::Notice, line));
    })?;
    let feed = Feed::choose(&args.via, &args.from);
    let mut state = ViewState::new(feed.describe(), &args.filter_text());
    let outcome = (|| {
        let mut screen = Screen::enter()?;
        spawn_signals(tx.clone())?;
        spawn_input(tx.clone())?;
        feed.spawn(tx).context("starting the feed")?;
        run_loop(&mut screen, &rx, &mut state)
    })();
    // The terminal is given back (Screen's drop) before stderr, so an error prints on the main screen.
    drop(capture);
    outcome
}

fn run_loop(screen: &mut Screen, rx: &Receiver<Msg>, state: &mut ViewState) -> Result<()> {
    let start = Instant::now();
    let mut model = Model::default();
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let due = last_draw.map_or(now, |t| t + FRAME);
        if dirty && now >= due {
            let at = Now {
                unix_ns: zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME) as i128,
                secs: start.elapsed().as_secs(),
            };
            screen
                .terminal
                .draw(|f| view::draw(f, &model, state, at))
                .context("drawing")?;
            dirty = false;
            last_draw = Some(now);
        }
        let wait = match dirty {
            true => Some(due.saturating_duration_since(Instant::now())),
            false => next_change(&model, state, start, screen.terminal.size()?.width),
        };
        let first = match wait {
            Some(t) => match rx.recv_timeout(t) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    dirty = true;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            },
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => return Ok(()),
            },
        };
        let mut next = Some(first);
        for _ in 0..BATCH {
            let Some(msg) = next.take() else { break };
            let secs = start.elapsed().as_secs();
            match msg {
                Msg::Record(rec) => model.take(rec, secs),
                Msg::Say(kind, text) => model.say(kind, &text),
                Msg::Live(source) => {
                    let watching = format!("watching ({source})");
                    model.say(Kind::Notice, &watching);
                    state.source = format!("{}, {watching}", state.source);
                }
                Msg::Input(Event::Key(key)) => {
                    if state.key(key) == Action::Quit {
                        return Ok(());
                    }
                }
                Msg::Input(_) => {} // a resize: the next frame takes the new size
                Msg::Stop => return Ok(()),
                Msg::Ended(Some(e)) => return Err(e),
                Msg::Ended(None) => model.say(Kind::Notice, "the feed ended; q quits"),
            }
            dirty = true;
            next = rx.try_recv().ok();
        }
    }
}

/// How long until something shown changes by itself (the uptime of a zone
/// the filter shows, the sparkline moving on); `None`: nothing will.
fn next_change(model: &Model, state: &ViewState, start: Instant, width: u16) -> Option<Duration> {
    let now_ns = zonemon_core::clock::clock_ns(libc::CLOCK_REALTIME) as i128;
    let uptime = model.next_uptime_change(&state.filter, now_ns);
    let elapsed = start.elapsed();
    let spark = model
        .rate
        .busy(elapsed.as_secs(), width as usize)
        .then(|| Duration::from_secs(elapsed.as_secs() + 1) - elapsed);
    match (uptime, spark) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// SIGINT, SIGTERM and SIGHUP become [`Msg::Stop`] (the terminal is given back, exit status 0).
fn spawn_signals(tx: Sender<Msg>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("top-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = tx.send(Msg::Stop);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Keys and resizes, read from the terminal on a thread of their own.
fn spawn_input(tx: Sender<Msg>) -> Result<()> {
    std::thread::Builder::new()
        .name("top-input".into())
        .spawn(move || loop {
            match event::read() {
                Ok(ev) => {
                    if tx.send(Msg::Input(ev)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Msg::Ended(Some(
                        anyhow::Error::from(e).context("reading the terminal"),
                    )));
                    return;
                }
            }
        })
        .context("starting the input thread")?;
    Ok(())
}
