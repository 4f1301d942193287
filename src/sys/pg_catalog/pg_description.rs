//! `pg_catalog.pg_description`: comments on objects. Tables and columns
//! here have none, so it is empty; drivers join it (JDBC's `getTables`).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct PgDescription {
    schema: SchemaRef,
}

impl Default for PgDescription {
    fn default() -> Self {
        PgDescription {
            schema: Arc::new(Schema::new(vec![
                Field::new("objoid", DataType::Int32, false),
                Field::new("classoid", DataType::Int32, false),
                Field::new("objsubid", DataType::Int32, false),
                Field::new("description", DataType::Utf8, false),
            ])),
        }
    }
}

impl SysTable for PgDescription {
    fn name(&self) -> &'static str {
        "pg_description"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        Ok(RecordBatch::new_empty(Arc::clone(&self.schema)))
    }
}
