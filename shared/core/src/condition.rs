//! Conditions over a profile at an instant: counts in exact rolling windows,
//! inactivity, orders, cart value, segments and the person's own messages.

use std::fmt;

use crate::model::Models;
use crate::profile::Profile;
use crate::time::{Dur, Secs};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Events of one kind with `now - within <= time <= now`.
    Count {
        event: String,
        /// Only events passing its filter count (kept under its own
        /// activity key).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<crate::filter::Signal>,
        at_least: Option<u32>,
        at_most: Option<u32>,
        within: Dur,
        scope: Scope,
    },
    InactiveFor(Dur),
    FirstSeenWithin(Dur),
    OrdersAtLeast(u32),
    OrdersAtMost(u32),
    CartValueAtLeast(f64),
    CartValueAtMost(f64),
    /// Lifetime spend (the sum of order values).
    SpentAtLeast(f64),
    SpentAtMost(f64),
    /// Lifetime spend over the number of orders; false for no orders.
    AverageOrderAtLeast(f64),
    AverageOrderAtMost(f64),
    /// The last order was placed within this long.
    LastOrderWithin(Dur),
    /// There was an order, and the last one was at least this long ago.
    LastOrderBefore(Dur),
    /// An email of any trigger was opened or clicked within this long.
    EngagedWithin(Dur),
    /// A named segment, inlined; the name is kept for explanations.
    Segment(String, Box<Condition>),
    /// The person's RFM segment by their shop's model (`segment =
    /// "rfm:at_risk"`); false without a model or an order.
    Rfm(nudge_analytics::rfm::Segment),
    /// The probability that the person is still a customer, by their
    /// shop's BG/NBD model, is above / below these; false without a model
    /// or an order.
    PAlive {
        above: Option<f64>,
        below: Option<f64>,
    },
    /// Orders the model expects from the person within the next `within`.
    ExpectedOrders {
        above: Option<f64>,
        below: Option<f64>,
        within: Dur,
    },
    /// The person was sent / opened / clicked a message of `trigger`
    /// (optionally within a window ending now).
    Message {
        trigger: String,
        signal: Signal,
        within: Option<Dur>,
    },
}

fn band(above: Option<f64>, below: Option<f64>) -> String {
    match (above, below) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("> {a}"),
        (None, Some(b)) => format!("< {b}"),
        (None, None) => "known".to_owned(),
    }
}

/// `above < v < below`, each bound optional.
fn within_band(v: f64, above: Option<f64>, below: Option<f64>) -> bool {
    above.is_none_or(|a| v > a) && below.is_none_or(|b| v < b)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// All events of the kind together.
    AnyProduct,
    /// The busiest single product.
    SameProduct,
    /// The busiest single category.
    SameCategory,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Signal {
    Sent,
    Opened,
    Clicked,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Sent => "sent",
            Signal::Opened => "opened",
            Signal::Clicked => "clicked",
        }
    }
}

impl Condition {
    /// Whether the condition holds for `p` at `now`; `models` are the
    /// shops' customer models ([`crate::model`]).
    pub fn eval(&self, p: &Profile, now: Secs, models: &Models) -> bool {
        match self {
            Condition::All(cs) => cs.iter().all(|c| c.eval(p, now, models)),
            Condition::Any(cs) => cs.iter().any(|c| c.eval(p, now, models)),
            Condition::Not(c) => !c.eval(p, now, models),
            Condition::Count { event, filter, at_least, at_most, within, scope } => {
                let since = now - within.as_secs();
                let n = match (scope, filter) {
                    (_, Some(signal)) => p.count_between(&signal.key, since, now),
                    (Scope::AnyProduct, None) => p.count_between(event, since, now),
                    (Scope::SameProduct, None) => p.max_product_views_between(since, now),
                    (Scope::SameCategory, None) => p.max_category_views_between(since, now),
                };
                at_least.is_none_or(|min| n >= min) && at_most.is_none_or(|max| n <= max)
            }
            // A profile with no storefront activity yet has been inactive forever.
            Condition::InactiveFor(d) => now.saturating_sub(p.last_active) >= d.as_secs(),
            Condition::FirstSeenWithin(d) => {
                p.first_seen != Secs::MAX && now.saturating_sub(p.first_seen) <= d.as_secs()
            }
            Condition::OrdersAtLeast(n) => p.orders.count >= *n,
            Condition::OrdersAtMost(n) => p.orders.count <= *n,
            Condition::CartValueAtLeast(v) => p.basket.as_ref().is_some_and(|b| b.value >= *v),
            Condition::CartValueAtMost(v) => p.basket.as_ref().is_none_or(|b| b.value <= *v),
            Condition::SpentAtLeast(v) => p.orders.revenue >= *v,
            Condition::SpentAtMost(v) => p.orders.revenue <= *v,
            Condition::AverageOrderAtLeast(v) => {
                p.orders.count > 0 && p.orders.revenue / f64::from(p.orders.count) >= *v
            }
            Condition::AverageOrderAtMost(v) => {
                p.orders.count > 0 && p.orders.revenue / f64::from(p.orders.count) <= *v
            }
            Condition::LastOrderWithin(d) => p.orders.last_at.is_some_and(|t| now - t <= d.as_secs()),
            Condition::LastOrderBefore(d) => p.orders.last_at.is_some_and(|t| now - t >= d.as_secs()),
            Condition::EngagedWithin(d) => {
                let since = now - d.as_secs();
                p.sends.iter().flat_map(|s| [s.opened, s.clicked]).flatten().any(|t| t >= since && t <= now)
            }
            Condition::Segment(_, c) => c.eval(p, now, models),
            Condition::Rfm(segment) => {
                models.get(&p.shop).and_then(|m| m.rfm(p, now)).is_some_and(|r| r.segment == *segment)
            }
            Condition::PAlive { above, below } => {
                models.get(&p.shop).and_then(|m| m.p_alive(p, now)).is_some_and(|v| within_band(v, *above, *below))
            }
            Condition::ExpectedOrders { above, below, within } => models
                .get(&p.shop)
                .and_then(|m| m.expected_orders(p, now, within.as_secs() as f64 / crate::model::DAY as f64))
                .is_some_and(|v| within_band(v, *above, *below)),
            Condition::Message { trigger, signal, within } => {
                let since = within.map_or(Secs::MIN, |w| now - w.as_secs());
                p.sends.iter().filter(|s| s.trigger == *trigger).any(|s| {
                    let at = match signal {
                        Signal::Sent => Some(s.at),
                        Signal::Opened => s.opened,
                        Signal::Clicked => s.clicked,
                    };
                    at.is_some_and(|t| t >= since && t <= now)
                })
            }
        }
    }

    /// Calls `f(event, timestamps needed, scope)` for every count inside.
    /// Whether the condition can turn true by time passing alone (an
    /// `inactive_for` not under a `not`): as a `when`, which is looked at
    /// when an event arrives, it would fire on the first event of someone
    /// never seen before, not after the quiet period.
    pub(crate) fn turns_true_with_time(&self, negated: bool) -> bool {
        match self {
            Condition::All(cs) | Condition::Any(cs) => cs.iter().any(|c| c.turns_true_with_time(negated)),
            Condition::Not(c) => c.turns_true_with_time(!negated),
            Condition::Segment(_, c) => c.turns_true_with_time(negated),
            Condition::InactiveFor(_) => !negated,
            _ => false,
        }
    }

    /// Whether it reads the customer model (`rfm:` segments, `p_alive`,
    /// `expected_orders`).
    pub fn uses_model(&self) -> bool {
        match self {
            Condition::All(cs) | Condition::Any(cs) => cs.iter().any(Condition::uses_model),
            Condition::Not(c) | Condition::Segment(_, c) => c.uses_model(),
            Condition::Rfm(_) | Condition::PAlive { .. } | Condition::ExpectedOrders { .. } => true,
            _ => false,
        }
    }

    /// Every count, to `f`.
    pub(crate) fn for_each_count(&self, f: &mut CountVisitor<'_>) {
        match self {
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| c.for_each_count(f)),
            Condition::Not(c) | Condition::Segment(_, c) => c.for_each_count(f),
            Condition::Count { event, filter, at_least, at_most, scope, .. } => {
                let need = at_least.unwrap_or(0).max(at_most.map_or(0, |m| m + 1));
                f(event, filter.as_ref(), need as usize, *scope);
            }
            _ => {}
        }
    }
}

/// What [`Condition::for_each_count`] calls for each count: its event, its
/// filter, how many timestamps it needs, its scope.
pub(crate) type CountVisitor<'a> = dyn FnMut(&str, Option<&crate::filter::Signal>, usize, Scope) + 'a;

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, cs: &[Condition], sep: &str| -> fmt::Result {
            f.write_str("(")?;
            for (i, c) in cs.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{c}")?;
            }
            f.write_str(")")
        };
        match self {
            Condition::All(cs) => list(f, cs, " and "),
            Condition::Any(cs) => list(f, cs, " or "),
            Condition::Not(c) => write!(f, "not {c}"),
            Condition::Count { event, filter, at_least, at_most, within, scope } => {
                let bound = match (at_least, at_most) {
                    (Some(a), Some(b)) => format!("{a}-{b}"),
                    (Some(a), None) => format!("≥{a}"),
                    (None, Some(b)) => format!("≤{b}"),
                    (None, None) => String::new(),
                };
                let of = match scope {
                    Scope::AnyProduct => "",
                    Scope::SameProduct => " of one product",
                    Scope::SameCategory => " in one category",
                };
                match filter {
                    Some(signal) => write!(f, "{bound} {event} where {} within {within}", signal.filter),
                    None => write!(f, "{bound} {event}{of} within {within}"),
                }
            }
            Condition::InactiveFor(d) => write!(f, "inactive for {d}"),
            Condition::FirstSeenWithin(d) => write!(f, "first seen within {d}"),
            Condition::OrdersAtLeast(n) => write!(f, "≥{n} orders"),
            Condition::OrdersAtMost(n) => write!(f, "≤{n} orders"),
            Condition::CartValueAtLeast(v) => write!(f, "cart ≥ {v}"),
            Condition::CartValueAtMost(v) => write!(f, "cart ≤ {v}"),
            Condition::SpentAtLeast(v) => write!(f, "spent ≥ {v}"),
            Condition::SpentAtMost(v) => write!(f, "spent ≤ {v}"),
            Condition::AverageOrderAtLeast(v) => write!(f, "average order ≥ {v}"),
            Condition::AverageOrderAtMost(v) => write!(f, "average order ≤ {v}"),
            Condition::LastOrderWithin(d) => write!(f, "ordered within {d}"),
            Condition::LastOrderBefore(d) => write!(f, "last order {d} ago or more"),
            Condition::EngagedWithin(d) => write!(f, "opened or clicked an email within {d}"),
            Condition::Segment(name, _) => write!(f, "segment {name}"),
            Condition::Rfm(segment) => write!(f, "segment rfm:{}", segment.as_str()),
            Condition::PAlive { above, below } => write!(f, "P(alive) {}", band(*above, *below)),
            Condition::ExpectedOrders { above, below, within } => {
                write!(f, "orders expected within {within} {}", band(*above, *below))
            }
            Condition::Message { trigger, signal, within } => {
                write!(f, "{} {trigger}", signal.as_str())?;
                match within {
                    Some(w) => write!(f, " within {w}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_conditions_on_a_profile_without_events_neither_panic_nor_invent_history() {
        let p = Profile::new("shop", "p");
        let d = Dur::from_secs(3_600);
        for now in [i64::MIN / 2, 0, 1_800_000_000, i64::MAX / 2] {
            assert!(Condition::InactiveFor(d).eval(&p, now, &Models::default()), "never active counts as inactive");
            assert!(
                !Condition::FirstSeenWithin(d).eval(&p, now, &Models::default()),
                "never seen is not 'recently seen'"
            );
        }
    }

    #[test]
    fn engaged_within_looks_at_opens_and_clicks_of_any_send_in_the_window() {
        use crate::profile::SendRecord;
        let mut p = Profile::new("shop", "p1");
        let day = 86_400;
        let send = |at: Secs, opened: Option<Secs>, clicked: Option<Secs>| SendRecord {
            trigger: "cart".into(),
            episode: 1,
            variant: "a".into(),
            at,
            opened,
            clicked,
        };
        let engaged = Condition::EngagedWithin(Dur::from_secs(30 * day));
        let now = 100 * day;
        p.sends = vec![send(10 * day, Some(10 * day), None)];
        assert!(!engaged.eval(&p, now, &Models::default()), "opened 90 days ago");
        p.sends.push(send(80 * day, None, Some(81 * day)));
        assert!(engaged.eval(&p, now, &Models::default()), "clicked 19 days ago");
        p.sends = vec![send(95 * day, None, None)];
        assert!(!engaged.eval(&p, now, &Models::default()), "sent, never opened");
    }
}
