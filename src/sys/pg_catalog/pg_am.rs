//! `pg_catalog.pg_am`: the one access method our tables have.

use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::HEAP_AM_OID;
use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct PgAm {
    schema: SchemaRef,
}

impl Default for PgAm {
    fn default() -> Self {
        PgAm {
            schema: Arc::new(Schema::new(vec![
                Field::new("oid", DataType::Int32, false),
                Field::new("amname", DataType::Utf8, false),
                Field::new("amtype", DataType::Utf8, false),
            ])),
        }
    }
}

impl SysTable for PgAm {
    fn name(&self) -> &'static str {
        "pg_am"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(Int32Array::from(vec![HEAP_AM_OID])),
                Arc::new(StringArray::from(vec!["heap"])),
                Arc::new(StringArray::from(vec!["t"])),
            ],
        )?)
    }
}
