//! `send_at = "best_hour"`: once a check decides to send, the email waits
//! for the person's most engaged hour (opens, clicks, site activity, by
//! their local hour), or the shop's `best_hour` for someone with too little
//! history, if that hour comes within `max_wait`; else it goes at once.

use nudge_core::{Outcome, Reason};

use super::*;

const CART: &str = r#"
[[trigger]]
id = "cart"
on = "checkout_started"
delay = "10m"
cancel_if = ["order_placed"]
template = "t"
send_at = "best_hour"
"#;

/// Subscribed, five visits at 19:00 UTC on the days before, then a
/// checkout at 14:00 UTC (T0).
fn evening_shopper() -> Vec<Event> {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(-6 * DAY);
    for day in 1..=5 {
        events.push(s.view(5 * HOUR - day * DAY, "p1"));
    }
    events.push(s.checkout(0, "chk1"));
    events
}

fn outcomes(ds: &[nudge_core::Decision]) -> Vec<(Outcome, Option<Reason>, Timestamp, Option<bool>)> {
    ds.iter().map(|d| (d.decision, d.reason, d.at, d.best_hour)).collect()
}

#[test]
fn the_email_waits_for_the_person_s_most_engaged_hour_and_goes_then() {
    let ds = replay(&rules(CART), &evening_shopper());
    assert_eq!(
        outcomes(&ds),
        [(Outcome::Defer, Some(Reason::BestHour), at(10 * MIN), None), (Outcome::Send, None, at(5 * HOUR), Some(true)),]
    );
    assert_eq!(ds[0].until, Some(at(5 * HOUR)), "19:00 UTC");
}

#[test]
fn a_best_hour_further_than_max_wait_does_not_hold_the_email() {
    let rules = rules(&CART.replace("send_at = \"best_hour\"", "send_at = \"best_hour\"\nmax_wait = \"3h\""));
    let ds = replay(&rules, &evening_shopper());
    // 19:00 is 4h50m after 14:10: sent when due, outside the best hour.
    assert_eq!(outcomes(&ds), [(Outcome::Send, None, at(10 * MIN), Some(false))]);
}

#[test]
fn someone_without_enough_history_gets_the_shop_s_best_hour() {
    let rules = rules(&format!("[policy]\nbest_hour = \"19:00\"\n{CART}"));
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(-DAY);
    events.push(s.checkout(0, "chk1"));
    let ds = replay(&rules, &events);
    assert_eq!(outcomes(&ds).last(), Some(&(Outcome::Send, None, at(5 * HOUR), Some(true))));
    // Without the policy's hour and their own: sent when due.
    let ds = replay(&super::rules(CART), &events);
    assert_eq!(outcomes(&ds), [(Outcome::Send, None, at(10 * MIN), None)]);
}

#[test]
fn quiet_hours_over_the_best_hour_do_not_hold_the_email_past_max_wait() {
    // Quiet 18:00-20:00 UTC covers the best hour, 19:00: waited for at
    // 14:10, deferred by quiet hours to 20:00; the next 19:00 is 28h50m
    // after 14:10, past the 24h max_wait: it goes at 20:00.
    let rules =
        rules(&format!("[policy]\nquiet_hours = {{ from = \"18:00\", to = \"20:00\", time_zone = \"UTC\" }}\n{CART}"));
    let ds = replay(&rules, &evening_shopper());
    assert_eq!(
        outcomes(&ds),
        [
            (Outcome::Defer, Some(Reason::BestHour), at(10 * MIN), None),
            (Outcome::Defer, Some(Reason::QuietHours), at(5 * HOUR), None),
            (Outcome::Send, None, at(6 * HOUR), Some(false)),
        ]
    );
}

#[test]
fn an_order_while_waiting_for_the_best_hour_still_cancels_the_email() {
    let mut events = evening_shopper();
    let mut s = Shopper::new("c1");
    s.n = 100;
    events.push(s.order(2 * HOUR, "chk1"));
    let ds = replay(&rules(CART), &events);
    assert_eq!(ds.last().map(|d| (d.decision, d.reason)), Some((Outcome::Skip, Some(Reason::Converted))));
    assert!(ds.iter().all(|d| d.decision != Outcome::Send));
}

#[test]
fn send_at_takes_best_hour_or_due_and_max_wait_goes_with_it() {
    let bad = Triggers::parse(&CART.replace("best_hour\"", "evening\""), "t.toml", None).unwrap_err().to_string();
    assert!(bad.contains("send_at") && bad.contains("best_hour"), "{bad}");
    let lonely = "[[trigger]]\nid = \"a\"\non = \"checkout_started\"\nmax_wait = \"2h\"\ntemplate = \"t\"\n";
    let bad = Triggers::parse(lonely, "t.toml", None).unwrap_err().to_string();
    assert!(bad.contains("max_wait"), "{bad}");
    let long = CART.replace("send_at = \"best_hour\"", "send_at = \"best_hour\"\nmax_wait = \"30d\"");
    let bad = Triggers::parse(&long, "t.toml", None).unwrap_err().to_string();
    assert!(bad.contains("between 1h and 7d"), "{bad}");
    let described = rules(CART).describe().join("\n");
    assert!(described.contains("most engaged hour if it comes within 1d"), "{described}");
}
