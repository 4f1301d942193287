//! Catalogs that exist for clients' joins but have no rows here:
//! `pg_description` (no comments on tables or columns; JDBC's `getTables`
//! joins it) and `pg_attrdef` (no column defaults, an absent value is
//! NULL; JDBC's `getColumns` and SQLAlchemy's `get_columns` join it).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct EmptyCatalog {
    name: &'static str,
    schema: SchemaRef,
}

impl EmptyCatalog {
    pub fn pg_description() -> Self {
        Self::new(
            "pg_description",
            &[
                ("objoid", DataType::Int32),
                ("classoid", DataType::Int32),
                ("objsubid", DataType::Int32),
                ("description", DataType::Utf8),
            ],
        )
    }

    pub fn pg_attrdef() -> Self {
        Self::new(
            "pg_attrdef",
            &[
                ("oid", DataType::Int32),
                ("adrelid", DataType::Int32),
                ("adnum", DataType::Int16),
                ("adbin", DataType::Utf8),
            ],
        )
    }

    fn new(name: &'static str, columns: &[(&str, DataType)]) -> Self {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), false))
            .collect();
        EmptyCatalog {
            name,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

impl SysTable for EmptyCatalog {
    fn name(&self) -> &'static str {
        self.name
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        Ok(RecordBatch::new_empty(Arc::clone(&self.schema)))
    }
}
