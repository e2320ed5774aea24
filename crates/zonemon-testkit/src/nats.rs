//! A `nats-server` of a test's or the benchmark's own: Debian's package,
//! JetStream on, a loopback port, its store in a directory of the caller's;
//! restarted on the same port and store, killed with SIGKILL, and killed
//! when dropped.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::wait::within;

/// A running (or killed, to be restarted) `nats-server`.
pub struct NatsServer {
    child: Option<Child>,
    /// Its loopback port.
    pub port: u16,
    args: Vec<String>,
    /// Its log (stderr), appended to across restarts.
    pub log: PathBuf,
}

impl NatsServer {
    /// Starts one on a free loopback port with JetStream on and its store in `dir/js`
    /// (unless `jetstream` is false), `extra` added to its arguments; returns once it serves.
    pub fn start(dir: &Path, jetstream: bool, extra: &[&str]) -> io::Result<NatsServer> {
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut args: Vec<String> = vec!["-a".into(), "127.0.0.1".into(), "-p".into()];
        args.push(port.to_string());
        if jetstream {
            args.extend(["-js".into(), "-sd".into()]);
            args.push(dir.join("js").display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut n = NatsServer {
            child: None,
            port,
            args,
            log: dir.join("nats.log"),
        };
        n.restart()?;
        Ok(n)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts it (again, on the same port and store) and waits (30 s at most) until it answers.
    pub fn restart(&mut self) -> io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        self.child = Some(
            Command::new("nats-server")
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?,
        );
        if !within(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        }) {
            self.kill9();
            return Err(io::Error::other(format!(
                "nats-server did not listen within 30 s; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )));
        }
        // JetStream recovers its store before it serves; a little room for it.
        thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    /// `kill -9`, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
