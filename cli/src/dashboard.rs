//! The local dashboard (`GET /`): profiles (searchable), pending checks,
//! the decision log with reasons, and every sent email as it renders.
//! Server-rendered HTML, no build step, nothing fetched from elsewhere.

use std::fmt::Write as _;
use std::path::Path;

use axum::response::{Html, IntoResponse, Response};
use nudge_app::http::html_escape;
use nudge_core::Decision;

use crate::serve::Service;

pub fn page(svc: &Service, data: &Path, query: Option<&str>) -> String {
    let q = query.unwrap_or("").trim().to_lowercase();
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>nudge</title><style>\
         body{font:14px system-ui,sans-serif;margin:24px;color:#1f2933}table{border-collapse:collapse;margin-bottom:24px}\
         td,th{padding:4px 10px;border-bottom:1px solid #e4e7eb;text-align:left}h2{margin-top:28px}\
         .send{color:#0b6e4f;font-weight:bold}.skip{color:#7b8794}iframe{border:1px solid #e4e7eb;width:640px;height:420px}</style></head>\
         <body><h1>nudge</h1>",
    );
    let _ = write!(
        h,
        "<form method=\"get\" action=\"/\"><input name=\"q\" placeholder=\"search profiles (email, name, id)\" value=\"{}\" size=\"40\"> <button>Search</button></form>",
        html_escape(&q)
    );

    h.push_str("<h2>Profiles</h2><table><tr><th>profile</th><th>name</th><th>email</th><th>consent</th><th>orders</th><th>cart</th></tr>");
    for p in svc.store.profiles(200).unwrap_or_default() {
        let hay = format!(
            "{} {} {} {}",
            p.id,
            p.first_name.as_deref().unwrap_or(""),
            p.email.as_deref().unwrap_or(""),
            p.customer_id.as_deref().unwrap_or("")
        )
        .to_lowercase();
        if !q.is_empty() && !hay.contains(&q) {
            continue;
        }
        let _ = write!(
            h,
            "<tr class=\"profile\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&p.id),
            html_escape(p.first_name.as_deref().unwrap_or("")),
            html_escape(p.email.as_deref().unwrap_or("")),
            p.consent.state.as_str(),
            p.orders.count,
            p.basket.as_ref().map_or(String::new(), |b| format!(
                "{:.2} {}",
                b.value,
                b.currency.as_deref().unwrap_or("")
            )),
        );
    }
    h.push_str(
        "</table><h2>Pending checks</h2><table><tr><th>due</th><th>trigger</th><th>episode</th><th>profile</th></tr>",
    );
    for c in svc.scheduler.pending().unwrap_or_default() {
        let _ = write!(
            h,
            "<tr class=\"pending\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.due,
            html_escape(&c.trigger),
            c.episode,
            html_escape(&c.profile)
        );
    }
    h.push_str("</table><h2>Decisions</h2><table><tr><th>at</th><th>trigger</th><th>profile</th><th>decision</th><th>reason</th><th>variant</th></tr>");
    let log = std::fs::read_to_string(data.join("decisions.jsonl")).unwrap_or_default();
    let decisions: Vec<Decision> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    for d in decisions.iter().rev().take(200) {
        let kind = format!("{:?}", d.decision).to_lowercase();
        let _ = write!(
            h,
            "<tr class=\"decision\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{kind}\">{kind}</td><td>{}</td><td>{}</td></tr>",
            d.at,
            html_escape(&d.trigger),
            html_escape(&d.profile),
            d.reason.map_or("", |r| r.as_str()),
            html_escape(d.variant.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table><h2>Sent emails</h2>");
    let mut previews: Vec<String> = std::fs::read_dir(data.join("outbox"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".html"))
                .collect()
        })
        .unwrap_or_default();
    previews.sort();
    for name in previews.iter().rev().take(20) {
        let eml = name.trim_end_matches(".html");
        let _ = write!(
            h,
            "<div class=\"email\"><p><a href=\"/outbox/{0}.eml\">{0}.eml</a></p><iframe src=\"/outbox/{1}\" title=\"{0}\"></iframe></div>",
            html_escape(eml),
            html_escape(name)
        );
    }
    h.push_str("</body></html>");
    h
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
