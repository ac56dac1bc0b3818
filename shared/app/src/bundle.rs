//! Loading what every shell needs before it can send: the rules
//! (`triggers.toml`), the compiled templates and the product catalogue.
//! `nudge serve`, `nudge replay` and the Lambda functions all load them here,
//! so a file that one accepts the others accept too.

use std::path::Path;

use nudge_content::{Catalogue, TemplateSource, Templates};
use nudge_core::Triggers;

/// A file that could not be read or does not validate; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BundleError(pub String);

fn read(path: &Path) -> Result<String, BundleError> {
    std::fs::read_to_string(path).map_err(|e| BundleError(format!("cannot read {}: {e}", path.display())))
}

fn mjml_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, BundleError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BundleError(format!("cannot read templates directory {}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| BundleError(format!("{}: {e}", dir.display())))?.path();
        if path.extension().is_some_and(|e| e == "mjml") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Names of the templates in `dir` (`<name>.mjml`), sorted.
pub fn template_names(dir: &Path) -> Result<Vec<String>, BundleError> {
    Ok(mjml_files(dir)?.iter().filter_map(|p| p.file_stem()?.to_str().map(str::to_owned)).collect())
}

/// Parses and validates `file`; with a templates directory, every template
/// a trigger names must exist there.
pub fn load_rules(file: &Path, templates: Option<&Path>) -> Result<Triggers, BundleError> {
    let src = read(file)?;
    let names = templates.map(template_names).transpose()?;
    Triggers::parse(&src, &file.display().to_string(), names.as_deref()).map_err(|e| {
        let n = e.0.len();
        BundleError(format!("{e}\n{n} problem{} in {}", if n == 1 { "" } else { "s" }, file.display()))
    })
}

/// Compiles every `<name>.mjml` in `dir`, with `<name>.txt` as its text part
/// where present.
pub fn load_templates(dir: &Path) -> Result<Templates, BundleError> {
    let mut sources = Vec::new();
    for path in mjml_files(dir)? {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
        let mjml = read(&path)?;
        let txt = path.with_extension("txt");
        let text = if txt.exists() { Some(read(&txt)?) } else { None };
        sources.push(TemplateSource { name, mjml, text });
    }
    Templates::compile(sources).map_err(|e| BundleError(format!("{}: {e}", dir.display())))
}

/// The product feed at `path`; no path is an empty catalogue.
pub fn load_catalogue(path: Option<&Path>) -> Result<Catalogue, BundleError> {
    match path {
        None => Ok(Catalogue::default()),
        Some(p) => Catalogue::from_feed(&read(p)?).map_err(|e| BundleError(format!("{}: {e}", p.display()))),
    }
}

/// Rules, templates and catalogue together, checked against each other:
/// every trigger and variant has a template that renders its data.
pub struct Bundle {
    pub rules: Triggers,
    pub templates: Templates,
    pub catalogue: Catalogue,
}

impl Bundle {
    pub fn load(triggers: &Path, templates: &Path, catalogue: Option<&Path>) -> Result<Bundle, BundleError> {
        Bundle::with_rules(load_rules(triggers, Some(templates))?, templates, catalogue)
    }

    /// As `load`, with rules already loaded (a Lambda function's stack has
    /// them: parsing them twice would cost every cold start).
    pub fn with_rules(rules: Triggers, templates: &Path, catalogue: Option<&Path>) -> Result<Bundle, BundleError> {
        let templates = load_templates(templates)?;
        let problems = nudge_content::check_rules(&templates, &rules);
        if !problems.is_empty() {
            return Err(BundleError(format!("template problems:\n{}", problems.join("\n"))));
        }
        Ok(Bundle { rules, templates, catalogue: load_catalogue(catalogue)? })
    }
}
