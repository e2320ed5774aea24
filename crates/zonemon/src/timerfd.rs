//! The timerfds the event loop sleeps on (the poll interval, the `down`
//! timer, the clock-change notice, the watchdog) and the journal's syncer
//! sleeps on: creating, setting and waiting for one, in one place.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A new non-blocking, close-on-exec timerfd on `clock`, disarmed.
pub fn create(clock: libc::clockid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned below.
    let fd = unsafe { libc::timerfd_create(clock, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `timerfd_settime(timer, flags, {value, interval})`: fires at `value`
/// (relative, or absolute with `TFD_TIMER_ABSTIME`; zero disarms), then every
/// `interval` (zero: once).
pub fn set(timer: &OwnedFd, flags: i32, value: Duration, interval: Duration) -> io::Result<()> {
    let spec = libc::itimerspec {
        it_interval: timespec(interval),
        it_value: timespec(value),
    };
    // SAFETY: valid timerfd and itimerspec; the old value is not asked for.
    let rc =
        unsafe { libc::timerfd_settime(timer.as_raw_fd(), flags, &spec, std::ptr::null_mut()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Blocks the calling thread until `timer` has fired, and takes its expirations.
pub fn wait(timer: &OwnedFd) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: timer.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, no timeout.
        if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut expirations = 0u64;
        // SAFETY: reads 8 bytes into a u64 from a valid timerfd.
        let n = unsafe {
            libc::read(
                timer.as_raw_fd(),
                (&mut expirations as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if n == std::mem::size_of::<u64>() as isize {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // Disarmed or re-armed between the poll and the read: wait on.
        if n < 0
            && !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            )
        {
            return Err(e);
        }
    }
}

/// `d` as a `timespec`.
fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}
