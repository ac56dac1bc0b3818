//! The DynamoDB request model of `MemoryStore` (behind `nudge replay
//! --aws-usage`): what a known person's event costs.

use std::sync::atomic::Ordering;

use super::*;

const RULES: &str = r#"
[[trigger]]
id = "browse"
on = "product_viewed"
delay = "1h"
template = "t"
"#;

#[test]
fn a_known_shoppers_event_is_one_batch_read_and_one_write_even_after_a_user_id_joined_the_anonymous_one() {
    let rules = rules(RULES);
    let mut s = Shopper::new("u-1");
    let viewed = |s: &mut Shopper, t: i64, user: bool| {
        let mut e = s.event(t, EventKind::PageViewed { url: Some("https://shop.example/".into()) });
        e.identity.anonymous_id = Some("anon-1".into());
        if !user {
            e.identity.customer_id = None;
        }
        e
    };
    // Created from the anonymous id; the second event links the user id.
    let log = [viewed(&mut s, 0, false), viewed(&mut s, MIN, true), viewed(&mut s, 2 * MIN, true)];
    let mut r = Replay::new(&rules, AliasKey::new(b"k"));
    r.store.dynamo.measure.store(true, Ordering::Relaxed);
    for e in &log {
        r.push(e, e.occurred_at, &mut |_| {}).unwrap();
    }
    let count = |h: &[std::sync::atomic::AtomicU64]| h.iter().map(|c| c.load(Ordering::Relaxed)).collect::<Vec<_>>();
    // Two events linked aliases (a read, the profile write, the alias write);
    // the third is plain: one read (aliases and candidate profiles), one write.
    assert_eq!(count(&r.store.dynamo.linking_ingests), [0, 0, 0, 2, 0, 0, 0, 0]);
    assert_eq!(count(&r.store.dynamo.plain_ingests), [0, 0, 1, 0, 0, 0, 0, 0]);
}
