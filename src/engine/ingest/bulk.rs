//! Parquet bulk-import jobs (InfluxDB 3's `/api/v3/enterprise/import`): an
//! upload is validated at once from its footer (row count, time range from
//! column statistics, column mapping against the target table) and staged
//! under `<root>/bulk/`; a scheduler thread applies staged jobs through the
//! table's append transaction, so a job's rows appear all at once or not at
//! all. Job records live in `<root>/bulk/jobs.json`, replaced atomically on
//! every change, and survive restarts (an interrupted job is staged again).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use super::parquet_check::{inspect, parse_column_metadata, targets};
use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// Where a bulk job is; serialised (in `jobs.json` and the HTTP answer)
/// as InfluxDB's words.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Staged,
    Importing,
    Completed,
    Errored,
}

/// One job, with InfluxDB's field names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BulkJob {
    pub upload_uuid: String,
    pub filename: String,
    pub size_bytes: u64,
    pub row_count: i64,
    pub min_timestamp_ns: i64,
    pub max_timestamp_ns: i64,
    pub db_id: u32,
    pub table_id: u32,
    pub database: String,
    pub table: String,
    pub iox_parquet: bool,
    pub column_metadata: Option<String>,
    pub status: JobStatus,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub last_updated_at: i64,
    pub last_message: Option<String>,
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// The job list and the scheduler that applies it.
pub struct BulkImports {
    dir: PathBuf,
    catalog: Arc<Catalog>,
    jobs: Mutex<Vec<BulkJob>>,
    /// Held while the list is written, so that a newer list is never
    /// overwritten by an older one written at the same time.
    store_lock: Mutex<()>,
    stop: AtomicBool,
    wake: (Mutex<bool>, std::sync::Condvar),
    poll: Duration,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for BulkImports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkImports")
            .field("dir", &self.dir)
            .finish()
    }
}

impl BulkImports {
    /// Loads the jobs below `root` and starts the scheduler.
    pub fn start(root: &Path, catalog: Arc<Catalog>, poll: Duration) -> Result<Arc<BulkImports>> {
        let dir = root.join("bulk");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let file = dir.join("jobs.json");
        let mut jobs: Vec<BulkJob> = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                table: "bulk import jobs".into(),
                file: file.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&file, e)),
        };
        // A job cut off by a stop or crash either committed (its files,
        // named after the job, are in the table's manifest: only the status
        // write was lost) or not (the commit is one manifest swap): then it
        // starts over.
        for j in &mut jobs {
            if j.status != JobStatus::Importing {
                continue;
            }
            let label = job_label(&j.upload_uuid);
            let committed = catalog.get(&j.database, &j.table).is_some_and(|t| {
                t.snapshot()
                    .manifest
                    .files
                    .iter()
                    .any(|f| f.path.contains(&label))
            });
            let now = now_ns();
            if committed {
                j.status = JobStatus::Completed;
                j.completed_at = Some(now);
                j.last_message = Some("imported (status recovered at start-up)".into());
            } else {
                j.status = JobStatus::Staged;
            }
            j.last_updated_at = now;
        }
        // Staged files no job names are left-overs of a refused upload.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(id) = name.strip_suffix(".parquet")
                    && !jobs
                        .iter()
                        .any(|j| j.upload_uuid == id && j.status == JobStatus::Staged)
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let this = Arc::new(BulkImports {
            dir,
            catalog,
            jobs: Mutex::new(jobs),
            store_lock: Mutex::new(()),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(false), std::sync::Condvar::new()),
            poll,
            thread: Mutex::new(None),
        });
        this.store()?;
        let worker = Arc::clone(&this);
        let handle = std::thread::Builder::new()
            .name("bulk-import".into())
            .spawn(move || worker.scheduler())
            .map_err(|e| Error::Internal(format!("could not start the bulk scheduler: {e}")))?;
        *this.thread.lock().expect("bulk thread") = Some(handle);
        Ok(this)
    }

    /// Stops the scheduler; a job being applied is abandoned uncommitted.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        *self.wake.0.lock().expect("bulk wake") = true;
        self.wake.1.notify_all();
        if let Some(h) = self.thread.lock().expect("bulk thread").take() {
            let _ = h.join();
        }
    }

    pub fn list(&self) -> Vec<BulkJob> {
        self.jobs.lock().expect("bulk jobs").clone()
    }

    /// Writes the job list atomically and durably.
    fn store(&self) -> Result<()> {
        let _writing = self.store_lock.lock().expect("bulk store");
        let jobs = self.jobs.lock().expect("bulk jobs").clone();
        let bytes = serde_json::to_vec_pretty(&jobs).map_err(|e| Error::Internal(e.to_string()))?;
        crate::storage::write_atomic(&self.dir.join("jobs.json"), &bytes)
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut BulkJob)) -> Result<()> {
        {
            let mut jobs = self.jobs.lock().expect("bulk jobs");
            if let Some(j) = jobs.iter_mut().find(|j| j.upload_uuid == id) {
                f(j);
                j.last_updated_at = now_ns();
            }
        }
        self.store()
    }

    /// Validates the uploaded Parquet file `data` and stages it as a job.
    pub fn stage(
        &self,
        database: &str,
        table: &str,
        filename: &str,
        data: &Path,
        column_metadata: Option<String>,
    ) -> Result<BulkJob> {
        crate::schema::name::check(crate::schema::NameKind::Schema, database)?;
        crate::schema::name::check(crate::schema::NameKind::Table, table)?;
        let schemas = self.catalog.schema_names();
        let Some(db_pos) = schemas.iter().position(|s| s == database) else {
            return Err(Error::SchemaNotFound {
                schema: database.to_string(),
            });
        };
        let tables = self.catalog.table_names(database);
        let (Some(table_pos), Some(target)) = (
            tables.iter().position(|t| t == table),
            self.catalog.get(database, table),
        ) else {
            return Err(Error::TableNotFound {
                table: format!("{database}.{table}"),
                position: None,
            });
        };
        let meta = target.meta();
        let mapping = parse_column_metadata(column_metadata.as_deref())?;
        let size_bytes = std::fs::metadata(data)
            .map_err(|e| Error::Internal(e.to_string()))?
            .len();
        let checked = inspect(data, filename, &meta, &mapping)?;
        let id = uuid::Uuid::new_v4().to_string();
        let staged = self.dir.join(format!("{id}.parquet"));
        std::fs::copy(data, &staged)
            .and_then(|_| std::fs::File::open(&staged)?.sync_all())
            .map_err(|e| Error::Internal(format!("could not stage the upload: {e}")))?;
        let now = now_ns();
        let job = BulkJob {
            upload_uuid: id,
            filename: filename.to_string(),
            size_bytes,
            row_count: checked.rows,
            min_timestamp_ns: checked.min_ns,
            max_timestamp_ns: checked.max_ns,
            db_id: db_pos as u32 + 1,
            table_id: table_pos as u32 + 1,
            database: database.to_string(),
            table: table.to_string(),
            iox_parquet: checked.iox,
            column_metadata,
            status: JobStatus::Staged,
            created_at: now,
            started_at: None,
            completed_at: None,
            last_updated_at: now,
            last_message: None,
        };
        self.jobs.lock().expect("bulk jobs").push(job.clone());
        if let Err(e) = self.store() {
            self.jobs
                .lock()
                .expect("bulk jobs")
                .retain(|j| j.upload_uuid != job.upload_uuid);
            let _ = std::fs::remove_file(&staged);
            return Err(Error::Internal(format!(
                "could not write the job status: {e}"
            )));
        }
        // The scheduler picks the job up at its next poll.
        Ok(job)
    }

    fn scheduler(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let next = self
                .jobs
                .lock()
                .expect("bulk jobs")
                .iter()
                .find(|j| j.status == JobStatus::Staged)
                .cloned();
            match next {
                Some(job) => self.apply(&job),
                None => {
                    let guard = self.wake.0.lock().expect("bulk wake");
                    let (mut guard, _) = self
                        .wake
                        .1
                        .wait_timeout_while(guard, self.poll, |woken| !*woken)
                        .expect("bulk wake");
                    *guard = false;
                }
            }
        }
    }

    fn apply(&self, job: &BulkJob) {
        let id = job.upload_uuid.clone();
        if let Err(e) = self.update(&id, |j| {
            j.status = JobStatus::Importing;
            j.started_at = Some(now_ns());
        }) {
            // Without a durable "importing" a restart could not tell a
            // committed job from one to redo: the job is not run.
            let _ = self.update(&id, |j| {
                j.status = JobStatus::Errored;
                j.completed_at = Some(now_ns());
                j.last_message = Some(format!("could not record the job's start: {e}"));
            });
            return;
        }
        let staged = self.dir.join(format!("{id}.parquet"));
        let result = self.load(job, &staged);
        if self.stop.load(Ordering::Relaxed) && result.is_err() {
            // Stopped mid-way: nothing was committed; the job is redone
            // at the next start.
            return;
        }
        let _ = self.update(&id, |j| match &result {
            Ok(rows) => {
                j.status = JobStatus::Completed;
                j.completed_at = Some(now_ns());
                j.last_message = Some(format!("imported {rows} rows"));
            }
            Err(e) => {
                j.status = JobStatus::Errored;
                j.completed_at = Some(now_ns());
                j.last_message = Some(e.to_string());
            }
        });
        let _ = std::fs::remove_file(&staged);
    }

    /// Reads the staged file in batches into one append transaction.
    fn load(&self, job: &BulkJob, staged: &Path) -> Result<u64> {
        let table =
            self.catalog
                .get(&job.database, &job.table)
                .ok_or_else(|| Error::TableNotFound {
                    table: job.table.clone(),
                    position: None,
                })?;
        let meta = table.meta();
        let mapping = parse_column_metadata(job.column_metadata.as_deref())?;
        let file = std::fs::File::open(staged).map_err(|e| Error::io(staged, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        let names: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        // Where each file column goes; absent table columns stay NULL.
        let targets = targets(&meta, &names, &mapping)?;
        let reader = builder.with_batch_size(64 * 1024).build()?;
        let mut txn = table.begin_append_blocking()?;
        txn.set_label(&job_label(&job.upload_uuid));
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut pending_rows = 0usize;
        for batch in reader {
            if self.stop.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let batch = batch?;
            pending_rows += batch.num_rows();
            pending.push(meta.convert_batch(&batch, &targets)?);
            if pending_rows >= 1 << 20 {
                txn.write(&pending)?;
                pending.clear();
                pending_rows = 0;
            }
        }
        if !pending.is_empty() {
            txn.write(&pending)?;
        }
        if table.meta() != meta {
            return Err(Error::invalid(format!(
                "the definition of table {} changed during the import",
                table.display_name()
            )));
        }
        txn.commit()
    }
}

/// What the files a job writes are named with.
fn job_label(id: &str) -> String {
    let hex: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("bulk{hex}")
}
