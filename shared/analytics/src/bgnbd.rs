//! The BG/NBD model of a customer base (Fader, Hardie & Lee 2005,
//! "Counting Your Customers the Easy Way: An Alternative to the
//! Pareto/NBD Model", Marketing Science 24(2)).
//!
//! While alive, a customer buys as a Poisson process with rate λ, and λ is
//! Gamma(r, α) across customers; after each purchase the customer drops out
//! ("dies") with probability p, and p is Beta(a, b) across customers. A
//! customer is summarised by (x, tₓ, T): repeat purchases, the time of the
//! last one and the time since the first, all from the first purchase. As
//! in the paper, purchases on the same day count as one. Time here is in
//! days, so α is in days (α in weeks is α / 7; r, a and b do not depend on
//! the unit).

use serde::{Deserialize, Serialize};

use crate::optimize::minimize;
use crate::special::{hyp2f1, ln_gamma};

/// The four parameters, α in the customers' time unit (days).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// One customer's purchase history, summarised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Customer {
    /// Repeat purchases: purchase days after the first.
    pub x: f64,
    /// The last purchase, in days after the first (0 without repeats).
    pub t_x: f64,
    /// Days from the first purchase to the end of the observation.
    pub t: f64,
}

impl Customer {
    /// The summary of purchases made on `days` (day numbers, any order,
    /// repeats allowed), observed until day `until`: purchases after it are
    /// not counted. `None` without a purchase by then.
    pub fn from_days(days: &[i64], until: i64) -> Option<Customer> {
        let mut seen: Vec<i64> = days.iter().copied().filter(|&d| d <= until).collect();
        seen.sort_unstable();
        seen.dedup();
        let (&first, &last) = (seen.first()?, seen.last()?);
        Some(Customer { x: (seen.len() - 1) as f64, t_x: (last - first) as f64, t: (until - first) as f64 })
    }
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// No repeat purchase at all: nothing to learn rates or drop-outs from.
    NoRepeatPurchases,
    /// The likelihood went nowhere finite (degenerate data).
    NoOptimum,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FitError::NoRepeatPurchases => "no customer bought twice: BG/NBD needs repeat purchases",
            FitError::NoOptimum => "the BG/NBD likelihood has no finite optimum for these customers",
        })
    }
}

/// ln L(r, α, a, b | x, tₓ, T), the paper's equation (6).
pub fn log_likelihood(p: &Params, c: &Customer) -> f64 {
    let Params { r, alpha, a, b } = *p;
    let x = c.x;
    let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
    let a3 = -(r + x) * (alpha + c.t).ln();
    let tail = if x > 0.0 {
        let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.t_x).ln();
        log_add(a3, a4)
    } else {
        a3
    };
    a1 + a2 + tail
}

fn log_add(u: f64, v: f64) -> f64 {
    let (hi, lo) = if u > v { (u, v) } else { (v, u) };
    hi + (lo - hi).exp().ln_1p()
}

/// The maximum-likelihood parameters for these customers (Nelder–Mead on
/// the logs of the parameters, so each stays positive).
pub fn fit(customers: &[Customer]) -> Result<Params, FitError> {
    if !customers.iter().any(|c| c.x > 0.0) {
        return Err(FitError::NoRepeatPurchases);
    }
    // Customers with the same summary share one likelihood term.
    let mut groups: Vec<(Customer, f64)> = Vec::new();
    let mut sorted = customers.to_vec();
    sorted.sort_by(|p, q| (p.x, p.t_x, p.t).partial_cmp(&(q.x, q.t_x, q.t)).unwrap_or(std::cmp::Ordering::Equal));
    for c in sorted {
        match groups.last_mut() {
            Some((g, n)) if *g == c => *n += 1.0,
            _ => groups.push((c, 1.0)),
        }
    }
    let mean_t = customers.iter().map(|c| c.t).sum::<f64>() / customers.len() as f64;
    let negative = |theta: &[f64; 4]| -> f64 {
        let p = params(theta);
        let ll: f64 = groups.iter().map(|(c, n)| n * log_likelihood(&p, c)).sum();
        if ll.is_finite() { -ll } else { f64::INFINITY }
    };
    let start = [0.0, mean_t.max(1.0).ln(), 0.0, 0.0];
    let (theta, value) = minimize(negative, start, 0.5);
    if !value.is_finite() {
        return Err(FitError::NoOptimum);
    }
    Ok(params(&theta))
}

fn params(theta: &[f64; 4]) -> Params {
    Params { r: theta[0].exp(), alpha: theta[1].exp(), a: theta[2].exp(), b: theta[3].exp() }
}

/// P(the customer is still alive | x, tₓ, T): the paper's equation (11).
pub fn p_alive(p: &Params, c: &Customer) -> f64 {
    if c.x == 0.0 {
        return 1.0;
    }
    let odds = (p.a / (p.b + c.x - 1.0)) * ((p.alpha + c.t) / (p.alpha + c.t_x)).powf(p.r + c.x);
    1.0 / (1.0 + odds)
}

/// E[purchases in the next `t` days | x, tₓ, T]: the paper's equation (10).
/// Needs a ≠ 1 (at a = 1 the expression is a limit).
pub fn expected_purchases(p: &Params, c: &Customer, t: f64) -> f64 {
    let Params { r, alpha, a, b } = *p;
    let x = c.x;
    let z = t / (alpha + c.t + t);
    let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z);
    let head = (a + b + x - 1.0) / (a - 1.0) * (1.0 - ((alpha + c.t) / (alpha + c.t + t)).powf(r + x) * f);
    let alive = if x > 0.0 { 1.0 + (a / (b + x - 1.0)) * ((alpha + c.t) / (alpha + c.t_x)).powf(r + x) } else { 1.0 };
    head / alive
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper's CDNOW estimates, with time in weeks.
    const CDNOW_WEEKS: Params = Params { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };

    #[test]
    fn a_summary_counts_purchase_days_not_orders_and_ignores_what_came_after() {
        let c = Customer::from_days(&[10, 10, 3, 24, 40], 30).unwrap();
        assert_eq!(c, Customer { x: 2.0, t_x: 21.0, t: 27.0 });
        assert_eq!(Customer::from_days(&[5], 5), Some(Customer { x: 0.0, t_x: 0.0, t: 0.0 }));
        assert_eq!(Customer::from_days(&[31], 30), None);
    }

    #[test]
    fn a_customer_who_never_came_back_is_alive_for_the_model() {
        let c = Customer { x: 0.0, t_x: 0.0, t: 38.86 };
        assert_eq!(p_alive(&CDNOW_WEEKS, &c), 1.0);
    }

    #[test]
    fn the_likelihood_of_a_one_time_buyer_is_the_paper_s_closed_form() {
        // x = 0: L = (α / (α + T))^r by hand.
        let c = Customer { x: 0.0, t_x: 0.0, t: 10.0 };
        let p = Params { r: 2.0, alpha: 5.0, a: 1.5, b: 3.0 };
        let by_hand = 2.0 * (5.0f64 / 15.0).ln();
        assert!((log_likelihood(&p, &c) - by_hand).abs() < 1e-12);
    }

    #[test]
    fn the_likelihood_of_a_repeat_buyer_matches_a_hand_computation() {
        // x = 1, tₓ = 2, T = 4, r = 1, α = 1, a = 1, b = 1:
        // A1 = Γ(2)/Γ(1) · 1 = 1; A2 = Γ(2)Γ(2)/(Γ(1)Γ(3)) = 1/2;
        // A3 = (1/5)², A4 = 1/1 · (1/3)²; L = 1/2 · (1/25 + 1/9).
        let c = Customer { x: 1.0, t_x: 2.0, t: 4.0 };
        let p = Params { r: 1.0, alpha: 1.0, a: 1.0, b: 1.0 };
        let by_hand = (0.5f64 * (1.0 / 25.0 + 1.0 / 9.0)).ln();
        assert!((log_likelihood(&p, &c) - by_hand).abs() < 1e-12);
    }

    #[test]
    fn p_alive_of_a_repeat_buyer_matches_a_hand_computation() {
        // 1 / (1 + a/(b+x-1) · ((α+T)/(α+tₓ))^(r+x)) with r = α = a = b = 1,
        // x = 1, tₓ = 2, T = 4: 1 / (1 + 1 · (5/3)²) = 9/34.
        let c = Customer { x: 1.0, t_x: 2.0, t: 4.0 };
        let p = Params { r: 1.0, alpha: 1.0, a: 1.0, b: 1.0 };
        assert!((p_alive(&p, &c) - 9.0 / 34.0).abs() < 1e-12);
    }

    #[test]
    fn the_paper_s_example_customer_expects_about_1_23_purchases_in_39_weeks() {
        // Fader, Hardie & Lee (2005), section 5: x = 2, tₓ = 30.43, T = 38.86
        // weeks expects 1.226 purchases in the next 39 weeks.
        let c = Customer { x: 2.0, t_x: 30.43, t: 38.86 };
        let e = expected_purchases(&CDNOW_WEEKS, &c, 39.0);
        assert!((e - 1.226).abs() < 0.005, "{e}");
    }

    #[test]
    fn the_fit_recovers_the_parameters_of_the_customers_it_is_given_in_any_unit() {
        // Fitting in days gives α in days: seven times the weekly one.
        let weekly = [
            Customer { x: 2.0, t_x: 30.43, t: 38.86 },
            Customer { x: 1.0, t_x: 1.71, t: 38.86 },
            Customer { x: 0.0, t_x: 0.0, t: 38.86 },
            Customer { x: 0.0, t_x: 0.0, t: 38.86 },
            Customer { x: 0.0, t_x: 0.0, t: 38.86 },
            Customer { x: 7.0, t_x: 29.43, t: 38.86 },
            Customer { x: 1.0, t_x: 5.0, t: 38.0 },
            Customer { x: 0.0, t_x: 0.0, t: 37.0 },
            Customer { x: 3.0, t_x: 20.0, t: 36.5 },
            Customer { x: 0.0, t_x: 0.0, t: 36.0 },
        ];
        let daily: Vec<Customer> = weekly.iter().map(|c| Customer { x: c.x, t_x: c.t_x * 7.0, t: c.t * 7.0 }).collect();
        let (w, d) = (fit(&weekly).unwrap(), fit(&daily).unwrap());
        for (name, in_weeks, in_days) in
            [("r", w.r, d.r), ("a", w.a, d.a), ("b", w.b, d.b), ("alpha", w.alpha * 7.0, d.alpha)]
        {
            assert!((in_weeks - in_days).abs() <= 1e-3 * in_weeks.abs().max(1.0), "{name}: {w:?} vs {d:?}");
        }
    }

    #[test]
    fn without_a_single_repeat_purchase_there_is_nothing_to_fit() {
        let once = [Customer { x: 0.0, t_x: 0.0, t: 10.0 }];
        assert_eq!(fit(&once), Err(FitError::NoRepeatPurchases));
    }
}
