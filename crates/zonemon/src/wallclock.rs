//! Dating the kernel's boot-time stamps in wall-clock time, and following
//! the wall clock when it is stepped (NTP, `date -s`, a VM resumed).
//!
//! The offset CLOCK_REALTIME − CLOCK_BOOTTIME is measured at start; a
//! timerfd on CLOCK_REALTIME, armed far in the future with
//! `TFD_TIMER_CANCEL_ON_SET`, becomes readable (its read fails with
//! `ECANCELED`) whenever the clock is set. The event loop watches it like
//! any other descriptor: no periodic wakeups.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use anyhow::{Context, Result};
use zonemon_core::output::WallClock;

use crate::timerfd;
use zonemon_core::clock::realtime_offset;

/// The timer's expiry, in CLOCK_REALTIME seconds: the largest the kernel
/// keeps (year 2262), so it only ever wakes the loop when the clock is set.
const FAR_FUTURE_S: libc::time_t = (i64::MAX / 1_000_000_000) as libc::time_t;

/// CLOCK_REALTIME − CLOCK_BOOTTIME now, in nanoseconds.
pub fn measure_offset() -> i128 {
    realtime_offset(libc::CLOCK_BOOTTIME)
}

/// A wall clock that follows clock steps: a [`WallClock`] shared with the
/// sinks, and the timerfd that says when to measure it again.
pub struct ClockFollower {
    timer: OwnedFd,
    clock: WallClock,
}

impl ClockFollower {
    /// Measures the offset and arms the timer.
    pub fn new() -> Result<Self> {
        let follower = ClockFollower {
            timer: timerfd::create(libc::CLOCK_REALTIME)
                .context("timerfd_create(CLOCK_REALTIME)")?,
            clock: WallClock::new(measure_offset()),
        };
        follower.arm().context("arming the clock-change timer")?;
        Ok(follower)
    }

    /// The clock the sinks date events with (a handle on the shared offset).
    pub fn clock(&self) -> WallClock {
        self.clock.clone()
    }

    /// The descriptor to watch: readable once the wall clock was set.
    pub fn fd(&self) -> RawFd {
        self.timer.as_raw_fd()
    }

    /// Called when [`Self::fd`] is readable: consumes the notice, measures
    /// the offset again (every sink sees it at once) and re-arms the timer.
    pub fn follow(&self) -> Result<()> {
        let mut ticks = [0u8; 8];
        // SAFETY: valid fd and an 8-byte buffer, as timerfd reads need.
        let n = unsafe { libc::read(self.timer.as_raw_fd(), ticks.as_mut_ptr().cast(), 8) };
        if n < 0 {
            let e = io::Error::last_os_error();
            // ECANCELED: the clock was set (the expected case); EAGAIN: nothing pending.
            if !matches!(e.raw_os_error(), Some(libc::ECANCELED | libc::EAGAIN)) {
                return Err(e).context("reading the clock-change timer");
            }
        }
        self.clock.set(measure_offset());
        self.arm().context("re-arming the clock-change timer")
    }

    /// Arms the timer at [`FAR_FUTURE_S`], cancelled by any setting of the clock.
    fn arm(&self) -> io::Result<()> {
        timerfd::set(
            &self.timer,
            libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
            Duration::from_secs(FAR_FUTURE_S as u64),
            Duration::ZERO,
        )
    }

    /// Seconds until the timer expires (0: disarmed).
    #[cfg(test)]
    fn armed_for_s(&self) -> i64 {
        // SAFETY: zeroed is a valid itimerspec; timerfd_gettime fills it.
        let mut cur: libc::itimerspec = unsafe { std::mem::zeroed() };
        // SAFETY: valid timerfd and out pointer.
        assert_eq!(
            unsafe { libc::timerfd_gettime(self.timer.as_raw_fd(), &mut cur) },
            0
        );
        cur.it_value.tv_sec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsink::SharedBuf;
    use zonemon_core::output::{JsonSink, Sink};

    fn year_of_last_line(out: &SharedBuf) -> String {
        let text = out.text();
        let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        v["time"].as_str().unwrap()[..4].to_string()
    }

    #[test]
    fn a_remeasured_offset_reaches_the_sink_and_the_timer_stays_armed() {
        let follower = ClockFollower::new().unwrap();
        let armed = follower.armed_for_s();
        assert!(
            armed > 100 * 365 * 86_400,
            "armed far in the future: {armed} s"
        );
        let out = SharedBuf::default();
        let mut sink = JsonSink::new(out.clone(), follower.clock());
        let now = crate::pipeline::boot_time_ns();
        sink.write_lost(Some(1), now).unwrap();
        let this_year = year_of_last_line(&out);
        assert!(this_year.as_str() > "2000", "{this_year}");
        // As if the offset were stale after a step of the clock: dated in 1970.
        follower.clock().set(-(now as i128));
        sink.write_lost(Some(1), now).unwrap();
        assert_eq!(year_of_last_line(&out), "1970");
        // The loop woke on the timer (nothing pending here: EAGAIN) and follows the clock.
        follower.follow().unwrap();
        sink.write_lost(Some(1), now).unwrap();
        assert_eq!(year_of_last_line(&out), this_year);
        assert!(follower.armed_for_s() > 100 * 365 * 86_400, "re-armed");
    }
}
