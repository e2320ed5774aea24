//! The polling source: the seed's "inefficient" baseline, scanning /proc at
//! each interval and diffing. It misses zones that live less than the
//! interval, dates transitions at the scan that noticed them, and knows no
//! exit status.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use zonemon_core::procscan;

use super::Source;
use crate::pipeline::{boot_time_ns, Pipeline};
use crate::timerfd;

/// Scans /proc each time its timer fires.
pub struct PollSource {
    timer: OwnedFd,
    interval: Duration,
}

impl PollSource {
    /// A source scanning /proc every `interval`.
    pub fn open(interval: Duration) -> Result<Self> {
        let timer = timerfd::create(libc::CLOCK_BOOTTIME).context("timerfd_create")?;
        timerfd::set(&timer, 0, interval, interval).context("timerfd_settime")?;
        Ok(PollSource { timer, interval })
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
        let live: Vec<_> = procscan::scan(Path::new("/proc"))
            .iter()
            .map(procscan::ProcZone::to_observation)
            .collect();
        pipeline.reconcile(&live, boot_time_ns())?;
        Ok(())
    }
}
