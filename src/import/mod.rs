//! The CSV importer behind `COPY t FROM 'file'` and `sluice import`.
//!
//! A partitioned target goes through the parallel pipeline, one module per
//! phase: [`analyze`] (structure and types), [`boundary`] (chunks that start
//! at record starts), [`indexing`] (timestamp and offset of every record,
//! routed to its partition), [`partition_import`] (partitions sorted and
//! written as Parquet in parallel) and [`attach`] (one atomic manifest
//! swap). Other targets take the one-pass [`serial`] importer. Both share
//! the lexer ([`csv`]), the pattern language ([`format`]) and the checked
//! conversions ([`decode`]), and report to the journal ([`log`]) that
//! `sys.text_import_log` and `sys.text_import_errors` show. Input that is
//! not a plain file under the copy root (uploads, COPY FROM STDIN, gzip or
//! zstd files) is made one first by [`source`] (and [`pgtext`] for
//! PostgreSQL's text format), so every way in shares this pipeline.
//!
//! One import runs at a time ([`Importer`] holds the slot); it runs on its
//! own thread with its own rayon pool and checks its cancel flag inside
//! every phase. Nothing is visible in the table until the final swap, so a
//! failure, a cancel or a crash leaves the table as it was.

pub mod analyze;
pub mod attach;
pub mod boundary;
pub mod csv;
pub mod decode;
pub mod format;
pub mod indexing;
pub mod log;
pub mod partition_import;
pub mod pgtext;
#[cfg(test)]
mod proptests;
pub mod reject;
pub mod request;
pub mod rows;
pub mod serial;
pub mod source;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::catalog::Catalog;
use crate::config::{Config, TextLoaderFormats};
use crate::error::{Error, Result};
use crate::storage::PartitionBy;
use log::{ErrorRow, ImportLog, LogRow, Phase, Status, now_micros};

pub use request::{ColumnOverride, ImportOptions, ImportRequest, OnError};

/// Importer settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub workers: usize,
    pub buffer_size: usize,
    pub analysis_lines: usize,
    pub work_root: PathBuf,
    pub max_recorded_errors: usize,
    pub formats: TextLoaderFormats,
    /// Smallest chunk worth its own indexing task.
    pub min_chunk_size: usize,
    /// Index entries (16 bytes each) held in memory before spilling to the
    /// work root, over all workers.
    pub index_memory: usize,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        Settings {
            workers: c.copy_worker_count.max(1),
            buffer_size: c.copy_buffer_size as usize,
            analysis_lines: c.http_text_analysis_max_lines,
            work_root: c.copy_work_root.clone(),
            max_recorded_errors: c.copy_max_recorded_errors as usize,
            formats: c.formats.clone(),
            min_chunk_size: c.copy_min_chunk_size as usize,
            index_memory: c.copy_index_memory as usize,
        }
    }
}

/// Why an import stopped. The text is what the log's `message` shows.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Raised by the coordinator (open, structure, validation).
    #[error("{message}")]
    Setup { message: String },
    /// A phase task failed.
    #[error("import failed [phase={phase}, msg=`{message}`]")]
    Phase { phase: Phase, message: String },
    #[error("import cancelled [phase={phase}, msg=`Cancelled`]")]
    Cancelled { phase: Phase },
    #[error("import was cancelled")]
    SerialCancelled,
}

impl ImportError {
    pub fn setup(message: impl Into<String>) -> Self {
        ImportError::Setup {
            message: message.into(),
        }
    }

    pub fn is_cancel(&self) -> bool {
        matches!(
            self,
            ImportError::Cancelled { .. } | ImportError::SerialCancelled
        )
    }
}

/// A rejected row or field, before its line number is known.
#[derive(Debug, Clone)]
pub struct RowError {
    pub offset: u64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl RowError {
    /// The text an ABORT fails with: where the record is and why.
    pub fn abort_text(&self, file: &str, buf: &[u8]) -> String {
        let line = csv::line_numbers(buf, &[self.offset])[0];
        format!(
            "bad syntax [file={file}, line={line}, offset={}, column={}, value='{}']: {}",
            self.offset,
            self.column.as_deref().unwrap_or(""),
            self.value.as_deref().unwrap_or(""),
            self.message
        )
    }
}

/// Error rows of one import: every one is counted, the first
/// `max_recorded_errors` are kept for `sys.text_import_errors`.
#[derive(Debug)]
pub struct ErrorSink {
    kept: Mutex<Vec<RowError>>,
    count: AtomicU64,
    max: usize,
    /// Exact error count per column name (rows with no column are not here).
    per_column: Mutex<std::collections::HashMap<String, u64>>,
}

impl ErrorSink {
    fn new(max: usize) -> Self {
        ErrorSink {
            kept: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
            max,
            per_column: Mutex::new(Default::default()),
        }
    }

    pub fn push(&self, e: RowError) {
        if let Some(c) = &e.column {
            *self
                .per_column
                .lock()
                .expect("error sink")
                .entry(c.clone())
                .or_default() += 1;
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if (n as usize) < self.max {
            self.kept.lock().expect("error sink").push(e);
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Errors per column name.
    pub fn per_column(&self) -> std::collections::HashMap<String, u64> {
        self.per_column.lock().expect("error sink").clone()
    }

    /// Forgets the errors after the first `n` (a phase that starts over).
    pub fn rewind(&self, n: u64) {
        if n == 0 {
            self.per_column.lock().expect("error sink").clear();
        }
        self.count.store(n, Ordering::Relaxed);
        self.kept
            .lock()
            .expect("error sink")
            .truncate((n as usize).min(self.max));
    }
}

/// Shortens a bad value for messages and the errors table.
pub fn shown_value(raw: &[u8]) -> String {
    const MAX: usize = 256;
    let s = String::from_utf8_lossy(&raw[..raw.len().min(MAX)]).into_owned();
    if raw.len() > MAX {
        format!("{s}…")
    } else {
        s
    }
}

/// Progress of the running import, for the CLI's progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// The running phase; `None` before the first one (and in the serial
    /// importer, which has none).
    pub phase: Mutex<Option<Phase>>,
    pub bytes_done: AtomicU64,
    pub bytes_total: AtomicU64,
}

/// The result of a finished import.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub id: String,
    pub rows_handled: u64,
    pub rows_imported: u64,
    /// Data records that did not become rows, whichever phase refused them
    /// (`rows_handled` leaves out those refused at indexing, as QuestDB's
    /// log does).
    pub rows_rejected: u64,
    pub errors: u64,
    pub partitions: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub phases: Vec<(Phase, f64)>,
    /// The first record was a header.
    pub header: bool,
    /// Errors per table column name.
    pub column_errors: std::collections::HashMap<String, u64>,
    /// Range of the designated timestamps written (UTC microseconds).
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
}

impl Summary {
    /// What a pipeline knows when it ends; the driver adds id and times.
    fn counts(
        job: &Job<'_>,
        (records, handled, imported): (u64, u64, u64),
        partitions: usize,
        bytes: usize,
    ) -> Summary {
        Summary {
            rows_handled: handled,
            rows_imported: imported,
            rows_rejected: records.saturating_sub(imported),
            errors: job.errors.count(),
            partitions,
            bytes: bytes as u64,
            column_errors: job.errors.per_column(),
            ..Summary::default()
        }
    }

    /// Adds what the analysis and the written files say.
    fn with(mut self, a: &analyze::Analysis, files: &[crate::storage::DataFile]) -> Summary {
        self.header = a.structure.header;
        self.min_ts = files.iter().filter_map(|f| f.min_ts).min();
        self.max_ts = files.iter().filter_map(|f| f.max_ts).max();
        self
    }
}

/// Everything a phase needs about the running import.
pub struct Job<'a> {
    pub id: &'a str,
    pub req: &'a ImportRequest,
    pub settings: &'a Settings,
    pub cancel: &'a AtomicBool,
    pub journal: &'a ImportLog,
    pub errors: ErrorSink,
    pub progress: &'a Progress,
    pub pool: rayon::ThreadPool,
    phases: Mutex<Vec<(Phase, f64)>>,
    /// The decompressed copy of a compressed source, in the work root.
    decompressed: Mutex<Option<source::TempFile>>,
}

impl Job<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Fails with the phase's cancel error when a cancel was asked for.
    pub fn check(&self, phase: Phase) -> std::result::Result<(), ImportError> {
        if self.cancelled() {
            Err(ImportError::Cancelled { phase })
        } else {
            Ok(())
        }
    }

    fn log(
        &self,
        phase: Option<Phase>,
        status: Status,
        message: Option<String>,
        counts: (Option<i64>, Option<i64>, i64),
    ) {
        journal_row(
            self.journal,
            self.id,
            self.req,
            phase,
            status,
            message,
            counts,
        );
    }

    /// Runs one phase between its `started` and `finished` log rows. A
    /// failing phase gets no `finished` row (the import-level row follows).
    pub fn phase<T>(
        &self,
        name: Phase,
        f: impl FnOnce() -> std::result::Result<T, ImportError>,
    ) -> std::result::Result<T, ImportError> {
        self.check(name)?;
        *self.progress.phase.lock().expect("progress") = Some(name);
        self.log(Some(name), Status::Started, None, (None, None, 0));
        let errors_before = self.errors.count();
        let t = Instant::now();
        let out = f()?;
        let secs = t.elapsed().as_secs_f64();
        self.phases.lock().expect("phases").push((name, secs));
        tracing::info!(
            import = self.id,
            phase = name.as_str(),
            seconds = secs,
            "phase finished"
        );
        self.log(
            Some(name),
            Status::Finished,
            None,
            (None, None, (self.errors.count() - errors_before) as i64),
        );
        Ok(out)
    }
}

struct Active {
    id: String,
    cancel: Arc<AtomicBool>,
}

/// The one import slot and the background thread running it.
pub struct Importer {
    catalog: Arc<Catalog>,
    journal: Arc<ImportLog>,
    settings: Settings,
    active: Mutex<Option<Active>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer").finish_non_exhaustive()
    }
}

/// Parses an import id as COPY CANCEL accepts it (hex, up to 16 digits).
pub fn parse_id(text: &str) -> Option<String> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    u64::from_str_radix(text, 16)
        .ok()
        .map(|v| format!("{v:016x}"))
}

impl Importer {
    pub fn new(catalog: Arc<Catalog>, journal: Arc<ImportLog>, settings: Settings) -> Importer {
        // Scratch left by a run that died with the process.
        let _ = std::fs::remove_dir_all(settings.work_root.join("import"));
        Importer {
            catalog,
            journal,
            settings,
            active: Mutex::new(None),
            thread: Mutex::new(None),
        }
    }

    pub fn journal(&self) -> &Arc<ImportLog> {
        &self.journal
    }

    fn reserve(&self) -> Result<(String, Arc<AtomicBool>)> {
        let mut active = self.active.lock().expect("import slot");
        if let Some(a) = active.as_ref() {
            return Err(Error::invalid(format!(
                "unable to process the import request - another import may be in progress [activeImportId={}]",
                a.id
            )));
        }
        let id = format!("{:016x}", rand_id());
        let cancel = Arc::new(AtomicBool::new(false));
        *active = Some(Active {
            id: id.clone(),
            cancel: Arc::clone(&cancel),
        });
        Ok((id, cancel))
    }

    fn release(&self, id: &str) {
        let mut active = self.active.lock().expect("import slot");
        if active.as_ref().is_some_and(|a| a.id == id) {
            *active = None;
        }
    }

    /// Starts `req` in the background; returns its id at once.
    pub fn submit(self: &Arc<Self>, req: ImportRequest) -> Result<String> {
        req.validate()?;
        let (id, cancel) = self.reserve()?;
        // Reap the previous import's thread (it has released the slot).
        if let Some(h) = self.thread.lock().expect("import thread").take() {
            let _ = h.join();
        }
        let this = Arc::clone(self);
        let job_id = id.clone();
        let handle = std::thread::Builder::new()
            .name(format!("copy-{id}"))
            .spawn(move || {
                let progress = Progress::default();
                let _ = this.run(&job_id, &req, &cancel, &progress);
                this.release(&job_id);
            })
            .map_err(|e| Error::Internal(format!("could not start the import thread: {e}")))?;
        *self.thread.lock().expect("import thread") = Some(handle);
        Ok(id)
    }

    /// Runs `req` on the calling thread (the CLI), with the same slot, log
    /// and pipeline as COPY.
    pub fn run_now(
        &self,
        req: &ImportRequest,
        progress: &Progress,
        cancel: Arc<AtomicBool>,
    ) -> Result<std::result::Result<Summary, ImportError>> {
        req.validate()?;
        let (id, slot_cancel) = self.reserve()?;
        // Either flag cancels: the CLI's (Ctrl-C) or the slot's.
        let watcher_stop = Arc::new(AtomicBool::new(false));
        let (c1, c2, stop) = (
            Arc::clone(&cancel),
            Arc::clone(&slot_cancel),
            Arc::clone(&watcher_stop),
        );
        let watcher = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if c1.load(Ordering::Relaxed) {
                    c2.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let out = self.run(&id, req, &slot_cancel, progress);
        watcher_stop.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        self.release(&id);
        Ok(out)
    }

    /// Runs `req` on the calling thread for a synchronous caller (`/imp`,
    /// the Arc endpoint, COPY FROM STDIN, bulk jobs): waits up to `wait`
    /// for a running import to end instead of refusing at once. `cancel`
    /// stops it (a client that went away).
    pub fn run_sync(
        &self,
        req: &ImportRequest,
        wait: std::time::Duration,
        cancel: Arc<AtomicBool>,
    ) -> Result<std::result::Result<Summary, ImportError>> {
        let deadline = Instant::now() + wait;
        loop {
            let busy = self.active.lock().expect("import slot").is_some();
            if !busy || Instant::now() >= deadline || cancel.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.run_now(req, &Progress::default(), cancel)
    }

    /// `COPY 'id' CANCEL`: the status to report (`None`: no such import).
    pub fn cancel(&self, id: &str) -> Option<Status> {
        if let Some(a) = self.active.lock().expect("import slot").as_ref()
            && a.id == id
        {
            a.cancel.store(true, Ordering::Relaxed);
            return Some(Status::Cancelled);
        }
        self.journal.latest_status(id)
    }

    /// Waits for the background import, if any, to end (`sluice sql "COPY …"`).
    pub fn wait(&self) {
        if let Some(h) = self.thread.lock().expect("import thread").take() {
            let _ = h.join();
        }
    }

    /// Cancels the running import and waits for it to stop (server shutdown).
    pub fn shutdown(&self) {
        if let Some(a) = self.active.lock().expect("import slot").as_ref() {
            a.cancel.store(true, Ordering::Relaxed);
        }
        if let Some(h) = self.thread.lock().expect("import thread").take() {
            let _ = h.join();
        }
    }

    /// The whole import: log rows, pipeline choice, clean-up.
    fn run(
        &self,
        id: &str,
        req: &ImportRequest,
        cancel: &AtomicBool,
        progress: &Progress,
    ) -> std::result::Result<Summary, ImportError> {
        let started = Instant::now();
        let pool = match rayon::ThreadPoolBuilder::new()
            .num_threads(self.settings.workers)
            .thread_name(|i| format!("copy-worker-{i}"))
            .build()
        {
            Ok(p) => p,
            Err(e) => {
                let job_err = ImportError::setup(format!(
                    "Invalid worker count set [value={}]: {e}",
                    self.settings.workers
                ));
                journal_row(
                    &self.journal,
                    id,
                    req,
                    None,
                    Status::Failed,
                    Some(job_err.to_string()),
                    (Some(0), Some(0), 0),
                );
                return Err(job_err);
            }
        };
        let job = Job {
            id,
            req,
            settings: &self.settings,
            cancel,
            journal: &self.journal,
            errors: ErrorSink::new(self.settings.max_recorded_errors),
            progress,
            pool,
            phases: Mutex::new(Vec::new()),
            decompressed: Mutex::new(None),
        };
        job.log(None, Status::Started, None, (None, None, 0));
        let work_dir = self.settings.work_root.join("import").join(id);
        let result = self.pipeline(&job, &work_dir);
        let _ = std::fs::remove_dir_all(&work_dir);
        let errors = job.errors.count();
        let out = match result {
            Ok(mut s) => {
                s.id = id.to_string();
                s.seconds = started.elapsed().as_secs_f64();
                s.phases = job.phases.lock().expect("phases").clone();
                job.log(
                    None,
                    Status::Finished,
                    None,
                    (
                        Some(s.rows_handled as i64),
                        Some(s.rows_imported as i64),
                        errors as i64,
                    ),
                );
                tracing::info!(
                    import = id,
                    rows = s.rows_imported,
                    errors,
                    seconds = s.seconds,
                    "import finished"
                );
                Ok(s)
            }
            Err((e, handled)) => {
                let status = if e.is_cancel() {
                    Status::Cancelled
                } else {
                    Status::Failed
                };
                tracing::warn!(import = id, "import {}: {e}", status.as_str());
                job.log(
                    None,
                    status,
                    Some(e.to_string()),
                    (Some(handled as i64), Some(0), errors as i64),
                );
                Err(e)
            }
        };
        self.flush_errors(&job);
        drop(job.decompressed.lock().expect("source").take());
        let _ = self.journal.trim();
        out
    }

    /// Gives the kept error rows their line numbers and journals them.
    fn flush_errors(&self, job: &Job<'_>) {
        let mut kept = std::mem::take(&mut *job.errors.kept.lock().expect("error sink"));
        if kept.is_empty() {
            return;
        }
        kept.sort_by_key(|e| e.offset);
        // Lines of a compressed source are lines of its decompressed text.
        let path = match job.decompressed.lock().expect("source").as_ref() {
            Some(t) => t.path.clone(),
            None => job.req.path.clone(),
        };
        let lines = match std::fs::File::open(&path).and_then(|f| unsafe { memmap2::Mmap::map(&f) })
        {
            Ok(map) => {
                let offsets: Vec<u64> = kept.iter().map(|e| e.offset).collect();
                csv::line_numbers(&map, &offsets)
            }
            Err(_) => vec![0; kept.len()],
        };
        let ts = now_micros();
        let rows = kept
            .into_iter()
            .zip(lines)
            .map(|(e, line)| ErrorRow {
                ts,
                id: job.id.to_string(),
                line: line as i64,
                byte_offset: e.offset as i64,
                column_name: e.column,
                value: e.value,
                message: e.message,
            })
            .collect();
        if let Err(e) = self.journal.append_errors(rows) {
            tracing::warn!(import = job.id, "could not write import errors: {e}");
        }
    }

    /// Opens the file, analyses it and runs the parallel or serial pipeline.
    /// On error, also returns the rows handled so far.
    fn pipeline(
        &self,
        job: &Job<'_>,
        work_dir: &Path,
    ) -> std::result::Result<Summary, (ImportError, u64)> {
        let req = job.req;
        let path = &req.path;
        let file = std::fs::File::open(path).map_err(|e| {
            let errno = e.raw_os_error().unwrap_or(-1);
            let msg = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "[{errno}] could not open, file does not exist: {}",
                    path.display()
                )
            } else {
                format!(
                    "[{errno}] could not open read-only [file={}]",
                    path.display()
                )
            };
            (ImportError::setup(msg), 0)
        })?;
        let compression =
            source::sniff_file(path).map_err(|e| (ImportError::setup(e.to_string()), 0))?;
        let (file, path) = if compression == source::Compression::None {
            (file, path.clone())
        } else {
            // A gzip or zstd file is decompressed into the work root first:
            // the phases need a plain file they can map and split.
            let out = source::TempFile {
                path: self
                    .settings
                    .work_root
                    .join("import")
                    .join(format!("{}.input", job.id)),
            };
            let _ = std::fs::create_dir_all(self.settings.work_root.join("import"));
            source::decompress(path, &out.path, compression, u64::MAX, &req.file_name)
                .map_err(|e| (ImportError::setup(e.to_string()), 0))?;
            let f = std::fs::File::open(&out.path).map_err(|e| {
                (
                    ImportError::setup(format!("could not open the decompressed input: {e}")),
                    0,
                )
            })?;
            let p = out.path.clone();
            *job.decompressed.lock().expect("source") = Some(out);
            (f, p)
        };
        let path = &path;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return Err((
                ImportError::setup(format!(
                    "ignored empty input file [file='{}']",
                    path.display()
                )),
                0,
            ));
        }
        // SAFETY: the file is opened read-only and COPY documents that the
        // source must not change while it is imported.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| {
            (
                ImportError::setup(format!(
                    "could not read from file '{}' to analyze structure: {e}",
                    path.display()
                )),
                0,
            )
        })?;
        job.progress.bytes_total.store(len, Ordering::Relaxed);
        let existing = self.catalog.get(&req.schema, &req.table);
        if existing.is_none() && req.options.must_exist {
            return Err((
                ImportError::setup(format!("table does not exist [table={}]", req.table)),
                0,
            ));
        }
        let partitioned = match &existing {
            Some(t) => t.meta().partition_by != PartitionBy::None,
            None => req.partition_by.is_some_and(|p| p != PartitionBy::None),
        };
        let meta = existing.as_ref().map(|t| t.meta());
        if partitioned {
            let plan = job
                .phase(Phase::AnalyzeFileStructure, || {
                    analyze::run(job, &map, meta.as_ref())
                })
                .map_err(|e| (e, 0))?;
            self.parallel(job, &map, plan, work_dir)
        } else {
            let plan = analyze::run(job, &map, meta.as_ref()).map_err(|e| (e, 0))?;
            serial::run(job, &map, &plan, &self.catalog)
        }
    }

    fn parallel(
        &self,
        job: &Job<'_>,
        map: &[u8],
        plan: analyze::Analysis,
        work_dir: &Path,
    ) -> std::result::Result<Summary, (ImportError, u64)> {
        let chunks = job
            .phase(Phase::BoundaryCheck, || {
                boundary::run(job, map, plan.structure.data_start)
            })
            .map_err(|e| (e, 0))?;
        let index = job
            .phase(Phase::Indexing, || {
                indexing::run(job, map, &plan, &chunks, work_dir)
            })
            .map_err(|e| (e, 0))?;
        let handled = index.rows;
        let index_records = index.records;
        if index.partitions.is_empty() {
            let message = if index.records > 0 {
                "All rows were skipped. Possible reasons: timestamp format mismatch. The rejected lines are in sys.text_import_errors."
            } else {
                "No rows in input file to import."
            };
            return Err((ImportError::setup(message), handled));
        }
        let target =
            attach::Target::prepare(&self.catalog, job, &plan).map_err(|e| (e, handled))?;
        let written = job
            .phase(Phase::PartitionImport, || {
                partition_import::run(job, map, &plan, index, &target)
            })
            .map_err(|e| (e, handled))?;
        let partitions = written.files.len();
        let imported = written.rows;
        let summary = Summary::counts(
            job,
            (index_records, handled, imported),
            partitions,
            map.len(),
        )
        .with(&plan, &written.files);
        job.phase(Phase::AttachPartitions, || {
            target.attach(&self.catalog, &plan, written.files)
        })
        .map_err(|e| (e, handled))?;
        Ok(summary)
    }
}

/// Appends one row to `sys.text_import_log`. A journal that cannot be
/// written must not fail the import: it is reported in the server log.
fn journal_row(
    journal: &ImportLog,
    id: &str,
    req: &ImportRequest,
    phase: Option<Phase>,
    status: Status,
    message: Option<String>,
    counts: (Option<i64>, Option<i64>, i64),
) {
    let row = LogRow {
        ts: now_micros(),
        id: id.to_string(),
        table_name: req.table_display(),
        file: req.file_name.clone(),
        phase,
        status,
        message,
        rows_handled: counts.0,
        rows_imported: counts.1,
        errors: counts.2,
    };
    if let Err(e) = journal.append(row) {
        tracing::warn!(import = id, "could not write the import log: {e}");
    }
}

fn rand_id() -> u64 {
    // A random positive 63-bit id, as QuestDB's ids are.
    let u = uuid::Uuid::new_v4().as_u128();
    ((u >> 64) as u64 ^ u as u64) & (i64::MAX as u64)
}
