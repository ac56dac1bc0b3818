//! The DynamoDB request model behind `nudge replay --aws-usage`: what the
//! DynamoDB store would spend on the store calls of a replay.

use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use nudge_app::{AliasKey, Replay};
use nudge_core::{Event, EventId, EventKind, Identity, Triggers};

const RULES: &str = r#"
[[trigger]]
id = "browse"
on = "product_viewed"
delay = "1h"
template = "t"
"#;

fn page_view(n: u32, minute: i64, user: bool) -> Event {
    Event {
        id: EventId::parse(format!("e-{n}")).unwrap(),
        shop: "shop".into(),
        occurred_at: Timestamp::from_second(1_790_000_000 + minute * 60).unwrap(),
        identity: Identity {
            customer_id: user.then(|| "u-1".into()),
            anonymous_id: Some("anon-1".into()),
            ..Identity::default()
        },
        kind: EventKind::PageViewed { url: Some("https://shop.example/".into()), category: None, name: None },
        trust: Default::default(),
        received_at: None,
        time_zone: None,
    }
}

fn counts(h: &[AtomicU64]) -> Vec<u64> {
    h.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

#[test]
fn a_known_shoppers_event_is_one_batch_read_and_one_write_even_after_a_user_id_joined_the_anonymous_one() {
    let rules = Triggers::parse(RULES, "test.toml", None).unwrap();
    let mut r = Replay::new(&rules, AliasKey::new(b"k"));
    let model = nudge_aws::cost::watch(&r);
    // Created from the anonymous id; the second event links the user id.
    for e in [page_view(1, 0, false), page_view(2, 1, true), page_view(3, 2, true)] {
        r.push(&e, e.occurred_at, &mut |_| {}).unwrap();
    }
    // Two events linked aliases (a read, the profile write, the alias write);
    // the third is plain: one read (aliases and candidate profiles), one write.
    assert_eq!(counts(&model.linking_ingests), [0, 0, 0, 2, 0, 0, 0, 0]);
    assert_eq!(counts(&model.plain_ingests), [0, 0, 1, 0, 0, 0, 0, 0]);
    let usage = nudge_aws::cost::usage(&r, &model);
    assert_eq!(usage.events, 3);
    assert_eq!(usage.plain_event_max_requests, 2);
}

#[test]
fn a_store_takes_one_watcher() {
    let rules = Triggers::parse(RULES, "test.toml", None).unwrap();
    let r = Replay::new(&rules, AliasKey::new(b"k"));
    let _model = nudge_aws::cost::watch(&r);
    assert!(!r.store.watch(std::sync::Arc::new(nudge_aws::cost::DynamoModel::default())));
}

#[test]
fn the_event_bus_costs_one_entry_per_accepted_event_and_per_decision() {
    let rules = Triggers::parse(&RULES.replace("product_viewed", "page_viewed"), "test.toml", None).unwrap();
    let mut r = Replay::new(&rules, AliasKey::new(b"k"));
    let model = nudge_aws::cost::watch(&r);
    let e = page_view(1, 0, true);
    // The same event twice (a duplicate is not published), then the check.
    r.push(&e, e.occurred_at, &mut |_| {}).unwrap();
    r.push(&e, e.occurred_at, &mut |_| {}).unwrap();
    let mut decisions = 0;
    r.finish(&mut |_| decisions += 1).unwrap();
    assert_eq!(decisions, 1);
    let usage = nudge_aws::cost::usage(&r, &model);
    // 2 entries (the event and the decision) over 2 events in, at $1 a
    // million entries: $1 per million events.
    let bus = usage.cost_per_million_events.event_bus_separately;
    assert!((bus - 1.0).abs() < 1e-9, "{bus}");
}
