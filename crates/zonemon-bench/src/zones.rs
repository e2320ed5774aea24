//! Making zones: the documented `unshare` recipe (a realistic zone: several
//! processes, its own UTS and PID namespaces) and the `zonefork` C helper
//! (the cheapest possible zone, to find zonemon's limits, not the shell's).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use zonemon_testkit::zone_cmd;

use crate::guard::{self, Proc, Spawn};

/// Runs one `unshare` zone ([`zone_cmd`]) to its end; returns whether it exited 0.
pub fn run_unshare_zone(name: &str, script: &str) -> Result<bool> {
    let p = Proc::spawn(&mut zone_cmd(name, script), Spawn::default())?;
    Ok(p.wait()?.success())
}

/// How a batch of zones went.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// Zones that ran.
    pub made: usize,
    /// Zones whose init did not exit 0.
    pub failed: usize,
    /// Wall time of the whole batch.
    pub elapsed: Duration,
    /// CPU time of the zone maker and its zones, when known (ns).
    pub cpu_ns: Option<u64>,
}

impl Batch {
    /// Zones per second.
    pub fn rate(&self) -> f64 {
        self.made as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `unshare` zones `names[i]` with script `script(i)`, `parallel` at a time, each to its end.
pub fn run_unshare_batch(
    names: &[String],
    script: impl Fn(usize) -> String + Sync,
    parallel: usize,
) -> Result<Batch> {
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let made = AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..parallel.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= names.len() || guard::closing() {
                            return Ok(());
                        }
                        if !run_unshare_zone(&names[i], &script(i))? {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        made.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("zone worker panicked")?;
        }
        Ok(())
    })?;
    Ok(Batch {
        made: made.into_inner(),
        failed: failed.into_inner(),
        elapsed: t0.elapsed(),
        cpu_ns: None,
    })
}

/// The C helpers, compiled for this run.
#[derive(Debug, Clone)]
pub struct Helpers {
    /// `forkexec N`.
    pub forkexec: PathBuf,
    /// `zonefork PREFIX FIRST COUNT PARALLEL PROG…`.
    pub zonefork: PathBuf,
    /// `zonehold --prefix P --live N --churn M --duration S` (also `./dev stress`).
    pub zonehold: PathBuf,
    /// `zoneinit`: exits 0 at once; static, the cheapest program a zone's init can exec.
    pub zoneinit: PathBuf,
    /// `zonepause`: waits for ever; no C library, the init of each zone [`Helpers::hold`] keeps.
    pub zonepause: PathBuf,
}

/// Zones kept alive by `zonehold` until [`Hold::release`] (or drop).
pub struct Hold {
    proc: Proc,
}

impl Hold {
    /// Kills the zones (zonehold's standard input ends) and waits for them to be reaped.
    pub fn release(mut self) -> Result<()> {
        drop(self.proc.child.stdin.take());
        let st = self.proc.wait()?;
        if !st.success() {
            bail!("zonehold failed ({st})");
        }
        Ok(())
    }
}

impl Helpers {
    /// Writes the helpers' C sources into `dir` and compiles them with `cc`.
    pub fn build(dir: &Path) -> Result<Helpers> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // `c/<name>.c`, built into `dir`, linked as `link`.
        macro_rules! helper {
            ($name:literal, $link:expr) => {
                compile(
                    dir,
                    $name,
                    include_str!(concat!("../c/", $name, ".c")),
                    $link,
                )?
            };
        }
        Ok(Helpers {
            forkexec: helper!("forkexec", Link::Dynamic),
            zonefork: helper!("zonefork", Link::Dynamic),
            // Static: the zones it churns exec it (its held zones exec zonepause).
            zonehold: helper!("zonehold", Link::Static),
            zoneinit: helper!("zoneinit", Link::Static),
            zonepause: helper!("zonepause", Link::Bare),
        })
    }

    /// Starts `zonehold` keeping `live` zones `prefix0…` up, each init `zonepause`; returns
    /// once they are.
    pub fn hold(&self, prefix: &str, live: usize) -> Result<Hold> {
        use std::io::BufRead;
        let mut cmd = Command::new(&self.zonehold);
        cmd.args([
            "--prefix",
            prefix,
            "--live",
            &live.to_string(),
            "--duration",
            "0",
        ])
        .arg("--init")
        .arg(&self.zonepause)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut p = Proc::spawn(&mut cmd, Spawn::default())?;
        let mut line = String::new();
        std::io::BufReader::new(p.child.stdout.take().unwrap()).read_line(&mut line)?;
        if line.trim() != format!("live {live}") {
            let mut err = String::new();
            std::io::Read::read_to_string(p.child.stderr.as_mut().unwrap(), &mut err)?;
            bail!("zonehold could not keep {live} zones up: {}", err.trim());
        }
        Ok(Hold { proc: p })
    }

    /// Runs `forkexec n`; returns its wall time in ns.
    pub fn forkexec(&self, n: usize) -> Result<u64> {
        let mut cmd = Command::new(&self.forkexec);
        cmd.arg(n.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut p = Proc::spawn(&mut cmd, Spawn::default())?;
        let mut out = String::new();
        std::io::Read::read_to_string(p.child.stdout.as_mut().unwrap(), &mut out)?;
        let st = p.wait()?;
        if !st.success() {
            bail!("forkexec {n} failed ({st})");
        }
        out.trim().parse().context("forkexec printed no time")
    }

    /// Makes zones `prefix{first..first+count}`, `parallel` at a time; each
    /// zone's init execs `zoneinit` (the cheapest zone: a static program that exits 0).
    pub fn zonefork(
        &self,
        prefix: &str,
        first: usize,
        count: usize,
        parallel: usize,
    ) -> Result<Batch> {
        let mut cmd = Command::new(&self.zonefork);
        cmd.arg(prefix)
            .arg(first.to_string())
            .arg(count.to_string())
            .arg(parallel.to_string())
            .arg(&self.zoneinit)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut p = Proc::spawn(&mut cmd, Spawn::default())?;
        let mut out = String::new();
        std::io::Read::read_to_string(p.child.stdout.as_mut().unwrap(), &mut out)?;
        let mut err = String::new();
        std::io::Read::read_to_string(p.child.stderr.as_mut().unwrap(), &mut err)?;
        let st = p.wait()?;
        if !st.success() {
            bail!("zonefork failed ({st}): {}", err.trim());
        }
        let w: Vec<&str> = out.split_whitespace().collect();
        let field = |key: &str| -> Result<u64> {
            let i = w
                .iter()
                .position(|x| *x == key)
                .with_context(|| format!("zonefork printed no {key}: {out}"))?;
            w.get(i + 1)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("zonefork: bad {key}: {out}"))
        };
        Ok(Batch {
            made: field("made")? as usize,
            failed: field("failed")? as usize,
            elapsed: Duration::from_nanos(field("elapsed_ns")?),
            cpu_ns: Some(field("cpu_ns")?),
        })
    }
}

/// How a C helper is linked.
#[derive(Clone, Copy, PartialEq)]
enum Link {
    /// Against the C library, dynamically.
    Dynamic,
    /// Statically when this system can (its static C library installed), else dynamically.
    Static,
    /// With no C library at all (`-nostdlib`): the program brings its own `_start`.
    Bare,
}

/// Writes C helper `name`'s source into `dir` and compiles it with `cc`, linked as `link`.
fn compile(dir: &Path, name: &str, src: &str, link: Link) -> Result<PathBuf> {
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).with_context(|| format!("writing {}", c.display()))?;
    let cc = |extra: &[&str]| -> Result<std::process::Output> {
        Command::new("cc")
            .args(["-O2", "-Wall"])
            .args(extra)
            .arg("-o")
            .arg(&bin)
            .arg(&c)
            .output()
            .context("running cc (install gcc: apt-get install gcc)")
    };
    let mut o = cc(match link {
        Link::Dynamic => &[],
        Link::Static => &["-static"],
        Link::Bare => &["-static", "-nostdlib", "-fno-stack-protector"],
    })?;
    if !o.status.success() && link == Link::Static {
        o = cc(&[])?;
    }
    if !o.status.success() {
        bail!(
            "cc {} failed: {}",
            c.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(bin)
}
