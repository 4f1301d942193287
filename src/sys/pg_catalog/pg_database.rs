//! `pg_catalog.pg_database`: the one database, `qdb`, in UTF8.

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{ADMIN_ROLE_OID, DATABASE_OID};
use crate::error::Result;
use crate::sys::SysTable;

/// PostgreSQL's number for UTF8 (what `pg_encoding_to_char` names).
pub const UTF8_ENCODING: i32 = 6;

#[derive(Debug)]
pub struct PgDatabase {
    schema: SchemaRef,
}

impl Default for PgDatabase {
    fn default() -> Self {
        let text = |n: &str| Field::new(n, DataType::Utf8, false);
        PgDatabase {
            schema: Arc::new(Schema::new(vec![
                Field::new("oid", DataType::Int32, false),
                text("datname"),
                Field::new("datdba", DataType::Int32, false),
                Field::new("encoding", DataType::Int32, false),
                text("datlocprovider"),
                Field::new("datistemplate", DataType::Boolean, false),
                Field::new("datallowconn", DataType::Boolean, false),
                Field::new("datconnlimit", DataType::Int32, false),
                Field::new("dattablespace", DataType::Int32, false),
                text("datcollate"),
                text("datctype"),
                Field::new("daticulocale", DataType::Utf8, true),
                Field::new("daticurules", DataType::Utf8, true),
                Field::new("datacl", DataType::Utf8, true),
            ])),
        }
    }
}

impl SysTable for PgDatabase {
    fn name(&self) -> &'static str {
        "pg_database"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let one = |s: &str| Arc::new(StringArray::from(vec![s.to_string()]));
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(Int32Array::from(vec![DATABASE_OID])),
                one(crate::catalog::DATABASE),
                Arc::new(Int32Array::from(vec![ADMIN_ROLE_OID])),
                Arc::new(Int32Array::from(vec![UTF8_ENCODING])),
                one("c"),
                Arc::new(BooleanArray::from(vec![false])),
                Arc::new(BooleanArray::from(vec![true])),
                Arc::new(Int32Array::from(vec![-1])),
                Arc::new(Int32Array::from(vec![1663])),
                one("C.UTF-8"),
                one("C.UTF-8"),
                Arc::new(StringArray::new_null(1)),
                Arc::new(StringArray::new_null(1)),
                Arc::new(StringArray::new_null(1)),
            ],
        )?)
    }
}
