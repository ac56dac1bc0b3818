//! Each shop's customer model — RFM cut points and BG/NBD parameters,
//! fitted on its order history by `nudge segments` or the scheduled refit —
//! and what it says about one person now, from their own profile. Rules
//! read it through `segment = "rfm:at_risk"`, `p_alive` and
//! `expected_orders` (docs/analytics.md).

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use nudge_analytics::bgnbd::{self, Customer, Params};
use nudge_analytics::rfm::{History, Rfm, RfmCuts};
use serde::{Deserialize, Serialize};

use crate::profile::Profile;
use crate::time::Secs;

pub const DAY: Secs = 86_400;

/// One shop's model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShopModel {
    /// The last day of orders it was fitted on (days since 1970-01-01, UTC).
    pub until_day: i64,
    /// Customers it was fitted on.
    pub customers: u64,
    /// `None` when the history had no repeat purchase to learn from.
    pub bgnbd: Option<Params>,
    pub rfm: RfmCuts,
}

/// A person's order history as the model reads it, at `now`; `None`
/// before their first order.
pub fn history(p: &Profile, now: Secs) -> Option<(History, Customer)> {
    let (first, last) = (p.orders.first_at?, p.orders.last_at?);
    let day = |t: Secs| t.div_euclid(DAY);
    let today = day(now).max(day(last));
    let h = History {
        days_since_last: (today - day(last)) as f64,
        orders: f64::from(p.orders.count),
        spent: p.orders.revenue,
    };
    let c = Customer {
        x: f64::from(p.orders.days.saturating_sub(1)),
        t_x: (day(last) - day(first)) as f64,
        t: (today - day(first)) as f64,
    };
    Some((h, c))
}

impl ShopModel {
    pub fn rfm(&self, p: &Profile, now: Secs) -> Option<Rfm> {
        history(p, now).map(|(h, _)| self.rfm.score(&h))
    }

    /// The probability the person is still a customer (BG/NBD).
    pub fn p_alive(&self, p: &Profile, now: Secs) -> Option<f64> {
        Some(bgnbd::p_alive(self.bgnbd.as_ref()?, &history(p, now)?.1))
    }

    /// Orders expected from the person in the next `days`.
    pub fn expected_orders(&self, p: &Profile, now: Secs, days: f64) -> Option<f64> {
        Some(bgnbd::expected_purchases(self.bgnbd.as_ref()?, &history(p, now)?.1, days))
    }
}

/// The models of every shop, replaceable while rules are in use (a refit
/// swaps them in whole). Clones share them: every copy of the rules sees
/// a refit.
#[derive(Default, Clone)]
pub struct Models(Arc<RwLock<Arc<BTreeMap<String, ShopModel>>>>);

impl Models {
    pub fn new(models: BTreeMap<String, ShopModel>) -> Models {
        Models(Arc::new(RwLock::new(Arc::new(models))))
    }

    pub fn get(&self, shop: &str) -> Option<ShopModel> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).get(shop).copied()
    }

    pub fn all(&self) -> Arc<BTreeMap<String, ShopModel>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn replace(&self, models: BTreeMap<String, ShopModel>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(models);
    }
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Models").field(&self.all()).finish()
    }
}

impl PartialEq for Models {
    fn eq(&self, other: &Models) -> bool {
        self.all() == other.all()
    }
}

/// The part of a `nudge segments --out` file that rules read:
/// `shops.<shop>.model`. A file with only this is a models file (`nudge
/// serve`'s `models.json`, which holds no person).
#[derive(Serialize, Deserialize)]
struct ModelsFile {
    shops: BTreeMap<String, ModelEntry>,
}

#[derive(Serialize, Deserialize)]
struct ModelEntry {
    model: Option<ShopModel>,
}

/// The `shops.<shop>.model` entries of a `nudge segments --out` file (or
/// of [`to_models_json`]'s).
pub fn from_segments_json(text: &str) -> Result<BTreeMap<String, ShopModel>, String> {
    let file: ModelsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(file.shops.into_iter().filter_map(|(shop, s)| Some((shop, s.model?))).collect())
}

/// A models file [`from_segments_json`] reads: the models and nothing else.
pub fn to_models_json(models: &BTreeMap<String, ShopModel>) -> serde_json::Result<Vec<u8>> {
    let shops = models.iter().map(|(shop, m)| (shop.clone(), ModelEntry { model: Some(*m) })).collect();
    serde_json::to_vec_pretty(&ModelsFile { shops })
}

#[cfg(test)]
mod tests {
    use nudge_analytics::rfm::{Cuts, Segment};

    use super::*;
    use crate::condition::Condition;
    use crate::event::{Event, EventId, EventKind, Identity, Order};

    /// CDNOW's published fit (Fader, Hardie & Lee 2005), α in days.
    fn model() -> ShopModel {
        let cuts = |c: [f64; 4]| Cuts(c);
        ShopModel {
            until_day: 0,
            customers: 2357,
            bgnbd: Some(Params { r: 0.243, alpha: 4.414 * 7.0, a: 0.793, b: 2.426 }),
            // Recency over negated days since the last order.
            rfm: RfmCuts {
                recency: cuts([-200.0, -120.0, -60.0, -20.0]),
                frequency: cuts([1.0, 1.0, 2.0, 4.0]),
                monetary: cuts([20.0, 40.0, 80.0, 160.0]),
            },
        }
    }

    fn order(p: &mut Profile, id: &str, day: i64) {
        let e = Event {
            id: EventId::parse(id).unwrap(),
            shop: "shop".into(),
            occurred_at: jiff::Timestamp::from_second(day * DAY + 3_600).unwrap(),
            identity: Identity { customer_id: Some("c".into()), ..Identity::default() },
            kind: EventKind::OrderPlaced {
                order: Order { id: id.into(), value: 30.0, currency: None, tokens: vec![], product_ids: vec![] },
            },
            trust: Default::default(),
            received_at: None,
            time_zone: None,
        };
        let rules = crate::Triggers::parse("", "t.toml", None).unwrap();
        p.apply(&e, &rules);
    }

    #[test]
    fn purchase_days_count_an_order_on_a_day_that_had_one_once() {
        let mut p = Profile::new("shop", "p1");
        order(&mut p, "o1", 0);
        order(&mut p, "o2", 0);
        order(&mut p, "o1", 0);
        order(&mut p, "o3", 28);
        order(&mut p, "o4", 14);
        assert_eq!((p.orders.count, p.orders.days), (4, 3));
        assert_eq!((p.orders.first_at, p.orders.last_at), (Some(3_600), Some(28 * DAY + 3_600)));
        let (h, c) = history(&p, 70 * DAY + 5).unwrap();
        assert_eq!((h.days_since_last, h.orders, h.spent), (42.0, 4.0, 120.0));
        assert_eq!((c.x, c.t_x, c.t), (2.0, 28.0, 70.0));
        assert_eq!(history(&Profile::new("shop", "p2"), 0), None, "no order, no history");
    }

    #[test]
    fn p_alive_and_expected_orders_are_the_bgnbd_figures_of_the_person_s_own_history() {
        let mut p = Profile::new("shop", "p1");
        for (id, day) in [("o1", 0), ("o2", 14), ("o3", 28)] {
            order(&mut p, id, day);
        }
        let m = model();
        // x = 2, t_x = 28, T = 70 (computed by hand from eq. 11).
        let alive = m.p_alive(&p, 70 * DAY).unwrap();
        assert!((alive - 0.563_631_080_223).abs() < 1e-9, "{alive}");
        let models = Models::new(BTreeMap::from([("shop".to_owned(), m)]));
        let below = |v| Condition::PAlive { above: None, below: Some(v) };
        assert!(below(0.6).eval(&p, 70 * DAY, &models));
        assert!(!below(0.5).eval(&p, 70 * DAY, &models));
        assert!(Condition::PAlive { above: Some(0.5), below: None }.eval(&p, 70 * DAY, &models));
        // Longer quiet, lower odds: a year later they are below 0.3.
        assert!(below(0.3).eval(&p, 400 * DAY, &models));
        let expected = m.expected_orders(&p, 70 * DAY, 90.0).unwrap();
        assert_eq!(
            expected,
            bgnbd::expected_purchases(&m.bgnbd.unwrap(), &Customer { x: 2.0, t_x: 28.0, t: 70.0 }, 90.0)
        );
        let within = crate::time::Dur::from_secs(90 * DAY);
        assert!(Condition::ExpectedOrders { above: Some(expected - 0.01), below: None, within }.eval(
            &p,
            70 * DAY,
            &models
        ));
        // No model for the shop, or no order: never true either way.
        for c in [below(1.0), Condition::PAlive { above: Some(0.0), below: None }] {
            assert!(!c.eval(&p, 70 * DAY, &Models::default()));
            assert!(!c.eval(&Profile::new("shop", "p2"), 70 * DAY, &models));
        }
    }

    #[test]
    fn an_rfm_segment_is_the_person_s_scores_against_the_shop_s_cut_points() {
        let mut p = Profile::new("shop", "p1");
        for (id, day) in [("o1", 0), ("o2", 10), ("o3", 20), ("o4", 30), ("o5", 40)] {
            order(&mut p, id, day);
        }
        let models = Models::new(BTreeMap::from([("shop".to_owned(), model())]));
        // 5 orders (F 5), 150 spent (M 4); 10 days after the last order R 5,
        // 100 days R 3, 300 days R 1.
        for (days_after, r, segment) in
            [(10, 5, Segment::Champions), (100, 3, Segment::Loyal), (300, 1, Segment::CantLose)]
        {
            let now = (40 + days_after) * DAY;
            let rfm = models.get("shop").unwrap().rfm(&p, now).unwrap();
            assert_eq!(
                (rfm.recency, rfm.frequency, rfm.monetary, rfm.segment),
                (r, 5, 4, segment),
                "{days_after} days"
            );
            assert!(Condition::Rfm(segment).eval(&p, now, &models));
            assert!(!Condition::Rfm(Segment::AtRisk).eval(&p, now, &models));
        }
    }
}
