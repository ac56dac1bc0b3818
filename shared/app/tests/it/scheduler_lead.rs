//! A scheduler lead: EventBridge Scheduler runs a one-time schedule no
//! sooner than a minute after it is created, so on AWS a check asked for
//! with a shorter delay (or already due) runs a minute after it was asked
//! for, and decides on the profile as it is then. A replay given the same
//! lead (`nudge replay --scheduler-lead 1m`) decides what the Lambda
//! deployment decided.

use jiff::SignedDuration;
use nudge_app::memory::MemoryScheduler;
use nudge_app::{AliasKey, Replay};
use nudge_core::{Decision, Event, Outcome, Reason};

use super::*;

const SHORT_CART: &str = r#"
[policy]
require_consent = true
[[trigger]]
id = "cart-abandoned"
on = "checkout_started"
delay = "20s"
cancel_if = ["order_placed"]
template = "cart-reminder"
"#;

fn replay_with_lead(rules: &nudge_core::Triggers, lead: i64, events: &[(Event, i64)]) -> Vec<Decision> {
    let mut r = Replay::new(rules, AliasKey::new(b"test"));
    r.scheduler = MemoryScheduler::new().with_lead(SignedDuration::from_secs(lead));
    let mut out = Vec::new();
    for (e, arrived) in events {
        r.push(e, at(*arrived), &mut |d| out.push(d.clone())).unwrap();
    }
    r.finish(&mut |d| out.push(d.clone())).unwrap();
    out
}

fn outcomes(ds: &[Decision]) -> Vec<(Outcome, Option<Reason>, jiff::Timestamp)> {
    ds.iter().map(|d| (d.decision, d.reason, d.at)).collect()
}

#[test]
fn with_a_lead_a_check_asked_for_with_a_shorter_delay_runs_a_lead_after_it_was_asked_for() {
    let rules = rules(SHORT_CART);
    let mut s = Shopper::new("c1");
    let mut events: Vec<(Event, i64)> = s.subscribe(0).into_iter().map(|e| (e, 0)).collect();
    events.push((s.checkout(0, "chk1"), 0));
    events.push((s.order(40, "chk1"), 40));
    // Exactly when due: the reminder goes at 20 s, before the order.
    assert_eq!(outcomes(&replay_with_lead(&rules, 0, &events)), [(Outcome::Send, None, at(20))]);
    // Asked for at 0 s, run at 60 s: the order at 40 s ends the episode
    // before it.
    assert_eq!(outcomes(&replay_with_lead(&rules, 60, &events)), [(Outcome::Skip, Some(Reason::Converted), at(40))]);
}

#[test]
fn with_a_lead_a_check_due_later_than_the_lead_runs_when_due() {
    let rules = rules(&SHORT_CART.replace("20s", "10m"));
    let mut s = Shopper::new("c1");
    let mut events: Vec<(Event, i64)> = s.subscribe(0).into_iter().map(|e| (e, 0)).collect();
    events.push((s.checkout(0, "chk1"), 0));
    assert_eq!(outcomes(&replay_with_lead(&rules, 60, &events)), [(Outcome::Send, None, at(10 * MIN))]);
}

#[test]
fn with_a_lead_a_parked_check_asked_for_just_before_it_is_due_runs_a_lead_after_the_request() {
    let rules = rules(&SHORT_CART.replace("20s", "10m"));
    let mut s = Shopper::new("c1");
    // Parked at 0 (no address yet); asked for when they subscribe at 9:50,
    // which Scheduler runs at 10:50 at the earliest: the order at 10:20
    // ends the episode first.
    let mut events = vec![(s.checkout(0, "chk1"), 0)];
    events.extend(s.subscribe(590).into_iter().map(|e| (e, 590)));
    events.push((s.order(620, "chk1"), 620));
    assert_eq!(outcomes(&replay_with_lead(&rules, 0, &events)), [(Outcome::Send, None, at(10 * MIN))]);
    assert_eq!(outcomes(&replay_with_lead(&rules, 60, &events)), [(Outcome::Skip, Some(Reason::Converted), at(620))]);
}
