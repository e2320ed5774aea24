//! A tracefs instance of the benchmark's own (`instances/NAME`): its own
//! buffer and its own set of events, so that neither the host's global trace
//! buffer nor another user's tracing is touched. It is removed when done, and
//! on Ctrl-C. Used only by diagnostics that are not part of a measured run
//! (enabling a syscall event slows every system call on the host).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use zonemon_core::clock::realtime_offset;

use crate::guard::{self, Token};

/// One instance under the tracefs mount.
pub struct Instance {
    dir: PathBuf,
    undo: Option<Token>,
}

/// Where tracefs is mounted, from /proc/mounts.
fn mount_point() -> Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"tracefs"))
        .and_then(|f| f.get(1).map(PathBuf::from))
        .context(
            "tracefs is not mounted: mount it with `mount -t tracefs tracefs /sys/kernel/tracing`",
        )
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// Turns every event of the instance at `dir` off and removes it.
fn remove(dir: &Path) {
    let _ = std::fs::write(dir.join("tracing_on"), "0");
    let _ = std::fs::write(dir.join("events/enable"), "0");
    let _ = std::fs::remove_dir(dir);
}

impl Instance {
    /// Makes instance `name` (a leftover of that name is removed first) with a
    /// buffer of `buffer_kib` per CPU, stamped with CLOCK_MONOTONIC, not yet tracing.
    pub fn create(name: &str, buffer_kib: u32) -> Result<Instance> {
        let dir = mount_point()?.join("instances").join(name);
        if dir.exists() {
            remove(&dir);
        }
        std::fs::create_dir(&dir).with_context(|| format!("making {}", dir.display()))?;
        let undo_dir = dir.clone();
        let undo = guard::on_exit(move || remove(&undo_dir));
        let inst = Instance { dir, undo };
        write(&inst.dir.join("tracing_on"), "0")?;
        write(&inst.dir.join("trace_clock"), "mono")?;
        write(&inst.dir.join("buffer_size_kb"), &buffer_kib.to_string())?;
        Ok(inst)
    }

    /// Enables `event` (`group/name`, e.g. `sched/sched_switch`), recording only
    /// what matches `filter` (tracefs filter syntax).
    pub fn enable(&self, event: &str, filter: &str) -> Result<()> {
        let ev = self.dir.join("events").join(event);
        if !ev.is_dir() {
            bail!(
                "this kernel has no trace event {event} ({} is missing)",
                ev.display()
            );
        }
        write(&ev.join("filter"), filter)?;
        write(&ev.join("enable"), "1")
    }

    /// Starts recording.
    pub fn start(&self) -> Result<()> {
        write(&self.dir.join("tracing_on"), "1")
    }

    /// Stops recording and returns what was recorded (the `trace` file), or an
    /// error if the buffer overflowed and events were lost. Removes the instance.
    pub fn finish(self) -> Result<String> {
        write(&self.dir.join("tracing_on"), "0")?;
        let text = std::fs::read_to_string(self.dir.join("trace"))
            .with_context(|| format!("reading {}/trace", self.dir.display()))?;
        if let Some((kept, written)) = entries(&text) {
            if kept != written {
                bail!("the trace buffer overflowed: {kept} of {written} events kept");
            }
        }
        Ok(text)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(t) = self.undo.take() {
            guard::undo_now(t);
        }
    }
}

/// `entries-in-buffer/entries-written: K/W` from the trace's header.
fn entries(text: &str) -> Option<(u64, u64)> {
    let line = text
        .lines()
        .find(|l| l.contains("entries-in-buffer/entries-written:"))?;
    let counts = line.split(':').nth(1)?.split_whitespace().next()?;
    let (k, w) = counts.split_once('/')?;
    Some((k.parse().ok()?, w.parse().ok()?))
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC (the instance's clock), in ns: what
/// turns a trace stamp into wall time.
pub fn wall_offset_ns() -> i128 {
    realtime_offset(libc::CLOCK_MONOTONIC)
}

/// One event line of the `trace` file.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The thread that was running when the event fired.
    pub pid: u32,
    /// Its timestamp in ns, on the instance's clock.
    pub ts_ns: i128,
    /// The event's name (`sched_switch`; `sys_execve` for a syscall's entry).
    pub event: &'a str,
    /// The rest of the line: the event's fields.
    pub fields: &'a str,
}

/// Parses `<comm>-<pid> [<cpu>] <flags> <secs>.<frac>: <event>: <fields>` (a
/// syscall event is `<event>(<args>)`); the command name may hold anything.
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    line.match_indices("] ").find_map(|(at, _)| {
        let (head, rest) = (&line[..at], &line[at + 2..]);
        let (who, cpu) = head.rsplit_once('[')?;
        cpu.parse::<u32>().ok()?;
        let pid = who.trim_end().rsplit_once('-')?.1.parse().ok()?;
        let mut parts = rest.splitn(3, ' ');
        let (_flags, ts, body) = (parts.next()?, parts.next()?, parts.next()?);
        let ts_ns = parse_ts(ts.strip_suffix(':')?)?;
        let end = body.find([':', '('])?;
        let fields = body[end + 1..].trim_start();
        Some(Line {
            pid,
            ts_ns,
            event: &body[..end],
            fields,
        })
    })
}

/// `41553.220078` (seconds, any number of fraction digits up to 9) in ns.
fn parse_ts(s: &str) -> Option<i128> {
    let (secs, frac) = s.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = 10i128.pow(9 - frac.len() as u32);
    Some(secs.parse::<i128>().ok()? * 1_000_000_000 + frac.parse::<i128>().ok()? * scale)
}

/// The value of ` key=` in an event's fields (up to the next space).
pub fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let at = fields
        .match_indices(key)
        .find(|(i, _)| {
            (*i == 0 || fields.as_bytes()[i - 1] == b' ')
                && fields.as_bytes().get(i + key.len()) == Some(&b'=')
        })?
        .0;
    let value = &fields[at + key.len() + 1..];
    Some(value.split(' ').next().unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sched_and_syscall_lines() {
        let l = parse_line("   runc:[2:INIT]-6560    [000] ..... 41553.220078: sched_prepare_exec: interp=/bin/sh filename=/bin/sh pid=6560 comm=runc:[2:INIT]").unwrap();
        assert_eq!(
            l,
            Line {
                pid: 6560,
                ts_ns: 41_553_220_078_000,
                event: "sched_prepare_exec",
                fields: "interp=/bin/sh filename=/bin/sh pid=6560 comm=runc:[2:INIT]",
            }
        );
        let l = parse_line("           <...>-16987   [001] ..... 41652.915975: sys_execve(filename: 0xc0001d4728, argv: 0xc000024a20, envp: 0xc000024a40)").unwrap();
        assert_eq!((l.pid, l.event), (16987, "sys_execve"));
        assert_eq!(l.ts_ns, 41_652_915_975_000);
        // A command name with spaces, dashes and brackets of its own.
        let l = parse_line(" a b-[1] c-42 [001] d..2. 7.5: sched_switch: prev_comm=x prev_pid=42 prev_state=R+ ==> next_comm=y next_pid=7").unwrap();
        assert_eq!(
            (l.pid, l.ts_ns, l.event),
            (42, 7_500_000_000, "sched_switch")
        );
        assert_eq!(field(l.fields, "prev_state"), Some("R+"));
        assert_eq!(field(l.fields, "next_pid"), Some("7"));
        assert_eq!(field(l.fields, "pid"), None);
    }

    #[test]
    fn skips_headers_and_odd_lines() {
        assert_eq!(parse_line("# tracer: nop"), None);
        assert_eq!(
            parse_line("#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION"),
            None
        );
        assert_eq!(parse_line("x-1 [000] .... 12: e: f"), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn reads_the_entry_counts() {
        let head =
            "# tracer: nop\n#\n# entries-in-buffer/entries-written: 3945402/3945410   #P:2\n";
        assert_eq!(entries(head), Some((3_945_402, 3_945_410)));
        assert_eq!(entries("# tracer: nop\n"), None);
    }
}
