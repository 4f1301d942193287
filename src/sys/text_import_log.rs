//! `sys.text_import_log`: QuestDB's import journal, one row per import
//! start and end and per phase start and end, from the importer's journal
//! (kept across restarts, trimmed by retention).

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::SysTable;
use crate::error::Result;
use crate::import::log::ImportLog;

#[derive(Debug)]
pub struct TextImportLog {
    journal: Arc<ImportLog>,
    schema: SchemaRef,
}

pub fn ts_field() -> Field {
    Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )
}

impl TextImportLog {
    pub fn new(journal: Arc<ImportLog>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            ts_field(),
            Field::new("id", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("file", DataType::Utf8, false),
            Field::new("phase", DataType::Utf8, true),
            Field::new("status", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, true),
            Field::new("rows_handled", DataType::Int64, true),
            Field::new("rows_imported", DataType::Int64, true),
            Field::new("errors", DataType::Int64, false),
        ]));
        TextImportLog { journal, schema }
    }
}

impl SysTable for TextImportLog {
    fn name(&self) -> &'static str {
        "text_import_log"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let rows = self.journal.rows();
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.ts))
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.id))),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| &r.table_name),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.file))),
                Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| r.phase.map(|p| p.as_str())),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.status.as_str()),
                )),
                Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| r.message.as_deref()),
                )),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.rows_handled))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.rows_imported))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.errors))),
            ],
        )?)
    }
}
