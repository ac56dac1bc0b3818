//! Shopify decoding past the signature check: the harness signs whatever
//! body the fuzzer makes, for one of the topics, so the decoders are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nudge_sources::signature::sign_base64_sha256;
use nudge_sources::{Delivery, Secret, ShopSources, SourcesConfig, shopify};

const TOPICS: [&str; 12] = [
    "checkouts/create",
    "checkouts/update",
    "carts/create",
    "orders/create",
    "orders/paid",
    "orders/cancelled",
    "customers/create",
    "customers_email_marketing_consent/update",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
    "products/update",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    // The shop must be one the configuration serves, or nothing is decoded.
    let config = SourcesConfig {
        shopify_app_secrets: vec![Secret::new(b"fuzz".to_vec())],
        shops: vec![ShopSources { shop: "fuzz.myshopify.com".into(), ..ShopSources::default() }],
    };
    let mut h = http::HeaderMap::new();
    h.insert("x-shopify-topic", http::HeaderValue::from_static(TOPICS[pick as usize % TOPICS.len()]));
    h.insert("x-shopify-shop-domain", http::HeaderValue::from_static("fuzz.myshopify.com"));
    h.insert("x-shopify-event-id", http::HeaderValue::from_static("e"));
    if let Ok(v) = http::HeaderValue::from_str(&sign_base64_sha256(body, b"fuzz")) {
        h.insert("x-shopify-hmac-sha256", v);
    }
    let _ = shopify::decode(&Delivery { headers: &h, body, received_at: jiff::Timestamp::UNIX_EPOCH }, &config);
});
