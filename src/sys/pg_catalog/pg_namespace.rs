//! `pg_catalog.pg_namespace`: our schemas, `sys`, and `pg_catalog` itself.

use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{ADMIN_ROLE_OID, PG_CATALOG, namespace_oid};
use crate::catalog::{Catalog, SYS_SCHEMA};
use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct PgNamespace {
    catalog: Arc<Catalog>,
    schema: SchemaRef,
}

impl PgNamespace {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("oid", DataType::Int32, false),
            Field::new("nspname", DataType::Utf8, false),
            Field::new("nspowner", DataType::Int32, false),
            Field::new("nspacl", DataType::Utf8, true),
        ]));
        PgNamespace { catalog, schema }
    }
}

impl SysTable for PgNamespace {
    fn name(&self) -> &'static str {
        "pg_namespace"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let mut names = self.catalog.schema_names();
        names.push(SYS_SCHEMA.to_string());
        names.push(PG_CATALOG.to_string());
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(Int32Array::from_iter_values(
                    names.iter().map(|n| namespace_oid(n)),
                )),
                Arc::new(StringArray::from_iter_values(names.iter())),
                Arc::new(Int32Array::from_iter_values(
                    names.iter().map(|_| ADMIN_ROLE_OID),
                )),
                Arc::new(StringArray::new_null(names.len())),
            ],
        )?)
    }
}
