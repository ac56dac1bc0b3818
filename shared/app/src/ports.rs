//! The ports: what the use cases need from the outside world. Each has an
//! in-memory adapter in [`crate::memory`]; the AWS and SQLite shells provide
//! the others.

use std::future::Future;

use jiff::Timestamp;
use nudge_core::{Check, Decision, ProductChange, Profile};

use crate::compose::Composed;
use crate::identity::Alias;

/// Why a stored document does not parse, without the parser's own text,
/// which quotes the offending value (an address, a name): the kind of
/// error and where.
pub fn unreadable(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "cannot be read",
        serde_json::error::Category::Syntax => "is not JSON",
        serde_json::error::Category::Data => "does not match the schema",
        serde_json::error::Category::Eof => "ends early",
    };
    format!("document {kind} (line {}, column {})", e.line(), e.column())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("profile store unavailable: {0}")]
    Unavailable(String),
    #[error("profile {0} kept changing under us; gave up after {1} attempts")]
    Contention(String, u32),
}

/// Outcome of a conditional save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Ok,
    /// Someone else saved first: reload and retry.
    Conflict,
}

/// What a read-modify-write closure reports back.
pub struct Change<T> {
    pub changed: bool,
    pub value: T,
}

/// Attempts of load → change → conditional save before giving up. Each
/// conflict means another writer's save landed, so with up to this many
/// writers racing on one profile every one of them gets through.
pub const MAX_SAVE_ATTEMPTS: u32 = 64;

pub trait ProfileStore: Send + Sync {
    /// The profile linked to the first of these aliases that has one, and
    /// the aliases not yet linked.
    fn resolve(&self, shop: &str, aliases: &[Alias]) -> impl Future<Output = Result<Resolved, StoreError>> + Send;

    /// `resolve`, and in the same round trip the profile a new person with
    /// these aliases would get (`new_profile_id` of the first alias). Stores
    /// where a round trip is cheap keep this default, which reads nothing
    /// ahead.
    fn resolve_with(
        &self,
        shop: &str,
        aliases: &[Alias],
    ) -> impl Future<Output = Result<(Resolved, ReadAhead), StoreError>> + Send {
        async move { Ok((self.resolve(shop, aliases).await?, ReadAhead::Nothing)) }
    }

    /// Points these aliases at a profile.
    fn link(&self, shop: &str, aliases: &[Alias], profile: &str)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    fn load(&self, shop: &str, id: &str) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;

    /// Saves if the stored version still equals `expected` (`None`: must not
    /// exist yet). On success `profile.version` is the new version.
    fn save(
        &self,
        profile: &mut Profile,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send;

    /// Deletes the profile and every alias pointing at it.
    fn erase(&self, shop: &str, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes every profile and alias of a shop (Shopify `shop/redact`).
    fn erase_shop(&self, shop: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// After `from` was absorbed into `into`: points `from`'s aliases at
    /// `into` and deletes `from`.
    fn merge_into(&self, shop: &str, from: &str, into: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// `Err` naming the problem when the store can no longer acknowledge
    /// writes (what `GET /healthz` reports); stores that cannot tell are
    /// always healthy.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// Read-modify-write under optimistic concurrency: load, run `f`, save
    /// if the version did not move, otherwise reload and run `f` again.
    /// `create` makes a fresh profile when none exists; otherwise a missing
    /// profile gives `None`. Adapters whose storage is already serialised
    /// (the in-memory one) may override this with an in-place update.
    fn update<T, F>(
        &self,
        shop: &str,
        id: &str,
        create: bool,
        f: F,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send
    where
        T: Send,
        F: FnMut(&mut Profile) -> Change<T> + Send,
    {
        self.update_from(shop, id, create, ReadAhead::Nothing, f)
    }

    /// A pause before the next attempt after `attempt` conflicting saves
    /// (writers racing on one profile). None by default; the durable stores
    /// wait [`contention_backoff`], so racing writers spread out.
    fn contended(&self, _attempt: u32) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// `update`, with the first attempt starting from `preloaded` (what
    /// `resolve_with` read) instead of a fresh load.
    fn update_from<T, F>(
        &self,
        shop: &str,
        id: &str,
        create: bool,
        preloaded: ReadAhead,
        mut f: F,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send
    where
        T: Send,
        F: FnMut(&mut Profile) -> Change<T> + Send,
    {
        async move {
            let mut preloaded = preloaded;
            for attempt in 0..MAX_SAVE_ATTEMPTS {
                let current = match std::mem::replace(&mut preloaded, ReadAhead::Nothing) {
                    ReadAhead::Found(p) => Some(*p),
                    ReadAhead::Absent => None,
                    ReadAhead::Nothing => self.load(shop, id).await?,
                };
                let (mut profile, expected) = match current {
                    Some(p) => {
                        let v = p.version;
                        (p, Some(v))
                    }
                    None if create => (Profile::new(shop, id), None),
                    None => return Ok(None),
                };
                let change = f(&mut profile);
                if !change.changed {
                    return Ok(Some(change.value));
                }
                match self.save(&mut profile, expected).await? {
                    Saved::Ok => return Ok(Some(change.value)),
                    Saved::Conflict => self.contended(attempt).await,
                }
            }
            Err(StoreError::Contention(id.to_owned(), MAX_SAVE_ATTEMPTS))
        }
    }
}

/// The pause after `attempt` (0-based) conflicting saves: full jitter over
/// 2 ms doubling up to 250 ms.
pub fn contention_backoff(attempt: u32) -> std::time::Duration {
    let ceiling_ms = (2u64 << attempt.min(7)).min(250);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let jitter = nudge_core::hash::unit_interval(nudge_core::hash::mix(u64::from(nanos) ^ u64::from(attempt)));
    std::time::Duration::from_micros((ceiling_ms as f64 * 1000.0 * jitter) as u64)
}

/// What `resolve_with` read of the candidate profile. Boxed: a profile is
/// most of a kilobyte inline, and this travels through every ingest future.
#[derive(Debug, Default)]
pub enum ReadAhead {
    /// Not read: load it when needed.
    #[default]
    Nothing,
    /// Read, and it does not exist.
    Absent,
    Found(Box<Profile>),
}

impl ReadAhead {
    /// What was read ahead is only good for the profile it was read for,
    /// and only while no merge changes that profile first.
    pub fn usable_for(self, id: &str, resolved: &Resolved) -> ReadAhead {
        match self {
            _ if !resolved.others.is_empty() => ReadAhead::Nothing,
            ReadAhead::Found(p) if p.id == id => ReadAhead::Found(p),
            // Nobody linked: `id` is the new profile's, the one read.
            ReadAhead::Absent if resolved.profile.is_none() => ReadAhead::Absent,
            _ => ReadAhead::Nothing,
        }
    }
}

/// Result of alias resolution.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub profile: Option<String>,
    /// Other, distinct profiles the same aliases point at: to be merged
    /// into `profile`.
    pub others: Vec<String>,
    /// Aliases (of those asked about) to link to the profile the event goes
    /// to: those not linked to any profile yet, and those a store wants
    /// written again (the DynamoDB store renews an alias's expiry so).
    pub unlinked: Vec<Alias>,
}

#[derive(Debug, thiserror::Error)]
#[error("scheduler unavailable: {0}")]
pub struct SchedulerError(pub String);

/// Product changes from the storefront's webhooks, kept per shop. A removal
/// is kept too (a tombstone), so it also hides the feed file's copy.
pub trait CatalogueStore: Send + Sync {
    /// Records the changes that supersede what is kept for their product
    /// (`ProductChange::supersedes`: a late retry of an older update is
    /// stale) and returns those it recorded.
    fn put_products(
        &self,
        shop: &str,
        changes: &[ProductChange],
    ) -> impl Future<Output = Result<Vec<ProductChange>, StoreError>> + Send;
    /// The latest change recorded for each of the shop's products.
    fn products(&self, shop: &str) -> impl Future<Output = Result<Vec<ProductChange>, StoreError>> + Send;
}

pub trait Scheduler: Send + Sync {
    /// Asks for `check` to run at `check.due`. Idempotent by `check.name()`.
    fn schedule(&self, check: &Check) -> impl Future<Output = Result<(), SchedulerError>> + Send;
    /// Withdraws a scheduled check; an unknown one is not an error.
    fn cancel(&self, check: &Check) -> impl Future<Output = Result<(), SchedulerError>> + Send;
    /// A check for a person who cannot be emailed: it can only skip until
    /// an event changes that, and the next event (or the reconcile sweep)
    /// decides it as of when it could first have run. A scheduler whose requests cost
    /// nothing may schedule it like any other (the default); the AWS one
    /// makes no request.
    fn park(&self, check: &Check) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        self.schedule(check)
    }
}

/// A message ready for the mailer: which episode, which variant, and the
/// profile as it was when the send was decided.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub check: Check,
    pub variant: String,
    pub profile: Profile,
}

/// Why a message was not sent, sorted by what may happen next.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Rejected for good (bad address, content refused): never retried.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Provably not accepted (throttled, over the quota, sending paused,
    /// the service unreachable, nothing written): the check tries again
    /// later.
    #[error("not accepted: {0}")]
    NotAccepted(String),
    /// Handed over with no answer (a timeout after the request went out):
    /// it may have been sent, so it is never sent again.
    #[error("unconfirmed: {0}")]
    Unconfirmed(String),
    /// Sandbox mode and the address is not on the allowlist: withheld.
    #[error("withheld by the sandbox allowlist")]
    Sandboxed,
}

impl MailError {
    /// What the check records for it.
    pub fn delivery(&self) -> nudge_core::Delivery {
        match self {
            MailError::Rejected(_) => nudge_core::Delivery::Rejected,
            MailError::NotAccepted(_) => nudge_core::Delivery::NotAccepted,
            MailError::Unconfirmed(_) => nudge_core::Delivery::Unconfirmed,
            MailError::Sandboxed => nudge_core::Delivery::Sandboxed,
        }
    }
}

/// Hands rendered email to a mail service; rendering, the message record
/// and the counters are the use case's ([`crate::run_check`]).
pub trait Mailer: Send + Sync {
    /// Sends `email`, rendered for `message`; returns the provider's
    /// message id.
    fn send(&self, message: &Outgoing, email: &Composed) -> impl Future<Output = Result<String, MailError>> + Send;
}

/// What is kept of each message sent, so that feedback from the mail
/// service (which names only the message) finds its way back to the
/// profile and the trigger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageRecord {
    /// The mail service's id (SES's message id; locally, the local part of
    /// the Message-ID header, which SES feedback also quotes).
    pub message_id: String,
    pub shop: String,
    pub profile: String,
    pub trigger: String,
    pub variant: String,
    pub episode: u32,
}

/// A per-day counter of one trigger variant: one of [`COUNTERS`].
pub type Counter = &'static str;

/// Every counter, in the order a table shows them.
pub const COUNTERS: [Counter; 6] = ["sent", "delivered", "opened", "clicked", "bounced", "complained"];

/// Message records and per-day counters of each trigger variant.
pub trait MessageLog: Send + Sync {
    /// Keeps `record` for the retention period; erased with its profile.
    fn record_message(&self, record: &MessageRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The record of `message_id`, when one is kept.
    fn message(&self, message_id: &str) -> impl Future<Output = Result<Option<MessageRecord>, StoreError>> + Send;
    /// Adds one to `counter` of the variant on `day` (UTC).
    fn count(
        &self,
        record: &MessageRecord,
        day: jiff::civil::Date,
        counter: Counter,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("publisher unavailable: {0}")]
pub struct PublishError(pub String);

/// The log line of a decision, as every shell writes it: ids, trigger,
/// outcome and reason, never an address or a name.
pub fn log_decision(d: &nudge_core::Decision) {
    tracing::info!(
        target: "nudge::decision",
        shop = %d.shop,
        profile = %d.profile,
        trigger = %d.trigger,
        episode = d.episode,
        decision = d.decision.as_str(),
        reason = d.reason.map_or("-", |r| r.as_str()),
        variant = d.variant.as_deref().unwrap_or("-"),
        "decision"
    );
}

/// Where decisions and data exports go (decision log, EventBridge, ...).
pub trait Publisher: Send + Sync {
    fn decision(&self, decision: &Decision) -> impl Future<Output = Result<(), PublishError>> + Send;
    /// Everything held about a person, for a data request.
    fn export(&self, profile: &Profile) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// An accepted event, after it was stored (an event log for later
    /// replays). Nothing by default.
    fn event(&self, _event: &nudge_core::Event) -> impl Future<Output = Result<(), PublishError>> + Send {
        std::future::ready(Ok(()))
    }

    /// The accepted events of one incoming message, kept together (a log
    /// writes them as consecutive lines, so a replay applies them as one
    /// step). One by one by default.
    fn events(&self, events: &[&nudge_core::Event]) -> impl Future<Output = Result<(), PublishError>> + Send {
        async move {
            for e in events {
                self.event(e).await?;
            }
            Ok(())
        }
    }
}

/// A publisher shared with other parts of a shell (the local server's erase
/// rewrites the event log its publisher appends to).
impl<T: Publisher> Publisher for std::sync::Arc<T> {
    fn decision(&self, decision: &Decision) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).decision(decision)
    }
    fn export(&self, profile: &Profile) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).export(profile)
    }
    fn event(&self, event: &nudge_core::Event) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).event(event)
    }
    fn events(&self, events: &[&nudge_core::Event]) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).events(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &str) -> ReadAhead {
        ReadAhead::Found(Box::new(Profile::new("s", id)))
    }

    #[test]
    fn a_profile_read_ahead_is_used_only_for_the_profile_it_is_and_never_across_a_merge() {
        let linked = Resolved { profile: Some("p1".into()), ..Resolved::default() };
        assert!(matches!(found("p1").usable_for("p1", &linked), ReadAhead::Found(_)));
        assert!(matches!(found("p2").usable_for("p1", &linked), ReadAhead::Nothing));
        let merging = Resolved { profile: Some("p1".into()), others: vec!["p2".into()], ..Resolved::default() };
        assert!(matches!(found("p1").usable_for("p1", &merging), ReadAhead::Nothing));
    }

    #[test]
    fn an_absent_read_ahead_counts_only_when_nobody_is_linked_yet() {
        let nobody = Resolved::default();
        assert!(matches!(ReadAhead::Absent.usable_for("p-new", &nobody), ReadAhead::Absent));
        let linked = Resolved { profile: Some("p1".into()), ..Resolved::default() };
        assert!(matches!(ReadAhead::Absent.usable_for("p1", &linked), ReadAhead::Nothing));
    }
}
