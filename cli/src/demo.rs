//! `nudge demo`: replays each example scenario and prints who would get
//! which email, and why not where they would not.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nudge_app::{AliasKey, Replay};
use nudge_core::{Decision, Outcome};

use crate::logs::{Format, LogReader};
use crate::replay_cmd::load_rules;

pub fn run(examples: &Path) -> Result<ExitCode> {
    let rules = load_rules(&examples.join("triggers.toml"), None)?;
    let dir = examples.join("events");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no scenario logs (*.jsonl) in {}", dir.display());
    }
    println!(
        "Replaying {} scenario(s) against {} (rules {})\n",
        files.len(),
        examples.join("triggers.toml").display(),
        rules.version
    );
    println!(
        "{:<18} {:<9} {:<17} {:<21} {:<8} {:<17} variant",
        "scenario", "who", "trigger", "decided at (UTC)", "decision", "reason"
    );
    let mut sends = 0;
    for file in &files {
        let mut replay = Replay::new(&rules, AliasKey::new(b"nudge-demo"));
        let mut decisions: Vec<Decision> = Vec::new();
        let mut reader = LogReader::open(file, Format::Auto, "demo-shop")?;
        while let Some(parsed) = reader.next()? {
            let parsed = parsed.map_err(|e| anyhow::anyhow!("{e}"))?;
            for e in &parsed.events {
                replay.push(e, parsed.arrived, &mut |d| decisions.push(d.clone()))?;
            }
        }
        replay.finish(&mut |d| decisions.push(d.clone()))?;
        let scenario = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        let profiles = replay.store.profiles();
        let who = |id: &str| {
            profiles
                .iter()
                .find(|p| p.id == id)
                .and_then(|p| p.first_name.clone())
                .unwrap_or_else(|| id.chars().take(8).collect())
        };
        let finals: Vec<&Decision> = decisions.iter().filter(|d| d.decision != Outcome::Defer).collect();
        if finals.is_empty() {
            println!("{scenario:<18} (no trigger armed)");
        }
        for d in finals {
            let decision = match d.decision {
                Outcome::Send => {
                    sends += 1;
                    "SEND"
                }
                Outcome::Skip => "skip",
                Outcome::Defer => "defer",
            };
            println!(
                "{scenario:<18} {:<9} {:<17} {:<21} {decision:<8} {:<17} {}",
                who(&d.profile),
                d.trigger,
                d.at.strftime("%Y-%m-%d %H:%M").to_string(),
                d.reason.map_or("-", |r| r.as_str()),
                d.variant.as_deref().unwrap_or("-")
            );
        }
    }
    println!("\n{sends} email(s) would be sent. Every line above is a decision nudge logs, with its reason.");
    println!("Backtest your own log: nudge replay --triggers {} LOG.jsonl", examples.join("triggers.toml").display());
    Ok(ExitCode::SUCCESS)
}
