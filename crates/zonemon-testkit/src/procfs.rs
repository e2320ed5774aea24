//! Reading `/proc/<pid>/stat` and a thread's `status`.

use std::io;

/// The fields of `/proc/<pid>/stat` after the parenthesised command name:
/// index 0 is the state, 1 the parent's PID, and field N of proc(5) is at
/// index N - 3.
pub fn stat_fields(pid: i32) -> io::Result<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (_, rest) = stat.rsplit_once(')').ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("odd /proc/{pid}/stat: {stat}"),
        )
    })?;
    Ok(rest.split_whitespace().map(str::to_string).collect())
}

/// The parent PID of `pid`, if it lives.
pub fn ppid(pid: i32) -> Option<i32> {
    stat_fields(pid).ok()?.get(1)?.parse().ok()
}

/// How many times thread `tid` of process `pid` went to sleep of its own
/// accord (`voluntary_ctxt_switches`): each is a wakeup to come, or one that came.
pub fn voluntary_switches(pid: i32, tid: i32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no voluntary_ctxt_switches"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_stat() {
        let me = std::process::id() as i32;
        // SAFETY: getppid has no preconditions.
        assert_eq!(ppid(me), Some(unsafe { libc::getppid() }));
        assert!(stat_fields(me).unwrap().len() > 40);
        assert!(stat_fields(-1).is_err());
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let before = voluntary_switches(me, tid).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(
            voluntary_switches(me, tid).unwrap() > before,
            "a sleep is one"
        );
    }
}
