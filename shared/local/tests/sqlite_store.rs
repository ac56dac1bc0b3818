//! The SQLite profile store: real database files, real threads.

use std::path::PathBuf;
use std::sync::Arc;

use nudge_app::identity::{Alias, AliasKind};
use nudge_app::memory::{MemoryPublisher, MemoryScheduler};
use nudge_app::ports::{ProfileStore, Saved};
use nudge_app::{AliasKey, IngestPorts, ingest};
use nudge_core::{Event, EventId, EventKind, Identity, Product, Profile, Triggers};
use nudge_local::SqliteStore;

fn db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-sqlite-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("nudge.db")
}

#[test]
fn a_save_names_the_version_it_read_and_a_stale_one_conflicts() {
    let store = SqliteStore::open(&db("versions")).unwrap();
    let mut p = Profile::new("shop", "p1");
    assert_eq!(run(store.save(&mut p, None)).unwrap(), Saved::Ok);
    assert_eq!(p.version, 1);
    assert_eq!(run(store.save(&mut Profile::new("shop", "p1"), None)).unwrap(), Saved::Conflict, "already exists");
    let mut a = run(store.load("shop", "p1")).unwrap().unwrap();
    let mut b = a.clone();
    a.first_name = Some("A".into());
    assert_eq!(run(store.save(&mut a, Some(1))).unwrap(), Saved::Ok);
    b.first_name = Some("B".into());
    assert_eq!(run(store.save(&mut b, Some(1))).unwrap(), Saved::Conflict, "b read version 1, which moved");
    let stored = run(store.load("shop", "p1")).unwrap().unwrap();
    assert_eq!((stored.version, stored.first_name.as_deref()), (2, Some("A")));
}

#[test]
fn profiles_and_aliases_survive_reopening() {
    let path = db("reopen");
    {
        let store = SqliteStore::open(&path).unwrap();
        run(store.save(&mut Profile::new("shop", "p1"), None)).unwrap();
        run(store.link("shop", &[Alias { kind: AliasKind::Customer, value: "7".into() }], "p1")).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let r = run(store.resolve("shop", &[Alias { kind: AliasKind::Customer, value: "7".into() }])).unwrap();
    assert_eq!(r.profile.as_deref(), Some("p1"));
    assert!(run(store.load("shop", "p1")).unwrap().is_some());
}

#[test]
fn more_concurrent_deliveries_to_one_profile_than_save_attempts_lose_no_update() {
    let rules = Arc::new(Triggers::parse("", "none.toml", None).unwrap());
    let store = Arc::new(SqliteStore::open(&db("concurrency")).unwrap());
    let key = Arc::new(AliasKey::new(b"k"));
    // More writers than `MAX_SAVE_ATTEMPTS`: without a jittered backoff
    // between attempts, the unluckiest gave up with a contention error.
    const WRITERS: i64 = 150;
    let threads: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (rules, store, key) = (rules.clone(), store.clone(), key.clone());
            std::thread::spawn(move || {
                let scheduler = MemoryScheduler::new();
                let publisher = MemoryPublisher::default();
                let ports = IngestPorts {
                    now: jiff::Timestamp::UNIX_EPOCH,
                    rules: &rules,
                    alias_key: &key,
                    store: &*store,
                    scheduler: &scheduler,
                    publisher: &publisher,
                };
                let event = Event {
                    id: EventId::parse(format!("e{i}")).unwrap(),
                    shop: "shop".into(),
                    occurred_at: jiff::Timestamp::from_second(1_800_000_000 + i).unwrap(),
                    identity: Identity { customer_id: Some("c1".into()), ..Identity::default() },
                    kind: EventKind::ProductViewed {
                        product: Product { id: format!("p{}", i % 3), ..Product::default() },
                    },
                    trust: Default::default(),
                    received_at: None,
                    time_zone: None,
                };
                run(ingest(&ports, &event)).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.profile_count().unwrap(), 1);
    let r = run(store.resolve("shop", &[Alias { kind: AliasKind::Customer, value: "c1".into() }])).unwrap();
    let p = run(store.load("shop", &r.profile.unwrap())).unwrap().unwrap();
    let views = p.activity.iter().find(|a| a.kind == "product_viewed").unwrap();
    assert_eq!(i64::from(views.total), WRITERS, "every delivery counted exactly once");
    assert_eq!(p.version as i64, WRITERS, "one committed write per delivery");
    assert!(store.conflicts.load(std::sync::atomic::Ordering::Relaxed) > 0, "writers really collided and retried");
}

#[test]
fn erase_merge_and_shop_erase_remove_exactly_what_they_name() {
    let store = SqliteStore::open(&db("erase")).unwrap();
    let alias = |v: &str| Alias { kind: AliasKind::Anonymous, value: v.into() };
    for (shop, id) in [("s1", "a"), ("s1", "b"), ("s2", "c")] {
        run(store.save(&mut Profile::new(shop, id), None)).unwrap();
        run(store.link(shop, &[alias(id)], id)).unwrap();
    }
    run(store.merge_into("s1", "b", "a")).unwrap();
    assert!(run(store.load("s1", "b")).unwrap().is_none());
    assert_eq!(run(store.resolve("s1", &[alias("b")])).unwrap().profile.as_deref(), Some("a"), "b's alias now names a");
    run(store.erase("s1", "a")).unwrap();
    assert_eq!(store.profile_count().unwrap(), 1);
    assert_eq!(store.alias_count().unwrap(), 1, "only s2's alias is left");
    run(store.erase_shop("s2")).unwrap();
    assert_eq!((store.profile_count().unwrap(), store.alias_count().unwrap()), (0, 0));
}

#[test]
fn the_wal_is_copied_into_the_database_in_the_background_once_it_passes_a_thousand_pages() {
    let path = db("checkpoint");
    let store = SqliteStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    // One save per batch: each commit adds at least two frames (a table
    // page and an index page) to the WAL.
    for i in 0..1_000 {
        run(store.save(&mut Profile::new("shop", &format!("p{i}")), None)).unwrap();
    }
    // Nothing here checkpoints: the writer's own automatic checkpoint is
    // off, so only the checkpointer thread can grow the database file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let grown = loop {
        let len = std::fs::metadata(&path).unwrap().len();
        if len > before + 100_000 || std::time::Instant::now() > deadline {
            break len;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(grown > before + 100_000, "database file still {grown} bytes (was {before})");
}

#[test]
fn a_product_change_older_than_the_one_kept_is_not_recorded() {
    use nudge_app::ports::CatalogueStore;
    use nudge_core::{CatalogueProduct, ProductChange};
    let store = SqliteStore::open(&db("products")).unwrap();
    let at = |s: &str| Some(s.parse::<jiff::Timestamp>().unwrap());
    let version = |price: f64, when: &str| {
        let p = CatalogueProduct { id: "tee".into(), title: "Tee".into(), price: Some(price), ..Default::default() };
        ProductChange::Upsert(CatalogueProduct { updated_at: at(when), ..p })
    };
    let newer = version(10.0, "2026-11-01T10:00:00Z");
    assert_eq!(run(store.put_products("shop", std::slice::from_ref(&newer))).unwrap(), vec![newer.clone()]);
    assert!(run(store.put_products("shop", &[version(25.0, "2026-11-01T09:00:00Z")])).unwrap().is_empty(), "stale");
    assert_eq!(run(store.products("shop")).unwrap(), vec![newer]);
    let gone = ProductChange::Remove { id: "tee".into(), at: at("2026-11-01T11:00:00Z") };
    assert_eq!(run(store.put_products("shop", std::slice::from_ref(&gone))).unwrap(), vec![gone.clone()]);
    assert!(run(store.put_products("shop", &[version(25.0, "2026-11-01T10:30:00Z")])).unwrap().is_empty());
    assert_eq!(run(store.products("shop")).unwrap(), vec![gone], "the deletion, with its time, is what is kept");
}

/// Runs a future to completion (writes wait for the group commit on the
/// writer thread).
fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime").block_on(f)
}

#[test]
fn a_profile_that_does_not_parse_is_an_error_that_quotes_none_of_its_values() {
    let path = db("unreadable-private");
    let store = SqliteStore::open(&path).unwrap();
    let mut p = Profile::new("shop", "p1");
    run(store.save(&mut p, None)).unwrap();
    // A document damaged so that an address sits where a number belongs.
    let mut doc: serde_json::Value = serde_json::to_value(Profile::new("shop", "p1")).unwrap();
    doc["version"] = "ada@example.com".into();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE profiles SET doc = ?1 WHERE id = 'p1'", [doc.to_string()])
        .unwrap();
    let error = run(store.load("shop", "p1")).unwrap_err().to_string();
    assert!(error.contains("does not match the schema"), "{error}");
    assert!(!error.contains("ada@"), "the address leaked into the error: {error}");
}

#[test]
fn writes_go_on_while_an_erase_rewrites_the_data_files() {
    let store = Arc::new(SqliteStore::open(&db("erase-off-writer")).unwrap());
    run(store.save(&mut Profile::new("shop", "gone"), None)).unwrap();
    // The file pass of the erase (rewriting the event logs) blocks until
    // the test lets it go.
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    store.on_erase(Box::new(move |_| {
        let _ = entered_tx.send(());
        released.lock().unwrap().recv().map_err(|e| e.to_string())
    }));
    let erasing = {
        let store = store.clone();
        std::thread::spawn(move || run(store.erase("shop", "gone")))
    };
    entered.recv().unwrap();
    // Meanwhile another delivery is stored and answered.
    let (tx, saved) = std::sync::mpsc::channel();
    {
        let store = store.clone();
        std::thread::spawn(move || tx.send(run(store.save(&mut Profile::new("shop", "other"), None))));
    }
    let outcome = saved.recv_timeout(std::time::Duration::from_secs(30));
    assert!(matches!(outcome, Ok(Ok(Saved::Ok))), "a write waited for the erase: {outcome:?}");
    assert!(!erasing.is_finished(), "the erase is still in its file pass");
    release.send(()).unwrap(); // the first pass
    release.send(()).unwrap(); // the second, after the rows are gone
    erasing.join().unwrap().unwrap();
    assert!(run(store.load("shop", "gone")).unwrap().is_none());
    assert!(run(store.load("shop", "other")).unwrap().is_some());
}
