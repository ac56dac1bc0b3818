//! The Segment-compatible tracking API and webhook destination, fed the
//! request bodies from Segment's HTTP API documentation.

use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use jiff::Timestamp;
use nudge_sources::segment_api::{self, Endpoint};
use nudge_sources::signature::sign_hex_sha1;
use nudge_sources::{Accepted, Delivery, Rejection, Secret, ShopSources, SourcesConfig};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/segment");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn config() -> SourcesConfig {
    SourcesConfig {
        shopify_app_secrets: vec![],
        shops: vec![ShopSources {
            shop: "acme".into(),
            segment_write_keys: vec![Secret::new(b"YOUR_WRITE_KEY".to_vec())],
            segment_webhook_secrets: vec![Secret::new(b"hook-secret".to_vec())],
            ..ShopSources::default()
        }],
    }
}

fn call(endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Result<Accepted, Rejection> {
    let d = Delivery { headers, body, received_at: "2026-10-06T14:00:00Z".parse::<Timestamp>().unwrap() };
    segment_api::decode(endpoint, &d, &config())
}

fn basic(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let v = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")));
    h.insert("authorization", HeaderValue::from_str(&v).unwrap());
    h
}

fn count(r: Result<Accepted, Rejection>) -> usize {
    match r {
        Ok(Accepted::Events(e)) => e.len(),
        other => panic!("expected events, got {other:?}"),
    }
}

#[test]
fn documented_single_calls_decode_with_the_write_key_in_the_body() {
    for (endpoint, file) in [
        ("/v1/identify", "http-api.v1-identify.json"),
        ("/v1/track", "http-api.v1-track.json"),
        ("/v1/page", "http-api.v1-page.json"),
    ] {
        let ep = Endpoint::from_path(endpoint).unwrap();
        assert_eq!(count(call(ep, &HeaderMap::new(), &fixture(file))), 1, "{file}");
    }
}

#[test]
fn the_single_call_type_comes_from_the_path() {
    let r = call(Endpoint::Single("track"), &HeaderMap::new(), &fixture("http-api.v1-track.json"));
    let Ok(Accepted::Events(e)) = r else { panic!() };
    assert_eq!(e[0].kind.name(), "Item Purchased", "an unknown track name stays a custom event");
    assert_eq!(e[0].shop, "acme");
}

#[test]
fn the_documented_batch_is_rejected_for_its_invalid_timestamps_naming_the_message() {
    // Segment's own example uses "2015-2-02T00:30:08.276Z" (one-digit month).
    let r = call(Endpoint::Batch, &HeaderMap::new(), &fixture("http-api.v1-batch.json"));
    match r {
        Err(Rejection::MalformedJson(m)) => assert!(m.starts_with("message 2:"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_documented_batch_with_valid_timestamps_decodes_every_message() {
    let body = String::from_utf8(fixture("http-api.v1-batch.json")).unwrap().replace("2015-2-02", "2015-02-02");
    assert_eq!(count(call(Endpoint::Batch, &HeaderMap::new(), body.as_bytes())), 4);
}

#[test]
fn the_write_key_may_come_as_basic_auth_username() {
    let body =
        br#"{"batch":[{"type":"track","event":"Product Viewed","userId":"u1","properties":{"product_id":"p1"}}]}"#;
    assert_eq!(count(call(Endpoint::Batch, &basic("YOUR_WRITE_KEY"), body)), 1);
}

#[test]
fn an_unknown_or_missing_write_key_is_401() {
    let body = br#"{"batch":[{"type":"track","event":"x","userId":"u1"}]}"#;
    assert_eq!(call(Endpoint::Batch, &basic("wrong"), body).map_err(|e| e.status()), Err(401));
    assert_eq!(call(Endpoint::Batch, &HeaderMap::new(), body).map_err(|e| e.status()), Err(401));
}

#[test]
fn malformed_json_and_oversized_messages_are_permanent_400s() {
    let h = basic("YOUR_WRITE_KEY");
    assert_eq!(call(Endpoint::Batch, &h, b"{\"batch\": [").map_err(|e| e.status()), Err(400));
    let big = format!(
        r#"{{"batch":[{{"type":"track","event":"x","userId":"u","properties":{{"pad":"{}"}}}}]}}"#,
        "x".repeat(33 * 1024)
    );
    assert_eq!(call(Endpoint::Batch, &h, big.as_bytes()).map_err(|e| e.status()), Err(400));
    let huge = vec![b' '; segment_api::MAX_BATCH + 1];
    assert_eq!(call(Endpoint::Batch, &h, &huge).map_err(|e| e.status()), Err(400));
}

#[test]
fn a_message_without_identity_rejects_the_call_with_its_index() {
    let body = br#"{"batch":[{"type":"track","event":"x","userId":"u"},{"type":"track","event":"y"}]}"#;
    match call(Endpoint::Batch, &basic("YOUR_WRITE_KEY"), body) {
        Err(Rejection::Invalid(m)) => assert!(m.contains("message 1"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_without_message_id_get_a_stable_id_from_their_bytes() {
    let body = br#"{"batch":[{"type":"track","event":"x","userId":"u"}]}"#;
    let id = |r: Result<Accepted, Rejection>| match r {
        Ok(Accepted::Events(e)) => e[0].id.clone(),
        other => panic!("{other:?}"),
    };
    let a = id(call(Endpoint::Batch, &basic("YOUR_WRITE_KEY"), body));
    let b = id(call(Endpoint::Batch, &basic("YOUR_WRITE_KEY"), body));
    assert_eq!(a, b, "a retried batch dedupes");
}

#[test]
fn segment_webhook_destination_signature_is_verified() {
    // The destination forwards whole messages, as in the spec's example.
    let body = fixture("spec.track.json");
    let mut h = HeaderMap::new();
    h.insert("x-signature", HeaderValue::from_str(&sign_hex_sha1(&body, b"hook-secret")).unwrap());
    let d = Delivery { headers: &h, body: &body, received_at: Timestamp::UNIX_EPOCH };
    assert_eq!(count(segment_api::decode_webhook(&d, &config())), 1);

    let mut wrong = HeaderMap::new();
    wrong.insert("x-signature", HeaderValue::from_str(&sign_hex_sha1(&body, b"other")).unwrap());
    let d = Delivery { headers: &wrong, body: &body, received_at: Timestamp::UNIX_EPOCH };
    assert_eq!(segment_api::decode_webhook(&d, &config()).map_err(|e| e.status()), Err(401));

    let d = Delivery { headers: &HeaderMap::new(), body: &body, received_at: Timestamp::UNIX_EPOCH };
    assert_eq!(segment_api::decode_webhook(&d, &config()).map_err(|e| e.status()), Err(401));
}
