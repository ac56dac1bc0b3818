//! `nudge`: backtest rules against event logs, validate rules files, and
//! generate realistic shopper logs.

mod dashboard;
mod demo;
mod keys;
mod logs;
mod replay_cmd;
mod report;
mod serve;
mod simulate;
mod templates;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A replay makes and drops small strings and vectors for every event; with
/// glibc's allocator about 15 % of its time went to malloc and free. With
/// mimalloc, replay and parsing run about 1.25x faster (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "nudge", version, about = "Behavioural email triggers for storefronts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Backtest rules: run the production decision code over event logs with
    /// a virtual clock and print one decision per line.
    Replay(replay_cmd::ReplayArgs),
    /// Validate a rules file and say what each trigger will do.
    Check {
        /// The rules file (triggers.toml).
        file: PathBuf,
        /// Also check that every referenced template exists here.
        #[arg(long)]
        templates: Option<PathBuf>,
        /// Also write the templates compiled, and checked against the rules, into this
        /// directory (`templates/compiled/` of a Lambda rules layer: `make
        /// rules-layer`), so a function's start-up skips that work.
        #[arg(long, requires = "templates")]
        compile: Option<PathBuf>,
    },
    /// Attribution report from a decision log and an event log: per trigger
    /// and variant sent, opened, clicked, converted, revenue, intervals, lift.
    Report(report::ReportArgs),
    /// Run the whole pipeline on this machine: webhooks and tracking API in,
    /// SQLite profiles, durable checks, .eml outbox, decision and event logs.
    Serve(serve::ServeArgs),
    /// Manage the keys `nudge serve` keeps in its data directory.
    Keys(keys::KeysArgs),
    /// Render a template for a sample profile: subject, HTML and text.
    Preview(templates::PreviewArgs),
    /// Generate a seeded log of realistic shoppers (Segment JSON Lines).
    Simulate(simulate::SimulateArgs),
    /// Start the local stack, drive five shoppers over real HTTP, and show
    /// who got which email and why (`--replay`: backtest the example logs).
    Demo {
        /// The examples directory (triggers.toml, templates/, events/).
        #[arg(long, default_value = "examples")]
        examples: PathBuf,
        /// Replay examples/events instead of running the live stack.
        #[arg(long)]
        replay: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => replay_cmd::run(args),
        Command::Check { file, templates, compile } => {
            replay_cmd::check(&file, templates.as_deref(), compile.as_deref())
        }
        Command::Simulate(args) => simulate::run(args),
        Command::Preview(args) => templates::preview(args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Demo { examples, replay: true } => demo::run(&examples),
        Command::Demo { examples, replay: false } => demo::live(&examples),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
