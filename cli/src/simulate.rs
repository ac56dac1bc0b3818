//! `nudge simulate`: a seeded generator of realistic storefront traffic as
//! Segment JSON Lines — browsing, carts, checkouts, orders, wishlists,
//! consent — with duplicate deliveries and late arrivals mixed in. The same
//! seed gives the same bytes on every machine.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use jiff::Timestamp;
use nudge_core::hash::{mix, unit_interval};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// How many log lines to write.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Seed of the random choices: the same seed writes the same log.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Days of traffic the log spans.
    #[arg(long, default_value_t = 30)]
    pub days: i64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    fn unit(&mut self) -> f64 {
        unit_interval(self.next())
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

const PRODUCTS: u64 = 2_000;
const CATEGORIES: u64 = 30;
const START: i64 = 1_788_220_800; // 2026-09-01T00:00:00Z
const FIRST_NAMES: [&str; 12] =
    ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret", "Linus"];

struct Shopper {
    anon: String,
    user: Option<String>,
    first_name: &'static str,
    email: String,
    consent: &'static str,
}

struct Out {
    lines: Vec<(i64, u64, String)>,
    seq: u64,
    rng: Rng,
}

impl Out {
    /// One message at `at_ms` (event time); arrival is a little later, and
    /// sometimes much later; sometimes it is delivered twice.
    fn emit(&mut self, s: &Shopper, at_ms: i64, kind: &str, body: Value) {
        self.seq += 1;
        let message_id = format!("m-{:016x}", mix(self.seq ^ 0x5eed));
        let late = if self.rng.chance(0.005) {
            self.rng.between(3_600_000, 6 * 3_600_000)
        } else {
            self.rng.between(50, 5_000)
        };
        let arrived = at_ms + late;
        let mut msg = json!({
            "type": kind,
            "messageId": message_id,
            "anonymousId": s.anon,
            "timestamp": ms(at_ms),
            "receivedAt": ms(arrived),
            "context": {
                "library": {"name": "analytics.js", "version": "2.11.1"},
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
                "ip": "203.0.113.7",
                "locale": "en-US"
            }
        });
        if let Some(u) = &s.user {
            msg["userId"] = json!(u);
        }
        if let (Value::Object(m), Value::Object(b)) = (&mut msg, body) {
            m.extend(b);
        }
        let line = msg.to_string();
        if self.rng.chance(0.01) {
            let again = arrived + self.rng.between(1_000, 600_000);
            self.lines.push((again, self.seq, line.clone()));
        }
        self.lines.push((arrived, self.seq, line));
    }
}

fn ms(at_ms: i64) -> String {
    Timestamp::from_millisecond(at_ms).map(|t| t.to_string()).unwrap_or_default()
}

fn product(rng: &mut Rng) -> (u64, Value) {
    // Skewed popularity: a few products get most of the views.
    let id = (rng.unit().powi(3) * PRODUCTS as f64) as u64;
    let price = 5 + (mix(id) % 195);
    let v = json!({
        "product_id": format!("prod-{id}"),
        "sku": format!("SKU-{id:05}"),
        "category": format!("cat-{}", id % CATEGORIES),
        "name": format!("Product {id}"),
        "brand": "Acme",
        "price": price as f64 + 0.99,
        "url": format!("https://shop.example/products/{id}"),
        "image_url": format!("https://cdn.example/p/{id}.jpg")
    });
    (id, v)
}

fn session(out: &mut Out, s: &mut Shopper, mut t: i64, n: u64) {
    let step = |rng: &mut Rng| rng.between(5_000, 180_000);
    for _ in 0..out.rng.between(1, 3) {
        let body = json!({"name": "Home", "properties": {"url": "https://shop.example/", "title": "Shop"}});
        out.emit(s, t, "page", body);
        t += step(&mut out.rng);
    }
    if out.rng.chance(0.2) {
        out.emit(s, t, "track", json!({"event": "Products Searched", "properties": {"query": "blue shoes"}}));
        t += step(&mut out.rng);
    }
    let focus: Vec<(u64, Value)> = (0..out.rng.between(1, 3)).map(|_| product(&mut out.rng)).collect();
    for _ in 0..out.rng.between(1, 7) {
        let (_, p) = &focus[out.rng.below(focus.len() as u64) as usize];
        out.emit(s, t, "track", json!({"event": "Product Viewed", "properties": p}));
        t += step(&mut out.rng);
    }
    if out.rng.chance(0.08) {
        let (_, p) = &focus[0];
        out.emit(s, t, "track", json!({"event": "Product Added to Wishlist", "properties": p}));
        t += step(&mut out.rng);
    }
    if !out.rng.chance(0.3) {
        return;
    }
    let cart_id = format!("cart-{n:x}-{}", t / 1000);
    let mut lines = Vec::new();
    for (_, p) in focus.iter().take(out.rng.between(1, focus.len() as i64) as usize) {
        let mut p = p.clone();
        p["cart_id"] = json!(cart_id);
        p["quantity"] = json!(1);
        out.emit(s, t, "track", json!({"event": "Product Added", "properties": p}));
        lines.push(p);
        t += step(&mut out.rng);
    }
    if !out.rng.chance(0.5) {
        return;
    }
    if s.user.is_none() {
        s.user = Some(format!("u-{n}"));
        let traits = json!({
            "email": s.email,
            "first_name": s.first_name,
            "email_marketing_consent": {"state": s.consent, "opt_in_level": "single_opt_in"}
        });
        out.emit(s, t, "identify", json!({"traits": traits}));
        t += 2_000;
    }
    let value: f64 = lines.iter().filter_map(|l| l["price"].as_f64()).sum();
    let checkout = json!({"checkout_id": format!("chk-{n:x}-{}", t / 1000), "cart_id": cart_id, "value": value, "currency": "USD", "products": lines});
    out.emit(s, t, "track", json!({"event": "Checkout Started", "properties": checkout}));
    if out.rng.chance(0.45) {
        t += out.rng.between(60_000, 40 * 60_000);
        let order = json!({"order_id": format!("ord-{n:x}-{}", t / 1000), "checkout_id": checkout["checkout_id"], "cart_id": cart_id,
            "total": value, "revenue": value, "currency": "USD", "products": checkout["products"]});
        out.emit(s, t, "track", json!({"event": "Order Completed", "properties": order}));
    }
}

pub fn generate(events: usize, seed: u64, days: i64) -> Vec<String> {
    let mut out = Out { lines: Vec::with_capacity(events + events / 50), seq: 0, rng: Rng(seed) };
    let span_ms = days.max(1) * 86_400_000;
    let mut n = 0u64;
    while out.lines.len() < events + events / 20 {
        n += 1;
        let mut s = Shopper {
            anon: format!("anon-{:012x}", mix(seed ^ n) >> 16),
            user: None,
            first_name: FIRST_NAMES[out.rng.below(FIRST_NAMES.len() as u64) as usize],
            email: format!("shopper{n}@example.com"),
            consent: if out.rng.chance(0.7) { "subscribed" } else { "not_subscribed" },
        };
        let mut t = START * 1000 + out.rng.between(0, span_ms);
        for _ in 0..out.rng.between(1, 4) {
            session(&mut out, &mut s, t, n);
            t += out.rng.between(3_600_000, 6 * 86_400_000);
        }
    }
    out.lines.sort_unstable_by_key(|(arrived, seq, _)| (*arrived, *seq));
    out.lines.truncate(events);
    out.lines.into_iter().map(|(_, _, l)| l).collect()
}

pub fn run(args: SimulateArgs) -> Result<ExitCode> {
    let lines = generate(args.events, args.seed, args.days);
    let mut w: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(BufWriter::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?)),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    for l in &lines {
        w.write_all(l.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
