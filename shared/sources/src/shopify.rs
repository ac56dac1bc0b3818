//! Shopify webhooks (`X-Shopify-*` headers, REST JSON payloads).
//!
//! Verified first (HMAC-SHA256 of the raw body, base64, constant time, any
//! configured secret), then decoded by topic. The dedupe id is
//! `X-Shopify-Event-Id` (falling back to `X-Shopify-Webhook-Id`); topics nudge
//! has no use for are acknowledged as ignored so Shopify does not retry them.

use jiff::Timestamp;
use nudge_core::event::{EventId, OptInLevel};
use nudge_core::{
    Basket, CatalogueProduct, ConsentSource, ConsentState, ConsentUpdate, Event, EventKind, Identity, Line, Order,
    ProductChange, Trust,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::SourcesConfig;
use crate::delivery::{Accepted, Delivery, Rejection, json_error};
use crate::serde_util::{amount, id_value, quantity};
use crate::shop::ShopDomain;
use crate::signature::verify_base64_sha256;

pub const TOPIC: &str = "x-shopify-topic";
pub const HMAC: &str = "x-shopify-hmac-sha256";
pub const SHOP_DOMAIN: &str = "x-shopify-shop-domain";
pub const EVENT_ID: &str = "x-shopify-event-id";
pub const WEBHOOK_ID: &str = "x-shopify-webhook-id";
pub const TRIGGERED_AT: &str = "x-shopify-triggered-at";

/// Largest body accepted (Shopify order payloads with many lines run to
/// hundreds of KB).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Verifies and decodes one Shopify delivery.
///
/// The signature covers the body only: the topic, shop domain and event id
/// headers are the sender's word. So the shop must be one this
/// configuration serves, the body must have the shape of the topic it is
/// delivered under (a signed checkout relabelled `customers/redact` is a
/// 400), a compliance payload's own `shop_domain` must name the same shop,
/// and events are deduplicated on ids derived from the signed content.
pub fn decode(d: &Delivery<'_>, config: &SourcesConfig) -> Result<Accepted, Rejection> {
    if d.body.len() > MAX_BODY {
        return Err(Rejection::TooLarge { limit: MAX_BODY });
    }
    let signature = d.header(HMAC).ok_or(Rejection::MissingHeader("X-Shopify-Hmac-Sha256"))?;
    let shop = d.header(SHOP_DOMAIN).ok_or(Rejection::MissingHeader("X-Shopify-Shop-Domain"))?;
    let shop =
        ShopDomain::parse(shop).map_err(|_| Rejection::Invalid("X-Shopify-Shop-Domain is not a host name".into()))?;
    let secrets = config.shopify_secrets(&shop);
    if secrets.is_empty() {
        return Err(Rejection::UnknownShop);
    }
    verify_base64_sha256(d.body, signature, &secrets)?;
    let topic = d.header(TOPIC).ok_or(Rejection::MissingHeader("X-Shopify-Topic"))?;
    let delivery_id =
        d.header(EVENT_ID).or(d.header(WEBHOOK_ID)).ok_or(Rejection::MissingHeader("X-Shopify-Event-Id"))?;
    let keys = top_level_keys(d.body)?;
    check_shape(topic, &keys)?;
    let triggered = d.header(TRIGGERED_AT).and_then(|t| t.parse::<Timestamp>().ok());
    let id = EventId::parse(delivery_id).map_err(|e| Rejection::Invalid(format!("X-Shopify-Event-Id: {e}")))?;
    let mut ctx = Ctx { shop, id, fallback_time: triggered.unwrap_or(d.received_at) };
    match topic {
        "checkouts/create" | "checkouts/update" => {
            let c: Checkout = parse(d.body)?;
            ctx.content_id("checkout", c.token.as_deref(), c.updated_at)?;
            ctx.checkout(c)
        }
        "carts/create" | "carts/update" => {
            let c: Cart = parse(d.body)?;
            ctx.content_id("cart", c.token.as_deref().or(c.id.as_deref()), c.updated_at)?;
            ctx.cart(c)
        }
        "orders/create" | "orders/paid" | "orders/cancelled" => {
            let o: ShopifyOrder = parse(d.body)?;
            ctx.content_id(topic, o.id.as_deref(), o.updated_at)?;
            if topic == "orders/cancelled" { ctx.order_cancelled(o) } else { ctx.order(o) }
        }
        "customers/create" | "customers/update" => {
            let c: Customer = parse(d.body)?;
            ctx.content_id("customer", c.id.as_deref(), c.updated_at)?;
            ctx.customer(c)
        }
        "customers_email_marketing_consent/update" => {
            let c: ConsentPayload = parse(d.body)?;
            let at = c.email_marketing_consent.as_ref().and_then(|m| m.consent_updated_at);
            ctx.content_id("consent", c.customer_id.as_deref(), at)?;
            ctx.consent(c)
        }
        "customers/data_request" | "customers/redact" => {
            let c: Compliance = parse(d.body)?;
            ctx.same_shop(c.shop_domain.as_deref())?;
            let kind =
                if topic == "customers/redact" { EventKind::EraseRequested {} } else { EventKind::DataRequested {} };
            ctx.compliance(c, kind)
        }
        "shop/redact" => {
            let c: Compliance = parse(d.body)?;
            ctx.same_shop(c.shop_domain.as_deref())?;
            Ok(Accepted::EraseShop { shop: ctx.shop.into_string() })
        }
        "products/create" | "products/update" => {
            let change = ProductChange::Upsert(product(parse(d.body)?, &ctx.shop)?);
            Ok(Accepted::Products { shop: ctx.shop.into_string(), changes: vec![change] })
        }
        "products/delete" => {
            let id = parse::<Deleted>(d.body)?.id.ok_or_else(|| Rejection::Invalid("product without id".into()))?;
            // No time in the payload: the delivery's (when Shopify fired it).
            let at = Some(ctx.fallback_time);
            Ok(Accepted::Products { shop: ctx.shop.into_string(), changes: vec![ProductChange::Remove { id, at }] })
        }
        other => Ok(Accepted::Ignored { topic: other.to_owned() }),
    }
}

/// The top-level keys of a JSON object body.
fn top_level_keys(body: &[u8]) -> Result<Vec<String>, Rejection> {
    let map: std::collections::BTreeMap<String, serde::de::IgnoredAny> = parse(body)?;
    Ok(map.into_keys().collect())
}

/// The keys a body delivered under `topic` must have, and keys that only
/// other topics' payloads carry. Unknown topics have no shape to check.
fn shape(topic: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    const ORDER_ONLY: &str = "financial_status";
    const COMPLIANCE_ONLY: &str = "shop_domain";
    Some(match topic {
        "checkouts/create" | "checkouts/update" => (&["token", "line_items"], &[ORDER_ONLY, COMPLIANCE_ONLY]),
        "carts/create" | "carts/update" => {
            (&["line_items"], &[ORDER_ONLY, COMPLIANCE_ONLY, "abandoned_checkout_url", "email"])
        }
        "orders/create" | "orders/paid" | "orders/cancelled" => {
            (&["id", ORDER_ONLY, "line_items"], &[COMPLIANCE_ONLY, "abandoned_checkout_url"])
        }
        "customers/create" | "customers/update" => (&["id"], &[ORDER_ONLY, COMPLIANCE_ONLY, "line_items", "token"]),
        "customers_email_marketing_consent/update" => {
            (&["customer_id", "email_marketing_consent"], &[COMPLIANCE_ONLY, "line_items"])
        }
        "customers/data_request" => (&[COMPLIANCE_ONLY, "customer", "data_request"], &["line_items"]),
        "customers/redact" => (&[COMPLIANCE_ONLY, "customer"], &["data_request", "line_items"]),
        "shop/redact" => (&[COMPLIANCE_ONLY, "shop_id"], &["customer", "line_items"]),
        "products/create" | "products/update" => (&["id", "title", "variants"], &["line_items", COMPLIANCE_ONLY]),
        "products/delete" => (&["id"], &[]),
        _ => return None,
    })
}

fn check_shape(topic: &str, keys: &[String]) -> Result<(), Rejection> {
    let Some((required, forbidden)) = shape(topic) else { return Ok(()) };
    let has = |k: &str| keys.iter().any(|have| have == k);
    if let Some(missing) = required.iter().find(|k| !has(k)) {
        return Err(Rejection::WrongShape(format!("a {topic} payload has `{missing}`")));
    }
    if let Some(foreign) = forbidden.iter().find(|k| has(k)) {
        return Err(Rejection::WrongShape(format!("a {topic} payload has no `{foreign}`")));
    }
    // A deleted product's payload is its id alone.
    if topic == "products/delete" && keys.len() != 1 {
        return Err(Rejection::WrongShape("a products/delete payload is only `id`".into()));
    }
    Ok(())
}

/// A `products/*` payload as the catalogue keeps it: stock summed over the
/// tracked variants, the lowest variant price, the first image, the product
/// page on the shop's domain. Drafts and archived products are unavailable.
fn product(p: ShopifyProduct, shop: &ShopDomain) -> Result<CatalogueProduct, Rejection> {
    let id = p.id.ok_or_else(|| Rejection::Invalid("product without id".into()))?;
    let tracked: Vec<i64> = p.variants.iter().filter_map(|v| v.inventory_quantity).collect();
    Ok(CatalogueProduct {
        id,
        title: p.title.unwrap_or_default(),
        url: p.handle.filter(|h| !h.is_empty()).map(|h| format!("https://{shop}/products/{h}")),
        image: p.image.and_then(|i| i.src).or_else(|| p.images.into_iter().find_map(|i| i.src)),
        price: p.variants.iter().filter_map(|v| v.price).reduce(f64::min),
        currency: None,
        category: p.product_type.filter(|t| !t.is_empty()),
        inventory: (!tracked.is_empty()).then(|| tracked.iter().map(|n| (*n).max(0)).sum()),
        available: p.status.as_deref().is_none_or(|s| s == "active"),
        rating: None,
        review_count: None,
        updated_at: p.updated_at.and_then(|t| t.parse().ok()),
    })
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|e| json_error(&e))
}

struct Ctx {
    shop: ShopDomain,
    id: EventId,
    fallback_time: Timestamp,
}

impl Ctx {
    /// Dedupes on the signed content (what it is and when it last
    /// changed), not on the unsigned delivery id: the same body re-sent
    /// with a fresh `X-Shopify-Event-Id` is a duplicate. Without both parts
    /// the delivery id stays.
    fn content_id(&mut self, what: &str, id: Option<&str>, updated: Option<Timestamp>) -> Result<(), Rejection> {
        if let (Some(id), Some(at)) = (id.filter(|i| !i.is_empty()), updated) {
            self.id = EventId::parse(format!("shopify:{what}:{id}:{}", at.as_second()))
                .map_err(|e| Rejection::Invalid(format!("the {what}'s id: {e}")))?;
        }
        Ok(())
    }

    /// A compliance payload names its shop: it must be the signed-for one.
    fn same_shop(&self, body_domain: Option<&str>) -> Result<(), Rejection> {
        match body_domain.map(ShopDomain::parse) {
            Some(Ok(d)) if d == self.shop => Ok(()),
            _ => Err(Rejection::WrongShape("shop_domain does not match X-Shopify-Shop-Domain".into())),
        }
    }

    fn event(&self, tag: &'static str, at: Option<Timestamp>, identity: Identity, kind: EventKind) -> Event {
        Event {
            id: if tag.is_empty() { self.id.clone() } else { self.id.tagged(tag) },
            shop: self.shop.to_string(),
            occurred_at: at.unwrap_or(self.fallback_time),
            identity,
            kind,
            trust: Trust::Verified,
            received_at: None,
            time_zone: None,
        }
    }

    fn checkout(&self, c: Checkout) -> Result<Accepted, Rejection> {
        if c.completed_at.is_some() {
            // Completed: the order webhook carries the purchase.
            return Ok(Accepted::Ignored { topic: "checkouts/update (completed)".into() });
        }
        let customer = c.customer.unwrap_or_default();
        let email = c.email.or(customer.email.clone()).filter(|e| e.contains('@'));
        let identity = Identity {
            customer_id: customer.id.clone(),
            email: email.clone(),
            checkout_token: c.token.clone(),
            cart_token: c.cart_token.clone(),
            ..Identity::default()
        };
        let basket = Basket {
            token: c.token.clone().or(c.cart_token.clone()),
            value: c.total_price.unwrap_or(0.0),
            currency: c.presentment_currency.or(c.currency),
            recovery_url: c.abandoned_checkout_url,
            lines: lines(c.line_items),
        };
        let at = c.updated_at.or(c.created_at);
        // Abandonment needs a way to reach the person: until contact details
        // are entered, a checkout is only a cart.
        let kind = if email.is_some() {
            EventKind::CheckoutStarted { basket }
        } else {
            EventKind::CartUpdated { basket, action: None }
        };
        let addresses = [&c.shipping_address, &c.billing_address, &customer.default_address];
        let mut events = vec![self.event("", at, identity.clone(), kind)];
        events.extend(self.name_event(&customer, &addresses, &identity, at));
        events.extend(self.consent_event(customer.email_marketing_consent, identity, at));
        Ok(Accepted::Events(located(events, &addresses)))
    }

    fn cart(&self, c: Cart) -> Result<Accepted, Rejection> {
        let token = c.token.or(c.id);
        let identity = Identity { cart_token: token.clone(), ..Identity::default() };
        if token.is_none() {
            return Err(Rejection::Invalid("cart without token".into()));
        }
        let lines = lines(c.line_items);
        let value = lines.iter().map(|l| l.price * f64::from(l.quantity)).sum();
        let basket = Basket { token, value, currency: None, recovery_url: None, lines };
        Ok(Accepted::Events(vec![self.event(
            "",
            c.updated_at.or(c.created_at),
            identity,
            EventKind::CartUpdated { basket, action: None },
        )]))
    }

    fn order(&self, o: ShopifyOrder) -> Result<Accepted, Rejection> {
        let id = o.id.ok_or_else(|| Rejection::Invalid("order without id".into()))?;
        let customer = o.customer.unwrap_or_default();
        let identity = Identity {
            customer_id: customer.id.clone(),
            email: o.email.or(o.contact_email).or(customer.email.clone()).filter(|e| e.contains('@')),
            checkout_token: o.checkout_token.clone(),
            cart_token: o.cart_token.clone(),
            ..Identity::default()
        };
        let order = Order {
            id,
            value: o.total_price.unwrap_or(0.0),
            currency: o.presentment_currency.or(o.currency),
            tokens: [o.checkout_token, o.cart_token].into_iter().flatten().collect(),
            product_ids: o.line_items.into_iter().filter_map(|l| l.product_id).collect(),
        };
        let at = o.processed_at.or(o.created_at).or(o.updated_at);
        let addresses = [&o.shipping_address, &o.billing_address, &customer.default_address];
        let name = self.name_event(&customer, &addresses, &identity, at);
        let mut events = vec![self.event("", at, identity, EventKind::OrderPlaced { order })];
        events.extend(name);
        Ok(Accepted::Events(located(events, &addresses)))
    }

    fn order_cancelled(&self, o: ShopifyOrder) -> Result<Accepted, Rejection> {
        let id = o.id.ok_or_else(|| Rejection::Invalid("order without id".into()))?;
        let customer = o.customer.unwrap_or_default();
        let identity = Identity {
            customer_id: customer.id,
            email: o.email.or(customer.email).filter(|e| e.contains('@')),
            checkout_token: o.checkout_token,
            ..Identity::default()
        };
        let at = o.cancelled_at.or(o.updated_at);
        Ok(Accepted::Events(vec![self.event("", at, identity, EventKind::OrderCancelled { order_id: id })]))
    }

    fn customer(&self, c: Customer) -> Result<Accepted, Rejection> {
        let identity = Identity {
            customer_id: c.id.clone(),
            email: c.email.clone().filter(|e| e.contains('@')),
            ..Identity::default()
        };
        if identity.is_empty() {
            return Err(Rejection::Invalid("customer without id or email".into()));
        }
        let at = c.updated_at.or(c.created_at);
        let zone = [&c.default_address];
        let mut events = vec![self.event(
            "",
            at,
            identity.clone(),
            EventKind::ProfileUpdated { first_name: c.first_name, last_name: c.last_name },
        )];
        events.extend(self.consent_event(c.email_marketing_consent, identity, at));
        Ok(Accepted::Events(located(events, &zone)))
    }

    fn consent(&self, c: ConsentPayload) -> Result<Accepted, Rejection> {
        let identity = Identity {
            customer_id: c.customer_id,
            email: c.email_address.filter(|e| e.contains('@')),
            ..Identity::default()
        };
        let at = c.email_marketing_consent.as_ref().and_then(|m| m.consent_updated_at);
        let event = self
            .consent_event(c.email_marketing_consent, identity, at)
            .ok_or_else(|| Rejection::Invalid("email_marketing_consent.state missing or unknown".into()))?;
        Ok(Accepted::Events(vec![Event { id: self.id.clone(), ..event }]))
    }

    fn compliance(&self, c: Compliance, kind: EventKind) -> Result<Accepted, Rejection> {
        let customer = c.customer.unwrap_or_default();
        let identity = Identity {
            customer_id: customer.id,
            email: customer.email.filter(|e| e.contains('@')),
            ..Identity::default()
        };
        if identity.is_empty() {
            return Err(Rejection::Invalid("compliance request names no customer".into()));
        }
        Ok(Accepted::Events(vec![self.event("", None, identity, kind)]))
    }

    /// The person's name, from the customer record or else the first
    /// address that has one (a guest checkout has no customer).
    fn name_event(
        &self,
        customer: &Customer,
        addresses: &[&Option<Address>],
        identity: &Identity,
        at: Option<Timestamp>,
    ) -> Option<Event> {
        let named = |first: &Option<String>, last: &Option<String>| {
            let first = first.as_deref().map(str::trim).filter(|n| !n.is_empty())?;
            Some((first.to_owned(), last.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned)))
        };
        let (first_name, last_name) = named(&customer.first_name, &customer.last_name)
            .or_else(|| addresses.iter().filter_map(|a| a.as_ref()).find_map(|a| named(&a.first_name, &a.last_name)))?;
        let kind = EventKind::ProfileUpdated { first_name: Some(first_name), last_name };
        Some(self.event("#profile", at, identity.clone(), kind))
    }

    fn consent_event(
        &self,
        consent: Option<MarketingConsent>,
        identity: Identity,
        at: Option<Timestamp>,
    ) -> Option<Event> {
        let c = consent?;
        let state = consent_state(c.state.as_deref()?)?;
        let update = ConsentUpdate {
            state,
            opt_in_level: c.opt_in_level.as_deref().and_then(opt_in_level),
            updated_at: c.consent_updated_at.or(at),
            source: Some(ConsentSource::Shopify),
        };
        Some(self.event("#consent", at, identity, EventKind::ConsentChanged { consent: update }))
    }
}

/// Every event of one delivery carries the zone of the first address that
/// settles one (shipping, then billing, then the customer's default).
fn located(mut events: Vec<Event>, addresses: &[&Option<Address>]) -> Vec<Event> {
    let zone = addresses
        .iter()
        .filter_map(|a| a.as_ref())
        .find_map(|a| crate::zone::of_address(a.country_code.as_deref(), a.province_code.as_deref()));
    if let Some(zone) = zone {
        for e in &mut events {
            e.time_zone = Some(zone.to_owned());
        }
    }
    events
}

fn consent_state(s: &str) -> Option<ConsentState> {
    Some(match s.to_ascii_lowercase().as_str() {
        "subscribed" => ConsentState::Subscribed,
        "not_subscribed" => ConsentState::NotSubscribed,
        "unsubscribed" => ConsentState::Unsubscribed,
        "pending" => ConsentState::Pending,
        "redacted" => ConsentState::Redacted,
        "invalid" => ConsentState::Invalid,
        _ => return None,
    })
}

fn opt_in_level(s: &str) -> Option<OptInLevel> {
    Some(match s.to_ascii_lowercase().as_str() {
        "single_opt_in" => OptInLevel::SingleOptIn,
        "confirmed_opt_in" => OptInLevel::ConfirmedOptIn,
        "unknown" => OptInLevel::Unknown,
        _ => return None,
    })
}

fn lines(items: Vec<LineItem>) -> Vec<Line> {
    items
        .into_iter()
        .map(|l| Line {
            product_id: l.product_id.unwrap_or_default(),
            variant_id: l.variant_id,
            title: l.title,
            variant_title: l.variant_title,
            quantity: quantity(l.quantity),
            price: l.price.unwrap_or(0.0),
        })
        .collect()
}

// Payload shapes: only the fields nudge reads.

#[derive(Deserialize, Default)]
#[serde(default)]
struct Checkout {
    #[serde(deserialize_with = "id_value")]
    token: Option<String>,
    #[serde(deserialize_with = "id_value")]
    cart_token: Option<String>,
    email: Option<String>,
    abandoned_checkout_url: Option<String>,
    completed_at: Option<String>,
    currency: Option<String>,
    presentment_currency: Option<String>,
    #[serde(deserialize_with = "amount")]
    total_price: Option<f64>,
    created_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
    customer: Option<Customer>,
    line_items: Vec<LineItem>,
    billing_address: Option<Address>,
    shipping_address: Option<Address>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Cart {
    #[serde(deserialize_with = "id_value")]
    id: Option<String>,
    #[serde(deserialize_with = "id_value")]
    token: Option<String>,
    line_items: Vec<LineItem>,
    created_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ShopifyOrder {
    #[serde(deserialize_with = "id_value")]
    id: Option<String>,
    email: Option<String>,
    contact_email: Option<String>,
    #[serde(deserialize_with = "id_value")]
    checkout_token: Option<String>,
    #[serde(deserialize_with = "id_value")]
    cart_token: Option<String>,
    #[serde(deserialize_with = "amount")]
    total_price: Option<f64>,
    currency: Option<String>,
    presentment_currency: Option<String>,
    customer: Option<Customer>,
    line_items: Vec<LineItem>,
    billing_address: Option<Address>,
    shipping_address: Option<Address>,
    created_at: Option<Timestamp>,
    processed_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
    cancelled_at: Option<Timestamp>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Customer {
    #[serde(deserialize_with = "id_value")]
    id: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email_marketing_consent: Option<MarketingConsent>,
    default_address: Option<Address>,
    created_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
}

/// A billing, shipping or customer address: its names and where it is.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Address {
    first_name: Option<String>,
    last_name: Option<String>,
    country_code: Option<String>,
    province_code: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MarketingConsent {
    state: Option<String>,
    opt_in_level: Option<String>,
    consent_updated_at: Option<Timestamp>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConsentPayload {
    #[serde(deserialize_with = "id_value")]
    customer_id: Option<String>,
    email_address: Option<String>,
    email_marketing_consent: Option<MarketingConsent>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Compliance {
    shop_domain: Option<String>,
    customer: Option<ComplianceCustomer>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ComplianceCustomer {
    #[serde(deserialize_with = "id_value")]
    id: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LineItem {
    #[serde(deserialize_with = "id_value")]
    product_id: Option<String>,
    #[serde(deserialize_with = "id_value")]
    variant_id: Option<String>,
    title: Option<String>,
    variant_title: Option<String>,
    #[serde(deserialize_with = "amount")]
    quantity: Option<f64>,
    #[serde(deserialize_with = "amount")]
    price: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Deleted {
    #[serde(deserialize_with = "id_value")]
    id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ShopifyProduct {
    #[serde(deserialize_with = "id_value")]
    id: Option<String>,
    title: Option<String>,
    handle: Option<String>,
    product_type: Option<String>,
    status: Option<String>,
    updated_at: Option<String>,
    variants: Vec<ProductVariant>,
    image: Option<ProductImage>,
    images: Vec<ProductImage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProductVariant {
    #[serde(deserialize_with = "amount")]
    price: Option<f64>,
    inventory_quantity: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProductImage {
    src: Option<String>,
}
