//! Loading what every shell needs before it can send: the rules
//! (`triggers.toml`), the compiled templates and the product catalogue.
//! `nudge serve`, `nudge replay` and the Lambda functions all load them here,
//! so a file that one accepts the others accept too.
//!
//! A templates directory may also hold [`COMPILED_FILE`], written by `nudge
//! check --compile` when a Lambda rules layer is built: the templates'
//! MJML already compiled to HTML and every email of the rules already
//! rendered once against sample data. MJML compilation and that check are
//! most of the `check` function's start-up work beyond the runtime's own.
//! The file records a digest of everything that work depended on — the
//! template sources, the emails the rules can send and the build of the
//! code ([`nudge_content::BUILD_ID`]) — and is used only when the digest
//! still matches; otherwise the templates are compiled and checked here as
//! if it were absent, with a warning saying why.

use std::path::Path;

use nudge_content::{Catalogue, CompiledTemplate, TemplateSource, Templates};
use nudge_core::Triggers;
use sha2::{Digest, Sha256};

/// Precompiled templates, in a templates directory.
pub const COMPILED_FILE: &str = "compiled.json";

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
/// where present. Always from the sources: [`COMPILED_FILE`] is not read.
pub fn load_templates(dir: &Path) -> Result<Templates, BundleError> {
    Templates::compile(read_sources(dir)?).map_err(in_dir(dir))
}

fn read_sources(dir: &Path) -> Result<Vec<TemplateSource>, BundleError> {
    let mut sources = Vec::new();
    for path in mjml_files(dir)? {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
        let mjml = read(&path)?;
        let txt = path.with_extension("txt");
        let text = if txt.exists() { Some(read(&txt)?) } else { None };
        sources.push(TemplateSource { name, mjml, text });
    }
    Ok(sources)
}

/// What [`COMPILED_FILE`] holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Compiled {
    /// [`digest`] of what the compilation and the check depended on.
    digest: String,
    templates: Vec<CompiledTemplate>,
}

/// SHA-256 over the build id, every template source and every email the
/// rules can send, each field length-prefixed so no two inputs collide by
/// concatenation.
fn digest(sources: &[TemplateSource], rules: &Triggers) -> String {
    digest_for_build(nudge_content::BUILD_ID, sources, rules)
}

fn digest_for_build(build: &str, sources: &[TemplateSource], rules: &Triggers) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(build.as_bytes());
    for s in sources {
        field(s.name.as_bytes());
        field(s.mjml.as_bytes());
        field(s.text.as_deref().map_or(b"\0none" as &[u8], str::as_bytes));
    }
    for e in nudge_content::planned_emails(rules) {
        for part in [e.trigger, e.variant, e.template, e.subject, e.offer.unwrap_or("\0none")] {
            field(part.as_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn in_dir(dir: &Path) -> impl Fn(nudge_content::ContentError) -> BundleError + '_ {
    move |e| BundleError(format!("{}: {e}", dir.display()))
}

/// `templates`, once every email of the rules renders with them.
fn checked(templates: Templates, rules: &Triggers) -> Result<Templates, BundleError> {
    let problems = nudge_content::check_rules(&templates, rules);
    if !problems.is_empty() {
        return Err(BundleError(format!("template problems:\n{}", problems.join("\n"))));
    }
    Ok(templates)
}

/// Compiles and checks the templates in `dir` against `rules`, and returns
/// the contents of [`COMPILED_FILE`] for them (`nudge check --compile`).
pub fn compile_for_layer(rules: &Triggers, dir: &Path) -> Result<String, BundleError> {
    let sources = read_sources(dir)?;
    let digest = digest(&sources, rules);
    let templates = Templates::compile_mjml(sources).map_err(in_dir(dir))?;
    checked(Templates::from_compiled(templates.clone()).map_err(in_dir(dir))?, rules)?;
    serde_json::to_string(&Compiled { digest, templates })
        .map_err(|e| BundleError(format!("cannot encode {COMPILED_FILE}: {e}")))
}

/// The precompiled templates in `dir` when they are there and were made
/// from exactly these inputs by this build; `None` (with a warning when a
/// file was there) otherwise.
fn precompiled(dir: &Path, digest: &str) -> Option<Vec<CompiledTemplate>> {
    let path = dir.join(COMPILED_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read precompiled templates; compiling them");
            return None;
        }
    };
    match serde_json::from_slice::<Compiled>(&bytes) {
        Ok(c) if c.digest == digest => Some(c.templates),
        Ok(_) => {
            tracing::warn!(
                file = %path.display(),
                "precompiled templates were made from other templates, rules or code; compiling them \
                 (rebuild the rules layer with this build's `nudge check --compile`)"
            );
            None
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "precompiled templates unreadable; compiling them");
            None
        }
    }
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
    /// them: parsing them twice would cost every cold start). Uses the
    /// directory's [`COMPILED_FILE`] when it matches (see the module doc).
    pub fn with_rules(rules: Triggers, dir: &Path, catalogue: Option<&Path>) -> Result<Bundle, BundleError> {
        let sources = read_sources(dir)?;
        let templates = match precompiled(dir, &digest(&sources, &rules)) {
            Some(compiled) => Templates::from_checked(compiled),
            None => checked(Templates::compile(sources).map_err(in_dir(dir))?, &rules)?,
        };
        Ok(Bundle { rules, templates, catalogue: load_catalogue(catalogue)? })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn examples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
    }

    const MARK: &str = "FROM-COMPILED-JSON";

    /// examples/triggers.toml and a copy of examples/templates with its
    /// compiled.json, in which every template's HTML carries [`MARK`], so a
    /// render shows whether the file or the sources were used.
    fn layer() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("templates");
        std::fs::create_dir(&templates).unwrap();
        for entry in std::fs::read_dir(examples().join("templates")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, templates.join(path.file_name().unwrap())).unwrap();
        }
        let triggers = dir.path().join("triggers.toml");
        std::fs::copy(examples().join("triggers.toml"), &triggers).unwrap();
        let rules = load_rules(&triggers, Some(&templates)).unwrap();
        let mut compiled: Compiled = serde_json::from_str(&compile_for_layer(&rules, &templates).unwrap()).unwrap();
        for t in &mut compiled.templates {
            t.html = t.html.replace("</body>", &format!("{MARK}</body>"));
        }
        std::fs::write(templates.join(COMPILED_FILE), serde_json::to_string(&compiled).unwrap()).unwrap();
        (dir, templates)
    }

    fn load(dir: &Path) -> Result<Bundle, BundleError> {
        Bundle::load(&dir.join("triggers.toml"), &dir.join("templates"), None)
    }

    fn cart_html(bundle: &Bundle) -> String {
        bundle.templates.render("cart-reminder", "s", &nudge_content::sample_context()).unwrap().html
    }

    fn edit(path: &Path, from: &str, to: &str) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(from), "{} lacks {from:?}", path.display());
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }

    /// Adds a text block at the end of the template's body.
    fn add_text(template: &Path, text: &str) {
        let section = format!("<mj-section><mj-column><mj-text>{text}</mj-text></mj-column></mj-section></mj-body>");
        edit(template, "</mj-body>", &section);
    }

    #[test]
    fn precompiled_templates_are_used_when_sources_rules_and_build_match() {
        let (dir, _) = layer();
        assert!(cart_html(&load(dir.path()).unwrap()).contains(MARK));
    }

    #[test]
    fn an_edited_template_is_compiled_from_its_source_not_taken_from_a_stale_file() {
        let (dir, templates) = layer();
        add_text(&templates.join("cart-reminder.mjml"), "EDITED");
        let html = cart_html(&load(dir.path()).unwrap());
        assert!(html.contains("EDITED") && !html.contains(MARK), "{html}");
    }

    #[test]
    fn a_changed_subject_in_the_rules_makes_the_precompiled_file_stale() {
        let (dir, _) = layer();
        edit(&dir.path().join("triggers.toml"), "You left something behind", "Still thinking it over?");
        assert!(!cart_html(&load(dir.path()).unwrap()).contains(MARK));
    }

    #[test]
    fn a_stale_file_does_not_spare_the_templates_their_check() {
        let (dir, templates) = layer();
        add_text(&templates.join("win-back.mjml"), "{{ person.nickname }}");
        let err = load(dir.path()).err().expect("an undefined variable fails the load");
        assert!(err.0.contains("template problems") && err.0.contains("win-back.mjml"), "{err}");
    }

    #[test]
    fn an_unreadable_compiled_file_is_ignored_and_the_sources_compiled() {
        let (dir, templates) = layer();
        std::fs::write(templates.join(COMPILED_FILE), "{not json").unwrap();
        assert!(!cart_html(&load(dir.path()).unwrap()).contains(MARK));
    }

    #[test]
    fn the_digest_covers_the_build_that_did_the_work() {
        let (dir, templates) = layer();
        let rules = load_rules(&dir.path().join("triggers.toml"), None).unwrap();
        let sources = read_sources(&templates).unwrap();
        assert_ne!(digest_for_build("a", &sources, &rules), digest_for_build("b", &sources, &rules));
        assert_eq!(digest(&sources, &rules), digest_for_build(nudge_content::BUILD_ID, &sources, &rules));
    }
}
