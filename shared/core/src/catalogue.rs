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
    /// Deleted from the store: no email may show it any more.
    Remove { id: String },
}

impl ProductChange {
    pub fn id(&self) -> &str {
        match self {
            ProductChange::Upsert(p) => &p.id,
            ProductChange::Remove { id } => id,
        }
    }
}
