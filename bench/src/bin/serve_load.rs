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
//!     serve_load --soak SECONDS NUDGE_BINARY [CONNECTIONS] [CUSTOMERS]
//!
//! The soak sends checkout updates from CUSTOMERS shoppers (default 20,000)
//! for SECONDS, samples the server's resident memory and WAL file every 10
//! s, and reports them with the latencies and, after a SIGKILL, how many
//! shoppers' last acknowledged delivery is missing.

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

/// Delivery `i`'s dedupe id: nudge derives it from the signed content (the
/// checkout's token and when it was last updated), not the unsigned header.
fn event_id(who: usize, at: jiff::Timestamp) -> String {
    format!("shopify:checkout:tok-{who}:{}", at.as_second())
}

/// Delivery `i`: the published checkout fixture as customer `i % customers`
/// sends it now, created (its first delivery) or updated; with its dedupe
/// id.
fn request(fixture: &serde_json::Value, i: usize, customers: usize, addr: &str) -> (Vec<u8>, String) {
    let (who, step) = (i % customers, i / customers);
    let mut c = fixture.clone();
    let at = jiff::Timestamp::now();
    let now = at.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string();
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
        "POST /webhooks/shopify HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Shopify-Topic: {topic}\r\nX-Shopify-Shop-Domain: {SHOP}\r\nX-Shopify-Event-Id: bench-{i}\r\nX-Shopify-Hmac-Sha256: {}\r\nContent-Length: {}\r\n\r\n",
        sign_base64_sha256(body.as_bytes(), SECRET.as_bytes()),
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(body.as_bytes());
    (head, event_id(who, at))
}

/// One keep-alive connection: sends what `next` gives (index, request,
/// dedupe id) until it gives nothing, telling `acked` of each delivery
/// answered 200. Returns the latencies (µs) and the errors.
async fn drive(
    addr: &str,
    mut next: impl FnMut() -> Option<(usize, Vec<u8>, String)>,
    mut acked: impl FnMut(usize, String),
) -> (Vec<u32>, usize) {
    let (mut latencies, mut errors) = (Vec::new(), 0usize);
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else { return (latencies, 1) };
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    while let Some((i, bytes, id)) = next() {
        let t = Instant::now();
        if write.write_all(&bytes).await.is_err() {
            errors += 1;
            break;
        }
        match response(&mut read).await {
            Ok(200) => {
                latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                acked(i, id);
            }
            Ok(_) => errors += 1,
            Err(_) => {
                errors += 1;
                break;
            }
        }
    }
    (latencies, errors)
}

/// Every task's result (a task that panicked gives the default).
async fn join_all<T: Default>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap_or_default());
    }
    out
}

/// How many of `delivered` (customer, dedupe id) the database of `data`
/// does not show as applied to that customer's profile.
fn missing(
    rt: &tokio::runtime::Runtime,
    data: &Path,
    delivered: impl IntoIterator<Item = (usize, String)>,
) -> Result<usize, Box<dyn std::error::Error>> {
    let store = SqliteStore::open(&data.join("nudge.db"))?;
    let mut missing = 0;
    for (who, id) in delivered {
        let alias = Alias { kind: AliasKind::Customer, value: customer(who) };
        let resolved = rt.block_on(store.resolve(SHOP, &[alias]))?;
        let profile = match resolved.profile {
            Some(p) => rt.block_on(store.load(SHOP, &p))?,
            None => None,
        };
        if !profile.is_some_and(|p| p.has_seen(SHOP, &id)) {
            missing += 1;
        }
    }
    Ok(missing)
}

/// The `p` quantile of sorted latencies (µs), in ms.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or(0) as f64 / 1000.0
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

/// A `nudge serve` on loopback in a fresh directory: the process, its
/// address, its data directory and the directory to remove.
fn start_server(binary: &str) -> Result<(std::process::Child, String, PathBuf, PathBuf), Box<dyn std::error::Error>> {
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
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--config"])
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
    Ok((server, addr, data, dir))
}

/// Resident memory of `pid`, in KB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn soak(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: serve_load --soak SECONDS NUDGE_BINARY [CONNECTIONS] [CUSTOMERS]";
    let seconds: u64 = args.get(2).ok_or(usage)?.parse()?;
    let binary = args.get(3).ok_or(usage)?;
    let connections: usize = args.get(4).map_or(Ok(16), |s| s.parse())?;
    let customers: usize = args.get(5).map_or(Ok(20_000), |s| s.parse())?;
    let (mut server, addr, data, dir) = start_server(binary)?;
    let fixture: Arc<serde_json::Value> =
        Arc::new(serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/checkouts__create.json"))?)?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let (pid, wal) = (server.id(), data.join("nudge.db-wal"));
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        while Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_secs(10));
            samples.push((rss_kb(pid), std::fs::metadata(&wal).map_or(0, |m| m.len())));
        }
        samples
    });
    // Per customer, the last acknowledged delivery's dedupe id.
    let last: Arc<std::sync::Mutex<Vec<Option<String>>>> = Arc::new(std::sync::Mutex::new(vec![None; customers]));
    let results: Vec<(usize, Vec<u32>, usize)> = rt.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (next, addr, fixture, last) = (next.clone(), addr.clone(), fixture.clone(), last.clone());
                tokio::spawn(async move {
                    let mut acked = 0usize;
                    let next = || {
                        (Instant::now() < deadline).then(|| {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let (bytes, id) = request(&fixture, i, customers, &addr);
                            (i, bytes, id)
                        })
                    };
                    let (latencies, errors) = drive(&addr, next, |i, id| {
                        acked += 1;
                        last.lock().unwrap_or_else(|e| e.into_inner())[i % customers] = Some(id);
                    })
                    .await;
                    (acked, latencies, errors)
                })
            })
            .collect();
        join_all(tasks).await
    });
    let samples = sampler.join().unwrap_or_default();
    server.kill()?;
    server.wait()?;
    let acked: usize = results.iter().map(|r| r.0).sum();
    let errors: usize = results.iter().map(|r| r.2).sum();
    let mut latencies: Vec<u32> = results.iter().flat_map(|r| r.1.iter().copied()).collect();
    latencies.sort_unstable();
    let pct = |p: f64| percentile(&latencies, p);
    let delivered: Vec<(usize, String)> = last
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .enumerate()
        .filter_map(|(who, id)| Some((who, id.clone()?)))
        .collect();
    let missing = missing(&rt, &data, delivered)?;
    println!("| after | RSS MB | WAL MB |");
    println!("|---|---|---|");
    for (k, (rss, wal)) in samples.iter().enumerate() {
        println!("| {} s | {:.1} | {:.1} |", 10 * (k + 1), *rss as f64 / 1024.0, *wal as f64 / 1_048_576.0);
    }
    let (first, end) = (samples.first().map_or(0, |s| s.0), samples.last().map_or(0, |s| s.0));
    let wal_max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "serve soak: {acked} deliveries from {customers} shoppers over {connections} connections in {seconds} s: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, errors {errors}, RSS {:.1} -> {:.1} MB, WAL at most {:.1} MB, acknowledged but missing {missing}",
        acked as f64 / seconds as f64,
        pct(0.50),
        pct(0.99),
        first as f64 / 1024.0,
        end as f64 / 1024.0,
        wal_max as f64 / 1_048_576.0,
    );
    let _ = std::fs::remove_dir_all(&dir);
    if missing > 0 || acked == 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--soak") {
        return soak(&args);
    }
    let binary = args.get(1).ok_or("usage: serve_load NUDGE_BINARY [DELIVERIES] [CONNECTIONS] [PER_CUSTOMER]")?;
    let total: usize = args.get(2).map_or(Ok(20_000), |s| s.parse())?;
    let connections: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let per_customer: usize = args.get(4).map_or(Ok(1), |s| s.parse())?;
    let customers = total.div_ceil(per_customer.max(1)).max(1);

    let (mut server, addr, data, dir) = start_server(binary)?;

    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/shopify/checkouts__create.json"))?)?;
    let requests: Arc<Vec<(Vec<u8>, String)>> =
        Arc::new((0..total).map(|i| request(&fixture, i, customers, &addr)).collect());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let results: Vec<(Vec<usize>, Vec<u32>, usize)> = rt.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (requests, next, addr) = (requests.clone(), next.clone(), addr.clone());
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let next = || {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        requests.get(i).map(|(bytes, id)| (i, bytes.clone(), id.clone()))
                    };
                    let (latencies, errors) = drive(&addr, next, |i, _| acked.push(i)).await;
                    (acked, latencies, errors)
                })
            })
            .collect();
        join_all(tasks).await
    });
    let elapsed = started.elapsed();
    // Acknowledged means committed: kill without a chance to flush anything.
    server.kill()?;
    server.wait()?;

    let acked: Vec<usize> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let mut latencies: Vec<u32> = results.iter().flat_map(|r| r.1.iter().copied()).collect();
    let errors: usize = results.iter().map(|r| r.2).sum();
    latencies.sort_unstable();
    let pct = |p: f64| percentile(&latencies, p);

    let missing = missing(&rt, &data, acked.iter().map(|&i| (i % customers, requests[i].1.clone())))?;
    let rate = acked.len() as f64 / elapsed.as_secs_f64();
    println!(
        "serve load: {} deliveries ({per_customer} per customer) over {connections} connections in {:.2} s: {:.0} deliveries/s, p50 {:.2} ms, p99 {:.2} ms, errors {errors}, acknowledged but missing {missing}",
        acked.len(),
        elapsed.as_secs_f64(),
        rate,
        pct(0.50),
        pct(0.99),
    );
    let _ = std::fs::remove_dir_all(&dir);
    if missing > 0 || acked.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
