//! `pg_catalog.pg_attribute`: the columns of every user table and `sys`
//! view, numbered from 1, with the PostgreSQL type each is announced as in
//! results.

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int16Array, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::pg_type::{oid_of_arrow, oid_of_column};
use super::{SysViews, table_oid};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct PgAttribute {
    catalog: Arc<Catalog>,
    sys_views: SysViews,
    schema: SchemaRef,
}

impl PgAttribute {
    pub fn new(catalog: Arc<Catalog>, sys_views: SysViews) -> Self {
        let int = |n: &str| Field::new(n, DataType::Int32, false);
        let small = |n: &str| Field::new(n, DataType::Int16, false);
        let flag = |n: &str| Field::new(n, DataType::Boolean, false);
        let text = |n: &str| Field::new(n, DataType::Utf8, false);
        let schema = Arc::new(Schema::new(vec![
            int("attrelid"),
            text("attname"),
            int("atttypid"),
            small("attlen"),
            small("attnum"),
            int("attndims"),
            int("atttypmod"),
            flag("attbyval"),
            text("attalign"),
            text("attstorage"),
            flag("attnotnull"),
            flag("atthasdef"),
            flag("atthasmissing"),
            text("attidentity"),
            text("attgenerated"),
            flag("attisdropped"),
            flag("attislocal"),
            int("attinhcount"),
            int("attcollation"),
            Field::new("attacl", DataType::Utf8, true),
            Field::new("attoptions", DataType::Utf8, true),
        ]));
        PgAttribute {
            catalog,
            sys_views,
            schema,
        }
    }
}

impl SysTable for PgAttribute {
    fn name(&self) -> &'static str {
        "pg_attribute"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        // (table oid, name, type oid, number, not null)
        let mut cols: Vec<(i32, String, i32, i16, bool)> = Vec::new();
        for t in self.catalog.tables() {
            let meta = t.meta();
            let oid = table_oid(&t.schema_name, &t.name);
            for (i, c) in meta.columns.iter().enumerate() {
                let designated = meta
                    .timestamp
                    .as_deref()
                    .is_some_and(|ts| ts.eq_ignore_ascii_case(&c.name));
                cols.push((
                    oid,
                    c.name.clone(),
                    oid_of_column(c.ty),
                    i as i16 + 1,
                    designated,
                ));
            }
        }
        for (name, schema) in self.sys_views.iter() {
            let oid = table_oid(crate::catalog::SYS_SCHEMA, name);
            for (i, f) in schema.fields().iter().enumerate() {
                let ty = oid_of_arrow(f.data_type());
                cols.push((oid, f.name().clone(), ty, i as i16 + 1, !f.is_nullable()));
            }
        }
        let n = cols.len();
        let ints = |v: i32| Arc::new(Int32Array::from_iter_values(std::iter::repeat_n(v, n)));
        let flags = |v: bool| Arc::new(BooleanArray::from_iter(std::iter::repeat_n(Some(v), n)));
        let texts = |v: &str| Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n)));
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(Int32Array::from_iter_values(cols.iter().map(|c| c.0))),
                Arc::new(StringArray::from_iter_values(cols.iter().map(|c| &c.1))),
                Arc::new(Int32Array::from_iter_values(cols.iter().map(|c| c.2))),
                Arc::new(Int16Array::from_iter_values(std::iter::repeat_n(-1, n))),
                Arc::new(Int16Array::from_iter_values(cols.iter().map(|c| c.3))),
                ints(0),
                ints(-1),
                flags(false),
                texts("i"),
                texts("p"),
                Arc::new(BooleanArray::from_iter(cols.iter().map(|c| Some(c.4)))),
                flags(false),
                flags(false),
                texts(""),
                texts(""),
                flags(false),
                flags(true),
                ints(0),
                ints(0),
                Arc::new(StringArray::new_null(n)),
                Arc::new(StringArray::new_null(n)),
            ],
        )?)
    }
}
