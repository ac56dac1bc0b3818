//! Segment-spec messages (`identify`, `track`, `page`, ...) and their mapping
//! to core events, including the e-commerce v2 event names.
//!
//! The message type reads only the fields nudge uses; everything else in a
//! message is skipped without being stored, which keeps parsing fast.

use jiff::Timestamp;
use nudge_core::event::{CartAction, EventId, EventIdError, MessageRef, OptInLevel};
use nudge_core::filter::Scalar;
use nudge_core::time::optional_timestamp;
use nudge_core::{
    Basket, ConsentSource, ConsentState, ConsentUpdate, Event, EventKind, Identity, Line, Order, Product, Trust,
};
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::serde_util::{amount, id_value, quantity};

/// One Segment message as sent to `/v1/track`, `/v1/identify`, ... or found
/// in a batch or an exported JSONL log.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SegmentMessage {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub event: Option<String>,
    pub name: Option<String>,
    /// A `page` call's category.
    pub category: Option<String>,
    #[serde(deserialize_with = "id_value")]
    pub user_id: Option<String>,
    #[serde(deserialize_with = "id_value")]
    pub anonymous_id: Option<String>,
    pub message_id: Option<String>,
    #[serde(deserialize_with = "optional_timestamp")]
    pub timestamp: Option<Timestamp>,
    #[serde(deserialize_with = "optional_timestamp")]
    pub original_timestamp: Option<Timestamp>,
    #[serde(deserialize_with = "optional_timestamp")]
    pub sent_at: Option<Timestamp>,
    #[serde(deserialize_with = "optional_timestamp")]
    pub received_at: Option<Timestamp>,
    pub properties: Properties,
    pub traits: Traits,
    pub context: Context,
    pub write_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Properties {
    #[serde(deserialize_with = "id_value")]
    pub product_id: Option<String>,
    #[serde(deserialize_with = "id_value")]
    pub sku: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub variant: Option<String>,
    #[serde(deserialize_with = "amount")]
    pub price: Option<f64>,
    #[serde(deserialize_with = "amount")]
    pub quantity: Option<f64>,
    #[serde(deserialize_with = "id_value")]
    pub cart_id: Option<String>,
    #[serde(deserialize_with = "id_value")]
    pub checkout_id: Option<String>,
    #[serde(deserialize_with = "id_value")]
    pub order_id: Option<String>,
    #[serde(deserialize_with = "amount")]
    pub value: Option<f64>,
    #[serde(deserialize_with = "amount")]
    pub revenue: Option<f64>,
    #[serde(deserialize_with = "amount")]
    pub total: Option<f64>,
    pub currency: Option<String>,
    pub url: Option<String>,
    /// Where the shopper can finish this checkout or see this cart (not in
    /// Segment's spec; what stores commonly send).
    pub checkout_url: Option<String>,
    pub cart_url: Option<String>,
    pub products: Vec<ProductProps>,
    /// For email engagement events sent back by nudge's own links.
    pub trigger: Option<String>,
    pub episode: Option<u32>,
    /// Everything else: a custom event's own properties.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProductProps {
    #[serde(deserialize_with = "id_value")]
    pub product_id: Option<String>,
    #[serde(deserialize_with = "id_value")]
    pub sku: Option<String>,
    pub name: Option<String>,
    pub variant: Option<String>,
    pub category: Option<String>,
    #[serde(deserialize_with = "amount")]
    pub price: Option<f64>,
    #[serde(deserialize_with = "amount")]
    pub quantity: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Traits {
    pub email: Option<String>,
    #[serde(alias = "firstName")]
    pub first_name: Option<String>,
    #[serde(alias = "lastName")]
    pub last_name: Option<String>,
    pub email_marketing_consent: Option<ConsentTrait>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Context {
    pub traits: Option<Traits>,
    /// The device's IANA time zone (analytics.js and the mobile libraries
    /// set it).
    pub timezone: Option<String>,
}

/// `email_marketing_consent` as a bare state (`"subscribed"`) or as Shopify's
/// object `{state, opt_in_level, consent_updated_at}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ConsentTrait {
    State(ConsentState),
    Full {
        state: ConsentState,
        #[serde(default)]
        opt_in_level: Option<OptInLevel>,
        #[serde(default)]
        consent_updated_at: Option<Timestamp>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("missing `type`")]
    MissingType,
    #[error("unsupported `type` {0:?} (expected identify, track, page, screen, group or alias)")]
    UnknownType(String),
    #[error("a track message needs `event`")]
    MissingEvent,
    #[error("needs `userId` or `anonymousId`")]
    MissingIdentity,
    #[error("needs `timestamp` (or `sentAt` / `receivedAt`)")]
    MissingTimestamp,
    #[error("`messageId` must be at most 100 characters")]
    MessageIdTooLong,
    #[error("`messageId`: {0}")]
    BadMessageId(#[from] EventIdError),
}

/// Marks events as received through `source`: their consent changes name
/// it, and a browser key's events are only [`Trust::Public`].
pub fn attribute(events: &mut [Event], source: ConsentSource) {
    for e in events {
        e.trust = if source == ConsentSource::BrowserKey { Trust::Public } else { Trust::Verified };
        if let EventKind::ConsentChanged { consent } = &mut e.kind {
            consent.source = Some(source);
        }
    }
}

impl SegmentMessage {
    /// When it happened: `timestamp`, else `originalTimestamp`, else the
    /// time it was sent or received.
    pub fn occurred_at(&self) -> Option<Timestamp> {
        self.timestamp.or(self.original_timestamp).or(self.sent_at).or(self.received_at)
    }

    /// Maps the message to core events, moving its strings into them. The
    /// events are trusted and their consent comes from an import: a shell
    /// that received them over the network says otherwise with
    /// [`attribute`].
    /// `fallback_id` is used when the message has no `messageId` (e.g. a
    /// stable hash of the raw line), and `received` when it carries no time.
    pub fn into_events(
        mut self,
        shop: &str,
        fallback_id: &str,
        received: Option<Timestamp>,
    ) -> Result<Vec<Event>, SegmentError> {
        let kind = self.kind.take().ok_or(SegmentError::MissingType)?;
        if self.user_id.is_none() && self.anonymous_id.is_none() {
            return Err(SegmentError::MissingIdentity);
        }
        let id = match self.message_id.take() {
            Some(m) if m.len() > 100 => return Err(SegmentError::MessageIdTooLong),
            Some(m) => EventId::parse(m)?,
            None => EventId::parse(fallback_id)?,
        };
        let occurred_at = self.occurred_at().or(received).ok_or(SegmentError::MissingTimestamp)?;
        let email = self
            .traits
            .email
            .take()
            .or_else(|| self.context.traits.as_mut().and_then(|t| t.email.take()))
            .filter(|e| e.contains('@'));
        let identity = Identity {
            customer_id: self.user_id.take(),
            email,
            anonymous_id: self.anonymous_id.take(),
            cart_token: self.properties.cart_id.clone(),
            checkout_token: self.properties.checkout_id.clone(),
        };
        // One event for most messages; an identify with consent gives two.
        let (first, second) = match kind.as_str() {
            "identify" => {
                // RudderStack's libraries send an identify's traits in
                // `context.traits` only.
                let context = self.context.traits.take().unwrap_or_default();
                let profile = EventKind::ProfileUpdated {
                    first_name: self.traits.first_name.take().or(context.first_name),
                    last_name: self.traits.last_name.take().or(context.last_name),
                };
                let consent = self.traits.email_marketing_consent.take().or(context.email_marketing_consent).map(|c| {
                    let (state, opt_in_level, updated_at) = match c {
                        ConsentTrait::State(s) => (s, None, None),
                        ConsentTrait::Full { state, opt_in_level, consent_updated_at } => {
                            (state, opt_in_level, consent_updated_at)
                        }
                    };
                    EventKind::ConsentChanged {
                        consent: ConsentUpdate { state, opt_in_level, updated_at, source: Some(ConsentSource::Import) },
                    }
                });
                (Some(profile), consent)
            }
            "page" | "screen" => {
                let category = self.category.take().or(self.properties.category.take());
                let page = EventKind::PageViewed { url: self.properties.url.take(), category, name: self.name.take() };
                (Some(page), None)
            }
            "track" => (Some(self.track_kind(&id)?), None),
            "group" | "alias" => (None, None),
            other => return Err(SegmentError::UnknownType(other.to_owned())),
        };
        let time_zone = self.context.timezone.take();
        let event = |id: EventId, identity: Identity, kind: EventKind| Event {
            id,
            shop: shop.to_owned(),
            occurred_at,
            identity,
            kind,
            trust: Trust::Verified,
            received_at: None,
            time_zone: time_zone.clone(),
        };
        // A second event gets the message id with `#1` appended.
        Ok(match (first, second) {
            (Some(a), Some(b)) => {
                let second_id = id.tagged("#1");
                vec![event(id, identity.clone(), a), event(second_id, identity, b)]
            }
            (Some(a), None) => vec![event(id, identity, a)],
            (None, _) => Vec::new(),
        })
    }

    fn track_kind(&mut self, message_id: &str) -> Result<EventKind, SegmentError> {
        let name = self.event.take().ok_or(SegmentError::MissingEvent)?;
        Ok(match name.as_str() {
            "Product Viewed" => EventKind::ProductViewed { product: self.product() },
            "Product Added to Wishlist" => EventKind::WishlistAdded { product: self.product() },
            "Product Added" | "Product Removed" | "Cart Viewed" => {
                let token = self.properties.cart_id.take();
                let action = match name.as_str() {
                    "Product Added" => CartAction::ProductAdded,
                    "Product Removed" => CartAction::ProductRemoved,
                    _ => CartAction::CartViewed,
                };
                EventKind::CartUpdated { basket: self.basket(token), action: Some(action) }
            }
            "Checkout Started" => {
                let p = &mut self.properties;
                let token = p.checkout_id.take().or(p.order_id.take()).or(p.cart_id.take());
                // On a checkout, `url` is the checkout page.
                let page = p.url.take();
                let mut basket = self.basket(token);
                basket.recovery_url = basket.recovery_url.or(page.filter(|u| web_link(u)));
                EventKind::CheckoutStarted { basket }
            }
            "Order Completed" => {
                let p = &mut self.properties;
                EventKind::OrderPlaced {
                    order: Order {
                        id: p.order_id.take().unwrap_or_else(|| message_id.to_owned()),
                        value: p.total.or(p.revenue).or(p.value).unwrap_or(0.0),
                        currency: p.currency.take(),
                        tokens: [p.checkout_id.take(), p.cart_id.take()].into_iter().flatten().collect(),
                        product_ids: p
                            .products
                            .iter_mut()
                            .filter_map(|l| l.product_id.take().or(l.sku.take()))
                            .collect(),
                    },
                }
            }
            "Order Cancelled" => {
                EventKind::OrderCancelled { order_id: self.properties.order_id.take().unwrap_or_default() }
            }
            "Email Opened" => EventKind::EmailOpened { message: self.message_ref() },
            "Email Link Clicked" => EventKind::EmailClicked { message: self.message_ref() },
            "Email Bounced" => EventKind::EmailBounced { permanent: true },
            "Email Marked as Spam" => EventKind::EmailComplained {},
            "Unsubscribed" => EventKind::ConsentChanged {
                consent: ConsentUpdate {
                    state: ConsentState::Unsubscribed,
                    opt_in_level: None,
                    updated_at: None,
                    source: Some(ConsentSource::Import),
                },
            },
            _ => EventKind::Custom { name, properties: self.custom_properties() },
        })
    }

    /// A custom event's scalar properties, at most [`CUSTOM_PROPERTIES`],
    /// names and texts cut to a bound; nested values are left out.
    fn custom_properties(&mut self) -> BTreeMap<String, Scalar> {
        let p = &mut self.properties;
        let mut out = BTreeMap::new();
        let typed = [
            ("category", p.category.take().map(Scalar::Text)),
            ("name", p.name.take().map(Scalar::Text)),
            ("product_id", p.product_id.take().map(Scalar::Text)),
            ("order_id", p.order_id.take().map(Scalar::Text)),
            ("currency", p.currency.take().map(Scalar::Text)),
            ("url", p.url.take().map(Scalar::Text)),
            ("value", p.value.map(Scalar::Number)),
            ("price", p.price.map(Scalar::Number)),
        ];
        for (k, v) in typed {
            if let Some(v) = v {
                out.insert(k.to_owned(), v);
            }
        }
        for (k, v) in std::mem::take(&mut p.other) {
            if out.len() >= CUSTOM_PROPERTIES || k.len() > 64 {
                continue;
            }
            let v = match v {
                serde_json::Value::Bool(b) => Scalar::Flag(b),
                serde_json::Value::Number(n) => match n.as_f64() {
                    Some(f) => Scalar::Number(f),
                    None => continue,
                },
                serde_json::Value::String(t) => Scalar::Text(t.chars().take(200).collect()),
                _ => continue,
            };
            out.insert(k, v);
        }
        out
    }

    fn product(&mut self) -> Product {
        let p = &mut self.properties;
        Product {
            id: p.product_id.take().or(p.sku.take()).unwrap_or_default(),
            category: p.category.take(),
            title: p.name.take(),
            price: p.price,
        }
    }

    fn basket(&mut self, token: Option<String>) -> Basket {
        let p = &mut self.properties;
        let lines: Vec<Line> = if p.products.is_empty() {
            p.product_id.take().or(p.sku.take()).map_or_else(Vec::new, |id| {
                vec![Line {
                    product_id: id,
                    variant_id: None,
                    title: p.name.take(),
                    variant_title: p.variant.take(),
                    quantity: quantity(p.quantity),
                    price: p.price.unwrap_or(0.0),
                }]
            })
        } else {
            std::mem::take(&mut p.products)
                .into_iter()
                .map(|l| Line {
                    product_id: l.product_id.or(l.sku).unwrap_or_default(),
                    variant_id: None,
                    title: l.name,
                    variant_title: l.variant,
                    quantity: quantity(l.quantity),
                    price: l.price.unwrap_or(0.0),
                })
                .collect()
        };
        let value = p
            .value
            .or(p.revenue)
            .or(p.total)
            .unwrap_or_else(|| lines.iter().map(|l| l.price * f64::from(l.quantity)).sum());
        let recovery_url = p.checkout_url.take().or(p.cart_url.take()).filter(|u| web_link(u));
        Basket { token, value, currency: p.currency.take(), recovery_url, lines }
    }

    fn message_ref(&mut self) -> MessageRef {
        MessageRef { trigger: self.properties.trigger.take(), episode: self.properties.episode }
    }
}

/// Properties kept of a custom event.
pub const CUSTOM_PROPERTIES: usize = 16;

/// An http(s) link: nothing else belongs behind an email's button.
fn web_link(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/segment");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn map(json: &str) -> Vec<Event> {
        let m: SegmentMessage = serde_json::from_str(json).unwrap();
        m.into_events("shop", "fallback", None).unwrap()
    }

    /// The e-commerce spec samples show properties only; a client library
    /// adds the identity and time, as done here.
    fn map_spec_sample(json: &str) -> Vec<Event> {
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["userId"] = "u-1".into();
        v["timestamp"] = "2026-01-01T00:00:00Z".into();
        map(&v.to_string())
    }

    #[test]
    fn ecommerce_v2_fixtures_map_to_the_vocabulary() {
        for (file, kind) in [
            ("ecommerce-v2/track.product_viewed.json", "product_viewed"),
            ("ecommerce-v2/track.product_added.json", "cart_updated"),
            ("ecommerce-v2/track.checkout_started.json", "checkout_started"),
            ("ecommerce-v2/track.order_completed.json", "order_placed"),
            ("ecommerce-v2/track.product_added_to_wishlist.json", "wishlist_added"),
        ] {
            let events = map_spec_sample(&fixture(file));
            assert_eq!(events.len(), 1, "{file}");
            assert_eq!(events[0].kind.name(), kind, "{file}");
        }
    }

    #[test]
    fn every_segment_name_the_rules_refuse_as_custom_arrives_as_its_built_in_event() {
        for (name, builtin) in nudge_core::event::SEGMENT_NAMES {
            let msg = serde_json::json!({"type": "track", "event": name, "userId": "u-1", "messageId": "m",
                "timestamp": "2026-01-01T00:00:00Z", "properties": {"product_id": "p1", "order_id": "o1"}});
            let events = map(&msg.to_string());
            assert!(events[0].kind.is_named(builtin), "{name}: {:?}", events[0].kind);
        }
        let added = map_spec_sample(&fixture("ecommerce-v2/track.product_added.json"));
        assert_eq!((added[0].kind.name(), added[0].kind.detail_name()), ("cart_updated", Some("product_added")));
    }

    #[test]
    fn a_checkout_s_recovery_link_comes_from_checkout_url_or_its_page_url_and_only_a_web_link() {
        let checkout = |props: serde_json::Value| {
            let msg = serde_json::json!({"type": "track", "event": "Checkout Started", "userId": "u-1",
                "messageId": "m", "timestamp": "2026-01-01T00:00:00Z", "properties": props});
            match &map(&msg.to_string())[0].kind {
                EventKind::CheckoutStarted { basket } => basket.recovery_url.clone(),
                other => panic!("{other:?}"),
            }
        };
        let link = "https://shop.example/checkouts/c1/recover";
        assert_eq!(
            checkout(serde_json::json!({"checkout_url": link, "url": "https://x.example/"})).as_deref(),
            Some(link)
        );
        assert_eq!(checkout(serde_json::json!({"url": link})).as_deref(), Some(link));
        assert_eq!(checkout(serde_json::json!({"checkout_url": "javascript:alert(1)"})), None);
        assert_eq!(checkout(serde_json::json!({})), None);
    }

    #[test]
    fn an_identify_s_traits_sent_only_in_the_context_as_rudderstack_sends_them_count() {
        let msg = r#"{"type":"identify","userId":"u-1","messageId":"m","timestamp":"2026-01-01T00:00:00Z",
            "context":{"traits":{"email":"a@example.com","first_name":"Ada","last_name":"Lovelace","email_marketing_consent":"subscribed"}}}"#;
        let events = map(msg);
        assert_eq!(events[0].identity.email.as_deref(), Some("a@example.com"));
        assert_eq!(
            events[0].kind,
            EventKind::ProfileUpdated { first_name: Some("Ada".into()), last_name: Some("Lovelace".into()) }
        );
        assert!(
            matches!(&events[1].kind, EventKind::ConsentChanged { consent } if consent.state == ConsentState::Subscribed)
        );
    }

    #[test]
    fn the_device_time_zone_in_the_context_travels_with_each_event() {
        let msg = r#"{"type":"identify","userId":"u-1","messageId":"m","timestamp":"2026-01-01T00:00:00Z",
            "context":{"timezone":"Europe/Berlin"},"traits":{"email":"a@example.com","email_marketing_consent":"subscribed"}}"#;
        let events = map(msg);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.time_zone.as_deref() == Some("Europe/Berlin")));
    }

    #[test]
    fn a_custom_event_keeps_its_scalar_properties_and_a_page_its_category_and_name() {
        let custom = r#"{"type":"track","event":"Review Submitted","userId":"u-1","messageId":"m","timestamp":"2026-01-01T00:00:00Z",
            "properties":{"rating":5,"channel":"web","verified":true,"category":"shoes","photos":["a"],"meta":{"x":1}}}"#;
        let EventKind::Custom { name, properties } = &map(custom)[0].kind else { panic!("not custom") };
        assert_eq!(name, "Review Submitted");
        assert_eq!(properties.get("rating"), Some(&Scalar::Number(5.0)));
        assert_eq!(properties.get("channel"), Some(&Scalar::Text("web".into())));
        assert_eq!(properties.get("verified"), Some(&Scalar::Flag(true)));
        assert_eq!(properties.get("category"), Some(&Scalar::Text("shoes".into())));
        assert!(!properties.contains_key("photos") && !properties.contains_key("meta"), "scalars only");
        let page = r#"{"type":"page","name":"Trail","category":"Running","userId":"u-1","messageId":"m2","timestamp":"2026-01-01T00:00:00Z"}"#;
        let kind = &map(page)[0].kind;
        assert_eq!(kind.property("category"), Some(Scalar::Text("Running".into())));
        assert_eq!(kind.property("name"), Some(Scalar::Text("Trail".into())));
    }

    #[test]
    fn order_completed_carries_value_and_checkout_token() {
        let events = map_spec_sample(&fixture("ecommerce-v2/track.order_completed.json"));
        let EventKind::OrderPlaced { order } = &events[0].kind else { panic!("not an order") };
        assert!(order.value > 0.0);
        assert!(!order.id.is_empty());
        assert!(!order.product_ids.is_empty());
    }

    #[test]
    fn spec_fixtures_for_identify_track_and_page_decode() {
        for file in ["spec.identify.json", "spec.track.json", "spec.page.json"] {
            let m: SegmentMessage = serde_json::from_str(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(m.into_events("shop", "x", None).is_ok(), "{file}");
        }
    }

    #[test]
    fn identify_with_shopify_consent_state_emits_consent_changed() {
        let events = map(r#"{"type":"identify","userId":"u1","timestamp":"2026-01-01T00:00:00Z","messageId":"m1",
            "traits":{"email":"a@example.com","first_name":"Ada","email_marketing_consent":{"state":"subscribed","opt_in_level":"single_opt_in"}}}"#);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].id, "m1#1");
        let EventKind::ConsentChanged { consent } = &events[1].kind else { panic!() };
        assert_eq!(consent.state, ConsentState::Subscribed);
        assert_eq!(events[0].identity.email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn a_message_id_that_is_empty_or_holds_control_characters_is_refused() {
        for id in ["", "m1\\u0009tab", "m1\\u001b[31m"] {
            let json =
                format!(r#"{{"type":"page","userId":"u1","timestamp":"2026-01-01T00:00:00Z","messageId":"{id}"}}"#);
            let m: SegmentMessage = serde_json::from_str(&json).unwrap();
            assert!(matches!(m.into_events("shop", "fallback", None), Err(SegmentError::BadMessageId(_))), "{id:?}");
        }
    }

    #[test]
    fn bare_consent_state_is_accepted() {
        let events = map(
            r#"{"type":"identify","anonymousId":"a","timestamp":"2026-01-01T00:00:00Z","traits":{"email_marketing_consent":"unsubscribed"}}"#,
        );
        let EventKind::ConsentChanged { consent } = &events[1].kind else { panic!() };
        assert_eq!(consent.state, ConsentState::Unsubscribed);
    }

    #[test]
    fn unknown_track_names_become_custom_events_with_their_name() {
        let events =
            map(r#"{"type":"track","event":"Loyalty Points Earned","userId":1,"timestamp":"2026-01-01T00:00:00Z"}"#);
        assert_eq!(events[0].kind.name(), "Loyalty Points Earned");
        assert_eq!(events[0].identity.customer_id.as_deref(), Some("1"));
        assert_eq!(events[0].id, "fallback");
    }

    #[test]
    fn messages_without_identity_or_time_are_rejected() {
        let m: SegmentMessage =
            serde_json::from_str(r#"{"type":"track","event":"x","timestamp":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(m.into_events("s", "f", None), Err(SegmentError::MissingIdentity));
        let m: SegmentMessage = serde_json::from_str(r#"{"type":"track","event":"x","userId":"u"}"#).unwrap();
        assert_eq!(m.into_events("s", "f", None), Err(SegmentError::MissingTimestamp));
    }
}
