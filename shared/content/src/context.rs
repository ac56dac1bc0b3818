//! The data a template sees. Built from the profile at send time.

use nudge_core::Profile;
use serde::Serialize;

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
    /// The product viewed most recently.
    pub product: Option<ProductCard>,
    /// Related products (filled from the catalogue once it exists).
    pub recommendations: Vec<ProductCard>,
    /// The variant's offer (e.g. a discount code), when it has one.
    pub offer: Option<String>,
    pub unsubscribe_url: String,
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
pub struct CartLine {
    pub product_id: String,
    pub title: String,
    pub variant: Option<String>,
    pub quantity: u32,
    pub price: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductCard {
    pub id: String,
    pub title: Option<String>,
}

pub const FIRST_NAME_FALLBACK: &str = "there";

/// `12.5` in `USD` → `$12.50`; unknown currencies keep their code.
pub fn money(amount: f64, currency: Option<&str>) -> String {
    let symbol = match currency {
        Some("USD") | Some("CAD") | Some("AUD") => "$",
        Some("EUR") => "€",
        Some("GBP") => "£",
        Some("JPY") => "¥",
        _ => "",
    };
    match (symbol, currency) {
        ("", Some(code)) => format!("{amount:.2} {code}"),
        _ => format!("{symbol}{amount:.2}"),
    }
}

impl EmailContext {
    /// What a send of `trigger` / `variant` shows this person.
    pub fn from_profile(
        p: &Profile,
        trigger: &str,
        variant: &str,
        offer: Option<&str>,
        unsubscribe_url: &str,
    ) -> EmailContext {
        let cart = p.basket.as_ref().map(|b| Cart {
            lines: b
                .lines
                .iter()
                .map(|l| CartLine {
                    product_id: l.product_id.clone(),
                    title: l.title.clone().unwrap_or_else(|| l.product_id.clone()),
                    variant: l.variant_title.clone(),
                    quantity: l.quantity,
                    price: money(l.price, b.currency.as_deref()),
                })
                .collect(),
            more_lines: b.more_lines,
            total: money(b.value, b.currency.as_deref()),
            currency: b.currency.clone(),
            recovery_url: b.recovery_url.clone(),
        });
        let product =
            p.products.iter().max_by_key(|v| v.last()).map(|v| ProductCard { id: v.id.to_string(), title: None });
        EmailContext {
            shop: p.shop.clone(),
            first_name: p.first_name.clone().unwrap_or_else(|| FIRST_NAME_FALLBACK.to_owned()),
            person: Person { first_name: p.first_name.clone(), segments: Vec::new() },
            trigger: trigger.to_owned(),
            variant: variant.to_owned(),
            cart,
            product,
            recommendations: Vec::new(),
            offer: offer.map(str::to_owned),
            unsubscribe_url: unsubscribe_url.to_owned(),
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
                },
                CartLine {
                    product_id: "p-2".into(),
                    title: "Wool Socks".into(),
                    variant: None,
                    quantity: 2,
                    price: "$12.00".into(),
                },
            ],
            more_lines: 0,
            total: "$113.00".into(),
            currency: Some("USD".into()),
            recovery_url: Some("https://shop.example/checkouts/abc/recover?key=demo".into()),
        }),
        product: Some(ProductCard { id: "p-1".into(), title: Some("Trail Runner".into()) }),
        recommendations: vec![ProductCard { id: "p-3".into(), title: Some("Rain Shell".into()) }],
        offer: Some("WELCOME10".into()),
        unsubscribe_url: "https://shop.example/unsubscribe?t=demo".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_uses_the_symbol_when_known() {
        assert_eq!(money(12.5, Some("USD")), "$12.50");
        assert_eq!(money(3.0, Some("CHF")), "3.00 CHF");
        assert_eq!(money(3.0, None), "3.00");
    }
}
