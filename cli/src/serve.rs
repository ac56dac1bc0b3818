//! `nudge serve`: the whole pipeline on one machine. The same HTTP handlers
//! as the Lambda functions, an embedded SQLite store, a durable scheduler
//! in SQLite, and an outbox of RFC 5322 `.eml` files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use nudge_app::bundle::Bundle;
use nudge_app::compose::{Composer, Guarded, Sandbox};
use nudge_app::http::{HttpService, HttpStats};
use nudge_app::ports::{CatalogueStore, Clock, SystemClock};
use nudge_app::unsubscribe::UnsubscribeKey;
use nudge_app::{AliasKey, Catalogues, CheckPorts, run_check};
use nudge_core::Dur;
use nudge_local::{SqliteScheduler, SqliteStore};
use nudge_sources::{Rejection, SourcesConfig};
use serde::Deserialize;

use nudge_local::files::{FilePublisher, erase_files};
use nudge_local::outbox::{Outbox, Smtp};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The configuration file (see examples/nudge.toml).
    #[arg(long, default_value = "nudge.toml")]
    pub config: PathBuf,
    /// Public address: webhooks, tracking, unsubscribe and confirmation
    /// links, /healthz (overrides the config; default 127.0.0.1:8787).
    #[arg(long)]
    pub listen: Option<String>,
    /// Admin address: the dashboard and sent emails, personal data
    /// (overrides the config; default 127.0.0.1:8788, loopback only).
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Data directory (overrides the config; default ./nudge-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// `nudge.toml`. Paths are relative to the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeConfig {
    triggers: PathBuf,
    templates: PathBuf,
    catalogue: Option<PathBuf>,
    listen: Option<String>,
    /// The dashboard's address; anywhere but loopback it needs
    /// `NUDGE_ADMIN_TOKEN`.
    admin_listen: Option<String>,
    /// Connections served at once on each listener (default 1024).
    max_connections: Option<usize>,
    data: Option<PathBuf>,
    /// Sender, e.g. "Demo Shop <shop@example.com>".
    from: String,
    /// Where unsubscribe links point (this server as the world sees it).
    public_url: Option<String>,
    #[serde(default = "en_us")]
    locale: String,
    /// Shop secrets and write keys; without it, the NUDGE_* variables.
    sources: Option<SourcesConfig>,
    /// Sandbox mode (staging): mail only to these addresses or `@domains`;
    /// every other send is decided and logged but withheld (`sandbox`).
    sandbox: Option<Vec<String>>,
    /// Also send each message to this SMTP server (`smtp://host:port`,
    /// `smtps://user:pass@host:465`); `NUDGE_SMTP_URL` overrides it.
    smtp_url: Option<String>,
    /// Profiles not updated for this long are erased with everything held
    /// about them (default 400d).
    #[serde(default = "default_retention")]
    retention: Dur,
    /// How often each shop's customer model (what `rfm:` segments,
    /// `p_alive` and `expected_orders` read) is refitted on the data
    /// directory's event logs (default 24h; `0s`: never).
    #[serde(default = "default_refit")]
    refit_models: Dur,
}

fn default_refit() -> Dur {
    Dur::from_secs(86_400)
}

/// The data directory's customer models: only the models, no person.
const MODELS_FILE: &str = "models.json";

/// Largest request body read (the sources' own limits are lower).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Time a client has to send a request's body.
const BODY_READ: Duration = Duration::from_secs(30);
/// The bearer token (or Basic password) the admin listener asks for.
const ADMIN_TOKEN: &str = "NUDGE_ADMIN_TOKEN";

fn default_retention() -> Dur {
    Dur::from_secs(400 * 86_400)
}

fn en_us() -> String {
    "en-US".into()
}

pub type Service = HttpService<SqliteStore, SqliteScheduler, Arc<FilePublisher>, SystemClock>;

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let (cfg, base) = load_config(&args.config)?;
    let rel = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let Bundle { rules, templates, catalogue } =
        Bundle::load(&rel(&cfg.triggers), &rel(&cfg.templates), cfg.catalogue.as_ref().map(|p| rel(p)).as_deref())?;
    let data = args.data.or(cfg.data.as_ref().map(|d| rel(d))).unwrap_or_else(|| PathBuf::from("nudge-data"));
    // The models of the last refit, until the next.
    if data.join(MODELS_FILE).exists() {
        crate::replay_cmd::load_models(&rules, Some(&data.join(MODELS_FILE)))?;
    }
    std::fs::create_dir_all(data.join("outbox")).with_context(|| format!("cannot create {}", data.display()))?;
    std::fs::create_dir_all(data.join("exports"))?;
    let keys = nudge_local::keys::load(&data)?;
    let link_key = || UnsubscribeKey::rotating(&keys.link, &keys.previous_links);
    let (store, scheduler, publisher) = open_storage(&data, &keys)?;

    let rt = tokio::runtime::Runtime::new()?;
    let admin_token = std::env::var(ADMIN_TOKEN).ok().filter(|t| !t.is_empty());
    let listen = args.listen.or(cfg.listen.clone()).unwrap_or_else(|| "127.0.0.1:8787".into());
    let admin_listen = args.admin_listen.or(cfg.admin_listen.clone()).unwrap_or_else(|| "127.0.0.1:8788".into());
    let (listener, admin_listener) = rt.block_on(bind_listeners(&listen, &admin_listen, admin_token.is_some()))?;
    let (addr, admin_addr) = (listener.local_addr()?, admin_listener.local_addr()?);

    // The feed file, overlaid with the product webhooks stored so far.
    let catalogues = Arc::new(Catalogues::new(catalogue));
    for shop in store.catalogue_shops().map_err(|e| anyhow::anyhow!("{e}"))? {
        catalogues.load(&shop, &rt.block_on(store.products(&shop)).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let composer = Composer {
        rules: rules.clone(),
        templates,
        catalogues: catalogues.clone(),
        from: cfg.from.clone(),
        public_url: cfg.public_url.clone().unwrap_or_else(|| format!("http://{addr}")),
        locale: cfg.locale.clone(),
        unsubscribe_key: link_key(),
    };
    let mail = mail(composer, &cfg, &data)?;
    let smtp_configured = mail.mailer.inner.smtp.is_some();
    let svc = Arc::new(HttpService {
        rules,
        alias_key: AliasKey::new(&keys.alias),
        sources: cfg.sources.clone().unwrap_or_else(|| SourcesConfig::from_env(|k| std::env::var(k).ok())),
        store,
        scheduler,
        publisher,
        clock: SystemClock,
        stats: HttpStats::default(),
        unsubscribe_key: Some(link_key()),
        catalogues: Some(catalogues),
    });
    print_banner(addr, admin_addr, &data, admin_token.is_some(), &svc.sources.describe(), smtp_configured);

    let limits = nudge_local::http_server::Limits {
        max_connections: cfg.max_connections.unwrap_or(nudge_local::http_server::Limits::default().max_connections),
        ..nudge_local::http_server::Limits::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let public =
        rt.spawn(nudge_local::http_server::serve(listener, public_routes(svc.clone()), limits, stop_rx.clone()));
    let admin = rt.spawn(nudge_local::http_server::serve(
        admin_listener,
        admin_routes(svc.clone(), data.clone(), admin_token),
        limits,
        stop_rx.clone(),
    ));
    let checks = rt.spawn(check_loop(svc.clone(), Arc::new(mail), stop_rx.clone()));
    let refits = rt.spawn(refit_loop(svc.rules.models.clone(), data.clone(), cfg.refit_models, stop_rx.clone()));
    let sweeps = rt.spawn(retention_loop(svc, cfg.retention, stop_rx));
    rt.block_on(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        for task in [public, admin, checks, sweeps, refits] {
            let _ = task.await;
        }
    });
    eprintln!("nudge serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// `nudge.toml` and the directory its paths are relative to; errors name
/// the file and line.
fn load_config(path: &Path) -> Result<(ServeConfig, PathBuf)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (try --config examples/nudge.toml)", path.display()))?;
    let cfg: ServeConfig = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        anyhow::anyhow!("{}:{line}: {}", path.display(), e.message().trim())
    })?;
    Ok((cfg, path.parent().unwrap_or(Path::new(".")).to_path_buf()))
}

/// The database (store and scheduler sharing one writer: one fsync per
/// batch of writes, whoever made them) and the data directory's logs, with
/// erasing wired from the one to the other.
fn open_storage(
    data: &Path,
    keys: &nudge_local::keys::Keys,
) -> Result<(SqliteStore, SqliteScheduler, Arc<FilePublisher>)> {
    let db = data.join("nudge.db");
    let writer = nudge_local::Writer::open(&db).map_err(|e| anyhow::anyhow!("{}: {e}", db.display()))?;
    let store = SqliteStore::with_writer(&db, writer.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    store.quick_check().map_err(|e| anyhow::anyhow!("{}: {e}", db.display()))?;
    let scheduler = SqliteScheduler::with_writer(&db, writer).map_err(|e| anyhow::anyhow!("{e}"))?;
    let publisher = Arc::new(FilePublisher::open(data)?);
    let (dir, files, alias_key) = (data.to_path_buf(), publisher.clone(), AliasKey::new(&keys.alias));
    store.on_erase(Box::new(move |e| erase_files(&dir, &files, &alias_key, e)));
    Ok((store, scheduler, publisher))
}

/// Both listeners. The admin one shows personal data: anywhere but
/// loopback it needs the admin token. The public one should sit behind
/// HTTPS when it is reachable from other machines.
async fn bind_listeners(
    listen: &str,
    admin_listen: &str,
    has_token: bool,
) -> Result<(tokio::net::TcpListener, tokio::net::TcpListener)> {
    let bind = |a: &str| {
        let a = a.to_owned();
        async move { tokio::net::TcpListener::bind(&a).await.with_context(|| format!("cannot listen on {a}")) }
    };
    let (listener, admin_listener) = (bind(listen).await?, bind(admin_listen).await?);
    let (addr, admin_addr) = (listener.local_addr()?, admin_listener.local_addr()?);
    if !admin_addr.ip().is_loopback() && !has_token {
        anyhow::bail!(
            "the dashboard shows personal data: on {admin_addr} (not loopback) it needs {ADMIN_TOKEN} set; \
             or keep it on 127.0.0.1 and reach it through an SSH tunnel"
        );
    }
    if !addr.ip().is_loopback() {
        eprintln!(
            "nudge serve: warning: the public listener {addr} is reachable from other machines; \
             put it behind HTTPS (a reverse proxy) before storefronts send to it"
        );
    }
    Ok((listener, admin_listener))
}

/// The composer, the outbox, SMTP when configured, and the sandbox.
fn mail(composer: Composer, cfg: &ServeConfig, data: &Path) -> Result<Mail> {
    if let Some(w) = nudge_content::confirmation_warning(&composer.templates) {
        eprintln!("nudge serve: {w}");
    }
    let sandbox = cfg.sandbox.as_ref().map(|list| Sandbox::parse(&list.join(",")));
    if let Some(s) = &sandbox {
        eprintln!("nudge serve: sandbox mode: mail only to the allowlist ({s:?}); the rest is decided `sandbox`");
    }
    let smtp_url = std::env::var("NUDGE_SMTP_URL").ok().filter(|u| !u.is_empty()).or(cfg.smtp_url.clone());
    let smtp = smtp_url.as_deref().map(|url| Smtp::new(url, &composer.from)).transpose()?;
    if smtp.is_some() {
        eprintln!("nudge serve: also sending over SMTP");
    }
    Ok(Mail { composer, mailer: Guarded { inner: Outbox { dir: data.join("outbox"), smtp }, sandbox } })
}

/// Where to reach the server and what it does, in one write, and no
/// failure if whoever started us has stopped reading: the server does not
/// depend on its stdout. The first two lines name the two addresses.
fn print_banner(
    addr: std::net::SocketAddr,
    admin_addr: std::net::SocketAddr,
    data: &Path,
    has_token: bool,
    sources: &[String],
    smtp: bool,
) {
    let guarded = if has_token { "token required" } else { "loopback only" };
    let d = data.display();
    let mut banner = format!(
        "nudge serve: listening on http://{addr} (data in {d})\n\
         nudge serve: dashboard on http://{admin_addr} ({guarded})\n\
         \x20 routes   POST /webhooks/shopify, /webhooks/woocommerce, /webhooks/segment\n\
         \x20          POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias\n\
         \x20          GET|POST /unsubscribe, /confirm; GET /healthz\n"
    );
    for (i, line) in sources.iter().enumerate() {
        let label = if i == 0 { "sources" } else { "" };
        banner.push_str(&format!("  {label:<8} {line}\n"));
    }
    let relay = if smtp { " and the SMTP relay" } else { "" };
    banner.push_str(&format!(
        "  data     {d}/nudge.db (profiles, checks), events.jsonl, decisions.jsonl, outbox/ (each email as .eml){relay}\n\
         \x20 logs     on standard error; RUST_LOG=debug for more, NUDGE_LOG_FORMAT=json for JSON lines\n"
    ));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
}

/// What the internet may reach: webhooks, tracking, unsubscribe and
/// confirmation links, `/healthz`. Nothing here shows personal data.
fn public_routes(svc: Arc<Service>) -> Router {
    Router::new().fallback(move |req: axum::extract::Request| {
        let svc = svc.clone();
        async move {
            let (parts, body) = req.into_parts();
            let declared =
                parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            let refuse = |r: Rejection| svc.refuse(&r).map(Body::from);
            if declared.is_some_and(|n| n > MAX_BODY) {
                return refuse(Rejection::TooLarge { limit: MAX_BODY });
            }
            match tokio::time::timeout(BODY_READ, axum::body::to_bytes(body, MAX_BODY)).await {
                Ok(Ok(bytes)) => svc.handle(&http::Request::from_parts(parts, bytes)).await.map(Body::from),
                // Over the limit without a Content-Length (chunked): too
                // large. Otherwise the client stopped sending before the
                // end: nothing was stored.
                Ok(Err(_)) if declared.is_none() => refuse(Rejection::TooLarge { limit: MAX_BODY }),
                Ok(Err(_)) => refuse(Rejection::Invalid("body cut off before its Content-Length".into())),
                Err(_) => refuse(Rejection::SlowBody { secs: BODY_READ.as_secs() }),
            }
        }
    })
}

/// The dashboard and the sent emails: personal data, so on its own
/// listener (loopback by default) and behind `NUDGE_ADMIN_TOKEN` when set.
fn admin_routes(svc: Arc<Service>, data: PathBuf, token: Option<String>) -> Router {
    let file_data = data.clone();
    let feedback_svc = svc.clone();
    let routes = Router::new()
        .route(
            "/",
            axum::routing::get(move |uri: http::Uri| {
                let (svc, data) = (svc.clone(), data.clone());
                let q = crate::dashboard::search_term(uri.query().unwrap_or(""));
                async move { axum::response::Html(crate::dashboard::page(&svc, &data, q.as_deref())) }
            }),
        )
        .route(
            "/outbox/{name}",
            axum::routing::get(move |axum::extract::Path(name): axum::extract::Path<String>| {
                let data = file_data.clone();
                async move { crate::dashboard::outbox_file(&data, &name) }
            }),
        )
        .route(
            "/feedback",
            axum::routing::post(move |body: axum::body::Bytes| {
                let svc = feedback_svc.clone();
                async move { mail_feedback(&svc, &body).await }
            }),
        );
    let Some(token) = token else { return routes };
    let token = Arc::new(nudge_sources::Secret::new(token.into_bytes()));
    routes.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
        let token = token.clone();
        async move {
            if admin_authorised(req.headers(), &token) {
                next.run(req).await
            } else {
                http::Response::builder()
                    .status(http::StatusCode::UNAUTHORIZED)
                    .header(http::header::WWW_AUTHENTICATE, "Basic realm=\"nudge\"")
                    .body(Body::from("authentication required"))
                    .unwrap_or_default()
            }
        }
    }))
}

/// `POST /feedback` on the admin listener: one SES event (bare, or in its
/// EventBridge envelope) about mail this server sent, relayed through
/// SES's SMTP interface. Joined, counted and folded as the `ses-events`
/// function does.
async fn mail_feedback(svc: &Service, body: &[u8]) -> http::Response<Body> {
    let reply = |status: http::StatusCode, body: String| {
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap_or_default()
    };
    let fb = match nudge_sources::ses::parse(body) {
        Ok(fb) => fb,
        Err(e) => {
            return reply(http::StatusCode::BAD_REQUEST, serde_json::json!({ "error": e.to_string() }).to_string());
        }
    };
    match nudge_app::feedback::feedback(&svc.ingest_ports(), &fb).await {
        Ok(fed) => reply(http::StatusCode::OK, serde_json::to_string(&fed).unwrap_or_default()),
        Err(e) => {
            tracing::error!(error = %e, "feedback not applied");
            reply(
                http::StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "store unavailable" }).to_string(),
            )
        }
    }
}

/// `Authorization: Bearer <token>`, or Basic with the token as password
/// (what a browser's login prompt sends); compared in constant time.
fn admin_authorised(headers: &http::HeaderMap, token: &nudge_sources::Secret) -> bool {
    use base64::Engine as _;
    let Some(value) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some((scheme, rest)) = value.trim().split_once(' ') else { return false };
    let presented = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).unwrap_or_default();
        match decoded.iter().position(|b| *b == b':') {
            Some(i) => decoded[i + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    token.matches(&presented)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async move {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Runs due checks every half second (overdue ones at start-up), marking
/// each done once decided.
/// How a decided send becomes an email: rendered, then written to the
/// outbox (and relayed over SMTP when configured).
struct Mail {
    composer: Composer,
    mailer: Guarded<Outbox>,
}

async fn check_loop(svc: Arc<Service>, mail: Arc<Mail>, mut stop: tokio::sync::watch::Receiver<bool>) {
    // Checks run one at a time in this loop: a claim made before it started
    // was left by a run that died with an earlier process.
    let started = svc.clock.now();
    let ports = CheckPorts {
        rules: &svc.rules,
        store: &svc.store,
        scheduler: &svc.scheduler,
        composer: Some(&mail.composer),
        send_by: None,
        claims_lapse_before: Some(started),
        mailer: &mail.mailer,
        clock: &svc.clock,
        publisher: &svc.publisher,
    };
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        match svc.scheduler.due(svc.clock.now(), 100) {
            Ok(checks) => {
                for check in checks {
                    match run_check(&ports, &check).await {
                        Ok(_) => {
                            if let Err(e) = svc.scheduler.done(&check).await {
                                tracing::error!(error = %e, "check ran but could not be marked done; it will be a duplicate");
                            }
                        }
                        Err(e) => check_failed(&svc, &check, &e.to_string()).await,
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read due checks"),
        }
        match svc.scheduler.set_aside_unreadable().await {
            Ok(0) => {}
            Ok(n) => tracing::error!(rows = n, "unreadable check rows moved to checks_set_aside"),
            Err(e) => tracing::error!(error = %e, "cannot set aside unreadable check rows"),
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            last_sweep = Some(std::time::Instant::now());
            sweep(&svc, &ports).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A check that failed: tried again after a growing backoff, and set
/// aside (out of the check loop and the sweep, with the reason) after
/// [`nudge_local::MAX_CHECK_ATTEMPTS`].
async fn check_failed(svc: &Service, check: &nudge_core::Check, reason: &str) {
    match svc.scheduler.failed(check, reason, svc.clock.now()).await {
        Ok(nudge_local::Failed::Retry { attempts, at }) => {
            tracing::error!(check = %check.name(), attempts, retry_at = %at, error = reason, "check failed; tried again later")
        }
        Ok(nudge_local::Failed::SetAside) => {
            tracing::error!(check = %check.name(), error = reason, "check failed too often: set aside in checks_set_aside")
        }
        Err(e) => tracing::error!(check = %check.name(), error = %e, "check failed and could not be rescheduled"),
    }
}

/// How often the sweep looks for overdue episodes, and how overdue they
/// must be (the check loop runs every check within a second of its time).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_GRACE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// The fallback, like the Lambda functions' reconcile: runs every pending
/// check overdue by more than [`SWEEP_GRACE`] — one whose row was never
/// written, or whose claim a crash abandoned.
async fn sweep(
    svc: &Service,
    ports: &CheckPorts<'_, SqliteStore, SqliteScheduler, Guarded<Outbox>, SystemClock, Arc<FilePublisher>>,
) {
    let cutoff = svc.clock.now().saturating_sub(SWEEP_GRACE).unwrap_or(jiff::Timestamp::MIN);
    let profiles = match svc.store.overdue(cutoff, 100).await {
        Ok(p) if p.is_empty() => return,
        Ok(p) => p,
        Err(e) => return tracing::error!(error = %e, "sweep: cannot read overdue profiles"),
    };
    match nudge_app::reconcile(ports, &profiles, SWEEP_GRACE).await {
        Ok(done) => {
            tracing::info!(run = done.run, sent = done.sent, failed = done.failed.len(), "sweep ran overdue checks");
            for (check, reason) in &done.failed {
                check_failed(svc, check, reason).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "sweep failed"),
    }
}

/// Erases profiles idle for longer than `retention` (with their pending
/// checks and their files), at start-up and then every quarter of the
/// retention (at most hourly).
async fn retention_loop(svc: Arc<Service>, retention: Dur, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = Duration::from_secs(u64::try_from(retention.as_secs() / 4).unwrap_or(0).clamp(1, 3_600));
    loop {
        let cutoff = svc.clock.now().as_second() - retention.as_secs();
        match svc.store.idle_profiles(cutoff, 1_000) {
            Ok(idle) => {
                for (shop, id) in &idle {
                    if let Err(e) = purge(&svc, shop, id).await {
                        tracing::error!(error = %e, "retention purge failed; retried next sweep");
                    }
                }
                if !idle.is_empty() {
                    tracing::info!(profiles = idle.len(), %retention, "idle profiles erased (retention)");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list idle profiles"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Refits every shop's customer model on the data directory's event logs
/// now and then every `every`, and swaps it in for the rules.
async fn refit_loop(
    models: nudge_core::model::Models,
    data: PathBuf,
    every: Dur,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if every.as_secs() <= 0 {
        return;
    }
    loop {
        let (shared, dir) = (models.clone(), data.clone());
        match tokio::task::spawn_blocking(move || refit(&shared, &dir)).await {
            Ok(Ok(fitted)) => tracing::info!(shops = fitted.len(), customers = ?fitted, "customer models refitted"),
            Ok(Err(e)) => tracing::info!(reason = %e, "customer models not refitted"),
            Err(e) => tracing::error!(error = %e, "the model refit stopped"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(every.as_secs().unsigned_abs())) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One refit: the models of the orders in the event logs so far, written
/// to the data directory and swapped in. Customers per shop.
fn refit(shared: &nudge_core::model::Models, data: &Path) -> Result<std::collections::BTreeMap<String, u64>> {
    let input =
        crate::logs::Input { shop: "default".into(), format: crate::logs::Format::Nudge, logs: vec![data.into()] };
    let (logs, alias_key) = input.open()?;
    // The log being written may end in half a line: skipped.
    let out = crate::segments::fit(&input, &logs, alias_key, None, 90, true)?;
    let models = crate::segments::models(&out);
    crate::segments::write_whole(&data.join(MODELS_FILE), &nudge_core::model::to_models_json(&models)?)?;
    let customers = models.iter().map(|(shop, m)| (shop.clone(), m.customers)).collect();
    shared.replace(models);
    Ok(customers)
}

async fn purge(svc: &Service, shop: &str, id: &str) -> Result<(), nudge_app::AppError> {
    use nudge_app::ports::{ProfileStore, Scheduler};
    if let Some(p) = svc.store.load(shop, id).await? {
        for check in p.pending_checks() {
            svc.scheduler.cancel(&check).await?;
        }
    }
    Ok(svc.store.erase(shop, id).await?)
}
