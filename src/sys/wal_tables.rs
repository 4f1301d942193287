//! `sys.wal_tables`: each table's write-ahead log, like QuestDB's
//! `wal_tables()`: the records, rows and bytes written but not yet applied
//! to the table's files, the age of the oldest, and the last sequence
//! number written.

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SysTable;
use crate::catalog::Catalog;
use crate::error::Result;

#[derive(Debug)]
pub struct WalTables {
    catalog: Arc<Catalog>,
    schema: SchemaRef,
}

impl WalTables {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_schema", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("pending_records", DataType::Int64, false),
            Field::new("pending_rows", DataType::Int64, false),
            Field::new("pending_bytes", DataType::Int64, false),
            Field::new("oldest_age_sec", DataType::Float64, false),
            Field::new("last_seq", DataType::Int64, false),
        ]));
        WalTables { catalog, schema }
    }
}

impl SysTable for WalTables {
    fn name(&self) -> &'static str {
        "wal_tables"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let tables: Vec<_> = self
            .catalog
            .tables()
            .into_iter()
            .filter_map(|t| {
                let lag = t.wal()?.lag();
                Some((lag, t))
            })
            .collect();
        let int = |f: &dyn Fn(&crate::catalog::wal::Lag) -> i64| {
            Arc::new(Int64Array::from_iter_values(
                tables.iter().map(|(l, _)| f(l)),
            ))
        };
        let batch = RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|(_, t)| t.schema_name.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|(_, t)| t.name.as_str()),
                )),
                int(&|l| l.records as i64),
                int(&|l| l.rows as i64),
                int(&|l| l.bytes as i64),
                Arc::new(Float64Array::from_iter_values(
                    tables.iter().map(|(l, _)| l.age_sec),
                )),
                int(&|l| l.last_seq as i64),
            ],
        )?;
        Ok(batch)
    }
}
