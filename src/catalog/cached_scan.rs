//! A table scan that reads decoded columns from the column cache (see
//! [`super::column_cache`]), decoding a file's columns whole the first
//! time they are asked for.
//!
//! Each partition reads one ordered chain of files (as the Parquet scan
//! does, see `provider`), and each file's rows are sorted on the
//! designated timestamp, so the rows in the scan's time range are found by
//! binary search and handed on as slices of the cached arrays: no copy,
//! no decoding, and the output is in timestamp order per partition.
//! The query's other conditions (those `scan_filter` finds evaluable) are
//! applied here, one conjunct after another on the rows the earlier ones
//! kept, and the kept rows leave in batches of about a chunk; conditions
//! that only bound the designated timestamp are the binary search.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::array::{BooleanArray, BooleanBufferBuilder};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{FilterBuilder, filter_record_batch, prep_null_mask_filter};
use datafusion::arrow::datatypes::{
    DataType, FieldRef, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Statistics};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::{StreamExt, TryStreamExt};

use super::column_cache::{Chunks, ColumnCache, ColumnKey};
use super::scan_filter::Condition;
use super::table::Table;
use super::ts_range::TsRange;
use crate::storage::{DataFile, Manifest};

/// Rows per cached array: DataFusion's batch size, so that each chunk is
/// handed on as one batch.
const CHUNK_ROWS: usize = 8192;

/// What a scan reads, shared by its partitions' streams.
#[derive(Debug)]
struct Reads {
    table: Arc<Table>,
    cache: Arc<ColumnCache>,
    /// The object store the files are in (its URL).
    store: String,
    /// The table's path in that store, which files' paths follow.
    base: String,
    table_schema: SchemaRef,
    /// Table columns decoded per file: those the scan reads (see
    /// `scan_filter`), then the designated timestamp when the range needs
    /// it and they lack it.
    needed: Vec<usize>,
    /// How many of `needed` the scan outputs (the first ones).
    width: usize,
    /// The conditions the scan applies, over columns of `needed`.
    condition: Option<Condition>,
    /// Where the designated timestamp is in `needed`, when the range is
    /// cut by it.
    ts: Option<usize>,
    range: TsRange,
    schema: SchemaRef,
}

#[derive(Debug)]
pub struct CachedScanExec {
    reads: Arc<Reads>,
    groups: Vec<Vec<Part>>,
    /// The snapshot the files were listed from: while the plan lives, files
    /// later commits retired are kept (see `Table::retire`).
    _pin: Arc<Manifest>,
    properties: Arc<PlanProperties>,
}

/// The parts of a scan the provider decided.
pub struct ScanParts {
    pub table: Arc<Table>,
    pub cache: Arc<ColumnCache>,
    pub store: String,
    pub base: String,
    pub table_schema: SchemaRef,
    /// The columns read, the first `width` of them output.
    pub columns: Vec<usize>,
    pub width: usize,
    pub condition: Option<Condition>,
    pub ts_index: Option<usize>,
    pub range: TsRange,
    /// Ordered chains of files, and how many partitions to read them in.
    pub groups: Vec<Vec<DataFile>>,
    pub partitions: usize,
    pub pin: Arc<Manifest>,
}

impl CachedScanExec {
    pub fn new(p: ScanParts) -> datafusion::error::Result<CachedScanExec> {
        let schema = Arc::new(p.table_schema.project(&p.columns[..p.width])?);
        let mut needed = p.columns.clone();
        let cut = p.range != TsRange::ALL;
        let ts = match p.ts_index {
            Some(i) if cut => Some(match needed.iter().position(|&c| c == i) {
                Some(at) => at,
                None => {
                    needed.push(i);
                    needed.len() - 1
                }
            }),
            _ => None,
        };
        // Each partition comes sorted on the designated timestamp, when
        // the scan outputs it.
        let mut eq = EquivalenceProperties::new(Arc::clone(&schema));
        if let Some(i) = p.ts_index
            && let Some(at) = p.columns[..p.width].iter().position(|&c| c == i)
        {
            let name = p.table_schema.field(i).name();
            eq.add_orderings(vec![vec![PhysicalSortExpr::new(
                Arc::new(Column::new(name, at)),
                SortOptions {
                    descending: false,
                    nulls_first: false,
                },
            )]]);
        }
        let width = p.width;
        let groups = split_parts(p.groups, p.partitions, p.range);
        let properties = PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(groups.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(CachedScanExec {
            reads: Arc::new(Reads {
                table: p.table,
                cache: p.cache,
                store: p.store,
                base: p.base,
                table_schema: p.table_schema,
                needed,
                width,
                condition: p.condition,
                ts,
                range: p.range,
                schema,
            }),
            groups,
            _pin: p.pin,
            properties: Arc::new(properties),
        })
    }

    fn parts(&self, partition: Option<usize>) -> impl Iterator<Item = &Part> {
        self.groups
            .iter()
            .enumerate()
            .filter(move |(i, _)| partition.is_none_or(|p| p == *i))
            .flat_map(|(_, g)| g.iter())
    }
}

impl Reads {
    fn key(&self, f: &DataFile, column: usize) -> ColumnKey {
        let field = self.table_schema.field(column);
        ColumnKey {
            file: Arc::from(format!("{}{}{}", self.store, self.base, f.path)),
            column: Arc::from(field.name().as_str()),
            data_type: field.data_type().clone(),
        }
    }

    /// The most distinct values dictionary column `column` can hold over
    /// `files`, when every file's column is cached: the sum over files of
    /// the largest dictionary of a chunk.
    fn distinct_at_most(&self, files: &[&DataFile], column: usize) -> Precision<usize> {
        let mut sum = 0;
        for f in files {
            let Some(chunks) = self.cache.get(&self.key(f, column)) else {
                return Precision::Absent;
            };
            sum += chunks
                .iter()
                .filter_map(|a| a.as_any_dictionary_opt().map(|d| d.values().len()))
                .max()
                .unwrap_or(0);
        }
        Precision::Inexact(sum)
    }

    /// The needed columns of `f`, from the cache or decoded (and kept),
    /// cut into the same chunks of rows.
    async fn columns(&self, f: &DataFile) -> datafusion::error::Result<Vec<Chunks>> {
        let keys: Vec<ColumnKey> = self.needed.iter().map(|&c| self.key(f, c)).collect();
        let mut got: Vec<Option<Chunks>> = keys.iter().map(|k| self.cache.get(k)).collect();
        let missing: Vec<usize> = (0..got.len()).filter(|&i| got[i].is_none()).collect();
        if !missing.is_empty() {
            let fields: Vec<FieldRef> = missing
                .iter()
                .map(|&i| Arc::clone(&self.table_schema.fields()[self.needed[i]]))
                .collect();
            let table = Arc::clone(&self.table);
            let file = f.clone();
            let read = tokio::task::spawn_blocking(move || {
                crate::storage::files::read_column_chunks(&table.loc, &file, &fields, CHUNK_ROWS)
            })
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
            for (&i, chunks) in missing.iter().zip(read) {
                let chunks: Chunks = Arc::from(chunks);
                self.cache.put(keys[i].clone(), Arc::clone(&chunks));
                got[i] = Some(chunks);
            }
        }
        let mut columns: Vec<Chunks> = got.into_iter().flatten().collect();
        // Columns decoded by different scans are cut alike (the reader's
        // batches); should they not be, they are cut as the first one.
        if let Some((first, rest)) = columns.split_first_mut() {
            let lengths: Vec<usize> = first.iter().map(|a| a.len()).collect();
            for c in rest {
                if c.iter().map(|a| a.len()).ne(lengths.iter().copied()) {
                    *c = recut(c, &lengths)?;
                }
            }
        }
        Ok(columns)
    }

    /// The part's rows in the scan's time range that pass its conditions,
    /// a batch per chunk at most.
    async fn batches(&self, part: Part) -> datafusion::error::Result<Vec<RecordBatch>> {
        let f = &part.file;
        let columns = self.columns(f).await?;
        let lengths: Vec<usize> = match columns.first() {
            Some(c) => c.iter().map(|a| a.len()).collect(),
            None => {
                let rows = f.rows as usize;
                (0..rows.div_ceil(CHUNK_ROWS))
                    .map(|i| CHUNK_ROWS.min(rows - i * CHUNK_ROWS))
                    .collect()
            }
        };
        let mut out = Vec::new();
        // Rows a condition kept, joined into batches of about a chunk:
        // a few rows per chunk handed on as they are would cost every
        // operator above its per-batch work per chunk.
        let mut kept = Kept::default();
        let mut end = 0;
        for (c, &len) in lengths.iter().enumerate() {
            let first = end;
            end += len;
            // The part's rows of this chunk, then those in the time range.
            let lo = part.rows.start.clamp(first, end) - first;
            let hi = part.rows.end.clamp(first, end) - first;
            if lo == hi {
                if first >= part.rows.end {
                    break;
                }
                continue;
            }
            let (from, to) = match self.ts {
                Some(at) => {
                    let (a, b) = within(&columns[at][c], self.range).unwrap_or((0, len));
                    (a.clamp(lo, hi), b.clamp(lo, hi))
                }
                None => (lo, hi),
            };
            if from < to {
                let n = to - from;
                let cut = |chunks: &Chunks| match (from, to) {
                    (0, whole) if whole == len => Arc::clone(&chunks[c]),
                    _ => chunks[c].slice(from, n),
                };
                let outputs: Vec<ArrayRef> = columns[..self.width].iter().map(cut).collect();
                match &self.condition {
                    None => out.push(self.batch(outputs, n)?),
                    Some(condition) => {
                        let read = condition.at.iter().map(|&i| cut(&columns[i])).collect();
                        if let Some(b) = self.filtered(condition, read, outputs, n)? {
                            kept.push(b, &self.schema, &mut out)?;
                        }
                    }
                }
            }
            if to < hi {
                // Rows past the range's end: so are all later chunks'.
                break;
            }
        }
        kept.flush(&self.schema, &mut out)?;
        Ok(out)
    }
}

impl Reads {
    fn batch(&self, arrays: Vec<ArrayRef>, rows: usize) -> datafusion::error::Result<RecordBatch> {
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?)
    }

    /// The rows of `outputs` (`rows` of them) whose `read` columns pass
    /// the conditions, none when none do.
    fn filtered(
        &self,
        condition: &Condition,
        read: Vec<ArrayRef>,
        outputs: Vec<ArrayRef>,
        rows: usize,
    ) -> datafusion::error::Result<Option<RecordBatch>> {
        let Some(mask) = passing(condition, read, rows)? else {
            return Ok(None);
        };
        let kept = mask.count_set_bits();
        if kept == rows {
            return Ok(Some(self.batch(outputs, rows)?));
        }
        let filter = FilterBuilder::new(&BooleanArray::new(mask, None))
            .optimize()
            .build();
        let arrays = outputs
            .iter()
            .map(|a| filter.filter(a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(self.batch(arrays, kept)?))
    }
}

/// Filtered batches waiting to be joined into one of about [`CHUNK_ROWS`].
#[derive(Default)]
struct Kept {
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl Kept {
    fn push(
        &mut self,
        batch: RecordBatch,
        schema: &SchemaRef,
        out: &mut Vec<RecordBatch>,
    ) -> datafusion::error::Result<()> {
        self.rows += batch.num_rows();
        self.batches.push(batch);
        if self.rows >= CHUNK_ROWS {
            self.flush(schema, out)?;
        }
        Ok(())
    }

    fn flush(
        &mut self,
        schema: &SchemaRef,
        out: &mut Vec<RecordBatch>,
    ) -> datafusion::error::Result<()> {
        match self.batches.len() {
            0 => {}
            1 => out.extend(self.batches.pop()),
            _ => out.push(datafusion::arrow::compute::concat_batches(
                schema,
                &self.batches,
            )?),
        }
        self.batches.clear();
        self.rows = 0;
        Ok(())
    }
}

/// Which of `rows` rows pass every conjunct, `None` when none does. Each
/// conjunct is evaluated on the rows the ones before it kept, and its
/// answer is spread back over the rows it was asked about: DataFusion's
/// AND does the same for a left side that keeps under a fifth of the rows
/// but spreads the answer back one run of kept rows at a time, which was
/// a fifth of a one-host `SELECT *` query's time.
fn passing(
    condition: &Condition,
    read: Vec<ArrayRef>,
    rows: usize,
) -> datafusion::error::Result<Option<BooleanBuffer>> {
    let mut batch = RecordBatch::try_new_with_options(
        Arc::clone(&condition.schema),
        read,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?;
    // `None`: every row so far.
    let mut mask: Option<BooleanBuffer> = None;
    for (i, conjunct) in condition.conjuncts.iter().enumerate() {
        let answer = conjunct.evaluate(&batch)?.into_array(batch.num_rows())?;
        let Some(answer) = answer.as_boolean_opt() else {
            return Err(DataFusionError::Internal(format!(
                "a scan condition gave {} where booleans were expected",
                answer.data_type()
            )));
        };
        // NULL is not true: the row goes.
        let answer = match answer.null_count() {
            0 => answer.clone(),
            _ => prep_null_mask_filter(answer),
        };
        let kept = answer.true_count();
        if kept == 0 {
            return Ok(None);
        }
        if kept == answer.len() {
            continue;
        }
        mask = Some(match mask {
            None => answer.values().clone(),
            Some(before) => {
                let mut after = BooleanBufferBuilder::new(rows);
                after.append_n(rows, false);
                for (j, row) in before.set_indices().enumerate() {
                    if answer.value(j) {
                        after.set_bit(row, true);
                    }
                }
                after.finish()
            }
        });
        if i + 1 < condition.conjuncts.len() {
            batch = filter_record_batch(&batch, &answer)?;
        }
    }
    Ok(Some(mask.unwrap_or_else(|| BooleanBuffer::new_set(rows))))
}

/// `chunks` cut again into arrays of `lengths` rows.
fn recut(chunks: &Chunks, lengths: &[usize]) -> datafusion::error::Result<Chunks> {
    let refs: Vec<&dyn Array> = chunks.iter().map(|a| a.as_ref()).collect();
    let whole = datafusion::arrow::compute::concat(&refs)?;
    let mut at = 0;
    let mut out = Vec::with_capacity(lengths.len());
    for &n in lengths {
        // Copied, so that each piece has buffers of its own.
        out.push(datafusion::arrow::compute::concat(&[&whole.slice(at, n)])?);
        at += n;
    }
    Ok(Arc::from(out))
}

/// The rows of a sorted timestamp column inside `range` (microseconds), as
/// a start and an end; `None` when the column is not a timestamp.
fn within(ts: &ArrayRef, range: TsRange) -> Option<(usize, usize)> {
    let DataType::Timestamp(unit, _) = ts.data_type() else {
        return None;
    };
    // Bounds in the column's unit, rounded outwards.
    let (lo, hi, values) = match unit {
        TimeUnit::Second => (
            range.lo.div_euclid(1_000_000),
            range.hi.div_euclid(1_000_000),
            ts.as_primitive_opt::<TimestampSecondType>()?.values(),
        ),
        TimeUnit::Millisecond => (
            range.lo.div_euclid(1_000),
            range.hi.div_euclid(1_000),
            ts.as_primitive_opt::<TimestampMillisecondType>()?.values(),
        ),
        TimeUnit::Microsecond => (
            range.lo,
            range.hi,
            ts.as_primitive_opt::<TimestampMicrosecondType>()?.values(),
        ),
        TimeUnit::Nanosecond => (
            range.lo.saturating_mul(1_000),
            range.hi.saturating_mul(1_000).saturating_add(999),
            ts.as_primitive_opt::<TimestampNanosecondType>()?.values(),
        ),
    };
    let from = values.partition_point(|&v| v < lo);
    let to = from + values[from..].partition_point(|&v| v <= hi);
    Some((from, to))
}

/// Rows `rows` of a file, read by one partition.
#[derive(Debug, Clone)]
pub struct Part {
    pub file: DataFile,
    pub rows: std::ops::Range<usize>,
}

/// The chains of files as parts, the longest cut in two until there are
/// `partitions` of them: a chain of several files between its files (as
/// `provider::split_chains` does), one file between its rows, at the middle
/// of the rows its time range is estimated to hold (rows spread evenly over
/// the file's time), in whole chunks. Each part stays in timestamp order and
/// parts never overlap, so an ordered read merges them.
fn split_parts(groups: Vec<Vec<DataFile>>, partitions: usize, range: TsRange) -> Vec<Vec<Part>> {
    let mut parts: Vec<Vec<Part>> = groups
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|file| Part {
                    rows: 0..file.rows as usize,
                    file,
                })
                .collect()
        })
        .collect();
    while parts.len() < partitions {
        // The one-file part with the most rows in range, when worth cutting.
        let Some((at, cut)) = parts
            .iter()
            .enumerate()
            .filter(|(_, g)| g.len() == 1)
            .filter_map(|(i, g)| {
                let p = &g[0];
                let (lo, hi) = rows_in_range(p, range);
                let cut = (lo + (hi - lo) / 2).div_ceil(CHUNK_ROWS) * CHUNK_ROWS;
                let worth = hi - lo >= 4 * CHUNK_ROWS && cut > p.rows.start && cut < p.rows.end;
                worth.then_some((i, cut, hi - lo))
            })
            .max_by_key(|(_, _, n)| *n)
            .map(|(i, cut, _)| (i, cut))
        else {
            break;
        };
        let p = parts[at].pop().expect("a part of one file");
        parts[at].push(Part {
            file: p.file.clone(),
            rows: p.rows.start..cut,
        });
        parts.insert(
            at + 1,
            vec![Part {
                file: p.file,
                rows: cut..p.rows.end,
            }],
        );
    }
    parts
}

/// About which of a part's rows fall in `range`, from the file's time range
/// (rows spread evenly over it).
fn rows_in_range(p: &Part, range: TsRange) -> (usize, usize) {
    let (Some(min), Some(max)) = (p.file.min_ts, p.file.max_ts) else {
        return (p.rows.start, p.rows.end);
    };
    let rows = p.file.rows as i128;
    let span = (max as i128 - min as i128).max(1);
    let at = |t: i64| ((t.clamp(min, max) as i128 - min as i128) * rows / span) as usize;
    let (lo, hi) = (at(range.lo), at(range.hi.saturating_add(1)));
    (
        lo.clamp(p.rows.start, p.rows.end),
        hi.clamp(p.rows.start, p.rows.end),
    )
}

impl DisplayAs for CachedScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: usize = self.groups.iter().map(Vec::len).sum();
        if matches!(t, DisplayFormatType::TreeRender) {
            return write!(f, "files={files}");
        }
        // As DataFusion's Parquet scan shows its files: at most five of a
        // group.
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                let mut names: Vec<String> = g
                    .iter()
                    .take(5)
                    .map(|part| {
                        let path = format!("{}{}", self.reads.base, part.file.path);
                        match part.rows.end - part.rows.start == part.file.rows as usize {
                            true => path,
                            false => format!("{path}:{}..{}", part.rows.start, part.rows.end),
                        }
                    })
                    .collect();
                if g.len() > 5 {
                    names.push("...".to_string());
                }
                format!("[{}]", names.join(", "))
            })
            .collect();
        let columns: Vec<&str> = self
            .reads
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "CachedScanExec: file_groups={{{} group{}: [{}]}}, projection=[{}]",
            self.groups.len(),
            if self.groups.len() == 1 { "" } else { "s" },
            groups.join(", "),
            columns.join(", ")
        )?;
        if let Some(ordering) = self.properties.output_ordering() {
            write!(f, ", output_ordering=[{ordering}]")?;
        }
        if let Some(condition) = &self.reads.condition {
            write!(f, ", predicate={condition}")?;
        }
        if self.reads.ts.is_some() {
            write!(
                f,
                ", time_range=[{}, {}]",
                self.reads.range.lo, self.reads.range.hi
            )?;
        }
        Ok(())
    }
}

impl ExecutionPlan for CachedScanExec {
    fn name(&self) -> &'static str {
        "CachedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        let files = self.groups.get(partition).cloned().unwrap_or_default();
        let reads = Arc::clone(&self.reads);
        let stream = futures::stream::iter(files)
            .then(move |f| {
                let reads = Arc::clone(&reads);
                async move { reads.batches(f).await }
            })
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.reads.schema),
            stream.boxed(),
        )))
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> datafusion::error::Result<Arc<Statistics>> {
        let parts: Vec<&Part> = self.parts(args.partition()).collect();
        let mut files: Vec<&DataFile> = parts.iter().map(|p| &p.file).collect();
        files.dedup_by(|a, b| a.path == b.path);
        let rows: usize = parts.iter().map(|p| p.rows.len()).sum();
        let mut stats = Statistics::new_unknown(&self.reads.schema);
        // With no time range and no condition every row of the parts is
        // read: the count is exact (and `count(*)` is answered from it).
        stats.num_rows = match (self.reads.ts, &self.reads.condition) {
            (None, None) => Precision::Exact(rows),
            _ => {
                let share: u64 = files.iter().map(|f| self.reads.range.share_of(f)).sum();
                Precision::Inexact(rows.min(share as usize))
            }
        };
        // A SYMBOL column's distinct values, at most, from the dictionaries
        // of its cached chunks: a LATEST BY's newest time per key is then
        // known to be a few rows, and joined back without moving the rows.
        for (i, column) in stats.column_statistics.iter_mut().enumerate() {
            let table_column = self.reads.needed[i];
            if let DataType::Dictionary(..) =
                self.reads.table_schema.field(table_column).data_type()
            {
                column.distinct_count = self.reads.distinct_at_most(&files, table_column);
            }
        }
        Ok(Arc::new(stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{TimestampMicrosecondArray, TimestampNanosecondArray};
    use datafusion::common::ScalarValue;

    /// Conjuncts evaluated one after the other on the rows the earlier
    /// ones kept select what the whole AND selects: a SYMBOL equality
    /// first, a comparison with NULLs second; one that keeps every row,
    /// and one that keeps none.
    #[test]
    fn conjuncts_one_after_the_other_keep_what_and_keeps() {
        use datafusion::arrow::array::{DictionaryArray, Float64Array};
        use datafusion::arrow::datatypes::{Field, Int32Type, Schema};
        use datafusion::logical_expr::Operator;
        use datafusion::physical_expr::expressions::{binary, col, lit};
        let rows = 20_000;
        let names: Vec<String> = (0..rows).map(|i| format!("host_{}", i % 37)).collect();
        let hosts: DictionaryArray<Int32Type> = names.iter().map(|n| Some(n.as_str())).collect();
        let values: Float64Array = (0..rows)
            .map(|i| (i % 11 != 0).then_some((i * 7 % 100) as f64))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("hostname", hosts.data_type().clone(), false),
            Field::new("v", DataType::Float64, true),
        ]));
        let host = |h: &str| {
            binary(
                col("hostname", &schema).unwrap(),
                Operator::Eq,
                lit(ScalarValue::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(ScalarValue::from(h)),
                )),
                &schema,
            )
            .unwrap()
        };
        let above =
            |x: f64| binary(col("v", &schema).unwrap(), Operator::Gt, lit(x), &schema).unwrap();
        let read: Vec<ArrayRef> = vec![Arc::new(hosts), Arc::new(values.clone())];
        let run = |conjuncts: Vec<Arc<dyn PhysicalExpr>>| {
            let condition = Condition {
                at: vec![0, 1],
                schema: Arc::clone(&schema),
                conjuncts,
            };
            passing(&condition, read.clone(), rows)
                .unwrap()
                .map(|m| m.set_indices().collect::<Vec<_>>())
        };
        let expected = |host: usize, x: f64| -> Vec<usize> {
            (0..rows)
                .filter(|i| i % 37 == host && values.is_valid(*i) && values.value(*i) > x)
                .collect()
        };
        assert_eq!(
            run(vec![host("host_5"), above(50.0)]),
            Some(expected(5, 50.0))
        );
        assert_eq!(
            run(vec![above(50.0), host("host_5")]),
            Some(expected(5, 50.0))
        );
        // Every row passes the first: the second alone decides.
        assert_eq!(
            run(vec![above(-1.0), host("host_3")]),
            Some(expected(3, -1.0))
        );
        assert_eq!(run(vec![host("host_99"), above(50.0)]), None);
    }

    fn file(rows: u64, min: i64, max: i64) -> DataFile {
        DataFile::spanning("p/f.parquet", rows, min, max)
    }

    #[test]
    fn one_file_is_cut_at_the_middle_of_its_rows_in_range() {
        let whole = split_parts(vec![vec![file(100_000, 0, 99_999)]], 2, TsRange::ALL);
        assert_eq!(whole.len(), 2);
        let (a, b) = (&whole[0][0].rows, &whole[1][0].rows);
        assert_eq!(
            (a.start, a.end, b.start, b.end),
            (0, 57_344, 57_344, 100_000)
        );
        // A tenth of the time: the cut falls inside that tenth.
        let tenth = TsRange { lo: 0, hi: 99_999 };
        let cut = split_parts(vec![vec![file(1_000_000, 0, 999_999)]], 2, tenth);
        assert_eq!(cut[0][0].rows, 0..57_344);
        assert_eq!(cut[1][0].rows, 57_344..1_000_000);
        // Too few rows in range to be worth two partitions.
        let few = TsRange { lo: 0, hi: 999 };
        assert_eq!(
            split_parts(vec![vec![file(100_000, 0, 99_999)]], 2, few).len(),
            1
        );
        assert_eq!(
            split_parts(vec![vec![file(100_000, 0, 99_999)]], 4, TsRange::ALL).len(),
            4
        );
    }

    #[test]
    fn the_range_is_found_by_binary_search_in_the_columns_unit() {
        let micros: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            10, 20, 20, 30, 40, 50,
        ]));
        let range = |lo, hi| TsRange { lo, hi };
        assert_eq!(within(&micros, range(20, 40)), Some((1, 5)));
        assert_eq!(within(&micros, range(21, 39)), Some((3, 4)));
        assert_eq!(within(&micros, range(60, 70)), Some((6, 6)));
        assert_eq!(within(&micros, TsRange::ALL), Some((0, 6)));
        // Nanoseconds: the microsecond bounds widen to whole microseconds.
        let nanos: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![
            19_999, 20_000, 20_999, 21_000,
        ]));
        assert_eq!(within(&nanos, range(20, 20)), Some((1, 3)));
        let not_time: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(vec![1]));
        assert_eq!(within(&not_time, range(0, 1)), None);
    }
}
