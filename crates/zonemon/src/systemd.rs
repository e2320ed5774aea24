//! systemd's service protocol (`Type=notify`): readiness, status and the
//! watchdog, through the `sd-notify` crate. Without `NOTIFY_SOCKET` (or with
//! an empty one) every call does nothing; without `WATCHDOG_USEC` there is no timer at all.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use anyhow::{Context, Result};
use sd_notify::NotifyState;

use crate::timerfd;

/// Tells the service manager the daemon is ready, with a one-line status.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager the daemon is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

fn notify(states: &[NotifyState]) {
    // An empty NOTIFY_SOCKET (as `NOTIFY_SOCKET= zonemon daemon`) means none, as for systemd.
    if std::env::var_os("NOTIFY_SOCKET").is_none_or(|v| v.is_empty()) {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        eprintln!("zonemon: warning: cannot notify the service manager (NOTIFY_SOCKET): {e}");
    }
}

/// A timer that fires at half the watchdog interval the service manager asked
/// for: each time the event loop wakes for it, it pings (`WATCHDOG=1`), so a
/// stuck event loop stops the pings.
pub struct Watchdog {
    timer: OwnedFd,
}

impl Watchdog {
    /// The watchdog the environment asks for (`WATCHDOG_USEC`, `WATCHDOG_PID`), if any.
    pub fn from_env() -> Result<Option<Self>> {
        match sd_notify::watchdog_enabled() {
            Some(interval) if !interval.is_zero() => Ok(Some(Watchdog::every(interval / 2)?)),
            _ => Ok(None),
        }
    }

    fn every(period: Duration) -> Result<Self> {
        let timer =
            timerfd::create(libc::CLOCK_MONOTONIC).context("creating the watchdog timer")?;
        let period = period.max(Duration::from_millis(1));
        timerfd::set(&timer, 0, period, period).context("arming the watchdog timer")?;
        Ok(Watchdog { timer })
    }

    /// The timer's descriptor, readable when a ping is due.
    pub fn fd(&self) -> RawFd {
        self.timer.as_raw_fd()
    }

    /// Consumes the timer's expiry and pings the service manager.
    pub fn ping(&self) {
        let mut expirations = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer; non-blocking.
        let _ = unsafe { libc::read(self.fd(), expirations.as_mut_ptr().cast(), 8) };
        notify(&[NotifyState::Watchdog]);
    }
}
