//! Behaviour of the engine end to end: events in through `ingest`, due
//! checks through `run_check`, driven by the replay's virtual clock with the
//! in-memory adapters. Each test is named after the rule it pins.

mod attribution;
mod best_hour;
mod claims;
mod feedback;
mod http;
mod lifecycle;
mod parking;
mod policies;
mod properties;
mod scheduler_lead;
mod shard;

use jiff::Timestamp;
use nudge_app::memory::{ManualClock, MemoryMailer, MemoryPublisher, MemoryScheduler, MemoryStore};
use nudge_app::{AliasKey, CheckPorts, IngestPorts, Replay};
use nudge_core::event::{MessageRef, OptInLevel};
use nudge_core::{
    Basket, ConsentState, ConsentUpdate, Decision, Event, EventId, EventKind, Identity, Line, Order, Outcome, Product,
    Reason, Triggers,
};

pub const T0: &str = "2026-10-06T14:00:00Z"; // 10:00 in New York

pub fn at(offset_secs: i64) -> Timestamp {
    let t0: Timestamp = T0.parse().unwrap();
    Timestamp::from_second(t0.as_second() + offset_secs).unwrap()
}

pub const MIN: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

pub fn rules(src: &str) -> Triggers {
    Triggers::parse(src, "test.toml", None).unwrap_or_else(|e| panic!("{e}"))
}

/// A builder of events for one person.
#[derive(Clone)]
pub struct Shopper {
    pub customer: String,
    pub n: u32,
}

impl Shopper {
    pub fn new(customer: &str) -> Shopper {
        Shopper { customer: customer.to_owned(), n: 0 }
    }

    pub fn event(&mut self, t: i64, kind: EventKind) -> Event {
        self.n += 1;
        Event {
            id: EventId::parse(format!("{}-{}", self.customer, self.n)).unwrap(),
            shop: "shop".into(),
            occurred_at: at(t),
            identity: Identity { customer_id: Some(self.customer.clone()), ..Identity::default() },
            kind,
            trust: Default::default(),
            received_at: None,
            time_zone: None,
        }
    }

    /// Email + first name + consent, the way an identify call brings them.
    pub fn subscribe(&mut self, t: i64) -> Vec<Event> {
        let mut profile = self.event(t, EventKind::ProfileUpdated { first_name: Some("Ada".into()), last_name: None });
        profile.identity.email = Some(format!("{}@example.com", self.customer));
        vec![profile, self.consent(t, ConsentState::Subscribed)]
    }

    pub fn consent(&mut self, t: i64, state: ConsentState) -> Event {
        self.event(
            t,
            EventKind::ConsentChanged {
                consent: ConsentUpdate {
                    state,
                    opt_in_level: Some(OptInLevel::SingleOptIn),
                    updated_at: None,
                    source: None,
                },
            },
        )
    }

    pub fn checkout(&mut self, t: i64, token: &str) -> Event {
        self.event(
            t,
            EventKind::CheckoutStarted {
                basket: Basket {
                    token: Some(token.into()),
                    value: 50.0,
                    currency: Some("USD".into()),
                    recovery_url: Some("https://shop.example/recover".into()),
                    lines: vec![Line { product_id: "p1".into(), quantity: 1, price: 50.0, ..Line::default() }],
                },
            },
        )
    }

    pub fn order(&mut self, t: i64, token: &str) -> Event {
        self.event(
            t,
            EventKind::OrderPlaced {
                order: Order {
                    id: format!("order-{token}"),
                    value: 50.0,
                    currency: Some("USD".into()),
                    tokens: vec![token.into()],
                    product_ids: vec!["p1".into()],
                },
            },
        )
    }

    pub fn view(&mut self, t: i64, product: &str) -> Event {
        self.event(
            t,
            EventKind::ProductViewed {
                product: Product { id: product.into(), category: Some("shoes".into()), ..Product::default() },
            },
        )
    }

    pub fn wishlist(&mut self, t: i64, product: &str) -> Event {
        self.event(t, EventKind::WishlistAdded { product: Product { id: product.into(), ..Product::default() } })
    }

    pub fn clicked(&mut self, t: i64, trigger: &str) -> Event {
        self.event(t, EventKind::EmailClicked { message: MessageRef { trigger: Some(trigger.into()), episode: None } })
    }

    pub fn custom(&mut self, t: i64, name: &str) -> Event {
        self.event(t, EventKind::Custom { name: name.into(), properties: Default::default() })
    }
}

/// Replays events (each arriving at its own time unless given in
/// `(event, arrival)` form) and returns every decision, in order.
pub fn replay(rules: &Triggers, events: &[Event]) -> Vec<Decision> {
    replay_arrivals(rules, &events.iter().map(|e| (e.clone(), e.occurred_at)).collect::<Vec<_>>()).0
}

pub fn replay_arrivals(rules: &Triggers, events: &[(Event, Timestamp)]) -> (Vec<Decision>, u64) {
    let mut r = Replay::new(rules, AliasKey::new(b"test"));
    let mut out = Vec::new();
    for (e, arrived) in events {
        r.push(e, *arrived, &mut |d| out.push(d.clone())).unwrap();
    }
    r.finish(&mut |d| out.push(d.clone())).unwrap();
    let creates = r.scheduler.creates.load(std::sync::atomic::Ordering::Relaxed);
    (out, creates)
}

/// The use cases over in-memory adapters, driven by hand: each test says
/// when events arrive and when checks run.
pub struct Stack {
    pub rules: Triggers,
    pub key: AliasKey,
    pub store: MemoryStore,
    pub scheduler: MemoryScheduler,
    pub mailer: MemoryMailer,
    pub publisher: MemoryPublisher,
    pub clock: ManualClock,
}

impl Stack {
    pub fn new(rules: Triggers) -> Stack {
        Stack {
            rules,
            key: AliasKey::new(b"k"),
            store: MemoryStore::new(),
            scheduler: MemoryScheduler::new(),
            mailer: MemoryMailer::recording(),
            publisher: MemoryPublisher::default(),
            clock: ManualClock::new(at(0)),
        }
    }

    /// The ports `ingest` needs, for events arriving at `now`.
    pub fn ingest_ports(&self, now: Timestamp) -> IngestPorts<'_, MemoryStore, MemoryScheduler, MemoryPublisher> {
        IngestPorts {
            now,
            rules: &self.rules,
            alias_key: &self.key,
            store: &self.store,
            scheduler: &self.scheduler,
            publisher: &self.publisher,
        }
    }

    pub fn check_ports(
        &self,
    ) -> CheckPorts<'_, MemoryStore, MemoryScheduler, MemoryMailer, ManualClock, MemoryPublisher> {
        CheckPorts {
            rules: &self.rules,
            store: &self.store,
            scheduler: &self.scheduler,
            composer: None,
            send_by: None,
            claims_lapse_before: None,
            mailer: &self.mailer,
            clock: &self.clock,
            publisher: &self.publisher,
        }
    }
}

impl Stack {
    /// Ingests `e`, arriving at `arrived`; returns the scheduler requests
    /// it made (not the parked ones).
    pub fn ingest(&self, e: &Event, arrived: Timestamp) -> Vec<nudge_core::Check> {
        let out = nudge_app::now_or_never(nudge_app::ingest(&self.ingest_ports(arrived), e)).unwrap();
        out.effects
            .into_iter()
            .filter_map(|eff| match eff {
                nudge_core::Effect::Schedule { check, parked: false, .. } => Some(check),
                _ => None,
            })
            .collect()
    }

    /// Runs `check` with the clock at `now`.
    pub fn run(&self, check: &nudge_core::Check, now: Timestamp) -> Decision {
        self.clock.set(now);
        nudge_app::now_or_never(nudge_app::run_check(&self.check_ports(), check)).unwrap().decision
    }

    pub fn decisions(&self) -> Vec<Decision> {
        self.publisher.decisions()
    }
}

pub fn sends(ds: &[Decision]) -> Vec<&Decision> {
    ds.iter().filter(|d| d.decision == Outcome::Send).collect()
}

pub fn finals(ds: &[Decision]) -> Vec<(String, Outcome, Option<Reason>)> {
    ds.iter().filter(|d| d.decision != Outcome::Defer).map(|d| (d.trigger.clone(), d.decision, d.reason)).collect()
}
