//! The real `check` binary's init, as Lambda runs it: under a minimal
//! Runtime API (a local socket that notes the first `GET .../next`), with a
//! local run's settings: init (settings, rules, templates, catalogue, SDK
//! clients) reaches the runtime loop, a bad rules file stops it with the
//! file and line, an invocation is answered through the Runtime API,
//! precompiled templates that do not match are said to be stale and
//! compiled again, and the binary is a position-independent executable.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nudge_aws::settings::local_start_env;
use nudge_bench::runtime_api::{RuntimeApi, invoke_once};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// One start of the binary.
struct Start {
    /// The request line of its first Runtime API call.
    first: Option<String>,
    /// Its exit status, when it exited by itself.
    exited: Option<std::process::ExitStatus>,
    /// What it wrote to stdout (its log) and stderr.
    output: String,
}

/// Starts the binary with `rules_dir` and waits for its first Runtime API
/// call or its exit.
fn start(rules_dir: &Path) -> Start {
    start_with(rules_dir, &[])
}

/// Init went on to ask the Runtime API for an invocation.
fn assert_reached_the_runtime_loop(s: &Start) {
    assert!(s.first.as_ref().is_some_and(|l| l.contains("/runtime/invocation/next")), "{}", s.output);
}

/// As [`start`], with more environment variables.
fn start_with(rules_dir: &Path, extra: &[(&str, &str)]) -> Start {
    let api = RuntimeApi::start().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_check"))
        .env_clear()
        .envs(local_start_env(api.addr(), rules_dir))
        .envs(extra.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.calls().is_empty() && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let exited = child.try_wait().unwrap();
    if exited.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let output = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Start { first: api.calls().first().map(|c| c.line.clone()), exited, output }
}

/// A copy of the example rules in a temporary directory.
fn example_layer() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path());
    dir
}

fn copy_examples(to: &Path) {
    let ex = examples();
    std::fs::create_dir_all(to.join("templates")).unwrap();
    for t in std::fs::read_dir(ex.join("templates")).unwrap() {
        let t = t.unwrap().path();
        std::fs::copy(&t, to.join("templates").join(t.file_name().unwrap())).unwrap();
    }
    std::fs::copy(ex.join("triggers.toml"), to.join("triggers.toml")).unwrap();
}

#[test]
fn with_the_example_rules_init_reaches_the_runtime_loop() {
    let s = start(&examples());
    assert!(s.exited.is_none(), "exited during init: {:?} {}", s.exited, s.output);
    let first = s.first.expect("no Runtime API call within 30 s");
    assert!(first.starts_with("GET /2018-06-01/runtime/invocation/next "), "{first}");
}

#[test]
fn an_input_that_is_not_a_check_is_answered_as_bad_input_and_the_function_polls_again() {
    let run =
        invoke_once(Path::new(env!("CARGO_BIN_EXE_check")), &examples(), br#"{"not":"a check"}"#.to_vec()).unwrap();
    let (kind, body) = run.answer.expect("no answer within 30 s");
    assert_eq!(kind, "error");
    let diagnostic: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(diagnostic["errorType"], "nudge.BadInput", "{diagnostic}");
    assert!(diagnostic["errorMessage"].as_str().unwrap().starts_with("not a check"), "{diagnostic}");
    assert_eq!(run.polls, 2, "one poll for the event, one for the next");
}

/// [`example_layer`] with its rules and templates compiled by this build, as
/// `make rules-layer` does.
fn compiled_layer() -> tempfile::TempDir {
    let dir = example_layer();
    let templates = dir.path().join("templates");
    nudge_app::bundle::compile_for_layer(&dir.path().join("triggers.toml"), &templates, &templates.join("compiled"))
        .unwrap();
    dir
}

#[test]
fn a_layer_compiled_by_this_build_starts_on_its_precompiled_templates_without_a_warning() {
    let s = start(compiled_layer().path());
    assert_reached_the_runtime_loop(&s);
    assert!(!s.output.contains("WARN"), "{}", s.output);
}

#[test]
fn a_precompiled_template_missing_from_the_layer_is_reported_and_the_sources_compiled() {
    let dir = compiled_layer();
    std::fs::remove_file(dir.path().join("templates/compiled/cart-reminder.html")).unwrap();
    let s = start(dir.path());
    assert_reached_the_runtime_loop(&s);
    assert!(s.output.contains("cannot read a precompiled template"), "{}", s.output);
    assert!(s.output.contains("cart-reminder.html"), "{}", s.output);
}

#[test]
fn stale_precompiled_templates_are_reported_and_compiled_at_start_up() {
    let dir = example_layer();
    // Made from other inputs (the digest cannot match) and holding no
    // templates: used, it would leave every email without its template.
    std::fs::create_dir(dir.path().join("templates/compiled")).unwrap();
    std::fs::write(dir.path().join("templates/compiled/manifest.json"), r#"{"digest":"0","templates":[]}"#).unwrap();
    let s = start(dir.path());
    assert!(s.exited.is_none(), "exited during init: {:?} {}", s.exited, s.output);
    assert_reached_the_runtime_loop(&s);
    assert!(s.output.contains("precompiled templates were made from other templates, rules or code"), "{}", s.output);
}

#[test]
fn a_bad_rules_file_stops_init_with_its_file_and_line() {
    let dir = example_layer();
    let rules = std::fs::read_to_string(examples().join("triggers.toml")).unwrap();
    let (at, _) = rules.split_once("delay = \"").expect("the example rules have a delay");
    let line = at.matches('\n').count() + 1;
    std::fs::write(dir.path().join("triggers.toml"), rules.replacen("delay = \"", "delay = \"soon", 1)).unwrap();

    let s = start(dir.path());
    let status = s.exited.expect("init went on with a bad rules file");
    assert!(!status.success());
    assert_eq!(s.first, None, "it called the Runtime API");
    assert!(s.output.contains(&format!("triggers.toml:{line}")), "{}", s.output);
}

/// The function is a position-independent executable (`ET_DYN`, 3): its
/// own code is placed at a random address too.
#[test]
fn the_function_is_a_position_independent_executable() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_check")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    let e_type = u16::from_le_bytes([elf[16], elf[17]]);
    assert_eq!(e_type, 3, "ELF type {e_type}");
}
