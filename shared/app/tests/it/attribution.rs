//! Attribution on a scripted log: conversions and revenue per variant as
//! computed by hand, holdouts counted but never sent to.

use std::collections::BTreeMap;

use nudge_app::identity::{Alias, AliasKind, new_profile_id};
use nudge_core::{assign_variant, in_holdout};

use super::*;

const RULES: &str = r#"
[[trigger]]
id = "cart"
on = "checkout_started"
delay = "1h"
template = "t"
variants = [{ id = "a" }, { id = "b" }]
holdout = 0.3
"#;

/// Sent, converted, revenue, held out, held-out conversions, held-out revenue.
type Row = (u64, u64, f64, u64, u64, f64);

#[test]
fn orders_within_five_days_are_credited_to_the_last_decision_and_holdouts_are_counted() {
    let rules = rules(RULES);
    let trigger = rules.get("cart").unwrap();
    let mut log = Vec::new();
    let mut expected: BTreeMap<String, Row> = BTreeMap::new();
    for i in 0..60i64 {
        let mut s = Shopper::new(&format!("c{i}"));
        log.extend(s.subscribe(i * HOUR));
        log.push(s.checkout(i * HOUR + MIN, "chk"));
        // Every third shopper buys 2 days after the reminder (credited); every
        // fifth other one buys after 6 days (outside the window); the rest never.
        let in_window = i % 3 == 0;
        if in_window {
            log.push(s.order(i * HOUR + 2 * DAY, "other-basket"));
        } else if i % 5 == 0 {
            log.push(s.order(i * HOUR + 6 * DAY + 2 * HOUR, "other-basket"));
        }
        let profile = new_profile_id("shop", &Alias { kind: AliasKind::Customer, value: format!("c{i}") });
        let row = expected.entry(assign_variant("shop", &profile, trigger, 1).to_owned()).or_default();
        // Shopper::order is worth 50.
        match (in_holdout("shop", &profile, trigger), in_window) {
            (true, true) => (row.3, row.4, row.5) = (row.3 + 1, row.4 + 1, row.5 + 50.0),
            (true, false) => row.3 += 1,
            (false, true) => (row.0, row.1, row.2) = (row.0 + 1, row.1 + 1, row.2 + 50.0),
            (false, false) => row.0 += 1,
        }
    }
    log.sort_by_key(|e| e.occurred_at);

    let mut r = Replay::new(&rules, AliasKey::new(b"k"));
    let mut decisions = Vec::new();
    for e in &log {
        r.push(e, e.occurred_at, &mut |d| decisions.push(d.clone())).unwrap();
    }
    r.finish(&mut |d| decisions.push(d.clone())).unwrap();

    let sent_to_holdout =
        decisions.iter().filter(|d| d.decision == Outcome::Send && in_holdout("shop", &d.profile, trigger)).count();
    assert_eq!(sent_to_holdout, 0, "nothing is sent to the holdout");
    assert!(expected.values().any(|e| e.4 > 0), "the scenario exercises held-out conversions");
    let figures = &r.attribution().figures;
    for (variant, (sent, conv, rev, held, held_conv, held_rev)) in &expected {
        let f = &figures[&("cart".to_owned(), variant.clone())];
        assert_eq!(
            (f.sent, f.converted, f.holdout, f.holdout_converted),
            (*sent, *conv, *held, *held_conv),
            "variant {variant}"
        );
        assert_eq!((f.revenue, f.holdout_revenue), (*rev, *held_rev), "variant {variant}");
    }
    let report = r.attribution().report();
    assert_eq!(report.len(), expected.len());
    assert!(report.iter().all(|row| row.holdout_rate.is_some() && row.p_beats_holdout.is_some()));
}
