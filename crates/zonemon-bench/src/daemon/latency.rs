//! Detection latency to a client of the daemon's API, side by side with a
//! standalone `zonemon watch` watching the same zones at the same time, in
//! two phases of one run: first the benchmark itself reading `/v1/events`
//! from the socket (an API client, the judged figure), then `zonemon watch`
//! reading the socket (the CLI, a client process that relays the stream to a
//! pipe: one more wakeup on the path).

use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::journal::Journal;
use super::service::Service;
use super::stream::ApiStream;
use crate::context::Ctx;
use crate::latency::latencies;
use crate::monitor::{Kind, Monitor, Seen};
use crate::procstat::usage;
use crate::stats::{fmt_dist, fmt_ns, percentile};
use crate::table::{Report, Verdict};
use crate::zones::run_unshare_zone;

/// Who reads the daemon's events in a phase.
enum Client {
    /// The benchmark on the socket.
    Api(ApiStream),
    /// `zonemon watch` on the socket, its stdout read by the benchmark.
    Watch(Monitor),
}

impl Client {
    fn wait_until(&self, timeout: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        match self {
            Client::Api(s) => s.wait_until(timeout, done),
            Client::Watch(m) => m.wait_until(timeout, done),
        }
    }

    fn stop(self) -> Result<Seen> {
        match self {
            Client::Api(s) => Ok(s.stop()),
            Client::Watch(m) => m.stop(),
        }
    }
}

/// Measures and adds the latency rows; the daemon journals into `dir`.
pub fn run(ctx: &Ctx, rep: &mut Report, dir: &Path) -> Result<()> {
    let daemon = Service::start(&ctx.zonemon, dir, &[], &[])?;
    let standalone = Monitor::start(&ctx.zonemon, &["--standalone".into()], &ctx.prefix, None)
        .map_err(|e| anyhow!("standalone watch: {e}"))?;
    let journal = Journal::open(&daemon.journal)?;
    for judged in [true, false] {
        let client = if judged {
            Client::Api(ApiStream::open(&daemon.socket, &ctx.prefix)?)
        } else {
            Client::Watch(daemon.client(&ctx.zonemon, &ctx.prefix)?)
        };
        // Give the client's stream a moment to be open (`zonemon watch` says it watches as it connects).
        thread::sleep(Duration::from_millis(500));
        let seq0 = journal.last_seq()?;
        let before = usage(daemon.pid())?;
        let n = ctx.plan.daemon_latency_zones;
        let prefix = ctx.tag(if judged { "daemon-api" } else { "daemon-watch" });
        for i in 0..n {
            let script = if i % 2 == 0 { "exit 0" } else { "sleep 0.01" };
            run_unshare_zone(&format!("{prefix}{i}"), script)?;
            // Idle gaps of 10-34 ms, so each transition meets a sleeping reader.
            thread::sleep(Duration::from_millis(10 + (i as u64 * 7) % 25));
        }
        let all_down = |s: &Seen| s.with(Kind::Down, &prefix).count() >= n;
        standalone.wait_until(Duration::from_secs(30), all_down);
        client.wait_until(Duration::from_secs(30), all_down);
        let cpu_ns = usage(daemon.pid())?.since(&before).exec_ns;
        let records = journal.last_seq()? - seq0;
        let seen = client.stop()?;
        let lat_a = standalone.with_seen(|s| latencies(s, &prefix));
        let lat_b = latencies(&seen, &prefix);
        let p99 = |l: &[f64]| percentile(l, 99.0).unwrap_or(f64::INFINITY);
        let ratio = p99(&lat_b) / p99(&lat_a);
        let missed = (2 * n).saturating_sub(lat_b.len());
        let measure = if judged {
            "Daemon: detection latency to a client of its API (the benchmark reading `/v1/events` from its socket"
        } else {
            "Daemon: detection latency through `zonemon watch` on its socket (a client process relaying the API's stream to a pipe, read by the benchmark"
        };
        rep.row(
            &format!(
                "{measure}; {} boots+shutdowns, one zone at a time)",
                lat_b.len()
            ),
            &format!(
                "{}{}",
                fmt_dist(&lat_b),
                if missed > 0 { format!(" ({missed} missed)") } else { String::new() }
            ),
            &format!(
                "standalone `watch`, the same zones at the same time: {}; p99 ratio {ratio:.2}×. \
                 The daemon's CPU meanwhile: {} per record ({records} records, each zone's a commit or two of its own, served to the client)",
                fmt_dist(&lat_a),
                fmt_ns(cpu_ns as f64 / records.max(1) as f64),
            ),
            if judged { "p99 ≤ 1.5× standalone" } else { "" },
            if judged {
                Verdict::of(ratio <= 1.5 && missed == 0)
            } else {
                Verdict::Info
            },
        );
    }
    standalone.stop()?;
    daemon.stop()?;
    Ok(())
}
