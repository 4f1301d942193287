//! `pg_catalog.pg_attrdef`: column defaults. Our columns have none (an
//! absent value is NULL), so it is empty; drivers join it for the columns
//! they describe (JDBC's `getColumns`, SQLAlchemy's `get_columns`).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct PgAttrdef {
    schema: SchemaRef,
}

impl Default for PgAttrdef {
    fn default() -> Self {
        PgAttrdef {
            schema: Arc::new(Schema::new(vec![
                Field::new("oid", DataType::Int32, false),
                Field::new("adrelid", DataType::Int32, false),
                Field::new("adnum", DataType::Int16, false),
                Field::new("adbin", DataType::Utf8, false),
            ])),
        }
    }
}

impl SysTable for PgAttrdef {
    fn name(&self) -> &'static str {
        "pg_attrdef"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        Ok(RecordBatch::new_empty(Arc::clone(&self.schema)))
    }
}
