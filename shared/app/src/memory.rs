//! In-memory adapters for every port: used by unit tests and by
//! `nudge replay`, where a virtual clock drives the scheduler.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::future::{Future, ready};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use jiff::Timestamp;
use nudge_core::profile::Text;
use nudge_core::{Check, Decision, ProductChange, Profile};

use crate::compose::Composed;
use crate::identity::Alias;
use crate::ports::{
    CatalogueStore, Change, Clock, Counter, MailError, Mailer, MessageLog, MessageRecord, Outgoing, ProfileStore,
    PublishError, Publisher, ReadAhead, Resolved, Saved, Scheduler, SchedulerError, StoreError,
};

/// Maps here are keyed by a 128-bit fingerprint of the full key: a
/// collision is no practical concern, and a lookup then touches one table
/// slot instead of chasing the key's strings through memory. The
/// fingerprint lives only in this process's memory, so it need not be
/// stable across releases (unlike `nudge_core::hash`): two fixed-seed
/// foldhash passes, eight bytes a step, where a byte-at-a-time hash was
/// ~10 % of a replay's engine instructions.
fn fingerprint(key: impl Hash + Copy) -> u128 {
    const LO: foldhash::quality::FixedState = foldhash::quality::FixedState::with_seed(0x6e75_6467_6531);
    const HI: foldhash::quality::FixedState = foldhash::quality::FixedState::with_seed(0x6e75_6467_6532);
    (u128::from(HI.hash_one(key)) << 64) | u128::from(LO.hash_one(key))
}

fn profile_key(shop: &str, id: &str) -> u128 {
    fingerprint((shop, id))
}

fn alias_key(shop: &str, a: &Alias) -> u128 {
    fingerprint((shop, a.kind.as_str(), a.value.as_str()))
}

/// The keys are already well-mixed hashes: use them as they are.
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type HashedMap<V> = HashMap<u128, V, BuildHasherDefault<PassThrough>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-updated
    // in a way that matters to a test or a replay; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct StoreInner {
    /// Boxed: a profile is ~840 bytes, and a table of them inline was most
    /// of a replay's memory (and moved whole at every growth).
    profiles: HashedMap<Box<Profile>>,
    aliases: HashedMap<Text>,
    /// Per shop, the latest change per product id.
    products: HashMap<String, std::collections::BTreeMap<String, ProductChange>>,
    messages: HashMap<String, MessageRecord>,
    /// Per (shop, trigger, variant, day, counter).
    counters: HashMap<(String, String, String, jiff::civil::Date, Counter), i64>,
}

/// Profiles and aliases in a map, with the same version semantics as the
/// durable stores.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<StoreInner>,
    /// Counts of operations, for tests and the request-count benchmark.
    pub loads: AtomicU64,
    pub saves: AtomicU64,
    /// Told of every call (see [`StoreCalls`]), when set.
    watcher: std::sync::OnceLock<std::sync::Arc<dyn StoreCalls>>,
    /// What `health` reports (tests set it to play a store that can no
    /// longer acknowledge writes).
    pub unhealthy: Mutex<Option<String>>,
    /// While set, every write fails as an unreachable store's would (tests).
    pub failing_writes: std::sync::atomic::AtomicBool,
}

/// Watches the calls a [`MemoryStore`] serves, to model what a durable
/// store would make of them (`nudge_aws::cost` counts DynamoDB requests and
/// capacity units this way). Every method does nothing by default.
pub trait StoreCalls: Send + Sync {
    /// An event's ingest starts ([`crate::Replay`] says so).
    fn event_started(&self) {}
    /// That ingest is over.
    fn event_finished(&self) {}
    /// `resolve_with`: the aliases looked up in one round trip.
    fn resolved_with(&self, _shop: &str, _aliases: &[Alias]) {}
    /// `link`: aliases pointed at a profile.
    fn linked(&self, _shop: &str, _aliases: &[Alias]) {}
    /// An update of `id` begins; `stored` is the profile as it is.
    fn updating(&self, _shop: &str, _id: &str, _stored: Option<&Profile>) {}
    /// An update changed this profile, and it was saved.
    fn saved(&self, _profile: &Profile) {}
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Sets the store's watcher; there is one at most (false when one was
    /// already set).
    pub fn watch(&self, watcher: std::sync::Arc<dyn StoreCalls>) -> bool {
        self.watcher.set(watcher).is_ok()
    }

    /// The watcher, when one was set.
    pub fn watcher(&self) -> Option<&dyn StoreCalls> {
        self.watcher.get().map(|w| &**w)
    }

    pub fn profile_count(&self) -> usize {
        lock(&self.inner).profiles.len()
    }

    pub fn profiles(&self) -> Vec<Profile> {
        lock(&self.inner).profiles.values().map(|p| Profile::clone(p)).collect()
    }

    pub fn alias_count(&self) -> usize {
        lock(&self.inner).aliases.len()
    }

    /// A counter of one trigger variant on one day (0 when never counted).
    pub fn counter(&self, shop: &str, trigger: &str, variant: &str, day: jiff::civil::Date, counter: Counter) -> i64 {
        let key = (shop.to_owned(), trigger.to_owned(), variant.to_owned(), day, counter);
        lock(&self.inner).counters.get(&key).copied().unwrap_or(0)
    }
}

impl MessageLog for MemoryStore {
    fn record_message(&self, record: &MessageRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        lock(&self.inner).messages.insert(record.message_id.clone(), record.clone());
        ready(Ok(()))
    }

    fn message(&self, message_id: &str) -> impl Future<Output = Result<Option<MessageRecord>, StoreError>> + Send {
        ready(Ok(lock(&self.inner).messages.get(message_id).cloned()))
    }

    fn count(
        &self,
        r: &MessageRecord,
        day: jiff::civil::Date,
        counter: Counter,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = (r.shop.clone(), r.trigger.clone(), r.variant.clone(), day, counter);
        *lock(&self.inner).counters.entry(key).or_default() += 1;
        ready(Ok(()))
    }
}

impl CatalogueStore for MemoryStore {
    fn put_products(
        &self,
        shop: &str,
        changes: &[ProductChange],
    ) -> impl Future<Output = Result<Vec<ProductChange>, StoreError>> + Send {
        let mut inner = lock(&self.inner);
        let products = inner.products.entry(shop.to_owned()).or_default();
        let mut applied = Vec::new();
        for c in changes {
            if c.supersedes(products.get(c.id()).and_then(ProductChange::at)) {
                products.insert(c.id().to_owned(), c.clone());
                applied.push(c.clone());
            }
        }
        ready(Ok(applied))
    }

    fn products(&self, shop: &str) -> impl Future<Output = Result<Vec<ProductChange>, StoreError>> + Send {
        let inner = lock(&self.inner);
        ready(Ok(inner.products.get(shop).map(|m| m.values().cloned().collect()).unwrap_or_default()))
    }
}

impl ProfileStore for MemoryStore {
    fn resolve(&self, shop: &str, aliases: &[Alias]) -> impl Future<Output = Result<Resolved, StoreError>> + Send {
        let inner = lock(&self.inner);
        let mut out = Resolved::default();
        for a in aliases {
            match inner.aliases.get(&alias_key(shop, a)) {
                Some(p) if out.profile.is_none() => out.profile = Some(p.to_string()),
                Some(p) => {
                    if out.profile.as_deref() != Some(p.as_str()) && !out.others.iter().any(|o| o == p) {
                        out.others.push(p.to_string());
                    }
                }
                None => out.unlinked.push(a.clone()),
            }
        }
        ready(Ok(out))
    }

    fn resolve_with(
        &self,
        shop: &str,
        aliases: &[Alias],
    ) -> impl Future<Output = Result<(Resolved, ReadAhead), StoreError>> + Send {
        if let Some(w) = self.watcher() {
            w.resolved_with(shop, aliases);
        }
        // In place, nothing needs reading ahead.
        let resolved = self.resolve(shop, aliases);
        async move { Ok((resolved.await?, ReadAhead::Nothing)) }
    }

    fn link(
        &self,
        shop: &str,
        aliases: &[Alias],
        profile: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        if let Some(w) = self.watcher() {
            w.linked(shop, aliases);
        }
        let mut inner = lock(&self.inner);
        for a in aliases {
            inner.aliases.insert(alias_key(shop, a), profile.into());
        }
        ready(Ok(()))
    }

    fn load(&self, shop: &str, id: &str) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send {
        self.loads.fetch_add(1, Ordering::Relaxed);
        ready(Ok(lock(&self.inner).profiles.get(&profile_key(shop, id)).map(|p| Profile::clone(p))))
    }

    fn save(
        &self,
        profile: &mut Profile,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send {
        self.saves.fetch_add(1, Ordering::Relaxed);
        let mut inner = lock(&self.inner);
        let key = profile_key(&profile.shop, &profile.id);
        let current = inner.profiles.get(&key).map(|p| p.version);
        let result = if current != expected {
            Saved::Conflict
        } else {
            profile.version = expected.map_or(1, |v| v + 1);
            inner.profiles.insert(key, Box::new(profile.clone()));
            Saved::Ok
        };
        ready(Ok(result))
    }

    fn erase(&self, shop: &str, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let mut inner = lock(&self.inner);
        inner.profiles.remove(&profile_key(shop, id));
        // Profile ids are derived from the shop, so the id alone is enough.
        inner.aliases.retain(|_, p| p != id);
        inner.messages.retain(|_, m| !(m.shop == shop && m.profile == id));
        ready(Ok(()))
    }

    fn erase_shop(&self, shop: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let mut inner = lock(&self.inner);
        let gone: std::collections::HashSet<String> =
            inner.profiles.values().filter(|p| p.shop == shop).map(|p| p.id.clone()).collect();
        inner.profiles.retain(|_, p| p.shop != shop);
        inner.aliases.retain(|_, p| !gone.contains(p.as_str()));
        inner.products.remove(shop);
        inner.messages.retain(|_, m| m.shop != shop);
        inner.counters.retain(|k, _| k.0 != shop);
        ready(Ok(()))
    }

    fn merge_into(&self, shop: &str, from: &str, into: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let mut inner = lock(&self.inner);
        inner.profiles.remove(&profile_key(shop, from));
        for p in inner.aliases.values_mut() {
            if p == from {
                *p = into.into();
            }
        }
        ready(Ok(()))
    }

    fn health(&self) -> Result<(), String> {
        lock(&self.unhealthy).clone().map_or(Ok(()), Err)
    }

    /// In place: the lock already serialises writers, so there is nothing to
    /// conflict with, and no copy of the profile is made. (Nothing is ever
    /// read ahead here; see `resolve_with`.)
    fn update_from<T, F>(
        &self,
        shop: &str,
        id: &str,
        create: bool,
        _preloaded: ReadAhead,
        mut f: F,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send
    where
        T: Send,
        F: FnMut(&mut Profile) -> Change<T> + Send,
    {
        if self.failing_writes.load(Ordering::Relaxed) {
            return ready(Err(StoreError::Unavailable("writes are failing".into())));
        }
        let mut inner = lock(&self.inner);
        self.loads.fetch_add(1, Ordering::Relaxed);
        let key = profile_key(shop, id);
        let watcher = self.watcher();
        if let Some(w) = watcher {
            w.updating(shop, id, inner.profiles.get(&key).map(|p| &**p));
        }
        let result = match inner.profiles.get_mut(&key) {
            Some(p) => {
                let c = f(p);
                if c.changed {
                    p.version += 1;
                    self.saves.fetch_add(1, Ordering::Relaxed);
                    if let Some(w) = watcher {
                        w.saved(p);
                    }
                }
                Some(c.value)
            }
            None if create => {
                let mut p = Box::new(Profile::new(shop, id));
                let c = f(&mut p);
                if c.changed {
                    p.version = 1;
                    self.saves.fetch_add(1, Ordering::Relaxed);
                    if let Some(w) = watcher {
                        w.saved(&p);
                    }
                    inner.profiles.insert(key, p);
                }
                Some(c.value)
            }
            None => None,
        };
        ready(Ok(result))
    }
}

fn cancel_key(c: &Check) -> (u64, i64) {
    (c.episode_hash(), c.due.as_second())
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(i64, u64, Check)>>,
    /// Scheduled checks withdrawn before they ran: (episode hash, due).
    cancelled: HashSet<(u64, i64)>,
    /// Queued checks that were parked and not asked for since, and whether
    /// parking made a request anyway (`scheduling_parked`). One that made
    /// none stands for the reconcile sweep when it comes due.
    parked: HashMap<(u64, i64), bool>,
    /// Parked checks asked for later than their queued entry could run
    /// (with a lead): the earlier entry is skipped once, the later runs.
    superseded: HashSet<(u64, i64)>,
    seq: u64,
}

impl Queue {
    /// Drops the entry at the front if it was withdrawn or superseded;
    /// whether it did.
    fn drop_front_if_gone(&mut self) -> bool {
        let Some(Reverse((_, _, check))) = self.heap.peek() else { return false };
        if self.cancelled.is_empty() && self.superseded.is_empty() {
            return false;
        }
        let key = cancel_key(check);
        let gone = self.superseded.remove(&key)
            || (self.cancelled.remove(&key) && {
                self.parked.remove(&key);
                true
            });
        if gone {
            self.heap.pop();
        }
        gone
    }
}

/// A scheduler whose queue is read by whoever drives time (replay, tests).
///
/// It models the AWS one call for call: `creates` counts the requests
/// EventBridge Scheduler would get. A parked check makes no request; it is
/// queued all the same, and when it comes due it runs as the reconcile
/// sweep would run it (`Due::parked`).
#[derive(Default)]
pub struct MemoryScheduler {
    queue: Mutex<Queue>,
    pub creates: AtomicU64,
    pub cancels: AtomicU64,
    /// Checks parked instead of scheduled.
    pub parks: AtomicU64,
    schedule_parked: bool,
    /// How long after being asked the scheduler runs a check at the
    /// earliest (0: exactly when due).
    lead: i64,
    /// The time now, as the driver of time last set it (whole seconds).
    now: AtomicI64,
}

/// A check popped from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub check: Check,
    /// When it runs: its due time, or later with a scheduler lead.
    pub at: Timestamp,
    /// It was parked and never asked for: the reconcile sweep runs it, not
    /// a Scheduler invocation.
    pub parked: bool,
}

impl MemoryScheduler {
    pub fn new() -> MemoryScheduler {
        MemoryScheduler::default()
    }

    /// A scheduler that asks for parked checks like any other, as `nudge
    /// serve`'s does: what the AWS stack would cost without parking.
    pub fn scheduling_parked() -> MemoryScheduler {
        MemoryScheduler { schedule_parked: true, ..MemoryScheduler::default() }
    }

    /// Runs each check it is asked for no sooner than `lead` after it was
    /// asked, as EventBridge Scheduler does (a one-time schedule runs a
    /// minute after it is created at the earliest; see nudge-aws). The
    /// driver of time says when "now" is with [`MemoryScheduler::set_now`].
    pub fn with_lead(mut self, lead: jiff::SignedDuration) -> MemoryScheduler {
        self.lead = lead.as_secs().max(0);
        self
    }

    /// The time requests are made at, for the lead.
    pub fn set_now(&self, now: Timestamp) {
        self.now.store(now.as_second(), Ordering::Relaxed);
    }

    /// When a check asked for now runs.
    fn runs_at(&self, check: &Check) -> i64 {
        let due = check.due.as_second();
        if self.lead == 0 { due } else { due.max(self.now.load(Ordering::Relaxed).saturating_add(self.lead)) }
    }

    /// The earliest scheduled check that runs at or before `until`, removed.
    pub fn pop_due(&self, until: Timestamp) -> Option<Due> {
        let mut q = lock(&self.queue);
        while q.drop_front_if_gone() {}
        let Reverse((at, _, _)) = q.heap.peek()?;
        if *at > until.as_second() {
            return None;
        }
        let Reverse((at, _, check)) = q.heap.pop()?;
        let parked = (!q.parked.is_empty())
            .then(|| cancel_key(&check))
            .and_then(|k| q.parked.remove(&k))
            .is_some_and(|requested| !requested);
        Some(Due { at: Timestamp::from_second(at).unwrap_or(check.due), check, parked })
    }

    /// When the earliest scheduled check runs (cancelled ones dropped).
    pub fn next_due(&self) -> Option<Timestamp> {
        let mut q = lock(&self.queue);
        while q.drop_front_if_gone() {}
        let Reverse((at, _, _)) = q.heap.peek()?;
        Timestamp::from_second(*at).ok()
    }

    /// Checks still waiting, in no particular order.
    pub fn pending(&self) -> Vec<Check> {
        let q = lock(&self.queue);
        q.heap.iter().map(|Reverse((_, _, c))| c.clone()).filter(|c| !q.cancelled.contains(&cancel_key(c))).collect()
    }
}

impl MemoryScheduler {
    fn enqueue(&self, check: &Check, parked: bool) {
        let mut q = lock(&self.queue);
        let at = if parked { check.due.as_second() } else { self.runs_at(check) };
        if parked {
            q.parked.insert(cancel_key(check), self.schedule_parked);
        } else if !q.parked.is_empty() && q.parked.remove(&cancel_key(check)).is_some() {
            // Asked for (again: the name makes it idempotent): the queued
            // entry stands for the request, unless the request runs later.
            if at == check.due.as_second() {
                return;
            }
            q.superseded.insert(cancel_key(check));
        }
        q.seq += 1;
        let seq = q.seq;
        q.heap.push(Reverse((at, seq, check.clone())));
    }
}

impl Scheduler for MemoryScheduler {
    fn schedule(&self, check: &Check) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        self.creates.fetch_add(1, Ordering::Relaxed);
        self.enqueue(check, false);
        ready(Ok(()))
    }

    fn park(&self, check: &Check) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        if self.schedule_parked {
            self.creates.fetch_add(1, Ordering::Relaxed);
        } else {
            self.parks.fetch_add(1, Ordering::Relaxed);
        }
        self.enqueue(check, true);
        ready(Ok(()))
    }

    /// Marks the check withdrawn; it is dropped when it reaches the front.
    fn cancel(&self, check: &Check) -> impl Future<Output = Result<(), SchedulerError>> + Send {
        self.cancels.fetch_add(1, Ordering::Relaxed);
        lock(&self.queue).cancelled.insert(cancel_key(check));
        ready(Ok(()))
    }
}

/// Records (or just counts) what would have been sent.
#[derive(Default)]
pub struct MemoryMailer {
    keep: bool,
    sent: Mutex<Vec<Outgoing>>,
    pub count: AtomicU64,
    /// Answers for the next sends, in order, instead of accepting them
    /// (tests play a mail service that fails).
    pub failures: Mutex<std::collections::VecDeque<MailError>>,
}

impl MemoryMailer {
    /// A mailer that keeps every message (tests).
    pub fn recording() -> MemoryMailer {
        MemoryMailer { keep: true, ..MemoryMailer::default() }
    }
    /// A mailer that only counts (replay of large logs).
    pub fn counting() -> MemoryMailer {
        MemoryMailer::default()
    }
    pub fn sent(&self) -> Vec<Outgoing> {
        lock(&self.sent).clone()
    }
    /// Removes and returns the messages recorded so far.
    pub fn take_sent(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *lock(&self.sent))
    }
}

impl Mailer for MemoryMailer {
    fn send(&self, message: &Outgoing, _email: &Composed) -> impl Future<Output = Result<String, MailError>> + Send {
        if let Some(e) = lock(&self.failures).pop_front() {
            return ready(Err(e));
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if self.keep {
            lock(&self.sent).push(message.clone());
        }
        ready(Ok(format!("mem-{n}")))
    }
}

/// A clock set by hand: replay's virtual time, or a test's.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock(AtomicI64::new(at.as_second()))
    }
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.as_second(), Ordering::Relaxed);
    }
    /// Moves forward only: late events never turn the clock back.
    pub fn advance_to(&self, at: Timestamp) {
        self.0.fetch_max(at.as_second(), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_second(self.0.load(Ordering::Relaxed)).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// Keeps decisions and exports in memory.
#[derive(Default)]
pub struct MemoryPublisher {
    decisions: Mutex<Vec<Decision>>,
    exports: Mutex<Vec<Profile>>,
}

impl MemoryPublisher {
    pub fn decisions(&self) -> Vec<Decision> {
        lock(&self.decisions).clone()
    }
    /// Removes and returns the decisions recorded so far.
    pub fn take_decisions(&self) -> Vec<Decision> {
        std::mem::take(&mut *lock(&self.decisions))
    }
    pub fn exports(&self) -> Vec<Profile> {
        lock(&self.exports).clone()
    }
}

impl Publisher for MemoryPublisher {
    fn decision(&self, decision: &Decision) -> impl Future<Output = Result<(), PublishError>> + Send {
        lock(&self.decisions).push(decision.clone());
        ready(Ok(()))
    }
    fn export(&self, profile: &Profile) -> impl Future<Output = Result<(), PublishError>> + Send {
        lock(&self.exports).push(profile.clone());
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AliasKind;

    #[test]
    fn map_keys_keep_the_boundaries_between_their_parts() {
        assert_ne!(profile_key("ab", "c"), profile_key("a", "bc"));
        assert_ne!(profile_key("shop", ""), profile_key("", "shop"));
    }

    #[test]
    fn an_alias_key_depends_on_its_kind_as_well_as_its_value() {
        let alias = |kind| Alias { kind, value: "42".into() };
        assert_ne!(alias_key("s", &alias(AliasKind::Customer)), alias_key("s", &alias(AliasKind::Cart)));
        assert_ne!(alias_key("s", &alias(AliasKind::Customer)), alias_key("t", &alias(AliasKind::Customer)));
        assert_eq!(alias_key("s", &alias(AliasKind::Cart)), alias_key("s", &alias(AliasKind::Cart)));
    }

    #[test]
    fn both_halves_of_a_map_key_vary() {
        let keys: Vec<u128> = (0..1000).map(|i| profile_key("shop", &format!("p{i}"))).collect();
        let distinct = |half: fn(u128) -> u64| keys.iter().map(|&k| half(k)).collect::<HashSet<_>>().len();
        assert_eq!(distinct(|k| k as u64), 1000);
        assert_eq!(distinct(|k| (k >> 64) as u64), 1000);
    }
}
