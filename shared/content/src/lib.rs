//! nudge-content: the email a send decision turns into. Pure.
//!
//! A template is MJML (`<name>.mjml`) with Jinja syntax for data, and an
//! optional plain-text twin (`<name>.txt`). MJML is compiled to HTML once, when
//! the templates are loaded; each send only fills in the data. Undefined
//! variables are errors naming the template, line and variable — an email
//! never goes out as `Hello ,`.

pub mod catalogue;
mod context;
pub mod mime;
mod text;

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};

pub use catalogue::{Catalogue, CatalogueProduct};
pub use context::{Cart, CartLine, EmailContext, Person, ProductCard, SendInfo, money, sample_context};
pub use text::html_to_text;

/// A template problem, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("{template}: MJML: {message}")]
    Mjml { template: String, message: String },
    #[error("{template}:{line}: {message}")]
    Template { template: String, line: usize, message: String },
    #[error("unknown template {0:?}")]
    Unknown(String),
    #[error("message: {0}")]
    Message(String),
}

/// One template's sources, as read from a templates directory.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    pub name: String,
    pub mjml: String,
    pub text: Option<String>,
}

/// A template with its MJML compiled to HTML: what [`Templates`] is built
/// from, and what a rules layer ships precompiled (`nudge check --compile`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompiledTemplate {
    pub name: String,
    pub html: String,
    pub text: Option<String>,
}

/// Fingerprint of the code that compiles and checks templates (this crate's
/// and nudge-core's sources, the locked mrml and minijinja; see build.rs).
/// Work done by one build is trusted by another only when the ids match.
pub const BUILD_ID: &str = env!("NUDGE_CONTENT_BUILD_ID");

/// What a send puts in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Compiled templates, ready to render many times.
pub struct Templates {
    env: Environment<'static>,
    has_text: BTreeMap<String, bool>,
}

impl Templates {
    /// Compiles every template: MJML → HTML now, Jinja syntax checked now.
    pub fn compile(sources: Vec<TemplateSource>) -> Result<Templates, ContentError> {
        Templates::from_compiled(Templates::compile_mjml(sources)?)
    }

    /// The MJML step of [`Templates::compile`] alone: by far its slowest
    /// part (~0.2 ms per KB of MJML), so a Lambda rules layer does it once,
    /// at build time.
    pub fn compile_mjml(sources: Vec<TemplateSource>) -> Result<Vec<CompiledTemplate>, ContentError> {
        sources
            .into_iter()
            .map(|src| {
                Ok(CompiledTemplate { html: mjml_to_html(&src.name, &src.mjml)?, name: src.name, text: src.text })
            })
            .collect()
    }

    /// The Jinja step of [`Templates::compile`]: syntax checked now.
    pub fn from_compiled(compiled: Vec<CompiledTemplate>) -> Result<Templates, ContentError> {
        let mut env = environment();
        let mut has_text = BTreeMap::new();
        for src in compiled {
            env.add_template_owned(format!("{}.html", src.name), src.html).map_err(|e| located(&src.name, &e))?;
            if let Some(t) = src.text {
                env.add_template_owned(format!("{}.txt", src.name), t).map_err(|e| located(&src.name, &e))?;
                has_text.insert(src.name, true);
            } else {
                has_text.insert(src.name, false);
            }
        }
        Ok(Templates { env, has_text })
    }

    /// Templates this build already compiled and checked (a rules layer's
    /// precompiled file whose build id and digest match): each one's Jinja
    /// is compiled when it is first rendered, not now. A process that never
    /// sends (most `check` invocations skip) never pays for it, and one
    /// that does pays once per template (~0.1 ms for 10 KB of HTML).
    pub fn from_checked(compiled: Vec<CompiledTemplate>) -> Templates {
        let mut env = environment();
        let mut sources = std::collections::HashMap::new();
        let mut has_text = BTreeMap::new();
        for src in compiled {
            has_text.insert(src.name.clone(), src.text.is_some());
            if let Some(t) = src.text {
                sources.insert(format!("{}.txt", src.name), t);
            }
            sources.insert(format!("{}.html", src.name), src.html);
        }
        env.set_loader(move |name| Ok(sources.get(name).cloned()));
        Templates { env, has_text }
    }

    pub fn names(&self) -> Vec<String> {
        self.has_text.keys().cloned().collect()
    }

    /// One send of `send.trigger`'s `send.variant` to `profile`: its
    /// context built from the profile and catalogue, the variant's template
    /// and subject rendered. What the check, replay and preview all do.
    pub fn render_send(
        &self,
        profile: &nudge_core::Profile,
        rules: &nudge_core::Triggers,
        send: &SendInfo<'_>,
        catalogue: &Catalogue,
    ) -> Result<Rendered, ContentError> {
        let ctx = EmailContext::build(profile, rules, send, catalogue);
        self.render(template_name(send.trigger, send.variant), subject_template(send.trigger, send.variant), &ctx)
    }

    /// Renders subject, HTML and text for one send.
    pub fn render(&self, name: &str, subject: &str, ctx: &EmailContext) -> Result<Rendered, ContentError> {
        let has_text = *self.has_text.get(name).ok_or_else(|| ContentError::Unknown(name.to_owned()))?;
        let value = minijinja::Value::from(minijinja::value::Serde(ctx));
        let html_name = format!("{name}.html");
        let html = self
            .env
            .get_template(&html_name)
            .and_then(|t| t.render(&value))
            .map_err(|e| located(&format!("{name}.mjml"), &e))?;
        let text = if has_text {
            self.env
                .get_template(&format!("{name}.txt"))
                .and_then(|t| t.render(&value))
                .map_err(|e| located(&format!("{name}.txt"), &e))?
        } else {
            html_to_text(&html)
        };
        let subject = self
            .env
            .render_str(subject, &value)
            .map_err(|e| located(&format!("{name} subject"), &e))?
            .trim()
            .to_owned();
        Ok(Rendered { subject, html, text })
    }
}

/// The Jinja environment every template set renders in.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // An absent value printed as-is would read "none" in the email:
    // templates must test optional values (`{% if cart %}`, `x or "…"`).
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                "printing an absent value (none); guard it with `if` or `or`",
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
    });
    env
}

fn mjml_to_html(name: &str, mjml: &str) -> Result<String, ContentError> {
    let err = |message: String| ContentError::Mjml { template: format!("{name}.mjml"), message };
    let parsed = mrml::parse(mjml).map_err(|e| err(e.to_string()))?;
    // No web fonts: the email then loads nothing from third parties.
    let opts = mrml::prelude::render::RenderOptions { fonts: Default::default(), ..Default::default() };
    parsed.element.render(&opts).map_err(|e| err(e.to_string()))
}

fn located(template: &str, e: &minijinja::Error) -> ContentError {
    let mut message = e.to_string();
    // minijinja repeats the location; keep the first line, which names it.
    if let Some(first) = message.lines().next() {
        message = first.to_owned();
    }
    ContentError::Template { template: template.to_owned(), line: e.line().unwrap_or(0), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(mjml: &str, text: Option<&str>) -> Templates {
        Templates::compile(vec![TemplateSource { name: "t".into(), mjml: mjml.into(), text: text.map(Into::into) }])
            .unwrap()
    }

    const HELLO: &str = "<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ person.first_name }}</mj-text></mj-column></mj-section></mj-body></mjml>";

    #[test]
    fn templates_compiled_on_first_use_render_as_those_compiled_at_once() {
        let compiled = Templates::compile_mjml(vec![
            TemplateSource { name: "a".into(), mjml: HELLO.into(), text: Some("Hi {{ person.first_name }}".into()) },
            TemplateSource { name: "b".into(), mjml: HELLO.into(), text: None },
        ])
        .unwrap();
        let eager = Templates::from_compiled(compiled.clone()).unwrap();
        let lazy = Templates::from_checked(compiled);
        let ctx = sample_context();
        for name in ["a", "b"] {
            assert_eq!(
                lazy.render(name, "S {{ shop }}", &ctx).unwrap(),
                eager.render(name, "S {{ shop }}", &ctx).unwrap()
            );
        }
        assert_eq!(lazy.names(), eager.names());
        assert!(matches!(lazy.render("c", "s", &ctx), Err(ContentError::Unknown(_))));
    }

    #[test]
    fn mjml_is_compiled_and_data_filled_in() {
        let r = one(HELLO, None).render("t", "Hi {{ person.first_name }}", &sample_context()).unwrap();
        assert_eq!(r.subject, "Hi Ada");
        assert!(r.html.contains("Hello Ada") && r.html.contains("<html"), "{}", r.html);
        assert!(r.text.contains("Hello Ada"), "text derived from HTML: {}", r.text);
    }

    #[test]
    fn a_missing_variable_fails_naming_template_line_and_variable() {
        let t = one(
            "<mjml><mj-body><mj-section><mj-column>\n<mj-text>Hello {{ person.nickname }}</mj-text></mj-column></mj-section></mj-body></mjml>",
            None,
        );
        let e = t.render("t", "s", &sample_context()).unwrap_err();
        let ContentError::Template { template, message, .. } = &e else { panic!("{e}") };
        assert_eq!(template, "t.mjml");
        assert!(message.contains("undefined"), "{e}");
    }

    #[test]
    fn printing_an_absent_value_fails_instead_of_writing_none() {
        let mut ctx = sample_context();
        ctx.person.first_name = None;
        let e = one(HELLO, None).render("t", "s", &ctx).unwrap_err();
        assert!(e.to_string().contains("absent value"), "{e}");
        let guarded = "<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ person.first_name or first_name }}</mj-text></mj-column></mj-section></mj-body></mjml>";
        ctx.first_name = "there".into();
        assert!(one(guarded, None).render("t", "s", &ctx).unwrap().text.contains("Hello there"));
    }

    #[test]
    fn a_missing_variable_in_the_subject_fails_too() {
        let e = one(HELLO, None).render("t", "Hi {{ coupon }}", &sample_context()).unwrap_err();
        assert!(e.to_string().starts_with("t subject:"), "{e}");
    }

    #[test]
    fn a_written_text_part_is_used_instead_of_the_derived_one() {
        let r = one(HELLO, Some("Plain hello {{ person.first_name }}")).render("t", "s", &sample_context()).unwrap();
        assert_eq!(r.text, "Plain hello Ada");
    }

    #[test]
    fn data_is_html_escaped_in_the_html_part() {
        let mut ctx = sample_context();
        ctx.person.first_name = Some("<script>x</script>".into());
        let r = one(HELLO, None).render("t", "s", &ctx).unwrap();
        assert!(!r.html.contains("<script>x"), "{}", r.html);
    }

    #[test]
    fn invalid_mjml_is_an_error_at_compile_time() {
        let e =
            Templates::compile(vec![TemplateSource { name: "bad".into(), mjml: "<mjml><mj-body>".into(), text: None }]);
        assert!(matches!(e, Err(ContentError::Mjml { .. })), "{:?}", e.err());
    }

    #[test]
    fn unknown_templates_are_reported() {
        assert_eq!(one(HELLO, None).render("nope", "s", &sample_context()), Err(ContentError::Unknown("nope".into())));
    }
}

#[cfg(test)]
mod examples {
    use super::*;

    /// Every example template compiles and renders against the sample data
    /// with no template syntax left over.
    #[test]
    fn example_templates_render_with_no_leftover_syntax() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/templates");
        let mut sources = Vec::new();
        for name in ["cart-reminder", "browse-reminder", "win-back"] {
            let mjml = std::fs::read_to_string(format!("{dir}/{name}.mjml")).unwrap();
            sources.push(TemplateSource { name: name.into(), mjml, text: None });
        }
        let t = Templates::compile(sources).unwrap();
        for name in t.names() {
            let r = t.render(&name, "Hi {{ person.first_name }}", &sample_context()).unwrap();
            for leftover in ["{{", "}}", "{%", "%}"] {
                assert!(!r.html.contains(leftover), "{name}: {leftover} in html");
                assert!(!r.text.contains(leftover), "{name}: {leftover} in text");
            }
            assert!(r.text.contains("https://shop.example/unsubscribe?t=demo"), "{name}: unsubscribe link: {}", r.text);
            assert!(!r.text.trim().is_empty());
        }
        let cart = t.render("cart-reminder", "s", &sample_context()).unwrap();
        assert!(cart.html.contains("Trail Runner") && cart.html.contains("$113.00"));
        assert!(
            cart.html.contains("You might also like") && cart.html.contains("Rain Shell"),
            "conditional sections kept"
        );
        let mut no_recs = sample_context();
        no_recs.recommendations.clear();
        let cart = t.render("cart-reminder", "s", &no_recs).unwrap();
        assert!(!cart.html.contains("You might also like"), "conditional section dropped when empty");
    }
}

/// The subject template for a send: the variant's, else the trigger's, else
/// a plain default.
pub fn subject_template<'t>(trigger: &'t nudge_core::Trigger, variant: &str) -> &'t str {
    trigger
        .variant(variant)
        .and_then(|v| v.subject.as_deref())
        .or(trigger.subject.as_deref())
        .unwrap_or("A note from {{ shop }}")
}

/// The template a send uses: the variant's, else the trigger's.
pub fn template_name<'t>(trigger: &'t nudge_core::Trigger, variant: &str) -> &'t str {
    trigger.variant(variant).and_then(|v| v.template.as_deref()).unwrap_or(&trigger.template)
}

/// One kind of email the rules can send: a trigger's variant with the
/// template, subject and offer it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedEmail<'r> {
    pub trigger: &'r str,
    pub variant: &'r str,
    pub template: &'r str,
    pub subject: &'r str,
    pub offer: Option<&'r str>,
}

/// Every trigger × variant of the rules: all that [`check_rules`] reads
/// from them.
pub fn planned_emails(rules: &nudge_core::Triggers) -> Vec<PlannedEmail<'_>> {
    rules
        .triggers
        .iter()
        .flat_map(|t| {
            t.variants.iter().map(move |v| PlannedEmail {
                trigger: &t.id,
                variant: &v.id,
                template: template_name(t, &v.id),
                subject: subject_template(t, &v.id),
                offer: v.offer.as_deref(),
            })
        })
        .collect()
}

/// A warning when the templates cannot send double opt-in confirmations
/// (no `confirm-subscription` template): a browser key's subscription would
/// then be decided `mail_failed`.
pub fn confirmation_warning(templates: &Templates) -> Option<String> {
    let name = nudge_core::profile::CONFIRM_TRIGGER;
    (!templates.names().iter().any(|n| n == name)).then(|| {
        format!(
            "warning: no {name} template: subscriptions asked for with the browser write key cannot be confirmed \
             (examples/templates/{name}.mjml is one to start from)"
        )
    })
}

/// Renders every trigger × variant of the rules against the sample data:
/// what `nudge check --templates` runs, so a template problem is found
/// before anything is sent. Returns every problem.
pub fn check_rules(templates: &Templates, rules: &nudge_core::Triggers) -> Vec<String> {
    let mut problems = Vec::new();
    for email in planned_emails(rules) {
        let mut ctx = sample_context();
        ctx.trigger = email.trigger.to_owned();
        ctx.variant = email.variant.to_owned();
        ctx.offer = email.offer.map(str::to_owned).or(ctx.offer);
        if let Err(e) = templates.render(email.template, email.subject, &ctx) {
            problems.push(format!("trigger {} variant {}: {e}", email.trigger, email.variant));
        }
    }
    problems
}
