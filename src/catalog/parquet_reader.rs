//! How table scans open Parquet files: through DataFusion's file metadata
//! cache, asking for the page index with the footer.
//!
//! DataFusion's own reader caches a file's footer without its page index
//! and reads the index from the file again on every query that prunes
//! pages (a one-hour query of a day's file does), then builds the reader
//! metadata again: a read and a parse per file per query, and on object
//! storage a ranged GET. Asked for the index up front, the cache keeps
//! footer and index together (its size bound, DataFusion's
//! `metadata_cache_limit`, still holds) and later queries find both.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::Result as ParquetResult;
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;

/// DataFusion's cached reader factory whose readers fetch the page index
/// with the footer.
#[derive(Debug)]
pub struct IndexedReaderFactory(pub CachedParquetFileReaderFactory);

impl ParquetFileReaderFactory for IndexedReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let inner = self
            .0
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(WithPageIndex(inner)))
    }
}

struct WithPageIndex(Box<dyn AsyncFileReader + Send>);

impl AsyncFileReader for WithPageIndex {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        self.0.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        self.0.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        async move {
            let options = options
                .cloned()
                .unwrap_or_default()
                .with_page_index_policy(PageIndexPolicy::Optional);
            self.0.get_metadata(Some(&options)).await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::parquet::arrow::ArrowWriter;

    /// The opener asks for the footer alone; the reader answers with the
    /// page index too (DataFusion's own does not), and the cache keeps it.
    #[test]
    fn readers_fetch_the_page_index_with_the_footer() {
        let dir = std::env::temp_dir().join(format!("sluice-page-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.parquet");
        let batch = RecordBatch::try_from_iter([(
            "v",
            Arc::new(Int64Array::from_iter_values(0..10_000)) as _,
        )])
        .unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None)
                .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        let located = path.to_str().unwrap().trim_start_matches('/').to_string();
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new());
        let footer_only = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip);
        let metadata = |factory: &dyn ParquetFileReaderFactory| {
            let mut reader = factory
                .create_reader(
                    0,
                    PartitionedFile::new(located.clone(), size),
                    None,
                    &ExecutionPlanMetricsSet::new(),
                )
                .unwrap();
            futures::executor::block_on(reader.get_metadata(Some(&footer_only))).unwrap()
        };
        let fresh_cache = || {
            RuntimeEnvBuilder::new()
                .build_arc()
                .unwrap()
                .cache_manager
                .get_file_metadata_cache()
        };
        let plain = CachedParquetFileReaderFactory::new(Arc::clone(&store), fresh_cache());
        assert!(
            metadata(&plain).column_index().is_none(),
            "DataFusion's reader skips it"
        );
        let cache = fresh_cache();
        let ours = IndexedReaderFactory(CachedParquetFileReaderFactory::new(
            Arc::clone(&store),
            Arc::clone(&cache),
        ));
        for _ in 0..2 {
            let m = metadata(&ours);
            assert!(m.column_index().is_some() && m.offset_index().is_some());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
