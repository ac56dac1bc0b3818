//! The per-person profile and `apply()`: folding one event in, arming,
//! pushing back and cancelling trigger episodes. Bounded by construction:
//! every list has a cap and every stored string a length limit. Its parts
//! are in [`parts`]; merging two profiles in `merge.rs`.

mod merge;
mod parts;

pub use parts::*;
use serde::{Deserialize, Serialize};

/// Short strings (ids, kind and trigger names) stored inline in the profile
/// instead of behind a pointer: `apply` compares many of them per event, and
/// each pointer chase into a cold profile is a cache miss.
pub type Text = compact_str::CompactString;

/// Recent timestamps, oldest first; short rings live inline for the same reason.
pub type Ring = smallvec::SmallVec<[Secs; 4]>;

use crate::decide::{Check, Decision, Outcome, Reason};
use crate::event::{
    Basket, ConsentSource, ConsentState, Event, EventKind, Line, MAX_TEXT_LEN, MAX_URL_LEN, OptInLevel, Trust,
    bounded_key, bounded_text,
};
use crate::hash::stable_hash;
use crate::rules::{Arm, Trigger, Triggers};
use crate::time::{Secs, secs, ts};
use jiff::Timestamp;

/// Event-id fingerprints kept for dedupe. A person rarely produces more than a
/// few dozen events within Shopify's 4-hour retry window.
pub const SEEN_KEPT: usize = 32;
pub const BASKET_LINES_KEPT: usize = 4;
/// Display text kept per basket line (the catalogue has the full title).
pub const LINE_TITLE_LEN: usize = 48;
pub const LINE_VARIANT_LEN: usize = 32;
pub const NAME_LEN: usize = 40;
pub const CATEGORY_LEN: usize = 32;
pub const ORDERS_KEPT: usize = 4;
pub const BOUGHT_KEPT: usize = 6;
pub const WISHLIST_KEPT: usize = 6;
pub const CUSTOM_KINDS_KEPT: usize = 16;
pub const MAX_EMAIL_LEN: usize = 254;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub shop: String,
    pub id: String,
    /// Optimistic-concurrency version: a save succeeds only if unchanged.
    #[serde(default)]
    pub version: u64,
    /// Earliest event time seen.
    pub first_seen: Secs,
    /// Latest shopper-activity time (views, carts, orders, custom events).
    pub last_active: Secs,
    /// Latest event time of any kind: the profile's own clock for `when`.
    pub clock: Secs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The person's IANA time zone, the latest an event told (a known zone
    /// name only): quiet hours are kept in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub consent: Consent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<Activity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<ProductViews>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basket: Option<StoredBasket>,
    #[serde(default)]
    pub orders: Orders,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wishlist: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<SendRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerState>,
    /// Version of the rules that last touched `triggers`.
    #[serde(default)]
    pub rules: Text,
    #[serde(default)]
    pub seen: Seen,
    /// Engagement by local hour of day (`send_at = "best_hour"`).
    #[serde(default, skip_serializing_if = "Engagement::is_empty")]
    pub engagement: Engagement,
}

/// Opens, clicks and site activity by the person's local hour of day: 24
/// counters, all halved when one reaches 255, so recent habits weigh more
/// and the profile keeps 24 small numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engagement(pub [u8; 24]);

/// Engagements a person needs before their own best hour counts.
pub const MIN_ENGAGEMENT: u32 = 5;

impl Engagement {
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    pub fn record(&mut self, hour: u8) {
        let i = usize::from(hour % 24);
        if self.0[i] == u8::MAX {
            for n in &mut self.0 {
                *n /= 2;
            }
        }
        self.0[i] += 1;
    }

    /// The hour with the most engagement (the earliest of equals), once
    /// there are [`MIN_ENGAGEMENT`] of them.
    pub fn best_hour(&self) -> Option<u8> {
        let total: u32 = self.0.iter().map(|&n| u32::from(n)).sum();
        if total < MIN_ENGAGEMENT {
            return None;
        }
        let top = *self.0.iter().max()?;
        self.0.iter().position(|&n| n == top).map(|h| h as u8)
    }
}

/// What the shell must do after a profile changed. Data, not actions.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Ask the scheduler for a check. `first` is true when arming a new
    /// episode, false for the one reschedule after a debounce or deferral
    /// (or for a parked check once the person can be emailed). `parked`:
    /// the person cannot be emailed, so no scheduler request is needed (see
    /// `Pending::parked`); shells without a per-request cost may still
    /// schedule it.
    Schedule { check: Check, first: bool, parked: bool },
    /// The outstanding check of an episode that just ended may be deleted.
    Cancel(Check),
    /// A decision made without waiting for the check (e.g. converted).
    Decided(Decision),
    /// Delete this person's data (profile, aliases, checks, messages).
    Erase,
    /// Export everything held about this person.
    Export,
}

/// The result of applying one event.
#[derive(Debug, Default)]
pub struct Applied {
    /// False when nothing changed (a duplicate event id): no save needed.
    pub changed: bool,
    pub effects: Vec<Effect>,
    /// The event named an address other than the profile's, from a source
    /// that may not replace it: the address was not taken (and must not be
    /// linked to this profile).
    pub address_refused: bool,
}

/// Fingerprint of an event id, used for dedupe.
pub fn event_fingerprint(shop: &str, event_id: &str) -> u64 {
    stable_hash(&[shop.as_bytes(), event_id.as_bytes()])
}

impl Profile {
    pub fn new(shop: &str, id: &str) -> Profile {
        Profile {
            shop: shop.to_owned(),
            id: id.to_owned(),
            first_seen: Secs::MAX,
            last_active: Secs::MIN,
            clock: Secs::MIN,
            ..Profile::default()
        }
    }

    /// Whether this profile has seen an event id (the dedupe check).
    pub fn has_seen(&self, shop: &str, event_id: &str) -> bool {
        self.seen.contains(event_fingerprint(shop, event_id))
    }

    /// Folds one event in. Applying the same event id again changes nothing.
    pub fn apply(&mut self, e: &Event, rules: &Triggers) -> Applied {
        let fp = event_fingerprint(&e.shop, &e.id);
        if self.seen.contains(fp) {
            return Applied::default();
        }
        self.seen.push(fp);
        let t = secs(e.occurred_at);
        self.first_seen = self.first_seen.min(t);
        self.clock = self.clock.max(t);
        if e.kind.is_shopper_activity() {
            self.last_active = self.last_active.max(t);
        }
        let mut address_refused = false;
        if let Some(email) = &e.identity.email {
            let email = bounded_text(email.trim(), MAX_EMAIL_LEN);
            match &self.email {
                Some(have) if e.trust == Trust::Public && !have.eq_ignore_ascii_case(&email) => address_refused = true,
                _ => self.email = Some(email),
            }
        }
        if let Some(c) = &e.identity.customer_id {
            self.customer_id = Some(bounded_key(c));
        }
        if let Some(zone) = e.time_zone.as_deref().filter(|z| z.len() <= 64 && jiff::tz::TimeZone::get(z).is_ok()) {
            self.time_zone = Some(zone.to_owned());
        }
        if e.kind.is_shopper_activity()
            || matches!(e.kind, EventKind::EmailOpened { .. } | EventKind::EmailClicked { .. })
        {
            let hour = self.local_hour(rules, t);
            self.engagement.record(hour);
        }
        for kind in std::iter::once(e.kind.name()).chain(e.kind.detail_name()) {
            if rules.tracks(kind) {
                self.record_activity(kind, t, rules.ring_cap(kind));
            }
        }
        for (event, signal) in &rules.signals {
            if e.kind.is_named(event) && signal.filter.matches(&e.kind) {
                self.record_activity(&signal.key, t, rules.ring_cap(&signal.key));
            }
        }
        let mut effects = Vec::new();
        self.fold(&e.kind, e.trust, t, rules, &mut effects);
        if matches!(e.kind, EventKind::EraseRequested {}) {
            effects.push(Effect::Erase);
            return Applied { changed: true, effects, address_refused };
        }
        self.run_lifecycle(e, t, rules, &mut effects);
        self.unpark(rules, &mut effects);
        Applied { changed: true, effects, address_refused }
    }

    /// Whether a check could send as far as the person goes: not suppressed,
    /// consent as the policy needs it, an address. `None` when it could;
    /// otherwise the reason every check would skip with.
    pub fn unreachable(&self, rules: &Triggers) -> Option<Reason> {
        if self.suppressed.is_some() {
            return Some(Reason::Suppressed);
        }
        // An explicit "no" is honoured whatever the policy says.
        let refused =
            matches!(self.consent.state, ConsentState::Unsubscribed | ConsentState::Redacted | ConsentState::Invalid);
        if refused || (rules.policy.require_consent && self.consent.state != ConsentState::Subscribed) {
            return Some(Reason::NoConsent);
        }
        if self.email.as_deref().is_none_or(str::is_empty) {
            return Some(Reason::NoAddress);
        }
        None
    }

    /// Once the person can be emailed, asks for the check of every parked
    /// episode.
    fn unpark(&mut self, rules: &Triggers, effects: &mut Vec<Effect>) {
        if self.unreachable(rules).is_some() {
            return;
        }
        for i in 0..self.triggers.len() {
            let Some(p) = self.triggers[i].pending.as_mut().filter(|p| p.parked) else { continue };
            p.parked = false;
            p.parked_at = 0;
            let (episode, scheduled) = (p.episode, p.scheduled);
            let check = self.check(&self.triggers[i].trigger, episode, scheduled);
            effects.push(Effect::Schedule { check, first: false, parked: false });
        }
    }

    /// The person's time zone: their own when known, else the shop's (the
    /// quiet hours' zone), else UTC.
    pub fn local_zone(&self, rules: &Triggers) -> jiff::tz::TimeZone {
        self.time_zone
            .as_deref()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .or_else(|| rules.policy.quiet_hours.as_ref().map(|q| q.time_zone.clone()))
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// The hour of day (0–23) at `t` in [`Profile::local_zone`]. Without a
    /// zone of the person's or the shop's, UTC's, with no zone lookup: this
    /// runs for every activity event.
    pub fn local_hour(&self, rules: &Triggers, t: Secs) -> u8 {
        let offset = if self.time_zone.is_none() && rules.policy.quiet_hours.is_none() {
            0
        } else {
            i64::from(self.local_zone(rules).to_offset(ts(t)).seconds())
        };
        u8::try_from(t.saturating_add(offset).rem_euclid(86_400) / 3_600).unwrap_or(0)
    }

    /// Records when the checks this event parked were parked (wall clock).
    pub fn stamp_parked(&mut self, now: Timestamp) {
        for p in self.triggers.iter_mut().filter_map(|st| st.pending.as_mut()) {
            if p.parked && p.parked_at == 0 {
                p.parked_at = secs(now);
            }
        }
    }

    /// Decides every parked episode a scheduler would have run by `now`
    /// (due, and parked at least `PARK_LEAD` ago), each as of the time it
    /// could first have run, in due order. Call it before folding in an event that arrived at
    /// `now`: nothing about the person has changed since those checks came
    /// due, so these are the decisions on-time checks would have made.
    /// (While the person stays unreachable, none of them sends.)
    pub fn conclude_parked(&mut self, rules: &Triggers, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.unreachable(rules).is_none() {
            // Reachable under these rules (they changed): `unpark` asks for
            // real checks instead.
            return effects;
        }
        let now = secs(now);
        // Each round ends an episode or defers it to a strictly later time;
        // the bound only guards against a rules bug looping.
        for _ in 0..4 * self.triggers.len() + 4 {
            let next =
                self.triggers
                    .iter()
                    .filter_map(|st| {
                        let p = st.pending.as_ref().filter(|p| {
                            p.parked && p.scheduled <= now && p.parked_at.saturating_add(PARK_LEAD) <= now
                        })?;
                        Some((p.scheduled, st.trigger.as_str(), p.episode))
                    })
                    .min();
            let Some((due, trigger, episode)) = next else { break };
            let check = self.check(trigger, episode, due);
            // `conclude` decides it as of when it could first have run.
            let (decision, more) = self.conclude(&check, rules, ts(now));
            effects.push(Effect::Decided(decision));
            effects.extend(more);
        }
        effects
    }

    fn record_activity(&mut self, kind: &str, t: Secs, cap: usize) {
        let i = match self.activity.iter().position(|a| a.kind == kind) {
            Some(i) => i,
            None => {
                if !crate::event::VOCABULARY.contains(&kind) {
                    let customs: Vec<usize> = (0..self.activity.len())
                        .filter(|&i| !crate::event::VOCABULARY.contains(&self.activity[i].kind.as_str()))
                        .collect();
                    if customs.len() >= CUSTOM_KINDS_KEPT {
                        // Forget the custom kind seen least recently.
                        if let Some(&old) = customs.iter().min_by_key(|&&i| self.activity[i].last) {
                            self.activity.remove(old);
                        }
                    }
                }
                push_tight(
                    &mut self.activity,
                    Activity { kind: bounded_text(kind, MAX_TEXT_LEN).into(), ..Activity::default() },
                );
                self.activity.len() - 1
            }
        };
        let a = &mut self.activity[i];
        a.total = a.total.saturating_add(1);
        a.last = a.last.max(t);
        insert_recent(&mut a.recent, t, cap);
    }

    fn fold(&mut self, kind: &EventKind, trust: Trust, t: Secs, rules: &Triggers, effects: &mut Vec<Effect>) {
        match kind {
            EventKind::ProductViewed { product } => {
                let id = bounded_key(&product.id);
                let i = match self.products.iter().position(|p| p.id == id) {
                    Some(i) => i,
                    None => {
                        if self.products.len() >= rules.products_kept {
                            let oldest = (0..self.products.len()).min_by_key(|&i| self.products[i].last()).unwrap_or(0);
                            self.products.remove(oldest);
                        }
                        push_tight(
                            &mut self.products,
                            ProductViews { id: id.as_str().into(), ..ProductViews::default() },
                        );
                        self.products.len() - 1
                    }
                };
                let p = &mut self.products[i];
                if let Some(c) = &product.category {
                    p.category = Some(bounded_text(c, CATEGORY_LEN).into());
                }
                insert_recent(&mut p.recent, t, rules.product_ring_cap.max(1));
            }
            EventKind::CartUpdated { basket, .. } => self.set_basket(basket, BasketStage::Cart, t),
            EventKind::CheckoutStarted { basket } => self.set_basket(basket, BasketStage::Checkout, t),
            EventKind::OrderPlaced { order } => {
                let id = bounded_key(&order.id);
                for token in &order.tokens {
                    push_capped(&mut self.orders.tokens, bounded_key(token), ORDERS_KEPT);
                }
                if self.orders.ids.contains(&id) {
                    return;
                }
                push_capped(&mut self.orders.ids, id, ORDERS_KEPT);
                self.orders.count = self.orders.count.saturating_add(1);
                if order.value.is_finite() {
                    self.orders.revenue += order.value;
                }
                let day = t.div_euclid(crate::model::DAY);
                if self.orders.last_at.is_none_or(|l| l.div_euclid(crate::model::DAY) != day) {
                    self.orders.days = self.orders.days.saturating_add(1);
                }
                self.orders.first_at = Some(self.orders.first_at.map_or(t, |f| f.min(t)));
                self.orders.last_at = Some(self.orders.last_at.map_or(t, |l| l.max(t)));
                for p in &order.product_ids {
                    push_capped(&mut self.orders.bought, bounded_key(p), BOUGHT_KEPT);
                }
                if self.orders.last.as_ref().is_none_or(|l| l.at <= t) {
                    self.orders.last = Some(LastOrder {
                        id: bounded_key(&order.id),
                        at: t,
                        value: if order.value.is_finite() { order.value } else { 0.0 },
                        currency: order.currency.as_deref().map(|c| bounded_text(c, 8)),
                        product_ids: order.product_ids.iter().take(BOUGHT_KEPT).map(|p| bounded_key(p)).collect(),
                    });
                }
                let bought_basket = self.basket.as_ref().is_some_and(|b| {
                    b.token.as_ref().is_none_or(|tok| self.orders.tokens.contains(tok)) && b.updated <= t
                });
                if bought_basket {
                    self.basket = None;
                }
            }
            EventKind::OrderCancelled { order_id } => {
                if self.orders.ids.contains(&bounded_key(order_id)) {
                    self.orders.count = self.orders.count.saturating_sub(1);
                }
            }
            EventKind::WishlistAdded { product } => {
                let id = bounded_key(&product.id);
                self.wishlist.retain(|w| *w != id);
                push_capped(&mut self.wishlist, id, WISHLIST_KEPT);
            }
            EventKind::EmailOpened { message } | EventKind::EmailClicked { message } => {
                let clicked = matches!(kind, EventKind::EmailClicked { .. });
                let send = self.sends.iter_mut().rev().find(|s| {
                    message.trigger.as_ref().is_none_or(|tr| *tr == s.trigger)
                        && message.episode.is_none_or(|ep| ep == s.episode)
                });
                if let Some(s) = send {
                    let slot = if clicked { &mut s.clicked } else { &mut s.opened };
                    *slot = Some(slot.map_or(t, |old| old.min(t)));
                    if clicked && s.opened.is_none() {
                        s.opened = Some(t);
                    }
                }
            }
            EventKind::EmailBounced { permanent: true } => {
                self.suppressed.get_or_insert(Suppression { reason: SuppressionReason::Bounce, at: t });
            }
            EventKind::EmailComplained {} => {
                self.suppressed = Some(Suppression { reason: SuppressionReason::Complaint, at: t });
            }
            EventKind::ConsentChanged { consent } => {
                let at = consent.updated_at.map_or(t, secs);
                let subscribes = consent.state == ConsentState::Subscribed;
                if trust == Trust::Public && subscribes {
                    // Only the person can confirm a subscription a public
                    // key asked for; an existing one stays as it is.
                    if self.consent.state != ConsentState::Subscribed {
                        self.request_opt_in(t, effects);
                    }
                } else if subscribes && consent.source == Some(ConsentSource::Confirmation) {
                    // A followed confirmation link counts only while its
                    // request stands (no opt-out since).
                    if self.consent.opt_in.requested.is_some() {
                        self.consent.state = ConsentState::Subscribed;
                        self.consent.opt_in_level = Some(OptInLevel::ConfirmedOptIn);
                        self.consent.source = consent.source;
                        self.consent.at = self.consent.at.max(at);
                        self.consent.opt_in.requested = None;
                    }
                } else if at >= self.consent.at {
                    let opt_in = OptIn { requested: None, ..std::mem::take(&mut self.consent.opt_in) };
                    self.consent = Consent {
                        state: consent.state,
                        opt_in_level: consent.opt_in_level,
                        source: consent.source,
                        at,
                        opt_in,
                    };
                }
            }
            EventKind::ProfileUpdated { first_name, .. } => {
                if let Some(n) = first_name {
                    self.first_name = Some(bounded_text(n.trim(), NAME_LEN));
                }
            }
            EventKind::DataRequested {} => effects.push(Effect::Export),
            EventKind::EraseRequested {} => {
                for st in &self.triggers {
                    if let Some(p) = &st.pending {
                        effects.push(Effect::Cancel(self.check(&st.trigger, p.episode, p.scheduled)));
                    }
                }
                let (shop, id) = (std::mem::take(&mut self.shop), std::mem::take(&mut self.id));
                let version = self.version;
                *self = Profile::new(&shop, &id);
                self.version = version;
            }
            EventKind::PageViewed { .. } | EventKind::EmailBounced { permanent: false } | EventKind::Custom { .. } => {}
        }
    }

    fn set_basket(&mut self, b: &Basket, stage: BasketStage, t: Secs) {
        if self.basket.as_ref().is_some_and(|old| old.updated > t) {
            return; // a late, older snapshot
        }
        let lines: Vec<Line> = b
            .lines
            .iter()
            .take(BASKET_LINES_KEPT)
            .map(|l| Line {
                product_id: bounded_key(&l.product_id),
                variant_id: l.variant_id.as_deref().map(bounded_key),
                title: l.title.as_deref().map(|s| bounded_text(s, LINE_TITLE_LEN)),
                variant_title: l.variant_title.as_deref().map(|s| bounded_text(s, LINE_VARIANT_LEN)),
                quantity: l.quantity,
                price: l.price,
            })
            .collect();
        self.basket = Some(StoredBasket {
            stage,
            token: b.token.as_deref().map(bounded_key),
            value: if b.value.is_finite() { b.value } else { 0.0 },
            currency: b.currency.as_deref().map(|c| bounded_text(c, 8)),
            recovery_url: b.recovery_url.as_deref().filter(|u| u.len() <= MAX_URL_LEN).map(str::to_owned),
            more_lines: u32::try_from(b.lines.len().saturating_sub(BASKET_LINES_KEPT)).unwrap_or(u32::MAX),
            lines,
            updated: t,
        });
    }

    fn state_index(&mut self, id: &str) -> usize {
        match self.triggers.iter().position(|s| s.trigger == id) {
            Some(i) => i,
            None => {
                push_tight(&mut self.triggers, TriggerState { trigger: id.into(), ..TriggerState::default() });
                self.triggers.len() - 1
            }
        }
    }

    pub fn state(&self, id: &str) -> Option<&TriggerState> {
        self.triggers.iter().find(|s| s.trigger == id)
    }

    fn run_lifecycle(&mut self, e: &Event, t: Secs, rules: &Triggers, effects: &mut Vec<Effect>) {
        if self.rules != rules.version {
            // New rules: states of triggers no longer in them are dropped,
            // unless an episode is pending (its check reports `unknown_trigger`).
            self.triggers.retain(|s| s.pending.is_some() || rules.get(&s.trigger).is_some());
            self.rules = rules.version.as_str().into();
        }
        let token = event_token(e);
        let order_tokens: &[String] = match &e.kind {
            EventKind::OrderPlaced { order } => &order.tokens,
            _ => &[],
        };
        for trigger in &rules.triggers {
            // States are created only once there is something to remember.
            let existing = self.triggers.iter().position(|s| s.trigger == trigger.id);

            if let Some(i) = existing {
                // A send in progress is left alone: its check settles it.
                if self.triggers[i].pending.as_ref().is_some_and(|p| p.claim.is_some()) {
                    continue;
                }
                // 1. cancel_if: a listed event after arming ends the episode.
                if let Some(p) = &self.triggers[i].pending {
                    let token_bought = !order_tokens.is_empty()
                        && p.token.as_ref().is_some_and(|tok| order_tokens.iter().any(|o| bounded_key(o) == *tok));
                    if let Some(c) = trigger.cancel_if.iter().find(|c| e.kind.is_named(c))
                        && (t >= p.started || token_bought)
                    {
                        let kind = c.as_str();
                        let reason = if kind == "order_placed" { Reason::Converted } else { Reason::Cancelled };
                        let p = p.clone();
                        let st = &mut self.triggers[i];
                        st.pending = None;
                        if reason == Reason::Converted {
                            st.converted_token = p.token.clone();
                        }
                        let check = self.check(&trigger.id, p.episode, p.scheduled);
                        effects.push(Effect::Cancel(check.clone()));
                        effects.push(Effect::Decided(self.decision(
                            &check,
                            ts(t),
                            Outcome::Skip,
                            Some(reason),
                            None,
                            rules,
                        )));
                        continue;
                    }
                }

                // 2. activity pushes back checks that wait for quiet.
                if let (Some(quiet), true) = (trigger.after_inactive, e.kind.is_shopper_activity())
                    && let Some(p) = &mut self.triggers[i].pending
                {
                    p.due = p.due.max(self.last_active + quiet.as_secs());
                }
            }

            // 3. arming.
            let arms = match &trigger.arm {
                Arm::On(on) => e.kind.is_named(on) && trigger.on_where.as_ref().is_none_or(|f| f.matches(&e.kind)),
                Arm::When(cond) => {
                    let holds = cond.eval(self, self.clock, &rules.models);
                    let held = existing.is_some_and(|i| self.triggers[i].holding);
                    if holds != held {
                        let i = self.state_index(&trigger.id);
                        self.triggers[i].holding = holds;
                    }
                    holds && !held
                }
            };
            if arms {
                let i = self.state_index(&trigger.id);
                self.arm(i, trigger, t, token.clone(), rules, effects);
            }
        }
    }

    fn arm(
        &mut self,
        i: usize,
        trigger: &Trigger,
        t: Secs,
        token: Option<String>,
        rules: &Triggers,
        effects: &mut Vec<Effect>,
    ) {
        // The episode's variant sets its delay (a test of delays); the
        // assignment is a hash, so it is the variant it will be decided in.
        let episode = self.triggers[i].pending.as_ref().map_or(self.triggers[i].episode + 1, |p| p.episode);
        let variant = crate::decide::assign_variant(&self.shop, &self.id, trigger, episode);
        let mut due = t + trigger.delay_of(variant).as_secs();
        if let Some(quiet) = trigger.after_inactive {
            due = due.max(self.last_active + quiet.as_secs());
        }
        let already_bought = token.as_ref().is_some_and(|tok| self.orders.tokens.contains(tok));
        let st = &mut self.triggers[i];
        if let Some(p) = &mut st.pending {
            // Debounce: re-arming pushes the due time back; the scheduler is
            // not asked again until the outstanding check finds it moved.
            p.due = p.due.max(due);
            if token.is_some() {
                p.token = token;
            }
            return;
        }
        if already_bought {
            // A late update of a basket that was already bought: one trace,
            // then silence for that basket.
            if st.converted_token.is_some() && st.converted_token == token {
                return;
            }
            st.episode += 1;
            st.converted_token = token;
            let check = self.check(&trigger.id, self.triggers[i].episode, t);
            effects.push(Effect::Decided(self.decision(
                &check,
                ts(t),
                Outcome::Skip,
                Some(Reason::Converted),
                None,
                rules,
            )));
            return;
        }
        st.episode += 1;
        let episode = st.episode;
        let parked = self.unreachable(rules).is_some();
        let st = &mut self.triggers[i];
        st.pending = Some(Pending {
            episode,
            started: t,
            due,
            scheduled: due,
            token,
            parked,
            parked_at: 0,
            claim: None,
            mail_attempts: 0,
            waited_from: 0,
        });
        let check = self.check(&trigger.id, episode, due);
        effects.push(Effect::Schedule { check, first: true, parked });
    }

    /// The outstanding scheduler request of every pending episode: what a
    /// reconcile sweep re-drives and what an erase withdraws.
    pub fn pending_checks(&self) -> Vec<Check> {
        let opt_in = &self.consent.opt_in;
        self.triggers
            .iter()
            .filter_map(|st| st.pending.as_ref().map(|p| self.check(&st.trigger, p.episode, p.scheduled)))
            .chain(opt_in.scheduled.map(|at| self.check(CONFIRM_TRIGGER, opt_in.episode, at)))
            .collect()
    }

    /// When the earliest outstanding check is due (what a reconcile index
    /// sorts on); `None` with nothing pending.
    pub fn next_due(&self) -> Option<Timestamp> {
        let triggers = self.triggers.iter().filter_map(|st| st.pending.as_ref().map(|p| p.scheduled));
        triggers.chain(self.consent.opt_in.scheduled).min().map(ts)
    }

    /// Records a subscription request from a public source and asks for a
    /// confirmation check now, unless one is already outstanding.
    fn request_opt_in(&mut self, t: Secs, effects: &mut Vec<Effect>) {
        let opt_in = &mut self.consent.opt_in;
        opt_in.requested = Some(opt_in.requested.map_or(t, |r| r.max(t)));
        if opt_in.scheduled.is_none() {
            opt_in.episode = opt_in.episode.wrapping_add(1);
            opt_in.scheduled = Some(t);
            let check = self.check(CONFIRM_TRIGGER, self.consent.opt_in.episode, t);
            effects.push(Effect::Schedule { check, first: true, parked: false });
        }
    }

    /// Whether the policy's `max_per_day` / `max_per_week` is reached at `now`.
    pub(crate) fn capped(&self, rules: &Triggers, now: Secs) -> bool {
        const DAY: Secs = 86_400;
        let over = |max: Option<u32>, window: Secs| max.is_some_and(|m| self.sends_since(now - window) >= m as usize);
        over(rules.policy.max_per_day, DAY) || over(rules.policy.max_per_week, 7 * DAY)
    }

    /// Decides a confirmation check: send one confirmation email if the
    /// request still stands, the person can be reached, none went out in
    /// the last [`CONFIRM_EVERY`] and the policy's frequency caps allow one.
    pub(crate) fn conclude_opt_in(&mut self, check: &Check, rules: &Triggers, now: Timestamp) -> Decision {
        let opt_in = &self.consent.opt_in;
        let live = opt_in.episode == check.episode && opt_in.scheduled == Some(secs(check.due));
        let n = secs(now);
        let (outcome, reason) = if !live {
            (Outcome::Skip, Some(Reason::Duplicate))
        } else if opt_in.requested.is_none() || self.consent.state == ConsentState::Subscribed {
            (Outcome::Skip, Some(Reason::Cancelled))
        } else if self.suppressed.is_some() {
            (Outcome::Skip, Some(Reason::Suppressed))
        } else if self.email.as_deref().is_none_or(str::is_empty) {
            (Outcome::Skip, Some(Reason::NoAddress))
        } else if opt_in.sent.is_some_and(|s| n - s < CONFIRM_EVERY) || self.capped(rules, n) {
            (Outcome::Skip, Some(Reason::FrequencyCap))
        } else {
            (Outcome::Send, None)
        };
        if live {
            self.consent.opt_in.scheduled = None;
            if outcome == Outcome::Send {
                self.consent.opt_in.sent = Some(n);
            }
        }
        self.decision(check, now, outcome, reason, None, rules)
    }

    pub(crate) fn check(&self, trigger: &str, episode: u32, due: Secs) -> Check {
        Check { shop: self.shop.clone(), profile: self.id.clone(), trigger: trigger.to_owned(), episode, due: ts(due) }
    }

    // Counting helpers used by conditions.

    pub fn count_between(&self, kind: &str, since: Secs, until: Secs) -> u32 {
        self.activity.iter().find(|a| a.kind == kind).map_or(0, |a| count_in(&a.recent, since, until))
    }

    pub fn max_product_views_between(&self, since: Secs, until: Secs) -> u32 {
        self.products.iter().map(|p| count_in(&p.recent, since, until)).max().unwrap_or(0)
    }

    pub fn max_category_views_between(&self, since: Secs, until: Secs) -> u32 {
        let mut best = 0;
        for p in &self.products {
            let Some(cat) = &p.category else { continue };
            let n: u32 = self
                .products
                .iter()
                .filter(|q| q.category.as_ref() == Some(cat))
                .map(|q| count_in(&q.recent, since, until))
                .sum();
            best = best.max(n);
        }
        best
    }

    /// Sends within `(now - window, now]`.
    pub fn sends_since(&self, since: Secs) -> usize {
        self.sends.iter().filter(|s| s.at > since).count()
    }

    pub(crate) fn record_send(&mut self, rec: SendRecord, kept: usize) {
        push_capped(&mut self.sends, rec, kept);
    }
}

/// The basket (cart or checkout) token a cart or checkout event is about.
/// Other events arm nothing basket-specific.
fn event_token(e: &Event) -> Option<String> {
    let (EventKind::CartUpdated { basket, .. } | EventKind::CheckoutStarted { basket }) = &e.kind else {
        return None;
    };
    basket
        .token
        .as_deref()
        .or(e.identity.checkout_token.as_deref())
        .or(e.identity.cart_token.as_deref())
        .map(bounded_key)
}

fn count_in(recent: &[Secs], since: Secs, until: Secs) -> u32 {
    recent.iter().filter(|&&x| x >= since && x <= until).count() as u32
}

/// Inserts a timestamp in order (late events land where they belong) and
/// keeps only the newest `cap`.
fn insert_recent(recent: &mut Ring, t: Secs, cap: usize) {
    if cap == 0 {
        recent.clear();
        return;
    }
    let pos = recent.partition_point(|&x| x <= t);
    if recent.len() >= cap && pos == 0 {
        return; // older than everything kept
    }
    recent.insert(pos, t);
    let excess = recent.len().saturating_sub(cap);
    recent.drain(..excess);
}

/// Pushes without the doubling growth of `Vec::push`, which starts at four
/// elements: these lists are short and bounded, most profiles hold one or
/// two entries, and a replay keeps every profile in memory (the doubling
/// left most of their capacity unused).
fn push_tight<T>(list: &mut Vec<T>, item: T) {
    if list.len() == list.capacity() {
        list.reserve_exact(1);
    }
    list.push(item);
}

fn push_capped<T: PartialEq>(list: &mut Vec<T>, item: T, cap: usize) {
    if list.contains(&item) {
        return;
    }
    if list.len() >= cap {
        list.remove(0);
    }
    list.push(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_timestamps_stay_sorted_and_capped() {
        let mut r = Ring::new();
        for t in [5, 1, 9, 3, 7] {
            insert_recent(&mut r, t, 3);
        }
        assert_eq!(r.as_slice(), &[5, 7, 9]);
        insert_recent(&mut r, 2, 3);
        assert_eq!(r.as_slice(), &[5, 7, 9], "an event older than all kept ones changes nothing");
    }

    #[test]
    fn seen_fingerprints_round_trip_compactly() {
        let mut s = Seen::default();
        for i in 0..100u64 {
            s.push(i * 7919);
        }
        let json = serde_json::to_string(&s).unwrap();
        let back: Seen = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert_eq!(s.iter().count(), SEEN_KEPT);
        assert!(json.len() < 270, "{} bytes", json.len());
    }
}

#[cfg(test)]
mod engagement_tests {
    use super::*;

    #[test]
    fn the_best_hour_needs_five_engagements_and_takes_the_earliest_of_equals() {
        let mut e = Engagement::default();
        for h in [19, 19, 8, 8] {
            e.record(h);
        }
        assert_eq!(e.best_hour(), None, "four engagements");
        e.record(21);
        assert_eq!(e.best_hour(), Some(8), "8 and 19 tie: the earlier");
        e.record(19);
        assert_eq!(e.best_hour(), Some(19));
    }

    #[test]
    fn a_full_counter_halves_them_all_so_recent_habits_weigh_more() {
        let mut e = Engagement::default();
        for _ in 0..255 {
            e.record(9);
        }
        e.record(20);
        e.record(9);
        // The 256th at 9 halves all first: 255 → 127 (+1), and the lone 20 → 0.
        assert_eq!((e.0[9], e.0[20]), (128, 0));
    }

    #[test]
    fn engagement_is_counted_in_the_person_s_local_hour() {
        let rules = Triggers::parse("", "t.toml", None).unwrap();
        let mut p = Profile::new("s", "p");
        let view = |id: &str, zone: Option<&str>| Event {
            id: crate::EventId::parse(id).unwrap(),
            shop: "s".into(),
            occurred_at: "2026-10-06T17:30:00Z".parse().unwrap(),
            identity: crate::Identity::default(),
            kind: EventKind::PageViewed { url: None, category: None, name: None },
            trust: Default::default(),
            received_at: None,
            time_zone: zone.map(str::to_owned),
        };
        p.apply(&view("v1", None), &rules);
        assert_eq!(p.engagement.0[17], 1, "UTC without a zone");
        p.apply(&view("v2", Some("Europe/Berlin")), &rules);
        assert_eq!(p.engagement.0[19], 1, "19:30 in Berlin (CEST)");
    }
}
