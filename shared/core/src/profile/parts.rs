//! The parts a profile is made of, each bounded: consent and its double
//! opt-in state, suppression, activity rings, product views, the basket,
//! orders, sends, trigger states and the dedupe fingerprints.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::*;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub state: ConsentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in_level: Option<OptInLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ConsentSource>,
    /// When this state was given; older updates arriving late do not override it.
    #[serde(default)]
    pub at: Secs,
    /// Double opt-in: a subscription a public source asked for, waiting
    /// for the person to confirm it.
    #[serde(default, skip_serializing_if = "OptIn::is_empty")]
    pub opt_in: OptIn,
}

/// The double opt-in state: a request from a source that cannot grant
/// consent (a browser key) sends one confirmation email (at most one per
/// [`CONFIRM_EVERY`]); following its link subscribes the person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptIn {
    /// When a subscription was last asked for; cleared by any later consent
    /// change (a confirmation, an opt-out, a trusted source's word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<Secs>,
    /// The confirmation check's episode (one per request that found none
    /// outstanding).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub episode: u32,
    /// When the outstanding confirmation check is due; `None` when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<Secs>,
    /// When a confirmation email was last sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Secs>,
}

impl OptIn {
    pub fn is_empty(&self) -> bool {
        *self == OptIn::default()
    }
}

/// The pseudo-trigger of confirmation emails: its checks are decided by
/// [`Profile::conclude`] like any other, but by the double opt-in rules, not
/// a trigger's. Rules may not use the id.
pub const CONFIRM_TRIGGER: &str = "confirm-subscription";
/// At most one confirmation email per person in this many seconds.
pub const CONFIRM_EVERY: Secs = 86_400;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub reason: SuppressionReason,
    pub at: Secs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    Bounce,
    Complaint,
}

/// Per event kind: total count, latest time and the most recent timestamps
/// (as many as the rules' count conditions need), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub kind: Text,
    pub total: u32,
    pub last: Secs,
    #[serde(default, skip_serializing_if = "Ring::is_empty")]
    pub recent: Ring,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductViews {
    pub id: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Text>,
    /// Recent view times, oldest first; always at least the latest one.
    #[serde(default)]
    pub recent: Ring,
}

impl ProductViews {
    pub fn last(&self) -> Secs {
        self.recent.last().copied().unwrap_or(Secs::MIN)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredBasket {
    pub stage: BasketStage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Line>,
    /// Lines beyond the ones kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_lines: u32,
    pub updated: Secs,
}

/// For `skip_serializing_if`: a count or time that is zero is left out.
fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasketStage {
    #[default]
    Cart,
    Checkout,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Orders {
    pub count: u32,
    pub revenue: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Secs>,
    /// The first order's time, and the days (UTC) with an order: what the
    /// customer model reads ([`crate::model`]). An order on a day that
    /// already had one counts once, as the model counts purchases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_at: Option<Secs>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub days: u32,
    /// Recent order ids (orders/create and orders/paid are one order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Checkout / cart tokens of recent orders: baskets already bought.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    /// Recently bought product ids (never recommended again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bought: Vec<String>,
    /// The latest order: what a post-purchase email names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastOrder>,
}

/// The latest order, as its email shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LastOrder {
    pub id: String,
    pub at: Secs,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The first few products in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    pub trigger: Text,
    pub episode: u32,
    pub variant: Text,
    pub at: Secs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicked: Option<Secs>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerState {
    pub trigger: Text,
    /// Latest episode number (0 = never armed).
    pub episode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<Secs>,
    /// For `when` triggers: the condition held at the last event.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holding: bool,
    /// Basket of the last episode that ended converted: its late updates do
    /// not arm again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_token: Option<String>,
}

/// An armed, undecided episode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub episode: u32,
    /// Event time of the arming that started the episode.
    pub started: Secs,
    /// When the check should decide (moves later on re-arming / activity).
    pub due: Secs,
    /// The time of the one outstanding scheduler request.
    pub scheduled: Secs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// No scheduler request exists: the person could not be emailed when
    /// this check was wanted, so asking for one would only buy a skip.
    /// Asked for once they can be; otherwise decided, as of when a scheduler
    /// could first have run it, before their next event is folded in or by
    /// the reconcile sweep.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parked: bool,
    /// Wall-clock time the check was parked (0: not recorded). A scheduler
    /// asked then would have run it no sooner than `PARK_LEAD` later.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parked_at: Secs,
    /// A send in progress (see [`Claim`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// Sends the mail service did not accept (throttled, over quota,
    /// paused, unreachable) so far: each defers the check a little longer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mail_attempts: u32,
    /// When the check first decided to send but waited for the person's
    /// best hour (0: it has not): `max_wait` counts from here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waited_from: Secs,
}

/// A send in progress. The check decided to send and claimed the episode in
/// the profile before calling the mailer (that write is what makes an
/// email at-most-once); the mailer's answer settles it
/// (`Profile::settle`). While claimed, events do not end, re-arm or push
/// back the episode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The claiming run's own token: a write of this claim that is retried
    /// (its first answer lost) recognises itself instead of reading as
    /// someone else's claim.
    pub token: u64,
    /// When it was claimed.
    pub at: Secs,
    pub variant: Text,
}

/// A claim older than this was abandoned (the run that made it stopped
/// between the claim and recording the mailer's answer): the next run of
/// the check settles it as `unconfirmed`. Longer than any run may take
/// (a Lambda invocation lasts at most 15 minutes).
pub const CLAIM_LEASE: Secs = 15 * 60;

/// How soon after being asked a scheduler runs a check that is already
/// due (EventBridge Scheduler's `at()` gets at least a minute; see
/// nudge-aws). A parked check stands in for such a request, so an event
/// arriving sooner than this after it was parked is folded in first.
pub const PARK_LEAD: Secs = 60;

/// Dedupe fingerprints of recent event ids, newest last; stored as one
/// base64 string of 48-bit values (6 bytes each) to stay small. With 32
/// kept, a false "already seen" needs a 1-in-10^13 collision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen(smallvec::SmallVec<[u64; SEEN_KEPT]>);

impl Seen {
    pub fn contains(&self, fp: u64) -> bool {
        self.0.contains(&(fp & FP_MASK))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The fingerprints, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().copied()
    }
    pub(super) fn push(&mut self, fp: u64) {
        let fp = fp & FP_MASK;
        if self.0.len() == SEEN_KEPT {
            self.0.remove(0);
        }
        self.0.push(fp);
    }
}

const FP_BYTES: usize = 6;
const FP_MASK: u64 = (1 << (8 * FP_BYTES)) - 1;

impl Serialize for Seen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|v| v.to_le_bytes().into_iter().take(FP_BYTES)).collect();
        s.serialize_str(&STANDARD_NO_PAD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = STANDARD_NO_PAD.decode(s.as_bytes()).map_err(serde::de::Error::custom)?;
        let mut v: smallvec::SmallVec<[u64; SEEN_KEPT]> = bytes
            .chunks_exact(FP_BYTES)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..FP_BYTES].copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect();
        let excess = v.len().saturating_sub(SEEN_KEPT);
        v.drain(..excess);
        Ok(Seen(v))
    }
}
