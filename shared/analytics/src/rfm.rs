//! RFM: recency, frequency and monetary value scored 1–5 by quintile
//! across a shop's customers, and the named segments marketers use for the
//! recency–frequency grid.

use serde::{Deserialize, Serialize};

/// One customer's history as of a date.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct History {
    /// Days since the last order.
    pub days_since_last: f64,
    /// Orders placed.
    pub orders: f64,
    /// Money spent in all (the shop's currency).
    pub spent: f64,
}

/// Scores 1 (worst) to 5 (best) and the segment they name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rfm {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
    pub segment: Segment,
}

/// The recency × frequency grid's segments (monetary value is scored but
/// names none: it ranks within a segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Bought recently and often (R 4–5, F 4–5).
    Champions,
    /// Often, a while ago (R 3, F 4–5).
    Loyal,
    /// Recently, a few times (R 4–5, F 2–3).
    PotentialLoyalists,
    /// Their first order, just now (R 5, F 1).
    New,
    /// One order, recently (R 4, F 1).
    Promising,
    /// Middling on both (R 3, F 3).
    NeedsAttention,
    /// Fading after an order or two (R 3, F 1–2).
    AboutToSleep,
    /// Bought often, not for long (R 1–2, F 3–4).
    AtRisk,
    /// Among the most frequent, gone quiet (R 1–2, F 5).
    CantLose,
    /// An order or two, long ago (R 2, F 1–2).
    Hibernating,
    /// The least recent and least frequent (R 1, F 1–2).
    Lost,
}

impl Segment {
    pub const ALL: [Segment; 11] = [
        Segment::Champions,
        Segment::Loyal,
        Segment::PotentialLoyalists,
        Segment::New,
        Segment::Promising,
        Segment::NeedsAttention,
        Segment::AboutToSleep,
        Segment::AtRisk,
        Segment::CantLose,
        Segment::Hibernating,
        Segment::Lost,
    ];

    /// The segment of a recency and a frequency score (1–5 each).
    pub fn of(recency: u8, frequency: u8) -> Segment {
        match (recency, frequency) {
            (4..=5, 4..=5) => Segment::Champions,
            (4..=5, 2..=3) => Segment::PotentialLoyalists,
            (5, _) => Segment::New,
            (4, _) => Segment::Promising,
            (3, 4..=5) => Segment::Loyal,
            (3, 3) => Segment::NeedsAttention,
            (3, _) => Segment::AboutToSleep,
            (_, 5) => Segment::CantLose,
            (_, 3 | 4) => Segment::AtRisk,
            (2, _) => Segment::Hibernating,
            _ => Segment::Lost,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::PotentialLoyalists => "potential_loyalists",
            Segment::New => "new",
            Segment::Promising => "promising",
            Segment::NeedsAttention => "needs_attention",
            Segment::AboutToSleep => "about_to_sleep",
            Segment::AtRisk => "at_risk",
            Segment::CantLose => "cant_lose",
            Segment::Hibernating => "hibernating",
            Segment::Lost => "lost",
        }
    }
}

/// Each value's quintile score among `values`: 1 + ⌊5 · (values below it) / n⌋,
/// so equal values share a score and the best fifth scores 5.
pub fn quintiles(values: &[f64]) -> Vec<u8> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = values.len().max(1) as f64;
    values
        .iter()
        .map(|v| {
            let below = sorted.partition_point(|s| s < v) as f64;
            (1.0 + (5.0 * below / n).floor()).clamp(1.0, 5.0) as u8
        })
        .collect()
}

/// A quintile score's four cut points, so that a value not among those
/// scored (a person's history today) gets the score [`quintiles`] would
/// give it among them: 1 + the number of cut points it is above.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cuts(pub [f64; 4]);

impl Cuts {
    /// Cut point k (1–4) is the ⌈k·n/5⌉-th smallest value: a value scores
    /// above k exactly when at least that many values are below it.
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Cuts> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return None;
        }
        let cut = |k: usize| sorted[(k * n).div_ceil(5).max(1) - 1];
        Some(Cuts([cut(1), cut(2), cut(3), cut(4)]))
    }

    pub fn score(&self, value: f64) -> u8 {
        1 + self.0.iter().filter(|c| value > **c).count() as u8
    }
}

/// The cut points of a shop's three scores: what scores one more person
/// as the shop's customers were scored.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RfmCuts {
    /// Over days since the last order, negated (fewer is better).
    pub recency: Cuts,
    pub frequency: Cuts,
    pub monetary: Cuts,
}

impl RfmCuts {
    pub fn of(customers: &[History]) -> Option<RfmCuts> {
        Some(RfmCuts {
            recency: Cuts::of(&customers.iter().map(|c| -c.days_since_last).collect::<Vec<_>>())?,
            frequency: Cuts::of(&customers.iter().map(|c| c.orders).collect::<Vec<_>>())?,
            monetary: Cuts::of(&customers.iter().map(|c| c.spent).collect::<Vec<_>>())?,
        })
    }

    pub fn score(&self, h: &History) -> Rfm {
        let (r, f) = (self.recency.score(-h.days_since_last), self.frequency.score(h.orders));
        Rfm { recency: r, frequency: f, monetary: self.monetary.score(h.spent), segment: Segment::of(r, f) }
    }
}

impl Segment {
    /// The segment named `name` (as [`Segment::as_str`] writes it).
    pub fn named(name: &str) -> Option<Segment> {
        Segment::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// The scores and segment of every customer, in the order given.
pub fn score(customers: &[History]) -> Vec<Rfm> {
    // Fewer days since the last order is better: score its negation.
    let recency = quintiles(&customers.iter().map(|c| -c.days_since_last).collect::<Vec<_>>());
    let frequency = quintiles(&customers.iter().map(|c| c.orders).collect::<Vec<_>>());
    let monetary = quintiles(&customers.iter().map(|c| c.spent).collect::<Vec<_>>());
    recency
        .into_iter()
        .zip(frequency)
        .zip(monetary)
        .map(|((r, f), m)| Rfm { recency: r, frequency: f, monetary: m, segment: Segment::of(r, f) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_points_score_every_scored_value_as_its_quintile_and_new_values_between_them() {
        // Ties, repeats and sizes that do not divide by five.
        let sets: [&[f64]; 4] = [
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            &[1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 9.0],
            &[5.0, 3.0, 3.0, 3.0, 3.0, 1.0, 8.0, 2.0, 2.0, 7.0, 4.0, 4.0, 6.0],
            &[4.0],
        ];
        for values in sets {
            let cuts = Cuts::of(values).unwrap();
            let scored: Vec<u8> = values.iter().map(|v| cuts.score(*v)).collect();
            assert_eq!(scored, quintiles(values), "{values:?} with cuts {cuts:?}");
        }
        // 1..=10: cuts at 2, 4, 6, 8.
        let cuts = Cuts::of(&(1..=10).map(f64::from).collect::<Vec<_>>()).unwrap();
        assert_eq!(cuts.0, [2.0, 4.0, 6.0, 8.0]);
        assert_eq!([0.0, 2.5, 4.0, 4.5, 100.0].map(|v| cuts.score(v)), [1, 2, 2, 3, 5]);
        assert_eq!(Cuts::of(&[]), None);
    }

    #[test]
    fn rfm_cuts_score_a_history_as_score_scores_it_among_the_shop_s_customers() {
        let h = |d: f64, o: f64, s: f64| History { days_since_last: d, orders: o, spent: s };
        let all = [h(3.0, 5.0, 500.0), h(40.0, 1.0, 20.0), h(200.0, 3.0, 90.0), h(10.0, 2.0, 60.0), h(90.0, 1.0, 30.0)];
        let cuts = RfmCuts::of(&all).unwrap();
        let one_by_one: Vec<Rfm> = all.iter().map(|c| cuts.score(c)).collect();
        assert_eq!(one_by_one, score(&all));
        assert_eq!(Segment::named("at_risk"), Some(Segment::AtRisk));
        assert_eq!(Segment::named("vip"), None);
    }

    #[test]
    fn quintiles_of_ten_distinct_values_give_two_to_each_score() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quintiles(&values), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    }

    #[test]
    fn equal_values_share_a_score_and_the_score_counts_the_values_below() {
        // Six one-time buyers of ten: none below them (1); the 2s have six
        // below (1 + ⌊3⌋ = 4), the 5 has nine below (1 + ⌊4.5⌋ = 5).
        let orders = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0];
        assert_eq!(quintiles(&orders), [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]);
    }

    #[test]
    fn every_cell_of_the_grid_has_the_documented_segment() {
        use Segment::*;
        let grid = [
            // f = 1        2                   3                   4          5
            [Lost, Lost, AtRisk, AtRisk, CantLose],                     // r = 1
            [Hibernating, Hibernating, AtRisk, AtRisk, CantLose],       // r = 2
            [AboutToSleep, AboutToSleep, NeedsAttention, Loyal, Loyal], // r = 3
            [Promising, PotentialLoyalists, PotentialLoyalists, Champions, Champions], // r = 4
            [New, PotentialLoyalists, PotentialLoyalists, Champions, Champions], // r = 5
        ];
        for (r, row) in grid.iter().enumerate() {
            for (f, want) in row.iter().enumerate() {
                assert_eq!(Segment::of(r as u8 + 1, f as u8 + 1), *want, "r {} f {}", r + 1, f + 1);
            }
        }
    }

    #[test]
    fn recent_frequent_big_spenders_are_champions_and_the_long_gone_are_lost() {
        let mut customers: Vec<History> = (0..10)
            .map(|i| History { days_since_last: 10.0 * f64::from(i), orders: f64::from(10 - i), spent: 100.0 })
            .collect();
        customers[0].spent = 1_000.0;
        let scores = score(&customers);
        assert_eq!(scores[0], Rfm { recency: 5, frequency: 5, monetary: 5, segment: Segment::Champions });
        assert_eq!(scores[9].segment, Segment::Lost);
    }
}
