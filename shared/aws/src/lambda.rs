//! What each Lambda function runs: init (typed settings, secrets, SDK
//! clients built once) and a handler per function. The functions' `main.rs`
//! only wire these to the runtime; the tests call the same handlers against
//! the AWS emulator.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use aws_config::SdkConfig;
use jiff::{SignedDuration, Timestamp};
use lambda_http::{Body, Request, Response};
use nudge_app::bundle::{Bundle, load_rules};
use nudge_app::compose::{Composer, Guarded, Sandbox};
use nudge_app::feedback::feedback;
use nudge_app::http::{HttpService, HttpStats};
use nudge_app::ports::{Clock, StoreError, SystemClock};
use nudge_app::unsubscribe::UnsubscribeKey;
use nudge_app::{AliasKey, AppError, Catalogues, CheckPorts, IngestPorts, reconcile, run_check};
use nudge_core::{Check, Triggers};
use nudge_sources::SourcesConfig;
use nudge_sources::ses;

use crate::dynamo::DynamoStore;
use crate::metrics;
use crate::publish::EventBridgePublisher;
use crate::schedule::EventBridgeScheduler;
use crate::secrets::{Secrets, SecretsError};
use crate::ses::SesMailer;
use crate::settings::{ALIAS_KEY, SHOP, Settings, SettingsError, UNSUBSCRIBE_KEY, UNSUBSCRIBE_KEY_PREVIOUS};

/// A failed invocation, reported to Lambda as retryable (our side: the
/// event is redelivered) or not (bad input: retrying cannot help).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub retryable: bool,
    pub message: String,
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> lambda_runtime::Diagnostic {
        let kind = if e.retryable { "nudge.Retryable" } else { "nudge.BadInput" };
        lambda_runtime::Diagnostic { error_type: kind.into(), error_message: e.message }
    }
}

impl From<AppError> for HandlerError {
    fn from(e: AppError) -> HandlerError {
        metrics::error("app");
        HandlerError { retryable: e.is_retryable(), message: e.to_string() }
    }
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> HandlerError {
        AppError::from(e).into()
    }
}

fn bad_input(message: String) -> HandlerError {
    metrics::count(metrics::DELIVERIES_REJECTED, 1);
    HandlerError { retryable: false, message }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("{0}")]
    Rules(String),
    #[error("{0}")]
    Tls(String),
}

/// Logs as Lambda's logging controls ask: one JSON object a line with the
/// function's `LogFormat: JSON` (`AWS_LAMBDA_LOG_FORMAT`), text otherwise;
/// the level from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else info. Each
/// line names its target (`nudge::delivery`, `nudge::decision`, …), which
/// Logs Insights queries filter on.
pub fn init_tracing() {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        // CloudWatch stamps each line itself.
        logs.without_time().init();
    }
}

/// The shared part of every function: settings, secrets, clients, rules.
pub struct Stack {
    pub settings: Settings,
    pub rules: Triggers,
    pub store: DynamoStore,
    pub scheduler: EventBridgeScheduler,
    pub publisher: EventBridgePublisher,
    pub alias_key: AliasKey,
    pub unsubscribe_key: UnsubscribeKey,
    sources: SourcesConfig,
    sdk: SdkConfig,
}

impl Stack {
    /// From the process environment, with the HTTPS client of
    /// [`crate::tls`]. Lambda hands a function its region and credentials
    /// in environment variables; when they are there, they are read
    /// directly rather than through the default chains, whose web-identity
    /// and instance-metadata providers (an STS client among them) would be
    /// built at every cold start for nothing. Elsewhere the default chains
    /// apply.
    pub async fn from_env() -> Result<Stack, InitError> {
        use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
        let has = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        let system_roots =
            crate::tls::wants_system_roots(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
        let http = crate::tls::http_client(system_roots).map_err(InitError::Tls)?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
        if has("AWS_REGION") {
            loader = loader.region(EnvironmentVariableRegionProvider::new());
        }
        if has("AWS_ACCESS_KEY_ID") && has("AWS_SECRET_ACCESS_KEY") {
            loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
        }
        Stack::new(loader.load().await, |k| std::env::var(k).ok()).await
    }

    /// From `get` (an environment) and an SDK configuration. Every client
    /// but SES's (which sets its own, see [`crate::ses::client`]) bounds
    /// each attempt by [`ATTEMPT_TIMEOUT`].
    pub async fn new(sdk: SdkConfig, get: impl Fn(&str) -> Option<String>) -> Result<Stack, InitError> {
        let timeouts = aws_config::timeout::TimeoutConfig::builder().operation_attempt_timeout(ATTEMPT_TIMEOUT).build();
        let sdk = sdk.into_builder().timeout_config(timeouts).build();
        let settings = Settings::from_env(&get)?;
        let secrets = match &settings.secrets_path {
            Some(path) => Secrets::from_ssm(&aws_sdk_ssm::Client::new(&sdk), path).await?,
            None => Secrets::from_env(&get),
        };
        let rules = load_rules(&settings.rules_dir.join("triggers.toml"), Some(&settings.rules_dir.join("templates")))
            .map_err(|e| InitError::Rules(e.0))?;
        let sources = SourcesConfig::from_env(|k| if k == SHOP { get(k) } else { secrets.get(k) });
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &settings.table, settings.retention);
        let scheduler = EventBridgeScheduler::new(aws_sdk_scheduler::Client::new(&sdk), settings.schedule.clone());
        let publisher = EventBridgePublisher::new(&sdk, settings.event_bus.clone());
        Ok(Stack {
            alias_key: AliasKey::new(secrets.require(ALIAS_KEY)?),
            unsubscribe_key: UnsubscribeKey::rotating(
                secrets.require(UNSUBSCRIBE_KEY)?,
                &secrets.get(UNSUBSCRIBE_KEY_PREVIOUS).into_iter().collect::<Vec<_>>(),
            ),
            settings,
            rules,
            store,
            scheduler,
            publisher,
            sources,
            sdk,
        })
    }

    fn ingest_ports(&self) -> IngestPorts<'_, DynamoStore, EventBridgeScheduler, EventBridgePublisher> {
        IngestPorts {
            now: Timestamp::now(),
            rules: &self.rules,
            alias_key: &self.alias_key,
            store: &self.store,
            scheduler: &self.scheduler,
            publisher: &self.publisher,
        }
    }
}

/// How long one request to DynamoDB, Scheduler, EventBridge or SSM may take
/// before the SDK gives it up and retries (its standard retries). They
/// answer in milliseconds; without a bound a request on a connection that
/// went silent waits out the whole invocation (and a webhook's sender:
/// Shopify gives up after 5 s). Retrying is safe: profile writes are
/// conditional on the profile's version and a check's claim carries its
/// token, so a write applied whose answer was lost is recognised.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub type Http = HttpService<DynamoStore, EventBridgeScheduler, EventBridgePublisher, SystemClock>;

/// The webhook, track and unsubscribe functions: the nudge-app HTTP
/// handlers behind a function URL, limited to this function's paths.
pub struct HttpFunction {
    service: Http,
    paths: &'static [&'static str],
}

impl HttpFunction {
    pub fn new(stack: Stack, paths: &'static [&'static str]) -> HttpFunction {
        let service = HttpService {
            rules: stack.rules,
            alias_key: stack.alias_key,
            sources: stack.sources,
            store: stack.store,
            scheduler: stack.scheduler,
            publisher: stack.publisher,
            clock: SystemClock,
            stats: HttpStats::default(),
            unsubscribe_key: Some(stack.unsubscribe_key),
            // The check function renders and reloads the catalogue itself.
            catalogues: None,
        };
        HttpFunction { service, paths }
    }

    pub fn service(&self) -> &Http {
        &self.service
    }

    /// Answers one request. Never fails: every outcome is an HTTP status.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let path = req.uri().path().trim_end_matches('/');
        let allowed = path == "/healthz"
            || self
                .paths
                .iter()
                .any(|p| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')));
        let (parts, body) = req.into_parts();
        let bytes: &[u8] = body.as_ref();
        let stats = &self.service.stats;
        let before = (stats.events.load(Ordering::Relaxed), stats.rejected.load(Ordering::Relaxed));
        let resp = if allowed {
            self.service.handle(&http::Request::from_parts(parts, bytes)).await
        } else {
            let mut r = Response::new("{\"ok\":false,\"error\":\"not found\"}".to_owned());
            *r.status_mut() = http::StatusCode::NOT_FOUND;
            r
        };
        metrics::count(metrics::EVENTS_INGESTED, stats.events.load(Ordering::Relaxed) - before.0);
        metrics::count(metrics::DELIVERIES_REJECTED, stats.rejected.load(Ordering::Relaxed) - before.1);
        if resp.status().is_server_error() {
            metrics::error("http");
        }
        let (parts, text) = resp.into_parts();
        Ok(Response::from_parts(parts, Body::Text(text)))
    }
}

/// A function's start-up settled: a failure is logged with its context
/// (which setting, which service, why — never a `Debug` dump) and the
/// process exits, which Lambda reports as an init error with that log.
pub fn started<T, E: std::fmt::Display>(step: Result<T, E>) -> T {
    step.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the function cannot start");
        std::process::exit(1)
    })
}

/// The whole life of an HTTP function: settings, clients and rules once,
/// then every request of the runtime loop through [`HttpFunction::handle`].
pub async fn run_http(paths: &'static [&'static str]) -> Result<(), lambda_http::Error> {
    init_tracing();
    let function = std::sync::Arc::new(HttpFunction::new(started(Stack::from_env().await), paths));
    lambda_http::run(lambda_http::service_fn(move |req| {
        let function = function.clone();
        async move { function.handle(req).await }
    }))
    .await
}

/// How long the check function trusts its copy of a shop's product
/// webhooks before reading them again: a product update reaches emails
/// within this time, and a busy function reads the catalogue once a minute
/// rather than once per send.
pub const CATALOGUE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Profiles a reconcile sweep loads and decides at a time, longest overdue
/// first: at 20–60 ms a check (two DynamoDB requests, an email for some) a
/// batch takes 40–120 s of the function's 300 s.
pub const RECONCILE_BATCH: usize = 2_000;

/// A sweep starts no further batch with less than this left of its
/// invocation; the next sweep, five minutes on, takes the rest.
pub const RECONCILE_RESERVE: jiff::SignedDuration = jiff::SignedDuration::from_secs(150);

/// When Lambda will stop this invocation: `None` where a local runtime
/// gives no deadline, or one that cannot be a time in this invocation
/// (`cargo lambda watch` sends its timeout, e.g. 600000, as if it were a
/// time): an invocation lasts at most 15 minutes.
pub fn invocation_deadline(context: &lambda_runtime::Context) -> Option<Timestamp> {
    let ms = i64::try_from(context.deadline).ok().filter(|&ms| ms > 0)?;
    let deadline = Timestamp::from_millisecond(ms).ok()?;
    let now = Timestamp::now();
    let plausible = deadline > now.checked_sub(SignedDuration::from_mins(1)).ok()?
        && deadline < now.checked_add(SignedDuration::from_mins(16)).ok()?;
    plausible.then_some(deadline)
}

/// The longest a send may take: SES throttling is retried for up to
/// [`nudge_app::retry::THROTTLE_BUDGET`], and the request itself takes a
/// moment. A send is not started closer than this to the end of an
/// invocation.
pub const SEND_TIME: jiff::SignedDuration = jiff::SignedDuration::from_secs(25);

/// The check and reconcile functions: the stack, the composer and the SES
/// mailer.
pub struct CheckFunction {
    pub stack: Stack,
    pub composer: Composer,
    pub mailer: Guarded<SesMailer>,
}

impl CheckFunction {
    /// Fails (naming the setting) without the mail settings.
    pub fn new(stack: Stack) -> Result<CheckFunction, InitError> {
        let dir = &stack.settings.rules_dir;
        let catalogue = dir.join("catalogue.json");
        let bundle = Bundle::with_rules(
            stack.rules.clone(),
            &dir.join("templates"),
            catalogue.exists().then_some(catalogue.as_path()),
        )
        .map_err(|e| InitError::Rules(e.0))?;
        if let Some(w) = nudge_content::confirmation_warning(&bundle.templates) {
            tracing::warn!("{w}");
        }
        let mail = &stack.settings.mail()?;
        let composer = Composer {
            rules: bundle.rules,
            templates: bundle.templates,
            catalogues: Arc::new(Catalogues::reloading(bundle.catalogue, CATALOGUE_MAX_AGE)),
            from: mail.from.clone(),
            public_url: mail.public_url.clone(),
            locale: mail.locale.clone(),
            unsubscribe_key: stack.unsubscribe_key.clone(),
        };
        let ses = SesMailer::new(crate::ses::client(&stack.sdk), mail.from.clone(), mail.configuration_set.clone());
        let sandbox = stack.settings.sandbox.as_deref().map(Sandbox::parse);
        Ok(CheckFunction { composer, mailer: Guarded { inner: ses, sandbox }, stack })
    }

    /// `deadline`: the invocation's; sends are started only up to
    /// [`SEND_TIME`] before it.
    fn ports(
        &self,
        deadline: Option<Timestamp>,
    ) -> CheckPorts<'_, DynamoStore, EventBridgeScheduler, Guarded<SesMailer>, SystemClock, EventBridgePublisher> {
        CheckPorts {
            send_by: deadline.and_then(|d| d.checked_sub(SEND_TIME).ok()),
            claims_lapse_before: None,
            rules: &self.stack.rules,
            store: &self.stack.store,
            scheduler: &self.stack.scheduler,
            composer: Some(&self.composer),
            mailer: &self.mailer,
            clock: &SystemClock,
            publisher: &self.stack.publisher,
        }
    }

    /// The Scheduler target: the input is the Check JSON, verbatim.
    pub async fn check(&self, payload: serde_json::Value) -> Result<serde_json::Value, HandlerError> {
        self.check_by(payload, None).await
    }

    /// [`CheckFunction::check`] in an invocation that ends at `deadline`.
    pub async fn check_by(
        &self,
        payload: serde_json::Value,
        deadline: Option<Timestamp>,
    ) -> Result<serde_json::Value, HandlerError> {
        let check: Check = serde_json::from_value(payload).map_err(|e| bad_input(format!("not a check: {e}")))?;
        let checked = run_check(&self.ports(deadline), &check).await?;
        metrics::count(metrics::CHECKS_RUN, 1);
        for what in &checked.unrecorded {
            metrics::error(what);
        }
        Ok(serde_json::json!({
            "check": check.name(),
            "decision": checked.decision.decision,
            "reason": checked.decision.reason,
            "message_id": checked.message_id,
        }))
    }

    /// The periodic sweep: runs checks overdue by more than the grace
    /// period, [`RECONCILE_BATCH`] profiles at a time, until none is left or
    /// the invocation's `deadline` is less than [`RECONCILE_RESERVE`] away.
    pub async fn reconcile(&self, deadline: Option<Timestamp>) -> Result<serde_json::Value, HandlerError> {
        self.reconcile_in_batches(RECONCILE_BATCH, deadline).await
    }

    /// [`Self::reconcile`] with batches of `batch` profiles.
    pub async fn reconcile_in_batches(
        &self,
        batch: usize,
        deadline: Option<Timestamp>,
    ) -> Result<serde_json::Value, HandlerError> {
        let grace = self.stack.settings.reconcile_grace;
        let cutoff = SystemClock.now().saturating_sub(grace).unwrap_or(Timestamp::MIN);
        // The by-due index may still list a profile this sweep just decided:
        // each batch asks for that many more and skips them. A profile id
        // is derived from its shop (`new_profile_id`), so the id names it.
        let mut decided = std::collections::HashSet::new();
        let (mut batches, mut run, mut sent, mut failed, mut set_aside) = (0u32, 0u32, 0u32, 0u32, 0u32);
        loop {
            let wanted = batch + decided.len();
            let found = self.stack.store.overdue(cutoff, wanted).await?;
            let more = found.profiles.len() + found.set_aside as usize == wanted;
            set_aside += found.set_aside;
            for _ in 0..found.set_aside {
                metrics::error("set_aside");
            }
            let profiles: Vec<_> = found.profiles.into_iter().filter(|p| !decided.contains(&p.id)).collect();
            if profiles.is_empty() {
                break;
            }
            let done = reconcile(&self.ports(deadline), &profiles, grace).await?;
            metrics::count(metrics::CHECKS_RUN, u64::from(done.run));
            for what in &done.unrecorded {
                metrics::error(what);
            }
            for (check, reason) in &done.failed {
                metrics::error("reconcile_check");
                if self.stack.store.sweep_failed(&check.shop, &check.profile, reason).await? {
                    metrics::error("set_aside");
                    set_aside += 1;
                }
            }
            failed += done.failed.len() as u32;
            (batches, run, sent) = (batches + 1, run + done.run, sent + done.sent);
            decided.extend(profiles.into_iter().map(|p| p.id));
            let late = deadline.is_some_and(|d| SystemClock.now() + RECONCILE_RESERVE > d);
            if !more || late {
                break;
            }
        }
        // Erases a minute old or more: the indexes have caught up by then.
        let settled = SystemClock.now().saturating_sub(jiff::SignedDuration::from_mins(1)).unwrap_or(Timestamp::MIN);
        let left_over = self.stack.store.finish_erasures(settled).await?;
        Ok(serde_json::json!({
            "profiles": decided.len(),
            "batches": batches,
            "run": run,
            "sent": sent,
            "failed": failed,
            "set_aside": set_aside,
            "erase_left_overs": left_over,
        }))
    }
}

/// The ses-events function: SES feedback via EventBridge, joined back to
/// the profile through the message record (the `feedback` use case).
pub async fn ses_event(stack: &Stack, payload: serde_json::Value) -> Result<serde_json::Value, HandlerError> {
    let fb = ses::parse_value(payload).map_err(|e| bad_input(e.to_string()))?;
    metrics::emit(metrics::FEEDBACK, 1.0, Some(("Kind", fb.kind.name())));
    let fed = feedback(&stack.ingest_ports(), &fb).await?;
    Ok(serde_json::json!({ "joined": fed.joined, "kind": fb.kind.name(), "changed": fed.changed }))
}

#[cfg(test)]
mod deadline_tests {
    use super::*;

    fn context(deadline: u64) -> lambda_runtime::Context {
        let mut c = lambda_runtime::Context::default();
        c.deadline = deadline;
        c
    }

    #[test]
    fn a_deadline_in_this_invocation_is_kept_and_a_timeout_sent_as_a_deadline_is_none() {
        let soon = (Timestamp::now() + SignedDuration::from_secs(30)).as_millisecond() as u64;
        assert_eq!(invocation_deadline(&context(soon)).map(|t| t.as_millisecond() as u64), Some(soon));
        // What `cargo lambda watch` sends: its 600 s timeout, not a time.
        assert_eq!(invocation_deadline(&context(600_000)), None);
        assert_eq!(invocation_deadline(&context(0)), None);
        let next_year = (Timestamp::now() + SignedDuration::from_hours(24 * 365)).as_millisecond() as u64;
        assert_eq!(invocation_deadline(&context(next_year)), None);
    }
}
