//! `sys.copy_history`: every file an import committed into a table (and
//! every file it skipped because the table had loaded it before), with the
//! import's id, the file's size and time, and its load-ledger fingerprint.
//! Kept with the import log across restarts and trimmed with it.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::SysTable;
use super::text_import_log::ts_field;
use crate::error::Result;
use crate::import::log::{HistoryRow, ImportLog};

#[derive(Debug)]
pub struct CopyHistory {
    journal: Arc<ImportLog>,
    schema: SchemaRef,
}

impl CopyHistory {
    pub fn new(journal: Arc<ImportLog>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            ts_field(),
            Field::new("id", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("file", DataType::Utf8, false),
            Field::new("size", DataType::Int64, false),
            Field::new(
                "modified",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("fingerprint", DataType::Utf8, false),
            Field::new("rows_imported", DataType::Int64, false),
            Field::new("status", DataType::Utf8, false),
        ]));
        CopyHistory { journal, schema }
    }
}

impl SysTable for CopyHistory {
    fn name(&self) -> &'static str {
        "copy_history"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let rows = self.journal.history_rows();
        let text = |f: &dyn Fn(&HistoryRow) -> &str| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as _
        };
        let time = |f: &dyn Fn(&HistoryRow) -> i64| {
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(f))
                    .with_timezone("UTC"),
            ) as _
        };
        let int = |f: &dyn Fn(&HistoryRow) -> i64| {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(f))) as _
        };
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                time(&|r| r.ts),
                text(&|r| &r.id),
                text(&|r| &r.table_name),
                text(&|r| &r.file),
                int(&|r| r.size),
                time(&|r| r.modified),
                text(&|r| &r.fingerprint),
                int(&|r| r.rows_imported),
                text(&|r| r.status.as_str()),
            ],
        )?)
    }
}
