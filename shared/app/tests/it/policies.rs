//! Policies: consent, suppression, caps, cooldown, priority, quiet hours,
//! holdout and variant assignment each change the outcome as documented.

use nudge_core::{assign_variant, in_holdout};

use super::*;

fn cart_rules(policy: &str, extra: &str) -> Triggers {
    rules(&format!(
        "{policy}\n[[trigger]]\nid = \"cart\"\npriority = 100\non = \"checkout_started\"\ndelay = \"10m\"\ncancel_if = [\"order_placed\"]\ntemplate = \"t\"\n{extra}\n"
    ))
}

/// Subscribed shopper checking out `n` baskets, one per `gap` seconds.
fn checkouts(n: i64, gap: i64) -> Vec<Event> {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    for i in 0..n {
        events.push(s.checkout(MIN + i * gap, &format!("chk{i}")));
    }
    events
}

#[test]
fn without_consent_nothing_is_sent() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events[1] = s.consent(0, ConsentState::NotSubscribed);
    events.push(s.checkout(MIN, "chk1"));
    let ds = replay(&cart_rules("", ""), &events);
    assert_eq!(finals(&ds), vec![("cart".into(), Outcome::Skip, Some(Reason::NoConsent))]);
    assert_eq!(ds[0].consent, ConsentState::NotSubscribed);
}

#[test]
fn consent_withdrawn_during_the_delay_stops_the_send() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1"));
    events.push(s.consent(5 * MIN, ConsentState::Unsubscribed));
    let ds = replay(&cart_rules("", ""), &events);
    assert_eq!(finals(&ds), vec![("cart".into(), Outcome::Skip, Some(Reason::NoConsent))]);
}

#[test]
fn a_late_older_consent_update_does_not_override_a_newer_one() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    let mut stale = s.consent(0, ConsentState::Unsubscribed);
    if let EventKind::ConsentChanged { consent } = &mut stale.kind {
        consent.updated_at = Some(at(-DAY));
    }
    events.push(stale);
    events.push(s.checkout(MIN, "chk1"));
    assert_eq!(sends(&replay(&cart_rules("", ""), &events)).len(), 1);
}

#[test]
fn require_consent_false_sends_to_not_subscribed_but_never_to_unsubscribed() {
    let policy = "[policy]\nrequire_consent = false";
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events[1] = s.consent(0, ConsentState::NotSubscribed);
    events.push(s.checkout(MIN, "chk1"));
    assert_eq!(sends(&replay(&cart_rules(policy, ""), &events)).len(), 1);
    events.push(s.consent(HOUR, ConsentState::Unsubscribed));
    events.push(s.checkout(2 * DAY, "chk2"));
    let ds = replay(&cart_rules(policy, ""), &events);
    assert_eq!(finals(&ds)[1], ("cart".into(), Outcome::Skip, Some(Reason::NoConsent)));
}

#[test]
fn a_permanent_bounce_suppresses_the_person() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.event(30, EventKind::EmailBounced { permanent: true }));
    events.push(s.checkout(MIN, "chk1"));
    let ds = replay(&cart_rules("", ""), &events);
    assert_eq!(finals(&ds), vec![("cart".into(), Outcome::Skip, Some(Reason::Suppressed))]);
}

#[test]
fn a_complaint_suppresses_and_a_transient_bounce_does_not() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.event(30, EventKind::EmailBounced { permanent: false }));
    events.push(s.checkout(MIN, "chk1"));
    assert_eq!(sends(&replay(&cart_rules("", ""), &events)).len(), 1);
    events.push(s.event(DAY, EventKind::EmailComplained {}));
    events.push(s.checkout(2 * DAY, "chk2"));
    let ds = replay(&cart_rules("", ""), &events);
    assert_eq!(finals(&ds)[1], ("cart".into(), Outcome::Skip, Some(Reason::Suppressed)));
}

#[test]
fn max_per_day_caps_sends_across_triggers_in_a_rolling_day() {
    let ds = replay(&cart_rules("[policy]\nmax_per_day = 1", ""), &checkouts(3, 2 * HOUR));
    let f = finals(&ds);
    assert_eq!(f[0].1, Outcome::Send);
    assert_eq!(f[1], ("cart".into(), Outcome::Skip, Some(Reason::FrequencyCap)));
    assert_eq!(f[2], ("cart".into(), Outcome::Skip, Some(Reason::FrequencyCap)));
    // A day later the window has rolled on.
    let ds = replay(&cart_rules("[policy]\nmax_per_day = 1", ""), &checkouts(2, DAY + HOUR));
    assert_eq!(sends(&ds).len(), 2);
}

#[test]
fn max_per_week_caps_sends_over_seven_rolling_days() {
    let ds = replay(&cart_rules("[policy]\nmax_per_week = 2", ""), &checkouts(4, DAY + HOUR));
    let f = finals(&ds);
    let outcomes: Vec<Option<Reason>> = f.iter().map(|x| x.2).collect();
    assert_eq!(outcomes, vec![None, None, Some(Reason::FrequencyCap), Some(Reason::FrequencyCap)]);
}

#[test]
fn cooldown_skips_the_same_trigger_until_it_has_passed() {
    let ds = replay(&cart_rules("", "cooldown = \"24h\""), &checkouts(3, 10 * HOUR));
    let outcomes: Vec<Option<Reason>> = finals(&ds).iter().map(|x| x.2).collect();
    // Sends at 0h10; 10h: in cooldown; 20h: in cooldown. Then the window ends.
    assert_eq!(outcomes, vec![None, Some(Reason::Cooldown), Some(Reason::Cooldown)]);
    let ds = replay(&cart_rules("", "cooldown = \"24h\""), &checkouts(2, 25 * HOUR));
    assert_eq!(sends(&ds).len(), 2);
}

#[test]
fn a_higher_priority_pending_trigger_outranks_a_lower_one() {
    let src = r#"
[[trigger]]
id = "cart"
priority = 100
on = "checkout_started"
delay = "2h"
template = "t"
[[trigger]]
id = "browse"
priority = 50
when = { count = "product_viewed", same_product = true, at_least = 3, within = "48h" }
delay = "30m"
template = "t"
"#;
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.extend([s.view(0, "p1"), s.view(MIN, "p1"), s.view(2 * MIN, "p1"), s.checkout(3 * MIN, "chk1")]);
    let ds = replay(&rules(src), &events);
    assert_eq!(
        finals(&ds),
        vec![("browse".into(), Outcome::Skip, Some(Reason::Outranked)), ("cart".into(), Outcome::Send, None)]
    );
}

#[test]
fn a_higher_priority_send_outranks_lower_ones_for_the_outrank_window_only() {
    let src = |window: &str| {
        format!(
            r#"{window}
[[trigger]]
id = "cart"
priority = 100
on = "checkout_started"
delay = "10m"
cooldown = "7d"
template = "t"
[[trigger]]
id = "browse"
priority = 50
when = {{ count = "product_viewed", same_product = true, at_least = 3, within = "48h" }}
delay = "1h"
template = "t"
"#
        )
    };
    let browse_after = |hours: i64, window: &str| {
        let mut s = Shopper::new("c1");
        let mut events = s.subscribe(0);
        events.push(s.checkout(0, "chk1"));
        let t = hours * HOUR;
        events.extend([s.view(t, "p1"), s.view(t + MIN, "p1"), s.view(t + 2 * MIN, "p1")]);
        finals(&replay(&rules(&src(window)), &events))
    };
    // Sent at 0h10: a browse reminder at 2h02 is outranked, one at 26h02
    // is not, although the cart trigger is still in its 7-day cooldown.
    assert_eq!(
        browse_after(1, ""),
        vec![("cart".into(), Outcome::Send, None), ("browse".into(), Outcome::Skip, Some(Reason::Outranked))]
    );
    assert_eq!(
        browse_after(25, ""),
        vec![("cart".into(), Outcome::Send, None), ("browse".into(), Outcome::Send, None)]
    );
    // A shorter window, set in the policy.
    assert_eq!(
        browse_after(1, "[policy]\noutrank_window = \"30m\""),
        vec![("cart".into(), Outcome::Send, None), ("browse".into(), Outcome::Send, None)]
    );
}

const LOYAL_AND_GENERIC: &str = r#"
[[trigger]]
id = "cart-loyal"
priority = 100
on = "checkout_started"
delay = "10m"
if = { orders_at_least = 3 }
template = "t"
[[trigger]]
id = "cart"
priority = 90
on = "checkout_started"
delay = "10m"
template = "t"
"#;

#[test]
fn a_higher_trigger_whose_condition_fails_for_this_person_outranks_nothing() {
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(MIN, "chk1"));
    let ds = replay(&rules(LOYAL_AND_GENERIC), &events);
    let mut f = finals(&ds);
    f.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        f,
        vec![("cart".into(), Outcome::Send, None), ("cart-loyal".into(), Outcome::Skip, Some(Reason::ConditionLapsed))],
        "a first-time shopper gets the generic reminder"
    );
    // A loyal shopper gets the loyal one only.
    let mut s = Shopper::new("c2");
    let mut events = s.subscribe(0);
    for i in 0..3 {
        events.push(s.order(i * DAY, &format!("old{i}")));
    }
    events.push(s.checkout(4 * DAY, "chk1"));
    let mut f = finals(&replay(&rules(LOYAL_AND_GENERIC), &events));
    f.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        f,
        vec![("cart".into(), Outcome::Skip, Some(Reason::Outranked)), ("cart-loyal".into(), Outcome::Send, None)]
    );
}

#[test]
fn two_checks_due_together_are_decided_the_same_whichever_runs_first() {
    // The same rules with the triggers listed in either order: the checks
    // due at the same second run in the other order.
    let (head, tail) = LOYAL_AND_GENERIC.split_at(LOYAL_AND_GENERIC.find("[[trigger]]\nid = \"cart\"\n").unwrap());
    let swapped = format!("{tail}\n{head}");
    for orders in 0..4 {
        let mut s = Shopper::new("c1");
        let mut events = s.subscribe(0);
        for i in 0..orders {
            events.push(s.order(i * DAY, &format!("old{i}")));
        }
        events.push(s.checkout(4 * DAY, "chk1"));
        let decided = |src: &str| {
            let mut f = finals(&replay(&rules(src), &events));
            f.sort_by(|x, y| x.0.cmp(&y.0));
            f
        };
        let (a, b) = (decided(LOYAL_AND_GENERIC), decided(&swapped));
        assert_eq!(a, b, "{orders} orders");
        assert_eq!(a.iter().filter(|d| d.1 == Outcome::Send).count(), 1, "{orders} orders: one email, {a:?}");
    }
}

#[test]
fn a_higher_trigger_in_its_own_cooldown_outranks_nothing() {
    let src = r#"
[[trigger]]
id = "cart"
priority = 100
on = "checkout_started"
delay = "10m"
cooldown = "7d"
template = "t"
[[trigger]]
id = "cart-fallback"
priority = 50
on = "checkout_started"
delay = "20m"
template = "t"
"#;
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(0, "chk1"));
    events.push(s.checkout(2 * DAY, "chk2"));
    let f = finals(&replay(&rules(src), &events));
    assert_eq!(
        f,
        vec![
            ("cart".into(), Outcome::Send, None),
            ("cart-fallback".into(), Outcome::Skip, Some(Reason::Outranked)),
            ("cart".into(), Outcome::Skip, Some(Reason::Cooldown)),
            ("cart-fallback".into(), Outcome::Send, None),
        ],
        "two days on, the cart trigger cannot send: the fallback does"
    );
}

#[test]
fn equal_priorities_do_not_outrank_each_other() {
    let src = r#"
[[trigger]]
id = "a"
on = "checkout_started"
delay = "10m"
template = "t"
[[trigger]]
id = "b"
on = "checkout_started"
delay = "2d"
template = "t"
"#;
    let ds = replay(&rules(src), &checkouts(1, 0));
    assert_eq!(sends(&ds).len(), 2);
}

#[test]
fn quiet_hours_defer_to_the_end_of_the_window_and_never_drop() {
    let policy = "[policy]\nquiet_hours = { from = \"21:00\", to = \"08:00\", time_zone = \"America/New_York\" }";
    // T0 is 10:00 New York time (EDT, UTC-4). A checkout at 20:55 New York
    // is due at 21:05: inside quiet hours, so it waits until 08:00.
    let mut s = Shopper::new("c1");
    let mut events = s.subscribe(0);
    events.push(s.checkout(10 * HOUR + 55 * MIN, "chk1"));
    let ds = replay(&cart_rules(policy, ""), &events);
    assert_eq!(ds[0].decision, Outcome::Defer);
    assert_eq!(ds[0].reason, Some(Reason::QuietHours));
    let morning = at(22 * HOUR); // 08:00 next day New York = 12:00 UTC
    assert_eq!(ds[0].until, Some(morning));
    assert_eq!(sends(&ds).len(), 1);
    assert_eq!(sends(&ds)[0].at, morning);
}

#[test]
fn quiet_hours_follow_daylight_saving_time() {
    // 2026-11-01 is the end of DST in New York: 08:00 EST is 13:00 UTC.
    let policy = "[policy]\nquiet_hours = { from = \"21:00\", to = \"08:00\", time_zone = \"America/New_York\" }";
    let rules = cart_rules(policy, "");
    let mut s = Shopper::new("c1");
    let start: Timestamp = "2026-11-01T04:00:00Z".parse().unwrap(); // 00:00 EDT
    let offset = start.as_second() - at(0).as_second();
    let mut events = s.subscribe(offset);
    events.push(s.checkout(offset, "chk1"));
    let ds = replay(&rules, &events);
    assert_eq!(sends(&ds)[0].at, "2026-11-01T13:00:00Z".parse::<Timestamp>().unwrap());
}

#[test]
fn holdout_episodes_are_decided_but_not_sent() {
    let rules = cart_rules("", "holdout = 0.5");
    let trigger = rules.get("cart").unwrap();
    let mut held = 0;
    for i in 0..200 {
        let mut s = Shopper::new(&format!("c{i}"));
        let mut events = s.subscribe(0);
        events.push(s.checkout(MIN, "chk"));
        let ds = replay(&rules, &events);
        let d = finals(&ds)[0].clone();
        let expected_holdout = in_holdout("shop", &ds[0].profile, trigger);
        assert_eq!(d.2 == Some(Reason::Holdout), expected_holdout);
        if d.2 == Some(Reason::Holdout) {
            held += 1;
            assert!(ds[0].variant.is_some(), "holdouts record their variant for attribution");
        }
    }
    assert!((70..=130).contains(&held), "about half held out: {held}");
}

#[test]
fn variant_shares_stay_within_two_percent_of_weights_over_100k_profiles() {
    let rules = rules(
        "[[trigger]]\nid = \"t\"\non = \"checkout_started\"\ntemplate = \"x\"\nvariants = [{ id = \"a\", weight = 1 }, { id = \"b\", weight = 1 }, { id = \"c\", weight = 2 }]\n",
    );
    let trigger = rules.get("t").unwrap();
    let run = || {
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..100_000 {
            *counts.entry(assign_variant("shop", &format!("p{i:016x}"), trigger, 1)).or_insert(0u32) += 1;
        }
        counts
    };
    let first = run();
    for (v, want) in [("a", 0.25), ("b", 0.25), ("c", 0.5)] {
        let share = f64::from(first[v]) / 100_000.0;
        assert!((share - want).abs() <= 0.02, "{v}: {share}");
    }
    assert_eq!(first, run(), "assignment is identical across runs");
}

#[test]
fn variant_assignment_is_pinned_for_known_inputs() {
    // Identical on every machine and release: a change here reassigns
    // running experiments.
    let rules = rules(
        "[[trigger]]\nid = \"t\"\non = \"checkout_started\"\ntemplate = \"x\"\nvariants = [{ id = \"a\" }, { id = \"b\" }]\n",
    );
    let t = rules.get("t").unwrap();
    let got: Vec<&str> = (1..=8).map(|ep| assign_variant("shop", "p1", t, ep)).collect();
    assert_eq!(got, PINNED_VARIANTS);
}

const PINNED_VARIANTS: [&str; 8] = ["b", "b", "a", "b", "a", "b", "b", "a"];

/// A subscribed shopper's checkout at 0 and the one check it asked for.
fn armed_cart(st: &Stack) -> nudge_core::Check {
    let mut s = Shopper::new("c1");
    for e in s.subscribe(0) {
        st.ingest(&e, at(0));
    }
    let asked = st.ingest(&s.checkout(MIN, "chk1"), at(MIN));
    assert_eq!(asked.len(), 1, "one scheduler request at arming");
    asked.into_iter().next().unwrap()
}

#[test]
fn a_check_run_later_than_max_lateness_skips_expired_and_ends_the_episode() {
    let st = Stack::new(cart_rules("[policy]\nmax_lateness = \"2h\"", ""));
    let check = armed_cart(&st);
    // Due at 11 minutes; the scheduler (or the sweep) only gets to it 3 hours later.
    let d = st.run(&check, check.due.checked_add(jiff::SignedDuration::from_hours(3)).unwrap());
    assert_eq!((d.decision, d.reason), (Outcome::Skip, Some(Reason::Expired)));
    assert!(st.mailer.take_sent().is_empty(), "nothing is sent late");
    // The episode is over: a redelivery of the same check is a duplicate, not a send.
    let again = st.run(&check, check.due.checked_add(jiff::SignedDuration::from_hours(4)).unwrap());
    assert_eq!(again.reason, Some(Reason::Duplicate));
}

#[test]
fn a_check_late_by_less_than_max_lateness_still_sends() {
    let st = Stack::new(cart_rules("[policy]\nmax_lateness = \"2h\"", ""));
    let check = armed_cart(&st);
    let d = st.run(&check, check.due.checked_add(jiff::SignedDuration::from_mins(90)).unwrap());
    assert_eq!((d.decision, d.reason), (Outcome::Send, None));
    assert_eq!(st.mailer.take_sent().len(), 1);
}

#[test]
fn without_max_lateness_a_late_check_still_sends() {
    let st = Stack::new(cart_rules("", ""));
    let check = armed_cart(&st);
    let d = st.run(&check, check.due.checked_add(jiff::SignedDuration::from_hours(72)).unwrap());
    assert_eq!((d.decision, d.reason), (Outcome::Send, None));
}

#[test]
fn a_trigger_max_lateness_overrides_the_policy_default() {
    let st = Stack::new(cart_rules("[policy]\nmax_lateness = \"2h\"", "max_lateness = \"30m\""));
    let check = armed_cart(&st);
    let d = st.run(&check, check.due.checked_add(jiff::SignedDuration::from_hours(1)).unwrap());
    assert_eq!(d.reason, Some(Reason::Expired));
}

#[test]
fn a_check_deferred_by_quiet_hours_counts_its_lateness_from_when_they_end() {
    // Checkout at 10:01 New York + 10 h delay → due 20:01, inside 20:00–08:00.
    let policy = "[policy]\nmax_lateness = \"1h\"\nquiet_hours = { from = \"20:00\", to = \"08:00\", time_zone = \"America/New_York\" }";
    let st = Stack::new(rules(&format!(
        "{policy}\n[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10h\"\ntemplate = \"t\"\n"
    )));
    let check = armed_cart(&st);
    let d = st.run(&check, check.due);
    assert_eq!((d.decision, d.reason), (Outcome::Defer, Some(Reason::QuietHours)));
    let until = d.until.unwrap();
    let later = nudge_core::Check { due: until, ..check };
    // Twenty minutes after the window ended (11 h after the original due time): still on time.
    let sent = st.run(&later, until.checked_add(jiff::SignedDuration::from_mins(20)).unwrap());
    assert_eq!((sent.decision, sent.reason), (Outcome::Send, None));
}

#[test]
fn lifetime_spend_average_order_and_order_recency_select_people() {
    let src = r#"
[segments]
vip = { all = [{ spent_at_least = 120 }, { average_order_at_least = 40 }] }
small = { average_order_at_most = 30 }
replenish = { all = [{ last_order_before = "20d" }, { not = { last_order_within = "10d" } }] }
[[trigger]]
id = "vip"
on = "checkout_started"
delay = "10m"
if = { segment = "vip" }
template = "t"
[[trigger]]
id = "small"
on = "checkout_started"
delay = "10m"
if = { segment = "small" }
template = "t"
[[trigger]]
id = "replenish"
on = "checkout_started"
delay = "10m"
if = { segment = "replenish" }
template = "t"
"#;
    let rules = rules(src);
    // `orders` orders of 50 a day apart, then a checkout `later` after the last.
    let sent = |orders: i64, later: i64| {
        let mut s = Shopper::new("c1");
        let mut events = s.subscribe(0);
        for i in 0..orders {
            events.push(s.order(i * DAY, &format!("old{i}")));
        }
        events.push(s.checkout((orders - 1).max(0) * DAY + later, "chk"));
        let mut ids: Vec<String> = sends(&replay(&rules, &events)).iter().map(|d| d.trigger.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(sent(3, 21 * DAY), ["replenish", "vip"], "spent 150, average 50, last order 21 days ago");
    assert_eq!(sent(3, 5 * DAY), ["vip"], "ordered 5 days ago: not yet due for a refill");
    assert_eq!(sent(1, 21 * DAY), ["replenish"], "spent 50: not a VIP");
    assert!(sent(0, HOUR).is_empty(), "no orders: no average, no last order");
}

#[test]
fn quiet_hours_are_kept_in_the_recipient_s_own_time_zone_when_known() {
    let policy = "[policy]\nquiet_hours = { from = \"21:00\", to = \"08:00\", time_zone = \"America/New_York\" }";
    // T0 is 14:00 UTC: 10:00 in New York, 23:00 in Tokyo.
    let decided = |zone: Option<&str>| {
        let mut s = Shopper::new("c1");
        let mut events = s.subscribe(0);
        let mut checkout = s.checkout(0, "chk1");
        checkout.time_zone = zone.map(str::to_owned);
        events.push(checkout);
        let ds = replay(&cart_rules(policy, ""), &events);
        let first = ds.iter().find(|d| d.trigger == "cart").unwrap().clone();
        (first.decision, first.reason, sends(&ds).first().map(|d| d.at))
    };
    let (outcome, _, sent) = decided(None);
    assert_eq!(outcome, Outcome::Send, "10:10 in New York: the shop's zone");
    assert_eq!(sent, Some(at(10 * MIN)));
    let (outcome, reason, sent) = decided(Some("Asia/Tokyo"));
    assert_eq!((outcome, reason), (Outcome::Defer, Some(Reason::QuietHours)), "23:10 in Tokyo");
    // Sent at 08:00 Tokyo time: 23:00 UTC.
    assert_eq!(sent, Some("2026-10-06T23:00:00Z".parse().unwrap()));
    let (outcome, _, _) = decided(Some("Not/AZone"));
    assert_eq!(outcome, Outcome::Send, "an unknown zone is ignored: the shop's");
}

#[test]
fn a_person_held_out_of_a_trigger_is_held_out_of_every_episode_of_it() {
    let rules = rules(
        "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10m\"\ncancel_if = [\"order_placed\"]\ntemplate = \"t\"\nholdout = 0.5\n",
    );
    let mut held_out_people = 0;
    for i in 0..20 {
        let mut s = Shopper::new(&format!("c{i}"));
        let mut events = s.subscribe(0);
        for ep in 0..3 {
            events.push(s.checkout(ep * DAY, &format!("chk{i}-{ep}")));
        }
        let ds = replay(&rules, &events);
        assert_eq!(ds.len(), 3, "{ds:?}");
        let held: Vec<bool> = ds.iter().map(|d| d.reason == Some(Reason::Holdout)).collect();
        assert!(held.iter().all(|h| *h == held[0]), "c{i}: {held:?}");
        held_out_people += usize::from(held[0]);
    }
    assert!((1..20).contains(&held_out_people), "some held out, some not: {held_out_people}");
}

#[test]
fn each_variant_waits_its_own_delay_and_is_decided_in_the_variant_it_waited_for() {
    let rules = rules(
        "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10m\"\ncancel_if = [\"order_placed\"]\ntemplate = \"t\"\n\
         variants = [{ id = \"fast\", weight = 1 }, { id = \"slow\", weight = 1, delay = \"1h\" }]\n",
    );
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20 {
        let mut s = Shopper::new(&format!("c{i}"));
        let mut events = s.subscribe(0);
        events.push(s.checkout(0, "chk"));
        let ds = replay(&rules, &events);
        let send = ds.iter().find(|d| d.decision == Outcome::Send).unwrap();
        let variant = send.variant.clone().unwrap();
        let waited = send.at.as_second() - at(0).as_second();
        assert_eq!(waited, if variant == "slow" { HOUR } else { 10 * MIN }, "c{i} in {variant}");
        seen.insert(variant);
    }
    assert_eq!(seen.len(), 2, "both variants drawn");
    let described = rules.describe().join("\n");
    assert!(described.contains("(slow waits 1h)"), "{described}");
}
