//! The DataFusion table provider over a table's manifest.
//!
//! Each scan takes one manifest snapshot, drops every file whose designated
//! timestamp range cannot meet the query's filters on that column, and hands
//! the rest to DataFusion's Parquet reader. Files whose ranges do not
//! overlap form ordered chains, and every chain is declared sorted on the
//! designated timestamp, so `ORDER BY ts` (which `query::scan_order` gives a
//! plain scan, as QuestDB returns a scan in timestamp order) costs a merge
//! of the chains, not a sort. Chains are cut into consecutive parts until
//! there is one per core: DataFusion keeps a group of several files whole
//! when it must keep its order, so one long chain would otherwise be read
//! on one core.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics};
use datafusion::datasource::TableProvider;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;

use super::cached_scan::{CachedScanExec, ScanParts};
use super::column_cache::{self, ColumnCache};
use super::parquet_reader::IndexedReaderFactory;
use super::scan_filter::{self, ScanFilter};
use super::table::Table;
use super::ts_range::TsRange;
use crate::storage::DataFile;

#[derive(Debug)]
pub struct TableScanProvider {
    table: Arc<Table>,
    schema: SchemaRef,
    cache: Arc<ColumnCache>,
}

impl TableScanProvider {
    pub fn new(table: Arc<Table>, cache: Arc<ColumnCache>) -> Self {
        let schema = table.meta().arrow_schema();
        TableScanProvider {
            table,
            schema,
            cache,
        }
    }

    /// The table the provider reads.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// The table's designated timestamp column, which scans come ordered by.
    pub fn designated_timestamp(&self) -> Option<String> {
        self.table.meta().timestamp.clone()
    }

    /// About how many rows a scan with `filters` reads: the rows of the
    /// files its time range meets, each counted for the share of its time
    /// range inside the scan's (rows spread evenly over a file's range),
    /// and every row not yet applied from the write-ahead log.
    pub fn rows_in_range(&self, filters: &[Expr]) -> u64 {
        let state = self.table.snapshot();
        let range = match &state.meta.timestamp {
            Some(ts) => TsRange::from_filters(filters, ts),
            None => TsRange::ALL,
        };
        let pending = self.table.wal().map_or(0, |w| w.pending_rows() as u64);
        state
            .manifest
            .files
            .iter()
            .filter(|f| range.meets(f))
            .map(|f| range.share_of(f))
            .sum::<u64>()
            .saturating_add(pending)
    }
}

/// Cuts the longest chains (by bytes) into two consecutive parts, each
/// still in order, until there are `parts` groups or no group has two files.
pub fn split_chains(mut groups: Vec<Vec<DataFile>>, parts: usize) -> Vec<Vec<DataFile>> {
    while groups.len() < parts {
        let size = |g: &Vec<DataFile>| g.iter().map(|f| f.size).sum::<u64>();
        let Some((longest, _)) = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.len() > 1)
            .max_by_key(|(_, g)| size(g))
        else {
            break;
        };
        let chain = groups.swap_remove(longest);
        let half = size(&chain) / 2;
        let mut sum = 0;
        let cut = chain
            .iter()
            .position(|f| {
                sum += f.size;
                sum >= half
            })
            .map_or(1, |i| (i + 1).clamp(1, chain.len() - 1));
        let mut first = chain;
        let second = first.split_off(cut);
        groups.push(first);
        groups.push(second);
    }
    groups
}

/// Splits files into as few chains as possible, each ordered by timestamp
/// without overlap.
pub fn ordered_groups(mut files: Vec<DataFile>) -> Vec<Vec<DataFile>> {
    files.sort_by(|a, b| (a.min_ts, a.max_ts, &a.path).cmp(&(b.min_ts, b.max_ts, &b.path)));
    let mut groups: Vec<Vec<DataFile>> = Vec::new();
    for f in files {
        let slot = groups
            .iter_mut()
            .find(|g| g.last().and_then(|l| l.max_ts) <= f.min_ts);
        match slot {
            Some(g) => g.push(f),
            None => groups.push(vec![f]),
        }
    }
    groups
}

#[async_trait]
impl TableProvider for TableScanProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        // The scan applies what it can itself (see `scan_filter`).
        Ok(filters
            .iter()
            .map(|f| match scan_filter::evaluable(f) {
                true => TableProviderFilterPushDown::Exact,
                false => TableProviderFilterPushDown::Inexact,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.table.check_readable()?;
        self.table.refresh()?;
        let (snapshot, pending) = self.table.read_view()?;
        let meta = &snapshot.meta;
        let ts_index = meta.timestamp_index();
        let range = match &meta.timestamp {
            Some(ts) => TsRange::from_filters(filters, ts),
            None => TsRange::ALL,
        };
        let files: Vec<DataFile> = snapshot
            .manifest
            .files
            .iter()
            .filter(|f| range.meets(f))
            .cloned()
            .collect();
        let ncols = self.schema.fields().len();
        let output: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..ncols).collect(),
        };
        let filter = ScanFilter::new(
            state,
            &self.schema,
            output,
            filters,
            meta.timestamp.as_deref(),
        )?;
        let unapplied = match self.unapplied(pending, ts_index, &filter.columns)? {
            Some(rows) => Some(filter.apply(rows, limit)?),
            None => None,
        };
        if files.is_empty() {
            if let Some(rows) = unapplied {
                return Ok(rows);
            }
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let groups = match ts_index {
            Some(_) => split_chains(
                ordered_groups(files),
                state.config_options().execution.target_partitions,
            ),
            None => vec![files],
        };
        let files: Arc<dyn ExecutionPlan> = if self.fits_cache(&groups, &filter.columns, ts_index) {
            let (store_url, base) = self.store_location()?;
            Arc::new(CachedScanExec::new(ScanParts {
                table: Arc::clone(&self.table),
                cache: Arc::clone(&self.cache),
                store: store_url.to_string(),
                base: base.clone(),
                table_schema: Arc::clone(&self.schema),
                columns: filter.columns.clone(),
                width: filter.width,
                condition: filter.condition.clone(),
                ts_index,
                range,
                groups,
                partitions: state.config_options().execution.target_partitions,
                pin: Arc::clone(&snapshot.manifest),
            })?)
        } else {
            let pin = (&snapshot.manifest, ts_index);
            self.parquet_scan(state, groups, &filter, limit, pin)?
        };
        match unapplied {
            Some(rows) => Ok(UnionExec::try_new(vec![files, rows])?),
            None => Ok(files),
        }
    }
}

impl TableScanProvider {
    /// The scan of `groups` through DataFusion's Parquet reader (with the
    /// page index cached with each footer), the conditions right above it.
    fn parquet_scan(
        &self,
        state: &dyn Session,
        groups: Vec<Vec<DataFile>>,
        filter: &ScanFilter,
        limit: Option<usize>,
        (manifest, ts_index): (&Arc<crate::storage::Manifest>, Option<usize>),
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let ncols = self.schema.fields().len();
        let (store_url, base) = self.store_location()?;
        let local = self.table.loc.remote.is_none();
        let file_groups: Vec<FileGroup> = groups
            .into_iter()
            .map(|g| {
                let files: Vec<PartitionedFile> = g
                    .iter()
                    .map(|f| {
                        let path = format!("{base}{}", f.path);
                        let mut file = PartitionedFile::new(path.as_str(), f.size);
                        // `new` percent-encodes characters object stores
                        // avoid (`<`, `%`, `{`…), which on a local disk
                        // names another file: a table directory is named
                        // as the table is, so its files are taken as is.
                        if local && let Ok(location) = object_store::path::Path::parse(&path) {
                            file.object_meta.location = location;
                        }
                        // Every file carries the snapshot it was listed
                        // from: while the plan lives, files later commits
                        // retired are kept (see `Table::retire`).
                        file.with_statistics(Arc::new(file_statistics(
                            f,
                            ncols,
                            ts_index,
                            &self.schema,
                        )))
                        .with_extension(SnapshotPin(Arc::clone(manifest)))
                    })
                    .collect();
                FileGroup::new(files)
            })
            .collect();

        let options = state.table_options().parquet.clone();
        let hint = options.global.metadata_size_hint;
        // As `ParquetFormat` makes its source and plan, but with readers
        // that cache the page index with the footer.
        let store = state.runtime_env().object_store(store_url.clone())?;
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        let mut source = ParquetSource::new(TableSchema::from(Arc::clone(&self.schema)))
            .with_table_parquet_options(options)
            .with_parquet_file_reader_factory(Arc::new(IndexedReaderFactory(
                CachedParquetFileReaderFactory::new(store, cache),
            )));
        if let Some(hint) = hint {
            source = source.with_metadata_size_hint(hint);
        }
        let mut builder = FileScanConfigBuilder::new(store_url, Arc::new(source))
            .with_file_groups(file_groups)
            .with_projection_indices(Some(filter.columns.clone()))?
            .with_limit(limit.filter(|_| filter.predicate.is_none()));
        let ordering = ts_index.and_then(|i| {
            LexOrdering::new(vec![PhysicalSortExpr::new(
                Arc::new(Column::new(self.schema.field(i).name(), i)),
                SortOptions {
                    descending: false,
                    nulls_first: false,
                },
            )])
        });
        if let Some(o) = &ordering {
            builder = builder.with_output_ordering(vec![o.clone()]);
        }
        filter.apply(DataSourceExec::from_data_source(builder.build()), limit)
    }

    /// The object store the table's files are in and the table's path there.
    fn store_location(&self) -> datafusion::error::Result<(ObjectStoreUrl, String)> {
        Ok(match &self.table.loc.remote {
            Some(r) => (
                ObjectStoreUrl::parse(r.bucket.url.as_str())?,
                format!("{}/", r.prefix),
            ),
            None => {
                let dir = self.table.loc.dir.to_string_lossy();
                let dir = dir.trim_start_matches('/').trim_end_matches('/');
                (ObjectStoreUrl::local_filesystem(), format!("{dir}/"))
            }
        })
    }

    /// Whether a scan of `groups` is served from decoded columns: when the
    /// columns it reads (whole files of them: a file is decoded whole) fit
    /// in half the column cache. Bigger scans stream from Parquet.
    fn fits_cache(&self, groups: &[Vec<DataFile>], columns: &[usize], ts: Option<usize>) -> bool {
        let fields = self.schema.fields();
        let width: u64 = columns
            .iter()
            .chain(ts.iter().filter(|t| !columns.contains(t)))
            .map(|&c| column_cache::width_of(fields[c].data_type()))
            .sum();
        let rows: u64 = groups.iter().flatten().map(|f| f.rows).sum();
        self.cache.admits(rows.saturating_mul(width))
    }

    /// The rows of the table's write-ahead log not yet applied, as one
    /// more input sorted on the designated timestamp like every file
    /// chain (so ordered reads merge it in rather than sort).
    fn unapplied(
        &self,
        pending: Vec<RecordBatch>,
        ts_index: Option<usize>,
        columns: &[usize],
    ) -> datafusion::error::Result<Option<Arc<dyn ExecutionPlan>>> {
        if pending.iter().all(|b| b.num_rows() == 0) {
            return Ok(None);
        }
        let batches = pending
            .iter()
            .map(|b| crate::storage::conform(b, &self.schema))
            .collect::<crate::error::Result<Vec<_>>>()?;
        let mut all = concat_batches(&self.schema, &batches)?;
        if let Some(i) = ts_index {
            let order = sort_to_indices(all.column(i), None, None)?;
            all = take_record_batch(&all, &order)?;
        }
        let mut source = MemorySourceConfig::try_new(
            &[vec![all]],
            Arc::clone(&self.schema),
            Some(columns.to_vec()),
        )?;
        if let Some(i) = ts_index {
            let ordering = LexOrdering::new(vec![PhysicalSortExpr::new(
                Arc::new(Column::new(self.schema.field(i).name(), i)),
                SortOptions {
                    descending: false,
                    nulls_first: false,
                },
            )]);
            source = source.try_with_sort_information(ordering.into_iter().collect())?;
        }
        Ok(Some(DataSourceExec::from_data_source(source)))
    }
}

/// The manifest snapshot a scan reads, attached to its files.
#[derive(Debug, Clone)]
pub struct SnapshotPin(pub Arc<crate::storage::Manifest>);

/// Statistics DataFusion uses to check that files of a group do not
/// overlap: the row count and the designated timestamp's min and max.
fn file_statistics(
    f: &DataFile,
    ncols: usize,
    ts_index: Option<usize>,
    schema: &SchemaRef,
) -> Statistics {
    let mut columns = vec![ColumnStatistics::new_unknown(); ncols];
    if let (Some(i), Some(min), Some(max)) = (ts_index, f.min_ts, f.max_ts) {
        let as_scalar = |micros: i64| -> Option<ScalarValue> {
            let v = ScalarValue::TimestampMicrosecond(Some(micros), Some(Arc::from("UTC")));
            v.cast_to(schema.field(i).data_type()).ok()
        };
        if let (Some(lo), Some(hi)) = (as_scalar(min), as_scalar(max)) {
            columns[i].min_value = Precision::Exact(lo);
            columns[i].max_value = Precision::Exact(hi);
            columns[i].null_count = Precision::Exact(0);
        }
    }
    Statistics {
        num_rows: Precision::Exact(f.rows as usize),
        total_byte_size: Precision::Absent,
        column_statistics: columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, min: i64, max: i64) -> DataFile {
        DataFile::spanning(path, 1, min, max)
    }

    #[test]
    fn chains_never_overlap() {
        let files = vec![
            file("a", 0, 10),
            file("b", 5, 15),
            file("c", 10, 20),
            file("d", 30, 40),
            file("e", 50, 60),
        ];
        let groups = ordered_groups(files);
        assert_eq!(groups.len(), 2, "{groups:?}");
        for g in &groups {
            for w in g.windows(2) {
                assert!(w[0].max_ts <= w[1].min_ts, "{g:?}");
            }
        }
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 5);
    }

    #[test]
    fn long_chains_are_cut_in_order() {
        let chain: Vec<DataFile> = (0..5)
            .map(|i| file(&format!("f{i}"), i * 10, i * 10 + 9))
            .collect();
        let groups = split_chains(vec![chain.clone()], 2);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 5);
        for g in &groups {
            assert!(g.windows(2).all(|w| w[0].max_ts <= w[1].min_ts), "{g:?}");
        }
        // Enough groups already, or single files: left as they are.
        assert_eq!(split_chains(vec![chain.clone()], 1).len(), 1);
        assert_eq!(split_chains(vec![vec![chain[0].clone()]], 4).len(), 1);
        assert_eq!(split_chains(vec![chain], 8).len(), 5);
    }
}
