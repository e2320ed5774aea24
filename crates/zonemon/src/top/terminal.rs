//! The terminal while `zonemon top` owns it: raw mode and the alternate
//! screen, given back on every way out (a normal return, an error, a panic
//! in any thread: [`Screen`]'s `Drop` and a panic hook), and stderr turned
//! into lines for the event log meanwhile ([`StderrCapture`]), so no warning
//! of the feed scribbles over the screen.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Stdout};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

use anyhow::{Context, Result};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

/// The terminal in raw mode on the alternate screen; given back when dropped.
pub struct Screen {
    /// The ratatui terminal drawing on stdout.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Takes the terminal (and installs the panic hook that gives it back).
    pub fn enter() -> Result<Screen> {
        install_panic_hook();
        enable_raw_mode().context("putting the terminal in raw mode (is stdout a terminal?)")?;
        let entered = execute!(io::stdout(), EnterAlternateScreen, Hide)
            .context("entering the alternate screen")
            .and_then(|()| {
                Terminal::new(CrosstermBackend::new(io::stdout())).context("starting to draw")
            });
        match entered {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back: cursor shown, main screen, cooked mode. Harmless when repeated.
pub fn restore() {
    let _ = execute!(io::stdout(), Show, LeaveAlternateScreen);
    let _ = disable_raw_mode();
}

/// On a panic (in any thread): the terminal and stderr given back first, so
/// the message is readable, then the process ends (a view whose feed or
/// drawing died would only show stale data).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            release_stderr();
            previous(info);
            std::process::exit(101);
        }));
    });
}

/// stderr's own descriptor while it is captured (−1: not captured).
static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);

/// Puts stderr back where it was, once.
fn release_stderr() {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the duplicate made by `StderrCapture::start`, owned here from now on.
        unsafe {
            libc::dup2(saved, libc::STDERR_FILENO);
            libc::close(saved);
        }
    }
}

/// stderr sent, line by line, to a function instead of the terminal; put back when dropped.
pub struct StderrCapture(());

impl StderrCapture {
    /// Sends every line written to stderr from now on to `on_line` (on a thread of its own).
    pub fn start(on_line: impl Fn(String) + Send + 'static) -> Result<StderrCapture> {
        let mut fds = [0; 2];
        // SAFETY: plain syscalls; every descriptor made is owned below.
        unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return Err(io::Error::last_os_error()).context("making a pipe for stderr");
            }
            let saved = libc::fcntl(libc::STDERR_FILENO, libc::F_DUPFD_CLOEXEC, 3);
            if saved < 0 || libc::dup2(fds[1], libc::STDERR_FILENO) < 0 {
                let e = io::Error::last_os_error();
                libc::close(fds[0]);
                libc::close(fds[1]);
                if saved >= 0 {
                    libc::close(saved);
                }
                return Err(e).context("redirecting stderr");
            }
            libc::close(fds[1]);
            SAVED_STDERR.store(saved, Ordering::SeqCst);
        }
        // SAFETY: fds[0] is the pipe's read end, owned by nothing else.
        let read = File::from(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        std::thread::Builder::new()
            .name("top-stderr".into())
            .spawn(move || {
                // Until stderr is put back (end of file); bytes as they come, never refused.
                let mut read = BufReader::new(read);
                let mut line = Vec::new();
                while read.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                    let text = String::from_utf8_lossy(&line);
                    on_line(text.trim_end_matches('\n').to_string());
                    line.clear();
                }
            })
            .context("starting the stderr reader")?;
        Ok(StderrCapture(()))
    }
}

impl Drop for StderrCapture {
    fn drop(&mut self) {
        release_stderr();
    }
}
