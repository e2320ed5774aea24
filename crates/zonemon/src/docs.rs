//! Shell completions and man pages, generated from the command line's own
//! definition (`cli::Cli`), never written by hand.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

/// Writes `shell`'s completion script for zonemon to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<()> {
    // Generated in memory first: clap_complete panics on a write error (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "zonemon", &mut script);
    out.write_all(&script)?;
    out.flush().context("writing the completion script")
}

/// Writes `zonemon.1` and one `zonemon-SUBCOMMAND.1` per visible subcommand into `dir`.
pub fn manpages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))
}
