//! `zonemon daemon`: watch's event loop and pipeline, with every record going
//! to the journal instead of stdout; made for systemd (`Type=notify`).
//!
//! Start-up, in order: lock and open the journal (refusing an unsound one),
//! attach the source, seed the zones running now from /proc, then put the
//! daemon's own absence on the record — a `monitor-start` record with the gap
//! since the journal's last record, `shutdown`/`down` (flagged `resynced`)
//! for the zones the journal had running that /proc no longer has, and
//! `ready`/`booted` (flagged `resynced`) for zones running now that the
//! journal did not know — then the records of the start-up window, then
//! `READY=1`. Zones the journal knew and that still run keep their zone ids;
//! new zones get ids above every id the journal ever held.
//!
//! Zones that came and went entirely while no daemon ran cannot be known.

use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{mpsc, Arc};

use anyhow::{anyhow, Context, Result};
use serde_json::{Map, Value};
use zonemon_core::clock::boot_time_ns;
use zonemon_core::output::WallClock;
use zonemon_core::timefmt::rfc3339_nanos;
use zonemon_core::tracker::SEED_START_TOLERANCE_NS;
use zonemon_core::{EventKind, PidNs};

use crate::api::{self, ApiConfig};
use crate::fleet::{PublishOptions, Publisher};
use crate::hooks::{HookRunner, HookSet, HookSpec, Limits, Reload, Reloader};
use crate::journal::feed::{Feed, JournalSink, SharedFeed, QUEUE_RECORDS};
use crate::journal::retention::Retention;
use crate::journal::store::{self as journal_store, JournalStore, Opened, Shared};
use crate::journal::writer::{self, Writer};
use crate::journal::{schema, WriterLock};
use crate::metrics::{self, Metrics};
use crate::pipeline::Pipeline;
use crate::store::StoredRecord;
use crate::systemd::{self, Watchdog};
use crate::wallclock::ClockFollower;
use crate::watch::{self, Lifecycle, Priority, WatchOptions};

/// How `zonemon daemon` runs (built from the command line by `cli`).
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The source, ring size and priority, as for `watch` (its output options are unused).
    pub watch: WatchOptions,
    /// The journal's file.
    pub journal: PathBuf,
    /// The local API's socket.
    pub socket: PathBuf,
    /// How much of the journal to keep.
    pub retention: Retention,
    /// The hooks, as configured.
    pub hooks: Vec<HookSpec>,
    /// How many hook runs go at once and wait.
    pub hook_limits: Limits,
    /// What SIGHUP re-reads.
    pub reload: Reload,
    /// Where to publish the journal (the fleet), if anywhere.
    pub publish: Option<PublishOptions>,
}

/// Runs the daemon until SIGINT/SIGTERM; then flushes the journal and returns.
pub fn run(opts: &DaemonOptions) -> Result<()> {
    let hook_set = HookSet::new(opts.hooks.clone())?;
    let lock = WriterLock::take(&opts.journal)?;
    let conn = schema::open_writer(&opts.journal)?;
    let opened = journal_store::opened(&conn)?;
    let shared = Shared::new(&opened);
    // A bad or busy --metrics address is an error before anything is attached.
    let metrics = metrics::start(opts.watch.metrics)?;
    eprintln!("zonemon: daemon: hooks: {}", hook_set.names());
    // The hooks' threads (and the programs they run) and the metrics' keep the default priority.
    let runner = Arc::new(HookRunner::start(
        hook_set,
        opts.hook_limits,
        metrics.clone(),
    )?);
    let reloader = Reloader::start(opts.reload.clone(), Arc::clone(&runner))?;
    // Every thread on the way from the kernel to a client (the API's, the
    // journal's writer) competes for a CPU as the event loop does: set before they start,
    // without realtime (the start-up's /proc scan comes first; realtime is per thread below).
    opts.watch.priority.without_realtime().apply();
    let watch_opts = WatchOptions {
        priority: Priority::Normal, // applied already; the event loop's own once live
        ..opts.watch.clone()
    };
    let clock_follower = ClockFollower::new()?;
    let clock = clock_follower.clock();
    // What the local API serves from: it reads the journal, kept current by the writer.
    let store = JournalStore::new(&opts.journal, Arc::clone(&shared));
    let mut writer = Writer::new(
        conn,
        opts.journal.clone(),
        clock.clone(),
        opened.marks,
        opts.retention,
        shared,
    )?;
    let hooks = Arc::clone(&runner);
    writer.also_to(Box::new(move |batch| hooks.offer(batch)));
    if let Some(m) = &metrics {
        writer.also_to(journal_gauges(m.clone(), opts.journal.clone()));
    }
    // The writer runs on the API's thread: a client following the journal is
    // served right after the commit of its records, by the thread that made it.
    let (queue, records) = writer::queue(QUEUE_RECORDS);
    let (writer_done, unjournaled) = mpsc::channel();
    let api = api::serve(
        store.clone(),
        ApiConfig {
            priority: journal_priority(opts.watch.priority),
            ..ApiConfig::new(&opts.socket)
        },
        Some(Box::new(move || {
            Box::pin(async move {
                let _ = writer_done.send(writer.run(records).await);
            })
        })),
    )?;
    // Made at once, so that on every way out of here the queue's sender (the
    // feed) is dropped before the API, whose stop waits for the writer to end.
    let feed = Feed::new(queue, clock.clone());
    // Credentials refused, no JetStream or a stream set up otherwise stop the daemon here;
    // servers that cannot be reached do not (it publishes when they can be).
    let publisher = match &opts.publish {
        Some(p) => Some(Publisher::start(
            p.clone(),
            &opts.journal,
            Arc::clone(&store),
            metrics.clone(),
        )?),
        None => None,
    };
    let outcome = (|| {
        let mut life = DaemonLifecycle {
            feed: Rc::clone(&feed),
            clock,
            journal: opts.journal.clone(),
            opened,
            watchdog: Watchdog::from_env()?,
            loop_priority: event_loop_priority(opts.watch.priority),
        };
        let sink = Box::new(JournalSink(Rc::clone(&feed)));
        watch::run_with(&watch_opts, sink, &mut life, clock_follower, metrics)
    })();
    systemd::stopping();
    drop(feed); // the last sender: the writer commits what is queued and ends
    if let Err(e) = api.stop() {
        eprintln!("zonemon: daemon: warning: stopping the local API: {e:#}");
    }
    let unjournaled = unjournaled
        .try_recv()
        .map_err(|_| anyhow!("the journal writer did not finish"))?;
    if let Some(p) = publisher {
        p.stop();
    }
    drop(lock);
    reloader.stop();
    match Arc::try_unwrap(runner) {
        Ok(runner) => runner.stop(),
        Err(_) => eprintln!("zonemon: daemon: warning: the hooks are still in use at exit"),
    }
    eprintln!(
        "zonemon: daemon: stopped; journal {} flushed{}",
        opts.journal.display(),
        if unjournaled > 0 {
            format!(" ({unjournaled} record(s) could not be written)")
        } else {
            String::new()
        }
    );
    outcome
}

/// The priority of the thread that commits records and serves them to the
/// API's clients, given the daemon's `--priority`: realtime unless `normal`.
///
/// It runs in short bursts (a commit, then the clients' writes) and sleeps in
/// between, well inside the realtime budget; at nice -10 beside an event loop
/// that is still busy with the same zone, it waited for a CPU for up to a
/// millisecond (the latency benchmark's tail). A thread that does run over the
/// budget (a long replay to a fast client) is moved to nice -10 until it next sleeps.
fn journal_priority(daemon: Priority) -> Priority {
    match daemon {
        Priority::Normal => Priority::Normal,
        Priority::High | Priority::Realtime | Priority::RealtimeFirst => Priority::Realtime,
    }
}

/// The priority of the event loop (the kernel's records to the journal's
/// queue), given the daemon's `--priority`: realtime above the API's thread
/// unless `normal`.
///
/// Below the API thread (or beside it at nice -10), the event loop was
/// preempted by it whenever it handed over a record: a zone's `booted` then
/// waited for the commit of its `ready`, and for the event loop to get a CPU
/// back (the benchmark's API latency, p99 1.46–1.62 ms against 0.93–1.07 ms
/// above it, alternating runs of 2026-12-04; README, *Latency to an API client*).
fn event_loop_priority(daemon: Priority) -> Priority {
    match daemon {
        Priority::Normal => Priority::Normal,
        Priority::High | Priority::Realtime | Priority::RealtimeFirst => Priority::RealtimeFirst,
    }
}

/// Keeps the journal's last `seq` gauge current, and has its size measured
/// when the metrics are scraped.
fn journal_gauges(m: Metrics, path: PathBuf) -> crate::journal::writer::Subscriber {
    m.journal_bytes.measure(path);
    Box::new(move |batch| {
        if let Some(last) = batch.last() {
            m.journal_seq.set(last.seq as i64);
        }
    })
}

/// The daemon's moments in watch's event loop.
struct DaemonLifecycle {
    feed: SharedFeed,
    clock: WallClock,
    journal: PathBuf,
    /// What the journal held at start-up.
    opened: Opened,
    watchdog: Option<Watchdog>,
    /// What the event loop's thread becomes once live ([`event_loop_priority`]).
    loop_priority: Priority,
}

impl Lifecycle for DaemonLifecycle {
    fn first_zone_id(&self) -> u64 {
        self.opened.marks.max_zone_id + 1
    }

    /// Puts the daemon's absence on the record, before the start-up window's records.
    fn seeded(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        let now = boot_time_ns();
        let unix_now = self.clock.unix_ns(now);
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .context("reading this boot's id")?
            .trim()
            .to_string();
        let tracker = pipeline.tracker();
        let states: HashMap<u64, EventKind> = tracker
            .running()
            .into_iter()
            .map(|e| (e.zone_id, e.kind))
            .collect();
        // Every seeded zone, marked reported: a fork of one seen in the start-up
        // window takes it over quietly instead of reporting it a second time.
        let found = tracker.initial();

        // Zone inits are (PID, PID namespace) pairs within one boot of the host.
        let same_boot = self.opened.boot_id.as_deref() == Some(&boot_id);
        let mut known: HashMap<(u64, u64), &StoredRecord> = HashMap::new();
        if same_boot {
            for rec in &self.opened.live {
                if let Some(key) = init_key(&rec.object) {
                    known.insert(key, rec); // by zone id: the newest zone of a reused pair last
                }
            }
        }
        let mut feed = self.feed.borrow_mut();
        let mut matched = HashSet::new();
        let mut fresh = Vec::new();
        let mut upgraded = Vec::new();
        for ev in found {
            let key = (u64::from(ev.init_pid), u64::from(ev.pidns));
            // PIDs and namespace inodes are both reused: an init created after
            // the journal's last record of a zone is another zone's, and so is
            // one in another namespace that got the same inode (told by the id).
            let created = self.clock.unix_ns(ev.ts_ns);
            let ns = PidNs {
                inode: ev.pidns,
                id: ev.pidns_id,
            };
            let same = known.get(&key).is_some_and(|rec| {
                created <= rec.unix_ns + i128::from(SEED_START_TOLERANCE_NS)
                    && recorded_pidns(&rec.object).same_as(ns)
            });
            match same.then(|| known.remove(&key)).flatten() {
                Some(rec) => {
                    matched.insert(rec.seq);
                    let journal_id = rec.object["zone_id"].as_u64().unwrap_or(ev.zone_id);
                    feed.adopt(ev.zone_id, journal_id);
                    let was_ready =
                        rec.object.get("event").and_then(Value::as_str) == Some("ready");
                    if was_ready && states.get(&ev.zone_id) == Some(&EventKind::Running) {
                        upgraded.push(ev);
                    }
                }
                None => fresh.push(ev),
            }
        }
        // The journal's zones not running now, by zone id (the order of `live`).
        let gone = self
            .opened
            .live
            .iter()
            .filter(|r| !matched.contains(&r.seq));

        let start = self.monitor_start(unix_now, &boot_id, states.len());
        feed.object(start, unix_now);
        for rec in gone {
            for object in vanished(&rec.object, unix_now) {
                feed.object(object, unix_now);
            }
        }
        for mut ev in upgraded {
            ev.kind = EventKind::Booted;
            ev.ts_ns = now;
            ev.initial = false;
            ev.resynced = true;
            feed.event(&ev);
        }
        for mut ev in fresh {
            ev.initial = false;
            ev.resynced = true;
            ev.kind = EventKind::Ready;
            feed.event(&ev);
            if states.get(&ev.zone_id) == Some(&EventKind::Running) {
                ev.kind = EventKind::Booted;
                ev.ts_ns = now;
                feed.event(&ev);
            }
        }
        Ok(())
    }

    fn live(&mut self, _pipeline: &mut Pipeline, source: &str) -> Result<()> {
        let status = format!(
            "journaling zone transitions ({source}) to {}",
            self.journal.display()
        );
        eprintln!("zonemon: daemon: {status}; SIGTERM stops");
        systemd::ready(&status);
        // Realtime only now: the start-up's /proc scan, long on a host with
        // thousands of zones, would run over the realtime budget.
        self.loop_priority.apply();
        Ok(())
    }

    fn stops_with_stdout(&self) -> bool {
        false
    }

    fn wake_fd(&self) -> Option<RawFd> {
        self.watchdog.as_ref().map(Watchdog::fd)
    }

    fn woke(&mut self) -> Result<()> {
        if let Some(w) = &self.watchdog {
            w.ping();
        }
        Ok(())
    }
}

impl DaemonLifecycle {
    /// The `monitor-start` record at `unix_now`, with the gap since the journal's last record.
    fn monitor_start(
        &self,
        unix_now: i128,
        boot_id: &str,
        zones_running: usize,
    ) -> Map<String, Value> {
        let previous_seq = self.opened.marks.next_seq - 1;
        let gap_ns = self
            .opened
            .marks
            .last_unix_ns
            .map(|t| i64::try_from((unix_now - i128::from(t)).max(0)).unwrap_or(i64::MAX));
        let rebooted = self.opened.boot_id.as_ref().map(|b| b != boot_id);
        let mut start = Map::new();
        start.insert("time".into(), rfc3339_nanos(unix_now).into());
        start.insert("event".into(), "monitor-start".into());
        start.insert(
            "previous_seq".into(),
            (previous_seq > 0).then_some(previous_seq).into(),
        );
        start.insert("gap_ns".into(), gap_ns.into());
        start.insert("boot_id".into(), boot_id.into());
        start.insert("host_rebooted".into(), rebooted.into());
        start.insert("zones_running".into(), zones_running.into());
        start.insert("pid".into(), std::process::id().into());
        start.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        start
    }
}

/// A zone's init as the journal recorded it: (host PID, PID namespace inode).
fn init_key(object: &Map<String, Value>) -> Option<(u64, u64)> {
    Some((
        object.get("init_pid")?.as_u64()?,
        object.get("pidns")?.as_u64()?,
    ))
}

/// A zone's PID namespace as the journal recorded it (`pidns_id` 0 when the
/// record has none: older kernels, older zonemon).
fn recorded_pidns(object: &Map<String, Value>) -> PidNs {
    let num = |k: &str| object.get(k).and_then(Value::as_u64).unwrap_or(0);
    PidNs {
        inode: u32::try_from(num("pidns")).unwrap_or(0),
        id: num("pidns_id"),
    }
}

/// Keys of a zone's record that belong to one transition, not to the zone.
const TRANSITION_KEYS: &[&str] = &[
    "seq",
    "time",
    "event",
    "exit_code",
    "exit_signal",
    "core_dumped",
    "uptime_ns",
    "shutdown_ns",
    "reboot_of",
    "reboot_gap_ns",
    "initial",
    "resynced",
];

/// The records of a zone the journal had not seen go down (its newest record
/// is `last`) and that /proc no longer has at `unix_now`: its `shutdown`
/// (unless recorded already) and its `down`, flagged `resynced`, exit unknown.
fn vanished(last: &Map<String, Value>, unix_now: i128) -> Vec<Map<String, Value>> {
    let record = |event: &str, extra: &[(&str, Value)]| {
        let mut m = Map::new();
        m.insert("time".into(), rfc3339_nanos(unix_now).into());
        m.insert("event".into(), event.into());
        for (k, v) in last {
            if !TRANSITION_KEYS.contains(&k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in extra {
            m.insert((*k).into(), v.clone());
        }
        m.insert("resynced".into(), true.into());
        m
    };
    let mut out = Vec::new();
    if last.get("event").and_then(Value::as_str) != Some("shutdown") {
        out.push(record(
            "shutdown",
            &[("exit_code", Value::Null), ("uptime_ns", Value::Null)],
        ));
    }
    out.push(record("down", &[("shutdown_ns", Value::Null)]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_journal_thread_and_the_event_loop_are_realtime_unless_the_daemon_is_normal() {
        assert_eq!(journal_priority(Priority::Normal), Priority::Normal);
        assert_eq!(journal_priority(Priority::High), Priority::Realtime);
        assert_eq!(journal_priority(Priority::Realtime), Priority::Realtime);
        assert_eq!(event_loop_priority(Priority::Normal), Priority::Normal);
        for p in [Priority::High, Priority::Realtime] {
            assert_eq!(event_loop_priority(p), Priority::RealtimeFirst);
        }
    }

    #[test]
    fn a_vanished_zone_shuts_down_and_goes_down_resynced() {
        let Value::Object(booted) = json!({"seq": 4, "time": "2026-12-02T04:00:00.000000000Z",
            "event": "booted", "name": "aap", "zone_id": 3, "init_pid": 10, "pidns": 99,
            "reboot_of": 1, "reboot_gap_ns": 5})
        else {
            unreachable!()
        };
        let out = vanished(&booted, 1_000_000_000);
        assert_eq!(out.len(), 2);
        assert_eq!(
            Value::Object(out[0].clone()),
            json!({"time": "1970-01-01T00:00:01.000000000Z", "event": "shutdown", "name": "aap",
                   "zone_id": 3, "init_pid": 10, "pidns": 99, "exit_code": null,
                   "uptime_ns": null, "resynced": true})
        );
        assert_eq!(out[1]["event"], "down");
        assert_eq!(out[1]["shutdown_ns"], Value::Null);
        assert!(out[1].get("seq").is_none() && out[1].get("reboot_of").is_none());
        let mut shut = booted.clone();
        shut.insert("event".into(), "shutdown".into());
        let out = vanished(&shut, 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["event"], "down");
        assert_eq!(init_key(&booted), Some((10, 99)));
    }

    #[test]
    fn a_recorded_namespace_is_told_by_its_id_when_the_record_has_one() {
        let ns = |inode, id| PidNs { inode, id };
        let Value::Object(old) = json!({"init_pid": 10, "pidns": 99}) else {
            unreachable!()
        };
        assert_eq!(
            recorded_pidns(&old),
            ns(99, 0),
            "written before ids: the inode decides"
        );
        assert!(recorded_pidns(&old).same_as(ns(99, 7)));
        let Value::Object(new) = json!({"init_pid": 10, "pidns": 99, "pidns_id": 7}) else {
            unreachable!()
        };
        assert!(recorded_pidns(&new).same_as(ns(99, 7)));
        assert!(
            !recorded_pidns(&new).same_as(ns(99, 8)),
            "another namespace that got the inode"
        );
    }
}
