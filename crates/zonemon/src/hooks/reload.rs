//! SIGHUP: the daemon re-reads its config file and puts its hooks (with their
//! filters) in force at once. Records keep flowing meanwhile: runs already
//! queued happen as configured when queued, later records meet the new hooks.
//! A file that does not read or check leaves the hooks in force as they are.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::{Handle, Signals};

use super::{HookRunner, HookSet};
use crate::config;

/// What a reload reads.
#[derive(Debug, Clone)]
pub struct Reload {
    /// The config file.
    pub path: PathBuf,
    /// Whether the file must exist (the user named it); a missing default file has no hooks.
    pub required: bool,
    /// Whether hooks came from `--hook` flags: they override the file's, so a reload keeps them.
    pub hooks_from_flags: bool,
}

/// The thread that waits for SIGHUP (it sleeps until one comes: no polling).
pub struct Reloader {
    handle: Handle,
    thread: JoinHandle<()>,
}

impl Reloader {
    /// Handles SIGHUP from now on by reloading `runner`'s hooks as `reload` says.
    pub fn start(reload: Reload, runner: Arc<HookRunner>) -> Result<Reloader> {
        let mut signals = Signals::new([SIGHUP]).context("installing the SIGHUP handler")?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("zonemon-reload".into())
            .spawn(move || {
                for _ in signals.forever() {
                    reload_now(&reload, &runner);
                }
            })
            .context("starting the reload thread")?;
        Ok(Reloader { handle, thread })
    }

    /// Stops handling SIGHUP.
    pub fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

fn reload_now(reload: &Reload, runner: &HookRunner) {
    if reload.hooks_from_flags {
        tracing::warn!("SIGHUP: the hooks come from --hook flags, which the config file cannot change; nothing reloaded");
        return;
    }
    let loaded =
        config::load(&reload.path, reload.required).and_then(|file| HookSet::new(file.hook));
    match loaded {
        Ok(set) => {
            let names = set.names();
            if let Err(e) = runner.replace(set) {
                tracing::error!(
                    error = %format!("{e:#}"),
                    "SIGHUP: the hooks are reloaded but no thread could be started to run them: \
                     their runs queue (and are dropped once the queue is full) until a restart"
                );
            }
            tracing::info!(
                config = %reload.path.display(),
                hooks = %names,
                "SIGHUP: hooks reloaded (other keys take effect at the next start)"
            );
        }
        Err(e) => tracing::error!(
            config = %reload.path.display(),
            error = %format!("{e:#}"),
            "SIGHUP: the config file is refused; the hooks in force stay"
        ),
    }
}
