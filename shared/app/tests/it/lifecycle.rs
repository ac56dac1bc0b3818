//! Arming, debounce, cancellation, conditions and idempotence.

use nudge_app::{AliasKey, Replay, ingest, run_check};
use nudge_core::{Effect, Outcome, Reason};

use super::*;

const CART: &str = r#"
[policy]
require_consent = true
[[trigger]]
id = "cart-abandoned"
priority = 100
on = "checkout_started"
delay = "10m"
cancel_if = ["order_placed"]
template = "cart-reminder"
"#;

const BROWSE: &str = r#"
[[trigger]]
id = "browse-abandoned"
when = { count = "product_viewed", same_product = true, at_least = 3, within = "48h" }
delay = "1h"
template = "browse-reminder"
"#;

#[test]
fn abandoned_checkout_gets_one_reminder_after_the_delay() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1"));
    let ds = replay(&rules(CART), &events);
    let sent = sends(&ds);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].at, at(11 * MIN));
    assert_eq!(sent[0].consent, ConsentState::Subscribed, "the decision records the consent it relied on");
}

#[test]
fn purchase_within_delay_cancels_cart_reminder() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1"));
    events.push(s.order(5 * MIN, "chk1"));
    let ds = replay(&rules(CART), &events);
    assert_eq!(finals(&ds), vec![("cart-abandoned".into(), Outcome::Skip, Some(Reason::Converted))]);
}

#[test]
fn order_arriving_before_a_late_checkout_update_still_cancels_the_reminder() {
    // The order is delivered first; the checkout update (which happened
    // earlier) arrives two minutes later.
    let mut s = Shopper::new("c1");
    let mut events: Vec<(Event, Timestamp)> = s.subscribe(0).into_iter().map(|e| (e.clone(), e.occurred_at)).collect();
    let order = s.order(5 * MIN, "chk1");
    let late_checkout = s.checkout(3 * MIN, "chk1");
    events.push((order, at(5 * MIN)));
    events.push((late_checkout, at(7 * MIN)));
    let (ds, _) = replay_arrivals(&rules(CART), &events);
    assert_eq!(finals(&ds), vec![("cart-abandoned".into(), Outcome::Skip, Some(Reason::Converted))]);
}

#[test]
fn checkout_update_after_the_order_for_the_same_checkout_does_not_arm_again() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1"));
    events.push(s.order(2 * MIN, "chk1"));
    events.push(s.checkout(3 * MIN, "chk1")); // Shopify sends updates after completion too
    events.push(s.checkout(4 * MIN, "chk1"));
    let ds = replay(&rules(CART), &events);
    assert_eq!(finals(&ds), vec![("cart-abandoned".into(), Outcome::Skip, Some(Reason::Converted))]);
}

#[test]
fn a_new_checkout_after_a_purchase_arms_a_new_episode() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1"));
    events.push(s.order(2 * MIN, "chk1"));
    events.push(s.checkout(DAY, "chk2"));
    let ds = replay(&rules(CART), &events);
    let f = finals(&ds);
    assert_eq!(f.len(), 2);
    assert_eq!(f[1], ("cart-abandoned".into(), Outcome::Send, None));
    assert_eq!(ds.last().unwrap().episode, 2);
}

#[test]
fn three_views_of_one_product_within_48_hours_arm_browse_abandoned() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.extend([s.view(0, "p1"), s.view(24 * HOUR, "p1"), s.view(48 * HOUR, "p1")]);
    let ds = replay(&rules(BROWSE), &events);
    assert_eq!(sends(&ds).len(), 1);
    assert_eq!(sends(&ds)[0].at, at(49 * HOUR));
}

#[test]
fn three_views_spread_over_49_hours_do_not_arm_browse_abandoned() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.extend([s.view(0, "p1"), s.view(24 * HOUR, "p1"), s.view(49 * HOUR, "p1")]);
    assert!(replay(&rules(BROWSE), &events).is_empty());
}

#[test]
fn views_of_three_different_products_do_not_count_as_same_product() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.extend([s.view(0, "p1"), s.view(MIN, "p2"), s.view(2 * MIN, "p3")]);
    assert!(replay(&rules(BROWSE), &events).is_empty());
}

#[test]
fn a_late_view_is_placed_by_its_own_timestamp() {
    // Views at 0h and 40h arrive on time; one made at 20h arrives at 41h.
    let mut s = Shopper::new("c1");
    let mut events: Vec<(Event, Timestamp)> = s.subscribe(0).into_iter().map(|e| (e.clone(), e.occurred_at)).collect();
    let (v0, v40, v20) = (s.view(0, "p1"), s.view(40 * HOUR, "p1"), s.view(20 * HOUR, "p1"));
    events.push((v0, at(0)));
    events.push((v40, at(40 * HOUR)));
    events.push((v20, at(41 * HOUR)));
    let (ds, _) = replay_arrivals(&rules(BROWSE), &events);
    assert_eq!(sends(&ds).len(), 1, "the late view completes three views within 48h");
}

#[test]
fn debounce_ten_checkout_updates_give_one_reminder_from_two_scheduler_requests() {
    let src = CART.replace("delay = \"10m\"", "delay = \"30m\"");
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    for i in 0..10 {
        events.push(s.checkout(i * MIN, "chk1"));
    }
    let arrivals: Vec<(Event, Timestamp)> = events.iter().map(|e| (e.clone(), e.occurred_at)).collect();
    let (ds, creates) = replay_arrivals(&rules(&src), &arrivals);
    let sent = sends(&ds);
    assert_eq!(sent.len(), 1, "{ds:#?}");
    assert_eq!(sent[0].at, at(9 * MIN + 30 * MIN), "30 minutes after the last update");
    assert_eq!(creates, 2, "one request at arming, one reschedule when the first check found its due time moved");
    let deferred: Vec<_> = ds.iter().filter(|d| d.decision == Outcome::Defer).collect();
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].reason, Some(Reason::Debounced));
}

#[test]
fn after_inactive_waits_for_quiet_and_activity_pushes_it_back() {
    let src = r#"
[[trigger]]
id = "wishlist-nudge"
when = { all = [{ count = "product_viewed", same_product = true, at_least = 3, within = "30d" },
                { count = "wishlist_added", at_least = 1, within = "30d" }] }
after_inactive = "7d"
template = "t"
"#;
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.extend([s.view(0, "p1"), s.view(MIN, "p1"), s.view(2 * MIN, "p1"), s.wishlist(3 * MIN, "p1")]);
    events.push(s.view(3 * DAY, "p2")); // still browsing: the clock restarts
    let ds = replay(&rules(src), &events);
    assert_eq!(sends(&ds).len(), 1);
    assert_eq!(sends(&ds)[0].at, at(10 * DAY));
}

#[test]
fn cancel_if_event_other_than_an_order_skips_with_reason_cancelled() {
    let src = BROWSE.replace("delay = \"1h\"", "delay = \"1h\"\ncancel_if = [\"cart_updated\"]");
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.extend([s.view(0, "p1"), s.view(MIN, "p1"), s.view(2 * MIN, "p1")]);
    events.push(s.event(10 * MIN, EventKind::CartUpdated { basket: Basket::default(), action: None }));
    let ds = replay(&rules(&src), &events);
    assert_eq!(finals(&ds), vec![("browse-abandoned".into(), Outcome::Skip, Some(Reason::Cancelled))]);
}

#[test]
fn an_if_condition_that_no_longer_holds_at_check_time_lapses() {
    let src = r#"
[[trigger]]
id = "big-cart"
on = "checkout_started"
delay = "1h"
if = { cart_value_at_least = 40 }
template = "t"
"#;
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(0, "chk1")); // value 50: arms
    events.push(
        s.event(10 * MIN, EventKind::CartUpdated { basket: Basket { value: 12.0, ..Basket::default() }, action: None }),
    );
    let ds = replay(&rules(src), &events);
    assert_eq!(finals(&ds), vec![("big-cart".into(), Outcome::Skip, Some(Reason::ConditionLapsed))]);
}

#[test]
fn a_when_condition_arms_once_and_is_not_rechecked_when_due() {
    // Views at 0 and 47h59: the 48h window holds at arming; an hour later
    // the first view has slid out, but the episode was already armed.
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.extend([s.view(0, "p1"), s.view(MIN, "p1"), s.view(47 * HOUR + 59 * MIN, "p1")]);
    events.push(s.view(48 * HOUR + 30 * MIN, "p1")); // still holding: no second arming
    let ds = replay(&rules(BROWSE), &events);
    assert_eq!(finals(&ds), vec![("browse-abandoned".into(), Outcome::Send, None)]);
}

#[test]
fn a_series_of_reminders_is_three_triggers_and_stops_after_a_click() {
    let src = r#"
[[trigger]]
id = "cart-1h"
on = "checkout_started"
delay = "1h"
cancel_if = ["order_placed"]
template = "t"
[[trigger]]
id = "cart-26h"
on = "checkout_started"
delay = "26h"
cancel_if = ["order_placed"]
if = { all = [{ sent = "cart-1h", within = "26h" }, { not = { clicked = "cart-1h" } }] }
template = "t"
[[trigger]]
id = "cart-72h"
on = "checkout_started"
delay = "72h"
cancel_if = ["order_placed"]
if = { all = [{ sent = "cart-26h", within = "72h" }, { not = { clicked = "cart-26h" } }] }
template = "t"
"#;
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(0, "chk1"));
    let ds = replay(&rules(src), &events);
    let sent: Vec<&str> = sends(&ds).iter().map(|d| d.trigger.as_str()).collect();
    assert_eq!(sent, vec!["cart-1h", "cart-26h", "cart-72h"], "unclicked: all three go out");

    let mut s = Shopper::new("c2");
    let mut events = s.subscribe(0);
    events.push(s.checkout(0, "chk1"));
    events.push(s.clicked(2 * HOUR, "cart-1h"));
    let ds = replay(&rules(src), &events);
    let sent: Vec<&str> = sends(&ds).iter().map(|d| d.trigger.as_str()).collect();
    assert_eq!(sent, vec!["cart-1h"], "a click on the first stops the series");
    assert!(ds.iter().any(|d| d.trigger == "cart-26h" && d.reason == Some(Reason::ConditionLapsed)));
}

#[test]
fn custom_events_keep_their_name_and_drive_conditions() {
    let src = r#"
custom_events = ["Loyalty Points Earned"]
[[trigger]]
id = "loyal"
when = { count = "Loyalty Points Earned", at_least = 2, within = "30d" }
template = "t"
"#;
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.custom(DAY, "Loyalty Points Earned"));
    events.push(s.custom(2 * DAY, "Something Else"));
    assert!(sends(&replay(&rules(src), &events)).is_empty());
    events.push(s.custom(3 * DAY, "Loyalty Points Earned"));
    assert_eq!(sends(&replay(&rules(src), &events)).len(), 1);
}

#[test]
fn cart_value_and_order_count_conditions_gate_arming() {
    let src = r#"
[segments]
big_first_cart = { cart_value_at_least = 40, orders_at_most = 0 }
[[trigger]]
id = "big-cart"
when = { segment = "big_first_cart" }
delay = "5m"
template = "t"
"#;
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1")); // value 50
    assert_eq!(sends(&replay(&rules(src), &events)).len(), 1);
    let small = src.replace("cart_value_at_least = 40", "cart_value_at_least = 60");
    assert!(replay(&rules(&small), &events).is_empty());
}

#[test]
fn a_check_for_an_episode_already_decided_is_skipped_as_duplicate() {
    let rules = rules(CART);
    let st = Stack::new(rules);
    let (ingest_ports, check_ports) = (st.ingest_ports(at(0)), st.check_ports());
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1"));
    let mut check = None;
    for e in &events {
        let out = block_on(ingest(&ingest_ports, e)).unwrap();
        for eff in out.effects {
            if let Effect::Schedule { check: c, .. } = eff {
                check = Some(c);
            }
        }
    }
    let check = check.expect("checkout armed a check");
    st.clock.set(check.due);
    let first = block_on(run_check(&check_ports, &check)).unwrap();
    let second = block_on(run_check(&check_ports, &check)).unwrap();
    assert_eq!(first.decision.decision, Outcome::Send);
    assert_eq!(second.decision.reason, Some(Reason::Duplicate));
    assert_eq!(st.mailer.sent().len(), 1, "a redelivered check sends nothing");
    assert_eq!(st.mailer.sent()[0].profile.email.as_deref(), Some("c1@example.com"));
}

#[test]
fn duplicate_event_ids_change_nothing() {
    let st = Stack::new(rules(CART));
    let ports = st.ingest_ports(at(0));
    let mut s = Shopper::new("c1");
    let e = s.checkout(0, "chk1");
    let first = block_on(ingest(&ports, &e)).unwrap();
    let before = st.store.profiles();
    let again = block_on(ingest(&ports, &e)).unwrap();
    assert!(first.changed() && !again.changed());
    assert!(again.effects.is_empty());
    assert_eq!(st.store.profiles(), before, "not even the version moves");
}

#[test]
fn an_anonymous_shopper_who_identifies_keeps_their_earlier_behaviour() {
    let mut s = Shopper::new("c1");
    let anon = |mut e: Event| {
        e.identity = Identity { anonymous_id: Some("anon-1".into()), ..Identity::default() };
        e
    };
    let mut events = vec![anon(s.view(0, "p1")), anon(s.view(MIN, "p1"))];
    // identify: both ids in one message links them.
    for mut e in s.subscribe(2 * MIN) {
        e.identity.anonymous_id = Some("anon-1".into());
        events.push(e);
    }
    events.push(s.view(3 * MIN, "p1")); // now known by customer id only
    let ds = replay(&rules(BROWSE), &events);
    assert_eq!(sends(&ds).len(), 1, "three views on one profile: {ds:#?}");
}

#[test]
fn two_profiles_of_one_person_merge_when_an_event_links_them() {
    // Browsing anonymously on one device, known by customer id on another;
    // then one identify names both.
    let mut s = Shopper::new("c1");
    let anon = |mut e: Event| {
        e.identity = Identity { anonymous_id: Some("anon-1".into()), ..Identity::default() };
        e
    };
    let mut events = vec![anon(s.view(0, "p1")), anon(s.view(MIN, "p1"))];
    events.extend(s.subscribe(2 * MIN)); // customer id only: a second profile
    let mut link = s.event(3 * MIN, EventKind::ProfileUpdated { first_name: None, last_name: None });
    link.identity.anonymous_id = Some("anon-1".into());
    events.push(link.clone());
    events.push(link); // the same delivery again: nothing more happens
    events.push(s.view(4 * MIN, "p1"));
    let rules = rules(BROWSE);
    let mut r = Replay::new(&rules, AliasKey::new(b"k"));
    let mut ds = Vec::new();
    for e in &events {
        r.push(e, e.occurred_at, &mut |d| ds.push(d.clone())).unwrap();
    }
    r.finish(&mut |d| ds.push(d.clone())).unwrap();
    assert_eq!(r.store.profile_count(), 1, "merged into one profile");
    let p = &r.store.profiles()[0];
    assert_eq!(p.max_product_views_between(i64::MIN, i64::MAX), 3);
    assert_eq!(p.email.as_deref(), Some("c1@example.com"));
    assert_eq!(sends(&ds).len(), 1, "three views across both identities arm the browse reminder");
}

#[test]
fn erase_requested_deletes_the_profile_and_its_pending_check() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1"));
    events.push(s.event(2 * MIN, EventKind::EraseRequested {}));
    let ds = replay(&rules(CART), &events);
    assert!(sends(&ds).is_empty(), "{ds:#?}");
}

pub use nudge_app::now_or_never as block_on;

#[test]
fn the_events_of_one_message_are_one_step_even_when_fed_across_batches() {
    // nudge serve's event log keeps an identify as two lines: the traits
    // (the message id) and the consent (the id tagged `#1`).
    let welcome = rules("[[trigger]]\nid = \"welcome\"\non = \"profile_updated\"\ndelay = \"0s\"\ntemplate = \"t\"\n");
    let mut s = Shopper::new("c1");
    let mut halves = s.subscribe(0);
    halves[1].id = halves[0].id.tagged("#1");
    halves[1].identity = halves[0].identity.clone();
    let mut r = Replay::new(&welcome, AliasKey::new(b"k"));
    let mut decisions = Vec::new();
    let mut sink = |d: &Decision| decisions.push(d.clone());
    let first = [(&halves[0], halves[0].occurred_at)];
    let held = r.push_events(&first, false, &mut sink).unwrap();
    assert_eq!(held, 0, "the message may go on in the next batch: held back");
    let both = [(&halves[0], halves[0].occurred_at), (&halves[1], halves[1].occurred_at)];
    r.push_events(&both, true, &mut sink).unwrap();
    r.finish(&mut sink).unwrap();
    assert_eq!(finals(&decisions), vec![("welcome".into(), Outcome::Send, None)]);
    // Events of different messages are separate steps.
    let other = Shopper::new("c2").subscribe(0);
    assert!(!nudge_core::event::same_message(&halves[0], &other[1]));
    assert_eq!(nudge_core::event::messages(halves.iter().chain(&other)).len(), 3);
}

#[test]
fn same_category_counts_views_across_more_than_six_products() {
    let src = "[[trigger]]\nid = \"category\"\nwhen = { count = \"product_viewed\", same_category = true, at_least = 12, within = \"1d\" }\ntemplate = \"t\"\n";
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    // Twelve shoes, one view each (the generator's view puts all in "shoes").
    for i in 0..12 {
        events.push(s.view(MIN * (i + 1), &format!("shoe-{i}")));
    }
    let ds = replay(&rules(src), &events);
    assert_eq!(finals(&ds), vec![("category".into(), Outcome::Send, None)]);
}

#[test]
fn product_added_removed_and_cart_viewed_are_signals_of_their_own_under_cart_updated() {
    use nudge_core::event::CartAction;
    let src = r#"
[[trigger]]
id = "looked-thrice"
when = { count = "cart_viewed", at_least = 3, within = "1h" }
template = "t"
[[trigger]]
id = "added"
on = "product_added"
delay = "30m"
cancel_if = ["product_removed"]
template = "t"
[[trigger]]
id = "any-cart-change"
when = { count = "cart_updated", at_least = 4, within = "1h" }
template = "t"
"#;
    let cart = |s: &mut Shopper, t: i64, action: CartAction| {
        s.event(t, EventKind::CartUpdated { basket: Basket::default(), action: Some(action) })
    };
    // Three adds in five minutes are not three cart views.
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    for i in 0..3 {
        events.push(cart(&mut s, MIN + i * 100, CartAction::ProductAdded));
    }
    let f = finals(&replay(&rules(src), &events));
    assert_eq!(f, vec![("added".into(), Outcome::Send, None)], "only `added`, once (re-armed by each add)");
    // Three views are; a removal cancels the add's reminder; the umbrella
    // counts all four.
    let mut s = Shopper::new("c2");
    let mut events = s.subscribe(0);
    events.push(cart(&mut s, MIN, CartAction::ProductAdded));
    events.push(cart(&mut s, 2 * MIN, CartAction::ProductRemoved));
    for i in 0..2 {
        events.push(cart(&mut s, 3 * MIN + i * 60, CartAction::CartViewed));
    }
    let mut f = finals(&replay(&rules(src), &events));
    f.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        f,
        vec![("added".into(), Outcome::Skip, Some(Reason::Cancelled)), ("any-cart-change".into(), Outcome::Send, None),],
        "two views are not three"
    );
    events.push(cart(&mut s, 6 * MIN, CartAction::CartViewed));
    let mut f = finals(&replay(&rules(src), &events));
    f.sort_by(|x, y| x.0.cmp(&y.0));
    assert!(f.contains(&("looked-thrice".into(), Outcome::Send, None)), "{f:?}");
}

#[test]
fn where_filters_the_events_that_arm_a_trigger_and_the_events_a_count_counts() {
    let src = r#"
custom_events = ["Review Submitted"]
[[trigger]]
id = "big-cart"
on = "checkout_started"
where = { value = { at_least = 100 } }
delay = "10m"
template = "t"
[[trigger]]
id = "runner"
when = { count = "product_viewed", where = { category = "Running Shoes" }, at_least = 3, within = "1d" }
template = "t"
[[trigger]]
id = "five-stars"
on = "Review Submitted"
where = { rating = 5, channel = { in = ["web", "app"] } }
template = "t"
"#;
    let rules = rules(src);
    assert_eq!(
        rules.describe()[1],
        "runner (priority 0): when ≥3 product_viewed where category = \"Running Shoes\" within 1d → email `t`"
    );
    let view = |s: &mut Shopper, t: i64, category: &str| {
        s.event(
            t,
            EventKind::ProductViewed {
                product: Product { id: format!("p{t}"), category: Some(category.into()), ..Product::default() },
            },
        )
    };
    let review = |s: &mut Shopper, t: i64, rating: f64, channel: &str| {
        let properties = [
            ("rating".to_owned(), nudge_core::filter::Scalar::Number(rating)),
            ("channel".to_owned(), nudge_core::filter::Scalar::Text(channel.into())),
        ]
        .into_iter()
        .collect();
        s.event(t, EventKind::Custom { name: "Review Submitted".into(), properties })
    };
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    // Two running-shoe views and three hats: not three running-shoe views.
    events.extend([view(&mut s, 60, "running shoes"), view(&mut s, 120, "Hats"), view(&mut s, 180, "Hats")]);
    events.extend([view(&mut s, 240, "Hats"), view(&mut s, 300, "Running Shoes")]);
    // A small checkout, a four-star review and a five-star one by email.
    let mut small = s.checkout(400, "chk1");
    if let EventKind::CheckoutStarted { basket } = &mut small.kind {
        basket.value = 60.0;
    }
    events.extend([small, review(&mut s, 500, 4.0, "web"), review(&mut s, 600, 5.0, "email")]);
    assert!(sends(&replay(&rules, &events)).is_empty(), "nothing passes its filter yet");
    // The third running-shoe view, a big checkout, a five-star review on the web.
    events.push(view(&mut s, 700, "running shoes"));
    events.push(s.checkout(800, "chk2")); // value 50 … made bigger:
    if let EventKind::CheckoutStarted { basket } = &mut events.last_mut().unwrap().kind {
        basket.value = 150.0;
    }
    events.push(review(&mut s, 900, 5.0, "app"));
    let mut sent: Vec<String> = sends(&replay(&rules, &events)).iter().map(|d| d.trigger.clone()).collect();
    sent.sort();
    assert_eq!(sent, ["big-cart", "five-stars", "runner"]);
}
