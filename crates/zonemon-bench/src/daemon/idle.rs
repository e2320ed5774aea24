//! The daemon idle: its wakeups per thread over a quiet window while an API
//! client follows it, without and with the systemd watchdog (`WATCHDOG_USEC`,
//! a ping every half interval). Every wakeup must be the watchdog's.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::journal::Journal;
use super::service::Service;
use crate::context::Ctx;
use crate::procstat::{thread_usage, threads_since, MAIN_THREAD};
use crate::table::{Report, Verdict};

/// The watchdog interval given: a ping (a wakeup of the event loop) every second.
const WATCHDOG_USEC: u64 = 2_000_000;

/// The thread that pings the watchdog.
const EVENT_LOOP: &str = MAIN_THREAD;

/// One quiet window.
struct Window {
    /// Wakeups (voluntary + involuntary context switches) per thread name.
    wakeups: BTreeMap<String, u64>,
    /// Records journaled meanwhile (other users' zones wake the daemon too).
    records: u64,
    secs: f64,
}

impl Window {
    fn per_sec(&self, thread: &str) -> f64 {
        self.wakeups.get(thread).copied().unwrap_or(0) as f64 / self.secs
    }

    /// "event loop 1.0/s, zonemon-api 0/s, …".
    fn describe(&self) -> String {
        self.wakeups
            .keys()
            .map(|t| format!("{t} {}/s", fmt_rate(self.per_sec(t))))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether every thread slept through the window, but the event loop's
    /// `expected` watchdog wakeups (one more or less: the window's edges).
    fn quiet(&self, expected: f64) -> bool {
        self.wakeups.iter().all(|(t, &n)| {
            let allowed = if t == EVENT_LOOP { expected } else { 0.0 };
            (n as f64 - allowed).abs() <= 1.0
        })
    }
}

fn fmt_rate(r: f64) -> String {
    if r == 0.0 {
        "0".into()
    } else {
        format!("{r:.1}")
    }
}

/// Measures and adds the idle row; the daemons journal into `dir`.
pub fn run(ctx: &Ctx, rep: &mut Report, dir: &Path) -> Result<()> {
    let plain = quietest(ctx, &dir.join("plain"), &[])?;
    let usec = WATCHDOG_USEC.to_string();
    let dog = quietest(ctx, &dir.join("watchdog"), &[("WATCHDOG_USEC", &usec)])?;
    let period = Duration::from_micros(WATCHDOG_USEC / 2).as_secs_f64();
    let pass = plain.quiet(0.0) && dog.quiet(dog.secs / period);
    let noisy = plain.records + dog.records > 0;
    rep.row(
        &format!(
            "Daemon idle over {:.0} s, an API client following: wakeups per thread",
            plain.secs
        ),
        &format!(
            "no watchdog: {}; WATCHDOG_USEC={} s: {}",
            plain.describe(),
            WATCHDOG_USEC / 1_000_000,
            dog.describe()
        ),
        &format!(
            "the watchdog's pings: {}/s on the event loop ({} and {} records of other users' zones journaled in these windows)",
            fmt_rate(1.0 / period),
            plain.records,
            dog.records
        ),
        "no periodic wakeups besides the watchdog's",
        match (pass, noisy) {
            (true, _) => Verdict::Pass,
            (false, true) => Verdict::Noisy,
            (false, false) => Verdict::Miss,
        },
    );
    Ok(())
}

/// A daemon with `env`, followed by a client; the quietest of a few windows.
fn quietest(ctx: &Ctx, dir: &Path, env: &[(&str, &str)]) -> Result<Window> {
    let daemon = Service::start(&ctx.zonemon, dir, env, &[])?;
    let client = daemon.client(&ctx.zonemon, &ctx.prefix)?;
    // Let the start-up records be committed, the client's stream open, and the
    // one check of the zones found at start-up (a second after) pass.
    thread::sleep(Duration::from_secs(2));
    let journal = Journal::open(&daemon.journal)?;
    let mut best: Option<Window> = None;
    for _ in 0..if ctx.plan.smoke { 2 } else { 3 } {
        let seq0 = journal.last_seq()?;
        let before = thread_usage(daemon.pid())?;
        let t0 = Instant::now();
        thread::sleep(ctx.plan.daemon_idle);
        let after = thread_usage(daemon.pid())?;
        let w = Window {
            secs: t0.elapsed().as_secs_f64(),
            records: journal.last_seq()? - seq0,
            wakeups: threads_since(&after, &before)
                .into_iter()
                .map(|(t, d)| (t, d.voluntary + d.involuntary))
                .collect(),
        };
        let quieter = best.as_ref().is_none_or(|b| w.records < b.records);
        if quieter {
            best = Some(w);
        }
        if best.as_ref().is_some_and(|b| b.records == 0) || crate::guard::closing() {
            break;
        }
    }
    drop(journal);
    client.stop()?;
    daemon.stop()?;
    Ok(best.expect("at least one window"))
}
