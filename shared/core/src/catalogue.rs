//! One product as emails show it: the record a catalogue feed file holds and
//! a storefront's product webhooks keep current. The catalogue itself
//! (lookup, recommendations) lives in nudge-content.

use serde::{Deserialize, Serialize};

/// At or below this many units a product is flagged "only N left".
pub const LOW_STOCK_AT: i64 = 3;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueProduct {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub price: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// Units in stock; `None` when not tracked.
    #[serde(default)]
    pub inventory: Option<i64>,
    #[serde(default = "yes")]
    pub available: bool,
    #[serde(default)]
    pub rating: Option<f64>,
    #[serde(default)]
    pub review_count: Option<u32>,
    /// When the store last changed it (from a product webhook): a change
    /// older than the one kept is stale and is not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<jiff::Timestamp>,
}

fn yes() -> bool {
    true
}

impl CatalogueProduct {
    pub fn in_stock(&self) -> bool {
        self.available && self.inventory.is_none_or(|n| n > 0)
    }

    pub fn low_stock(&self) -> Option<i64> {
        self.inventory.filter(|n| *n > 0 && *n <= LOW_STOCK_AT)
    }
}

/// What a product webhook asks of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductChange {
    /// Created or updated: the whole current record.
    Upsert(CatalogueProduct),
    /// Deleted from the store (`at`: when, if known): no email may show it
    /// any more.
    Remove { id: String, at: Option<jiff::Timestamp> },
}

impl ProductChange {
    pub fn id(&self) -> &str {
        match self {
            ProductChange::Upsert(p) => &p.id,
            ProductChange::Remove { id, .. } => id,
        }
    }

    /// When the change happened in the store, if known.
    pub fn at(&self) -> Option<jiff::Timestamp> {
        match self {
            ProductChange::Upsert(p) => p.updated_at,
            ProductChange::Remove { at, .. } => *at,
        }
    }

    /// Whether this change may replace one made at `kept` (the store keeps
    /// the newest: webhooks can arrive late or out of order, and a retry of
    /// an old update must not undo a newer one). Unknown times always apply.
    pub fn supersedes(&self, kept: Option<jiff::Timestamp>) -> bool {
        match (self.at(), kept) {
            (Some(new), Some(old)) => new >= old,
            _ => true,
        }
    }
}
