//! Properties over random input: duplicates change nothing, profiles stay
//! small, nothing panics.

use nudge_core::hash::{mix, unit_interval};
use nudge_core::{Check, Profile};
use proptest::prelude::*;

use super::*;

const EXAMPLE_RULES: &str = include_str!("../../../../examples/triggers.toml");

fn example_rules() -> Triggers {
    Triggers::parse(EXAMPLE_RULES, "examples/triggers.toml", None).unwrap()
}

/// A small deterministic generator, so a failing seed reproduces exactly.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        unit_interval(self.next()) < p
    }
    /// Strings from short ids to far longer than any limit.
    fn text(&mut self) -> String {
        let len = match self.below(10) {
            0 => 200 + self.below(800),
            1..=3 => 40 + self.below(40),
            _ => 1 + self.below(12),
        };
        (0..len).map(|_| char::from(b'a' + self.below(26) as u8)).collect()
    }
    fn pick_id(&mut self, pool: u64) -> String {
        if self.chance(0.05) { self.text() } else { format!("id-{}", self.below(pool)) }
    }
}

/// One random event of any kind, for one person, near time `t`.
fn random_event(g: &mut Gen, n: u64, t: i64) -> Event {
    let product = |g: &mut Gen| Product {
        id: g.pick_id(5_000),
        category: g.chance(0.8).then(|| g.pick_id(50)),
        title: g.chance(0.5).then(|| g.text()),
        price: Some(g.below(500) as f64),
    };
    let basket = |g: &mut Gen| Basket {
        token: Some(g.pick_id(100)),
        value: g.below(1_000) as f64,
        currency: Some(if g.chance(0.9) { "USD".into() } else { g.text() }),
        recovery_url: g.chance(0.5).then(|| format!("https://shop.example/{}", g.text())),
        lines: (0..g.below(12))
            .map(|_| Line {
                product_id: g.pick_id(5_000),
                variant_id: Some(g.pick_id(9_000)),
                title: Some(g.text()),
                variant_title: Some(g.text()),
                quantity: g.below(5) as u32 + 1,
                price: g.below(300) as f64,
            })
            .collect(),
    };
    let kind = match g.below(16) {
        0 => EventKind::PageViewed { url: Some(g.text()), category: g.chance(0.5).then(|| g.text()), name: None },
        1..=4 => EventKind::ProductViewed { product: product(g) },
        5 => EventKind::CartUpdated { basket: basket(g), action: None },
        6 => EventKind::CheckoutStarted { basket: basket(g) },
        7 => EventKind::OrderPlaced {
            order: Order {
                id: g.pick_id(1_000_000),
                value: g.below(1_000) as f64,
                currency: None,
                tokens: vec![g.pick_id(100)],
                product_ids: (0..g.below(10)).map(|_| g.pick_id(5_000)).collect(),
            },
        },
        8 => EventKind::WishlistAdded { product: product(g) },
        9 => EventKind::EmailOpened { message: MessageRef { trigger: Some("cart-abandoned".into()), episode: None } },
        10 => EventKind::EmailClicked { message: MessageRef::default() },
        11 => EventKind::ConsentChanged {
            consent: ConsentUpdate {
                state: if g.chance(0.8) { ConsentState::Subscribed } else { ConsentState::Unsubscribed },
                opt_in_level: None,
                updated_at: None,
                source: Some(nudge_core::ConsentSource::Import),
            },
        },
        12 => EventKind::ProfileUpdated { first_name: Some(g.text()), last_name: Some(g.text()) },
        13 => EventKind::OrderCancelled { order_id: g.pick_id(1_000_000) },
        14 => EventKind::Custom {
            name: if g.chance(0.5) { "Loyalty Points Earned".into() } else { g.text() },
            properties: Default::default(),
        },
        _ => EventKind::EmailBounced { permanent: false },
    };
    // Mostly in order, sometimes hours late.
    let jitter = if g.chance(0.05) { -(g.below(20_000) as i64) } else { 0 };
    Event {
        // Ids up to the longest an event may carry.
        id: if g.chance(0.02) {
            let t = g.text();
            EventId::parse(&t[..t.len().min(EventId::MAX_LEN)]).unwrap()
        } else {
            EventId::parse(format!("e{n}")).unwrap()
        },
        shop: "shop".into(),
        occurred_at: Timestamp::from_second(t + jitter).unwrap(),
        identity: Identity {
            customer_id: Some("c1".into()),
            email: g.chance(0.1).then(|| format!("{}@example.com", g.text())),
            ..Identity::default()
        },
        kind,
        trust: Default::default(),
        received_at: None,
        time_zone: None,
    }
}

/// The largest a profile's JSON got over 100,000 random events (one every
/// `gap` seconds on average), with due checks decided as they come.
fn largest_profile(rules: &Triggers, seed: u64, gap: u64) -> (usize, Profile) {
    let mut g = Gen(seed);
    let mut p = Profile::new("shop", "p1");
    let mut t = at(0).as_second();
    let mut largest = 0;
    for n in 0..100_000u64 {
        t += g.below(2 * gap) as i64;
        let e = random_event(&mut g, n, t);
        let applied = p.apply(&e, rules);
        // Decide whatever came due, so sends accumulate as in production.
        let due: Vec<Check> = applied
            .effects
            .into_iter()
            .filter_map(|eff| match eff {
                nudge_core::Effect::Schedule { check, .. } => Some(check),
                _ => None,
            })
            .collect();
        for check in due {
            let when = Timestamp::from_second(check.due.as_second().max(t)).unwrap();
            p.conclude(&check, rules, when);
        }
        if n % 97 == 0 {
            largest = largest.max(serde_json::to_vec(&p).unwrap().len());
        }
    }
    (largest.max(serde_json::to_vec(&p).unwrap().len()), p)
}

#[test]
fn a_profile_fed_100k_random_events_stays_within_4_kb() {
    let rules = example_rules();
    for seed in 1..=3u64 {
        let (largest, p) = largest_profile(&rules, seed, 450);
        if largest > 4096 {
            eprintln!("{}", serde_json::to_string_pretty(&p).unwrap());
        }
        assert!(largest <= 4096, "seed {seed}: profile grew to {largest} bytes");
        assert!(p.sends.len() > 1, "the run exercised sends");
    }
}

/// docs/triggers.md states this worst case.
const WORST_CASE_PROFILE: usize = 32 * 1024;

#[test]
fn under_rules_at_every_limit_a_profile_stays_within_its_documented_worst_case() {
    // Every bound at its highest: counts of 50 on every storefront kind,
    // same_product and same_category (50 products kept, 50 views each),
    // caps of 16 sends.
    let src = r#"
[policy]
max_per_week = 16
[segments]
busy = { all = [
  { count = "page_viewed", at_least = 50, within = "30d" },
  { count = "cart_updated", at_least = 50, within = "30d" },
  { count = "checkout_started", at_least = 50, within = "30d" },
  { count = "order_placed", at_least = 50, within = "30d" },
  { count = "wishlist_added", at_least = 50, within = "30d" },
  { count = "email_opened", at_least = 50, within = "30d" },
  { count = "email_clicked", at_least = 50, within = "30d" },
  { count = "product_viewed", at_least = 50, within = "30d" },
] }
[[trigger]]
id = "category"
when = { count = "product_viewed", same_category = true, at_least = 50, within = "30d" }
template = "t"
[[trigger]]
id = "product"
when = { count = "product_viewed", same_product = true, at_least = 50, within = "30d" }
if = { segment = "busy" }
template = "t"
[[trigger]]
id = "cart"
on = "checkout_started"
template = "t"
"#;
    let rules = rules(src);
    assert_eq!((rules.products_kept, rules.product_ring_cap), (50, 50));
    let mut worst = 0;
    for (seed, gap) in [(1u64, 5u64), (2, 60), (3, 450)] {
        let (largest, p) = largest_profile(&rules, seed, gap);
        assert!(p.products.len() == 50, "the run filled the product list: {}", p.products.len());
        worst = worst.max(largest);
    }
    // And the adversary: 50 products in 50 long categories, each viewed
    // every few minutes, every counted kind as often, long ids everywhere.
    let mut p = Profile::new("shop", "p1");
    let long = |prefix: &str, i: u64| format!("{prefix}-{i}-{}", "x".repeat(200));
    let mut g = Gen(7);
    for n in 0..60_000u64 {
        let t = at(0).as_second() + n as i64 * 30;
        let mut e = random_event(&mut g, n, t);
        if n % 2 == 0 {
            let i = n % 50;
            e.kind = EventKind::ProductViewed {
                product: Product { id: long("product", i), category: Some(long("category", i)), ..Product::default() },
            };
        }
        p.apply(&e, &rules);
        if n % 211 == 0 {
            worst = worst.max(serde_json::to_vec(&p).unwrap().len());
        }
    }
    worst = worst.max(serde_json::to_vec(&p).unwrap().len());
    eprintln!("largest profile under rules at every limit: {worst} bytes");
    assert!(worst <= WORST_CASE_PROFILE, "profile grew to {worst} bytes");
}

/// Several shoppers' events with duplicates inserted 1-5 times, adjacent or
/// up to 20 positions later (within the dedupe window of a profile).
fn with_duplicates(events: &[Event], g: &mut Gen) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    let mut later: Vec<(usize, Event)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        out.push(e.clone());
        for _ in 0..g.below(5) {
            if g.chance(0.5) {
                out.push(e.clone());
            } else {
                later.push((i + 1 + g.below(20) as usize, e.clone()));
            }
        }
        let (now, rest): (Vec<_>, Vec<_>) = later.into_iter().partition(|(pos, _)| *pos <= i + 1);
        out.extend(now.into_iter().map(|(_, e)| e));
        later = rest;
    }
    out.extend(later.into_iter().map(|(_, e)| e));
    out
}

fn shoppers_log(g: &mut Gen, shoppers: u64) -> Vec<Event> {
    let mut events = Vec::new();
    for c in 0..shoppers {
        let mut s = Shopper::new(&format!("c{c}"));
        let base = (c as i64) * 7 * MIN;
        events.extend(s.subscribe(base));
        let mut t = base;
        for _ in 0..g.below(12) {
            t += g.below(40) as i64 * MIN;
            let e = match g.below(5) {
                0 => s.checkout(t, &format!("chk{}", g.below(3))),
                1 => s.order(t, &format!("chk{}", g.below(3))),
                2 => s.wishlist(t, "p1"),
                _ => s.view(t, &format!("p{}", g.below(3))),
            };
            events.push(e);
        }
    }
    events.sort_by_key(|e| e.occurred_at);
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_log_with_every_event_repeated_yields_exactly_the_decisions_without_repeats(seed in any::<u64>()) {
        let rules = example_rules();
        let mut g = Gen(seed);
        let log = shoppers_log(&mut g, 6);
        let noisy = with_duplicates(&log, &mut g);
        prop_assume!(noisy.len() > log.len());
        let clean = replay(&rules, &log);
        let repeated = replay_arrivals(&rules, &noisy.iter().map(|e| (e.clone(), e.occurred_at)).collect::<Vec<_>>()).0;
        prop_assert_eq!(clean, repeated);
    }

    #[test]
    fn apply_and_decide_never_panic_on_arbitrary_events(seed in any::<u64>()) {
        let rules = example_rules();
        let mut g = Gen(seed);
        let mut p = Profile::new("shop", "p");
        for n in 0..300 {
            let t = g.below(4_000_000_000) as i64 - 1_000_000_000;
                        let e = random_event(&mut g, n, t);
            let _ = rules.segments_of(&p, t);
            for eff in p.apply(&e, &rules).effects {
                if let nudge_core::Effect::Schedule { check, .. } = eff {
                    p.conclude(&check, &rules, check.due);
                }
            }
        }
    }
}
