//! `--only docker:trace`, a diagnostic and not part of a full run: why
//! `docker events` is sometimes first with a container's `start`. The same
//! batch as the measured phase (fast consumer), with more containers, while a
//! tracefs instance of the benchmark's own records each container init's
//! `execve` call (`sys_enter_execve`), its exec's point of no return
//! (`sched_prepare_exec`, where zonemon dates `booted`) and its scheduling in
//! between (`sched_switch`, `sched_wakeup`), all filtered to runc's init.
//!
//! runc (since 1.1.12; Debian's 1.1.5+ds1-1+deb12u1 carries the fix of
//! CVE-2024-21626) closes every descriptor of its init before it calls
//! `execve`, the exec FIFO's write end among them: `runc start` reads that
//! FIFO to its end, so it returns, and containerd and dockerd announce the
//! start, before the container's program is exec'd. This part says, for each
//! start docker was first with, whether dockerd stamped it before the init
//! called `execve`, while it was in `execve` before the point of no return, or
//! after it (only then was docker first on an exec that had happened), and how
//! much of the init's time in `execve` before that point was a wait for a CPU.
//!
//! The syscall event makes every system call on the host take the kernel's
//! slower path while it is on, so this part is kept out of the measured rows.

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use super::{collect, first_arrivals, Collected, Docker};
use crate::context::Ctx;
use crate::monitor::Kind;
use crate::stats::{fmt_dist, fmt_ns};
use crate::table::{Report, Verdict};
use crate::tracefs::{field, parse_line, wall_offset_ns, Instance};

/// Containers in the traced batch: docker is first on about 1 start in 100.
const CONTAINERS: usize = 500;
/// runc's init before its exec (the command name it gives itself).
const INIT_COMM: &str = "runc:[2:INIT]";

/// What the trace shows of one container init between its `execve` call and
/// the exec's point of no return (wall-clock ns).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct InitExec {
    /// Its `execve` call.
    call_ns: Option<i128>,
    /// Its `sched_prepare_exec`.
    no_return_ns: Option<i128>,
    /// Time runnable but not on a CPU between the two.
    waited_ns: i128,
}

/// A switch of one init's thread: off a CPU (still runnable or not), woken, or onto a CPU.
#[derive(Debug, Clone, Copy)]
enum Sched {
    Off { runnable: bool },
    Woken,
    On,
}

/// Everything the trace holds for one PID, in time order: the PID may have
/// been several processes' over the batch (PIDs are reused).
#[derive(Debug, Default)]
struct PidTrace {
    calls: Vec<i128>,
    no_returns: Vec<i128>,
    sched: Vec<(i128, Sched)>,
}

/// How far from zonemon's `booted` time the trace's point of no return may be
/// and still be the same exec.
const SAME_EXEC_NS: i128 = 100_000_000;

impl PidTrace {
    /// The exec whose point of no return is nearest `booted` (zonemon's
    /// timestamp of it), with the last `execve` call before it.
    fn exec_near(&self, booted: i128) -> InitExec {
        let no_return = self
            .no_returns
            .iter()
            .copied()
            .filter(|t| (t - booted).abs() < SAME_EXEC_NS)
            .min_by_key(|t| (t - booted).abs());
        let call = no_return.and_then(|end| self.calls.iter().copied().rfind(|c| *c <= end));
        InitExec {
            call_ns: call,
            no_return_ns: no_return,
            waited_ns: call
                .zip(no_return)
                .map_or(0, |(c, e)| runnable_wait(&self.sched, c, e)),
        }
    }
}

/// Reads the trace of the PIDs `pids` (`offset`: wall minus trace clock).
fn pids_from(text: &str, offset: i128, pids: &HashSet<u32>) -> HashMap<u32, PidTrace> {
    let mut out: HashMap<u32, PidTrace> = HashMap::new();
    let pid_of = |fields: &str, key: &str| {
        field(fields, key)
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| pids.contains(p))
    };
    for l in text.lines().filter_map(parse_line) {
        let t = l.ts_ns + offset;
        match l.event {
            "sys_execve" if pids.contains(&l.pid) => out.entry(l.pid).or_default().calls.push(t),
            "sched_prepare_exec" => {
                if let Some(p) = pid_of(l.fields, "pid") {
                    out.entry(p).or_default().no_returns.push(t);
                }
            }
            "sched_wakeup" => {
                if let Some(p) = pid_of(l.fields, "pid") {
                    out.entry(p).or_default().sched.push((t, Sched::Woken));
                }
            }
            "sched_switch" => {
                if let Some(p) = pid_of(l.fields, "prev_pid") {
                    let runnable =
                        field(l.fields, "prev_state").is_some_and(|s| s.starts_with('R'));
                    out.entry(p)
                        .or_default()
                        .sched
                        .push((t, Sched::Off { runnable }));
                }
                if let Some(p) = pid_of(l.fields, "next_pid") {
                    out.entry(p).or_default().sched.push((t, Sched::On));
                }
            }
            _ => {}
        }
    }
    out
}

/// How long, within [from, to], a thread with these switches was runnable but off every CPU.
fn runnable_wait(switches: &[(i128, Sched)], from: i128, to: i128) -> i128 {
    let mut ready_since = None;
    let mut total = 0;
    for &(t, s) in switches {
        match s {
            Sched::Off { runnable: true } | Sched::Woken => {
                ready_since.get_or_insert(t);
            }
            Sched::Off { runnable: false } => ready_since = None,
            Sched::On => {
                if let Some(r) = ready_since.take() {
                    total += (t.min(to) - r.max(from)).max(0);
                }
            }
        }
    }
    total
}

/// When dockerd stamped a `start` (its `timeNano`; its arrival when it has
/// none), relative to the container init's exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum When {
    /// Before the init called `execve`.
    BeforeCall,
    /// While the init was in `execve`, before the point of no return.
    InExec,
    /// After the point of no return: docker was first on an exec that had
    /// happened, by zonemon's own delay.
    AfterExec,
    /// The trace has no `execve` call or no point of no return for the init.
    Untraced,
}

fn when(stamp: i128, e: Option<&InitExec>) -> When {
    match e.map(|e| (e.call_ns, e.no_return_ns)) {
        Some((Some(call), Some(_))) if stamp < call => When::BeforeCall,
        Some((Some(_), Some(end))) if stamp < end => When::InExec,
        Some((Some(_), Some(_))) => When::AfterExec,
        _ => When::Untraced,
    }
}

/// Runs the traced batch and adds its rows.
pub(super) fn run(ctx: &Ctx, rep: &mut Report, docker: &Docker, image: &str) -> Result<()> {
    let inst = Instance::create("zonemon-bench-docker", 32 * 1024)?;
    let only_init = format!("comm == \"{INIT_COMM}\"");
    inst.enable("syscalls/sys_enter_execve", &only_init)?;
    inst.enable("sched/sched_prepare_exec", &only_init)?;
    inst.enable("sched/sched_wakeup", &only_init)?;
    inst.enable(
        "sched/sched_switch",
        &format!("prev_comm == \"{INIT_COMM}\" || next_comm == \"{INIT_COMM}\""),
    )?;
    let offset = wall_offset_ns();
    inst.start()?;
    let c = collect(ctx, docker, image, &ctx.tag("dkt"), CONTAINERS, None)?;
    let text = inst.finish()?;
    add_rows(rep, &c, &text, offset);
    Ok(())
}

fn add_rows(rep: &mut Report, c: &Collected, text: &str, offset: i128) {
    let n = c.names.len();
    let booted: Vec<_> = c
        .seen
        .recs
        .iter()
        .filter(|r| r.kind == Kind::Booted)
        .collect();
    let z_arrival = first_arrivals(booted.iter().map(|r| (r.name.as_str(), r.arrival_ns)));
    let mut init_of: HashMap<&str, u32> = HashMap::new();
    let mut z_time: HashMap<&str, i128> = HashMap::new();
    for r in &booted {
        if let Some(p) = r.init_pid {
            init_of.entry(r.name.as_str()).or_insert(p);
        }
        if let Some(t) = r.time_ns {
            z_time.entry(r.name.as_str()).or_insert(t);
        }
    }
    let d_start = first_arrivals(
        c.events
            .iter()
            .filter(|e| e.action == "start")
            .map(|e| (e.name.as_str(), e.arrival_ns)),
    );
    let d_stamp = first_arrivals(
        c.events
            .iter()
            .filter(|e| e.action == "start")
            .filter_map(|e| Some((e.name.as_str(), e.stamp_ns?))),
    );
    let pids: HashSet<u32> = init_of.values().copied().collect();
    let traced = pids_from(text, offset, &pids);
    let exec_of = |name: &str| {
        let pid = init_of.get(name)?;
        Some(traced.get(pid)?.exec_near(*z_time.get(name)?))
    };

    let mut classes: HashMap<When, usize> = HashMap::new();
    let mut cases = Vec::new();
    let (mut both, mut stamped_before_call, mut stamped_before_end) = (0, 0, 0);
    let (mut spans, mut waits, mut disagree) = (Vec::new(), Vec::new(), Vec::new());
    for name in &c.names {
        let e = exec_of(name);
        let e = e.as_ref();
        if let Some((call, end)) = e.and_then(|e| e.call_ns.zip(e.no_return_ns)) {
            spans.push((end - call) as f64);
            waits.push(e.map_or(0, |e| e.waited_ns) as f64);
            if let Some(z) = z_time.get(name.as_str()) {
                disagree.push((z - end).abs() as f64);
            }
            if let Some(s) = d_stamp.get(name.as_str()) {
                stamped_before_call += (*s < call) as usize;
                stamped_before_end += (*s < end) as usize;
            }
        }
        let (Some(z), Some(d)) = (z_arrival.get(name.as_str()), d_start.get(name.as_str())) else {
            continue;
        };
        both += 1;
        if d >= z {
            continue;
        }
        let stamp = d_stamp.get(name.as_str());
        let w = when(*stamp.unwrap_or(d), e);
        *classes.entry(w).or_default() += 1;
        if let Some(e) = e.filter(|_| w != When::Untraced) {
            let end = e.no_return_ns.unwrap_or_default();
            let rel = |t: i128| fmt_ns((t - end) as f64);
            cases.push(format!(
                "{name}: docker's `start` read {} and stamped {} from the point of no return, the init's `execve` call {}, its wait for a CPU in between {}",
                rel(*d),
                stamp.map_or("?".into(), |s| rel(*s)),
                e.call_ns.map_or("?".into(), rel),
                fmt_ns(e.waited_ns as f64),
            ));
        }
    }
    let count = |w: When| classes.get(&w).copied().unwrap_or(0);
    let first: usize = classes.values().sum();
    rep.row(
        &format!("vs docker events, traced ({n} containers, `--only docker:trace`): when docker stamped the `start`s it was first with"),
        &format!(
            "docker first on {first}/{both}, stamped: {} before the container's init called `execve`, {} while it was in `execve` before the point of no return, {} after it",
            count(When::BeforeCall),
            count(When::InExec),
            count(When::AfterExec),
        ),
        &format!(
            "{}{}; the trace's point of no return and zonemon's `booted` time differ by {} (trace clock turned to wall time once, at the start); {} starts untraced; {} docker commands failed",
            if cases.is_empty() { "no start reported first by docker".to_string() } else { cases.join("; ") },
            if cases.len() < first { " (and starts without a trace)" } else { "" },
            fmt_dist(&disagree),
            count(When::Untraced),
            c.failures.len(),
        ),
        "none stamped after the point of no return, none untraced",
        Verdict::of(
            count(When::AfterExec) == 0
                && count(When::Untraced) == 0
                && spans.len() == n
                && c.failures.is_empty(),
        ),
    );
    rep.row(
        &format!("container init: `execve` call → the exec's point of no return (traced, {n} containers)"),
        &fmt_dist(&spans),
        &format!(
            "of it, runnable but waiting for a CPU: {}; docker stamped `start` before the init called `execve` on {stamped_before_call} of {} starts, before the point of no return on {stamped_before_end} (runc's init closes its exec FIFO, and `runc start` returns, before it calls `execve`)",
            fmt_dist(&waits),
            spans.len(),
        ),
        "",
        Verdict::Info,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "\
# tracer: nop
# entries-in-buffer/entries-written: 9/9   #P:2
   runc:[2:INIT]-10    [001] ..... 100.000000: sys_execve(filename: 0xc0, argv: 0xc1, envp: 0xc2)
   runc:[2:INIT]-10    [001] d..2. 100.000010: sched_switch: prev_comm=runc:[2:INIT] prev_pid=10 prev_prio=120 prev_state=R+ ==> next_comm=migration/1 next_pid=23 next_prio=0
   other-5             [000] d..2. 100.004010: sched_switch: prev_comm=other prev_pid=5 prev_prio=120 prev_state=R ==> next_comm=runc:[2:INIT] next_pid=10 next_prio=120
   runc:[2:INIT]-10    [000] d..2. 100.004020: sched_switch: prev_comm=runc:[2:INIT] prev_pid=10 prev_prio=120 prev_state=D ==> next_comm=other next_pid=5 next_prio=120
   irq-0               [000] dNh4. 100.005000: sched_wakeup: comm=runc:[2:INIT] pid=10 prio=120 target_cpu=000
   other-5             [000] d..2. 100.006000: sched_switch: prev_comm=other prev_pid=5 prev_prio=120 prev_state=R ==> next_comm=runc:[2:INIT] next_pid=10 next_prio=120
   runc:[2:INIT]-10    [000] ..... 100.006100: sched_prepare_exec: interp=/bin/sh filename=/bin/sh pid=10 comm=runc:[2:INIT]
   runc:[2:INIT]-11    [000] ..... 100.007000: sys_execve(filename: 0xc0, argv: 0xc1, envp: 0xc2)
   runc:[2:INIT]-12    [000] ..... 100.008000: sched_prepare_exec: interp=/bin/sh filename=/bin/sh pid=12 comm=runc:[2:INIT]
";

    #[test]
    fn reads_each_inits_exec_and_its_wait_for_a_cpu() {
        let pids: HashSet<u32> = [10, 11].into();
        let traced = pids_from(TRACE, 1_000, &pids);
        let ten = traced[&10].exec_near(100_006_100_000);
        assert_eq!(ten.call_ns, Some(100_000_000_000 + 1_000));
        assert_eq!(ten.no_return_ns, Some(100_006_100_000 + 1_000));
        // Runnable 100.000010 → 100.004010 (migrated), asleep until woken at 100.005, on a CPU at 100.006.
        assert_eq!(ten.waited_ns, 4_000_000 + 1_000_000);
        // An init whose exec never reached the point of no return; one not asked for.
        assert_eq!(traced[&11].exec_near(100_007_000_000).no_return_ns, None);
        assert!(!traced.contains_key(&12));
        // Far from zonemon's time, the trace's exec is another process's (a PID reused).
        assert_eq!(traced[&10].exec_near(160_000_000_000), InitExec::default());
    }

    #[test]
    fn picks_the_exec_of_the_process_zonemon_saw() {
        let t = PidTrace {
            calls: vec![10, 5_000_000_000, 5_000_000_300],
            no_returns: vec![20, 5_000_000_500],
            sched: vec![],
        };
        let e = t.exec_near(5_000_000_400);
        assert_eq!(
            (e.call_ns, e.no_return_ns),
            (Some(5_000_000_300), Some(5_000_000_500))
        );
        let e = t.exec_near(0);
        assert_eq!((e.call_ns, e.no_return_ns), (Some(10), Some(20)));
    }

    #[test]
    fn only_waits_within_the_span_count() {
        let s = [
            (0, Sched::Off { runnable: true }),
            (10, Sched::On),
            (12, Sched::Woken),
            (20, Sched::On),
        ];
        assert_eq!(runnable_wait(&s, 5, 15), 5 + 3);
        assert_eq!(runnable_wait(&s, 30, 40), 0);
    }

    #[test]
    fn places_an_arrival_against_the_exec() {
        let e = InitExec {
            call_ns: Some(100),
            no_return_ns: Some(200),
            waited_ns: 0,
        };
        assert_eq!(when(99, Some(&e)), When::BeforeCall);
        assert_eq!(when(100, Some(&e)), When::InExec);
        assert_eq!(when(200, Some(&e)), When::AfterExec);
        assert_eq!(when(150, None), When::Untraced);
        let half = InitExec {
            no_return_ns: None,
            ..e
        };
        assert_eq!(when(50, Some(&half)), When::Untraced);
    }
}
