//! The compiler: the raw form → [`Triggers`], every problem collected
//! (sorted by position) rather than the first one only. Conditions are
//! compiled in [`cond`].

mod cond;

use cond::At;

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use jiff::tz::TimeZone;
use toml::Spanned;

use super::error::error_at;
use super::raw::{RawCond, RawPolicy, RawRules, RawTrigger};
use super::suggest::closest;
use super::*;
use crate::condition::{Condition, Scope};
use crate::event::{SEGMENT_NAMES, VOCABULARY};
use crate::hash::stable_hash;
use crate::time::Dur;

pub(super) struct Compiler<'a> {
    pub(super) src: &'a str,
    pub(super) file: &'a str,
    pub(super) errors: Vec<RulesError>,
    pub(super) known_events: HashSet<String>,
}

impl Compiler<'_> {
    fn err(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        let e = error_at(self.src, self.file, span, field.into(), &message.into());
        self.errors.push(e);
    }

    pub(super) fn compile(mut self, raw: RawRules, templates: Option<&[String]>) -> Result<Triggers, RulesErrors> {
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
            } else if let Some((_, builtin)) = SEGMENT_NAMES.iter().find(|(segment, _)| segment == name) {
                self.err(
                    c.span(),
                    "custom_events",
                    format!("{name:?} arrives as the built-in event {builtin:?} (a Segment e-commerce event): use that name, it would never count as a custom event"),
                );
            } else if name.trim().is_empty() {
                self.err(c.span(), "custom_events", "event names cannot be empty");
            } else if !self.known_events.insert(name.clone()) {
                self.err(c.span(), "custom_events", format!("{name:?} is listed twice"));
            } else {
                custom_events.push(name.clone());
            }
        }

        let recovery_url = raw.recovery_url.and_then(|u| {
            let ok = (u.get_ref().starts_with("https://") || u.get_ref().starts_with("http://"))
                && u.get_ref().contains("{token}");
            if !ok {
                self.err(
                    u.span(),
                    "recovery_url",
                    "expected an http(s) URL with `{token}` where the cart or checkout token goes, e.g. \"https://shop.example/cart/{token}\"",
                );
            }
            ok.then(|| u.into_inner())
        });
        let policy = self.policy(raw.policy);
        let caps = [policy.max_per_day, policy.max_per_week].into_iter().flatten();
        let sends_kept = caps.map(|c| c as usize).fold(SENDS_KEPT_MIN, usize::max);
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
            let rfm = o.segment.get_ref().strip_prefix("rfm:");
            if let Some(name) = rfm.filter(|n| nudge_analytics::rfm::Segment::named(n).is_none()) {
                self.err(o.segment.span(), "offer.segment", cond::unknown_rfm(name));
            } else if rfm.is_some() || segments.contains_key(o.segment.get_ref()) {
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
        let mut products_kept = PRODUCTS_KEPT;
        let mut signals: Vec<(String, crate::filter::Signal)> = Vec::new();
        let mut visit = |c: &Condition| {
            c.for_each_count(&mut |event, signal, need, scope| {
                if let Some(signal) = signal {
                    // Counted under its own key, like a kind of its own.
                    let e = caps.entry(signal.key.clone()).or_default();
                    *e = (*e).max(need);
                    if !signals.iter().any(|(_, s)| s.key == signal.key) {
                        signals.push((event.to_owned(), signal.clone()));
                    }
                } else if scope == Scope::AnyProduct {
                    let e = caps.entry(event.to_owned()).or_default();
                    *e = (*e).max(need);
                } else {
                    product_ring_cap = product_ring_cap.max(need);
                }
                if scope == Scope::SameCategory {
                    products_kept = CATEGORY_PRODUCTS_KEPT;
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
            models: crate::model::Models::default(),
            version: format!("{:08x}", stable_hash(&[self.src.as_bytes()]) >> 32),
            policy,
            offers,
            segments,
            custom_events,
            triggers,
            recovery_url,
            signals,
            ring_caps: caps.into_iter().collect(),
            product_ring_cap,
            products_kept,
            sends_kept,
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
            outrank_window: raw.outrank_window.unwrap_or(DEFAULT_OUTRANK_WINDOW),
            best_hour: raw.best_hour.and_then(|h| {
                let span = h.span();
                match self.clock_time(&h, "policy.best_hour") {
                    Some(minutes) if minutes % 60 == 0 => Some((minutes / 60) as u8),
                    Some(_) => {
                        self.err(span, "policy.best_hour", "a whole hour, e.g. \"19:00\"");
                        None
                    }
                    None => None,
                }
            }),
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
        let field = format!("segments.{name}");
        let compiled = self.cond(rc, At { field: &field, segments: done, trigger_ids: None });
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

        let mut on_where = None;
        if let (Some(filter), None) = (&rt.filter, &rt.on) {
            self.err(
                filter.span(),
                path("where"),
                "`where` filters the `on` event; with `when`, put it in the `count` (`{ count = \"…\", where = { … }, … }`)",
            );
        }
        let arm = match (rt.on, rt.when) {
            (Some(on), None) => {
                if self.event_name(&on, &path("on"))
                    && let Some(filter) = &rt.filter
                {
                    on_where = self.filter(filter, on.get_ref(), &path("where"));
                }
                Some(Arm::On(on.into_inner()))
            }
            (None, Some(when)) => {
                let field = path("when");
                let cond = self.cond(&when, At { field: &field, segments, trigger_ids: Some(trigger_ids) });
                if cond.as_ref().is_some_and(|c| c.turns_true_with_time(false)) {
                    self.err(
                        when.span(),
                        field.as_str(),
                        "`inactive_for` cannot arm a trigger: `when` is looked at as events arrive, and inactivity is their absence (it would fire on a new person's first event). For \"quiet for 30 days after being active\" use `on = \"<event>\"` with `after_inactive = \"30d\"`; to require inactivity when the check runs, put it under `if`",
                    );
                }
                cond.map(Arm::When)
            }
            (Some(on), Some(_)) => {
                self.err(on.span(), path("on"), "use either `on` (an event) or `when` (a condition), not both");
                None
            }
            (None, None) => {
                self.err(span, path("on"), "a trigger needs `on = \"<event>\"` or `when = { ... }` to arm");
                None
            }
        };
        let if_field = path("if");
        let only_if =
            rt.only_if.and_then(|c| self.cond(&c, At { field: &if_field, segments, trigger_ids: Some(trigger_ids) }));
        for c in &rt.cancel_if {
            self.event_name(c, &path("cancel_if"));
        }
        self.template_ref(&rt.template, &path("template"), templates);

        let mut variants = Vec::new();
        match rt.variants {
            None => variants.push(Variant {
                id: "default".into(),
                weight: 1,
                subject: None,
                template: None,
                offer: None,
                delay: None,
                factors: BTreeMap::new(),
            }),
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
                        delay: v.delay,
                        factors: v.factors,
                    });
                }
                let named: Vec<Vec<&String>> = variants.iter().map(|v| v.factors.keys().collect()).collect();
                if named.iter().any(|n| !n.is_empty()) && named.iter().any(|n| *n != named[0]) {
                    self.err(vspan.clone(), path("variants.factors"), "every variant names the same factors");
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
        let send_at = match (rt.send_at, rt.max_wait) {
            (None, None) => SendAt::Due,
            (Some(at), max_wait) if at.get_ref() == "best_hour" => {
                let span = max_wait.as_ref().map_or_else(|| at.span(), Spanned::span);
                let max_wait = max_wait.map_or(DEFAULT_MAX_WAIT, Spanned::into_inner);
                if max_wait < Dur::from_secs(3600) || max_wait > Dur::from_secs(7 * 86_400) {
                    self.err(span, path("max_wait"), format!("{max_wait} is not between 1h and 7d"));
                }
                SendAt::BestHour { max_wait }
            }
            (Some(at), _) if at.get_ref() == "due" => SendAt::Due,
            (Some(at), _) => {
                let msg = format!("unknown {:?}: `send_at` is \"best_hour\" (or \"due\", the default)", at.get_ref());
                self.err(at.span(), path("send_at"), msg);
                SendAt::Due
            }
            (None, Some(w)) => {
                self.err(w.span(), path("max_wait"), "`max_wait` goes with `send_at = \"best_hour\"`");
                SendAt::Due
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Trigger {
            id,
            priority: rt.priority,
            arm: arm?,
            on_where,
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
            send_at,
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

    /// A `where` table for events named `event`: each property one the
    /// event has (any, for a custom event), each test well-formed.
    pub(super) fn filter(
        &mut self,
        raw: &Spanned<super::raw::RawWhere>,
        event: &str,
        field: &str,
    ) -> Option<crate::filter::Filter> {
        use super::raw::RawTest;
        use crate::filter::{Filter, Test};
        let mut out = Filter::default();
        let errors_before = self.errors.len();
        if raw.get_ref().is_empty() {
            self.err(raw.span(), field, "an empty `where`: name at least one property");
        }
        for (name, test) in raw.get_ref() {
            let at = format!("{field}.{name}");
            if let Some(known) = crate::filter::known_properties(event)
                && !known.contains(&name.as_str())
            {
                let list = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
                self.err(test.span(), &at, format!("`{event}` events have no property {name:?} (they have: {list})"));
                continue;
            }
            let tests = match test.get_ref() {
                RawTest::Value(v) => vec![Test::Is(v.clone())],
                RawTest::Ops(ops) => {
                    let mut tests = Vec::new();
                    tests.extend(ops.one_of.clone().map(Test::OneOf));
                    tests.extend(ops.not_in.clone().map(Test::NoneOf));
                    tests.extend(ops.at_least.map(Test::AtLeast));
                    tests.extend(ops.at_most.map(Test::AtMost));
                    tests
                }
            };
            if tests.is_empty() {
                self.err(test.span(), &at, "give a value, or one of `in`, `not_in`, `at_least`, `at_most`");
                continue;
            }
            out.0.insert(name.clone(), tests);
        }
        (self.errors.len() == errors_before).then_some(out)
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
