//! `nudge keys`: managing `DATA/keys` (nudge_local::keys).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(clap::Subcommand)]
pub enum KeysAction {
    /// Start signing links with a new key; links signed with the current
    /// one (and the last few before it) keep working. Restart `nudge serve`
    /// to use it.
    Rotate {
        /// The data directory of `nudge serve`.
        #[arg(long, default_value = "nudge-data")]
        data: PathBuf,
    },
}

pub fn run(args: KeysArgs) -> Result<ExitCode> {
    match args.action {
        KeysAction::Rotate { data } => {
            let rotated = nudge_local::keys::rotate(&data)?;
            println!(
                "{}: new link-signing key; {} earlier key(s) still accepted. Restart nudge serve to use it.",
                data.join("keys").display(),
                rotated.previous_links.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
