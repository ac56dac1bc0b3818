//! WooCommerce webhooks (`X-WC-Webhook-*` headers, REST API v3 payloads).
//!
//! The unsigned creation ping (`webhook_id=<n>`, no X-WC headers) is answered
//! before any signature check and touches nothing. WooCommerce builds the
//! payload at delivery time and never retries, so the dedupe id is
//! (resource, id, `date_modified_gmt`), not the delivery id.

use jiff::Timestamp;
use jiff::civil::DateTime;
use nudge_core::{Basket, CatalogueProduct, Event, EventId, EventKind, Identity, Line, Order, ProductChange, Trust};
use serde::Deserialize;

use crate::config::SourcesConfig;
use crate::delivery::{Accepted, Delivery, Rejection, json_error};
use crate::serde_util::{amount, id_value, quantity};
use crate::shop::ShopDomain;

pub const SIGNATURE: &str = "x-wc-webhook-signature";
pub const TOPIC: &str = "x-wc-webhook-topic";
pub const SOURCE: &str = "x-wc-webhook-source";
pub const RESOURCE: &str = "x-wc-webhook-resource";

pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Statuses of an unpaid order a shopper may come back to.
const CHECKOUT_LIKE: [&str; 3] = ["pending", "checkout-draft", "failed"];
const PLACED: [&str; 3] = ["processing", "completed", "on-hold"];
const CANCELLED: [&str; 2] = ["cancelled", "refunded"];

pub fn decode(d: &Delivery<'_>, config: &SourcesConfig) -> Result<Accepted, Rejection> {
    if d.body.len() > MAX_BODY {
        return Err(Rejection::TooLarge { limit: MAX_BODY });
    }
    if is_ping(d) {
        return Ok(Accepted::Ping);
    }
    let signature = d.header(SIGNATURE).ok_or(Rejection::MissingHeader("X-WC-Webhook-Signature"))?;
    // Unsigned, and only a tie-breaker: a source that is not a URL is none.
    let host = d.header(SOURCE).and_then(|s| ShopDomain::from_url(s).ok());
    let shop = config.woocommerce_signer(d.body, signature, host.as_ref())?;
    let topic = d.header(TOPIC).ok_or(Rejection::MissingHeader("X-WC-Webhook-Topic"))?;
    let (resource, action) = topic.split_once('.').unwrap_or((topic, ""));
    if d.header(RESOURCE).is_some_and(|r| r != resource) {
        return Err(Rejection::WrongShape("X-WC-Webhook-Resource does not match X-WC-Webhook-Topic".into()));
    }
    let keys: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
        serde_json::from_slice(d.body).map_err(|e| json_error(&e))?;
    check_shape(resource, action, &keys)?;
    let payload: Payload = serde_json::from_slice(d.body).map_err(|e| json_error(&e))?;
    let id = payload.id.clone().ok_or_else(|| Rejection::Invalid("payload without id".into()))?;
    // The same state of the same resource is one event, however often sent.
    let modified = payload.date_modified_gmt.clone().unwrap_or_default();
    let event_id = EventId::parse(format!("wc:{resource}:{id}:{modified}"))
        .map_err(|e| Rejection::Invalid(format!("id or date_modified_gmt: {e}")))?;
    let at = payload.date_modified_gmt.as_deref().and_then(gmt).unwrap_or(d.received_at);
    // Shipping is where the person is; billing when nothing is shipped.
    let zone = [&payload.shipping, &payload.billing]
        .into_iter()
        .flatten()
        .find_map(|a| crate::zone::of_address(a.country.as_deref(), a.state.as_deref()));
    let event = |identity: Identity, kind: EventKind| Event {
        id: event_id.clone(),
        shop: shop.to_owned(),
        occurred_at: at,
        identity,
        kind,
        trust: Trust::Verified,
        received_at: None,
        time_zone: zone.map(str::to_owned),
    };
    match (resource, action) {
        ("order", "created" | "updated" | "restored") => {
            let status = payload.status.as_deref().unwrap_or("");
            let token = format!("wc-order-{id}");
            let identity = Identity {
                customer_id: payload.customer_id.clone().filter(|c| c != "0"),
                email: payload.billing.as_ref().and_then(|b| b.email.clone()).filter(|e| e.contains('@')),
                checkout_token: Some(token.clone()),
                ..Identity::default()
            };
            let kind = if CHECKOUT_LIKE.contains(&status) {
                EventKind::CheckoutStarted {
                    basket: Basket {
                        token: Some(token),
                        value: payload.total.unwrap_or(0.0),
                        currency: payload.currency.clone(),
                        recovery_url: payload.payment_url.clone(),
                        lines: lines(&payload.line_items),
                    },
                }
            } else if PLACED.contains(&status) {
                EventKind::OrderPlaced {
                    order: Order {
                        id,
                        value: payload.total.unwrap_or(0.0),
                        currency: payload.currency.clone(),
                        tokens: vec![token],
                        product_ids: payload.line_items.iter().filter_map(|l| l.product_id.clone()).collect(),
                    },
                }
            } else if CANCELLED.contains(&status) {
                EventKind::OrderCancelled { order_id: id }
            } else {
                return Ok(Accepted::Ignored { topic: format!("{topic} ({status})") });
            };
            let mut events = vec![event(identity.clone(), kind)];
            let billing = payload.billing.as_ref();
            if let Some(first_name) = billing.and_then(|b| name(&b.first_name)) {
                let last_name = billing.and_then(|b| name(&b.last_name));
                let kind = EventKind::ProfileUpdated { first_name: Some(first_name), last_name };
                events.push(Event { id: event_id.tagged("#profile"), ..event(identity, kind) });
            }
            Ok(Accepted::Events(events))
        }
        ("customer", "created" | "updated") => {
            let identity = Identity {
                customer_id: Some(id),
                email: payload.email.clone().filter(|e| e.contains('@')),
                ..Identity::default()
            };
            // The account's name, else the one on its billing address.
            let billing = payload.billing.as_ref();
            let kind = EventKind::ProfileUpdated {
                first_name: name(&payload.first_name).or_else(|| billing.and_then(|b| name(&b.first_name))),
                last_name: name(&payload.last_name).or_else(|| billing.and_then(|b| name(&b.last_name))),
            };
            Ok(Accepted::Events(vec![event(identity, kind)]))
        }
        // A customer deleted from the store: nudge forgets them too.
        ("customer", "deleted") => {
            let identity = Identity { customer_id: Some(id), ..Identity::default() };
            Ok(Accepted::Events(vec![event(identity, EventKind::EraseRequested {})]))
        }
        ("product", "created" | "updated" | "restored") => {
            let p: WooProduct = serde_json::from_slice(d.body).map_err(|e| json_error(&e))?;
            // A variation (sent under product.updated too) is not a product
            // of its own: carts and views name the parent.
            if p.kind.as_deref() == Some("variation") || p.name.is_none() {
                return Ok(Accepted::Ignored { topic: format!("{topic} (variation)") });
            }
            let product = p.into_catalogue(id, payload.date_modified_gmt.as_deref().and_then(gmt));
            Ok(Accepted::Products { shop: shop.to_owned(), changes: vec![ProductChange::Upsert(product)] })
        }
        ("product", "deleted") => {
            Ok(Accepted::Products { shop: shop.to_owned(), changes: vec![ProductChange::Remove { id, at: Some(at) }] })
        }
        _ => Ok(Accepted::Ignored { topic: topic.to_owned() }),
    }
}

/// The body must be the resource its (unsigned) topic names: a deleted
/// resource's payload is its id alone, an order has an order key and lines,
/// a customer a user name, a product a permalink. A signed order relabelled
/// `customer.deleted` is refused, not an erase.
fn check_shape(
    resource: &str,
    action: &str,
    keys: &std::collections::BTreeMap<String, serde::de::IgnoredAny>,
) -> Result<(), Rejection> {
    let (required, forbidden): (&[&str], &[&str]) = match (resource, action) {
        (_, "deleted") if keys.len() != 1 || !keys.contains_key("id") => {
            return Err(Rejection::WrongShape(format!("a {resource}.deleted payload is only `id`")));
        }
        (_, "deleted") => return Ok(()),
        ("order", _) => (&["id", "order_key", "line_items"], &["username", "permalink"]),
        ("customer", _) => (&["id", "username"], &["order_key", "line_items", "permalink"]),
        ("product", _) => (&["id", "permalink"], &["order_key", "line_items", "username"]),
        _ => return Ok(()),
    };
    if let Some(missing) = required.iter().find(|k| !keys.contains_key(**k)) {
        return Err(Rejection::WrongShape(format!("a {resource}.{action} payload has `{missing}`")));
    }
    if let Some(foreign) = forbidden.iter().find(|k| keys.contains_key(**k)) {
        return Err(Rejection::WrongShape(format!("a {resource}.{action} payload has no `{foreign}`")));
    }
    Ok(())
}

/// A `product.*` payload (the REST API's product resource) as the catalogue
/// keeps it. Stock counts only where the shop manages it; a product that is
/// not published, or is out of stock, is never recommended.
#[derive(Deserialize, Default)]
#[serde(default)]
struct WooProduct {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    permalink: Option<String>,
    status: Option<String>,
    /// `""` for variable products (their price lives on the variations).
    price: Option<String>,
    manage_stock: Option<bool>,
    stock_quantity: Option<i64>,
    stock_status: Option<String>,
    categories: Vec<WooTerm>,
    images: Vec<WooImage>,
    average_rating: Option<String>,
    rating_count: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WooTerm {
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WooImage {
    src: Option<String>,
}

impl WooProduct {
    fn into_catalogue(self, id: String, updated_at: Option<Timestamp>) -> CatalogueProduct {
        let rated = self.rating_count.filter(|n| *n > 0);
        CatalogueProduct {
            id,
            title: self.name.unwrap_or_default(),
            url: self.permalink.filter(|u| !u.is_empty()),
            image: self.images.into_iter().find_map(|i| i.src),
            price: self.price.and_then(|p| p.trim().parse().ok()),
            currency: None,
            category: self.categories.into_iter().find_map(|c| c.name),
            inventory: self.stock_quantity.filter(|_| self.manage_stock == Some(true)),
            available: self.status.as_deref().is_none_or(|s| s == "publish")
                && self.stock_status.as_deref() != Some("outofstock"),
            rating: rated.and(self.average_rating.and_then(|r| r.trim().parse().ok())),
            review_count: rated,
            updated_at,
        }
    }
}

/// The creation ping: a form body `webhook_id=<digits>` without WooCommerce
/// headers.
fn is_ping(d: &Delivery<'_>) -> bool {
    let unsigned = d.header(SIGNATURE).is_none() && d.header(TOPIC).is_none();
    let body = std::str::from_utf8(d.body).unwrap_or("").trim();
    unsigned
        && body
            .strip_prefix("webhook_id=")
            .is_some_and(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A name field that says something (WooCommerce sends `""` for none).
fn name(field: &Option<String>) -> Option<String> {
    field.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned)
}

/// WooCommerce's `*_gmt` fields: ISO date-time without an offset, in UTC.
fn gmt(s: &str) -> Option<Timestamp> {
    s.parse::<DateTime>().ok().and_then(|dt| dt.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok()).map(|z| z.timestamp())
}

fn lines(items: &[LineItem]) -> Vec<Line> {
    items
        .iter()
        .map(|l| Line {
            product_id: l.product_id.clone().unwrap_or_default(),
            variant_id: l.variation_id.clone().filter(|v| v != "0"),
            title: l.name.clone(),
            variant_title: None,
            quantity: quantity(l.quantity),
            price: l.price.unwrap_or(0.0),
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Payload {
    #[serde(deserialize_with = "id_value")]
    id: Option<String>,
    status: Option<String>,
    currency: Option<String>,
    #[serde(deserialize_with = "amount")]
    total: Option<f64>,
    #[serde(deserialize_with = "id_value")]
    customer_id: Option<String>,
    billing: Option<Address>,
    shipping: Option<Address>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    payment_url: Option<String>,
    date_modified_gmt: Option<String>,
    line_items: Vec<LineItem>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Address {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    country: Option<String>,
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LineItem {
    #[serde(deserialize_with = "id_value")]
    product_id: Option<String>,
    #[serde(deserialize_with = "id_value")]
    variation_id: Option<String>,
    name: Option<String>,
    #[serde(deserialize_with = "amount")]
    quantity: Option<f64>,
    #[serde(deserialize_with = "amount")]
    price: Option<f64>,
}
