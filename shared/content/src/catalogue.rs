//! The product catalogue emails draw on: titles, links, images, stock,
//! ratings, and recommendations. Fed from a JSON feed file or from Shopify
//! `products/create` / `products/update` payloads. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// At or below this many units a product is flagged "only N left".
pub const LOW_STOCK_AT: i64 = 3;
/// Recommendations per email.
pub const RECOMMENDATIONS: usize = 4;

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

    /// A Shopify `products/create` / `products/update` payload: stock summed
    /// over variants, the lowest variant price, the first image.
    pub fn upsert_shopify(&mut self, payload: &[u8], shop_url: &str) -> Result<(), FeedError> {
        #[derive(Deserialize)]
        struct Variant {
            price: Option<String>,
            inventory_quantity: Option<i64>,
        }
        #[derive(Deserialize)]
        struct Image {
            src: Option<String>,
        }
        #[derive(Deserialize)]
        struct P {
            id: serde_json::Value,
            title: String,
            handle: Option<String>,
            product_type: Option<String>,
            status: Option<String>,
            #[serde(default)]
            variants: Vec<Variant>,
            image: Option<Image>,
        }
        let p: P = serde_json::from_slice(payload).map_err(|e| FeedError(e.to_string()))?;
        let id = match &p.id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let tracked: Vec<i64> = p.variants.iter().filter_map(|v| v.inventory_quantity).collect();
        self.upsert(CatalogueProduct {
            id,
            title: p.title,
            url: p.handle.map(|h| format!("{}/products/{h}", shop_url.trim_end_matches('/'))),
            image: p.image.and_then(|i| i.src),
            price: p.variants.iter().filter_map(|v| v.price.as_deref()?.parse::<f64>().ok()).reduce(f64::min),
            currency: None,
            category: p.product_type.filter(|t| !t.is_empty()),
            inventory: (!tracked.is_empty()).then(|| tracked.iter().map(|n| (*n).max(0)).sum()),
            available: p.status.as_deref().is_none_or(|s| s == "active"),
            rating: None,
            review_count: None,
        });
        Ok(())
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
    fn shopify_product_payloads_feed_the_catalogue() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/shopify/products__update.json"
        ))
        .unwrap();
        let mut c = Catalogue::default();
        c.upsert_shopify(&body, "https://shop.example").unwrap();
        let p = c.get("788032119674292922").unwrap();
        assert_eq!(p.title, "Example T-Shirt");
        assert_eq!(p.inventory, Some(125), "75 + 50 over the variants");
        assert_eq!(p.price, Some(19.99));
        assert_eq!(p.url.as_deref(), Some("https://shop.example/products/example-t-shirt"));
        assert!(p.in_stock());
    }

    #[test]
    fn a_feed_is_a_json_array_of_products() {
        let c = Catalogue::from_feed(r#"[{"id": "p1", "title": "Runner", "inventory": 0}]"#).unwrap();
        assert!(!c.get("p1").unwrap().in_stock());
        assert!(Catalogue::from_feed(r#"[{"id": "p1"}]"#).is_err(), "a title is required");
    }
}
