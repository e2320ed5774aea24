//! The polling source: the seed's "inefficient" baseline, scanning /proc at
//! each interval and diffing. It misses zones that live less than the
//! interval, dates transitions at the scan that noticed them, and knows no
//! exit status.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use zonemon_core::procscan;

use super::Source;
use crate::pipeline::{boot_time_ns, Pipeline};
use crate::timerfd;

/// Scans /proc each time its timer fires.
pub struct PollSource {
    timer: OwnedFd,
    interval: Duration,
    /// How long the last scan took (zero before the first).
    last_scan: Duration,
}

impl PollSource {
    /// A source scanning /proc every `interval`.
    pub fn open(interval: Duration) -> Result<Self> {
        let timer = timerfd::create(libc::CLOCK_BOOTTIME).context("timerfd_create")?;
        timerfd::set(&timer, 0, interval, interval).context("timerfd_settime")?;
        Ok(PollSource {
            timer,
            interval,
            last_scan: Duration::ZERO,
        })
    }
}

impl Source for PollSource {
    fn description(&self) -> String {
        format!("polling /proc every {:?}", self.interval)
    }

    fn wait_fd(&self) -> RawFd {
        self.timer.as_raw_fd()
    }

    fn scans_proc(&self) -> bool {
        true
    }

    fn drain(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        let mut expirations = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer from our timer fd.
        let n = unsafe { libc::read(self.timer.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(());
            }
            return Err(e).context("reading the poll timer");
        }
        if let Some(skipped) = skipped_scans(
            u64::from_ne_bytes(expirations),
            self.last_scan,
            self.interval,
        ) {
            tracing::warn!(
                "polling falls behind: {skipped} scan(s) of /proc skipped, the last one took \
                 {} ms against --interval {:?}; polling uses a whole CPU now (raise --interval, \
                 or use --source ebpf or proc-connector)",
                self.last_scan.as_millis(),
                self.interval,
            );
        }
        let started = Instant::now();
        let live: Vec<_> = procscan::scan(Path::new("/proc"))
            .iter()
            .map(procscan::ProcZone::to_observation)
            .collect();
        pipeline.reconcile(&live, boot_time_ns())?;
        self.last_scan = started.elapsed();
        Ok(())
    }
}

/// How many scans the timer's `expirations` since the last read skipped
/// because the previous scan, which took `last_scan`, outlasted `interval`:
/// none while each scan fits its interval (the timer fired once), nor when
/// something else held the loop up.
fn skipped_scans(expirations: u64, last_scan: Duration, interval: Duration) -> Option<u64> {
    (expirations > 1 && last_scan >= interval).then(|| expirations - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_that_fired_more_than_once_means_scans_were_skipped() {
        let (scan, interval) = (Duration::from_millis(130), Duration::from_millis(100));
        assert_eq!(
            skipped_scans(1, scan, interval),
            None,
            "the timer fired once"
        );
        assert_eq!(skipped_scans(3, scan, interval), Some(2));
        assert_eq!(
            skipped_scans(3, Duration::from_millis(20), interval),
            None,
            "the scan fits: something else held the loop up (the start-up, a slow reader)"
        );
    }
}
