//! `nudge replay` and `nudge check`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use nudge_app::Replay;
use nudge_core::{Decision, Event, Triggers};

use crate::logs::{Format, LogReader, Merged, Parsed};

/// Lines parsed before they are replayed (see `run`).
const BATCH: usize = 256;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The rules to backtest (triggers.toml).
    #[arg(long)]
    pub triggers: PathBuf,
    /// Write decisions here (JSON Lines); `-` or none: standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Render every send with the templates in this directory (and check
    /// that every template the rules name exists there).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Product catalogue (JSON feed) used when rendering.
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// The shop's locale, for prices when rendering.
    #[arg(long, default_value = "en-US")]
    pub locale: String,
    /// Write the attribution report (per trigger and variant) here as JSON
    /// (as `nudge report --json` does).
    #[arg(long, alias = "report")]
    pub json: Option<PathBuf>,
    /// Write the attribution report as a self-contained HTML page with charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Shop that Segment messages belong to (they carry none themselves).
    #[arg(long, default_value = "default")]
    pub shop: String,
    /// Input format of the logs.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
    /// Skip malformed lines (and report how many) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Write what this log would cost on the AWS stack (DynamoDB and
    /// Scheduler requests, modelled cost per 1M events) here as JSON.
    #[arg(long)]
    pub aws_usage: Option<PathBuf>,
    /// Ask the scheduler for parked checks too (checks for people who
    /// cannot be emailed), as a stack without parking would: to compare
    /// what it costs. The decisions are the same.
    #[arg(long)]
    pub schedule_parked: bool,
    /// Only deserialize each line into the message type; decide nothing.
    /// The baseline of `make bench`.
    #[arg(long, hide = true)]
    pub parse_only: bool,
    /// A line more than this much earlier than a line before it in the
    /// same file is reported (it is replayed where it stands).
    #[arg(long, default_value = "5m", value_parser = parse_dur)]
    pub out_of_order_tolerance: nudge_core::Dur,
    /// Run each check no sooner than this after it was asked for, as the
    /// deployment's scheduler does: `1m` to replay a Lambda deployment's
    /// log (EventBridge Scheduler runs a one-time schedule a minute after
    /// it is created at the earliest), `0s` for `nudge serve`'s.
    #[arg(long, default_value = "0s", value_parser = parse_dur)]
    pub scheduler_lead: nudge_core::Dur,
    /// Customer models from `nudge segments --out`, which `rfm:` segments,
    /// `p_alive` and `expected_orders` in the rules read. For an honest
    /// backtest, fit them with `--until` before the replayed period.
    #[arg(long)]
    pub segments: Option<PathBuf>,
    /// Threads to replay on (default: one per core); the decisions are
    /// those of one thread, byte for byte. With 2, one parses while the
    /// other replays. With more, the people of the log are split between
    /// them after a pass that joins every alias seen together, and the
    /// parsed log is held in memory. `--aws-usage` and `--templates`
    /// replay on one.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Event logs (JSON Lines), merged by arrival time (a tie goes to the
    /// file named first). A directory stands for `nudge serve`'s event logs
    /// in it: the rotated `events-<day>-<n>.jsonl`, then `events.jsonl`.
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
}

fn parse_dur(s: &str) -> Result<nudge_core::Dur, String> {
    nudge_core::Dur::parse(s).map_err(|e| e.to_string())
}

/// Template names available in a directory (`<name>.mjml`).
pub fn load_rules(file: &Path, templates: Option<&Path>) -> Result<Triggers> {
    Ok(nudge_app::bundle::load_rules(file, templates)?)
}

pub fn check(file: &Path, templates: Option<&Path>, compile: Option<&Path>) -> Result<ExitCode> {
    let rules = match (templates, compile) {
        (Some(dir), Some(out)) => {
            let rules = nudge_app::bundle::compile_for_layer(file, dir, out)?;
            println!("{}: templates compiled and checked against the rules", out.display());
            rules
        }
        (Some(dir), None) => {
            let rules = load_rules(file, templates)?;
            let loaded = crate::templates::load(dir)?;
            if let Some(w) = nudge_content::confirmation_warning(&loaded) {
                eprintln!("{w}");
            }
            let problems = nudge_content::check_rules(&loaded, &rules);
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("{p}");
                }
                anyhow::bail!("{} template problem(s): nothing would render for these", problems.len());
            }
            rules
        }
        // `--compile` requires `--templates` (clap).
        (None, _) => load_rules(file, None)?,
    };
    println!("{}: {} trigger(s), rules version {}", file.display(), rules.triggers.len(), rules.version);
    let p = &rules.policy;
    let mut policy =
        vec![if p.require_consent { "consent required".to_owned() } else { "consent NOT required".to_owned() }];
    if let Some(n) = p.max_per_day {
        policy.push(format!("≤{n}/day"));
    }
    if let Some(n) = p.max_per_week {
        policy.push(format!("≤{n}/week"));
    }
    if let Some(q) = &p.quiet_hours {
        policy.push(format!(
            "quiet {:02}:{:02}-{:02}:{:02} (the recipient's time, else {})",
            q.from / 60,
            q.from % 60,
            q.to / 60,
            q.to % 60,
            q.time_zone_name
        ));
    }
    if let Some(d) = p.max_lateness {
        policy.push(format!("never more than {d} late"));
    }
    println!("policy: {}", policy.join(", "));
    if rules.uses_models() {
        println!(
            "reads the customer model (rfm: segments, p_alive, expected_orders): `nudge replay --segments FILE` from `nudge segments --out`; `nudge serve` refits it (refit_models)"
        );
    }
    for line in rules.describe() {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `mi_option_purge_delay` in mimalloc.h (v3; the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A replay only grows: memory it frees (a rehashed table, a batch's
/// buffers) is soon needed again. By default mimalloc hands freed memory
/// back to the OS after 10 ms, and every later reuse then faults in and
/// zeroes fresh (huge) pages: ~7,800 page faults and up to ~10 % of a
/// 1M-line replay's time. Keep it instead, for the life of this short process.
fn keep_freed_memory() {
    // SAFETY: called before any other thread exists (mi_option_set is not
    // thread-safe), with an option id and value mimalloc documents.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// The key people's profile ids are derived with: `NUDGE_ALIAS_KEY`, else
/// that of the first data directory given (so a replay of `nudge serve`'s
/// data names people as serve did), else a fixed key.
pub fn run(mut args: ReplayArgs) -> Result<ExitCode> {
    keep_freed_memory();
    let (logs, alias_key) = crate::logs::inputs(&args.logs)?;
    args.logs = logs;
    if args.parse_only {
        return parse_only(&args);
    }
    let rules = load_rules(&args.triggers, args.templates.as_deref())?;
    load_models(&rules, args.segments.as_deref())?;
    let threads = threads(&args);
    if threads > 2 {
        return run_sharded(&args, &rules, &alias_key, threads);
    }
    let templates = args.templates.as_deref().map(crate::templates::load).transpose()?;
    let mut replay = Replay::new(&rules, alias_key);
    if templates.is_some() {
        replay.record_messages();
    }
    configure(&mut replay, &args);
    let dynamo_model = args.aws_usage.is_some().then(|| nudge_aws::cost::watch(&replay));
    let mut renders = RenderCheck {
        catalogue: crate::templates::load_catalogue(args.catalogue.as_deref())?,
        locale: args.locale.clone(),
        ..RenderCheck::default()
    };
    let mut out = decisions_out(args.out.as_deref())?;
    let mut write_error: Option<io::Error> = None;
    // Decisions per day, for the HTML report's chart only.
    let mut daily = args.html.is_some().then(crate::report::Daily::default);
    // Each decision is encoded into `line` first: serde_json writes a
    // value in many small pieces, and each would be a dynamic call into
    // `out` (callgrind: ~2,300 instructions more per decision).
    let mut line = Vec::with_capacity(512);
    let mut sink = |d: &Decision| {
        if let Some(daily) = &mut daily {
            daily.record(d);
        }
        if write_error.is_none() {
            line.clear();
            let r = serde_json::to_writer(&mut line, d).map_err(io::Error::from).and_then(|()| {
                line.push(b'\n');
                out.write_all(&line)
            });
            if let Err(e) = r {
                write_error = Some(e);
            }
        }
    };
    let progress = progress_bar(&args.logs);
    let started = Instant::now();
    let mut invalid = 0u64;
    let mut lines = 0u64;
    let mut carry: Vec<(Event, Timestamp)> = Vec::new();
    // Lines are parsed in batches and then replayed: alternating per line
    // between the parser and the engine evicts each other's code from the
    // instruction cache, which cost more than either.
    let mut engine = |next: &mut dyn FnMut() -> Result<Batch>| -> Result<()> {
        loop {
            let batch = next()?;
            lines += batch.lines;
            // The last message of a batch may go on in the next one.
            let held = std::mem::take(&mut carry);
            let mut events: Vec<(&Event, Timestamp)> = held.iter().map(|(e, t)| (e, *t)).collect();
            events.extend(batch.parsed.iter().flat_map(|p| p.events.iter().map(move |e| (e, p.arrived))));
            let rest = replay.push_events(&events, false, &mut sink).context("replay failed")?;
            carry = events[rest..].iter().map(|(e, t)| ((*e).clone(), *t)).collect();
            if let Some(t) = &templates {
                renders.check(t, &rules, replay.take_sent());
            }
            if let Some(e) = batch.bad_line {
                skip_or_stop(&args, e, &mut invalid)?;
            }
            if batch.at_end {
                return Ok(());
            }
        }
    };
    let mut reader = Merged::open(&args.logs, args.format, &args.shop, args.out_of_order_tolerance)?;
    if threads == 2 {
        // A pipeline: one thread reads and parses, the other replays.
        reader = std::thread::scope(|s| -> Result<Merged> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch>>(PIPELINE_BATCHES);
            let pb = progress.clone();
            let producer = s.spawn(move || {
                loop {
                    let batch = read_batch(&mut reader, pb.as_ref());
                    let last = batch.as_ref().map_or(true, |b| b.at_end);
                    // A closed channel: the replay stopped, with its error.
                    if tx.send(batch).is_err() || last {
                        return reader;
                    }
                }
            });
            let replayed = engine(&mut || rx.recv().unwrap_or_else(|_| bail!("the log reader stopped")));
            drop(rx);
            let reader = producer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            replayed.map(|()| reader)
        })?;
    } else {
        engine(&mut || read_batch(&mut reader, progress.as_ref()))?;
    }
    let last: Vec<(&Event, Timestamp)> = carry.iter().map(|(e, t)| (e, *t)).collect();
    replay.push_events(&last, true, &mut sink).context("replay failed")?;
    replay.finish(&mut sink).context("replay failed")?;
    if let Some(t) = &templates {
        renders.check(t, &rules, replay.take_sent());
    }
    if let Some(e) = write_error {
        return Err(e).context("cannot write decisions");
    }
    out.flush().context("cannot write decisions")?;
    let elapsed = started.elapsed().as_secs_f64();
    if let (Some(path), Some(model)) = (&args.aws_usage, &dynamo_model) {
        let usage = nudge_aws::cost::usage(&replay, model);
        std::fs::write(path, serde_json::to_string_pretty(&usage)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let ran = Ran { lines, invalid, elapsed, threads };
    report(&args, &rules, replay.summary(), replay.attribution(), daily.as_ref(), &reader, &ran)?;
    // Freeing a million profiles one by one takes longer than the process
    // exit that frees them all at once.
    std::mem::forget(replay);
    if templates.is_some() {
        eprintln!("rendered {} send(s), {} failed", renders.ok + renders.failed, renders.failed);
    }
    ran.print_throughput();
    Ok(if renders.failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Loads the customer models the rules read from a `nudge segments` file;
/// without one, says which conditions will be false.
pub fn load_models(rules: &Triggers, segments: Option<&Path>) -> Result<()> {
    let Some(path) = segments else {
        if rules.uses_models() {
            eprintln!(
                "warning: the rules read the customer model (rfm: segments, p_alive, expected_orders) but no --segments file was given: those conditions are false"
            );
        }
        return Ok(());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let models = nudge_core::model::from_segments_json(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a `nudge segments --out` file: {e}", path.display()))?;
    if models.is_empty() {
        bail!("{}: no shop has a model (no orders when it was fitted)", path.display());
    }
    rules.models.replace(models);
    Ok(())
}

/// A malformed line: with `--skip-invalid` counted (the first five named),
/// else the end of the replay.
fn skip_or_stop(args: &ReplayArgs, e: crate::logs::LineError, invalid: &mut u64) -> Result<()> {
    if !args.skip_invalid {
        bail!("{e}\n(use --skip-invalid to skip malformed lines)");
    }
    if *invalid < 5 {
        eprintln!("skipped {e}");
    }
    *invalid += 1;
    Ok(())
}

/// The size of the logs in bytes (for progress, and the memory a sharded
/// replay would take).
fn total_bytes(logs: &[PathBuf]) -> u64 {
    logs.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// Lines the reader hands on at a time, and batches a pipeline's reader
/// may be ahead of the replay.
const PIPELINE_BATCHES: usize = 8;

/// Lines read and parsed, up to the first bad one.
struct Batch {
    parsed: Vec<Parsed>,
    bad_line: Option<crate::logs::LineError>,
    at_end: bool,
    lines: u64,
}

fn read_batch(reader: &mut Merged, progress: Option<&ProgressBar>) -> Result<Batch> {
    let mut b = Batch { parsed: Vec::with_capacity(BATCH), bad_line: None, at_end: false, lines: 0 };
    while b.parsed.len() < BATCH {
        let Some(parsed) = reader.next()? else {
            b.at_end = true;
            break;
        };
        b.lines += 1;
        if let Some(pb) = progress {
            pb.inc(reader.bytes_read_hint() as u64 + 1);
        }
        match parsed {
            Ok(p) => b.parsed.push(p),
            Err(e) => {
                b.bad_line = Some(e);
                break;
            }
        }
    }
    Ok(b)
}

/// The threads to replay on: as asked, else one per core; one when an
/// option needs the whole replay in one place.
fn threads(args: &ReplayArgs) -> usize {
    let asked = args.threads.map(usize::from);
    let wanted = asked.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if wanted > 1 && (args.aws_usage.is_some() || args.templates.is_some()) {
        if asked.is_some() {
            eprintln!("note: --aws-usage and --templates replay on one thread");
        }
        return 1;
    }
    if wanted > 1 {
        let bytes = total_bytes(&args.logs);
        if let Some(available) = memory_available().filter(|a| bytes.saturating_mul(MEMORY_PER_LOG_BYTE) > a / 2) {
            eprintln!(
                "note: replaying on one thread, in constant memory: {} threads would hold about {} MiB of parsed events, more than half of the {} MiB available",
                wanted,
                bytes.saturating_mul(MEMORY_PER_LOG_BYTE) >> 20,
                available >> 20
            );
            return 1;
        }
    }
    wanted
}

/// Memory a replay on several threads holds per byte of log: the parsed
/// events (1.7 on `make bench`'s generated log, rounded up).
const MEMORY_PER_LOG_BYTE: u64 = 2;

/// Memory the system can give without swapping (Linux), in bytes.
fn memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The scheduler as the options say.
fn configure(replay: &mut Replay<'_>, args: &ReplayArgs) {
    let scheduler = if args.schedule_parked {
        nudge_app::memory::MemoryScheduler::scheduling_parked()
    } else {
        nudge_app::memory::MemoryScheduler::new()
    };
    replay.scheduler = scheduler.with_lead(jiff::SignedDuration::from_secs(args.scheduler_lead.as_secs()));
}

/// How a replay went, for what is printed after it.
struct Ran {
    lines: u64,
    invalid: u64,
    elapsed: f64,
    threads: usize,
}

impl Ran {
    fn print_throughput(&self) {
        let threads = if self.threads == 1 { "1 thread".to_owned() } else { format!("{} threads", self.threads) };
        eprintln!(
            "throughput: {} lines in {:.3} s = {:.0} lines/s (replay, {threads})",
            self.lines,
            self.elapsed,
            self.lines as f64 / self.elapsed.max(1e-9)
        );
    }
}

/// The summary and the reports after a replay (standard error, and the
/// files asked for).
fn report(
    args: &ReplayArgs,
    rules: &Triggers,
    summary: &nudge_app::Summary,
    attribution: &nudge_app::attribution::Attribution,
    daily: Option<&crate::report::Daily>,
    reader: &Merged,
    ran: &Ran,
) -> Result<()> {
    eprint!("{summary}");
    let report = attribution.report();
    if !report.is_empty() {
        crate::report::print_table(&mut io::stderr(), &report);
    }
    for t in &rules.triggers {
        if let Some(f) = nudge_app::attribution::factorial(t, &report) {
            crate::report::print_factorial(&mut io::stderr(), &f);
        }
    }
    crate::report::print_best_hour(&mut io::stderr(), &attribution.best_hour);
    if let (Some(path), Some(daily)) = (&args.html, daily) {
        crate::report::write_html(path, &report, daily)?;
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if ran.invalid > 0 {
        eprintln!("{} invalid line(s) skipped", ran.invalid);
    }
    if let Some(first) = &reader.first_out_of_order {
        eprintln!(
            "warning: {} line(s) more than {} earlier than a line before them in the same file, replayed where they stand; the first: {first}",
            reader.out_of_order, args.out_of_order_tolerance
        );
    }
    Ok(())
}

/// A replay on several threads ([`nudge_app::shard`]): the logs are parsed
/// on all of them first, then each replays its share of the people.
fn run_sharded(
    args: &ReplayArgs,
    rules: &Triggers,
    alias_key: &nudge_app::AliasKey,
    threads: usize,
) -> Result<ExitCode> {
    let progress = progress_bar(&args.logs);
    let started = Instant::now();
    let tick = |bytes: u64| {
        if let Some(pb) = &progress {
            pb.inc(bytes);
        }
    };
    let mut reader = Merged::load(&args.logs, args.format, &args.shop, args.out_of_order_tolerance, threads, &tick)?;
    let (mut lines, mut invalid) = (0u64, 0u64);
    let mut parsed: Vec<Parsed> = Vec::new();
    while let Some(p) = reader.next()? {
        lines += 1;
        match p {
            Ok(p) => parsed.push(p),
            Err(e) => skip_or_stop(args, e, &mut invalid)?,
        }
    }
    let messages = nudge_app::shard::messages(parsed.iter().flat_map(|p| p.events.iter().map(move |e| (e, p.arrived))));
    let keep_decisions = args.html.is_some();
    // Each decision's line is encoded on its shard's thread.
    let encode = |d: &Decision| {
        let line = serde_json::to_vec(d).map(|mut l| {
            l.push(b'\n');
            l
        });
        (line, keep_decisions.then(|| d.clone()))
    };
    let sharded = nudge_app::shard::replay(rules, alias_key, &messages, threads, &|r| configure(r, args), &encode)
        .context("replay failed")?;
    let mut out = decisions_out(args.out.as_deref())?;
    let mut daily = args.html.is_some().then(crate::report::Daily::default);
    for (line, decision) in &sharded.decisions {
        let line = line.as_ref().map_err(|e| anyhow::anyhow!("cannot encode a decision: {e}"))?;
        out.write_all(line).context("cannot write decisions")?;
        if let (Some(daily), Some(d)) = (&mut daily, decision) {
            daily.record(d);
        }
    }
    out.flush().context("cannot write decisions")?;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let ran = Ran { lines, invalid, elapsed, threads };
    report(args, rules, &sharded.summary, &sharded.attribution, daily.as_ref(), &reader, &ran)?;
    // As on one thread: the process's exit frees it all at once.
    std::mem::forget(sharded);
    std::mem::forget(messages);
    std::mem::forget(parsed);
    ran.print_throughput();
    Ok(ExitCode::SUCCESS)
}

/// Where decisions go: `--out`, or standard output for none or `-`.
fn decisions_out(path: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => Box::new(BufWriter::with_capacity(
            1 << 16,
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout().lock())),
    })
}

/// Renders every send of a replay, to prove the templates work for the
/// people they would really go to.
#[derive(Default)]
struct RenderCheck {
    ok: u64,
    failed: u64,
    catalogue: nudge_content::Catalogue,
    locale: String,
}

impl RenderCheck {
    fn check(&mut self, templates: &nudge_content::Templates, rules: &Triggers, sent: Vec<nudge_app::ports::Outgoing>) {
        for m in sent {
            let Some(trigger) = rules.get(&m.check.trigger) else { continue };
            let send = nudge_content::SendInfo {
                trigger,
                variant: &m.variant,
                now: m.check.due,
                unsubscribe_url: crate::templates::PREVIEW_UNSUBSCRIBE_URL,
                locale: &self.locale,
            };
            match templates.render_send(&m.profile, rules, &send, &self.catalogue) {
                Ok(_) => self.ok += 1,
                Err(e) => {
                    if self.failed < 5 {
                        eprintln!(
                            "render failed for profile {} ({} episode {}): {e}",
                            m.profile.id, m.check.trigger, m.check.episode
                        );
                    }
                    self.failed += 1;
                }
            }
        }
    }
}

fn parse_only(args: &ReplayArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let (mut ok, mut bad) = (0u64, 0u64);
    for path in &args.logs {
        let format = if args.format == Format::Auto { Format::Segment } else { args.format };
        let mut reader = LogReader::open(path, format, &args.shop)?;
        while let Some(parsed) = reader.parse_only()? {
            if parsed { ok += 1 } else { bad += 1 }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "throughput: {} lines in {elapsed:.3} s = {:.0} lines/s (parse only, {bad} unparsable)",
        ok + bad,
        (ok + bad) as f64 / elapsed.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(logs: &[PathBuf]) -> Option<ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let total = total_bytes(logs);
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(pb)
}
