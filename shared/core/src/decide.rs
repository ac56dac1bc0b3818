//! `decide()`: when a check comes due, re-read the profile and either send one
//! email, skip with a reason, or defer to a later time. Pure.

use jiff::Timestamp;
use jiff::civil::Time;
use serde::{Deserialize, Serialize};

use crate::event::{ConsentSource, ConsentState};
use crate::hash::{stable_hash, unit_interval};
use crate::profile::{CLAIM_LEASE, Claim, Effect, Pending, Profile, SendRecord};
use crate::rules::{QuietHours, SendAt, Trigger, Triggers};
use crate::time::Dur;
use crate::time::{Secs, secs, ts};

/// The scheduler payload: which episode of which trigger to decide, and when.
/// Carries no personal data.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub shop: String,
    pub profile: String,
    pub trigger: String,
    pub episode: u32,
    pub due: Timestamp,
}

impl Check {
    /// Deterministic name for this request, unique per (episode, due time):
    /// a retried create hits the same name. Fits EventBridge Scheduler's
    /// 64-character `[0-9a-zA-Z-_.]` limit.
    pub fn name(&self) -> String {
        format!("nudge-{:016x}-{}-{:x}", self.episode_hash(), self.episode, self.due.as_second())
    }

    /// Stable fingerprint of (shop, profile, trigger, episode): with the due
    /// time it identifies one scheduler request without building a string.
    pub fn episode_hash(&self) -> u64 {
        stable_hash(&[
            self.shop.as_bytes(),
            self.profile.as_bytes(),
            self.trigger.as_bytes(),
            &self.episode.to_le_bytes(),
        ])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Send,
    Skip,
    Defer,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Send => "send",
            Outcome::Skip => "skip",
            Outcome::Defer => "defer",
        }
    }
}

/// Why a check did not send (or not yet). A closed set: reports group by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// An order after arming (or an order for the armed basket).
    Converted,
    /// Another `cancel_if` event after arming.
    Cancelled,
    /// `require_consent` and the person's consent is not `subscribed`.
    NoConsent,
    /// No email address known for the person.
    NoAddress,
    /// A permanent bounce or a complaint.
    Suppressed,
    /// `max_per_day` / `max_per_week` reached.
    FrequencyCap,
    /// This trigger sent within its `cooldown`.
    Cooldown,
    /// A higher-priority trigger is pending or inside its cooldown.
    Outranked,
    /// The trigger's `if` condition does not hold at check time.
    ConditionLapsed,
    /// In the trigger's holdout share: decided, deliberately not sent.
    Holdout,
    /// The episode was already decided (or this check was superseded).
    Duplicate,
    /// Defer: inside quiet hours; retried when they end.
    QuietHours,
    /// Waiting for the person's most engaged hour (`send_at = "best_hour"`).
    BestHour,
    /// Defer: re-arming or activity moved the due time later.
    Debounced,
    /// The trigger was removed from the rules after arming.
    UnknownTrigger,
    /// The profile no longer exists (erased).
    NoProfile,
    /// Sandbox mode: the address is not on the allowlist.
    Sandbox,
    /// The mailer rejected the message permanently.
    MailFailed,
    /// Defer: another run claimed the episode and is sending it; looked at
    /// again when its claim would lapse.
    InFlight,
    /// Decided longer than the trigger's `max_lateness` after it was due
    /// (the scheduler or the reconcile sweep was late): not sent late.
    Expired,
    /// Defer: the mail service did not accept the message (throttled, over
    /// its quota, sending paused, unreachable); tried again after a backoff.
    MailDeferred,
    /// The mail service still did not accept it when the trigger's
    /// `max_lateness` ran out. Nothing was sent.
    MailUnavailable,
    /// Handed to the mail service with no answer (a timeout after the
    /// request went out), or claimed by a run that stopped before recording
    /// the answer: it may have been sent. Never sent again; not counted as
    /// sent (nothing says it was).
    Unconfirmed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Converted => "converted",
            Reason::Cancelled => "cancelled",
            Reason::NoConsent => "no_consent",
            Reason::NoAddress => "no_address",
            Reason::Suppressed => "suppressed",
            Reason::FrequencyCap => "frequency_cap",
            Reason::Cooldown => "cooldown",
            Reason::Outranked => "outranked",
            Reason::ConditionLapsed => "condition_lapsed",
            Reason::Holdout => "holdout",
            Reason::Duplicate => "duplicate",
            Reason::QuietHours => "quiet_hours",
            Reason::BestHour => "best_hour",
            Reason::Debounced => "debounced",
            Reason::UnknownTrigger => "unknown_trigger",
            Reason::NoProfile => "no_profile",
            Reason::Sandbox => "sandbox",
            Reason::MailFailed => "mail_failed",
            Reason::Expired => "expired",
            Reason::InFlight => "in_flight",
            Reason::MailDeferred => "mail_deferred",
            Reason::MailUnavailable => "mail_unavailable",
            Reason::Unconfirmed => "unconfirmed",
        }
    }
}

/// One line of the decision log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub at: Timestamp,
    pub shop: String,
    pub profile: String,
    pub trigger: String,
    pub episode: u32,
    pub decision: Outcome,
    pub reason: Option<Reason>,
    pub variant: Option<String>,
    /// For `defer`: when the check runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Version (fingerprint) of the rules that decided.
    pub rules: String,
    /// The consent state the decision relied on.
    pub consent: ConsentState,
    /// Who recorded that consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_source: Option<ConsentSource>,
    /// For a send to someone with a best hour (their own or the shop's):
    /// whether it went in that hour, local to them. Reports compare opens
    /// and clicks of the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_hour: Option<bool>,
}

/// Decides a due check against the profile as it is now.
pub fn decide(p: &Profile, check: &Check, rules: &Triggers, now: Timestamp) -> Decision {
    let (outcome, reason, variant, until) = verdict(p, check, rules, secs(now));
    let mut d = p.decision(check, now, outcome, reason, variant, rules);
    d.until = until.map(ts);
    d
}

/// With `send_at = "best_hour"`: the start of the person's best hour
/// (their own, else the policy's), if now is not in it and it comes within
/// `max_wait` of when the check first decided to send.
fn best_hour_wait(p: &Profile, rules: &Triggers, pending: &Pending, max_wait: Dur, now: Secs) -> Option<Secs> {
    let hour = p.engagement.best_hour().or(rules.policy.best_hour)?;
    if p.local_hour(rules, now) == hour {
        return None;
    }
    let zone = p.local_zone(rules);
    let local = ts(now).to_zoned_datetime(zone.clone());
    let start = |date: jiff::civil::Date| date.at(hour as i8, 0, 0, 0).to_zoned_datetime(zone.clone()).ok();
    let today = start(local.date())?;
    let next = if today.timestamp() > ts(now) { today } else { start(local.date().tomorrow().ok()?)? };
    let next = secs(next.timestamp());
    let from = if pending.waited_from > 0 { pending.waited_from } else { now };
    (next - from <= max_wait.as_secs()).then_some(next)
}

type Verdict = (Outcome, Option<Reason>, Option<String>, Option<Secs>);

fn skip(r: Reason) -> Verdict {
    (Outcome::Skip, Some(r), None, None)
}

fn verdict(p: &Profile, check: &Check, rules: &Triggers, now: Secs) -> Verdict {
    let Some(trigger) = rules.get(&check.trigger) else {
        return skip(Reason::UnknownTrigger);
    };
    let live = p
        .state(&trigger.id)
        .and_then(|s| s.pending.as_ref())
        .filter(|pd| pd.episode == check.episode && pd.scheduled == secs(check.due));
    let Some(pending) = live else {
        return skip(Reason::Duplicate);
    };
    if pending.due > now {
        return (Outcome::Defer, Some(Reason::Debounced), None, Some(pending.due));
    }
    if let Some(reason) = lapsed(p, trigger, rules, pending, now) {
        return skip(reason);
    }
    if let Some(reason) = p.unreachable(rules) {
        return skip(reason);
    }
    if outranked(p, trigger, rules, now) {
        return skip(Reason::Outranked);
    }
    if cooling_down(p, trigger, now) {
        return skip(Reason::Cooldown);
    }
    if p.capped(rules, now) {
        return skip(Reason::FrequencyCap);
    }
    if let Some(q) = &rules.policy.quiet_hours
        && let Some(end) = quiet_until(q, &p.local_zone(rules), now)
    {
        return (Outcome::Defer, Some(Reason::QuietHours), None, Some(end));
    }
    let variant = assign_variant(&check.shop, &check.profile, trigger, check.episode).to_owned();
    if in_holdout(&check.shop, &check.profile, trigger) {
        return (Outcome::Skip, Some(Reason::Holdout), Some(variant), None);
    }
    if let SendAt::BestHour { max_wait } = trigger.send_at
        && let Some(until) = best_hour_wait(p, rules, pending, max_wait, now)
    {
        return (Outcome::Defer, Some(Reason::BestHour), None, Some(until));
    }
    (Outcome::Send, None, Some(variant), None)
}

/// Why a pending episode can no longer send whatever else happens: the
/// person did what cancels it, it is later than its `max_lateness`, or its
/// `if` no longer holds.
fn lapsed(p: &Profile, trigger: &Trigger, rules: &Triggers, pending: &Pending, now: Secs) -> Option<Reason> {
    for kind in &trigger.cancel_if {
        let after_start = p.activity.iter().any(|a| a.kind == *kind && a.last >= pending.started);
        let basket_bought =
            kind == "order_placed" && pending.token.as_ref().is_some_and(|t| p.orders.tokens.contains(t));
        if after_start || basket_bought {
            return Some(if kind == "order_placed" { Reason::Converted } else { Reason::Cancelled });
        }
    }
    if trigger.max_lateness.is_some_and(|limit| now - pending.due > limit.as_secs()) {
        return Some(Reason::Expired);
    }
    if trigger.only_if.as_ref().is_some_and(|c| !c.eval(p, now, &rules.models)) {
        return Some(Reason::ConditionLapsed);
    }
    None
}

fn cooling_down(p: &Profile, trigger: &Trigger, now: Secs) -> bool {
    let last = p.state(&trigger.id).and_then(|s| s.last_sent);
    matches!((trigger.cooldown, last), (Some(cool), Some(last)) if now - last < cool.as_secs())
}

/// Whether a higher-priority trigger takes this person's slot: one of its
/// episodes is being sent, or is pending and would send as things stand
/// (not cancelled, not too late, its `if` holding, not in its cooldown, the
/// person not in its holdout), or it sent within the policy's
/// `outrank_window`. A trigger that cannot send to this person outranks
/// nothing, so the result does not depend on which of two checks due
/// together runs first: the higher one either sends (and then outranks by
/// its send) or could not have (and outranks nothing either way).
fn outranked(p: &Profile, me: &Trigger, rules: &Triggers, now: Secs) -> bool {
    let window = rules.policy.outrank_window.as_secs();
    rules.triggers.iter().filter(|t| t.priority > me.priority).any(|t| {
        let Some(s) = p.state(&t.id) else { return false };
        let sent_lately = s.last_sent.is_some_and(|last| now - last < window);
        let would_send = s.pending.as_ref().is_some_and(|pd| {
            pd.claim.is_some()
                || (lapsed(p, t, rules, pd, now).is_none()
                    && !cooling_down(p, t, now)
                    && !in_holdout(&p.shop, &p.id, t))
        });
        sent_lately || would_send
    })
}

/// The zone quiet hours are kept in for this person: theirs when known,
/// else the shop's (the policy's).
/// If `now` falls inside quiet hours in `zone`, the instant they end.
fn quiet_until(q: &QuietHours, zone: &jiff::tz::TimeZone, now: Secs) -> Option<Secs> {
    let zoned = ts(now).to_zoned_datetime(zone.clone());
    let minute = zoned.hour() as u16 * 60 + zoned.minute() as u16;
    let inside = if q.from < q.to { minute >= q.from && minute < q.to } else { minute >= q.from || minute < q.to };
    if !inside {
        return None;
    }
    let to = Time::new((q.to / 60) as i8, (q.to % 60) as i8, 0, 0).ok()?;
    let mut date = zoned.date();
    if minute >= q.to {
        date = date.tomorrow().ok()?;
    }
    let end = zone.to_timestamp(date.to_datetime(to)).ok()?;
    Some(end.as_second())
}

fn assignment_hash(shop: &str, profile: &str, trigger: &str, episode: u32, salt: &[u8]) -> f64 {
    unit_interval(stable_hash(&[shop.as_bytes(), profile.as_bytes(), trigger.as_bytes(), &episode.to_le_bytes(), salt]))
}

/// The variant for one episode: weighted, deterministic, the same everywhere.
pub fn assign_variant<'t>(shop: &str, profile: &str, trigger: &'t Trigger, episode: u32) -> &'t str {
    let total: u64 = trigger.variants.iter().map(|v| u64::from(v.weight)).sum();
    let mut x = assignment_hash(shop, profile, &trigger.id, episode, b"variant") * total as f64;
    for v in &trigger.variants {
        x -= f64::from(v.weight);
        if x < 0.0 {
            return &v.id;
        }
    }
    trigger.variants.iter().rev().find(|v| v.weight > 0).map_or("default", |v| &v.id)
}

/// Whether this person is in the trigger's holdout share: the same for
/// every episode and whatever variant they would get, so every variant's
/// lift is measured against one control group, and a held-out person never
/// gets this trigger's email. Independent of the variant assignment.
pub fn in_holdout(shop: &str, profile: &str, trigger: &Trigger) -> bool {
    trigger.holdout > 0.0 && assignment_hash(shop, profile, &trigger.id, 0, b"holdout") < trigger.holdout
}

impl Decision {
    /// A skip decided without a profile to read (e.g. it was erased).
    pub fn skipped(check: &Check, at: Timestamp, reason: Reason, rules: &Triggers) -> Decision {
        Profile::new(&check.shop, &check.profile).decision(check, at, Outcome::Skip, Some(reason), None, rules)
    }
}

impl Profile {
    pub(crate) fn decision(
        &self,
        check: &Check,
        at: Timestamp,
        decision: Outcome,
        reason: Option<Reason>,
        variant: Option<String>,
        rules: &Triggers,
    ) -> Decision {
        Decision {
            at,
            shop: check.shop.clone(),
            profile: check.profile.clone(),
            trigger: check.trigger.clone(),
            episode: check.episode,
            decision,
            reason,
            variant,
            until: None,
            rules: rules.version.clone(),
            consent: self.consent.state,
            consent_source: self.consent.source,
            best_hour: (decision == Outcome::Send)
                .then(|| self.engagement.best_hour().or(rules.policy.best_hour))
                .flatten()
                .map(|best| self.local_hour(rules, secs(at)) == best),
        }
    }

    /// Decides a due check and records the outcome in the profile, for
    /// callers without a mailer (a send is taken as accepted at once): a
    /// send or final skip ends the episode, a deferral asks for one new
    /// check. Shells that send mail use [`Profile::claim`] and
    /// [`Profile::settle`] instead.
    pub fn conclude(&mut self, check: &Check, rules: &Triggers, now: Timestamp) -> (Decision, Vec<Effect>) {
        let (d, effects) = self.claim(check, rules, now, 0);
        if d.decision == Outcome::Send && d.reason.is_none() && check.trigger != crate::profile::CONFIRM_TRIGGER {
            let at = d.at;
            return self.settle(check, 0, Delivery::Accepted, rules, at);
        }
        (d, effects)
    }

    /// Decides a due check. A final skip ends the episode and a deferral
    /// asks for one new check, as [`Profile::conclude`]. A send claims the
    /// episode for the run holding `token` (saving this profile before the
    /// mailer is called is what makes the email at-most-once) and returns
    /// the decision to send; [`Profile::settle`] records what the mailer
    /// answered. Run again with the same token (its write retried), it
    /// answers the same; with another token, it is deferred (`in_flight`)
    /// until the claim would lapse, and settles an abandoned one (older
    /// than [`CLAIM_LEASE`]) as `unconfirmed`.
    ///
    /// A parked check (no scheduler request was made; see
    /// `Pending::parked`) found by a later sweep is decided as of the time
    /// it could first have run (its due time, or when it was parked if that
    /// was later) while the person is still unreachable: nothing has changed
    /// since.
    pub fn claim(&mut self, check: &Check, rules: &Triggers, now: Timestamp, token: u64) -> (Decision, Vec<Effect>) {
        self.claim_lapsing(check, rules, now, token, lease_cutoff(now))
    }

    /// [`Profile::claim`], with claims made before `lapsed_before` (unix
    /// seconds) taken as abandoned: a local server knows that every claim
    /// made before it started belongs to a run that is gone.
    pub fn claim_lapsing(
        &mut self,
        check: &Check,
        rules: &Triggers,
        now: Timestamp,
        token: u64,
        lapsed_before: Secs,
    ) -> (Decision, Vec<Effect>) {
        if check.trigger == crate::profile::CONFIRM_TRIGGER {
            return (self.conclude_opt_in(check, rules, now), Vec::new());
        }
        if let Some((i, claim)) = self.live_claim(check) {
            if claim.token == token {
                // Our own claim, written before its answer was lost.
                let d = self.decision(check, now, Outcome::Send, None, Some(claim.variant.to_string()), rules);
                return (d, Vec::new());
            }
            let lapses = claim.at + CLAIM_LEASE;
            if claim.at >= lapsed_before {
                // Another run is sending it: look again once its claim
                // would have lapsed (it is settled by then, or abandoned).
                let mut d = self.decision(check, now, Outcome::Defer, Some(Reason::InFlight), None, rules);
                d.until = Some(ts(lapses));
                let next = Check { due: ts(lapses), ..check.clone() };
                return (d, vec![Effect::Schedule { check: next, first: false, parked: false }]);
            }
            // Abandoned between the claim and the mailer's answer: the email
            // may have gone out. Never sent again; as nothing says it was
            // sent, it counts for nothing.
            self.triggers[i].pending = None;
            let variant = Some(claim.variant.to_string());
            return (self.decision(check, now, Outcome::Skip, Some(Reason::Unconfirmed), variant, rules), Vec::new());
        }
        let parked_at = self
            .state(&check.trigger)
            .and_then(|s| s.pending.as_ref())
            .filter(|p| p.parked && p.episode == check.episode && p.scheduled == secs(check.due))
            .map(|p| p.parked_at);
        let now = match parked_at {
            // The earliest a scheduler asked when it was parked could have run it.
            Some(at) if self.unreachable(rules).is_some() => now.min(check.due.max(ts(at))),
            _ => now,
        };
        let d = decide(self, check, rules, now);
        let mut effects = Vec::new();
        let Some(i) = self.triggers.iter().position(|s| s.trigger == check.trigger) else {
            return (d, effects);
        };
        match (d.decision, d.reason) {
            (_, Some(Reason::Duplicate)) => {}
            (Outcome::Defer, _) => {
                let parked = self.unreachable(rules).is_some();
                if let (Some(p), Some(until)) = (&mut self.triggers[i].pending, d.until) {
                    if d.reason == Some(Reason::BestHour) && p.waited_from == 0 {
                        p.waited_from = secs(now);
                    }
                    p.scheduled = secs(until);
                    p.due = p.due.max(secs(until));
                    p.parked = parked;
                    p.parked_at = if parked { secs(now) } else { 0 };
                    let next = Check { due: until, ..check.clone() };
                    effects.push(Effect::Schedule { check: next, first: false, parked });
                }
            }
            (Outcome::Send, _) => {
                if let Some(p) = &mut self.triggers[i].pending {
                    let variant = d.variant.as_deref().unwrap_or_default().into();
                    p.claim = Some(Claim { token, at: secs(now), variant });
                }
            }
            (Outcome::Skip, reason) => {
                let st = &mut self.triggers[i];
                let token = st.pending.take().and_then(|p| p.token);
                if reason == Some(Reason::Converted) {
                    st.converted_token = token;
                }
            }
        }
        (d, effects)
    }

    /// The claim on `check`'s episode, if it is pending and claimed. A
    /// claim belongs to the episode, whichever of its checks comes.
    fn live_claim(&self, check: &Check) -> Option<(usize, Claim)> {
        let i = self.triggers.iter().position(|s| s.trigger == check.trigger)?;
        let p = self.triggers[i].pending.as_ref().filter(|p| p.episode == check.episode)?;
        Some((i, p.claim.clone()?))
    }

    fn record_sent(&mut self, i: usize, check: &Check, variant: &str, at: Secs, kept: usize) {
        self.triggers[i].last_sent = Some(at);
        self.record_send(
            SendRecord {
                trigger: check.trigger.as_str().into(),
                episode: check.episode,
                variant: variant.into(),
                at,
                opened: None,
                clicked: None,
            },
            kept,
        );
    }

    /// Records what the mailer answered for the send `token` claimed, and
    /// returns the final decision (or a deferral). Only an accepted email
    /// counts as sent for caps, cooldowns and attribution. Not accepted: deferred with a growing backoff while
    /// the trigger's `max_lateness` allows, then `mail_unavailable`. A claim
    /// that is no longer live (settled by another run) is `duplicate`.
    pub fn settle(
        &mut self,
        check: &Check,
        token: u64,
        delivery: Delivery,
        rules: &Triggers,
        now: Timestamp,
    ) -> (Decision, Vec<Effect>) {
        let Some((i, claim)) = self.live_claim(check).filter(|(_, c)| c.token == token) else {
            return (self.decision(check, now, Outcome::Skip, Some(Reason::Duplicate), None, rules), Vec::new());
        };
        let variant = Some(claim.variant.to_string());
        let skip = |this: &mut Profile, reason: Reason| {
            this.triggers[i].pending = None;
            this.decision(check, now, Outcome::Skip, Some(reason), variant.clone(), rules)
        };
        match delivery {
            Delivery::Accepted => {
                self.triggers[i].pending = None;
                self.record_sent(i, check, &claim.variant, secs(now), rules.sends_kept);
                (self.decision(check, now, Outcome::Send, None, variant, rules), Vec::new())
            }
            Delivery::Rejected => (skip(self, Reason::MailFailed), Vec::new()),
            Delivery::Sandboxed => (skip(self, Reason::Sandbox), Vec::new()),
            Delivery::Unconfirmed => (skip(self, Reason::Unconfirmed), Vec::new()),
            Delivery::NotAccepted => {
                let Some(p) = self.triggers[i].pending.as_mut() else {
                    return (skip(self, Reason::Duplicate), Vec::new());
                };
                p.claim = None;
                p.mail_attempts += 1;
                let until = secs(now) + mail_backoff(p.mail_attempts);
                let lateness = rules.get(&check.trigger).and_then(|t| t.max_lateness).map(|l| l.as_secs());
                if lateness.is_some_and(|limit| until - p.due > limit) || p.mail_attempts >= MAX_MAIL_ATTEMPTS {
                    return (skip(self, Reason::MailUnavailable), Vec::new());
                }
                p.scheduled = until;
                let next = Check { due: ts(until), ..check.clone() };
                let mut d = self.decision(check, now, Outcome::Defer, Some(Reason::MailDeferred), variant, rules);
                d.until = Some(ts(until));
                (d, vec![Effect::Schedule { check: next, first: false, parked: false }])
            }
        }
    }
}

/// What the mailer answered for one claimed send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted for delivery.
    Accepted,
    /// Refused for good (bad address, content refused).
    Rejected,
    /// Withheld by the sandbox allowlist.
    Sandboxed,
    /// Provably not accepted: throttled, over the quota, sending paused,
    /// the service unreachable. Tried again later.
    NotAccepted,
    /// Sent, but whether it was accepted is unknown (a timeout after the
    /// request went out): never sent again.
    Unconfirmed,
}

/// Claims made before this (unix seconds) have lapsed at `now`: those at
/// least [`CLAIM_LEASE`] old.
pub fn lease_cutoff(now: Timestamp) -> Secs {
    now.as_second() - CLAIM_LEASE + 1
}

/// Not-accepted sends tried at most this often (about 8 hours of backoff)
/// when the trigger has no `max_lateness` to end them sooner.
pub const MAX_MAIL_ATTEMPTS: u32 = 12;

/// How long after the n-th not-accepted send to try again: 1, 2, 4 … 60
/// minutes.
fn mail_backoff(attempt: u32) -> Secs {
    60 * (1i64 << attempt.saturating_sub(1).min(6)).min(60)
}
