//! The HTTP handlers every shell mounts, fed signed vendor fixtures.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ::http::Request;
use nudge_app::http::{HttpService, HttpStats};
use nudge_app::memory::{ManualClock, MemoryPublisher, MemoryScheduler, MemoryStore};
use nudge_app::ports::CatalogueStore;
use nudge_app::{AliasKey, Catalogues};
use nudge_content::Catalogue;
use nudge_core::ProductChange;
use nudge_sources::signature::sign_base64_sha256;
use nudge_sources::{Secret, ShopSources, SourcesConfig};

use super::lifecycle::block_on;
use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
const SECRET: &[u8] = b"test-secret";

type Service = HttpService<MemoryStore, MemoryScheduler, MemoryPublisher, ManualClock>;

fn service() -> Service {
    let rules = rules(
        r#"
[[trigger]]
id = "cart-abandoned"
on = "checkout_started"
delay = "10m"
cancel_if = ["order_placed"]
template = "t"
"#,
    );
    HttpService {
        rules,
        alias_key: AliasKey::new(b"k"),
        sources: SourcesConfig {
            shopify_app_secrets: vec![Secret::new(SECRET.to_vec())],
            shops: vec![
                ShopSources {
                    shop: "acme.myshopify.com".into(),
                    segment_server_keys: vec![Secret::new(b"sk-shopify".to_vec())],
                    ..ShopSources::default()
                },
                ShopSources {
                    shop: "acme".into(),
                    woocommerce_secrets: vec![Secret::new(SECRET.to_vec())],
                    segment_write_keys: vec![Secret::new(b"wk".to_vec())],
                    segment_server_keys: vec![Secret::new(b"sk".to_vec())],
                    ..ShopSources::default()
                },
            ],
        },
        store: MemoryStore::new(),
        scheduler: MemoryScheduler::new(),
        publisher: MemoryPublisher::default(),
        clock: ManualClock::new(at(0)),
        stats: HttpStats::default(),
        unsubscribe_key: None,
        catalogues: Some(Arc::new(Catalogues::new(Catalogue::default()))),
    }
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
}

fn shopify_request(topic: &str, event_id: &str, body: Vec<u8>) -> Request<Vec<u8>> {
    Request::post("/webhooks/shopify")
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Hmac-Sha256", sign_base64_sha256(&body, SECRET))
        .header("X-Shopify-Shop-Domain", "acme.myshopify.com")
        .header("X-Shopify-Event-Id", event_id)
        .header("X-Shopify-Webhook-Id", format!("w-{event_id}"))
        .body(body)
        .unwrap()
}

fn checkout_body() -> Vec<u8> {
    fixture("shopify/checkouts__create.json")
}

/// Shopify's sample order, placed through the sample checkout.
fn order_body() -> Vec<u8> {
    let mut order: serde_json::Value = serde_json::from_slice(&fixture("shopify/orders__create.json")).unwrap();
    order["checkout_token"] = "123123123".into();
    order["email"] = "someone-else@example.com".into(); // joined by token, not by address
    order["customer"] = serde_json::Value::Null;
    order.to_string().into_bytes()
}

fn send(s: &Service, req: &Request<Vec<u8>>) -> (u16, String) {
    let r = block_on(s.handle(req));
    (r.status().as_u16(), r.body().clone())
}

#[test]
fn a_checkout_followed_by_its_order_records_the_purchase_on_that_profile() {
    let s = service();
    assert_eq!(send(&s, &shopify_request("checkouts/create", "e1", checkout_body())).0, 200);
    assert_eq!(send(&s, &shopify_request("orders/create", "e2", order_body())).0, 200);
    let profiles = s.store.profiles();
    assert_eq!(profiles.len(), 1, "joined by checkout token: {profiles:#?}");
    assert_eq!(profiles[0].orders.count, 1);
    let decisions = s.publisher.decisions();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].reason, Some(Reason::Converted), "the pending reminder is cancelled");
}

#[test]
fn an_order_followed_by_its_checkout_records_the_purchase_on_that_profile() {
    let s = service();
    assert_eq!(send(&s, &shopify_request("orders/create", "e2", order_body())).0, 200);
    assert_eq!(send(&s, &shopify_request("checkouts/create", "e1", checkout_body())).0, 200);
    let profiles = s.store.profiles();
    assert_eq!(profiles.len(), 1, "joined by checkout token: {profiles:#?}");
    assert_eq!(profiles[0].orders.count, 1);
    let decisions = s.publisher.decisions();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].reason, Some(Reason::Converted), "a late checkout of a bought basket never reminds");
    assert_eq!(s.scheduler.pending().len(), 0);
}

#[test]
fn a_delivery_repeated_three_times_is_applied_once() {
    let s = service();
    for _ in 0..3 {
        assert_eq!(send(&s, &shopify_request("checkouts/create", "e1", checkout_body())).0, 200);
    }
    // The fixture's customer has not consented: the one check is parked.
    let asked = s.scheduler.creates.load(Ordering::Relaxed) + s.scheduler.parks.load(Ordering::Relaxed);
    assert_eq!(asked, 1, "one check asked for");
    assert_eq!(s.store.profiles()[0].version, 1);
}

#[test]
fn the_woocommerce_ping_gets_200_and_changes_nothing() {
    let s = service();
    let ping = Request::post("/webhooks/woocommerce")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(b"webhook_id=17".to_vec())
        .unwrap();
    assert_eq!(send(&s, &ping).0, 200);
    assert_eq!(s.store.profile_count(), 0);
    assert_eq!(s.store.alias_count(), 0);
}

#[test]
fn bad_deliveries_get_4xx_and_store_nothing() {
    let s = service();
    let mut tampered = shopify_request("checkouts/create", "e1", checkout_body());
    tampered.body_mut()[10] ^= 1;
    assert_eq!(send(&s, &tampered).0, 401);

    let malformed = shopify_request("checkouts/create", "e2", b"{\"token\": ".to_vec());
    assert_eq!(send(&s, &malformed).0, 400);

    let oversized = shopify_request("checkouts/create", "e3", vec![b' '; 3 * 1024 * 1024]);
    assert_eq!(send(&s, &oversized).0, 413);

    let unknown_key = Request::post("/v1/track")
        .header("Authorization", "Basic bm9wZTo=")
        .body(br#"{"userId":"u","event":"Product Viewed","timestamp":"2026-01-01T00:00:00Z"}"#.to_vec())
        .unwrap();
    let (status, body) = send(&s, &unknown_key);
    assert_eq!(status, 401);
    assert!(body.contains("unknown write key"), "{body}");

    assert_eq!(send(&s, &Request::get("/webhooks/shopify").body(vec![]).unwrap()).0, 405);
    assert_eq!(send(&s, &Request::post("/nope").body(vec![]).unwrap()).0, 404);

    assert_eq!(s.store.profile_count(), 0);
    assert_eq!(s.store.alias_count(), 0);
    assert_eq!(s.stats.rejected.load(Ordering::Relaxed), 4);
}

#[test]
fn unknown_shopify_topics_are_acknowledged_and_counted_as_ignored() {
    let s = service();
    let (status, body) = send(&s, &shopify_request("inventory_levels/update", "e1", br#"{"available": 1}"#.to_vec()));
    assert_eq!(status, 200);
    assert!(body.contains("\"ignored\":\"inventory_levels/update\""), "{body}");
    assert_eq!(s.stats.ignored.load(Ordering::Relaxed), 1);
}

#[test]
fn product_webhooks_are_stored_and_reach_the_catalogue_emails_render_from() {
    let s = service();
    let (status, _) = send(&s, &shopify_request("products/update", "e1", fixture("shopify/products__update.json")));
    assert_eq!(status, 200);
    let stored = block_on(s.store.products("acme.myshopify.com")).unwrap();
    assert!(matches!(stored.as_slice(), [ProductChange::Upsert(p)] if p.inventory == Some(125)), "{stored:?}");
    let live = s.catalogues.as_ref().unwrap().get("acme.myshopify.com");
    assert_eq!(live.get("788032119674292922").map(|p| p.title.as_str()), Some("Example T-Shirt"));

    let (status, _) = send(&s, &shopify_request("products/delete", "e2", br#"{"id": 788032119674292922}"#.to_vec()));
    assert_eq!(status, 200);
    assert!(s.catalogues.as_ref().unwrap().get("acme.myshopify.com").get("788032119674292922").is_none());
    assert_eq!(s.stats.products.load(Ordering::Relaxed), 2);
    // A shop that leaves takes its catalogue with it.
    let shop = serde_json::json!({"shop_id": 1, "shop_domain": "acme.myshopify.com"});
    assert_eq!(send(&s, &shopify_request("shop/redact", "r2", shop.to_string().into_bytes())).0, 200);
    assert!(block_on(s.store.products("acme.myshopify.com")).unwrap().is_empty());
}

#[test]
fn customers_redact_erases_the_person_and_shop_redact_the_shop() {
    let s = service();
    let mut customer: serde_json::Value = serde_json::from_slice(&fixture("shopify/customers__create.json")).unwrap();
    customer["id"] = 1.into();
    send(&s, &shopify_request("customers/create", "c1", customer.to_string().into_bytes()));
    customer["id"] = 2.into();
    customer["email"] = "two@example.com".into();
    send(&s, &shopify_request("customers/create", "c2", customer.to_string().into_bytes()));
    assert_eq!(s.store.profile_count(), 2);

    let redact = serde_json::json!({"shop_id": 1, "shop_domain": "acme.myshopify.com", "customer": {"id": 1, "email": "john@example.com"}, "orders_to_redact": []});
    assert_eq!(send(&s, &shopify_request("customers/redact", "r1", redact.to_string().into_bytes())).0, 200);
    assert_eq!(s.store.profile_count(), 1);
    assert!(s.store.profiles().iter().all(|p| p.email.as_deref() == Some("two@example.com")));

    let shop = serde_json::json!({"shop_id": 1, "shop_domain": "acme.myshopify.com"});
    assert_eq!(send(&s, &shopify_request("shop/redact", "r2", shop.to_string().into_bytes())).0, 200);
    assert_eq!(s.store.profile_count(), 0);
    assert_eq!(s.store.alias_count(), 0);
}

#[test]
fn segment_batches_are_ingested_with_the_server_key() {
    let s = service();
    let batch = serde_json::json!({"batch": [
        {"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2026-10-06T14:00:00Z",
         "traits": {"email": "u1@example.com", "email_marketing_consent": "subscribed"}},
        {"type": "track", "event": "Checkout Started", "userId": "u1", "messageId": "m2", "timestamp": "2026-10-06T14:01:00Z",
         "properties": {"checkout_id": "chk-9", "value": 30}}
    ], "writeKey": "sk"});
    let req = Request::post("/v1/batch").body(batch.to_string().into_bytes()).unwrap();
    let (status, body) = send(&s, &req);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"events\":3"), "{body}");
    assert_eq!(s.scheduler.pending().len(), 1);
}

#[test]
fn healthz_answers() {
    assert_eq!(send(&service(), &Request::get("/healthz").body(vec![]).unwrap()).0, 200);
}

#[test]
fn healthz_is_503_with_the_reason_once_the_store_cannot_acknowledge_writes() {
    let s = service();
    *s.store.unhealthy.lock().unwrap() = Some("cannot sync nudge.db-wal".into());
    let (status, body) = send(&s, &Request::get("/healthz").body(vec![]).unwrap());
    assert_eq!(status, 503);
    assert!(body.contains("cannot sync nudge.db-wal"), "{body}");
}

#[test]
fn one_click_unsubscribe_stops_every_later_email_and_bad_links_change_nothing() {
    use nudge_app::unsubscribe::UnsubscribeKey;
    let mut s = service();
    s.unsubscribe_key = Some(UnsubscribeKey::new(b"unsub-key"));
    // A subscribed shopper, known to the store.
    let batch = serde_json::json!({"batch": [
        {"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2026-10-06T14:00:00Z",
         "traits": {"email": "u1@example.com", "email_marketing_consent": "subscribed"}}], "writeKey": "sk"});
    assert_eq!(send(&s, &Request::post("/v1/batch").body(batch.to_string().into_bytes()).unwrap()).0, 200);
    let profile = s.store.profiles()[0].clone();
    let key = UnsubscribeKey::new(b"unsub-key");
    let query = key.query("acme", &profile.id, at(0));

    let get = Request::get(format!("/unsubscribe?{query}")).body(vec![]).unwrap();
    let (status, body) = send(&s, &get);
    assert_eq!(status, 200);
    assert!(body.contains("<form method=\"post\""), "{body}");
    assert_eq!(s.store.profiles()[0].consent.state, ConsentState::Subscribed, "a GET changes nothing");

    let forged = UnsubscribeKey::new(b"other").query("acme", &profile.id, at(0));
    let post = |q: &str| {
        Request::post(format!("/unsubscribe?{q}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(b"List-Unsubscribe=One-Click".to_vec())
            .unwrap()
    };
    assert_eq!(send(&s, &post(&forged)).0, 401);
    let expired = key.query("acme", &profile.id, at(-400 * DAY));
    assert_eq!(send(&s, &post(&expired)).0, 400);
    assert_eq!(s.store.profiles()[0].consent.state, ConsentState::Subscribed, "bad links change nothing");

    let r = block_on(s.handle(&post(&query)));
    assert_eq!(r.status().as_u16(), 200, "one-click answers 200");
    assert!(r.headers().get("location").is_none(), "never a redirect");
    assert_eq!(s.store.profiles()[0].consent.state, ConsentState::Unsubscribed);

    // A later checkout is decided `no_consent`, not sent.
    let checkout = serde_json::json!({"batch": [
        {"type": "track", "event": "Checkout Started", "userId": "u1", "messageId": "m2", "timestamp": "2026-10-06T15:00:00Z",
         "properties": {"checkout_id": "chk-1", "value": 20}}], "writeKey": "wk"});
    send(&s, &Request::post("/v1/batch").body(checkout.to_string().into_bytes()).unwrap());
    let check = s.scheduler.pending().pop().expect("armed");
    let (d, mailer) = run_when_due(&s, &check);
    assert_eq!(d.reason, Some(Reason::NoConsent));
    assert!(mailer.sent().is_empty());
}

/// Runs `check` at its due time with a recording mailer.
fn run_when_due(s: &Service, check: &nudge_core::Check) -> (nudge_core::Decision, nudge_app::memory::MemoryMailer) {
    s.clock.set(check.due);
    let mailer = nudge_app::memory::MemoryMailer::recording();
    let ports = nudge_app::CheckPorts {
        rules: &s.rules,
        store: &s.store,
        scheduler: &s.scheduler,
        composer: None,
        send_by: None,
        claims_lapse_before: None,
        mailer: &mailer,
        clock: &s.clock,
        publisher: &s.publisher,
    };
    let d = block_on(nudge_app::run_check(&ports, check)).unwrap().decision;
    (d, mailer)
}

// Attacks on the doors every shell mounts. The tracking write key is public
// (storefronts put it in their pages); only signed or secret sources are
// trusted with consent and addresses.

fn track(s: &Service, key: &str, messages: serde_json::Value) -> u16 {
    let body = serde_json::json!({ "batch": messages, "writeKey": key }).to_string().into_bytes();
    send(s, &Request::post("/v1/batch").body(body).unwrap()).0
}

#[test]
fn a_browser_key_cannot_subscribe_a_victim_and_the_victim_gets_no_cart_email() {
    let s = service();
    let status = track(
        &s,
        "wk",
        serde_json::json!([
            {"type": "identify", "anonymousId": "attacker", "messageId": "m1", "timestamp": "2026-10-06T14:00:00Z",
             "traits": {"email": "victim@example.com", "email_marketing_consent": "subscribed"}},
            {"type": "track", "event": "Checkout Started", "anonymousId": "attacker", "messageId": "m2",
             "timestamp": "2026-10-06T14:01:00Z", "properties": {"checkout_id": "chk-1", "value": 30}}
        ]),
    );
    assert_eq!(status, 200, "accepted: the request itself is well-formed");
    let p = &s.store.profiles()[0];
    assert_eq!(p.consent.state, ConsentState::NotSubscribed, "a public key cannot grant consent");
    assert!(p.consent.opt_in.requested.is_some(), "the request waits for the person's own confirmation");
    let pending = s.scheduler.pending();
    let (confirm, cart): (Vec<_>, Vec<_>) = pending.into_iter().partition(|c| c.trigger == "confirm-subscription");
    assert_eq!(confirm.len(), 1, "a confirmation email is asked for instead");
    assert_eq!(
        s.scheduler.creates.load(Ordering::Relaxed),
        1,
        "and no other scheduler request: the cart check is parked"
    );
    let check = cart.into_iter().next().expect("the episode is parked");
    let (d, mailer) = run_when_due(&s, &check);
    assert_eq!(d.reason, Some(Reason::NoConsent));
    assert!(mailer.sent().is_empty(), "the victim gets no email");
}

#[test]
fn a_browser_key_cannot_replace_the_address_of_a_known_person() {
    let s = service();
    track(
        &s,
        "sk",
        serde_json::json!([{"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2026-10-06T14:00:00Z",
          "traits": {"email": "ada@example.com", "email_marketing_consent": "subscribed"}}]),
    );
    let aliases_before = s.store.alias_count();
    track(
        &s,
        "wk",
        serde_json::json!([{"type": "identify", "userId": "u1", "messageId": "m2", "timestamp": "2026-10-06T14:05:00Z",
          "traits": {"email": "attacker@example.com"}}]),
    );
    let p = &s.store.profiles()[0];
    assert_eq!(p.email.as_deref(), Some("ada@example.com"));
    assert_eq!(s.store.alias_count(), aliases_before, "the refused address does not lead to this profile");
    // A server-side source may change it.
    track(
        &s,
        "sk",
        serde_json::json!([{"type": "identify", "userId": "u1", "messageId": "m3", "timestamp": "2026-10-06T14:06:00Z",
          "traits": {"email": "ada@new.example"}}]),
    );
    assert_eq!(s.store.profiles()[0].email.as_deref(), Some("ada@new.example"));
}

#[test]
fn a_browser_key_still_adds_an_address_to_a_profile_without_one_and_opts_out() {
    let s = service();
    track(
        &s,
        "wk",
        serde_json::json!([
            {"type": "page", "anonymousId": "a1", "messageId": "m1", "timestamp": "2026-10-06T14:00:00Z"},
            {"type": "identify", "anonymousId": "a1", "messageId": "m2", "timestamp": "2026-10-06T14:01:00Z",
             "traits": {"email": "new@example.com"}}
        ]),
    );
    assert_eq!(s.store.profiles()[0].email.as_deref(), Some("new@example.com"), "identity linking works");
    track(
        &s,
        "sk",
        serde_json::json!([{"type": "identify", "anonymousId": "a1", "messageId": "m3", "timestamp": "2026-10-06T14:02:00Z",
          "traits": {"email_marketing_consent": "subscribed"}}]),
    );
    assert_eq!(s.store.profiles()[0].consent.state, ConsentState::Subscribed);
    track(
        &s,
        "wk",
        serde_json::json!([{"type": "track", "event": "Unsubscribed", "anonymousId": "a1", "messageId": "m4",
          "timestamp": "2026-10-06T14:03:00Z"}]),
    );
    let p = &s.store.profiles()[0];
    assert_eq!(p.consent.state, ConsentState::Unsubscribed, "opt-outs are honoured from every source");
    assert_eq!(p.consent.source, Some(nudge_core::ConsentSource::BrowserKey), "and say where they came from");
}

/// An anonymous shopper who was emailed (profile A), later identified as a
/// known customer (profile B): A is merged into B.
fn merged_shopper(s: &Service) -> (String, String) {
    merged_shopper_in(s, "sk")
}

fn merged_shopper_in(s: &Service, key: &str) -> (String, String) {
    track(
        s,
        key,
        serde_json::json!([{"type": "identify", "anonymousId": "anon-1", "messageId": "m1", "timestamp": "2026-10-06T14:00:00Z",
          "traits": {"email": "ada@example.com", "email_marketing_consent": "subscribed"}}]),
    );
    let a = s.store.profiles()[0].id.clone();
    track(
        s,
        key,
        serde_json::json!([{"type": "identify", "userId": "c-7", "messageId": "m2", "timestamp": "2026-10-06T14:01:00Z",
          "traits": {"first_name": "Ada"}}]),
    );
    track(
        s,
        key,
        serde_json::json!([{"type": "identify", "userId": "c-7", "anonymousId": "anon-1", "messageId": "m3",
          "timestamp": "2026-10-06T14:02:00Z"}]),
    );
    let profiles = s.store.profiles();
    assert_eq!(profiles.len(), 1, "merged: {profiles:#?}");
    assert_ne!(profiles[0].id, a, "A was merged away into B");
    (a, profiles[0].id.clone())
}

#[test]
fn an_unsubscribe_link_of_a_merged_away_profile_unsubscribes_the_survivor() {
    use nudge_app::unsubscribe::UnsubscribeKey;
    let mut s = service();
    s.unsubscribe_key = Some(UnsubscribeKey::new(b"unsub-key"));
    let (a, b) = merged_shopper(&s);
    assert_eq!(s.store.profiles()[0].consent.state, ConsentState::Subscribed);
    let query = UnsubscribeKey::new(b"unsub-key").query("acme", &a, at(0));
    let req = Request::post(format!("/unsubscribe?{query}")).body(b"List-Unsubscribe=One-Click".to_vec()).unwrap();
    let (status, body) = send(&s, &req);
    assert_eq!(status, 200);
    assert!(body.contains("You are unsubscribed"), "{body}");
    let p = &s.store.profiles()[0];
    assert_eq!((p.id.as_str(), p.consent.state), (b.as_str(), ConsentState::Unsubscribed));
}

#[test]
fn an_unsubscribe_that_cannot_be_stored_is_a_5xx_never_a_confirmation() {
    use nudge_app::unsubscribe::UnsubscribeKey;
    let mut s = service();
    s.unsubscribe_key = Some(UnsubscribeKey::new(b"unsub-key"));
    let (a, _) = merged_shopper(&s);
    s.store.failing_writes.store(true, Ordering::Relaxed);
    let query = UnsubscribeKey::new(b"unsub-key").query("acme", &a, at(0));
    let req = Request::post(format!("/unsubscribe?{query}")).body(b"List-Unsubscribe=One-Click".to_vec()).unwrap();
    let (status, body) = send(&s, &req);
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("You are unsubscribed"));
    s.store.failing_writes.store(false, Ordering::Relaxed);
    assert_eq!(s.store.profiles()[0].consent.state, ConsentState::Subscribed, "nothing half-done");
}

#[test]
fn customers_redact_of_the_survivor_of_a_merge_leaves_nothing_of_either_profile() {
    let s = service();
    merged_shopper_in(&s, "sk-shopify");
    let redact = serde_json::json!({"shop_id": 1, "shop_domain": "acme.myshopify.com", "customer": {"id": "c-7"}});
    assert_eq!(send(&s, &shopify_request("customers/redact", "r1", redact.to_string().into_bytes())).0, 200);
    assert_eq!(s.store.profile_count(), 0);
    assert_eq!(s.store.alias_count(), 0, "the merge's redirect goes with the person");
}

/// The confirmation check a browser-key subscription asked for, run when due.
fn run_confirmation(s: &Service) -> (nudge_core::Decision, nudge_app::memory::MemoryMailer) {
    let check = s.scheduler.pending().into_iter().find(|c| c.trigger == "confirm-subscription").expect("asked for");
    run_when_due(s, &check)
}

#[test]
fn a_browser_key_cannot_lift_a_suppression_and_no_confirmation_goes_to_a_suppressed_address() {
    let s = service();
    let msg = |id: &str, kind: &str, extra: serde_json::Value| {
        let mut m =
            serde_json::json!({"type": kind, "userId": "u1", "messageId": id, "timestamp": "2026-10-06T14:00:00Z"});
        m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        m
    };
    track(
        &s,
        "sk",
        serde_json::json!([msg("m1", "identify", serde_json::json!({"traits": {"email": "u1@example.com"}}))]),
    );
    track(&s, "wk", serde_json::json!([msg("m2", "track", serde_json::json!({"event": "Email Marked as Spam"}))]));
    assert!(s.store.profiles()[0].suppressed.is_some(), "an opt-out from any source counts");
    let subscribe = serde_json::json!({"traits": {"email_marketing_consent": "subscribed"}});
    track(&s, "wk", serde_json::json!([msg("m3", "identify", subscribe)]));
    let (d, mailer) = run_confirmation(&s);
    assert_eq!(d.reason, Some(Reason::Suppressed));
    assert!(mailer.sent().is_empty());
    assert!(s.store.profiles()[0].suppressed.is_some(), "still suppressed");
}

#[test]
fn a_confirmation_email_respects_the_frequency_caps() {
    let mut s = service();
    s.rules = rules(
        "[policy]\nmax_per_day = 1\n\n[[trigger]]\nid = \"cart-abandoned\"\non = \"checkout_started\"\ndelay = \"10m\"\ntemplate = \"t\"\n",
    );
    track(
        &s,
        "sk",
        serde_json::json!([
            {"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2026-10-06T14:00:00Z",
             "traits": {"email": "u1@example.com", "email_marketing_consent": "subscribed"}},
            {"type": "track", "event": "Checkout Started", "userId": "u1", "messageId": "m2", "timestamp": "2026-10-06T14:00:00Z",
             "properties": {"checkout_id": "chk-1", "value": 20}}
        ]),
    );
    let cart = s.scheduler.pending().pop().expect("armed");
    assert_eq!(run_when_due(&s, &cart).0.decision, nudge_core::Outcome::Send, "today's one email");
    // They unsubscribe, then ask again from the storefront the same day.
    track(
        &s,
        "wk",
        serde_json::json!([{"type": "track", "event": "Unsubscribed", "userId": "u1", "messageId": "m3",
        "timestamp": "2026-10-06T14:20:00Z"}]),
    );
    track(
        &s,
        "wk",
        serde_json::json!([{"type": "identify", "userId": "u1", "messageId": "m4", "timestamp": "2026-10-06T14:21:00Z",
        "traits": {"email_marketing_consent": "subscribed"}}]),
    );
    let (d, mailer) = run_confirmation(&s);
    assert_eq!(d.reason, Some(Reason::FrequencyCap));
    assert!(mailer.sent().is_empty());
}
