//! The use cases every shell runs: `ingest` an event, `run_check` when a
//! check comes due. Generic over the ports, so the Lambda functions, the
//! local server and the replay run the same code.

use nudge_core::decide::Outcome;
use nudge_core::{Check, Decision, Delivery, Effect, Event, Profile, Reason, Triggers};

use crate::compose::{Composed, Composer};
use crate::identity::{Alias, AliasKey, AliasKind, aliases, new_profile_id};
use crate::ports::{
    CatalogueStore, Change, Clock, MailError, Mailer, MessageLog, MessageRecord, Outgoing, ProfileStore, PublishError,
    Publisher, ReadAhead, Scheduler, SchedulerError, StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl AppError {
    /// Every error here is on our side (or a dependency's): the sender
    /// should retry. Bad input never reaches the use cases.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// What `ingest` did.
#[derive(Debug, Default)]
pub struct Ingested {
    /// The profile the event landed on; `None` when it named nobody.
    pub profile: Option<String>,
    /// For each event of the message: whether it was new (not a duplicate).
    pub fresh: Vec<bool>,
    /// The effects that were carried out.
    pub effects: Vec<Effect>,
}

impl Ingested {
    /// False when every event was a duplicate: nothing changed.
    pub fn changed(&self) -> bool {
        self.fresh.contains(&true)
    }
}

/// The ports `ingest` needs.
pub struct IngestPorts<'a, S, Sch, P> {
    /// When the events arrive (decides parked checks that came due before).
    pub now: jiff::Timestamp,
    pub rules: &'a Triggers,
    pub alias_key: &'a AliasKey,
    pub store: &'a S,
    pub scheduler: &'a Sch,
    pub publisher: &'a P,
}

/// Resolves who the event is about, folds it into their profile (optimistic
/// concurrency, retried on conflict) and carries out the effects.
pub async fn ingest<S, Sch, P>(ports: &IngestPorts<'_, S, Sch, P>, event: &Event) -> Result<Ingested, AppError>
where
    S: ProfileStore,
    Sch: Scheduler,
    P: Publisher,
{
    ingest_message(ports, &[event]).await
}

/// As [`ingest`], for the events one incoming message became (see
/// [`nudge_core::event::messages`]: the same shop and person): folded into
/// the profile in one write, so no check ever sees half of the message.
pub async fn ingest_message<S, Sch, P>(
    ports: &IngestPorts<'_, S, Sch, P>,
    events: &[&Event],
) -> Result<Ingested, AppError>
where
    S: ProfileStore,
    Sch: Scheduler,
    P: Publisher,
{
    let Some(event) = events.first() else {
        return Ok(Ingested::default());
    };
    let aliases = aliases(&event.identity, ports.alias_key);
    let Some(first) = aliases.first() else {
        return Ok(Ingested::default());
    };
    let (resolved, read_ahead) = ports.store.resolve_with(&event.shop, &aliases).await?;
    let id = resolved.profile.clone().unwrap_or_else(|| new_profile_id(&event.shop, first));
    let preloaded = read_ahead.usable_for(&id, &resolved);
    for other in &resolved.others {
        merge(ports, &event.shop, other, &id).await?;
    }
    let (fresh, effects) =
        fold_into(ports, &id, true, preloaded, events, &resolved.unlinked).await?.unwrap_or_default();
    Ok(Ingested { profile: Some(id), fresh, effects })
}

/// Folds `events` (one message's: the same shop) into profile `id` in one
/// write, links `unlinked` aliases to it when it changed, then carries out
/// the effects (an erase last undoes the link). Returns whether each event
/// was new; `None`: no such profile and `create` was false.
async fn fold_into<S, Sch, P>(
    ports: &IngestPorts<'_, S, Sch, P>,
    id: &str,
    create: bool,
    preloaded: ReadAhead,
    events: &[&Event],
    unlinked: &[crate::identity::Alias],
) -> Result<Option<(Vec<bool>, Vec<Effect>)>, AppError>
where
    S: ProfileStore,
    Sch: Scheduler,
    P: Publisher,
{
    let rules = ports.rules;
    let Some(event) = events.first() else {
        return Ok(Some(Default::default()));
    };
    let Some((fresh, effects, snapshot, address_refused)) = ports
        .store
        .update_from(&event.shop, id, create, preloaded, |p| {
            let mut effects = p.conclude_parked(rules, ports.now);
            let concluded = !effects.is_empty();
            let (mut fresh, mut address_refused) = (Vec::with_capacity(events.len()), false);
            for &e in events {
                let applied = p.apply(e, rules);
                fresh.push(applied.changed);
                address_refused |= applied.address_refused;
                effects.extend(applied.effects);
            }
            p.stamp_parked(ports.now);
            let wants_export = effects.iter().any(|e| matches!(e, Effect::Export));
            // Boxed: the closure's result is moved through the store's future.
            let snapshot = wants_export.then(|| Box::new(p.clone()));
            Change { changed: fresh.contains(&true) || concluded, value: (fresh, effects, snapshot, address_refused) }
        })
        .await?
    else {
        return Ok(None);
    };
    let changed = fresh.contains(&true);
    // Aliases are linked after the profile is saved. A repeat of a message
    // whose save went through but whose delivery then failed (the answer
    // lost, the link write failed) changes nothing, yet its aliases may
    // still be unlinked: they are linked now. An address from a browser key
    // is not (whether the profile took it is no longer known).
    let repeat_of_public = !changed && events.iter().any(|e| e.trust == nudge_core::Trust::Public);
    if !unlinked.is_empty() {
        // An address the profile refused (a public key naming another one)
        // must not lead to this profile either.
        if address_refused || repeat_of_public {
            let kept: Vec<Alias> = unlinked.iter().filter(|a| a.kind != AliasKind::Email).cloned().collect();
            ports.store.link(&event.shop, &kept, id).await?;
        } else {
            ports.store.link(&event.shop, unlinked, id).await?;
        }
    }
    for effect in &effects {
        match effect {
            Effect::Schedule { check, parked, .. } => ask(ports.scheduler, check, *parked).await?,
            Effect::Cancel(check) => ports.scheduler.cancel(check).await?,
            Effect::Decided(d) => ports.publisher.decision(d).await?,
            Effect::Erase => ports.store.erase(&event.shop, id).await?,
            Effect::Export => {
                if let Some(p) = &snapshot {
                    ports.publisher.export(p).await?;
                }
            }
        }
    }
    Ok(Some((fresh, effects)))
}

/// Folds an event about a person already known by profile id (SES feedback
/// joined through its message, for instance): no alias resolution, and a
/// profile that no longer exists is left alone. Returns whether anything
/// changed (false for a duplicate or an erased profile).
pub async fn ingest_for<S, Sch, P>(
    ports: &IngestPorts<'_, S, Sch, P>,
    profile: &str,
    event: &Event,
) -> Result<bool, AppError>
where
    S: ProfileStore,
    Sch: Scheduler,
    P: Publisher,
{
    match current_profile(ports.store, &event.shop, profile).await? {
        Some(current) => fold_loaded(ports, current, event).await,
        None => Ok(false),
    }
}

/// Folds `event` into `profile`, just loaded (the first attempt of the
/// write starts from it instead of reading it again).
pub(crate) async fn fold_loaded<S, Sch, P>(
    ports: &IngestPorts<'_, S, Sch, P>,
    profile: Profile,
    event: &Event,
) -> Result<bool, AppError>
where
    S: ProfileStore,
    Sch: Scheduler,
    P: Publisher,
{
    let id = profile.id.clone();
    Ok(fold_into(ports, &id, false, ReadAhead::Found(Box::new(profile)), &[event], &[])
        .await?
        .is_some_and(|(fresh, _)| fresh.contains(&true)))
}

/// The profile that holds what `id` named, as stored now: `id` itself, or
/// the profile it was merged into (redirects follow chains of merges, as
/// each merge re-points the retired profile's aliases). `None` when erased.
pub async fn current_profile<S: ProfileStore>(store: &S, shop: &str, id: &str) -> Result<Option<Profile>, StoreError> {
    if let Some(p) = store.load(shop, id).await? {
        return Ok(Some(p));
    }
    match store.resolve(shop, &[Alias::merged(id)]).await?.profile {
        Some(survivor) => store.load(shop, &survivor).await,
        None => Ok(None),
    }
}

/// Asks the scheduler for a check, or parks it (see `Scheduler::park`).
async fn ask<Sch: Scheduler>(scheduler: &Sch, check: &Check, parked: bool) -> Result<(), SchedulerError> {
    if parked { scheduler.park(check).await } else { scheduler.schedule(check).await }
}

/// Folds profile `from` into `into` (the same person seen under two
/// identities), then retires `from`. Safe to repeat.
async fn merge<S, Sch, P>(
    ports: &IngestPorts<'_, S, Sch, P>,
    shop: &str,
    from: &str,
    into: &str,
) -> Result<(), AppError>
where
    S: ProfileStore,
    Sch: Scheduler,
    P: Publisher,
{
    if let Some(other) = ports.store.load(shop, from).await? {
        let rules = ports.rules;
        ports
            .store
            .update(shop, into, true, |p| {
                p.absorb(&other, rules);
                Change { changed: true, value: () }
            })
            .await?;
    }
    // The redirect first: links and message records naming `from` keep
    // arriving (an unsubscribe, a complaint) once it is gone.
    ports.store.link(shop, &[Alias::merged(from)], into).await?;
    ports.store.merge_into(shop, from, into).await?;
    Ok(())
}

/// The ports `run_check` needs.
pub struct CheckPorts<'a, S, Sch, M, C, P> {
    pub rules: &'a Triggers,
    pub store: &'a S,
    pub scheduler: &'a Sch,
    /// Renders each send; without one (a replay without templates, the
    /// use-case tests) the mailer gets [`Composed::unrendered`].
    pub composer: Option<&'a Composer>,
    /// No send is started after this time (a Lambda invocation's deadline
    /// less the longest a send may take): one that would be is not
    /// accepted, and tried again later, instead of being cut off midway.
    pub send_by: Option<jiff::Timestamp>,
    /// Claims made before this are abandoned whatever their age: a local
    /// server's start (it runs its checks one at a time, so no claim of its
    /// own predates it). Without it, claims lapse after
    /// [`nudge_core::profile::CLAIM_LEASE`].
    pub claims_lapse_before: Option<jiff::Timestamp>,
    pub mailer: &'a M,
    pub clock: &'a C,
    pub publisher: &'a P,
}

/// What `run_check` decided, and the mailer's message id for a send.
#[derive(Debug)]
pub struct Checked {
    pub decision: Decision,
    pub message_id: Option<String>,
    /// Bookkeeping that failed after the email went out (`message_record`,
    /// `stats`): logged here, for the shell to count as errors. The email
    /// is never sent again for it.
    pub unrecorded: Vec<&'static str>,
}

/// Decides a due check, in two writes around the mailer. The first claims
/// the episode for this run (a token of its own) before the mailer is
/// called, so a redelivered check finds it claimed and sends nothing:
/// marketing mail is at-most-once per episode. The second settles it with
/// what the mailer answered ([`nudge_core::Delivery`]): sent, refused,
/// deferred (not accepted), or unconfirmed. Only then is the final decision
/// published, the message recorded (for the feedback join) and counted. A
/// run that stops between the two leaves a claim that the next run of the
/// check (`reconcile`) settles as `unconfirmed` once it is abandoned.
pub async fn run_check<S, Sch, M, C, P>(
    ports: &CheckPorts<'_, S, Sch, M, C, P>,
    check: &Check,
) -> Result<Checked, AppError>
where
    S: ProfileStore + CatalogueStore + MessageLog,
    Sch: Scheduler,
    M: Mailer,
    C: Clock,
    P: Publisher,
{
    let now = ports.clock.now();
    let rules = ports.rules;
    let token = claim_token();
    let claimed = ports
        .store
        .update(&check.shop, &check.profile, false, |p| {
            // A retried write of this run's own claim finds it made.
            let mine = p
                .state(&check.trigger)
                .and_then(|s| s.pending.as_ref()?.claim.as_ref())
                .is_some_and(|c| c.token == token);
            let lease = nudge_core::decide::lease_cutoff(now);
            // Claims keep whole seconds: one made in the second the server
            // started, by the process before it, must count as before.
            let started = |t: jiff::Timestamp| t.as_second() + i64::from(t.subsec_nanosecond() > 0);
            let lapsed_before = ports.claims_lapse_before.map_or(lease, |t| started(t).max(lease));
            let (decision, effects) = p.claim_lapsing(check, rules, now, token, lapsed_before);
            let changed = !matches!(decision.reason, Some(Reason::Duplicate | Reason::InFlight)) && !mine;
            let snapshot = (decision.decision == Outcome::Send).then(|| Box::new(p.clone()));
            Change { changed, value: (decision, effects, snapshot) }
        })
        .await?;
    let Some((decision, effects, snapshot)) = claimed else {
        let d = Decision::skipped(check, now, Reason::NoProfile, rules);
        ports.publisher.decision(&d).await?;
        return Ok(Checked { decision: d, message_id: None, unrecorded: Vec::new() });
    };
    let Some(profile) = snapshot else {
        return finish(ports, decision, &effects, None, Vec::new()).await;
    };
    let outgoing =
        Outgoing { check: check.clone(), variant: decision.variant.clone().unwrap_or_default(), profile: *profile };
    if check.trigger == nudge_core::profile::CONFIRM_TRIGGER {
        // A confirmation request is decided in one write (its own
        // at-most-once state, at most one a day); a failed send is recorded.
        let mut decision = decision;
        let sent = send(ports, &outgoing, now).await;
        let unrecorded = match &sent {
            Ok(id) => record_sent(ports.store, &outgoing, id, now).await,
            Err(e) => {
                tracing::warn!(check = %check.name(), error = %e, "confirmation request not sent");
                decision.decision = Outcome::Skip;
                decision.reason =
                    Some(if matches!(e, MailError::Sandboxed) { Reason::Sandbox } else { Reason::MailFailed });
                Vec::new()
            }
        };
        return finish(ports, decision, &effects, sent.ok(), unrecorded).await;
    }
    let sent = send(ports, &outgoing, now).await;
    let delivery = match &sent {
        Ok(_) => Delivery::Accepted,
        Err(e) => {
            tracing::warn!(check = %check.name(), error = %e, "send not made");
            e.delivery()
        }
    };
    let settled_at = ports.clock.now();
    let settled = ports
        .store
        .update(&check.shop, &check.profile, false, |p| {
            let (d, more) = p.settle(check, token, delivery, rules, settled_at);
            Change { changed: d.reason != Some(Reason::Duplicate), value: (d, more) }
        })
        .await?;
    let (final_decision, more) = match settled {
        Some(s) => s,
        // Erased while the mail was out.
        None => (Decision::skipped(check, settled_at, Reason::NoProfile, rules), Vec::new()),
    };
    let message_id = sent.ok().filter(|_| final_decision.decision == Outcome::Send);
    let unrecorded = match &message_id {
        Some(id) => record_sent(ports.store, &outgoing, id, settled_at).await,
        None => Vec::new(),
    };
    let effects: Vec<Effect> = effects.into_iter().chain(more).collect();
    finish(ports, final_decision, &effects, message_id, unrecorded).await
}

/// Publishes the decision and asks for the checks its effects name.
async fn finish<S, Sch, M, C, P>(
    ports: &CheckPorts<'_, S, Sch, M, C, P>,
    decision: Decision,
    effects: &[Effect],
    message_id: Option<String>,
    unrecorded: Vec<&'static str>,
) -> Result<Checked, AppError>
where
    Sch: Scheduler,
    P: Publisher,
{
    ports.publisher.decision(&decision).await?;
    for effect in effects {
        if let Effect::Schedule { check, parked, .. } = effect {
            ask(ports.scheduler, check, *parked).await?;
        }
    }
    Ok(Checked { decision, message_id, unrecorded })
}

/// A token no other run holds: this process's id, a counter and the time,
/// mixed (never 0, which [`nudge_core::Profile::conclude`] uses).
fn claim_token() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nudge_core::hash::mix(u64::from(std::process::id()) << 40 ^ n ^ nanos.rotate_left(17)) | 1
}

/// Renders `m` and hands it to the mailer.
async fn send<S, Sch, M, C, P>(
    ports: &CheckPorts<'_, S, Sch, M, C, P>,
    m: &Outgoing,
    now: jiff::Timestamp,
) -> Result<String, MailError>
where
    S: CatalogueStore,
    M: Mailer,
    C: Clock,
{
    if ports.send_by.is_some_and(|by| ports.clock.now() > by) {
        return Err(MailError::NotAccepted("too close to the end of the invocation to start a send".into()));
    }
    let email = match ports.composer {
        Some(c) => c.compose_current(ports.store, m, now).await?,
        None => Composed::unrendered(m),
    };
    ports.mailer.send(m, &email).await
}

/// Keeps the record of a message sent and counts it. The email is out:
/// a failure here costs the feedback join or a counter, never a second
/// email; it is logged and returned.
async fn record_sent<S: MessageLog>(store: &S, m: &Outgoing, id: &str, now: jiff::Timestamp) -> Vec<&'static str> {
    let record = MessageRecord {
        message_id: id.to_owned(),
        shop: m.check.shop.clone(),
        profile: m.check.profile.clone(),
        trigger: m.check.trigger.clone(),
        variant: m.variant.clone(),
        episode: m.check.episode,
    };
    let mut failed = Vec::new();
    if let Err(e) = store.record_message(&record).await {
        tracing::error!(error = %e, message = %id, "message sent but its record was not stored");
        failed.push("message_record");
    }
    let day = jiff::tz::TimeZone::UTC.to_datetime(now).date();
    if let Err(e) = store.count(&record, day, crate::ports::COUNTERS[0]).await {
        tracing::error!(error = %e, message = %id, "message sent but not counted");
        failed.push("stats");
    }
    failed
}

/// What a reconcile sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Overdue checks found and run.
    pub run: u32,
    /// Of those, the ones that sent an email.
    pub sent: u32,
    /// Their [`Checked::unrecorded`], together.
    pub unrecorded: Vec<&'static str>,
    /// Checks that failed, with why (logged with their names; the rest
    /// went on). The shell counts them against the profile, and sets a
    /// profile aside after [`MAX_SWEEP_FAILURES`].
    pub failed: Vec<(nudge_core::Check, String)>,
}

/// How many sweeps may fail on a profile's check before the shell sets the
/// profile aside (out of the sweep, with the reason): a poison item must not
/// be retried forever, and one transient outage must not set anything aside.
pub const MAX_SWEEP_FAILURES: u32 = 5;

/// The fallback path for checks the scheduler never delivered (deleted,
/// dead-lettered, never created): every pending check of these profiles
/// that is overdue by more than `grace` is run now, claimed ones included
/// (an abandoned claim is settled). Running a check the scheduler did
/// deliver is harmless: its episode is already decided. A check that fails
/// does not stop the others.
pub async fn reconcile<S, Sch, M, C, P>(
    ports: &CheckPorts<'_, S, Sch, M, C, P>,
    profiles: &[nudge_core::Profile],
    grace: jiff::SignedDuration,
) -> Result<Reconciled, AppError>
where
    S: ProfileStore + CatalogueStore + MessageLog,
    Sch: Scheduler,
    M: Mailer,
    C: Clock,
    P: Publisher,
{
    let cutoff = ports.clock.now().saturating_sub(grace).unwrap_or(jiff::Timestamp::MIN);
    let mut out = Reconciled::default();
    for p in profiles {
        for check in p.pending_checks().into_iter().filter(|c| c.due <= cutoff) {
            // Each check on its own: one that fails is logged and counted,
            // and the sweep goes on (it is found again by the next one).
            let checked = match run_check(ports, &check).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(check = %check.name(), error = %e, "reconcile: check failed; the sweep goes on");
                    out.failed.push((check, e.to_string()));
                    continue;
                }
            };
            out.run += 1;
            out.sent += u32::from(checked.message_id.is_some());
            out.unrecorded.extend(checked.unrecorded);
            tracing::info!(check = %check.name(), outcome = ?checked.decision.decision, "reconciled an overdue check");
        }
    }
    Ok(out)
}
