//! One-click unsubscribe (RFC 8058): signed links, and the use case that
//! records the refusal. A link names the shop and profile (never an address)
//! and an expiry, signed with HMAC-SHA256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use nudge_core::{ConsentSource, ConsentState, ConsentUpdate, Event, EventId, EventKind, Identity, Triggers, Trust};
use sha2::Sha256;

use crate::ports::{Change, ProfileStore, Publisher, ReadAhead, Scheduler, StoreError};
use crate::usecase::{AppError, IngestPorts, current_profile, fold_loaded};

/// How long an unsubscribe link works.
pub const LINK_LIFETIME_SECS: i64 = 365 * 86_400;
/// How long a double opt-in confirmation link works.
pub const CONFIRM_LIFETIME_SECS: i64 = 7 * 86_400;

/// What a signed link is for: each purpose signs a different message.
#[derive(Clone, Copy)]
enum Purpose {
    Unsubscribe,
    Confirm,
}

impl Purpose {
    fn lifetime(self) -> i64 {
        match self {
            Purpose::Unsubscribe => LINK_LIFETIME_SECS,
            Purpose::Confirm => CONFIRM_LIFETIME_SECS,
        }
    }

    fn message(self, shop: &str, profile: &str, expires: i64) -> String {
        match self {
            Purpose::Unsubscribe => format!("{shop}\n{profile}\n{expires}"),
            Purpose::Confirm => format!("confirm\n{shop}\n{profile}\n{expires}"),
        }
    }
}

/// Signs links with the current key and verifies them with it or any
/// previous key still kept (a rotation leaves links already sent working).
#[derive(Clone)]
pub struct UnsubscribeKey {
    current: Hmac<Sha256>,
    previous: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for UnsubscribeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeKey(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link was not issued by this shop")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

impl LinkError {
    pub fn status(self) -> u16 {
        match self {
            LinkError::Malformed | LinkError::Expired => 400,
            LinkError::Forged => 401,
        }
    }
}

/// What a valid link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    pub shop: String,
    pub profile: String,
}

fn hmac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

impl UnsubscribeKey {
    pub fn new(secret: impl AsRef<[u8]>) -> UnsubscribeKey {
        UnsubscribeKey { current: hmac(secret.as_ref()), previous: Vec::new() }
    }

    /// A key during a rotation: signs with `current`, still accepts links
    /// signed with any of `previous`.
    pub fn rotating<P: AsRef<[u8]>>(current: impl AsRef<[u8]>, previous: &[P]) -> UnsubscribeKey {
        UnsubscribeKey {
            current: hmac(current.as_ref()),
            previous: previous.iter().map(|p| hmac(p.as_ref())).collect(),
        }
    }

    /// The query string of an unsubscribe link: `s=…&p=…&e=…&t=…`.
    pub fn query(&self, shop: &str, profile: &str, now: Timestamp) -> String {
        self.link(Purpose::Unsubscribe, shop, profile, now)
    }

    /// The query string of a double opt-in confirmation link (a token for
    /// one purpose never works for the other).
    pub fn confirm_query(&self, shop: &str, profile: &str, now: Timestamp) -> String {
        self.link(Purpose::Confirm, shop, profile, now)
    }

    /// Checks an unsubscribe link's query string (constant-time comparison).
    pub fn verify(&self, query: &str, now: Timestamp) -> Result<LinkTarget, LinkError> {
        self.check(Purpose::Unsubscribe, query, now)
    }

    /// Checks a confirmation link's query string.
    pub fn verify_confirm(&self, query: &str, now: Timestamp) -> Result<LinkTarget, LinkError> {
        self.check(Purpose::Confirm, query, now)
    }

    fn link(&self, purpose: Purpose, shop: &str, profile: &str, now: Timestamp) -> String {
        let expires = now.as_second() + purpose.lifetime();
        let mut mac = self.current.clone();
        mac.update(purpose.message(shop, profile, expires).as_bytes());
        let t = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        form_urlencoded::Serializer::new(String::new())
            .append_pair("s", shop)
            .append_pair("p", profile)
            .append_pair("e", &expires.to_string())
            .append_pair("t", &t)
            .finish()
    }

    fn check(&self, purpose: Purpose, query: &str, now: Timestamp) -> Result<LinkTarget, LinkError> {
        let (mut shop, mut profile, mut expires, mut token) = (None, None, None, None);
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "s" => shop = Some(v.into_owned()),
                "p" => profile = Some(v.into_owned()),
                "e" => expires = v.parse::<i64>().ok(),
                "t" => token = URL_SAFE_NO_PAD.decode(v.as_bytes()).ok(),
                _ => {}
            }
        }
        let (Some(shop), Some(profile), Some(expires), Some(token)) = (shop, profile, expires, token) else {
            return Err(LinkError::Malformed);
        };
        let message = purpose.message(&shop, &profile, expires);
        let signed_by = |key: &Hmac<Sha256>| {
            let mut mac = key.clone();
            mac.update(message.as_bytes());
            mac.verify_slice(&token).is_ok()
        };
        if !std::iter::once(&self.current).chain(&self.previous).any(signed_by) {
            return Err(LinkError::Forged);
        }
        if now.as_second() > expires {
            return Err(LinkError::Expired);
        }
        Ok(LinkTarget { shop, profile })
    }
}

/// What an unsubscribe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsubscribed {
    /// The refusal is stored on this profile (the link's, or the one it
    /// was merged into).
    Recorded { profile: String },
    /// Nothing is held for the link any more (erased): no email can follow.
    Gone,
}

/// The consent change a followed link records: verified (the link's own
/// signature vouches for it), on no identity (the link names the profile).
fn link_event(what: &'static str, target: &LinkTarget, now: Timestamp, consent: ConsentUpdate) -> Event {
    let second = now.as_second().to_be_bytes();
    Event {
        id: EventId::digest(what, &[target.shop.as_bytes(), target.profile.as_bytes(), &second]),
        shop: target.shop.clone(),
        occurred_at: now,
        identity: Identity::default(),
        kind: EventKind::ConsentChanged { consent },
        trust: Trust::Verified,
        received_at: None,
        time_zone: None,
    }
}

/// Records the refusal on the profile the link names, or on the profile it
/// was merged into: consent becomes `unsubscribed`, so every later check
/// skips with `no_consent`. Returns only once the refusal is stored.
pub async fn unsubscribe<S: ProfileStore>(
    store: &S,
    rules: &Triggers,
    target: &LinkTarget,
    now: Timestamp,
) -> Result<Unsubscribed, StoreError> {
    let consent = ConsentUpdate {
        state: ConsentState::Unsubscribed,
        opt_in_level: None,
        updated_at: Some(now),
        source: Some(ConsentSource::UnsubscribeLink),
    };
    let event = link_event("unsubscribe", target, now, consent);
    // A merge may retire the profile between the look-up and the write:
    // follow the redirect again then.
    for _ in 0..3 {
        let Some(current) = current_profile(store, &target.shop, &target.profile).await? else {
            return Ok(Unsubscribed::Gone);
        };
        let profile = current.id.clone();
        let done = store
            .update_from(&target.shop, &profile, false, ReadAhead::Found(Box::new(current)), |p| {
                let applied = p.apply(&event, rules);
                Change { changed: applied.changed, value: () }
            })
            .await?;
        if done.is_some() {
            return Ok(Unsubscribed::Recorded { profile });
        }
    }
    Err(StoreError::Contention(target.profile.clone(), 3))
}

/// What following a confirmation link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Consent is now `subscribed`, confirmed by the person.
    Subscribed { profile: String },
    /// No request stands (confirmed already, or refused since): nothing changed.
    NotRequested,
    /// Nothing is held for the link any more.
    Gone,
}

/// Records a followed double opt-in link: consent becomes `subscribed`
/// (source `confirmation`) if the request it answers still stands, and the
/// episodes that waited for consent are scheduled.
pub async fn confirm<S, Sch, P>(
    ports: &IngestPorts<'_, S, Sch, P>,
    target: &LinkTarget,
    now: Timestamp,
) -> Result<Confirmed, AppError>
where
    S: ProfileStore,
    Sch: Scheduler,
    P: Publisher,
{
    let consent = ConsentUpdate {
        state: ConsentState::Subscribed,
        opt_in_level: Some(nudge_core::event::OptInLevel::ConfirmedOptIn),
        updated_at: Some(now),
        source: Some(ConsentSource::Confirmation),
    };
    let event = link_event("confirm", target, now, consent);
    let Some(current) = current_profile(ports.store, &target.shop, &target.profile).await? else {
        return Ok(Confirmed::Gone);
    };
    if current.consent.opt_in.requested.is_none() {
        return Ok(Confirmed::NotRequested);
    }
    let profile = current.id.clone();
    fold_loaded(ports, current, &event).await?;
    Ok(match ports.store.load(&target.shop, &profile).await? {
        Some(p) if p.consent.state == ConsentState::Subscribed => Confirmed::Subscribed { profile },
        Some(_) => Confirmed::NotRequested,
        None => Confirmed::Gone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-10-06T14:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_signed_link_verifies_and_names_shop_and_profile() {
        let k = UnsubscribeKey::new("k");
        let q = k.query("acme.myshopify.com", "p1", now());
        assert_eq!(k.verify(&q, now()), Ok(LinkTarget { shop: "acme.myshopify.com".into(), profile: "p1".into() }));
    }

    #[test]
    fn a_forged_or_altered_link_is_refused() {
        let k = UnsubscribeKey::new("k");
        let q = k.query("acme", "p1", now());
        assert_eq!(UnsubscribeKey::new("other").verify(&q, now()), Err(LinkError::Forged));
        assert_eq!(k.verify(&q.replace("p=p1", "p=p2"), now()), Err(LinkError::Forged));
        assert_eq!(k.verify("s=acme&p=p1", now()), Err(LinkError::Malformed));
    }

    #[test]
    fn after_a_rotation_links_signed_with_the_previous_key_still_verify() {
        let old = UnsubscribeKey::new("old");
        let sent = old.query("acme", "p1", now());
        let rotated = UnsubscribeKey::rotating("new", &["old"]);
        assert_eq!(rotated.verify(&sent, now()).map(|t| t.profile), Ok("p1".to_owned()));
        let fresh = rotated.query("acme", "p2", now());
        assert_eq!(old.verify(&fresh, now()), Err(LinkError::Forged), "new links use the new key");
        assert_eq!(UnsubscribeKey::new("new").verify(&sent, now()), Err(LinkError::Forged), "once retired, gone");
    }

    #[test]
    fn a_token_for_one_purpose_never_works_for_the_other() {
        let k = UnsubscribeKey::new("k");
        let unsubscribe = k.query("acme", "p1", now());
        let confirm = k.confirm_query("acme", "p1", now());
        assert_eq!(k.verify_confirm(&unsubscribe, now()), Err(LinkError::Forged));
        assert_eq!(k.verify(&confirm, now()), Err(LinkError::Forged));
        assert!(k.verify_confirm(&confirm, now()).is_ok());
        let late = Timestamp::from_second(now().as_second() + CONFIRM_LIFETIME_SECS + 1).unwrap();
        assert_eq!(k.verify_confirm(&confirm, late), Err(LinkError::Expired));
    }

    #[test]
    fn shops_and_profiles_with_reserved_characters_survive_the_round_trip() {
        let k = UnsubscribeKey::new("k");
        let q = k.query("a&b=c shop", "p+1%", now());
        assert_eq!(k.verify(&q, now()), Ok(LinkTarget { shop: "a&b=c shop".into(), profile: "p+1%".into() }));
    }

    #[test]
    fn an_expired_link_is_refused() {
        let k = UnsubscribeKey::new("k");
        let q = k.query("acme", "p1", now());
        let later = Timestamp::from_second(now().as_second() + LINK_LIFETIME_SECS + 1).unwrap();
        assert_eq!(k.verify(&q, later), Err(LinkError::Expired));
    }
}
