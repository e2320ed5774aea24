//! The clocks zonemon reads: CLOCK_BOOTTIME (every observation's timestamps)
//! and the others it converts from or to.

/// Nanoseconds of `clock` now.
pub fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// CLOCK_BOOTTIME now, in nanoseconds: the clock of every observation's timestamps.
pub fn boot_time_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boottime_runs_forward_and_realtime_is_after_2020() {
        let a = boot_time_ns();
        let b = boot_time_ns();
        assert!(a > 0 && b >= a);
        assert!(clock_ns(libc::CLOCK_REALTIME) > 1_577_836_800 * 1_000_000_000);
    }
}
