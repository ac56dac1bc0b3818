//! The data a template sees. Built from the profile at send time.

use jiff::Timestamp;
use nudge_core::{Profile, Trigger, Triggers};
use serde::Serialize;

use crate::catalogue::{Catalogue, CatalogueProduct};

#[derive(Debug, Clone, Default, Serialize)]
pub struct EmailContext {
    pub shop: String,
    /// The person's first name, or "there" when unknown, so a subject such
    /// as "Still deciding, {{ first_name }}?" always reads well.
    pub first_name: String,
    pub person: Person,
    pub trigger: String,
    pub variant: String,
    /// The cart or checkout, when the person has one.
    pub cart: Option<Cart>,
    /// The latest order, for post-purchase emails (review request,
    /// replenishment, thank you).
    pub order: Option<OrderCard>,
    /// The product viewed most recently.
    pub product: Option<ProductCard>,
    /// Related products (filled from the catalogue once it exists).
    pub recommendations: Vec<ProductCard>,
    /// The variant's offer (e.g. a discount code), when it has one.
    pub offer: Option<String>,
    pub unsubscribe_url: String,
    /// A double opt-in confirmation email's link (`confirm-subscription`
    /// template only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_url: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Person {
    pub first_name: Option<String>,
    pub segments: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    /// Lines beyond those listed.
    pub more_lines: u32,
    pub total: String,
    pub currency: Option<String>,
    pub recovery_url: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OrderCard {
    /// The store's order id or number.
    pub number: String,
    pub total: String,
    pub currency: Option<String>,
    /// When it was placed (RFC 3339, UTC).
    pub placed_at: String,
    /// The products in it (the first few), from the catalogue when known.
    pub products: Vec<ProductCard>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CartLine {
    pub product_id: String,
    pub title: String,
    pub variant: Option<String>,
    pub quantity: u32,
    pub price: String,
    pub image: Option<String>,
    pub url: Option<String>,
    pub low_stock: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductCard {
    pub id: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub image: Option<String>,
    pub price: Option<String>,
    /// Units left when few remain ("only 2 left").
    pub low_stock: Option<i64>,
    /// Social proof, when the catalogue has it.
    pub rating: Option<f64>,
    pub review_count: Option<u32>,
}

pub const FIRST_NAME_FALLBACK: &str = "there";

/// An amount formatted for the shop's locale: `$1,234.50` (en), `1.234,50 €`
/// (de, es, it, nl, pt), `1 234,50 €` (fr, sv, fi, nb, pl); currencies without
/// a known symbol keep their code; yen and won have no decimals.
pub fn money(amount: f64, currency: Option<&str>, locale: &str) -> String {
    let symbol = match currency {
        Some("USD") | Some("CAD") | Some("AUD") | Some("NZD") => "$",
        Some("EUR") => "€",
        Some("GBP") => "£",
        Some("JPY") => "¥",
        Some(code) => code,
        None => "",
    };
    let decimals = if matches!(currency, Some("JPY") | Some("KRW")) { 0 } else { 2 };
    let lang = locale.split(['-', '_']).next().unwrap_or("en").to_ascii_lowercase();
    let (thousands, decimal, symbol_first) = match lang.as_str() {
        "de" | "es" | "it" | "nl" | "pt" | "da" => (".", ",", false),
        "fr" | "sv" | "fi" | "nb" | "no" | "pl" | "cs" => ("\u{a0}", ",", false),
        _ => (",", ".", symbol.chars().all(|c| !c.is_ascii_alphabetic())),
    };
    let fixed = format!("{:.*}", decimals, amount.abs());
    let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push_str(thousands);
        }
        grouped.push(ch);
    }
    let number = if frac.is_empty() { grouped } else { format!("{grouped}{decimal}{frac}") };
    let sign = if amount < 0.0 { "-" } else { "" };
    match (symbol, symbol_first) {
        ("", _) => format!("{sign}{number}"),
        (s, true) => format!("{sign}{s}{number}"),
        (s, false) => format!("{sign}{number}\u{a0}{s}"),
    }
}

impl ProductCard {
    fn from_catalogue(p: &CatalogueProduct, locale: &str) -> ProductCard {
        ProductCard {
            id: p.id.clone(),
            title: Some(p.title.clone()),
            url: p.url.clone(),
            image: p.image.clone(),
            price: p.price.map(|v| money(v, p.currency.as_deref(), locale)),
            low_stock: p.low_stock(),
            rating: p.rating,
            review_count: p.review_count,
        }
    }
}

/// What the shell knows about the send beyond the profile.
pub struct SendInfo<'a> {
    pub trigger: &'a Trigger,
    pub variant: &'a str,
    pub now: Timestamp,
    pub unsubscribe_url: &'a str,
    /// The shop's locale for prices (`en-US`, `de-DE`, ...).
    pub locale: &'a str,
}

impl EmailContext {
    /// What a send shows this person: their cart (enriched from the
    /// catalogue), the product they viewed last, recommendations (never
    /// bought or out of stock), their segments and the offer for them.
    pub fn build(p: &Profile, rules: &Triggers, send: &SendInfo<'_>, catalogue: &Catalogue) -> EmailContext {
        let segments = rules.segments_of(p, send.now.as_second());
        let offer = rules.offer_for(send.trigger, send.variant, &segments);
        let cart = p.basket.as_ref().map(|b| Cart {
            lines: b
                .lines
                .iter()
                .map(|l| {
                    let known = catalogue.get(&l.product_id);
                    CartLine {
                        product_id: l.product_id.clone(),
                        title: l
                            .title
                            .clone()
                            .or(known.map(|k| k.title.clone()))
                            .unwrap_or_else(|| l.product_id.clone()),
                        variant: l.variant_title.clone(),
                        quantity: l.quantity,
                        price: money(l.price, b.currency.as_deref(), send.locale),
                        image: known.and_then(|k| k.image.clone()),
                        url: known.and_then(|k| k.url.clone()),
                        low_stock: known.and_then(CatalogueProduct::low_stock),
                    }
                })
                .collect(),
            more_lines: b.more_lines,
            total: money(b.value, b.currency.as_deref(), send.locale),
            currency: b.currency.clone(),
            recovery_url: b.recovery_url.clone().or_else(|| b.token.as_deref().and_then(|t| rules.recovery_url_for(t))),
        });
        let order = p.orders.last.as_ref().map(|o| OrderCard {
            number: o.id.clone(),
            total: money(o.value, o.currency.as_deref(), send.locale),
            currency: o.currency.clone(),
            placed_at: jiff::Timestamp::from_second(o.at).map(|t| t.to_string()).unwrap_or_default(),
            products: o
                .product_ids
                .iter()
                .map(|id| {
                    catalogue.get(id).map_or_else(
                        || ProductCard { id: id.clone(), ..ProductCard::default() },
                        |c| ProductCard::from_catalogue(c, send.locale),
                    )
                })
                .collect(),
        });
        let viewed = p.products.iter().max_by_key(|v| v.last());
        let product = viewed.map(|v| {
            catalogue.get(&v.id).map_or_else(
                || ProductCard { id: v.id.to_string(), ..ProductCard::default() },
                |c| ProductCard::from_catalogue(c, send.locale),
            )
        });
        let in_cart: Vec<&str> = p.basket.iter().flat_map(|b| b.lines.iter().map(|l| l.product_id.as_str())).collect();
        let mut seeds: Vec<&str> = in_cart.clone();
        seeds.extend(p.products.iter().map(|v| v.id.as_str()));
        let mut exclude: Vec<&str> = p.orders.bought.iter().map(String::as_str).collect();
        exclude.extend(&in_cart);
        let recommendations = catalogue
            .recommend(&seeds, &exclude)
            .into_iter()
            .map(|c| ProductCard::from_catalogue(c, send.locale))
            .collect();
        EmailContext {
            shop: p.shop.clone(),
            first_name: p.first_name.clone().unwrap_or_else(|| FIRST_NAME_FALLBACK.to_owned()),
            person: Person { first_name: p.first_name.clone(), segments },
            trigger: send.trigger.id.clone(),
            variant: send.variant.to_owned(),
            cart,
            order,
            product,
            recommendations,
            offer,
            unsubscribe_url: send.unsubscribe_url.to_owned(),
            confirm_url: None,
        }
    }

    /// A double opt-in confirmation: who it is for and the link that
    /// confirms; nothing else of the profile.
    pub fn confirmation(p: &Profile, unsubscribe_url: &str, confirm_url: &str) -> EmailContext {
        EmailContext {
            shop: p.shop.clone(),
            first_name: p.first_name.clone().unwrap_or_else(|| FIRST_NAME_FALLBACK.to_owned()),
            person: Person { first_name: p.first_name.clone(), segments: Vec::new() },
            trigger: nudge_core::profile::CONFIRM_TRIGGER.to_owned(),
            variant: String::new(),
            cart: None,
            order: None,
            product: None,
            recommendations: Vec::new(),
            offer: None,
            unsubscribe_url: unsubscribe_url.to_owned(),
            confirm_url: Some(confirm_url.to_owned()),
        }
    }
}

/// A complete example context: what `nudge check` renders every template
/// with, so a template that uses an unknown variable fails before any send.
pub fn sample_context() -> EmailContext {
    EmailContext {
        shop: "demo-shop".into(),
        first_name: "Ada".into(),
        person: Person { first_name: Some("Ada".into()), segments: vec!["new_visitor".into()] },
        trigger: "cart-abandoned".into(),
        variant: "a".into(),
        cart: Some(Cart {
            lines: vec![
                CartLine {
                    product_id: "p-1".into(),
                    title: "Trail Runner".into(),
                    variant: Some("42 / Blue".into()),
                    quantity: 1,
                    price: "$89.00".into(),
                    image: Some("https://cdn.example/p-1.jpg".into()),
                    url: Some("https://shop.example/products/trail-runner".into()),
                    low_stock: Some(2),
                },
                CartLine {
                    product_id: "p-2".into(),
                    title: "Wool Socks".into(),
                    quantity: 2,
                    price: "$12.00".into(),
                    ..CartLine::default()
                },
            ],
            more_lines: 0,
            total: "$113.00".into(),
            currency: Some("USD".into()),
            recovery_url: Some("https://shop.example/checkouts/abc/recover?key=demo".into()),
        }),
        order: Some(OrderCard {
            number: "#1042".into(),
            total: "$101.00".into(),
            currency: Some("USD".into()),
            placed_at: "2026-10-06T14:00:00Z".into(),
            products: vec![ProductCard {
                id: "p-1".into(),
                title: Some("Trail Runner".into()),
                url: Some("https://shop.example/products/trail-runner".into()),
                ..ProductCard::default()
            }],
        }),
        product: Some(ProductCard { id: "p-1".into(), title: Some("Trail Runner".into()), ..ProductCard::default() }),
        recommendations: vec![ProductCard {
            id: "p-3".into(),
            title: Some("Rain Shell".into()),
            url: Some("https://shop.example/products/rain-shell".into()),
            image: Some("https://cdn.example/p-3.jpg".into()),
            price: Some("$120.00".into()),
            low_stock: None,
            rating: Some(4.7),
            review_count: Some(128),
        }],
        offer: Some("WELCOME10".into()),
        unsubscribe_url: "https://shop.example/unsubscribe?t=demo".into(),
        confirm_url: Some("https://shop.example/confirm?t=demo".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the first trigger's email shows `p`, with an empty catalogue.
    fn context(rules: &Triggers, p: &Profile) -> EmailContext {
        let send = SendInfo {
            trigger: &rules.triggers[0],
            variant: "default",
            now: Timestamp::UNIX_EPOCH,
            unsubscribe_url: "https://u.example/",
            locale: "en-US",
        };
        EmailContext::build(p, rules, &send, &Catalogue::default())
    }

    #[test]
    fn a_basket_without_a_link_of_its_own_gets_the_rules_recovery_url() {
        let rules = Triggers::parse(
            "recovery_url = \"https://shop.example/cart/{token}\"\n[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ntemplate = \"t\"\n",
            "t.toml",
            None,
        )
        .unwrap();
        let mut p = Profile::new("shop", "p1");
        p.basket = Some(nudge_core::profile::StoredBasket { token: Some("tok-1".into()), ..Default::default() });
        let cart = |p: &Profile| context(&rules, p).cart.unwrap();
        assert_eq!(cart(&p).recovery_url.as_deref(), Some("https://shop.example/cart/tok-1"));
        p.basket.as_mut().unwrap().recovery_url = Some("https://own.example/r".into());
        assert_eq!(cart(&p).recovery_url.as_deref(), Some("https://own.example/r"), "the event's own link wins");
    }

    #[test]
    fn a_post_purchase_email_sees_the_latest_order_with_its_products() {
        let rules =
            Triggers::parse("[[trigger]]\nid = \"a\"\non = \"order_placed\"\ntemplate = \"t\"\n", "t.toml", None)
                .unwrap();
        let mut p = Profile::new("shop", "p1");
        for (id, at, value) in [("1041", 100, 20.0), ("1042", 200, 101.0)] {
            let order = nudge_core::Order {
                id: id.into(),
                value,
                currency: Some("USD".into()),
                tokens: vec![],
                product_ids: vec!["p-1".into(), "p-9".into()],
            };
            let e = nudge_core::Event {
                id: nudge_core::EventId::parse(format!("o{id}")).unwrap(),
                shop: "shop".into(),
                occurred_at: Timestamp::from_second(at).unwrap(),
                identity: Default::default(),
                kind: nudge_core::EventKind::OrderPlaced { order },
                trust: Default::default(),
                received_at: None,
                time_zone: None,
            };
            p.apply(&e, &rules);
        }
        let order = context(&rules, &p).order.unwrap();
        assert_eq!((order.number.as_str(), order.total.as_str()), ("1042", "$101.00"));
        assert_eq!(order.products.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["p-1", "p-9"]);
    }

    #[test]
    fn money_uses_the_symbol_when_known() {
        assert_eq!(money(1234.5, Some("USD"), "en-US"), "$1,234.50");
        assert_eq!(money(1234.5, Some("EUR"), "de-DE"), "1.234,50\u{a0}€");
        assert_eq!(money(1234.5, Some("EUR"), "fr-FR"), "1\u{a0}234,50\u{a0}€");
        assert_eq!(money(3.0, Some("CHF"), "en"), "3.00\u{a0}CHF", "codes follow the number");
        assert_eq!(money(1500.0, Some("JPY"), "ja-JP"), "¥1,500");
        assert_eq!(money(3.0, None, "en-US"), "3.00");
    }
}
