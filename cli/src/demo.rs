//! `nudge demo`: replays each example scenario and prints who would get
//! which email, and why not where they would not.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nudge_app::{AliasKey, Replay};
use nudge_core::{Decision, Outcome};

use crate::logs::{Format, LogReader};
use crate::replay_cmd::load_rules;

/// The live demo: starts `nudge serve` on a temporary data directory and
/// drives five shoppers over real HTTP with correctly signed webhooks.
pub fn live(examples: &Path) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let dir = std::env::temp_dir().join(format!("nudge-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let abs = |p: &str| {
        std::fs::canonicalize(examples.join(p)).with_context(|| format!("missing {}", examples.join(p).display()))
    };
    let config = format!(
        "triggers = {:?}\ntemplates = {:?}\ncatalogue = {:?}\nfrom = \"Demo Shop <shop@example.com>\"\n",
        abs("demo/triggers.toml")?,
        abs("templates")?,
        abs("catalogue.json")?
    );
    std::fs::write(dir.join("nudge.toml"), config)?;
    let data = dir.join("data");
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("nudge.toml"))
        .arg("--data")
        .arg(&data)
        .env("NUDGE_SHOPIFY_SECRET", DEMO_SECRET)
        // The demo's identify calls play the shop's own backend: a
        // server-side source, trusted with consent.
        .env("NUDGE_SEGMENT_SERVER_KEY", DEMO_SERVER_KEY)
        .env("NUDGE_SHOP", DEMO_SHOP)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start nudge serve")?;
    // The public address is on the first line (the dashboard's on the second).
    let mut out = std::io::BufReader::new(child.stdout.take().context("no stdout")?);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first)?;
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .context("serve did not start")?
        .to_owned();
    let result = drive(&addr).and_then(|()| wait_and_print(&data, started));
    let _ = child.kill();
    let _ = child.wait();
    result?;
    println!(
        "\nThe emails are in {}/outbox (.eml files); decisions in {}/decisions.jsonl.",
        data.display(),
        data.display()
    );
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("nudge").is_file()));
    if !on_path {
        println!("Put nudge on your PATH with `make install` (cargo install into ~/.cargo/bin), then:");
    }
    println!("Run it yourself: nudge serve --config examples/nudge.toml");
    Ok(ExitCode::SUCCESS)
}

const DEMO_SECRET: &str = "demo-shopify-secret";
const DEMO_SERVER_KEY: &str = "demo-server-key";
const DEMO_SHOP: &str = "demo-shop.myshopify.com";
const SHOPPERS: [(&str, &str, &str); 5] = [
    ("u-ada", "Ada", "abandons checkout"),
    ("u-grace", "Grace", "buys inside the delay"),
    ("u-alan", "Alan", "views one product 3 times"),
    ("u-barbara", "Barbara", "has not consented"),
    ("u-edsger", "Edsger", "webhooks delivered 3 times"),
];

fn http_post(addr: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0))
}

fn drive(addr: &str) -> Result<()> {
    // A checkout as Shopify sends it (the fields nudge reads).
    let checkout_sample = serde_json::json!({
        "currency": "USD", "total_price": "113.00", "completed_at": null,
        "abandoned_checkout_url": "https://demo-shop.myshopify.com/checkouts/recover",
        "line_items": [
            { "product_id": "prod-1", "variant_id": "v-1", "title": "Trail Runner", "variant_title": "42 / Blue", "quantity": 1, "price": "89.00" },
            { "product_id": "prod-2", "variant_id": "v-2", "title": "Wool Socks", "quantity": 2, "price": "12.00" }
        ]
    });
    let shopify = |topic: &str, id: &str, body: &serde_json::Value| -> Result<u16> {
        let bytes = body.to_string().into_bytes();
        let signature = nudge_sources::signature::sign_base64_sha256(&bytes, DEMO_SECRET.as_bytes());
        http_post(
            addr,
            "/webhooks/shopify",
            &[
                ("X-Shopify-Topic", topic.into()),
                ("X-Shopify-Shop-Domain", DEMO_SHOP.into()),
                ("X-Shopify-Event-Id", id.into()),
                ("X-Shopify-Hmac-Sha256", signature),
            ],
            &bytes,
        )
    };
    let segment = |messages: serde_json::Value| -> Result<u16> {
        let body = serde_json::json!({ "batch": messages, "writeKey": DEMO_SERVER_KEY }).to_string();
        http_post(addr, "/v1/batch", &[], body.as_bytes())
    };
    for (user, name, _) in SHOPPERS {
        let consent = if user == "u-barbara" { "not_subscribed" } else { "subscribed" };
        let email = format!("{}@example.com", name.to_lowercase());
        let code =
            segment(serde_json::json!([{ "type": "identify", "userId": user, "messageId": format!("{user}-identify"),
            "traits": { "email": email, "first_name": name, "email_marketing_consent": consent } }]))?;
        anyhow::ensure!(code == 200, "identify for {name} answered {code}");
        if user == "u-alan" {
            let views: Vec<serde_json::Value> = (0..3)
                .map(|i| serde_json::json!({ "type": "track", "event": "Product Viewed", "userId": user, "messageId": format!("{user}-view-{i}"),
                    "properties": { "product_id": "prod-12", "category": "bags", "name": "Leather Weekender" } }))
                .collect();
            anyhow::ensure!(segment(serde_json::Value::Array(views))? == 200, "views refused");
            continue;
        }
        let mut checkout = checkout_sample.clone();
        checkout["token"] = format!("chk-{user}").into();
        checkout["cart_token"] = format!("cart-{user}").into();
        checkout["email"] = email.clone().into();
        checkout["customer"] = serde_json::Value::Null;
        let deliveries = if user == "u-edsger" { 3 } else { 1 };
        for _ in 0..deliveries {
            let code = shopify("checkouts/create", &format!("{user}-checkout"), &checkout)?;
            anyhow::ensure!(code == 200, "checkout for {name} answered {code}");
        }
        if user == "u-grace" {
            let order = serde_json::json!({ "id": 1001, "email": email, "financial_status": "paid", "checkout_token": format!("chk-{user}"), "total_price": "120.00", "currency": "USD", "line_items": [] });
            anyhow::ensure!(shopify("orders/create", &format!("{user}-order"), &order)? == 200, "order refused");
        }
    }
    Ok(())
}

fn wait_and_print(data: &Path, started: std::time::Instant) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let decisions = loop {
        let text = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap_or_default();
        let finals: Vec<Decision> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Decision>(l).ok())
            .filter(|d| d.decision != Outcome::Defer)
            .collect();
        if finals.len() >= SHOPPERS.len() || std::time::Instant::now() > deadline {
            break finals;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let who = |profile: &str| {
        SHOPPERS
            .iter()
            .find(|(user, _, _)| {
                nudge_app::identity::new_profile_id(
                    DEMO_SHOP,
                    &nudge_app::Alias { kind: nudge_app::AliasKind::Customer, value: (*user).into() },
                ) == profile
            })
            .map_or(("?", "?"), |(_, name, story)| (*name, *story))
    };
    println!("{:<9} {:<28} {:<17} {:<8} {:<12} variant", "who", "story", "trigger", "decision", "reason");
    for d in &decisions {
        let (name, story) = who(&d.profile);
        let decision = if d.decision == Outcome::Send { "SEND" } else { "skip" };
        println!(
            "{name:<9} {story:<28} {:<17} {decision:<8} {:<12} {}",
            d.trigger,
            d.reason.map_or("-", |r| r.as_str()),
            d.variant.as_deref().unwrap_or("-")
        );
    }
    let emails = std::fs::read_dir(data.join("outbox"))
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count())
        .unwrap_or(0);
    println!(
        "\n{emails} email(s) written in {:.1} s, every decision above logged with its reason.",
        started.elapsed().as_secs_f64()
    );
    anyhow::ensure!(decisions.len() >= SHOPPERS.len(), "only {} decisions arrived in time", decisions.len());
    Ok(())
}

pub fn run(examples: &Path) -> Result<ExitCode> {
    let rules = load_rules(&examples.join("triggers.toml"), None)?;
    let dir = examples.join("events");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no scenario logs (*.jsonl) in {}", dir.display());
    }
    println!(
        "Replaying {} scenario(s) against {} (rules {})\n",
        files.len(),
        examples.join("triggers.toml").display(),
        rules.version
    );
    println!(
        "{:<18} {:<9} {:<17} {:<21} {:<8} {:<17} variant",
        "scenario", "who", "trigger", "decided at (UTC)", "decision", "reason"
    );
    let mut sends = 0;
    for file in &files {
        let mut replay = Replay::new(&rules, AliasKey::new(b"nudge-demo"));
        let mut decisions: Vec<Decision> = Vec::new();
        let mut reader = LogReader::open(file, Format::Auto, "demo-shop")?;
        let mut lines = Vec::new();
        while let Some(parsed) = reader.next()? {
            lines.push(parsed.map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        let events: Vec<_> = lines.iter().flat_map(|p| p.events.iter().map(move |e| (e, p.arrived))).collect();
        replay.push_events(&events, true, &mut |d| decisions.push(d.clone()))?;
        replay.finish(&mut |d| decisions.push(d.clone()))?;
        let scenario = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        let profiles = replay.store.profiles();
        let who = |id: &str| {
            profiles
                .iter()
                .find(|p| p.id == id)
                .and_then(|p| p.first_name.clone())
                .unwrap_or_else(|| id.chars().take(8).collect())
        };
        let finals: Vec<&Decision> = decisions.iter().filter(|d| d.decision != Outcome::Defer).collect();
        if finals.is_empty() {
            println!("{scenario:<18} (no trigger armed)");
        }
        for d in finals {
            let decision = match d.decision {
                Outcome::Send => {
                    sends += 1;
                    "SEND"
                }
                Outcome::Skip => "skip",
                Outcome::Defer => "defer",
            };
            println!(
                "{scenario:<18} {:<9} {:<17} {:<21} {decision:<8} {:<17} {}",
                who(&d.profile),
                d.trigger,
                d.at.strftime("%Y-%m-%d %H:%M").to_string(),
                d.reason.map_or("-", |r| r.as_str()),
                d.variant.as_deref().unwrap_or("-")
            );
        }
    }
    println!("\n{sends} email(s) would be sent. Every line above is a decision nudge logs, with its reason.");
    println!("Backtest your own log: nudge replay --triggers {} LOG.jsonl", examples.join("triggers.toml").display());
    Ok(ExitCode::SUCCESS)
}
