//! `pg_catalog.pg_class`: every user table (relkind `r`) and every `sys`
//! table (relkind `v`, a view), with its namespace, owner and row count.

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{ADMIN_ROLE_OID, HEAP_AM_OID, SysViews, namespace_oid, table_oid};
use crate::catalog::{Catalog, SYS_SCHEMA};
use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct PgClass {
    catalog: Arc<Catalog>,
    sys_views: SysViews,
    schema: SchemaRef,
}

impl PgClass {
    pub fn new(catalog: Arc<Catalog>, sys_views: SysViews) -> Self {
        let int = |n: &str| Field::new(n, DataType::Int32, false);
        let flag = |n: &str| Field::new(n, DataType::Boolean, false);
        let text = |n: &str| Field::new(n, DataType::Utf8, false);
        let schema = Arc::new(Schema::new(vec![
            int("oid"),
            text("relname"),
            int("relnamespace"),
            int("reltype"),
            int("reloftype"),
            int("relowner"),
            int("relam"),
            int("relfilenode"),
            int("reltablespace"),
            int("relpages"),
            Field::new("reltuples", DataType::Float64, false),
            int("reltoastrelid"),
            flag("relhasindex"),
            flag("relisshared"),
            text("relpersistence"),
            text("relkind"),
            int("relnatts"),
            int("relchecks"),
            flag("relhasrules"),
            flag("relhastriggers"),
            flag("relhassubclass"),
            flag("relrowsecurity"),
            flag("relforcerowsecurity"),
            flag("relispopulated"),
            text("relreplident"),
            flag("relispartition"),
            Field::new("reloptions", DataType::Utf8, true),
            Field::new("relacl", DataType::Utf8, true),
        ]));
        PgClass {
            catalog,
            sys_views,
            schema,
        }
    }
}

impl SysTable for PgClass {
    fn name(&self) -> &'static str {
        "pg_class"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        // (schema, name, relkind, columns, rows)
        let mut rels: Vec<(String, String, &'static str, i32, f64)> = self
            .catalog
            .tables()
            .iter()
            .map(|t| {
                let s = t.snapshot();
                (
                    t.schema_name.clone(),
                    t.name.clone(),
                    "r",
                    s.meta.columns.len() as i32,
                    s.manifest.row_count() as f64,
                )
            })
            .collect();
        rels.extend(self.sys_views.iter().map(|(n, schema)| {
            (
                SYS_SCHEMA.to_string(),
                n.clone(),
                "v",
                schema.fields().len() as i32,
                -1.0,
            )
        }));
        let n = rels.len();
        let ints = |v: i32| Arc::new(Int32Array::from_iter_values(std::iter::repeat_n(v, n)));
        let flags = |v: bool| Arc::new(BooleanArray::from_iter(std::iter::repeat_n(Some(v), n)));
        let texts = |v: &str| Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n)));
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(Int32Array::from_iter_values(
                    rels.iter().map(|r| table_oid(&r.0, &r.1)),
                )),
                Arc::new(StringArray::from_iter_values(rels.iter().map(|r| &r.1))),
                Arc::new(Int32Array::from_iter_values(
                    rels.iter().map(|r| namespace_oid(&r.0)),
                )),
                ints(0),
                ints(0),
                ints(ADMIN_ROLE_OID),
                Arc::new(Int32Array::from_iter_values(
                    rels.iter()
                        .map(|r| if r.2 == "r" { HEAP_AM_OID } else { 0 }),
                )),
                ints(0),
                ints(0),
                ints(0),
                Arc::new(Float64Array::from_iter_values(rels.iter().map(|r| r.4))),
                ints(0),
                flags(false),
                flags(false),
                texts("p"),
                Arc::new(StringArray::from_iter_values(rels.iter().map(|r| r.2))),
                Arc::new(Int32Array::from_iter_values(rels.iter().map(|r| r.3))),
                ints(0),
                flags(false),
                flags(false),
                flags(false),
                flags(false),
                flags(false),
                flags(true),
                texts("d"),
                flags(false),
                Arc::new(StringArray::new_null(n)),
                Arc::new(StringArray::new_null(n)),
            ],
        )?)
    }
}
