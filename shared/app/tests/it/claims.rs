//! The claim protocol: every armed episode ends in exactly one final
//! decision, at most one email is sent, and a send that did not happen never
//! counts as sent, whatever the mail service answers and wherever a run
//! stops.

use nudge_app::now_or_never;
use nudge_app::ports::{Change, MailError, ProfileStore};
use nudge_core::profile::CLAIM_LEASE;

use super::*;

const CART: &str = r#"
[[trigger]]
id = "cart"
on = "checkout_started"
delay = "10m"
cooldown = "1d"
max_lateness = "2h"
template = "cart-reminder"
"#;

/// A subscribed shopper whose checkout armed one cart check.
fn armed(s: &Stack) -> nudge_core::Check {
    let mut shopper = Shopper::new("c1");
    let mut checks = Vec::new();
    for e in shopper.subscribe(0).into_iter().chain([shopper.checkout(MIN, "chk1")]) {
        checks.extend(s.ingest(&e, e.occurred_at));
    }
    checks.pop().expect("armed")
}

fn check_at(s: &Stack, check: &nudge_core::Check, t: Timestamp) -> nudge_app::Checked {
    s.clock.set(t);
    now_or_never(nudge_app::run_check(&s.check_ports(), check)).unwrap()
}

/// The final decisions of the episode (sends and skips, not deferrals or
/// duplicates).
fn final_decisions(s: &Stack) -> Vec<Decision> {
    s.decisions().into_iter().filter(|d| d.decision != Outcome::Defer && d.reason != Some(Reason::Duplicate)).collect()
}

fn profile(s: &Stack) -> nudge_core::Profile {
    s.store.profiles().remove(0)
}

fn fail_next(s: &Stack, e: MailError) {
    s.mailer.failures.lock().unwrap().push_back(e);
}

#[test]
fn a_send_the_mail_service_did_not_accept_is_deferred_and_counts_for_nothing() {
    let s = Stack::new(rules(CART));
    let check = armed(&s);
    fail_next(&s, MailError::NotAccepted("SES: TooManyRequestsException".into()));
    let first = check_at(&s, &check, at(11 * MIN));
    assert_eq!((first.decision.decision, first.decision.reason), (Outcome::Defer, Some(Reason::MailDeferred)));
    let p = profile(&s);
    assert!(p.sends.is_empty() && p.state("cart").unwrap().last_sent.is_none(), "nothing counts as sent");
    assert!(s.mailer.sent().is_empty());
    // Tried again after the backoff, and sent.
    let again = s.scheduler.pending().into_iter().find(|c| c.due > at(11 * MIN)).expect("asked again");
    assert_eq!(again.due, at(12 * MIN));
    let second = check_at(&s, &again, again.due);
    assert_eq!(second.decision.decision, Outcome::Send);
    assert_eq!(s.mailer.sent().len(), 1);
    assert_eq!(final_decisions(&s).len(), 1, "{:?}", s.decisions());
}

#[test]
fn a_service_that_never_accepts_ends_mail_unavailable_within_max_lateness_and_blocks_no_later_episode() {
    let s = Stack::new(rules(CART));
    let mut check = armed(&s);
    let mut t = at(11 * MIN);
    let decided = loop {
        fail_next(&s, MailError::NotAccepted("SES: SendingPausedException".into()));
        let d = check_at(&s, &check, t).decision;
        if d.decision != Outcome::Defer {
            break d;
        }
        check = s.scheduler.pending().into_iter().find(|c| c.trigger == "cart" && c.due > t).expect("asked again");
        t = check.due;
    };
    assert_eq!(decided.reason, Some(Reason::MailUnavailable));
    assert!(t <= at(11 * MIN + 2 * HOUR), "ended within max_lateness: {t}");
    assert!(profile(&s).sends.is_empty(), "the send that never happened is not counted");
    // The next checkout is sent: no cooldown was used up.
    let mut shopper = Shopper::new("c1");
    shopper.n = 100;
    let later = shopper.checkout(3 * HOUR, "chk2");
    let next = s.ingest(&later, later.occurred_at).pop().expect("a new episode");
    assert_eq!(check_at(&s, &next, next.due).decision.decision, Outcome::Send);
    assert_eq!(final_decisions(&s).len(), 2);
}

#[test]
fn an_unconfirmed_send_is_final_never_sent_again_and_counts_for_nothing() {
    let s = Stack::new(rules(CART));
    let check = armed(&s);
    fail_next(&s, MailError::Unconfirmed("SES: timed out".into()));
    let d = check_at(&s, &check, at(11 * MIN)).decision;
    assert_eq!((d.decision, d.reason), (Outcome::Skip, Some(Reason::Unconfirmed)));
    assert!(profile(&s).sends.is_empty(), "nothing says it went out: caps and cooldown do not count it");
    // A redelivery of the check sends nothing.
    let again = check_at(&s, &check, at(12 * MIN)).decision;
    assert_eq!(again.reason, Some(Reason::Duplicate));
    assert!(s.mailer.sent().is_empty());
    assert_eq!(final_decisions(&s).len(), 1);
}

#[test]
fn a_refused_message_ends_mail_failed_and_counts_for_nothing() {
    let s = Stack::new(rules(CART));
    let check = armed(&s);
    fail_next(&s, MailError::Rejected("SES: MessageRejected".into()));
    let d = check_at(&s, &check, at(11 * MIN)).decision;
    assert_eq!((d.decision, d.reason), (Outcome::Skip, Some(Reason::MailFailed)));
    assert!(profile(&s).sends.is_empty());
    assert_eq!(final_decisions(&s).len(), 1);
}

/// Claims the check's episode as another run would, and leaves it there
/// (that run stopped before the mailer answered).
fn claimed_elsewhere(s: &Stack, check: &nudge_core::Check, t: Timestamp) {
    let rules = &s.rules;
    now_or_never(s.store.update(&check.shop, &check.profile, false, |p| {
        let (d, _) = p.claim(check, rules, t, 42);
        assert_eq!(d.decision, Outcome::Send);
        Change { changed: true, value: () }
    }))
    .unwrap();
}

#[test]
fn a_check_claimed_by_another_run_sends_nothing_and_looks_again_when_the_claim_lapses() {
    let s = Stack::new(rules(CART));
    let check = armed(&s);
    claimed_elsewhere(&s, &check, at(11 * MIN));
    let d = check_at(&s, &check, at(11 * MIN + 5)).decision;
    assert_eq!((d.decision, d.reason), (Outcome::Defer, Some(Reason::InFlight)));
    assert_eq!(d.until, Some(at(11 * MIN + CLAIM_LEASE)));
    assert!(s.mailer.sent().is_empty());
    // The other run never came back: the claim lapses and is settled.
    let later = s.scheduler.pending().into_iter().find(|c| c.due == at(11 * MIN + CLAIM_LEASE)).expect("asked");
    let d = check_at(&s, &later, later.due).decision;
    assert_eq!((d.decision, d.reason), (Outcome::Skip, Some(Reason::Unconfirmed)));
    assert!(s.mailer.sent().is_empty(), "an abandoned claim is never sent again");
    assert_eq!(final_decisions(&s).len(), 1);
}

#[test]
fn a_claim_left_by_the_previous_process_in_the_second_the_server_started_is_settled_not_awaited() {
    let s = Stack::new(rules(CART));
    let check = armed(&s);
    // Claimed at 11:00.1 by a process killed then; the next one started at
    // 11:00.6 (claims keep whole seconds).
    claimed_elsewhere(&s, &check, at(11 * MIN) + jiff::SignedDuration::from_millis(100));
    let started = at(11 * MIN) + jiff::SignedDuration::from_millis(600);
    let ports = nudge_app::CheckPorts { claims_lapse_before: Some(started), ..s.check_ports() };
    s.clock.set(at(11 * MIN + 1));
    let d = now_or_never(nudge_app::run_check(&ports, &check)).unwrap().decision;
    assert_eq!((d.decision, d.reason), (Outcome::Skip, Some(Reason::Unconfirmed)), "not in_flight for 15 minutes");
    assert!(s.mailer.sent().is_empty());
}

#[test]
fn reconcile_settles_a_claim_whose_run_stopped_after_claiming() {
    let s = Stack::new(rules(CART));
    let check = armed(&s);
    claimed_elsewhere(&s, &check, at(11 * MIN));
    s.clock.set(at(11 * MIN + CLAIM_LEASE + MIN));
    let done =
        now_or_never(nudge_app::reconcile(&s.check_ports(), &s.store.profiles(), jiff::SignedDuration::ZERO)).unwrap();
    assert_eq!(done.run, 1);
    let finals = final_decisions(&s);
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0].reason, Some(Reason::Unconfirmed));
}

#[test]
fn a_retried_claim_write_recognises_its_own_claim() {
    let s = Stack::new(rules(CART));
    let check = armed(&s);
    let rules = &s.rules;
    let mut p = profile(&s);
    let (first, _) = p.claim(&check, rules, at(11 * MIN), 7);
    let after_first = p.clone();
    // The write was applied, its answer lost: the retry runs the same claim.
    let (again, effects) = p.claim(&check, rules, at(11 * MIN), 7);
    assert_eq!((first.decision, again.decision), (Outcome::Send, Outcome::Send));
    assert_eq!(again.variant, first.variant);
    assert!(effects.is_empty());
    assert_eq!(p, after_first, "nothing changes");
}

#[test]
fn an_order_while_the_email_is_being_sent_does_not_end_the_episode_twice() {
    let s = Stack::new(rules(
        r#"
[[trigger]]
id = "cart"
on = "checkout_started"
delay = "10m"
cancel_if = ["order_placed"]
template = "cart-reminder"
"#,
    ));
    let check = armed(&s);
    claimed_elsewhere(&s, &check, at(11 * MIN));
    let mut shopper = Shopper::new("c1");
    shopper.n = 50;
    let order = shopper.order(11 * MIN + 1, "chk1");
    s.ingest(&order, order.occurred_at);
    assert!(s.decisions().is_empty(), "the claimed episode is left to its check: {:?}", s.decisions());
    let rules = &s.rules;
    let settled = now_or_never(s.store.update(&check.shop, &check.profile, false, |p| {
        let (d, _) = p.settle(&check, 42, nudge_core::Delivery::Accepted, rules, at(11 * MIN + 2));
        Change { changed: true, value: d }
    }))
    .unwrap()
    .unwrap();
    assert_eq!(settled.decision, Outcome::Send);
}

#[test]
fn no_send_is_started_too_close_to_the_end_of_an_invocation() {
    let s = Stack::new(rules(CART));
    let check = armed(&s);
    s.clock.set(at(11 * MIN));
    let ports = nudge_app::CheckPorts { send_by: Some(at(11 * MIN - 1)), ..s.check_ports() };
    let d = now_or_never(nudge_app::run_check(&ports, &check)).unwrap().decision;
    assert_eq!((d.decision, d.reason), (Outcome::Defer, Some(Reason::MailDeferred)));
    assert!(s.mailer.sent().is_empty());
    assert!(profile(&s).sends.is_empty());
}
