//! The catalogue each shop's emails render from: the feed file, overlaid
//! with what the shop's product webhooks reported (stored through the
//! [`CatalogueStore`] port, so it survives restarts and is shared between
//! Lambda functions).
//!
//! In `nudge serve` the process that stores a change also applies it here,
//! so the next email sees it at once. On Lambda the webhook and the check
//! run in different functions: the check function reloads a shop's changes
//! once they are older than a set age.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use nudge_content::Catalogue;
use nudge_core::ProductChange;

use crate::ports::{CatalogueStore, StoreError};

struct ShopCatalogue {
    catalogue: Arc<Catalogue>,
    loaded: Instant,
}

pub struct Catalogues {
    feed: Arc<Catalogue>,
    /// `None`: this process sees every change itself and never reloads.
    max_age: Option<Duration>,
    shops: RwLock<HashMap<String, ShopCatalogue>>,
}

impl Catalogues {
    /// For a process that applies every change itself (`nudge serve`).
    pub fn new(feed: Catalogue) -> Catalogues {
        Catalogues { feed: Arc::new(feed), max_age: None, shops: RwLock::default() }
    }

    /// For a process that only reads (the Lambda check function): a shop's
    /// changes are reloaded from the store once older than `max_age`.
    pub fn reloading(feed: Catalogue, max_age: Duration) -> Catalogues {
        Catalogues { max_age: Some(max_age), ..Catalogues::new(feed) }
    }

    /// The shop's catalogue as this process last saw it.
    pub fn get(&self, shop: &str) -> Arc<Catalogue> {
        let shops = self.shops.read().unwrap_or_else(|e| e.into_inner());
        shops.get(shop).map_or_else(|| self.feed.clone(), |s| s.catalogue.clone())
    }

    /// Applies changes this process has just stored.
    pub fn apply(&self, shop: &str, changes: &[ProductChange]) {
        let mut shops = self.shops.write().unwrap_or_else(|e| e.into_inner());
        let entry = shops
            .entry(shop.to_owned())
            .or_insert_with(|| ShopCatalogue { catalogue: self.feed.clone(), loaded: Instant::now() });
        let catalogue = Arc::make_mut(&mut entry.catalogue);
        for c in changes {
            catalogue.apply(c);
        }
    }

    /// The feed overlaid with every change stored for the shop.
    pub fn load(&self, shop: &str, stored: &[ProductChange]) {
        let mut catalogue = (*self.feed).clone();
        for c in stored {
            catalogue.apply(c);
        }
        let fresh = ShopCatalogue { catalogue: Arc::new(catalogue), loaded: Instant::now() };
        self.shops.write().unwrap_or_else(|e| e.into_inner()).insert(shop.to_owned(), fresh);
    }

    /// The shop's catalogue, reloaded from `store` first when what this
    /// process holds is older than the set age (or was never loaded).
    pub async fn current<S: CatalogueStore>(&self, store: &S, shop: &str) -> Result<Arc<Catalogue>, StoreError> {
        if let Some(max_age) = self.max_age {
            let stale = {
                let shops = self.shops.read().unwrap_or_else(|e| e.into_inner());
                shops.get(shop).is_none_or(|s| s.loaded.elapsed() >= max_age)
            };
            if stale {
                self.load(shop, &store.products(shop).await?);
            }
        }
        Ok(self.get(shop))
    }
}

#[cfg(test)]
mod tests {
    use nudge_content::CatalogueProduct;

    use super::*;
    use crate::memory::MemoryStore;
    use crate::now_or_never;

    fn product(id: &str, inventory: i64) -> CatalogueProduct {
        CatalogueProduct {
            id: id.into(),
            title: id.into(),
            inventory: Some(inventory),
            available: true,
            ..Default::default()
        }
    }

    fn feed() -> Catalogue {
        let mut c = Catalogue::default();
        c.upsert(product("tee", 10));
        c.upsert(product("cap", 10));
        c
    }

    #[test]
    fn webhook_changes_overlay_the_feed_for_their_shop_only() {
        let c = Catalogues::new(feed());
        c.apply(
            "a.example",
            &[ProductChange::Upsert(product("tee", 2)), ProductChange::Remove { id: "cap".into(), at: None }],
        );
        assert_eq!(c.get("a.example").get("tee").and_then(|p| p.low_stock()), Some(2));
        assert!(c.get("a.example").get("cap").is_none(), "a product deleted in the store hides the feed's copy");
        assert_eq!(c.get("b.example").get("tee").and_then(|p| p.inventory), Some(10), "other shops keep the feed");
    }

    #[test]
    fn a_reloading_catalogue_reads_the_store_once_its_copy_is_too_old() {
        let store = MemoryStore::default();
        let fresh = Catalogues::reloading(feed(), Duration::from_secs(3600));
        let always = Catalogues::reloading(feed(), Duration::ZERO);
        now_or_never(store.put_products("a.example", &[ProductChange::Upsert(product("tee", 1))])).unwrap();
        for c in [&fresh, &always] {
            let got = now_or_never(c.current(&store, "a.example")).unwrap();
            assert_eq!(got.get("tee").and_then(|p| p.inventory), Some(1), "first use loads the stored changes");
        }
        now_or_never(store.put_products("a.example", &[ProductChange::Remove { id: "tee".into(), at: None }])).unwrap();
        assert!(now_or_never(fresh.current(&store, "a.example")).unwrap().get("tee").is_some(), "within the age");
        assert!(now_or_never(always.current(&store, "a.example")).unwrap().get("tee").is_none(), "past the age");
    }

    #[test]
    fn a_late_retry_of_an_older_product_update_does_not_undo_a_newer_one() {
        let store = MemoryStore::default();
        let at = |s: &str| Some(s.parse::<jiff::Timestamp>().unwrap());
        let version = |inventory, when| {
            ProductChange::Upsert(CatalogueProduct { updated_at: at(when), ..product("tee", inventory) })
        };
        let newer = version(1, "2026-11-01T10:00:00Z");
        assert_eq!(now_or_never(store.put_products("a.example", std::slice::from_ref(&newer))).unwrap(), vec![newer]);
        let older = version(9, "2026-11-01T09:00:00Z");
        assert!(now_or_never(store.put_products("a.example", &[older])).unwrap().is_empty(), "stale: not recorded");
        let c = Catalogues::reloading(feed(), Duration::ZERO);
        assert_eq!(now_or_never(c.current(&store, "a.example")).unwrap().get("tee").and_then(|p| p.inventory), Some(1));
        // A deletion after the newer update applies; the old update retried after it does not bring it back.
        let gone = ProductChange::Remove { id: "tee".into(), at: at("2026-11-01T11:00:00Z") };
        assert_eq!(now_or_never(store.put_products("a.example", std::slice::from_ref(&gone))).unwrap(), vec![gone]);
        assert!(
            now_or_never(store.put_products("a.example", &[version(9, "2026-11-01T09:00:00Z")])).unwrap().is_empty()
        );
        assert!(now_or_never(c.current(&store, "a.example")).unwrap().get("tee").is_none());
    }
}
