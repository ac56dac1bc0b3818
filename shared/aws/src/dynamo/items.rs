//! The table's items as stored (serde_dynamo), their keys and the small
//! helpers every request builds them with.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::SignedDuration;
use nudge_app::ports::{MessageRecord, StoreError};
use nudge_core::CatalogueProduct;
use nudge_core::hash::stable_hash;
use serde::{Deserialize, Serialize};

pub const PROFILE_SK: &str = "PROFILE";
pub const ALIAS_SK: &str = "ALIAS";
pub const MESSAGE_SK: &str = "MESSAGE";
/// Index of a person's items: partition `owner`, sort `pk`, keys only.
pub const BY_OWNER: &str = "by-owner";
/// Sparse index of profiles with pending checks: partition `due_bucket`,
/// sort `next_due` (epoch seconds), keys only.
pub const BY_DUE: &str = "by-due";
/// `due_bucket` spreads the index over this many partitions.
pub const DUE_BUCKETS: u64 = 8;
/// Partition of the erasure records.
pub const ERASED_PK: &str = "ERASED";
/// Erasure records outlive a sweep that keeps failing by this long.
pub(super) const ERASURE_KEPT: SignedDuration = SignedDuration::from_hours(7 * 24);

/// The profile item as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct ProfileItem {
    pub(super) pk: String,
    pub(super) sk: String,
    #[serde(default)]
    pub(super) version: Option<u64>,
    #[serde(default)]
    pub(super) ttl: Option<i64>,
}

/// The attribute holding the profile: `crate::document` (deflated JSON),
/// about a third of the map's size, so most saves cost one write unit.
pub(super) const PACKED_DOC: &str = "docz";

#[derive(Serialize, Deserialize)]
pub(super) struct AliasItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) shop: String,
    pub(super) owner: String,
    pub(super) profile: String,
    /// Absent on aliases written before aliases expired: renewed on read.
    #[serde(default)]
    pub(super) ttl: Option<i64>,
}

/// A catalogue change from a product webhook; no `product` = deleted in
/// the store (a tombstone that hides the feed file's copy).
#[derive(Serialize, Deserialize)]
pub(super) struct ProductItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) shop: String,
    #[serde(default)]
    pub(super) product: Option<CatalogueProduct>,
    /// Unix seconds of the change kept, when known.
    #[serde(default)]
    pub(super) updated_at: Option<i64>,
}

/// An erase done, to look again once the indexes have caught up.
#[derive(Serialize, Deserialize)]
pub(super) struct ErasureItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) shop: String,
    /// The profile erased; `None` for a whole shop.
    #[serde(default)]
    pub(super) profile: Option<String>,
    /// When (unix seconds).
    pub(super) at: i64,
    pub(super) ttl: i64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct MessageItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) owner: String,
    pub(super) ttl: i64,
    #[serde(flatten)]
    pub(super) record: MessageRecord,
}

pub(super) fn profile_pk(shop: &str, id: &str) -> String {
    format!("P#{shop}#{id}")
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An item's primary key.
pub(super) type Key = HashMap<String, AttributeValue>;

/// The primary key (pk, sk) of an item as read back.
pub(super) fn key_of(item: &Key) -> Option<Key> {
    let (pk, sk) = (item.get("pk")?, item.get("sk")?);
    Some(HashMap::from([("pk".to_owned(), pk.clone()), ("sk".to_owned(), sk.clone())]))
}

pub(super) fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(super) fn unavailable<E: std::error::Error>(what: &str, e: E) -> StoreError {
    StoreError::Unavailable(format!("dynamodb {what}: {}", DisplayErrorContext(e)))
}

/// A profile item's count of sweeps in a row that failed on its check.
pub(super) const SWEEP_FAILURES: &str = "sweep_failures";
/// Why a profile item was taken out of the sweep.
pub(super) const SET_ASIDE: &str = "set_aside";

/// An item that does not match its struct. The deserializer's text is left
/// out: it quotes the offending value, which may be personal data.
pub(super) fn corrupt(_: serde_dynamo::Error) -> StoreError {
    StoreError::Unavailable("dynamodb: an item does not match its schema".into())
}

/// The `by-due` bucket of a profile: stable, so an update moves the entry
/// within one partition.
pub(super) fn due_bucket(shop: &str, id: &str) -> String {
    format!("DUE#{}", stable_hash(&[shop.as_bytes(), id.as_bytes()]) % DUE_BUCKETS)
}
