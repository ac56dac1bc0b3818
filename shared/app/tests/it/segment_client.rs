//! Segment's official Python library, unchanged but for `host`, posting to
//! the tracking API over a real socket.

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

/// A Python with `segment-analytics-python` installed: `NUDGE_TEST_PYTHON`,
/// or a virtual environment this test creates once under the target dir.
/// Installing needs the package registry; if it fails, the test fails.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("NUDGE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("segment-python");
    let py = venv.join("bin/python");
    let ready = Command::new(&py).args(["-c", "import segment.analytics"]).status().is_ok_and(|s| s.success());
    if !ready {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "segment-analytics-python==2.4.0"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "could not install segment-analytics-python into {}", venv.display());
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

#[test]
fn the_official_segment_python_library_works_against_the_tracking_api() {
    let svc = Arc::new(HttpService {
        rules: rules("[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10m\"\ntemplate = \"t\"\n"),
        alias_key: AliasKey::new(b"k"),
        sources: SourcesConfig {
            shopify_app_secrets: vec![],
            shops: vec![ShopSources {
                shop: "acme".into(),
                // The Python library is a server-side source: its key is secret.
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
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = serve(&rt, svc.clone());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/segment_client.py");
    let out = Command::new(python()).arg(script).arg(format!("http://{addr}")).arg("wk-test").output().unwrap();
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));

    let profiles = svc.store.profiles();
    assert_eq!(profiles.len(), 1, "{profiles:#?}");
    let p = &profiles[0];
    assert_eq!(p.email.as_deref(), Some("grace@example.com"));
    assert_eq!(p.consent.state, ConsentState::Subscribed);
    assert_eq!(p.basket.as_ref().and_then(|b| b.token.as_deref()), Some("chk-42"));
    assert_eq!(
        svc.stats.events.load(std::sync::atomic::Ordering::Relaxed),
        5,
        "identify (profile + consent), 2 tracks, 1 page"
    );
    assert_eq!(svc.scheduler.pending().len(), 1, "the checkout armed the reminder");

    // A wrong write key is refused, and the library reports it.
    let out = Command::new(python()).arg(script).arg(format!("http://{addr}")).arg("wrong-key").output().unwrap();
    assert!(!out.status.success());
    assert_eq!(svc.store.profiles().len(), 1, "nothing stored for the refused client");
}
