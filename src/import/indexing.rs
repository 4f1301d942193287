//! Phase `indexing`: one task per chunk reads every record, parses its
//! designated timestamp (splitting only the fields up to it) and files
//! `(timestamp, offset and length)` under the record's partition. Entries
//! are 16 bytes; past the memory budget a task spills its entries, one file
//! per spill, under the work directory, so memory does not grow with the
//! file. Records whose timestamp is missing or does not parse are
//! rejected here, with their offset (their line number is added later).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::analyze::Analysis;
use super::boundary::Chunk;
use super::csv::{Field, read_record, read_record_prefix};
use super::format::unit_to_micros;
use super::log::Phase;
use super::reject::Rejection;
use super::{ImportError, Job, RowError};

const PHASE: Phase = Phase::Indexing;

/// One index entry: the timestamp in the column's unit and the record's
/// place, packed by [`place`]: its byte offset in the low 40 bits (files
/// up to 1 TiB) and its length in the high 24 (saturated at [`LEN_MAX`]).
/// The length lets partition_import bound the bytes it decodes at once.
pub type Entry = (i64, u64);

const OFFSET_BITS: u32 = 40;
/// Largest file the parallel importer indexes.
pub const MAX_FILE: u64 = 1 << OFFSET_BITS;
/// Lengths from this value up are stored as this value.
pub const LEN_MAX: usize = (1 << (64 - OFFSET_BITS)) - 1;

/// Packs a record's offset and length into an entry's second half.
#[inline]
pub fn place(offset: usize, len: usize) -> u64 {
    offset as u64 | (len.min(LEN_MAX) as u64) << OFFSET_BITS
}

/// The byte offset of an entry's record.
#[inline]
pub fn offset_of(place: u64) -> u64 {
    place & (MAX_FILE - 1)
}

/// The length of an entry's record (`LEN_MAX`: that long or longer).
#[inline]
pub fn len_of(place: u64) -> usize {
    (place >> OFFSET_BITS) as usize
}

/// A run of one partition's entries inside a spill file.
#[derive(Debug, Clone)]
pub struct SpillRun {
    pub file: Arc<PathBuf>,
    /// Byte offset of the run in the file.
    pub offset: u64,
    pub count: usize,
}

impl SpillRun {
    /// Reads the run back.
    pub fn read(&self) -> std::io::Result<Vec<Entry>> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(self.file.as_path())?;
        let mut bytes = vec![0u8; self.count * 16];
        f.read_exact_at(&mut bytes, self.offset)?;
        Ok(bytes
            .chunks_exact(16)
            .map(|c| {
                (
                    i64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                    u64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
                )
            })
            .collect())
    }
}

/// The entries of one partition found by one chunk task: runs spilled to
/// disk (earlier in the file) and the ones still in memory.
#[derive(Debug, Default)]
pub struct PartIndex {
    pub memory: Vec<Entry>,
    pub spilled: Vec<SpillRun>,
}

impl PartIndex {
    pub fn len(&self) -> usize {
        self.memory.len() + self.spilled.iter().map(|r| r.count).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything indexed: partitions by floor (UTC micros).
#[derive(Debug, Default)]
pub struct Index {
    pub partitions: HashMap<i64, Vec<PartIndex>>,
    /// Records whose timestamp was indexed.
    pub rows: u64,
    /// Records seen, good or bad.
    pub records: u64,
}

/// Partition floors are multiples of a unit: a multiplicative hash spreads
/// them well and costs one multiply per row instead of SipHash's rounds.
#[derive(Default, Clone, Copy)]
pub struct FloorHasher(u64);

impl std::hash::Hasher for FloorHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, v: i64) {
        self.0 = (v as u64 ^ (v as u64 >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type FloorMap<V> = HashMap<i64, V, std::hash::BuildHasherDefault<FloorHasher>>;

struct TaskOut {
    parts: FloorMap<PartIndex>,
    rows: u64,
    records: u64,
    /// Offset after the task's last record: the next chunk must start there.
    ended_at: usize,
}

/// Moves every partition's in-memory entries into one new file at `path`
/// (little-endian pairs, one run per partition), leaving a [`SpillRun`]
/// per partition in their place. One file per spill, not per partition, so
/// thousands of partitions cost one file creation.
fn spill(path: &Path, parts: &mut FloorMap<PartIndex>) -> std::io::Result<()> {
    let file = Arc::new(path.to_path_buf());
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut offset = 0u64;
    for part in parts.values_mut() {
        if part.memory.is_empty() {
            continue;
        }
        for (ts, off) in &part.memory {
            f.write_all(&ts.to_le_bytes())?;
            f.write_all(&off.to_le_bytes())?;
        }
        part.spilled.push(SpillRun {
            file: Arc::clone(&file),
            offset,
            count: part.memory.len(),
        });
        offset += part.memory.len() as u64 * 16;
        part.memory = Vec::new();
    }
    f.flush()
}

fn index_chunk(
    job: &Job<'_>,
    buf: &[u8],
    a: &Analysis,
    chunk: Chunk,
    n: usize,
    budget: usize,
    work_dir: &Path,
) -> Result<TaskOut, ImportError> {
    let (ts_col, ts_field) = a
        .plan
        .timestamp
        .expect("partitioned import has a timestamp");
    let col = &a.plan.meta.columns[ts_col];
    let ty = col.ty;
    let parser = a.plan.parsers[ts_col].as_ref().expect("timestamp parser");
    let unit = a.plan.meta.partition_by;
    let dialect = job.dialect();
    let policy = Rejection {
        on_error: job.req.on_error,
        sink: &job.errors,
    };
    let mut out = TaskOut {
        parts: FloorMap::default(),
        rows: 0,
        records: 0,
        ended_at: chunk.start,
    };
    let mut in_memory = 0usize;
    let mut spills = 0usize;
    let mut fields: Vec<Field> = Vec::with_capacity(a.plan.file_columns + 1);
    let mut pos = chunk.start;
    let mut last_progress = pos;
    // Only the fields up to the timestamp are split; the lexer jumps over
    // the rest of each record.
    while let Some(r) = read_record_prefix(buf, pos, dialect, ts_field + 1, &mut fields) {
        if r.start >= chunk.end {
            break;
        }
        pos = r.next;
        out.ended_at = r.next;
        out.records += 1;
        if out.records.is_multiple_of(65_536) {
            job.check(PHASE)?;
            job.progress
                .bytes_done
                .fetch_add((pos - last_progress) as u64, Ordering::Relaxed);
            last_progress = pos;
        }
        let reject = |e: RowError| -> Result<(), ImportError> {
            policy.record(e).map_err(|e| ImportError::Phase {
                phase: PHASE,
                message: e.abort_text(&job.req.file_name, buf),
            })
        };
        if r.open_quote {
            // Only the last record of a file can be open: read all of it to
            // name the field that never closes.
            let mut all = Vec::new();
            read_record(buf, r.start, dialect, &mut all);
            reject(RowError::open_quote(
                r.start as u64,
                all.len().saturating_sub(1),
                &a.structure.names,
            ))?;
            continue;
        }
        let Some(f) = fields
            .get(ts_field)
            .filter(|f| !f.is_null(buf, &a.plan.nulls))
        else {
            reject(RowError::missing_timestamp(r.start as u64, &col.name))?;
            continue;
        };
        let raw = f.value(buf);
        let ts = match parser.parse(&raw, ty) {
            Ok(v) => v,
            Err(reason) => {
                reject(RowError::bad_value(
                    r.start as u64,
                    &col.name,
                    ty,
                    true,
                    &raw,
                    &reason,
                ))?;
                continue;
            }
        };
        let floor = unit.floor(unit_to_micros(ts, ty));
        out.parts
            .entry(floor)
            .or_default()
            .memory
            .push((ts, place(r.start, r.next - r.start)));
        out.rows += 1;
        in_memory += 1;
        if in_memory * 16 > budget {
            spills += 1;
            let path = work_dir.join(format!("{n}_{spills}.idx"));
            spill(&path, &mut out.parts).map_err(|e| ImportError::Phase {
                phase: PHASE,
                message: format!(
                    "could not write index file [path='{}']: {e}",
                    path.display()
                ),
            })?;
            in_memory = 0;
        }
    }
    job.progress.bytes_done.fetch_add(
        (pos.max(last_progress) - last_progress) as u64,
        Ordering::Relaxed,
    );
    job.check(PHASE)?;
    Ok(out)
}

/// The phase.
pub fn run(
    job: &Job<'_>,
    buf: &[u8],
    a: &Analysis,
    chunks: &[Chunk],
    work_dir: &Path,
) -> Result<Index, ImportError> {
    if buf.len() as u64 >= MAX_FILE {
        return Err(ImportError::setup(format!(
            "file is too large for the parallel importer [size={}, max={MAX_FILE}]",
            buf.len()
        )));
    }
    std::fs::create_dir_all(work_dir).map_err(|e| {
        ImportError::setup(format!(
            "could not create temporary import work directory [path='{}']: {e}",
            work_dir.display()
        ))
    })?;
    let budget = job.settings.index_memory / job.settings.workers.max(1);
    let errors_before = job.errors.count();
    let outs: Vec<TaskOut> = job.pool.install(|| {
        chunks
            .par_iter()
            .enumerate()
            .map(|(n, c)| index_chunk(job, buf, a, *c, n, budget, work_dir))
            .collect::<Result<Vec<_>, _>>()
    })?;
    // A literal quote inside an unquoted field can fool the parity rule of
    // boundary_check; then a chunk's records do not end where the next
    // chunk starts. Index the whole file in one task instead.
    let consistent = outs.windows(2).zip(chunks.windows(2)).all(|(o, c)| {
        let mut at = o[0].ended_at;
        while at < buf.len() && (buf[at] == b'\n' || buf[at] == b'\r') {
            at += 1;
        }
        let mut start = c[1].start;
        while start < buf.len() && (buf[start] == b'\n' || buf[start] == b'\r') {
            start += 1;
        }
        o[0].records == 0 || at == start
    });
    let outs = if consistent || chunks.len() == 1 {
        outs
    } else {
        tracing::warn!(
            import = job.id,
            "chunk boundaries did not match record boundaries; indexing in one task"
        );
        job.errors.rewind(errors_before);
        let _ = std::fs::remove_dir_all(work_dir);
        let _ = std::fs::create_dir_all(work_dir);
        let whole = Chunk {
            start: chunks[0].start,
            end: buf.len(),
        };
        vec![index_chunk(
            job,
            buf,
            a,
            whole,
            0,
            job.settings.index_memory,
            work_dir,
        )?]
    };
    let mut index = Index::default();
    for o in outs {
        index.rows += o.rows;
        index.records += o.records;
        for (floor, part) in o.parts {
            index.partitions.entry(floor).or_default().push(part);
        }
    }
    Ok(index)
}
