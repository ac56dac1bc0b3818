//! The durable local scheduler: restarts, idempotence, at-most-once sends.

use std::path::PathBuf;

use jiff::Timestamp;
use nudge_app::memory::{ManualClock, MemoryMailer, MemoryPublisher};
use nudge_app::ports::{MessageLog, Scheduler};
use nudge_app::{AliasKey, CheckPorts, IngestPorts, ingest, run_check};
use nudge_core::event::OptInLevel;
use nudge_core::{
    Basket, Check, ConsentState, ConsentUpdate, Event, EventId, EventKind, Identity, Outcome, Reason, Triggers,
};
use nudge_local::{SqliteScheduler, SqliteStore};

fn db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-sched-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("nudge.db")
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn check(episode: u32, due: &str) -> Check {
    Check { shop: "s".into(), profile: "p".into(), trigger: "cart".into(), episode, due: at(due) }
}

#[test]
fn pending_checks_survive_a_restart_and_come_due_in_order() {
    let path = db("restart");
    {
        let s = SqliteScheduler::open(&path).unwrap();
        run(s.schedule(&check(2, "2026-10-06T15:00:00Z"))).unwrap();
        run(s.schedule(&check(1, "2026-10-06T14:10:00Z"))).unwrap();
    }
    let s = SqliteScheduler::open(&path).unwrap();
    assert_eq!(s.next_due().unwrap(), Some(at("2026-10-06T14:10:00Z")));
    assert!(s.due(at("2026-10-06T14:00:00Z"), 10).unwrap().is_empty());
    let overdue = s.due(at("2026-10-07T00:00:00Z"), 10).unwrap();
    assert_eq!(
        overdue.iter().map(|c| c.episode).collect::<Vec<_>>(),
        vec![1, 2],
        "overdue checks fire at start-up, earliest first"
    );
    run(s.done(&overdue[0])).unwrap();
    assert_eq!(s.pending().unwrap().len(), 1);
}

#[test]
fn scheduling_is_idempotent_by_name_and_cancelling_an_unknown_check_is_fine() {
    let s = SqliteScheduler::open(&db("idempotent")).unwrap();
    let c = check(1, "2026-10-06T14:10:00Z");
    run(s.schedule(&c)).unwrap();
    run(s.schedule(&c)).unwrap();
    assert_eq!(s.pending().unwrap().len(), 1);
    run(s.cancel(&c)).unwrap();
    run(s.cancel(&c)).unwrap();
    assert!(s.pending().unwrap().is_empty());
}

#[test]
fn a_check_run_twice_after_a_crash_sends_one_email() {
    let path = db("at-most-once");
    let rules = Triggers::parse(
        "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10m\"\ntemplate = \"t\"\n",
        "t.toml",
        None,
    )
    .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let scheduler = SqliteScheduler::open(&path).unwrap();
    let publisher = MemoryPublisher::default();
    let key = AliasKey::new(b"k");
    let identity =
        Identity { customer_id: Some("c1".into()), email: Some("c1@example.com".into()), ..Identity::default() };
    let events = [
        EventKind::ConsentChanged {
            consent: ConsentUpdate {
                state: ConsentState::Subscribed,
                opt_in_level: Some(OptInLevel::SingleOptIn),
                updated_at: None,
                source: None,
            },
        },
        EventKind::CheckoutStarted { basket: Basket { token: Some("chk".into()), value: 10.0, ..Basket::default() } },
    ];
    let ports = IngestPorts {
        now: at("2026-10-06T14:00:00Z"),
        rules: &rules,
        alias_key: &key,
        store: &store,
        scheduler: &scheduler,
        publisher: &publisher,
    };
    for (i, kind) in events.into_iter().enumerate() {
        let e = Event {
            id: EventId::parse(format!("e{i}")).unwrap(),
            shop: "s".into(),
            occurred_at: at("2026-10-06T14:00:00Z"),
            identity: identity.clone(),
            kind,
            trust: Default::default(),
            received_at: None,
            time_zone: None,
        };
        run(ingest(&ports, &e)).unwrap();
    }
    let due = scheduler.due(at("2026-10-06T14:10:00Z"), 10).unwrap();
    assert_eq!(due.len(), 1);
    let mailer = MemoryMailer::recording();
    let clock = ManualClock::new(at("2026-10-06T14:10:00Z"));
    let check_ports = CheckPorts {
        rules: &rules,
        store: &store,
        scheduler: &scheduler,
        composer: None,
        send_by: None,
        claims_lapse_before: None,
        mailer: &mailer,
        clock: &clock,
        publisher: &publisher,
    };
    let first = run(run_check(&check_ports, &due[0])).unwrap();
    // Crash before `done`: after the restart the same check is due again.
    let again = SqliteScheduler::open(&path).unwrap().due(at("2026-10-06T14:11:00Z"), 10).unwrap();
    assert_eq!(again, due);
    let second = run(run_check(&check_ports, &again[0])).unwrap();
    assert_eq!(first.decision.decision, Outcome::Send);
    assert_eq!(second.decision.reason, Some(Reason::Duplicate));
    assert_eq!(mailer.sent().len(), 1, "marketing mail is at most once per episode");
    // The one send is recorded for the feedback join and counted once.
    let id = first.message_id.expect("sent");
    let record = run(store.message(&id)).unwrap().expect("message record");
    assert_eq!((record.trigger.as_str(), record.episode), (due[0].trigger.as_str(), due[0].episode));
    let day = jiff::civil::date(2026, 10, 6);
    assert_eq!(store.counter(&record.shop, &record.trigger, &record.variant, day, "sent").unwrap(), 1);
    assert_eq!(run(store.message("another")).unwrap(), None);
}

/// Runs a future to completion (writes wait for the group commit on the
/// writer thread).
fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime").block_on(f)
}

#[test]
fn a_check_row_that_no_longer_parses_is_set_aside_and_the_others_still_run() {
    let path = db("unreadable");
    let scheduler = SqliteScheduler::open(&path).unwrap();
    let good = Check {
        shop: "shop".into(),
        profile: "p1".into(),
        trigger: "cart".into(),
        episode: 1,
        due: at("2026-10-06T14:10:00Z"),
    };
    run(scheduler.schedule(&good)).unwrap();
    // A row written by something else, or damaged: due first.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO checks (name, due, payload) VALUES ('bad', 0, '{not a check')", []).unwrap();
    let due = scheduler.due(at("2026-10-06T14:11:00Z"), 10).unwrap();
    assert_eq!(due, vec![good.clone()], "the good check still comes due");
    assert_eq!(run(scheduler.set_aside_unreadable()).unwrap(), 1);
    let kept: (String, String) = conn
        .query_row("SELECT payload, reason FROM checks_set_aside WHERE name = 'bad'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kept.0, "{not a check");
    assert!(!kept.1.is_empty());
    assert_eq!(scheduler.pending().unwrap(), vec![good]);
    assert_eq!(run(scheduler.set_aside_unreadable()).unwrap(), 0, "nothing more to set aside");
}

#[test]
fn a_profile_is_saved_with_its_check_row_and_the_sweep_finds_an_episode_whose_row_is_gone() {
    let path = db("sweep");
    let rules = Triggers::parse(
        "[[trigger]]\nid = \"cart\"\non = \"checkout_started\"\ndelay = \"10m\"\ntemplate = \"t\"\n",
        "t.toml",
        None,
    )
    .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let scheduler = SqliteScheduler::open(&path).unwrap();
    // A scheduler that refuses every request: the delivery fails, but the
    // profile and its check row were saved in one transaction.
    let lost = Refusing;
    let publisher = MemoryPublisher::default();
    let key = AliasKey::new(b"k");
    let ports = IngestPorts {
        now: at("2026-10-06T14:00:00Z"),
        rules: &rules,
        alias_key: &key,
        store: &store,
        scheduler: &lost,
        publisher: &publisher,
    };
    let identity =
        Identity { customer_id: Some("c1".into()), email: Some("c1@example.com".into()), ..Identity::default() };
    let e = Event {
        id: EventId::parse("e1").unwrap(),
        shop: "s".into(),
        occurred_at: at("2026-10-06T14:00:00Z"),
        identity,
        kind: EventKind::CheckoutStarted {
            basket: Basket { token: Some("chk".into()), value: 10.0, ..Basket::default() },
        },
        trust: Default::default(),
        received_at: None,
        time_zone: None,
    };
    assert!(run(ingest(&ports, &e)).is_err(), "the scheduler's error is the delivery's");
    let rows = scheduler.pending().unwrap();
    assert_eq!(rows.len(), 1, "the check row was written with the profile");
    // A row lost anyway (deleted by hand): the sweep still finds the episode.
    rusqlite::Connection::open(&path).unwrap().execute("DELETE FROM checks", []).unwrap();
    assert!(run(store.overdue(at("2026-10-06T14:09:00Z"), 10)).unwrap().is_empty(), "not yet due");
    let overdue = run(store.overdue(at("2026-10-06T14:20:00Z"), 10)).unwrap();
    assert_eq!(overdue.len(), 1);
    let mailer = MemoryMailer::recording();
    let clock = ManualClock::new(at("2026-10-06T14:20:00Z"));
    let check_ports = CheckPorts {
        rules: &rules,
        store: &store,
        scheduler: &scheduler,
        composer: None,
        send_by: None,
        claims_lapse_before: None,
        mailer: &mailer,
        clock: &clock,
        publisher: &publisher,
    };
    let done = run(nudge_app::reconcile(&check_ports, &overdue, jiff::SignedDuration::ZERO)).unwrap();
    assert_eq!(done.run, 1);
    let finals: Vec<_> = publisher.decisions().into_iter().filter(|d| d.trigger == "cart").collect();
    assert_eq!(finals.len(), 1, "{finals:?}");
    assert!(run(store.overdue(at("2026-10-06T15:00:00Z"), 10)).unwrap().is_empty(), "nothing left pending");
}

#[test]
fn an_unreadable_profile_is_set_aside_from_the_sweep() {
    let path = db("sweep-unreadable");
    let store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO profiles (shop, id, version, doc, touched, next_due) VALUES ('s', 'bad', 1, '{oops', 0, 5)",
        [],
    )
    .unwrap();
    assert!(run(store.overdue(at("2026-10-06T14:00:00Z"), 10)).unwrap().is_empty());
    let next: Option<i64> = conn.query_row("SELECT next_due FROM profiles WHERE id = 'bad'", [], |r| r.get(0)).unwrap();
    assert_eq!(next, None, "out of the sweep, kept for a look");
}

/// A scheduler that refuses every request.
struct Refusing;

impl nudge_app::ports::Scheduler for Refusing {
    fn schedule(
        &self,
        _: &Check,
    ) -> impl std::future::Future<Output = Result<(), nudge_app::ports::SchedulerError>> + Send {
        std::future::ready(Err(nudge_app::ports::SchedulerError("refused".into())))
    }
    fn cancel(
        &self,
        _: &Check,
    ) -> impl std::future::Future<Output = Result<(), nudge_app::ports::SchedulerError>> + Send {
        std::future::ready(Err(nudge_app::ports::SchedulerError("refused".into())))
    }
}

#[test]
fn a_check_that_keeps_failing_is_retried_with_a_growing_backoff_then_set_aside_and_leaves_the_sweep() {
    let path = db("failing");
    let store = SqliteStore::open(&path).unwrap();
    let scheduler = SqliteScheduler::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The profile the check belongs to, overdue for the sweep.
    conn.execute(
        "INSERT INTO profiles (shop, id, version, doc, touched, next_due) VALUES ('s', 'p', 1, '{}', 0, 5)",
        [],
    )
    .unwrap();
    let c = check(1, "2026-10-06T14:10:00Z");
    run(scheduler.schedule(&c)).unwrap();
    let mut now = at("2026-10-06T14:10:00Z");
    let mut waits = Vec::new();
    for attempt in 1..nudge_local::MAX_CHECK_ATTEMPTS {
        match run(scheduler.failed(&c, "profile store unavailable: disk I/O error", now)).unwrap() {
            nudge_local::Failed::Retry { attempts, at } => {
                assert_eq!(attempts, attempt);
                assert!(scheduler.due(now, 10).unwrap().is_empty(), "not retried at once");
                assert_eq!(scheduler.due(at, 10).unwrap(), vec![c.clone()], "due again after the backoff");
                waits.push(at.as_second() - now.as_second());
                now = at;
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 512]);
    assert_eq!(run(scheduler.failed(&c, "disk I/O error", now)).unwrap(), nudge_local::Failed::SetAside);
    assert!(scheduler.pending().unwrap().is_empty(), "out of the check loop");
    let aside = scheduler.set_aside().unwrap();
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].0, c.name());
    assert!(aside[0].1.contains("10 runs failed: disk I/O error"), "{aside:?}");
    let next: Option<i64> = conn.query_row("SELECT next_due FROM profiles WHERE id = 'p'", [], |r| r.get(0)).unwrap();
    assert_eq!(next, None, "out of the sweep too");
    assert!(run(store.overdue(at("2026-10-07T00:00:00Z"), 10)).unwrap().is_empty());
}

#[test]
fn a_check_the_sweep_failed_on_gets_a_row_that_counts_its_failures() {
    let scheduler = SqliteScheduler::open(&db("failing-rowless")).unwrap();
    let c = check(3, "2026-10-06T14:10:00Z");
    let now = at("2026-10-06T15:00:00Z");
    let failed = run(scheduler.failed(&c, "boom", now)).unwrap();
    assert_eq!(failed, nudge_local::Failed::Retry { attempts: 1, at: at("2026-10-06T15:00:02Z") });
    assert_eq!(scheduler.pending().unwrap(), vec![c]);
}

#[test]
fn a_database_from_before_the_sweep_and_the_retry_count_opens_and_gains_their_columns() {
    let path = db("old-schema");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE profiles (shop TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
             touched INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (shop, id));
         CREATE TABLE checks (name TEXT PRIMARY KEY, due INTEGER NOT NULL, payload TEXT NOT NULL,
             shop TEXT NOT NULL DEFAULT '', profile TEXT NOT NULL DEFAULT '') WITHOUT ROWID;",
    )
    .unwrap();
    let c = check(1, "2026-10-06T14:10:00Z");
    conn.execute(
        "INSERT INTO checks (name, due, payload, shop, profile) VALUES (?1, ?2, ?3, 's', 'p')",
        rusqlite::params![c.name(), c.due.as_second(), serde_json::to_string(&c).unwrap()],
    )
    .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let scheduler = SqliteScheduler::open(&path).unwrap();
    assert_eq!(scheduler.pending().unwrap(), vec![c.clone()], "the pending check is kept");
    assert!(run(store.overdue(at("2026-10-07T00:00:00Z"), 10)).unwrap().is_empty());
    assert!(matches!(
        run(scheduler.failed(&c, "x", at("2026-10-06T14:10:00Z"))).unwrap(),
        nudge_local::Failed::Retry { attempts: 1, .. }
    ));
}
