//! What a replayed log would cost on the AWS stack: the requests the
//! DynamoDB and Scheduler adapters would make (counted by the in-memory
//! adapters, which model them call for call) and a cost per million events
//! at AWS list prices (us-east-1, 2026-11).

use std::sync::atomic::Ordering;

use nudge_app::Replay;
use serde::Serialize;

/// Prices (USD).
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_ARM_PER_GB_S: f64 = 0.000_013_333_4;
const DDB_PER_WRU: f64 = 0.625 / 1e6;
const DDB_PER_RRU: f64 = 0.125 / 1e6;
const SCHEDULER_PER_INVOCATION: f64 = 1.00 / 1e6;
const SES_PER_EMAIL: f64 = 0.10 / 1000.0;
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
}

pub fn start(replay: &Replay<'_>) {
    replay.store.dynamo.measure.store(true, Ordering::Relaxed);
}

pub fn usage(replay: &Replay<'_>) -> Usage {
    let s = replay.summary();
    let m = &replay.store.dynamo;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
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
    let cost = Cost {
        lambda: lambda * per_million,
        dynamodb: dynamodb * per_million,
        scheduler: scheduler * per_million,
        logs: logs * per_million,
        total_ex_ses: (lambda + dynamodb + scheduler + logs) * per_million,
        ses_separately: sends as f64 * SES_PER_EMAIL * per_million,
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
