//! The last-resort `down` timer: a timerfd on CLOCK_BOOTTIME (the clock of
//! every observation) that the event loop sleeps on beside the source, set
//! to the moment the first shut-down zone's `down` is overdue and off while
//! no zone waits for one, so an idle zonemon has no timer wakeups.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::timerfd;

/// A one-shot timer at an absolute CLOCK_BOOTTIME time, or off.
pub struct DownTimer {
    fd: OwnedFd,
    /// When it fires, if set.
    armed: Option<u64>,
}

impl DownTimer {
    /// A timer that is off.
    pub fn new() -> Result<Self> {
        Ok(DownTimer {
            fd: timerfd::create(libc::CLOCK_BOOTTIME).context("timerfd_create(CLOCK_BOOTTIME)")?,
            armed: None,
        })
    }

    /// The descriptor that becomes readable when the timer fires.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the timer fire no later than `due` (CLOCK_BOOTTIME ns), or turns
    /// it off (`None`). A timer already set earlier than `due` is left as is
    /// (it fires, and is set again then): no system call per event while
    /// zones come and go.
    pub fn set(&mut self, due: Option<u64>) -> io::Result<()> {
        match (due, self.armed) {
            (None, None) => Ok(()),
            (Some(d), Some(a)) if a <= d => Ok(()),
            (due, _) => {
                // An absolute time of 0 would mean "off": a due time of 0 fires at once instead.
                self.settime(due.map_or(0, |d| d.max(1)))?;
                self.armed = due;
                Ok(())
            }
        }
    }

    /// After the timer fired: consumes the expiry so the descriptor is quiet again.
    pub fn clear(&mut self) {
        let mut expirations = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a buffer of 8; EAGAIN (not fired) is fine.
        unsafe { libc::read(self.fd(), expirations.as_mut_ptr().cast(), 8) };
        self.armed = None;
    }

    /// timerfd_settime at absolute time `at_ns`; 0 turns the timer off.
    fn settime(&self, at_ns: u64) -> io::Result<()> {
        let at = Duration::from_nanos(at_ns);
        timerfd::set(&self.fd, libc::TFD_TIMER_ABSTIME, at, Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonemon_core::clock::boot_time_ns;

    fn readable(t: &DownTimer, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd: t.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
    }

    #[test]
    fn fires_at_the_due_time_and_not_when_off() {
        let mut t = DownTimer::new().unwrap();
        assert!(!readable(&t, 50), "a new timer is off");
        t.set(Some(boot_time_ns() + 20_000_000)).unwrap();
        assert!(readable(&t, 2_000), "fires at the due time");
        t.clear();
        assert!(!readable(&t, 0), "cleared");
        t.set(Some(boot_time_ns() + 30_000_000)).unwrap();
        t.set(None).unwrap();
        assert!(!readable(&t, 100), "turned off before it fired");
    }

    #[test]
    fn an_earlier_due_time_moves_it_a_later_one_does_not() {
        let mut t = DownTimer::new().unwrap();
        let now = boot_time_ns();
        t.set(Some(now + 60_000_000_000)).unwrap();
        t.set(Some(now + 10_000_000)).unwrap();
        assert!(readable(&t, 2_000), "moved earlier");
        t.clear();
        t.set(Some(now + 10_000_000)).unwrap();
        t.set(Some(now + 60_000_000_000)).unwrap();
        assert!(readable(&t, 2_000), "kept the earlier time");
    }
}
