//! Writing and reading the Parquet files of a table.
//!
//! Rows are routed to their time partition and each new file is sorted by
//! the designated timestamp (stable, so rows with equal timestamps keep their
//! arrival order, as in QuestDB). Files get names that are never reused, so a
//! reader holding an old manifest never sees a file change under it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, RecordBatch, TimestampMicrosecondArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use datafusion::parquet::basic::{Compression, Encoding};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::reader::ChunkReader;
use datafusion::parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::{DataFile, TableLoc};
use crate::error::{Error, Result};
use crate::time::PartitionBy;

/// How a table's rows are laid out: its Arrow schema, which column is the
/// designated timestamp and the partition unit.
#[derive(Debug, Clone)]
pub struct Layout {
    pub schema: SchemaRef,
    pub timestamp: Option<usize>,
    pub partition_by: PartitionBy,
    /// Columns whose files carry Parquet bloom filters (QuestDB's indexed
    /// SYMBOL columns), so `= 'x'` and `IN (…)` skip row groups without
    /// the value.
    pub bloom: Vec<String>,
}

/// The `created_by` of every Parquet file sluice writes.
pub const CREATED_BY: &str = "sluice";

/// Encodings and codecs per column type, chosen for import throughput
/// (measured on the import bench, 10M weather rows):
/// - integers and timestamps: DELTA_BINARY_PACKED without a codec. Deltas
///   are bit-packed, so sorted timestamps take under 3 bytes a row and
///   small integers 1–2; it is cheaper than Snappy over PLAIN and smaller.
/// - floating point: PLAIN without a codec. Measured values with full
///   precision barely compress, and a codec over them cost about 7% of
///   the import time for almost no size.
/// - text: dictionary encoded (codes of low-cardinality strings are tiny)
///   and Snappy, the codec every Parquet reader has.
///
/// The result was 410 MB against 536 MB for Snappy everywhere, and faster.
///
/// Pruning: the manifest's per-file timestamp range prunes partitions and
/// files, statistics per column chunk prune row groups (256 Ki rows), and
/// timestamp columns (the designated one is sorted) also get a page index
/// over pages of at most [`PAGE_ROWS`] rows, so a query of one hour of a
/// day reads the few pages of that hour of every column it needs, not
/// whole row groups.
/// The most rows a data page holds: 16 Ki rows of a DOUBLE are 128 KiB.
pub const PAGE_ROWS: usize = 16 * 1024;

/// The most rows a row group holds.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Bloom filter sizing: at most one distinct value per row of a row group,
/// at a 1% false-positive rate. The writer sizes the filter for that many
/// and folds it down to the distinct values it saw, so a SYMBOL column of
/// a few hundred values costs a few hundred bytes a row group, and one of
/// order ids still skips the row groups without the id.
const BLOOM_NDV: u64 = ROW_GROUP_ROWS as u64;
const BLOOM_FPP: f64 = 0.01;

fn writer_properties(schema: &SchemaRef, bloom: &[String]) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_created_by(CREATED_BY.to_string());
    for f in schema.fields() {
        let col = ColumnPath::from(f.name().as_str());
        match f.data_type() {
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Dictionary(..) => {
                b = b
                    .set_column_dictionary_enabled(col.clone(), true)
                    .set_column_compression(col, Compression::SNAPPY);
            }
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt32
            | DataType::Timestamp(..) => {
                if matches!(f.data_type(), DataType::Timestamp(..)) {
                    b = b.set_column_statistics_enabled(col.clone(), EnabledStatistics::Page);
                }
                b = b.set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
            }
            _ => {}
        }
    }
    for name in bloom {
        let col = ColumnPath::from(name.as_str());
        b = b
            .set_column_bloom_filter_enabled(col.clone(), true)
            .set_column_bloom_filter_max_ndv(col.clone(), BLOOM_NDV)
            .set_column_bloom_filter_fpp(col, BLOOM_FPP);
    }
    b.build()
}

/// The designated timestamp column of `batch` as UTC microseconds.
pub fn timestamp_micros(column: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    let micros = match column.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => column.clone(),
        DataType::Timestamp(_, tz) => cast(
            column,
            &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        )?,
        other => {
            return Err(Error::Internal(format!(
                "designated timestamp has type {other}"
            )));
        }
    };
    Ok(micros
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("cast to microseconds")
        .clone())
}

/// Fails when a row has no designated timestamp: every row of a table with
/// one belongs to a partition by it.
pub fn check_designated(layout: &Layout, batch: &RecordBatch) -> Result<()> {
    if let Some(i) = layout.timestamp
        && batch.column(i).null_count() > 0
    {
        return Err(Error::BadValue {
            column: layout.schema.field(i).name().clone(),
            value: "NULL".into(),
            from: "NULL".into(),
            to: "designated TIMESTAMP (cannot be NULL)".into(),
        });
    }
    Ok(())
}

/// Writes `batches` (already in the table's schema) into new Parquet files
/// below `table_dir`, one per touched partition, each sorted by the
/// designated timestamp. `tag` makes the file names unique. Returns the
/// entries for the manifest; nothing is visible until the caller commits.
pub fn write_rows(
    table_dir: &Path,
    layout: &Layout,
    batches: &[RecordBatch],
    tag: &str,
) -> Result<Vec<DataFile>> {
    let batch = concat_batches(&layout.schema, batches)?;
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    // Route rows: partition floor -> row indices (in arrival order).
    let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    check_designated(layout, &batch)?;
    let ts = match layout.timestamp {
        Some(i) => {
            let ts = timestamp_micros(batch.column(i))?;
            for (row, t) in ts.values().iter().enumerate() {
                groups
                    .entry(layout.partition_by.floor(*t))
                    .or_default()
                    .push(row as u32);
            }
            Some(ts)
        }
        None => {
            groups.insert(i64::MIN, (0..batch.num_rows() as u32).collect());
            None
        }
    };
    let groups: Vec<(i64, Vec<u32>)> = groups.into_iter().collect();
    groups
        .into_par_iter()
        .enumerate()
        .map(|(n, (floor, mut rows))| {
            let (min_ts, max_ts) = match &ts {
                Some(ts) => {
                    let values = ts.values();
                    rows.sort_by_key(|&r| values[r as usize]);
                    (
                        Some(values[rows[0] as usize]),
                        Some(values[*rows.last().expect("non-empty") as usize]),
                    )
                }
                None => (None, None),
            };
            let part_batch = take_record_batch(&batch, &UInt32Array::from(rows))?;
            let partition = match layout.partition_by {
                PartitionBy::None => "default".to_string(),
                unit => unit.partition_name(floor),
            };
            let rel = format!("{partition}/{tag}-{n}.parquet");
            let size = write_file(&table_dir.join(&rel), &part_batch, &layout.bloom)?;
            Ok(DataFile {
                partition,
                path: rel,
                rows: part_batch.num_rows() as u64,
                size,
                min_ts,
                max_ts,
            })
        })
        .collect()
}

/// Writes one Parquet file durably; returns its size in bytes.
pub fn write_file(path: &Path, batch: &RecordBatch, bloom: &[String]) -> Result<u64> {
    let dir = path.parent().expect("file has a partition directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let props = writer_properties(&batch.schema(), bloom);
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
    writer.write(batch)?;
    let file = writer.into_inner()?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    super::sync_dir(dir)?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    Ok(size)
}

/// A Parquet file written batch by batch (the importer streams partitions
/// that do not fit one batch). Invisible until a manifest names it.
pub struct FileWriter {
    path: std::path::PathBuf,
    writer: ArrowWriter<std::fs::File>,
}

impl FileWriter {
    pub fn create(path: &Path, schema: SchemaRef, bloom: &[String]) -> Result<FileWriter> {
        let dir = path.parent().expect("file has a partition directory");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let props = writer_properties(&schema, bloom);
        let writer = ArrowWriter::try_new(file, schema, Some(props))?;
        Ok(FileWriter {
            path: path.to_path_buf(),
            writer,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch)?;
        Ok(())
    }

    /// Closes the file without waiting for the disk and returns its size;
    /// the caller makes all its files durable at once with
    /// [`super::sync_tree`] before any manifest names them.
    pub fn finish(self) -> Result<u64> {
        let file = self.writer.into_inner()?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // Start writing the file back now, without waiting, so the disk
            // works while the importer writes the next partitions and the
            // final flush has little left to do. Only a hint: errors surface
            // at that flush.
            // SAFETY: the descriptor is open for the duration of the call.
            unsafe {
                libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
        Ok(file.metadata().map_err(|e| Error::io(&self.path, e))?.len())
    }

    /// Drops the file unfinished and removes it.
    pub fn abandon(self) {
        let path = self.path.clone();
        drop(self);
        let _ = std::fs::remove_file(path);
    }
}

/// Checks that a file exists and its Parquet footer reads.
pub fn verify_file(path: &Path) -> std::result::Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    Ok(())
}

/// Reads whole files back (to rewrite a table), each batch in `schema`
/// by column name (see [`conform`]). A file on object storage is fetched
/// whole (compaction bounds how many bytes it reads at once).
pub fn read_files(
    loc: &TableLoc,
    files: &[DataFile],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for f in files {
        each_batch(loc, f, schema, |b| {
            out.push(b);
            Ok(())
        })?;
    }
    Ok(out)
}

/// Calls `each` with the batches of file `f` in turn (64 Ki rows at most),
/// each in `schema` by column name (see [`conform`]): memory holds one
/// batch, not the file. A file on object storage is fetched whole first.
pub fn each_batch(
    loc: &TableLoc,
    f: &DataFile,
    schema: &SchemaRef,
    mut each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let reader = match &loc.remote {
        Some(_) => ParquetRecordBatchReaderBuilder::try_new(loc.read(&f.path)?)?
            .with_batch_size(64 * 1024)
            .build()?,
        None => {
            let path = loc.dir.join(&f.path);
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            ParquetRecordBatchReaderBuilder::try_new(file)?
                .with_batch_size(64 * 1024)
                .build()?
        }
    };
    for b in reader {
        each(conform(&b?, schema)?)?;
    }
    Ok(())
}

/// The columns `fields` of file `f`, whole, in the file's row order, each
/// as arrays of `chunk` rows (the last one shorter) with buffers of their
/// own, so that a chunk weighs what its rows do. Columns are read by name,
/// as [`conform`] reads them: a column the file lacks is all NULL, one of
/// another type is cast. Only the columns asked for are decoded.
pub fn read_column_chunks(
    loc: &TableLoc,
    f: &DataFile,
    fields: &[FieldRef],
    chunk: usize,
) -> Result<Vec<Vec<ArrayRef>>> {
    match &loc.remote {
        Some(_) => column_chunks(
            ParquetRecordBatchReaderBuilder::try_new(loc.read(&f.path)?)?,
            f,
            fields,
            chunk,
        ),
        None => {
            let path = loc.dir.join(&f.path);
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            column_chunks(
                ParquetRecordBatchReaderBuilder::try_new(file)?,
                f,
                fields,
                chunk,
            )
        }
    }
}

fn column_chunks<R: ChunkReader + 'static>(
    builder: ParquetRecordBatchReaderBuilder<R>,
    f: &DataFile,
    fields: &[FieldRef],
    chunk: usize,
) -> Result<Vec<Vec<ArrayRef>>> {
    let file_schema = Arc::clone(builder.schema());
    let present: Vec<usize> = fields
        .iter()
        .filter_map(|want| file_schema.index_of(want.name()).ok())
        .collect();
    let target: SchemaRef = Arc::new(Schema::new(fields.to_vec()));
    let mut out: Vec<Vec<ArrayRef>> = vec![Vec::new(); fields.len()];
    if present.is_empty() {
        // None of the columns is in the file: the rows still are.
        let mut left = f.rows as usize;
        while left > 0 {
            let n = left.min(chunk);
            for (column, field) in out.iter_mut().zip(fields) {
                column.push(datafusion::arrow::array::new_null_array(
                    field.data_type(),
                    n,
                ));
            }
            left -= n;
        }
        return Ok(out);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), present);
    for batch in builder
        .with_batch_size(chunk.max(1))
        .with_projection(mask)
        .build()?
    {
        let batch = conform(&batch?, &target)?;
        for (column, array) in out.iter_mut().zip(batch.columns()) {
            column.push(Arc::clone(array));
        }
    }
    Ok(out)
}

/// One new file of a partition written batch by batch, in the order the
/// batches come (the caller keeps them sorted by the designated
/// timestamp): its manifest entry is known once it is finished. The file
/// is created at the first row, so a file left without rows is none; one
/// dropped unfinished is removed. Not durable until the caller syncs.
pub struct StreamedFile {
    dir: std::path::PathBuf,
    rel: String,
    partition: String,
    schema: SchemaRef,
    bloom: Vec<String>,
    timestamp: Option<usize>,
    writer: Option<FileWriter>,
    rows: u64,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
}

impl StreamedFile {
    pub fn new(table_dir: &Path, partition: &str, tag: &str, layout: &Layout) -> StreamedFile {
        StreamedFile {
            dir: table_dir.to_path_buf(),
            rel: format!("{partition}/{tag}.parquet"),
            partition: partition.to_string(),
            schema: Arc::clone(&layout.schema),
            bloom: layout.bloom.clone(),
            timestamp: layout.timestamp,
            writer: None,
            rows: 0,
            min_ts: None,
            max_ts: None,
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if let Some(i) = self.timestamp {
            let ts = timestamp_micros(batch.column(i))?;
            let (lo, hi) = (
                datafusion::arrow::compute::min(&ts),
                datafusion::arrow::compute::max(&ts),
            );
            self.min_ts = match (self.min_ts, lo) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.max_ts = self.max_ts.max(hi);
        }
        let writer = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(FileWriter::create(
                &self.dir.join(&self.rel),
                Arc::clone(&self.schema),
                &self.bloom,
            )?),
        };
        writer.write(batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The finished file's entry; `None` when no row was written.
    pub fn finish(mut self) -> Result<Option<DataFile>> {
        let Some(writer) = self.writer.take() else {
            return Ok(None);
        };
        let size = writer.finish()?;
        Ok(Some(DataFile {
            partition: self.partition.clone(),
            path: self.rel.clone(),
            rows: self.rows,
            size,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
        }))
    }
}

impl Drop for StreamedFile {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            w.abandon();
        }
    }
}

/// A write-ahead log record's rows in the table's current `schema`: by
/// position when only names differ (the record was written before a
/// RENAME COLUMN), else by name as [`conform`] does.
pub fn conform_logged(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let fields = batch.schema_ref().fields();
    let renamed = fields.len() == schema.fields().len()
        && fields
            .iter()
            .zip(schema.fields())
            .all(|(a, b)| a.data_type() == b.data_type())
        && !fields
            .iter()
            .zip(schema.fields())
            .any(|(a, b)| a.name() != b.name() && schema.field_with_name(a.name()).is_ok());
    if renamed {
        return Ok(RecordBatch::try_new(
            Arc::clone(schema),
            batch.columns().to_vec(),
        )?);
    }
    conform(batch, schema)
}

/// `batch` in `schema`, column by column by name: a column the batch lacks
/// (added to the table after the rows were written) reads NULL, one the
/// schema lacks (dropped) is left out, and one of another type (changed
/// by ALTER COLUMN TYPE, which checked every value converts) is cast.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(RecordBatch::try_new(
            Arc::clone(schema),
            batch.columns().to_vec(),
        )?);
    }
    let rows = batch.num_rows();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(Arc::clone(c)),
            Some(c) => Ok(cast(c, f.data_type())?),
            None => Ok(datafusion::arrow::array::new_null_array(
                f.data_type(),
                rows,
            )),
        })
        .collect::<Result<_>>()?;
    let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &options,
    )?)
}
