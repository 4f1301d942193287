//! The context every phase of one import gets ([`Job`]: request, settings,
//! cancel flag, journal, error sink, worker pool), the phase runner that
//! logs each phase, the importer's [`Settings`], the [`Progress`] the CLI
//! shows and the [`Summary`] of a finished import.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::csv::Dialect;
use super::error::{ErrorSink, ImportError};
use super::log::{ImportLog, LogRow, Phase, Status, now_micros};
use super::{ImportRequest, analyze, source};
use crate::config::{Config, TextLoaderFormats};

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
    /// Decoded rows of grouped small partitions held at once, over all
    /// workers (0: every partition alone).
    pub decode_memory: usize,
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
            decode_memory: c.copy_decode_memory as usize,
        }
    }
}

/// Progress of one import, live: what `sys.copy_progress` and the CLI's
/// bar show. Counters only grow while the import runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// The running phase; `None` before the first one (and in the serial
    /// importer, which has none).
    pub phase: Mutex<Option<Phase>>,
    /// Input bytes read (compressed input: of the decompressed text).
    pub bytes_done: AtomicU64,
    pub bytes_total: AtomicU64,
    /// Records indexed (known once indexing ends) and decoded so far.
    pub rows_total: AtomicU64,
    pub rows_handled: AtomicU64,
    pub rows_imported: AtomicU64,
    pub errors: AtomicU64,
    /// Set when the import ended, however.
    pub done: AtomicBool,
    /// How it ended (set just before `done`).
    pub outcome: Mutex<Option<super::log::Status>>,
    /// The table and file, for `sys.copy_progress`.
    pub table: Mutex<String>,
    pub file: Mutex<String>,
    /// When the import started.
    pub started: Mutex<Option<Instant>>,
}

/// The share of a parallel import's time each phase takes, measured on the
/// import bench (10M weather rows: indexing 0.54 s, partition_import
/// 3.71 s of 4.3 s; after the decode grouping 0.79 s and 4.26 s of 5.35 s,
/// the same shares): the weights that make one fraction roughly linear in
/// time.
const INDEXING_START: f64 = 0.02;
const PARTITION_IMPORT_START: f64 = 0.15;
const ATTACH_START: f64 = 0.99;

impl Progress {
    /// How much of the import is done, 0 to 1: monotone, since each phase
    /// starts where the one before ends and its own counters only grow.
    pub fn fraction(&self) -> f64 {
        if self.done.load(Ordering::Relaxed) {
            return 1.0;
        }
        let ratio = |done: &AtomicU64, total: &AtomicU64| {
            let total = total.load(Ordering::Relaxed);
            if total == 0 {
                0.0
            } else {
                (done.load(Ordering::Relaxed) as f64 / total as f64).min(1.0)
            }
        };
        let bytes = ratio(&self.bytes_done, &self.bytes_total);
        let rows = ratio(&self.rows_handled, &self.rows_total);
        let between = |from: f64, to: f64, f: f64| from + (to - from) * f;
        match *self.phase.lock().expect("progress") {
            // The serial importer reads the file once, with no phases.
            None => between(0.0, ATTACH_START, bytes),
            Some(Phase::AnalyzeFileStructure) => 0.0,
            Some(Phase::BoundaryCheck) => INDEXING_START / 2.0,
            Some(Phase::Indexing) => between(INDEXING_START, PARTITION_IMPORT_START, bytes),
            Some(Phase::PartitionImport) => between(PARTITION_IMPORT_START, ATTACH_START, rows),
            Some(Phase::AttachPartitions) => ATTACH_START,
        }
    }

    /// Seconds since the import started.
    pub fn elapsed(&self) -> f64 {
        self.started
            .lock()
            .expect("progress")
            .map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    /// Seconds still to go at the pace so far (`None` before there is a
    /// pace to go by).
    pub fn eta(&self) -> Option<f64> {
        let f = self.fraction();
        let elapsed = self.elapsed();
        (f >= 0.02 && elapsed > 0.0).then(|| elapsed * (1.0 - f) / f)
    }
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
    /// A dry run's findings (nothing was written).
    pub dry_run: Option<super::DryRun>,
    /// What the final log row says of a finished import (files skipped).
    pub note: Option<String>,
}

impl Summary {
    /// What a pipeline knows when it ends; the driver adds id and times.
    pub(super) fn counts(
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
    pub(super) fn with(
        mut self,
        a: &analyze::Analysis,
        files: &[crate::storage::DataFile],
    ) -> Summary {
        self.header = a.structure.header;
        self.with_files(files)
    }

    /// Adds the time range of the written files.
    pub(super) fn with_files(mut self, files: &[crate::storage::DataFile]) -> Summary {
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
    pub pool: &'a rayon::ThreadPool,
    pub(super) phases: Mutex<Vec<(Phase, f64)>>,
    /// Which file of a COPY of several this is (it names the files written).
    pub part: Option<usize>,
    /// Error rows of the files of a COPY of several, with their lines.
    pub(super) file_errors: Mutex<Vec<super::log::ErrorRow>>,
    /// The ledger entry of the file being imported (set when it is opened).
    pub(super) load: Mutex<Option<super::ledger::Fingerprint>>,
    /// The files the import loaded or skipped, for `sys.copy_history`
    /// once it has committed.
    pub(super) history: Mutex<Vec<super::log::HistoryRow>>,
    /// The local file the phases read when it is not `req.path`: a source
    /// on object storage downloaded, or a compressed one decompressed,
    /// into the work root.
    pub(super) local_input: Mutex<Option<source::TempFile>>,
    /// The dialect the analysis settled on (given or sniffed).
    pub(super) dialect: std::sync::OnceLock<Dialect>,
    /// What the import decided about its input (encoding, dialect,
    /// preamble): the analysis phase's log row says it.
    pub(super) notes: Mutex<Vec<String>>,
}

impl<'a> Job<'a> {
    /// The ledger entries this job's commit records.
    pub(super) fn loads(&self) -> Vec<crate::storage::delta::Load> {
        self.load
            .lock()
            .expect("load")
            .iter()
            .map(|f| f.load.clone())
            .collect()
    }

    /// Notes that `file`'s job loaded `rows` rows of its file (or skipped
    /// it), for `sys.copy_history`.
    pub(super) fn record(&self, file: &Job<'_>, rows: u64, status: Status) {
        let Some(f) = file.load.lock().expect("load").clone() else {
            return;
        };
        self.history
            .lock()
            .expect("history")
            .push(super::log::HistoryRow {
                ts: 0,
                id: self.id.to_string(),
                table_name: self.req.table_display(),
                file: file.req.file_name.clone(),
                size: f.size as i64,
                modified: f.modified_us,
                fingerprint: f.load.app_id,
                rows_imported: rows as i64,
                status,
            });
    }

    /// The job for one file of a COPY of several: the same import (id,
    /// log, progress, cancel, workers), its own request and error rows.
    pub(super) fn for_file(
        &self,
        req: &'a ImportRequest,
        part: usize,
        max_errors: usize,
    ) -> Job<'a> {
        Job {
            id: self.id,
            req,
            settings: self.settings,
            cancel: self.cancel,
            journal: self.journal,
            errors: ErrorSink::new(max_errors),
            progress: self.progress,
            pool: self.pool,
            phases: Mutex::new(Vec::new()),
            part: Some(part),
            file_errors: Mutex::new(Vec::new()),
            load: Mutex::new(None),
            history: Mutex::new(Vec::new()),
            local_input: Mutex::new(None),
            dialect: std::sync::OnceLock::new(),
            notes: Mutex::new(Vec::new()),
        }
    }

    /// The bytes that split the file's records: what the analysis chose,
    /// or what the request gave before it has run.
    pub fn dialect(&self) -> Dialect {
        self.dialect
            .get()
            .copied()
            .unwrap_or_else(|| self.req.dialect.or_defaults())
    }

    /// Adds a line to what the analysis phase's log row says.
    pub(super) fn note(&self, line: String) {
        self.notes.lock().expect("notes").push(line);
    }

    /// The stem of the files this job writes in each partition.
    pub fn file_stem(&self) -> String {
        match self.part {
            Some(n) => format!("imp-{}-{n}", self.id),
            None => format!("imp-{}", self.id),
        }
    }

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

    pub(super) fn log(
        &self,
        phase: Option<Phase>,
        status: Status,
        message: Option<String>,
        counts: (Option<i64>, Option<i64>, i64),
    ) {
        // A dry run writes nothing, not even log rows.
        if self.req.options.dry_run {
            return;
        }
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
        crate::metrics::metrics().phase(name.as_str(), secs);
        tracing::info!(
            import = self.id,
            table = %self.req.table,
            phase = name.as_str(),
            seconds = secs,
            "phase finished"
        );
        let notes = std::mem::take(&mut *self.notes.lock().expect("notes"));
        self.log(
            Some(name),
            Status::Finished,
            (!notes.is_empty()).then(|| notes.join("; ")),
            (None, None, (self.errors.count() - errors_before) as i64),
        );
        Ok(out)
    }
}

/// Appends one row to `sys.text_import_log`. A journal that cannot be
/// written must not fail the import: it is reported in the server log.
pub(super) fn journal_row(
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
