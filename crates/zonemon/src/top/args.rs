//! `zonemon top`'s command line (flattened into `cli` as the `top` subcommand).

use clap::Args;
use zonemon_core::filter::Filter;

use crate::api::ViaDaemon;
use crate::fleet::FromArgs;

/// `zonemon top`'s flags.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Start with this filter (as `watch --filter`; repeatable). In the view, `/` edits it:
    /// KEY=VALUE words separated by spaces, a bare WORD meaning name=*WORD*.
    #[arg(long, value_name = "KEY=VALUE", value_parser = filter_arg)]
    pub filter: Vec<String>,
    #[command(flatten)]
    pub via: ViaDaemon,
    #[command(flatten)]
    pub from: FromArgs,
}

impl TopArgs {
    /// The filter's text as the view's filter line shows it.
    pub fn filter_text(&self) -> String {
        self.filter.join(" ")
    }
}

fn filter_arg(s: &str) -> Result<String, String> {
    Filter::parse([s]).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}
