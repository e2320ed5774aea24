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

/// CLOCK_REALTIME − `clock` now, in nanoseconds: what turns a stamp of
/// `clock` into wall time (the realtime reading taken between two of `clock`).
pub fn realtime_offset(clock: libc::clockid_t) -> i128 {
    let before = clock_ns(clock);
    let real = clock_ns(libc::CLOCK_REALTIME);
    let after = clock_ns(clock);
    real - (before + after) / 2
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

    #[test]
    fn the_realtime_offset_turns_a_clock_into_wall_time() {
        let off = realtime_offset(libc::CLOCK_MONOTONIC);
        let wall = clock_ns(libc::CLOCK_MONOTONIC) + off;
        assert!((wall - clock_ns(libc::CLOCK_REALTIME)).abs() < 5_000_000);
    }
}
