//! The raw form of `triggers.toml`, as serde reads it (with spans, for
//! errors that point at the place to fix). Only the compiler reads it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::time::Dur;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRules {
    #[serde(default)]
    pub(super) policy: RawPolicy,
    #[serde(default)]
    pub(super) segments: BTreeMap<String, Spanned<RawCond>>,
    #[serde(default)]
    pub(super) custom_events: Vec<Spanned<String>>,
    #[serde(default, rename = "offer")]
    pub(super) offers: Vec<RawOffer>,
    #[serde(default, rename = "trigger")]
    pub(super) triggers: Vec<Spanned<RawTrigger>>,
    pub(super) recovery_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOffer {
    pub(super) segment: Spanned<String>,
    pub(super) text: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) require_consent: Option<bool>,
    pub(super) max_per_day: Option<Spanned<u32>>,
    pub(super) max_per_week: Option<Spanned<u32>>,
    pub(super) quiet_hours: Option<Spanned<RawQuietHours>>,
    pub(super) max_lateness: Option<Spanned<Dur>>,
    pub(super) outrank_window: Option<Dur>,
    pub(super) best_hour: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuietHours {
    pub(super) from: Spanned<String>,
    pub(super) to: Spanned<String>,
    pub(super) time_zone: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrigger {
    pub(super) id: Spanned<String>,
    #[serde(default)]
    pub(super) priority: i64,
    pub(super) on: Option<Spanned<String>>,
    #[serde(rename = "where")]
    pub(super) filter: Option<Spanned<RawWhere>>,
    pub(super) when: Option<Spanned<RawCond>>,
    #[serde(rename = "if")]
    pub(super) only_if: Option<Spanned<RawCond>>,
    pub(super) delay: Option<Dur>,
    pub(super) after_inactive: Option<Dur>,
    #[serde(default)]
    pub(super) cancel_if: Vec<Spanned<String>>,
    pub(super) cooldown: Option<Dur>,
    pub(super) max_lateness: Option<Spanned<Dur>>,
    pub(super) send_at: Option<Spanned<String>>,
    pub(super) max_wait: Option<Spanned<Dur>>,
    pub(super) template: Spanned<String>,
    pub(super) subject: Option<String>,
    #[serde(default)]
    pub(super) variants: Option<Spanned<Vec<Spanned<RawVariant>>>>,
    pub(super) holdout: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariant {
    pub(super) id: Spanned<String>,
    #[serde(default = "default_weight")]
    pub(super) weight: u32,
    pub(super) subject: Option<String>,
    pub(super) template: Option<Spanned<String>>,
    pub(super) offer: Option<String>,
    pub(super) delay: Option<Dur>,
    #[serde(default)]
    pub(super) factors: std::collections::BTreeMap<String, String>,
}

fn default_weight() -> u32 {
    1
}

/// A condition table. Several keys in one table all have to hold.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCond {
    pub(super) all: Option<Vec<Spanned<RawCond>>>,
    pub(super) any: Option<Vec<Spanned<RawCond>>>,
    pub(super) not: Option<Box<Spanned<RawCond>>>,
    pub(super) count: Option<Spanned<String>>,
    #[serde(rename = "where")]
    pub(super) filter: Option<Spanned<RawWhere>>,
    pub(super) at_least: Option<Spanned<u32>>,
    pub(super) at_most: Option<Spanned<u32>>,
    pub(super) within: Option<Dur>,
    pub(super) same_product: Option<bool>,
    pub(super) same_category: Option<bool>,
    pub(super) inactive_for: Option<Dur>,
    pub(super) first_seen_within: Option<Dur>,
    pub(super) orders_at_least: Option<u32>,
    pub(super) orders_at_most: Option<u32>,
    pub(super) cart_value_at_least: Option<f64>,
    pub(super) cart_value_at_most: Option<f64>,
    pub(super) spent_at_least: Option<f64>,
    pub(super) spent_at_most: Option<f64>,
    pub(super) average_order_at_least: Option<f64>,
    pub(super) average_order_at_most: Option<f64>,
    pub(super) last_order_within: Option<Dur>,
    pub(super) last_order_before: Option<Dur>,
    pub(super) engaged_within: Option<Dur>,
    pub(super) segment: Option<Spanned<String>>,
    pub(super) p_alive: Option<Spanned<RawBand>>,
    pub(super) expected_orders: Option<Spanned<RawBand>>,
    pub(super) sent: Option<Spanned<String>>,
    pub(super) opened: Option<Spanned<String>>,
    pub(super) clicked: Option<Spanned<String>>,
}

/// `{ above = …, below = … }` for a figure of the customer model, with a
/// horizon (`within`) for expected orders.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBand {
    pub(super) above: Option<f64>,
    pub(super) below: Option<f64>,
    pub(super) within: Option<Dur>,
}

/// `where = { property = test, … }`.
pub(super) type RawWhere = BTreeMap<String, Spanned<RawTest>>;

/// A value (equality) or a table of comparisons.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawTest {
    Value(crate::filter::Scalar),
    Ops(RawOps),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOps {
    #[serde(rename = "in")]
    pub(super) one_of: Option<Vec<crate::filter::Scalar>>,
    pub(super) not_in: Option<Vec<crate::filter::Scalar>>,
    pub(super) at_least: Option<f64>,
    pub(super) at_most: Option<f64>,
}

/// A part of the rules that does not read: where, and why.
pub(super) type Unreadable = (std::ops::Range<usize>, String);

impl RawRules {
    /// The rules in a parsed document, each section, segment, offer and
    /// trigger read on its own: the ones that do not read are left out and
    /// their errors returned, so that one mistake does not hide the rest.
    pub(super) fn read(table: toml::de::DeTable<'_>) -> (RawRules, Vec<Unreadable>) {
        use toml::de::{DeValue, ValueDeserializer};
        let mut raw = RawRules::default();
        let mut errors: Vec<Unreadable> = Vec::new();
        fn read_one<'i, T: Deserialize<'i>>(v: Spanned<DeValue<'i>>, errors: &mut Vec<Unreadable>) -> Option<T> {
            let span = v.span();
            T::deserialize(ValueDeserializer::from(v))
                .map_err(|e| errors.push((e.span().unwrap_or(span), e.message().trim().to_owned())))
                .ok()
        }
        fn items<'i>(v: Spanned<DeValue<'i>>, errors: &mut Vec<Unreadable>) -> Vec<Spanned<DeValue<'i>>> {
            let span = v.span();
            match v.into_inner() {
                DeValue::Array(a) => a.into_iter().collect(),
                _ => {
                    errors.push((span, "expected an array".into()));
                    Vec::new()
                }
            }
        }
        for (key, value) in table {
            let key_span = key.span();
            match key.get_ref().as_ref() {
                "policy" => raw.policy = read_one(value, &mut errors).unwrap_or_default(),
                "custom_events" => raw.custom_events = read_one(value, &mut errors).unwrap_or_default(),
                "recovery_url" => raw.recovery_url = read_one(value, &mut errors),
                "segments" => {
                    let span = value.span();
                    match value.into_inner() {
                        DeValue::Table(t) => {
                            for (name, cond) in t {
                                if let Some(c) = read_one(cond, &mut errors) {
                                    raw.segments.insert(name.into_inner().into_owned(), c);
                                }
                            }
                        }
                        _ => errors.push((span, "expected a table of named conditions".into())),
                    }
                }
                "offer" => {
                    raw.offers = items(value, &mut errors).into_iter().filter_map(|v| read_one(v, &mut errors)).collect()
                }
                "trigger" => {
                    raw.triggers =
                        items(value, &mut errors).into_iter().filter_map(|v| read_one(v, &mut errors)).collect()
                }
                other => errors.push((
                    key_span,
                    format!(
                        "unknown field `{other}`, expected one of `policy`, `segments`, `custom_events`, `offer`, `trigger`, `recovery_url`"
                    ),
                )),
            }
        }
        (raw, errors)
    }
}
