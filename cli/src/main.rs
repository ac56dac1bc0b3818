//! `nudge`: backtest rules against event logs, validate rules files, and
//! generate realistic shopper logs.

mod charts;
mod dashboard;
mod demo;
mod funnel;
mod keys;
mod logs;
mod replay_cmd;
mod report;
mod segments;
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
    /// Start the local stack, drive five shoppers over real HTTP, and show
    /// who got which email and why (`--replay`: backtest the example logs).
    #[command(after_help = "Examples:\n  nudge demo\n  nudge demo --replay --examples examples")]
    Demo {
        /// The examples directory (triggers.toml, templates/, events/).
        #[arg(long, default_value = "examples")]
        examples: PathBuf,
        /// Replay examples/events instead of running the live stack.
        #[arg(long)]
        replay: bool,
    },
    /// Run the whole pipeline on this machine: webhooks and tracking API in,
    /// SQLite profiles, durable checks, .eml outbox, decision and event logs.
    #[command(
        after_help = "Examples:\n  nudge serve --config examples/nudge.toml\n          RUST_LOG=debug nudge serve --config nudge.toml --data /var/lib/nudge\n\n\
        Logs go to standard error: RUST_LOG chooses what (default: info),\n\
        NUDGE_LOG_FORMAT=json writes one JSON object a line."
    )]
    Serve(serve::ServeArgs),
    /// Validate a rules file and say what each trigger will do.
    #[command(
        after_help = "Examples:\n  nudge check --triggers examples/triggers.toml\n          nudge check --triggers triggers.toml --templates templates/"
    )]
    Check {
        /// The rules file (triggers.toml).
        #[arg(long, value_name = "FILE", required_unless_present = "file")]
        triggers: Option<PathBuf>,
        /// The rules file, given without `--triggers`.
        #[arg(hide = true, conflicts_with = "triggers")]
        file: Option<PathBuf>,
        /// Also check that every referenced template exists here.
        #[arg(long)]
        templates: Option<PathBuf>,
        /// Also write the templates compiled, and checked against the rules, into this
        /// directory (`templates/compiled/` of a Lambda rules layer: `make
        /// rules-layer`), so a function's start-up skips that work.
        #[arg(long, requires = "templates")]
        compile: Option<PathBuf>,
    },
    /// Backtest rules: run the production decision code over event logs with
    /// a virtual clock and print one decision per line.
    #[command(
        after_help = "Examples:\n  nudge replay --triggers examples/triggers.toml examples/events/*.jsonl\n          nudge replay --triggers triggers.toml --out decisions.jsonl --html report.html nudge-data/\n          nudge replay --triggers triggers.toml --scheduler-lead 1m lambda-events.jsonl"
    )]
    Replay(replay_cmd::ReplayArgs),
    /// Attribution report from a decision log and an event log: per trigger
    /// and variant sent, opened, clicked, converted, revenue, intervals, lift.
    #[command(
        after_help = "Example:\n  nudge report --decisions nudge-data/decisions.jsonl --html report.html nudge-data/"
    )]
    Report(report::ReportArgs),
    /// Ordered steps over event logs: conversion and time between steps, and
    /// (with --triggers) what they say about each trigger's delay, backtested.
    #[command(
        after_help = "Example:\n  nudge funnel --steps \"Product Viewed,Product Added,Checkout Started,Order Completed\" \\\n    --triggers examples/triggers.toml nudge-data/"
    )]
    Funnel(funnel::FunnelArgs),
    /// Per shop: RFM segments and a BG/NBD model fitted on the order history
    /// (each person's probability of still being a customer, expected orders).
    #[command(after_help = "Example:\n  nudge segments --until 2026-11-30 --out segments.json nudge-data/")]
    Segments(segments::SegmentsArgs),
    /// Generate a seeded log of realistic shoppers (Segment JSON Lines).
    #[command(after_help = "Example:\n  nudge simulate --events 100000 --seed 7 --out shoppers.jsonl")]
    Simulate(simulate::SimulateArgs),
    /// Render a template for a sample profile: subject, HTML and text.
    #[command(
        after_help = "Example:\n  nudge preview --template cart-reminder --profile examples/profile.json --variant b"
    )]
    Preview(templates::PreviewArgs),
    /// Manage the keys `nudge serve` keeps in its data directory.
    #[command(after_help = "Example:\n  nudge keys rotate --data nudge-data")]
    Keys(keys::KeysArgs),
}

/// Logs to standard error. `RUST_LOG` chooses what (default: `info` for
/// `nudge serve`, warnings for the other commands, which print their own
/// results); `NUDGE_LOG_FORMAT=json` writes one JSON object a line.
fn init_logging(default: tracing::Level) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::from_level(default).into())
        .from_env_lossy();
    let json = std::env::var("NUDGE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!json && std::io::stderr().is_terminal());
    if json { logs.json().init() } else { logs.init() }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(if matches!(cli.command, Command::Serve(_)) { tracing::Level::INFO } else { tracing::Level::WARN });
    let result = match cli.command {
        Command::Replay(args) => replay_cmd::run(args),
        Command::Check { triggers, file, templates, compile } => {
            // clap requires one of the two.
            let file = triggers.or(file).unwrap_or_default();
            replay_cmd::check(&file, templates.as_deref(), compile.as_deref())
        }
        Command::Simulate(args) => simulate::run(args),
        Command::Preview(args) => templates::preview(args),
        Command::Report(args) => report::run(args),
        Command::Segments(args) => segments::run(args),
        Command::Funnel(args) => funnel::run(args),
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
