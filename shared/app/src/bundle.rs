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
//!
//! The same directory holds the rules compiled ([`RULES_SNAPSHOT`]), for
//! [`load_layer_rules`]: reading the TOML and compiling it was the largest
//! piece of every function's own start-up (~0.26 ms of a ~2.3 ms cold
//! start, measured in the process). The snapshot records the rules text it
//! was compiled from, the template names its references were checked
//! against and the build id; it is used only when all three match, so the
//! rules a function runs are always what its `triggers.toml` says.

use std::path::{Path, PathBuf};

use nudge_content::{Catalogue, CompiledTemplate, TemplateSource, Templates};
use nudge_core::Triggers;
use nudge_core::hash::stable_hash;
use sha2::{Digest, Sha256};

/// Precompiled templates, a directory in a templates directory.
pub const COMPILED_DIR: &str = "compiled";

/// The list of a [`COMPILED_DIR`]'s templates, with the digest they were
/// made for.
pub const MANIFEST: &str = "manifest.json";

/// The rules compiled, in a [`COMPILED_DIR`] (postcard: a [`SnapshotHeader`]
/// followed by the [`Triggers`]).
pub const RULES_SNAPSHOT: &str = "rules.bin";

/// What a [`RULES_SNAPSHOT`] was made from. Decoded first; the rules after
/// it only when it matches.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotHeader<'a> {
    /// [`nudge_content::BUILD_ID`]: nudge-core's sources are among its
    /// inputs, so a build that compiles rules differently, or lays them out
    /// differently, does not read another's snapshot.
    build: &'a str,
    /// The rules file's text.
    source: &'a str,
    /// The template names the rules' references were checked against.
    templates: Vec<&'a str>,
    /// [`stable_hash`] of the encoded rules that follow: a damaged file is
    /// not read as other rules.
    rules_hash: u64,
}

/// Where earlier builds wrote precompiled templates (one JSON file). Not
/// read; its presence without a [`COMPILED_DIR`] is worth a warning, since
/// every start-up then compiles the templates.
const LEGACY_FILE: &str = "compiled.json";

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

/// As [`load_rules`] with a templates directory, taking the rules from its
/// [`COMPILED_DIR`] when `nudge check --compile` compiled exactly this
/// file's text, against these templates, with this build (see the module
/// doc). Otherwise the file is parsed, with a warning when a snapshot was
/// there but could not be used.
pub fn load_layer_rules(file: &Path, templates: &Path) -> Result<Triggers, BundleError> {
    let src = read(file)?;
    let names = template_names(templates)?;
    match compiled_rules(&templates.join(COMPILED_DIR), &src, &names) {
        Some(rules) => Ok(rules),
        None => parse_rules(&src, file, Some(&names)),
    }
}

/// The rules in `dir`'s [`RULES_SNAPSHOT`] when it was made from `src`
/// against `templates` by this build; `None` (with a warning saying why
/// when there was one) otherwise.
fn compiled_rules(dir: &Path, src: &str, templates: &[String]) -> Option<Triggers> {
    let path = dir.join(RULES_SNAPSHOT);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join(MANIFEST).exists() {
                tracing::warn!(
                    file = %path.display(),
                    "no compiled rules beside the precompiled templates (a layer built by an older nudge); \
                     parsing the rules (rebuild the rules layer with this build's `nudge check --compile`)"
                );
            }
            return None;
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the compiled rules; parsing the rules");
            return None;
        }
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        tracing::warn!(file = %path.display(), error = %e, "compiled rules unreadable; parsing the rules");
    };
    let (header, rest) = match postcard::take_from_bytes::<SnapshotHeader>(&bytes) {
        Ok(decoded) => decoded,
        Err(e) => {
            unreadable(&e);
            return None;
        }
    };
    if header.build != nudge_content::BUILD_ID || header.source != src || !header.templates.iter().eq(templates) {
        tracing::warn!(
            file = %path.display(),
            "compiled rules were made from other rules, templates or code; parsing the rules \
             (rebuild the rules layer with this build's `nudge check --compile`)"
        );
        return None;
    }
    if stable_hash(&[rest]) != header.rules_hash {
        unreadable(&"the rules do not match their checksum");
        return None;
    }
    match postcard::take_from_bytes::<Triggers>(rest) {
        Ok((rules, [])) => Some(rules),
        Ok((_, extra)) => {
            unreadable(&format!("{} bytes after the rules", extra.len()));
            None
        }
        Err(e) => {
            unreadable(&e);
            None
        }
    }
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

/// A [`RULES_SNAPSHOT`] of `rules`, compiled from `src` against `templates`.
fn snapshot(src: &str, templates: &[String], rules: &Triggers) -> Result<Vec<u8>, postcard::Error> {
    snapshot_for_build(nudge_content::BUILD_ID, src, templates, rules)
}

fn snapshot_for_build(
    build: &str,
    src: &str,
    templates: &[String],
    rules: &Triggers,
) -> Result<Vec<u8>, postcard::Error> {
    let rules = postcard::to_allocvec(rules)?;
    let header = SnapshotHeader {
        build,
        source: src,
        templates: templates.iter().map(String::as_str).collect(),
        rules_hash: stable_hash(&[&rules]),
    };
    let mut bytes = postcard::to_allocvec(&header)?;
    bytes.extend_from_slice(&rules);
    Ok(bytes)
}

/// Parses the rules `file`, compiles and checks the templates in `dir`
/// against them and writes both to `out` as a [`COMPILED_DIR`] (`nudge
/// check --compile`); returns the rules. The manifest is written last, so
/// an interrupted write leaves templates that are not used (and rules that
/// are used only if they decode and match).
pub fn compile_for_layer(file: &Path, dir: &Path, out: &Path) -> Result<Triggers, BundleError> {
    let src = read(file)?;
    let sources = read_sources(dir)?;
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let rules = parse_rules(&src, file, Some(&names))?;
    let snapshot = snapshot(&src, &names, &rules)
        .map_err(|e| BundleError(format!("cannot encode the rules of {}: {e}", file.display())))?;
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
    write(out.join(RULES_SNAPSHOT), &snapshot)?;
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let legacy = dir.join(LEGACY_FILE);
            if legacy.exists() {
                tracing::warn!(
                    file = %legacy.display(),
                    "precompiled templates in the format of an older nudge; compiling them \
                     (rebuild the rules layer with this build's `nudge check --compile`)"
                );
            }
            return None;
        }
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
            [
                "browse-reminder.html",
                "cart-reminder.html",
                "confirm-subscription.html",
                MANIFEST,
                RULES_SNAPSHOT,
                "win-back.html"
            ]
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

    fn layer_rules(dir: &Path) -> Triggers {
        load_layer_rules(&dir.join("triggers.toml"), &dir.join("templates")).unwrap()
    }

    fn parsed_rules(dir: &Path) -> Triggers {
        load_rules(&dir.join("triggers.toml"), Some(&dir.join("templates"))).unwrap()
    }

    /// Rewrites the layer's rules snapshot as made by `build`, with the
    /// rules' version set to [`MARK`], so a load shows whether the snapshot
    /// or the file was used.
    fn mark_snapshot(dir: &Path, build: &str) {
        let templates = dir.join("templates");
        let src = std::fs::read_to_string(dir.join("triggers.toml")).unwrap();
        let mut rules = parsed_rules(dir);
        rules.version = MARK.to_owned();
        let bytes = snapshot_for_build(build, &src, &template_names(&templates).unwrap(), &rules).unwrap();
        std::fs::write(templates.join(COMPILED_DIR).join(RULES_SNAPSHOT), bytes).unwrap();
    }

    #[test]
    fn compiled_rules_read_back_equal_to_the_parsed_file() {
        let (dir, _) = layer();
        let parsed = parsed_rules(dir.path());
        assert!(parsed.policy.quiet_hours.is_some() && parsed.triggers.len() == 4, "the examples exercise it all");
        assert_eq!(layer_rules(dir.path()), parsed);
    }

    #[test]
    fn compiled_rules_are_used_when_rules_text_templates_and_build_match() {
        let (dir, _) = layer();
        mark_snapshot(dir.path(), nudge_content::BUILD_ID);
        assert_eq!(layer_rules(dir.path()).version, MARK);
    }

    #[test]
    fn an_edited_rules_file_is_parsed_not_taken_from_a_stale_snapshot() {
        let (dir, _) = layer();
        mark_snapshot(dir.path(), nudge_content::BUILD_ID);
        edit(&dir.path().join("triggers.toml"), "delay = \"10m\"", "delay = \"15m\"");
        let rules = layer_rules(dir.path());
        assert_eq!(rules, parsed_rules(dir.path()));
        assert_eq!(rules.get("cart-abandoned").unwrap().delay, nudge_core::Dur::from_secs(15 * 60));
    }

    #[test]
    fn compiled_rules_checked_against_other_templates_are_not_used() {
        let (dir, templates) = layer();
        mark_snapshot(dir.path(), nudge_content::BUILD_ID);
        std::fs::copy(templates.join("win-back.mjml"), templates.join("win-back-2.mjml")).unwrap();
        assert_eq!(layer_rules(dir.path()), parsed_rules(dir.path()));
    }

    #[test]
    fn compiled_rules_from_another_build_are_not_used() {
        let (dir, _) = layer();
        mark_snapshot(dir.path(), "another build");
        assert_eq!(layer_rules(dir.path()), parsed_rules(dir.path()));
    }

    #[test]
    fn compiled_rules_do_not_spare_a_broken_rules_file_its_errors() {
        let (dir, _) = layer();
        edit(&dir.path().join("triggers.toml"), "delay = \"10m\"", "delay = \"ten minutes\"");
        let err = load_layer_rules(&dir.path().join("triggers.toml"), &dir.path().join("templates")).unwrap_err();
        assert!(err.0.contains("triggers.toml:") && err.0.contains("invalid duration"), "{err}");
    }

    #[test]
    fn a_truncated_or_damaged_snapshot_is_never_read_as_rules() {
        let (dir, templates) = layer();
        let path = templates.join(COMPILED_DIR).join(RULES_SNAPSHOT);
        let whole = std::fs::read(&path).unwrap();
        let parsed = parsed_rules(dir.path());
        let src = std::fs::read_to_string(dir.path().join("triggers.toml")).unwrap();
        let names = template_names(&templates).unwrap();
        let compiled = || compiled_rules(&templates.join(COMPILED_DIR), &src, &names);
        for len in 0..whole.len() {
            std::fs::write(&path, &whole[..len]).unwrap();
            assert_eq!(compiled(), None, "{len} of {} bytes", whole.len());
        }
        // Every byte of the rules part flipped in turn: the checksum catches it.
        let rules_at = whole.len() - postcard::to_allocvec(&parsed).unwrap().len();
        for i in rules_at..whole.len() {
            let mut damaged = whole.clone();
            damaged[i] ^= 0x20;
            std::fs::write(&path, &damaged).unwrap();
            assert_eq!(compiled(), None, "byte {i} flipped");
        }
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(compiled(), Some(parsed));
    }
}
