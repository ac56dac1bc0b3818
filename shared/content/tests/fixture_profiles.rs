//! Every example template rendered for profiles built the way production
//! builds them: vendor fixtures through the decoders and the ingest use case.

use nudge_app::{AliasKey, Replay};
use nudge_content::{Catalogue, EmailContext, SendInfo, TemplateSource, Templates, template_name};
use nudge_core::{Profile, Triggers};
use nudge_sources::signature::sign_base64_sha256;
use nudge_sources::{Accepted, Delivery, Secret, SegmentMessage, ShopSources, SourcesConfig, shopify};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn templates() -> Templates {
    let sources = ["cart-reminder", "browse-reminder", "win-back", "confirm-subscription"]
        .iter()
        .map(|n| TemplateSource {
            name: (*n).into(),
            mjml: read(&format!("{ROOT}/examples/templates/{n}.mjml")),
            text: None,
        })
        .collect();
    Templates::compile(sources).unwrap()
}

/// Profiles from Shopify's checkout / customer / consent / order samples and
/// from Segment's e-commerce samples.
fn fixture_profiles(rules: &Triggers) -> Vec<Profile> {
    let config = SourcesConfig {
        shopify_app_secrets: vec![Secret::new(b"s".to_vec())],
        shops: vec![ShopSources { shop: "demo.myshopify.com".into(), ..ShopSources::default() }],
    };
    let mut replay = Replay::new(rules, AliasKey::new(b"k"));
    let now: jiff::Timestamp = "2026-10-06T14:00:00Z".parse().unwrap();
    for (n, (topic, file)) in [
        ("checkouts/create", "checkouts__create.json"),
        ("customers/create", "customers__create.json"),
        ("customers_email_marketing_consent/update", "customers_email_marketing_consent__update.json"),
        ("orders/create", "orders__create.json"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = read(&format!("{FIXTURES}/shopify/{file}")).into_bytes();
        let mut h = http::HeaderMap::new();
        for (k, v) in [
            ("x-shopify-topic", topic.to_owned()),
            ("x-shopify-shop-domain", "demo.myshopify.com".to_owned()),
            ("x-shopify-event-id", format!("e{n}")),
            ("x-shopify-hmac-sha256", sign_base64_sha256(&body, b"s")),
        ] {
            h.insert(k, v.parse().unwrap());
        }
        let Ok(Accepted::Events(events)) =
            shopify::decode(&Delivery { headers: &h, body: &body, received_at: now }, &config)
        else {
            panic!("{file} did not decode")
        };
        for e in &events {
            replay.push(e, now, &mut |_| {}).unwrap();
        }
    }
    for file in [
        "track.product_viewed.json",
        "track.product_added.json",
        "track.checkout_started.json",
        "track.product_added_to_wishlist.json",
    ] {
        let mut v: serde_json::Value =
            serde_json::from_str(&read(&format!("{FIXTURES}/segment/ecommerce-v2/{file}"))).unwrap();
        v["userId"] = "seg-user".into();
        v["timestamp"] = "2026-10-06T13:00:00Z".into();
        let msg: SegmentMessage = serde_json::from_value(v).unwrap();
        for e in msg.into_events("demo", file, None).unwrap() {
            replay.push(&e, now, &mut |_| {}).unwrap();
        }
    }
    replay.store.profiles()
}

#[test]
fn every_example_template_renders_for_every_fixture_derived_profile() {
    let rules = Triggers::parse(&read(&format!("{ROOT}/examples/triggers.toml")), "triggers.toml", None).unwrap();
    let catalogue = Catalogue::from_feed(&read(&format!("{ROOT}/examples/catalogue.json"))).unwrap();
    let templates = templates();
    let profiles = fixture_profiles(&rules);
    assert!(profiles.len() >= 3, "{} profiles", profiles.len());
    let now: jiff::Timestamp = "2026-10-06T15:00:00Z".parse().unwrap();
    let mut rendered = 0;
    for p in &profiles {
        for trigger in &rules.triggers {
            for v in &trigger.variants {
                let send =
                    SendInfo { trigger, variant: &v.id, now, unsubscribe_url: "https://u.example/x", locale: "en-US" };
                let name = template_name(trigger, &v.id);
                // The cart reminder is only ever sent to someone with a cart.
                if name == "cart-reminder" && p.basket.is_none() {
                    continue;
                }
                let r = templates
                    .render_send(p, &rules, &send, &catalogue)
                    .unwrap_or_else(|e| panic!("{name} for {}: {e}", p.id));
                assert!(r.html.contains("<html"), "{name}: not HTML");
                for leftover in ["{{", "{%", "}}", "%}"] {
                    assert!(!r.html.contains(leftover) && !r.text.contains(leftover), "{name}: {leftover} left over");
                }
                assert!(!r.text.trim().is_empty() && !r.subject.is_empty());
                rendered += 1;
            }
        }
        let ctx = EmailContext::confirmation(p, "https://u.example/x", "https://u.example/confirm?t=1");
        let r = templates.render("confirm-subscription", "Confirm, {{ first_name }}", &ctx).unwrap();
        assert!(r.html.contains("https:&#x2f;&#x2f;u.example&#x2f;confirm?t=1"), "the link: {}", r.html);
        assert!(!r.html.contains("{{") && !r.subject.contains("{{"));
    }
    assert!(rendered >= 10, "{rendered} renders");
}
