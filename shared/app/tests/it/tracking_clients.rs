//! Segment's and RudderStack's official Python libraries, unchanged but for
//! their host, posting compressed batches to the tracking API over a real
//! socket.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use nudge_app::AliasKey;
use nudge_app::http::{HttpService, HttpStats};
use nudge_app::memory::{MemoryPublisher, MemoryScheduler, MemoryStore};
use nudge_app::ports::SystemClock;
use nudge_sources::{Secret, ShopSources, SourcesConfig};

use super::*;

type Service = HttpService<MemoryStore, MemoryScheduler, MemoryPublisher, SystemClock>;

/// The libraries, pinned.
const LIBRARIES: [&str; 2] = ["segment-analytics-python==2.4.0", "rudder-sdk-python==2.1.9"];

/// A Python with both libraries installed: `NUDGE_TEST_PYTHON`, or a
/// virtual environment created once under the target dir (one at a time:
/// both tests may ask at once). Installing needs the package registry; if
/// it fails, the test fails.
fn python() -> PathBuf {
    static READY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Ok(p) = std::env::var("NUDGE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let _one = READY.lock().unwrap_or_else(|e| e.into_inner());
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tracking-python");
    let py = venv.join("bin/python");
    let ready = Command::new(&py)
        .args(["-c", "import segment.analytics, rudderstack.analytics"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet"])
                .args(LIBRARIES)
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "could not install {LIBRARIES:?} into {}", venv.display());
    }
    py
}

fn serve(rt: &tokio::runtime::Runtime, svc: Arc<Service>) -> std::net::SocketAddr {
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let svc = svc.clone();
        async move {
            let (parts, body) = req.into_parts();
            match axum::body::to_bytes(body, 1024 * 1024).await {
                Ok(bytes) => svc.handle(&::http::Request::from_parts(parts, bytes)).await.map(Body::from),
                Err(_) => ::http::Response::builder().status(413).body(Body::empty()).unwrap_or_default(),
            }
        }
    });
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    addr
}

fn service() -> Arc<Service> {
    Arc::new(HttpService {
        rules: rules("[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10m\"\ntemplate = \"t\"\n"),
        alias_key: AliasKey::new(b"k"),
        sources: SourcesConfig {
            shopify_app_secrets: vec![],
            shops: vec![ShopSources {
                shop: "acme".into(),
                // The Python libraries are server-side sources: their key is secret.
                segment_server_keys: vec![Secret::new(b"wk-test".to_vec())],
                ..ShopSources::default()
            }],
        },
        store: MemoryStore::new(),
        scheduler: MemoryScheduler::new(),
        publisher: MemoryPublisher::default(),
        clock: SystemClock,
        stats: HttpStats::default(),
        unsubscribe_key: None,
        catalogues: None,
    })
}

/// Runs the library against the service with `key`, allowing `retries`.
fn run(library: &str, addr: std::net::SocketAddr, key: &str, retries: u32) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tracking_client.py");
    Command::new(python())
        .arg(script)
        .args([library, &format!("http://{addr}"), key, &retries.to_string()])
        .output()
        .unwrap()
}

fn the_official_library_delivers_compressed_batches_and_is_refused_once(library: &str) {
    let svc = service();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = serve(&rt, svc.clone());
    let out = run(library, addr, "wk-test", 0);
    assert!(out.status.success(), "{library} failed: {}", String::from_utf8_lossy(&out.stderr));

    let profiles = svc.store.profiles();
    assert_eq!(profiles.len(), 1, "{profiles:#?}");
    let p = &profiles[0];
    assert_eq!(p.email.as_deref(), Some("grace@example.com"));
    assert_eq!(p.first_name.as_deref(), Some("Grace"));
    assert_eq!(p.consent.state, ConsentState::Subscribed);
    assert_eq!(p.basket.as_ref().and_then(|b| b.token.as_deref()), Some("chk-42"));
    assert_eq!(
        svc.stats.events.load(std::sync::atomic::Ordering::Relaxed),
        5,
        "identify (profile + consent), 2 tracks, 1 page"
    );
    assert_eq!(svc.scheduler.pending().len(), 1, "the checkout armed the reminder");

    // A wrong write key is refused; the library reports it and, reading
    // the answer as a permanent refusal, does not retry it.
    let rejected = || svc.stats.rejected.load(std::sync::atomic::Ordering::Relaxed);
    let before = rejected();
    let out = run(library, addr, "wrong-key", 3);
    assert!(!out.status.success());
    let reported = String::from_utf8_lossy(&out.stderr);
    assert!(reported.contains("401") && reported.contains("unknown write key"), "{library}: {reported}");
    assert_eq!(rejected() - before, 1, "{library} retried a refusal: {reported}");
    assert_eq!(svc.store.profiles().len(), 1, "nothing stored for the refused client");
}

#[test]
fn the_official_segment_python_library_with_gzip_delivers_and_is_refused_once() {
    the_official_library_delivers_compressed_batches_and_is_refused_once("segment");
}

#[test]
fn the_official_rudderstack_python_library_with_gzip_delivers_and_is_refused_once() {
    the_official_library_delivers_compressed_batches_and_is_refused_once("rudderstack");
}
