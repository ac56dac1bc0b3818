//! The tracking API: batches and single calls with a valid write key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nudge_sources::segment_api::{self, Endpoint};
use nudge_sources::{Delivery, Secret, ShopSources, SourcesConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let config = SourcesConfig {
        shopify_app_secrets: vec![],
        shops: vec![ShopSources { shop: "s".into(), segment_write_keys: vec![Secret::new(b"k".to_vec())], ..ShopSources::default() }],
    };
    let mut h = http::HeaderMap::new();
    h.insert("authorization", http::HeaderValue::from_static("Basic azo="));
    let endpoint = match pick % 4 {
        0 => Endpoint::Batch,
        1 => Endpoint::Single("track"),
        2 => Endpoint::Single("identify"),
        _ => Endpoint::Single("page"),
    };
    let _ = segment_api::decode(endpoint, &Delivery { headers: &h, body, received_at: jiff::Timestamp::UNIX_EPOCH }, &config);
});
