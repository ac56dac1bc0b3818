//! HTTP handlers over `http::Request` → `http::Response`: the Lambda
//! functions and the local server mount this very code.
//!
//! Routes: `POST /webhooks/shopify`, `POST /webhooks/woocommerce`,
//! `POST /webhooks/segment`, `POST /v1/{batch,track,identify,page,screen,
//! group,alias}`, `GET|POST /unsubscribe`, `GET|POST /confirm`,
//! `GET /healthz`. A delivery is acknowledged (2xx) only after every event
//! it carried was stored; bad input is a 4xx and changes
//! nothing; our own failures are 5xx so the sender retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Method, Request, Response, StatusCode, header};
use nudge_core::Triggers;
use nudge_sources::segment_api::{self, Endpoint};
use nudge_sources::{Accepted, Delivery, Rejection, SourcesConfig, shopify, woocommerce};
use serde::Serialize;

use crate::catalogue::Catalogues;
use crate::identity::AliasKey;
use crate::ports::{CatalogueStore, Clock, ProfileStore, Publisher, Scheduler};
use crate::unsubscribe::{Confirmed, LinkError, LinkTarget, UnsubscribeKey, Unsubscribed, confirm, unsubscribe};
use crate::usecase::{AppError, IngestPorts, ingest_message};

/// Everything the ingest endpoints need, built once per process.
pub struct HttpService<S, Sch, P, C> {
    pub rules: Triggers,
    pub alias_key: AliasKey,
    pub sources: SourcesConfig,
    pub store: S,
    pub scheduler: Sch,
    pub publisher: P,
    pub clock: C,
    pub stats: HttpStats,
    /// Signs and checks one-click unsubscribe links; without it the
    /// `/unsubscribe` routes answer 404.
    pub unsubscribe_key: Option<UnsubscribeKey>,
    /// The catalogue this process's mailer renders from, updated as product
    /// webhooks are stored. `None` where the mailer runs elsewhere and
    /// reloads from the store (Lambda).
    pub catalogues: Option<Arc<Catalogues>>,
}

/// Counters for metrics and tests.
#[derive(Debug, Default, Serialize)]
pub struct HttpStats {
    pub deliveries: AtomicU64,
    pub events: AtomicU64,
    pub ignored: AtomicU64,
    /// Catalogue changes stored from product webhooks.
    pub products: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Serialize)]
struct Body<'a> {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// With `message`, the error as Segment's API words it: the official
    /// Segment and RudderStack libraries read `code` and `message` from an
    /// error answer (RudderStack's retries a 4xx answer without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

fn respond(status: StatusCode, body: &Body<'_>) -> Response<String> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut r = Response::new(text);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}

fn ok(events: Option<usize>, ignored: Option<&str>) -> Response<String> {
    respond(StatusCode::OK, &Body { ok: true, events, ignored, error: None, code: None, message: None })
}

fn error(status: StatusCode, message: String) -> Response<String> {
    let code = match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        503 => "unavailable",
        _ => "internal_error",
    };
    let body = Body {
        ok: false,
        events: None,
        ignored: None,
        error: Some(message.clone()),
        code: Some(code),
        message: Some(message),
    };
    respond(status, &body)
}

/// The source a path is for.
enum Route {
    Shopify,
    WooCommerce,
    SegmentWebhook,
    Tracking(Endpoint),
    Health,
    Unsubscribe,
    Confirm,
}

fn route(method: &Method, path: &str) -> Result<Route, StatusCode> {
    let r = match path.trim_end_matches('/') {
        "/webhooks/shopify" => Route::Shopify,
        "/webhooks/woocommerce" => Route::WooCommerce,
        "/webhooks/segment" => Route::SegmentWebhook,
        "/healthz" => Route::Health,
        "/unsubscribe" => Route::Unsubscribe,
        "/confirm" => Route::Confirm,
        p => Route::Tracking(Endpoint::from_path(p).ok_or(StatusCode::NOT_FOUND)?),
    };
    let allowed = match r {
        Route::Health => method == Method::GET || method == Method::HEAD,
        Route::Unsubscribe | Route::Confirm => method == Method::GET || method == Method::POST,
        _ => method == Method::POST,
    };
    if allowed { Ok(r) } else { Err(StatusCode::METHOD_NOT_ALLOWED) }
}

impl<S, Sch, P, C> HttpService<S, Sch, P, C>
where
    S: ProfileStore + CatalogueStore,
    Sch: Scheduler,
    P: Publisher,
    C: Clock,
{
    pub async fn handle<B: AsRef<[u8]>>(&self, req: &Request<B>) -> Response<String> {
        let route = match route(req.method(), req.uri().path()) {
            Ok(r) => r,
            Err(status) => return error(status, status.canonical_reason().unwrap_or("error").to_lowercase()),
        };
        if let Route::Health = route {
            return match self.store.health() {
                Ok(()) => ok(None, None),
                Err(problem) => error(StatusCode::SERVICE_UNAVAILABLE, problem),
            };
        }
        if let Route::Unsubscribe = route {
            return self.unsubscribe(req).await;
        }
        if let Route::Confirm = route {
            return self.confirm(req).await;
        }
        self.stats.deliveries.fetch_add(1, Ordering::Relaxed);
        let delivery = Delivery { headers: req.headers(), body: req.body().as_ref(), received_at: self.clock.now() };
        let (source, topic) = match &route {
            Route::Shopify => ("shopify", delivery.header(shopify::TOPIC)),
            Route::WooCommerce => ("woocommerce", delivery.header(woocommerce::TOPIC)),
            Route::SegmentWebhook => ("segment-webhook", None),
            Route::Tracking(_) => ("tracking", Some(req.uri().path())),
            Route::Health | Route::Unsubscribe | Route::Confirm => unreachable!("answered above"),
        };
        let decoded = match route {
            Route::Shopify => shopify::decode(&delivery, &self.sources),
            Route::WooCommerce => woocommerce::decode(&delivery, &self.sources),
            Route::SegmentWebhook => segment_api::decode_webhook(&delivery, &self.sources),
            Route::Tracking(endpoint) => segment_api::decode(endpoint, &delivery, &self.sources),
            Route::Health | Route::Unsubscribe | Route::Confirm => unreachable!("answered above"),
        };
        let topic = topic.map_or("-", loggable);
        match decoded {
            Ok(accepted) => match self.apply(accepted).await {
                Ok((resp, events, profile)) => {
                    let profile = profile.as_deref().unwrap_or("-");
                    tracing::info!(target: "nudge::delivery", source, topic, status = 200, events, profile, "delivery");
                    resp
                }
                Err(e) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(target: "nudge::delivery", source, topic, status = 500, error = %e, "delivery not stored; the sender will retry");
                    error(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable".into())
                }
            },
            Err(rejection) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::info!(target: "nudge::delivery", source, topic, status = rejection.status(), reason = %rejection, "delivery rejected");
                rejected(&rejection)
            }
        }
    }

    /// Answers a delivery refused before anything was stored: counted,
    /// logged, and the status the rejection names. Shells call it for what
    /// they refuse themselves (a body cut off before its end, say).
    pub fn refuse(&self, rejection: &Rejection) -> Response<String> {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::info!(target: "nudge::delivery", status = rejection.status(), reason = %rejection, "delivery rejected");
        rejected(rejection)
    }

    /// The ports of `ingest` (and `feedback`), as of now.
    pub fn ingest_ports(&self) -> IngestPorts<'_, S, Sch, P> {
        IngestPorts {
            now: self.clock.now(),
            rules: &self.rules,
            alias_key: &self.alias_key,
            store: &self.store,
            scheduler: &self.scheduler,
            publisher: &self.publisher,
        }
    }

    /// Stores what a delivery carried: the answer, how many events, and
    /// whose profile they went to (the first, if several).
    async fn apply(&self, accepted: Accepted) -> Result<(Response<String>, usize, Option<String>), AppError> {
        let mut whose = None;
        let resp = match accepted {
            Accepted::Events(mut events) => {
                let ports = self.ingest_ports();
                for e in &mut events {
                    e.received_at = Some(ports.now);
                }
                for message in nudge_core::event::messages(&events) {
                    let out = ingest_message(&ports, &message).await?;
                    if whose.is_none() {
                        whose.clone_from(&out.profile);
                    }
                    for (e, fresh) in message.iter().zip(&out.fresh) {
                        tracing::debug!(shop = %e.shop, event = %e.id, kind = e.kind.name(), profile = ?out.profile, duplicate = !fresh, "ingested");
                    }
                    // A duplicate changed nothing: the event log keeps each
                    // event once, as the profile did.
                    let fresh: Vec<&nudge_core::Event> =
                        message.iter().zip(&out.fresh).filter(|(_, fresh)| **fresh).map(|(e, _)| *e).collect();
                    if !fresh.is_empty() {
                        self.publisher.events(&fresh).await?;
                    }
                }
                self.stats.events.fetch_add(events.len() as u64, Ordering::Relaxed);
                return Ok((ok(Some(events.len()), None), events.len(), whose));
            }
            Accepted::EraseShop { shop } => {
                self.store.erase_shop(&shop).await?;
                tracing::info!(%shop, "shop erased");
                ok(Some(0), None)
            }
            Accepted::Products { shop, changes } => {
                let applied = self.store.put_products(&shop, &changes).await?;
                if let Some(c) = &self.catalogues {
                    c.apply(&shop, &applied);
                }
                let stale = changes.len() - applied.len();
                tracing::info!(%shop, products = applied.len(), stale, "catalogue updated");
                self.stats.products.fetch_add(changes.len() as u64, Ordering::Relaxed);
                ok(Some(0), None)
            }
            Accepted::Ignored { topic } => {
                self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                ok(Some(0), Some(&topic))
            }
            Accepted::Ping => ok(Some(0), None),
        };
        Ok((resp, 0, whose))
    }

    /// `GET /unsubscribe?…` shows a confirmation page and changes nothing;
    /// `POST` (RFC 8058 one-click, `List-Unsubscribe=One-Click`, or the
    /// page's button) records the refusal and answers 200 — never a redirect.
    async fn unsubscribe<B: AsRef<[u8]>>(&self, req: &Request<B>) -> Response<String> {
        let Some((key, now)) = self.link_key() else { return error(StatusCode::NOT_FOUND, "not found".into()) };
        let form = "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Unsubscribe</button>";
        let verified = key.verify(req.uri().query().unwrap_or(""), now);
        let target = match follow(req, verified, "Unsubscribe from these emails?", form) {
            Followed::Act(t) => t,
            Followed::Answer(page) => return page,
        };
        match unsubscribe(&self.store, &self.rules, &target, now).await {
            Ok(Unsubscribed::Recorded { profile }) => {
                tracing::info!(shop = %target.shop, link = %target.profile, %profile, "unsubscribed");
                page(StatusCode::OK, "You are unsubscribed", "You will not get these emails any more.")
            }
            Ok(Unsubscribed::Gone) => {
                tracing::info!(shop = %target.shop, link = %target.profile, "unsubscribe for an erased profile");
                gone()
            }
            Err(e) => self.not_stored("unsubscribe", &e),
        }
    }

    /// `GET /confirm?…` shows a button and changes nothing; `POST` records
    /// the person's confirmation of a subscription a public source asked for.
    async fn confirm<B: AsRef<[u8]>>(&self, req: &Request<B>) -> Response<String> {
        let Some((key, now)) = self.link_key() else { return error(StatusCode::NOT_FOUND, "not found".into()) };
        let form = "<button type=\"submit\">Yes, subscribe me</button>";
        let verified = key.verify_confirm(req.uri().query().unwrap_or(""), now);
        let target = match follow(req, verified, "Confirm your subscription", form) {
            Followed::Act(t) => t,
            Followed::Answer(page) => return page,
        };
        match confirm(&self.ingest_ports(), &target, now).await {
            Ok(Confirmed::Subscribed { profile }) => {
                tracing::info!(shop = %target.shop, %profile, "subscription confirmed");
                page(StatusCode::OK, "You are subscribed", "Thank you for confirming.")
            }
            Ok(Confirmed::NotRequested) => {
                page(StatusCode::OK, "Nothing to confirm", "There is no open request for this link.")
            }
            Ok(Confirmed::Gone) => gone(),
            Err(e) => self.not_stored("confirmation", &e),
        }
    }

    /// The link-signing key and the time; `None` where links are not served.
    fn link_key(&self) -> Option<(&UnsubscribeKey, jiff::Timestamp)> {
        Some((self.unsubscribe_key.as_ref()?, self.clock.now()))
    }

    /// Our failure to store what a link asked for: 500, so the person (or
    /// the mail client) tries again; never a page saying it was done.
    fn not_stored(&self, what: &str, e: &dyn std::fmt::Display) -> Response<String> {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, "{what} not stored");
        page(StatusCode::INTERNAL_SERVER_ERROR, "Please try again", "We could not record this just now.")
    }
}

/// What following a signed link comes to.
enum Followed {
    /// A POST of a valid link: do what it asks for this target.
    Act(LinkTarget),
    /// A bad link (the page says why), or a GET (mail scanners follow
    /// links): a page whose button POSTs the same link; nothing changed.
    Answer(Response<String>),
}

fn follow<B>(req: &Request<B>, verified: Result<LinkTarget, LinkError>, title: &str, form: &str) -> Followed {
    let target = match verified {
        Ok(t) => t,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return Followed::Answer(page(status, "This link does not work", &e.to_string()));
        }
    };
    if req.method() == Method::GET {
        let action = format!("{}?{}", req.uri().path(), req.uri().query().unwrap_or(""));
        let html = format!("<form method=\"post\" action=\"{}\">{form}</form>", html_escape(&action));
        return Followed::Answer(page(StatusCode::OK, title, &html));
    }
    Followed::Act(target)
}

fn gone() -> Response<String> {
    page(StatusCode::OK, "Nothing is held about you", "This shop keeps no data for this link any more.")
}

/// Escapes text for HTML content and attribute values.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response<String> {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head><body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto\"><h1>{title}</h1><p>{body}</p></body></html>"
    );
    let mut r = Response::new(html);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// A sender's header or path as a log field: only what a topic or route
/// looks like (the sender chooses these bytes; no line breaks, no text).
fn loggable(s: &str) -> &str {
    let plain = s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_/.-".contains(&b));
    if plain { s } else { "(other)" }
}

fn rejected(r: &Rejection) -> Response<String> {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
    // Signature failures say no more than that: no hint for a forger.
    error(status, r.to_string())
}
