//! Reading event logs: JSON Lines of Segment messages or of nudge's own
//! normalized events, with errors that name the file and line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use jiff::Timestamp;
use nudge_core::Event;
use nudge_core::hash::stable_hash;
use nudge_sources::SegmentMessage;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Decide per file from its first line.
    Auto,
    /// Segment messages (identify / track / page ...).
    Segment,
    /// nudge's normalized events (what `nudge serve` writes).
    Nudge,
}

/// One log line turned into events, with the time it arrived.
pub struct Parsed {
    pub events: Vec<Event>,
    pub arrived: Timestamp,
}

/// A bad line: where and why.
#[derive(Debug)]
pub struct LineError {
    pub file: PathBuf,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

pub struct LogReader {
    path: PathBuf,
    reader: BufReader<File>,
    format: Format,
    shop: String,
    line_no: u64,
    buf: String,
}

impl LogReader {
    pub fn open(path: &Path, format: Format, shop: &str) -> Result<LogReader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(LogReader {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 20, file),
            format,
            shop: shop.to_owned(),
            line_no: 0,
            buf: String::with_capacity(1024),
        })
    }

    /// Reads the next non-empty line as raw text; `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<&str>> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_line(&mut self.buf)
                .with_context(|| format!("{}:{}: cannot read", self.path.display(), self.line_no + 1))?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if !self.buf.trim().is_empty() {
                return Ok(Some(self.buf.trim_end()));
            }
        }
    }

    pub fn bytes_read_hint(&self) -> usize {
        self.buf.len()
    }

    /// The next line, parsed. `Ok(None)` at the end; `Err` for a bad line,
    /// after which reading can continue.
    pub fn next(&mut self) -> Result<Option<Result<Parsed, LineError>>> {
        if self.next_line()?.is_none() {
            return Ok(None);
        }
        let line = self.buf.trim_end();
        if self.format == Format::Auto {
            self.format = if serde_json::from_str::<Event>(line).is_ok() { Format::Nudge } else { Format::Segment };
        }
        let parsed = match self.format {
            Format::Nudge => serde_json::from_str::<Event>(line)
                .map_err(|e| e.to_string())
                .map(|e| Parsed { arrived: e.occurred_at, events: vec![e] }),
            _ => parse_segment(line, &self.shop),
        };
        Ok(Some(parsed.map_err(|message| LineError { file: self.path.clone(), line: self.line_no, message })))
    }

    /// Parse-only: deserializes the next line into the message type and
    /// nothing else (the baseline of the replay benchmark).
    pub fn parse_only(&mut self) -> Result<Option<bool>> {
        if self.next_line()?.is_none() {
            return Ok(None);
        }
        let line = self.buf.trim_end();
        Ok(Some(match self.format {
            Format::Nudge => serde_json::from_str::<Event>(line).is_ok(),
            _ => serde_json::from_str::<SegmentMessage>(line).is_ok(),
        }))
    }
}

fn parse_segment(line: &str, shop: &str) -> Result<Parsed, String> {
    let msg: SegmentMessage = serde_json::from_str(line).map_err(|e| e.to_string())?;
    // A message without messageId gets a stable id from its bytes, so an
    // exact repeat of the line is still recognised as a duplicate.
    let fallback =
        if msg.message_id.is_none() { format!("line-{:016x}", stable_hash(&[line.as_bytes()])) } else { String::new() };
    let arrived = msg.received_at.or(msg.occurred_at()).unwrap_or(Timestamp::UNIX_EPOCH);
    let events = msg.into_events(shop, &fallback, None).map_err(|e| e.to_string())?;
    Ok(Parsed { events, arrived })
}
