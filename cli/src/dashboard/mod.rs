//! The local dashboard (`GET /`): profiles (searchable), pending checks,
//! sends and feedback per trigger variant and day, the decision log with
//! reasons, and every sent email as it renders. Server-rendered from
//! `page.html` (minijinja, which escapes every value), no build step,
//! nothing fetched from elsewhere.

use std::collections::BTreeMap;
use std::path::Path;

use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use nudge_app::ports::COUNTERS;
use nudge_core::Decision;
use serde::Serialize;

use crate::serve::Service;

/// Rows of each table, most recent first.
const ROWS: usize = 200;
const EMAILS: usize = 20;
/// Days of counters shown.
const COUNTER_DAYS: i64 = 14;

/// What `page.html` shows.
#[derive(Serialize)]
struct Page<'a> {
    q: &'a str,
    profiles: Vec<ProfileRow>,
    pending: Vec<CheckRow>,
    counter_names: [&'static str; COUNTERS.len()],
    counters: Vec<CountsRow>,
    decisions: Vec<DecisionRow>,
    emails: Vec<EmailRow>,
}

#[derive(Serialize)]
struct ProfileRow {
    id: String,
    name: String,
    email: String,
    consent: &'static str,
    orders: u32,
    cart: String,
}

#[derive(Serialize)]
struct CheckRow {
    due: String,
    trigger: String,
    episode: u32,
    profile: String,
}

#[derive(Serialize)]
struct CountsRow {
    day: String,
    trigger: String,
    variant: String,
    /// In the order of [`COUNTERS`].
    counts: Vec<i64>,
}

#[derive(Serialize)]
struct DecisionRow {
    at: String,
    trigger: String,
    profile: String,
    decision: String,
    reason: &'static str,
    variant: String,
}

#[derive(Serialize)]
struct EmailRow {
    eml: String,
    html: String,
}

pub fn page(svc: &Service, data: &Path, query: Option<&str>) -> String {
    let q = query.unwrap_or("").trim().to_lowercase();
    let mut env = Environment::new();
    // The `.html` name turns on HTML escaping of every value.
    let rendered = env.add_template("page.html", include_str!("page.html")).and_then(|()| {
        env.get_template("page.html")?.render(minijinja::value::Serde(Page {
            profiles: profiles(svc, &q),
            q: &q,
            pending: pending(svc),
            counter_names: COUNTERS,
            counters: counters(svc),
            decisions: decisions(data),
            emails: emails(data),
        }))
    });
    rendered.unwrap_or_else(|e| {
        tracing::error!(error = %e, "dashboard not rendered");
        "<!doctype html><p>The dashboard could not be rendered; see the server's log.</p>".to_owned()
    })
}

fn profiles(svc: &Service, q: &str) -> Vec<ProfileRow> {
    let all = svc.store.profiles(ROWS).unwrap_or_default();
    all.into_iter()
        .filter(|p| {
            let hay = [Some(p.id.as_str()), p.first_name.as_deref(), p.email.as_deref(), p.customer_id.as_deref()];
            q.is_empty() || hay.iter().flatten().any(|s| s.to_lowercase().contains(q))
        })
        .map(|p| ProfileRow {
            name: p.first_name.clone().unwrap_or_default(),
            email: p.email.clone().unwrap_or_default(),
            consent: p.consent.state.as_str(),
            orders: p.orders.count,
            cart: p
                .basket
                .as_ref()
                .map_or(String::new(), |b| format!("{:.2} {}", b.value, b.currency.as_deref().unwrap_or(""))),
            id: p.id,
        })
        .collect()
}

fn pending(svc: &Service) -> Vec<CheckRow> {
    let checks = svc.scheduler.pending().unwrap_or_default();
    checks
        .into_iter()
        .take(ROWS)
        .map(|c| CheckRow { due: c.due.to_string(), trigger: c.trigger, episode: c.episode, profile: c.profile })
        .collect()
}

fn counters(svc: &Service) -> Vec<CountsRow> {
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let since = today.checked_sub(jiff::Span::new().days(COUNTER_DAYS - 1)).unwrap_or(today);
    let mut rows: BTreeMap<(std::cmp::Reverse<String>, String, String), Vec<i64>> = BTreeMap::new();
    for r in svc.store.counters_since(since).unwrap_or_default() {
        let counts = rows.entry((std::cmp::Reverse(r.day), r.trigger, r.variant)).or_insert(vec![0; COUNTERS.len()]);
        if let Some(i) = COUNTERS.iter().position(|c| *c == r.counter) {
            counts[i] += r.n;
        }
    }
    rows.into_iter()
        .map(|((day, trigger, variant), counts)| CountsRow { day: day.0, trigger, variant, counts })
        .collect()
}

fn decisions(data: &Path) -> Vec<DecisionRow> {
    let log = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap_or_default();
    let all: Vec<Decision> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    all.into_iter()
        .rev()
        .take(ROWS)
        .map(|d| DecisionRow {
            at: d.at.to_string(),
            decision: format!("{:?}", d.decision).to_lowercase(),
            reason: d.reason.map_or("", |r| r.as_str()),
            variant: d.variant.unwrap_or_default(),
            trigger: d.trigger,
            profile: d.profile,
        })
        .collect()
}

fn emails(data: &Path) -> Vec<EmailRow> {
    let mut previews: Vec<String> = std::fs::read_dir(data.join("outbox"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".html"))
                .collect()
        })
        .unwrap_or_default();
    previews.sort();
    previews
        .into_iter()
        .rev()
        .take(EMAILS)
        .map(|html| EmailRow { eml: format!("{}.eml", html.trim_end_matches(".html")), html })
        .collect()
}

/// The `q` parameter of a query string, decoded.
pub fn search_term(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "q").map(|(_, v)| v.into_owned())
}

/// A file from the outbox (the `.eml`, or its HTML preview).
pub fn outbox_file(data: &Path, name: &str) -> Response {
    let safe = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with('.');
    let content_type = if name.ends_with(".html") { "text/html; charset=utf-8" } else { "message/rfc822" };
    match std::fs::read(data.join("outbox").join(name)) {
        Ok(bytes) if safe => ([(http::header::CONTENT_TYPE, content_type)], bytes).into_response(),
        _ => (http::StatusCode::NOT_FOUND, Html("not found")).into_response(),
    }
}
