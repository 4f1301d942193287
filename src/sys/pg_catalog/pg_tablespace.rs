//! `pg_catalog.pg_tablespace`: PostgreSQL's two built-in tablespaces. Every
//! table lives under the data root, which clients see as `pg_default`.

use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::ADMIN_ROLE_OID;
use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct PgTablespace {
    schema: SchemaRef,
}

impl Default for PgTablespace {
    fn default() -> Self {
        PgTablespace {
            schema: Arc::new(Schema::new(vec![
                Field::new("oid", DataType::Int32, false),
                Field::new("spcname", DataType::Utf8, false),
                Field::new("spcowner", DataType::Int32, false),
            ])),
        }
    }
}

impl SysTable for PgTablespace {
    fn name(&self) -> &'static str {
        "pg_tablespace"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(Int32Array::from(vec![1663, 1664])),
                Arc::new(StringArray::from(vec!["pg_default", "pg_global"])),
                Arc::new(Int32Array::from(vec![ADMIN_ROLE_OID; 2])),
            ],
        )?)
    }
}
