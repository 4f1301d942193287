//! Writes a stream of rows as Parquet files in one directory: all of them
//! in `default.parquet`, or, partitioned by a timestamp column, one file
//! per time partition named as a table's partitions are (`2024-01-02.parquet`).
//! The rows of a partitioned export arrive ordered by that column, so one
//! file is open at a time; its row group is written at the export's row
//! count or at the memory limit, whichever comes first. The columns of a
//! row group are encoded in parallel (one column writer per leaf column,
//! each batch's columns spread over the rayon pool): encoding, not
//! reading, is most of an export's work. A finished file is made durable
//! by a thread of its own ([`Syncer`]) while the next one is encoded.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::time::PartitionBy;

/// How the rows are split into files.
#[derive(Debug, Clone)]
pub struct Split {
    /// The timestamp column the partitions follow.
    pub column: usize,
    pub unit: PartitionBy,
}

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub files: u64,
    pub rows: u64,
}

struct Open {
    floor: i64,
    path: PathBuf,
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    /// The open row group's column writers (`None` between row groups).
    columns: Option<Vec<ArrowColumnWriter>>,
    row_groups: usize,
    /// Rows in the open row group.
    rows: usize,
}

impl Open {
    /// Encodes `batch` into the open row group, its columns in parallel.
    fn encode(&mut self, schema: &SchemaRef, batch: &RecordBatch) -> Result<()> {
        if self.columns.is_none() {
            self.columns = Some(self.factory.create_column_writers(self.row_groups)?);
        }
        let mut leaves: Vec<ArrowLeafColumn> = Vec::with_capacity(batch.num_columns());
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, array)?);
        }
        let columns = self.columns.as_mut().expect("row group open");
        columns
            .par_iter_mut()
            .zip(leaves.par_iter())
            .try_for_each(|(w, leaf)| w.write(leaf))?;
        self.rows += batch.num_rows();
        Ok(())
    }

    /// What the open row group holds, encoded.
    fn buffered(&self) -> usize {
        self.columns
            .as_ref()
            .map_or(0, |c| c.iter().map(|w| w.memory_size()).sum())
    }

    /// Closes the open row group (its columns in parallel) and appends it.
    fn flush(&mut self) -> Result<()> {
        let Some(columns) = self.columns.take() else {
            return Ok(());
        };
        let chunks = columns
            .into_par_iter()
            .map(|w| w.close())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.row_groups += 1;
        self.rows = 0;
        Ok(())
    }
}

/// Makes closed files durable on a thread of its own, so that encoding the
/// next file does not wait for the disk (an export of 100 daily files
/// otherwise waited for 100 fsyncs in turn). At most [`Syncer::QUEUE`]
/// files wait; the writer waits beyond that.
struct Syncer {
    queue: Option<std::sync::mpsc::SyncSender<(PathBuf, File)>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Syncer {
    const QUEUE: usize = 8;

    fn start() -> Result<Syncer> {
        let (queue, files) = std::sync::mpsc::sync_channel::<(PathBuf, File)>(Self::QUEUE);
        let thread = std::thread::Builder::new()
            .name("sluice-export-sync".into())
            .spawn(move || {
                for (path, file) in files {
                    file.sync_all().map_err(|e| Error::io(&path, e))?;
                }
                Ok(())
            })
            .map_err(|e| {
                Error::Internal(format!("could not start the export's sync thread: {e}"))
            })?;
        Ok(Syncer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Hands a closed file over; the thread's error if it has stopped.
    fn sync(&mut self, path: PathBuf, file: File) -> Result<()> {
        let sent = self.queue.as_ref().map(|q| q.send((path, file)));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => self.finish(),
        }
    }

    /// Waits until every file handed over is durable.
    fn finish(&mut self) -> Result<()> {
        self.queue = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Internal("the export's sync thread panicked".into())),
            None => Err(Error::Internal(
                "the export's sync thread has stopped".into(),
            )),
        }
    }
}

pub struct FilesWriter {
    dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    split: Option<Split>,
    memory: usize,
    row_group_rows: usize,
    open: Option<Open>,
    /// Whether `props` has its encodings fitted to the rows yet
    /// (`encodings`, on the first rows).
    fitted: bool,
    syncer: Syncer,
    pub written: Written,
}

impl FilesWriter {
    pub fn new(
        dir: &Path,
        schema: SchemaRef,
        props: WriterProperties,
        split: Option<Split>,
        memory: usize,
    ) -> Result<FilesWriter> {
        let row_group_rows = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
        Ok(FilesWriter {
            dir: dir.to_path_buf(),
            schema,
            props,
            split: split.filter(|s| s.unit != PartitionBy::None),
            memory,
            row_group_rows,
            open: None,
            fitted: false,
            syncer: Syncer::start()?,
            written: Written::default(),
        })
    }

    /// Writes `batch`, starting a new file wherever its partition changes.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if !self.fitted && batch.num_rows() > 0 {
            self.props = super::encodings::fitted(self.props.clone(), batch);
            self.fitted = true;
        }
        let Some(split) = self.split.clone() else {
            return self.write_to(i64::MIN, batch);
        };
        let floors = self.floors(batch, &split)?;
        let mut start = 0;
        while start < floors.len() {
            let floor = floors[start];
            let end = floors[start..]
                .iter()
                .position(|f| *f != floor)
                .map_or(floors.len(), |n| start + n);
            self.write_to(floor, &batch.slice(start, end - start))?;
            start = end;
        }
        Ok(())
    }

    /// The partition start of every row.
    fn floors(&self, batch: &RecordBatch, split: &Split) -> Result<Vec<i64>> {
        let column = batch.column(split.column);
        let micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let micros = micros
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| Error::Internal("timestamp cast".into()))?;
        if micros.null_count() > 0 {
            return Err(Error::invalid(format!(
                "cannot partition the export: column '{}' is NULL in a row (filter those rows out, or export with PARTITION_BY NONE)",
                self.schema.field(split.column).name()
            )));
        }
        Ok(micros
            .values()
            .iter()
            .map(|v| split.unit.floor(*v))
            .collect())
    }

    fn write_to(&mut self, floor: i64, batch: &RecordBatch) -> Result<()> {
        if self.open.as_ref().is_some_and(|o| o.floor != floor) {
            if self.open.as_ref().is_some_and(|o| o.floor > floor) {
                return Err(Error::Internal(
                    "export rows arrived out of timestamp order".into(),
                ));
            }
            self.close()?;
        }
        if self.open.is_none() {
            self.start(floor)?;
        }
        let open = self.open.as_mut().expect("a file is open");
        let mut at = 0;
        while at < batch.num_rows() {
            let n = (self.row_group_rows - open.rows).min(batch.num_rows() - at);
            open.encode(&self.schema, &batch.slice(at, n))?;
            at += n;
            // Bounded by configuration, not by ROW_GROUP_SIZE alone.
            if open.rows >= self.row_group_rows || open.buffered() >= self.memory {
                open.flush()?;
            }
        }
        self.written.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn start(&mut self, floor: i64) -> Result<()> {
        let unit = self.split.as_ref().map_or(PartitionBy::None, |s| s.unit);
        let path = self
            .dir
            .join(format!("{}.parquet", unit.partition_name(floor)));
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        // ArrowWriter sets the file up as readers expect it (the Arrow
        // schema in the footer); its parts then take the columns.
        let writer =
            ArrowWriter::try_new(file, Arc::clone(&self.schema), Some(self.props.clone()))?;
        let (file, factory) = writer.into_serialized_writer()?;
        self.open = Some(Open {
            floor,
            path,
            file,
            factory,
            columns: None,
            row_groups: 0,
            rows: 0,
        });
        Ok(())
    }

    /// Finishes the open file and hands it to the syncer.
    fn close(&mut self) -> Result<()> {
        if let Some(mut open) = self.open.take() {
            open.flush()?;
            let file = open.file.into_inner()?;
            self.syncer.sync(open.path, file)?;
            self.written.files += 1;
        }
        Ok(())
    }

    /// Closes the last file. An export of no rows without partitions still
    /// writes its one file, so readers learn the columns.
    pub fn finish(mut self) -> Result<Written> {
        if self.open.is_none() && self.split.is_none() {
            self.start(i64::MIN)?;
        }
        self.close()?;
        self.syncer.finish()?;
        crate::storage::sync_dir(&self.dir)?;
        Ok(self.written)
    }
}
