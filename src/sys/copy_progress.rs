//! `sys.copy_progress`: the running import (COPY, `/imp`, COPY FROM STDIN,
//! `sluice import`) as it goes, like PostgreSQL's `pg_stat_progress_copy`:
//! its phase, bytes and rows so far over the totals known at this point,
//! one fraction done (phases weighted by their share of the time, so it
//! moves steadily and never goes back), MB/s so far and an ETA. After the
//! import ends its row stays, with fraction 1, until the next one starts.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SysTable;
use crate::error::Result;
use crate::import::Importer;

#[derive(Debug)]
pub struct CopyProgress {
    importer: Arc<Importer>,
    schema: SchemaRef,
}

impl CopyProgress {
    pub fn new(importer: Arc<Importer>) -> Self {
        let text = |n: &str, null| Field::new(n, DataType::Utf8, null);
        let int = |n: &str| Field::new(n, DataType::Int64, false);
        let float = |n: &str, null| Field::new(n, DataType::Float64, null);
        let schema = Arc::new(Schema::new(vec![
            text("id", false),
            text("table_name", false),
            text("file", false),
            text("phase", true),
            text("status", false),
            float("fraction", false),
            int("bytes_done"),
            int("bytes_total"),
            int("rows_total"),
            int("rows_handled"),
            int("rows_imported"),
            int("errors"),
            float("elapsed_sec", false),
            float("eta_sec", true),
            float("mb_per_sec", false),
        ]));
        CopyProgress { importer, schema }
    }
}

impl SysTable for CopyProgress {
    fn name(&self) -> &'static str {
        "copy_progress"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let Some((id, p)) = self.importer.progress() else {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.schema)));
        };
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as i64;
        let done = p.done.load(Ordering::Relaxed);
        let elapsed = p.elapsed();
        let bytes = load(&p.bytes_done);
        let phase = (*p.phase.lock().expect("progress")).map(|ph| ph.as_str());
        let text = |v: &str| Arc::new(StringArray::from(vec![v.to_string()])) as _;
        let int = |v: i64| Arc::new(Int64Array::from(vec![v])) as _;
        let float = |v: Option<f64>| Arc::new(Float64Array::from(vec![v])) as _;
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                text(&id),
                text(&p.table.lock().expect("progress")),
                text(&p.file.lock().expect("progress")),
                Arc::new(StringArray::from(vec![if done { None } else { phase }])),
                // How it ended, once it has (a failed import is not
                // "finished").
                text(match *p.outcome.lock().expect("progress") {
                    Some(outcome) if done => outcome.as_str(),
                    _ if done => "finished",
                    _ => "running",
                }),
                float(Some(p.fraction())),
                int(bytes),
                int(load(&p.bytes_total)),
                int(load(&p.rows_total)),
                int(load(&p.rows_handled)),
                int(load(&p.rows_imported)),
                int(load(&p.errors)),
                float(Some(elapsed)),
                float(if done { Some(0.0) } else { p.eta() }),
                float(Some(if elapsed > 0.0 {
                    bytes as f64 / 1e6 / elapsed
                } else {
                    0.0
                })),
            ],
        )?)
    }
}
