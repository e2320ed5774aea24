//! Hooks: programs the daemon runs on the records it journals (issue #10).
//!
//! A hook is an argv (never a shell command line), a filter (the same
//! `KEY=VALUE` language as `watch --filter`), a user and a timeout. Each
//! record that passes a hook's filter is given to one run of it: the record
//! as one JSON line on stdin, its fields as `ZONEMON_*` variables.
//!
//! The journal writer offers every committed record ([`HookRunner::offer`])
//! and never waits: runs go to a bounded queue ([`schedule`]), a fixed pool
//! of threads runs them (at most `concurrency` at once), and what does not
//! fit is counted and logged. Runs of one hook for one zone happen one at a
//! time, in the order of the records; a slow hook delays only its own later
//! runs for that zone. Failures, timeouts and drops are counted per hook (the
//! metrics) and logged with their exit status.

mod env;
mod reload;
mod schedule;
mod spawn;
mod user;

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Deserializer};
use zonemon_core::escape::escape_text;
use zonemon_core::filter::Filter;

use crate::metrics::Metrics;
use crate::store::StoredRecord;
use crate::units;
pub use reload::{Reload, Reloader};
use schedule::Schedule;
pub use spawn::Outcome;
pub use user::Account;

/// Runs at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Runs waiting by default, beyond which new ones are dropped (and counted).
pub const DEFAULT_QUEUE: usize = 1024;
/// How long a run may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One hook as configured (a `[[hook]]` table of the config file, or `--hook`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    /// What logs and metrics call it (default: its program's file name).
    pub name: Option<String>,
    /// The argv: an absolute program path, then its arguments, exactly as given.
    #[serde(deserialize_with = "program")]
    pub run: Vec<String>,
    /// Which records it runs on (default: all).
    #[serde(default, deserialize_with = "filter")]
    pub filter: Filter,
    /// Whom it runs as (default: the daemon's user).
    #[serde(default, deserialize_with = "account")]
    pub user: Option<Account>,
    /// After this long it is killed, with its process group (default 30s).
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn program<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    let argv = Vec::<String>::deserialize(d)?;
    let Some(prog) = argv.first() else {
        return Err(D::Error::custom(
            "`run` is empty: give the program's absolute path, then its arguments",
        ));
    };
    if !Path::new(prog).is_absolute() {
        return Err(D::Error::custom(format!(
            "the program `{}` is not an absolute path (hooks get no shell and no search of PATH)",
            prog.escape_debug()
        )));
    }
    Ok(argv)
}

fn filter<'de, D: Deserializer<'de>>(d: D) -> Result<Filter, D::Error> {
    let specs = Vec::<String>::deserialize(d)?;
    Filter::parse(specs.iter().map(String::as_str)).map_err(serde::de::Error::custom)
}

fn account<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Account>, D::Error> {
    let name = String::deserialize(d)?;
    Account::lookup(&name)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{e:#}")))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    units::parse_duration(&text).map_err(serde::de::Error::custom)
}

impl HookSpec {
    /// The hook's name: as configured, else its program's file name.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            Path::new(&self.run[0])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.run[0].clone())
        })
    }
}

/// A hook ready to run.
#[derive(Debug)]
struct Hook {
    name: Arc<str>,
    spec: HookSpec,
}

/// The hooks in force; replaced whole on a reload.
#[derive(Debug, Default)]
pub struct HookSet(Vec<Arc<Hook>>);

impl HookSet {
    /// The set of `specs`; refuses two hooks of one name and a program that is not executable.
    pub fn new(specs: Vec<HookSpec>) -> Result<HookSet> {
        let mut hooks: Vec<Arc<Hook>> = Vec::new();
        for spec in specs {
            let name = spec.name();
            if hooks.iter().any(|h| *h.name == *name) {
                bail!(
                    "two hooks are called `{}`: give each a distinct `name`",
                    name.escape_debug()
                );
            }
            let prog = Path::new(&spec.run[0]);
            let meta = std::fs::metadata(prog)
                .with_context(|| format!("hook `{}`: its program {}", name, prog.display()))?;
            use std::os::unix::fs::PermissionsExt;
            if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                bail!(
                    "hook `{}`: its program {} is not an executable file",
                    name,
                    prog.display()
                );
            }
            hooks.push(Arc::new(Hook {
                name: name.into(),
                spec,
            }));
        }
        Ok(HookSet(hooks))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The hooks' names, for logs (`none` when there are none).
    pub fn names(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0
            .iter()
            .map(|h| &*h.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How many runs go at once and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Runs at once (at least 1).
    pub concurrency: usize,
    /// Runs waiting, beyond which new ones are dropped.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: DEFAULT_CONCURRENCY,
            queue: DEFAULT_QUEUE,
        }
    }
}

/// Runs of one hook for one zone are ordered by this key (a record of no zone: by the hook alone).
type Key = (Arc<str>, Option<u64>);

/// A record's `ZONEMON_*` variables, shared by the runs of its hooks.
type Env = Arc<Vec<(String, String)>>;

/// One run to make.
struct Job {
    hook: Arc<Hook>,
    seq: u64,
    /// The zone's name, escaped for logs.
    zone: String,
    line: Arc<str>,
    env: Env,
}

struct State {
    schedule: Schedule<Key, Job>,
    set: Arc<HookSet>,
    closed: bool,
    /// Runs dropped since the queue last had room.
    dropped: u64,
}

struct Inner {
    state: Mutex<State>,
    wake: Condvar,
    metrics: Option<Metrics>,
}

/// The hooks' queue and the threads that run them.
pub struct HookRunner {
    inner: Arc<Inner>,
    /// The threads, started with the first set that has a hook (none while no hook is configured).
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// How many threads to start.
    concurrency: usize,
}

impl HookRunner {
    /// Runs `set`'s hooks on `limits.concurrency` threads, counting in
    /// `metrics`. The threads start with the first set that has a hook (this
    /// one, or one given to [`HookRunner::replace`]), from the calling thread,
    /// whose scheduling they inherit.
    pub fn start(set: HookSet, limits: Limits, metrics: Option<Metrics>) -> Result<HookRunner> {
        let any = !set.is_empty();
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                schedule: Schedule::new(limits.queue.max(1)),
                set: Arc::new(set),
                closed: false,
                dropped: 0,
            }),
            wake: Condvar::new(),
            metrics,
        });
        let runner = HookRunner {
            inner,
            workers: Mutex::new(Vec::new()),
            concurrency: limits.concurrency.max(1),
        };
        if any {
            runner.start_workers()?;
        }
        Ok(runner)
    }

    /// Starts the threads unless they run already.
    fn start_workers(&self) -> Result<()> {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        while workers.len() < self.concurrency {
            let inner = Arc::clone(&self.inner);
            let thread = std::thread::Builder::new()
                .name(format!("zonemon-hook-{}", workers.len()))
                .spawn(move || inner.work())
                .context("starting a hook thread")?;
            workers.push(thread);
        }
        Ok(())
    }

    /// How many threads run hooks.
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.workers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// From now on, records go to `set`'s hooks (runs already queued still
    /// happen); the threads start now if they did not yet and `set` has a hook.
    pub fn replace(&self, set: HookSet) -> Result<()> {
        let any = !set.is_empty();
        self.inner.lock().set = Arc::new(set);
        if any {
            self.start_workers()?;
        }
        Ok(())
    }

    /// Queues a run of every hook whose filter `records` pass; never waits for a run.
    pub fn offer(&self, records: &[StoredRecord]) {
        let set = Arc::clone(&self.inner.lock().set);
        if set.is_empty() {
            return;
        }
        let mut jobs = Vec::new();
        for rec in records {
            let mut shared: Option<(Arc<str>, Env)> = None;
            for hook in set.0.iter().filter(|h| h.spec.filter.selects(&rec.object)) {
                let (line, env) = shared
                    .get_or_insert_with(|| {
                        let line = serde_json::to_string(&*rec.object).expect("a JSON map");
                        (line.into(), Arc::new(env::vars(&rec.object)))
                    })
                    .clone();
                let zone_id = rec.object.get("zone_id").and_then(|z| z.as_u64());
                let zone = rec
                    .object
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map(escape_text)
                    .unwrap_or_default();
                jobs.push((
                    (Arc::clone(&hook.name), zone_id),
                    Job {
                        hook: Arc::clone(hook),
                        seq: rec.seq,
                        zone,
                        line,
                        env,
                    },
                ));
            }
        }
        if jobs.is_empty() {
            return;
        }
        let mut st = self.inner.lock();
        for (key, job) in jobs {
            match st.schedule.push(key, job) {
                Ok(()) if st.dropped > 0 => {
                    tracing::warn!(
                        dropped = st.dropped,
                        "the hook queue has room again; hook runs were dropped while it was full"
                    );
                    st.dropped = 0;
                }
                Ok(()) => {}
                Err(job) => {
                    if st.dropped == 0 {
                        tracing::warn!(
                            hook = %job.hook.name,
                            seq = job.seq,
                            queued = st.schedule.queued(),
                            "the hook queue is full (hooks slower than the records they get): \
                             runs are dropped and counted"
                        );
                    }
                    st.dropped += 1;
                    self.inner.count(&job.hook.name, |m| &m.hook_dropped);
                }
            }
        }
        drop(st);
        self.inner.wake.notify_all();
    }

    /// Stops: queued runs are dropped (and said), runs going are waited for (at most their timeouts).
    pub fn stop(self) {
        let left = {
            let mut st = self.inner.lock();
            st.closed = true;
            st.schedule.drain()
        };
        self.inner.wake.notify_all();
        if !left.is_empty() {
            tracing::warn!(runs = left.len(), "stopping: queued hook runs are not made");
            for (_, job) in &left {
                self.inner.count(&job.hook.name, |m| &m.hook_dropped);
            }
        }
        for w in self.workers.into_inner().unwrap_or_else(|p| p.into_inner()) {
            let _ = w.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one to the counter `which` picks, for `hook`.
    fn count(&self, hook: &str, which: impl Fn(&Metrics) -> &prometheus::IntCounterVec) {
        if let Some(m) = &self.metrics {
            which(m).with_label_values(&[hook]).inc();
        }
    }

    /// One worker: runs what may start, until stopped.
    fn work(&self) {
        let mut st = self.lock();
        loop {
            if let Some((key, job)) = st.schedule.start() {
                drop(st);
                self.run(&job);
                st = self.lock();
                st.schedule.done(&key);
                // The zone's next run may be queued behind a busy worker's wait.
                self.wake.notify_all();
                continue;
            }
            if st.closed {
                return;
            }
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn run(&self, job: &Job) {
        let spec = &job.hook.spec;
        let outcome = spawn::run(
            spawn::Program {
                argv: &spec.run,
                user: spec.user.as_ref(),
                timeout: spec.timeout,
            },
            &job.line,
            &job.env,
        );
        let name = &*job.hook.name;
        self.count(name, |m| &m.hook_runs);
        if outcome.ok() {
            tracing::debug!(hook = %name, seq = job.seq, "hook ran");
            return;
        }
        match outcome {
            Outcome::TimedOut => self.count(name, |m| &m.hook_timeouts),
            _ => self.count(name, |m| &m.hook_failures),
        }
        tracing::warn!(
            hook = %name,
            seq = job.seq,
            zone = %job.zone,
            "hook {outcome}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A name no hostname can carry (the kernel keeps 64 bytes) but a hostile
    /// runtime file can: it reaches the hook as data, never as code or argv.
    #[test]
    fn a_4_kib_hostile_name_reaches_the_hook_only_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let got = dir.path().join("got");
        let pwned = dir.path().join("pwned");
        let p = pwned.display();
        let name = format!(
            "$(touch {p});`touch {p}`; touch {p} '\"\n{}",
            "x".repeat(4096)
        );
        let spec = HookSpec {
            name: None,
            run: vec![
                "/bin/sh".into(),
                "-c".into(),
                r#"cat > "$0"; printenv ZONEMON_NAME > "$0.name"; echo "$#" > "$0.argc""#.into(),
                got.display().to_string(),
            ],
            filter: Filter::parse(["name=$(touch*"]).unwrap(),
            user: None,
            timeout: Duration::from_secs(20),
        };
        let runner =
            HookRunner::start(HookSet::new(vec![spec]).unwrap(), Limits::default(), None).unwrap();
        let object = json!({"seq": 9, "event": "booted", "zone_id": 3, "name": name});
        let record = StoredRecord {
            seq: 9,
            unix_ns: 0,
            object: object.as_object().unwrap().clone().into(),
        };
        runner.offer(&[record]);
        let argc = got.with_extension("argc");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !argc.exists() {
            assert!(std::time::Instant::now() < deadline, "the hook never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
        runner.stop(); // waits for the run going
        let line = std::fs::read_to_string(&got).unwrap();
        assert_eq!(line, format!("{object}\n"));
        let env = std::fs::read_to_string(got.with_extension("name")).unwrap();
        assert_eq!(env, format!("{name}\n"));
        assert_eq!(std::fs::read_to_string(argc).unwrap(), "0\n");
        assert!(!pwned.exists(), "the name was executed");
    }

    #[test]
    fn threads_start_with_the_first_hook_even_when_it_comes_on_a_reload() {
        let runner =
            HookRunner::start(HookSet::new(vec![]).unwrap(), Limits::default(), None).unwrap();
        assert_eq!(runner.threads(), 0, "no hook, no thread");
        let dir = tempfile::tempdir().unwrap();
        let got = dir.path().join("got");
        let spec = HookSpec {
            name: None,
            run: vec![
                "/bin/sh".into(),
                "-c".into(),
                r#"cat > "$0""#.into(),
                got.display().to_string(),
            ],
            filter: Filter::parse(Vec::<&str>::new()).unwrap(),
            user: None,
            timeout: Duration::from_secs(20),
        };
        runner.replace(HookSet::new(vec![spec]).unwrap()).unwrap();
        assert_eq!(runner.threads(), DEFAULT_CONCURRENCY);
        let object = json!({"seq": 1, "event": "booted", "zone_id": 1, "name": "z"});
        runner.offer(&[StoredRecord {
            seq: 1,
            unix_ns: 0,
            object: object.as_object().unwrap().clone().into(),
        }]);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&got).map_or(true, |l| !l.ends_with('\n')) {
            assert!(
                std::time::Instant::now() < deadline,
                "the reloaded hook never ran"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        runner.replace(HookSet::new(vec![]).unwrap()).unwrap();
        assert_eq!(
            runner.threads(),
            DEFAULT_CONCURRENCY,
            "started threads stay"
        );
        runner.stop();
        assert_eq!(
            std::fs::read_to_string(&got).unwrap(),
            format!("{object}\n")
        );
    }
}
