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
    /// Not a way to recognise a person: the id of a profile merged into the
    /// one this points at, so links and records naming it still arrive.
    Merged,
}

impl AliasKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AliasKind::Customer => "customer",
            AliasKind::Email => "email",
            AliasKind::Anonymous => "anon",
            AliasKind::Checkout => "checkout",
            AliasKind::Cart => "cart",
            AliasKind::Merged => "merged",
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
    /// The redirect a merge leaves from the retired profile `from`.
    pub fn merged(from: &str) -> Alias {
        Alias { kind: AliasKind::Merged, value: from.to_owned() }
    }

    /// The storage key (docs/architecture.md): `A#<shop>#<kind>#<value>`.
    pub fn key(&self, shop: &str) -> String {
        format!("A#{shop}#{}#{}", self.kind.as_str(), self.value)
    }
}

/// How long a merge's redirect is kept at least: as long as the links
/// naming the retired profile work (unsubscribe links), and a week more.
pub const REDIRECT_KEPT_SECS: i64 = crate::unsubscribe::LINK_LIFETIME_SECS + 7 * 86_400;

/// The secret that keys email hashes, so that alias keys reveal nothing
/// about an address to someone without it. Holds the HMAC already keyed, so
/// each hash costs only the message's own compression rounds.
#[derive(Clone)]
pub struct AliasKey(Hmac<Sha256>);

impl AliasKey {
    pub fn new(secret: impl AsRef<[u8]>) -> AliasKey {
        AliasKey(
            Hmac::<Sha256>::new_from_slice(secret.as_ref())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        )
    }

    /// HMAC-SHA256 of the normalised (trimmed, lower-cased) address, as 32
    /// hex characters.
    pub fn hash_email(&self, email: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let normalised = email.trim().to_lowercase();
        let mut mac = self.0.clone();
        mac.update(normalised.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        for b in &digest[..16] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }
}

impl std::fmt::Debug for AliasKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AliasKey(..)")
    }
}

/// The aliases of one identity: inline, as an event rarely carries more
/// than three (no allocation for the list on every event).
pub type Aliases = smallvec::SmallVec<[Alias; 3]>;

/// The aliases an identity carries, strongest first.
pub fn aliases(identity: &Identity, key: &AliasKey) -> Aliases {
    each_alias(identity, |kind, value| match kind {
        AliasKind::Email => Alias { kind, value: key.hash_email(value) },
        _ => Alias { kind, value: bounded_key(value) },
    })
}

/// Cheap, unkeyed hashes of the aliases [`aliases`] finds in `identity`,
/// in `shop`: two identities share a hash when they share an alias (and,
/// with odds of one in 2⁶⁴, when they do not — which only puts two people
/// in one shard). For splitting a replay's people between threads
/// ([`crate::shard`]) without an HMAC per event.
pub fn alias_hashes(shop: &str, identity: &Identity) -> smallvec::SmallVec<[u64; 3]> {
    each_alias(identity, |kind, value| {
        let value = match kind {
            // What the keyed hash is taken of.
            AliasKind::Email => value.trim().to_lowercase(),
            _ => bounded_key(value),
        };
        stable_hash(&[shop.as_bytes(), kind.as_str().as_bytes(), value.as_bytes()])
    })
}

/// `f(kind, value)` for each alias `identity` carries, strongest first:
/// ids trimmed and not empty, an email address only with an `@`.
fn each_alias<T>(identity: &Identity, f: impl Fn(AliasKind, &str) -> T) -> smallvec::SmallVec<[T; 3]> {
    let plain = |kind: AliasKind, value: &Option<String>| {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(|v| f(kind, v))
    };
    let email = identity.email.as_deref().filter(|e| e.contains('@')).map(|e| f(AliasKind::Email, e));
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

/// The profiles these aliases could have created: a profile's id comes
/// from the alias it was created with, so reading these ahead (with the
/// aliases, in one round trip) finds the profile of an event that carries
/// that alias — for a Segment visitor the anonymous id, still sent after
/// `identify` added the stronger user id. Distinct, in alias order.
pub fn candidates(shop: &str, aliases: &[Alias]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(aliases.len());
    for a in aliases {
        let id = new_profile_id(shop, a);
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
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
    fn email_hash_is_hmac_sha256_of_the_normalised_address() {
        // Computed independently: hmac.new(b"k1", b"ada@example.com", sha256).hexdigest()[:32]
        assert_eq!(AliasKey::new("k1").hash_email(" ADA@example.com"), "7a5d4778e0500b4f48362392f1989b35");
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
