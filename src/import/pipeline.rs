//! The driver of one import: the log rows around it, opening (and
//! decompressing) the file, the choice of the parallel or serial pipeline,
//! the phases in order, and the error rows at the end.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::error::{ErrorSink, ImportError};
use super::job::{Job, Progress, Summary, journal_row};
use super::log::{ErrorRow, Phase, Status, now_micros};
use super::{
    DryRun, ImportRequest, Importer, analyze, attach, boundary, csv, indexing, partition_import,
    serial, source,
};
use crate::time::PartitionBy;

/// Whether the import's target is partitioned (and takes the parallel
/// pipeline): the existing table's unit, else the statement's.
pub(super) fn partitioned(job: &Job<'_>, existing: Option<&crate::catalog::Table>) -> bool {
    match existing {
        Some(t) => t.meta().partition_by != PartitionBy::None,
        None => job.req.partition_by.is_some_and(|p| p != PartitionBy::None),
    }
}

impl Importer {
    /// The whole import: log rows, pipeline choice, clean-up.
    pub(super) fn run(
        &self,
        id: &str,
        req: &ImportRequest,
        cancel: &AtomicBool,
        progress: &Progress,
    ) -> std::result::Result<Summary, ImportError> {
        let started = Instant::now();
        *progress.started.lock().expect("progress") = Some(started);
        *progress.table.lock().expect("progress") = req.table.clone();
        *progress.file.lock().expect("progress") = req.file_name.clone();
        let pool = self.worker_pool(id, req)?;
        let job = Job {
            id,
            req,
            settings: &self.settings,
            cancel,
            journal: &self.journal,
            errors: ErrorSink::new(self.settings.max_recorded_errors),
            progress,
            pool: &pool,
            phases: Mutex::new(Vec::new()),
            part: None,
            file_errors: Mutex::new(Vec::new()),
            load: Mutex::new(None),
            history: Mutex::new(Vec::new()),
            local_input: Mutex::new(None),
            dialect: std::sync::OnceLock::new(),
            notes: Mutex::new(Vec::new()),
        };
        job.log(None, Status::Started, None, (None, None, 0));
        if !req.options.dry_run {
            crate::metrics::metrics()
                .imports_started
                .fetch_add(1, Ordering::Relaxed);
        }
        let work_dir = self.settings.work_root.join("import").join(id);
        let result = self.pipeline(&job, &work_dir);
        let _ = std::fs::remove_dir_all(&work_dir);
        let errors = job.errors.count();
        // The final log row goes last: a client that polls the log and
        // sees it finds the error rows written and the slot free.
        let (mut out, status, message, counts) = outcome(&job, started, result, errors);
        self.keep_rows_and_history(&job, &mut out);
        progress.errors.store(errors, Ordering::Relaxed);
        if !req.options.dry_run {
            count_end(status, progress, errors);
        }
        *progress.outcome.lock().expect("progress") = Some(status);
        // From here the slot counts as free (`reserve` waits for it).
        progress.done.store(true, Ordering::Release);
        job.log(None, status, message, counts);
        let _ = self.journal.trim();
        out
    }

    /// The rayon pool an import's workers run on (`cairo.sql.copy.worker.count`).
    fn worker_pool(
        &self,
        id: &str,
        req: &ImportRequest,
    ) -> std::result::Result<rayon::ThreadPool, ImportError> {
        match rayon::ThreadPoolBuilder::new()
            .num_threads(self.settings.workers)
            .thread_name(|i| format!("copy-worker-{i}"))
            .build()
        {
            Ok(p) => Ok(p),
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
                Err(job_err)
            }
        }
    }

    /// The rows an import rejected, into `sys.text_import_errors` (or a dry
    /// run's report), and what its commit loaded, into the copy history.
    fn keep_rows_and_history(
        &self,
        job: &Job<'_>,
        out: &mut std::result::Result<Summary, ImportError>,
    ) {
        let (id, req) = (job.id, job.req);
        let mut rows = self.error_rows(job);
        rows.append(&mut job.file_errors.lock().expect("file errors"));
        match out {
            Ok(Summary {
                dry_run: Some(report),
                ..
            }) => report.rejected = rows,
            // A failed dry run reports its error alone.
            _ if req.options.dry_run => {}
            _ => {
                if !rows.is_empty()
                    && let Err(e) = self.journal.append_errors(rows)
                {
                    tracing::warn!(import = id, "could not write import errors: {e}");
                }
            }
        }
        drop(job.local_input.lock().expect("source").take());
        // What the commit loaded, before the final row (a client that sees
        // it finds the history written).
        if let Ok(s) = &*out
            && !req.options.dry_run
        {
            if job.history.lock().expect("history").is_empty() {
                job.record(job, s.rows_imported, Status::Finished);
            }
            let ts = now_micros();
            let rows: Vec<_> = std::mem::take(&mut *job.history.lock().expect("history"))
                .into_iter()
                .map(|r| super::log::HistoryRow { ts, ..r })
                .collect();
            if let Err(e) = self.journal.append_history(rows) {
                tracing::warn!(import = id, "could not write the copy history: {e}");
            }
        }
    }
    /// The kept error rows with their line numbers, in file order: for
    /// `sys.text_import_errors`, or a dry run's report.
    pub(super) fn error_rows(&self, job: &Job<'_>) -> Vec<ErrorRow> {
        let mut kept = std::mem::take(&mut *job.errors.kept.lock().expect("error sink"));
        if kept.is_empty() {
            return Vec::new();
        }
        kept.sort_by_key(|e| e.offset);
        // Lines of a compressed source are lines of its decompressed text.
        let path = match job.local_input.lock().expect("source").as_ref() {
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
        kept.into_iter()
            .zip(lines)
            .map(|(e, line)| ErrorRow {
                ts,
                id: job.id.to_string(),
                file: job.req.file_name.clone(),
                line: line as i64,
                byte_offset: e.offset as i64,
                column_name: e.column,
                value: e.value,
                message: e.message,
            })
            .collect()
    }

    /// Copies a source on object storage into the work root, where the
    /// phases can map it (stopping when the import is cancelled).
    fn download(
        &self,
        job: &Job<'_>,
        src: &super::RemoteSource,
        scratch: &Path,
    ) -> std::result::Result<(source::TempFile, std::time::SystemTime), (ImportError, u64)> {
        let setup = |m: String| (ImportError::setup(m), 0);
        let _ = std::fs::create_dir_all(scratch);
        let out = source::TempFile {
            path: scratch.join(format!("{}.download", job.file_stem())),
        };
        use crate::storage::object::{Fetched, download};
        match download(&src.bucket, &src.key, &out.path, || job.cancelled()) {
            Ok(Fetched::Done { modified, .. }) => Ok((out, modified)),
            Ok(Fetched::Stopped) => Err((
                ImportError::Cancelled {
                    phase: Phase::AnalyzeFileStructure,
                },
                0,
            )),
            Ok(Fetched::Missing) => Err(setup(format!(
                "could not open, file does not exist: {}",
                job.req.file_name
            ))),
            Err(e) => Err(setup(format!(
                "could not download the source [file={}]: {e}",
                job.req.file_name
            ))),
        }
    }

    /// Opens the file (or files), analyses it and runs the parallel or
    /// serial pipeline. On error, also returns the rows handled so far.
    fn pipeline(
        &self,
        job: &Job<'_>,
        work_dir: &Path,
    ) -> std::result::Result<Summary, (ImportError, u64)> {
        if !job.req.options.inputs.is_empty() {
            return self.many(job, work_dir);
        }
        let Some(map) = self.open(job)? else {
            return Ok(empty(job));
        };
        let existing = self.existing(job)?;
        if self.loaded_before(job, existing.as_deref())? {
            job.record(job, 0, Status::Skipped);
            return Ok(Summary {
                note: Some(format!(
                    "skipped: the table loaded this file before [file={}]; WITH FORCE true loads it again",
                    job.req.file_name
                )),
                ..Summary::default()
            });
        }
        if super::parquet::is_parquet(&map) {
            return self.parquet(job, bytes::Bytes::from_owner(map), existing);
        }
        let meta = existing.as_ref().map(|t| t.meta());
        if partitioned(job, existing.as_deref()) {
            let plan = job.phase(Phase::AnalyzeFileStructure, || {
                analyze::run(job, &map, meta.as_ref())
            });
            match plan {
                Err(ImportError::Empty) => Ok(empty(job)),
                Err(e) => Err((e, 0)),
                Ok(plan) => self.parallel(job, &map, plan, work_dir),
            }
        } else {
            match analyze::run(job, &map, meta.as_ref()) {
                Err(ImportError::Empty) => Ok(empty(job)),
                Err(e) => Err((e, 0)),
                Ok(plan) => serial::run(job, &map, &plan, &self.catalog),
            }
        }
    }

    /// Whether `table` loaded the job's file before (since its last
    /// TRUNCATE), unless FORCE: the load ledger. The file must be open.
    pub(super) fn loaded_before(
        &self,
        job: &Job<'_>,
        table: Option<&crate::catalog::Table>,
    ) -> std::result::Result<bool, (ImportError, u64)> {
        let (Some(table), false) = (table, job.req.options.force || job.req.options.dry_run) else {
            return Ok(false);
        };
        let Some(f) = job.load.lock().expect("load").clone() else {
            return Ok(false);
        };
        table
            .loaded(&f.load.app_id)
            .map_err(|e| (ImportError::setup(e.to_string()), 0))
    }

    /// The target table when it exists; fails when it must and does not.
    pub(super) fn existing(
        &self,
        job: &Job<'_>,
    ) -> std::result::Result<Option<std::sync::Arc<crate::catalog::Table>>, (ImportError, u64)>
    {
        let req = job.req;
        let existing = self.catalog.get(&req.schema, &req.table);
        if existing.is_none() && req.options.must_exist {
            return Err((
                ImportError::setup(format!("table does not exist [table={}]", req.table)),
                0,
            ));
        }
        Ok(existing)
    }

    /// The job's input as a plain local file, mapped: downloaded from
    /// object storage and decompressed into the work root when it needs
    /// to be (kept in `job.local_input`), and rewritten as UTF-8 when it is
    /// in another encoding. `None`: the file is empty.
    pub(super) fn open(
        &self,
        job: &Job<'_>,
    ) -> std::result::Result<Option<memmap2::Mmap>, (ImportError, u64)> {
        let req = job.req;
        let scratch = self.settings.work_root.join("import");
        let (downloaded, modified) = match &req.options.source {
            Some(src) => {
                let (file, modified) = self.download(job, src, &scratch)?;
                (Some(file), Some(modified))
            }
            None => (None, None),
        };
        let path = downloaded.as_ref().map_or(&req.path, |d| &d.path);
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
        // The ledger entry: of the file as it is, before any decompression.
        let load = super::ledger::fingerprint(&req.file_name, path, modified).map_err(|e| {
            (
                ImportError::setup(format!("could not read [file={}]: {e}", req.file_name)),
                0,
            )
        })?;
        *job.load.lock().expect("load") = Some(load);
        let compression =
            source::sniff_file(path).map_err(|e| (ImportError::setup(e.to_string()), 0))?;
        let (file, path) = if compression == source::Compression::None {
            let p = path.clone();
            if let Some(d) = downloaded {
                *job.local_input.lock().expect("source") = Some(d);
            }
            (file, p)
        } else {
            // A gzip or zstd file is decompressed into the work root first:
            // the phases need a plain file they can map and split.
            let out = source::TempFile {
                path: self
                    .settings
                    .work_root
                    .join("import")
                    .join(format!("{}.input", job.file_stem())),
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
            *job.local_input.lock().expect("source") = Some(out);
            drop(downloaded);
            (f, p)
        };
        let path = &path;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return Ok(None);
        }
        let (file, path) = self.as_utf8(job, file, path)?;
        let path = &path;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
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
        job.progress.bytes_total.fetch_add(len, Ordering::Relaxed);
        Ok(Some(map))
    }

    /// The input as UTF-8: a file in another encoding (ENCODING, a UTF-16
    /// byte-order mark, or bytes no UTF-8 text has) is rewritten into the
    /// work root first; the choice goes into the import log.
    fn as_utf8(
        &self,
        job: &Job<'_>,
        file: std::fs::File,
        path: &Path,
    ) -> std::result::Result<(std::fs::File, std::path::PathBuf), (ImportError, u64)> {
        use std::io::Read;
        let mut head = Vec::with_capacity(64 << 10);
        let read = (&file).take(64 << 10).read_to_end(&mut head);
        let setup = |m: String| (ImportError::setup(m), 0);
        read.map_err(|e| setup(format!("could not read [file={}]: {e}", job.req.file_name)))?;
        if super::parquet::is_parquet(&head) {
            return Ok((file, path.to_path_buf()));
        }
        let (encoding, why) = super::encoding::detect(&head, job.req.options.encoding);
        if encoding == super::encoding::TextEncoding::Utf8 {
            if !why.is_empty() {
                job.note(format!("encoding utf-8 ({why})"));
            }
            return Ok((file, path.to_path_buf()));
        }
        job.note(format!("encoding {} ({why})", encoding.name()));
        let dir = self.settings.work_root.join("import");
        let _ = std::fs::create_dir_all(&dir);
        let out = source::TempFile {
            path: dir.join(format!("{}.utf8", job.file_stem())),
        };
        super::encoding::transcode(path, &out.path, encoding).map_err(|e| {
            setup(format!(
                "could not read the file as {} [file={}]: {e}",
                encoding.name(),
                job.req.file_name
            ))
        })?;
        let f = std::fs::File::open(&out.path)
            .map_err(|e| setup(format!("could not open the UTF-8 input: {e}")))?;
        let p = out.path.clone();
        // The rewritten file lives as long as the job (a decompressed one
        // it was made from is no longer needed).
        *job.local_input.lock().expect("source") = Some(out);
        Ok((f, p))
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
        job.progress.rows_total.store(handled, Ordering::Relaxed);
        job.progress
            .errors
            .store(job.errors.count(), Ordering::Relaxed);
        let dry = job.req.options.dry_run;
        if index.partitions.is_empty() {
            if index.records > 0 {
                return Err((
                    ImportError::setup(
                        "All rows were skipped. Possible reasons: timestamp format mismatch. The rejected lines are in sys.text_import_errors.",
                    ),
                    handled,
                ));
            }
            // A header and no rows: a new table is created from the
            // header, empty; an existing one is left as it is.
            if plan.plan.new_table && !dry {
                let target =
                    attach::Target::prepare(&self.catalog, job, true).map_err(|e| (e, handled))?;
                job.phase(Phase::AttachPartitions, || {
                    target.attach(&self.catalog, &plan.plan.meta, Vec::new(), job.loads())
                })
                .map_err(|e| (e, handled))?;
            }
            let mut summary = Summary::counts(job, (0, 0, 0), 0, map.len()).with(&plan, &[]);
            summary.note = Some(format!(
                "no rows: the file has a header only [file={}]",
                job.req.file_name
            ));
            return Ok(summary);
        }
        let target = match dry {
            true => None,
            false => Some(
                attach::Target::prepare(&self.catalog, job, plan.plan.new_table)
                    .map_err(|e| (e, handled))?,
            ),
        };
        let written = job
            .phase(Phase::PartitionImport, || {
                partition_import::run(job, map, &plan, index, target.as_ref())
            })
            .map_err(|e| (e, handled))?;
        let partitions = written.files.len() + written.counted.len();
        let imported = written.rows;
        let mut summary = Summary::counts(
            job,
            (index_records, handled, imported),
            partitions,
            map.len(),
        )
        .with(&plan, &written.files);
        let Some(target) = target else {
            let mut report = DryRun::new(&plan, map, job.req.dialect, job.req.header.is_some());
            report.partitions = written.counted;
            summary.dry_run = Some(report);
            return Ok(summary);
        };
        job.phase(Phase::AttachPartitions, || {
            target.attach(&self.catalog, &plan.plan.meta, written.files, job.loads())
        })
        .map_err(|e| (e, handled))?;
        Ok(summary)
    }
}

/// The finished import of a file with no records: nothing changes.
pub(super) fn empty(job: &Job<'_>) -> Summary {
    Summary {
        note: Some(format!(
            "empty file: nothing to import [file={}]",
            job.req.file_name
        )),
        ..Summary::default()
    }
}

/// How an import ended: its summary or error, its final status, message
/// and row counts (handled, imported, rejected).
type Outcome = (
    std::result::Result<Summary, ImportError>,
    Status,
    Option<String>,
    (Option<i64>, Option<i64>, i64),
);

/// The [`Outcome`] of a pipeline's result, logged.
fn outcome(
    job: &Job<'_>,
    started: Instant,
    result: std::result::Result<Summary, (ImportError, u64)>,
    errors: u64,
) -> Outcome {
    let (id, req) = (job.id, job.req);
    match result {
        Ok(mut s) => {
            s.id = id.to_string();
            s.seconds = started.elapsed().as_secs_f64();
            s.phases = job.phases.lock().expect("phases").clone();
            tracing::info!(
                import = id,
                table = %req.table,
                rows = s.rows_imported,
                errors,
                seconds = s.seconds,
                "import finished"
            );
            let counts = (
                Some(s.rows_handled as i64),
                Some(s.rows_imported as i64),
                errors as i64,
            );
            let note = s.note.clone();
            (Ok(s), Status::Finished, note, counts)
        }
        Err((e, handled)) => {
            let status = if e.is_cancel() {
                Status::Cancelled
            } else {
                Status::Failed
            };
            tracing::warn!(
                import = id,
                table = %req.table,
                seconds = started.elapsed().as_secs_f64(),
                "import {}: {e}",
                status.as_str()
            );
            let message = Some(e.to_string());
            let counts = (Some(handled as i64), Some(0), errors as i64);
            (Err(e), status, message, counts)
        }
    }
}

/// The import's end in the process's counters.
fn count_end(status: Status, progress: &Progress, errors: u64) {
    use crate::metrics::ImportEnd;
    let end = match status {
        Status::Finished | Status::Skipped => Some(ImportEnd::Finished),
        Status::Failed => Some(ImportEnd::Failed),
        Status::Cancelled => Some(ImportEnd::Cancelled),
        Status::Started => None,
    };
    if let Some(end) = end {
        crate::metrics::metrics().import_ended(
            end,
            progress.rows_imported.load(Ordering::Relaxed),
            progress.bytes_done.load(Ordering::Relaxed),
            errors,
        );
    }
}
