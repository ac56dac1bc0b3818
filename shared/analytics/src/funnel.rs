//! Ordered funnels: how many people go from one step to the next, and how
//! long they take.
//!
//! A person enters at their first occurrence of step 1. From each start
//! (every occurrence of step 1, tried in time order), the next step counts
//! at its first occurrence at or after the previous step, within `window`
//! of the start; the person's attempt is the start that reaches furthest
//! (the earliest of equals). Each person counts once per step.

use serde::Serialize;

/// The times (seconds) at which one person reached each step, in order:
/// as many as they reached. `occurrences` are (time, step index) pairs in
/// any order.
pub fn reached(occurrences: &[(i64, usize)], steps: usize, window: i64) -> Vec<i64> {
    let mut sorted = occurrences.to_vec();
    sorted.sort_unstable();
    let mut best: Vec<i64> = Vec::new();
    for &(start, step) in &sorted {
        if step != 0 {
            continue;
        }
        let mut times = vec![start];
        let mut i = 0;
        while times.len() < steps {
            let (want, after) = (times.len(), *times.last().unwrap_or(&start));
            let next = sorted[i..].iter().position(|&(t, s)| s == want && t >= after && t - start <= window);
            let Some(found) = next else { break };
            i += found;
            times.push(sorted[i].0);
        }
        if times.len() > best.len() {
            best = times;
        }
        if best.len() == steps {
            break;
        }
    }
    best
}

/// The value at fraction `p` of the sorted `values` (nearest rank: the
/// smallest value with at least p of the values at or below it).
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Upper bounds (seconds) of the histogram's buckets; the last bucket
/// holds the rest.
pub const BUCKETS: [(i64, &str); 11] = [
    (60, "< 1m"),
    (300, "< 5m"),
    (900, "< 15m"),
    (1_800, "< 30m"),
    (3_600, "< 1h"),
    (3 * 3_600, "< 3h"),
    (6 * 3_600, "< 6h"),
    (12 * 3_600, "< 12h"),
    (86_400, "< 1d"),
    (3 * 86_400, "< 3d"),
    (7 * 86_400, "< 7d"),
];

/// How long people took between two steps.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timing {
    pub median_secs: i64,
    pub p90_secs: i64,
    /// People per bucket: `BUCKETS`' labels, then "7d or more".
    pub histogram: Vec<(&'static str, usize)>,
}

impl Timing {
    /// Timing of these gaps (seconds); `None` without any.
    pub fn of(gaps: &[i64]) -> Option<Timing> {
        let mut sorted = gaps.to_vec();
        sorted.sort_unstable();
        let mut histogram: Vec<(&'static str, usize)> = BUCKETS.iter().map(|(_, l)| (*l, 0)).collect();
        histogram.push(("7d or more", 0));
        for g in &sorted {
            let i = BUCKETS.iter().position(|(limit, _)| g < limit).unwrap_or(BUCKETS.len());
            histogram[i].1 += 1;
        }
        Some(Timing { median_secs: percentile(&sorted, 0.5)?, p90_secs: percentile(&sorted, 0.9)?, histogram })
    }
}

/// The share of `gaps` at or under `limit`.
pub fn share_within(gaps: &[i64], limit: i64) -> f64 {
    if gaps.is_empty() {
        return 0.0;
    }
    gaps.iter().filter(|&&g| g <= limit).count() as f64 / gaps.len() as f64
}

/// One step of a funnel report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub name: String,
    pub people: usize,
    /// Of those who reached the previous step.
    pub conversion: f64,
    /// Of those who entered the funnel.
    pub from_start: f64,
    /// Time from the previous step, for those who reached this one.
    pub timing: Option<Timing>,
    /// Those gaps, in seconds (for suggestions).
    #[serde(skip)]
    pub gaps: Vec<i64>,
}

/// The report over every person's reached times.
pub fn report(names: &[String], people: &[Vec<i64>]) -> Vec<Step> {
    let entered = people.iter().filter(|r| !r.is_empty()).count();
    let mut steps = Vec::with_capacity(names.len());
    let mut previous = entered;
    for (k, name) in names.iter().enumerate() {
        let reached: Vec<&Vec<i64>> = people.iter().filter(|r| r.len() > k).collect();
        let gaps: Vec<i64> = if k == 0 { Vec::new() } else { reached.iter().map(|r| r[k] - r[k - 1]).collect() };
        let ratio = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        steps.push(Step {
            name: name.clone(),
            people: reached.len(),
            conversion: ratio(reached.len(), previous),
            from_start: ratio(reached.len(), entered),
            timing: Timing::of(&gaps),
            gaps,
        });
        previous = reached.len();
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600;

    #[test]
    fn steps_count_in_order_within_the_window_of_the_start() {
        // view 0, add 10, checkout 20, order 30.
        assert_eq!(reached(&[(30, 3), (0, 0), (20, 2), (10, 1)], 4, HOUR), [0, 10, 20, 30]);
        // An add before the view does not count; the one after does.
        assert_eq!(reached(&[(5, 1), (10, 0), (15, 1)], 2, HOUR), [10, 15]);
        // Past the window from the start: stops there.
        assert_eq!(reached(&[(0, 0), (10, 1), (2 * HOUR, 2)], 3, HOUR), [0, 10]);
        // Never started: nothing.
        assert!(reached(&[(10, 1), (20, 2)], 3, HOUR).is_empty());
    }

    #[test]
    fn a_later_start_that_reaches_further_is_the_person_s_attempt() {
        // The first view leads nowhere within the hour; a view a day later
        // leads to an add.
        let day = 24 * HOUR;
        assert_eq!(reached(&[(0, 0), (day, 0), (day + 60, 1)], 2, HOUR), [day, day + 60]);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.5), Some(5));
        assert_eq!(percentile(&v, 0.9), Some(9));
        assert_eq!(percentile(&v, 1.0), Some(10));
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn the_histogram_puts_each_gap_in_the_first_bucket_it_is_under() {
        let t = Timing::of(&[30, 59, 60, 4 * HOUR, 8 * 86_400]).unwrap();
        let count = |label: &str| t.histogram.iter().find(|(l, _)| *l == label).unwrap().1;
        assert_eq!((count("< 1m"), count("< 5m"), count("< 6h"), count("7d or more")), (2, 1, 1, 1));
        assert_eq!(t.histogram.iter().map(|(_, n)| n).sum::<usize>(), 5);
    }

    #[test]
    fn the_report_counts_conversion_from_the_previous_step_and_from_the_start() {
        let names: Vec<String> = ["view", "add", "buy"].map(String::from).to_vec();
        // 4 entered; 2 added (after 10 and 30 s); 1 bought (20 s after adding).
        let people = vec![vec![0, 10, 30], vec![0, 30], vec![0], vec![0], vec![]];
        let r = report(&names, &people);
        assert_eq!(r.iter().map(|s| s.people).collect::<Vec<_>>(), [4, 2, 1]);
        assert_eq!(r[1].conversion, 0.5);
        assert_eq!(r[2].conversion, 0.5);
        assert_eq!(r[2].from_start, 0.25);
        assert_eq!(r[1].timing.as_ref().unwrap().median_secs, 10);
        assert_eq!(r[1].timing.as_ref().unwrap().p90_secs, 30);
        assert_eq!(share_within(&r[1].gaps, 10), 0.5);
    }
}
