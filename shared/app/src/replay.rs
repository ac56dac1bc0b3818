//! Backtesting: the production use cases over an event log, with in-memory
//! adapters and a virtual clock. Due checks fire in time order between
//! events; after the last event, time runs on until no check is pending.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use jiff::Timestamp;
use nudge_core::{Decision, Effect, Event, EventKind, Outcome, Reason, Triggers};
use serde::Serialize;

use crate::attribution::{Attribution, DEFAULT_WINDOW};
use crate::identity::AliasKey;
use crate::memory::{ManualClock, MemoryMailer, MemoryPublisher, MemoryScheduler, MemoryStore};
use crate::usecase::{AppError, CheckPorts, IngestPorts, ingest, ingest_message, run_check};

/// Runs a future whose adapters never wait (in memory, or embedded SQLite):
/// one poll completes it. Pending would be a programming error.
pub fn now_or_never<F: Future>(f: F) -> F::Output {
    complete(pin!(f))
}

/// As [`now_or_never`], for a future pinned where it was made: the replay's
/// per-event futures are kilobytes, and moving one into `now_or_never` is a
/// copy of all of it.
pub fn complete<F: Future>(mut f: std::pin::Pin<&mut F>) -> F::Output {
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("these adapters complete without waiting"),
    }
}

pub struct Replay<'r> {
    rules: &'r Triggers,
    alias_key: AliasKey,
    pub store: MemoryStore,
    pub scheduler: MemoryScheduler,
    pub mailer: MemoryMailer,
    clock: ManualClock,
    publisher: MemoryPublisher,
    summary: Summary,
    attribution: Attribution,
}

impl<'r> Replay<'r> {
    pub fn new(rules: &'r Triggers, alias_key: AliasKey) -> Replay<'r> {
        Replay {
            rules,
            alias_key,
            store: MemoryStore::new(),
            scheduler: MemoryScheduler::new(),
            mailer: MemoryMailer::counting(),
            clock: ManualClock::new(Timestamp::UNIX_EPOCH),
            publisher: MemoryPublisher::default(),
            summary: Summary::default(),
            attribution: Attribution::new(DEFAULT_WINDOW),
        }
    }

    /// Keeps every message that would have been sent, for `take_sent`
    /// (e.g. to render each one).
    pub fn record_messages(&mut self) {
        self.mailer = MemoryMailer::recording();
    }

    pub fn take_sent(&self) -> Vec<crate::ports::Outgoing> {
        self.mailer.take_sent()
    }

    /// Feeds one event that arrived at `arrived`: first every check due by
    /// then runs, then the event is ingested.
    pub fn push(&mut self, event: &Event, arrived: Timestamp, sink: &mut dyn FnMut(&Decision)) -> Result<(), AppError> {
        self.push_message(&[event], arrived, sink)
    }

    /// Feeds events in arrival order, each incoming message's events as one
    /// step ([`nudge_core::event::same_message`]), as every shell applies
    /// them. With `complete` false the last message may go on in the next
    /// call: it is not fed, and the index where it starts is returned.
    pub fn push_events(
        &mut self,
        events: &[(&Event, Timestamp)],
        complete: bool,
        sink: &mut dyn FnMut(&Decision),
    ) -> Result<usize, AppError> {
        let mut start = 0;
        let mut message: Vec<&Event> = Vec::with_capacity(2);
        for (i, (e, _)) in events.iter().enumerate() {
            if message.first().is_some_and(|first| !nudge_core::event::same_message(first, e)) {
                self.push_message(&message, events[start].1, sink)?;
                message.clear();
                start = i;
            }
            message.push(e);
        }
        if complete && !message.is_empty() {
            self.push_message(&message, events[start].1, sink)?;
            start = events.len();
        }
        Ok(start)
    }

    /// Feeds the events of one incoming message as one step.
    pub fn push_message(
        &mut self,
        events: &[&Event],
        arrived: Timestamp,
        sink: &mut dyn FnMut(&Decision),
    ) -> Result<(), AppError> {
        if events.is_empty() {
            return Ok(());
        }
        self.tick(arrived, sink)?;
        self.ingest_message(events, sink)
    }

    /// What happens when a message arrives at `arrived`, before it is
    /// ingested: every check due by then runs, and time moves on to it. A
    /// shard of a replay on several threads ticks for every message of the
    /// log, its own and the others', so that its clock and its checks run
    /// exactly as in a replay on one thread.
    pub fn tick(&mut self, arrived: Timestamp, sink: &mut dyn FnMut(&Decision)) -> Result<(), AppError> {
        self.run_due(arrived, sink)?;
        self.clock.advance_to(arrived);
        self.scheduler.set_now(self.now());
        Ok(())
    }

    /// Ingests one message at the current time (after [`Replay::tick`]).
    pub fn ingest_message(&mut self, events: &[&Event], sink: &mut dyn FnMut(&Decision)) -> Result<(), AppError> {
        if events.is_empty() {
            return Ok(());
        }
        let ports = IngestPorts {
            now: self.now(),
            rules: self.rules,
            alias_key: &self.alias_key,
            store: &self.store,
            scheduler: &self.scheduler,
            publisher: &self.publisher,
        };
        let watcher = self.store.watcher();
        if let Some(w) = watcher {
            w.event_started();
        }
        let ingested = complete(pin!(ingest_message(&ports, events)))?;
        if let Some(w) = watcher {
            w.event_finished();
        }
        self.summary.events += events.len() as u64;
        for (event, fresh) in events.iter().zip(&ingested.fresh) {
            let Some(profile) = ingested.profile.as_ref().filter(|_| *fresh) else { continue };
            match &event.kind {
                EventKind::OrderPlaced { order } => {
                    self.attribution.order(profile, event.occurred_at.as_second(), order.value)
                }
                EventKind::EmailOpened { message } | EventKind::EmailClicked { message } => {
                    if let Some(trigger) = &message.trigger {
                        let clicked = matches!(event.kind, EventKind::EmailClicked { .. });
                        self.attribution.engagement(profile, trigger, message.episode, clicked);
                    }
                }
                _ => {}
            }
        }
        self.summary.duplicates += ingested.fresh.iter().filter(|f| !**f).count() as u64;
        if ingested.profile.is_none() {
            self.summary.duplicates += events.len() as u64;
        }
        for e in &ingested.effects {
            if let Effect::Schedule { check, first: true, .. } = e {
                self.summary.trigger(&check.trigger).armed += 1;
            }
        }
        self.drain(sink);
        Ok(())
    }

    /// Ingests an event only to learn whose it is (identity resolution and
    /// merging as in production); no check runs. For reports over logs.
    pub fn identify(&mut self, event: &Event) -> Result<Option<String>, AppError> {
        let ports = IngestPorts {
            now: self.now(),
            rules: self.rules,
            alias_key: &self.alias_key,
            store: &self.store,
            scheduler: &self.scheduler,
            publisher: &self.publisher,
        };
        Ok(now_or_never(ingest(&ports, event))?.profile)
    }

    /// Runs every remaining check, in time order, until none is pending.
    /// Its decisions are handed on as one batch (see [`Replay::drain`]).
    pub fn finish(&mut self, sink: &mut dyn FnMut(&Decision)) -> Result<(), AppError> {
        while let Some(due) = self.scheduler.next_due() {
            self.run_checks(due)?;
        }
        self.drain(sink);
        Ok(())
    }

    fn run_due(&mut self, until: Timestamp, sink: &mut dyn FnMut(&Decision)) -> Result<(), AppError> {
        self.run_checks(until)?;
        self.drain(sink);
        Ok(())
    }

    /// Runs the checks due by `until`; their decisions wait in the publisher.
    fn run_checks(&mut self, until: Timestamp) -> Result<(), AppError> {
        while let Some(crate::memory::Due { check, at, parked }) = self.scheduler.pop_due(until) {
            self.clock.advance_to(at);
            self.scheduler.set_now(self.now());
            let ports = CheckPorts {
                rules: self.rules,
                store: &self.store,
                scheduler: &self.scheduler,
                composer: None,
                send_by: None,
                claims_lapse_before: None,
                mailer: &self.mailer,
                clock: &self.clock,
                publisher: &self.publisher,
            };
            complete(pin!(run_check(&ports, &check)))?;
            if parked {
                self.summary.checks_reconciled += 1;
            } else {
                self.summary.checks_run += 1;
            }
        }
        Ok(())
    }

    /// Hands on the decisions made since the last call: those of one
    /// message, or of every check that ran before one, in a canonical
    /// order — by time, then profile, each person's in the order made. The
    /// order of two people's decisions at one time is then the same however
    /// the log is split between threads ([`crate::shard`]).
    fn drain(&mut self, sink: &mut dyn FnMut(&Decision)) {
        let mut decisions = self.publisher.take_decisions();
        decisions.sort_by(|a, b| (a.at, &a.profile).cmp(&(b.at, &b.profile)));
        for d in decisions {
            self.summary.record(&d);
            self.attribution.decision(&d);
            sink(&d);
        }
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Orders credited to triggers and variants so far.
    pub fn attribution(&self) -> &Attribution {
        &self.attribution
    }

    /// The attribution so far, leaving an empty one.
    pub fn take_attribution(&mut self) -> Attribution {
        std::mem::replace(&mut self.attribution, Attribution::new(DEFAULT_WINDOW))
    }

    pub fn now(&self) -> Timestamp {
        use crate::ports::Clock;
        self.clock.now()
    }
}

/// Counts per trigger and variant, as printed after a replay.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub events: u64,
    pub duplicates: u64,
    /// Scheduled checks that came due and ran (the check function's invocations).
    pub checks_run: u64,
    /// Parked checks (no scheduler request) that came due and ran, as the
    /// reconcile sweep runs them.
    pub checks_reconciled: u64,
    pub triggers: BTreeMap<String, TriggerSummary>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct TriggerSummary {
    pub armed: u64,
    pub sent: u64,
    pub skipped: BTreeMap<Reason, u64>,
    pub deferred: BTreeMap<Reason, u64>,
    pub variants: BTreeMap<String, VariantSummary>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct VariantSummary {
    pub sent: u64,
    pub holdout: u64,
}

impl Summary {
    fn trigger(&mut self, id: &str) -> &mut TriggerSummary {
        if !self.triggers.contains_key(id) {
            self.triggers.insert(id.to_owned(), TriggerSummary::default());
        }
        self.triggers.get_mut(id).unwrap_or_else(|| unreachable!("inserted above"))
    }

    pub fn record(&mut self, d: &Decision) {
        let t = self.trigger(&d.trigger);
        match (d.decision, d.reason) {
            (Outcome::Send, _) => t.sent += 1,
            (Outcome::Skip, Some(r)) => *t.skipped.entry(r).or_default() += 1,
            (Outcome::Defer, Some(r)) => *t.deferred.entry(r).or_default() += 1,
            _ => {}
        }
        if let Some(v) = &d.variant {
            let vs = t.variants.entry(v.clone()).or_default();
            match (d.decision, d.reason) {
                (Outcome::Send, _) => vs.sent += 1,
                (Outcome::Skip, Some(Reason::Holdout)) => vs.holdout += 1,
                _ => {}
            }
        }
    }

    /// Adds another replay's counts (a shard's, [`crate::shard`]).
    pub fn add(&mut self, other: &Summary) {
        self.events += other.events;
        self.duplicates += other.duplicates;
        self.checks_run += other.checks_run;
        self.checks_reconciled += other.checks_reconciled;
        for (id, o) in &other.triggers {
            let t = self.trigger(id);
            t.armed += o.armed;
            t.sent += o.sent;
            for (r, n) in &o.skipped {
                *t.skipped.entry(*r).or_default() += n;
            }
            for (r, n) in &o.deferred {
                *t.deferred.entry(*r).or_default() += n;
            }
            for (v, o) in &o.variants {
                let vs = t.variants.entry(v.clone()).or_default();
                vs.sent += o.sent;
                vs.holdout += o.holdout;
            }
        }
    }

    pub fn sent(&self) -> u64 {
        self.triggers.values().map(|t| t.sent).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} events ({} duplicates ignored)", self.events, self.duplicates)?;
        writeln!(
            f,
            "{} checks run by the scheduler, {} parked (the person could not be emailed: no scheduler request)",
            self.checks_run, self.checks_reconciled
        )?;
        writeln!(
            f,
            "{:<22} {:>8} {:>8} {:>8} {:>8}  skipped by reason",
            "trigger", "armed", "sent", "skipped", "deferred"
        )?;
        for (id, t) in &self.triggers {
            let skipped: u64 = t.skipped.values().sum();
            let deferred: u64 = t.deferred.values().sum();
            let reasons: Vec<String> = t.skipped.iter().map(|(r, n)| format!("{} {n}", r.as_str())).collect();
            writeln!(f, "{id:<22} {:>8} {:>8} {skipped:>8} {deferred:>8}  {}", t.armed, t.sent, reasons.join(", "))?;
            if !t.deferred.is_empty() {
                let d: Vec<String> = t.deferred.iter().map(|(r, n)| format!("{} {n}", r.as_str())).collect();
                writeln!(f, "{:<22} deferred: {}", "", d.join(", "))?;
            }
            if t.variants.len() > 1 || t.variants.values().any(|v| v.holdout > 0) {
                for (v, s) in &t.variants {
                    writeln!(f, "{:<22}   variant {v}: sent {}, holdout {}", "", s.sent, s.holdout)?;
                }
            }
        }
        Ok(())
    }
}
