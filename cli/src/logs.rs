//! Reading event logs: JSON Lines of Segment messages or of nudge's own
//! normalized events, with errors that name the file and line.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
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
/// The event logs a read-only command (funnel, segments) reads.
#[derive(clap::Args)]
pub struct Input {
    /// Shop that Segment messages belong to (they carry none themselves).
    #[arg(long, default_value = "default")]
    pub shop: String,
    /// Input format of the logs.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
    /// Event logs (JSON Lines), or `nudge serve` data directories.
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
}

impl Input {
    /// The files to read and the alias key their profile ids were made with.
    pub fn open(&self) -> Result<(Vec<PathBuf>, nudge_app::AliasKey)> {
        inputs(&self.logs)
    }

    /// Every event of `logs` (from [`Input::open`]) with its arrival time,
    /// merged by arrival as `nudge replay` reads them; a bad line stops it.
    pub fn each_event(&self, logs: &[PathBuf], f: impl FnMut(Event, Timestamp) -> Result<()>) -> Result<()> {
        self.each_event_skipping(logs, false, f).map(|_| ())
    }

    /// As [`Input::each_event`]; with `skip_invalid`, bad lines (the end of
    /// a log still being written, say) are skipped and counted instead.
    pub fn each_event_skipping(
        &self,
        logs: &[PathBuf],
        skip_invalid: bool,
        mut f: impl FnMut(Event, Timestamp) -> Result<()>,
    ) -> Result<u64> {
        let mut reader = Merged::open(logs, self.format, &self.shop, nudge_core::Dur::from_secs(300))?;
        let mut skipped = 0;
        while let Some(parsed) = reader.next()? {
            let parsed = match parsed {
                Ok(p) => p,
                Err(_) if skip_invalid => {
                    skipped += 1;
                    continue;
                }
                Err(e) => anyhow::bail!("{e}"),
            };
            for e in parsed.events {
                f(e, parsed.arrived)?;
            }
        }
        Ok(skipped)
    }
}

/// The event logs `paths` name (a directory stands for `nudge serve`'s
/// logs in it, rotated ones first) and the alias key their profile ids were
/// made with (the data directory's, `NUDGE_ALIAS_KEY`, else replay's own).
pub fn inputs(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, nudge_app::AliasKey)> {
    let data = paths.iter().find(|p| p.is_dir());
    let key = nudge_local::keys::alias_key(data.map(PathBuf::as_path))?;
    let key = nudge_app::AliasKey::new(key.unwrap_or_else(|| b"nudge-replay".to_vec()));
    let logs: Vec<PathBuf> = paths
        .iter()
        .flat_map(|p| if p.is_dir() { nudge_local::files::event_logs(p) } else { vec![p.clone()] })
        .collect();
    if logs.is_empty() {
        anyhow::bail!("no event logs: the directories given hold no events.jsonl");
    }
    Ok((logs, key))
}

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
    lines: Lines,
    format: Format,
    shop: String,
}

/// A file's lines, split on `\n` with memchr in one reusable buffer:
/// nothing is copied per line.
struct Lines {
    path: PathBuf,
    file: File,
    /// Lines read so far (blank ones included), i.e. the current line's number.
    line_no: u64,
    /// `filled` bytes of `buf` hold data; from `next` on, lines not yet returned.
    buf: Vec<u8>,
    next: usize,
    filled: usize,
    at_eof: bool,
    /// Where the current line is in `buf`.
    line: Range<usize>,
}

/// Bytes read at a time; a longer line grows the buffer.
const READ_SIZE: usize = 1 << 20;
/// Bytes read at a time when parsing on several threads.
const PARSE_BLOCK: usize = 8 << 20;

impl Lines {
    /// The next line without its newline, reading more of the file as needed.
    fn next_range(&mut self) -> Result<Option<Range<usize>>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.next..self.filled]) {
                let line = self.next..self.next + i;
                self.next += i + 1;
                return Ok(Some(line));
            }
            if self.at_eof {
                // The last line, without a newline.
                let line = self.next..self.filled;
                self.next = self.filled;
                return Ok((!line.is_empty()).then_some(line));
            }
            self.buf.copy_within(self.next..self.filled, 0);
            self.filled -= self.next;
            self.next = 0;
            if self.filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = match self.file.read(&mut self.buf[self.filled..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => r.with_context(|| format!("{}:{}: cannot read", self.path.display(), self.line_no + 1))?,
            };
            self.filled += n;
            self.at_eof = n == 0;
        }
    }

    /// The next non-blank line, trimmed at the end; `None` at the end of
    /// the file, `Some(Err)` for a line that is not UTF-8 (reading can go on).
    fn next_text(&mut self) -> Result<Option<Result<&str, LineError>>> {
        let line = loop {
            let Some(line) = self.next_range()? else { return Ok(None) };
            self.line_no += 1;
            if !self.buf[line.clone()].iter().all(u8::is_ascii_whitespace) {
                break line;
            }
        };
        self.line = line.clone();
        Ok(Some(match std::str::from_utf8(&self.buf[line]) {
            Ok(text) => Ok(text.trim_end()),
            Err(e) => Err(self.error(format!("not UTF-8 text ({e})"))),
        }))
    }

    /// The non-blank lines already read (reading first if there are
    /// none), each with its number: a block to parse at once. Empty at the
    /// end of the file.
    fn block(&mut self) -> Result<Vec<(u64, Range<usize>)>> {
        let mut out = Vec::new();
        let mut take = |lines: &mut Lines, line: Range<usize>| {
            lines.line_no += 1;
            if !lines.buf[line.clone()].iter().all(u8::is_ascii_whitespace) {
                out.push((lines.line_no, line));
            }
        };
        // The first line may read (and move what is left to the front);
        // the others are those complete in the buffer after it.
        let Some(first) = self.next_range()? else { return Ok(out) };
        take(self, first);
        while let Some(i) = memchr::memchr(b'\n', &self.buf[self.next..self.filled]) {
            let line = self.next..self.next + i;
            self.next += i + 1;
            take(self, line);
        }
        if self.at_eof && self.next < self.filled {
            let line = self.next..self.filled;
            self.next = self.filled;
            take(self, line);
        }
        Ok(out)
    }

    fn error(&self, message: String) -> LineError {
        LineError { file: self.path.clone(), line: self.line_no, message }
    }
}

impl LogReader {
    pub fn open(path: &Path, format: Format, shop: &str) -> Result<LogReader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let lines = Lines {
            path: path.to_owned(),
            file,
            line_no: 0,
            buf: vec![0; READ_SIZE],
            next: 0,
            filled: 0,
            at_eof: false,
            line: 0..0,
        };
        Ok(LogReader { lines, format, shop: shop.to_owned() })
    }

    /// The length of the line last read, for progress.
    pub fn bytes_read_hint(&self) -> usize {
        self.lines.line.len()
    }

    /// The next line, parsed. `Ok(None)` at the end; `Err` for a bad line,
    /// after which reading can continue.
    pub fn next(&mut self) -> Result<Option<Result<Parsed, LineError>>> {
        let line = match self.lines.next_text()? {
            None => return Ok(None),
            Some(Err(e)) => return Ok(Some(Err(e))),
            Some(Ok(line)) => line,
        };
        if self.format == Format::Auto {
            self.format = detect(line);
        }
        let parsed = parse_line(line, self.format, &self.shop);
        Ok(Some(parsed.map_err(|message| self.lines.error(message))))
    }

    /// Every line of the file, parsed on `threads` threads a block at a
    /// time, with its number. `progress` is told the bytes of each block.
    fn parse_all(mut self, threads: usize, progress: &dyn Fn(u64)) -> Result<Vec<(u64, Result<Parsed, LineError>)>> {
        // Blocks of 8 MiB: thousands of lines for each thread.
        self.lines.buf.resize(PARSE_BLOCK, 0);
        let mut out = Vec::new();
        loop {
            let block = self.lines.block()?;
            if block.is_empty() {
                return Ok(out);
            }
            let buf = &self.lines.buf;
            if self.format == Format::Auto {
                let first = &block[0];
                self.format = std::str::from_utf8(&buf[first.1.clone()]).map_or(Format::Segment, detect);
            }
            let (format, shop, path) = (self.format, self.shop.as_str(), self.lines.path.as_path());
            let parse = |(line, range): &(u64, Range<usize>)| {
                let parsed = std::str::from_utf8(&buf[range.clone()])
                    .map_err(|e| format!("not UTF-8 text ({e})"))
                    .and_then(|text| parse_line(text.trim_end(), format, shop));
                let parsed = parsed.map_err(|message| LineError { file: path.to_owned(), line: *line, message });
                (*line, parsed)
            };
            let chunk = block.len().div_ceil(threads.max(1));
            std::thread::scope(|s| {
                let parts: Vec<_> = block
                    .chunks(chunk)
                    .skip(1)
                    .map(|part| s.spawn(move || part.iter().map(parse).collect::<Vec<_>>()))
                    .collect();
                out.extend(block[..chunk.min(block.len())].iter().map(parse));
                for part in parts {
                    out.extend(part.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
            });
            progress(block.iter().map(|(_, r)| r.len() as u64 + 1).sum());
        }
    }

    /// Parse-only: deserializes the next line into the message type and
    /// nothing else (the baseline of the replay benchmark).
    pub fn parse_only(&mut self) -> Result<Option<bool>> {
        let format = self.format;
        Ok(self.lines.next_text()?.map(|line| match line {
            Err(_) => false,
            Ok(line) if format == Format::Nudge => serde_json::from_str::<Event>(line).is_ok(),
            Ok(line) => serde_json::from_str::<SegmentMessage>(line).is_ok(),
        }))
    }
}

/// Several logs read as one, in arrival order: each next line is the
/// earliest of the files' next lines (a tie goes to the file named first),
/// so logs of different sources or periods can be given in any order. A
/// line that arrived more than `tolerance` before a line already read from
/// its own file cannot be replayed in its place (the replay does not go
/// back in time): it is replayed where it stands, and counted.
pub struct Merged {
    sources: Vec<Source>,
    tolerance: i64,
    /// The source of the line last returned.
    last: usize,
    /// Lines read behind their file's time, and the first of them.
    pub out_of_order: u64,
    pub first_out_of_order: Option<String>,
}

struct Source {
    feed: Feed,
    head: Option<Result<Parsed, LineError>>,
    head_line: u64,
    done: bool,
    latest: Option<Timestamp>,
}

/// A file's parsed lines: read as they are needed, or parsed already.
enum Feed {
    Stream(LogReader),
    Loaded { path: PathBuf, lines: std::vec::IntoIter<(u64, Result<Parsed, LineError>)>, line: u64 },
}

impl Feed {
    fn next(&mut self) -> Result<Option<Result<Parsed, LineError>>> {
        match self {
            Feed::Stream(r) => r.next(),
            Feed::Loaded { lines, line, .. } => Ok(lines.next().map(|(n, parsed)| {
                *line = n;
                parsed
            })),
        }
    }

    fn line_no(&self) -> u64 {
        match self {
            Feed::Stream(r) => r.lines.line_no,
            Feed::Loaded { line, .. } => *line,
        }
    }

    fn path(&self) -> &Path {
        match self {
            Feed::Stream(r) => &r.lines.path,
            Feed::Loaded { path, .. } => path,
        }
    }

    fn bytes_read_hint(&self) -> usize {
        match self {
            Feed::Stream(r) => r.bytes_read_hint(),
            Feed::Loaded { .. } => 0,
        }
    }
}

impl Merged {
    pub fn open(paths: &[PathBuf], format: Format, shop: &str, tolerance: nudge_core::Dur) -> Result<Merged> {
        let feeds = paths.iter().map(|p| Ok(Feed::Stream(LogReader::open(p, format, shop)?))).collect::<Result<_>>()?;
        Ok(Merged::of(feeds, tolerance))
    }

    /// As [`Merged::open`], with every file parsed first, on `threads`
    /// threads: all of it is held in memory. `progress` is told the bytes
    /// of each block parsed.
    pub fn load(
        paths: &[PathBuf],
        format: Format,
        shop: &str,
        tolerance: nudge_core::Dur,
        threads: usize,
        progress: &dyn Fn(u64),
    ) -> Result<Merged> {
        let feeds = paths
            .iter()
            .map(|p| {
                let lines = LogReader::open(p, format, shop)?.parse_all(threads, progress)?;
                Ok(Feed::Loaded { path: p.clone(), lines: lines.into_iter(), line: 0 })
            })
            .collect::<Result<_>>()?;
        Ok(Merged::of(feeds, tolerance))
    }

    fn of(feeds: Vec<Feed>, tolerance: nudge_core::Dur) -> Merged {
        let sources = feeds
            .into_iter()
            .map(|feed| Source { feed, head: None, head_line: 0, done: false, latest: None })
            .collect();
        Merged { sources, tolerance: tolerance.as_secs(), last: 0, out_of_order: 0, first_out_of_order: None }
    }

    /// The next line of all the files, parsed; as [`LogReader::next`].
    pub fn next(&mut self) -> Result<Option<Result<Parsed, LineError>>> {
        for s in &mut self.sources {
            if s.head.is_none() && !s.done {
                s.head = s.feed.next()?;
                s.head_line = s.feed.line_no();
                s.done = s.head.is_none();
            }
        }
        // A bad line first (it stops the replay or is skipped), then the
        // earliest arrival.
        let pick = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.head.as_ref().map(|h| (h.as_ref().ok().map(|p| p.arrived), i)))
            .min_by_key(|(at, i)| (at.is_some(), *at, *i))
            .map(|(_, i)| i);
        let Some(i) = pick else { return Ok(None) };
        self.last = i;
        let s = &mut self.sources[i];
        let head = s.head.take();
        if let Some(Ok(p)) = &head {
            let at = p.arrived.as_second();
            if s.latest.is_some_and(|latest| latest.as_second() - at > self.tolerance) {
                self.out_of_order += 1;
                if self.first_out_of_order.is_none() {
                    let behind = nudge_core::Dur::from_secs(s.latest.map_or(0, |l| l.as_second() - at));
                    let file = s.feed.path().display();
                    self.first_out_of_order = Some(format!("{file}:{}: {behind} before an earlier line", s.head_line));
                }
            }
            s.latest = s.latest.max(Some(p.arrived));
        }
        Ok(head)
    }

    /// The length of the line last read, for progress.
    pub fn bytes_read_hint(&self) -> usize {
        self.sources.get(self.last).map_or(0, |s| s.feed.bytes_read_hint())
    }
}

/// One of nudge's own events: a line of `nudge serve`'s event log, or an
/// EventBridge event of detail-type `nudge event` (the Lambda functions'
/// event log, as an archive or a rule's target keeps it).
fn nudge_event(line: &str) -> Result<Event, String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "detail-type")]
        detail_type: String,
        detail: Event,
    }
    match serde_json::from_str::<Event>(line) {
        Ok(e) => Ok(e),
        Err(e) if line.contains("\"detail-type\"") => match serde_json::from_str::<Envelope>(line) {
            Ok(env) if env.detail_type == "nudge event" => Ok(env.detail),
            Ok(env) => Err(format!("an EventBridge event of detail-type {:?}, not \"nudge event\"", env.detail_type)),
            Err(_) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// The format of a file whose first line is `line`.
fn detect(line: &str) -> Format {
    if nudge_event(line).is_ok() { Format::Nudge } else { Format::Segment }
}

fn parse_line(line: &str, format: Format, shop: &str) -> Result<Parsed, String> {
    match format {
        Format::Nudge => {
            nudge_event(line).map(|e| Parsed { arrived: e.received_at.unwrap_or(e.occurred_at), events: vec![e] })
        }
        _ => parse_segment(line, shop),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(name: &str, bytes: &[u8]) -> LogReader {
        let path = std::env::temp_dir().join(format!("nudge-logs-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let r = LogReader::open(&path, Format::Segment, "shop").unwrap();
        std::fs::remove_file(&path).unwrap();
        r
    }

    /// Every line `next_text` returns, errors as `Err(line number)`.
    fn texts(r: &mut LogReader) -> Vec<Result<(u64, String), u64>> {
        let mut out = Vec::new();
        while let Some(t) = r.lines.next_text().unwrap() {
            out.push(t.map(|s| s.to_owned()).map(|s| (r.lines.line_no, s)).map_err(|e| e.line));
        }
        out
    }

    #[test]
    fn an_eventbridge_nudge_event_reads_as_the_event_it_carries_and_another_detail_type_is_refused() {
        let event = r#"{"id":"m1","shop":"s","occurred_at":"2026-10-06T14:00:00Z","identity":{"customer_id":"c1"},"kind":"page_viewed","received_at":"2026-10-06T14:00:02Z"}"#;
        let envelope = |t: &str| {
            format!(
                r#"{{"version":"0","id":"x","detail-type":"{t}","source":"nudge","account":"1","time":"2026-10-06T14:00:02Z","region":"us-east-1","resources":[],"detail":{event}}}"#
            )
        };
        let e = nudge_event(&envelope("nudge event")).unwrap();
        assert_eq!((e.id.as_str(), e.received_at.map(|t| t.to_string())), ("m1", Some("2026-10-06T14:00:02Z".into())));
        assert!(nudge_event(&envelope("nudge decision")).unwrap_err().contains("nudge decision"));
        assert_eq!(nudge_event(event).unwrap(), e);
    }

    #[test]
    fn lines_longer_than_a_read_and_split_across_reads_come_back_whole_with_their_numbers() {
        let long = "x".repeat(READ_SIZE + 17);
        let mut log = String::new();
        for i in 0..40_000 {
            log.push_str(&format!("line {i} {}\n", "y".repeat(i % 97)));
        }
        log.push_str(&long);
        log.push('\n');
        log.push_str("after");
        let got = texts(&mut reader("long", log.as_bytes()));
        assert_eq!(got.len(), 40_002);
        assert_eq!(got[12_345], Ok((12_346, format!("line 12345 {}", "y".repeat(12_345 % 97)))));
        assert_eq!(got[40_000], Ok((40_001, long)));
        assert_eq!(got[40_001], Ok((40_002, "after".to_owned())), "a last line without a newline");
    }

    #[test]
    fn blank_lines_are_skipped_but_counted_and_line_ends_are_trimmed() {
        let got = texts(&mut reader("blank", b"a\r\n\n  \t\nb  \n"));
        assert_eq!(got, vec![Ok((1, "a".to_owned())), Ok((4, "b".to_owned()))]);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error_of_that_line_and_reading_goes_on() {
        let mut r = reader("utf8", b"{}\n\xff\xfe\n{}\n");
        assert_eq!(texts(&mut r), vec![Ok((1, "{}".to_owned())), Err(2), Ok((3, "{}".to_owned()))]);
        let mut r = reader("utf8-next", b"\xff\n");
        let e = r.next().unwrap().unwrap().err().unwrap();
        assert!(e.to_string().ends_with(":1: not UTF-8 text (invalid utf-8 sequence of 1 bytes from index 0)"), "{e}");
    }
}
