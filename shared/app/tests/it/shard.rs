//! A replay on several threads (`nudge replay --threads N`) decides what a
//! replay on one decides, in the same order, for any number of threads.

use jiff::SignedDuration;
use nudge_app::memory::MemoryScheduler;
use nudge_app::shard::{self, Message};
use nudge_app::{AliasKey, Replay};
use nudge_core::{ConsentState, Event, Identity};

use super::*;

const RULES: &str = r#"
[policy]
require_consent = true
max_per_day = 1

[[trigger]]
id = "cart-abandoned"
on = "checkout_started"
delay = "10m"
cancel_if = ["order_placed"]
template = "cart-reminder"
priority = 10
holdout = 0.2
variants = [{ id = "a", weight = 1 }, { id = "b", weight = 1, delay = "30m" }]

[[trigger]]
id = "browse"
when = { count = "product_viewed", at_least = 2, within = "2h" }
delay = "10m"
template = "browse"
priority = 1
"#;

/// A seeded log of 400 people over two shops: each browses as an anonymous
/// visitor, most identify later (which merges the visitor into the
/// customer, with an email that two people share), some check out and some
/// buy; arrivals are jittered, a few by more than the events around them.
/// Several checks come due in the same second.
fn log() -> Vec<(Event, Timestamp)> {
    let mut seed = 42u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut out = Vec::new();
    for p in 0..400 {
        let shop = if p % 3 == 0 { "north" } else { "south" };
        let mut s = Shopper::new(&format!("c{p}"));
        let start = (next(6 * 60) * 60) as i64;
        let anon = Identity { anonymous_id: Some(format!("v{p}")), ..Identity::default() };
        let mut push = |mut e: Event, late: i64| {
            e.shop = shop.into();
            let arrived = Timestamp::from_second(e.occurred_at.as_second() + late).unwrap();
            out.push((e, arrived));
        };
        for k in 0..(1 + next(3) as i64) {
            let mut v = s.view(start + k * 300, &format!("p{}", next(4)));
            v.identity = anon.clone();
            push(v, next(3) as i64);
        }
        if next(10) < 8 {
            // identify: the customer id with the visitor's id, and an email
            // (in a few households, two people share one).
            for mut e in s.subscribe(start + 1_200) {
                e.identity.anonymous_id = anon.anonymous_id.clone();
                if p % 20 < 2 {
                    e.identity.email = Some(format!("home{}@example.com", p / 20));
                }
                push(e, 0);
            }
            for k in 0..next(3) as i64 {
                push(s.view(start + 2_400 + k * 120, "p1"), 0);
            }
            if next(2) == 0 {
                let token = format!("chk{p}");
                push(s.checkout(start + 1_800, &token), next(2) as i64 * 400);
                if next(3) == 0 {
                    push(s.order(start + 1_800 + (next(4) as i64) * 600, &token), 0);
                }
            }
            if next(4) == 0 {
                push(s.consent(start + 3_000, ConsentState::Unsubscribed), 0);
            }
        }
    }
    out.sort_by_key(|(e, arrived)| (*arrived, e.id.to_string()));
    // A few lines out of order, as logs joined from two sources have them.
    for i in (50..out.len()).step_by(97) {
        out.swap(i, i - 40);
    }
    out
}

fn setup(r: &mut Replay<'_>) {
    r.scheduler = MemoryScheduler::new().with_lead(SignedDuration::from_secs(60));
}

/// What a one-thread replay gives: the decision lines, the summary and
/// the attribution report, as JSON.
fn one_thread(rules: &Triggers, events: &[(Event, Timestamp)]) -> (Vec<String>, String, String) {
    let mut r = Replay::new(rules, AliasKey::new(b"k"));
    setup(&mut r);
    let mut lines = Vec::new();
    let mut sink = |d: &nudge_core::Decision| lines.push(serde_json::to_string(d).unwrap());
    // In batches, as `nudge replay` reads them, a message left open at the
    // end of one going on in the next.
    let mut carry: Vec<(&Event, Timestamp)> = Vec::new();
    for chunk in events.chunks(37) {
        carry.extend(chunk.iter().map(|(e, t)| (e, *t)));
        let rest = r.push_events(&carry, false, &mut sink).unwrap();
        carry.drain(..rest);
    }
    r.push_events(&carry, true, &mut sink).unwrap();
    r.finish(&mut sink).unwrap();
    let summary = serde_json::to_string(r.summary()).unwrap();
    let report = serde_json::to_string(&r.attribution().report()).unwrap();
    (lines, summary, report)
}

#[test]
fn a_replay_on_any_number_of_threads_makes_the_one_thread_replay_s_decisions_in_its_order() {
    let rules = rules(RULES);
    let events = log();
    let (expected, summary, report) = one_thread(&rules, &events);
    // The log is one worth splitting: sends, skips of several kinds, and
    // checks of different people in the same second.
    let sends = expected.iter().filter(|l| l.contains(r#""decision":"send""#)).count();
    eprintln!("{}", summary);
    assert!(sends > 50 && expected.len() > sends + 50, "{sends} sends of {}", expected.len());
    let ats: Vec<&str> = expected.iter().map(|l| &l[..30]).collect();
    assert!(ats.windows(2).any(|w| w[0] == w[1]), "no two decisions in one second");
    let messages = shard::messages(events.iter().map(|(e, t)| (e, *t)));
    for threads in [1, 2, 3, 4, 7] {
        let got = shard::replay(&rules, &AliasKey::new(b"k"), &messages, threads, &setup, &|d| {
            serde_json::to_string(d).unwrap()
        })
        .unwrap();
        assert_eq!(got.decisions, expected, "{threads} threads");
        assert_eq!(serde_json::to_string(&got.summary).unwrap(), summary, "{threads} threads");
        assert_eq!(serde_json::to_string(&got.attribution.report()).unwrap(), report, "{threads} threads");
    }
}

#[test]
fn people_who_share_an_alias_anywhere_in_the_log_go_to_one_shard() {
    let mut a = Shopper::new("ada");
    let mut b = Shopper::new("bea");
    let visitor =
        |e: &mut Event, v: &str| e.identity = Identity { anonymous_id: Some(v.into()), ..Identity::default() };
    let mut v1 = a.view(0, "p1");
    visitor(&mut v1, "v1");
    let mut v2 = b.view(0, "p1");
    visitor(&mut v2, "v2");
    let unrelated: Vec<Event> = (0..40).map(|i| Shopper::new(&format!("x{i}")).view(0, "p1")).collect();
    // Late in the log, one email joins the two visitors (through their
    // customer ids): everything from the first line on goes together.
    let mut join1 = a.view(60, "p2");
    join1.identity.email = Some("Home@Example.com ".into());
    let mut join2 = b.view(60, "p2");
    join2.identity.email = Some("home@example.com".into());
    let mut link_a = a.view(30, "p3");
    link_a.identity.anonymous_id = Some("v1".into());
    let mut link_b = b.view(30, "p3");
    link_b.identity.anonymous_id = Some("v2".into());
    let mut all = vec![&v1, &v2];
    all.extend(&unrelated);
    all.extend([&link_a, &link_b, &join1, &join2]);
    let messages: Vec<Message> = all.iter().map(|e| Message { events: vec![*e], arrived: e.occurred_at }).collect();
    for shards in [2, 3, 8] {
        let of = shard::assign(&messages, shards);
        let n = messages.len();
        let together = [0, 1, n - 4, n - 3, n - 2, n - 1];
        assert!(together.iter().all(|&i| of[i] == of[0]), "{shards} shards: {of:?}");
        let used: std::collections::BTreeSet<u32> = of.iter().copied().collect();
        assert!(used.len() > 1, "{shards} shards: everyone in one shard");
    }
}
