//! Attribution: which trigger and variant an order is credited to, and the
//! per-variant figures a report shows (sent, opened, clicked, converted,
//! revenue, conversion with a 95 % interval, lift over the holdout, and the
//! probability of beating it).
//!
//! An order within the window (default 5 days) after a send — or after a
//! holdout decision — is credited to that decision; the last one wins, and a
//! decision is credited at most once.

use std::collections::{BTreeMap, HashMap};

use nudge_core::hash::{mix, unit_interval};
use nudge_core::{Decision, Dur, Outcome, Reason};
use serde::Serialize;

pub const DEFAULT_WINDOW: Dur = Dur::from_secs(5 * 86_400);

#[derive(Debug, Clone)]
struct Touch {
    trigger: String,
    variant: String,
    at: i64,
    holdout: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct VariantFigures {
    pub sent: u64,
    pub opened: u64,
    pub clicked: u64,
    pub converted: u64,
    pub revenue: f64,
    /// Episodes of this variant held out (decided, not sent).
    pub holdout: u64,
    pub holdout_converted: u64,
    pub holdout_revenue: f64,
    /// The two revenues in millionths, added exactly: the sums do not
    /// depend on the order orders are counted in (or on how a replay was
    /// split between threads).
    #[serde(skip)]
    revenue_micros: i64,
    #[serde(skip)]
    holdout_revenue_micros: i64,
}

impl VariantFigures {
    fn add_revenue(&mut self, value: f64, holdout: bool) {
        // `as` saturates: an absurd order value cannot wrap the sum.
        let micros = (value * 1e6).round() as i64;
        if holdout {
            self.holdout_revenue_micros = self.holdout_revenue_micros.saturating_add(micros);
        } else {
            self.revenue_micros = self.revenue_micros.saturating_add(micros);
        }
        self.revenue = self.revenue_micros as f64 / 1e6;
        self.holdout_revenue = self.holdout_revenue_micros as f64 / 1e6;
    }

    fn add(&mut self, o: &VariantFigures) {
        self.sent += o.sent;
        self.opened += o.opened;
        self.clicked += o.clicked;
        self.converted += o.converted;
        self.holdout += o.holdout;
        self.holdout_converted += o.holdout_converted;
        self.revenue_micros = self.revenue_micros.saturating_add(o.revenue_micros);
        self.holdout_revenue_micros = self.holdout_revenue_micros.saturating_add(o.holdout_revenue_micros);
        self.add_revenue(0.0, false);
    }
}

#[derive(Debug)]
pub struct Attribution {
    window: i64,
    last: HashMap<String, Touch>,
    variants: HashMap<(String, String, u32), String>,
    pub figures: BTreeMap<(String, String), VariantFigures>,
    /// Of the sends to someone with a best hour: whether each went in it.
    in_best_hour: HashMap<(String, String, u32), bool>,
    /// Sends in the person's best hour, and the others (of people with one).
    pub best_hour: BestHourFigures,
}

/// Opens and clicks of sends made in the recipient's best hour against
/// those made at other hours (`send_at = "best_hour"`, docs/triggers.md).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct BestHourFigures {
    pub in_best_hour: Engagement,
    pub other_hours: Engagement,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Engagement {
    pub sent: u64,
    pub opened: u64,
    pub clicked: u64,
}

impl Engagement {
    pub fn open_rate(&self) -> f64 {
        ratio(self.opened, self.sent)
    }
    pub fn click_rate(&self) -> f64 {
        ratio(self.clicked, self.sent)
    }
}

impl Attribution {
    pub fn new(window: Dur) -> Attribution {
        Attribution {
            window: window.as_secs(),
            last: HashMap::new(),
            variants: HashMap::new(),
            figures: BTreeMap::new(),
            in_best_hour: HashMap::new(),
            best_hour: BestHourFigures::default(),
        }
    }

    fn best_hour_bucket(&mut self, in_best: bool) -> &mut Engagement {
        if in_best { &mut self.best_hour.in_best_hour } else { &mut self.best_hour.other_hours }
    }

    pub fn decision(&mut self, d: &Decision) {
        let Some(variant) = &d.variant else { return };
        let holdout = match (d.decision, d.reason) {
            (Outcome::Send, _) => false,
            (Outcome::Skip, Some(Reason::Holdout)) => true,
            _ => return,
        };
        let f = self.figures.entry((d.trigger.clone(), variant.clone())).or_default();
        if holdout {
            f.holdout += 1;
        } else {
            f.sent += 1;
        }
        if let (false, Some(in_best)) = (holdout, d.best_hour) {
            self.best_hour_bucket(in_best).sent += 1;
            self.in_best_hour.insert((d.profile.clone(), d.trigger.clone(), d.episode), in_best);
        }
        self.variants.insert((d.profile.clone(), d.trigger.clone(), d.episode), variant.clone());
        let touch = Touch { trigger: d.trigger.clone(), variant: variant.clone(), at: d.at.as_second(), holdout };
        self.last.insert(d.profile.clone(), touch);
    }

    /// An order by `profile` at `at` (unix seconds).
    pub fn order(&mut self, profile: &str, at: i64, value: f64) {
        let Some(t) = self.last.get(profile) else { return };
        if at < t.at || at - t.at > self.window {
            return;
        }
        let t = self.last.remove(profile).unwrap_or_else(|| unreachable!("found above"));
        let f = self.figures.entry((t.trigger, t.variant)).or_default();
        let value = if value.is_finite() { value } else { 0.0 };
        if t.holdout {
            f.holdout_converted += 1;
        } else {
            f.converted += 1;
        }
        f.add_revenue(value, t.holdout);
    }

    /// An open or click on the message of (profile, trigger, episode).
    pub fn engagement(&mut self, profile: &str, trigger: &str, episode: Option<u32>, clicked: bool) {
        let variant = match episode {
            Some(ep) => self.variants.get(&(profile.to_owned(), trigger.to_owned(), ep)).cloned(),
            None => self.last.get(profile).filter(|t| t.trigger == trigger).map(|t| t.variant.clone()),
        };
        let Some(variant) = variant else { return };
        let f = self.figures.entry((trigger.to_owned(), variant)).or_default();
        if clicked {
            f.clicked += 1;
        } else {
            f.opened += 1;
        }
        let key = episode.map(|ep| (profile.to_owned(), trigger.to_owned(), ep));
        if let Some(in_best) = key.and_then(|k| self.in_best_hour.get(&k).copied()) {
            let bucket = self.best_hour_bucket(in_best);
            if clicked {
                bucket.clicked += 1;
            } else {
                bucket.opened += 1;
            }
        }
    }

    /// Adds another replay's attribution, of other people (a shard's,
    /// [`crate::shard`]).
    pub fn add(&mut self, other: Attribution) {
        self.last.extend(other.last);
        self.variants.extend(other.variants);
        self.in_best_hour.extend(other.in_best_hour);
        for (k, f) in &other.figures {
            self.figures.entry(k.clone()).or_default().add(f);
        }
        for (mine, theirs) in [
            (&mut self.best_hour.in_best_hour, &other.best_hour.in_best_hour),
            (&mut self.best_hour.other_hours, &other.best_hour.other_hours),
        ] {
            mine.sent += theirs.sent;
            mine.opened += theirs.opened;
            mine.clicked += theirs.clicked;
        }
    }

    /// One row per trigger and variant, with the statistics.
    pub fn report(&self) -> Vec<ReportRow> {
        let mut control: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for ((trigger, _), f) in &self.figures {
            let c = control.entry(trigger).or_default();
            c.0 += f.holdout;
            c.1 += f.holdout_converted;
        }
        self.figures
            .iter()
            .map(|((trigger, variant), f)| {
                let (hn, hc) = control.get(trigger.as_str()).copied().unwrap_or_default();
                let rate = ratio(f.converted, f.sent);
                let holdout_rate = (hn > 0).then(|| ratio(hc, hn));
                let mde = mde(f.sent, hn, ratio(f.converted + hc, f.sent + hn));
                ReportRow {
                    trigger: trigger.clone(),
                    variant: variant.clone(),
                    figures: f.clone(),
                    conversion_rate: rate,
                    interval_95: wilson(f.converted, f.sent),
                    holdout_rate,
                    lift: holdout_rate.filter(|h| *h > 0.0).map(|h| (rate - h) / h),
                    p_beats_holdout: (hn > 0 && f.sent > 0).then(|| p_beats(f.converted, f.sent, hc, hn)),
                    mde,
                    conclusive: mde.zip(holdout_rate).map(|(d, h)| (rate - h).abs() >= d),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub trigger: String,
    pub variant: String,
    #[serde(flatten)]
    pub figures: VariantFigures,
    pub conversion_rate: f64,
    /// Wilson score interval for the conversion rate.
    pub interval_95: (f64, f64),
    /// Conversion of the trigger's holdout (all variants' held-out episodes).
    pub holdout_rate: Option<f64>,
    /// Relative lift of this variant's conversion over the holdout's.
    pub lift: Option<f64>,
    /// Probability that this variant converts better than the holdout:
    /// Beta(1 + conversions, 1 + non-conversions) posteriors compared by
    /// 20,000 seeded draws (the same figures on every run).
    pub p_beats_holdout: Option<f64>,
    /// The smallest difference in conversion rate against the holdout these
    /// sample sizes would detect (two-sided 5 % test, 80 % power), in rate
    /// units (0.05 = 5 points).
    pub mde: Option<f64>,
    /// Whether the observed difference is at least `mde`: when it is not,
    /// the sample is too small to conclude either way.
    pub conclusive: Option<bool>,
}

/// A 2×2 multivariate test of one trigger: its variants name two factors
/// with two levels each (`factors` in docs/triggers.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factorial {
    pub trigger: String,
    /// The two factors, in name order.
    pub factors: [String; 2],
    /// Each factor's two levels, in name order.
    pub levels: [[String; 2]; 2],
    /// Sends and conversion rate per cell: `[level of factor 0][level of factor 1]`.
    pub sent: [[u64; 2]; 2],
    pub rates: [[f64; 2]; 2],
    /// Each factor's main effect: the mean rate at its second level minus at
    /// its first, averaged over the other factor's levels.
    pub main_effects: [f64; 2],
    /// How much the effect of factor 1 changes with factor 0's level:
    /// (r₁₁ − r₁₀) − (r₀₁ − r₀₀).
    pub interaction: f64,
    /// The smallest main effect these sizes would detect (5 %, 80 % power).
    pub mde: [Option<f64>; 2],
}

/// The 2×2 analysis of `trigger` from its report rows, when its variants
/// name exactly two factors with two levels each.
pub fn factorial(trigger: &nudge_core::rules::Trigger, rows: &[ReportRow]) -> Option<Factorial> {
    let names: Vec<&String> = trigger.variants.first()?.factors.keys().collect();
    let [a, b] = names[..] else { return None };
    let levels_of = |f: &String| -> Option<[String; 2]> {
        let mut l: Vec<&String> = trigger.variants.iter().filter_map(|v| v.factors.get(f)).collect();
        l.sort();
        l.dedup();
        match l[..] {
            [x, y] => Some([x.clone(), y.clone()]),
            _ => None,
        }
    };
    let levels = [levels_of(a)?, levels_of(b)?];
    let (mut sent, mut converted) = ([[0u64; 2]; 2], [[0u64; 2]; 2]);
    for row in rows.iter().filter(|r| r.trigger == trigger.id) {
        let Some(v) = trigger.variant(&row.variant) else { continue };
        let i = levels[0].iter().position(|l| Some(l) == v.factors.get(a))?;
        let j = levels[1].iter().position(|l| Some(l) == v.factors.get(b))?;
        sent[i][j] += row.figures.sent;
        converted[i][j] += row.figures.converted;
    }
    let rates = [0, 1].map(|i| [0, 1].map(|j| ratio(converted[i][j], sent[i][j])));
    let total_sent: u64 = sent.iter().flatten().sum();
    let pooled = ratio(converted.iter().flatten().sum(), total_sent);
    let half = |f: usize, level: usize| -> u64 {
        if f == 0 { sent[level][0] + sent[level][1] } else { sent[0][level] + sent[1][level] }
    };
    Some(Factorial {
        trigger: trigger.id.clone(),
        factors: [a.clone(), b.clone()],
        levels,
        sent,
        rates,
        main_effects: [
            (rates[1][0] + rates[1][1]) / 2.0 - (rates[0][0] + rates[0][1]) / 2.0,
            (rates[0][1] + rates[1][1]) / 2.0 - (rates[0][0] + rates[1][0]) / 2.0,
        ],
        interaction: (rates[1][1] - rates[1][0]) - (rates[0][1] - rates[0][0]),
        mde: [0, 1].map(|f| mde(half(f, 0), half(f, 1), pooled)),
    })
}

/// The minimum detectable difference between two conversion rates with
/// `n` and `m` trials and pooled rate `p`: (z₀.₉₇₅ + z₀.₈) · √(p(1−p)(1/n + 1/m)).
pub fn mde(n: u64, m: u64, p: f64) -> Option<f64> {
    const Z: f64 = 1.959_964 + 0.841_621;
    (n > 0 && m > 0).then(|| Z * (p * (1.0 - p) * (1.0 / n as f64 + 1.0 / m as f64)).sqrt())
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Wilson score interval at 95 %.
pub fn wilson(successes: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let (z, n_f) = (1.959_963_984_540_054_f64, n as f64);
    let p = successes as f64 / n_f;
    let denom = 1.0 + z * z / n_f;
    let centre = (p + z * z / (2.0 * n_f)) / denom;
    let half = z * ((p * (1.0 - p) / n_f) + z * z / (4.0 * n_f * n_f)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// P(Beta(1+a, 1+n-a) > Beta(1+b, 1+m-b)) by seeded Monte Carlo.
pub fn p_beats(a: u64, n: u64, b: u64, m: u64) -> f64 {
    const DRAWS: u32 = 20_000;
    let mut rng = Rng(0x0005_eed0_fa77);
    let mut wins = 0u32;
    for _ in 0..DRAWS {
        let x = rng.beta(1.0 + a as f64, 1.0 + (n - a.min(n)) as f64);
        let y = rng.beta(1.0 + b as f64, 1.0 + (m - b.min(m)) as f64);
        if x > y {
            wins += 1;
        }
    }
    f64::from(wins) / f64::from(DRAWS)
}

/// The draws behind [`p_beats`]: a counter-based generator, Box–Muller
/// normals and Marsaglia–Tsang gammas. Kept here rather than taken from
/// `rand` + `rand_distr`: it is these few lines, and its stream never
/// changes, so a report's figures stay the same across dependency upgrades.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        unit_interval(mix(self.0)).max(f64::MIN_POSITIVE)
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
    /// Marsaglia–Tsang for shape ≥ 1 (all shapes here are ≥ 1).
    fn gamma(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && self.unit().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        x / (x + self.gamma(b))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_two_by_two_test_gives_main_effects_and_the_interaction_by_hand() {
        let src = "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ntemplate = \"t\"\n\
                   variants = [{ id = \"a\", factors = { delay = \"long\", subject = \"plain\" } },\n\
                   { id = \"b\", factors = { delay = \"long\", subject = \"question\" } },\n\
                   { id = \"c\", factors = { delay = \"short\", subject = \"plain\" } },\n\
                   { id = \"d\", factors = { delay = \"short\", subject = \"question\" } }]\n";
        let rules = nudge_core::Triggers::parse(src, "t.toml", None).unwrap();
        // Conversion per cell (sent 100 each): long/plain 10 %, long/question
        // 20 %, short/plain 30 %, short/question 60 %.
        let row = |variant: &str, converted: u64| ReportRow {
            trigger: "cart".into(),
            variant: variant.into(),
            figures: VariantFigures { sent: 100, converted, ..VariantFigures::default() },
            conversion_rate: 0.0,
            interval_95: (0.0, 0.0),
            holdout_rate: None,
            lift: None,
            p_beats_holdout: None,
            mde: None,
            conclusive: None,
        };
        let rows = [row("a", 10), row("b", 20), row("c", 30), row("d", 60)];
        let f = factorial(&rules.triggers[0], &rows).unwrap();
        assert_eq!(f.factors, ["delay".to_owned(), "subject".to_owned()]);
        assert_eq!(f.levels[0], ["long".to_owned(), "short".to_owned()]);
        // delay: (0.30 + 0.60) / 2 − (0.10 + 0.20) / 2 = 0.30;
        // subject: (0.20 + 0.60) / 2 − (0.10 + 0.30) / 2 = 0.20;
        // interaction: (0.60 − 0.30) − (0.20 − 0.10) = 0.20.
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert!(close(f.main_effects[0], 0.30) && close(f.main_effects[1], 0.20), "{f:?}");
        assert!(close(f.interaction, 0.20), "{f:?}");
        assert!(f.mde[0].unwrap() > 0.0);
        // Variants without two two-level factors have no such analysis.
        let plain = nudge_core::Triggers::parse(
            "[[trigger]]\nid = \"x\"\non = \"checkout_started\"\ntemplate = \"t\"\n",
            "t.toml",
            None,
        )
        .unwrap();
        assert_eq!(factorial(&plain.triggers[0], &rows), None);
    }

    #[test]
    fn the_minimum_detectable_difference_matches_a_hand_computation() {
        // n = m = 1000, pooled 10 %: 2.801585 · √(0.09 · 0.002) = 0.037587…
        let d = mde(1000, 1000, 0.1).unwrap();
        assert!((d - 0.037_587).abs() < 1e-5, "{d}");
        assert_eq!(mde(0, 10, 0.5), None);
    }

    #[test]
    fn six_people_are_too_few_to_conclude_anything() {
        // 2 of 3 sent converted against 0 of 3 held out: a 67-point lift,
        // and still inside what 3 + 3 people can tell apart.
        let mut a = Attribution::new(Dur::from_secs(5 * 86_400));
        for (i, outcome, reason) in [
            (1, Outcome::Send, None),
            (2, Outcome::Send, None),
            (3, Outcome::Send, None),
            (4, Outcome::Skip, Some(Reason::Holdout)),
            (5, Outcome::Skip, Some(Reason::Holdout)),
            (6, Outcome::Skip, Some(Reason::Holdout)),
        ] {
            a.decision(&decision(&format!("p{i}"), "a", 1, outcome, reason));
        }
        a.order("p1", "2026-10-06T15:00:00Z".parse::<jiff::Timestamp>().unwrap().as_second(), 10.0);
        a.order("p2", "2026-10-06T15:00:00Z".parse::<jiff::Timestamp>().unwrap().as_second(), 10.0);
        let row = &a.report()[0];
        assert!((row.conversion_rate - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(row.holdout_rate, Some(0.0));
        assert!(row.mde.unwrap() > 2.0 / 3.0, "{:?}", row.mde);
        assert_eq!(row.conclusive, Some(false));
    }

    #[test]
    fn opens_and_clicks_are_split_between_sends_in_the_best_hour_and_the_rest() {
        let mut a = Attribution::new(Dur::from_secs(5 * 86_400));
        let sent = |profile: &str, in_best: Option<bool>| {
            let mut d = decision(profile, "a", 1, Outcome::Send, None);
            d.best_hour = in_best;
            d
        };
        a.decision(&sent("p1", Some(true)));
        a.decision(&sent("p2", Some(true)));
        a.decision(&sent("p3", Some(false)));
        a.decision(&sent("p4", None));
        a.engagement("p1", "cart", Some(1), false);
        a.engagement("p1", "cart", Some(1), true);
        a.engagement("p3", "cart", Some(1), false);
        a.engagement("p4", "cart", Some(1), false);
        let b = &a.best_hour;
        assert_eq!((b.in_best_hour.sent, b.in_best_hour.opened, b.in_best_hour.clicked), (2, 1, 1));
        assert_eq!((b.other_hours.sent, b.other_hours.opened, b.other_hours.clicked), (1, 1, 0));
        assert_eq!((b.in_best_hour.open_rate(), b.other_hours.open_rate()), (0.5, 1.0));
    }
    use super::*;

    fn decision(profile: &str, variant: &str, episode: u32, outcome: Outcome, reason: Option<Reason>) -> Decision {
        Decision {
            at: "2026-10-06T14:00:00Z".parse().unwrap(),
            shop: "s".into(),
            profile: profile.into(),
            trigger: "cart".into(),
            episode,
            decision: outcome,
            reason,
            variant: Some(variant.into()),
            until: None,
            rules: "r".into(),
            consent: nudge_core::ConsentState::Subscribed,
            consent_source: None,
            best_hour: None,
        }
    }

    #[test]
    fn opens_and_clicks_are_counted_for_the_variant_that_was_sent() {
        let mut a = Attribution::new(DEFAULT_WINDOW);
        a.decision(&decision("p1", "a", 1, Outcome::Send, None));
        a.decision(&decision("p2", "b", 1, Outcome::Send, None));
        a.engagement("p1", "cart", Some(1), false);
        a.engagement("p1", "cart", Some(1), true);
        a.engagement("p2", "cart", None, false);
        a.engagement("p3", "cart", Some(1), true); // nothing was sent to p3
        let f = |v: &str| a.figures[&("cart".to_owned(), v.to_owned())].clone();
        assert_eq!((f("a").opened, f("a").clicked), (1, 1));
        assert_eq!((f("b").opened, f("b").clicked), (1, 0));
    }

    #[test]
    fn an_order_is_credited_once_and_only_inside_the_window() {
        let mut a = Attribution::new(DEFAULT_WINDOW);
        let t0 = decision("p1", "a", 1, Outcome::Send, None).at.as_second();
        a.decision(&decision("p1", "a", 1, Outcome::Send, None));
        a.order("p1", t0 + 86_400, 30.0);
        a.order("p1", t0 + 2 * 86_400, 40.0); // the decision was already credited
        a.decision(&decision("p2", "a", 1, Outcome::Skip, Some(Reason::Holdout)));
        a.order("p2", t0 + 6 * 86_400, 50.0); // outside the 5-day window
        let f = &a.figures[&("cart".to_owned(), "a".to_owned())];
        assert_eq!((f.converted, f.revenue, f.holdout, f.holdout_converted), (1, 30.0, 1, 0));
    }

    #[test]
    fn wilson_interval_matches_a_known_value() {
        let (lo, hi) = wilson(10, 100);
        assert!((lo - 0.0552).abs() < 0.0005 && (hi - 0.1744).abs() < 0.0005, "{lo} {hi}");
    }

    #[test]
    fn p_beats_is_near_one_half_for_equal_groups_and_near_one_for_a_clear_winner() {
        let even = p_beats(50, 1000, 50, 1000);
        assert!((0.45..0.55).contains(&even), "{even}");
        assert!(p_beats(200, 1000, 50, 1000) > 0.999);
        assert_eq!(p_beats(30, 500, 20, 400), p_beats(30, 500, 20, 400), "deterministic");
    }
}
