//! `nudge segments`: per shop, RFM scores and named segments, and a BG/NBD
//! model fitted on the order history up to a date — each person's
//! probability of still being a customer and expected orders ahead — from
//! the same event logs `nudge replay` reads, with the same identity
//! resolution. docs/analytics.md explains the methods.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use jiff::civil::Date;
use nudge_analytics::bgnbd::{self, Customer, Params};
use nudge_analytics::rfm::{self, History, Rfm, Segment};
use nudge_app::Replay;
use nudge_core::model::ShopModel;
use nudge_core::{EventKind, Triggers};
use serde::Serialize;

#[derive(clap::Args)]
pub struct SegmentsArgs {
    /// Fit on orders up to the end of this day (UTC), e.g. 1997-09-30;
    /// default: the day of the last order in the logs.
    #[arg(long)]
    pub until: Option<Date>,
    /// Write the model and every person's scores here as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Days ahead for each person's expected orders.
    #[arg(long, default_value_t = 90)]
    pub horizon_days: u32,
    #[command(flatten)]
    pub input: crate::logs::Input,
}

/// One person's orders: each order once, its day and value.
#[derive(Default)]
struct Orders {
    ids: HashSet<String>,
    placed: Vec<(i64, f64)>,
}

#[derive(Serialize)]
pub struct Output {
    until: Date,
    time_unit: &'static str,
    horizon_days: u32,
    /// The model of the only shop in the logs (also under `shops`).
    #[serde(skip_serializing_if = "Option::is_none")]
    bgnbd: Option<Params>,
    shops: BTreeMap<String, ShopOutput>,
}

#[derive(Serialize)]
struct ShopOutput {
    customers: usize,
    /// What rules read (`--segments`): the RFM cut points and the BG/NBD
    /// parameters.
    model: Option<ShopModel>,
    bgnbd: Option<Params>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bgnbd_error: Option<String>,
    segments: BTreeMap<&'static str, usize>,
    people: Vec<Person>,
}

#[derive(Serialize)]
struct Person {
    profile: String,
    orders: usize,
    spent: f64,
    days_since_last: i64,
    /// Repeat purchase days, the last one's day and the days observed, as
    /// the model sees them.
    x: f64,
    t_x: f64,
    t: f64,
    #[serde(flatten)]
    rfm: Rfm,
    #[serde(skip_serializing_if = "Option::is_none")]
    p_alive: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_orders: Option<f64>,
}

const DAY: i64 = 86_400;

pub fn run(args: SegmentsArgs) -> Result<ExitCode> {
    let (logs, alias_key) = args.input.open()?;
    let out = fit(&args.input, &logs, alias_key, args.until, args.horizon_days, false)?;
    print_summary(&out);
    if let Some(path) = &args.out {
        write(path, &out)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the models and scores as JSON.
fn write(path: &std::path::Path, out: &Output) -> Result<()> {
    write_whole(path, &serde_json::to_vec_pretty(out)?)
}

/// Writes `bytes` to `path` whole or not at all: a reader (a refit's
/// rules, a user's script) never sees half a file.
pub fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The shops' models (as rules read them) in a segments file.
pub fn models(out: &Output) -> BTreeMap<String, ShopModel> {
    out.shops.iter().filter_map(|(shop, s)| Some((shop.clone(), s.model?))).collect()
}

/// Fits every shop's model on the orders in `logs` up to the end of
/// `until` (default: the day of the last order).
pub fn fit(
    input: &crate::logs::Input,
    logs: &[PathBuf],
    alias_key: nudge_app::AliasKey,
    until: Option<Date>,
    horizon_days: u32,
    skip_invalid: bool,
) -> Result<Output> {
    // Profile ids come from identities: ingesting with no rules resolves
    // them as production does, merges included.
    let no_rules = Triggers::parse("", "none", None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut replay = Replay::new(&no_rules, alias_key);
    let mut shops: BTreeMap<String, BTreeMap<String, Orders>> = BTreeMap::new();
    let mut last_day = i64::MIN;
    input.each_event_skipping(logs, skip_invalid, |e, _| {
        let profile = replay.identify(&e)?;
        let (Some(profile), EventKind::OrderPlaced { order }) = (profile, &e.kind) else { return Ok(()) };
        let day = e.occurred_at.as_second().div_euclid(DAY);
        let orders = shops.entry(e.shop.clone()).or_default().entry(profile).or_default();
        if orders.ids.insert(order.id.clone()) {
            orders.placed.push((day, order.value));
            last_day = last_day.max(day);
        }
        Ok(())
    })?;
    if shops.is_empty() {
        anyhow::bail!("no orders in the logs: segments and the model need order history");
    }
    let epoch = Date::constant(1970, 1, 1);
    let until = until.unwrap_or_else(|| epoch.checked_add(jiff::Span::new().days(last_day)).unwrap_or(epoch));
    let until_day = i64::from((until - epoch).get_days());
    let horizon = f64::from(horizon_days);
    let mut out = Output { until, time_unit: "days", horizon_days, bgnbd: None, shops: BTreeMap::new() };
    for (shop, people) in shops {
        out.shops.insert(shop, shop_output(people, until_day, horizon));
    }
    if out.shops.len() == 1 {
        out.bgnbd = out.shops.values().next().and_then(|s| s.bgnbd);
    }
    Ok(out)
}

fn shop_output(people: BTreeMap<String, Orders>, until_day: i64, horizon: f64) -> ShopOutput {
    // Only what was known at `until`.
    let summaries: Vec<(String, History, Customer)> = people
        .into_iter()
        .filter_map(|(profile, orders)| {
            let known: Vec<(i64, f64)> = orders.placed.into_iter().filter(|(day, _)| *day <= until_day).collect();
            let days: Vec<i64> = known.iter().map(|(day, _)| *day).collect();
            let c = Customer::from_days(&days, until_day)?;
            let h = History {
                days_since_last: c.t - c.t_x,
                orders: known.len() as f64,
                spent: known.iter().map(|(_, value)| value).sum(),
            };
            Some((profile, h, c))
        })
        .collect();
    let histories: Vec<History> = summaries.iter().map(|(_, h, _)| *h).collect();
    let scores = rfm::score(&histories);
    let cuts = rfm::RfmCuts::of(&histories);
    let customers: Vec<Customer> = summaries.iter().map(|(_, _, c)| *c).collect();
    let (model, error) = match bgnbd::fit(&customers) {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut segments: BTreeMap<&'static str, usize> = Segment::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let people = summaries
        .into_iter()
        .zip(scores)
        .map(|((profile, h, c), rfm)| {
            *segments.entry(rfm.segment.as_str()).or_default() += 1;
            Person {
                profile,
                orders: h.orders as usize,
                spent: h.spent,
                days_since_last: h.days_since_last as i64,
                x: c.x,
                t_x: c.t_x,
                t: c.t,
                rfm,
                p_alive: model.map(|p| bgnbd::p_alive(&p, &c)),
                expected_orders: model.map(|p| bgnbd::expected_purchases(&p, &c, horizon)),
            }
        })
        .collect::<Vec<_>>();
    let fitted = cuts.map(|rfm| ShopModel { until_day, customers: people.len() as u64, bgnbd: model, rfm });
    ShopOutput { customers: people.len(), model: fitted, bgnbd: model, bgnbd_error: error, segments, people }
}

fn print_summary(out: &Output) {
    println!("segments as of {} (time unit: days)", out.until);
    for (shop, s) in &out.shops {
        println!("\n{shop}: {} customers with an order", s.customers);
        match (&s.bgnbd, &s.bgnbd_error) {
            (Some(p), _) => println!(
                "  BG/NBD  r = {:.3}  alpha = {:.2} days ({:.3} weeks)  a = {:.3}  b = {:.3}",
                p.r,
                p.alpha,
                p.alpha / 7.0,
                p.a,
                p.b
            ),
            (None, Some(e)) => println!("  BG/NBD  not fitted: {e}"),
            (None, None) => {}
        }
        println!("  {:<22} {:>8} {:>14} {:>22}", "segment", "people", "mean P(alive)", "expected orders ahead");
        for segment in Segment::ALL {
            let members: Vec<&Person> = s.people.iter().filter(|p| p.rfm.segment == segment).collect();
            if members.is_empty() {
                continue;
            }
            let mean = |f: fn(&Person) -> Option<f64>| {
                let v: Vec<f64> = members.iter().filter_map(|p| f(p)).collect();
                if v.is_empty() { "-".to_owned() } else { format!("{:.3}", v.iter().sum::<f64>() / v.len() as f64) }
            };
            println!(
                "  {:<22} {:>8} {:>14} {:>22}",
                segment.as_str(),
                members.len(),
                mean(|p| p.p_alive),
                mean(|p| p.expected_orders)
            );
        }
    }
}
