//! The product catalogue emails draw on: titles, links, images, stock,
//! ratings, and recommendations. Fed from a JSON feed file and kept current
//! by the storefront's product webhooks (nudge-sources decodes them into
//! `ProductChange`s). Pure.

use std::collections::BTreeMap;

use nudge_core::ProductChange;

pub use nudge_core::catalogue::{CatalogueProduct, LOW_STOCK_AT};

/// Recommendations per email.
pub const RECOMMENDATIONS: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    products: BTreeMap<String, CatalogueProduct>,
}

#[derive(Debug, thiserror::Error)]
#[error("catalogue feed: {0}")]
pub struct FeedError(String);

impl Catalogue {
    /// A JSON array of products (see `CatalogueProduct`).
    pub fn from_feed(json: &str) -> Result<Catalogue, FeedError> {
        let list: Vec<CatalogueProduct> = serde_json::from_str(json).map_err(|e| FeedError(e.to_string()))?;
        let mut c = Catalogue::default();
        for p in list {
            c.upsert(p);
        }
        Ok(c)
    }

    pub fn upsert(&mut self, p: CatalogueProduct) {
        self.products.insert(p.id.clone(), p);
    }

    /// Applies a product webhook's change.
    pub fn apply(&mut self, change: &ProductChange) {
        match change {
            ProductChange::Upsert(p) => self.upsert(p.clone()),
            ProductChange::Remove { id, .. } => {
                self.products.remove(id);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&CatalogueProduct> {
        self.products.get(id)
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// Products related to `seeds` (same category), never one in `exclude`
    /// (already bought, already in the cart) and never one out of stock.
    /// Best rated first, then by id, so the choice is stable.
    pub fn recommend(&self, seeds: &[&str], exclude: &[&str]) -> Vec<&CatalogueProduct> {
        let categories: Vec<&str> =
            seeds.iter().filter_map(|s| self.products.get(*s)).filter_map(|p| p.category.as_deref()).collect();
        let mut picks: Vec<&CatalogueProduct> = self
            .products
            .values()
            .filter(|p| p.category.as_deref().is_some_and(|c| categories.contains(&c)))
            .filter(|p| !seeds.contains(&p.id.as_str()) && !exclude.contains(&p.id.as_str()))
            .filter(|p| p.in_stock())
            .collect();
        picks.sort_by(|a, b| b.rating.unwrap_or(0.0).total_cmp(&a.rating.unwrap_or(0.0)).then_with(|| a.id.cmp(&b.id)));
        picks.truncate(RECOMMENDATIONS);
        picks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, cat: &str, inventory: Option<i64>, rating: f64) -> CatalogueProduct {
        CatalogueProduct {
            id: id.into(),
            title: id.to_uppercase(),
            category: Some(cat.into()),
            inventory,
            rating: Some(rating),
            available: true,
            ..CatalogueProduct::default()
        }
    }

    fn catalogue() -> Catalogue {
        let mut c = Catalogue::default();
        for p in [
            product("viewed", "shoes", Some(10), 4.0),
            product("bought", "shoes", Some(10), 5.0),
            product("sold-out", "shoes", Some(0), 4.9),
            product("good", "shoes", Some(2), 4.5),
            product("ok", "shoes", None, 3.0),
            product("other-category", "hats", Some(9), 5.0),
        ] {
            c.upsert(p);
        }
        c
    }

    #[test]
    fn recommendations_never_include_bought_or_out_of_stock_products() {
        let c = catalogue();
        let ids: Vec<&str> = c.recommend(&["viewed"], &["bought"]).iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, vec!["good", "ok"], "same category, best rated first");
    }

    #[test]
    fn low_stock_is_flagged_at_three_or_fewer() {
        let c = catalogue();
        assert_eq!(c.get("good").unwrap().low_stock(), Some(2));
        assert_eq!(c.get("viewed").unwrap().low_stock(), None);
        assert_eq!(c.get("sold-out").unwrap().low_stock(), None, "sold out is not 'low'");
    }

    #[test]
    fn a_removed_product_is_gone_and_an_upsert_replaces_the_whole_record() {
        let mut c = catalogue();
        c.apply(&ProductChange::Remove { id: "good".into(), at: None });
        assert!(c.get("good").is_none());
        c.apply(&ProductChange::Upsert(product("ok", "hats", Some(1), 1.0)));
        assert_eq!(c.get("ok").unwrap().category.as_deref(), Some("hats"));
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn a_feed_is_a_json_array_of_products() {
        let c = Catalogue::from_feed(r#"[{"id": "p1", "title": "Runner", "inventory": 0}]"#).unwrap();
        assert!(!c.get("p1").unwrap().in_stock());
        assert!(Catalogue::from_feed(r#"[{"id": "p1"}]"#).is_err(), "a title is required");
    }
}
