//! Reading `/proc/<pid>/stat` and the numbers of a process's or a thread's `status`.

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
    read_status_field(
        &format!("/proc/{pid}/task/{tid}/status"),
        "voluntary_ctxt_switches",
    )
}

/// The number `key` has in `/proc/<pid>/status` (`VmRSS`, `VmHWM`, … in kB;
/// `voluntary_ctxt_switches`, …).
pub fn status_field(pid: i32, key: &str) -> io::Result<u64> {
    read_status_field(&format!("/proc/{pid}/status"), key)
}

/// The number `key` has in a `status` file's text: the first word after
/// `key:` (`VmHWM:\t  1234 kB` is 1234), if that line is there.
pub fn status_value(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn read_status_field(path: &str, key: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(path)?;
    status_value(&status, key).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no number for {key} in {path}"),
        )
    })
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
        assert!(status_field(me, "VmRSS").unwrap() > 0);
        assert!(status_field(me, "NoSuchField").is_err());
    }

    #[test]
    fn status_values_are_found_by_their_whole_key() {
        let text =
            "VmHWM:\t  1234 kB\nnonvoluntary_ctxt_switches:\t7\nvoluntary_ctxt_switches:\t3\n";
        assert_eq!(status_value(text, "VmHWM"), Some(1234));
        assert_eq!(status_value(text, "voluntary_ctxt_switches"), Some(3));
        assert_eq!(status_value(text, "nonvoluntary_ctxt_switches"), Some(7));
        assert_eq!(status_value(text, "Vm"), None, "a key is matched whole");
        assert_eq!(status_value("VmRSS:\tmany kB\n", "VmRSS"), None);
    }
}
