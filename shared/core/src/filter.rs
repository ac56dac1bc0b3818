//! Property filters (`where`): which events of a kind arm a trigger or
//! count. Every listed property has to pass all of its tests; text compares
//! without regard to ASCII case.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::hash::stable_hash;

/// A property value: what events carry and filters compare with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Flag(bool),
    Number(f64),
    Text(String),
}

impl Scalar {
    fn same(&self, other: &Scalar) -> bool {
        match (self, other) {
            (Scalar::Text(a), Scalar::Text(b)) => a.eq_ignore_ascii_case(b),
            (Scalar::Number(a), Scalar::Number(b)) => a == b,
            (Scalar::Flag(a), Scalar::Flag(b)) => a == b,
            _ => false,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Scalar::Number(n) => Some(*n),
            Scalar::Text(t) => t.trim().parse().ok(),
            Scalar::Flag(_) => None,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Flag(b) => write!(f, "{b}"),
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// One test of a property's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Test {
    Is(Scalar),
    OneOf(Vec<Scalar>),
    NoneOf(Vec<Scalar>),
    AtLeast(f64),
    AtMost(f64),
}

impl Test {
    /// A property the event does not have passes only `NoneOf`.
    fn passes(&self, value: Option<&Scalar>) -> bool {
        match (self, value) {
            (Test::NoneOf(set), v) => v.is_none_or(|v| !set.iter().any(|s| s.same(v))),
            (_, None) => false,
            (Test::Is(want), Some(v)) => want.same(v),
            (Test::OneOf(set), Some(v)) => set.iter().any(|s| s.same(v)),
            (Test::AtLeast(min), Some(v)) => v.number().is_some_and(|n| n >= *min),
            (Test::AtMost(max), Some(v)) => v.number().is_some_and(|n| n <= *max),
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |set: &[Scalar]| set.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        match self {
            Test::Is(v) => write!(f, "= {v}"),
            Test::OneOf(set) => write!(f, "in [{}]", list(set)),
            Test::NoneOf(set) => write!(f, "not in [{}]", list(set)),
            Test::AtLeast(n) => write!(f, "≥ {n}"),
            Test::AtMost(n) => write!(f, "≤ {n}"),
        }
    }
}

/// Tests by property name, all of which must pass.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter(pub BTreeMap<String, Vec<Test>>);

impl Filter {
    pub fn matches(&self, kind: &EventKind) -> bool {
        self.0.iter().all(|(name, tests)| {
            let value = kind.property(name);
            tests.iter().all(|t| t.passes(value.as_ref()))
        })
    }
}

/// A filtered count's events: the filter and the activity key a profile
/// keeps them under (short and stable across releases), fixed when the
/// rules are compiled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub key: String,
    pub filter: Filter,
}

impl Signal {
    pub fn new(event: &str, filter: Filter) -> Signal {
        let text = filter.to_string();
        let key = format!("{event}?{:012x}", stable_hash(&[event.as_bytes(), text.as_bytes()]) & 0xffff_ffff_ffff);
        Signal { key, filter }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, tests) in &self.0 {
            for t in tests {
                if !first {
                    f.write_str(" and ")?;
                }
                first = false;
                write!(f, "{name} {t}")?;
            }
        }
        Ok(())
    }
}

/// The properties rules may filter built-in events on (custom events: any).
pub fn known_properties(event: &str) -> Option<&'static [&'static str]> {
    Some(match event {
        "product_viewed" | "wishlist_added" => &["product_id", "category", "name", "price"],
        "cart_updated" | "product_added" | "product_removed" | "cart_viewed" | "checkout_started" => {
            &["value", "currency", "item_count"]
        }
        "order_placed" => &["order_id", "value", "currency", "item_count"],
        "page_viewed" => &["url", "category", "name"],
        "email_opened" | "email_clicked" => &["trigger"],
        _ if crate::event::VOCABULARY.contains(&event) => &[],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Basket, Product};

    fn viewed(category: &str, price: f64) -> EventKind {
        EventKind::ProductViewed {
            product: Product {
                id: "p1".into(),
                category: Some(category.into()),
                price: Some(price),
                ..Product::default()
            },
        }
    }

    #[test]
    fn a_filter_compares_text_without_case_numbers_by_range_and_sets() {
        let f = |tests: Vec<(&str, Test)>| {
            let mut m: BTreeMap<String, Vec<Test>> = BTreeMap::new();
            for (k, t) in tests {
                m.entry(k.into()).or_default().push(t);
            }
            Filter(m)
        };
        let shoes = f(vec![("category", Test::Is(Scalar::Text("Running Shoes".into())))]);
        assert!(shoes.matches(&viewed("running shoes", 10.0)));
        assert!(!shoes.matches(&viewed("Hats", 10.0)));
        let pricey = f(vec![("price", Test::AtLeast(100.0)), ("price", Test::AtMost(200.0))]);
        assert!(pricey.matches(&viewed("x", 150.0)) && !pricey.matches(&viewed("x", 99.0)));
        let set = f(vec![("category", Test::OneOf(vec![Scalar::Text("Hats".into()), Scalar::Text("Caps".into())]))]);
        assert!(set.matches(&viewed("caps", 1.0)) && !set.matches(&viewed("shoes", 1.0)));
        let not = f(vec![("category", Test::NoneOf(vec![Scalar::Text("Gift Cards".into())]))]);
        assert!(not.matches(&viewed("shoes", 1.0)) && !not.matches(&viewed("gift cards", 1.0)));
        let big_cart = f(vec![("value", Test::AtLeast(100.0))]);
        let cart = |value| EventKind::CheckoutStarted { basket: Basket { value, ..Basket::default() } };
        assert!(big_cart.matches(&cart(120.0)) && !big_cart.matches(&cart(80.0)));
        assert!(!big_cart.matches(&viewed("x", 500.0)), "a property the event lacks fails");
        assert_ne!(Signal::new("product_viewed", shoes).key, Signal::new("product_viewed", set).key);
    }
}
