//! `COPY t TO 'dir'` and `COPY (query) TO 'dir'` `WITH FORMAT PARQUET …`:
//! statement checks, confinement of the destination to the export root,
//! the plan of the rows (ordered by the timestamp a partitioned export
//! follows) and the Parquet writer's properties; then the hand-over to the
//! exporter, which runs in the background and answers with an id.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use datafusion::parquet::schema::types::ColumnPath;
use datafusion::prelude::ident;
use futures::StreamExt;

use super::copy::{copy_schema, resolve_copy_path};
use super::{Engine, Output, Rows};
use crate::error::{Error, Result};
use crate::export::{ExportRequest, Exporter, Split};
use crate::sql::{CopySource, CopyTo, ExportOptions, ParquetCodec};
use crate::time::PartitionBy;

/// Rows per row group when the statement names none (QuestDB's default).
pub const DEFAULT_ROW_GROUP_SIZE: u64 = 100_000;
/// Data page size when the statement names none (QuestDB's default).
pub const DEFAULT_DATA_PAGE_SIZE: u64 = 1 << 20;

impl Engine {
    pub(super) async fn copy_to(&self, c: CopyTo) -> Result<Output> {
        let Some(exporter) = &self.exporter else {
            return Err(Error::invalid(
                "COPY TO is disabled ['cairo.sql.copy.export.root' is not set?]",
            ));
        };
        let invalid = |message: String| Error::Invalid {
            message,
            position: Some(c.path_position),
        };
        let dest = export_destination(exporter.root(), &c.path).map_err(invalid)?;
        let (table_name, plan, table_split) = match &c.source {
            CopySource::Table(t) => {
                let table = self.table(t)?;
                let meta = table.meta();
                let split = meta.timestamp.clone().map(|ts| (ts, meta.partition_by));
                (t.name.clone(), self.table_scan(t).await?, split)
            }
            CopySource::Query(q) => ("query".to_string(), self.inner_query(q, &[]).await?, None),
        };
        let mut df = match &c.source {
            // A table's files form one chain in time order: read as one,
            // the rows come ordered with no merge of interleaved chains
            // (which took about a tenth of an export's CPU), and the
            // pool's threads are left to encoding, most of the work.
            CopySource::Table(_) => {
                let mut state = self.ctx.state();
                state.config_mut().options_mut().execution.target_partitions = 1;
                datafusion::dataframe::DataFrame::new(state, plan)
            }
            CopySource::Query(_) => self.ctx.execute_logical_plan(plan).await?,
        };
        let schema: Schema = df.schema().as_arrow().clone();
        // Which timestamp the files follow: the table's designated one, or
        // a query's first timestamp column.
        let unit = c
            .options
            .partition_by
            .or(table_split.as_ref().map(|(_, unit)| *unit))
            .unwrap_or(PartitionBy::None);
        let split = if unit == PartitionBy::None {
            None
        } else {
            let column = match &table_split {
                Some((ts, _)) => schema.index_of(ts).ok(),
                None => schema.fields().iter().position(|f| {
                    matches!(
                        f.data_type(),
                        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
                    )
                }),
            };
            let Some(column) = column else {
                return Err(Error::bad_option(
                    "PARTITION_BY",
                    format!(
                        "PARTITION_BY {} needs a timestamp column: the {} has none",
                        unit.name(),
                        if matches!(c.source, CopySource::Table(_)) {
                            "table"
                        } else {
                            "query"
                        }
                    ),
                ));
            };
            // Ordered by that column, the rows of one partition come
            // together and one file is open at a time.
            df = df.sort(vec![ident(schema.field(column).name()).sort(true, false)])?;
            Some(Split { column, unit })
        };
        let props = writer_properties(&c.options, &schema)?;
        let task = Arc::new(df.task_ctx());
        let physical = df.create_physical_plan().await?;
        let stream = datafusion::physical_plan::execute_stream(Arc::clone(&physical), task)?;
        let rows = Rows::new(stream).holding(physical);
        let id = exporter.submit(ExportRequest {
            table_name,
            export_path: c.path.clone(),
            dest,
            schema: Arc::clone(&rows.schema),
            rows: rows.into_stream().boxed(),
            props,
            split,
        })?;
        let batch = datafusion::arrow::array::RecordBatch::try_new(
            copy_schema(false),
            vec![Arc::new(datafusion::arrow::array::StringArray::from(vec![
                id,
            ]))],
        )?;
        Ok(Output::Rows(Rows::from_batches(
            copy_schema(false),
            vec![batch],
        )))
    }
}

/// Resolves an export's destination below the export root: not the root
/// itself, not an exporter's scratch, not a directory that holds files.
fn export_destination(root: &Path, name: &str) -> std::result::Result<std::path::PathBuf, String> {
    let dest = resolve_copy_path(root, name).map_err(|e| e.replace("copy root", "export root"))?;
    let rel = dest.strip_prefix(root).unwrap_or(&dest);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().to_string());
    match first {
        None => {
            return Err(format!(
                "the export needs a directory below the export root [path={name}]"
            ));
        }
        Some(f) if Exporter::is_scratch(&f) => {
            return Err(format!(
                "the name is reserved for exports in progress [path={name}]"
            ));
        }
        Some(_) => {}
    }
    if dest.is_file() {
        return Err(format!("the export path is a file [path={name}]"));
    }
    if dest.is_dir() && std::fs::read_dir(&dest).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "the export directory exists and is not empty [path={name}]"
        ));
    }
    Ok(dest)
}

/// The Parquet writer's properties from the statement's options.
fn writer_properties(o: &ExportOptions, schema: &Schema) -> Result<WriterProperties> {
    let codec = o.codec.unwrap_or(ParquetCodec::Lz4Raw);
    let level = o.compression_level;
    let bad_level = |e: datafusion::parquet::errors::ParquetError| {
        Error::bad_option(
            "COMPRESSION_LEVEL",
            format!("invalid COMPRESSION_LEVEL for {codec:?}: {e}"),
        )
    };
    let compression = match codec {
        ParquetCodec::Gzip => Compression::GZIP(
            GzipLevel::try_new(level.unwrap_or(6).clamp(0, u32::MAX as i64) as u32)
                .map_err(bad_level)?,
        ),
        ParquetCodec::Zstd => Compression::ZSTD(
            ZstdLevel::try_new(level.unwrap_or(3).clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                .map_err(bad_level)?,
        ),
        ParquetCodec::Brotli => Compression::BROTLI(
            BrotliLevel::try_new(level.unwrap_or(1).clamp(0, u32::MAX as i64) as u32)
                .map_err(bad_level)?,
        ),
        other => {
            if level.is_some() {
                return Err(Error::bad_option(
                    "COMPRESSION_LEVEL",
                    format!("COMPRESSION_LEVEL applies to GZIP, ZSTD and BROTLI, not to {other:?}"),
                ));
            }
            match other {
                ParquetCodec::Uncompressed => Compression::UNCOMPRESSED,
                ParquetCodec::Snappy => Compression::SNAPPY,
                ParquetCodec::Lz4 => Compression::LZ4,
                _ => Compression::LZ4_RAW,
            }
        }
    };
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(
            o.row_group_size.unwrap_or(DEFAULT_ROW_GROUP_SIZE) as usize
        ))
        .set_data_page_size_limit(o.data_page_size.unwrap_or(DEFAULT_DATA_PAGE_SIZE) as usize)
        .set_statistics_enabled(match o.statistics {
            Some(false) => EnabledStatistics::None,
            _ => EnabledStatistics::Page,
        })
        .set_writer_version(match o.parquet_version {
            Some(2) => WriterVersion::PARQUET_2_0,
            _ => WriterVersion::PARQUET_1_0,
        })
        .set_created_by(crate::storage::files::CREATED_BY.to_string())
        // Dictionaries for text only, as the tables' own files. Measured
        // on 10M weather rows to one file: every column 6.35 s and
        // 556 MB; text and integers 3.1-3.8 s and 445 MB; text only
        // 2.6-3.0 s and 561 MB (hashing each value of a column into a
        // dictionary is most of an export's time).
        .set_dictionary_enabled(false);
    for f in schema.fields() {
        if matches!(
            f.data_type(),
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::Dictionary(..)
        ) {
            b = b.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), true);
        }
    }
    for name in &o.bloom_filter_columns {
        let Some(field) = schema
            .fields()
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
        else {
            return Err(Error::bad_option(
                "BLOOM_FILTER_COLUMNS",
                format!("BLOOM_FILTER_COLUMNS names a column the export has not [column={name}]"),
            ));
        };
        let path = ColumnPath::from(field.name().as_str());
        b = b.set_column_bloom_filter_enabled(path.clone(), true);
        if let Some(fpp) = o.bloom_filter_fpp {
            b = b.set_column_bloom_filter_fpp(path, fpp);
        }
    }
    Ok(b.build())
}
