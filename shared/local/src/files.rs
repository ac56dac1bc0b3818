//! The data directory's files for `nudge serve`: the decision and event
//! logs (JSON Lines), data exports, and erasing a person from all of them.

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

/// Appends decisions to DATA/decisions.jsonl and accepted events to
/// DATA/events.jsonl (replayable with `nudge replay`); writes data exports
/// to DATA/exports/.
pub struct FilePublisher {
    decisions: Mutex<Log>,
    events: Mutex<Log>,
    exports: PathBuf,
}

/// An append-only JSON Lines file and its length after the last whole line.
struct Log {
    file: File,
    len: u64,
}

impl Log {
    fn open(path: &Path) -> std::io::Result<Log> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Log { len: file.metadata()?.len(), file })
    }
}

impl FilePublisher {
    pub fn open(data: &Path) -> Result<FilePublisher> {
        let append = |name: &str| Log::open(&data.join(name)).with_context(|| format!("cannot open {name}"));
        Ok(FilePublisher {
            decisions: Mutex::new(append("decisions.jsonl")?),
            events: Mutex::new(append("events.jsonl")?),
            exports: data.join("exports"),
        })
    }

    fn line<T: serde::Serialize>(log: &Mutex<Log>, value: &T) -> Result<(), PublishError> {
        let mut text = serde_json::to_string(value).map_err(|e| PublishError(e.to_string()))?;
        text.push('\n');
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
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
        ready(Self::line(&self.decisions, d))
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
        // An erase request exists to remove personal data: logging it (with
        // the identity it names) would keep some.
        if matches!(e.kind, EventKind::EraseRequested {}) {
            return ready(Ok(()));
        }
        ready(Self::line(&self.events, e))
    }
}

impl FilePublisher {
    /// Rewrites events.jsonl without the lines `drop` selects (write a new
    /// file, fsync, rename over, reopen), under the append lock so no line
    /// is lost meanwhile. Returns how many lines went. A line that does not
    /// parse is kept: it is not this function's to judge.
    fn forget_events(&self, data: &Path, drop: impl Fn(&Event) -> bool) -> std::io::Result<usize> {
        let mut log = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let path = data.join("events.jsonl");
        let tmp = data.join("events.jsonl.erase");
        let mut out = std::io::BufWriter::new(File::create(&tmp)?);
        let mut dropped = 0;
        for line in std::io::BufRead::lines(std::io::BufReader::new(File::open(&path)?)) {
            let line = line?;
            if serde_json::from_str::<Event>(&line).is_ok_and(|e| drop(&e)) {
                dropped += 1;
                continue;
            }
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        *log = Log::open(&path)?;
        Ok(dropped)
    }
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
        .forget_events(data, |ev| {
            ev.shop == e.shop
                && (e.whole_shop
                    || aliases(&ev.identity, alias_key).iter().any(|a| keys.contains(a.key(&ev.shop).as_str())))
        })
        .map_err(|err| format!("cannot rewrite events.jsonl: {err}"))?;
    tracing::info!(shop = %e.shop, profiles = e.profiles.len(), event_lines = gone, "erased from the data directory");
    Ok(())
}
