//! WooCommerce decoding past the signature check (the harness signs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nudge_sources::signature::sign_base64_sha256;
use nudge_sources::{Delivery, Secret, ShopSources, SourcesConfig, woocommerce};

const TOPICS: [&str; 6] =
    ["order.created", "order.updated", "customer.created", "customer.updated", "customer.deleted", "product.updated"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let config = SourcesConfig {
        shopify_app_secrets: vec![],
        shops: vec![ShopSources { shop: "s".into(), woocommerce_secrets: vec![Secret::new(b"fuzz".to_vec())], ..ShopSources::default() }],
    };
    let mut h = http::HeaderMap::new();
    if pick & 0x80 == 0 {
        // Half the inputs go unsigned, exercising the ping path.
        h.insert("x-wc-webhook-topic", http::HeaderValue::from_static(TOPICS[pick as usize % TOPICS.len()]));
        if let Ok(v) = http::HeaderValue::from_str(&sign_base64_sha256(body, b"fuzz")) {
            h.insert("x-wc-webhook-signature", v);
        }
    }
    let _ = woocommerce::decode(&Delivery { headers: &h, body, received_at: jiff::Timestamp::UNIX_EPOCH }, &config);
});
