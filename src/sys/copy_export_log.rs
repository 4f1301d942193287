//! `sys.copy_export_log`: QuestDB's export journal, one row per export
//! start and end and per phase start and end (kept across restarts,
//! trimmed by retention).

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SysTable;
use super::text_import_log::ts_field;
use crate::error::Result;
use crate::export::log::ExportLog;

#[derive(Debug)]
pub struct CopyExportLog {
    journal: Arc<ExportLog>,
    schema: SchemaRef,
}

impl CopyExportLog {
    pub fn new(journal: Arc<ExportLog>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            ts_field(),
            Field::new("id", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("export_path", DataType::Utf8, false),
            Field::new("num_exported_files", DataType::Int64, false),
            Field::new("num_exported_rows", DataType::Int64, false),
            Field::new("phase", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, true),
            Field::new("errors", DataType::Int64, false),
        ]));
        CopyExportLog { journal, schema }
    }
}

impl SysTable for CopyExportLog {
    fn name(&self) -> &'static str {
        "copy_export_log"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let rows = self.journal.rows();
        let text = |f: &dyn Fn(&crate::export::log::ExportRow) -> &str| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as _
        };
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.ts))
                        .with_timezone("UTC"),
                ),
                text(&|r| &r.id),
                text(&|r| &r.table_name),
                text(&|r| &r.export_path),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.num_exported_files),
                )),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.num_exported_rows),
                )),
                text(&|r| r.phase.as_str()),
                text(&|r| r.status.as_str()),
                Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| r.message.as_deref()),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.errors))),
            ],
        )?)
    }
}
