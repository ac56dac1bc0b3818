//! What a replayed log would cost on the AWS stack (`nudge replay
//! --aws-usage`): the requests and capacity units the DynamoDB adapter
//! would use for the store calls the replay makes ([`DynamoModel`], which
//! watches the in-memory store), the Scheduler requests the in-memory
//! scheduler counts, and a cost per million events at AWS list prices
//! (us-east-1, 2026-11).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nudge_app::Replay;
use nudge_app::identity::Alias;
use nudge_app::memory::StoreCalls;
use nudge_core::Profile;
use serde::Serialize;

/// Prices (USD).
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_ARM_PER_GB_S: f64 = 0.000_013_333_4;
const DDB_PER_WRU: f64 = 0.625 / 1e6;
const DDB_PER_RRU: f64 = 0.125 / 1e6;
const SCHEDULER_PER_INVOCATION: f64 = 1.00 / 1e6;
const SES_PER_EMAIL: f64 = 0.10 / 1000.0;
/// An entry up to 64 KB (nudge's events and decisions are far smaller).
const EVENTBRIDGE_PER_ENTRY: f64 = 1.00 / 1e6;
const LOGS_PER_GB: f64 = 0.50;

/// Assumptions where nothing could be measured without an AWS account:
/// billed duration and memory per invocation, and log bytes per invocation.
const INGEST_SECONDS: f64 = 0.015;
const INGEST_GB: f64 = 0.25;
const CHECK_SECONDS: f64 = 0.060;
const CHECK_GB: f64 = 0.5;
const LOG_BYTES_PER_INVOCATION: f64 = 600.0;
/// Writes the check function adds per email beyond the profile: the message
/// record and the `sent` counter.
const WRITES_PER_SEND: u64 = 2;

/// Attributes a profile item carries besides the document (keys, version,
/// ttl, owner, due index): about this many bytes.
const ITEM_OVERHEAD: usize = 200;

/// The requests and capacity units [`crate::dynamo::DynamoStore`] would use
/// for the calls a `MemoryStore` serves: one BatchGetItem per
/// `resolve_with` (aliases and the candidate profiles, 1 RRU each, strongly
/// consistent), one GetItem per update of a profile not read ahead, one
/// UpdateItem per changed profile (1 WRU per started KB of the item, its
/// document packed as stored), one BatchWriteItem per 25 new aliases.
#[derive(Debug, Default)]
pub struct DynamoModel {
    pub read_requests: AtomicU64,
    pub read_units: AtomicU64,
    pub write_requests: AtomicU64,
    pub write_units: AtomicU64,
    /// Ingests by the requests each made: `[n]` counts events whose ingest
    /// took n requests (the last entry: that many or more), for plain
    /// events (nothing new to link: a known person's event) and for events
    /// that linked new aliases (a new profile, a first identify, a new cart).
    pub plain_ingests: [AtomicU64; 8],
    pub linking_ingests: [AtomicU64; 8],
    links: AtomicU64,
    /// The profiles the last `resolve_with` read in its round trip.
    read_ahead: Mutex<Option<(String, Vec<String>)>>,
    /// Requests and links when the current event's ingest started.
    started: Mutex<(u64, u64)>,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn item_bytes(p: &Profile) -> usize {
    crate::document::pack(p).map_or(0, |v| v.len()) + ITEM_OVERHEAD
}

impl DynamoModel {
    /// Requests and alias links so far.
    fn requests(&self) -> (u64, u64) {
        let r = self.read_requests.load(Ordering::Relaxed) + self.write_requests.load(Ordering::Relaxed);
        (r, self.links.load(Ordering::Relaxed))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StoreCalls for DynamoModel {
    fn event_started(&self) {
        *lock(&self.started) = self.requests();
    }

    fn event_finished(&self) {
        let before = *lock(&self.started);
        let (requests, links) = self.requests();
        let into = if links == before.1 { &self.plain_ingests } else { &self.linking_ingests };
        let n = (requests - before.0).min(into.len() as u64 - 1);
        add(&into[n as usize], 1);
    }

    fn resolved_with(&self, shop: &str, aliases: &[Alias]) {
        // The same round trip reads each alias's candidate profile: an
        // update of any of them then costs no GetItem.
        let candidates = nudge_app::identity::candidates(shop, aliases);
        add(&self.read_requests, 1);
        add(&self.read_units, (aliases.len() + candidates.len()) as u64);
        *lock(&self.read_ahead) = Some((shop.to_owned(), candidates));
    }

    fn linked(&self, _shop: &str, aliases: &[Alias]) {
        add(&self.write_requests, aliases.len().div_ceil(25) as u64);
        add(&self.links, 1);
        add(&self.write_units, aliases.len() as u64);
    }

    fn updating(&self, shop: &str, id: &str, stored: Option<&Profile>) {
        let read_ahead = lock(&self.read_ahead).take().is_some_and(|(s, c)| s == shop && c.iter().any(|c| c == id));
        if !read_ahead {
            add(&self.read_requests, 1);
            add(&self.read_units, stored.map_or(0, item_bytes).div_ceil(4096).max(1) as u64);
        }
    }

    fn saved(&self, profile: &Profile) {
        add(&self.write_requests, 1);
        add(&self.write_units, item_bytes(profile).div_ceil(1024) as u64);
    }
}

#[derive(Debug, Serialize)]
pub struct Usage {
    pub events: u64,
    pub episodes: u64,
    /// Checks the Scheduler invoked the check function for.
    pub checks_run: u64,
    /// Parked checks (no Scheduler request) the reconcile sweep decided.
    pub checks_reconciled: u64,
    pub scheduler_parks: u64,
    pub sends: u64,
    pub dynamodb_requests: u64,
    pub dynamodb_requests_per_event: f64,
    /// The ingest side alone (the webhook and track functions), per event.
    pub ingest_requests_per_event: f64,
    /// Plain events (a known person's, nothing new to link): how many, the
    /// most requests any one's ingest made, and the mean.
    pub plain_events: u64,
    pub plain_event_max_requests: u64,
    pub plain_event_requests_per_event: f64,
    /// Events by the requests their ingest made: `[n]` = n requests (the
    /// last: that many or more); plain ones and those that linked aliases.
    pub plain_events_by_requests: Vec<u64>,
    pub linking_events_by_requests: Vec<u64>,
    pub write_units_per_event: f64,
    pub read_units_per_event: f64,
    pub scheduler_creates: u64,
    pub scheduler_creates_per_episode: f64,
    pub cost_per_million_events: Cost,
}

#[derive(Debug, Serialize)]
pub struct Cost {
    pub lambda: f64,
    pub dynamodb: f64,
    pub scheduler: f64,
    pub logs: f64,
    pub total_ex_ses: f64,
    pub ses_separately: f64,
    /// With `NUDGE_EVENT_BUS` set: every accepted event and every decision
    /// is one PutEvents entry. Not in the total (the bus is optional).
    pub event_bus_separately: f64,
}

/// Starts modelling the replay's store calls; read the result with
/// [`usage`] when the replay is over.
pub fn watch(replay: &Replay<'_>) -> Arc<DynamoModel> {
    let model = Arc::new(DynamoModel::default());
    replay.store.watch(model.clone());
    model
}

pub fn usage(replay: &Replay<'_>, m: &DynamoModel) -> Usage {
    let s = replay.summary();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let sends: u64 = s.triggers.values().map(|t| t.sent).sum();
    let episodes: u64 = s.triggers.values().map(|t| t.armed).sum();
    // The ingest side: every event; the check side adds its own writes.
    let reads = get(&m.read_requests);
    let writes = get(&m.write_requests) + WRITES_PER_SEND * sends;
    let wru = get(&m.write_units) + WRITES_PER_SEND * sends;
    let rru = get(&m.read_units);
    let creates = get(&replay.scheduler.creates);
    let plain: Vec<u64> = m.plain_ingests.iter().map(get).collect();
    let linking: Vec<u64> = m.linking_ingests.iter().map(get).collect();
    let total = |h: &[u64]| -> u64 { h.iter().enumerate().map(|(n, c)| n as u64 * c).sum() };
    let plain_events: u64 = plain.iter().sum();
    let events = s.events.max(1);
    let per_million = 1e6 / events as f64;
    // Reconciled checks run inside the periodic sweep's invocations (a
    // fixed number a month, whatever the traffic): no request fee each, but
    // as much compute as a check invocation.
    let invocations = (s.events + s.checks_run) as f64;
    let checks = (s.checks_run + s.checks_reconciled) as f64;
    let lambda = invocations * LAMBDA_PER_REQUEST
        + (s.events as f64 * INGEST_SECONDS * INGEST_GB + checks * CHECK_SECONDS * CHECK_GB) * LAMBDA_ARM_PER_GB_S;
    let dynamodb = wru as f64 * DDB_PER_WRU + rru as f64 * DDB_PER_RRU;
    let scheduler = s.checks_run as f64 * SCHEDULER_PER_INVOCATION;
    let logs = invocations * LOG_BYTES_PER_INVOCATION / 1e9 * LOGS_PER_GB;
    let decisions: u64 =
        s.triggers.values().map(|t| t.sent + t.skipped.values().sum::<u64>() + t.deferred.values().sum::<u64>()).sum();
    let bus_entries = s.events.saturating_sub(s.duplicates) + decisions;
    let cost = Cost {
        lambda: lambda * per_million,
        dynamodb: dynamodb * per_million,
        scheduler: scheduler * per_million,
        logs: logs * per_million,
        total_ex_ses: (lambda + dynamodb + scheduler + logs) * per_million,
        ses_separately: sends as f64 * SES_PER_EMAIL * per_million,
        event_bus_separately: bus_entries as f64 * EVENTBRIDGE_PER_ENTRY * per_million,
    };
    Usage {
        events: s.events,
        episodes,
        checks_run: s.checks_run,
        checks_reconciled: s.checks_reconciled,
        scheduler_parks: get(&replay.scheduler.parks),
        sends,
        dynamodb_requests: reads + writes,
        dynamodb_requests_per_event: (reads + writes) as f64 / events as f64,
        ingest_requests_per_event: (total(&plain) + total(&linking)) as f64 / events as f64,
        plain_events,
        plain_event_max_requests: plain.iter().rposition(|&c| c > 0).unwrap_or(0) as u64,
        plain_event_requests_per_event: total(&plain) as f64 / plain_events.max(1) as f64,
        plain_events_by_requests: plain,
        linking_events_by_requests: linking,
        write_units_per_event: wru as f64 / events as f64,
        read_units_per_event: rru as f64 / events as f64,
        scheduler_creates: creates,
        scheduler_creates_per_episode: creates as f64 / episodes.max(1) as f64,
        cost_per_million_events: cost,
    }
}
