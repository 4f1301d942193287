//! A table scan that reads decoded columns from the column cache (see
//! [`super::column_cache`]), decoding a file's columns whole the first
//! time they are asked for.
//!
//! Each partition reads one ordered chain of files (as the Parquet scan
//! does, see `provider`), and each file's rows are sorted on the
//! designated timestamp, so the rows in the scan's time range are found by
//! binary search and handed on as slices of the cached arrays: no copy,
//! no decoding, and the output is in timestamp order per partition.
//! Filters other than the time range stay above the scan (the provider
//! reports them inexact), as does the exact time filter itself: the range
//! a scan keeps may be wider than the query's, never narrower.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{FilterBuilder, prep_null_mask_filter};
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
    /// The conditions the scan applies, over the first `read.fields()`
    /// columns of `needed`.
    predicate: Option<Arc<dyn PhysicalExpr>>,
    read: SchemaRef,
    /// Where the designated timestamp is in `needed`, when the range is
    /// cut by it.
    ts: Option<usize>,
    range: TsRange,
    schema: SchemaRef,
}

#[derive(Debug)]
pub struct CachedScanExec {
    reads: Arc<Reads>,
    groups: Vec<Vec<DataFile>>,
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
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
    pub ts_index: Option<usize>,
    pub range: TsRange,
    pub groups: Vec<Vec<DataFile>>,
    pub pin: Arc<Manifest>,
}

impl CachedScanExec {
    pub fn new(p: ScanParts) -> datafusion::error::Result<CachedScanExec> {
        let schema = Arc::new(p.table_schema.project(&p.columns[..p.width])?);
        let read = Arc::new(p.table_schema.project(&p.columns)?);
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
        let properties = PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(p.groups.len().max(1)),
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
                predicate: p.predicate,
                read,
                ts,
                range: p.range,
                schema,
            }),
            groups: p.groups,
            _pin: p.pin,
            properties: Arc::new(properties),
        })
    }

    fn files(&self, partition: Option<usize>) -> impl Iterator<Item = &DataFile> {
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

    /// The file's rows in the scan's time range, a batch per chunk.
    async fn batches(&self, f: DataFile) -> datafusion::error::Result<Vec<RecordBatch>> {
        let columns = self.columns(&f).await?;
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
        for (c, &len) in lengths.iter().enumerate() {
            let (from, to) = match self.ts {
                Some(at) => within(&columns[at][c], self.range).unwrap_or((0, len)),
                None => (0, len),
            };
            if from < to {
                let n = to - from;
                let cut = |chunks: &Chunks| match (from, to) {
                    (0, end) if end == len => Arc::clone(&chunks[c]),
                    _ => chunks[c].slice(from, n),
                };
                match &self.predicate {
                    None => {
                        let arrays = columns[..self.width].iter().map(cut).collect();
                        out.push(self.batch(arrays, n)?);
                    }
                    Some(predicate) => {
                        let read: Vec<ArrayRef> = columns[..self.read.fields().len()]
                            .iter()
                            .map(cut)
                            .collect();
                        if let Some(b) = self.filtered(predicate, read, n)? {
                            out.push(b);
                        }
                    }
                }
            }
            if to < len {
                // Rows past the range's end: so are all later chunks'.
                break;
            }
        }
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

    /// The output columns of the rows of `read` (`rows` of them) the
    /// conditions keep, none when they keep none.
    fn filtered(
        &self,
        predicate: &Arc<dyn PhysicalExpr>,
        read: Vec<ArrayRef>,
        rows: usize,
    ) -> datafusion::error::Result<Option<RecordBatch>> {
        let batch = RecordBatch::try_new_with_options(
            Arc::clone(&self.read),
            read,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        let mask = predicate.evaluate(&batch)?.into_array(rows)?;
        let Some(mask) = mask.as_boolean_opt() else {
            return Err(DataFusionError::Internal(format!(
                "a scan condition gave {} where booleans were expected",
                mask.data_type()
            )));
        };
        // NULL is not true: the row goes.
        let mask = match mask.null_count() {
            0 => mask.clone(),
            _ => prep_null_mask_filter(mask),
        };
        let kept = mask.true_count();
        let outputs = &batch.columns()[..self.width];
        if kept == 0 {
            return Ok(None);
        }
        if kept == rows {
            return Ok(Some(self.batch(outputs.to_vec(), rows)?));
        }
        let filter = FilterBuilder::new(&mask).optimize().build();
        let arrays = outputs
            .iter()
            .map(|a| filter.filter(a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(self.batch(arrays, kept)?))
    }
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
                    .map(|file| format!("{}{}", self.reads.base, file.path))
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
        if let Some(predicate) = &self.reads.predicate {
            write!(f, ", predicate={predicate}")?;
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
        let files: Vec<&DataFile> = self.files(args.partition()).collect();
        let mut stats = Statistics::new_unknown(&self.reads.schema);
        // With no time range every row of the files is read: the count is
        // exact (and `count(*)` is answered from it).
        stats.num_rows = match (self.reads.ts, &self.reads.predicate) {
            (_, Some(_)) => Precision::Inexact(
                files
                    .iter()
                    .map(|f| self.reads.range.share_of(f))
                    .sum::<u64>() as usize,
            ),
            (None, None) => Precision::Exact(files.iter().map(|f| f.rows).sum::<u64>() as usize),
            (Some(_), None) => Precision::Inexact(
                files
                    .iter()
                    .map(|f| self.reads.range.share_of(f))
                    .sum::<u64>() as usize,
            ),
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
