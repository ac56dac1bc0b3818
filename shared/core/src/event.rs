//! The event vocabulary: what every source (Shopify, WooCommerce, Segment,
//! SES feedback, nudge's own log) is translated into before the core sees it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Longest identifier or short text kept in a profile. Longer values are
/// replaced by a stable fingerprint (ids) or cut (display text), so that no
/// input can make a profile grow past its bound.
pub const MAX_KEY_LEN: usize = 48;
pub const MAX_TEXT_LEN: usize = 64;
/// Longer links are dropped (a cut link would be broken), not stored.
pub const MAX_URL_LEN: usize = 300;

/// An event's dedupe key, parsed: 1 to [`EventId::MAX_LEN`] bytes (plus,
/// for the second event of one message, a short tag of nudge's own), no
/// control characters. Sources' ids (a Segment `messageId`, a Shopify
/// event id) and the ids nudge derives from signed content both go through
/// [`EventId::parse`], so an id in a profile, a log or a key is never
/// empty, huge or a line break.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct EventId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    #[error("an event id cannot be empty")]
    Empty,
    #[error("an event id is at most {} bytes", EventId::MAX_LEN)]
    TooLong,
    #[error("an event id cannot contain control characters")]
    Control,
}

impl EventId {
    pub const MAX_LEN: usize = 256;

    pub fn parse(id: impl Into<String>) -> Result<EventId, EventIdError> {
        let id = id.into();
        if id.is_empty() {
            Err(EventIdError::Empty)
        } else if id.len() > EventId::MAX_LEN {
            Err(EventIdError::TooLong)
        } else if id.chars().any(char::is_control) {
            Err(EventIdError::Control)
        } else {
            Ok(EventId(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id nudge makes for an event of its own (a followed link, say):
    /// `kind` and a fingerprint of `parts`, well-formed by construction.
    pub fn digest(kind: &'static str, parts: &[&[u8]]) -> EventId {
        debug_assert!(kind.len() <= 32 && !kind.chars().any(char::is_control));
        EventId(format!("{kind}:{:016x}", crate::hash::stable_hash(parts)))
    }

    /// The id of another event from the same message: this one with `tag`
    /// (a constant such as `#consent`) appended.
    pub fn tagged(&self, tag: &'static str) -> EventId {
        debug_assert!(tag.len() <= 16 && !tag.chars().any(char::is_control));
        EventId(format!("{}{tag}", self.0))
    }

    /// Whether this id was made from `first` by [`EventId::tagged`].
    pub fn is_tagged_from(&self, first: &EventId) -> bool {
        self.0.len() > first.0.len() && self.0.starts_with(&first.0) && self.0.as_bytes()[first.0.len()] == b'#'
    }
}

/// Whether `next` came from the same incoming message as `first`: an
/// incoming message that says several things (an identify with traits and a
/// consent, a checkout with the customer's consent) becomes consecutive
/// events about the same person, the first with the message's id and the
/// others with that id tagged. Each message is applied as one step, before
/// any check runs.
pub fn same_message(first: &Event, next: &Event) -> bool {
    next.id.is_tagged_from(&first.id) && next.shop == first.shop && next.identity == first.identity
}

/// `events` cut into the messages they came from ([`same_message`]).
pub fn messages<'e>(events: impl IntoIterator<Item = &'e Event>) -> Vec<Vec<&'e Event>> {
    let mut out: Vec<Vec<&Event>> = Vec::new();
    for e in events {
        match out.last_mut() {
            Some(m) if same_message(m[0], e) => m.push(e),
            _ => out.push(vec![e]),
        }
    }
    out
}

impl TryFrom<String> for EventId {
    type Error = EventIdError;
    fn try_from(id: String) -> Result<EventId, EventIdError> {
        EventId::parse(id)
    }
}

impl TryFrom<&str> for EventId {
    type Error = EventIdError;
    fn try_from(id: &str) -> Result<EventId, EventIdError> {
        EventId::parse(id)
    }
}

impl std::ops::Deref for EventId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for EventId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EventId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The header naming the send a message is (shop, profile, trigger,
/// episode, variant, form-encoded). Mail services report a message's
/// headers in their feedback, so a bounce can be joined to its profile even
/// if the message record was never written. No personal data: the profile
/// id is opaque.
pub const REFERENCE_HEADER: &str = "X-Nudge-Ref";

/// One thing that happened to one person in one shop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Dedupe key: the source's own delivery-independent id (Shopify event id,
    /// Segment messageId, ...). Applying an event id twice changes nothing.
    pub id: EventId,
    pub shop: String,
    pub occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Identity::is_empty")]
    pub identity: Identity,
    #[serde(flatten)]
    pub kind: EventKind,
    /// How far the sender is trusted. Absent in logs: `verified`.
    #[serde(default, skip_serializing_if = "Trust::is_verified")]
    pub trust: Trust,
    /// When nudge received it (set by the shell that took the delivery):
    /// a replay of the event log applies it at this time, as production
    /// did, not at `occurred_at` (a late delivery happened earlier than it
    /// arrived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Timestamp>,
    /// The person's IANA time zone, when the sender knows it (Segment's
    /// `context.timezone`): quiet hours are then theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// How far an event's sender is trusted: what it may change about a person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Signed by the storefront, sent with a secret server-side key, made by
    /// nudge itself, or read from an operator's event log.
    #[default]
    Verified,
    /// Authenticated only by a key that storefronts put in web pages (a
    /// browser write key): it cannot grant consent, replace an address a
    /// profile has, or lift a suppression. Opt-outs are honoured.
    Public,
}

impl Trust {
    pub fn is_verified(&self) -> bool {
        *self == Trust::Verified
    }
}

/// What is known about who did it. Any subset may be present.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cart_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_token: Option<String>,
}

impl Identity {
    pub fn is_empty(&self) -> bool {
        self.customer_id.is_none()
            && self.email.is_none()
            && self.anonymous_id.is_none()
            && self.cart_token.is_none()
            && self.checkout_token.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    PageViewed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// The page's category and name, as the storefront tracks them
        /// (Segment's `page` call), for rules that filter on them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    ProductViewed {
        product: Product,
    },
    /// The cart changed or was looked at; `action` says which, when the
    /// source tells (rules may count the umbrella `cart_updated` or each).
    CartUpdated {
        basket: Basket,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<CartAction>,
    },
    CheckoutStarted {
        basket: Basket,
    },
    OrderPlaced {
        order: Order,
    },
    OrderCancelled {
        order_id: String,
    },
    WishlistAdded {
        product: Product,
    },
    EmailOpened {
        message: MessageRef,
    },
    EmailClicked {
        message: MessageRef,
    },
    EmailBounced {
        /// Only permanent bounces suppress; transient ones are recorded.
        permanent: bool,
    },
    EmailComplained {},
    ConsentChanged {
        consent: ConsentUpdate,
    },
    ProfileUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_name: Option<String>,
    },
    EraseRequested {},
    DataRequested {},
    /// A tracked event outside the vocabulary keeps its tracked name, and
    /// its scalar properties (a bounded number) for rules that filter on them.
    Custom {
        name: String,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        properties: std::collections::BTreeMap<String, crate::filter::Scalar>,
    },
}

/// What a shopper did to their cart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartAction {
    ProductAdded,
    ProductRemoved,
    CartViewed,
}

impl EventKind {
    /// The more specific name an event also goes by: `product_added`,
    /// `product_removed` or `cart_viewed` for a `cart_updated` that says
    /// which it was.
    pub fn detail_name(&self) -> Option<&'static str> {
        match self {
            EventKind::CartUpdated { action: Some(a), .. } => Some(match a {
                CartAction::ProductAdded => "product_added",
                CartAction::ProductRemoved => "product_removed",
                CartAction::CartViewed => "cart_viewed",
            }),
            _ => None,
        }
    }

    /// A property rules may filter on (`where`); see
    /// [`crate::filter::known_properties`].
    pub fn property(&self, name: &str) -> Option<crate::filter::Scalar> {
        use crate::filter::Scalar;
        let text = |s: &Option<String>| s.clone().map(Scalar::Text);
        let items = |b: &Basket| Scalar::Number(b.lines.iter().map(|l| f64::from(l.quantity)).sum());
        match (self, name) {
            (EventKind::ProductViewed { product } | EventKind::WishlistAdded { product }, _) => match name {
                "product_id" => Some(Scalar::Text(product.id.clone())),
                "category" => text(&product.category),
                "name" => text(&product.title),
                "price" => product.price.map(Scalar::Number),
                _ => None,
            },
            (EventKind::CartUpdated { basket, .. } | EventKind::CheckoutStarted { basket }, _) => match name {
                "value" => Some(Scalar::Number(basket.value)),
                "currency" => text(&basket.currency),
                "item_count" => Some(items(basket)),
                _ => None,
            },
            (EventKind::OrderPlaced { order }, _) => match name {
                "order_id" => Some(Scalar::Text(order.id.clone())),
                "value" => Some(Scalar::Number(order.value)),
                "currency" => text(&order.currency),
                "item_count" => Some(Scalar::Number(order.product_ids.len() as f64)),
                _ => None,
            },
            (EventKind::PageViewed { url, .. }, "url") => text(url),
            (EventKind::PageViewed { category, .. }, "category") => text(category),
            (EventKind::PageViewed { name: page, .. }, "name") => text(page),
            (EventKind::EmailOpened { message } | EventKind::EmailClicked { message }, "trigger") => {
                text(&message.trigger)
            }
            (EventKind::Custom { properties, .. }, _) => properties.get(name).cloned(),
            _ => None,
        }
    }

    /// Whether rules naming `name` (`on`, `cancel_if`) mean this event.
    pub fn is_named(&self, name: &str) -> bool {
        self.name() == name || self.detail_name() == Some(name)
    }

    /// The name rules use for this kind (`count = "product_viewed"`, `on = ...`).
    pub fn name(&self) -> &str {
        match self {
            EventKind::PageViewed { .. } => "page_viewed",
            EventKind::ProductViewed { .. } => "product_viewed",
            EventKind::CartUpdated { .. } => "cart_updated",
            EventKind::CheckoutStarted { .. } => "checkout_started",
            EventKind::OrderPlaced { .. } => "order_placed",
            EventKind::OrderCancelled { .. } => "order_cancelled",
            EventKind::WishlistAdded { .. } => "wishlist_added",
            EventKind::EmailOpened { .. } => "email_opened",
            EventKind::EmailClicked { .. } => "email_clicked",
            EventKind::EmailBounced { .. } => "email_bounced",
            EventKind::EmailComplained {} => "email_complained",
            EventKind::ConsentChanged { .. } => "consent_changed",
            EventKind::ProfileUpdated { .. } => "profile_updated",
            EventKind::EraseRequested {} => "erase_requested",
            EventKind::DataRequested {} => "data_requested",
            EventKind::Custom { name, .. } => name,
        }
    }

    /// Whether the shopper did this themselves on the storefront. Only these
    /// count as activity for `inactive_for` and `after_inactive`.
    pub fn is_shopper_activity(&self) -> bool {
        matches!(
            self,
            EventKind::PageViewed { .. }
                | EventKind::ProductViewed { .. }
                | EventKind::CartUpdated { .. }
                | EventKind::CheckoutStarted { .. }
                | EventKind::OrderPlaced { .. }
                | EventKind::OrderCancelled { .. }
                | EventKind::WishlistAdded { .. }
                | EventKind::Custom { .. }
        )
    }
}

/// The names of the built-in event kinds, in vocabulary order.
pub const VOCABULARY: [&str; 18] = [
    "page_viewed",
    "product_viewed",
    "cart_updated",
    "product_added",
    "product_removed",
    "cart_viewed",
    "checkout_started",
    "order_placed",
    "order_cancelled",
    "wishlist_added",
    "email_opened",
    "email_clicked",
    "email_bounced",
    "email_complained",
    "consent_changed",
    "profile_updated",
    "erase_requested",
    "data_requested",
];

/// Segment e-commerce events nudge maps to built-in kinds, by their tracked
/// names: declaring one in `custom_events` would never count (it arrives as
/// the built-in kind).
pub const SEGMENT_NAMES: [(&str, &str); 10] = [
    ("Product Viewed", "product_viewed"),
    ("Product Added", "product_added"),
    ("Product Removed", "product_removed"),
    ("Cart Viewed", "cart_viewed"),
    ("Checkout Started", "checkout_started"),
    ("Order Completed", "order_placed"),
    ("Order Cancelled", "order_cancelled"),
    ("Product Added to Wishlist", "wishlist_added"),
    ("Email Opened", "email_opened"),
    ("Email Link Clicked", "email_clicked"),
];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
}

/// A cart or checkout: what the shopper intends to buy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Basket {
    /// Cart token or checkout token; orders are joined to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default)]
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Where the shopper resumes (Shopify's `abandoned_checkout_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Line>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_title: Option<String>,
    #[serde(default = "one")]
    pub quantity: u32,
    #[serde(default)]
    pub price: f64,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    #[serde(default)]
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Checkout or cart tokens this order completes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_ids: Vec<String>,
}

/// Which message an engagement event refers to (from SES tags or UTM data).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    Subscribed,
    #[default]
    NotSubscribed,
    Unsubscribed,
    Pending,
    Redacted,
    Invalid,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::Subscribed => "subscribed",
            ConsentState::NotSubscribed => "not_subscribed",
            ConsentState::Unsubscribed => "unsubscribed",
            ConsentState::Pending => "pending",
            ConsentState::Redacted => "redacted",
            ConsentState::Invalid => "invalid",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptInLevel {
    SingleOptIn,
    ConfirmedOptIn,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentUpdate {
    pub state: ConsentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in_level: Option<OptInLevel>,
    /// When the person gave or withdrew consent; defaults to the event time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// Who recorded this change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ConsentSource>,
}

/// The provenance of a consent change: which door it came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// A signed Shopify webhook.
    Shopify,
    /// A signed WooCommerce webhook.
    Woocommerce,
    /// A signed Segment webhook destination.
    SegmentWebhook,
    /// The tracking API with a secret server-side key.
    ServerKey,
    /// The tracking API with a browser (public) write key.
    BrowserKey,
    /// nudge's own one-click unsubscribe link.
    UnsubscribeLink,
    /// Mail feedback (SES events, SMTP bounces and complaints).
    MailFeedback,
    /// A followed double opt-in confirmation link.
    Confirmation,
    /// An operator's event log or import.
    Import,
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Shopify => "shopify",
            ConsentSource::Woocommerce => "woocommerce",
            ConsentSource::SegmentWebhook => "segment_webhook",
            ConsentSource::ServerKey => "server_key",
            ConsentSource::BrowserKey => "browser_key",
            ConsentSource::UnsubscribeLink => "unsubscribe_link",
            ConsentSource::MailFeedback => "mail_feedback",
            ConsentSource::Confirmation => "confirmation",
            ConsentSource::Import => "import",
        }
    }
}

/// Keeps identifiers bounded: values longer than [`MAX_KEY_LEN`] become a
/// stable `~`-prefixed fingerprint, so equality still works.
pub fn bounded_key(s: &str) -> String {
    if s.len() <= MAX_KEY_LEN { s.to_owned() } else { format!("~{:016x}", crate::hash::stable_hash(&[s.as_bytes()])) }
}

/// Cuts display text to at most `max` bytes on a character boundary.
pub fn bounded_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_is_non_empty_bounded_and_free_of_control_characters() {
        assert_eq!(EventId::parse(""), Err(EventIdError::Empty));
        assert_eq!(EventId::parse("a".repeat(EventId::MAX_LEN + 1)), Err(EventIdError::TooLong));
        assert_eq!(EventId::parse("m1\nforged"), Err(EventIdError::Control));
        assert_eq!(EventId::parse("m1\u{0}"), Err(EventIdError::Control));
        assert!(EventId::parse("a".repeat(EventId::MAX_LEN)).is_ok());
        assert_eq!(EventId::parse("shopify:checkout:c1:1700000000").unwrap(), "shopify:checkout:c1:1700000000");
    }

    #[test]
    fn a_log_line_with_a_malformed_event_id_is_an_error() {
        let line =
            |id: &str| format!(r#"{{"id":{id},"shop":"s","occurred_at":"2026-01-01T00:00:00Z","kind":"page_viewed"}}"#);
        assert!(serde_json::from_str::<Event>(&line(r#""e1""#)).is_ok());
        for bad in [r#""""#, r#""a\u0000b""#] {
            let e = serde_json::from_str::<Event>(&line(bad)).unwrap_err();
            assert!(e.to_string().contains("event id"), "{e}");
        }
    }

    #[test]
    fn ids_nudge_derives_are_well_formed_and_tell_their_parts_apart() {
        let a = EventId::digest("unsubscribe", &[b"shop", b"p1"]);
        assert!(a.starts_with("unsubscribe:") && EventId::parse(a.as_str()).is_ok());
        assert_ne!(a, EventId::digest("unsubscribe", &[b"shop", b"p2"]));
        assert_eq!(EventId::parse("m1").unwrap().tagged("#1"), "m1#1");
    }

    #[test]
    fn normalized_events_round_trip_as_json() {
        let line = r#"{"id":"e1","shop":"s.myshopify.com","occurred_at":"2026-01-01T00:00:00Z","identity":{"email":"a@example.com"},"kind":"product_viewed","product":{"id":"42"}}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        assert_eq!(event.kind.name(), "product_viewed");
        assert_eq!(serde_json::to_string(&event).unwrap(), line);
    }

    #[test]
    fn custom_events_keep_their_tracked_name() {
        let kind = EventKind::Custom { name: "Loyalty Points Earned".into(), properties: Default::default() };
        assert_eq!(kind.name(), "Loyalty Points Earned");
        assert!(kind.is_shopper_activity());
    }

    #[test]
    fn long_keys_become_stable_fingerprints() {
        let long = "x".repeat(200);
        assert_eq!(bounded_key(&long), bounded_key(&long));
        assert!(bounded_key(&long).len() <= MAX_KEY_LEN);
        assert_eq!(bounded_key("short"), "short");
        assert_eq!(bounded_text("héllo", 2), "h");
    }
}
