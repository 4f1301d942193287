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
use super::indexing::{Entry, Index, PartIndex};
use super::rows::{Outcome, RowDecoder};
use super::{ImportError, Job};
use crate::storage::{DataFile, FileWriter};

const PHASE: &str = "partition_import";
/// Rows per Arrow batch (and per Parquet write).
const BATCH_ROWS: usize = 64 * 1024;

/// Records are read in timestamp order, so from scattered places in the
/// file: asking for the record this many entries ahead hides most of the
/// memory latency of the jump.
const PREFETCH_AHEAD: usize = 16;

/// Hints the CPU to load the two cache lines at `buf[at..]`.
#[inline(always)]
fn prefetch(buf: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        if at + 64 < buf.len() {
            // SAFETY: a prefetch is only a hint and never faults; the
            // address is inside the mapped buffer anyway.
            unsafe {
                let p = buf.as_ptr().add(at) as *const i8;
                _mm_prefetch(p, _MM_HINT_T0);
                _mm_prefetch(p.add(64), _MM_HINT_T0);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (buf, at);
}

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

/// Sorts entries by (timestamp, offset). They arrive in file order
/// (chunks in order, each chunk's spilled runs before its memory), so a
/// stable sort on the timestamp alone gives that order: an LSD radix sort
/// over the bits by which the partition's timestamps differ, 11 bits per
/// pass. Small inputs use the comparison sort.
fn sort_entries(entries: &mut Vec<Entry>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    if entries.len() < 4096 || !entries.windows(2).all(|w| w[0].1 < w[1].1) {
        entries.sort_unstable();
        return;
    }
    let min = entries.iter().map(|e| e.0).min().expect("non-empty");
    let max = entries.iter().map(|e| e.0).max().expect("non-empty");
    let span = max.abs_diff(min);
    let passes = (64 - span.leading_zeros()).div_ceil(BITS);
    let mut from = std::mem::take(entries);
    let mut to: Vec<Entry> = vec![(0, 0); from.len()];
    for pass in 0..passes {
        let shift = pass * BITS;
        let key = |e: &Entry| ((e.0.abs_diff(min) >> shift) as usize) & (BUCKETS - 1);
        let mut starts = vec![0usize; BUCKETS];
        for e in &from {
            starts[key(e)] += 1;
        }
        let mut sum = 0;
        for s in starts.iter_mut() {
            let n = *s;
            *s = sum;
            sum += n;
        }
        for e in &from {
            let k = key(e);
            to[starts[k]] = *e;
            starts[k] += 1;
        }
        std::mem::swap(&mut from, &mut to);
    }
    *entries = from;
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
    let mut entries: Vec<Entry> = Vec::with_capacity(parts.iter().map(PartIndex::len).sum());
    for p in parts {
        for run in &p.spilled {
            entries.extend(run.read().map_err(|e| ImportError::Phase {
                phase: PHASE,
                message: format!(
                    "could not read index file [path='{}']: {e}",
                    run.file.display()
                ),
            })?);
        }
        entries.extend(p.memory);
    }
    sort_entries(&mut entries);
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
            if let Some(&(_, ahead)) = entries.get(i + PREFETCH_AHEAD) {
                prefetch(buf, ahead as usize);
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
    let size = writer.finish_unsynced().map_err(io_error)?;
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
        let n: usize = p.iter().map(PartIndex::len).sum();
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
    // The files must be on disk before attach names them in a manifest:
    // one flush for all of them.
    if failure.is_none()
        && let Err(e) = crate::storage::sync_tree(target.dir())
    {
        failure = Some(io_error(e));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_orders_by_timestamp_then_offset() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut entries: Vec<Entry> = (0..50_000u64)
            .map(|off| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Many equal timestamps, a day's span in microseconds.
                (
                    1_262_304_000_000_000 + (x % 86_400_000_000) as i64 / 1_000_000 * 7,
                    off * 130,
                )
            })
            .collect();
        let mut want = entries.clone();
        want.sort_unstable();
        sort_entries(&mut entries);
        assert_eq!(entries, want);
        let mut negative: Vec<Entry> = (0..5000u64).map(|o| (-(o as i64 % 97) * 1000, o)).collect();
        let mut want = negative.clone();
        want.sort_unstable();
        sort_entries(&mut negative);
        assert_eq!(negative, want);
    }
}
