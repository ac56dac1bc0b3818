//! The data directory's files for `nudge serve`: the decision and event
//! logs (JSON Lines), data exports, and erasing a person from all of them.
//!
//! `events.jsonl` is rotated once it passes [`ROTATE_AT`] or the UTC day
//! changes: it is renamed `events-<YYYY-MM-DD>-<n>.jsonl` and a new one is
//! started. `nudge replay DATA/` reads the rotated files in order, then
//! the current one.

use std::fs::{File, OpenOptions};
use std::future::{Future, ready};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use nudge_app::AliasKey;
use nudge_app::identity::aliases;
use nudge_app::ports::{PublishError, Publisher};
use nudge_core::{Decision, Event, EventKind, Profile};

use crate::Erasing;

/// Size past which `events.jsonl` is rotated.
pub const ROTATE_AT: u64 = 64 << 20;

/// Appends decisions to DATA/decisions.jsonl and accepted events to
/// DATA/events.jsonl (replayable with `nudge replay`); writes data exports
/// to DATA/exports/.
pub struct FilePublisher {
    decisions: Mutex<Log>,
    events: Mutex<Log>,
    exports: PathBuf,
    data: PathBuf,
    /// Rotate `events.jsonl` past this size.
    rotate_at: u64,
}

/// An append-only JSON Lines file and its length after the last whole line.
struct Log {
    file: File,
    len: u64,
    /// The UTC day its first line was written (rotation starts a new file
    /// each day).
    day: jiff::civil::Date,
}

fn today() -> jiff::civil::Date {
    jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date()
}

impl Log {
    fn open(path: &Path) -> std::io::Result<Log> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let modified = file.metadata()?.modified().ok().and_then(|t| jiff::Timestamp::try_from(t).ok());
        let day = modified.map_or_else(today, |t| jiff::tz::TimeZone::UTC.to_datetime(t).date());
        Ok(Log { len: file.metadata()?.len(), file, day })
    }
}

/// The event logs of a data directory, oldest first: the rotated ones
/// (`events-<day>-<n>.jsonl`, by name), then `events.jsonl`.
pub fn event_logs(data: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(data)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("events-") && n.ends_with(".jsonl"))
                })
                .collect()
        })
        .unwrap_or_default();
    rotated.sort();
    let current = data.join("events.jsonl");
    if current.exists() {
        rotated.push(current);
    }
    rotated
}

impl FilePublisher {
    pub fn open(data: &Path) -> Result<FilePublisher> {
        let append = |name: &str| Log::open(&data.join(name)).with_context(|| format!("cannot open {name}"));
        Ok(FilePublisher {
            decisions: Mutex::new(append("decisions.jsonl")?),
            events: Mutex::new(append("events.jsonl")?),
            exports: data.join("exports"),
            data: data.to_path_buf(),
            rotate_at: ROTATE_AT,
        })
    }

    /// As [`FilePublisher::open`], rotating the event log past `bytes`.
    pub fn rotating_at(mut self, bytes: u64) -> FilePublisher {
        self.rotate_at = bytes;
        self
    }

    /// Renames `events.jsonl` to the next `events-<day>-<n>.jsonl` and
    /// starts a new one (under the append lock, `log`).
    fn rotate(&self, log: &mut Log) -> std::io::Result<()> {
        let current = self.data.join("events.jsonl");
        let mut n = 0;
        let target = loop {
            let t = self.data.join(format!("events-{}-{n:04}.jsonl", log.day));
            if !t.exists() {
                break t;
            }
            n += 1;
        };
        log.file.sync_all()?;
        std::fs::rename(&current, &target)?;
        *log = Log::open(&current)?;
        log.day = today();
        Ok(())
    }

    fn line<T: serde::Serialize>(log: &mut Log, value: &T) -> Result<(), PublishError> {
        let mut text = serde_json::to_string(value).map_err(|e| PublishError(e.to_string()))?;
        text.push('\n');
        match log.file.write_all(text.as_bytes()) {
            Ok(()) => {
                log.len += text.len() as u64;
                Ok(())
            }
            Err(e) => {
                // No half line left behind (a full disk stops writes
                // mid-line): the log stays replayable.
                let _ = log.file.set_len(log.len);
                Err(PublishError(format!("log write failed: {e}")))
            }
        }
    }
}

impl Publisher for FilePublisher {
    fn decision(&self, d: &Decision) -> impl Future<Output = Result<(), PublishError>> + Send {
        nudge_app::ports::log_decision(d);
        ready(Self::line(&mut self.decisions.lock().unwrap_or_else(|e| e.into_inner()), d))
    }
    fn export(&self, p: &Profile) -> impl Future<Output = Result<(), PublishError>> + Send {
        let path = self.exports.join(format!("{}-{}.json", p.shop, p.id));
        ready(
            serde_json::to_vec_pretty(p)
                .map_err(|e| PublishError(e.to_string()))
                .and_then(|b| std::fs::write(&path, b).map_err(|e| PublishError(format!("export failed: {e}")))),
        )
    }
    fn event(&self, e: &Event) -> impl Future<Output = Result<(), PublishError>> + Send {
        ready(self.append(&[e]))
    }

    fn events(&self, events: &[&Event]) -> impl Future<Output = Result<(), PublishError>> + Send {
        ready(self.append(events))
    }
}

impl FilePublisher {
    /// One message's events as consecutive lines, under one hold of the
    /// log (and in one file: rotation waits for the message's end).
    fn append(&self, events: &[&Event]) -> Result<(), PublishError> {
        let mut log = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if log.len > 0
            && (log.len >= self.rotate_at || log.day != today())
            && let Err(err) = self.rotate(&mut log)
        {
            tracing::error!(error = %err, "events.jsonl not rotated; appending to it");
        }
        // An erase request exists to remove personal data: logging it (with
        // the identity it names) would keep some.
        events
            .iter()
            .filter(|e| !matches!(e.kind, EventKind::EraseRequested {}))
            .try_for_each(|e| Self::line(&mut log, e))
    }

    /// Rewrites the event logs without the lines `drop` selects: every
    /// rotated one (they no longer change, so no lock is held), then
    /// `events.jsonl` under the append lock so no line is lost meanwhile —
    /// or, with `current_only`, just that one. Each is written anew,
    /// synced and renamed over. Returns how many lines went. A line that
    /// does not parse is kept: it is not this function's to judge.
    fn forget_events(&self, current_only: bool, drop: impl Fn(&Event) -> bool) -> std::io::Result<usize> {
        let mut dropped = 0;
        let current = self.data.join("events.jsonl");
        let mut done = std::collections::HashSet::new();
        let rotated = |done: &std::collections::HashSet<PathBuf>| -> Vec<PathBuf> {
            event_logs(&self.data).into_iter().filter(|p| *p != current && !done.contains(p)).collect()
        };
        if !current_only {
            for path in rotated(&done) {
                dropped += rewrite(&path, &drop)?;
                done.insert(path);
            }
        }
        let mut log = self.events.lock().unwrap_or_else(|e| e.into_inner());
        // Rotation happens under this lock: a file rotated since the list
        // above was taken is the last that can be.
        if !current_only {
            for path in rotated(&done) {
                dropped += rewrite(&path, &drop)?;
            }
        }
        dropped += rewrite(&current, &drop)?;
        let day = log.day;
        *log = Log::open(&current)?;
        log.day = day;
        Ok(dropped)
    }
}

/// Rewrites one JSON Lines log without the events `drop` selects.
fn rewrite(path: &Path, drop: &impl Fn(&Event) -> bool) -> std::io::Result<usize> {
    let tmp = path.with_extension("jsonl.erase");
    let mut out = std::io::BufWriter::new(File::create(&tmp)?);
    let mut dropped = 0;
    let input = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for line in std::io::BufRead::lines(std::io::BufReader::new(input)) {
        let line = line?;
        if serde_json::from_str::<Event>(&line).is_ok_and(|e| drop(&e)) {
            dropped += 1;
            continue;
        }
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    if dropped == 0 {
        std::fs::remove_file(&tmp)?;
    } else {
        std::fs::rename(&tmp, path)?;
    }
    Ok(dropped)
}

/// Everything the data directory holds about the people an erase names:
/// their messages in outbox/ (`<profile>.*`), their exports, and their lines
/// in events.jsonl (matched by the same alias keys the store links them by).
/// Decision lines stay: they name no person, only the opaque profile id.
pub fn erase_files(
    data: &Path,
    publisher: &FilePublisher,
    alias_key: &AliasKey,
    e: &Erasing<'_>,
) -> Result<(), String> {
    let remove = |path: PathBuf| match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("cannot remove {}: {err}", path.display())),
    };
    let people: std::collections::HashSet<&str> = e.profiles.iter().map(String::as_str).collect();
    for dir in ["outbox", "exports"] {
        let Ok(entries) = std::fs::read_dir(data.join(dir)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner = match dir {
                // `.<profile>.….tmp`: a write a crash left half done.
                "outbox" => name.trim_start_matches('.').split('.').next().unwrap_or(""),
                _ => name.strip_prefix(&format!("{}-", e.shop)).and_then(|n| n.strip_suffix(".json")).unwrap_or(""),
            };
            if people.contains(owner) {
                remove(entry.path())?;
            }
        }
    }
    let keys: std::collections::HashSet<&str> = e.alias_keys.iter().map(String::as_str).collect();
    let gone = publisher
        .forget_events(e.current_log_only, |ev| {
            ev.shop == e.shop
                && (e.whole_shop
                    || aliases(&ev.identity, alias_key).iter().any(|a| keys.contains(a.key(&ev.shop).as_str())))
        })
        .map_err(|err| format!("cannot rewrite the event logs: {err}"))?;
    tracing::info!(shop = %e.shop, profiles = e.profiles.len(), event_lines = gone, "erased from the data directory");
    Ok(())
}
