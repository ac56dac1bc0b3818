//! Per-shop secrets and write keys: one typed config, loadable from
//! environment variables (single shop) or a TOML file (many shops). Secrets
//! never appear in `Debug` output, logs or errors.

use std::fmt;

use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::delivery::Rejection;
use crate::shop::ShopDomain;

/// The environment variables every shell reads, listed once.
pub mod env {
    /// Shop name for deliveries that do not name one (Segment, WooCommerce).
    pub const SHOP: &str = "NUDGE_SHOP";
    /// Shopify app (or store-admin webhook) secret.
    pub const SHOPIFY_SECRET: &str = "NUDGE_SHOPIFY_SECRET";
    /// The previous Shopify secret, still accepted while rotating.
    pub const SHOPIFY_SECRET_PREVIOUS: &str = "NUDGE_SHOPIFY_SECRET_PREVIOUS";
    pub const WOOCOMMERCE_SECRET: &str = "NUDGE_WOOCOMMERCE_SECRET";
    /// The tracking write key storefronts put in their pages (public: it
    /// cannot grant consent or replace an address).
    pub const SEGMENT_WRITE_KEY: &str = "NUDGE_SEGMENT_WRITE_KEY";
    /// A secret tracking key for server-side sources (fully trusted).
    pub const SEGMENT_SERVER_KEY: &str = "NUDGE_SEGMENT_SERVER_KEY";
    /// Shared secret of a Segment webhook destination (`X-Signature`).
    pub const SEGMENT_WEBHOOK_SECRET: &str = "NUDGE_SEGMENT_WEBHOOK_SECRET";
    pub const ALL: [&str; 7] = [
        SHOP,
        SHOPIFY_SECRET,
        SHOPIFY_SECRET_PREVIOUS,
        WOOCOMMERCE_SECRET,
        SEGMENT_WRITE_KEY,
        SEGMENT_SERVER_KEY,
        SEGMENT_WEBHOOK_SECRET,
    ];
}

/// A secret value. Prints as `Secret(…)`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Constant-time equality with a presented value.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.len() == presented.len() && bool::from(self.0.ct_eq(presented))
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s.into_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// One shop's credentials.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopSources {
    /// The shop's name in nudge (for Shopify: its `*.myshopify.com` domain).
    pub shop: String,
    #[serde(default)]
    pub shopify_secrets: Vec<Secret>,
    #[serde(default)]
    pub woocommerce_secrets: Vec<Secret>,
    /// Host of the store's `X-WC-Webhook-Source` (e.g. `shop.example`).
    #[serde(default)]
    pub woocommerce_source: Option<ShopDomain>,
    /// Tracking write keys as storefronts put them in web pages: public.
    #[serde(default)]
    pub segment_write_keys: Vec<Secret>,
    /// Secret tracking keys of server-side sources: fully trusted.
    #[serde(default)]
    pub segment_server_keys: Vec<Secret>,
    #[serde(default)]
    pub segment_webhook_secrets: Vec<Secret>,
}

/// Which kind of tracking key a call presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A write key storefronts expose to browsers.
    Browser,
    /// A secret server-side key.
    Server,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// Shopify app secrets: valid for every shop the app is installed on.
    #[serde(default)]
    pub shopify_app_secrets: Vec<Secret>,
    #[serde(default, rename = "shop")]
    pub shops: Vec<ShopSources>,
}

/// A config file problem, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl SourcesConfig {
    /// What is configured, one line per shop, without any secret: for a
    /// server's start-up banner.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.shopify_app_secrets.is_empty() {
            lines.push("Shopify app secret (any shop the app is installed on)".to_owned());
        }
        for s in &self.shops {
            let parts: Vec<&str> = [
                (!s.shopify_secrets.is_empty()).then_some("Shopify webhooks"),
                (!s.woocommerce_secrets.is_empty()).then_some("WooCommerce webhooks"),
                (!s.segment_write_keys.is_empty()).then_some("tracking (browser write key)"),
                (!s.segment_server_keys.is_empty()).then_some("tracking (server key)"),
                (!s.segment_webhook_secrets.is_empty()).then_some("Segment webhook"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let what = if parts.is_empty() { "nothing configured".to_owned() } else { parts.join(", ") };
            lines.push(format!("shop {}: {what}", s.shop));
        }
        if lines.is_empty() {
            lines
                .push("none: every delivery will be refused (set NUDGE_SHOP and a secret or key, or `sources`)".into());
        }
        lines
    }

    /// Many shops from a TOML file (`shopify_app_secrets = [...]` and
    /// `[[shop]]` tables); errors name the file and line.
    pub fn parse(src: &str, file: &str) -> Result<SourcesConfig, ConfigError> {
        toml::from_str(src).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: e.span().map_or(0, |s| src[..s.start.min(src.len())].matches('\n').count() + 1),
            message: e.message().trim().to_owned(),
        })
    }

    /// The single-shop case from environment variables (see [`env`]).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> SourcesConfig {
        let read = |name: &str| get(name).filter(|v| !v.is_empty()).map(Secret::from);
        let shop = get(env::SHOP).filter(|s| !s.is_empty()).unwrap_or_else(|| "default".to_owned());
        let shopify_app_secrets =
            [read(env::SHOPIFY_SECRET), read(env::SHOPIFY_SECRET_PREVIOUS)].into_iter().flatten().collect();
        SourcesConfig {
            shopify_app_secrets,
            shops: vec![ShopSources {
                shop,
                woocommerce_secrets: read(env::WOOCOMMERCE_SECRET).into_iter().collect(),
                segment_write_keys: read(env::SEGMENT_WRITE_KEY).into_iter().collect(),
                segment_server_keys: read(env::SEGMENT_SERVER_KEY).into_iter().collect(),
                segment_webhook_secrets: read(env::SEGMENT_WEBHOOK_SECRET).into_iter().collect(),
                ..ShopSources::default()
            }],
        }
    }

    /// Secrets that may have signed a Shopify delivery for `shop`: none for
    /// a shop this configuration does not serve (an app secret signs for
    /// every shop the app is installed on).
    pub fn shopify_secrets(&self, shop: &ShopDomain) -> Vec<Secret> {
        if !self.serves(shop.as_str()) {
            return Vec::new();
        }
        let mut out = self.shopify_app_secrets.clone();
        for s in self.shops.iter().filter(|s| s.shop.eq_ignore_ascii_case(shop.as_str())) {
            out.extend(s.shopify_secrets.iter().cloned());
        }
        out
    }

    /// The shop whose WooCommerce secret signed `body`. Only the signature
    /// decides: `source_host` (the unsigned `X-WC-Webhook-Source`) merely
    /// breaks a tie between shops that share a secret.
    pub fn woocommerce_signer(
        &self,
        body: &[u8],
        signature: &str,
        source_host: Option<&ShopDomain>,
    ) -> Result<&str, Rejection> {
        let mut signers = self.shops.iter().filter(|s| {
            !s.woocommerce_secrets.is_empty()
                && crate::signature::verify_woocommerce(body, signature, &s.woocommerce_secrets).is_ok()
        });
        let (first, second) = (signers.next(), signers.next());
        match (first, second) {
            (None, _) if !self.shops.iter().any(|s| !s.woocommerce_secrets.is_empty()) => Err(Rejection::UnknownShop),
            (None, _) => Err(Rejection::BadSignature),
            (Some(s), None) => Ok(s.shop.as_str()),
            (Some(a), Some(b)) => [a, b]
                .into_iter()
                .chain(signers)
                .find(|s| s.woocommerce_source.as_ref().zip(source_host).is_some_and(|(src, h)| src == h))
                .map(|s| s.shop.as_str())
                .ok_or(Rejection::UnknownShop),
        }
    }

    /// The shop a tracking key belongs to and which kind of key it is
    /// (constant-time comparisons, every key compared).
    pub fn shop_for_write_key(&self, key: &str) -> Option<(&str, KeyKind)> {
        let mut found = None;
        for s in &self.shops {
            let keys = s.segment_server_keys.iter().map(|k| (k, KeyKind::Server));
            for (k, kind) in keys.chain(s.segment_write_keys.iter().map(|k| (k, KeyKind::Browser))) {
                if k.matches(key.as_bytes()) && found.is_none() {
                    found = Some((s.shop.as_str(), kind));
                }
            }
        }
        found
    }

    /// Whether `shop` is one this configuration serves.
    pub fn serves(&self, shop: &str) -> bool {
        self.shops.iter().any(|s| s.shop.eq_ignore_ascii_case(shop))
    }

    /// Secrets for a Segment webhook destination of `shop`.
    pub fn segment_webhook_secrets(&self, shop: &str) -> &[Secret] {
        self.shops.iter().find(|s| s.shop == shop).map_or(&[], |s| s.segment_webhook_secrets.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = SourcesConfig::from_env(|k| (k == env::SHOPIFY_SECRET).then(|| "hunter2".to_owned()));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn single_shop_config_comes_from_the_documented_variables() {
        let vars = |k: &str| match k {
            env::SHOP => Some("acme".to_owned()),
            env::SHOPIFY_SECRET => Some("s-new".to_owned()),
            env::SHOPIFY_SECRET_PREVIOUS => Some("s-old".to_owned()),
            env::WOOCOMMERCE_SECRET => Some("wc".to_owned()),
            env::SEGMENT_WRITE_KEY => Some("wk".to_owned()),
            _ => None,
        };
        let c = SourcesConfig::from_env(vars);
        assert_eq!(c.shopify_secrets(&ShopDomain::parse("acme").unwrap()).len(), 2);
        assert!(
            c.shopify_secrets(&ShopDomain::parse("x.myshopify.com").unwrap()).is_empty(),
            "a shop not configured has no secrets"
        );
        let body = b"{}";
        let sig = crate::signature::sign_base64_sha256(body, b"wc");
        assert_eq!(c.woocommerce_signer(body, &sig, Some(&ShopDomain::parse("anything").unwrap())), Ok("acme"));
        assert_eq!(c.shop_for_write_key("wk"), Some(("acme", KeyKind::Browser)));
        assert_eq!(c.shop_for_write_key("nope"), None);
    }

    #[test]
    fn config_file_errors_name_the_line_and_never_echo_secrets() {
        let e = SourcesConfig::parse(
            "shopify_app_secrets = [\"s3cret\"]\n[[shop]]\nshop = \"a\"\nwrite_keys = [\"k\"]\n",
            "shops.toml",
        )
        .unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("shops.toml", 4));
        assert!(e.message.contains("unknown field `write_keys`"), "{e}");
        assert!(!e.to_string().contains("s3cret"));
    }

    #[test]
    fn a_woocommerce_source_that_is_not_a_host_name_is_a_config_error_at_its_line() {
        let e = SourcesConfig::parse("[[shop]]\nshop = \"a\"\nwoocommerce_source = \"a shop/x\"\n", "shops.toml")
            .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("not a host name"), "{e}");
    }

    #[test]
    fn many_shops_come_from_a_file() {
        let c: SourcesConfig = toml::from_str(
            r#"
            shopify_app_secrets = ["app"]
            [[shop]]
            shop = "a.myshopify.com"
            shopify_secrets = ["admin-a"]
            segment_write_keys = ["wk-a"]
            [[shop]]
            shop = "b-store"
            woocommerce_secrets = ["wc-b"]
            woocommerce_source = "b.example"
            "#,
        )
        .unwrap();
        assert_eq!(c.shopify_secrets(&ShopDomain::parse("A.myshopify.com").unwrap()).len(), 2);
        assert!(c.shopify_secrets(&ShopDomain::parse("other.myshopify.com").unwrap()).is_empty());
        let sig = crate::signature::sign_base64_sha256(b"{}", b"wc-b");
        assert_eq!(
            c.woocommerce_signer(b"{}", &sig, Some(&ShopDomain::parse("a.example").unwrap())),
            Ok("b-store"),
            "the signature decides"
        );
        assert_eq!(c.shop_for_write_key("wk-a"), Some(("a.myshopify.com", KeyKind::Browser)));
    }
}
