//! Phase `partition_import`: tasks in parallel, biggest first. Small
//! partitions are decoded up to 16 at a time ([`import_group`]): their
//! index entries merged in file order, one forward sweep over the mapped
//! file feeds each member's column buffers. A bigger partition is decoded
//! alone: its entries are cut into windows of consecutive timestamps, each
//! decoded in file order. Either way each partition's rows are put in
//! (timestamp, offset) order with one `take`, so out-of-order input comes
//! out ordered and equal timestamps keep file order, and become one Parquet
//! file per partition. One file-system sync makes them durable; they stay
//! invisible until `attach_partitions`. A dry run decodes and counts the
//! same way and writes nothing.

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use rayon::prelude::*;
use std::sync::atomic::Ordering;

use super::analyze::Analysis;
use super::attach::Target;
use super::csv::{Field, read_record};
use super::format::unit_to_micros;
use super::indexing::{Entry, Index, LEN_MAX, PartIndex, len_of, offset_of};
use super::log::Phase;
use super::rows::{Outcome, RowDecoder};
use super::{ImportError, Job};
use crate::storage::{DataFile, FileWriter};

const PHASE: Phase = Phase::PartitionImport;
/// Rows per window: decoded together, sorted, written as one batch.
const BATCH_ROWS: usize = 256 * 1024;

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
    /// A dry run's partitions (name order) and the rows each would get.
    pub counted: Vec<(String, u64)>,
}

fn io_error(e: crate::error::Error) -> ImportError {
    ImportError::Phase {
        phase: PHASE,
        message: e.to_string(),
    }
}

/// Sorts pairs by (key, rank) where the second halves are ranks that
/// already increase (a record's offset, a decoded row's position): a
/// stable LSD radix sort on the key alone then gives that order, over only
/// the bits by which the keys differ, 11 bits per pass. Small inputs, or
/// second halves out of order, use the comparison sort on `rank`.
fn sort_by_key_then_rank(pairs: &mut Vec<(i64, u64)>, rank: impl Fn(u64) -> u64) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    if pairs.len() < 4096 || !pairs.windows(2).all(|w| rank(w[0].1) < rank(w[1].1)) {
        pairs.sort_unstable_by_key(|&(k, r)| (k, rank(r)));
        return;
    }
    let min = pairs.iter().map(|e| e.0).min().expect("non-empty");
    let max = pairs.iter().map(|e| e.0).max().expect("non-empty");
    let span = max.abs_diff(min);
    let passes = (64 - span.leading_zeros()).div_ceil(BITS);
    let mut from = std::mem::take(pairs);
    let mut to: Vec<(i64, u64)> = vec![(0, 0); from.len()];
    for pass in 0..passes {
        let shift = pass * BITS;
        let key = |e: &(i64, u64)| ((e.0.abs_diff(min) >> shift) as usize) & (BUCKETS - 1);
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
    *pairs = from;
}

/// Index entries in (timestamp, offset) order.
fn sort_entries(entries: &mut Vec<Entry>) {
    sort_by_key_then_rank(entries, offset_of);
}

/// The end of the window that starts at `start`: at most `BATCH_ROWS`
/// records and about `max_bytes` of them (which bounds a worker's memory
/// however wide records are, and keeps Utf8 offsets far from overflow); a
/// record of unknown (huge) length is a window of its own.
fn window_end(entries: &[Entry], start: usize, max_bytes: usize) -> usize {
    let mut bytes = 0usize;
    let mut end = start;
    while end < entries.len() && end - start < BATCH_ROWS {
        let len = len_of(entries[end].1);
        if end > start && (len == LEN_MAX || bytes + len > max_bytes) {
            break;
        }
        bytes += len;
        end += 1;
        if len == LEN_MAX {
            break;
        }
    }
    end
}

/// What one partition became: a file, or in a dry run its row count.
enum Done {
    File(DataFile),
    Counted { partition: String, rows: u64 },
}

/// A partition's index entries in file order (each chunk's spilled runs,
/// then its memory, chunk after chunk).
fn read_entries(parts: Vec<PartIndex>) -> Result<Vec<Entry>, ImportError> {
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
    Ok(entries)
}

/// Decodes the record at `place` into `decoder`; an ABORT becomes the
/// phase's error.
#[inline]
fn decode_one(
    job: &Job<'_>,
    buf: &[u8],
    decoder: &mut RowDecoder,
    fields: &mut Vec<Field>,
    (ts_col, ts): (usize, i64),
    place: u64,
) -> Result<Outcome, ImportError> {
    let offset = offset_of(place);
    read_record(buf, offset as usize, job.dialect(), fields)
        .expect("indexed offsets start records");
    decoder
        .push(buf, fields, offset, Some((ts_col, ts)), &job.errors)
        .map_err(|e| ImportError::Phase {
            phase: PHASE,
            message: e.abort_text(&job.req.file_name, buf),
        })
}

/// Small partitions decoded together: their records, merged in file
/// order, are read in one forward sweep over the mapped file. A partition
/// alone covers a small share of the file's records, scattered over all of
/// it, so it costs a cache and TLB miss per record; a group covering a
/// larger share reads neighbouring records from the same pages. The rows
/// are then split by partition, each put in (timestamp, file) order and
/// written as that partition's one file.
fn import_group(
    job: &Job<'_>,
    buf: &[u8],
    a: &Analysis,
    target: Option<&Target>,
    schema: &SchemaRef,
    members: Vec<(i64, Vec<PartIndex>)>,
) -> Result<Vec<Done>, ImportError> {
    job.check(PHASE)?;
    let plan = &a.plan;
    let (ts_col, _) = plan.timestamp.expect("partitioned import has a timestamp");
    // (place, timestamp, member) of every record of the group.
    let mut entries: Vec<(u64, i64, u32)> = Vec::new();
    let mut floors = Vec::with_capacity(members.len());
    for (m, (floor, parts)) in members.into_iter().enumerate() {
        floors.push(floor);
        entries.extend(
            read_entries(parts)?
                .into_iter()
                .map(|(ts, place)| (place, ts, m as u32)),
        );
    }
    // Stable, and each member's entries are runs already in file order:
    // the sort merges runs rather than sorting from scratch.
    entries.sort_by_key(|e| offset_of(e.0));
    // One decoder per member, so each partition's rows are compact for
    // its sort; the sweep feeds them in turn.
    let mut counts = vec![0usize; floors.len()];
    for e in &entries {
        counts[e.2 as usize] += 1;
    }
    let mut decoders: Vec<RowDecoder> = counts
        .iter()
        .map(|&n| RowDecoder::new(plan, job.req.on_error, n))
        .collect();
    // Per member: (timestamp, row in its batch) of the rows imported.
    let mut split: Vec<Vec<(i64, u64)>> = counts.iter().map(|&n| Vec::with_capacity(n)).collect();
    let mut fields: Vec<Field> = Vec::with_capacity(plan.file_columns + 1);
    const STEP: usize = 64 * 1024;
    for (i, &(place, ts, m)) in entries.iter().enumerate() {
        if i % STEP == 0 {
            job.check(PHASE)?;
            let n = STEP.min(entries.len() - i) as u64;
            job.progress.rows_handled.fetch_add(n, Ordering::Relaxed);
            job.progress
                .errors
                .store(job.errors.count(), Ordering::Relaxed);
        }
        if let Some(&(ahead, _, _)) = entries.get(i + PREFETCH_AHEAD) {
            prefetch(buf, offset_of(ahead) as usize);
        }
        let m = m as usize;
        if decode_one(job, buf, &mut decoders[m], &mut fields, (ts_col, ts), place)?
            == Outcome::Imported
        {
            let keys = &mut split[m];
            keys.push((ts, keys.len() as u64));
        }
    }
    drop(entries);
    let mut done = Vec::new();
    let written = |done: &Vec<Done>| {
        if let Some(t) = target {
            for d in done {
                if let Done::File(f) = d {
                    let _ = std::fs::remove_file(t.dir().join(&f.path));
                }
            }
        }
    };
    for (m, mut part_keys) in split.into_iter().enumerate() {
        if part_keys.is_empty() {
            continue;
        }
        let partition = plan.meta.partition_by.partition_name(floors[m]);
        let rows = part_keys.len() as u64;
        job.progress
            .rows_imported
            .fetch_add(rows, Ordering::Relaxed);
        let Some(t) = target else {
            done.push(Done::Counted { partition, rows });
            continue;
        };
        let batch = decoders[m].finish();
        let result = write_member(job, t, schema, plan, partition, batch, &mut part_keys);
        match result {
            Ok(f) => done.push(Done::File(f)),
            Err(e) => {
                written(&done);
                return Err(e);
            }
        }
        if let Err(e) = job.check(PHASE) {
            written(&done);
            return Err(e);
        }
    }
    Ok(done)
}

/// A decoded batch in timestamp order, `keys` its rows' (timestamp,
/// row) in the batch: stable, so equal timestamps keep file order.
fn in_time_order(
    batch: RecordBatch,
    keys: &mut Vec<(i64, u64)>,
) -> Result<RecordBatch, ImportError> {
    if keys.is_sorted_by_key(|k| k.0) {
        return Ok(batch);
    }
    sort_by_key_then_rank(keys, |r| r);
    let order = UInt32Array::from_iter_values(keys.iter().map(|k| k.1 as u32));
    take_record_batch(&batch, &order).map_err(|e| io_error(e.into()))
}

/// One member of a group written as its partition's one file.
fn write_member(
    job: &Job<'_>,
    t: &Target,
    schema: &SchemaRef,
    plan: &super::analyze::Plan,
    partition: String,
    batch: RecordBatch,
    keys: &mut Vec<(i64, u64)>,
) -> Result<DataFile, ImportError> {
    let (ts_col, _) = plan.timestamp.expect("partitioned import has a timestamp");
    let ts_type = plan.meta.columns[ts_col].ty;
    let sorted = in_time_order(batch, keys)?;
    let rel = format!("{partition}/{}.parquet", job.file_stem());
    let mut writer = FileWriter::create(
        &t.dir().join(&rel),
        schema.clone(),
        &plan.meta.bloom_columns(),
    )
    .map_err(io_error)?;
    if let Err(e) = writer.write(&sorted) {
        writer.abandon();
        return Err(io_error(e));
    }
    let size = writer.finish().map_err(io_error)?;
    Ok(DataFile {
        partition,
        path: rel,
        rows: keys.len() as u64,
        size,
        min_ts: Some(unit_to_micros(keys[0].0, ts_type)),
        max_ts: Some(unit_to_micros(keys[keys.len() - 1].0, ts_type)),
    })
}

/// One partition; with no `target` (a dry run) its records are decoded
/// and counted but neither sorted nor written.
fn import_partition(
    job: &Job<'_>,
    buf: &[u8],
    a: &Analysis,
    target: Option<&Target>,
    schema: &SchemaRef,
    floor: i64,
    parts: Vec<PartIndex>,
) -> Result<Option<Done>, ImportError> {
    job.check(PHASE)?;
    let mut entries = read_entries(parts)?;
    let plan = &a.plan;
    let (ts_col, _) = plan.timestamp.expect("partitioned import has a timestamp");
    let ts_type = plan.meta.columns[ts_col].ty;
    let partition = plan.meta.partition_by.partition_name(floor);
    let rel = format!("{partition}/{}.parquet", job.file_stem());
    let mut writer = match target {
        Some(t) => Some(
            FileWriter::create(
                &t.dir().join(&rel),
                schema.clone(),
                &plan.meta.bloom_columns(),
            )
            .map_err(io_error)?,
        ),
        None => None,
    };
    let mut decoder = RowDecoder::new(plan, job.req.on_error, BATCH_ROWS.min(entries.len()));
    let mut fields: Vec<Field> = Vec::with_capacity(plan.file_columns + 1);
    // (timestamp, position in the decoded batch) of the rows imported.
    let mut keys: Vec<(i64, u64)> = Vec::with_capacity(BATCH_ROWS.min(entries.len()));
    let (mut rows, mut min_ts, mut max_ts) = (0u64, i64::MAX, i64::MIN);
    // Entries arrive in file order. A partition that is one window is
    // decoded in that order as it is; a bigger one is put in timestamp
    // order and cut into windows of consecutive timestamps.
    // A quarter of the worker's share of the importer's memory budget
    // (8 MB by default): big enough that a day of a large file is a few
    // windows of many rows each, small enough to bound memory.
    let max_bytes = (job.settings.index_memory / job.settings.workers.max(1) / 4).max(1);
    let one_window = window_end(&entries, 0, max_bytes) == entries.len();
    if !one_window && writer.is_some() {
        sort_entries(&mut entries);
    }
    let result = (|| {
        let mut start = 0;
        while start < entries.len() {
            job.check(PHASE)?;
            let end = window_end(&entries, start, max_bytes);
            let window = &mut entries[start..end];
            start = end;
            // Decoding in file order reads the mapped file forwards: far
            // fewer cache and TLB misses than jumping in timestamp order.
            if !window.is_sorted_by_key(|e| offset_of(e.1)) {
                window.sort_unstable_by_key(|e| offset_of(e.1));
            }
            keys.clear();
            // (Counted before decoding: a window whose rows all fail
            // still moves the import on.)
            job.progress
                .rows_handled
                .fetch_add(window.len() as u64, Ordering::Relaxed);
            job.progress
                .errors
                .store(job.errors.count(), Ordering::Relaxed);
            for (i, &(ts, place)) in window.iter().enumerate() {
                if let Some(&(_, ahead)) = window.get(i + PREFETCH_AHEAD) {
                    prefetch(buf, offset_of(ahead) as usize);
                }
                if decode_one(job, buf, &mut decoder, &mut fields, (ts_col, ts), place)?
                    == Outcome::Imported
                {
                    keys.push((ts, keys.len() as u64));
                }
            }
            if keys.is_empty() {
                continue;
            }
            let batch = decoder.finish();
            rows += keys.len() as u64;
            job.progress
                .rows_imported
                .fetch_add(keys.len() as u64, Ordering::Relaxed);
            let Some(writer) = writer.as_mut() else {
                continue;
            };
            let batch = in_time_order(batch, &mut keys)?;
            min_ts = min_ts.min(unit_to_micros(keys[0].0, ts_type));
            max_ts = max_ts.max(unit_to_micros(keys[keys.len() - 1].0, ts_type));
            writer.write(&batch).map_err(io_error)?;
        }
        Ok(())
    })();
    let Some(writer) = writer else {
        result?;
        return Ok((rows > 0).then_some(Done::Counted { partition, rows }));
    };
    if let Err(e) = result {
        writer.abandon();
        return Err(e);
    }
    if rows == 0 {
        writer.abandon();
        return Ok(None);
    }
    let size = writer.finish().map_err(io_error)?;
    Ok(Some(Done::File(DataFile {
        partition,
        path: rel,
        rows,
        size,
        min_ts: Some(min_ts),
        max_ts: Some(max_ts),
    })))
}

/// The most partitions decoded together. The sweep's locality comes from the
/// share of the file's records a group covers; past a few members the
/// gain is gone (many small partitions are far apart anyway) and the
/// members' decoders and the merge of their entries cost more than the
/// misses they save (the 3,653-day bench file).
const MAX_GROUP: usize = 16;

/// A unit of partition_import's work.
enum Task {
    /// A partition decoded in windows of consecutive timestamps.
    Alone(i64, Vec<PartIndex>),
    /// Small partitions decoded in one sweep ([`import_group`]).
    Group(Vec<(i64, Vec<PartIndex>)>),
}

/// Cuts the partitions into tasks: consecutive partitions are grouped while
/// their records (estimated at the file's mean record size) stay within
/// `budget`, the decode memory of one worker; a partition over half of it
/// is decoded alone in windows. Biggest first, so the last task to start
/// is a small one.
fn plan_tasks(index: Index, file_len: usize, budget: usize) -> Vec<Task> {
    let mean = file_len as f64 / index.records.max(1) as f64;
    let size = |p: &[PartIndex]| p.iter().map(PartIndex::len).sum::<usize>();
    let mut parts: Vec<(i64, Vec<PartIndex>)> = index.partitions.into_iter().collect();
    parts.sort_by_key(|(floor, _)| *floor);
    let mut tasks: Vec<(usize, Task)> = Vec::new();
    let mut group: Vec<(i64, Vec<PartIndex>)> = Vec::new();
    let mut group_rows = 0usize;
    let bytes = |rows: usize| rows as f64 * mean;
    let close = |group: &mut Vec<(i64, Vec<PartIndex>)>, rows: &mut usize, tasks: &mut Vec<_>| {
        match group.len() {
            0 => {}
            1 => {
                let (floor, p) = group.pop().expect("one");
                tasks.push((*rows, Task::Alone(floor, p)));
            }
            _ => tasks.push((*rows, Task::Group(std::mem::take(group)))),
        }
        *rows = 0;
    };
    for (floor, p) in parts {
        let n = size(&p);
        if bytes(n) > budget as f64 / 2.0 {
            tasks.push((n, Task::Alone(floor, p)));
            continue;
        }
        if bytes(group_rows + n) > budget as f64 || group.len() == MAX_GROUP {
            close(&mut group, &mut group_rows, &mut tasks);
        }
        group_rows += n;
        group.push((floor, p));
    }
    close(&mut group, &mut group_rows, &mut tasks);
    tasks.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    tasks.into_iter().map(|(_, t)| t).collect()
}

/// The phase. On failure every file it wrote is removed. With no
/// `target` (a dry run) nothing is written and `counted` says what would be.
pub fn run(
    job: &Job<'_>,
    buf: &[u8],
    a: &Analysis,
    index: Index,
    target: Option<&Target>,
) -> Result<Written, ImportError> {
    let schema = a.plan.meta.arrow_schema();
    let tasks = plan_tasks(
        index,
        buf.len(),
        job.settings.decode_memory / job.settings.workers.max(1),
    );
    let results: Vec<Result<Vec<Done>, ImportError>> = job.pool.install(|| {
        tasks
            .into_par_iter()
            .map(|task| match task {
                Task::Alone(floor, p) => {
                    import_partition(job, buf, a, target, &schema, floor, p).map(Vec::from_iter)
                }
                Task::Group(members) => import_group(job, buf, a, target, &schema, members),
            })
            .collect()
    });
    let mut written = Written::default();
    let mut failure: Option<ImportError> = None;
    for r in results.into_iter().flat_map(|r| match r {
        Ok(done) => done.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    }) {
        match r {
            Ok(Done::File(f)) => {
                written.rows += f.rows;
                written.files.push(f);
            }
            Ok(Done::Counted { partition, rows }) => {
                written.rows += rows;
                written.counted.push((partition, rows));
            }
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
    // one flush for all of them. (Files a commit uploads need none: the
    // store has them before any version names them.)
    if failure.is_none()
        && let Some(t) = target
        && t.files_stay_local()
        && let Err(e) = crate::storage::sync_tree(t.dir())
    {
        failure = Some(io_error(e));
    }
    if let Some(e) = failure {
        if let Some(t) = target {
            for f in &written.files {
                let _ = std::fs::remove_file(t.dir().join(&f.path));
            }
        }
        return Err(e);
    }
    written.files.sort_by(|x, y| x.path.cmp(&y.path));
    written.counted.sort();
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
                    // Lengths vary: the order is by offset, not by the packed value.
                    crate::import::indexing::place(off as usize * 130, (x % 200) as usize),
                )
            })
            .collect();
        let mut want = entries.clone();
        want.sort_unstable_by_key(|&(ts, p)| (ts, offset_of(p)));
        sort_entries(&mut entries);
        assert_eq!(entries, want);
        let mut negative: Vec<Entry> = (0..5000u64).map(|o| (-(o as i64 % 97) * 1000, o)).collect();
        let mut want = negative.clone();
        want.sort_unstable();
        sort_entries(&mut negative);
        assert_eq!(negative, want);
    }

    #[test]
    fn windows_bound_rows_and_bytes() {
        use crate::import::indexing::place;
        let small: Vec<Entry> = (0..600_000)
            .map(|i| (i, place(i as usize * 10, 10)))
            .collect();
        assert_eq!(window_end(&small, 0, 64 << 20), BATCH_ROWS);
        assert_eq!(window_end(&small, 599_000, 64 << 20), 600_000);
        assert_eq!(window_end(&small, 0, 2 << 20), (2 << 20) / 10);
        let wide: Vec<Entry> = (0..100)
            .map(|i| (i, place((i as usize) << 22, 4 << 20)))
            .collect();
        assert_eq!(window_end(&wide, 0, 64 << 20), 16);
        assert_eq!(window_end(&wide, 0, 1), 1);
        let huge = vec![
            (0, place(0, 10)),
            (1, place(10, usize::MAX)),
            (2, place(99, 1)),
        ];
        assert_eq!(window_end(&huge, 0, 64 << 20), 1);
        assert_eq!(window_end(&huge, 1, 64 << 20), 2);
    }
}
