//! `nudge funnel`: ordered steps over event logs — how many people go from
//! each step to the next and how long they take — and, given rules, what
//! that says about each trigger's delay, with the backtest of the
//! suggestion beside the rules as written. docs/analytics.md explains it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use jiff::Timestamp;
use nudge_analytics::funnel::{self, Step};
use nudge_app::{AliasKey, Replay};
use nudge_core::event::SEGMENT_NAMES;
use nudge_core::rules::Arm;
use nudge_core::{Dur, Event, Reason, Triggers};
use serde::Serialize;

#[derive(clap::Args)]
pub struct FunnelArgs {
    /// The steps in order, comma-separated: Segment names ("Product Viewed",
    /// "Order Completed"), nudge's (product_viewed, order_placed) or custom
    /// event names.
    #[arg(long, value_delimiter = ',', required = true)]
    pub steps: Vec<String>,
    /// How long after entering (the first step) a person may take to reach
    /// the last.
    #[arg(long, default_value = "7d", value_parser = parse_dur)]
    pub within: Dur,
    /// The rules whose delays to weigh against the funnel's timings: for
    /// each trigger armed by one step and cancelled by the next, the share
    /// its delay comes too late for, a suggested delay, and both backtested.
    #[arg(long)]
    pub triggers: Option<PathBuf>,
    /// Write the report (steps, timings, suggestions) here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page with charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Also report the funnel per segment of the rules (`[segments]` in
    /// --triggers), each person in the segments they were in when they
    /// entered.
    #[arg(long, requires = "triggers")]
    pub by_segment: bool,
    #[command(flatten)]
    pub input: crate::logs::Input,
}

fn parse_dur(s: &str) -> Result<Dur, String> {
    Dur::parse(s).map_err(|e| e.to_string())
}

#[derive(Serialize)]
struct Report {
    people_entered: usize,
    within_secs: i64,
    steps: Vec<Step>,
    suggestions: Vec<Suggestion>,
    /// With --by-segment: the steps of the people in each segment when
    /// they entered ("(none)": in no segment).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    by_segment: BTreeMap<String, Vec<Step>>,
}

/// One person's path through the funnel and the segments they were in
/// when they entered.
struct Path {
    reached: Vec<i64>,
    segments: Vec<String>,
}

/// What a trigger's delay means against the funnel, and its backtest.
#[derive(Serialize)]
struct Suggestion {
    trigger: String,
    /// The step that arms it and the next one, which cancels it.
    from: String,
    to: String,
    delay_secs: i64,
    /// Of the people who went from `from` to `to`: the share who had done
    /// so by the time the delay was up (no reminder needed).
    converted_within_delay: f64,
    /// The delay by which 90 % of them had (rounded up to the minute).
    suggested_delay_secs: i64,
    text: String,
    as_written: Backtest,
    suggested: Backtest,
}

#[derive(Clone, Copy, Serialize, PartialEq)]
struct Backtest {
    armed: u64,
    sent: u64,
    /// Checks that found the person had already bought.
    skipped_converted: u64,
    /// Sends followed by an order within the attribution window.
    converted_after_send: u64,
}

/// A step name as rules name events: a Segment name's vocabulary name,
/// else the name itself (a vocabulary or custom event's).
fn event_name(step: &str) -> Result<String> {
    let step = step.trim();
    if step.is_empty() {
        anyhow::bail!("an empty step name in --steps");
    }
    let vocab = SEGMENT_NAMES.iter().find(|(segment, _)| segment.eq_ignore_ascii_case(step)).map(|(_, v)| *v);
    Ok(vocab.unwrap_or(step).to_owned())
}

pub fn run(args: FunnelArgs) -> Result<ExitCode> {
    let names: Vec<String> = args.steps.iter().map(|s| event_name(s)).collect::<Result<_>>()?;
    if names.len() < 2 {
        anyhow::bail!("a funnel needs at least two steps (--steps \"Checkout Started,Order Completed\")");
    }
    let (logs, alias_key) = args.input.open()?;
    let mut events = Vec::new();
    args.input.each_event(&logs, |e, arrived| {
        events.push((e, arrived));
        Ok(())
    })?;
    let rules = args.triggers.as_deref().map(|p| crate::replay_cmd::load_rules(p, None)).transpose()?;
    let segment_rules = rules.as_ref().filter(|_| args.by_segment);
    let paths = steps_reached(&events, &names, &alias_key, args.within.as_secs(), segment_rules)?;
    let labels: Vec<String> = args.steps.iter().map(|s| s.trim().to_owned()).collect();
    let reached: Vec<Vec<i64>> = paths.iter().map(|p| p.reached.clone()).collect();
    let steps = funnel::report(&labels, &reached);
    let mut by_segment = BTreeMap::new();
    if segment_rules.is_some() {
        let mut members: BTreeMap<String, Vec<Vec<i64>>> = BTreeMap::new();
        for p in paths.iter().filter(|p| !p.reached.is_empty()) {
            let none = [String::from("(none)")];
            let segments = if p.segments.is_empty() { &none[..] } else { &p.segments[..] };
            for s in segments {
                members.entry(s.clone()).or_default().push(p.reached.clone());
            }
        }
        by_segment = members.into_iter().map(|(s, r)| (s, funnel::report(&labels, &r))).collect();
    }
    let mut report = Report {
        people_entered: steps.first().map_or(0, |s| s.people),
        within_secs: args.within.as_secs(),
        steps,
        suggestions: Vec::new(),
        by_segment,
    };
    if let Some(rules) = &rules {
        report.suggestions = suggestions(rules, &names, &report.steps, &events, &alias_key)?;
    }
    print(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html(&report)).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Per person (resolved as production resolves them), the times they
/// reached each step; with `segments`, the rules' segments they were in at
/// each first-step event, kept for the one they entered by.
fn steps_reached(
    events: &[(Event, Timestamp)],
    names: &[String],
    alias_key: &AliasKey,
    within: i64,
    segments: Option<&Triggers>,
) -> Result<Vec<Path>> {
    let no_rules = Triggers::parse("", "none", None).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Segment conditions need the rules' own view of the profile (what they count).
    let mut replay = Replay::new(segments.unwrap_or(&no_rules), alias_key.clone());
    let mut occurrences: BTreeMap<String, Vec<(i64, usize)>> = BTreeMap::new();
    let mut at_entry: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    for (e, _) in events {
        let Some(profile) = replay.identify(e)? else { continue };
        let t = e.occurred_at.as_second();
        for (step, name) in names.iter().enumerate() {
            if e.kind.is_named(name) {
                occurrences.entry(profile.clone()).or_default().push((t, step));
                if let (0, Some(rules)) = (step, segments) {
                    let p =
                        nudge_app::now_or_never(nudge_app::ports::ProfileStore::load(&replay.store, &e.shop, &profile))
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                    let names = p.map(|p| rules.segments_of(&p, t)).unwrap_or_default();
                    at_entry.insert((profile.clone(), t), names);
                }
            }
        }
    }
    Ok(occurrences
        .into_iter()
        .map(|(profile, o)| {
            let reached = funnel::reached(&o, names.len(), within);
            let segments = reached.first().and_then(|t| at_entry.remove(&(profile, *t))).unwrap_or_default();
            Path { reached, segments }
        })
        .collect())
}

fn suggestions(
    rules: &Triggers,
    names: &[String],
    steps: &[Step],
    events: &[(Event, Timestamp)],
    alias_key: &AliasKey,
) -> Result<Vec<Suggestion>> {
    let as_written = backtest(rules, events, alias_key)?;
    let mut out = Vec::new();
    for t in &rules.triggers {
        let Arm::On(on) = &t.arm else { continue };
        let Some(k) = names.iter().position(|n| n == on) else { continue };
        let Some(next) = names.get(k + 1).filter(|n| t.cancel_if.contains(n)) else { continue };
        let gaps = &steps[k + 1].gaps;
        let Some(p90) = steps[k + 1].timing.as_ref().map(|t| t.p90_secs) else { continue };
        let delay = t.delay.as_secs();
        let suggested = ((p90 + 59) / 60 * 60).max(60);
        let within = funnel::share_within(gaps, delay);
        let mut changed = rules.clone();
        if let Some(c) = changed.triggers.iter_mut().find(|c| c.id == t.id) {
            c.delay = Dur::from_secs(suggested);
        }
        let suggested_backtest = backtest(&changed, events, alias_key)?;
        let text = format!(
            "90 % of people who reach {next} after {on} do so within {}: {}'s {} delay comes after {:.0} % of them \
             had already bought and before the other {:.0} %",
            human(p90),
            t.id,
            human(delay),
            within * 100.0,
            (1.0 - within) * 100.0
        );
        out.push(Suggestion {
            trigger: t.id.clone(),
            from: on.clone(),
            to: next.clone(),
            delay_secs: delay,
            converted_within_delay: within,
            suggested_delay_secs: suggested,
            text,
            as_written: as_written.get(&t.id).copied().unwrap_or(Backtest::EMPTY),
            suggested: suggested_backtest.get(&t.id).copied().unwrap_or(Backtest::EMPTY),
        });
    }
    Ok(out)
}

impl Backtest {
    const EMPTY: Backtest = Backtest { armed: 0, sent: 0, skipped_converted: 0, converted_after_send: 0 };
}

/// Per trigger, what a replay of the events with these rules decides.
fn backtest(
    rules: &Triggers,
    events: &[(Event, Timestamp)],
    alias_key: &AliasKey,
) -> Result<BTreeMap<String, Backtest>> {
    let mut replay = Replay::new(rules, alias_key.clone());
    let refs: Vec<(&Event, Timestamp)> = events.iter().map(|(e, at)| (e, *at)).collect();
    replay.push_events(&refs, true, &mut |_| {})?;
    replay.finish(&mut |_| {})?;
    let mut converted: BTreeMap<String, u64> = BTreeMap::new();
    for row in replay.attribution().report() {
        *converted.entry(row.trigger.clone()).or_default() += row.figures.converted;
    }
    Ok(replay
        .summary()
        .triggers
        .iter()
        .map(|(id, s)| {
            let b = Backtest {
                armed: s.armed,
                sent: s.sent,
                skipped_converted: s.skipped.get(&Reason::Converted).copied().unwrap_or(0),
                converted_after_send: converted.get(id).copied().unwrap_or(0),
            };
            (id.clone(), b)
        })
        .collect())
}

/// 90 → "1m30s", 3600 → "1h".
fn human(secs: i64) -> String {
    Dur::from_secs(secs.max(0)).to_string()
}

fn print(r: &Report) {
    println!("{:<28} {:>8} {:>11} {:>11} {:>9} {:>9}", "step", "people", "conversion", "from start", "median", "p90");
    for (i, s) in r.steps.iter().enumerate() {
        let (conv, median, p90) = match &s.timing {
            Some(t) if i > 0 => (format!("{:.1} %", s.conversion * 100.0), human(t.median_secs), human(t.p90_secs)),
            _ if i > 0 => (format!("{:.1} %", s.conversion * 100.0), "-".into(), "-".into()),
            _ => (String::new(), String::new(), String::new()),
        };
        println!(
            "{:<28} {:>8} {:>11} {:>11} {:>9} {:>9}",
            s.name,
            s.people,
            conv,
            format!("{:.1} %", s.from_start * 100.0),
            median,
            p90
        );
    }
    for (i, s) in r.steps.iter().enumerate().skip(1) {
        let Some(t) = &s.timing else { continue };
        let bars: Vec<String> =
            t.histogram.iter().filter(|(_, n)| *n > 0).map(|(label, n)| format!("{label}: {n}")).collect();
        println!("\n{} → {}: {}", r.steps[i - 1].name, s.name, bars.join(", "));
    }
    for (segment, steps) in &r.by_segment {
        let counts: Vec<String> = steps.iter().map(|s| format!("{} {}", s.name, s.people)).collect();
        let last = steps.last().map_or(0.0, |s| s.from_start * 100.0);
        println!("\nsegment {segment}: {} ({last:.1} % to the end)", counts.join(" → "));
    }
    for s in &r.suggestions {
        println!("\n{}", s.text);
        println!(
            "  backtest   delay {:>8}: {} sent, {} skipped as bought, {} bought after the email",
            human(s.delay_secs),
            s.as_written.sent,
            s.as_written.skipped_converted,
            s.as_written.converted_after_send
        );
        println!(
            "  suggested  delay {:>8}: {} sent, {} skipped as bought, {} bought after the email",
            human(s.suggested_delay_secs),
            s.suggested.sent,
            s.suggested.skipped_converted,
            s.suggested.converted_after_send
        );
    }
}

/// The report as one HTML page: the table, a chart of people per step, a
/// histogram of each step's timing, and the suggestions with their
/// backtests.
fn html(r: &Report) -> String {
    use nudge_app::http::html_escape as esc;
    let mut rows = String::new();
    for (i, s) in r.steps.iter().enumerate() {
        let (median, p90) = s
            .timing
            .as_ref()
            .filter(|_| i > 0)
            .map_or((String::new(), String::new()), |t| (human(t.median_secs), human(t.p90_secs)));
        let conversion = if i > 0 { format!("{:.1} %", s.conversion * 100.0) } else { String::new() };
        rows += &format!(
            "<tr><td>{}</td><td>{}</td><td>{conversion}</td><td>{:.1} %</td><td>{median}</td><td>{p90}</td></tr>",
            esc(&s.name),
            s.people,
            s.from_start * 100.0
        );
    }
    let names: Vec<String> = r.steps.iter().map(|s| s.name.clone()).collect();
    let people: Vec<f64> = r.steps.iter().map(|s| s.people as f64).collect();
    let mut charts = crate::charts::bars("People reaching each step", "people", &names, &people);
    for (i, s) in r.steps.iter().enumerate().skip(1) {
        let Some(t) = &s.timing else { continue };
        let labels: Vec<String> = t.histogram.iter().map(|(l, _)| (*l).to_owned()).collect();
        let counts: Vec<f64> = t.histogram.iter().map(|(_, n)| *n as f64).collect();
        let title = format!("Time from {} to {}", r.steps[i - 1].name, s.name);
        charts += &crate::charts::bars(&title, "people", &labels, &counts);
    }
    let mut segments = String::new();
    if !r.by_segment.is_empty() {
        segments += "<h2>By segment (when they entered)</h2><table><tr><th>segment</th>";
        for s in &r.steps {
            segments += &format!("<th>{}</th>", esc(&s.name));
        }
        segments += "<th>to the end</th></tr>";
        for (segment, steps) in &r.by_segment {
            segments += &format!("<tr><td>{}</td>", esc(segment));
            for s in steps {
                segments += &format!("<td>{}</td>", s.people);
            }
            segments += &format!("<td>{:.1} %</td></tr>", steps.last().map_or(0.0, |s| s.from_start * 100.0));
        }
        segments += "</table>";
    }
    let mut suggestions = String::new();
    for s in &r.suggestions {
        let row = |label: &str, delay: i64, b: &Backtest| {
            format!(
                "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                human(delay),
                b.sent,
                b.skipped_converted,
                b.converted_after_send
            )
        };
        suggestions += &format!(
            "<h2>{}</h2><p>{}</p><table><tr><th></th><th>delay</th><th>sent</th><th>skipped: already bought</th>\
             <th>bought after the email</th></tr>{}{}</table>",
            esc(&s.trigger),
            esc(&s.text),
            row("as written", s.delay_secs, &s.as_written),
            row("suggested", s.suggested_delay_secs, &s.suggested)
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>nudge funnel</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}}\
         table{{border-collapse:collapse;margin:1rem 0}}td,th{{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}svg{{display:block;margin:1rem 0}}</style></head><body>\
         <h1>Funnel</h1><p>{} people entered; each had {} from entering to reach the last step.</p>\
         <table><tr><th>step</th><th>people</th><th>conversion</th><th>from start</th><th>median</th><th>p90</th></tr>{rows}</table>\
         {charts}{segments}{suggestions}</body></html>",
        r.people_entered,
        human(r.within_secs)
    )
}
