//! Identity resolution: the aliases an event carries, strongest first, and
//! the deterministic id of a new profile. Email addresses only ever appear
//! here as a keyed hash.

use hmac::{Hmac, Mac};
use nudge_core::Identity;
use nudge_core::event::bounded_key;
use nudge_core::hash::stable_hash;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasKind {
    Customer,
    Email,
    Anonymous,
    Checkout,
    Cart,
}

impl AliasKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AliasKind::Customer => "customer",
            AliasKind::Email => "email",
            AliasKind::Anonymous => "anon",
            AliasKind::Checkout => "checkout",
            AliasKind::Cart => "cart",
        }
    }
}

/// One way of recognising a person. `value` never holds a plain email.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Alias {
    pub kind: AliasKind,
    pub value: String,
}

impl Alias {
    /// The storage key of DESIGN.md: `A#<shop>#<kind>#<value>`.
    pub fn key(&self, shop: &str) -> String {
        format!("A#{shop}#{}#{}", self.kind.as_str(), self.value)
    }
}

/// The secret that keys email hashes, so that alias keys reveal nothing
/// about an address to someone without it.
#[derive(Clone)]
pub struct AliasKey(Vec<u8>);

impl AliasKey {
    pub fn new(secret: impl Into<Vec<u8>>) -> AliasKey {
        AliasKey(secret.into())
    }

    /// HMAC-SHA256 of the normalised (trimmed, lower-cased) address, as 32
    /// hex characters.
    pub fn hash_email(&self, email: &str) -> String {
        let normalised = email.trim().to_lowercase();
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(normalised.as_bytes());
        let digest = mac.finalize().into_bytes();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for AliasKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AliasKey(..)")
    }
}

/// The aliases an identity carries, strongest first.
pub fn aliases(identity: &Identity, key: &AliasKey) -> Vec<Alias> {
    fn plain(kind: AliasKind, value: &Option<String>) -> Option<Alias> {
        let v = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        Some(Alias { kind, value: bounded_key(v) })
    }
    let email = identity
        .email
        .as_deref()
        .filter(|e| e.contains('@'))
        .map(|e| Alias { kind: AliasKind::Email, value: key.hash_email(e) });
    [
        plain(AliasKind::Customer, &identity.customer_id),
        email,
        plain(AliasKind::Anonymous, &identity.anonymous_id),
        plain(AliasKind::Checkout, &identity.checkout_token),
        plain(AliasKind::Cart, &identity.cart_token),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A new profile's id, derived from its first alias so that replays and
/// retries create the same id.
pub fn new_profile_id(shop: &str, first: &Alias) -> String {
    let h = stable_hash(&[shop.as_bytes(), first.kind.as_str().as_bytes(), first.value.as_bytes()]);
    format!("p{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_aliases_are_keyed_hashes_never_the_address() {
        let key = AliasKey::new("k1");
        let id = Identity { email: Some(" Ada@Example.com ".into()), ..Identity::default() };
        let a = aliases(&id, &key);
        assert_eq!(a[0].kind, AliasKind::Email);
        assert!(!a[0].key("shop").to_lowercase().contains("example"));
        assert_eq!(a[0].value, key.hash_email("ada@example.com"), "normalised before hashing");
        assert_ne!(a[0].value, AliasKey::new("k2").hash_email("ada@example.com"), "the key matters");
    }

    #[test]
    fn aliases_come_strongest_first() {
        let id = Identity {
            customer_id: Some("7".into()),
            anonymous_id: Some("anon".into()),
            cart_token: Some("c".into()),
            ..Identity::default()
        };
        let kinds: Vec<AliasKind> = aliases(&id, &AliasKey::new("k")).iter().map(|a| a.kind).collect();
        assert_eq!(kinds, vec![AliasKind::Customer, AliasKind::Anonymous, AliasKind::Cart]);
    }

    #[test]
    fn new_profile_ids_are_deterministic() {
        let a = Alias { kind: AliasKind::Anonymous, value: "x".into() };
        assert_eq!(new_profile_id("s", &a), new_profile_id("s", &a));
        assert_ne!(new_profile_id("s", &a), new_profile_id("t", &a));
    }
}
