//! nudge-sources: raw deliveries from storefronts and trackers into core
//! events. Pure: headers and body bytes in, events or a typed rejection out.

pub mod config;
pub mod delivery;
pub mod encoding;
pub mod segment;
pub mod segment_api;
mod serde_util;
pub mod ses;
pub mod shop;
pub mod shopify;
pub mod signature;
pub mod woocommerce;
pub mod zone;

pub use config::{KeyKind, Secret, ShopSources, SourcesConfig};
pub use delivery::{Accepted, Delivery, Rejection};
pub use segment::{SegmentError, SegmentMessage};
pub use shop::ShopDomain;
