//! Writes a stream of rows as Parquet files in one directory: all of them
//! in `default.parquet`, or, partitioned by a timestamp column, one file
//! per time partition named as a table's partitions are (`2024-01-02.parquet`).
//! The rows of a partitioned export arrive ordered by that column, so one
//! file is open at a time; its row group is written at the export's row
//! count or at the memory limit, whichever comes first.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::storage::PartitionBy;

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
    writer: ArrowWriter<File>,
}

pub struct FilesWriter {
    dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    split: Option<Split>,
    memory: usize,
    open: Option<Open>,
    pub written: Written,
}

impl FilesWriter {
    pub fn new(
        dir: &Path,
        schema: SchemaRef,
        props: WriterProperties,
        split: Option<Split>,
        memory: usize,
    ) -> FilesWriter {
        FilesWriter {
            dir: dir.to_path_buf(),
            schema,
            props,
            split: split.filter(|s| s.unit != PartitionBy::None),
            memory,
            open: None,
            written: Written::default(),
        }
    }

    /// Writes `batch`, starting a new file wherever its partition changes.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
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
        open.writer.write(batch)?;
        // Bounded by configuration, not by ROW_GROUP_SIZE alone.
        if open.writer.in_progress_size() >= self.memory {
            open.writer.flush()?;
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
        let writer =
            ArrowWriter::try_new(file, Arc::clone(&self.schema), Some(self.props.clone()))?;
        self.open = Some(Open {
            floor,
            path,
            writer,
        });
        Ok(())
    }

    /// Finishes the open file and makes it durable.
    fn close(&mut self) -> Result<()> {
        if let Some(open) = self.open.take() {
            let file = open.writer.into_inner()?;
            file.sync_all().map_err(|e| Error::io(&open.path, e))?;
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
        crate::storage::sync_dir(&self.dir)?;
        Ok(self.written)
    }
}
