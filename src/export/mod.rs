//! COPY … TO 'dir' WITH FORMAT PARQUET: the asynchronous Parquet export.
//! The engine plans the rows and hands their stream here; a thread of the
//! export slot writes them into scratch space below the export root
//! ([`writer`]), then renames the finished directory into place, so the
//! destination appears whole or not at all. Every step is a row of
//! `sys.copy_export_log` ([`log`]); `COPY 'id' CANCEL` stops the export
//! between batches (or while its query still computes the first one).

pub mod encodings;
pub mod log;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::import::log::{Status, now_micros};
use log::{ExportLog, ExportPhase, ExportRow};
pub use writer::Split;
use writer::{FilesWriter, Written};

/// Scratch directories of exports are named `.export-<id>` in the root.
const SCRATCH_PREFIX: &str = ".export-";

/// One export, ready to run.
pub struct ExportRequest {
    /// The source table's name, or `query`.
    pub table_name: String,
    /// The destination as written in the statement.
    pub export_path: String,
    /// The destination directory, resolved below the root.
    pub dest: PathBuf,
    pub schema: SchemaRef,
    pub rows: BoxStream<'static, Result<RecordBatch>>,
    pub props: WriterProperties,
    pub split: Option<Split>,
}

struct Active {
    id: String,
    cancel: CancellationToken,
}

/// The one export slot and the thread running it.
pub struct Exporter {
    root: PathBuf,
    memory: usize,
    journal: Arc<ExportLog>,
    active: Mutex<Option<Active>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Opens the export root and removes the scratch of exports that died
    /// with the last process.
    pub fn open(root: &Path, memory: usize, journal: Arc<ExportLog>) -> Result<Exporter> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
            let entry = entry.map_err(|e| Error::io(root, e))?;
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(SCRATCH_PREFIX)
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(Exporter {
            root: root.to_path_buf(),
            memory,
            journal,
            active: Mutex::new(None),
            thread: Mutex::new(None),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn journal(&self) -> &Arc<ExportLog> {
        &self.journal
    }

    /// Whether `name` (one path segment) is scratch space of an export.
    pub fn is_scratch(name: &str) -> bool {
        name.starts_with(SCRATCH_PREFIX)
    }

    /// Starts the export in the background; returns its id at once. One
    /// export runs at a time, as one import does.
    pub fn submit(self: &Arc<Self>, req: ExportRequest) -> Result<String> {
        let cancel = CancellationToken::new();
        let id = {
            let mut active = self.active.lock().expect("export slot");
            if let Some(a) = active.as_ref() {
                return Err(Error::invalid(format!(
                    "unable to process the export request - another export may be in progress [activeExportId={}]",
                    a.id
                )));
            }
            let id = crate::import::new_id();
            *active = Some(Active {
                id: id.clone(),
                cancel: cancel.clone(),
            });
            id
        };
        if let Some(h) = self.thread.lock().expect("export thread").take() {
            let _ = h.join();
        }
        let handle = tokio::runtime::Handle::current();
        let this = Arc::clone(self);
        let job_id = id.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("export-{id}"))
            .spawn(move || {
                this.run(&job_id, req, &cancel, &handle);
                let mut active = this.active.lock().expect("export slot");
                if active.as_ref().is_some_and(|a| a.id == job_id) {
                    *active = None;
                }
            });
        match spawned {
            Ok(h) => *self.thread.lock().expect("export thread") = Some(h),
            Err(e) => {
                *self.active.lock().expect("export slot") = None;
                return Err(Error::Internal(format!(
                    "could not start the export thread: {e}"
                )));
            }
        }
        Ok(id)
    }

    /// `COPY 'id' CANCEL` of an export: the status to report (`None`: no
    /// such export).
    pub fn cancel(&self, id: &str) -> Option<Status> {
        if let Some(a) = self.active.lock().expect("export slot").as_ref()
            && a.id == id
        {
            a.cancel.cancel();
            return Some(Status::Cancelled);
        }
        self.journal.latest_status(id)
    }

    /// Cancels the running export and waits for it to stop.
    pub fn shutdown(&self) {
        if let Some(a) = self.active.lock().expect("export slot").as_ref() {
            a.cancel.cancel();
        }
        if let Some(h) = self.thread.lock().expect("export thread").take() {
            let _ = h.join();
        }
    }

    fn run(
        &self,
        id: &str,
        req: ExportRequest,
        cancel: &CancellationToken,
        handle: &tokio::runtime::Handle,
    ) {
        let row = |phase, status, written: Written, message: Option<String>| ExportRow {
            ts: now_micros(),
            id: id.to_string(),
            table_name: req.table_name.clone(),
            export_path: req.export_path.clone(),
            num_exported_files: written.files as i64,
            num_exported_rows: written.rows as i64,
            phase,
            status,
            errors: (status == Status::Failed) as i64,
            message,
        };
        let started = std::time::Instant::now();
        let log = |r: ExportRow| {
            if let Err(e) = self.journal.append(r) {
                tracing::warn!(export = id, table = %req.table_name, "export log: {e}");
            }
        };
        log(row(
            ExportPhase::None,
            Status::Started,
            Written::default(),
            None,
        ));
        let scratch = self.root.join(format!("{SCRATCH_PREFIX}{id}"));
        let mut phase = ExportPhase::ConvertingPartitions;
        let mut written = Written::default();
        let result = (|| -> Result<Written> {
            log(row(phase, Status::Started, written, None));
            std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
            let mut files = FilesWriter::new(
                &scratch,
                Arc::clone(&req.schema),
                req.props.clone(),
                req.split.clone(),
                self.memory,
            )?;
            write_rows(&mut files, req.rows, cancel, handle, &mut written)?;
            written = files.finish()?;
            log(row(phase, Status::Finished, written, None));
            phase = ExportPhase::MoveFiles;
            log(row(phase, Status::Started, written, None));
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            move_into_place(&scratch, &req.dest)?;
            log(row(phase, Status::Finished, written, None));
            Ok(written)
        })();
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(written) => {
                tracing::info!(
                    export = id,
                    table = %req.table_name,
                    rows = written.rows,
                    files = written.files,
                    seconds,
                    "export finished"
                );
                log(row(
                    ExportPhase::Success,
                    Status::Finished,
                    written,
                    Some(format!(
                        "exported {} rows to {} files",
                        written.rows, written.files
                    )),
                ))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                let (status, message) = match e {
                    Error::Cancelled => (
                        Status::Cancelled,
                        format!("export cancelled [phase={}]", phase.as_str()),
                    ),
                    e => (
                        Status::Failed,
                        format!("export failed [phase={}]: {e}", phase.as_str()),
                    ),
                };
                tracing::warn!(export = id, table = %req.table_name, seconds, "{message}");
                // The final row, like the first, is the export's own (its
                // message names the phase).
                log(row(ExportPhase::None, status, written, Some(message)));
            }
        }
    }
}

/// Writes a query's rows into `files`: the rows are read on the runtime
/// while this thread encodes, so reading and encoding overlap; `written`
/// follows what is written, for the log of a failure.
fn write_rows(
    files: &mut FilesWriter,
    mut rows: BoxStream<'static, Result<RecordBatch>>,
    cancel: &CancellationToken,
    handle: &tokio::runtime::Handle,
    written: &mut Written,
) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let token = cancel.clone();
    let pump = handle.spawn(async move {
        loop {
            let next = tokio::select! {
                b = rows.next() => b,
                _ = token.cancelled() => break,
            };
            // At the end, or when the writer stopped, the plan (and the
            // table snapshots it pins) goes.
            let Some(b) = next else { break };
            if tx.send(b).await.is_err() {
                break;
            }
        }
    });
    let wrote = (|| {
        while let Some(batch) = rx.blocking_recv() {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            files.write(&batch?)?;
            *written = files.written;
        }
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(())
    })();
    pump.abort();
    wrote
}

/// Renames the finished scratch directory to the destination (an empty
/// directory there is replaced; one with files is never touched).
fn move_into_place(scratch: &Path, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    match std::fs::rename(scratch, dest) {
        Ok(()) => {}
        Err(e) if dest.is_dir() => {
            return Err(Error::invalid(format!(
                "the export directory exists and is not empty [path={}]: {e}",
                dest.display()
            )));
        }
        Err(e) => return Err(Error::io(dest, e)),
    }
    if let Some(parent) = dest.parent() {
        crate::storage::sync_dir(parent)?;
    }
    Ok(())
}
