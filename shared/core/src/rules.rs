//! `triggers.toml`: parsing, validation with file:line:column errors, and the
//! compiled form the engine evaluates.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::condition::{Condition, Scope, Signal};
use crate::event::VOCABULARY;
use crate::hash::stable_hash;
use crate::time::Dur;

/// Profiles keep at most this many recent timestamps per event kind, so count
/// thresholds above it could never be answered exactly and are rejected.
pub const MAX_COUNT_THRESHOLD: u32 = 20;
/// Profiles remember this many recent sends; caps above it are rejected.
pub const SENDS_KEPT: usize = 6;

/// A rules file problem, pointing at the place to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The key (or `trigger.<id>.<key>` path) the problem is about.
    pub field: String,
    pub message: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.field, self.message)
    }
}

/// All problems found in one rules file (at least one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RulesErrors(pub Vec<RulesError>);

impl fmt::Display for RulesErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The validated rules: what the engine runs. Serializable so a deployment
/// can ship them compiled (nudge-app's `bundle`); the only way to make one
/// is still [`Triggers::parse`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Triggers {
    /// Short fingerprint of the rules text, written into every decision.
    pub version: String,
    pub policy: Policy,
    pub segments: BTreeMap<String, Condition>,
    pub custom_events: Vec<String>,
    /// Offers by segment, in file order: the first segment the person is in
    /// gives the email's offer (a variant's own `offer` wins over these).
    pub offers: Vec<(String, String)>,
    pub triggers: Vec<Trigger>,
    /// Recent timestamps to keep per event kind (what count conditions need).
    ring_caps: Vec<(String, usize)>,
    /// Recent view timestamps to keep per product (same_product / same_category).
    pub product_ring_cap: usize,
    tracked: Vec<String>,
}

/// Storefront events a profile always keeps activity for.
const ALWAYS_TRACKED: [&str; 7] = [
    "page_viewed",
    "product_viewed",
    "cart_updated",
    "checkout_started",
    "order_placed",
    "order_cancelled",
    "wishlist_added",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub require_consent: bool,
    pub max_per_day: Option<u32>,
    pub max_per_week: Option<u32>,
    pub quiet_hours: Option<QuietHours>,
    /// The default `max_lateness` of every trigger.
    pub max_lateness: Option<Dur>,
}

/// The least `max_lateness` accepted: a scheduler delivers a check up to a
/// minute or so after its time, and the reconcile sweep runs every five.
pub const MIN_LATENESS: Dur = Dur::from_secs(5 * 60);

/// Serialized with the zone's name only: the zone is looked up again (in
/// the database compiled into this build) when read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "QuietHoursByName", try_from = "QuietHoursByName")]
pub struct QuietHours {
    /// Minutes after local midnight.
    pub from: u16,
    pub to: u16,
    pub time_zone: TimeZone,
    pub time_zone_name: String,
}

#[derive(Serialize, Deserialize)]
struct QuietHoursByName {
    from: u16,
    to: u16,
    time_zone: String,
}

impl From<QuietHours> for QuietHoursByName {
    fn from(q: QuietHours) -> QuietHoursByName {
        QuietHoursByName { from: q.from, to: q.to, time_zone: q.time_zone_name }
    }
}

impl TryFrom<QuietHoursByName> for QuietHours {
    type Error = jiff::Error;
    fn try_from(q: QuietHoursByName) -> Result<QuietHours, jiff::Error> {
        Ok(QuietHours { from: q.from, to: q.to, time_zone: TimeZone::get(&q.time_zone)?, time_zone_name: q.time_zone })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    pub priority: i64,
    pub arm: Arm,
    pub delay: Dur,
    pub after_inactive: Option<Dur>,
    pub cancel_if: Vec<String>,
    pub cooldown: Option<Dur>,
    /// A check decided longer than this after its due time (the scheduler
    /// or the reconcile sweep was late) skips with `expired` instead of
    /// sending late. The trigger's own, else the policy's.
    pub max_lateness: Option<Dur>,
    /// Checked when the check comes due; false → skip, `condition_lapsed`.
    pub only_if: Option<Condition>,
    pub template: String,
    pub subject: Option<String>,
    pub variants: Vec<Variant>,
    pub holdout: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Arm {
    /// Arms (or, while pending, pushes back) on every event of this kind.
    On(String),
    /// Arms when the condition turns from false to true (evaluated after
    /// each event). It is not re-checked when due: use `if` for that.
    When(Condition),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub id: String,
    pub weight: u32,
    pub subject: Option<String>,
    pub template: Option<String>,
    pub offer: Option<String>,
}

impl Triggers {
    /// Parses and validates a rules file. `templates`, when given, lists the
    /// template names that exist; references to others are errors.
    pub fn parse(src: &str, file: &str, templates: Option<&[String]>) -> Result<Triggers, RulesErrors> {
        let raw: RawRules = toml::from_str(src).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            RulesErrors(vec![error_at(src, file, span.clone(), field_at(src, &span), e.message().trim())])
        })?;
        Compiler { src, file, errors: Vec::new(), known_events: HashSet::new() }.compile(raw, templates)
    }

    /// The named segments this person is in at `now`, in name order.
    pub fn segments_of(&self, p: &crate::Profile, now: crate::time::Secs) -> Vec<String> {
        self.segments.iter().filter(|(_, c)| c.eval(p, now)).map(|(n, _)| n.clone()).collect()
    }

    /// The offer for a send: the variant's own, else the first `[[offer]]`
    /// whose segment the person is in.
    pub fn offer_for(&self, trigger: &Trigger, variant: &str, segments: &[String]) -> Option<String> {
        trigger
            .variant(variant)
            .and_then(|v| v.offer.clone())
            .or_else(|| self.offers.iter().find(|(s, _)| segments.contains(s)).map(|(_, t)| t.clone()))
    }

    pub fn get(&self, id: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|t| t.id == id)
    }

    /// How many recent timestamps a profile keeps for this event kind.
    pub fn ring_cap(&self, kind: &str) -> usize {
        self.ring_caps.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n)
    }

    /// Whether profiles keep per-kind activity (count, last time) for this
    /// event: the shopper's own storefront events, declared custom events,
    /// and anything the rules mention.
    pub fn tracks(&self, kind: &str) -> bool {
        self.tracked.iter().any(|k| k == kind)
    }

    /// One human line per trigger: what it will do.
    pub fn describe(&self) -> Vec<String> {
        self.triggers.iter().map(Trigger::describe).collect()
    }
}

impl Trigger {
    pub fn variant(&self, id: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.id == id)
    }

    fn describe(&self) -> String {
        let arm = match &self.arm {
            Arm::On(e) => format!("on {e}"),
            Arm::When(c) => format!("when {c}"),
        };
        let mut s = format!("{} (priority {}): {arm}", self.id, self.priority);
        if self.delay != Dur::ZERO {
            s += &format!(", wait {}", self.delay);
        }
        if let Some(d) = self.after_inactive {
            s += &format!(", then until quiet for {d}");
        }
        if let Some(c) = &self.only_if {
            s += &format!(", only if {c}");
        }
        if !self.cancel_if.is_empty() {
            s += &format!(", cancelled by {}", self.cancel_if.join(" | "));
        }
        if let Some(d) = self.cooldown {
            s += &format!(", cooldown {d}");
        }
        if let Some(d) = self.max_lateness {
            s += &format!(", never more than {d} late");
        }
        s += &format!(" → email `{}`", self.template);
        if self.variants.len() > 1 {
            let total: u32 = self.variants.iter().map(|v| v.weight).sum();
            let parts: Vec<String> = self
                .variants
                .iter()
                .map(|v| format!("{} {:.0}%", v.id, 100.0 * f64::from(v.weight) / f64::from(total)))
                .collect();
            s += &format!(", variants {}", parts.join(" / "));
        }
        if self.holdout > 0.0 {
            s += &format!(", holdout {:.1}%", self.holdout * 100.0);
        }
        s
    }
}

// ---------------------------------------------------------------- raw form

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    segments: BTreeMap<String, Spanned<RawCond>>,
    #[serde(default)]
    custom_events: Vec<Spanned<String>>,
    #[serde(default, rename = "offer")]
    offers: Vec<RawOffer>,
    #[serde(default, rename = "trigger")]
    triggers: Vec<Spanned<RawTrigger>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffer {
    segment: Spanned<String>,
    text: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    require_consent: Option<bool>,
    max_per_day: Option<Spanned<u32>>,
    max_per_week: Option<Spanned<u32>>,
    quiet_hours: Option<Spanned<RawQuietHours>>,
    max_lateness: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuietHours {
    from: Spanned<String>,
    to: Spanned<String>,
    time_zone: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    id: Spanned<String>,
    #[serde(default)]
    priority: i64,
    on: Option<Spanned<String>>,
    when: Option<Spanned<RawCond>>,
    #[serde(rename = "if")]
    only_if: Option<Spanned<RawCond>>,
    delay: Option<Dur>,
    after_inactive: Option<Dur>,
    #[serde(default)]
    cancel_if: Vec<Spanned<String>>,
    cooldown: Option<Dur>,
    max_lateness: Option<Spanned<Dur>>,
    template: Spanned<String>,
    subject: Option<String>,
    #[serde(default)]
    variants: Option<Spanned<Vec<Spanned<RawVariant>>>>,
    holdout: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    id: Spanned<String>,
    #[serde(default = "default_weight")]
    weight: u32,
    subject: Option<String>,
    template: Option<Spanned<String>>,
    offer: Option<String>,
}

fn default_weight() -> u32 {
    1
}

/// A condition table. Several keys in one table all have to hold.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCond {
    all: Option<Vec<Spanned<RawCond>>>,
    any: Option<Vec<Spanned<RawCond>>>,
    not: Option<Box<Spanned<RawCond>>>,
    count: Option<Spanned<String>>,
    at_least: Option<Spanned<u32>>,
    at_most: Option<Spanned<u32>>,
    within: Option<Dur>,
    same_product: Option<bool>,
    same_category: Option<bool>,
    inactive_for: Option<Dur>,
    first_seen_within: Option<Dur>,
    orders_at_least: Option<u32>,
    orders_at_most: Option<u32>,
    cart_value_at_least: Option<f64>,
    cart_value_at_most: Option<f64>,
    segment: Option<Spanned<String>>,
    sent: Option<Spanned<String>>,
    opened: Option<Spanned<String>>,
    clicked: Option<Spanned<String>>,
}

// ---------------------------------------------------------------- compiler

struct Compiler<'a> {
    src: &'a str,
    file: &'a str,
    errors: Vec<RulesError>,
    known_events: HashSet<String>,
}

impl Compiler<'_> {
    fn err(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        let e = error_at(self.src, self.file, span, field.into(), &message.into());
        self.errors.push(e);
    }

    fn compile(mut self, raw: RawRules, templates: Option<&[String]>) -> Result<Triggers, RulesErrors> {
        self.known_events = VOCABULARY.iter().map(|s| (*s).to_owned()).collect();
        let mut custom_events = Vec::new();
        for c in &raw.custom_events {
            let name = c.get_ref();
            if VOCABULARY.contains(&name.as_str()) {
                self.err(
                    c.span(),
                    "custom_events",
                    format!("{name:?} is a built-in event; list only events outside the vocabulary"),
                );
            } else if name.trim().is_empty() {
                self.err(c.span(), "custom_events", "event names cannot be empty");
            } else if !self.known_events.insert(name.clone()) {
                self.err(c.span(), "custom_events", format!("{name:?} is listed twice"));
            } else {
                custom_events.push(name.clone());
            }
        }

        let policy = self.policy(raw.policy);
        let offers_raw = raw.offers;

        // Segments may refer to each other; resolve them in dependency order.
        let mut segments = BTreeMap::new();
        let names: Vec<String> = raw.segments.keys().cloned().collect();
        let mut resolving = Vec::new();
        for name in &names {
            self.segment(name, &raw.segments, &mut segments, &mut resolving);
        }

        let trigger_ids: HashSet<String> = raw.triggers.iter().map(|t| t.get_ref().id.get_ref().clone()).collect();
        let mut triggers: Vec<Trigger> = Vec::new();
        let mut seen_ids: HashSet<String> = HashSet::new();
        for rt in raw.triggers {
            let span = rt.span();
            let rt = rt.into_inner();
            let id = rt.id.get_ref().clone();
            if !seen_ids.insert(id.clone()) {
                self.err(rt.id.span(), "trigger.id", format!("duplicate trigger id {id:?}"));
                continue;
            }
            if !valid_id(&id) {
                self.err(rt.id.span(), "trigger.id", format!("{id:?}: use 1-40 letters, digits, '-' or '_'"));
                continue;
            }
            if id == crate::profile::CONFIRM_TRIGGER {
                self.err(rt.id.span(), "trigger.id", format!("{id:?} is reserved for double opt-in confirmations"));
                continue;
            }
            if let Some(mut t) = self.trigger(rt, span, &segments, &trigger_ids, templates) {
                t.max_lateness = t.max_lateness.or(policy.max_lateness);
                triggers.push(t);
            }
        }

        let mut offers = Vec::new();
        for o in offers_raw {
            if segments.contains_key(o.segment.get_ref()) {
                offers.push((o.segment.into_inner(), o.text));
            } else {
                self.err(o.segment.span(), "offer.segment", format!("unknown segment {:?}", o.segment.get_ref()));
            }
        }
        if !self.errors.is_empty() {
            self.errors.sort_by_key(|e| (e.line, e.column));
            return Err(RulesErrors(self.errors));
        }

        let mut caps: BTreeMap<String, usize> = BTreeMap::new();
        let mut product_ring_cap = 0usize;
        let mut visit = |c: &Condition| {
            c.for_each_count(&mut |event, need, scope| {
                if scope == Scope::AnyProduct {
                    let e = caps.entry(event.to_owned()).or_default();
                    *e = (*e).max(need);
                } else {
                    product_ring_cap = product_ring_cap.max(need);
                }
            })
        };
        for c in segments.values() {
            visit(c);
        }
        for t in &triggers {
            if let Arm::When(c) = &t.arm {
                visit(c);
            }
            if let Some(c) = &t.only_if {
                visit(c);
            }
        }
        let mut tracked: Vec<String> = ALWAYS_TRACKED.iter().map(|s| (*s).to_owned()).collect();
        tracked.extend(custom_events.iter().cloned());
        let mentioned = triggers.iter().flat_map(|t| {
            let on = match &t.arm {
                Arm::On(e) => Some(e.clone()),
                Arm::When(_) => None,
            };
            on.into_iter().chain(t.cancel_if.iter().cloned())
        });
        tracked.extend(mentioned.chain(caps.keys().cloned()).collect::<Vec<_>>());
        tracked.sort();
        tracked.dedup();
        Ok(Triggers {
            version: format!("{:08x}", stable_hash(&[self.src.as_bytes()]) >> 32),
            policy,
            offers,
            segments,
            custom_events,
            triggers,
            ring_caps: caps.into_iter().collect(),
            product_ring_cap,
            tracked,
        })
    }

    fn policy(&mut self, raw: RawPolicy) -> Policy {
        for (name, cap) in [("policy.max_per_day", &raw.max_per_day), ("policy.max_per_week", &raw.max_per_week)] {
            if let Some(c) = cap
                && *c.get_ref() as usize > SENDS_KEPT
            {
                self.err(
                    c.span(),
                    name,
                    format!("at most {SENDS_KEPT}: profiles remember the last {SENDS_KEPT} sends"),
                );
            }
        }
        let quiet_hours = raw.quiet_hours.and_then(|q| {
            let q = q.into_inner();
            let from = self.clock_time(&q.from, "policy.quiet_hours.from");
            let to = self.clock_time(&q.to, "policy.quiet_hours.to");
            let tz = match TimeZone::get(q.time_zone.get_ref()) {
                Ok(tz) => Some(tz),
                Err(_) => {
                    self.err(
                        q.time_zone.span(),
                        "policy.quiet_hours.time_zone",
                        format!("unknown IANA time zone {:?} (e.g. \"America/New_York\")", q.time_zone.get_ref()),
                    );
                    None
                }
            };
            if from.is_some() && from == to {
                self.err(q.to.span(), "policy.quiet_hours.to", "`from` and `to` are equal: the window would be empty");
            }
            Some(QuietHours { from: from?, to: to?, time_zone: tz?, time_zone_name: q.time_zone.into_inner() })
        });
        let max_lateness = self.lateness(raw.max_lateness, "policy.max_lateness");
        Policy {
            max_lateness,
            require_consent: raw.require_consent.unwrap_or(true),
            max_per_day: raw.max_per_day.map(Spanned::into_inner),
            max_per_week: raw.max_per_week.map(Spanned::into_inner),
            quiet_hours,
        }
    }

    fn lateness(&mut self, d: Option<Spanned<Dur>>, field: &str) -> Option<Dur> {
        let d = d?;
        if *d.get_ref() < MIN_LATENESS {
            self.err(
                d.span(),
                field,
                format!(
                    "{} is too short: at least {MIN_LATENESS} (a scheduler delivers a check up to a minute or so late, and the reconcile sweep runs every 5 minutes)",
                    d.get_ref()
                ),
            );
            return None;
        }
        Some(d.into_inner())
    }

    fn clock_time(&mut self, s: &Spanned<String>, field: &str) -> Option<u16> {
        let parsed = s.get_ref().split_once(':').and_then(|(h, m)| {
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60 && s.get_ref().len() == 5).then_some(h * 60 + m)
        });
        if parsed.is_none() {
            self.err(s.span(), field, format!("{:?} is not a 24-hour \"HH:MM\" time", s.get_ref()));
        }
        parsed
    }

    fn segment(
        &mut self,
        name: &str,
        raw: &BTreeMap<String, Spanned<RawCond>>,
        done: &mut BTreeMap<String, Condition>,
        resolving: &mut Vec<String>,
    ) -> Option<Condition> {
        if let Some(c) = done.get(name) {
            return Some(c.clone());
        }
        let rc = raw.get(name)?;
        if resolving.iter().any(|n| n == name) {
            self.err(
                rc.span(),
                format!("segments.{name}"),
                format!("segment cycle: {} → {name}", resolving.join(" → ")),
            );
            return None;
        }
        resolving.push(name.to_owned());
        // Resolve referenced segments first so `cond` can inline them.
        let mut refs = Vec::new();
        collect_segment_refs(rc.get_ref(), &mut refs);
        for r in refs {
            if raw.contains_key(&r) {
                self.segment(&r, raw, done, resolving);
            }
        }
        let compiled = self.cond(rc, &format!("segments.{name}"), done, None);
        resolving.pop();
        let c = compiled?;
        done.insert(name.to_owned(), c.clone());
        Some(c)
    }

    fn trigger(
        &mut self,
        rt: RawTrigger,
        span: Range<usize>,
        segments: &BTreeMap<String, Condition>,
        trigger_ids: &HashSet<String>,
        templates: Option<&[String]>,
    ) -> Option<Trigger> {
        let id = rt.id.get_ref().clone();
        let path = |k: &str| format!("trigger.{id}.{k}");
        let errors_before = self.errors.len();

        let arm = match (rt.on, rt.when) {
            (Some(on), None) => {
                self.event_name(&on, &path("on"));
                Some(Arm::On(on.into_inner()))
            }
            (None, Some(when)) => self.cond(&when, &path("when"), segments, Some(trigger_ids)).map(Arm::When),
            (Some(on), Some(_)) => {
                self.err(on.span(), path("on"), "use either `on` (an event) or `when` (a condition), not both");
                None
            }
            (None, None) => {
                self.err(span, path("on"), "a trigger needs `on = \"<event>\"` or `when = { ... }` to arm");
                None
            }
        };
        let only_if = rt.only_if.and_then(|c| self.cond(&c, &path("if"), segments, Some(trigger_ids)));
        for c in &rt.cancel_if {
            self.event_name(c, &path("cancel_if"));
        }
        self.template_ref(&rt.template, &path("template"), templates);

        let mut variants = Vec::new();
        match rt.variants {
            None => {
                variants.push(Variant { id: "default".into(), weight: 1, subject: None, template: None, offer: None })
            }
            Some(vs) => {
                let vspan = vs.span();
                let mut ids = HashSet::new();
                for v in vs.into_inner() {
                    let v = v.into_inner();
                    if !ids.insert(v.id.get_ref().clone()) {
                        self.err(
                            v.id.span(),
                            path("variants.id"),
                            format!("duplicate variant id {:?}", v.id.get_ref()),
                        );
                    } else if !valid_id(v.id.get_ref()) || v.id.get_ref() == "holdout" {
                        self.err(
                            v.id.span(),
                            path("variants.id"),
                            format!("{:?}: use letters, digits, '-' or '_' (and not \"holdout\")", v.id.get_ref()),
                        );
                    }
                    if let Some(t) = &v.template {
                        self.template_ref(t, &path("variants.template"), templates);
                    }
                    variants.push(Variant {
                        id: v.id.into_inner(),
                        weight: v.weight,
                        subject: v.subject,
                        template: v.template.map(Spanned::into_inner),
                        offer: v.offer,
                    });
                }
                if variants.is_empty() {
                    self.err(vspan, path("variants"), "list at least one variant, or leave `variants` out");
                } else if variants.iter().map(|v| u64::from(v.weight)).sum::<u64>() == 0 {
                    self.err(vspan, path("variants"), "variant weights sum to zero: no variant could ever be chosen");
                }
            }
        }
        let holdout = match rt.holdout {
            Some(h) if !(0.0..1.0).contains(h.get_ref()) => {
                self.err(
                    h.span(),
                    path("holdout"),
                    format!("{} is not a share in [0, 1), e.g. 0.05 for 5 %", h.get_ref()),
                );
                0.0
            }
            Some(h) => h.into_inner(),
            None => 0.0,
        };
        let max_lateness = self.lateness(rt.max_lateness, &path("max_lateness"));
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Trigger {
            id,
            priority: rt.priority,
            arm: arm?,
            delay: rt.delay.unwrap_or(Dur::ZERO),
            after_inactive: rt.after_inactive,
            cancel_if: rt.cancel_if.into_iter().map(Spanned::into_inner).collect(),
            cooldown: rt.cooldown,
            max_lateness,
            only_if,
            template: rt.template.into_inner(),
            subject: rt.subject,
            variants,
            holdout,
        })
    }

    fn template_ref(&mut self, t: &Spanned<String>, field: &str, templates: Option<&[String]>) {
        if let Some(known) = templates
            && !known.iter().any(|k| k == t.get_ref())
        {
            let list = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            self.err(t.span(), field, format!("unknown template {:?} (templates found: {list})", t.get_ref()));
        }
    }

    fn event_name(&mut self, name: &Spanned<String>, field: &str) -> bool {
        if self.known_events.contains(name.get_ref()) {
            return true;
        }
        let hint = closest(name.get_ref(), self.known_events.iter())
            .map(|c| format!("; did you mean {c:?}?"))
            .unwrap_or_default();
        self.err(
            name.span(),
            field,
            format!("unknown event {:?}{hint} (custom events must be listed in `custom_events`)", name.get_ref()),
        );
        false
    }

    fn cond(
        &mut self,
        rc: &Spanned<RawCond>,
        field: &str,
        segments: &BTreeMap<String, Condition>,
        trigger_ids: Option<&HashSet<String>>,
    ) -> Option<Condition> {
        let span = rc.span();
        let r = rc.get_ref();
        let mut parts: Vec<Condition> = Vec::new();
        let mut ok = true;
        let nested = |this: &mut Self, list: &[Spanned<RawCond>], key: &str| -> Option<Vec<Condition>> {
            if list.is_empty() {
                this.err(span.clone(), format!("{field}.{key}"), format!("`{key}` needs at least one condition"));
                return None;
            }
            let out: Vec<Option<Condition>> =
                list.iter().map(|c| this.cond(c, &format!("{field}.{key}"), segments, trigger_ids)).collect();
            out.into_iter().collect()
        };
        if let Some(list) = &r.all {
            match nested(self, list, "all") {
                Some(cs) => parts.push(Condition::All(cs)),
                None => ok = false,
            }
        }
        if let Some(list) = &r.any {
            match nested(self, list, "any") {
                Some(cs) => parts.push(Condition::Any(cs)),
                None => ok = false,
            }
        }
        if let Some(inner) = &r.not {
            match self.cond(inner, &format!("{field}.not"), segments, trigger_ids) {
                Some(c) => parts.push(Condition::Not(Box::new(c))),
                None => ok = false,
            }
        }

        // `within` belongs to exactly one of: count, sent, opened, clicked.
        let message_keys = [(&r.sent, Signal::Sent), (&r.opened, Signal::Opened), (&r.clicked, Signal::Clicked)];
        let users_of_within = usize::from(r.count.is_some()) + message_keys.iter().filter(|(k, _)| k.is_some()).count();
        if users_of_within > 1 && r.within.is_some() {
            self.err(
                span.clone(),
                format!("{field}.within"),
                "`within` is ambiguous: put `count`, `sent`, `opened` and `clicked` in separate tables",
            );
            ok = false;
        }
        if let Some(event) = &r.count {
            ok &= self.event_name(event, &format!("{field}.count"));
            let within = r.within;
            if within.is_none() {
                self.err(event.span(), format!("{field}.within"), "`count` needs `within`, e.g. within = \"48h\"");
                ok = false;
            }
            if r.at_least.is_none() && r.at_most.is_none() {
                self.err(event.span(), format!("{field}.at_least"), "`count` needs `at_least` and/or `at_most`");
                ok = false;
            }
            for (key, v) in [("at_least", &r.at_least), ("at_most", &r.at_most)] {
                if let Some(v) = v {
                    let need = if key == "at_most" { v.get_ref() + 1 } else { *v.get_ref() };
                    if need > MAX_COUNT_THRESHOLD {
                        self.err(v.span(), format!("{field}.{key}"), format!("at most {MAX_COUNT_THRESHOLD} (profiles keep {MAX_COUNT_THRESHOLD} recent timestamps per event)"));
                        ok = false;
                    }
                }
            }
            let scope = match (r.same_product.unwrap_or(false), r.same_category.unwrap_or(false)) {
                (true, true) => {
                    self.err(
                        event.span(),
                        format!("{field}.same_product"),
                        "choose `same_product` or `same_category`, not both",
                    );
                    ok = false;
                    Scope::AnyProduct
                }
                (true, false) => Scope::SameProduct,
                (false, true) => Scope::SameCategory,
                (false, false) => Scope::AnyProduct,
            };
            if scope != Scope::AnyProduct && event.get_ref() != "product_viewed" {
                self.err(
                    event.span(),
                    format!("{field}.same_product"),
                    "`same_product` / `same_category` apply to `product_viewed` counts",
                );
                ok = false;
            }
            if ok {
                parts.push(Condition::Count {
                    event: event.get_ref().clone(),
                    at_least: r.at_least.as_ref().map(|v| *v.get_ref()),
                    at_most: r.at_most.as_ref().map(|v| *v.get_ref()),
                    within: within.unwrap_or(Dur::ZERO),
                    scope,
                });
            }
        } else {
            for (key, present) in [
                ("at_least", r.at_least.is_some()),
                ("at_most", r.at_most.is_some()),
                ("same_product", r.same_product.is_some()),
                ("same_category", r.same_category.is_some()),
            ] {
                if present {
                    self.err(
                        span.clone(),
                        format!("{field}.{key}"),
                        format!("`{key}` only goes with `count = \"<event>\"`"),
                    );
                    ok = false;
                }
            }
        }
        for (key, signal) in message_keys {
            if let Some(t) = key {
                if let Some(ids) = trigger_ids {
                    if !ids.contains(t.get_ref()) {
                        self.err(
                            t.span(),
                            format!("{field}.{}", signal.as_str()),
                            format!("unknown trigger {:?}", t.get_ref()),
                        );
                        ok = false;
                        continue;
                    }
                } else {
                    self.err(
                        t.span(),
                        format!("{field}.{}", signal.as_str()),
                        "message conditions belong in a trigger's `when` or `if`, not in a segment",
                    );
                    ok = false;
                    continue;
                }
                parts.push(Condition::Message { trigger: t.get_ref().clone(), signal, within: r.within });
            }
        }
        if r.within.is_some() && users_of_within == 0 {
            self.err(
                span.clone(),
                format!("{field}.within"),
                "`within` only goes with `count`, `sent`, `opened` or `clicked`",
            );
            ok = false;
        }
        if let Some(d) = r.inactive_for {
            parts.push(Condition::InactiveFor(d));
        }
        if let Some(d) = r.first_seen_within {
            parts.push(Condition::FirstSeenWithin(d));
        }
        if let Some(n) = r.orders_at_least {
            parts.push(Condition::OrdersAtLeast(n));
        }
        if let Some(n) = r.orders_at_most {
            parts.push(Condition::OrdersAtMost(n));
        }
        if let Some(v) = r.cart_value_at_least {
            parts.push(Condition::CartValueAtLeast(v));
        }
        if let Some(v) = r.cart_value_at_most {
            parts.push(Condition::CartValueAtMost(v));
        }
        if let Some(name) = &r.segment {
            match segments.get(name.get_ref()) {
                Some(c) => parts.push(Condition::Segment(name.get_ref().clone(), Box::new(c.clone()))),
                None => {
                    self.err(name.span(), format!("{field}.segment"), format!("unknown segment {:?}", name.get_ref()));
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        match parts.len() {
            0 => {
                self.err(span, field, "empty condition: give at least one of all, any, not, count, inactive_for, first_seen_within, orders_at_least, orders_at_most, cart_value_at_least, cart_value_at_most, segment, sent, opened, clicked");
                None
            }
            1 => parts.pop(),
            _ => Some(Condition::All(parts)),
        }
    }
}

fn collect_segment_refs(r: &RawCond, out: &mut Vec<String>) {
    if let Some(s) = &r.segment {
        out.push(s.get_ref().clone());
    }
    for list in [&r.all, &r.any].into_iter().flatten() {
        for c in list {
            collect_segment_refs(c.get_ref(), out);
        }
    }
    if let Some(n) = &r.not {
        collect_segment_refs(n.get_ref(), out);
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The known name within edit distance 2, if any.
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn error_at(src: &str, file: &str, span: Range<usize>, field: String, message: &str) -> RulesError {
    let start = span.start.min(src.len());
    let before = &src[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    RulesError {
        file: file.to_owned(),
        line,
        column,
        field: if field.is_empty() { "(file)".into() } else { field },
        message: message.to_owned(),
    }
}

/// Best-effort name of the key a toml error points at: the key itself (unknown
/// field) or the nearest `key =` before the value on the same line.
fn field_at(src: &str, span: &Range<usize>) -> String {
    let start = span.start.min(src.len());
    let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let after: String = src[start..].chars().take_while(|c| is_key(*c)).collect();
    let rest = src[start + after.len()..].trim_start_matches([' ', '\t']);
    if !after.is_empty() && rest.starts_with('=') {
        return after;
    }
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let head = &src[line_start..start];
    if let Some(eq) = head.rfind('=') {
        let key: String = head[..eq].trim_end().chars().rev().take_while(|c| is_key(*c)).collect();
        if !key.is_empty() {
            return key.chars().rev().collect();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(src: &str) -> Vec<RulesError> {
        Triggers::parse(src, "t.toml", None).expect_err("rules should be rejected").0
    }

    const MINIMAL: &str = "[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ntemplate = \"t\"\n";

    #[test]
    fn minimal_rules_parse_with_defaults() {
        let t = Triggers::parse(MINIMAL, "t.toml", None).unwrap();
        assert!(t.policy.require_consent, "consent is required unless switched off");
        assert_eq!(t.triggers[0].variants[0].id, "default");
        assert_eq!(t.triggers[0].delay, Dur::ZERO);
    }

    #[test]
    fn unknown_field_error_names_file_line_and_field() {
        let e = errors("[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ntemplate = \"t\"\ndelai = \"10m\"\n");
        assert_eq!((e[0].file.as_str(), e[0].line, e[0].field.as_str()), ("t.toml", 5, "delai"));
        assert!(e[0].message.contains("unknown field"), "{}", e[0].message);
    }

    #[test]
    fn bad_duration_error_names_line_and_field() {
        let e =
            errors("[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ntemplate = \"t\"\n\ndelay = \"10 minutes\"\n");
        assert_eq!((e[0].line, e[0].field.as_str()), (6, "delay"));
        assert!(e[0].message.contains("invalid duration"), "{}", e[0].message);
    }

    #[test]
    fn bad_duration_inside_an_inline_condition_names_its_key() {
        let e = errors(
            "[[trigger]]\nid = \"a\"\ntemplate = \"t\"\nwhen = { count = \"product_viewed\", at_least = 3, within = \"2days\" }\n",
        );
        assert_eq!((e[0].line, e[0].field.as_str()), (4, "within"));
    }

    #[test]
    fn unknown_event_name_is_an_error_with_a_suggestion() {
        let e = errors("[[trigger]]\nid = \"a\"\non = \"checkout_startd\"\ntemplate = \"t\"\n");
        assert_eq!((e[0].line, e[0].column, e[0].field.as_str()), (3, 6, "trigger.a.on"));
        assert!(e[0].message.contains("did you mean \"checkout_started\""), "{}", e[0].message);
    }

    #[test]
    fn declared_custom_events_are_usable_in_conditions() {
        let src = "custom_events = [\"Loyalty Points Earned\"]\n[[trigger]]\nid = \"a\"\ntemplate = \"t\"\nwhen = { count = \"Loyalty Points Earned\", at_least = 2, within = \"30d\" }\n";
        let t = Triggers::parse(src, "t.toml", None).unwrap();
        assert!(t.tracks("Loyalty Points Earned"));
        assert_eq!(t.ring_cap("Loyalty Points Earned"), 2);
    }

    #[test]
    fn duplicate_trigger_ids_are_an_error() {
        let e = errors(&format!("{MINIMAL}{MINIMAL}"));
        assert_eq!((e[0].line, e[0].field.as_str()), (6, "trigger.id"));
        assert!(e[0].message.contains("duplicate trigger id"));
    }

    #[test]
    fn unknown_segment_is_an_error() {
        let e = errors("[[trigger]]\nid = \"a\"\ntemplate = \"t\"\nwhen = { segment = \"vip\" }\n");
        assert_eq!((e[0].line, e[0].field.as_str()), (4, "trigger.a.when.segment"));
    }

    #[test]
    fn segment_cycles_are_an_error() {
        let e = errors("[segments]\na = { segment = \"b\" }\nb = { segment = \"a\" }\n");
        assert!(e.iter().any(|e| e.message.contains("segment cycle")), "{e:?}");
    }

    #[test]
    fn unknown_template_is_an_error_when_templates_are_known() {
        let known = vec!["cart-reminder".to_owned()];
        let e = Triggers::parse(MINIMAL, "t.toml", Some(&known)).unwrap_err().0;
        assert_eq!((e[0].line, e[0].field.as_str()), (4, "trigger.a.template"));
        assert!(e[0].message.contains("unknown template \"t\""));
        assert!(Triggers::parse(MINIMAL, "t.toml", None).is_ok(), "without a templates dir names are not checked");
    }

    #[test]
    fn weights_summing_to_zero_are_an_error() {
        let e = errors(&format!("{MINIMAL}variants = [{{ id = \"a\", weight = 0 }}, {{ id = \"b\", weight = 0 }}]\n"));
        assert_eq!((e[0].line, e[0].field.as_str()), (5, "trigger.a.variants"));
        assert!(e[0].message.contains("sum to zero"));
    }

    #[test]
    fn several_problems_are_reported_together_in_line_order() {
        let e =
            errors("[[trigger]]\nid = \"a\"\non = \"nope\"\ntemplate = \"t\"\nholdout = 1.5\ncancel_if = [\"nada\"]\n");
        let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 5, 6]);
    }

    #[test]
    fn quiet_hours_need_a_real_time_zone_and_times() {
        let e = errors("[policy]\nquiet_hours = { from = \"25:00\", to = \"08:00\", time_zone = \"Mars/Olympus\" }\n");
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"policy.quiet_hours.from"), "{e:?}");
        assert!(fields.contains(&"policy.quiet_hours.time_zone"), "{e:?}");
    }

    #[test]
    fn max_lateness_under_five_minutes_is_rejected_with_its_line_and_field() {
        let src = "[policy]\nmax_lateness = \"1m\"\n[[trigger]]\nid = \"a\"\non = \"checkout_started\"\nmax_lateness = \"30s\"\ntemplate = \"t\"\n";
        let e = errors(src);
        let got: Vec<(u32, &str)> = e.iter().map(|e| (e.line as u32, e.field.as_str())).collect();
        assert_eq!(got, vec![(2, "policy.max_lateness"), (6, "trigger.a.max_lateness")], "{e:?}");
        assert!(e[0].message.contains("at least 5m"), "{}", e[0].message);
    }

    #[test]
    fn a_trigger_takes_the_policy_max_lateness_unless_it_sets_its_own() {
        let src = format!(
            "[policy]\nmax_lateness = \"6h\"\n{MINIMAL}[[trigger]]\nid = \"b\"\non = \"order_placed\"\nmax_lateness = \"30m\"\ntemplate = \"t\"\n"
        );
        let t = Triggers::parse(&src, "t.toml", None).unwrap();
        let lateness: Vec<Option<Dur>> = t.triggers.iter().map(|t| t.max_lateness).collect();
        assert_eq!(lateness, vec![Some(Dur::from_secs(6 * 3600)), Some(Dur::from_secs(1800))]);
        assert!(t.describe()[1].contains("never more than 30m late"), "{:?}", t.describe());
        let none = Triggers::parse(MINIMAL, "t.toml", None).unwrap();
        assert_eq!(none.triggers[0].max_lateness, None);
    }

    #[test]
    fn count_thresholds_beyond_what_profiles_keep_are_rejected() {
        let e = errors(
            "[[trigger]]\nid = \"a\"\ntemplate = \"t\"\nwhen = { count = \"page_viewed\", at_least = 50, within = \"1d\" }\n",
        );
        assert_eq!(e[0].field, "trigger.a.when.at_least");
    }

    #[test]
    fn message_conditions_must_name_a_trigger() {
        let e = errors(
            "[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ntemplate = \"t\"\nif = { not = { clicked = \"zzz\" } }\n",
        );
        assert_eq!(e[0].field, "trigger.a.if.not.clicked");
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let e = errors("[[trigger]]\nid = \"a\"\non = checkout_started\n");
        assert_eq!(e[0].line, 3);
    }

    #[test]
    fn offers_follow_segments_in_file_order_and_variants_override_them() {
        let src = "[segments]\nvip = { orders_at_least = 3 }\nany = { orders_at_least = 0 }\n[[offer]]\nsegment = \"vip\"\ntext = \"VIP20\"\n[[offer]]\nsegment = \"any\"\ntext = \"FREESHIP\"\n[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ntemplate = \"t\"\nvariants = [{ id = \"x\", offer = \"X5\" }, { id = \"y\" }]\n";
        let t = Triggers::parse(src, "t.toml", None).unwrap();
        let tr = t.get("a").unwrap();
        assert_eq!(t.offer_for(tr, "y", &["any".into(), "vip".into()]).as_deref(), Some("VIP20"));
        assert_eq!(t.offer_for(tr, "y", &["any".into()]).as_deref(), Some("FREESHIP"));
        assert_eq!(t.offer_for(tr, "x", &["vip".into()]).as_deref(), Some("X5"));
        let e = errors("[[offer]]\nsegment = \"nope\"\ntext = \"x\"\n");
        assert_eq!((e[0].line, e[0].field.as_str()), (2, "offer.segment"));
    }

    #[test]
    fn rules_errors_never_panic_on_arbitrary_text() {
        for src in ["", "[", "[[trigger]]", "x = 1", "[[trigger]]\nid = 5", "\u{0}\u{ffff}", "[segments]\na = 1"] {
            let _ = Triggers::parse(src, "t.toml", None);
        }
    }
}
