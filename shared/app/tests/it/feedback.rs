//! Mail-service feedback, joined through the message record `run_check`
//! keeps: counted per trigger variant and folded into the profile.

use nudge_app::feedback::{Fed, feedback};
use nudge_app::now_or_never;
use nudge_app::ports::MessageLog;
use nudge_sources::ses::{SesFeedback, parse};

use super::*;

const CART: &str = r#"
[[trigger]]
id = "cart-abandoned"
on = "checkout_started"
delay = "10m"
template = "cart-reminder"
"#;

fn ses(kind: &str, message_id: &str, header: Option<&str>) -> SesFeedback {
    let mut body = serde_json::json!({
        "eventType": kind,
        "mail": { "messageId": message_id, "timestamp": "2026-10-06T15:00:00Z" },
        "bounce": { "bounceType": "Permanent" },
        "open": {}, "complaint": {}, "delivery": {},
    });
    if let Some(h) = header {
        body["mail"]["commonHeaders"] = serde_json::json!({ "messageId": h });
    }
    parse(body.to_string().as_bytes()).unwrap()
}

/// A stack that has sent one cart reminder; returns it with the message id.
fn sent_one() -> (Stack, String) {
    let s = Stack::new(rules(CART));
    let mut shopper = Shopper::new("c1");
    let mut checks = Vec::new();
    for e in shopper.subscribe(0).into_iter().chain([shopper.checkout(MIN, "chk1")]) {
        checks.extend(s.ingest(&e, e.occurred_at));
    }
    s.clock.set(at(11 * MIN));
    let checked = now_or_never(nudge_app::run_check(&s.check_ports(), &checks[0])).unwrap();
    assert_eq!(checked.decision.decision, Outcome::Send);
    assert!(checked.unrecorded.is_empty());
    (s, checked.message_id.unwrap())
}

fn day() -> jiff::civil::Date {
    jiff::civil::date(2026, 10, 6)
}

#[test]
fn a_send_keeps_its_message_record_and_counts_as_sent() {
    let (s, id) = sent_one();
    let record = now_or_never(s.store.message(&id)).unwrap().expect("recorded");
    assert_eq!((record.trigger.as_str(), record.variant.as_str(), record.episode), ("cart-abandoned", "default", 1));
    assert_eq!(s.store.counter("shop", "cart-abandoned", "default", day(), "sent"), 1);
}

#[test]
fn a_hard_bounce_of_a_sent_message_suppresses_the_address_and_counts_for_the_variant() {
    let (s, id) = sent_one();
    let fed = now_or_never(feedback(&s.ingest_ports(at(HOUR)), &ses("Bounce", &id, None))).unwrap();
    assert_eq!(fed, Fed { joined: true, changed: true });
    assert!(s.store.profiles()[0].suppressed.is_some());
    assert_eq!(s.store.counter("shop", "cart-abandoned", "default", day(), "bounced"), 1);
}

#[test]
fn a_delivery_is_counted_and_changes_no_profile() {
    let (s, id) = sent_one();
    let before = s.store.profiles();
    let fed = now_or_never(feedback(&s.ingest_ports(at(HOUR)), &ses("Delivery", &id, None))).unwrap();
    assert_eq!(fed, Fed { joined: true, changed: false });
    assert_eq!(s.store.profiles(), before);
    assert_eq!(s.store.counter("shop", "cart-abandoned", "default", day(), "delivered"), 1);
}

#[test]
fn feedback_about_mail_nudge_did_not_send_changes_nothing() {
    let (s, _) = sent_one();
    let before = s.store.profiles();
    let fed = now_or_never(feedback(&s.ingest_ports(at(HOUR)), &ses("Complaint", "someone-elses", None))).unwrap();
    assert_eq!(fed, Fed { joined: false, changed: false });
    assert_eq!(s.store.profiles(), before);
    assert_eq!(s.store.counter("shop", "cart-abandoned", "default", day(), "complained"), 0);
}

#[test]
fn mail_relayed_through_ses_smtp_joins_by_its_own_message_id_header() {
    let (s, id) = sent_one();
    let header = format!("<{id}@shop.example>");
    let fed =
        now_or_never(feedback(&s.ingest_ports(at(HOUR)), &ses("Complaint", "ses-assigned-id", Some(&header)))).unwrap();
    assert_eq!(fed, Fed { joined: true, changed: true });
    assert!(s.store.profiles()[0].suppressed.is_some());
}

#[test]
fn feedback_joins_by_the_reference_header_when_the_message_record_was_never_written() {
    let (s, _) = sent_one();
    let p = s.store.profiles().remove(0);
    // The run stopped after SES accepted the message: no record, but the
    // message names its send in X-Nudge-Ref, which SES reports back.
    let reference = format!("s={}&p={}&t=cart-abandoned&e=1&v=default", p.shop, p.id);
    let body = serde_json::json!({
        "eventType": "Complaint", "complaint": {},
        "mail": { "messageId": "ses-id-never-recorded", "timestamp": "2026-10-06T15:00:00Z",
                  "headers": [{ "name": "X-Nudge-Ref", "value": reference }] },
    });
    let fb = parse(body.to_string().as_bytes()).unwrap();
    let fed = now_or_never(feedback(&s.ingest_ports(at(HOUR)), &fb)).unwrap();
    assert_eq!(fed, Fed { joined: true, changed: true });
    assert!(s.store.profiles()[0].suppressed.is_some());
    assert_eq!(s.store.counter("shop", "cart-abandoned", "default", day(), "complained"), 1);
}

#[test]
fn erasing_a_profile_erases_its_message_records() {
    let (s, id) = sent_one();
    let p = s.store.profiles().remove(0);
    now_or_never(nudge_app::ports::ProfileStore::erase(&s.store, &p.shop, &p.id)).unwrap();
    assert_eq!(now_or_never(s.store.message(&id)).unwrap(), None);
}
