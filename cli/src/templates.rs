//! Reading a templates directory, and `nudge preview`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nudge_content::{Catalogue, EmailContext, SendInfo, Templates, subject_template, template_name};
use nudge_core::Profile;

use crate::replay_cmd::load_rules;

/// The unsubscribe link shown in previews and replays, where no signing key
/// is configured.
pub const PREVIEW_UNSUBSCRIBE_URL: &str = "https://example.invalid/unsubscribe?t=preview";

/// Loads `<name>.mjml` (and `<name>.txt` when present) from `dir`.
pub fn load(dir: &Path) -> Result<Templates> {
    Ok(nudge_app::bundle::load_templates(dir)?)
}

#[derive(clap::Args)]
pub struct PreviewArgs {
    /// Template to render (a name in the templates directory).
    #[arg(long)]
    pub template: String,
    /// A profile as JSON (the document nudge stores).
    #[arg(long)]
    pub profile: PathBuf,
    /// Trigger whose subject and offer to use (default: the first using the template).
    #[arg(long)]
    pub trigger: Option<String>,
    /// The trigger's variant whose subject to use (an `id` from its
    /// `variants`; default: the trigger's own subject).
    #[arg(long)]
    pub variant: Option<String>,
    /// The templates directory.
    #[arg(long, default_value = "examples/templates")]
    pub templates: PathBuf,
    /// The rules file (subjects, offers, variants).
    #[arg(long, default_value = "examples/triggers.toml")]
    pub triggers: PathBuf,
    /// Product catalogue (JSON feed) for images, stock and recommendations.
    #[arg(long, default_value = "examples/catalogue.json")]
    pub catalogue: Option<PathBuf>,
    /// The shop's locale, for prices.
    #[arg(long, default_value = "en-US")]
    pub locale: String,
    /// Write <template>.html and <template>.txt here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A JSON product feed, or an empty catalogue.
pub fn load_catalogue(path: Option<&Path>) -> Result<Catalogue> {
    Ok(nudge_app::bundle::load_catalogue(path)?)
}

pub fn preview(args: PreviewArgs) -> Result<ExitCode> {
    let templates = load(&args.templates)?;
    let rules = load_rules(&args.triggers, Some(&args.templates))?;
    let json =
        std::fs::read_to_string(&args.profile).with_context(|| format!("cannot read {}", args.profile.display()))?;
    let profile: Profile =
        serde_json::from_str(&json).with_context(|| format!("{}: not a profile", args.profile.display()))?;
    let trigger = match &args.trigger {
        Some(id) => rules.get(id).with_context(|| format!("unknown trigger {id:?}"))?,
        None => match rules.triggers.iter().find(|t| t.template == args.template) {
            Some(t) => t,
            None => bail!("no trigger uses template {:?}; name one with --trigger", args.template),
        },
    };
    let variant = args.variant.clone().unwrap_or_else(|| trigger.variants[0].id.clone());
    let catalogue = load_catalogue(args.catalogue.as_deref())?;
    let send = SendInfo {
        trigger,
        variant: &variant,
        now: jiff::Timestamp::now(),
        unsubscribe_url: PREVIEW_UNSUBSCRIBE_URL,
        locale: &args.locale,
    };
    let name = if args.variant.is_some() { template_name(trigger, &variant) } else { &args.template };
    let r = if name == template_name(trigger, &variant) {
        templates.render_send(&profile, &rules, &send, &catalogue)
    } else {
        // Another template than the trigger's, with the trigger's data.
        let ctx = EmailContext::build(&profile, &rules, &send, &catalogue);
        templates.render(name, subject_template(trigger, &variant), &ctx)
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("Subject: {}\n\n{}", r.subject, r.text);
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        std::fs::write(out.join(format!("{name}.html")), &r.html)?;
        std::fs::write(out.join(format!("{name}.txt")), &r.text)?;
        eprintln!("wrote {}/{name}.html and .txt", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
