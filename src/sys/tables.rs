//! `sys.tables`: one row per user table with its designated timestamp,
//! partition unit, row count and partition count, read from the live
//! manifests (so it is exact and costs no file access).

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SysTable;
use crate::catalog::Catalog;
use crate::error::Result;

#[derive(Debug)]
pub struct TablesTable {
    catalog: Arc<Catalog>,
    schema: SchemaRef,
}

impl TablesTable {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_schema", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("designated_timestamp", DataType::Utf8, true),
            Field::new("partition_by", DataType::Utf8, false),
            Field::new("row_count", DataType::Int64, false),
            Field::new("partition_count", DataType::Int64, false),
            Field::new("wal_enabled", DataType::Boolean, false),
        ]));
        TablesTable { catalog, schema }
    }
}

impl SysTable for TablesTable {
    fn name(&self) -> &'static str {
        "tables"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let tables = self.catalog.tables();
        let states: Vec<_> = tables.iter().map(|t| t.snapshot()).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|t| t.schema_name.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|t| t.name.as_str()),
                )),
                Arc::new(StringArray::from_iter(
                    states.iter().map(|s| s.meta.timestamp.clone()),
                )),
                Arc::new(StringArray::from_iter_values(
                    states.iter().map(|s| s.meta.partition_by.name()),
                )),
                Arc::new(Int64Array::from_iter_values(
                    states.iter().map(|s| s.manifest.row_count() as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    states.iter().map(|s| s.manifest.partition_count() as i64),
                )),
                Arc::new(BooleanArray::from_iter(
                    states.iter().map(|s| Some(s.meta.wal)),
                )),
            ],
        )?;
        Ok(batch)
    }
}
