//! Merging two profiles of one person.

use super::*;

impl Profile {
    /// Folds another profile of the same person into this one (identity
    /// merge: an anonymous visitor who turns out to be a known customer).
    /// Deterministic, and absorbing the same profile twice changes nothing
    /// more. This profile's trigger states are kept; checks armed on the
    /// other profile end as `no_profile` once it is gone.
    pub fn absorb(&mut self, other: &Profile, rules: &Triggers) {
        if !other.seen.is_empty() && other.seen.iter().all(|fp| self.seen.contains(fp)) {
            return; // absorbed before
        }
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_active = self.last_active.max(other.last_active);
        self.clock = self.clock.max(other.clock);
        if self.email.is_none() {
            self.email.clone_from(&other.email);
        }
        if self.first_name.is_none() {
            self.first_name.clone_from(&other.first_name);
        }
        if self.customer_id.is_none() {
            self.customer_id.clone_from(&other.customer_id);
        }
        if self.time_zone.is_none() {
            self.time_zone.clone_from(&other.time_zone);
        }
        if other.consent.at > self.consent.at {
            self.consent = other.consent.clone();
        }
        if self.suppressed.is_none() {
            self.suppressed.clone_from(&other.suppressed);
        }
        for a in &other.activity {
            let cap = rules.ring_cap(&a.kind);
            match self.activity.iter_mut().find(|s| s.kind == a.kind) {
                Some(s) => {
                    s.total = s.total.saturating_add(a.total);
                    s.last = s.last.max(a.last);
                    for &t in &a.recent {
                        if !s.recent.contains(&t) {
                            insert_recent(&mut s.recent, t, cap);
                        }
                    }
                }
                None => self.activity.push(a.clone()),
            }
        }
        for p in &other.products {
            match self.products.iter_mut().find(|s| s.id == p.id) {
                Some(s) => {
                    for &t in &p.recent {
                        if !s.recent.contains(&t) {
                            insert_recent(&mut s.recent, t, rules.product_ring_cap.max(1));
                        }
                    }
                    if s.category.is_none() {
                        s.category.clone_from(&p.category);
                    }
                }
                None => self.products.push(p.clone()),
            }
        }
        self.products.sort_by_key(|p| std::cmp::Reverse(p.last()));
        self.products.truncate(rules.products_kept);
        if other.basket.as_ref().is_some_and(|o| self.basket.as_ref().is_none_or(|s| o.updated > s.updated)) {
            self.basket.clone_from(&other.basket);
        }
        if other.orders.last.as_ref().is_some_and(|o| self.orders.last.as_ref().is_none_or(|s| o.at > s.at)) {
            self.orders.last.clone_from(&other.orders.last);
        }
        let shared_orders = other.orders.ids.iter().filter(|id| self.orders.ids.contains(id)).count() as u32;
        self.orders.count = self.orders.count.saturating_add(other.orders.count.saturating_sub(shared_orders));
        if shared_orders == 0 {
            self.orders.revenue += other.orders.revenue;
            self.orders.days = self.orders.days.saturating_add(other.orders.days);
        }
        self.orders.last_at = self.orders.last_at.max(other.orders.last_at);
        self.orders.first_at = match (self.orders.first_at, other.orders.first_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for id in &other.orders.ids {
            push_capped(&mut self.orders.ids, id.clone(), ORDERS_KEPT);
        }
        for t in &other.orders.tokens {
            push_capped(&mut self.orders.tokens, t.clone(), ORDERS_KEPT);
        }
        for b in &other.orders.bought {
            push_capped(&mut self.orders.bought, b.clone(), BOUGHT_KEPT);
        }
        for w in &other.wishlist {
            push_capped(&mut self.wishlist, w.clone(), WISHLIST_KEPT);
        }
        for s in &other.sends {
            if !self.sends.iter().any(|x| x.trigger == s.trigger && x.episode == s.episode && x.at == s.at) {
                self.sends.push(s.clone());
            }
        }
        self.sends.sort_by_key(|s| s.at);
        let excess = self.sends.len().saturating_sub(rules.sends_kept);
        self.sends.drain(..excess);
        for fp in other.seen.iter() {
            if !self.seen.contains(fp) {
                self.seen.push(fp);
            }
        }
    }
}
