//! Shopify and WooCommerce deliveries built from the vendors' published
//! sample payloads (fixtures/ at the repository root), signed in the test with a test
//! secret, exactly as the endpoint receives them.

use http::{HeaderMap, HeaderName, HeaderValue};
use jiff::Timestamp;
use nudge_core::{ConsentState, EventKind, ProductChange};
use nudge_sources::signature::sign_base64_sha256;
use nudge_sources::{
    Accepted, Delivery, Rejection, Secret, ShopDomain, ShopSources, SourcesConfig, shopify, woocommerce,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
const SHOPIFY_SECRET: &[u8] = b"test-shopify-secret";
const WC_SECRET: &str = "test-wc-secret&amp;more";
const WC_SECRET_DECODED: &[u8] = b"test-wc-secret&more";

/// A fixture, with the compliance samples' `{shop}` placeholder filled in
/// with the shop the deliveries come from.
fn fixture(path: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.replace("{shop}.myshopify.com", SHOP).into_bytes()
}

const SHOP: &str = "snowdevil.myshopify.com";

fn config() -> SourcesConfig {
    SourcesConfig {
        shopify_app_secrets: vec![Secret::new(SHOPIFY_SECRET.to_vec())],
        shops: vec![
            ShopSources { shop: SHOP.into(), ..ShopSources::default() },
            ShopSources {
                shop: "wc-store".into(),
                woocommerce_secrets: vec![Secret::new(WC_SECRET.as_bytes().to_vec())],
                woocommerce_source: Some(ShopDomain::parse("example.com").unwrap()),
                ..ShopSources::default()
            },
        ],
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn now() -> Timestamp {
    "2026-10-06T14:00:00Z".parse().unwrap()
}

fn shopify_headers(topic: &str, body: &[u8], secret: &[u8]) -> HeaderMap {
    headers(&[
        ("X-Shopify-Topic", topic),
        ("X-Shopify-Hmac-Sha256", &sign_base64_sha256(body, secret)),
        ("X-Shopify-Shop-Domain", "snowdevil.myshopify.com"),
        ("X-Shopify-API-Version", "2026-07"),
        ("X-Shopify-Webhook-Id", "545ebdd4-b7be-4d3d-b14e-54aa78e0e0f9"),
        ("X-Shopify-Event-Id", "59d6d79c-595f-4e7e-bc6f-72f5c3d0c66f"),
        ("X-Shopify-Triggered-At", "2025-07-10T16:15:47.000000Z"),
    ])
}

fn shopify(topic: &str, body: &[u8]) -> Result<Accepted, Rejection> {
    let h = shopify_headers(topic, body, SHOPIFY_SECRET);
    shopify::decode(&Delivery { headers: &h, body, received_at: now() }, &config())
}

fn events(a: Result<Accepted, Rejection>) -> Vec<nudge_core::Event> {
    match a {
        Ok(Accepted::Events(e)) => e,
        other => panic!("expected events, got {other:?}"),
    }
}

const SHOPIFY_TOPICS: [(&str, &str); 14] = [
    ("checkouts/create", "shopify/checkouts__create.json"),
    ("checkouts/update", "shopify/checkouts__update.json"),
    ("carts/create", "shopify/carts__create.json"),
    ("carts/update", "shopify/carts__update.json"),
    ("orders/create", "shopify/orders__create.json"),
    ("orders/paid", "shopify/orders__paid.json"),
    ("orders/cancelled", "shopify/orders__cancelled.json"),
    ("customers/create", "shopify/customers__create.json"),
    ("customers/update", "shopify/customers__update.json"),
    ("customers_email_marketing_consent/update", "shopify/customers_email_marketing_consent__update.json"),
    ("customers/data_request", "shopify/customers__data_request.json"),
    ("customers/redact", "shopify/customers__redact.json"),
    ("shop/redact", "shopify/shop__redact.json"),
    ("products/update", "shopify/products__update.json"),
];

#[test]
fn every_shopify_fixture_decodes_when_correctly_signed() {
    for (topic, file) in SHOPIFY_TOPICS {
        let body = fixture(file);
        assert!(shopify(topic, &body).is_ok(), "{topic}: {:?}", shopify(topic, &body));
    }
}

#[test]
fn every_shopify_fixture_is_rejected_with_401_when_tampered_unsigned_or_wrongly_signed() {
    for (topic, file) in SHOPIFY_TOPICS {
        let body = fixture(file);
        let config = config();
        let good = shopify_headers(topic, &body, SHOPIFY_SECRET);
        let decode =
            |h: &HeaderMap, b: &[u8]| shopify::decode(&Delivery { headers: h, body: b, received_at: now() }, &config);

        let mut flipped = body.clone();
        flipped[body.len() / 2] ^= 0x01;
        assert_eq!(decode(&good, &flipped).map_err(|e| e.status()), Err(401), "{topic}: flipped byte");

        let mut missing = good.clone();
        missing.remove("x-shopify-hmac-sha256");
        assert_eq!(decode(&missing, &body).map_err(|e| e.status()), Err(401), "{topic}: missing header");

        let wrong = shopify_headers(topic, &body, b"not-the-secret");
        assert_eq!(decode(&wrong, &body).map_err(|e| e.status()), Err(401), "{topic}: wrong secret");

        assert_eq!(decode(&good, b"").map_err(|e| e.status()), Err(401), "{topic}: empty body");
    }
}

#[test]
fn shopify_checkout_with_contact_info_is_checkout_started_with_lines_value_and_recovery_link() {
    let e = events(shopify("checkouts/create", &fixture("shopify/checkouts__create.json")));
    assert_eq!(e[0].id, "shopify:checkout:123123123:1640995200", "dedupe id comes from the signed token and time");
    assert_eq!(e[0].shop, "snowdevil.myshopify.com");
    assert_eq!(e[0].identity.checkout_token.as_deref(), Some("123123123"));
    assert_eq!(e[0].identity.email.as_deref(), Some("example@email.com"));
    let EventKind::CheckoutStarted { basket } = &e[0].kind else { panic!("{:?}", e[0].kind) };
    assert_eq!(basket.value, 421.88);
    assert_eq!(basket.currency.as_deref(), Some("USD"));
    assert!(basket.recovery_url.as_deref().unwrap().contains("/recover?key="));
    assert!(!basket.lines.is_empty());
    assert_eq!(e[0].occurred_at, "2022-01-01T00:00:00Z".parse::<Timestamp>().unwrap());
}

#[test]
fn shopify_dedupe_id_falls_back_to_the_webhook_id_when_the_content_has_no_time() {
    let mut raw: serde_json::Value = serde_json::from_slice(&fixture("shopify/carts__create.json")).unwrap();
    raw.as_object_mut().unwrap().remove("updated_at");
    let body = raw.to_string().into_bytes();
    let mut h = shopify_headers("carts/create", &body, SHOPIFY_SECRET);
    h.remove("x-shopify-event-id");
    let e = events(shopify::decode(&Delivery { headers: &h, body: &body, received_at: now() }, &config()));
    assert_eq!(e[0].id, "545ebdd4-b7be-4d3d-b14e-54aa78e0e0f9");
}

#[test]
fn a_re_sent_body_with_a_fresh_event_id_gets_the_same_dedupe_id() {
    for (topic, file) in [
        ("checkouts/update", "shopify/checkouts__update.json"),
        ("carts/update", "shopify/carts__update.json"),
        ("orders/paid", "shopify/orders__paid.json"),
        ("customers/update", "shopify/customers__update.json"),
    ] {
        let body = fixture(file);
        let first = shopify_headers(topic, &body, SHOPIFY_SECRET);
        let mut again = first.clone();
        again.insert("x-shopify-event-id", HeaderValue::from_static("a-fresh-unsigned-id"));
        again.insert("x-shopify-webhook-id", HeaderValue::from_static("another-fresh-id"));
        let decode = |h: &HeaderMap| {
            events(shopify::decode(&Delivery { headers: h, body: &body, received_at: now() }, &config()))
        };
        assert_eq!(decode(&first)[0].id, decode(&again)[0].id, "{topic}");
    }
}

#[test]
fn shopify_cart_is_cart_updated_keyed_by_cart_token() {
    let e = events(shopify("carts/update", &fixture("shopify/carts__update.json")));
    assert_eq!(e[0].identity.cart_token.as_deref(), Some("exampleCartId"));
    assert!(matches!(&e[0].kind, EventKind::CartUpdated { basket, .. } if !basket.lines.is_empty()));
}

#[test]
fn shopify_order_is_order_placed_joined_by_checkout_token() {
    // Shopify's sample order was not placed through a checkout (its tokens are
    // null); a real one carries the checkout's token, as set here.
    let mut raw: serde_json::Value = serde_json::from_slice(&fixture("shopify/orders__paid.json")).unwrap();
    raw["checkout_token"] = "123123123".into();
    let body = raw.to_string().into_bytes();
    let e = events(shopify("orders/paid", &body));
    let EventKind::OrderPlaced { order } = &e[0].kind else { panic!() };
    assert_eq!(order.id, raw["id"].to_string());
    assert!(order.tokens.contains(&raw["checkout_token"].as_str().unwrap().to_owned()));
    assert_eq!(e[0].identity.checkout_token.as_deref(), raw["checkout_token"].as_str());
}

#[test]
fn shopify_consent_update_is_consent_changed_with_state_level_and_time() {
    let e = events(shopify(
        "customers_email_marketing_consent/update",
        &fixture("shopify/customers_email_marketing_consent__update.json"),
    ));
    let EventKind::ConsentChanged { consent } = &e[0].kind else { panic!() };
    assert_eq!(consent.state, ConsentState::NotSubscribed);
    assert_eq!(consent.source, Some(nudge_core::ConsentSource::Shopify));
    assert!(e[0].identity.customer_id.is_some());
}

#[test]
fn shopify_compliance_topics_become_data_and_erase_requests() {
    let e = events(shopify("customers/data_request", &fixture("shopify/customers__data_request.json")));
    assert_eq!(e[0].kind, EventKind::DataRequested {});
    let e = events(shopify("customers/redact", &fixture("shopify/customers__redact.json")));
    assert_eq!(e[0].kind, EventKind::EraseRequested {});
    assert_eq!(
        shopify("shop/redact", &fixture("shopify/shop__redact.json")),
        Ok(Accepted::EraseShop { shop: "snowdevil.myshopify.com".into() })
    );
}

#[test]
fn other_shopify_topics_are_acknowledged_and_ignored() {
    assert_eq!(
        shopify("inventory_levels/update", br#"{"inventory_item_id": 1}"#),
        Ok(Accepted::Ignored { topic: "inventory_levels/update".into() })
    );
}

fn product_changes(a: Result<Accepted, Rejection>, shop: &str) -> Vec<ProductChange> {
    match a {
        Ok(Accepted::Products { shop: s, changes }) if s == shop => changes,
        other => panic!("expected product changes for {shop}, got {other:?}"),
    }
}

#[test]
fn shopify_product_webhooks_become_catalogue_records_with_summed_stock_and_lowest_price() {
    for topic in ["products/create", "products/update"] {
        let changes =
            product_changes(shopify(topic, &fixture("shopify/products__update.json")), "snowdevil.myshopify.com");
        let [ProductChange::Upsert(p)] = changes.as_slice() else { panic!("{changes:?}") };
        assert_eq!(p.id, "788032119674292922");
        assert_eq!(p.title, "Example T-Shirt");
        assert_eq!(p.inventory, Some(125), "75 + 50 over the variants");
        assert_eq!(p.price, Some(19.99), "the cheaper variant");
        assert_eq!(p.url.as_deref(), Some("https://snowdevil.myshopify.com/products/example-t-shirt"));
        assert_eq!(p.category.as_deref(), Some("Shirts"));
        assert_eq!(p.updated_at, Some("2021-12-31T19:00:00-05:00".parse().unwrap()), "the product's own updated_at");
        assert!(p.in_stock());
    }
    let gone = product_changes(shopify("products/delete", br#"{"id": 788032119674292922}"#), "snowdevil.myshopify.com");
    let fired = "2025-07-10T16:15:47Z".parse().ok();
    assert_eq!(
        gone,
        vec![ProductChange::Remove { id: "788032119674292922".into(), at: fired }],
        "X-Shopify-Triggered-At"
    );
    assert_eq!(shopify("products/delete", b"{}").map_err(|e| e.status()), Err(400), "no id, nothing to delete");
}

#[test]
fn woocommerce_product_webhooks_feed_the_catalogue_and_variations_are_not_products() {
    let changes = product_changes(wc("product.updated", &fixture("woocommerce/product.retrieve.json")), "wc-store");
    let [ProductChange::Upsert(p)] = changes.as_slice() else { panic!("{changes:?}") };
    assert_eq!((p.id.as_str(), p.title.as_str()), ("794", "Premium Quality"));
    assert_eq!(p.price, Some(21.99));
    assert_eq!(p.category.as_deref(), Some("Clothing"));
    assert_eq!(p.url.as_deref(), Some("https://example.com/product/premium-quality-19/"));
    assert_eq!(p.inventory, None, "the shop does not manage its stock");
    assert_eq!(p.rating, None, "no ratings yet: no stars shown");
    assert_eq!(p.updated_at, Some("2017-03-23T20:01:14Z".parse().unwrap()), "date_modified_gmt");
    assert!(p.in_stock());
    let variable =
        product_changes(wc("product.created", &fixture("woocommerce/product.create-variable.json")), "wc-store");
    let [ProductChange::Upsert(v)] = variable.as_slice() else { panic!("{variable:?}") };
    assert_eq!(v.price, None, "a variable product's price lives on its variations");
    assert_eq!(
        wc("product.updated", &fixture("woocommerce/product-variation.retrieve.json")),
        Ok(Accepted::Ignored { topic: "product.updated (variation)".into() })
    );
    let mut sold_out: serde_json::Value =
        serde_json::from_slice(&fixture("woocommerce/product.retrieve.json")).unwrap();
    sold_out["manage_stock"] = true.into();
    sold_out["stock_quantity"] = 0.into();
    sold_out["stock_status"] = "outofstock".into();
    let changes = product_changes(wc("product.updated", sold_out.to_string().as_bytes()), "wc-store");
    let [ProductChange::Upsert(p)] = changes.as_slice() else { panic!("{changes:?}") };
    assert!(!p.in_stock());
    let gone = product_changes(wc("product.deleted", br#"{"id": 794}"#), "wc-store");
    assert_eq!(gone, vec![ProductChange::Remove { id: "794".into(), at: Some(now()) }], "no date: when it arrived");
}

#[test]
fn malformed_json_with_a_valid_signature_is_400_and_oversized_is_413() {
    assert_eq!(shopify("orders/create", b"{not json").map_err(|e| e.status()), Err(400));
    let big = vec![b' '; shopify::MAX_BODY + 1];
    assert_eq!(shopify("orders/create", &big).map_err(|e| e.status()), Err(413));
}

#[test]
fn an_unknown_shop_without_any_secret_is_401() {
    let body = fixture("shopify/carts__create.json");
    let h = shopify_headers("carts/create", &body, SHOPIFY_SECRET);
    let empty = SourcesConfig::default();
    let r = shopify::decode(&Delivery { headers: &h, body: &body, received_at: now() }, &empty);
    assert_eq!(r.map_err(|e| e.status()), Err(401));
}

// ------------------------------------------------------------ WooCommerce

fn wc_headers(topic: &str, body: &[u8], secret: &[u8]) -> HeaderMap {
    headers(&[
        ("X-WC-Webhook-Source", "https://example.com/"),
        ("X-WC-Webhook-Topic", topic),
        ("X-WC-Webhook-Signature", &sign_base64_sha256(body, secret)),
        ("X-WC-Webhook-ID", "12"),
        ("X-WC-Webhook-Delivery-ID", "7b6e9c"),
    ])
}

fn wc(topic: &str, body: &[u8]) -> Result<Accepted, Rejection> {
    let h = wc_headers(topic, body, WC_SECRET_DECODED);
    woocommerce::decode(&Delivery { headers: &h, body, received_at: now() }, &config())
}

const WC_TOPICS: [(&str, &str); 6] = [
    ("product.updated", "woocommerce/product-variation.retrieve.json"),
    ("order.created", "woocommerce/order.retrieve.json"),
    ("order.updated", "woocommerce/order.update.json"),
    ("customer.updated", "woocommerce/customer.retrieve.json"),
    ("product.updated", "woocommerce/product.retrieve.json"),
    ("product.created", "woocommerce/product.create-variable.json"),
];

#[test]
fn every_woocommerce_fixture_decodes_when_signed_with_the_entity_decoded_secret() {
    for (topic, file) in WC_TOPICS {
        assert!(wc(topic, &fixture(file)).is_ok(), "{topic}: {:?}", wc(topic, &fixture(file)));
    }
}

#[test]
fn every_woocommerce_fixture_is_rejected_with_401_when_tampered_unsigned_or_wrongly_signed() {
    for (topic, file) in WC_TOPICS {
        let body = fixture(file);
        let config = config();
        let good = wc_headers(topic, &body, WC_SECRET_DECODED);
        let decode = |h: &HeaderMap, b: &[u8]| {
            woocommerce::decode(&Delivery { headers: h, body: b, received_at: now() }, &config)
        };
        let mut flipped = body.clone();
        flipped[body.len() / 2] ^= 0x01;
        assert_eq!(decode(&good, &flipped).map_err(|e| e.status()), Err(401), "{topic}: flipped byte");
        let mut missing = good.clone();
        missing.remove("x-wc-webhook-signature");
        assert_eq!(decode(&missing, &body).map_err(|e| e.status()), Err(401), "{topic}: missing header");
        let raw_secret = wc_headers(topic, &body, WC_SECRET.as_bytes());
        assert_eq!(decode(&raw_secret, &body).map_err(|e| e.status()), Err(401), "{topic}: entities not decoded");
        assert_eq!(decode(&good, b"").map_err(|e| e.status()), Err(401), "{topic}: empty body");
    }
}

#[test]
fn woocommerce_ping_is_accepted_without_a_signature() {
    let h = headers(&[("Content-Type", "application/x-www-form-urlencoded")]);
    let r = woocommerce::decode(&Delivery { headers: &h, body: b"webhook_id=42", received_at: now() }, &config());
    assert_eq!(r, Ok(Accepted::Ping));
    let r = woocommerce::decode(&Delivery { headers: &h, body: b"webhook_id=4x2", received_at: now() }, &config());
    assert_eq!(r.map_err(|e| e.status()), Err(401), "anything else unsigned is refused");
}

#[test]
fn woocommerce_order_status_decides_the_event() {
    let mut order: serde_json::Value = serde_json::from_slice(&fixture("woocommerce/order.retrieve.json")).unwrap();
    for (status, kind) in [
        ("pending", "checkout_started"),
        ("checkout-draft", "checkout_started"),
        ("failed", "checkout_started"),
        ("processing", "order_placed"),
        ("completed", "order_placed"),
        ("on-hold", "order_placed"),
        ("cancelled", "order_cancelled"),
        ("refunded", "order_cancelled"),
    ] {
        order["status"] = status.into();
        let e = events(wc("order.updated", order.to_string().as_bytes()));
        let main = &e[0];
        assert_eq!(main.kind.name(), kind, "{status}");
        assert_eq!(main.identity.checkout_token.as_deref(), Some("wc-order-727"));
    }
}

#[test]
fn woocommerce_dedupes_on_resource_id_and_modification_time() {
    let a = events(wc("order.created", &fixture("woocommerce/order.retrieve.json")));
    let b = events(wc("order.updated", &fixture("woocommerce/order.update.json")));
    let main = |e: &[nudge_core::Event]| e[0].id.clone();
    assert_eq!(main(&a), "wc:order:727:2017-03-22T19:28:08");
    assert_eq!(main(&b), "wc:order:727:2017-03-22T19:30:35");
    assert_eq!(a[0].occurred_at, "2017-03-22T19:28:08Z".parse::<Timestamp>().unwrap());
}

#[test]
fn woocommerce_customer_is_profile_updated_and_deletion_erases() {
    let e = events(wc("customer.updated", &fixture("woocommerce/customer.retrieve.json")));
    assert_eq!(e[0].identity.customer_id.as_deref(), Some("25"));
    assert!(matches!(&e[0].kind, EventKind::ProfileUpdated { first_name: Some(n), .. } if n == "John"));
    let e = events(wc("customer.deleted", br#"{"id": 25}"#));
    assert_eq!(e[0].kind, EventKind::EraseRequested {});
}

/// Shopify's own REST fixtures (older, more realistic states): a webhook body
/// is the inner object of each.
#[test]
fn shopify_rest_api_fixtures_decode_as_webhook_bodies() {
    let inner = |file: &str, key: &str| -> Vec<Vec<u8>> {
        let v: serde_json::Value =
            serde_json::from_slice(&fixture(&format!("shopify/rest-api-fixtures/{file}"))).unwrap();
        match &v[key] {
            serde_json::Value::Array(items) => items.iter().map(|i| i.to_string().into_bytes()).collect(),
            one => vec![one.to_string().into_bytes()],
        }
    };
    let mut decoded = 0;
    for (topic, file, key) in [
        ("carts/update", "shopify_python_api.carts.json", "carts"),
        ("checkouts/update", "shopify_python_api.checkouts.json", "checkouts"),
        ("customers/update", "shopify_python_api.customer.json", "customer"),
        ("orders/paid", "shopify_python_api.order.json", "order"),
        ("products/update", "shopify_python_api.product.json", "product"),
    ] {
        for body in inner(file, key) {
            let r = shopify(topic, &body);
            assert!(r.is_ok(), "{file} as {topic}: {r:?}");
            decoded += 1;
        }
    }
    assert!(decoded >= 5);
    let order = events(shopify("orders/paid", &inner("shopify_python_api.order.json", "order")[0]));
    assert_eq!(order[0].kind.name(), "order_placed");
}

// What an attacker holding one correctly signed body can try: every header
// is theirs to choose, the body is not.

fn status(a: Result<Accepted, Rejection>) -> u16 {
    a.map_or_else(|r| r.status(), |_| 200)
}

#[test]
fn a_signed_body_relabelled_as_a_compliance_topic_is_refused() {
    for from in ["shopify/checkouts__create.json", "shopify/orders__create.json", "shopify/customers__update.json"] {
        let body = fixture(from);
        for topic in ["customers/redact", "shop/redact", "customers/data_request"] {
            assert_eq!(status(shopify(topic, &body)), 400, "{from} as {topic}");
        }
    }
}

#[test]
fn a_signed_body_relabelled_as_another_topic_is_refused() {
    let cases = [
        ("shopify/checkouts__create.json", "orders/create"),
        ("shopify/checkouts__create.json", "customers/update"),
        ("shopify/checkouts__create.json", "carts/update"),
        ("shopify/orders__create.json", "checkouts/update"),
        ("shopify/orders__create.json", "customers_email_marketing_consent/update"),
        ("shopify/customers__redact.json", "customers/data_request"),
        ("shopify/shop__redact.json", "customers/redact"),
        ("shopify/products__update.json", "products/delete"),
        ("shopify/customers__update.json", "products/update"),
    ];
    for (file, topic) in cases {
        assert_eq!(status(shopify(topic, &fixture(file))), 400, "{file} as {topic}");
    }
}

#[test]
fn a_compliance_request_for_another_shop_is_refused() {
    let body = std::fs::read_to_string(format!("{FIXTURES}/shopify/shop__redact.json")).unwrap();
    let other = body.replace("{shop}.myshopify.com", "victim.myshopify.com").into_bytes();
    assert_eq!(status(shopify("shop/redact", &other)), 400, "body names another shop than the header");
    let redact = std::fs::read_to_string(format!("{FIXTURES}/shopify/customers__redact.json")).unwrap();
    let other = redact.replace("{shop}.myshopify.com", "victim.myshopify.com").into_bytes();
    assert_eq!(status(shopify("customers/redact", &other)), 400);
}

#[test]
fn a_delivery_naming_a_shop_that_is_not_configured_is_401() {
    let body = fixture("shopify/checkouts__create.json");
    let mut h = shopify_headers("checkouts/create", &body, SHOPIFY_SECRET);
    h.insert("x-shopify-shop-domain", HeaderValue::from_static("victim.myshopify.com"));
    let got = shopify::decode(&Delivery { headers: &h, body: &body, received_at: now() }, &config());
    assert_eq!(got, Err(Rejection::UnknownShop));
    // The same for a compliance request whose body agrees with the header.
    let redact = std::fs::read_to_string(format!("{FIXTURES}/shopify/shop__redact.json")).unwrap();
    let redact = redact.replace("{shop}.myshopify.com", "victim.myshopify.com").into_bytes();
    let mut h = shopify_headers("shop/redact", &redact, SHOPIFY_SECRET);
    h.insert("x-shopify-shop-domain", HeaderValue::from_static("victim.myshopify.com"));
    let got = shopify::decode(&Delivery { headers: &h, body: &redact, received_at: now() }, &config());
    assert_eq!(got, Err(Rejection::UnknownShop));
}

#[test]
fn a_signed_woocommerce_order_relabelled_as_customer_deleted_is_refused() {
    let body = fixture("woocommerce/order.update.json");
    for (topic, resource) in
        [("customer.deleted", None), ("customer.updated", None), ("order.updated", Some("customer"))]
    {
        let mut pairs = vec![
            ("X-WC-Webhook-Topic", topic.to_owned()),
            ("X-WC-Webhook-Signature", sign_base64_sha256(&body, WC_SECRET_DECODED)),
            ("X-WC-Webhook-Source", "https://example.com/".to_owned()),
        ];
        if let Some(r) = resource {
            pairs.push(("X-WC-Webhook-Resource", r.to_owned()));
        }
        let h = headers(&pairs.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
        let got = woocommerce::decode(&Delivery { headers: &h, body: &body, received_at: now() }, &config());
        assert_eq!(status(got), 400, "{topic} / {resource:?}");
    }
}

#[test]
fn woocommerce_signed_by_one_shop_stays_that_shop_whatever_the_source_header_says() {
    let mut c = config();
    c.shops.push(ShopSources {
        shop: "other-store".into(),
        woocommerce_secrets: vec![Secret::new(b"other-secret".to_vec())],
        woocommerce_source: Some(ShopDomain::parse("other.example").unwrap()),
        ..ShopSources::default()
    });
    let body = fixture("woocommerce/order.update.json");
    let h = headers(&[
        ("X-WC-Webhook-Topic", "order.updated"),
        ("X-WC-Webhook-Signature", &sign_base64_sha256(&body, WC_SECRET_DECODED)),
        ("X-WC-Webhook-Source", "https://other.example/"),
    ]);
    let e = events(woocommerce::decode(&Delivery { headers: &h, body: &body, received_at: now() }, &c));
    assert!(e.iter().all(|e| e.shop == "wc-store"), "the shop whose secret signed it");
}

/// Everything one delivery says is applied as one step only if its events
/// read as one message: the first carries the delivery's id, the rest that
/// id tagged, all about the same person.
#[test]
fn every_storefront_delivery_s_events_are_one_message() {
    let decoded = SHOPIFY_TOPICS
        .iter()
        .map(|(topic, file)| (topic, shopify(topic, &fixture(file))))
        .chain(WC_TOPICS.iter().map(|(topic, file)| (topic, wc(topic, &fixture(file)))));
    for (topic, accepted) in decoded {
        let Ok(Accepted::Events(e)) = accepted else { continue };
        assert_eq!(nudge_core::event::messages(&e).len(), 1, "{topic}: {e:#?}");
    }
}

fn first_name(e: &[nudge_core::Event]) -> Option<(String, Option<String>)> {
    e.iter().find_map(|e| match &e.kind {
        EventKind::ProfileUpdated { first_name: Some(f), last_name } => Some((f.clone(), last_name.clone())),
        _ => None,
    })
}

#[test]
fn a_checkout_s_name_comes_from_its_customer_else_its_addresses() {
    let mut checkout: serde_json::Value = serde_json::from_slice(&fixture("shopify/checkouts__create.json")).unwrap();
    let e = events(shopify("checkouts/create", checkout.to_string().as_bytes()));
    assert_eq!(first_name(&e), Some(("John".into(), Some("Smith".into()))));
    // A guest checkout: no customer, the name typed on the shipping address.
    checkout.as_object_mut().unwrap().remove("customer");
    let e = events(shopify("checkouts/create", checkout.to_string().as_bytes()));
    assert_eq!(first_name(&e), Some(("Steve".into(), Some("Shipper".into()))));
    checkout["shipping_address"]["first_name"] = "".into();
    let e = events(shopify("checkouts/create", checkout.to_string().as_bytes()));
    assert_eq!(first_name(&e), Some(("Bob".into(), Some("Biller".into()))));
    let e = events(shopify("orders/create", &fixture("shopify/orders__create.json")));
    assert_eq!(first_name(&e), Some(("John".into(), Some("Smith".into()))));
}

#[test]
fn a_woocommerce_order_and_customer_carry_first_and_last_names() {
    let e = events(wc("order.created", &fixture("woocommerce/order.retrieve.json")));
    assert_eq!(first_name(&e), Some(("John".into(), Some("Doe".into()))));
    let mut customer: serde_json::Value =
        serde_json::from_slice(&fixture("woocommerce/customer.retrieve.json")).unwrap();
    customer["first_name"] = "".into();
    customer["billing"]["first_name"] = "Grace".into();
    let e = events(wc("customer.updated", customer.to_string().as_bytes()));
    assert_eq!(first_name(&e).map(|n| n.0), Some("Grace".into()));
}

#[test]
fn storefront_events_carry_the_time_zone_of_the_shipping_address_else_billing_else_the_customer_s() {
    let zones = |e: &[nudge_core::Event]| e.iter().map(|e| e.time_zone.clone()).collect::<Vec<_>>();
    let mut checkout: serde_json::Value = serde_json::from_slice(&fixture("shopify/checkouts__create.json")).unwrap();
    let e = events(shopify("checkouts/create", checkout.to_string().as_bytes()));
    assert!(zones(&e).iter().all(|z| z.as_deref() == Some("America/New_York")), "Kentucky: {:?}", zones(&e));
    checkout["shipping_address"] = serde_json::Value::Null;
    checkout["billing_address"]["province_code"] = "CA".into();
    let e = events(shopify("checkouts/create", checkout.to_string().as_bytes()));
    assert_eq!(e[0].time_zone.as_deref(), Some("America/Los_Angeles"));
    // No address settles it: the customer's default (Ontario).
    checkout["billing_address"]["province_code"] = serde_json::Value::Null;
    let e = events(shopify("checkouts/create", checkout.to_string().as_bytes()));
    assert_eq!(e[0].time_zone.as_deref(), Some("America/Toronto"));
    let e = events(shopify("customers/create", &fixture("shopify/customers__create.json")));
    assert_eq!(e[0].time_zone.as_deref(), Some("America/Toronto"));

    let mut order: serde_json::Value = serde_json::from_slice(&fixture("woocommerce/order.retrieve.json")).unwrap();
    let e = events(wc("order.created", order.to_string().as_bytes()));
    assert!(zones(&e).iter().all(|z| z.as_deref() == Some("America/Los_Angeles")), "{:?}", zones(&e));
    order["shipping"]["country"] = "".into();
    order["billing"]["country"] = "DE".into();
    let e = events(wc("order.created", order.to_string().as_bytes()));
    assert_eq!(e[0].time_zone.as_deref(), Some("Europe/Berlin"));
    order["billing"]["country"] = "US".into();
    order["billing"]["state"] = "".into();
    let e = events(wc("order.created", order.to_string().as_bytes()));
    assert_eq!(e[0].time_zone, None, "a US address without a state says nothing of the zone");
}
