//! Writes a stream of rows as Parquet files in one directory: all of them
//! in `default.parquet`, or, partitioned by a timestamp column, one file
//! per time partition named as a table's partitions are (`2024-01-02.parquet`).
//! The rows of a partitioned export arrive ordered by that column, so rows
//! go to one file at a time. They are gathered into row groups (at the
//! export's row count, or at a share of the memory limit), and each row
//! group is encoded whole by a thread of the rayon pool while the next is
//! gathered: several row groups, of one file or of consecutive files, are
//! encoded at once, and this thread appends them to their files in order.
//! Encoding, not reading, is most of an export's work; encoding a row
//! group's columns in parallel batch by batch kept both cores waiting on
//! each other 1,200 times per 10M rows. A finished file is made durable by
//! a thread of its own ([`Syncer`]) while the next ones are encoded.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use datafusion::arrow::array::{Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::writer::SerializedFileWriter;

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

/// A row group's column chunks, once a pool thread has encoded them.
type Encoded = Result<Vec<ArrowColumnChunk>>;

/// A file being written: its row groups handed out, some still encoding.
struct Open {
    floor: i64,
    path: PathBuf,
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    /// Row groups handed out (the next one's index).
    row_groups: usize,
    /// The row groups being encoded, in file order.
    encoding: VecDeque<Receiver<Encoded>>,
    /// Whether every row of the file has been handed out.
    sealed: bool,
    /// Bytes of the file handed to the kernel's writeback so far.
    written_back: usize,
}

impl Open {
    /// Every [`Open::WRITEBACK`] bytes, the file's new bytes are handed to
    /// the kernel and the syncer asks it to start writing them to disk:
    /// the fsync at the end then finds little left to write. A 423 MB
    /// file's fsync otherwise took about half a second after its last row
    /// group.
    const WRITEBACK: usize = 32 << 20;

    /// The syncer's request to write back what the file has grown by, if
    /// that is enough (the file's descriptor again, for that thread).
    fn write_back(&mut self) -> Result<Option<Durable>> {
        let end = self.file.bytes_written();
        if end - self.written_back < Self::WRITEBACK {
            return Ok(None);
        }
        let io = |e| Error::io(&self.path, e);
        self.file.flush().map_err(io)?;
        let file = self.file.inner().try_clone().map_err(io)?;
        let range = Durable::Range {
            path: self.path.clone(),
            file,
            from: self.written_back as u64,
            len: (end - self.written_back) as u64,
        };
        self.written_back = end;
        Ok(Some(range))
    }
}

/// Encodes one row group's rows, column after column.
fn encode(
    mut columns: Vec<ArrowColumnWriter>,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Encoded {
    for batch in batches {
        let mut writers = columns.iter_mut();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            for leaf in compute_leaves(field, array)? {
                let writer = writers
                    .next()
                    .ok_or_else(|| Error::Internal("a leaf column without a writer".into()))?;
                writer.write(&leaf)?;
            }
        }
    }
    columns
        .into_iter()
        .map(|w| w.close().map_err(Error::from))
        .collect()
}

/// The bytes a batch's rows hold (a slice counts its own rows only).
fn rows_size(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|a| a.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}

/// What the syncer does, in the order asked.
enum Durable {
    /// Starts the kernel's writeback of a range of a file still growing,
    /// without waiting for it.
    Range {
        path: PathBuf,
        file: File,
        from: u64,
        len: u64,
    },
    /// Makes a finished file durable.
    File(PathBuf, File),
}

impl Durable {
    fn run(self) -> Result<()> {
        match self {
            Durable::File(path, file) => file.sync_all().map_err(|e| Error::io(&path, e)),
            #[cfg(target_os = "linux")]
            Durable::Range {
                path,
                file,
                from,
                len,
            } => {
                use std::os::fd::AsRawFd;
                // SAFETY: the descriptor is the open file's; the call
                // only schedules writeback of a range of it.
                let r = unsafe {
                    libc::sync_file_range(
                        file.as_raw_fd(),
                        from as libc::off64_t,
                        len as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WRITE,
                    )
                };
                if r != 0 {
                    return Err(Error::io(&path, std::io::Error::last_os_error()));
                }
                Ok(())
            }
            #[cfg(not(target_os = "linux"))]
            Durable::Range { .. } => Ok(()),
        }
    }
}

/// Makes files durable on a thread of its own, so that encoding does not
/// wait for the disk (an export of 100 daily files otherwise waited for
/// 100 fsyncs in turn, and a large file's writeback calls blocked its
/// encoding). At most [`Syncer::QUEUE`] requests wait; the writer waits
/// beyond that.
struct Syncer {
    queue: Option<std::sync::mpsc::SyncSender<Durable>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Syncer {
    const QUEUE: usize = 8;

    fn start() -> Result<Syncer> {
        let (queue, requests) = std::sync::mpsc::sync_channel::<Durable>(Self::QUEUE);
        let thread = std::thread::Builder::new()
            .name("sluice-export-sync".into())
            .spawn(move || {
                for r in requests {
                    r.run()?;
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

    /// Hands a request over; the thread's error if it has stopped.
    fn send(&mut self, request: Durable) -> Result<()> {
        let sent = self.queue.as_ref().map(|q| q.send(request));
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
    row_group_rows: usize,
    /// The rows a row group gathers before it is encoded, in bytes: the
    /// memory limit shared by the row groups that can be in flight.
    row_group_bytes: usize,
    /// The most row groups encoding at once.
    in_flight_max: usize,
    /// Files with row groups still to append, oldest first; the last one
    /// takes the rows (unless sealed).
    files: VecDeque<Open>,
    /// The row group being gathered for the last file.
    gathered: Vec<RecordBatch>,
    gathered_rows: usize,
    gathered_bytes: usize,
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
        // One row group per pool thread encoding, one more waiting to be
        // appended, and the one being gathered.
        let in_flight_max = rayon::current_num_threads().max(1) + 1;
        Ok(FilesWriter {
            dir: dir.to_path_buf(),
            schema,
            props,
            split: split.filter(|s| s.unit != PartitionBy::None),
            row_group_rows,
            row_group_bytes: (memory / (in_flight_max + 1)).max(1),
            in_flight_max,
            files: VecDeque::new(),
            gathered: Vec::new(),
            gathered_rows: 0,
            gathered_bytes: 0,
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

    /// The file that takes rows now, if one does.
    fn taking(&mut self) -> Option<&mut Open> {
        self.files.back_mut().filter(|f| !f.sealed)
    }

    /// Row groups handed out and not yet appended to their file.
    fn in_flight(&self) -> usize {
        self.files.iter().map(|f| f.encoding.len()).sum()
    }

    fn write_to(&mut self, floor: i64, batch: &RecordBatch) -> Result<()> {
        if let Some(open) = self.taking()
            && open.floor != floor
        {
            if open.floor > floor {
                return Err(Error::Internal(
                    "export rows arrived out of timestamp order".into(),
                ));
            }
            self.seal()?;
        }
        if self.taking().is_none() {
            self.start(floor)?;
        }
        let mut at = 0;
        while at < batch.num_rows() {
            let n = (self.row_group_rows - self.gathered_rows).min(batch.num_rows() - at);
            let part = batch.slice(at, n);
            self.gathered_bytes += rows_size(&part);
            self.gathered_rows += n;
            self.gathered.push(part);
            at += n;
            // Bounded by configuration, not by ROW_GROUP_SIZE alone.
            if self.gathered_rows >= self.row_group_rows
                || self.gathered_bytes >= self.row_group_bytes
            {
                self.hand_out()?;
            }
        }
        self.written.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Hands the gathered rows to the pool as the taking file's next row
    /// group, then appends what is encoded while too many are in flight.
    fn hand_out(&mut self) -> Result<()> {
        if self.gathered.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.gathered);
        self.gathered_rows = 0;
        self.gathered_bytes = 0;
        let schema = Arc::clone(&self.schema);
        let open = self
            .taking()
            .ok_or_else(|| Error::Internal("export rows without a file".into()))?;
        let columns = open.factory.create_column_writers(open.row_groups)?;
        open.row_groups += 1;
        let (done, encoded) = sync_channel(1);
        rayon::spawn(move || {
            // The receiver is gone only when the export has stopped.
            let _ = done.send(encode(columns, &schema, &batches));
        });
        open.encoding.push_back(encoded);
        self.append(self.in_flight_max)
    }

    /// Appends encoded row groups to their files, in order, until at most
    /// `limit` are in flight; finishes the files that have all of theirs.
    fn append(&mut self, limit: usize) -> Result<()> {
        loop {
            let in_flight = self.in_flight();
            let Some(front) = self.files.front_mut() else {
                return Ok(());
            };
            if front.encoding.is_empty() {
                if !front.sealed {
                    return Ok(());
                }
                let done = self.files.pop_front().expect("a front file");
                self.finish_file(done)?;
                continue;
            }
            if in_flight <= limit {
                return Ok(());
            }
            let next = front.encoding.pop_front().expect("a row group in flight");
            let chunks = next
                .recv()
                .map_err(|_| Error::Internal("an export encoder stopped".into()))??;
            let mut group = front.file.next_row_group()?;
            for chunk in chunks {
                chunk.append_to_row_group(&mut group)?;
            }
            group.close()?;
            if let Some(range) = front.write_back()? {
                self.syncer.send(range)?;
            }
        }
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
        self.files.push_back(Open {
            floor,
            path,
            file,
            factory,
            row_groups: 0,
            encoding: VecDeque::new(),
            sealed: false,
            written_back: 0,
        });
        Ok(())
    }

    /// Ends the taking file's rows: its last row group goes out.
    fn seal(&mut self) -> Result<()> {
        self.hand_out()?;
        if let Some(open) = self.files.back_mut() {
            open.sealed = true;
        }
        self.append(self.in_flight_max)
    }

    /// Writes a file's footer and hands it to the syncer.
    fn finish_file(&mut self, open: Open) -> Result<()> {
        let file = open.file.into_inner()?;
        self.syncer.send(Durable::File(open.path, file))?;
        self.written.files += 1;
        Ok(())
    }

    /// Finishes every file. An export of no rows without partitions still
    /// writes its one file, so readers learn the columns.
    pub fn finish(mut self) -> Result<Written> {
        if self.files.is_empty() && self.split.is_none() {
            self.start(i64::MIN)?;
        }
        self.seal()?;
        self.append(0)?;
        self.syncer.finish()?;
        crate::storage::sync_dir(&self.dir)?;
        Ok(self.written)
    }
}
