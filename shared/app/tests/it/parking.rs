//! Parking: a check for a person who cannot be emailed makes no scheduler
//! request; it is asked for once they can be, or decided as of its due time
//! by their next event or the reconcile sweep. Parking never changes a
//! decision, only what it costs.

use std::sync::atomic::Ordering;

use jiff::{SignedDuration, Timestamp};
use nudge_app::memory::MemoryScheduler;
use nudge_app::{AliasKey, Replay, now_or_never as block_on, reconcile};
use nudge_core::{ConsentState, Event, Outcome, Reason};

use super::*;

const CART: &str = r#"
[policy]
require_consent = true
[[trigger]]
id = "cart-abandoned"
on = "checkout_started"
delay = "10m"
cancel_if = ["order_placed"]
template = "cart-reminder"
"#;

impl Stack {
    fn creates(&self) -> u64 {
        self.scheduler.creates.load(Ordering::Relaxed)
    }

    fn parks(&self) -> u64 {
        self.scheduler.parks.load(Ordering::Relaxed)
    }
}

/// Checkout by someone known only by customer id: no address, no consent.
fn guest_checkout(s: &mut Shopper) -> Event {
    s.checkout(0, "chk1")
}

#[test]
fn a_check_for_a_person_who_cannot_be_emailed_is_parked_not_scheduled() {
    let st = Stack::new(rules(CART));
    let mut s = Shopper::new("c1");
    assert!(st.ingest(&guest_checkout(&mut s), at(0)).is_empty(), "no scheduler request");
    assert_eq!((st.creates(), st.parks()), (0, 1));
    let profile = &st.store.profiles()[0];
    let pending = profile.triggers[0].pending.as_ref().unwrap();
    assert!(pending.parked && pending.parked_at == at(0).as_second());
    assert_eq!(profile.next_due(), Some(at(10 * MIN)), "still pending for the reconcile sweep's index");
}

#[test]
fn a_person_who_subscribes_before_the_due_time_gets_the_check_asked_for_and_the_email() {
    let st = Stack::new(rules(CART));
    let mut s = Shopper::new("c1");
    st.ingest(&guest_checkout(&mut s), at(0));
    let mut asked = Vec::new();
    for e in s.subscribe(5 * MIN) {
        asked.extend(st.ingest(&e, at(5 * MIN)));
    }
    assert_eq!(asked.len(), 1, "the parked check is asked for once: {asked:?}");
    assert_eq!(asked[0].due, at(10 * MIN), "at its own due time");
    assert_eq!(st.creates(), 1);
    assert_eq!(st.run(&asked[0], asked[0].due).decision, Outcome::Send);
    assert_eq!(st.mailer.sent().len(), 1);
}

#[test]
fn consent_arriving_after_the_due_time_finds_the_check_decided_no_consent_as_of_then() {
    let st = Stack::new(rules(CART));
    let mut s = Shopper::new("c1");
    st.ingest(&guest_checkout(&mut s), at(0));
    // An on-time check would have run at 10 min and found no consent; the
    // consent that arrives at 30 min must not turn that into a late email.
    let mut asked = Vec::new();
    for e in s.subscribe(30 * MIN) {
        asked.extend(st.ingest(&e, at(30 * MIN)));
    }
    assert!(asked.is_empty(), "nothing left to ask for: {asked:?}");
    let d = st.decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].decision, d[0].reason), (Outcome::Skip, Some(Reason::NoConsent)));
    assert_eq!(d[0].at, at(10 * MIN), "decided as of its due time");
    assert_eq!(d[0].consent, ConsentState::NotSubscribed, "on the consent it had then");
    assert!(st.store.profiles()[0].triggers[0].pending.is_none());
    assert!(st.mailer.sent().is_empty());
}

#[test]
fn an_event_arriving_within_the_lead_of_parking_is_folded_in_before_the_parked_check() {
    let st = Stack::new(rules(CART));
    let mut s = Shopper::new("c1");
    // A webhook delivered late: the checkout is an hour old when it arrives,
    // so its check is already due. A scheduler asked then would not have run
    // it before the order that arrives 20 s later.
    st.ingest(&guest_checkout(&mut s), at(HOUR));
    st.ingest(&s.order(HOUR, "chk1"), at(HOUR + 20));
    let d = st.decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].reason, Some(Reason::Converted));
}

#[test]
fn reconcile_decides_an_overdue_parked_check_as_of_its_due_time() {
    let st = Stack::new(rules(CART));
    let mut s = Shopper::new("c1");
    st.ingest(&guest_checkout(&mut s), at(0));
    st.clock.set(at(40 * MIN));
    let profiles = st.store.profiles();
    let done = block_on(reconcile(&st.check_ports(), &profiles, SignedDuration::from_mins(15))).unwrap();
    assert_eq!((done.run, done.sent), (1, 0));
    let d = st.decisions();
    assert_eq!((d[0].reason, d[0].at), (Some(Reason::NoConsent), at(10 * MIN)));
}

#[test]
fn a_parked_check_for_a_debounced_episode_stays_parked_at_its_new_time() {
    let rules = rules(CART);
    let mut r = Replay::new(&rules, AliasKey::new(b"k"));
    let mut out = Vec::new();
    let mut s = Shopper::new("c1");
    for (e, t) in [(s.checkout(0, "chk1"), 0), (s.checkout(8 * MIN, "chk1"), 8 * MIN)] {
        r.push(&e, at(t), &mut |d| out.push(d.clone())).unwrap();
    }
    r.finish(&mut |d| out.push(d.clone())).unwrap();
    let got: Vec<_> = out.iter().map(|d| (d.decision, d.reason, d.at)).collect();
    assert_eq!(
        got,
        [
            (Outcome::Defer, Some(Reason::Debounced), at(10 * MIN)),
            (Outcome::Skip, Some(Reason::NoConsent), at(18 * MIN)),
        ]
    );
    assert_eq!(r.scheduler.creates.load(Ordering::Relaxed), 0, "no request for either check");
    assert_eq!((r.summary().checks_reconciled, r.summary().checks_run), (2, 0));
}

/// 300 shoppers: some subscribed from the start, some subscribing before
/// or after their check is due, some never; some buy, some re-arm, some
/// unsubscribe.
fn mixed_story() -> Vec<(Event, Timestamp)> {
    let mut events = Vec::new();
    for i in 0..300i64 {
        let mut s = Shopper::new(&format!("c{i}"));
        let t0 = i * 7 * MIN;
        let mut push = |e: Event, t: i64| events.push((e, at(t)));
        if i % 5 == 0 {
            for e in s.subscribe(t0 - MIN) {
                push(e, t0 - MIN);
            }
        }
        // Every eleventh checkout webhook arrives half an hour late.
        let arrival = if i % 11 == 0 { t0 + 30 * MIN } else { t0 };
        push(s.checkout(t0, "chk"), arrival);
        let later = [3 * MIN, 9 * MIN, 10 * MIN, 25 * MIN, 2 * HOUR][(i % 5) as usize] + t0;
        match i % 7 {
            0 | 1 => {
                for e in s.subscribe(later) {
                    push(e, later);
                }
            }
            2 => push(s.order(later, "chk"), later),
            3 => push(s.checkout(later, "chk"), later),
            4 => push(s.consent(later, ConsentState::Unsubscribed), later),
            _ => push(s.view(later, "p1"), later),
        }
    }
    events.sort_by_key(|(_, t)| *t);
    events
}

#[test]
fn parking_changes_no_decision_of_a_replay_only_the_scheduler_requests() {
    let rules = rules(CART);
    let run = |parking: bool| {
        let mut r = Replay::new(&rules, AliasKey::new(b"k"));
        if !parking {
            r.scheduler = MemoryScheduler::scheduling_parked();
        }
        let mut out = Vec::new();
        for (e, arrived) in mixed_story() {
            r.push(&e, arrived, &mut |d| out.push(d.clone())).unwrap();
        }
        r.finish(&mut |d| out.push(d.clone())).unwrap();
        let s = r.summary();
        (out, r.scheduler.creates.load(Ordering::Relaxed), s.checks_run + s.checks_reconciled)
    };
    let (parked, parked_creates, parked_runs) = run(true);
    let (scheduled, scheduled_creates, scheduled_runs) = run(false);
    assert_eq!(parked, scheduled, "the same decisions, in the same order, at the same times");
    assert_eq!(parked_runs, scheduled_runs, "the same checks ran");
    let reasons = |r: Reason| parked.iter().filter(|d| d.reason == Some(r)).count();
    assert!(reasons(Reason::NoConsent) > 50 && parked.iter().filter(|d| d.decision == Outcome::Send).count() > 50);
    assert!(
        parked_creates * 2 < scheduled_creates,
        "parking saves most requests here: {parked_creates} against {scheduled_creates}"
    );
}

#[test]
fn a_check_parked_by_a_late_delivery_is_decided_as_of_its_arrival_as_a_scheduled_one_would_be() {
    // The checkout happened at 0 but its webhook arrives an hour later: the
    // check (due at 10 min) could not have run before the hour.
    let rules = rules(CART);
    let mut s = Shopper::new("c1");
    let late = s.checkout(0, "chk1");
    let run = |parking: bool| {
        let mut r = Replay::new(&rules, AliasKey::new(b"k"));
        if !parking {
            r.scheduler = MemoryScheduler::scheduling_parked();
        }
        let mut out = Vec::new();
        r.push(&late, at(HOUR), &mut |d| out.push(d.clone())).unwrap();
        r.finish(&mut |d| out.push(d.clone())).unwrap();
        out
    };
    let parked = run(true);
    assert_eq!((parked[0].reason, parked[0].at), (Some(Reason::NoConsent), at(HOUR)));
    assert_eq!(parked, run(false));

    // The reconcile sweep, much later, says the same.
    let st = Stack::new(rules.clone());
    st.ingest(&late, at(HOUR));
    st.clock.set(at(3 * HOUR));
    block_on(reconcile(&st.check_ports(), &st.store.profiles(), SignedDuration::from_mins(15))).unwrap();
    let d = st.decisions();
    assert_eq!((d[0].reason, d[0].at), (Some(Reason::NoConsent), at(HOUR)));
}
