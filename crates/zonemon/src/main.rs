//! zonemon: tells you the instant a zone boots or shuts down, from the kernel.

mod api;
mod cli;
mod config;
mod daemon;
mod docs;
mod down_timer;
mod events;
mod fleet;
mod hooks;
mod journal;
mod list;
mod logging;
mod metrics;
mod pipeline;
mod priority;
mod sources;
mod stats;
mod store;
mod systemd;
#[cfg(test)]
mod testsink;
#[cfg(test)]
mod thread_tid;
mod timeline;
mod timerfd;
mod top;
mod units;
mod wallclock;
mod watch;

use std::process::ExitCode;

use cli::{Action, Cli};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        // Whoever read our output went away (`zonemon list | head -1`): nothing to say.
        Err(e) if watch::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zonemon: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    logging::init();
    let action = parse_cli().action().unwrap_or_else(|e| e.exit());
    match action {
        Action::WatchFleet(opts, from, since) => fleet::consume::watch(&opts, &from, since),
        Action::ListFleet { parseable, from } => fleet::consume::list(parseable, &from),
        Action::Watch(opts, via) => api::watch(&opts, &via).unwrap_or_else(|| watch::run(&opts)),
        Action::List { parseable, via } => api::list(parseable, &via).unwrap_or_else(|| {
            list::run(
                parseable,
                zonemon_core::runtimes::default_chain(std::path::Path::new("/")),
                &mut std::io::stdout().lock(),
            )
        }),
        Action::Wait(args) => return Ok(api::wait(&args)),
        Action::Completions(shell) => docs::completions(shell, &mut std::io::stdout().lock()),
        Action::Manpages(dir) => docs::manpages(&dir),
        Action::FleetReplay(args) => fleet::replay::run(&args),
        Action::Daemon(opts) => daemon::run(&opts),
        Action::Timeline(opts) => timeline::run(&opts),
        Action::Top(args) => top::run(&args),
        Action::Events(opts) => events::run(
            &opts,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        ),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// The command line; a usage error of `zonemon wait` exits with wait's failure status
/// (125), so it cannot pass for a zone's exit code.
fn parse_cli() -> Cli {
    Cli::parse_args().unwrap_or_else(|e| {
        let waiting = std::env::args_os().nth(1).is_some_and(|a| a == "wait");
        let _ = e.print();
        std::process::exit(match waiting && e.use_stderr() {
            true => i32::from(api::EXIT_WAIT_FAILED),
            false => e.exit_code(),
        })
    })
}
