//! Load benchmark for `nudge serve` (run by `make bench`): sustained signed
//! Shopify checkout deliveries over loopback from CONNECTIONS keep-alive
//! connections. With PER_CUSTOMER = 1 (the default, the worst case) each
//! delivery is a `checkouts/create` from a new customer: a new profile, its
//! aliases and one scheduled check. With PER_CUSTOMER = k, each customer
//! sends one `checkouts/create` and then k - 1 `checkouts/update`s of the
//! same checkout (as Shopify does while a shopper edits the cart), spread
//! out so that no two deliveries of one customer are in flight together.
//!
//! Prints deliveries/s, p50/p99 latency, and how many acknowledged (200)
//! deliveries are missing from the database afterwards — each one's event
//! id must be among those its profile has applied. The server is killed with
//! SIGKILL at the end, so "acknowledged = committed" is what is measured.
//! Usage:
//!
//!     serve_load NUDGE_BINARY [DELIVERIES] [CONNECTIONS] [PER_CUSTOMER]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use nudge_app::identity::{Alias, AliasKind};
use nudge_app::ports::ProfileStore;
use nudge_local::SqliteStore;
use nudge_sources::signature::sign_base64_sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "bench-secret";
const SHOP: &str = "bench.myshopify.com";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn customer(i: usize) -> String {
    format!("{}", 7_000_000_000_000u64 + i as u64)
}

fn event_id(i: usize) -> String {
    format!("bench-{i}")
}

/// Delivery `i` of `total`: the published checkout fixture as customer
/// `i % customers` sends it now, created (its first delivery) or updated.
fn request(fixture: &serde_json::Value, i: usize, customers: usize, addr: &str) -> Vec<u8> {
    let (who, step) = (i % customers, i / customers);
    let mut c = fixture.clone();
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    c["token"] = format!("tok-{who}").into();
    c["cart_token"] = format!("cart-{who}").into();
    c["email"] = format!("shopper{who}@example.com").into();
    c["created_at"] = now.clone().into();
    c["updated_at"] = now.into();
    c["customer"]["id"] = customer(who).parse::<u64>().unwrap_or(0).into();
    c["customer"]["email"] = format!("shopper{who}@example.com").into();
    let topic = if step == 0 { "checkouts/create" } else { "checkouts/update" };
    let body = c.to_string();
    let mut head = format!(
        "POST /webhooks/shopify HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Shopify-Topic: {topic}\r\nX-Shopify-Shop-Domain: {SHOP}\r\nX-Shopify-Event-Id: {}\r\nX-Shopify-Hmac-Sha256: {}\r\nContent-Length: {}\r\n\r\n",
        event_id(i),
        sign_base64_sha256(body.as_bytes(), SECRET.as_bytes()),
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(body.as_bytes());
    head
}

/// One response's status, reading exactly its Content-Length body.
async fn response(r: &mut tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<u16> {
    let mut line = String::new();
    r.read_line(&mut line).await?;
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).await?;
    Ok(status)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let binary = args.get(1).ok_or("usage: serve_load NUDGE_BINARY [DELIVERIES] [CONNECTIONS] [PER_CUSTOMER]")?;
    let total: usize = args.get(2).map_or(Ok(20_000), |s| s.parse())?;
    let connections: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let per_customer: usize = args.get(4).map_or(Ok(1), |s| s.parse())?;
    let customers = total.div_ceil(per_customer.max(1)).max(1);

    let dir = std::env::temp_dir().join(format!("nudge-serve-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let rules = "[[trigger]]\nid = \"cart-abandoned\"\non = \"checkout_started\"\ndelay = \"10m\"\ncancel_if = [\"order_placed\"]\ntemplate = \"cart-reminder\"\n";
    std::fs::write(dir.join("triggers.toml"), rules)?;
    let config = format!(
        "triggers = \"triggers.toml\"\ntemplates = \"{}\"\nfrom = \"Bench <shop@example.com>\"\n",
        repo().join("examples/templates").display()
    );
    std::fs::write(dir.join("nudge.toml"), config)?;
    let data = dir.join("data");

    let mut server = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("nudge.toml"))
        .arg("--data")
        .arg(&data)
        .env("NUDGE_SHOPIFY_SECRET", SECRET)
        .env("NUDGE_SHOP", SHOP)
        .env("NUDGE_ALIAS_KEY", "bench-alias-key")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let addr = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).ok_or("no address")?.to_owned();

    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/checkouts__create.json"))?)?;
    let requests: Arc<Vec<Vec<u8>>> = Arc::new((0..total).map(|i| request(&fixture, i, customers, &addr)).collect());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let results: Vec<(Vec<usize>, Vec<u32>, usize)> = rt.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (requests, next, addr) = (requests.clone(), next.clone(), addr.clone());
                tokio::spawn(async move {
                    let (mut acked, mut latencies, mut errors) = (Vec::new(), Vec::new(), 0usize);
                    let Ok(stream) = tokio::net::TcpStream::connect(&addr).await else { return (acked, latencies, 1) };
                    let _ = stream.set_nodelay(true);
                    let (read, mut write) = stream.into_split();
                    let mut read = tokio::io::BufReader::new(read);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests.len() {
                            break;
                        }
                        let t = Instant::now();
                        if write.write_all(&requests[i]).await.is_err() {
                            errors += 1;
                            break;
                        }
                        match response(&mut read).await {
                            Ok(200) => {
                                latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                                acked.push(i);
                            }
                            Ok(_) => errors += 1,
                            Err(_) => {
                                errors += 1;
                                break;
                            }
                        }
                    }
                    (acked, latencies, errors)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_default());
        }
        out
    });
    let elapsed = started.elapsed();
    // Acknowledged means committed: kill without a chance to flush anything.
    server.kill()?;
    server.wait()?;

    let acked: Vec<usize> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let mut latencies: Vec<u32> = results.iter().flat_map(|r| r.1.iter().copied()).collect();
    let errors: usize = results.iter().map(|r| r.2).sum();
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));

    let store = SqliteStore::open(&data.join("nudge.db"))?;
    let mut missing = 0;
    for &i in &acked {
        let alias = Alias { kind: AliasKind::Customer, value: customer(i % customers) };
        let resolved = rt.block_on(store.resolve(SHOP, &[alias]))?;
        let profile = match resolved.profile {
            Some(id) => rt.block_on(store.load(SHOP, &id))?,
            None => None,
        };
        if !profile.is_some_and(|p| p.has_seen(SHOP, &event_id(i))) {
            missing += 1;
        }
    }
    let rate = acked.len() as f64 / elapsed.as_secs_f64();
    println!(
        "serve load: {} deliveries ({per_customer} per customer) over {connections} connections in {:.2} s: {:.0} deliveries/s, p50 {:.2} ms, p99 {:.2} ms, errors {errors}, acknowledged but missing {missing}",
        acked.len(),
        elapsed.as_secs_f64(),
        rate,
        pct(0.50).copied().unwrap_or(0) as f64 / 1000.0,
        pct(0.99).copied().unwrap_or(0) as f64 / 1000.0,
    );
    let _ = std::fs::remove_dir_all(&dir);
    if missing > 0 || acked.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
