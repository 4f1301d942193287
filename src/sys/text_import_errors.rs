//! `sys.text_import_errors`: every rejected row or field of every import
//! (up to `cairo.sql.copy.max.recorded.errors` per import; the counters in
//! `sys.text_import_log` stay exact), with its file, its 1-based line and
//! the byte offset of the line's first byte in that file.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SysTable;
use super::text_import_log::ts_field;
use crate::error::Result;
use crate::import::log::ImportLog;

#[derive(Debug)]
pub struct TextImportErrors {
    journal: Arc<ImportLog>,
    schema: SchemaRef,
}

impl TextImportErrors {
    pub fn new(journal: Arc<ImportLog>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            ts_field(),
            Field::new("id", DataType::Utf8, false),
            Field::new("file", DataType::Utf8, false),
            Field::new("line", DataType::Int64, false),
            Field::new("byte_offset", DataType::Int64, false),
            Field::new("column_name", DataType::Utf8, true),
            Field::new("value", DataType::Utf8, true),
            Field::new("message", DataType::Utf8, false),
        ]));
        TextImportErrors { journal, schema }
    }
}

impl SysTable for TextImportErrors {
    fn name(&self) -> &'static str {
        "text_import_errors"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let rows = self.journal.error_rows();
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.ts))
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.id))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.file))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.line))),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.byte_offset),
                )),
                Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| r.column_name.as_deref()),
                )),
                Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| r.value.as_deref()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| &r.message),
                )),
            ],
        )?)
    }
}
