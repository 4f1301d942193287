//! Phase `partition_import`: partitions in parallel, biggest first. Each
//! gathers its index entries (memory and spill files), sorts them by
//! (timestamp, offset) so out-of-order input comes out ordered and equal
//! timestamps keep file order, decodes each record straight from the
//! mapped file into Arrow builders and streams batches into one Parquet
//! file. Files are invisible until `attach_partitions`.

use datafusion::arrow::datatypes::SchemaRef;
use rayon::prelude::*;

use super::analyze::Analysis;
use super::attach::Target;
use super::csv::{Field, read_record};
use super::format::unit_to_micros;
use super::indexing::{Entry, Index, PartIndex, read_spill};
use super::rows::{Outcome, RowDecoder};
use super::{ImportError, Job};
use crate::storage::{DataFile, FileWriter};

const PHASE: &str = "partition_import";
/// Rows per Arrow batch (and per Parquet write).
const BATCH_ROWS: usize = 64 * 1024;

/// The files written and the rows in them.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<DataFile>,
    pub rows: u64,
}

fn io_error(e: crate::error::Error) -> ImportError {
    ImportError::Phase {
        phase: PHASE,
        message: e.to_string(),
    }
}

fn import_partition(
    job: &Job<'_>,
    buf: &[u8],
    a: &Analysis,
    target: &Target,
    schema: &SchemaRef,
    floor: i64,
    parts: Vec<PartIndex>,
) -> Result<Option<(DataFile, u64)>, ImportError> {
    job.check(PHASE)?;
    let mut entries: Vec<Entry> = Vec::with_capacity(parts.iter().map(|p| p.memory.len()).sum());
    for p in parts {
        entries.extend(p.memory);
        for path in p.spilled {
            entries.extend(read_spill(&path).map_err(|e| ImportError::Phase {
                phase: PHASE,
                message: format!("could not read index file [path='{}']: {e}", path.display()),
            })?);
            let _ = std::fs::remove_file(&path);
        }
    }
    entries.sort_unstable();
    let plan = &a.plan;
    let (ts_col, _) = plan.timestamp.expect("partitioned import has a timestamp");
    let ts_type = plan.meta.columns[ts_col].ty;
    let partition = plan.meta.partition_by.partition_name(floor);
    let rel = format!("{partition}/imp-{}.parquet", job.id);
    let path = target.dir().join(&rel);
    let mut writer = FileWriter::create(&path, schema.clone()).map_err(io_error)?;
    let mut decoder = RowDecoder::new(plan, job.req.on_error, BATCH_ROWS);
    let mut fields: Vec<Field> = Vec::with_capacity(plan.file_columns + 1);
    let mut values = Vec::with_capacity(plan.meta.columns.len());
    let (mut rows, mut min_ts, mut max_ts) = (0u64, i64::MAX, i64::MIN);
    let result = (|| {
        for (i, &(ts, offset)) in entries.iter().enumerate() {
            if i % 65_536 == 65_535 {
                job.check(PHASE)?;
            }
            read_record(buf, offset as usize, job.req.delimiter, &mut fields)
                .expect("indexed offsets start records");
            match decoder.push(
                buf,
                &fields,
                offset,
                Some((ts_col, ts)),
                &mut values,
                &job.errors,
            ) {
                Ok(Outcome::Imported) => {
                    rows += 1;
                    let micros = unit_to_micros(ts, ts_type);
                    min_ts = min_ts.min(micros);
                    max_ts = max_ts.max(micros);
                }
                Ok(Outcome::Skipped) => {}
                Err(e) => {
                    return Err(ImportError::Phase {
                        phase: PHASE,
                        message: e.abort_text(&job.req.file_name, buf),
                    });
                }
            }
            if decoder.rows() >= BATCH_ROWS {
                writer.write(&decoder.finish()).map_err(io_error)?;
            }
        }
        if decoder.rows() > 0 {
            writer.write(&decoder.finish()).map_err(io_error)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        writer.abandon();
        return Err(e);
    }
    if rows == 0 {
        writer.abandon();
        return Ok(None);
    }
    let size = writer.finish().map_err(io_error)?;
    Ok(Some((
        DataFile {
            partition,
            path: rel,
            rows,
            size,
            min_ts: Some(min_ts),
            max_ts: Some(max_ts),
        },
        rows,
    )))
}

/// The phase. On failure every file it wrote is removed.
pub fn run(
    job: &Job<'_>,
    buf: &[u8],
    a: &Analysis,
    index: Index,
    target: &Target,
) -> Result<Written, ImportError> {
    let schema = a.plan.meta.arrow_schema();
    let mut parts: Vec<(i64, Vec<PartIndex>)> = index.partitions.into_iter().collect();
    // Biggest first, so the last task to start is a small one.
    parts.sort_by_key(|(floor, p)| {
        let n: usize = p
            .iter()
            .map(|x| x.memory.len() + x.spilled.len() * 1_000_000)
            .sum();
        (std::cmp::Reverse(n), *floor)
    });
    let results: Vec<Result<Option<(DataFile, u64)>, ImportError>> = job.pool.install(|| {
        parts
            .into_par_iter()
            .map(|(floor, p)| import_partition(job, buf, a, target, &schema, floor, p))
            .collect()
    });
    let mut written = Written::default();
    let mut failure: Option<ImportError> = None;
    for r in results {
        match r {
            Ok(Some((f, rows))) => {
                written.rows += rows;
                written.files.push(f);
            }
            Ok(None) => {}
            // A real failure explains more than the cancels it caused.
            Err(e) => {
                if failure
                    .as_ref()
                    .is_none_or(|f| f.is_cancel() && !e.is_cancel())
                {
                    failure = Some(e);
                }
            }
        }
    }
    if let Some(e) = failure {
        for f in &written.files {
            let _ = std::fs::remove_file(target.dir().join(&f.path));
        }
        return Err(e);
    }
    written.files.sort_by(|x, y| x.path.cmp(&y.path));
    Ok(written)
}
