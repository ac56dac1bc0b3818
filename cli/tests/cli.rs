//! The `nudge` command as a user runs it: real process, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nudge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge")).args(args).current_dir(repo()).output().expect("run nudge")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmp(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn replay_writes_one_decision_per_line_with_the_documented_fields() {
    let out = nudge(&["replay", "--triggers", "examples/triggers.toml", "examples/events/cart-abandoned.jsonl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let d = &lines[0];
    for field in ["at", "shop", "profile", "trigger", "episode", "decision", "reason", "variant"] {
        assert!(d.get(field).is_some(), "missing {field}: {d}");
    }
    assert_eq!(d["decision"], "send");
    assert_eq!(d["reason"], serde_json::Value::Null);
    assert_eq!(d["at"], "2026-10-06T14:13:00Z");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cart-abandoned"), "summary on stderr: {stderr}");
}

#[test]
fn replay_of_the_same_log_is_identical_across_runs() {
    let args = [
        "replay",
        "--triggers",
        "examples/triggers.toml",
        "examples/events/duplicates.jsonl",
        "examples/events/wishlist-nudge.jsonl",
    ];
    let a = nudge(&args);
    let b = nudge(&args);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn a_malformed_log_line_stops_with_its_line_number() {
    let log = tmp(
        "bad.jsonl",
        "{\"type\":\"page\",\"userId\":\"u\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n\n{\"type\":\"track\",oops}\n",
    );
    let out = nudge(&["replay", "--triggers", "examples/triggers.toml", log.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.jsonl:3:"), "names the line: {stderr}");
}

#[test]
fn skip_invalid_continues_and_reports_the_count() {
    let log = tmp(
        "mixed.jsonl",
        "not json\n{\"type\":\"page\",\"userId\":\"u\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n{\"type\":\"track\",\"userId\":\"u\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n",
    );
    let out = nudge(&["replay", "--skip-invalid", "--triggers", "examples/triggers.toml", log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("2 invalid line(s) skipped"), "{stderr}");
    assert!(stderr.contains("mixed.jsonl:3: a track message needs `event`"), "{stderr}");
}

#[test]
fn check_explains_each_trigger() {
    let out = nudge(&["check", "--triggers", "examples/triggers.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("4 trigger(s)"));
    assert!(
        stdout.contains("cart-abandoned (priority 100): on checkout_started, wait 10m, cancelled by order_placed"),
        "{stdout}"
    );
}

#[test]
fn check_reports_rules_errors_with_file_line_and_field() {
    let rules =
        tmp("bad.toml", "[[trigger]]\nid = \"a\"\non = \"checkout_started\"\ntemplate = \"t\"\ndelay = \"soon\"\n");
    let out = nudge(&["check", rules.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.toml:5:9: delay: invalid duration \"soon\""), "{stderr}");
}

#[test]
fn check_with_templates_catches_a_missing_template() {
    let dir = std::env::temp_dir().join(format!("nudge-tpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cart-reminder.mjml"), "<mjml></mjml>").unwrap();
    let out = nudge(&["check", "--triggers", "examples/triggers.toml", "--templates", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown template \"browse-reminder\""), "{}", text(&out.stderr));
}

#[test]
fn check_compile_writes_the_rules_and_every_template_compiled_and_needs_templates() {
    let out_dir = std::env::temp_dir().join(format!("nudge-compiled-{}", std::process::id()));
    let out = nudge(&[
        "check",
        "examples/triggers.toml",
        "--templates",
        "examples/templates",
        "--compile",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    let names: Vec<&str> = json["templates"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(names, ["browse-reminder", "cart-reminder", "confirm-subscription", "win-back"]);
    for name in names {
        let html = std::fs::read_to_string(out_dir.join(format!("{name}.html"))).unwrap();
        assert!(html.starts_with("<!doctype html>"), "{name}: {html}");
    }
    assert_eq!(json["digest"].as_str().unwrap().len(), 64);
    assert!(text(&out.stdout).contains("templates compiled and checked against the rules"), "{}", text(&out.stdout));

    let out = nudge(&["check", "--triggers", "examples/triggers.toml", "--compile", out_dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--templates"), "{}", text(&out.stderr));
}

#[test]
fn simulate_is_deterministic_for_a_seed_and_replays_cleanly() {
    let a = nudge(&["simulate", "--events", "2000", "--seed", "7"]);
    let b = nudge(&["simulate", "--events", "2000", "--seed", "7"]);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(text(&a.stdout).lines().count(), 2000);
    let log = tmp("sim.jsonl", &text(&a.stdout));
    let out = nudge(&["replay", "--triggers", "examples/triggers.toml", log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!out.stdout.is_empty(), "a realistic log produces decisions");
}

#[test]
fn the_live_demo_drives_five_shoppers_over_http_and_explains_each_decision() {
    let out = nudge(&["demo"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = |who: &str| {
        stdout.lines().find(|l| l.starts_with(who)).unwrap_or_else(|| panic!("{who} missing: {stdout}")).to_owned()
    };
    assert!(line("Ada").contains("SEND"), "{stdout}");
    assert!(line("Grace").contains("converted"));
    assert!(line("Alan").contains("browse-abandoned") && line("Alan").contains("SEND"));
    assert!(line("Barbara").contains("no_consent"));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("Edsger")).count(), 1, "three deliveries, one decision");
    assert!(stdout.contains("3 email(s) written"), "{stdout}");
}

#[test]
fn demo_replay_shows_who_gets_what_and_why() {
    let out = nudge(&["demo", "--replay"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for expected in ["converted", "no_consent", "SEND"] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    let edsger: Vec<&str> = stdout.lines().filter(|l| l.contains("Edsger")).collect();
    assert_eq!(edsger.len(), 1, "three deliveries, one decision: {stdout}");
}

#[test]
fn preview_renders_subject_html_and_text_for_a_profile() {
    let out_dir = std::env::temp_dir().join(format!("nudge-preview-{}", std::process::id()));
    let out = nudge(&[
        "preview",
        "--template",
        "cart-reminder",
        "--profile",
        "examples/profiles/cart-abandoner.json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Subject: You left something behind"), "{stdout}");
    assert!(stdout.contains("Trail Runner") && stdout.contains("$113.00"), "{stdout}");
    let html = std::fs::read_to_string(out_dir.join("cart-reminder.html")).unwrap();
    assert!(html.contains("<html") && !html.contains("{{"));
}

#[test]
fn check_with_templates_catches_a_missing_variable_before_anything_is_sent() {
    let dir = std::env::temp_dir().join(format!("nudge-tpl-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["cart-reminder", "browse-reminder", "win-back"] {
        std::fs::copy(repo().join(format!("examples/templates/{name}.mjml")), dir.join(format!("{name}.mjml")))
            .unwrap();
    }
    std::fs::write(
        dir.join("win-back.mjml"),
        "<mjml><mj-body><mj-section><mj-column>\n<mj-text>Hi {{ person.nickname }}</mj-text></mj-column></mj-section></mj-body></mjml>",
    )
    .unwrap();
    let out = nudge(&["check", "--triggers", "examples/triggers.toml", "--templates", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("trigger win-back variant default: win-back.mjml:"), "{stderr}");
    assert!(stderr.contains("undefined"), "{stderr}");
}

#[test]
fn replay_with_templates_renders_every_send() {
    let out = nudge(&[
        "replay",
        "--triggers",
        "examples/triggers.toml",
        "--templates",
        "examples/templates",
        "examples/events/cart-abandoned.jsonl",
        "examples/events/browse-abandoned.jsonl",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("rendered 2 send(s), 0 failed"), "{}", text(&out.stderr));
}

#[test]
fn report_over_the_logs_matches_the_attribution_and_the_html_page_of_the_replay() {
    let log = tmp("report-sim.jsonl", &text(&nudge(&["simulate", "--events", "5000", "--seed", "3"]).stdout));
    let dir = log.parent().unwrap().to_path_buf();
    let (decisions, inline, html) =
        (dir.join("report-dec.jsonl"), dir.join("report-inline.json"), dir.join("report.html"));
    let out = nudge(&[
        "replay",
        "--triggers",
        "examples/triggers.toml",
        "--out",
        decisions.to_str().unwrap(),
        "--json",
        inline.to_str().unwrap(),
        "--html",
        dir.join("report-replay.html").to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_logs = dir.join("report-logs.json");
    let out = nudge(&[
        "report",
        "--decisions",
        decisions.to_str().unwrap(),
        "--json",
        from_logs.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let a: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&inline).unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&from_logs).unwrap()).unwrap();
    assert_eq!(a, b, "the same figures from the replay and from the logs");
    assert!(a.as_array().is_some_and(|rows| rows.iter().any(|r| r["sent"].as_u64() > Some(0))));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg") && !page.contains("http://") && !page.contains("https://"),
        "charts inline, nothing fetched"
    );
    let from_replay = std::fs::read_to_string(dir.join("report-replay.html")).unwrap();
    assert_eq!(from_replay, page, "the replay's own page shows the same figures and days");
}

#[test]
fn check_warns_when_the_templates_cannot_send_double_opt_in_confirmations() {
    let dir = std::env::temp_dir().join(format!("nudge-cli-{}-no-confirm", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["cart-reminder", "browse-reminder", "win-back"] {
        std::fs::copy(repo().join(format!("examples/templates/{name}.mjml")), dir.join(format!("{name}.mjml")))
            .unwrap();
    }
    let without = nudge(&["check", "--triggers", "examples/triggers.toml", "--templates", dir.to_str().unwrap()]);
    assert!(without.status.success(), "a warning, not an error: {}", text(&without.stderr));
    assert!(text(&without.stderr).contains("no confirm-subscription template"), "{}", text(&without.stderr));
    let with = nudge(&["check", "--triggers", "examples/triggers.toml", "--templates", "examples/templates"]);
    assert!(!text(&with.stderr).contains("confirm-subscription"), "{}", text(&with.stderr));
}

#[test]
fn replaying_a_data_directory_reads_its_rotated_event_logs_in_order_then_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let logs = ["examples/events/cart-abandoned.jsonl", "examples/events/converted.jsonl"];
    std::fs::copy(repo().join(logs[0]), dir.path().join("events-2026-10-05-0000.jsonl")).unwrap();
    std::fs::copy(repo().join(logs[1]), dir.path().join("events.jsonl")).unwrap();
    let by_dir = nudge(&["replay", "--triggers", "examples/triggers.toml", dir.path().to_str().unwrap()]);
    let by_files = nudge(&["replay", "--triggers", "examples/triggers.toml", logs[0], logs[1]]);
    assert!(by_dir.status.success(), "{}", String::from_utf8_lossy(&by_dir.stderr));
    assert!(!by_dir.stdout.is_empty());
    assert_eq!(by_dir.stdout, by_files.stdout);
    let empty = tempfile::tempdir().unwrap();
    let none = nudge(&["replay", "--triggers", "examples/triggers.toml", empty.path().to_str().unwrap()]);
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no event logs"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}

#[test]
fn an_identify_with_an_address_and_consent_is_one_step_so_a_zero_delay_welcome_sends() {
    let rules = tmp(
        "welcome.toml",
        "[[trigger]]\nid = \"welcome\"\non = \"profile_updated\"\ndelay = \"0s\"\ntemplate = \"t\"\n",
    );
    let log = tmp(
        "identify.jsonl",
        r#"{"type":"identify","messageId":"m1","userId":"u1","timestamp":"2026-10-06T14:00:00Z","traits":{"email":"ada@example.com","first_name":"Ada","email_marketing_consent":"subscribed"}}
"#,
    );
    let out = nudge(&["replay", "--triggers", rules.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let decisions: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["decision"], "send", "{}", decisions[0]);
    assert_eq!(decisions[0]["consent"], "subscribed");
}

#[test]
fn logs_given_in_any_order_are_merged_by_time() {
    let week1 = tmp(
        "week1.jsonl",
        r#"{"type":"identify","messageId":"w1-1","userId":"u1","timestamp":"2026-10-06T14:00:00Z","traits":{"email":"ada@example.com","email_marketing_consent":"subscribed"}}
{"type":"track","messageId":"w1-2","userId":"u1","timestamp":"2026-10-06T14:01:00Z","event":"Checkout Started","properties":{"checkout_id":"c1","value":30}}
"#,
    );
    let week2 = tmp(
        "week2.jsonl",
        r#"{"type":"track","messageId":"w2-1","userId":"u2","timestamp":"2026-10-13T09:00:00Z","event":"Checkout Started","properties":{"checkout_id":"c2","value":30}}
"#,
    );
    let replay = |logs: [&Path; 2]| {
        let out = nudge(&[
            "replay",
            "--triggers",
            "examples/triggers.toml",
            logs[0].to_str().unwrap(),
            logs[1].to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let (forward, backward) = (replay([&week1, &week2]), replay([&week2, &week1]));
    assert_eq!(forward, backward, "the order of the files changes nothing");
    let first: serde_json::Value = serde_json::from_str(forward.lines().next().unwrap()).unwrap();
    assert_eq!((first["decision"].as_str(), first["at"].as_str()), (Some("send"), Some("2026-10-06T14:11:00Z")));
}

#[test]
fn lines_out_of_order_within_a_file_are_reported_with_the_first_one_s_place() {
    let log = tmp(
        "late.jsonl",
        r#"{"type":"track","messageId":"l-1","userId":"u1","timestamp":"2026-10-06T14:00:00Z","event":"Product Viewed","properties":{"product_id":"p1"}}
{"type":"track","messageId":"l-2","userId":"u1","timestamp":"2026-10-06T16:00:00Z","event":"Product Viewed","properties":{"product_id":"p1"}}
{"type":"track","messageId":"l-3","userId":"u1","timestamp":"2026-10-06T14:04:00Z","event":"Product Viewed","properties":{"product_id":"p1"}}
{"type":"track","messageId":"l-4","userId":"u1","timestamp":"2026-10-06T15:00:00Z","event":"Product Viewed","properties":{"product_id":"p1"}}
"#,
    );
    let out = nudge(&["replay", "--triggers", "examples/triggers.toml", "--out", "-", log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: 2 line(s) more than 5m earlier") && stderr.contains("late.jsonl:3: 1h56m before"),
        "{stderr}"
    );
    assert!(!repo().join("-").exists(), "`--out -` is standard output, not a file named -");
    let quiet = nudge(&[
        "replay",
        "--triggers",
        "examples/triggers.toml",
        "--out-of-order-tolerance",
        "3h",
        log.to_str().unwrap(),
    ]);
    assert!(!text(&quiet.stderr).contains("warning"), "{}", text(&quiet.stderr));
}

#[test]
fn a_scheduler_lead_runs_a_short_delay_check_a_minute_after_it_was_asked_for_as_on_aws() {
    let rules = tmp(
        "short-cart.toml",
        "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"20s\"\ncancel_if = [\"order_placed\"]\ntemplate = \"t\"\n",
    );
    let log = tmp(
        "short-cart.jsonl",
        r#"{"type":"identify","messageId":"m1","userId":"u1","timestamp":"2026-10-06T14:00:00Z","traits":{"email":"ada@example.com","email_marketing_consent":"subscribed"}}
{"type":"track","messageId":"m2","userId":"u1","timestamp":"2026-10-06T14:00:00Z","event":"Checkout Started","properties":{"checkout_id":"c1","value":30}}
{"type":"track","messageId":"m3","userId":"u1","timestamp":"2026-10-06T14:00:40Z","event":"Order Completed","properties":{"checkout_id":"c1","order_id":"o1","total":30}}
"#,
    );
    let outcome = |lead: &str| {
        let out =
            nudge(&["replay", "--triggers", rules.to_str().unwrap(), "--scheduler-lead", lead, log.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let d: serde_json::Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
        (d["decision"].as_str().unwrap().to_owned(), d["reason"].as_str().map(str::to_owned))
    };
    assert_eq!(outcome("0s"), ("send".into(), None), "at 14:00:20, before the order");
    assert_eq!(outcome("1m"), ("skip".into(), Some("converted".into())), "run at 14:01:00, after it");
}

/// The CDNOW sample (fixtures/cdnow) as a log of Segment `Order Completed`
/// messages, one per purchase line, at noon UTC of its day.
fn cdnow_log() -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("fixtures/cdnow/CDNOW_sample.txt")).unwrap();
    let mut log = String::new();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let d = cols[2];
        let day = format!("{}-{}-{}T12:00:00Z", &d[..4], &d[4..6], &d[6..8]);
        let msg = serde_json::json!({"type": "track", "event": "Order Completed", "userId": format!("cdnow-{}", cols[1]),
            "messageId": format!("o-{i}"), "timestamp": day,
            "properties": {"order_id": format!("o-{i}"), "total": cols[4].parse::<f64>().unwrap()}});
        log.push_str(&msg.to_string());
        log.push('\n');
    }
    tmp("cdnow.jsonl", &log)
}

#[test]
fn segments_fit_the_published_bgnbd_parameters_on_the_cdnow_log_and_score_every_customer() {
    let log = cdnow_log();
    let out = std::env::temp_dir().join(format!("nudge-segments-{}.json", std::process::id()));
    let run = nudge(&["segments", "--until", "1997-09-30", "--out", out.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(json["time_unit"], "days");
    let p = &json["bgnbd"];
    let within = |got: f64, published: f64| (got - published).abs() / published <= 0.03;
    assert!(within(p["r"].as_f64().unwrap(), 0.243), "{p}");
    assert!(within(p["alpha"].as_f64().unwrap(), 4.414 * 7.0), "alpha in days: {p}");
    assert!(within(p["a"].as_f64().unwrap(), 0.793), "{p}");
    assert!(within(p["b"].as_f64().unwrap(), 2.426), "{p}");
    let shop = &json["shops"]["default"];
    assert_eq!(shop["customers"], 2357);
    let people = shop["people"].as_array().unwrap();
    let counted: u64 = shop["segments"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(counted, 2357, "every customer in one segment");
    // Someone who bought once and never again is "alive" for the model.
    let once = people.iter().find(|p| p["x"] == 0.0).unwrap();
    assert_eq!(once["p_alive"], 1.0);
    assert!(people.iter().all(|p| (0.0..=1.0).contains(&p["p_alive"].as_f64().unwrap())));
    // Orders after --until do not count: nobody's last order is after it.
    assert!(people.iter().all(|p| p["days_since_last"].as_i64().unwrap() >= 0));
    assert!(text(&run.stdout).contains("BG/NBD  r = 0.24"), "{}", text(&run.stdout));
}

#[test]
fn segments_refuse_logs_without_orders() {
    let log = tmp(
        "no-orders.jsonl",
        r#"{"type":"track","messageId":"m1","userId":"u1","timestamp":"2026-10-06T14:00:00Z","event":"Product Viewed","properties":{"product_id":"p1"}}
"#,
    );
    let run = nudge(&["segments", log.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(text(&run.stderr).contains("no orders"), "{}", text(&run.stderr));
}

#[test]
fn funnel_counts_steps_times_the_gaps_and_backtests_a_suggested_delay_on_a_hand_checked_log() {
    // Ten shoppers start checkout at 14:00; six buy after 2, 4, 6, 8, 12 and
    // 40.5 minutes. By hand: 60 % convert; gaps sorted 120, 240, 360, 480,
    // 720, 2430 s: median (3rd of 6) 6m, p90 (6th) 40m30s; 4 of the 6 had
    // bought within the 10-minute delay (66.7 %); the suggestion is the p90
    // rounded up to the minute, 41m.
    let buys = [120, 240, 360, 480, 720, 2430];
    let mut log = String::new();
    for i in 0..10 {
        let at = |secs: i64| (jiff::Timestamp::from_second(1_791_900_000 + secs).unwrap()).to_string();
        log += &serde_json::json!({"type": "identify", "userId": format!("u{i}"), "messageId": format!("id{i}"),
            "timestamp": at(0), "traits": {"email": format!("u{i}@example.com"), "email_marketing_consent": "subscribed"}})
            .to_string();
        log += "\n";
        log += &serde_json::json!({"type": "track", "event": "Checkout Started", "userId": format!("u{i}"),
            "messageId": format!("c{i}"), "timestamp": at(1), "properties": {"checkout_id": format!("chk{i}"), "value": 20}})
            .to_string();
        log += "\n";
        if let Some(gap) = buys.get(i) {
            log += &serde_json::json!({"type": "track", "event": "Order Completed", "userId": format!("u{i}"),
                "messageId": format!("o{i}"), "timestamp": at(1 + gap),
                "properties": {"checkout_id": format!("chk{i}"), "order_id": format!("o{i}"), "total": 20}})
            .to_string();
            log += "\n";
        }
    }
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort_by_key(|l| {
        serde_json::from_str::<serde_json::Value>(l).unwrap()["timestamp"].as_str().unwrap().to_owned()
    });
    let log = tmp("funnel.jsonl", &(lines.join("\n") + "\n"));
    let rules = tmp(
        "funnel-rules.toml",
        "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10m\"\ncancel_if = [\"order_placed\"]\ntemplate = \"t\"\n",
    );
    let json = std::env::temp_dir().join(format!("nudge-funnel-{}.json", std::process::id()));
    let html = json.with_extension("html");
    let out = nudge(&[
        "funnel",
        "--steps",
        "Checkout Started,Order Completed",
        "--triggers",
        rules.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["people_entered"], 10);
    let step = &r["steps"][1];
    assert_eq!((step["people"].as_u64(), step["conversion"].as_f64()), (Some(6), Some(0.6)));
    assert_eq!(step["timing"]["median_secs"], 360);
    assert_eq!(step["timing"]["p90_secs"], 2430);
    let s = &r["suggestions"][0];
    assert_eq!(s["trigger"], "cart");
    assert!((s["converted_within_delay"].as_f64().unwrap() - 4.0 / 6.0).abs() < 1e-9);
    assert_eq!(s["suggested_delay_secs"], 2460);
    // As written: 4 bought before the 10-minute check, 6 emails, 2 of them
    // followed by an order. At 41 minutes: all 6 buyers had bought, 4 emails.
    assert_eq!(
        s["as_written"],
        serde_json::json!({"armed": 10, "sent": 6, "skipped_converted": 4, "converted_after_send": 2})
    );
    assert_eq!(
        s["suggested"],
        serde_json::json!({"armed": 10, "sent": 4, "skipped_converted": 6, "converted_after_send": 0})
    );
    assert!(text(&out.stdout).contains("within 40m30s"), "{}", text(&out.stdout));
    // The page: people per step and the timing histogram as charts, the
    // suggestion with both backtests.
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 2, "two charts");
    for want in ["People reaching each step", "Time from Checkout Started to Order Completed", "as written", "41m"] {
        assert!(page.contains(want), "the page lacks {want}");
    }
}

#[test]
fn a_funnel_needs_two_steps() {
    let log = tmp("one-step.jsonl", "");
    let out = nudge(&["funnel", "--steps", "Order Completed", log.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("at least two steps"), "{}", text(&out.stderr));
}

#[test]
fn funnel_by_segment_counts_each_person_in_the_segments_they_were_in_when_they_entered() {
    // Two returning customers (an order a month before) and two new ones
    // start checkout; both returning customers buy, one new one does.
    let at = |secs: i64| jiff::Timestamp::from_second(1_791_900_000 + secs).unwrap().to_string();
    let track = |user: &str, id: &str, event: &str, secs: i64| {
        serde_json::json!({"type": "track", "event": event, "userId": user, "messageId": id, "timestamp": at(secs),
            "properties": {"checkout_id": format!("chk-{id}"), "order_id": format!("o-{id}"), "total": 10}})
        .to_string()
    };
    let log = [
        track("r1", "old1", "Order Completed", -30 * 86_400),
        track("r2", "old2", "Order Completed", -29 * 86_400),
        track("r1", "c1", "Checkout Started", 0),
        track("r2", "c2", "Checkout Started", 10),
        track("n1", "c3", "Checkout Started", 20),
        track("n2", "c4", "Checkout Started", 30),
        track("r1", "b1", "Order Completed", 600),
        track("r2", "b2", "Order Completed", 610),
        track("n1", "b3", "Order Completed", 620),
    ]
    .join("\n");
    let log = tmp("segments-funnel.jsonl", &(log + "\n"));
    let rules = tmp(
        "segments-funnel.toml",
        "[segments]\nreturning = { count = \"order_placed\", at_least = 1, within = \"365d\" }\n\
         [[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"1h\"\ncancel_if = [\"order_placed\"]\ntemplate = \"t\"\n",
    );
    let json = std::env::temp_dir().join(format!("nudge-funnel-seg-{}.json", std::process::id()));
    let out = nudge(&[
        "funnel",
        "--steps",
        "Checkout Started,Order Completed",
        "--triggers",
        rules.to_str().unwrap(),
        "--by-segment",
        "--json",
        json.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let people = |segment: &str| -> Vec<u64> {
        r["by_segment"][segment].as_array().unwrap().iter().map(|s| s["people"].as_u64().unwrap()).collect()
    };
    assert_eq!(people("returning"), [2, 2]);
    assert_eq!(people("(none)"), [2, 1]);
    assert_eq!(r["steps"][1]["people"], 3);
}

#[test]
fn replay_reports_a_two_by_two_test_of_delay_and_subject_with_main_effects_and_interaction() {
    let log = std::env::temp_dir().join(format!("nudge-mv-{}.jsonl", std::process::id()));
    let sim = nudge(&["simulate", "--events", "20000", "--seed", "7", "--out", log.to_str().unwrap()]);
    assert!(sim.status.success(), "{}", text(&sim.stderr));
    let rules = tmp(
        "two-by-two.toml",
        "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10m\"\ncancel_if = [\"order_placed\"]\ntemplate = \"t\"\n\
         variants = [{ id = \"sp\", factors = { delay = \"short\", subject = \"plain\" } },\n\
         { id = \"sq\", subject = \"Still deciding?\", factors = { delay = \"short\", subject = \"question\" } },\n\
         { id = \"lp\", delay = \"40m\", factors = { delay = \"long\", subject = \"plain\" } },\n\
         { id = \"lq\", delay = \"40m\", subject = \"Still deciding?\", factors = { delay = \"long\", subject = \"question\" } }]\n",
    );
    let out = nudge(&["replay", "--triggers", rules.to_str().unwrap(), "--out", "/dev/null", log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stderr);
    for want in [
        "2×2 test of cart: delay × subject",
        "main effect of delay (short vs long)",
        "main effect of subject",
        "interaction:",
    ] {
        assert!(report.contains(want), "{want} missing:\n{report}");
    }
    // Factors must be named alike by every variant.
    let bad = tmp(
        "bad-factors.toml",
        "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ntemplate = \"t\"\n\
         variants = [{ id = \"a\", factors = { delay = \"short\" } }, { id = \"b\", factors = { subject = \"plain\" } }]\n",
    );
    let out = nudge(&["check", "--triggers", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("every variant names the same factors"), "{}", text(&out.stderr));
}

/// The throughput line differs from run to run; the rest of what a replay
/// prints must not.
fn without_throughput(stderr: &[u8]) -> String {
    text(stderr).lines().filter(|l| !l.starts_with("throughput:")).collect::<Vec<_>>().join("\n")
}

#[test]
fn replay_on_several_threads_writes_the_one_thread_decisions_reports_and_summary_byte_for_byte() {
    // Two files of one simulated log (about 19 MB: several 8 MiB blocks of
    // the parallel reader), one with a blank line, a line far out of order
    // and a malformed line.
    let sim = text(&nudge(&["simulate", "--events", "30000", "--seed", "11"]).stdout);
    let mut a = String::new();
    let mut b = String::new();
    for (i, line) in sim.lines().enumerate() {
        let f = if i % 3 == 0 { &mut b } else { &mut a };
        f.push_str(line);
        f.push('\n');
        if i == 100 {
            a.push('\n');
        }
        if i == 25_000 {
            a.push_str("{\"type\":\"track\",oops}\n");
        }
    }
    let early = sim.lines().nth(20).unwrap();
    a.push_str(early);
    a.push('\n');
    let (fa, fb) = (tmp("threads-a.jsonl", &a), tmp("threads-b.jsonl", &b));
    let run = |threads: &str| {
        let out = tmp(&format!("threads-{threads}.out"), "");
        let json = tmp(&format!("threads-{threads}.json"), "");
        let o = nudge(&[
            "replay",
            "--triggers",
            "examples/triggers.toml",
            "--threads",
            threads,
            "--skip-invalid",
            "--scheduler-lead",
            "1m",
            "--out",
            out.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            fb.to_str().unwrap(),
            fa.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains(&format!("(replay, {threads} thread")), "{}", text(&o.stderr));
        (std::fs::read(out).unwrap(), std::fs::read(json).unwrap(), without_throughput(&o.stderr))
    };
    let one = run("1");
    let decisions = text(&one.0);
    assert!(decisions.lines().count() > 1_000 && decisions.contains(r#""decision":"send""#), "{}", one.2);
    assert!(one.2.contains("1 invalid line(s) skipped") && one.2.contains("line(s) more than 5m earlier"), "{}", one.2);
    for threads in ["2", "3"] {
        let many = run(threads);
        assert!(many.0 == one.0, "{threads} threads: the decision logs differ");
        assert_eq!(text(&many.1), text(&one.1), "{threads} threads: the reports differ");
        assert_eq!(many.2, one.2, "{threads} threads: the summaries differ");
    }
    // Without --skip-invalid, the bad line is named by its number.
    let bad = nudge(&["replay", "--triggers", "examples/triggers.toml", "--threads", "2", fa.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("threads-a.jsonl:16669:"), "{}", text(&bad.stderr));
}

#[test]
fn rules_read_each_person_s_p_alive_and_rfm_segment_from_the_segments_file() {
    // Ada orders on days 0, 14 and 28 (2026-01-01 on), then views a product
    // on day 70: with CDNOW's published parameters (α in days) her P(alive)
    // then is 0.5636 (x = 2, t_x = 28, T = 70; by hand from eq. 11).
    let mut log = String::from(
        r#"{"type":"identify","messageId":"i1","userId":"ada","timestamp":"2026-01-01T09:00:00Z","traits":{"email":"ada@example.com","email_marketing_consent":"subscribed"}}
"#,
    );
    for (i, day) in ["01", "15", "29"].iter().enumerate() {
        log.push_str(&format!(
            r#"{{"type":"track","event":"Order Completed","messageId":"o{i}","userId":"ada","timestamp":"2026-01-{day}T10:00:00Z","properties":{{"order_id":"o{i}","total":30}}}}
"#
        ));
    }
    log.push_str(r#"{"type":"track","event":"Product Viewed","messageId":"v1","userId":"ada","timestamp":"2026-03-12T10:00:00Z","properties":{"product_id":"p1"}}
"#);
    let log = tmp("model-ada.jsonl", &log);
    let segments = tmp(
        "model-segments.json",
        r#"{"shops":{"default":{"model":{"until_day":20454,"customers":2357,
            "bgnbd":{"r":0.243,"alpha":30.898,"a":0.793,"b":2.426},
            "rfm":{"recency":[-200,-120,-60,-20],"frequency":[1,1,2,4],"monetary":[20,40,80,160]}}}}}"#,
    );
    let rules = |cond: &str| {
        tmp(
            "model-rules.toml",
            &format!(
                "[[trigger]]\nid = \"come-back\"\non = \"product_viewed\"\ndelay = \"1h\"\nif = {cond}\ntemplate = \"t\"\n"
            ),
        )
    };
    let decide = |cond: &str, with_model: bool| {
        let r = rules(cond);
        let mut args = vec!["replay", "--triggers", r.to_str().unwrap()];
        if with_model {
            args.extend(["--segments", segments.to_str().unwrap()]);
        }
        args.push(log.to_str().unwrap());
        let out = nudge(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let d: serde_json::Value = serde_json::from_str(text(&out.stdout).lines().last().unwrap()).unwrap();
        (format!("{} {}", d["decision"].as_str().unwrap(), d["reason"].as_str().unwrap_or("")), text(&out.stderr))
    };
    assert_eq!(decide("{ p_alive = { below = 0.6 } }", true).0, "send ");
    assert_eq!(decide("{ p_alive = { below = 0.5 } }", true).0, "skip condition_lapsed");
    assert_eq!(decide("{ p_alive = { above = 0.5 } }", true).0, "send ");
    // 42 days since the last order (R 4 by these cuts), 3 orders (F 4):
    // a champion.
    assert_eq!(decide(r#"{ segment = "rfm:champions" }"#, true).0, "send ");
    assert_eq!(decide(r#"{ segment = "rfm:at_risk" }"#, true).0, "skip condition_lapsed");
    // Without the model the condition cannot hold, and the replay says why.
    let (d, stderr) = decide("{ p_alive = { below = 0.6 } }", false);
    assert_eq!(d, "skip condition_lapsed");
    assert!(stderr.contains("no --segments file was given"), "{stderr}");
    let bad = tmp("model-bad.json", r#"{"people":[]}"#);
    let out = nudge(&[
        "replay",
        "--triggers",
        rules("{ p_alive = { below = 0.6 } }").to_str().unwrap(),
        "--segments",
        bad.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not a `nudge segments --out` file"), "{}", text(&out.stderr));
}

#[test]
fn segments_write_each_shop_s_model_whose_cut_points_give_each_person_s_scores() {
    let log = cdnow_log();
    let out = tmp("cdnow-model.json", "");
    let fit = nudge(&["segments", "--until", "1997-09-30", "--out", out.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(fit.status.success(), "{}", text(&fit.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let model = &json["shops"]["default"]["model"];
    assert_eq!(model["bgnbd"], json["bgnbd"]);
    assert_eq!(model["customers"], 2357);
    let cuts = model["rfm"]["frequency"].as_array().unwrap();
    assert_eq!(cuts.len(), 4);
    // Every person's segment in the file is what the cut points give them.
    let f = |v: f64| 1 + cuts.iter().filter(|c| v > c.as_f64().unwrap()).count() as u64;
    for p in json["shops"]["default"]["people"].as_array().unwrap().iter().take(300) {
        assert_eq!(p["frequency"].as_u64().unwrap(), f(p["orders"].as_f64().unwrap()), "{p}");
    }
}
