//! The file drop source: a watched directory of CSV and JSON-lines CDR files, each processed
//! exactly once, even across restarts in the middle of a file.
//!
//! Layout of `files.dir`: mediation systems drop files into `incoming/` (written elsewhere, then
//! renamed in); a finished file moves to `done/` next to its report `<name>.report.json`; a file
//! that cannot be taken (unknown extension, bad CSV header, a name already processed) moves to
//! `failed/` with a report saying why, nothing of it ingested. `.progress/` keeps the running
//! tally of the file being read, so its report stays exact across restarts.
//!
//! Lines are numbered like an editor numbers them (1-based, the CSV header is line 1). Every
//! batch of up to `files.batch_len_max` records is ingested together with the position
//! `files/<name>` partition 0 = the number of the next line to read, in one durable write; after
//! a restart the file resumes at that line, so no line is ingested twice and none is skipped.
//! Counters go to the one source `files`; suspended lines have the id `files/<name>/<line>`.
//!
//! The directory is read on its own thread; batches cross into the actor system through a
//! channel and the thread waits for each to be durable before reading on (like the Kafka
//! source, see [`super::kafka`]).

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_actors::CdrOutcome;
use tollgate_config::FilesConfig;
use tollgate_domain::cdr::{CdrMapping, CsvDecoder};
use tollgate_domain::mediation::{IngestStore, SourcePosition};

use super::IngestBridge;
use crate::ingest::{Batch, Incoming, Ingestor, RecordFormat};

/// The source name of every dropped file in counters and suspense rows.
pub const SOURCE: &str = "files";

/// The position source of one file: `files/<name>` (partition 0).
pub fn position_source(name: &str) -> SmolStr {
    smol_str::format_smolstr!("{SOURCE}/{name}")
}

/// The suspense id of line `line` of file `name`: `files/<name>/<line>`.
pub fn suspense_id(name: &str, line: u64) -> String {
    format!("{SOURCE}/{name}/{line}")
}

/// Whether a name in `incoming/` is left alone: hidden files and files still being written
/// (`.tmp`, `.part`).
pub fn ignored(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.') || lower.ends_with(".tmp") || lower.ends_with(".part")
}

/// How the records of a file are encoded, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `.csv`: a header line, then one record a line.
    Csv,
    /// `.jsonl`, `.ndjson`, `.json`: one JSON object a line.
    JsonLines,
}

impl FileFormat {
    /// The format of a file name (extensions compare case-insensitively).
    pub fn of(name: &str) -> Option<FileFormat> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(FileFormat::JsonLines),
            _ => None,
        }
    }

    /// The number of the first line that may hold a record.
    fn first_line(self) -> u64 {
        match self {
            FileFormat::Csv => 2,
            FileFormat::JsonLines => 1,
        }
    }

    fn label(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::JsonLines => "jsonl",
        }
    }
}

/// What became of the records of one file: `done/<name>.report.json`. Always `lines = rated +
/// duplicates + suspended + filtered + unresolved`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// File name.
    pub file: String,
    /// `csv` or `jsonl`.
    pub format: String,
    /// Records read (non-blank lines; not the CSV header).
    pub lines: u64,
    /// Rated and charged.
    pub rated: u64,
    /// Seen before: charged nothing again.
    pub duplicates: u64,
    /// Put in suspense (ids `files/<name>/<line>`).
    pub suspended: u64,
    /// Dropped by a mediation filter.
    pub filtered: u64,
    /// Made durable before a crash whose outcome the report could not keep (the node stopped
    /// between a batch's commit and the update of the progress file): counted in
    /// `/v1/mediation/stats`, usually 0.
    pub unresolved: u64,
    /// Suspended and filtered records by reason code.
    pub reasons: BTreeMap<String, u64>,
    /// When the node first started reading the file (RFC 3339).
    pub started_at: String,
    /// When the last record was durable (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How many times reading resumed from a stored position (a restart of the node, or a
    /// read error, in the middle of the file).
    pub resumed: u32,
}

impl FileReport {
    fn new(file: &str, format: FileFormat) -> FileReport {
        FileReport {
            file: file.to_string(),
            format: format.label().to_string(),
            started_at: jiff::Timestamp::now().to_string(),
            ..FileReport::default()
        }
    }

    fn count(&mut self, outcomes: &[CdrOutcome]) {
        for outcome in outcomes {
            self.lines += 1;
            let reason = match outcome {
                CdrOutcome::Rated { .. } => {
                    self.rated += 1;
                    continue;
                }
                CdrOutcome::Duplicate { .. } => {
                    self.duplicates += 1;
                    continue;
                }
                CdrOutcome::Filtered { reason, .. } => {
                    self.filtered += 1;
                    reason
                }
                CdrOutcome::Suspended { reason, .. } => {
                    self.suspended += 1;
                    reason
                }
            };
            *self.reasons.entry(reason.to_string()).or_default() += 1;
        }
    }
}

/// Why a file went to `failed/`: `failed/<name>.report.json`. Nothing of it was ingested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedReport {
    /// File name (as found in `incoming/`).
    pub file: String,
    /// Reason code: `files.unsupported_format`, `files.bad_name`, `files.bad_header`,
    /// `files.already_processed`.
    pub reason: String,
    /// Readable explanation.
    pub message: String,
    /// Records ingested from the file: always 0.
    pub ingested: u64,
    /// When it was moved (RFC 3339).
    pub failed_at: String,
}

/// The tally of a file being read, saved after every durable batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    next_line: u64,
    report: FileReport,
}

/// `tollgate_files_total{outcome}` and `tollgate_files_lines_total`.
#[derive(Clone)]
struct FileMetrics {
    files: prometheus::IntCounterVec,
    lines: prometheus::IntCounter,
}

impl FileMetrics {
    fn new(registry: &prometheus::Registry) -> Result<FileMetrics, String> {
        let files = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "tollgate_files_total",
                "Dropped files taken from incoming/, by outcome (done, failed)",
            ),
            &["outcome"],
        )
        .map_err(|e| e.to_string())?;
        let lines = prometheus::IntCounter::new(
            "tollgate_files_lines_total",
            "Records of dropped files made durable (rated, duplicate, suspended or filtered)",
        )
        .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(files.clone()))
            .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(lines.clone()))
            .map_err(|e| e.to_string())?;
        for outcome in ["done", "failed"] {
            files.with_label_values(&[outcome]);
        }
        Ok(FileMetrics { files, lines })
    }
}

/// The subdirectories of `files.dir`.
#[derive(Debug, Clone)]
struct Dirs {
    incoming: PathBuf,
    done: PathBuf,
    failed: PathBuf,
    progress: PathBuf,
}

impl Dirs {
    fn create(root: &Path) -> Result<Dirs, String> {
        let dirs = Dirs {
            incoming: root.join("incoming"),
            done: root.join("done"),
            failed: root.join("failed"),
            progress: root.join(".progress"),
        };
        for d in [&dirs.incoming, &dirs.done, &dirs.failed, &dirs.progress] {
            fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        Ok(dirs)
    }
}

/// A running file drop source of the node.
pub struct FileDrop {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl FileDrop {
    /// Creates `incoming/`, `done/` and `failed/` under `config.dir`, registers the metrics in
    /// `registry` and starts watching. Must be called inside the actor system.
    pub fn start(
        config: &FilesConfig,
        ingestor: Arc<Ingestor>,
        registry: &prometheus::Registry,
    ) -> Result<FileDrop, String> {
        let dirs = Dirs::create(&config.dir)?;
        let metrics = FileMetrics::new(registry)?;
        let bridge = IngestBridge::spawn(ingestor.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker {
            dirs,
            poll: config.poll_interval(),
            batch_len_max: config.batch_len_max.max(1),
            bridge,
            store: ingestor.store().clone(),
            mapping: ingestor.source_mapping(SOURCE),
            metrics,
            stop: stop.clone(),
            warned: HashSet::new(),
        };
        let root = config.dir.display().to_string();
        let thread = std::thread::Builder::new()
            .name("file-drop".into())
            .spawn(move || {
                eprintln!("files: watching {root}/incoming");
                worker.run();
            })
            .map_err(|e| format!("cannot start the file drop thread: {e}"))?;
        Ok(FileDrop {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops watching (blocking: call it off the actor threads). A batch in flight finishes;
    /// the file resumes from its stored position on the next start.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for FileDrop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What became of a file this time round.
enum Handled {
    /// Moved to `done/` or `failed/`.
    Moved,
    /// The node is stopping: the file stays in `incoming/`.
    Stopped,
}

/// Lines of a file as bytes, numbered from 1, without their line ends (`\n` or `\r\n`).
struct Lines<R> {
    reader: R,
    read: u64,
}

impl<R: BufRead> Lines<R> {
    fn next(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        self.read += 1;
        if self.read == 1 && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        Ok(Some((self.read, line)))
    }
}

fn blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The column names of a CSV header line.
fn header_columns(line: &[u8], mapping: &CdrMapping) -> Result<Vec<String>, String> {
    let text =
        std::str::from_utf8(line).map_err(|e| format!("the CSV header is not UTF-8: {e}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(mapping.delimiter.map_or(b',', |c| c as u8))
        .has_headers(false)
        .from_reader(text.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_string).collect()),
        Some(Err(e)) => Err(format!("the CSV header does not parse: {e}")),
        None => Err("the CSV header is empty".into()),
    }
}

/// The column names of a CSV header line, checked against the record mapping.
fn parse_header(line: &[u8], mapping: &CdrMapping) -> Result<Vec<String>, String> {
    let header = header_columns(line, mapping)?;
    let names: Vec<&str> = header.iter().map(String::as_str).collect();
    CsvDecoder::new(mapping, &names)
        .map_err(|e| format!("the CSV header does not fit the record mapping: {e}"))?;
    Ok(header)
}

/// Writes `value` as JSON through a hidden temporary file and a rename, so readers never see
/// half a file; with `durable`, synced to disk before the rename.
fn write_json(path: &Path, value: &impl Serialize, durable: bool) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    let mut file = File::create(&tmp)?;
    file.write_all(&bytes)?;
    if durable {
        file.sync_all()?;
    }
    drop(file);
    fs::rename(&tmp, path)
}

/// Makes renames in `dir` durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn with_suffix(name: &OsStr, suffix: &str) -> OsString {
    let mut s = name.to_os_string();
    s.push(suffix);
    s
}

struct Worker {
    dirs: Dirs,
    poll: Duration,
    batch_len_max: usize,
    bridge: IngestBridge,
    store: Arc<dyn IngestStore>,
    /// The record mapping of this source (`[files] mapping_path`, else the node's).
    mapping: CdrMapping,
    metrics: FileMetrics,
    stop: Arc<AtomicBool>,
    /// Files whose transient problem was logged (logged once until they move).
    warned: HashSet<OsString>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `d` unless the node stops first; false if it does.
    fn sleep(&self, d: Duration) -> bool {
        let step = Duration::from_millis(20);
        let mut left = d;
        while !left.is_zero() {
            if self.stopping() {
                return false;
            }
            let now = left.min(step);
            std::thread::sleep(now);
            left -= now;
        }
        !self.stopping()
    }

    fn run(&mut self) {
        let mut scan_warned = false;
        while !self.stopping() {
            match self.scan() {
                Ok(names) => {
                    scan_warned = false;
                    for name in names {
                        if self.stopping() {
                            break;
                        }
                        self.handle(&name);
                    }
                }
                Err(e) if !scan_warned => {
                    scan_warned = true;
                    eprintln!(
                        "files: cannot read {}: {e}; retrying",
                        self.dirs.incoming.display()
                    );
                }
                Err(_) => {}
            }
            if !self.sleep(self.poll) {
                break;
            }
        }
    }

    /// The files of `incoming/` to take, by name.
    fn scan(&self) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dirs.incoming)? {
            let entry = entry?;
            let name = entry.file_name();
            if ignored(&name.to_string_lossy()) {
                continue;
            }
            if fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn handle(&mut self, name: &OsStr) {
        match self.process(name) {
            Ok(Handled::Moved) => {
                self.warned.remove(name);
            }
            Ok(Handled::Stopped) => {}
            Err(e) => {
                if self.warned.insert(name.to_os_string()) {
                    eprintln!(
                        "files: {}: {e}; retrying on every scan",
                        name.to_string_lossy()
                    );
                }
            }
        }
    }

    /// Reads one file of `incoming/` from its stored position to its end, then reports and
    /// moves it. An error is transient: the file stays and is tried again on the next scan.
    fn process(&mut self, name: &OsStr) -> Result<Handled, String> {
        let path = self.dirs.incoming.join(name);
        let Some(text) = name.to_str() else {
            return self.fail(name, "files.bad_name", "the file name is not UTF-8".into());
        };
        if text.ends_with(".report.json") {
            return self.fail(
                name,
                "files.bad_name",
                "names ending in .report.json are reserved for reports".into(),
            );
        }
        let Some(format) = FileFormat::of(text) else {
            return self.fail(
                name,
                "files.unsupported_format",
                format!(
                    "unsupported extension of {text:?}: expected .csv, .jsonl, .ndjson or .json"
                ),
            );
        };
        if self.dirs.done.join(name).exists() {
            return self.fail(
                name,
                "files.already_processed",
                format!(
                    "file name already processed: done/{text} exists (file names must be unique)"
                ),
            );
        }
        let position = position_source(text);
        let stored = self
            .store
            .position(&position, 0)
            .map_err(|e| format!("stored position of {position}: {e}"))?;
        let file = File::open(&path).map_err(|e| format!("cannot open: {e}"))?;
        let mut lines = Lines {
            reader: BufReader::new(file),
            read: 0,
        };
        let unreadable = |e: io::Error| format!("cannot read: {e}");
        let record_format = match format {
            FileFormat::JsonLines => RecordFormat::Json,
            FileFormat::Csv => match lines.next().map_err(unreadable)? {
                // A resumed file's header was checked before its first line was ingested.
                Some((_, header)) if stored.is_some() => {
                    RecordFormat::Csv(header_columns(&header, &self.mapping)?)
                }
                Some((_, header)) => match parse_header(&header, &self.mapping) {
                    Ok(columns) => RecordFormat::Csv(columns),
                    Err(message) => return self.fail(name, "files.bad_header", message),
                },
                None => RecordFormat::Csv(Vec::new()),
            },
        };
        let first = format.first_line();
        let start = stored.unwrap_or(first).max(first);
        let progress_path = self.dirs.progress.join(with_suffix(name, ".json"));

        // The tally so far: from the progress file if it matches the stored position.
        let saved = match stored {
            Some(_) => fs::read(&progress_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Progress>(&b).ok())
                .filter(|p| p.next_line <= start && p.report.file == text),
            None => {
                let _ = fs::remove_file(&progress_path);
                None
            }
        };
        let (mut report, known_until) = match saved {
            Some(p) => (p.report, p.next_line),
            None => (FileReport::new(text, format), first),
        };
        if stored.is_some() {
            report.resumed += 1;
        }

        // Skip the lines already durable: before `start`.
        while lines.read + 1 < start {
            match lines.next().map_err(unreadable)? {
                Some((n, line)) => {
                    if n >= known_until && !blank(&line) {
                        report.lines += 1;
                        report.unresolved += 1;
                    }
                }
                // An empty CSV file (not even a header): nothing to read.
                None if stored.is_none() => break,
                None => {
                    return self.fail(
                        name,
                        "files.already_processed",
                        format!(
                            "file name already processed: a file {text} was read up to line {} \
                             but this one has {} lines (file names must be unique)",
                            start - 1,
                            lines.read
                        ),
                    );
                }
            }
        }

        loop {
            if self.stopping() {
                return Ok(Handled::Stopped);
            }
            let mut records = Vec::new();
            while records.len() < self.batch_len_max {
                match lines.next().map_err(unreadable)? {
                    None => break,
                    Some((_, line)) if blank(&line) => {}
                    Some((n, line)) => records.push(Incoming {
                        suspense_id: suspense_id(text, n),
                        raw: line,
                        recycled: None,
                    }),
                }
            }
            if records.is_empty() {
                break;
            }
            let next_offset = lines.read + 1;
            let count = records.len() as u64;
            let batch = |records: Vec<Incoming>| Batch {
                source: SOURCE.into(),
                format: record_format.clone(),
                records,
                positions: vec![SourcePosition {
                    source: position.clone(),
                    partition: 0,
                    next_offset,
                }],
                by: SOURCE.into(),
                audit: None,
            };
            let mut wait = Duration::from_millis(200);
            loop {
                let error = match self.ingest(batch(records.clone())) {
                    Ok(outcomes) => {
                        report.count(&outcomes);
                        break;
                    }
                    Err(e) => e,
                };
                // The write may be durable though the answer was an error: the stored
                // position tells.
                if let Ok(Some(p)) = self.store.position(&position, 0)
                    && p >= next_offset
                {
                    eprintln!(
                        "files: {text}: lines before {next_offset} are durable, outcomes \
                         unknown: {error}"
                    );
                    report.lines += count;
                    report.unresolved += count;
                    break;
                }
                if self.stopping() {
                    return Ok(Handled::Stopped);
                }
                eprintln!(
                    "files: {text}: batch ending at line {} not durable, retrying in {wait:?}: \
                     {error}",
                    next_offset - 1
                );
                if !self.sleep(wait) {
                    return Ok(Handled::Stopped);
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            self.metrics.lines.inc_by(count);
            let progress = Progress {
                next_line: next_offset,
                report: report.clone(),
            };
            if let Err(e) = write_json(&progress_path, &progress, false) {
                eprintln!(
                    "files: {text}: cannot save progress (the report may count lines as unresolved): {e}"
                );
            }
        }
        self.finish(name, &path, &progress_path, report)
    }

    /// Hands a batch to the ingest task and waits until it is durable.
    fn ingest(&self, batch: Batch) -> Result<Vec<CdrOutcome>, String> {
        self.bridge.ingest(batch)
    }

    /// Every line is durable: writes the report, then moves the file to `done/`.
    fn finish(
        &mut self,
        name: &OsStr,
        path: &Path,
        progress_path: &Path,
        mut report: FileReport,
    ) -> Result<Handled, String> {
        report.finished_at = Some(jiff::Timestamp::now().to_string());
        let report_path = self.dirs.done.join(with_suffix(name, ".report.json"));
        write_json(&report_path, &report, true)
            .map_err(|e| format!("cannot write {}: {e}", report_path.display()))?;
        fs::rename(path, self.dirs.done.join(name))
            .map_err(|e| format!("cannot move to done/: {e}"))?;
        sync_dir(&self.dirs.done);
        sync_dir(&self.dirs.incoming);
        let _ = fs::remove_file(progress_path);
        self.metrics.files.with_label_values(&["done"]).inc();
        eprintln!(
            "files: {} done: {} lines, {} rated, {} duplicates, {} suspended, {} filtered{}",
            report.file,
            report.lines,
            report.rated,
            report.duplicates,
            report.suspended,
            report.filtered,
            if report.unresolved > 0 {
                format!(", {} unresolved", report.unresolved)
            } else {
                String::new()
            }
        );
        Ok(Handled::Moved)
    }

    /// Moves a file nothing of which was ingested to `failed/`, after its report.
    fn fail(&mut self, name: &OsStr, reason: &str, message: String) -> Result<Handled, String> {
        let mut target = name.to_os_string();
        let mut n = 2;
        while self.dirs.failed.join(&target).exists() {
            target = with_suffix(name, &format!(".{n}"));
            n += 1;
        }
        let report = FailedReport {
            file: name.to_string_lossy().into_owned(),
            reason: reason.to_string(),
            message,
            ingested: 0,
            failed_at: jiff::Timestamp::now().to_string(),
        };
        let report_path = self.dirs.failed.join(with_suffix(&target, ".report.json"));
        write_json(&report_path, &report, true)
            .map_err(|e| format!("cannot write {}: {e}", report_path.display()))?;
        fs::rename(
            self.dirs.incoming.join(name),
            self.dirs.failed.join(&target),
        )
        .map_err(|e| format!("cannot move to failed/: {e}"))?;
        sync_dir(&self.dirs.failed);
        sync_dir(&self.dirs.incoming);
        self.metrics.files.with_label_values(&["failed"]).inc();
        eprintln!(
            "files: {} failed ({}): {}",
            report.file, report.reason, report.message
        );
        Ok(Handled::Moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_formats() {
        assert_eq!(FileFormat::of("a.csv"), Some(FileFormat::Csv));
        assert_eq!(FileFormat::of("a.CSV"), Some(FileFormat::Csv));
        assert_eq!(FileFormat::of("b.jsonl"), Some(FileFormat::JsonLines));
        assert_eq!(FileFormat::of("b.ndjson"), Some(FileFormat::JsonLines));
        assert_eq!(FileFormat::of("b.json"), Some(FileFormat::JsonLines));
        assert_eq!(FileFormat::of("c.xml"), None);
        assert_eq!(FileFormat::of("csv"), None);
        assert!(ignored(".a.csv"));
        assert!(ignored("a.csv.tmp"));
        assert!(ignored("a.csv.PART"));
        assert!(!ignored("a.csv"));
        assert_eq!(position_source("a.csv"), "files/a.csv");
        assert_eq!(suspense_id("a.csv", 7), "files/a.csv/7");
    }

    #[test]
    fn lines_are_numbered_without_line_ends() {
        let bytes = b"\xEF\xBB\xBFh1,h2\r\na\n\n\xff\r\nlast";
        let mut lines = Lines {
            reader: &bytes[..],
            read: 0,
        };
        let mut all = Vec::new();
        while let Some(l) = lines.next().unwrap() {
            all.push(l);
        }
        assert_eq!(
            all,
            vec![
                (1, b"h1,h2".to_vec()),
                (2, b"a".to_vec()),
                (3, Vec::new()),
                (4, vec![0xff]),
                (5, b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn a_header_must_fit_the_mapping() {
        assert_eq!(
            parse_header(
                b"id,subscriber,service,direction,callee,start",
                &CdrMapping::default()
            )
            .unwrap()[5],
            "start"
        );
        assert!(parse_header(b"foo,bar", &CdrMapping::default()).is_err());
        assert!(parse_header(b"\xff", &CdrMapping::default()).is_err());
    }
}
