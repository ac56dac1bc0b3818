//! Loading what every shell needs before it can send: the rules
//! (`triggers.toml`), the compiled templates and the product catalogue.
//! `nudge serve`, `nudge replay` and the Lambda functions all load them here,
//! so a file that one accepts the others accept too.
//!
//! A templates directory may also hold a [`COMPILED_DIR`], written by
//! `nudge check --compile` when a Lambda rules layer is built: the
//! templates' MJML already compiled to HTML and every email of the rules
//! already rendered once against sample data. MJML compilation and that
//! check are most of the `check` function's start-up work beyond the
//! runtime's own. Each template's HTML is a plain file there
//! (`<name>.html`), read as it is — no decoding at start-up, and open to
//! inspection — beside a [`MANIFEST`] that lists them and records a digest
//! of everything that work depended on: the template sources, the emails
//! the rules can send and the build of the code
//! ([`nudge_content::BUILD_ID`]). A text part (`<name>.txt`) needs no
//! compiling and is taken from its source. The directory is used only when
//! the digest still matches and every file it lists reads; otherwise the
//! templates are compiled and checked here as if it were absent, with a
//! warning saying why.

use std::path::{Path, PathBuf};

use nudge_content::{Catalogue, CompiledTemplate, TemplateSource, Templates};
use nudge_core::Triggers;
use sha2::{Digest, Sha256};

/// Precompiled templates, a directory in a templates directory.
pub const COMPILED_DIR: &str = "compiled";

/// The list of a [`COMPILED_DIR`]'s templates, with the digest they were
/// made for.
pub const MANIFEST: &str = "manifest.json";

/// A file that could not be read or does not validate; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BundleError(pub String);

fn read(path: &Path) -> Result<String, BundleError> {
    std::fs::read_to_string(path).map_err(|e| BundleError(format!("cannot read {}: {e}", path.display())))
}

fn mjml_files(dir: &Path) -> Result<Vec<PathBuf>, BundleError> {
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
    let names = templates.map(template_names).transpose()?;
    parse_rules(&read(file)?, file, names.as_deref())
}

fn parse_rules(src: &str, file: &Path, templates: Option<&[String]>) -> Result<Triggers, BundleError> {
    Triggers::parse(src, &file.display().to_string(), templates).map_err(|e| {
        let n = e.0.len();
        BundleError(format!("{e}\n{n} problem{} in {}", if n == 1 { "" } else { "s" }, file.display()))
    })
}

/// Compiles every `<name>.mjml` in `dir`, with `<name>.txt` as its text part
/// where present. Always from the sources: [`COMPILED_DIR`] is not read.
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

/// A [`COMPILED_DIR`]'s [`MANIFEST`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    /// [`digest`] of what the compilation and the check depended on.
    digest: String,
    /// The templates' names: each one's HTML is `<name>.html`.
    templates: Vec<String>,
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

/// Parses the rules `file`, compiles and checks the templates in `dir`
/// against them and writes both to `out` as a [`COMPILED_DIR`] (`nudge
/// check --compile`); returns the rules. The manifest is written last, so
/// an interrupted write leaves templates that are not used.
pub fn compile_for_layer(file: &Path, dir: &Path, out: &Path) -> Result<Triggers, BundleError> {
    let src = read(file)?;
    let sources = read_sources(dir)?;
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let rules = parse_rules(&src, file, Some(&names))?;
    let digest = digest(&sources, &rules);
    let templates = Templates::compile_mjml(sources).map_err(in_dir(dir))?;
    checked(Templates::from_compiled(templates.clone()).map_err(in_dir(dir))?, &rules)?;
    let write = |path: PathBuf, contents: &[u8]| {
        std::fs::write(&path, contents).map_err(|e| BundleError(format!("cannot write {}: {e}", path.display())))
    };
    let manifest = out.join(MANIFEST);
    match std::fs::remove_file(&manifest) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(BundleError(format!("cannot replace {}: {e}", manifest.display())));
        }
        _ => {}
    }
    std::fs::create_dir_all(out).map_err(|e| BundleError(format!("cannot create {}: {e}", out.display())))?;
    let mut listed = Vec::new();
    for t in templates {
        write(out.join(format!("{}.html", t.name)), t.html.as_bytes())?;
        listed.push(t.name);
    }
    let json = serde_json::to_vec_pretty(&Manifest { digest, templates: listed })
        .map_err(|e| BundleError(format!("cannot encode {}: {e}", manifest.display())))?;
    write(manifest, &json)?;
    Ok(rules)
}

/// The precompiled templates in `dir` when they are there, were made from
/// exactly these inputs by this build and are the templates of `sources`;
/// `None` (with a warning when a manifest was there) otherwise.
fn precompiled(dir: &Path, sources: &[TemplateSource], digest: &str) -> Option<Vec<CompiledTemplate>> {
    let compiled = dir.join(COMPILED_DIR);
    let path = compiled.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read precompiled templates; compiling them");
            return None;
        }
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(m) if m.digest == digest && m.templates.iter().eq(sources.iter().map(|s| &s.name)) => {}
        Ok(_) => {
            tracing::warn!(
                file = %path.display(),
                "precompiled templates were made from other templates, rules or code; compiling them \
                 (rebuild the rules layer with this build's `nudge check --compile`)"
            );
            return None;
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "precompiled templates unreadable; compiling them");
            return None;
        }
    }
    sources
        .iter()
        .map(|s| {
            let path = compiled.join(format!("{}.html", s.name));
            let html = std::fs::read_to_string(&path)
                .inspect_err(|e| {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read a precompiled template; compiling them");
                })
                .ok()?;
            Some(CompiledTemplate { name: s.name.clone(), html, text: s.text.clone() })
        })
        .collect()
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
    /// directory's [`COMPILED_DIR`] when it matches (see the module doc).
    pub fn with_rules(rules: Triggers, dir: &Path, catalogue: Option<&Path>) -> Result<Bundle, BundleError> {
        let sources = read_sources(dir)?;
        let templates = match precompiled(dir, &sources, &digest(&sources, &rules)) {
            Some(compiled) => Templates::from_checked(compiled),
            None => checked(Templates::compile(sources).map_err(in_dir(dir))?, &rules)?,
        };
        Ok(Bundle { rules, templates, catalogue: load_catalogue(catalogue)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
    }

    const MARK: &str = "FROM-COMPILED-DIR";

    /// examples/triggers.toml and a copy of examples/templates with its
    /// compiled directory, in which every template's HTML carries [`MARK`],
    /// so a render shows whether the directory or the sources were used.
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
        compile_for_layer(&triggers, &templates, &templates.join(COMPILED_DIR)).unwrap();
        for name in template_names(&templates).unwrap() {
            edit(&templates.join(COMPILED_DIR).join(format!("{name}.html")), "</body>", &format!("{MARK}</body>"));
        }
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
    fn the_compiled_directory_holds_each_template_as_plain_html_beside_its_manifest() {
        let (_dir, templates) = layer();
        let out = tempfile::tempdir().unwrap();
        compile_for_layer(&examples().join("triggers.toml"), &templates, out.path()).unwrap();
        let mut files: Vec<String> =
            std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        files.sort();
        assert_eq!(
            files,
            ["browse-reminder.html", "cart-reminder.html", "confirm-subscription.html", MANIFEST, "win-back.html"]
                .map(String::from)
        );
        let html = std::fs::read_to_string(out.path().join("cart-reminder.html")).unwrap();
        assert!(html.starts_with("<!doctype html>") && html.contains("{{"), "compiled MJML, Jinja left to render");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(manifest["digest"].as_str().unwrap().len(), 64);
        assert_eq!(
            manifest["templates"],
            serde_json::json!(["browse-reminder", "cart-reminder", "confirm-subscription", "win-back"])
        );
    }

    #[test]
    fn a_text_part_is_rendered_from_its_source_beside_the_precompiled_html() {
        let (dir, templates) = layer();
        std::fs::write(templates.join("cart-reminder.txt"), "TEXT-PART {{ person.first_name or \"there\" }}").unwrap();
        compile_for_layer(&dir.path().join("triggers.toml"), &templates, &templates.join(COMPILED_DIR)).unwrap();
        edit(&templates.join(COMPILED_DIR).join("cart-reminder.html"), "</body>", &format!("{MARK}</body>"));
        let email = load(dir.path()).unwrap().templates.render("cart-reminder", "s", &nudge_content::sample_context());
        let email = email.unwrap();
        assert!(email.html.contains(MARK), "the HTML comes from the compiled directory");
        assert!(email.text.starts_with("TEXT-PART "), "{}", email.text);
    }

    #[test]
    fn an_unreadable_manifest_is_ignored_and_the_sources_compiled() {
        let (dir, templates) = layer();
        std::fs::write(templates.join(COMPILED_DIR).join(MANIFEST), "{not json").unwrap();
        assert!(!cart_html(&load(dir.path()).unwrap()).contains(MARK));
    }

    #[test]
    fn a_listed_template_missing_from_the_directory_means_the_sources_are_compiled() {
        let (dir, templates) = layer();
        std::fs::remove_file(templates.join(COMPILED_DIR).join("win-back.html")).unwrap();
        let bundle = load(dir.path()).unwrap();
        assert!(!cart_html(&bundle).contains(MARK));
        assert!(bundle.templates.render("win-back", "s", &nudge_content::sample_context()).is_ok());
    }

    #[test]
    fn a_manifest_that_lists_other_templates_than_the_sources_is_not_used() {
        let (dir, templates) = layer();
        let path = templates.join(COMPILED_DIR).join(MANIFEST);
        let mut manifest: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        manifest.templates.pop();
        std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
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
