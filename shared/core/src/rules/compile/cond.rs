//! Condition tables (`when`, `if`, segments) → [`Condition`]: one function
//! per kind of key. Every problem is reported; a table with any problem
//! compiles to nothing. Several keys in one table all have to hold.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use toml::Spanned;

use super::Compiler;
use crate::condition::{Condition, Scope, Signal};
use crate::rules::MAX_COUNT_THRESHOLD;
use crate::rules::raw::RawCond;
use crate::time::Dur;

/// Where a condition table is, and what its references may name.
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    /// The key path of the table, e.g. `trigger.browse.when`.
    pub field: &'a str,
    /// The segments compiled so far.
    pub segments: &'a BTreeMap<String, Condition>,
    /// The trigger ids, where message conditions are allowed (not in
    /// segments).
    pub trigger_ids: Option<&'a HashSet<String>>,
}

impl<'a> At<'a> {
    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.field)
    }

    fn nested<'b>(&self, field: &'b str) -> At<'b>
    where
        'a: 'b,
    {
        At { field, segments: self.segments, trigger_ids: self.trigger_ids }
    }
}

/// The keys `within` may belong to.
fn message_keys(r: &RawCond) -> [(&Option<Spanned<String>>, Signal); 3] {
    [(&r.sent, Signal::Sent), (&r.opened, Signal::Opened), (&r.clicked, Signal::Clicked)]
}

/// How many of `count`, `sent`, `opened` and `clicked` the table has.
fn users_of_within(r: &RawCond) -> usize {
    usize::from(r.count.is_some()) + message_keys(r).iter().filter(|(k, _)| k.is_some()).count()
}

impl Compiler<'_> {
    pub(super) fn cond(&mut self, rc: &Spanned<RawCond>, at: At<'_>) -> Option<Condition> {
        let span = rc.span();
        let r = rc.get_ref();
        let mut parts: Vec<Condition> = Vec::new();
        let mut ok = self.combinators(r, &span, at, &mut parts);
        ok &= self.within_is_unambiguous(r, &span, at);
        ok &= match &r.count {
            Some(event) => self.count(r, event, ok, at, &mut parts),
            None => self.no_count_options(r, &span, at),
        };
        ok &= self.messages(r, at, &mut parts);
        ok &= self.within_is_used(r, &span, at);
        profile_facts(r, &mut parts);
        ok &= self.segment_ref(r, at, &mut parts);
        ok &= self.model_figures(r, at, &mut parts);
        if !ok {
            return None;
        }
        match parts.len() {
            0 => {
                self.err(span, at.field, "empty condition: give at least one of all, any, not, count, inactive_for, first_seen_within, orders_at_least, orders_at_most, cart_value_at_least, cart_value_at_most, spent_at_least, spent_at_most, average_order_at_least, average_order_at_most, last_order_within, last_order_before, engaged_within, segment, p_alive, expected_orders, sent, opened, clicked");
                None
            }
            1 => parts.pop(),
            _ => Some(Condition::All(parts)),
        }
    }

    /// `all`, `any` and `not`.
    fn combinators(&mut self, r: &RawCond, span: &Range<usize>, at: At<'_>, parts: &mut Vec<Condition>) -> bool {
        let mut ok = true;
        for (key, list, make) in [
            ("all", &r.all, Condition::All as fn(Vec<Condition>) -> Condition),
            ("any", &r.any, Condition::Any as fn(Vec<Condition>) -> Condition),
        ] {
            let Some(list) = list else { continue };
            match self.list(list, span, key, at) {
                Some(cs) => parts.push(make(cs)),
                None => ok = false,
            }
        }
        if let Some(inner) = &r.not {
            let field = at.key("not");
            match self.cond(inner, at.nested(&field)) {
                Some(c) => parts.push(Condition::Not(Box::new(c))),
                None => ok = false,
            }
        }
        ok
    }

    /// The conditions of `all` or `any`: at least one, each compiled.
    fn list(
        &mut self,
        list: &[Spanned<RawCond>],
        span: &Range<usize>,
        key: &str,
        at: At<'_>,
    ) -> Option<Vec<Condition>> {
        let field = at.key(key);
        if list.is_empty() {
            self.err(span.clone(), field, format!("`{key}` needs at least one condition"));
            return None;
        }
        let out: Vec<Option<Condition>> = list.iter().map(|c| self.cond(c, at.nested(&field))).collect();
        out.into_iter().collect()
    }

    /// `within` belongs to exactly one of: count, sent, opened, clicked.
    fn within_is_unambiguous(&mut self, r: &RawCond, span: &Range<usize>, at: At<'_>) -> bool {
        if users_of_within(r) > 1 && r.within.is_some() {
            self.err(
                span.clone(),
                at.key("within"),
                "`within` is ambiguous: put `count`, `sent`, `opened` and `clicked` in separate tables",
            );
            return false;
        }
        true
    }

    /// `within` with nothing to belong to.
    fn within_is_used(&mut self, r: &RawCond, span: &Range<usize>, at: At<'_>) -> bool {
        if r.within.is_some() && users_of_within(r) == 0 {
            self.err(span.clone(), at.key("within"), "`within` only goes with `count`, `sent`, `opened` or `clicked`");
            return false;
        }
        true
    }

    /// `count = "<event>"` with `at_least` / `at_most`, `within`, and
    /// optionally `same_product` or `same_category`. Added only when the
    /// table so far (`ok_so_far`) and the count itself are sound.
    fn count(
        &mut self,
        r: &RawCond,
        event: &Spanned<String>,
        ok_so_far: bool,
        at: At<'_>,
        parts: &mut Vec<Condition>,
    ) -> bool {
        let mut ok = self.event_name(event, &at.key("count"));
        if r.within.is_none() {
            self.err(event.span(), at.key("within"), "`count` needs `within`, e.g. within = \"48h\"");
            ok = false;
        }
        if r.at_least.is_none() && r.at_most.is_none() {
            self.err(event.span(), at.key("at_least"), "`count` needs `at_least` and/or `at_most`");
            ok = false;
        }
        ok &= self.count_thresholds(r, at);
        let scope = self.count_scope(r, event, at);
        ok &= scope.is_some();
        let mut filter = None;
        if let Some(raw) = &r.filter {
            if scope.is_some_and(|s| s != Scope::AnyProduct) {
                self.err(raw.span(), at.key("where"), "`where` does not go with `same_product` / `same_category`");
                ok = false;
            } else if ok {
                filter = self
                    .filter(raw, event.get_ref(), &at.key("where"))
                    .map(|f| crate::filter::Signal::new(event.get_ref(), f));
                ok &= filter.is_some();
            }
        }
        if let (true, true, Some(scope)) = (ok_so_far, ok, scope) {
            parts.push(Condition::Count {
                event: event.get_ref().clone(),
                filter,
                at_least: r.at_least.as_ref().map(|v| *v.get_ref()),
                at_most: r.at_most.as_ref().map(|v| *v.get_ref()),
                within: r.within.unwrap_or(Dur::ZERO),
                scope,
            });
        }
        ok
    }

    /// Thresholds a profile's timestamp ring can answer.
    fn count_thresholds(&mut self, r: &RawCond, at: At<'_>) -> bool {
        let mut ok = true;
        for (key, v) in [("at_least", &r.at_least), ("at_most", &r.at_most)] {
            let Some(v) = v else { continue };
            let need = if key == "at_most" { v.get_ref() + 1 } else { *v.get_ref() };
            if need > MAX_COUNT_THRESHOLD {
                self.err(
                    v.span(),
                    at.key(key),
                    format!("at most {MAX_COUNT_THRESHOLD} (profiles keep {MAX_COUNT_THRESHOLD} recent timestamps per event)"),
                );
                ok = false;
            }
        }
        ok
    }

    /// `same_product` / `same_category`: one of them, on `product_viewed`.
    fn count_scope(&mut self, r: &RawCond, event: &Spanned<String>, at: At<'_>) -> Option<Scope> {
        let scope = match (r.same_product.unwrap_or(false), r.same_category.unwrap_or(false)) {
            (true, true) => {
                self.err(event.span(), at.key("same_product"), "choose `same_product` or `same_category`, not both");
                None
            }
            (true, false) => Some(Scope::SameProduct),
            (false, true) => Some(Scope::SameCategory),
            (false, false) => Some(Scope::AnyProduct),
        };
        if scope.is_some_and(|s| s != Scope::AnyProduct) && event.get_ref() != "product_viewed" {
            self.err(
                event.span(),
                at.key("same_product"),
                "`same_product` / `same_category` apply to `product_viewed` counts",
            );
            return None;
        }
        scope
    }

    /// The options of `count` without a `count`.
    fn no_count_options(&mut self, r: &RawCond, span: &Range<usize>, at: At<'_>) -> bool {
        let mut ok = true;
        for (key, present) in [
            ("at_least", r.at_least.is_some()),
            ("at_most", r.at_most.is_some()),
            ("same_product", r.same_product.is_some()),
            ("same_category", r.same_category.is_some()),
            ("where", r.filter.is_some()),
        ] {
            if present {
                self.err(span.clone(), at.key(key), format!("`{key}` only goes with `count = \"<event>\"`"));
                ok = false;
            }
        }
        ok
    }

    /// `sent`, `opened`, `clicked`: a trigger's messages, in triggers only.
    fn messages(&mut self, r: &RawCond, at: At<'_>, parts: &mut Vec<Condition>) -> bool {
        let mut ok = true;
        for (key, signal) in message_keys(r) {
            let Some(t) = key else { continue };
            let field = at.key(signal.as_str());
            match at.trigger_ids {
                Some(ids) if ids.contains(t.get_ref()) => {
                    parts.push(Condition::Message { trigger: t.get_ref().clone(), signal, within: r.within });
                }
                Some(_) => {
                    self.err(t.span(), field, format!("unknown trigger {:?}", t.get_ref()));
                    ok = false;
                }
                None => {
                    self.err(
                        t.span(),
                        field,
                        "message conditions belong in a trigger's `when` or `if`, not in a segment",
                    );
                    ok = false;
                }
            }
        }
        ok
    }

    /// `segment = "<name>"`: a segment defined before, or `rfm:<name>`, a
    /// segment of the customer model.
    fn segment_ref(&mut self, r: &RawCond, at: At<'_>, parts: &mut Vec<Condition>) -> bool {
        let Some(name) = &r.segment else { return true };
        if let Some(rfm) = name.get_ref().strip_prefix("rfm:") {
            return match nudge_analytics::rfm::Segment::named(rfm) {
                Some(segment) => {
                    parts.push(Condition::Rfm(segment));
                    true
                }
                None => {
                    self.err(name.span(), at.key("segment"), unknown_rfm(rfm));
                    false
                }
            };
        }
        match at.segments.get(name.get_ref()) {
            Some(c) => {
                parts.push(Condition::Segment(name.get_ref().clone(), Box::new(c.clone())));
                true
            }
            None => {
                self.err(name.span(), at.key("segment"), format!("unknown segment {:?}", name.get_ref()));
                false
            }
        }
    }
}

/// The message for an `rfm:` segment that is not one.
pub(super) fn unknown_rfm(name: &str) -> String {
    let names: Vec<&str> = nudge_analytics::rfm::Segment::ALL.iter().map(|s| s.as_str()).collect();
    format!("unknown RFM segment {name:?}: one of {}", names.join(", "))
}

impl Compiler<'_> {
    /// `p_alive = { below = 0.3 }`, `expected_orders = { above = 1, within = "90d" }`.
    fn model_figures(&mut self, r: &RawCond, at: At<'_>, parts: &mut Vec<Condition>) -> bool {
        let mut ok = true;
        for (key, band) in [("p_alive", &r.p_alive), ("expected_orders", &r.expected_orders)] {
            let Some(band) = band else { continue };
            let (b, span) = (band.get_ref(), band.span());
            let bad = [b.above, b.below].into_iter().flatten().find(|v| !v.is_finite() || *v < 0.0);
            let problem = if b.above.is_none() && b.below.is_none() {
                Some("give `above`, `below` or both".to_owned())
            } else if let Some(v) = bad {
                Some(format!("{v} is not a number ≥ 0"))
            } else if key == "p_alive" && [b.above, b.below].into_iter().flatten().any(|v| v > 1.0) {
                Some("a probability is between 0 and 1".to_owned())
            } else if b.above.zip(b.below).is_some_and(|(a, b)| a >= b) {
                Some("`above` must be less than `below`".to_owned())
            } else if key == "p_alive" && b.within.is_some() {
                Some("`within` is for expected_orders (the horizon), not p_alive".to_owned())
            } else {
                None
            };
            if let Some(problem) = problem {
                self.err(span, at.key(key), problem);
                ok = false;
                continue;
            }
            parts.push(if key == "p_alive" {
                Condition::PAlive { above: b.above, below: b.below }
            } else {
                let within = b.within.unwrap_or(crate::time::Dur::from_secs(90 * 86_400));
                Condition::ExpectedOrders { above: b.above, below: b.below, within }
            });
        }
        ok
    }
}

/// Facts of the profile, which cannot be wrong once parsed: inactivity,
/// first seen, order counts, cart value.
fn profile_facts(r: &RawCond, parts: &mut Vec<Condition>) {
    parts.extend(r.inactive_for.map(Condition::InactiveFor));
    parts.extend(r.first_seen_within.map(Condition::FirstSeenWithin));
    parts.extend(r.orders_at_least.map(Condition::OrdersAtLeast));
    parts.extend(r.orders_at_most.map(Condition::OrdersAtMost));
    parts.extend(r.cart_value_at_least.map(Condition::CartValueAtLeast));
    parts.extend(r.cart_value_at_most.map(Condition::CartValueAtMost));
    parts.extend(r.spent_at_least.map(Condition::SpentAtLeast));
    parts.extend(r.spent_at_most.map(Condition::SpentAtMost));
    parts.extend(r.average_order_at_least.map(Condition::AverageOrderAtLeast));
    parts.extend(r.average_order_at_most.map(Condition::AverageOrderAtMost));
    parts.extend(r.last_order_within.map(Condition::LastOrderWithin));
    parts.extend(r.last_order_before.map(Condition::LastOrderBefore));
    parts.extend(r.engaged_within.map(Condition::EngagedWithin));
}
