//! The anchor of the BG/NBD fit: the CDNOW sample of Fader, Hardie & Lee
//! (2005) — 2,357 customers who first bought in the first quarter of 1997,
//! calibrated on their purchases up to 1997-09-30 (39 weeks). The paper
//! estimates r = 0.243, α = 4.414 (weeks), a = 0.793, b = 2.426; the fit,
//! made in days, must match each within 3 %.

use std::collections::BTreeMap;

use jiff::civil::Date;
use nudge_analytics::bgnbd::{Customer, fit};

/// Customer → purchase days (since 1997-01-01), from
/// fixtures/cdnow/CDNOW_sample.txt (columns: master id, sample id,
/// yyyymmdd, CDs, dollars).
fn purchases() -> BTreeMap<String, Vec<i64>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/cdnow/CDNOW_sample.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let origin = Date::new(1997, 1, 1).unwrap();
    let mut by_customer: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let d = cols[2];
        let date = Date::new(d[..4].parse().unwrap(), d[4..6].parse().unwrap(), d[6..8].parse().unwrap()).unwrap();
        let day = i64::from((date - origin).get_days());
        by_customer.entry(cols[1].to_owned()).or_default().push(day);
    }
    by_customer
}

#[test]
fn the_bgnbd_fit_on_the_cdnow_sample_reaches_the_published_parameters() {
    let until = i64::from((Date::new(1997, 9, 30).unwrap() - Date::new(1997, 1, 1).unwrap()).get_days());
    let customers: Vec<Customer> = purchases().values().filter_map(|days| Customer::from_days(days, until)).collect();
    assert_eq!(customers.len(), 2357);
    let p = fit(&customers).unwrap();
    let alpha_weeks = p.alpha / 7.0;
    eprintln!("CDNOW fit: r {:.4} alpha {:.4} weeks ({:.3} days) a {:.4} b {:.4}", p.r, alpha_weeks, p.alpha, p.a, p.b);
    for (name, got, published) in
        [("r", p.r, 0.243), ("alpha", alpha_weeks, 4.414), ("a", p.a, 0.793), ("b", p.b, 2.426)]
    {
        let off = (got - published).abs() / published;
        assert!(off <= 0.03, "{name} = {got:.4}, published {published} ({:.1} % off): {p:?}", off * 100.0);
    }
}
