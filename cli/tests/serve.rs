//! `nudge serve` end to end: a real process on a random port, signed
//! deliveries over real HTTP, a kill in the middle of the delay.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nudge_sources::signature::sign_base64_sha256;

const SECRET: &str = "test-shopify-secret";
const SHOP: &str = "acme.myshopify.com";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn setup(name: &str) -> (PathBuf, PathBuf) {
    setup_with(name, "")
}

/// As `setup`, with more lines for nudge.toml.
fn setup_with(name: &str, extra: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("nudge-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rules = "[[trigger]]\nid = \"cart-abandoned\"\non = \"checkout_started\"\ndelay = \"4s\"\ncancel_if = [\"order_placed\"]\ntemplate = \"cart-reminder\"\n";
    std::fs::write(dir.join("triggers.toml"), rules).unwrap();
    let config = format!(
        "triggers = \"triggers.toml\"\ntemplates = \"{}\"\nfrom = \"Acme <shop@example.com>\"\n{extra}",
        repo().join("examples/templates").display()
    );
    std::fs::write(dir.join("nudge.toml"), config).unwrap();
    (dir.join("nudge.toml"), dir.join("data"))
}

struct Server {
    child: Child,
    /// The public listener: webhooks, tracking, links.
    addr: String,
    /// The admin listener: the dashboard.
    admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path, data: &Path) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    cmd.stderr(Stdio::null());
    start_in(cmd, config, data)
}

/// `nudge serve` run by `cmd` (the binary itself, or a shell that sets
/// limits and then execs it), its standard error where `cmd` says.
fn start_in(mut cmd: Command, config: &Path, data: &Path) -> Server {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .env("NUDGE_SHOPIFY_SECRET", SECRET)
        .env("NUDGE_SEGMENT_WRITE_KEY", "wk")
        .env("NUDGE_SEGMENT_SERVER_KEY", "sk")
        .env("NUDGE_SHOP", SHOP)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut address = || {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).expect(&line).to_owned()
    };
    let (addr, admin) = (address(), address());
    Server { child, addr, admin }
}

/// A plain HTTP/1.1 POST over a real socket; returns the status code.
fn post(addr: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    post_reply(addr, path, headers, body).0
}

/// As [`post`], with the whole response.
fn post_reply(addr: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    (resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), resp)
}

fn shopify(addr: &str, topic: &str, event_id: &str, body: &[u8]) -> u16 {
    post(
        addr,
        "/webhooks/shopify",
        &[
            ("Content-Type", "application/json".into()),
            ("X-Shopify-Topic", topic.into()),
            ("X-Shopify-Shop-Domain", SHOP.into()),
            ("X-Shopify-Event-Id", event_id.into()),
            ("X-Shopify-Hmac-Sha256", sign_base64_sha256(body, SECRET.as_bytes())),
        ],
        body,
    )
}

fn consent_then_checkout(addr: &str) {
    let identify = br#"{"batch":[{"type":"identify","userId":"u1","messageId":"id-1","traits":{"email":"example@email.com","first_name":"Ada","email_marketing_consent":"subscribed"}}],"writeKey":"sk"}"#;
    assert_eq!(post(addr, "/v1/batch", &[("Content-Type", "application/json".into())], identify), 200);
    let checkout = std::fs::read(repo().join("fixtures/shopify/checkouts__create.json")).unwrap();
    for _ in 0..3 {
        assert_eq!(shopify(addr, "checkouts/create", "evt-checkout-1", &checkout), 200, "delivered three times");
    }
}

fn emails(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("outbox"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(data: &Path, n: usize, secs: u64) -> Vec<String> {
    poll(secs, || Some(emails(data)).filter(|e| e.len() >= n)).unwrap_or_else(|| emails(data))
}

/// `f`'s first `Some` within `secs` seconds, polling every 200 ms.
fn poll<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_abandoned_checkout_gets_one_eml_reminder_even_across_a_crash_mid_delay() {
    let (config, data) = setup("crash");
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    drop(server); // killed (SIGKILL) during the 4 s delay
    assert!(emails(&data).is_empty(), "nothing sent before the delay");
    let server = start(&config, &data);
    let sent = wait_for(&data, 1, 15);
    std::thread::sleep(Duration::from_secs(2)); // would a second one come?
    let sent_after = emails(&data);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent_after.len(), 1, "exactly one reminder");
    let eml = &sent_after[0];
    for header in [
        "List-Unsubscribe: <http://",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "To: example@email.com",
        "multipart/alternative",
    ] {
        assert!(eml.contains(header), "{header} missing in:\n{eml}");
    }
    assert!(eml.contains("text/plain") && eml.contains("text/html"));
    // And it parses back as a real message with both parts.
    let parsed = mail_parser::MessageParser::default().parse(eml.as_bytes()).expect("RFC 5322 message");
    assert!(parsed.body_text(0).is_some_and(|t| t.contains("Return to my cart")), "text part");
    assert!(parsed.body_html(0).is_some_and(|h| h.contains("<html")), "HTML part");
    assert!(parsed.header_raw("List-Unsubscribe").is_some_and(|v| v.contains("/unsubscribe?")));
    assert_eq!(parsed.header_raw("List-Unsubscribe-Post").map(str::trim), Some("List-Unsubscribe=One-Click"));
    assert!(parsed.subject().is_some_and(|s| !s.is_empty()));
    let decisions = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap();
    assert_eq!(decisions.lines().filter(|l| l.contains("\"decision\":\"send\"")).count(), 1, "{decisions}");
    assert!(!decisions.contains("example@email.com"), "no address in the decision log");
    dashboard_shows_the_scenario(&server.admin);
    drop(server);
}

/// The dashboard in headless Chromium: the DOM it renders shows the
/// profile, the decision with its reason and the email preview; a
/// screenshot is kept in test-artifacts/.
#[test]
fn a_product_webhook_is_kept_across_a_restart_and_shows_in_the_email() {
    let (config, data) = setup("product");
    let server = start(&config, &data);
    let mut product: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/products__update.json")).unwrap()).unwrap();
    product["id"] = 632910392.into(); // the product in the sample checkout
    product["variants"] = serde_json::json!([{"price": "199.00", "inventory_quantity": 2}]);
    assert_eq!(shopify(&server.addr, "products/update", "evt-product-1", product.to_string().as_bytes()), 200);
    drop(server);
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    let sent = wait_for(&data, 1, 15);
    assert_eq!(sent.len(), 1);
    let parsed = mail_parser::MessageParser::default().parse(sent[0].as_bytes()).expect("RFC 5322 message");
    let text = parsed.body_text(0).expect("text part");
    assert!(text.contains("Only 2 left"), "the stock the webhook reported before the restart:\n{text}");
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()) {
            out.push(path);
        }
    }
    out
}

/// The checkout fixture's customer (its id and address).
const CUSTOMER: &str = r#"{"id": 603851970716743426, "email": "example@email.com"}"#;

#[test]
fn an_erase_request_leaves_no_trace_of_the_person_in_the_data_directory() {
    let (config, data) = setup("erase");
    let server = start(&config, &data);
    // Someone else, who must keep everything.
    let other = br#"{"batch":[{"type":"identify","userId":"u2","messageId":"id-2","traits":{"email":"other@example.com"}}],"writeKey":"wk"}"#;
    assert_eq!(post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], other), 200);
    consent_then_checkout(&server.addr);
    assert_eq!(wait_for(&data, 1, 15).len(), 1, "the reminder was sent");
    let request = format!(
        r#"{{"shop_id": 1, "shop_domain": "{SHOP}", "customer": {CUSTOMER}, "orders_requested": [], "data_request": {{"id": 9999}}}}"#
    );
    assert_eq!(shopify(&server.addr, "customers/data_request", "evt-dr", request.as_bytes()), 200);
    assert!(!files_containing(&data.join("exports"), "example@email.com").is_empty(), "the export was written");
    let before = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap();

    let redact =
        format!(r#"{{"shop_id": 1, "shop_domain": "{SHOP}", "customer": {CUSTOMER}, "orders_to_redact": []}}"#);
    assert_eq!(shopify(&server.addr, "customers/redact", "evt-redact", redact.as_bytes()), 200);
    for needle in ["example@email.com", "603851970716743426", "Ada"] {
        assert_eq!(files_containing(&data, needle), Vec::<PathBuf>::new(), "{needle} is still held");
    }
    assert!(emails(&data).is_empty(), "the sent message is gone");
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap();
    assert!(events.contains("other@example.com"), "the other person's lines stay");
    assert!(std::fs::read_to_string(data.join("decisions.jsonl")).unwrap().starts_with(&before), "decisions stay");
    // The server goes on working, and the database is whole.
    drop(server);
    let server = start(&config, &data);
    assert_eq!(post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], other), 200);
}

#[test]
fn profiles_idle_past_the_retention_are_purged_with_their_files() {
    let (config, data) = setup_with("retention", "retention = \"2s\"\n");
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    assert_eq!(wait_for(&data, 1, 15).len(), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !files_containing(&data, "example@email.com").is_empty() {
        assert!(Instant::now() < deadline, "still held: {:?}", files_containing(&data, "example@email.com"));
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(emails(&data).is_empty());
    drop(server);
}

/// aiosmtpd (a real SMTP server, installed by scripts/ensure_smtp_sink.sh)
/// keeping what it accepts in `maildir`, after answering the first `defer`
/// messages `451 Try again later`; killed on drop.
struct SmtpSink {
    child: Child,
    port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_sink(maildir: &Path, defer: &str) -> SmtpSink {
    let mut child = Command::new("python3")
        .arg(repo().join("scripts/smtp_sink.py"))
        .arg(maildir)
        .arg(defer)
        .env("PYTHONPATH", repo().join(".pytools"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let Some(port) = line.trim().strip_prefix("port ").and_then(|p| p.parse().ok()) else {
        let _ = child.kill();
        panic!("the SMTP sink did not start (run scripts/ensure_smtp_sink.sh): {line:?}");
    };
    SmtpSink { child, port }
}

#[test]
fn with_an_smtp_server_configured_each_message_is_also_sent_there() {
    relays_one_message("smtp", 0);
}

#[test]
fn a_relay_that_answers_try_again_later_gets_the_message_on_a_later_attempt() {
    // 451 twice (a relay's rate limit): retried, not decided `mail_failed`.
    relays_one_message("smtp-451", 2);
}

#[test]
fn a_relay_that_takes_the_message_and_hangs_up_without_answering_gets_it_once_and_it_is_unconfirmed() {
    let maildir = std::env::temp_dir().join(format!("nudge-serve-{}-smtp-drop-maildir", std::process::id()));
    let _ = std::fs::remove_dir_all(&maildir);
    let sink = smtp_sink(&maildir, "drop");
    let (config, data) = setup_with("smtp-drop", &format!("smtp_url = \"smtp://127.0.0.1:{}\"\n", sink.port));
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    let decided = poll(20, || {
        let log = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap_or_default();
        log.lines().find(|l| l.contains(r#""reason":"unconfirmed""#)).map(str::to_owned)
    });
    assert!(decided.is_some(), "decided unconfirmed");
    std::thread::sleep(Duration::from_secs(2)); // would it be sent again?
    let kept = std::fs::read_dir(maildir.join("new")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(kept, 1, "the relay has it once");
    assert!(emails(&data).is_empty(), "no .eml: the send is not shown as made");
    let log = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap();
    assert!(!log.contains(r#""decision":"send""#), "{log}");
    drop(server);
}

fn relays_one_message(name: &str, defer: u32) {
    let maildir = std::env::temp_dir().join(format!("nudge-serve-{}-{name}-maildir", std::process::id()));
    let _ = std::fs::remove_dir_all(&maildir);
    let sink = smtp_sink(&maildir, &defer.to_string());
    let (config, data) = setup_with(name, &format!("smtp_url = \"smtp://127.0.0.1:{}\"\n", sink.port));
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    let written = wait_for(&data, 1, 15);
    assert_eq!(written.len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let received = loop {
        let got: Vec<_> = std::fs::read_dir(maildir.join("new")).map(|d| d.flatten().collect()).unwrap_or_default();
        if !got.is_empty() || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(received.len(), 1, "one message over SMTP");
    let relayed = std::fs::read_to_string(received[0].path()).unwrap();
    assert!(relayed.contains("X-RcptTo: example@email.com"), "envelope recipient:\n{relayed}");
    assert!(relayed.contains("X-MailFrom: shop@example.com"), "envelope sender");
    // (the Maildir stores lines with LF where SMTP carried CRLF)
    let parsed = |raw: &str| {
        let raw = raw.replace("\r\n", "\n");
        let m = mail_parser::MessageParser::default().parse(raw.as_bytes()).expect("RFC 5322 message");
        (
            m.message_id().map(str::to_owned),
            m.body_html(0).map(|h| h.into_owned()),
            m.header_raw("List-Unsubscribe").map(str::to_owned),
        )
    };
    let (relayed, written) = (parsed(&relayed), parsed(&written[0]));
    assert!(relayed.0.is_some() && relayed.1.is_some() && relayed.2.is_some());
    assert_eq!(relayed, written, "the same message the outbox holds");
    let decisions = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap();
    assert_eq!(decisions.lines().filter(|l| l.contains("\"decision\":\"send\"")).count(), 1, "{decisions}");
    assert!(!decisions.contains("mail_failed"), "{decisions}");
    drop(server);
}

fn dashboard_shows_the_scenario(addr: &str) {
    let profile_dir = std::env::temp_dir().join(format!("nudge-chromium-{}", std::process::id()));
    let chromium = |extra: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1200,1600",
            ])
            .arg(format!("--user-data-dir={}", profile_dir.display()))
            .args(extra)
            .arg(format!("http://{addr}/"))
            .output()
            .expect("chromium (installed by make test via scripts/ensure_chromium.sh)")
    };
    let dom = String::from_utf8_lossy(&chromium(&["--dump-dom"]).stdout).into_owned();
    assert!(dom.contains("example@email.com"), "profile listed: {dom}");
    assert!(dom.contains("cart-abandoned") && dom.contains("class=\"send\""), "decision listed");
    assert!(dom.contains("<iframe src=\"/outbox/"), "email preview shown");
    let artifacts = repo().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    chromium(&[&format!("--screenshot={}", shot.display()), "--hide-scrollbars"]);
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "screenshot kept");
}

#[test]
fn a_purchase_inside_the_delay_sends_nothing_and_logs_converted() {
    let (config, data) = setup("converted");
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    let mut order: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/orders__create.json")).unwrap()).unwrap();
    order["checkout_token"] = "123123123".into();
    assert_eq!(shopify(&server.addr, "orders/create", "evt-order-1", order.to_string().as_bytes()), 200);
    std::thread::sleep(Duration::from_secs(6));
    assert!(emails(&data).is_empty());
    let decisions = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap();
    assert!(decisions.contains("\"reason\":\"converted\""), "{decisions}");
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap();
    assert!(events.lines().count() >= 4, "accepted events are logged for replay");
}

#[test]
fn bad_deliveries_over_real_http_get_4xx() {
    let (config, data) = setup("bad");
    let server = start(&config, &data);
    let body = br#"{"token":"x"}"#;
    let wrong = post(
        &server.addr,
        "/webhooks/shopify",
        &[
            ("X-Shopify-Topic", "checkouts/create".into()),
            ("X-Shopify-Shop-Domain", SHOP.into()),
            ("X-Shopify-Event-Id", "e".into()),
            ("X-Shopify-Hmac-Sha256", sign_base64_sha256(body, b"wrong")),
        ],
        body,
    );
    assert_eq!(wrong, 401);
    assert_eq!(shopify(&server.addr, "checkouts/create", "e2", b"{not json"), 400);
    assert_eq!(post(&server.addr, "/v1/track", &[("Authorization", "Basic bm9wZTo=".into())], b"{}"), 401);
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap_or_default();
    assert!(events.is_empty(), "nothing stored");
}

/// Sends the head of a request and `sent` bytes of a `declared`-byte body,
/// then either half-closes (the body ends early) or hangs up; the status
/// answered, if any.
fn partial_post(addr: &str, declared: usize, sent: &[u8], hang_up: bool) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAuthorization: Basic d2s6\r\nContent-Length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(sent).unwrap();
    if hang_up {
        return None;
    }
    // The server may have answered and closed already (it stops waiting for
    // a body that does not come): then the answer is in the socket.
    let _ = s.shutdown(std::net::Shutdown::Write);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

fn track(user: &str, message: &str) -> String {
    format!(
        r#"{{"type":"track","userId":"{user}","messageId":"{message}","event":"Product Viewed","properties":{{"product_id":"p1"}},"timestamp":"2026-11-01T10:00:00Z"}}"#
    )
}

fn post_track(addr: &str, user: &str, message: &str) -> u16 {
    post(
        addr,
        "/v1/track",
        &[("Content-Type", "application/json".into()), ("Authorization", "Basic d2s6".into())],
        track(user, message).as_bytes(),
    )
}

#[test]
fn a_body_cut_off_or_a_client_hanging_up_stores_nothing_and_the_server_carries_on() {
    let (config, data) = setup("cut");
    let server = start(&config, &data);
    let whole = track("u1", "m1");
    let half = &whole.as_bytes()[..whole.len() / 2];
    assert_eq!(partial_post(&server.addr, whole.len(), half, false), Some(400), "ends before its Content-Length");
    assert_eq!(partial_post(&server.addr, whole.len(), half, true), None);
    assert_eq!(partial_post(&server.addr, 64 * 1024 * 1024, b"{", false), Some(413), "declares more than 4 MB");
    std::thread::sleep(Duration::from_millis(200));
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap_or_default();
    assert!(events.is_empty(), "nothing stored: {events}");
    assert_eq!(post_track(&server.addr, "u1", "m1"), 200, "and the next whole delivery is served");
    assert_eq!(std::fs::read_to_string(data.join("events.jsonl")).unwrap().lines().count(), 1);
}

#[test]
fn serve_logs_each_delivery_and_decision_with_ids_and_never_an_address_or_a_name() {
    let (config, data) = setup("logs");
    let log = data.parent().unwrap().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    cmd.stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    let server = start_in(cmd, &config, &data);
    let identify = br#"{"batch":[{"type":"identify","userId":"u1","messageId":"id-1","traits":{"email":"grace.hopper@example.com","first_name":"Gracelyn","email_marketing_consent":"subscribed"}},
        {"type":"track","userId":"u1","messageId":"c-1","event":"Checkout Started","properties":{"checkout_id":"chk-1","value":20}}],"writeKey":"sk"}"#;
    assert_eq!(post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], identify), 200);
    assert_eq!(post(&server.addr, "/v1/track", &[("Authorization", "Basic bm9wZTo=".into())], b"{}"), 401);
    // The cart reminder (4 s) decides.
    let decided = poll(20, || std::fs::read_to_string(&log).ok().filter(|l| l.contains("nudge::decision")));
    drop(server);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(decided.is_some(), "no decision logged: {logged}");
    let delivery = logged.lines().find(|l| l.contains("nudge::delivery") && l.contains("status=200")).expect(&logged);
    assert!(delivery.contains(r#"source="tracking""#) && delivery.contains("events=3"), "{delivery}");
    let profile = delivery.split("profile=\"").nth(1).and_then(|p| p.split('"').next()).unwrap();
    assert!(profile.starts_with('p'), "{delivery}");
    assert!(logged.lines().any(|l| l.contains("nudge::delivery") && l.contains("status=401")), "{logged}");
    let decision = logged.lines().find(|l| l.contains("nudge::decision")).unwrap();
    assert!(
        decision.contains(profile) && decision.contains("cart-abandoned") && decision.contains("send"),
        "{decision}"
    );
    for secret in ["grace.hopper", "example.com", "Gracelyn"] {
        assert!(!logged.contains(secret), "{secret} in the log: {logged}");
    }
    // The email's file says whose (the profile id), when and which trigger.
    let names: Vec<String> = std::fs::read_dir(data.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let parts: Vec<&str> = names[0].split('.').collect();
    assert_eq!((parts[0], parts[2]), (profile, "cart-abandoned"), "{names:?}");
    assert!(parts[1].len() == 16 && parts[1].ends_with('Z'), "a UTC time: {names:?}");
    assert!(!names[0].contains('@'));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

#[test]
fn a_gzipped_batch_is_stored_and_a_zip_bomb_is_413_with_segment_s_error_shape() {
    let (config, data) = setup("gzip");
    let server = start(&config, &data);
    let headers = [
        ("Content-Type", "application/json".to_owned()),
        ("Authorization", "Basic d2s6".to_owned()),
        ("Content-Encoding", "gzip".to_owned()),
    ];
    let batch = format!(r#"{{"batch":[{}]}}"#, track("u1", "m1"));
    assert_eq!(post(&server.addr, "/v1/batch", &headers, &gzip(batch.as_bytes())), 200);
    // 40 MB of spaces inside a batch compress to about 40 KB.
    let mut bomb = br#"{"batch":["#.to_vec();
    bomb.resize(40 << 20, b' ');
    bomb.extend_from_slice(b"]}");
    let (status, reply) = post_reply(&server.addr, "/v1/batch", &headers, &gzip(&bomb));
    assert_eq!(status, 413, "{reply}");
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let reply: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(reply["code"], "payload_too_large");
    assert!(reply["message"].as_str().unwrap().contains("512000"), "{reply}");
    let (status, _) = post_reply(&server.addr, "/v1/batch", &headers, batch.as_bytes());
    assert_eq!(status, 400, "a body that says gzip and is not");
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1, "only the good batch: {events}");
}

#[test]
fn fifty_concurrent_deliveries_to_one_profile_over_http_lose_no_update() {
    let (config, data) = setup("fifty");
    let server = start(&config, &data);
    let addr = server.addr.clone();
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || post_track(&addr, "same-person", &format!("m{i}")))
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    drop(server);
    let store = nudge_local::SqliteStore::open(&data.join("nudge.db")).unwrap();
    let profiles = store.profiles(10).unwrap();
    assert_eq!(profiles.len(), 1);
    let views = profiles[0].activity.iter().find(|a| a.kind == "product_viewed").expect("views counted");
    assert_eq!(views.total, 50, "every delivery counted exactly once");
    assert_eq!(profiles[0].version, 50, "one committed write per delivery");
}

/// A full disk, stood in for by a file-size limit (RLIMIT_FSIZE, SIGXFSZ
/// ignored): the kernel refuses the server's writes past 256 KB exactly
/// where a full disk would (EFBIG instead of ENOSPC). Mounting a small
/// filesystem needs privileges the test machines may not grant.
#[test]
fn when_the_disk_fills_deliveries_fail_loudly_and_nothing_acknowledged_is_lost() {
    let (config, data) = setup("full");
    drop(start(&config, &data)); // creates the database while there is room
    let mut limited = Command::new("sh");
    limited.args(["-c", "trap '' XFSZ; ulimit -f 256; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_nudge")]);
    limited.stderr(Stdio::null());
    let server = start_in(limited, &config, &data);
    let (mut acknowledged, mut failed) = (0, 0);
    let padding = "x".repeat(2_000);
    for i in 0..2_000 {
        let body = track(&format!("user-{i}-{padding}"), &format!("m{i}"));
        let status = post(
            &server.addr,
            "/v1/track",
            &[("Content-Type", "application/json".into()), ("Authorization", "Basic d2s6".into())],
            body.as_bytes(),
        );
        match status {
            200 => acknowledged += 1,
            500 => failed += 1,
            other => panic!("delivery {i}: unexpected status {other}"),
        }
        if failed >= 5 {
            break;
        }
    }
    assert!(failed >= 5, "the limit was never reached ({acknowledged} acknowledged)");
    assert!(acknowledged > 0);
    drop(server);
    // Room again: the database opens (quick_check passes) and holds every
    // acknowledged delivery.
    let server = start(&config, &data);
    assert_eq!(post_track(&server.addr, "after", "m-after"), 200);
    drop(server);
    let store = nudge_local::SqliteStore::open(&data.join("nudge.db")).unwrap();
    store.quick_check().unwrap();
    assert!(store.profile_count().unwrap() > acknowledged, "every acknowledged delivery (and the one after) was kept");
    // The event log has no half-written line: every line parses.
    let log = std::fs::read_to_string(data.join("events.jsonl")).unwrap();
    for (n, line) in log.lines().enumerate() {
        assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "events.jsonl:{}: torn line", n + 1);
    }
}

// The doors of `nudge serve`, tried as an attacker would, over real sockets.

/// A GET over a real socket: status and body.
fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, resp)
}

#[test]
fn the_dashboard_and_sent_emails_are_not_served_on_the_public_listener() {
    let (config, data) = setup("admin-split");
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    let sent = wait_for(&data, 1, 15);
    assert_eq!(sent.len(), 1);
    let name = std::fs::read_dir(data.join("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".html"))
        .expect("an HTML preview");
    for path in ["/", &format!("/outbox/{name}"), "/?q=example"] {
        let (status, body) = get(&server.addr, path, &[]);
        assert_eq!(status, 404, "{path} on the public listener");
        assert!(!body.contains("example@email.com"), "{path} leaked an address");
    }
    let (status, body) = get(&server.admin, "/", &[]);
    assert_eq!(status, 200);
    assert!(body.contains("example@email.com"), "the admin listener shows the dashboard");
    assert_eq!(get(&server.admin, &format!("/outbox/{name}"), &[]).0, 200);
}

fn serve_command(envs: &[(&str, &str)], args: &[&str], config: &Path, data: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("serve")
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .env("NUDGE_SHOPIFY_SECRET", SECRET)
        .env("NUDGE_SHOP", SHOP)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_dashboard_off_loopback_without_a_token_refuses_to_start() {
    let (config, data) = setup("admin-exposed");
    let out = serve_command(&[], &["--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0"], &config, &data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NUDGE_ADMIN_TOKEN"), "{err}");
}

#[test]
fn with_an_admin_token_the_dashboard_answers_only_to_it() {
    let (config, data) = setup("admin-token");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    cmd.env("NUDGE_ADMIN_TOKEN", "s3cret-admin").stderr(Stdio::null());
    let server = start_in(cmd, &config, &data);
    assert_eq!(get(&server.admin, "/", &[]).0, 401);
    assert_eq!(get(&server.admin, "/", &[("Authorization", "Bearer wrong")]).0, 401);
    assert_eq!(get(&server.admin, "/", &[("Authorization", "Bearer s3cret-admin")]).0, 200);
    // What a browser's login prompt sends: user `admin`, the token as password.
    assert_eq!(get(&server.admin, "/", &[("Authorization", "Basic YWRtaW46czNjcmV0LWFkbWlu")]).0, 200);
    // Mail feedback is an admin door too.
    assert_eq!(post(&server.admin, "/feedback", &[], &ses_event("Complaint", "<x@shop.example>")), 401);
}

/// An SES event about the message whose Message-ID header is `message_id`.
fn ses_event(kind: &str, message_id: &str) -> Vec<u8> {
    let now = jiff::Timestamp::now().to_string();
    serde_json::json!({
        "eventType": kind,
        "mail": { "messageId": "0100019abc-ses-assigned", "timestamp": now,
                  "commonHeaders": { "messageId": message_id } },
        "bounce": { "bounceType": "Permanent", "timestamp": now },
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_hard_bounce_posted_to_the_admin_listener_suppresses_the_address_it_was_sent_to() {
    let (config, data) = setup("feedback");
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    let sent = wait_for(&data, 1, 15);
    assert_eq!(sent.len(), 1);
    let message_id =
        sent[0].lines().find_map(|l| l.strip_prefix("Message-ID: ")).expect("a Message-ID header").trim().to_owned();
    let bounce = ses_event("Bounce", &message_id);
    assert_eq!(post(&server.addr, "/feedback", &[], &bounce), 404, "not a public door");
    assert_eq!(post(&server.admin, "/feedback", &[], b"{\"eventType\": 1}"), 400);
    let (status, reply) = post_reply(&server.admin, "/feedback", &[], &ses_event("Bounce", "<unknown@x>"));
    assert_eq!(status, 200);
    assert!(reply.contains(r#""joined":false"#), "{reply}");
    let (status, reply) = post_reply(&server.admin, "/feedback", &[], &bounce);
    assert_eq!(status, 200);
    assert!(reply.contains(r#""joined":true"#) && reply.contains(r#""changed":true"#), "{reply}");
    // The next abandoned checkout is decided, and not sent: suppressed.
    let mut checkout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/checkouts__create.json")).unwrap())
            .unwrap();
    checkout["token"] = "a-second-checkout".into();
    assert_eq!(shopify(&server.addr, "checkouts/create", "evt-2", checkout.to_string().as_bytes()), 200);
    let decided = poll(20, || {
        let log = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap_or_default();
        log.lines().find(|l| l.contains(r#""reason":"suppressed""#)).map(str::to_owned)
    });
    assert!(decided.is_some(), "no suppressed decision");
    assert_eq!(emails(&data).len(), 1, "no second email");
    // The dashboard counts the send and the bounce for the trigger variant.
    let (_, page) = get(&server.admin, "/", &[]);
    let row = page.lines().find(|l| l.contains("class=\"counters\"")).expect("a counters row");
    let cells: Vec<&str> = row.split("<td class=\"n\">").skip(1).map(|c| c.split('<').next().unwrap()).collect();
    assert!(row.contains("cart-abandoned"), "{row}");
    assert_eq!(cells, ["1", "0", "0", "0", "1", "0"], "sent, delivered, opened, clicked, bounced, complained");
}

#[test]
fn the_dashboard_shows_markup_a_shopper_typed_as_text() {
    let (config, data) = setup("dashboard-escape");
    let server = start(&config, &data);
    let identify = br#"{"batch":[{"type":"identify","userId":"u1","messageId":"id-1","traits":{"email":"x@example.com","first_name":"<script>alert(1)</script><img src=x onerror=alert(2)>"}}],"writeKey":"sk"}"#;
    assert_eq!(post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], identify), 200);
    let (status, page) = get(&server.admin, "/?q=%22%3E%3Cscript%3E", &[]);
    assert_eq!(status, 200);
    assert!(!page.contains("<script>") && !page.contains("<img"), "{page}");
    assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;\""), "the search term is escaped too");
    let (_, page) = get(&server.admin, "/", &[]);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{page}");
}

#[test]
fn a_malformed_keys_file_stops_the_start_and_is_never_regenerated() {
    let (config, data) = setup("bad-keys");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("keys"), [7u8; 40]).unwrap();
    let out = serve_command(&[], &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"], &config, &data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keys is 40 bytes"), "{err}");
    assert_eq!(std::fs::read(data.join("keys")).unwrap(), vec![7u8; 40], "left as it was");
}

#[test]
fn the_keys_file_is_private_and_links_sent_before_a_rotation_still_unsubscribe() {
    use std::os::unix::fs::PermissionsExt;
    let (config, data) = setup("rotate");
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    let sent = wait_for(&data, 1, 15);
    assert_eq!(sent.len(), 1);
    let mode = std::fs::metadata(data.join("keys")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "DATA/keys is readable by its owner only");
    let parsed = mail_parser::MessageParser::default().parse(sent[0].as_bytes()).unwrap();
    let link = parsed.header_raw("List-Unsubscribe").unwrap().trim().trim_matches(['<', '>']).to_owned();
    let query = link.split_once('?').unwrap().1.to_owned();
    drop(server);

    let rotate =
        Command::new(env!("CARGO_BIN_EXE_nudge")).args(["keys", "rotate", "--data"]).arg(&data).output().unwrap();
    assert!(rotate.status.success(), "{}", String::from_utf8_lossy(&rotate.stderr));
    let server = start(&config, &data);
    let tampered = query.replacen("t=", "t=A", 1);
    let one_click = |q: &str| {
        post(
            &server.addr,
            &format!("/unsubscribe?{q}"),
            &[("Content-Type", "application/x-www-form-urlencoded".into())],
            b"List-Unsubscribe=One-Click",
        )
    };
    assert_eq!(one_click(&tampered), 401, "a tampered link changes nothing");
    assert_eq!(one_click(&query), 200, "the link sent before the rotation still works");
    // The next checkout is decided no_consent.
    let checkout = std::fs::read(repo().join("fixtures/shopify/checkouts__update.json")).unwrap();
    let mut later: serde_json::Value = serde_json::from_slice(&checkout).unwrap();
    later["updated_at"] = "2022-01-02T00:00:00Z".into();
    assert_eq!(shopify(&server.addr, "checkouts/update", "evt-later", later.to_string().as_bytes()), 200);
    let read = || std::fs::read_to_string(data.join("decisions.jsonl")).unwrap_or_default();
    let decisions = poll(15, || Some(read()).filter(|d| d.contains("no_consent"))).unwrap_or_else(read);
    assert!(decisions.contains("no_consent"), "no second decision: {decisions}");
    assert!(decisions.contains("\"consent_source\":\"unsubscribe_link\""), "{decisions}");
    assert_eq!(emails(&data).len(), 1, "no second email");
}

#[test]
fn a_signed_body_re_sent_with_fresh_event_ids_is_applied_once() {
    let (config, data) = setup("fresh-ids");
    let server = start(&config, &data);
    let checkout = std::fs::read(repo().join("fixtures/shopify/checkouts__create.json")).unwrap();
    for id in ["evt-a", "evt-b", "evt-c"] {
        assert_eq!(shopify(&server.addr, "checkouts/create", id, &checkout), 200);
    }
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap();
    assert_eq!(events.lines().filter(|l| l.contains("\"kind\":\"checkout_started\"")).count(), 1, "{events}");
}

#[test]
fn a_relabelled_compliance_topic_or_a_foreign_shop_erases_nothing() {
    let (config, data) = setup("relabel");
    let server = start(&config, &data);
    consent_then_checkout(&server.addr);
    let checkout = std::fs::read(repo().join("fixtures/shopify/checkouts__create.json")).unwrap();
    assert_eq!(shopify(&server.addr, "customers/redact", "evt-x1", &checkout), 400);
    assert_eq!(shopify(&server.addr, "shop/redact", "evt-x2", &checkout), 400);
    let foreign = post(
        &server.addr,
        "/webhooks/shopify",
        &[
            ("X-Shopify-Topic", "shop/redact".into()),
            ("X-Shopify-Shop-Domain", "victim.myshopify.com".into()),
            ("X-Shopify-Event-Id", "evt-x3".into()),
            (
                "X-Shopify-Hmac-Sha256",
                sign_base64_sha256(br#"{"shop_id":1,"shop_domain":"victim.myshopify.com"}"#, SECRET.as_bytes()),
            ),
        ],
        br#"{"shop_id":1,"shop_domain":"victim.myshopify.com"}"#,
    );
    assert_eq!(foreign, 401, "a shop this server does not serve");
    let sent = wait_for(&data, 1, 15);
    assert_eq!(sent.len(), 1, "the person is still there and still gets the reminder");
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap();
    assert!(events.contains("example@email.com"), "nothing erased");
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off_and_cannot_hold_the_server() {
    let (config, data) = setup_with("slow", "max_connections = 2\n");
    let server = start(&config, &data);
    let stall = || {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n").unwrap();
        s
    };
    let (mut a, b) = (stall(), stall());
    // Both connections are taken: a third waits in the backlog.
    let mut third = TcpStream::connect(&server.addr).unwrap();
    third.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    assert!(third.read(&mut buf).is_err(), "not served while the cap is reached");
    drop(b);
    third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = third.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "served once a slot is free");
    // The staller is cut off after the header timeout (10 s).
    a.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = a.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(14), "closed by the server");
}

#[test]
fn a_shutdown_with_a_stalled_client_finishes_within_its_deadline() {
    let (config, data) = setup("shutdown");
    let mut server = start(&config, &data);
    let mut staller = TcpStream::connect(&server.addr).unwrap();
    staller.write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(12), "took {:?}", started.elapsed());
}

#[test]
fn erasing_a_person_removes_the_emails_of_every_profile_merged_into_them() {
    let (config, data) = setup("merged-erase");
    let server = start(&config, &data);
    let batch = |messages: &str| {
        let body = format!(r#"{{"batch":[{messages}],"writeKey":"sk"}}"#);
        assert_eq!(
            post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], body.as_bytes()),
            200
        );
    };
    // An anonymous shopper who gave an address, abandoned a checkout and was emailed.
    batch(
        r#"{"type":"identify","anonymousId":"anon-1","messageId":"m1","traits":{"email":"ada@example.com","email_marketing_consent":"subscribed"}}"#,
    );
    batch(
        r#"{"type":"track","event":"Checkout Started","anonymousId":"anon-1","messageId":"m2","properties":{"checkout_id":"chk-1","value":30}}"#,
    );
    assert_eq!(wait_for(&data, 1, 15).len(), 1);
    // Later known as customer 777: the anonymous profile is merged into theirs.
    batch(r#"{"type":"identify","userId":"777","messageId":"m3","traits":{"first_name":"Ada"}}"#);
    batch(r#"{"type":"identify","userId":"777","anonymousId":"anon-1","messageId":"m4"}"#);
    let redact =
        format!(r#"{{"shop_id": 1, "shop_domain": "{SHOP}", "customer": {{"id": 777}}, "orders_to_redact": []}}"#);
    assert_eq!(shopify(&server.addr, "customers/redact", "evt-redact", redact.as_bytes()), 200);
    assert!(emails(&data).is_empty(), "the merged-away profile's email is gone too");
    assert_eq!(files_containing(&data, "ada@example.com"), Vec::<PathBuf>::new());
}

/// Waits until some message in the outbox contains `needle`.
fn wait_for_email_with(data: &Path, needle: &str, secs: u64) -> Option<String> {
    poll(secs, || emails(data).into_iter().find(|e| e.contains(needle)))
}

#[test]
fn double_opt_in_from_the_browser_key_confirms_by_link_and_then_the_trigger_sends() {
    let (config, data) = setup("double-opt-in");
    let server = start(&config, &data);
    let browser = |messages: &str| {
        let body = format!(r#"{{"batch":[{messages}],"writeKey":"wk"}}"#);
        post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], body.as_bytes())
    };
    let subscribe = r#"{"type":"identify","anonymousId":"a1","messageId":"MID","traits":{"email":"ada@example.com","first_name":"Ada","email_marketing_consent":"subscribed"}}"#;
    assert_eq!(browser(&subscribe.replace("MID", "m1")), 200);
    let eml = wait_for_email_with(&data, "Subject: Please confirm", 15).expect("one confirmation email");
    // Asked again: no second confirmation within 24 hours.
    assert_eq!(browser(&subscribe.replace("MID", "m2")), 200);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(emails(&data).len(), 1, "at most one confirmation a day");
    assert!(std::fs::read_to_string(data.join("decisions.jsonl")).unwrap().contains("frequency_cap"));

    let parsed = mail_parser::MessageParser::default().parse(eml.as_bytes()).unwrap();
    let html = parsed.body_html(0).unwrap().replace("&#x2f;", "/");
    let start_at = html.find("/confirm?").expect("a confirmation link");
    let query: String = html[start_at + "/confirm?".len()..]
        .chars()
        .take_while(|c| *c != '"')
        .collect::<String>()
        .replace("&amp;", "&");
    let one_click = |q: &str| {
        post(
            &server.addr,
            &format!("/confirm?{q}"),
            &[("Content-Type", "application/x-www-form-urlencoded".into())],
            b"",
        )
    };
    let checkout = r#"{"type":"track","event":"Checkout Started","anonymousId":"a1","messageId":"MID","properties":{"checkout_id":"chk-1","value":30}}"#;

    // A tampered or expired link changes nothing.
    assert_eq!(one_click(&query.replacen("t=", "t=A", 1)), 401);
    let keys = std::fs::read(data.join("keys")).unwrap();
    let profile = query.split('&').find_map(|kv| kv.strip_prefix("p=")).unwrap().to_owned();
    let long_ago = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(24 * 8)).unwrap();
    let expired = nudge_app::unsubscribe::UnsubscribeKey::new(&keys[32..64]).confirm_query(SHOP, &profile, long_ago);
    assert_eq!(one_click(&expired), 400);
    assert_eq!(browser(&checkout.replace("MID", "m3")), 200);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(emails(&data).len(), 1, "unconfirmed: no cart email");

    // Following the link: the page asks, the button confirms.
    let (status, page) = get(&server.addr, &format!("/confirm?{query}"), &[]);
    assert_eq!(status, 200);
    assert!(page.contains("<form method=\"post\""), "a GET (a mail scanner) changes nothing");
    assert_eq!(one_click(&query), 200);
    // The reminder that came due unconfirmed was decided `no_consent`, as
    // on time; the next checkout's reminder sends.
    assert_eq!(browser(&checkout.replace("MID", "m4").replace("chk-1", "chk-2")), 200);
    assert!(wait_for_email_with(&data, "left something behind", 15).is_some(), "the next trigger sends");
    let decisions = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap();
    assert!(decisions.contains("\"consent_source\":\"confirmation\""), "{decisions}");
}

#[test]
fn the_server_keeps_running_when_whoever_started_it_stops_reading_its_output() {
    let (config, data) = setup("closed-stdout");
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let (public, admin) = (free(), free());
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["serve", "--listen", &public, "--admin-listen", &admin, "--config"])
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .env("NUDGE_SHOP", SHOP)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // nobody reads the banner
    let up = poll(10, || TcpStream::connect(&public).ok().map(drop));
    assert!(up.is_some(), "never listened");
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "it exited");
    assert_eq!(get(&public, "/healthz", &[]).0, 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// Shopper `i`'s checkout, made from the Shopify fixture, at `now`.
fn shopper_checkout(fixture: &serde_json::Value, i: usize, now: &str) -> serde_json::Value {
    let mut c = fixture.clone();
    c["token"] = format!("chk-{i}").into();
    c["cart_token"] = format!("cart-{i}").into();
    c["email"] = format!("shopper-{i}@example.com").into();
    c["customer"]["id"] = (5000 + i).into();
    c["created_at"] = now.into();
    c["updated_at"] = now.into();
    c
}

/// A server-side identify of shopper `i` with a consent state.
fn shopper_identify(i: usize, consent: &str) -> String {
    serde_json::json!({"batch": [{"type": "identify", "userId": format!("{}", 5000 + i),
        "messageId": format!("id-{i}-{consent}"),
        "traits": {"email": format!("shopper-{i}@example.com"), "first_name": "Ada",
                   "email_marketing_consent": consent}}], "writeKey": "sk"})
    .to_string()
}

#[test]
fn a_check_that_keeps_failing_backs_off_and_the_others_still_send() {
    let (config, data) = setup("failing-check");
    let server = start(&config, &data);
    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/checkouts__create.json")).unwrap())
            .unwrap();
    let json = [("Content-Type", "application/json".into())];
    for i in [1, 2] {
        assert_eq!(post(&server.addr, "/v1/batch", &json, shopper_identify(i, "subscribed").as_bytes()), 200);
        let c = shopper_checkout(&fixture, i, &jiff::Timestamp::now().to_string()).to_string();
        assert_eq!(shopify(&server.addr, "checkouts/create", &format!("c-{i}"), c.as_bytes()), 200);
    }
    // Shopper 1's profile no longer reads: its check fails every run.
    let db = rusqlite::Connection::open(data.join("nudge.db")).unwrap();
    let damaged = db.execute("UPDATE profiles SET doc = '{damaged' WHERE doc LIKE '%\"5001\"%'", []).unwrap();
    assert_eq!(damaged, 1);
    let sent = wait_for_email_with(&data, "shopper-2@example.com", 15);
    assert!(sent.is_some(), "the other shopper's reminder went out");
    assert!(emails(&data).iter().all(|e| !e.contains("shopper-1@")));
    std::thread::sleep(Duration::from_secs(3));
    let attempts: i64 = db.query_row("SELECT attempts FROM checks", [], |r| r.get(0)).unwrap();
    // Due 4 s after the checkout, then failing: retried after 2, 4, 8 s …
    // (not every half second).
    assert!((1..=3).contains(&attempts), "attempts {attempts}");
    drop(server);
}

/// A seeded chaos run of `nudge serve` (about a minute): 96 shoppers,
/// deliveries sent once to three times and sometimes out of order, orders
/// inside the delay, opt-outs; mail relayed to an SMTP server that at random
/// answers "try again later", refuses, or takes the message and hangs up;
/// and the server SIGKILLed and restarted twelve times while checks come due.
/// From the decision log, the relay's mailbox, the outbox and the database
/// at the end: every armed episode has exactly one final decision and at
/// most one message at the relay; a send decision exactly when the relay
/// confirmed it and an email file exists (none empty); a message the relay
/// holds without a send is `unconfirmed`; and no send relied on anything
/// but a subscribed consent.
#[test]
fn chaos_every_episode_ends_in_one_decision_and_at_most_one_email_across_kills_and_relay_faults() {
    let maildir = std::env::temp_dir().join(format!("nudge-serve-{}-chaos-maildir", std::process::id()));
    let _ = std::fs::remove_dir_all(&maildir);
    let sink = smtp_sink(&maildir, "chaos:20261207");
    let (config, data) = setup_with("chaos", &format!("smtp_url = \"smtp://127.0.0.1:{}\"\n", sink.port));
    let checkout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/checkouts__create.json")).unwrap())
            .unwrap();
    let order: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/orders__create.json")).unwrap()).unwrap();
    let mut seed: u64 = 0x5eed_c4a0;
    let mut rand = move |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut server = start(&config, &data);
    for round in 0..12 {
        for i in (round * 8)..(round * 8 + 8) {
            let now = jiff::Timestamp::now().to_string();
            let c = shopper_checkout(&checkout, i, &now);
            let mut o = order.clone();
            o["id"] = (900_000 + i).into();
            o["checkout_token"] = format!("chk-{i}").into();
            o["email"] = format!("shopper-{i}@example.com").into();
            o["customer"]["id"] = (5000 + i).into();
            o["updated_at"] = now.clone().into();
            let buys = rand(4) == 0;
            let opts_out = rand(6) == 0;
            let consent = shopper_identify(i, "subscribed");
            for _ in 0..=rand(2) {
                post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], consent.as_bytes());
            }
            if buys && rand(2) == 0 {
                // The order's webhook overtakes the checkout's.
                shopify(&server.addr, "orders/create", &format!("o-{i}"), o.to_string().as_bytes());
            }
            for _ in 0..=rand(2) {
                shopify(&server.addr, "checkouts/create", &format!("c-{i}"), c.to_string().as_bytes());
            }
            if buys {
                shopify(&server.addr, "orders/create", &format!("o-{i}"), o.to_string().as_bytes());
            }
            if opts_out {
                let out = shopper_identify(i, "unsubscribed");
                post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], out.as_bytes());
            }
        }
        // Checks come due 4 s after their checkout: kill somewhere around then.
        std::thread::sleep(Duration::from_millis(2_500 + 400 * rand(6)));
        drop(server); // SIGKILL
        server = start(&config, &data);
    }
    // Let everything come due and be decided: a send the relay did not take
    // is deferred (`mail_deferred`, tried again a minute later), so allow
    // for one such round.
    let db = data.join("nudge.db");
    let settled = poll(120, || {
        let store = nudge_local::SqliteStore::open(&db).ok()?;
        let profiles = store.profiles(1_000).ok()?;
        profiles.iter().all(|p| p.pending_checks().is_empty()).then_some(profiles)
    });
    let Some(profiles) = settled else {
        let store = nudge_local::SqliteStore::open(&db).unwrap();
        let pending: Vec<_> = store.profiles(1_000).unwrap().iter().flat_map(|p| p.pending_checks()).collect();
        let log = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap_or_default();
        let about: Vec<&str> = log.lines().filter(|l| pending.iter().any(|c| l.contains(&c.profile))).collect();
        panic!("episodes still pending after 120 s: {pending:#?}\ntheir decisions so far:\n{}", about.join("\n"));
    };
    drop(server);
    drop(sink);
    let log = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap();
    let decisions: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut finals: HashMap<(String, String, u64), Vec<&serde_json::Value>> = HashMap::new();
    for d in &decisions {
        let key = (
            d["profile"].as_str().unwrap().to_owned(),
            d["trigger"].as_str().unwrap().to_owned(),
            d["episode"].as_u64().unwrap(),
        );
        let entry = finals.entry(key).or_default();
        if d["decision"] != "defer" && d["reason"] != "duplicate" {
            entry.push(d);
        }
    }
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for f in finals.values().flatten() {
        *reasons.entry(format!("{} {}", f["decision"], f["reason"])).or_default() += 1;
    }
    eprintln!("chaos: {} episodes, final decisions {reasons:?}", finals.len());
    assert!(finals.len() >= 80, "the run armed episodes: {}", finals.len());
    for (episode, f) in &finals {
        assert_eq!(f.len(), 1, "{episode:?}: {f:?}");
    }
    for p in &profiles {
        for st in &p.triggers {
            for e in 1..=st.episode {
                assert!(
                    finals.contains_key(&(p.id.clone(), st.trigger.to_string(), u64::from(e))),
                    "{} episode {e} undecided",
                    p.id
                );
            }
        }
    }
    let sends: Vec<_> = decisions.iter().filter(|d| d["decision"] == "send").collect();
    assert!(sends.iter().all(|d| d["consent"] == "subscribed"), "a send without consent");
    let files: Vec<_> = std::fs::read_dir(data.join("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    // What the relay holds, by the send its X-Nudge-Ref header names.
    let mut relayed: HashMap<(String, String, u64), usize> = HashMap::new();
    for m in std::fs::read_dir(maildir.join("new")).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default() {
        let raw = std::fs::read_to_string(m.path()).unwrap().replace("\r\n", "\n");
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        let reference: String = parsed.header_raw("X-Nudge-Ref").expect("X-Nudge-Ref").split_whitespace().collect();
        let field = |k: &str| reference.split('&').find_map(|kv| kv.strip_prefix(k)).unwrap().to_owned();
        let key = (field("p="), field("t="), field("e=").parse().unwrap());
        *relayed.entry(key).or_default() += 1;
    }
    for (episode, f) in &finals {
        let held = relayed.get(episode).copied().unwrap_or(0);
        assert!(held <= 1, "{episode:?}: {held} messages at the relay");
        match (f[0]["decision"].as_str(), f[0]["reason"].as_str()) {
            (Some("send"), _) => assert_eq!(held, 1, "{episode:?}: a send the relay does not hold"),
            (_, Some("unconfirmed")) => {}
            _ => assert_eq!(held, 0, "{episode:?}: relayed but decided {}", f[0]),
        }
    }
    assert!(relayed.keys().all(|k| finals.contains_key(k)), "a message for an episode with no decision");
    for expected in ["send", "mail_failed", "unconfirmed"] {
        assert!(reasons.keys().any(|r| r.contains(expected)), "the faults reached no {expected}: {reasons:?}");
    }
    assert!(files.iter().all(|f| f.metadata().unwrap().len() > 0), "an empty .eml");
    assert_eq!(files.len(), sends.len(), "an email file exactly for each send");
    for s in &sends {
        let owner = s["profile"].as_str().unwrap();
        let mine = files.iter().filter(|f| f.file_name().to_string_lossy().starts_with(&format!("{owner}."))).count();
        let sent = sends.iter().filter(|d| d["profile"] == owner).count();
        assert_eq!(mine, sent, "{owner}");
    }
}

/// The guard of "replay is production": one seeded workload — 24 shoppers
/// browsing and wishlisting anonymously and then identifying (a merge),
/// checking out, buying inside or after the delay, opting out, deliveries
/// repeated and delivered late, under every kind of trigger (on an event
/// with variants and a holdout, counts, counts with quiet after them, a
/// filtered order, one outranking another) — sent to `nudge serve` over real sockets with
/// seconds-long delays, then `nudge replay` of serve's own data directory.
/// The decision logs are equal, line for line (all but the wall-clock `at`
/// of each decision). Events are placed a whole second away from any check's
/// due time, where serve's half-second check loop and the replay's exact
/// clock agree on what came first.
#[test]
fn replaying_serve_s_own_event_log_reproduces_serve_s_decision_log() {
    let (config, data) = setup("differential");
    let rules = std::fs::read_to_string(repo().join("fixtures/nudge/differential-triggers.toml"))
        .unwrap()
        .replace("DELAY", "4s")
        .replace("QUIET", "3s")
        .replace("THANKS", "2s");
    std::fs::write(config.parent().unwrap().join("triggers.toml"), rules).unwrap();
    let server = start(&config, &data);
    let mut seed: u64 = 0xd1ff_2026;
    let mut rand = move |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    /// What one shopper does at each whole second of the run.
    #[derive(Default)]
    struct Plan {
        ticks: HashMap<u64, Vec<serde_json::Value>>,
    }
    let start_at = jiff::Timestamp::now();
    let stamp = |tick: u64| (start_at + jiff::SignedDuration::from_secs(tick as i64)).to_string();
    let mut plan = Plan::default();
    let mut at = |tick: u64, m: serde_json::Value| plan.ticks.entry(tick).or_default().push(m);
    for i in 0..24u64 {
        let (anon, user, product) = (format!("anon-{i}"), format!("user-{i}"), format!("p-{}", i % 5));
        let view = |tick: u64, id: &str| {
            serde_json::json!({"type": "track", "event": "Product Viewed", "anonymousId": anon, "messageId": id,
                "timestamp": stamp(tick), "properties": {"product_id": product, "category": "shoes"}})
        };
        at(0, view(0, &format!("v0-{i}")));
        if rand(4) != 0 {
            at(1, view(1, &format!("v1-{i}")));
        }
        if rand(3) == 0 {
            at(
                1,
                serde_json::json!({"type": "track", "event": "Product Added to Wishlist", "anonymousId": anon,
                    "messageId": format!("w-{i}"), "timestamp": stamp(1), "properties": {"product_id": product}}),
            );
        }
        let consent = if rand(5) == 0 { "not_subscribed" } else { "subscribed" };
        let identify = serde_json::json!({"type": "identify", "userId": user, "anonymousId": anon,
            "messageId": format!("id-{i}"), "timestamp": stamp(2),
            "traits": {"email": format!("shopper-{i}@example.com"), "first_name": "Ada",
                       "email_marketing_consent": consent}});
        at(2, identify.clone());
        let checks_out = rand(10) < 7;
        let checkout = serde_json::json!({"type": "track", "event": "Checkout Started", "userId": user,
            "messageId": format!("c-{i}"), "timestamp": stamp(2),
            "properties": {"checkout_id": format!("chk-{i}"), "value": 40}});
        if checks_out {
            at(2, checkout.clone());
        }
        let order = |tick: u64| {
            serde_json::json!({"type": "track", "event": "Order Completed", "userId": user,
                "messageId": format!("o-{i}"), "timestamp": stamp(tick),
                "properties": {"checkout_id": format!("chk-{i}"), "order_id": format!("order-{i}"),
                    "total": if i % 2 == 0 { 40 } else { 20 }}})
        };
        match rand(7) {
            0 | 1 if checks_out => at(3, order(3)), // bought inside the delay
            2 => at(8, order(8)),                   // bought after the reminder
            // Bought inside the delay, but the order arrives after the
            // reminder went out: production sent it, so must the replay.
            4 if checks_out => at(7, order(3)),
            3 => at(
                3,
                serde_json::json!({"type": "identify", "userId": user, "messageId": format!("out-{i}"),
                    "timestamp": stamp(3), "traits": {"email_marketing_consent": "unsubscribed"}}),
            ),
            _ => {}
        }
        if rand(3) == 0 {
            // Delivered again (the same message ids).
            at(3, identify);
            if checks_out {
                at(8, checkout);
            }
        }
        if rand(4) == 0 {
            // A view from second 1 that only arrives at second 8.
            at(8, view(1, &format!("late-{i}")));
        }
    }
    for tick in 0..=9u64 {
        let due = start_at + jiff::SignedDuration::from_secs(tick as i64);
        let wait = due.duration_since(jiff::Timestamp::now());
        if wait.is_positive() {
            std::thread::sleep(Duration::from_nanos(wait.as_nanos() as u64));
        }
        for m in plan.ticks.remove(&tick).unwrap_or_default() {
            let body = serde_json::json!({"batch": [m], "writeKey": "sk"}).to_string();
            assert_eq!(
                post(&server.addr, "/v1/batch", &[("Content-Type", "application/json".into())], body.as_bytes()),
                200
            );
        }
    }
    let db = data.join("nudge.db");
    let settled = poll(20, || {
        let store = nudge_local::SqliteStore::open(&db).ok()?;
        store.profiles(1_000).ok()?.iter().all(|p| p.pending_checks().is_empty()).then_some(())
    });
    assert!(settled.is_some(), "every check decided");
    drop(server);
    let comparable = |log: &str| {
        let mut lines: Vec<String> = log
            .lines()
            .map(|l| {
                let mut d: serde_json::Value = serde_json::from_str(l).unwrap();
                d.as_object_mut().unwrap().remove("at");
                d.to_string()
            })
            .collect();
        lines.sort();
        lines
    };
    let served = comparable(&std::fs::read_to_string(data.join("decisions.jsonl")).unwrap());
    let replay = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["replay", "--triggers"])
        .arg(config.parent().unwrap().join("triggers.toml"))
        .arg(&data)
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let replayed = comparable(&String::from_utf8_lossy(&replay.stdout));
    let outcomes = |lines: &[String]| {
        let mut n: HashMap<String, usize> = HashMap::new();
        for l in lines {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            *n.entry(format!("{} {} {}", d["trigger"], d["decision"], d["reason"])).or_default() += 1;
        }
        n
    };
    eprintln!("differential: {} decisions {:?}", served.len(), outcomes(&served));
    for expected in ["\"send\" null", "\"converted\"", "\"no_consent\"", "\"wishlist-nudge\"", "\"thank-you\" \"send\""]
    {
        assert!(outcomes(&served).keys().any(|k| k.contains(expected)), "the workload reached no {expected}");
    }
    if served != replayed {
        let only_served: Vec<_> = served.iter().filter(|l| !replayed.contains(l)).collect();
        let only_replayed: Vec<_> = replayed.iter().filter(|l| !served.contains(l)).collect();
        panic!("serve and its replay differ:\nonly in serve: {only_served:#?}\nonly in the replay: {only_replayed:#?}");
    }
}

/// The libraries, pinned.
const TRACKING_LIBRARIES: [&str; 2] = ["segment-analytics-python==2.4.0", "rudder-sdk-python==2.1.9"];

/// A Python with Segment's and RudderStack's official libraries:
/// `NUDGE_TEST_PYTHON`, or a virtual environment created once under the
/// target dir (one test at a time). Installing needs the package registry;
/// if it fails, the test fails.
fn tracking_python() -> PathBuf {
    static READY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Ok(p) = std::env::var("NUDGE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let _one = READY.lock().unwrap_or_else(|e| e.into_inner());
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tracking-python");
    let py = venv.join("bin/python");
    let ready = Command::new(&py)
        .args(["-c", "import segment.analytics, rudderstack.analytics"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet"])
                .args(TRACKING_LIBRARIES)
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "could not install {TRACKING_LIBRARIES:?} into {}", venv.display());
    }
    py
}

/// Segment's or RudderStack's official Python library, unchanged but for
/// its host and with gzip on, sends an identify, two tracks and a page to
/// `nudge serve`; then, with a wrong key, is refused once and reports it
/// (the answer reads as permanent: the library does not retry it).
fn an_official_library_with_gzip_delivers_to_nudge_serve_and_is_refused_once(library: &str) {
    let (config, data) = setup(&format!("sdk-{library}"));
    let log = data.parent().unwrap().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    cmd.stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    let server = start_in(cmd, &config, &data);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tracking_client.py");
    let run = |key: &str, retries: &str| {
        Command::new(tracking_python())
            .arg(script)
            .args([library, &format!("http://{}", server.addr), key, retries])
            .output()
            .unwrap()
    };
    let out = run("sk", "0");
    assert!(out.status.success(), "{library}: {}", String::from_utf8_lossy(&out.stderr));
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 5, "identify (profile + consent), 2 tracks, 1 page: {events}");
    let store = nudge_local::SqliteStore::open(&data.join("nudge.db")).unwrap();
    let profiles = store.profiles(10).unwrap();
    assert_eq!(profiles.len(), 1, "{profiles:#?}");
    let p = &profiles[0];
    assert_eq!(p.email.as_deref(), Some("grace@example.com"));
    assert_eq!(p.first_name.as_deref(), Some("Grace"));
    assert_eq!(p.consent.state, nudge_core::ConsentState::Subscribed);
    assert_eq!(p.basket.as_ref().and_then(|b| b.token.as_deref()), Some("chk-42"));

    let out = run("wrong-key", "3");
    assert!(!out.status.success());
    let reported = String::from_utf8_lossy(&out.stderr);
    assert!(reported.contains("401") && reported.contains("unknown write key"), "{library}: {reported}");
    drop(server);
    let refused = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("nudge::delivery") && l.contains("status=401"))
        .count();
    assert_eq!(refused, 1, "{library} retried a refusal: {reported}");
    assert_eq!(std::fs::read_to_string(data.join("events.jsonl")).unwrap().lines().count(), 5, "nothing more stored");
}

#[test]
fn the_official_segment_python_library_with_gzip_delivers_to_nudge_serve_and_is_refused_once() {
    an_official_library_with_gzip_delivers_to_nudge_serve_and_is_refused_once("segment");
}

#[test]
fn the_official_rudderstack_python_library_with_gzip_delivers_to_nudge_serve_and_is_refused_once() {
    an_official_library_with_gzip_delivers_to_nudge_serve_and_is_refused_once("rudderstack");
}

#[test]
fn serve_refits_each_shop_s_customer_model_from_its_event_log_and_keeps_no_person_in_it() {
    let (config, data) = setup_with("refit", "refit_models = \"1s\"\n");
    let server = start(&config, &data);
    let order = |user: &str, n: u32, day: u32| {
        let body = format!(
            r#"{{"type":"track","userId":"{user}","messageId":"{user}-o{n}","event":"Order Completed","properties":{{"order_id":"{user}-{n}","total":{}}},"timestamp":"2026-10-{day:02}T10:00:00Z"}}"#,
            20 + 10 * n
        );
        let headers = [("Content-Type", "application/json".into()), ("Authorization", "Basic d2s6".into())];
        assert_eq!(post(&server.addr, "/v1/track", &headers, body.as_bytes()), 200);
    };
    for (user, days) in [("ann", &[1, 8, 20][..]), ("bob", &[3, 4]), ("cy", &[10]), ("di", &[2, 25])] {
        for (n, day) in days.iter().enumerate() {
            order(user, n as u32, *day);
        }
    }
    let path = data.join("models.json");
    let model = poll(30, || {
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        let m = json["shops"][SHOP]["model"].clone();
        (m["customers"] == 4).then_some((json, m))
    });
    let (json, m) = model.expect("no model of the four customers within 30 s");
    assert_eq!(m["until_day"], 20_751, "2026-10-25, the last order's day: {m}");
    assert_eq!(m["rfm"]["frequency"].as_array().map(Vec::len), Some(4), "{m}");
    let text = json.to_string();
    for who in ["ann", "bob", "profile", "people"] {
        assert!(!text.contains(who), "{who} in the models file: {text}");
    }
    drop(server);
}
