//! [`ShopDomain`]: a store's host name, parsed once where it enters (the
//! `X-Shopify-Shop-Domain` header, a compliance payload's `shop_domain`,
//! WooCommerce's `X-WC-Webhook-Source`, the configuration file).

use std::fmt;

/// A host name as a store is known by: lower-cased, 1–253 bytes of ASCII
/// letters, digits, `-` and `.`, in labels of 1–63 bytes that neither start
/// nor end with `-`. `Acme.MyShopify.com` and `acme.myshopify.com` are the
/// same shop.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ShopDomain(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a host name")]
pub struct NotAHostName;

impl ShopDomain {
    pub fn parse(s: &str) -> Result<ShopDomain, NotAHostName> {
        let s = s.trim().to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if (1..=253).contains(&s.len()) && s.split('.').all(label_ok) { Ok(ShopDomain(s)) } else { Err(NotAHostName) }
    }

    /// The host of a URL (`https://shop.example/wp`) or of a bare host.
    pub fn from_url(url: &str) -> Result<ShopDomain, NotAHostName> {
        let s = url.trim();
        let s = s.split_once("://").map_or(s, |(_, rest)| rest);
        ShopDomain::parse(s.split(['/', '?', '#']).next().unwrap_or(""))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for ShopDomain {
    type Error = NotAHostName;
    fn try_from(s: String) -> Result<ShopDomain, NotAHostName> {
        ShopDomain::parse(&s)
    }
}

impl fmt::Display for ShopDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for ShopDomain {
    fn eq(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shop_domain_is_a_lower_cased_host_name() {
        assert_eq!(ShopDomain::parse(" Acme.MyShopify.com ").unwrap().as_str(), "acme.myshopify.com");
        assert_eq!(ShopDomain::parse("localhost").unwrap().as_str(), "localhost");
        for bad in ["", ".", "a..b", "-a.com", "a-.com", "a_b.com", "a.com/x", "a .com", "ä.com", &"a".repeat(64)] {
            assert_eq!(ShopDomain::parse(bad), Err(NotAHostName), "{bad:?}");
        }
        assert!(ShopDomain::parse(&format!("{}.com", vec!["a".repeat(63); 4].join("."))).is_err(), "over 253 bytes");
    }

    #[test]
    fn the_host_of_a_url_is_its_shop_domain() {
        assert_eq!(ShopDomain::from_url("https://Shop.Example/wp?x=1").unwrap().as_str(), "shop.example");
        assert_eq!(ShopDomain::from_url("shop.example").unwrap().as_str(), "shop.example");
        assert_eq!(ShopDomain::from_url("https://user@shop.example/"), Err(NotAHostName));
    }
}
