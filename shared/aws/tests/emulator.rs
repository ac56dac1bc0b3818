//! The AWS adapters and the functions' handlers against moto's standalone
//! server: the real SDK over real HTTP. Each test starts its own server on a
//! free port (ready in about half a second), so tests share no state.
//!
//! What moto does not do, and how it is covered instead: Scheduler never
//! fires schedules (the tests invoke the check handler with the schedule's
//! own target input, read back with GetSchedule); SES never throttles (the
//! backoff is covered with aws-smithy-mocks in `ses_throttling.rs`); TTL
//! never deletes (expiry is checked on read and tested with a past `ttl`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use jiff::{SignedDuration, Timestamp};
use nudge_app::identity::{Alias, AliasKind};
use nudge_app::ports::{CatalogueStore, MessageLog, ProfileStore};
use nudge_aws::dynamo::{DynamoStore, create_table};
use nudge_aws::lambda::{CheckFunction, HttpFunction, Stack, ses_event};
use nudge_aws::lambda_http::{Body, Request};
use nudge_aws::schedule::at_expression;
use nudge_core::{Check, ProductChange, Profile};
use nudge_sources::signature::sign_base64_sha256;
use serde_json::{Value, json};

const SECRET: &str = "nudge-test-secret";
const SHOP: &str = "acme.myshopify.com";
const CUSTOMER: &str = "603851970716743426";
const GROUP: &str = "nudge-checks";
const TABLE: &str = "nudge";

struct Moto {
    child: Child,
    url: String,
    /// moto's own request log and tracebacks, shown when a setup step fails.
    log: tempfile::NamedTempFile,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(url: &str, path: &str) -> Option<(u16, String)> {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// The Python interpreter that has moto's server, found once per test
/// binary: `python3` on PATH asked for its own executable, so each test
/// starts the interpreter itself (not a pyenv shim or wrapper script per
/// server, dozens at once), and a machine without moto gets one clear
/// error instead of a failure in every test.
fn moto_python() -> &'static std::path::Path {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys, moto.server, werkzeug; print(sys.executable)"])
            .output()
            .expect("python3 not found on PATH");
        assert!(
            out.status.success(),
            "python3 cannot import moto's server (`make test` installs it: scripts/ensure_python_tools.sh):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// The last lines of a log file, for a failure message.
fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let last: Vec<&str> = text.lines().rev().take(lines).collect();
    last.into_iter().rev().collect::<Vec<_>>().join("\n")
}

impl Moto {
    fn start() -> Moto {
        // Single-threaded: moto's threaded server does not make conditional
        // writes atomic (see scripts/moto_serial.py); DynamoDB does. The
        // server binds a free port itself and names it on its first line, so
        // two tests can never end up sharing one server.
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(moto_python())
            .arg(repo().join("scripts/moto_serial.py"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("cannot start moto's Python");
        let mut first = String::new();
        let read = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut first);
        let port = first.trim().strip_prefix("port ").and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port.filter(|_| read.is_ok()) else {
            let _ = child.kill();
            let status = child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
            panic!(
                "moto_serial.py did not name its port ({status}; first line {first:?})\n--- its log ---\n{}",
                tail(log.path(), 40)
            );
        };
        let moto = Moto { child, url: format!("http://127.0.0.1:{port}"), log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&moto.url, "/moto-api/data.json").is_none_or(|(s, _)| s != 200) {
            assert!(Instant::now() < deadline, "moto_server did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// The value of a setup call, or a panic naming the step, the error and
    /// the end of moto's log.
    fn ready<T, E: std::fmt::Debug>(&self, step: &str, r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| {
            panic!("setup step {step:?} failed: {e:?}\n--- moto log (end) ---\n{}", tail(self.log.path(), 40))
        })
    }

    /// Raw MIME of every message SES accepted.
    fn sent(&self) -> Vec<String> {
        let (_, body) = http_get(&self.url, "/moto-api/data.json").unwrap();
        // moto answers with chunked encoding on some versions: cut to the JSON.
        let start = body.find('{').unwrap();
        let end = body.rfind('}').unwrap();
        let data: Value = serde_json::from_str(&body[start..=end]).unwrap();
        data["ses"]["RawMessage"]
            .as_array()
            .map(|a| a.iter().map(|m| m["raw_data"].as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default()
    }

    async fn sdk(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
            // The SDK's standard retry, as in production: on a loaded 2-core
            // machine moto's first call to a service (it imports that
            // backend then) can fail transiently. Service errors the tests
            // assert on (conditional failures, not found) are never retried.
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4))
            .load()
            .await
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify").join(name)).unwrap()).unwrap()
}

/// Rules for these tests: the example cart reminder without a holdout, so
/// every armed episode sends unless something stops it.
const RULES: &str = r#"
[policy]
require_consent = true

[[trigger]]
id = "cart-abandoned"
priority = 100
on = "checkout_started"
delay = "10m"
cancel_if = ["order_placed"]
cooldown = "24h"
template = "cart-reminder"
"#;

fn rules_dir(triggers: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("triggers.toml"), triggers).unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    for e in std::fs::read_dir(repo().join("examples/templates")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, templates.join(p.file_name().unwrap())).unwrap();
    }
    dir
}

struct World {
    moto: Moto,
    sdk: SdkConfig,
    env: HashMap<String, String>,
    _rules: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        World::with(&[]).await
    }

    async fn with(extra: &[(&str, &str)]) -> World {
        World::with_rules(extra, RULES).await
    }

    async fn with_rules(extra: &[(&str, &str)], triggers: &str) -> World {
        let moto = Moto::start();
        let sdk = moto.sdk().await;
        moto.ready("create table", create_table(&aws_sdk_dynamodb::Client::new(&sdk), TABLE).await);
        let group = aws_sdk_scheduler::Client::new(&sdk).create_schedule_group().name(GROUP).send().await;
        moto.ready("create schedule group", group);
        let ses = aws_sdk_sesv2::Client::new(&sdk);
        let identity = ses.create_email_identity().email_identity("shop@example.com").send().await;
        moto.ready("create email identity", identity);
        let set = ses.create_configuration_set().configuration_set_name("nudge").send().await;
        moto.ready("create configuration set", set);
        let rules = rules_dir(triggers);
        let mut env: HashMap<String, String> = [
            ("NUDGE_TABLE", TABLE),
            ("NUDGE_SCHEDULE_GROUP", GROUP),
            ("NUDGE_CHECK_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:nudge-check"),
            ("NUDGE_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/nudge-scheduler"),
            ("NUDGE_SCHEDULE_DLQ_ARN", "arn:aws:sqs:us-east-1:123456789012:nudge-checks-dlq"),
            ("NUDGE_SES_CONFIGURATION_SET", "nudge"),
            ("NUDGE_FROM", "Acme <shop@example.com>"),
            ("NUDGE_PUBLIC_URL", "https://unsubscribe.example"),
            ("NUDGE_SHOPIFY_SECRET", SECRET),
            ("NUDGE_ALIAS_KEY", "alias-key"),
            ("NUDGE_UNSUBSCRIBE_KEY", "nudge-test-unsubscribe-key"),
            ("NUDGE_WOOCOMMERCE_SECRET", SECRET),
            ("NUDGE_SEGMENT_WRITE_KEY", "nudge-test-write-key"),
            ("NUDGE_SEGMENT_SERVER_KEY", "nudge-test-server-key"),
            ("NUDGE_SHOP", SHOP),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.insert("NUDGE_RULES_DIR".into(), rules.path().display().to_string());
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        World { moto, sdk, env, _rules: rules }
    }

    async fn stack(&self) -> Stack {
        let env = self.env.clone();
        Stack::new(self.sdk.clone(), move |k| env.get(k).cloned()).await.unwrap()
    }

    async fn webhook(&self) -> HttpFunction {
        HttpFunction::new(self.stack().await, &["/webhooks/shopify"])
    }

    async fn checker(&self) -> CheckFunction {
        CheckFunction::new(self.stack().await).unwrap()
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), TABLE, SignedDuration::from_hours(24 * 400))
    }

    async fn profile(&self) -> Option<Profile> {
        let alias = Alias { kind: AliasKind::Customer, value: CUSTOMER.into() };
        let resolved = self.store().resolve(SHOP, &[alias]).await.unwrap();
        self.store().load(SHOP, resolved.profile.as_deref()?).await.unwrap()
    }

    /// A consenting shopper started checkout 20 minutes ago (so the 10-minute
    /// check is due): the one check it armed.
    async fn abandon(&self, f: &HttpFunction) -> Check {
        assert_eq!(deliver(f, "checkouts/create", "evt-1", &checkout(mins(20))).await, 200);
        let mut checks = self.profile().await.expect("the profile was stored").pending_checks();
        assert_eq!(checks.len(), 1, "{checks:?}");
        checks.remove(0)
    }

    /// The target input of the schedule for `check`, as Scheduler would
    /// pass it to the check function.
    async fn scheduled_input(&self, check: &Check) -> Value {
        let s = aws_sdk_scheduler::Client::new(&self.sdk)
            .get_schedule()
            .name(check.name())
            .group_name(GROUP)
            .send()
            .await
            .unwrap();
        serde_json::from_str(s.target().unwrap().input().unwrap()).unwrap()
    }
}

fn shopify_request(topic: &str, event_id: &str, body: &[u8]) -> Request {
    http::Request::builder()
        .method("POST")
        .uri("https://abc.lambda-url.us-east-1.on.aws/webhooks/shopify")
        .header("content-type", "application/json")
        .header("x-shopify-topic", topic)
        .header("x-shopify-shop-domain", SHOP)
        .header("x-shopify-event-id", event_id)
        .header("x-shopify-hmac-sha256", sign_base64_sha256(body, SECRET.as_bytes()))
        .body(Body::Binary(body.to_vec()))
        .unwrap()
}

async fn deliver(f: &HttpFunction, topic: &str, event_id: &str, body: &Value) -> u16 {
    let resp = f.handle(shopify_request(topic, event_id, body.to_string().as_bytes())).await.unwrap();
    resp.status().as_u16()
}

fn stamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// The published checkout fixture, started `ago` before now by a customer
/// who consented to marketing.
fn checkout(ago: SignedDuration) -> Value {
    let at = stamp(Timestamp::now() - ago);
    let mut c = fixture("checkouts__create.json");
    c["created_at"] = json!(at);
    c["updated_at"] = json!(at);
    c["customer"]["email_marketing_consent"] =
        json!({"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": at});
    c
}

/// The published order fixture, placed `ago` before now by the same customer.
fn order(ago: SignedDuration, id: u64) -> Value {
    let at = stamp(Timestamp::now() - ago);
    let mut o = fixture("orders__create.json");
    o["id"] = json!(id);
    o["created_at"] = json!(at);
    o["updated_at"] = json!(at);
    o["processed_at"] = json!(at);
    o["customer"]["id"] = json!(CUSTOMER.parse::<u64>().unwrap());
    o
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_is_stored_and_its_check_scheduled_at_the_due_time_with_the_check_as_input() {
    let w = World::new().await;
    let f = w.webhook().await;
    let body = checkout(mins(1));
    assert_eq!(deliver(&f, "checkouts/create", "evt-1", &body).await, 200);
    let p = w.profile().await.expect("the profile was stored");
    assert_eq!(p.email.as_deref(), Some("example@email.com"), "the checkout's own address");
    let checks = p.pending_checks();
    assert_eq!(checks.len(), 1);
    let check = &checks[0];
    let s = aws_sdk_scheduler::Client::new(&w.sdk)
        .get_schedule()
        .name(check.name())
        .group_name(GROUP)
        .send()
        .await
        .unwrap();
    assert_eq!(s.schedule_expression(), Some(at_expression(check.due, Timestamp::now()).as_str()));
    assert!(check.due > Timestamp::now(), "due ten minutes after a checkout one minute ago");
    let target = s.target().unwrap();
    assert_eq!(serde_json::from_str::<Check>(target.input().unwrap()).unwrap(), *check);
    assert_eq!(target.arn(), "arn:aws:lambda:us-east-1:123456789012:function:nudge-check");
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        Some("arn:aws:sqs:us-east-1:123456789012:nudge-checks-dlq")
    );
    assert_eq!(target.retry_policy().and_then(|r| r.maximum_retry_attempts()), Some(10));
    assert_eq!(s.flexible_time_window().map(|w| w.mode().as_str()), Some("OFF"));
    assert_eq!(s.action_after_completion().map(|a| a.as_str()), Some("DELETE"));
    // A redelivery (the same body) changes nothing and schedules nothing new.
    assert_eq!(deliver(&f, "checkouts/create", "evt-1", &body).await, 200);
    assert_eq!(w.profile().await.unwrap().version, p.version);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_check_sends_exactly_one_email_and_a_second_invocation_sends_none() {
    let w = World::new().await;
    let f = w.webhook().await;
    let check = w.abandon(&f).await;
    let input = w.scheduled_input(&check).await;
    let c = w.checker().await;
    let first = c.check(input.clone()).await.unwrap();
    assert_eq!(first["decision"], "send", "{first}");
    let sent = w.moto.sent();
    assert_eq!(sent.len(), 1);
    let mime = &sent[0];
    assert!(mime.contains("To: example@email.com"), "{mime}");
    assert!(mime.contains("List-Unsubscribe: <https://unsubscribe.example/unsubscribe?"), "{mime}");
    assert!(mime.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{mime}");
    assert!(mime.contains("text/plain") && mime.contains("text/html"), "{mime}");
    let second = c.check(input).await.unwrap();
    assert_eq!(second["decision"], "skip");
    assert_eq!(second["reason"], "duplicate");
    assert_eq!(w.moto.sent().len(), 1, "the redelivered check sent nothing");
    // The message record joins SES feedback back; the send was counted.
    let id = first["message_id"].as_str().unwrap();
    let record = w.store().message(id).await.unwrap().expect("message record");
    assert_eq!((record.trigger.as_str(), record.profile.as_str()), ("cart-abandoned", check.profile.as_str()));
    let day = jiff::tz::TimeZone::UTC.to_datetime(Timestamp::now()).date();
    let stats = w.store().stats(SHOP, "cart-abandoned", record.variant.as_str(), day).await.unwrap();
    assert_eq!(stats.get("sent"), Some(&1));
}

/// Routes the `nudge` bus to a fresh SQS queue; returns the queue URL.
async fn decisions_queue(w: &World) -> String {
    let eb = aws_sdk_eventbridge::Client::new(&w.sdk);
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    eb.create_event_bus().name("nudge").send().await.unwrap();
    let url = sqs.create_queue().queue_name("decisions").send().await.unwrap().queue_url().unwrap().to_owned();
    let arn = "arn:aws:sqs:us-east-1:123456789012:decisions";
    eb.put_rule()
        .name("all-decisions")
        .event_bus_name("nudge")
        .event_pattern(r#"{"source": ["nudge"]}"#)
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("q").arn(arn).build().unwrap();
    eb.put_targets().rule("all-decisions").event_bus_name("nudge").targets(target).send().await.unwrap();
    url
}

async fn published(w: &World, queue: &str) -> Vec<Value> {
    published_with_types(w, queue).await.into_iter().map(|(_, detail)| detail).collect()
}

/// What reached the bus, as (detail-type, detail).
async fn published_with_types(w: &World, queue: &str) -> Vec<(String, Value)> {
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    let mut out = Vec::new();
    loop {
        let r = sqs.receive_message().queue_url(queue).max_number_of_messages(10).send().await.unwrap();
        if r.messages().is_empty() {
            return out;
        }
        for m in r.messages() {
            let v: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            out.push((v["detail-type"].as_str().unwrap_or_default().to_owned(), v["detail"].clone()));
            sqs.delete_message().queue_url(queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_webhook_reaches_the_email_the_check_function_renders() {
    let w = World::new().await;
    let f = w.webhook().await;
    // The store says the carted iPod is nearly sold out.
    let mut product = fixture("products__update.json");
    product["id"] = json!(632910392);
    product["title"] = json!("IPod Nano - 8GB");
    product["variants"] = json!([{"price": "199.00", "inventory_quantity": 2}]);
    assert_eq!(deliver(&f, "products/update", "evt-p1", &product).await, 200);
    let stored = w.store().products(SHOP).await.unwrap();
    assert!(matches!(stored.as_slice(), [ProductChange::Upsert(p)] if p.inventory == Some(2)), "{stored:?}");
    // Shopify retries a failed delivery for hours: an older update arriving
    // now is stale and leaves the newer one in place.
    let mut older = product.clone();
    older["updated_at"] = json!("2021-12-01T00:00:00-05:00");
    older["variants"] = json!([{"price": "199.00", "inventory_quantity": 40}]);
    assert_eq!(deliver(&f, "products/update", "evt-p0", &older).await, 200);
    let stored = w.store().products(SHOP).await.unwrap();
    assert!(matches!(stored.as_slice(), [ProductChange::Upsert(p)] if p.inventory == Some(2)), "{stored:?}");

    let check = w.abandon(&f).await;
    let out = w.checker().await.check(w.scheduled_input(&check).await).await.unwrap();
    assert_eq!(out["decision"], "send", "{out}");
    let mime = w.moto.sent().remove(0);
    let parsed = mail_parser::MessageParser::default().parse(mime.as_bytes()).expect("RFC 5322 message");
    let html = parsed.body_html(0).expect("HTML part");
    assert!(html.contains("Only 2 left"), "the cart line carries the webhook's stock");
    // (minijinja's HTML escaping writes `/` as `&#x2f;`, which browsers read as `/`)
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains("https://acme.myshopify.com/products/example-t-shirt"), "and its product page");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purchase_between_arming_and_the_check_sends_nothing_and_is_decided_converted() {
    let w = World::with(&[("NUDGE_EVENT_BUS", "nudge")]).await;
    let queue = decisions_queue(&w).await;
    let f = w.webhook().await;
    let check = w.abandon(&f).await;
    let input = w.scheduled_input(&check).await;
    assert_eq!(deliver(&f, "orders/create", "evt-2", &order(mins(15), 1001)).await, 200);
    // The order decides the episode at once and withdraws its schedule...
    let decisions = published(&w, &queue).await;
    let converted: Vec<_> = decisions.iter().filter(|d| d["reason"] == "converted").collect();
    assert_eq!(converted.len(), 1, "{decisions:?}");
    assert_eq!(converted[0]["trigger"], "cart-abandoned");
    let gone = aws_sdk_scheduler::Client::new(&w.sdk).get_schedule().name(check.name()).group_name(GROUP).send().await;
    assert!(gone.is_err_and(|e| e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception())));
    // ...and a delivery that raced the delete sends nothing.
    let out = w.checker().await.check(input).await.unwrap();
    assert_eq!(out["decision"], "skip", "{out}");
    assert!(w.moto.sent().is_empty());
}

/// The raw profile item of the test shopper.
async fn profile_item(w: &World) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let id = w.profile().await.expect("the profile was stored").id;
    let key = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("P#{SHOP}#{id}"))),
        ("sk".to_owned(), AttributeValue::S(nudge_aws::dynamo::PROFILE_SK.into())),
    ]);
    let item = aws_sdk_dynamodb::Client::new(&w.sdk).get_item().table_name(TABLE).set_key(Some(key)).send().await;
    item.unwrap().item.expect("the profile item")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_is_stored_as_a_deflated_document_smaller_than_its_json() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let w = World::new().await;
    let f = w.webhook().await;
    assert_eq!(deliver(&f, "checkouts/create", "evt-1", &checkout(mins(1))).await, 200);
    let item = profile_item(&w).await;
    let Some(AttributeValue::B(packed)) = item.get("docz") else { panic!("no packed document: {item:?}") };
    let profile = w.profile().await.unwrap();
    let json = serde_json::to_vec(&profile).unwrap();
    assert!(packed.as_ref().len() < json.len(), "{} packed bytes for {} of JSON", packed.as_ref().len(), json.len());
    assert!(!item.contains_key("doc"));
}

/// The `ttl` of the test shopper's customer alias item, or `None` when
/// the item has none.
async fn customer_alias_ttl(w: &World) -> Option<i64> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let key = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("A#{SHOP}#customer#{CUSTOMER}"))),
        ("sk".to_owned(), AttributeValue::S(nudge_aws::dynamo::ALIAS_SK.into())),
    ]);
    let item = aws_sdk_dynamodb::Client::new(&w.sdk).get_item().table_name(TABLE).set_key(Some(key)).send().await;
    let item = item.unwrap().item.expect("the customer alias item");
    item.get("ttl").map(|v| v.as_n().unwrap().parse().unwrap())
}

/// Sets (or, with `None`, removes) the `ttl` of the customer alias item.
async fn set_customer_alias_ttl(w: &World, ttl: Option<i64>) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let update = aws_sdk_dynamodb::Client::new(&w.sdk)
        .update_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(format!("A#{SHOP}#customer#{CUSTOMER}")))
        .key("sk", AttributeValue::S(nudge_aws::dynamo::ALIAS_SK.into()))
        .expression_attribute_names("#t", "ttl");
    let update = match ttl {
        Some(t) => {
            update.update_expression("SET #t = :t").expression_attribute_values(":t", AttributeValue::N(t.to_string()))
        }
        None => update.update_expression("REMOVE #t"),
    };
    update.send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn aliases_expire_with_the_retention_are_renewed_past_half_their_life_and_count_as_absent_once_lapsed() {
    let w = World::new().await;
    let f = w.webhook().await;
    let days = |d: i64| Timestamp::now().as_second() + d * 86_400;
    assert_eq!(deliver(&f, "checkouts/create", "evt-1", &checkout(mins(1))).await, 200);
    let ttl = customer_alias_ttl(&w).await.expect("a new alias carries a ttl");
    assert!((days(400) - 60..=days(400)).contains(&ttl), "ttl {ttl}: the retention (400 days) from now");

    // Past half its life, the next event that reads it writes it again.
    set_customer_alias_ttl(&w, Some(days(150))).await;
    assert_eq!(deliver(&f, "orders/create", "evt-2", &order(mins(0), 5001)).await, 200);
    assert!(customer_alias_ttl(&w).await.unwrap() >= days(400) - 60, "renewed");
    // An alias from before aliases expired (no ttl) is renewed the same way.
    set_customer_alias_ttl(&w, None).await;
    assert_eq!(deliver(&f, "orders/create", "evt-3", &order(mins(0), 5002)).await, 200);
    assert!(customer_alias_ttl(&w).await.is_some_and(|t| t >= days(400) - 60), "given a ttl");
    // With more than half its life left, reading it writes nothing.
    let later = days(300);
    set_customer_alias_ttl(&w, Some(later)).await;
    assert_eq!(deliver(&f, "orders/create", "evt-4", &order(mins(0), 5003)).await, 200);
    assert_eq!(customer_alias_ttl(&w).await, Some(later), "left alone");

    // Lapsed but not yet removed by DynamoDB's TTL sweep: it names nobody.
    set_customer_alias_ttl(&w, Some(days(-1))).await;
    let alias = Alias { kind: AliasKind::Customer, value: CUSTOMER.into() };
    let resolved = w.store().resolve(SHOP, std::slice::from_ref(&alias)).await.unwrap();
    assert_eq!((resolved.profile, resolved.unlinked), (None, vec![alias]));
}

/// A Segment call to the track function, with the test (browser) write key.
async fn segment(f: &HttpFunction, kind: &str, body: Value) -> u16 {
    segment_with(f, "nudge-test-write-key", kind, body).await
}

/// A Segment call to the track function with `key` as Basic auth user.
async fn segment_with(f: &HttpFunction, key: &str, kind: &str, body: Value) -> u16 {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("https://track.example/v1/{kind}"))
        .header("content-type", "application/json")
        .header("authorization", format!("Basic {auth}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    f.handle(req).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_shoppers_event_costs_one_batch_read_and_one_write_even_after_identify_added_a_user_id() {
    let w = World::new().await;
    let f = HttpFunction::new(w.stack().await, &["/v1"]);
    let now = stamp(Timestamp::now());
    let viewed = |id: &str, user: Option<&str>| {
        let mut m = json!({"type": "track", "event": "Product Viewed", "messageId": id, "anonymousId": "anon-1",
            "timestamp": now, "properties": {"product_id": "sku-1"}});
        if let Some(u) = user {
            m["userId"] = u.into();
        }
        m
    };
    // The profile is created from the anonymous id; identify links the user id and email to it.
    assert_eq!(segment(&f, "track", viewed("m-1", None)).await, 200);
    let identify = json!({"type": "identify", "messageId": "m-2", "anonymousId": "anon-1", "userId": "u-1",
        "timestamp": now, "traits": {"email": "shopper@example.com"}});
    assert_eq!(segment(&f, "identify", identify).await, 200);
    let usage = &f.service().store.usage;
    let count = || {
        (
            usage.reads.load(std::sync::atomic::Ordering::Relaxed),
            usage.writes.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    let before = count();
    // Now the user id comes first: the profile is not its candidate, but the anonymous id's.
    assert_eq!(segment(&f, "track", viewed("m-3", Some("u-1"))).await, 200);
    let after = count();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "one BatchGetItem, one UpdateItem");
}

#[tokio::test(flavor = "multi_thread")]
async fn more_concurrent_deliveries_on_one_profile_than_save_attempts_all_succeed_and_lose_no_update() {
    let w = World::new().await;
    let f = std::sync::Arc::new(w.webhook().await);
    assert_eq!(deliver(&f, "checkouts/create", "evt-0", &checkout(mins(20))).await, 200);
    // More writers than a save's attempts (64): without a backoff between
    // attempts, the unluckiest loses every race and its delivery fails.
    const WRITERS: u64 = 2 * nudge_app::ports::MAX_SAVE_ATTEMPTS as u64;
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            deliver(&f, "orders/create", &format!("evt-order-{i}"), &order(mins(1), 5000 + i)).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let p = w.profile().await.unwrap();
    assert_eq!(p.orders.count, WRITERS as u32, "every order counted exactly once");
    assert!((p.orders.revenue - WRITERS as f64 * 404.95).abs() < 1e-6, "revenue {}", p.orders.revenue);
    let conflicts = f.service().store.usage.conflicts.load(std::sync::atomic::Ordering::Relaxed);
    assert!(conflicts > 0, "the conditional writes really raced");
}

#[tokio::test(flavor = "multi_thread")]
async fn ses_bounces_and_complaints_suppress_and_an_unsubscribe_stops_later_sends() {
    for (kind, fixture_name) in [("bounce", "bounce"), ("complaint", "complaint"), ("unsubscribe", "")] {
        let w = World::new().await;
        let f = w.webhook().await;
        let first = w.abandon(&f).await;
        let c = w.checker().await;
        let sent = c.check(w.scheduled_input(&first).await).await.unwrap();
        assert_eq!(sent["decision"], "send");
        if kind == "unsubscribe" {
            let mime = w.moto.sent().remove(0);
            let url = mime.lines().find_map(|l| l.strip_prefix("List-Unsubscribe: <")).unwrap().trim_end_matches('>');
            let query = url.split_once('?').unwrap().1;
            let unsub = HttpFunction::new(w.stack().await, &["/unsubscribe"]);
            let req = http::Request::builder()
                .method("POST")
                .uri(format!("https://u.lambda-url.us-east-1.on.aws/unsubscribe?{query}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::Text("List-Unsubscribe=One-Click".into()))
                .unwrap();
            assert_eq!(unsub.handle(req).await.unwrap().status(), 200);
        } else {
            let path = repo().join(format!("fixtures/aws/ses/ses.event-publishing.{fixture_name}.json"));
            let mut detail: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            detail["mail"]["messageId"] = sent["message_id"].clone();
            let envelope = json!({"detail-type": "Email Bounced", "source": "aws.ses", "detail": detail});
            let out = ses_event(&w.stack().await, envelope).await.unwrap();
            assert_eq!(out["joined"], true, "{kind}: {out}");
        }
        // The next day the same shopper abandons again: nothing is sent.
        let later = checkout(mins(20));
        let mut again = later.clone();
        again["token"] = json!("second-checkout");
        assert_eq!(deliver(&f, "checkouts/create", "evt-again", &again).await, 200);
        let p = w.profile().await.unwrap();
        if kind != "unsubscribe" {
            assert!(p.suppressed.is_some(), "{kind} suppresses");
        }
        // The person cannot be emailed now: the new check is parked, with no
        // schedule behind it; run as the reconcile sweep would, it skips.
        let checks = p.pending_checks();
        assert_eq!(checks.len(), 1, "{kind}: {checks:?}");
        assert!(p.triggers.iter().filter_map(|t| t.pending.as_ref()).all(|p| p.parked), "{kind}: parked");
        for check in checks {
            let scheduled =
                aws_sdk_scheduler::Client::new(&w.sdk).get_schedule().name(check.name()).group_name(GROUP).send().await;
            let missing = scheduled.as_ref().err().and_then(|e| e.as_service_error());
            assert!(missing.is_some_and(|e| e.is_resource_not_found_exception()), "{kind}: {scheduled:?}");
            let out = c.check(serde_json::to_value(&check).unwrap()).await.unwrap();
            assert_eq!(out["decision"], "skip", "{kind}: {out}");
            let reason = if kind == "unsubscribe" { "no_consent" } else { "suppressed" };
            assert_eq!(out["reason"], reason, "{kind}: {out}");
        }
        assert_eq!(w.moto.sent().len(), 1, "{kind}: no further email");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_redact_leaves_no_item_of_the_person_and_shop_redact_none_of_the_shop() {
    let w = World::new().await;
    let f = w.webhook().await;
    let check = w.abandon(&f).await;
    let out = w.checker().await.check(w.scheduled_input(&check).await).await.unwrap();
    assert_eq!(out["decision"], "send");
    let profile_id = check.profile.clone();
    let owned_by_person = |keys: &[(String, String)]| {
        keys.iter().filter(|(pk, sk)| pk.contains(&profile_id) || sk == "ALIAS" || sk == "MESSAGE").count()
    };
    assert!(owned_by_person(&w.store().scan_keys().await.unwrap()) >= 3, "profile, aliases and the message record");
    let mut redact = fixture("customers__redact.json");
    redact["shop_domain"] = json!(SHOP);
    redact["customer"]["id"] = json!(CUSTOMER.parse::<u64>().unwrap());
    redact["customer"]["email"] = json!("john@example.com");
    assert_eq!(deliver(&f, "customers/redact", "evt-redact", &redact).await, 200);
    let left = w.store().scan_keys().await.unwrap();
    assert_eq!(owned_by_person(&left), 0, "left behind: {left:?}");
    // The pending check's schedule was withdrawn too... it had fired; a new
    // checkout then a shop redact leaves nothing of the shop.
    assert_eq!(deliver(&f, "checkouts/create", "evt-2", &checkout(mins(1))).await, 200);
    let mut shop = fixture("shop__redact.json");
    shop["shop_domain"] = json!(SHOP);
    assert_eq!(deliver(&f, "shop/redact", "evt-shop", &shop).await, 200);
    let left = w.store().scan_keys().await.unwrap();
    assert!(left.iter().all(|(pk, _)| pk == "ERASED"), "only erasure records (no personal data): {left:?}");
    // The sweep's second look finds nothing more and retires the records.
    let stack = w.stack().await;
    let later = Timestamp::now().saturating_add(SignedDuration::from_mins(1)).unwrap();
    assert_eq!(stack.store.finish_erasures(later).await.unwrap(), 0);
    assert_eq!(w.store().scan_keys().await.unwrap(), Vec::<(String, String)>::new());
}

/// The `by-owner` index is eventually consistent (moto's is not): an item
/// written just before an erase may be missing from the erase's query. Such
/// an item is stood in for by one written right after the erase with the
/// `ttl` of one written before it; the sweep's second look deletes it and
/// keeps an item really written after the erase.
#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_deletes_what_the_index_had_not_shown_the_erase_and_keeps_what_came_after() {
    let w = World::new().await;
    let f = w.webhook().await;
    let check = w.abandon(&f).await;
    let mut redact = fixture("customers__redact.json");
    redact["shop_domain"] = json!(SHOP);
    redact["customer"]["id"] = json!(CUSTOMER.parse::<u64>().unwrap());
    assert_eq!(deliver(&f, "customers/redact", "evt-redact", &redact).await, 200);
    let stack = w.stack().await;
    let owner = format!("P#{SHOP}#{}", check.profile);
    let ttl = |offset: i64| Timestamp::now().saturating_add(stack.settings.retention).unwrap().as_second() + offset;
    let dynamo = aws_sdk_dynamodb::Client::new(&w.sdk);
    for (pk, expires) in [("A#lagging", ttl(-60)), ("A#after", ttl(60))] {
        let item = [("pk", pk), ("sk", "ALIAS"), ("shop", SHOP), ("owner", &owner), ("profile", &check.profile)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned())))
            .chain([("ttl".to_owned(), aws_sdk_dynamodb::types::AttributeValue::N(expires.to_string()))])
            .collect();
        dynamo.put_item().table_name(TABLE).set_item(Some(item)).send().await.unwrap();
    }
    // Records younger than the cutoff wait for a later sweep.
    let earlier = Timestamp::now().saturating_sub(SignedDuration::from_mins(1)).unwrap();
    assert_eq!(stack.store.finish_erasures(earlier).await.unwrap(), 0);
    assert!(w.store().scan_keys().await.unwrap().iter().any(|(pk, _)| pk == "A#lagging"));
    let later = Timestamp::now().saturating_add(SignedDuration::from_mins(1)).unwrap();
    assert_eq!(stack.store.finish_erasures(later).await.unwrap(), 1, "the lagging alias");
    let left = w.store().scan_keys().await.unwrap();
    assert_eq!(left, vec![("A#after".to_owned(), "ALIAS".to_owned())], "written after the erase: kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_finds_and_runs_a_check_whose_schedule_was_deleted() {
    let w = World::with(&[("NUDGE_RECONCILE_GRACE_MINUTES", "5")]).await;
    let f = w.webhook().await;
    let check = w.abandon(&f).await;
    aws_sdk_scheduler::Client::new(&w.sdk).delete_schedule().name(check.name()).group_name(GROUP).send().await.unwrap();
    let c = w.checker().await;
    let out = c.reconcile(None).await.unwrap();
    assert_eq!(out["run"], 1, "{out}");
    assert_eq!(out["sent"], 1);
    assert_eq!(w.moto.sent().len(), 1);
    assert!(w.profile().await.unwrap().pending_checks().is_empty());
    let again = c.reconcile(None).await.unwrap();
    assert_eq!(again["run"], 0, "nothing left overdue: {again}");
    assert_eq!(w.moto.sent().len(), 1);
}

/// Three shoppers whose 10-minute checks came due 30, 10 and 20 minutes ago.
async fn three_overdue_checkouts(f: &HttpFunction) {
    for (i, ago) in [40, 20, 30].into_iter().enumerate() {
        let mut c = checkout(mins(ago));
        c["token"] = json!(format!("token-{i}"));
        c["cart_token"] = json!(format!("cart-{i}"));
        c["email"] = json!(format!("shopper-{i}@example.com"));
        c["customer"]["id"] = json!(1000 + i);
        c["customer"]["email"] = json!(format!("shopper-{i}@example.com"));
        assert_eq!(deliver(f, "checkouts/create", &format!("evt-{i}"), &c).await, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_takes_the_longest_overdue_profiles_first_up_to_its_limit() {
    let w = World::new().await;
    let f = w.webhook().await;
    three_overdue_checkouts(&f).await;
    let cutoff = Timestamp::now() - mins(5);
    let all = w.store().overdue(cutoff, 10).await.unwrap().profiles;
    assert_eq!(all.len(), 3);
    let oldest_two = w.store().overdue(cutoff, 2).await.unwrap().profiles;
    let customers: Vec<_> = oldest_two.iter().map(|p| p.customer_id.clone().unwrap_or_default()).collect();
    assert_eq!(customers, ["1000", "1002"], "due 30 and 20 minutes ago, in that order");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_runs_batch_after_batch_until_nothing_is_overdue() {
    let w = World::with(&[("NUDGE_RECONCILE_GRACE_MINUTES", "5")]).await;
    three_overdue_checkouts(&w.webhook().await).await;
    let deadline = Timestamp::now() + SignedDuration::from_mins(5);
    let out = w.checker().await.reconcile_in_batches(2, Some(deadline)).await.unwrap();
    assert_eq!((out["batches"].as_u64(), out["run"].as_u64()), (Some(2), Some(3)), "{out}");
    assert_eq!(out["profiles"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_profile_is_set_aside_and_the_sweep_runs_the_others() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let w = World::with(&[("NUDGE_RECONCILE_GRACE_MINUTES", "5")]).await;
    three_overdue_checkouts(&w.webhook().await).await;
    // The longest-overdue profile's document is garbage.
    let cutoff = Timestamp::now() - mins(5);
    let oldest = w.store().overdue(cutoff, 1).await.unwrap().profiles.remove(0);
    w.store()
        .client()
        .update_item()
        .table_name(w.store().table())
        .key("pk", AttributeValue::S(format!("P#{}#{}", oldest.shop, oldest.id)))
        .key("sk", AttributeValue::S("PROFILE".into()))
        .update_expression("SET docz = :g")
        .expression_attribute_values(":g", AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b"not deflate")))
        .send()
        .await
        .unwrap();
    let c = w.checker().await;
    let out = c.reconcile_in_batches(10, None).await.unwrap();
    assert_eq!((out["set_aside"].as_u64(), out["run"].as_u64()), (Some(1), Some(2)), "{out}");
    // It is out of the due index: the next sweep finds nothing left.
    let next = c.reconcile_in_batches(10, None).await.unwrap();
    assert_eq!((next["set_aside"].as_u64(), next["run"].as_u64()), (Some(0), Some(0)), "{next}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_whose_check_fails_in_every_sweep_is_set_aside_after_five_and_its_next_save_brings_it_back() {
    let w = World::with(&[("NUDGE_RECONCILE_GRACE_MINUTES", "5")]).await;
    three_overdue_checkouts(&w.webhook().await).await;
    let cutoff = Timestamp::now() - mins(5);
    let poison = w.store().overdue(cutoff, 1).await.unwrap().profiles.remove(0);
    let pk = format!("P#{}#{}", poison.shop, poison.id);
    // Every conditional write to that profile fails (as an item over the
    // size limit would): its check can never be claimed.
    let proxy = FaultProxy::start(&w.moto.url);
    proxy.fail_when("UpdateItem", &[&pk, "#v = :expected"], Fault::ServerError);
    let through = w.checker_through(&proxy).await;
    let max = nudge_app::usecase::MAX_SWEEP_FAILURES;
    for sweep in 1..=max {
        let out = through.reconcile_in_batches(10, None).await.unwrap();
        let expected_run = if sweep == 1 { 2 } else { 0 };
        let set_aside = u64::from(sweep == max);
        assert_eq!(
            (out["failed"].as_u64(), out["run"].as_u64(), out["set_aside"].as_u64()),
            (Some(1), Some(expected_run), Some(set_aside)),
            "sweep {sweep}: {out}"
        );
    }
    assert_eq!(w.moto.sent().len(), 2, "the other two shoppers were mailed in the first sweep");
    let item = |w: &World| {
        let (client, table, pk) = (w.store().client().clone(), w.store().table().to_owned(), pk.clone());
        async move {
            client
                .get_item()
                .table_name(table)
                .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
                .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()))
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };
    let aside = item(&w).await;
    let reason = aside["set_aside"].as_s().unwrap();
    assert!(reason.starts_with(&format!("{max} sweeps failed")), "{reason}");
    assert!(!aside.contains_key("due_bucket"), "out of the due index");
    let next = through.reconcile_in_batches(10, None).await.unwrap();
    assert_eq!((next["failed"].as_u64(), next["run"].as_u64()), (Some(0), Some(0)), "{next}");
    // The shopper comes back: the save puts the profile back in the sweep.
    let mut again = checkout(mins(30));
    again["token"] = json!("token-0b");
    again["cart_token"] = json!("cart-0b");
    again["email"] = json!("shopper-0@example.com");
    again["customer"]["id"] = json!(1000);
    again["customer"]["email"] = json!("shopper-0@example.com");
    assert_eq!(deliver(&w.webhook().await, "checkouts/create", "evt-back", &again).await, 200);
    let back = item(&w).await;
    assert!(back.contains_key("due_bucket") && !back.contains_key("set_aside") && !back.contains_key("sweep_failures"));
    let out = w.checker().await.reconcile_in_batches(10, None).await.unwrap();
    assert!(out["run"].as_u64().unwrap() >= 1, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_starts_no_further_batch_near_the_end_of_its_invocation() {
    let w = World::with(&[("NUDGE_RECONCILE_GRACE_MINUTES", "5")]).await;
    three_overdue_checkouts(&w.webhook().await).await;
    let c = w.checker().await;
    // Two minutes left: less than the reserve a batch needs.
    let deadline = Timestamp::now() + SignedDuration::from_mins(2);
    let out = c.reconcile_in_batches(2, Some(deadline)).await.unwrap();
    assert_eq!((out["batches"].as_u64(), out["run"].as_u64()), (Some(1), Some(2)), "{out}");
    // The next sweep takes the one left.
    let next = c.reconcile_in_batches(2, None).await.unwrap();
    assert_eq!(next["run"], 1, "{next}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_ssm_parameters_when_a_secrets_path_is_set() {
    let w = World::new().await;
    let ssm = aws_sdk_ssm::Client::new(&w.sdk);
    for (name, value) in
        [("NUDGE_SHOPIFY_SECRET", "from-ssm"), ("NUDGE_ALIAS_KEY", "a"), ("NUDGE_UNSUBSCRIBE_KEY", "u")]
    {
        ssm.put_parameter()
            .name(format!("/nudge/test/{name}"))
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
    }
    let mut env = w.env.clone();
    env.insert("NUDGE_SECRETS_PATH".into(), "/nudge/test".into());
    // The plain value must not be used once a path is set.
    env.insert("NUDGE_SHOPIFY_SECRET".into(), "plain-env-value".into());
    let stack = Stack::new(w.sdk.clone(), move |k| env.get(k).cloned()).await.unwrap();
    let f = HttpFunction::new(stack, &["/webhooks/shopify"]);
    let body = checkout(mins(1)).to_string();
    let mut req = shopify_request("checkouts/create", "evt-1", body.as_bytes());
    req.headers_mut()
        .insert("x-shopify-hmac-sha256", sign_base64_sha256(body.as_bytes(), b"from-ssm").parse().unwrap());
    assert_eq!(f.handle(req).await.unwrap().status(), 200);
    let stale = shopify_request("checkouts/create", "evt-2", body.as_bytes());
    assert_eq!(f.handle(stale).await.unwrap().status(), 401, "signed with the plain env value");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_decides_and_logs_but_mails_only_the_allowlist() {
    let w = World::with(&[("NUDGE_SANDBOX_ALLOWLIST", "qa@shop.test")]).await;
    let f = w.webhook().await;
    let check = w.abandon(&f).await;
    let out = w.checker().await.check(w.scheduled_input(&check).await).await.unwrap();
    assert_eq!(out["decision"], "skip", "{out}");
    assert_eq!(out["reason"], "sandbox");
    assert!(w.moto.sent().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_invocation_payload_in_events_is_accepted_by_its_function() {
    let w = World::new().await;
    let dir = repo().join("events");
    let mut seen = Vec::new();
    for (function, paths) in [
        ("shopify-webhook", &["/webhooks/shopify"][..]),
        ("woocommerce-webhook", &["/webhooks/woocommerce"][..]),
        ("track", &["/v1", "/webhooks/segment"][..]),
        ("unsubscribe", &["/unsubscribe"][..]),
    ] {
        let paths: &'static [&'static str] = Box::leak(paths.to_vec().into_boxed_slice());
        let f = HttpFunction::new(w.stack().await, paths);
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with(&format!("{function}.")) {
                continue;
            }
            let req = nudge_aws::lambda_http::request::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let resp = f.handle(req).await.unwrap();
            assert_eq!(resp.status(), 200, "{name}: {:?}", resp.body());
            seen.push(function);
        }
    }
    for function in ["shopify-webhook", "woocommerce-webhook", "track", "unsubscribe"] {
        assert!(seen.contains(&function), "no sample for {function}");
    }
    for name in ["ses-events.bounce.json", "ses-events.open.json"] {
        let payload: Value = serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        let out = ses_event(&w.stack().await, payload).await.unwrap();
        assert_eq!(out["joined"], false, "{name}: an unknown message joins nothing");
    }
}

/// The samples tell one story, as `make local-aws` and `make watch` run
/// them (with examples/demo, the rules of Cargo.toml's watch env): the
/// sample checkout arms the check `check.json` names, and that check sends
/// the reminder, however old the samples' dates.
#[tokio::test(flavor = "multi_thread")]
async fn the_sample_checkout_and_the_sample_check_lead_to_one_email() {
    let demo_rules = std::fs::read_to_string(repo().join("examples/demo/triggers.toml")).unwrap();
    let w = World::with_rules(&[("NUDGE_ALIAS_KEY", "nudge-test-alias-key")], &demo_rules).await;
    let dir = repo().join("events");
    let sample = std::fs::read_to_string(dir.join("shopify-webhook.checkouts-create.json")).unwrap();
    let resp = w.webhook().await.handle(nudge_aws::lambda_http::request::from_str(&sample).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    let check: Value = serde_json::from_slice(&std::fs::read(dir.join("check.json")).unwrap()).unwrap();
    let armed = w.profile().await.expect("the sample checkout's profile").pending_checks();
    assert_eq!(armed, vec![serde_json::from_value::<Check>(check.clone()).unwrap()], "check.json is what it armed");
    assert_eq!(w.scheduled_input(&armed[0]).await, check, "and what Scheduler would pass");
    let out = w.checker().await.check(check).await.unwrap();
    assert_eq!(out["decision"], "send", "{out}");
    let sent = w.moto.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("example@email.com"), "to the checkout's address");
}

// The attacks of docs/security.md against the Lambda handlers.

/// A POST to the unsubscribe function (which also serves `/confirm`).
async fn link_post(w: &World, path_and_query: &str) -> (u16, String) {
    let f = HttpFunction::new(w.stack().await, &["/unsubscribe", "/confirm"]);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("https://api.example{path_and_query}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::Text("List-Unsubscribe=One-Click".into()))
        .unwrap();
    let resp = f.handle(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = match resp.into_body() {
        Body::Text(t) => t,
        other => format!("{other:?}"),
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn on_lambda_a_relabelled_topic_a_foreign_shop_or_a_fresh_event_id_changes_nothing() {
    let w = World::new().await;
    let f = w.webhook().await;
    // One body throughout: its `updated_at` is part of its dedupe id.
    let body = checkout(mins(20));
    assert_eq!(deliver(&f, "checkouts/create", "evt-1", &body).await, 200);
    let before = w.profile().await.unwrap();
    for topic in ["customers/redact", "shop/redact", "customers/data_request", "orders/create"] {
        assert_eq!(deliver(&f, topic, "evt-relabelled", &body).await, 400, "{topic}");
    }
    let mut foreign = fixture("shop__redact.json");
    foreign["shop_domain"] = json!("victim.myshopify.com");
    let raw = foreign.to_string();
    let mut req = shopify_request("shop/redact", "evt-foreign", raw.as_bytes());
    req.headers_mut().insert("x-shopify-shop-domain", http::HeaderValue::from_static("victim.myshopify.com"));
    assert_eq!(f.handle(req).await.unwrap().status(), 401, "a shop this stack does not serve");
    // The same signed checkout under a new, unsigned event id.
    assert_eq!(deliver(&f, "checkouts/create", "evt-fresh-id", &body).await, 200);
    let after = w.profile().await.expect("nothing was erased");
    assert_eq!(after.version, before.version, "applied once: not even saved again");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_lambda_the_browser_key_gets_double_opt_in_never_consent_and_cannot_replace_an_address() {
    let w = World::new().await;
    let track = HttpFunction::new(w.stack().await, &["/v1", "/webhooks/segment"]);
    let identify = |id: &str, traits: Value| json!({"userId": CUSTOMER, "messageId": id, "traits": traits});
    let subscribe = identify("m1", json!({"email": "victim@example.com", "email_marketing_consent": "subscribed"}));
    assert_eq!(segment(&track, "identify", subscribe).await, 200);
    let p = w.profile().await.unwrap();
    assert_eq!(p.consent.state, nudge_core::ConsentState::NotSubscribed, "a public key cannot grant consent");
    // The confirmation check was scheduled; the check function sends it.
    let confirm = p.pending_checks().into_iter().find(|c| c.trigger == "confirm-subscription").expect("scheduled");
    let out = w.checker().await.check(w.scheduled_input(&confirm).await).await.unwrap();
    assert_eq!(out["decision"], "send", "{out}");
    let mime = w.moto.sent().remove(0);
    assert!(mime.contains("Subject: Please confirm"), "{mime}");
    // A browser identify naming another address changes nothing of it.
    let replace = identify("m2", json!({"email": "attacker@example.com"}));
    assert_eq!(segment(&track, "identify", replace).await, 200);
    assert_eq!(w.profile().await.unwrap().email.as_deref(), Some("victim@example.com"));
    // The person follows the link: subscribed, and the source says how.
    let key = nudge_app::unsubscribe::UnsubscribeKey::new("nudge-test-unsubscribe-key");
    let query = key.confirm_query(SHOP, &p.id, Timestamp::now());
    let (tampered, _) = link_post(&w, &format!("/confirm?{}", query.replacen("t=", "t=A", 1))).await;
    assert_eq!(tampered, 401);
    assert_eq!(w.profile().await.unwrap().consent.state, nudge_core::ConsentState::NotSubscribed);
    let (status, page) = link_post(&w, &format!("/confirm?{query}")).await;
    assert_eq!(status, 200, "{page}");
    let c = w.profile().await.unwrap().consent;
    assert_eq!(
        (c.state, c.source),
        (nudge_core::ConsentState::Subscribed, Some(nudge_core::ConsentSource::Confirmation))
    );
}

/// An anonymous shopper (profile A, subscribed by the shop's backend) later
/// identified as the customer: A is merged into the customer's profile.
async fn merged_on_lambda(w: &World) -> (String, String) {
    let track = HttpFunction::new(w.stack().await, &["/v1", "/webhooks/segment"]);
    let server = "nudge-test-server-key";
    let anon = json!({"anonymousId": "anon-1", "messageId": "m1",
        "traits": {"email": "ada@example.com", "email_marketing_consent": "subscribed"}});
    assert_eq!(segment_with(&track, server, "identify", anon).await, 200);
    let alias = Alias { kind: AliasKind::Anonymous, value: "anon-1".into() };
    let a = w.store().resolve(SHOP, &[alias]).await.unwrap().profile.unwrap();
    let known = json!({"userId": CUSTOMER, "messageId": "m2", "traits": {"first_name": "Ada"}});
    assert_eq!(segment_with(&track, server, "identify", known).await, 200);
    let link = json!({"userId": CUSTOMER, "anonymousId": "anon-1", "messageId": "m3"});
    assert_eq!(segment_with(&track, server, "identify", link).await, 200);
    let b = w.profile().await.unwrap();
    assert_ne!(a, b.id, "merged into the customer's profile");
    assert!(w.store().load(SHOP, &a).await.unwrap().is_none(), "A is gone");
    (a, b.id)
}

#[tokio::test(flavor = "multi_thread")]
async fn on_lambda_an_unsubscribe_link_of_a_merged_away_profile_unsubscribes_the_survivor() {
    let w = World::new().await;
    let (a, b) = merged_on_lambda(&w).await;
    let key = nudge_app::unsubscribe::UnsubscribeKey::new("nudge-test-unsubscribe-key");
    let (status, page) = link_post(&w, &format!("/unsubscribe?{}", key.query(SHOP, &a, Timestamp::now()))).await;
    assert_eq!(status, 200);
    assert!(page.contains("You are unsubscribed"), "{page}");
    let p = w.profile().await.unwrap();
    assert_eq!((p.id, p.consent.state), (b, nudge_core::ConsentState::Unsubscribed));
}

#[tokio::test(flavor = "multi_thread")]
async fn on_lambda_customers_redact_after_a_merge_leaves_nothing_of_either_profile() {
    let w = World::new().await;
    let (a, b) = merged_on_lambda(&w).await;
    let mut redact = fixture("customers__redact.json");
    redact["shop_domain"] = json!(SHOP);
    redact["customer"]["id"] = json!(CUSTOMER.parse::<u64>().unwrap());
    assert_eq!(deliver(&w.webhook().await, "customers/redact", "evt-redact", &redact).await, 200);
    let left = w.store().scan_keys().await.unwrap();
    let of_them: Vec<_> =
        left.iter().filter(|(pk, _)| pk.contains(&a) || pk.contains(&b) || pk.contains("anon-1")).collect();
    assert!(of_them.is_empty(), "left behind: {of_them:?}");
}

// ------------------------------------------------------------------ faults
//
// A fault-injecting HTTP proxy between the real SDK and moto: per operation
// (DynamoDB's `X-Amz-Target`, SES's `SendEmail` by its path) and per call,
// it throttles, answers 500, resets the connection, or lets moto apply the
// request and then drops the answer. moto has no fault injection of its own.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Throttle,
    ServerError,
    Reset,
    ApplyThenDrop,
    /// Forwarded, and answered only after this long.
    Delay(Duration),
}

/// Every fault, the delay just past the attempt timeout of the calls
/// (SendEmail's own, longer timeout has its own test below).
const FAULTS: [Fault; 5] = [
    Fault::Throttle,
    Fault::ServerError,
    Fault::Reset,
    Fault::ApplyThenDrop,
    Fault::Delay(Duration::from_millis(nudge_aws::lambda::ATTEMPT_TIMEOUT.as_millis() as u64 + 1_000)),
];

type Shared<T> = std::sync::Arc<std::sync::Mutex<Vec<T>>>;

#[derive(Clone)]
struct FaultProxy {
    url: String,
    /// (operation, nth call of it, fault)
    rules: Shared<(String, u32, Fault)>,
    /// (operation, strings its body contains, fault): every such call.
    matching: Shared<(String, Vec<String>, Fault)>,
    calls: std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>>,
}

impl FaultProxy {
    fn start(upstream: &str) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let proxy =
            FaultProxy { url, rules: Default::default(), matching: Default::default(), calls: Default::default() };
        let p = proxy.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (p, upstream) = (p.clone(), upstream.clone());
                std::thread::spawn(move || p.handle(conn, &upstream));
            }
        });
        proxy
    }

    /// The `nth` call (from 1) of `op` gets `fault`.
    fn fail(&self, op: &str, nth: u32, fault: Fault) {
        self.rules.lock().unwrap().push((op.to_owned(), nth, fault));
    }

    /// The first four calls of `op` get `fault` (more than the SDK's three
    /// attempts: the call fails), but a delay only the first (a hang the
    /// attempt timeout cuts short, then a retry that gets through).
    fn fail_repeatedly(&self, op: &str, fault: Fault) {
        let times = if matches!(fault, Fault::Delay(_)) { 1 } else { 4 };
        for nth in 1..=times {
            self.fail(op, nth, fault);
        }
    }

    /// Every call of `op` whose body contains each of `needles` gets `fault`.
    fn fail_when(&self, op: &str, needles: &[&str], fault: Fault) {
        let needles = needles.iter().map(|n| n.to_string()).collect();
        self.matching.lock().unwrap().push((op.to_owned(), needles, fault));
    }

    fn calls(&self, op: &str) -> u32 {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    fn handle(&self, mut client: TcpStream, upstream: &str) {
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let end = line == "\r\n";
            head.push(line);
            if end {
                break;
            }
        }
        let header = |name: &str| {
            head.iter().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let path = head[0].split_whitespace().nth(1).unwrap_or("").to_owned();
        let op = match header("x-amz-target") {
            Some(t) => t.rsplit('.').next().unwrap_or_default().to_owned(),
            None if path.starts_with("/v2/email/outbound-emails") => "SendEmail".to_owned(),
            // Scheduler: `POST /schedules/<name>` creates one.
            None if path.starts_with("/schedules/") => {
                format!("{} /schedules", head[0].split_whitespace().next().unwrap_or_default())
            }
            None => path.split('?').next().unwrap_or_default().to_owned(),
        };
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let c = calls.entry(op.clone()).or_default();
            *c += 1;
            *c
        };
        let text = String::from_utf8_lossy(&body);
        let fault =
            self.rules.lock().unwrap().iter().find(|(o, k, _)| *o == op && *k == n).map(|r| r.2).or_else(|| {
                let matching = self.matching.lock().unwrap();
                matching
                    .iter()
                    .find(|(o, needles, _)| *o == op && needles.iter().all(|x| text.contains(x)))
                    .map(|r| r.2)
            });
        let respond = |client: &mut TcpStream, status: &str, headers: &str, body: &str| {
            let _ = write!(
                client,
                "HTTP/1.1 {status}\r\n{headers}content-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        };
        match fault {
            Some(Fault::Throttle) if op == "SendEmail" => respond(
                &mut client,
                "429 Too Many Requests",
                "x-amzn-errortype: TooManyRequestsException\r\n",
                r#"{"message":"Maximum sending rate exceeded."}"#,
            ),
            Some(Fault::Throttle) => respond(
                &mut client,
                "400 Bad Request",
                "",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#,
            ),
            Some(Fault::ServerError) => respond(
                &mut client,
                "500 Internal Server Error",
                "x-amzn-errortype: InternalFailure\r\n",
                r#"{"__type":"InternalFailure","message":"injected"}"#,
            ),
            Some(Fault::Reset) => {}
            Some(Fault::Delay(d)) => {
                let answer = forward(upstream, &head, &body);
                std::thread::sleep(d);
                let _ = client.write_all(&answer);
            }
            Some(Fault::ApplyThenDrop) | None => {
                let answer = forward(upstream, &head, &body);
                if fault.is_none() {
                    let _ = client.write_all(&answer);
                }
            }
        }
        let _ = client.shutdown(std::net::Shutdown::Both);
    }
}

/// Sends the request to moto on a connection of its own and returns the
/// whole answer.
fn forward(upstream: &str, head: &[String], body: &[u8]) -> Vec<u8> {
    let mut up = TcpStream::connect(upstream).unwrap();
    for line in head {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") || line == "\r\n" {
            continue;
        }
        up.write_all(line.as_bytes()).unwrap();
    }
    up.write_all(b"connection: close\r\n\r\n").unwrap();
    up.write_all(body).unwrap();
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    answer
}

impl World {
    /// A check function whose AWS calls go through `proxy`, with the SDK's
    /// retries as in production.
    async fn checker_through(&self, proxy: &FaultProxy) -> CheckFunction {
        CheckFunction::new(self.stack_through(proxy).await).unwrap()
    }

    async fn stack_through(&self, proxy: &FaultProxy) -> Stack {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&proxy.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
            .load()
            .await;
        let env = self.env.clone();
        Stack::new(sdk, move |k| env.get(k).cloned()).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_webhook_s_calls_lose_no_episode_and_send_one_email() {
    // Each fault on each call an ingest makes; Shopify then delivers again
    // (it retries anything but a 2xx), and the check is decided by the
    // schedule or, if its creation was lost, by reconcile.
    for op in ["BatchGetItem", "UpdateItem", "PutItem", "BatchWriteItem", "POST /schedules"] {
        for fault in FAULTS {
            let w = World::with(&[("NUDGE_RECONCILE_GRACE_MINUTES", "5")]).await;
            let proxy = FaultProxy::start(&w.moto.url);
            proxy.fail_repeatedly(op, fault);
            let through = HttpFunction::new(w.stack_through(&proxy).await, &["/webhooks/shopify"]);
            let body = checkout(mins(20));
            let first = deliver(&through, "checkouts/create", "evt-1", &body).await;
            let retry = deliver(&w.webhook().await, "checkouts/create", "evt-1", &body).await;
            let case = format!("{op} {fault:?}: {first} then {retry}");
            assert_eq!(retry, 200, "{case}");
            let out = w.checker().await.reconcile_in_batches(10, None).await.unwrap();
            let p = w.profile().await.unwrap_or_else(|| panic!("{case}: no profile"));
            assert_eq!(w.moto.sent().len(), 1, "{case}: reconcile {out}");
            assert!(p.pending_checks().is_empty(), "{case}: still pending {:?}", p.pending_checks());
            assert_eq!(p.sends.len(), 1, "{case}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_write_applied_but_whose_answer_was_lost_still_sends_once() {
    let w = World::new().await;
    let check = w.abandon(&w.webhook().await).await;
    let input = w.scheduled_input(&check).await;
    let proxy = FaultProxy::start(&w.moto.url);
    // The first UpdateItem of the check is its claim: moto applies it, the
    // answer never arrives, the SDK retries, and the condition refuses.
    proxy.fail("UpdateItem", 1, Fault::ApplyThenDrop);
    let out = w.checker_through(&proxy).await.check(input.clone()).await.unwrap();
    assert_eq!(out["decision"], "send", "{out}");
    assert_eq!(w.moto.sent().len(), 1);
    assert!(proxy.calls("UpdateItem") >= 3, "claim, its retry, the settle");
    // A redelivery changes nothing.
    let again = w.checker().await.check(input).await.unwrap();
    assert_eq!(again["reason"], "duplicate", "{again}");
    assert_eq!(w.moto.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_ses_accepted_whose_answer_was_lost_is_unconfirmed_and_never_sent_again() {
    let w = World::new().await;
    let check = w.abandon(&w.webhook().await).await;
    let input = w.scheduled_input(&check).await;
    let proxy = FaultProxy::start(&w.moto.url);
    proxy.fail("SendEmail", 1, Fault::ApplyThenDrop);
    let out = w.checker_through(&proxy).await.check(input.clone()).await.unwrap();
    assert_eq!((out["decision"].as_str(), out["reason"].as_str()), (Some("skip"), Some("unconfirmed")), "{out}");
    assert_eq!(proxy.calls("SendEmail"), 1, "no retry of a send that may have been accepted");
    assert_eq!(w.moto.sent().len(), 1, "SES did take it");
    let again = w.checker().await.check(input).await.unwrap();
    assert_eq!(again["reason"], "duplicate", "{again}");
    assert_eq!(w.moto.sent().len(), 1);
    let p = w.profile().await.unwrap();
    assert!(p.sends.is_empty(), "not counted: nothing confirmed it");
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_check_s_calls_end_in_one_decision_and_at_most_one_email() {
    // Each fault on each call the check makes, then the check delivered
    // again (as Scheduler's retry, the dead-letter redrive or reconcile do).
    for op in ["GetItem", "UpdateItem", "SendEmail", "PutItem"] {
        for fault in FAULTS {
            let w = World::new().await;
            let check = w.abandon(&w.webhook().await).await;
            let input = w.scheduled_input(&check).await;
            let proxy = FaultProxy::start(&w.moto.url);
            proxy.fail_repeatedly(op, fault);
            let first = w.checker_through(&proxy).await.check(input.clone()).await;
            let second = w.checker().await.check(input.clone()).await.unwrap();
            let sent = w.moto.sent().len();
            let case = format!("{op} {fault:?}: first {first:?}, then {second}");
            assert!(sent <= 1, "{case}: {sent} emails");
            let p = w.profile().await.unwrap();
            let state = p.state("cart-abandoned").unwrap();
            let outcomes = [first.as_ref().ok().cloned(), Some(second.clone())];
            let finals: Vec<_> =
                outcomes.iter().flatten().filter(|o| o["decision"] != "defer" && o["reason"] != "duplicate").collect();
            match (&state.pending, sent) {
                // Still pending: deferred or claimed (a run that stopped
                // mid-way; reconcile settles it once the claim lapses).
                (Some(pending), _) => {
                    assert!(finals.is_empty(), "{case}: a final decision while pending");
                    assert!(pending.claim.is_some() || sent == 0, "{case}");
                }
                (None, _) => assert_eq!(finals.len(), 1, "{case}: {finals:?}"),
            }
            // An email went out only where the decision says it may have.
            if sent == 1 && state.pending.is_none() {
                assert!(finals.iter().any(|o| o["decision"] == "send" || o["reason"] == "unconfirmed"), "{case}");
            }
            if sent == 0 || finals.iter().all(|o| o["decision"] != "send") {
                assert!(p.sends.is_empty(), "{case}: a send not confirmed counts");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_invocations_of_the_same_check_at_once_send_one_email() {
    let w = World::new().await;
    let check = w.abandon(&w.webhook().await).await;
    let input = w.scheduled_input(&check).await;
    let (a, b) = (w.checker().await, w.checker().await);
    let (x, y) = tokio::join!(a.check(input.clone()), b.check(input.clone()));
    let outcomes = [x.unwrap(), y.unwrap()];
    assert_eq!(w.moto.sent().len(), 1, "{outcomes:?}");
    let sends = outcomes.iter().filter(|o| o["decision"] == "send").count();
    assert_eq!(sends, 1, "{outcomes:?}");
    assert!(
        outcomes.iter().any(|o| o["reason"] == "in_flight" || o["reason"] == "duplicate"),
        "the other changes nothing: {outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_killed_after_its_claim_or_after_sending_is_settled_by_reconcile_without_a_second_email() {
    for sent_before_the_kill in [false, true] {
        let w = World::with(&[("NUDGE_RECONCILE_GRACE_MINUTES", "5")]).await;
        // A checkout 40 minutes ago: its check came due 30 minutes ago.
        assert_eq!(deliver(&w.webhook().await, "checkouts/create", "evt-1", &checkout(mins(40))).await, 200);
        let check = w.profile().await.unwrap().pending_checks().remove(0);
        let stack = w.stack().await;
        // The killed run's claim, made 20 minutes ago (its lease has lapsed).
        let claimed_at = Timestamp::now() - mins(20);
        let p = w.profile().await.unwrap();
        w.store()
            .update(SHOP, &p.id, false, |p| {
                let (d, _) = p.claim(&check, &stack.rules, claimed_at, 99);
                assert_eq!(d.decision, nudge_core::Outcome::Send);
                nudge_app::ports::Change { changed: true, value: () }
            })
            .await
            .unwrap();
        if sent_before_the_kill {
            let ses = aws_sdk_sesv2::Client::new(&w.sdk);
            let raw = aws_sdk_sesv2::types::RawMessage::builder()
                .data(aws_sdk_sesv2::primitives::Blob::new(
                    &b"From: shop@example.com\r\nTo: x@example.com\r\nSubject: s\r\n\r\nhi"[..],
                ))
                .build()
                .unwrap();
            ses.send_email()
                .from_email_address("shop@example.com")
                .destination(aws_sdk_sesv2::types::Destination::builder().to_addresses("x@example.com").build())
                .content(aws_sdk_sesv2::types::EmailContent::builder().raw(raw).build())
                .send()
                .await
                .unwrap();
        }
        let out = w.checker().await.reconcile_in_batches(10, None).await.unwrap();
        assert_eq!(out["run"], 1, "{out}");
        let p = w.profile().await.unwrap();
        assert!(p.pending_checks().is_empty(), "settled");
        assert!(p.sends.is_empty(), "not confirmed: not counted");
        let expected = usize::from(sent_before_the_kill);
        assert_eq!(w.moto.sent().len(), expected, "never sent again");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_ses_answers_only_after_the_client_timeout_is_unconfirmed_and_never_resent() {
    let w = World::new().await;
    let check = w.abandon(&w.webhook().await).await;
    let input = w.scheduled_input(&check).await;
    let proxy = FaultProxy::start(&w.moto.url);
    proxy.fail("SendEmail", 1, Fault::Delay(nudge_aws::ses::SEND_TIMEOUT + Duration::from_secs(2)));
    let started = Instant::now();
    let out = w.checker_through(&proxy).await.check(input).await.unwrap();
    assert!(started.elapsed() < nudge_aws::ses::SEND_TIMEOUT + Duration::from_secs(2), "gave up at the timeout");
    assert_eq!((out["decision"].as_str(), out["reason"].as_str()), (Some("skip"), Some("unconfirmed")), "{out}");
    assert_eq!(proxy.calls("SendEmail"), 1);
    assert_eq!(w.moto.sent().len(), 1, "SES took it after all: one email, never two");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dynamodb_read_that_hangs_is_cut_at_the_attempt_timeout_and_retried() {
    let w = World::new().await;
    let check = w.abandon(&w.webhook().await).await;
    let input = w.scheduled_input(&check).await;
    let proxy = FaultProxy::start(&w.moto.url);
    // A connection that goes silent (the answer comes a minute later).
    proxy.fail("GetItem", 1, Fault::Delay(Duration::from_secs(60)));
    let started = Instant::now();
    let out = w.checker_through(&proxy).await.check(input).await.unwrap();
    let took = started.elapsed();
    assert!(took < nudge_aws::lambda::ATTEMPT_TIMEOUT * 3, "given up at the attempt timeout: {took:?}");
    assert_eq!(out["decision"], "send", "{out}");
    assert!(proxy.calls("GetItem") >= 2, "retried");
    assert_eq!(w.moto.sent().len(), 1);
}

/// The rules of both differential tests, with this one's durations.
fn differential_rules() -> String {
    std::fs::read_to_string(repo().join("fixtures/nudge/differential-triggers.toml"))
        .unwrap()
        .replace("DELAY", "20s")
        .replace("QUIET", "20s")
        .replace("THANKS", "20s")
}

/// The AWS half of the guard of "replay is production" (nudge serve's is in
/// cli/tests/serve.rs): one seeded workload — shoppers browsing
/// anonymously and then identifying (a merge), checking out, buying inside
/// or after the delay or late, opting out, subscribing only after their
/// episode was armed (parked, then asked for), never subscribing (parked,
/// then decided by their next event), messages repeated — sent to the track
/// function over seconds, with every check invoked when its schedule comes
/// due, as Scheduler would: a driver polls the schedules moto holds and runs
/// each at its `at()` time, which is at least a minute after the schedule
/// was created. Then the functions' own event log, the `nudge event`s they
/// published on the bus, is replayed with the same rules, alias key and
/// that one-minute scheduler lead: the decision log the functions published
/// equals the replay's, line for line (all but the wall-clock `at`).
#[tokio::test(flavor = "multi_thread")]
async fn replaying_the_functions_own_event_log_reproduces_their_decision_log() {
    let w = World::with_rules(&[("NUDGE_EVENT_BUS", "nudge")], &differential_rules()).await;
    let queue = decisions_queue(&w).await;
    let track = std::sync::Arc::new(HttpFunction::new(w.stack().await, &["/v1"]));
    let checker = std::sync::Arc::new(w.checker().await);
    let scheduler = aws_sdk_scheduler::Client::new(&w.sdk);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = {
        let (checker, scheduler, stop) = (checker.clone(), scheduler.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let listed = scheduler.list_schedules().group_name(GROUP).send().await.unwrap();
                for summary in listed.schedules() {
                    let name = summary.name().unwrap();
                    // A schedule may be withdrawn meanwhile (an order cancels it).
                    let Ok(s) = scheduler.get_schedule().name(name).group_name(GROUP).send().await else { continue };
                    let input: Value = serde_json::from_str(s.target().unwrap().input().unwrap()).unwrap();
                    // `at(2026-12-08T00:01:05)`, UTC.
                    let at = s.schedule_expression().unwrap().trim_start_matches("at(").trim_end_matches(')');
                    let runs_at =
                        at.parse::<jiff::civil::DateTime>().unwrap().to_zoned_datetime(jiff::tz::TimeZone::UTC);
                    if runs_at.unwrap().timestamp() <= Timestamp::now() {
                        checker.check(input).await.unwrap();
                        let _ = scheduler.delete_schedule().name(name).group_name(GROUP).send().await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    // A step of the workload is five seconds: moto takes ~100 ms a
    // message, an identify that merges several, and other tests run beside.
    let start = Timestamp::now() + SignedDuration::from_millis(500);
    let step = |tick: i64| start + SignedDuration::from_secs(5 * tick);
    let stamp = |tick: i64| step(tick).to_string();
    // Per second of the run, each shopper's messages in order.
    let mut ticks: std::collections::BTreeMap<i64, Vec<Vec<Value>>> = Default::default();
    for i in 0..8u64 {
        let mut at: std::collections::BTreeMap<i64, Vec<Value>> = Default::default();
        let (anon, user, product) = (format!("anon-{i}"), format!("user-{i}"), format!("p-{}", i % 4));
        // Shopper 6 subscribes only after checking out; shopper 7 never.
        let (late_subscriber, never_subscribes) = (i == 6, i == 7);
        at.entry(0).or_default().push(json!({"type": "track", "event": "Product Viewed", "anonymousId": anon,
            "messageId": format!("v0-{i}"), "timestamp": stamp(0), "properties": {"product_id": product}}));
        if i % 3 == 1 {
            at.entry(0).or_default().push(json!({"type": "track", "event": "Product Added to Wishlist",
                "anonymousId": anon, "messageId": format!("w-{i}"), "timestamp": stamp(0),
                "properties": {"product_id": product}}));
        }
        let consent = if late_subscriber || never_subscribes { "not_subscribed" } else { "subscribed" };
        let identify = json!({"type": "identify", "userId": user, "anonymousId": anon,
            "messageId": format!("id-{i}"), "timestamp": stamp(1),
            "traits": {"email": format!("shopper-{i}@example.com"), "email_marketing_consent": consent}});
        at.entry(1).or_default().push(identify.clone());
        if i % 4 != 3 {
            at.entry(1).or_default().push(json!({"type": "track", "event": "Product Viewed", "userId": user,
                "messageId": format!("v1-{i}"), "timestamp": stamp(1), "properties": {"product_id": product}}));
        }
        let checks_out = i % 6 != 5;
        let checkout = json!({"type": "track", "event": "Checkout Started", "userId": user,
            "messageId": format!("c-{i}"), "timestamp": stamp(2),
            "properties": {"checkout_id": format!("chk-{i}"), "value": 40}});
        if checks_out {
            at.entry(2).or_default().push(checkout.clone());
        }
        let order = |tick: i64| {
            json!({"type": "track", "event": "Order Completed", "userId": user,
                "messageId": format!("o-{i}"), "timestamp": stamp(tick),
                "properties": {"checkout_id": format!("chk-{i}"), "order_id": format!("order-{i}"),
                    "total": if i % 2 == 0 { 40 } else { 20 }}})
        };
        if late_subscriber {
            // Asked for at step 3, so run a minute after that, not when due.
            at.entry(3).or_default().push(json!({"type": "identify", "userId": user,
                "messageId": format!("sub-{i}"), "timestamp": stamp(3),
                "traits": {"email_marketing_consent": "subscribed"}}));
        }
        if never_subscribes {
            // Their next event, after a scheduler could have run the parked
            // checks, decides those first.
            at.entry(16).or_default().push(json!({"type": "page", "name": "Home", "userId": user,
                "messageId": format!("back-{i}"), "timestamp": stamp(16)}));
        }
        // Each shopper one story: bought inside the delay, after the
        // reminder, inside it but delivered late, opted out, or nothing.
        match i % 5 {
            _ if late_subscriber || never_subscribes => {}
            0 if checks_out => at.entry(3).or_default().push(order(3)),
            1 => at.entry(8).or_default().push(order(8)),
            2 if checks_out => at.entry(7).or_default().push(order(3)),
            3 => at.entry(3).or_default().push(json!({"type": "identify", "userId": user,
                "messageId": format!("out-{i}"), "timestamp": stamp(3),
                "traits": {"email_marketing_consent": "unsubscribed"}})),
            _ => {}
        }
        if i % 3 == 0 {
            // Delivered again (the same message ids).
            at.entry(3).or_default().push(identify);
            if checks_out {
                at.entry(8).or_default().push(checkout);
            }
        }
        for (tick, messages) in at {
            ticks.entry(tick).or_default().push(messages);
        }
    }
    // Checks are due at seconds 25 (browse, armed at step 1) and 30 (cart,
    // step 2), and after orders, and run a minute after they were asked
    // for (65-105 s);
    // messages go at steps 0-3 (0-19.5 s), 7 and 8 (35-44.5 s) and 16
    // (80 s: shopper 7 only, who has no schedules), the shoppers side by
    // side, each shopper's in order.
    for (tick, shoppers) in ticks {
        let wait = step(tick).duration_since(Timestamp::now());
        if wait.is_positive() {
            tokio::time::sleep(Duration::from_nanos(wait.as_nanos() as u64)).await;
        }
        let sends: Vec<_> = shoppers
            .into_iter()
            .map(|messages| {
                let track = track.clone();
                tokio::spawn(async move {
                    for m in messages {
                        let kind = m["type"].as_str().unwrap().to_owned();
                        assert_eq!(segment_with(&track, "nudge-test-server-key", &kind, m).await, 200);
                    }
                })
            })
            .collect();
        for s in sends {
            s.await.unwrap();
        }
        let late = Timestamp::now().duration_since(step(tick));
        assert!(late < SignedDuration::from_millis(4_500), "step {tick}'s messages took {late}: the margins are gone");
    }
    // Until every schedule has been run (the last at about 105 s).
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let left = scheduler.list_schedules().group_name(GROUP).send().await.unwrap().schedules().len();
        if left == 0 || Instant::now() > deadline {
            assert_eq!(left, 0, "schedules never run");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    driver.await.unwrap();

    let published = published_with_types(&w, &queue).await;
    // Keys in one order whatever the JSON on the bus had.
    let comparable = |decisions: Vec<Value>| {
        let mut lines: Vec<String> = decisions
            .into_iter()
            .map(|d| {
                let mut fields: std::collections::BTreeMap<String, Value> = serde_json::from_value(d).unwrap();
                fields.remove("at");
                serde_json::to_string(&fields).unwrap()
            })
            .collect();
        lines.sort();
        lines
    };
    let on_lambda =
        comparable(published.iter().filter(|(t, _)| t == "nudge decision").map(|(_, d)| d.clone()).collect());
    let mut events: Vec<nudge_core::Event> = published
        .iter()
        .filter(|(t, _)| t == "nudge event")
        .map(|(_, e)| serde_json::from_value(e.clone()).unwrap())
        .collect();
    events.sort_by(|a, b| (a.received_at, a.id.as_str()).cmp(&(b.received_at, b.id.as_str())));
    let rules = nudge_core::Triggers::parse(&differential_rules(), "triggers.toml", None).unwrap();
    let mut replay = nudge_app::Replay::new(&rules, nudge_app::AliasKey::new(b"alias-key"));
    replay.scheduler = nudge_app::memory::MemoryScheduler::new().with_lead(SignedDuration::from_mins(1));
    let mut replayed = Vec::new();
    let arrivals: Vec<_> = events.iter().map(|e| (e, e.received_at.unwrap())).collect();
    replay.push_events(&arrivals, true, &mut |d| replayed.push(serde_json::to_value(d).unwrap())).unwrap();
    replay.finish(&mut |d| replayed.push(serde_json::to_value(d).unwrap())).unwrap();
    let replayed = comparable(replayed);
    eprintln!("differential on Lambda: {} events, {} decisions", events.len(), on_lambda.len());
    for outcome in [
        r#""decision":"send""#,
        r#""reason":"converted""#,
        r#""reason":"no_consent""#,
        r#""trigger":"wishlist-nudge""#,
        r#""trigger":"thank-you""#,
    ] {
        assert!(on_lambda.iter().any(|d| d.contains(outcome)), "the workload reached no {outcome}");
    }
    // The lead is what makes them equal: checks run exactly when due
    // decide otherwise in this workload.
    let mut exact = nudge_app::Replay::new(&rules, nudge_app::AliasKey::new(b"alias-key"));
    let mut exactly_due = Vec::new();
    exact.push_events(&arrivals, true, &mut |d| exactly_due.push(serde_json::to_value(d).unwrap())).unwrap();
    exact.finish(&mut |d| exactly_due.push(serde_json::to_value(d).unwrap())).unwrap();
    assert_ne!(comparable(exactly_due), on_lambda, "the workload never depends on the scheduler's lead");
    if on_lambda != replayed {
        let only_lambda: Vec<_> = on_lambda.iter().filter(|l| !replayed.contains(l)).collect();
        let only_replay: Vec<_> = replayed.iter().filter(|l| !on_lambda.contains(l)).collect();
        panic!("Lambda and its replay differ:\nonly on Lambda: {only_lambda:#?}\nonly in the replay: {only_replay:#?}");
    }
}
