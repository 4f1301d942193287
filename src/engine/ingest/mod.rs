//! Synchronous imports: `/imp`, the Arc CSV endpoint and COPY FROM STDIN
//! hand the engine a spooled file and wait for the importer (the same
//! pipeline, journal and commit as COPY) to finish with it.

pub mod bulk;
mod parquet_check;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Engine;
use crate::catalog::TableMeta;
use crate::error::{Error, Result};
use crate::import::Summary;
// What the servers need to describe an import; they reach the importer only
// through the engine.
pub use crate::import::analyze::{Given, normalise_name};
pub use crate::import::csv::{Dialect, FieldWriter, Nulls};
pub use crate::import::source::{Spool, TempFile};
pub use crate::import::{ColumnOverride, ImportOptions, ImportRequest, OnError};

/// A finished synchronous import.
#[derive(Debug, Clone)]
pub struct Imported {
    pub summary: Summary,
    /// The table's definition after the import.
    pub meta: TableMeta,
    /// The table existed before (its timestamp and partitioning were used).
    pub existed: bool,
}

/// Cancels the import when the caller's future is dropped (a client that
/// went away mid-import): the table is then left as it was.
struct CancelOnDrop(Arc<AtomicBool>, bool);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// How long a synchronous import waits for a running COPY to finish.
const SLOT_WAIT: Duration = Duration::from_secs(60);

impl Engine {
    /// Scratch directory for uploads and COPY FROM STDIN data.
    pub fn upload_dir(&self) -> PathBuf {
        self.config.copy_work_root.join("uploads")
    }

    /// `http.multipart.max.size`: the largest upload, also after decompression.
    pub fn upload_limit(&self) -> u64 {
        self.config.http_multipart_max_size
    }

    /// Runs `req` as a dry run (nothing is written) and waits for its
    /// report; a client that goes away cancels it.
    pub async fn dry_run_file(&self, mut req: ImportRequest) -> Result<Summary> {
        if !self.catalog.schema_exists(&req.schema) {
            return Err(Error::SchemaNotFound { schema: req.schema });
        }
        req.options.dry_run = true;
        let cancel = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop(Arc::clone(&cancel), false);
        let importer = Arc::clone(&self.importer);
        let table = req.table.clone();
        let outcome =
            tokio::task::spawn_blocking(move || importer.run_sync(&req, SLOT_WAIT, cancel))
                .await
                .map_err(|e| Error::Internal(format!("import task failed: {e}")))?;
        guard.1 = true;
        outcome?.map_err(|e| Error::ImportFailed {
            table,
            message: format!("dry run: {e}"),
        })
    }

    /// Checks the target of an upload's import; `overwrite` drops an
    /// existing table first. Whether the table exists now.
    fn prepare_target(&self, req: &ImportRequest, overwrite: bool) -> Result<bool> {
        if !self.catalog.schema_exists(&req.schema) {
            return Err(Error::SchemaNotFound {
                schema: req.schema.clone(),
            });
        }
        if req.schema == crate::catalog::SYS_SCHEMA {
            return Err(Error::PermissionDenied {
                message: "the sys schema is read-only".into(),
            });
        }
        let mut existed = self.catalog.get(&req.schema, &req.table).is_some();
        if existed && overwrite {
            self.drop_table(&req.schema, &req.table)?;
            existed = false;
        }
        if !existed && req.options.must_exist {
            return Err(Error::TableNotFound {
                table: req.table.clone(),
                position: None,
            });
        }
        Ok(existed)
    }

    /// Starts importing `req.path` (an upload that `req.options.upload`
    /// keeps) as COPY does: the id comes back at once, `sys.copy_progress`
    /// follows the import and `COPY 'id' CANCEL` stops it.
    pub fn start_import(&self, req: ImportRequest, overwrite: bool) -> Result<String> {
        self.prepare_target(&req, overwrite)?;
        self.importer.submit(req)
    }

    /// Imports `req.path` (a spooled file) and waits for the result.
    /// `overwrite` drops an existing table first (`/imp?overwrite=true`).
    pub async fn import_file(&self, req: ImportRequest, overwrite: bool) -> Result<Imported> {
        let existed = self.prepare_target(&req, overwrite)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop(Arc::clone(&cancel), false);
        let importer = Arc::clone(&self.importer);
        let table = req.table.clone();
        let (schema, name) = (req.schema.clone(), req.table.clone());
        let outcome =
            tokio::task::spawn_blocking(move || importer.run_sync(&req, SLOT_WAIT, cancel))
                .await
                .map_err(|e| Error::Internal(format!("import task failed: {e}")))?;
        guard.1 = true;
        let summary = outcome?.map_err(|e| Error::ImportFailed {
            table,
            message: e.to_string(),
        })?;
        let meta = self
            .catalog
            .get(&schema, &name)
            .map(|t| t.meta())
            .ok_or_else(|| Error::Internal(format!("table {name} vanished after its import")))?;
        Ok(Imported {
            summary,
            meta,
            existed,
        })
    }
}

/// Bytes of a file read for [`first_records`].
const SAMPLE_BYTES: u64 = 64 * 1024;

/// The first `n` records of a delimited text file, split as its dry run
/// `summary` would split them (header lines included), for a preview;
/// none for Parquet. A record cut by the end of the sample is left out.
pub fn first_records(
    path: &std::path::Path,
    summary: &Summary,
    n: usize,
) -> Result<Vec<Vec<String>>> {
    use std::io::Read;
    let Some(dry) = &summary.dry_run else {
        return Ok(Vec::new());
    };
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(SAMPLE_BYTES).read_to_end(&mut buf))
        .map_err(|e| Error::io(path, e))?;
    if buf.starts_with(b"PAR1") {
        return Ok(Vec::new());
    }
    let whole = (buf.len() as u64) < SAMPLE_BYTES;
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut pos = 0;
    while out.len() < n {
        let Some(record) = crate::import::csv::read_record(&buf, pos, dry.dialect, &mut fields)
        else {
            break;
        };
        if record.open_quote || (!whole && record.next >= buf.len()) {
            break;
        }
        out.push(
            fields
                .iter()
                .map(|f| String::from_utf8_lossy(&f.value(&buf)).into_owned())
                .collect(),
        );
        pos = record.next;
    }
    Ok(out)
}
