//! The data directory's event logs: rotation, reading them in order, and
//! erasing a person from every one of them.

use std::path::Path;

use nudge_app::AliasKey;
use nudge_app::ports::Publisher;
use nudge_core::{Event, EventId, EventKind, Identity};
use nudge_local::Erasing;
use nudge_local::files::{FilePublisher, erase_files, event_logs};

fn event(n: u32, customer: &str) -> Event {
    Event {
        id: EventId::parse(format!("e{n}")).unwrap(),
        shop: "shop".into(),
        occurred_at: jiff::Timestamp::from_second(1_800_000_000 + i64::from(n)).unwrap(),
        identity: Identity { customer_id: Some(customer.into()), ..Identity::default() },
        kind: EventKind::PageViewed { url: None, category: None, name: None },
        trust: Default::default(),
        received_at: None,
        time_zone: None,
    }
}

fn lines(data: &Path) -> Vec<String> {
    event_logs(data)
        .iter()
        .flat_map(|p| std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

#[test]
fn the_event_log_rotates_by_size_and_its_files_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = FilePublisher::open(dir.path()).unwrap().rotating_at(1_000);
    for n in 0..40 {
        run(publisher.event(&event(n, "c1"))).unwrap();
    }
    let logs = event_logs(dir.path());
    assert!(logs.len() > 3, "{logs:?}");
    assert_eq!(logs.last().unwrap().file_name().unwrap(), "events.jsonl");
    let ids: Vec<String> =
        lines(dir.path()).iter().map(|l| serde_json::from_str::<Event>(l).unwrap().id.to_string()).collect();
    let expected: Vec<String> = (0..40).map(|n| format!("e{n}")).collect();
    assert_eq!(ids, expected, "every line once, in the order written");
}

#[test]
fn an_erase_removes_the_person_from_every_rotated_log_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = FilePublisher::open(dir.path()).unwrap().rotating_at(600);
    for n in 0..30 {
        run(publisher.event(&event(n, if n % 3 == 0 { "gone" } else { "stays" }))).unwrap();
    }
    let key = AliasKey::new(b"k");
    let alias = nudge_app::identity::aliases(&event(0, "gone").identity, &key).remove(0).key("shop");
    let erasing = Erasing {
        shop: "shop",
        profiles: &["p-gone".to_owned()],
        alias_keys: &[alias],
        whole_shop: false,
        current_log_only: false,
    };
    erase_files(dir.path(), &publisher, &key, &erasing).unwrap();
    let left = lines(dir.path());
    assert_eq!(left.len(), 20);
    assert!(left.iter().all(|l| !l.contains("\"gone\"")), "{left:?}");
    // Appending goes on after the rewrite.
    run(publisher.event(&event(99, "stays"))).unwrap();
    assert_eq!(lines(dir.path()).len(), 21);
}

#[test]
fn the_events_of_one_message_are_consecutive_lines_in_one_file_whatever_runs_beside() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = std::sync::Arc::new(FilePublisher::open(dir.path()).unwrap().rotating_at(2_000));
    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let publisher = publisher.clone();
            std::thread::spawn(move || {
                for n in 0..200u32 {
                    let first = event(w * 1_000 + n, &format!("c{w}"));
                    let mut second = first.clone();
                    second.id = first.id.tagged("#1");
                    run(publisher.events(&[&first, &second])).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut messages = 0;
    for log in event_logs(dir.path()) {
        let events: Vec<Event> =
            std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let grouped = nudge_core::event::messages(&events);
        assert!(grouped.iter().all(|m| m.len() == 2), "{}: a message was split", log.display());
        messages += grouped.len();
    }
    assert_eq!(messages, 800);
}
