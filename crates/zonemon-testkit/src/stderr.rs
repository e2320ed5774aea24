//! A child's stderr, read as it comes.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

/// What zonemon prints on stderr once it watches (its sources are attached).
pub const WATCHING: &str = "zonemon: watching";

/// What [`read_stderr`] hands back.
#[derive(Debug)]
pub struct StderrReader {
    /// The lines read so far, each ending in `\n`.
    pub text: Arc<Mutex<String>>,
    /// Gets `()` for each line holding the marker; disconnected once stderr
    /// ends (e.g. the child exited).
    pub ready: Receiver<()>,
}

/// Reads `err` line by line on a thread of its own: signals [`StderrReader::ready`]
/// on every line that contains `marker` (e.g. [`WATCHING`]) and appends each
/// line to [`StderrReader::text`] while that is shorter than `limit` bytes
/// (`usize::MAX`: everything). Stops at the end of `err` or a read error.
pub fn read_stderr(err: impl Read + Send + 'static, marker: &str, limit: usize) -> StderrReader {
    let text = Arc::new(Mutex::new(String::new()));
    let (ready_tx, ready) = channel();
    let sink = Arc::clone(&text);
    let marker = marker.to_string();
    thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if line.contains(&marker) {
                let _ = ready_tx.send(());
            }
            let mut t = sink.lock().unwrap();
            if t.len() < limit {
                t.push_str(&line);
                t.push('\n');
            }
        }
    });
    StderrReader { text, ready }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn signals_the_marker_and_keeps_lines_up_to_the_limit() {
        let input = format!("a\n{WATCHING} with ebpf\nbbbb\ncc\n");
        let r = read_stderr(std::io::Cursor::new(input), WATCHING, 8);
        r.ready.recv_timeout(Duration::from_secs(5)).unwrap();
        // The sender is dropped at the end of the input.
        while r.ready.recv_timeout(Duration::from_secs(5)).is_ok() {}
        assert_eq!(
            *r.text.lock().unwrap(),
            format!("a\n{WATCHING} with ebpf\n")
        );
    }
}
