//! COPY of a Parquet file (recognised by its magic bytes): no text to
//! parse. The file's columns map by name onto the table (or define a new
//! one from the Parquet schema), every value converts or the import fails
//! naming the column and the value, and the rows go through the same
//! partition writer, commit, log and cancel as a CSV import. Row groups are
//! decoded in batches; at most `cairo.sql.copy.decode.memory` of decoded
//! rows is held before they are sorted and written to their partitions.

use std::sync::atomic::Ordering;

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::dry_run::{DryColumn, DryRun};
use super::job::{Job, Summary};
use super::log::Phase;
use super::partition_import::Written;
use super::{ImportError, Importer, attach};
use crate::catalog::{ColumnMeta, Table, TableMeta};
use crate::schema::ColumnType;
use crate::time::PartitionBy;

type Failed = (ImportError, u64);

/// Whether `head` starts a Parquet file.
pub fn is_parquet(head: &[u8]) -> bool {
    head.starts_with(b"PAR1")
}

/// How the file maps onto the table.
pub(super) struct ParquetPlan {
    pub meta: TableMeta,
    pub new_table: bool,
    /// Per file column: the table column it goes to.
    targets: Vec<usize>,
}

fn setup(file: &str, why: impl std::fmt::Display) -> ImportError {
    ImportError::setup(format!("invalid Parquet file [file={file}]: {why}"))
}

/// Maps the file's schema onto `existing` (by name, case-insensitive), or
/// defines a new table from it.
pub(super) fn plan(
    job: &Job<'_>,
    data: &bytes::Bytes,
    existing: Option<&TableMeta>,
) -> Result<ParquetPlan, ImportError> {
    let req = job.req;
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone())
        .map_err(|e| setup(&req.file_name, e))?;
    let schema = builder.schema().clone();
    let (meta, new_table) = match existing {
        Some(m) => (m.clone(), false),
        None => {
            let timestamp_name = req.timestamp.as_deref().unwrap_or_default();
            // Names are folded to lower case, as a CSV header's are; the
            // designated timestamp is a TIMESTAMP whatever its unit.
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    let ty = match ColumnType::of_field(f) {
                        ColumnType::Date | ColumnType::TimestampNs
                            if f.name().eq_ignore_ascii_case(timestamp_name) =>
                        {
                            ColumnType::Timestamp
                        }
                        ty => ty,
                    };
                    ColumnMeta::new(f.name().clone(), ty)
                })
                .collect();
            let timestamp = match &req.timestamp {
                Some(ts) => Some(
                    schema
                        .fields()
                        .iter()
                        .find(|f| f.name().eq_ignore_ascii_case(ts))
                        .map(|f| f.name().clone())
                        .ok_or_else(|| {
                            ImportError::setup(format!("invalid timestamp column [name='{ts}']"))
                        })?,
                ),
                None => None,
            };
            let meta = TableMeta::new_imported(
                columns,
                timestamp,
                req.partition_by.unwrap_or(PartitionBy::None),
            )
            .map_err(|e| ImportError::setup(e.to_string()))?;
            (meta, true)
        }
    };
    let mut targets = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let at = meta
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(f.name()))
            .ok_or_else(|| {
                ImportError::setup(format!(
                    "the file has a column the table has not [file={}, column={}]",
                    req.file_name,
                    f.name()
                ))
            })?;
        if targets.contains(&at) {
            return Err(ImportError::setup(format!(
                "two columns of the file map to table column '{}' [file={}]",
                meta.columns[at].name, req.file_name
            )));
        }
        targets.push(at);
    }
    if let Some(ts) = meta.timestamp_index()
        && !targets.contains(&ts)
    {
        return Err(ImportError::setup(format!(
            "the file has no designated timestamp column [file={}, column={}]",
            req.file_name, meta.columns[ts].name
        )));
    }
    Ok(ParquetPlan {
        meta,
        new_table,
        targets,
    })
}

/// A dry run: every row decoded and converted as the import would, the
/// rows each partition would get counted, nothing written.
fn dry_run(job: &Job<'_>, data: &bytes::Bytes, plan: &ParquetPlan) -> Result<Summary, ImportError> {
    let phase = Phase::PartitionImport;
    let file = &job.req.file_name;
    let fail = |m: String| ImportError::Phase { phase, message: m };
    let reader = ParquetRecordBatchReaderBuilder::try_new(data.clone())
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| fail(format!("[file={file}] {e}")))?;
    let ts = plan.meta.timestamp_index();
    let by = plan.meta.partition_by;
    let mut partitions: std::collections::BTreeMap<i64, u64> = Default::default();
    let mut rows = 0u64;
    for batch in reader {
        job.check(phase)?;
        let batch = batch.map_err(|e| fail(format!("[file={file}] {e}")))?;
        let converted = plan
            .meta
            .convert_batch(&batch, &plan.targets)
            .map_err(|e| fail(format!("[file={file}] {e}")))?;
        rows += converted.num_rows() as u64;
        let Some(ts) = ts else {
            *partitions.entry(0).or_default() += converted.num_rows() as u64;
            continue;
        };
        let micros = crate::storage::files::timestamp_micros(converted.column(ts))
            .map_err(|e| fail(format!("[file={file}] {e}")))?;
        for v in micros.iter().flatten() {
            *partitions.entry(by.floor(v)).or_default() += 1;
        }
    }
    let columns = plan
        .meta
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| DryColumn {
            name: c.name.clone(),
            ty: c.ty,
            source: plan
                .targets
                .iter()
                .position(|&t| t == i)
                .map(|_| c.name.clone()),
            designated: ts == Some(i),
            inferred: false,
            format: None,
        })
        .collect();
    let report = DryRun {
        dialect: crate::import::csv::Dialect::default(),
        given: crate::import::analyze::Given::default(),
        evidence: "Parquet".into(),
        suggested_delimiter: None,
        header: false,
        header_detected: false,
        new_table: plan.new_table,
        partition_by: by,
        columns,
        partitions: partitions
            .into_iter()
            .map(|(floor, n)| (by.partition_name(floor), n))
            .collect(),
        rejected: Vec::new(),
        parquet: true,
    };
    let parts = report.partitions.len();
    let mut summary = Summary::counts(job, (rows, rows, rows), parts, data.len());
    summary.dry_run = Some(report);
    Ok(summary)
}

/// Decodes the file and writes its rows below the target's directory.
pub(super) fn write(
    job: &Job<'_>,
    data: &bytes::Bytes,
    plan: &ParquetPlan,
    target: &attach::Target,
    memory: usize,
) -> Result<Written, ImportError> {
    let phase = Phase::PartitionImport;
    let fail = |m: String| ImportError::Phase { phase, message: m };
    let file = &job.req.file_name;
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone())
        .map_err(|e| fail(format!("[file={file}] {e}")))?;
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| fail(format!("[file={file}] {e}")))?;
    let layout = plan.meta.layout();
    let mut written = Written::default();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut held = 0usize;
    let mut flushes = 0;
    let mut flush = |pending: &mut Vec<RecordBatch>, written: &mut Written| {
        let tag = format!("{}-{flushes}", job.file_stem());
        flushes += 1;
        let files = crate::storage::write_rows(target.dir(), &layout, pending, &tag)
            .map_err(|e| fail(format!("[file={file}] {e}")))?;
        written.rows += files.iter().map(|f| f.rows).sum::<u64>();
        written.files.extend(files);
        pending.clear();
        Ok::<(), ImportError>(())
    };
    for batch in reader {
        job.check(phase)?;
        let batch = batch.map_err(|e| fail(format!("[file={file}] {e}")))?;
        job.progress
            .rows_handled
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        let converted = plan
            .meta
            .convert_batch(&batch, &plan.targets)
            .map_err(|e| fail(format!("[file={file}] {e}")))?;
        held += converted.get_array_memory_size();
        pending.push(converted);
        if held >= memory {
            flush(&mut pending, &mut written)?;
            held = 0;
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut written)?;
    }
    Ok(written)
}

impl Importer {
    /// COPY of one Parquet file: its plan, its rows, one commit.
    pub(super) fn parquet(
        &self,
        job: &Job<'_>,
        data: bytes::Bytes,
        existing: Option<std::sync::Arc<Table>>,
    ) -> Result<Summary, Failed> {
        let meta = existing.as_ref().map(|t| t.meta());
        let plan = job
            .phase(Phase::AnalyzeFileStructure, || {
                plan(job, &data, meta.as_ref())
            })
            .map_err(|e| (e, 0))?;
        if job.req.options.dry_run {
            return job
                .phase(Phase::PartitionImport, || dry_run(job, &data, &plan))
                .map_err(|e| (e, 0));
        }
        let target =
            attach::Target::prepare(&self.catalog, job, plan.new_table).map_err(|e| (e, 0))?;
        let written = job
            .phase(Phase::PartitionImport, || {
                write(job, &data, &plan, &target, self.settings.decode_memory)
            })
            .map_err(|e| (e, 0))?;
        let rows = written.rows;
        let parts = crate::storage::manifest::partition_count(&written.files);
        let summary =
            Summary::counts(job, (rows, rows, rows), parts, data.len()).with_files(&written.files);
        job.progress.rows_total.store(rows, Ordering::Relaxed);
        job.phase(Phase::AttachPartitions, || {
            target.attach(&self.catalog, &plan.meta, written.files, job.loads())
        })
        .map_err(|e| (e, rows))?;
        Ok(summary)
    }
}
