//! Writes `events/`: a sample invocation payload for every function, signed
//! with the documented test secrets (events/README.md). Run with
//! `cargo run -p nudge-aws --example make_events`; the emulator tests feed
//! these files to the handlers, so a stale sample fails `make test`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use nudge_app::unsubscribe::UnsubscribeKey;
use nudge_sources::signature::sign_base64_sha256;
use serde_json::{Value, json};

pub const SHOP: &str = "acme.myshopify.com";
pub const SHOPIFY_SECRET: &str = "nudge-test-secret";
pub const WOOCOMMERCE_SECRET: &str = "nudge-test-secret";
pub const WRITE_KEY: &str = "nudge-test-write-key";
pub const UNSUBSCRIBE_KEY: &str = "nudge-test-unsubscribe-key";
pub const ALIAS_KEY: &str = "nudge-test-alias-key";
/// The cart reminder's delay in the rules local runs use (examples/demo).
const DEMO_CART_DELAY_SECS: i64 = 3;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> Vec<u8> {
    let p = repo().join("fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A Lambda function URL request (HTTP API v2 payload) with the body as
/// base64, so the signed bytes arrive exactly.
fn url_request(method: &str, path: &str, query: &str, headers: &[(&str, String)], body: &[u8]) -> Value {
    let mut h = serde_json::Map::new();
    for (k, v) in headers {
        h.insert(k.to_ascii_lowercase(), json!(v));
    }
    h.insert("host".into(), json!("abcdefghij.lambda-url.us-east-1.on.aws"));
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "nudge-sample" },
            "requestId": "00000000-0000-4000-8000-000000000000",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:18:00:00 +0000",
            "timeEpoch": 1795888800000u64
        },
        "body": STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// The same request as the optional API Gateway HTTP API delivers it: its
/// own route key and domain, the JSON body as text (not base64).
fn via_http_api(mut v: Value, route_key: &str) -> Value {
    let domain = "abcdefghij.execute-api.us-east-1.amazonaws.com";
    v["routeKey"] = json!(route_key);
    v["requestContext"]["routeKey"] = json!(route_key);
    v["requestContext"]["domainName"] = json!(domain);
    v["requestContext"]["accountId"] = json!("123456789012");
    v["headers"]["host"] = json!(domain);
    let body = STANDARD.decode(v["body"].as_str().unwrap_or_default()).unwrap();
    v["body"] = json!(String::from_utf8(body).unwrap());
    v["isBase64Encoded"] = json!(false);
    v
}

fn shopify(topic: &str, file: &str, event_id: &str) -> Value {
    shopify_body(topic, &shopify_fixture(file), event_id)
}

fn shopify_fixture(file: &str) -> Value {
    let mut body: Value = serde_json::from_slice(&fixture(&format!("shopify/{file}"))).unwrap();
    if body.get("shop_domain").is_some() {
        body["shop_domain"] = json!(SHOP);
    }
    body
}

/// Shopify's checkout sample for a customer who agreed to marketing email
/// (the sample carries no consent), so it leads to a reminder.
fn consenting_checkout() -> Value {
    let mut body = shopify_fixture("checkouts__create.json");
    body["customer"]["email_marketing_consent"] = json!({
        "state": "subscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": body["updated_at"].clone(),
    });
    body
}

/// The check the sample checkout arms under examples/demo: its profile
/// (named after the customer id, as ingest names a new profile), episode 1,
/// due one cart delay after the checkout.
fn sample_check(checkout: &Value) -> Value {
    let customer = checkout["customer"]["id"].to_string();
    let identity = nudge_core::Identity { customer_id: Some(customer), ..nudge_core::Identity::default() };
    let key = nudge_app::AliasKey::new(ALIAS_KEY);
    let first = &nudge_app::identity::aliases(&identity, &key)[0];
    let profile = nudge_app::identity::new_profile_id(SHOP, first);
    let at: Timestamp = checkout["updated_at"].as_str().unwrap().parse().unwrap();
    let due = at + jiff::SignedDuration::from_secs(DEMO_CART_DELAY_SECS);
    json!({ "shop": SHOP, "profile": profile, "trigger": "cart-abandoned", "episode": 1, "due": due.to_string() })
}

fn shopify_body(topic: &str, body: &Value, event_id: &str) -> Value {
    let bytes = serde_json::to_vec_pretty(body).unwrap();
    url_request(
        "POST",
        "/webhooks/shopify",
        "",
        &[
            ("Content-Type", "application/json".into()),
            ("X-Shopify-Topic", topic.into()),
            ("X-Shopify-Shop-Domain", SHOP.into()),
            ("X-Shopify-API-Version", "2025-10".into()),
            ("X-Shopify-Webhook-Id", format!("wh-{event_id}")),
            ("X-Shopify-Event-Id", event_id.into()),
            ("X-Shopify-Hmac-Sha256", sign_base64_sha256(&bytes, SHOPIFY_SECRET.as_bytes())),
        ],
        &bytes,
    )
}

fn write(dir: &Path, name: &str, v: &Value) {
    let text = serde_json::to_string_pretty(v).unwrap() + "\n";
    std::fs::write(dir.join(name), text).unwrap();
    println!("events/{name}");
}

fn main() {
    let dir = repo().join("events");
    std::fs::create_dir_all(&dir).unwrap();
    let checkout = consenting_checkout();
    write(&dir, "shopify-webhook.checkouts-create.json", &shopify_body("checkouts/create", &checkout, "evt-sample-1"));
    write(&dir, "shopify-webhook.orders-create.json", &shopify("orders/create", "orders__create.json", "evt-sample-2"));
    write(
        &dir,
        "shopify-webhook.customers-redact.json",
        &shopify("customers/redact", "customers__redact.json", "evt-sample-3"),
    );

    write(
        &dir,
        "shopify-webhook.http-api-orders-paid.json",
        &via_http_api(shopify("orders/paid", "orders__paid.json", "evt-sample-4"), "POST /webhooks/shopify"),
    );

    let order = fixture("woocommerce/order.update.json");
    write(
        &dir,
        "woocommerce-webhook.order-updated.json",
        &url_request(
            "POST",
            "/webhooks/woocommerce",
            "",
            &[
                ("Content-Type", "application/json".into()),
                ("X-WC-Webhook-Source", "https://shop.example.com/".into()),
                ("X-WC-Webhook-Topic", "order.updated".into()),
                ("X-WC-Webhook-Resource", "order".into()),
                ("X-WC-Webhook-Event", "updated".into()),
                ("X-WC-Webhook-ID", "7".into()),
                ("X-WC-Webhook-Delivery-ID", "sample-1".into()),
                ("X-WC-Webhook-Signature", sign_base64_sha256(&order, WOOCOMMERCE_SECRET.as_bytes())),
            ],
            &order,
        ),
    );

    // The published sample has an invalid date (`2015-2-02`) and a
    // placeholder key; both are fixed here, as a real client would send them.
    let batch = String::from_utf8(fixture("segment/http-api.v1-batch.json"))
        .unwrap()
        .replace("2015-2-02", "2015-02-02")
        .replace("YOUR_WRITE_KEY", WRITE_KEY)
        .into_bytes();
    let auth = format!("Basic {}", STANDARD.encode(format!("{WRITE_KEY}:")));
    write(
        &dir,
        "track.batch.json",
        &url_request(
            "POST",
            "/v1/batch",
            "",
            &[("Content-Type", "application/json".into()), ("Authorization", auth)],
            &batch,
        ),
    );

    // Far-future expiry so the sample link keeps working.
    let query = UnsubscribeKey::new(UNSUBSCRIBE_KEY).query(
        SHOP,
        "p-sample",
        "2036-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
    );
    write(&dir, "unsubscribe.get.json", &url_request("GET", "/unsubscribe", &query, &[], b""));
    write(
        &dir,
        "unsubscribe.one-click.json",
        &url_request(
            "POST",
            "/unsubscribe",
            &query,
            &[("Content-Type", "application/x-www-form-urlencoded".into())],
            b"List-Unsubscribe=One-Click",
        ),
    );

    write(&dir, "check.json", &sample_check(&checkout));
    for (kind, detail_type) in [
        ("bounce", "Email Bounced"),
        ("complaint", "Email Complaint Received"),
        ("open", "Email Opened"),
        ("click", "Email Clicked"),
        ("delivery", "Email Delivered"),
    ] {
        let detail: Value =
            serde_json::from_slice(&fixture(&format!("aws/ses/ses.event-publishing.{kind}.json"))).unwrap();
        let mut envelope: Value = serde_json::from_slice(&fixture("aws/eventbridge.event.json")).unwrap();
        envelope["source"] = json!("aws.ses");
        envelope["detail-type"] = json!(detail_type);
        envelope["resources"] = json!([]);
        envelope["detail"] = detail;
        write(&dir, &format!("ses-events.{kind}.json"), &envelope);
    }
    let scheduled: Value = serde_json::from_slice(&fixture("aws/eventbridge.scheduled-event.json")).unwrap();
    write(&dir, "reconcile.json", &scheduled);
}
