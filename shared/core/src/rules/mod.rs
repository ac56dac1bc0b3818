//! `triggers.toml`: the compiled rules the engine evaluates (this file),
//! the raw TOML form ([`raw`]), the compiler that validates one into the
//! other with file:line:column errors ([`compile`], conditions in
//! `compile/cond.rs`), and "did you mean" suggestions ([`suggest`]).

mod compile;
mod error;
mod raw;
mod suggest;

pub use error::{RulesError, RulesErrors};

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::time::Dur;

/// Profiles keep at most this many recent timestamps per event kind, so count
/// thresholds above it could never be answered exactly and are rejected.
pub const MAX_COUNT_THRESHOLD: u32 = 50;
/// Profiles remember at most this many recent sends; caps above it are
/// rejected.
pub const SENDS_KEPT: usize = 16;
/// … and at least this many (`sent` / `opened` / `clicked` conditions,
/// attribution), more when a cap needs more.
pub const SENDS_KEPT_MIN: usize = 6;
/// Recently viewed products a profile keeps (recommendations, `same_product`).
pub const PRODUCTS_KEPT: usize = 6;
/// … and when a rule counts views `same_category`: a category's views are
/// summed over this many recent products.
pub const CATEGORY_PRODUCTS_KEPT: usize = 50;

/// The validated rules: what the engine runs. The only way to make one is
/// [`Triggers::parse`].
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
    /// The shops' customer models that `rfm:` segments, `p_alive` and
    /// `expected_orders` read: none until a shell loads them.
    #[serde(skip)]
    pub models: crate::model::Models,
    /// Where a cart or checkout can be finished when its event named no
    /// link: a URL with `{token}` (the cart or checkout token).
    pub recovery_url: Option<String>,
    /// Filtered counts' events: (event, signal).
    pub signals: Vec<(String, crate::filter::Signal)>,
    /// Recent timestamps to keep per event kind (what count conditions need).
    ring_caps: Vec<(String, usize)>,
    /// Recent view timestamps to keep per product (same_product / same_category).
    pub product_ring_cap: usize,
    /// Recent sends to keep: [`SENDS_KEPT_MIN`], or the largest cap.
    pub sends_kept: usize,
    /// Recently viewed products to keep ([`PRODUCTS_KEPT`], or
    /// [`CATEGORY_PRODUCTS_KEPT`] when a rule counts `same_category`).
    pub products_kept: usize,
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
    /// How long after a send its trigger still outranks lower-priority
    /// ones for the same person ([`DEFAULT_OUTRANK_WINDOW`] unless set).
    pub outrank_window: Dur,
    /// The shop's best hour to send (0–23, local to the person or the
    /// shop), for `send_at = "best_hour"` when a person has engaged too
    /// little to have one of their own.
    #[serde(default)]
    pub best_hour: Option<u8>,
}

/// A send outranks lower-priority triggers for a day by default: long
/// enough that a cart reminder is not followed by a browse reminder the
/// same evening, short enough that a welcome email does not silence
/// everything else for the length of its cooldown.
pub const DEFAULT_OUTRANK_WINDOW: Dur = Dur::from_secs(24 * 3600);

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
    /// With `on`: only events passing this filter arm it.
    pub on_where: Option<crate::filter::Filter>,
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
    /// When, once it decides to send, the email goes.
    #[serde(default)]
    pub send_at: SendAt,
}

/// When a trigger's email goes once its check decides to send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendAt {
    /// At once.
    #[default]
    Due,
    /// At the start of the person's most engaged hour (their own, else
    /// the policy's `best_hour`) if it comes within `max_wait` of when the
    /// check first decided to send; else at once.
    BestHour { max_wait: Dur },
}

/// `max_wait` of `send_at = "best_hour"` unless set.
pub const DEFAULT_MAX_WAIT: Dur = Dur::from_secs(24 * 3600);

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
    /// This variant's own delay (a test of delays), else the trigger's.
    #[serde(default)]
    pub delay: Option<Dur>,
    /// The variant's level of each factor of a multivariate test (e.g.
    /// `{ delay = "short", subject = "question" }`): reports give each
    /// factor's main effect and their interaction.
    #[serde(default)]
    pub factors: BTreeMap<String, String>,
}

impl Triggers {
    /// Parses and validates a rules file. `templates`, when given, lists the
    /// template names that exist; references to others are errors.
    /// Every problem is reported, not only the first: the TOML syntax
    /// errors, then each section and each trigger read on its own, then
    /// what compiling what could be read finds.
    pub fn parse(src: &str, file: &str, templates: Option<&[String]>) -> Result<Triggers, RulesErrors> {
        let error = |e: &toml::de::Error| {
            let span = e.span().unwrap_or(0..0);
            error::error_at(src, file, span.clone(), error::field_at(src, &span), e.message().trim())
        };
        let (table, syntax) = toml::de::DeTable::parse_recoverable(src);
        if !syntax.is_empty() {
            return Err(RulesErrors(syntax.iter().map(error).collect()));
        }
        let (raw, unreadable) = raw::RawRules::read(table.into_inner());
        let compiled =
            compile::Compiler { src, file, errors: Vec::new(), known_events: std::collections::HashSet::new() }
                .compile(raw, templates);
        if unreadable.is_empty() {
            return compiled;
        }
        let mut all: Vec<RulesError> = unreadable
            .into_iter()
            .map(|(span, message)| error::error_at(src, file, span.clone(), error::field_at(src, &span), &message))
            .collect();
        all.extend(compiled.err().map(|e| e.0).unwrap_or_default());
        all.sort_by_key(|e| (e.line, e.column));
        all.dedup();
        Err(RulesErrors(all))
    }

    /// Whether a rule reads the customer model: without one loaded, its
    /// model conditions are false.
    pub fn uses_models(&self) -> bool {
        self.segments.values().any(Condition::uses_model)
            || self.offers.iter().any(|(segment, _)| segment.starts_with("rfm:"))
            || self.triggers.iter().any(|t| {
                matches!(&t.arm, Arm::When(c) if c.uses_model())
                    || t.only_if.as_ref().is_some_and(Condition::uses_model)
            })
    }

    /// The named segments this person is in at `now`, in name order, then
    /// their RFM segment by their shop's model (`rfm:<name>`), if any.
    pub fn segments_of(&self, p: &crate::Profile, now: crate::time::Secs) -> Vec<String> {
        let mut names: Vec<String> =
            self.segments.iter().filter(|(_, c)| c.eval(p, now, &self.models)).map(|(n, _)| n.clone()).collect();
        if let Some(rfm) = self.models.get(&p.shop).and_then(|m| m.rfm(p, now)) {
            names.push(format!("rfm:{}", rfm.segment.as_str()));
        }
        names
    }

    /// The offer for a send: the variant's own, else the first `[[offer]]`
    /// whose segment the person is in.
    pub fn offer_for(&self, trigger: &Trigger, variant: &str, segments: &[String]) -> Option<String> {
        trigger
            .variant(variant)
            .and_then(|v| v.offer.clone())
            .or_else(|| self.offers.iter().find(|(s, _)| segments.contains(s)).map(|(_, t)| t.clone()))
    }

    /// The `recovery_url` pattern filled in for a basket `token` (encoded
    /// for a URL).
    pub fn recovery_url_for(&self, token: &str) -> Option<String> {
        let mut encoded = String::with_capacity(token.len());
        for b in token.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                encoded.push(b as char);
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        self.recovery_url.as_ref().map(|pattern| pattern.replace("{token}", &encoded))
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

    /// One human line per trigger: what it will do, and which triggers it
    /// gives way to.
    pub fn describe(&self) -> Vec<String> {
        self.triggers
            .iter()
            .map(|t| {
                let mut line = t.describe();
                let higher: Vec<&str> =
                    self.triggers.iter().filter(|h| h.priority > t.priority).map(|h| h.id.as_str()).collect();
                if !higher.is_empty() {
                    line += &format!(
                        "; gives way to {}: while an episode of theirs would send (not cancelled, its `if` holding, out of cooldown), and for {} after one sends",
                        higher.join(", "),
                        self.policy.outrank_window
                    );
                }
                line
            })
            .collect()
    }
}

impl Trigger {
    pub fn variant(&self, id: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.id == id)
    }

    /// The delay of an episode in `variant`: the variant's own, else the
    /// trigger's.
    pub fn delay_of(&self, variant: &str) -> Dur {
        self.variant(variant).and_then(|v| v.delay).unwrap_or(self.delay)
    }

    fn describe(&self) -> String {
        let arm = match &self.arm {
            Arm::On(e) => match &self.on_where {
                Some(filter) => format!("on {e} where {filter}"),
                None => format!("on {e}"),
            },
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
        if let SendAt::BestHour { max_wait } = self.send_at {
            s += &format!(", sent at the person's most engaged hour if it comes within {max_wait}");
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
            let delays: Vec<String> =
                self.variants.iter().filter_map(|v| v.delay.map(|d| format!("{} waits {d}", v.id))).collect();
            if !delays.is_empty() {
                s += &format!(" ({})", delays.join(", "));
            }
        }
        if self.holdout > 0.0 {
            s += &format!(", holdout {:.1}%", self.holdout * 100.0);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(src: &str) -> Vec<RulesError> {
        Triggers::parse(src, "t.toml", None).expect_err("rules should be rejected").0
    }

    const MINIMAL: &str = "[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ntemplate = \"t\"\n";

    #[test]
    fn each_trigger_names_the_triggers_it_gives_way_to_and_for_how_long() {
        let src =
            format!("[policy]\noutrank_window = \"6h\"\n{MINIMAL}{}", MINIMAL.replace("\"a\"", "\"b\"\npriority = 5"));
        let lines = Triggers::parse(&src, "t.toml", None).unwrap().describe();
        assert!(!lines[1].contains("gives way"), "the highest gives way to none: {}", lines[1]);
        assert!(lines[0].ends_with("; gives way to b: while an episode of theirs would send (not cancelled, its `if` holding, out of cooldown), and for 6h after one sends"), "{}", lines[0]);
    }

    #[test]
    fn inactive_for_cannot_arm_a_trigger_but_may_be_negated_or_required_under_if() {
        let when = |c: &str| format!("[[trigger]]\nid = \"w\"\nwhen = {c}\ntemplate = \"t\"\n");
        let e = errors(&when("{ inactive_for = \"30d\" }"));
        assert_eq!((e.len(), e[0].field.as_str()), (1, "trigger.w.when"));
        assert!(e[0].message.contains("after_inactive"), "{}", e[0].message);
        let via_segment =
            format!("[segments]\nlapsed = {{ inactive_for = \"30d\" }}\n{}", when("{ segment = \"lapsed\" }"));
        assert_eq!(errors(&via_segment).len(), 1, "through a segment too");
        let negated = when("{ all = [{ not = { inactive_for = \"30d\" } }, { orders_at_least = 1 }] }");
        assert!(Triggers::parse(&negated, "t.toml", None).is_ok(), "active within 30d turns true on an event");
        let under_if =
            "[[trigger]]\nid = \"w\"\non = \"order_placed\"\nif = { inactive_for = \"30d\" }\ntemplate = \"t\"\n";
        assert!(Triggers::parse(under_if, "t.toml", None).is_ok());
    }

    #[test]
    fn rules_read_the_customer_model_through_rfm_segments_p_alive_and_expected_orders() {
        let src = r#"
[segments]
fading = { any = [{ segment = "rfm:at_risk" }, { p_alive = { below = 0.3 } }] }

[[offer]]
segment = "rfm:champions"
text = "Early access"

[[trigger]]
id = "win-back"
when = { all = [{ segment = "fading" }, { expected_orders = { below = 0.5, within = "60d" } }] }
template = "t"

[[trigger]]
id = "reorder"
on = "order_placed"
delay = "30d"
if = { p_alive = { above = 0.5, below = 0.9 } }
template = "t"
"#;
        let rules = Triggers::parse(src, "t.toml", None).unwrap();
        let lines = rules.describe().join("\n");
        assert_eq!(rules.segments["fading"].to_string(), "(segment rfm:at_risk or P(alive) < 0.3)");
        assert!(lines.contains("orders expected within 60d < 0.5"), "{lines}");
        assert!(lines.contains("P(alive) between 0.5 and 0.9"), "{lines}");
        assert_eq!(rules.offers, [("rfm:champions".to_owned(), "Early access".to_owned())]);

        let when = |c: &str| format!("[[trigger]]\nid = \"w\"\non = \"order_placed\"\nif = {c}\ntemplate = \"t\"\n");
        for (cond, says) in [
            (r#"{ segment = "rfm:vip" }"#, "unknown RFM segment \"vip\": one of champions, loyal"),
            ("{ p_alive = { below = 1.5 } }", "between 0 and 1"),
            ("{ p_alive = { } }", "give `above`, `below` or both"),
            ("{ p_alive = { above = 0.6, below = 0.4 } }", "`above` must be less than `below`"),
            (r#"{ p_alive = { below = 0.3, within = "30d" } }"#, "`within` is for expected_orders"),
            ("{ expected_orders = { above = -1 } }", "-1 is not a number ≥ 0"),
            ("{ p_alive = { under = 0.3 } }", "unknown field `under`"),
        ] {
            let e = errors(&when(cond));
            assert_eq!(e.len(), 1, "{cond}: {e:?}");
            assert!(e[0].message.contains(says), "{cond}: {}", e[0].message);
        }
        let offer = "[[offer]]\nsegment = \"rfm:gold\"\ntext = \"x\"\n";
        assert!(errors(offer)[0].message.contains("unknown RFM segment \"gold\""));
    }

    #[test]
    fn every_mistake_in_a_file_is_reported_at_once_with_its_line() {
        let src = "[policy]\nmax_per_dai = 1\n\n[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ndelai = \"10m\"\ntemplate = \"t\"\n\n[[trigger]]\nid = \"b\"\non = \"checkout_started\"\ndelay = 10\ntemplate = \"t\"\n\n[[trigger]]\nid = \"c\"\non = \"chekout_started\"\ntemplate = \"t\"\n";
        let e = errors(src);
        let at: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(at, [(2, "max_per_dai"), (7, "delai"), (13, "delay"), (18, "trigger.c.on")], "{e:?}");
        let syntax = errors("[[trigger]\nid = \"a\"\n\n[policy\n");
        assert_eq!(syntax.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 4], "every syntax error: {syntax:?}");
    }

    #[test]
    fn a_segment_e_commerce_name_is_refused_as_a_custom_event_with_the_name_to_use() {
        let e = errors(&format!("custom_events = [\"Cart Viewed\"]\n{MINIMAL}"));
        assert_eq!(e[0].field, "custom_events");
        assert!(e[0].message.contains("\"cart_viewed\""), "{}", e[0].message);
    }

    #[test]
    fn a_recovery_url_pattern_needs_a_web_link_with_the_token_and_encodes_it() {
        let rules = Triggers::parse(
            &format!("recovery_url = \"https://shop.example/cart/{{token}}\"\n{MINIMAL}"),
            "t.toml",
            None,
        )
        .unwrap();
        assert_eq!(rules.recovery_url_for("ab c/1").as_deref(), Some("https://shop.example/cart/ab%20c%2F1"));
        for bad in ["https://shop.example/cart", "javascript:alert('{token}')"] {
            let e = errors(&format!("recovery_url = \"{bad}\"\n{MINIMAL}"));
            assert_eq!(e[0].field, "recovery_url", "{bad}");
        }
        assert_eq!(Triggers::parse(MINIMAL, "t.toml", None).unwrap().recovery_url_for("x"), None);
    }

    #[test]
    fn a_where_names_properties_its_event_has_and_goes_where_it_can_filter() {
        let t = |body: &str| format!("[[trigger]]\nid = \"a\"\ntemplate = \"t\"\n{body}\n");
        let e = errors(&t("on = \"product_viewed\"\nwhere = { colour = \"red\" }"));
        assert_eq!(e[0].field, "trigger.a.where.colour");
        assert!(e[0].message.contains("product_id, category, name, price"), "{}", e[0].message);
        let e =
            errors(&t("when = { count = \"page_viewed\", at_least = 1, within = \"1d\" }\nwhere = { url = \"x\" }"));
        assert_eq!(e[0].field, "trigger.a.where");
        let e = errors(&t(
            "when = { count = \"product_viewed\", same_product = true, where = { price = 1 }, at_least = 1, within = \"1d\" }",
        ));
        assert_eq!(e[0].field, "trigger.a.when.where");
        let e = errors(&t("on = \"checkout_started\"\nwhere = { value = { above = 1 } }"));
        assert_eq!(e[0].line, 5, "{e:?}");
        assert!(
            Triggers::parse(
                &t("on = \"checkout_started\"\nwhere = { value = { at_least = 100 }, currency = \"USD\" }"),
                "t.toml",
                None
            )
            .is_ok()
        );
    }

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
        let count = |n: u32| {
            format!(
                "[[trigger]]\nid = \"a\"\ntemplate = \"t\"\nwhen = {{ count = \"page_viewed\", at_least = {n}, within = \"1d\" }}\n"
            )
        };
        assert!(Triggers::parse(&count(MAX_COUNT_THRESHOLD), "t.toml", None).is_ok());
        let e = errors(&count(MAX_COUNT_THRESHOLD + 1));
        assert_eq!(e[0].field, "trigger.a.when.at_least");
    }

    #[test]
    fn caps_up_to_sixteen_a_week_are_accepted_and_the_profile_keeps_that_many_sends() {
        let capped = |n: usize| format!("[policy]\nmax_per_week = {n}\n{MINIMAL}");
        assert_eq!(Triggers::parse(&capped(14), "t.toml", None).unwrap().sends_kept, 14);
        assert_eq!(Triggers::parse(&capped(2), "t.toml", None).unwrap().sends_kept, SENDS_KEPT_MIN);
        assert!(Triggers::parse(&capped(SENDS_KEPT), "t.toml", None).is_ok());
        assert_eq!(errors(&capped(SENDS_KEPT + 1))[0].field, "policy.max_per_week");
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
