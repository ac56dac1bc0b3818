//! `nudge report`: per trigger and variant figures from a decision log and an
//! event log, as a table, JSON, or a self-contained HTML page with charts
//! (inline SVG: nothing is fetched from anywhere).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use jiff::Timestamp;
use nudge_app::attribution::{Attribution, ReportRow};
use nudge_app::http::html_escape;
use nudge_app::{AliasKey, Replay};
use nudge_core::{Decision, Dur, EventKind, Outcome, Triggers};

use crate::logs::{Format, LogReader};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Decision log (JSON Lines, as `nudge replay` or `nudge serve` write it).
    #[arg(long)]
    pub decisions: PathBuf,
    /// Event logs the decisions came from (for orders, opens and clicks).
    #[arg(required = true)]
    pub events: Vec<PathBuf>,
    /// Only decisions and orders at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<Timestamp>,
    /// Only decisions and orders before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<Timestamp>,
    /// Attribution window.
    #[arg(long, default_value = "5d")]
    pub window: Dur,
    /// Shop Segment messages belong to.
    #[arg(long, default_value = "default")]
    pub shop: String,
    /// Write a self-contained HTML report with charts here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write the rows as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The rules the decisions were made with: for a trigger whose variants
    /// name two factors of two levels each, the 2×2 analysis too.
    #[arg(long)]
    pub triggers: Option<PathBuf>,
}

/// Sends and skips by reason, per day (UTC).
#[derive(Default)]
pub struct Daily {
    pub days: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// The day last recorded, as days since the epoch and as its key:
    /// decisions come in time order, so most need no date formatting.
    last: Option<(i64, String)>,
}

impl Daily {
    pub fn record(&mut self, d: &Decision) {
        let key = match (d.decision, d.reason) {
            (Outcome::Send, _) => "sent",
            (Outcome::Defer, _) => return,
            (Outcome::Skip, r) => r.map_or("skip", |r| r.as_str()),
        };
        let n = d.at.as_second().div_euclid(86_400);
        let day = match &self.last {
            Some((last, day)) if *last == n => day,
            _ => &self.last.insert((n, d.at.strftime("%Y-%m-%d").to_string())).1,
        };
        let counts = match self.days.get_mut(day.as_str()) {
            Some(c) => c,
            None => self.days.entry(day.clone()).or_default(),
        };
        *counts.entry(key).or_default() += 1;
    }
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let in_range = |t: Timestamp| args.from.is_none_or(|f| t >= f) && args.to.is_none_or(|to| t < to);
    // Profile ids are derived from identities, so ingesting the events with
    // no rules gives the same ids the decisions name.
    let no_rules = Triggers::parse("", "none", None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut attribution = Attribution::new(args.window);
    let mut daily = Daily::default();
    let mut decisions: Vec<Decision> = Vec::new();
    let file = File::open(&args.decisions).with_context(|| format!("cannot open {}", args.decisions.display()))?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", args.decisions.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let d: Decision = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a decision", args.decisions.display(), i + 1))?;
        if in_range(d.at) {
            decisions.push(d);
        }
    }
    let mut replay = Replay::new(&no_rules, AliasKey::new(b"nudge-replay"));
    let mut timeline: Vec<(Timestamp, Item)> =
        decisions.into_iter().map(|d| (d.at, Item::Decision(Box::new(d)))).collect();
    for path in &args.events {
        let mut reader = LogReader::open(path, Format::Auto, &args.shop)?;
        while let Some(parsed) = reader.next()? {
            let parsed = parsed.map_err(|e| anyhow::anyhow!("{e}"))?;
            for e in parsed.events {
                let (at, kind) = (e.occurred_at, e.kind.clone());
                let profile = replay.identify(&e)?;
                if let Some(profile) = profile {
                    timeline.push((at, Item::Event(profile, kind)));
                }
            }
        }
    }
    timeline.sort_by_key(|(at, item)| (*at, matches!(item, Item::Event(..))));
    for (at, item) in timeline {
        match item {
            Item::Decision(d) => {
                daily.record(&d);
                attribution.decision(&d);
            }
            Item::Event(profile, kind) if in_range(at) => {
                let clicked = matches!(kind, EventKind::EmailClicked { .. });
                match kind {
                    EventKind::OrderPlaced { order } => attribution.order(&profile, at.as_second(), order.value),
                    EventKind::EmailOpened { message } | EventKind::EmailClicked { message } => {
                        if let Some(t) = &message.trigger {
                            attribution.engagement(&profile, t, message.episode, clicked);
                        }
                    }
                    _ => {}
                }
            }
            Item::Event(..) => {}
        }
    }
    let rows = attribution.report();
    print_table(&mut std::io::stdout(), &rows);
    if let Some(path) = &args.triggers {
        let rules = crate::replay_cmd::load_rules(path, None)?;
        for f in rules.triggers.iter().filter_map(|t| nudge_app::attribution::factorial(t, &rows)) {
            print_factorial(&mut std::io::stdout(), &f);
        }
    }
    print_best_hour(&mut std::io::stdout(), &attribution.best_hour);
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &args.html {
        write_html(p, &rows, &daily)?;
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A 2×2 test's table of conversion rates, its main effects and the
/// interaction, and whether its sizes can tell the effects apart.
pub fn print_factorial(out: &mut dyn std::io::Write, f: &nudge_app::attribution::Factorial) {
    let [a, b] = &f.factors;
    let _ = writeln!(out, "\n2×2 test of {}: {a} × {b}", f.trigger);
    let _ = writeln!(
        out,
        "  {:<24} {:>18} {:>18}",
        "",
        format!("{b}={}", f.levels[1][0]),
        format!("{b}={}", f.levels[1][1])
    );
    for i in 0..2 {
        let cell = |j: usize| format!("{:.1} % of {}", 100.0 * f.rates[i][j], f.sent[i][j]);
        let _ = writeln!(out, "  {:<24} {:>18} {:>18}", format!("{a}={}", f.levels[0][i]), cell(0), cell(1));
    }
    for (k, name) in f.factors.iter().enumerate() {
        let effect = 100.0 * f.main_effects[k];
        let (low, high) = (&f.levels[k][0], &f.levels[k][1]);
        let verdict = match f.mde[k] {
            Some(d) if f.main_effects[k].abs() < d => {
                format!("too few to conclude: a difference under {:.1} points would go unseen", 100.0 * d)
            }
            Some(_) => "detectable at these sizes".to_owned(),
            None => "-".to_owned(),
        };
        let _ = writeln!(out, "  main effect of {name} ({high} vs {low}): {effect:+.1} points; {verdict}");
    }
    let _ = writeln!(out, "  interaction: {:+.1} points", 100.0 * f.interaction);
}

/// Opens and clicks of sends in the recipient's best hour against the
/// rest, when any send went to someone with a best hour.
pub fn print_best_hour(out: &mut dyn std::io::Write, b: &nudge_app::attribution::BestHourFigures) {
    if b.in_best_hour.sent + b.other_hours.sent == 0 {
        return;
    }
    let _ = writeln!(out, "\nsends to people with a best hour    sent   opened   clicked");
    for (label, e) in [("in their best hour", &b.in_best_hour), ("at another hour", &b.other_hours)] {
        let _ = writeln!(
            out,
            "  {label:<32} {:>5} {:>7.1} % {:>7.1} %",
            e.sent,
            e.open_rate() * 100.0,
            e.click_rate() * 100.0
        );
    }
}

enum Item {
    Decision(Box<Decision>),
    Event(String, EventKind),
}

pub fn print_table(out: &mut dyn std::io::Write, rows: &[ReportRow]) {
    let _ = writeln!(
        out,
        "{:<20} {:<8} {:>7} {:>7} {:>7} {:>9} {:>11} {:>18} {:>8} {:>8}",
        "trigger", "variant", "sent", "opened", "clicked", "converted", "revenue", "rate (95% CI)", "lift", "P(beats)"
    );
    for row in rows {
        let f = &row.figures;
        let _ = writeln!(
            out,
            "{:<20} {:<8} {:>7} {:>7} {:>7} {:>9} {:>11.2} {:>5.1}% ({:>4.1}-{:>4.1}) {:>8} {:>8}",
            row.trigger,
            row.variant,
            f.sent,
            f.opened,
            f.clicked,
            f.converted,
            f.revenue,
            100.0 * row.conversion_rate,
            100.0 * row.interval_95.0,
            100.0 * row.interval_95.1,
            row.lift.map_or("-".to_owned(), |l| format!("{:+.1}%", 100.0 * l)),
            match (row.conclusive, row.p_beats_holdout) {
                (Some(false), _) => "too few".to_owned(),
                (_, Some(p)) => format!("{p:.3}"),
                _ => "-".to_owned(),
            },
        );
        if let (Some(false), Some(mde)) = (row.conclusive, row.mde) {
            let _ = writeln!(
                out,
                "{:<20} {:<8} too few to conclude: at these sizes a difference under {:.1} points would go unseen",
                "",
                "",
                100.0 * mde
            );
        }
        if f.holdout > 0 {
            let _ = writeln!(
                out,
                "{:<20} {:<8} holdout {} (converted {}, revenue {:.2})",
                "", "", f.holdout, f.holdout_converted, f.holdout_revenue
            );
        }
    }
}

/// A self-contained page: a table, conversion by variant with 95 % interval
/// whiskers, and decisions by reason per day as stacked bars.
pub fn write_html(path: &Path, rows: &[ReportRow], daily: &Daily) -> Result<()> {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>nudge report</title><style>\
         body{font:14px system-ui,sans-serif;margin:24px;color:#1f2933}table{border-collapse:collapse}\
         td,th{padding:4px 10px;border-bottom:1px solid #e4e7eb;text-align:right}td:first-child,th:first-child{text-align:left}\
         h2{margin-top:32px}</style></head><body><h1>nudge report</h1>",
    );
    h.push_str("<table><tr><th>trigger / variant</th><th>sent</th><th>opened</th><th>clicked</th><th>converted</th><th>revenue</th><th>conversion (95% CI)</th><th>holdout</th><th>lift</th><th>P(beats holdout)</th></tr>");
    for r in rows {
        let f = &r.figures;
        let _ = write!(
            h,
            "<tr><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.1}% ({:.1}–{:.1})</td><td>{} ({} conv.)</td><td>{}</td><td>{}</td></tr>",
            html_escape(&r.trigger),
            html_escape(&r.variant),
            f.sent,
            f.opened,
            f.clicked,
            f.converted,
            f.revenue,
            100.0 * r.conversion_rate,
            100.0 * r.interval_95.0,
            100.0 * r.interval_95.1,
            f.holdout,
            f.holdout_converted,
            r.lift.map_or("–".to_owned(), |l| format!("{:+.1}%", 100.0 * l)),
            r.p_beats_holdout.map_or("–".to_owned(), |p| format!("{p:.3}")),
        );
    }
    h.push_str("</table><h2>Conversion by variant (95% interval)</h2>");
    let max = rows.iter().map(|r| r.interval_95.1).fold(0.01, f64::max);
    let (bar_h, width) = (26.0, 520.0);
    let _ = write!(
        h,
        "<svg width=\"760\" height=\"{}\" role=\"img\" aria-label=\"conversion by variant\">",
        rows.len() as f64 * bar_h + 20.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = i as f64 * bar_h + 4.0;
        let x = |v: f64| 220.0 + width * v / max;
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{:.0}\" font-size=\"12\">{} / {}</text><rect x=\"220\" y=\"{y:.0}\" width=\"{:.1}\" height=\"16\" fill=\"#1f6feb\"><title>{:.2}%</title></rect>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"#1f2933\" stroke-width=\"2\"/>",
            y + 13.0,
            html_escape(&r.trigger),
            html_escape(&r.variant),
            x(r.conversion_rate) - 220.0,
            100.0 * r.conversion_rate,
            x(r.interval_95.0),
            x(r.interval_95.1),
            y + 8.0,
            y + 8.0,
        );
    }
    h.push_str("</svg><h2>Decisions by day</h2>");
    let reasons: Vec<&str> = {
        let mut all: Vec<&str> = daily.days.values().flat_map(|m| m.keys().copied()).collect();
        all.sort();
        all.dedup();
        all
    };
    let palette =
        ["#1f6feb", "#0b6e4f", "#c2410c", "#7b8794", "#a21caf", "#ca8a04", "#0e7490", "#be123c", "#4d7c0f", "#6d28d9"];
    let day_max = daily.days.values().map(|m| m.values().sum::<u64>()).max().unwrap_or(1).max(1) as f64;
    let col = 18.0;
    let _ = write!(
        h,
        "<svg width=\"{:.0}\" height=\"260\" role=\"img\" aria-label=\"decisions by day\">",
        daily.days.len() as f64 * col + 40.0
    );
    for (i, (day, counts)) in daily.days.iter().enumerate() {
        let mut y = 220.0;
        for (k, reason) in reasons.iter().enumerate() {
            let n = counts.get(reason).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let hgt = 200.0 * n as f64 / day_max;
            y -= hgt;
            let _ = write!(
                h,
                "<rect x=\"{:.0}\" y=\"{y:.1}\" width=\"{:.0}\" height=\"{hgt:.1}\" fill=\"{}\"><title>{day} {reason}: {n}</title></rect>",
                i as f64 * col + 30.0,
                col - 3.0,
                palette[k % palette.len()]
            );
        }
    }
    h.push_str("</svg><p>");
    for (k, reason) in reasons.iter().enumerate() {
        let _ =
            write!(h, "<span style=\"color:{}\">■</span> {} &nbsp; ", palette[k % palette.len()], html_escape(reason));
    }
    h.push_str(
        "</p><p>Conversion: orders within the attribution window after a send (or a holdout decision), last decision wins. \
         Interval: Wilson score, 95%. P(beats holdout): Beta(1+conversions, 1+non-conversions) posteriors, 20,000 seeded draws.</p></body></html>",
    );
    std::fs::write(path, h).with_context(|| format!("cannot write {}", path.display()))
}
