//! `pg_catalog.pg_roles` and `pg_user`: the logins. Both show `admin`, the
//! owner of everything; the read-only login is not a role of its own.

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{ADMIN_ROLE_OID, OWNER};
use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct PgRoles {
    name: &'static str,
    schema: SchemaRef,
}

impl PgRoles {
    /// `pg_roles` (`rolname`, `oid`, …) or `pg_user` (`usename`, `usesysid`, …).
    pub fn new(name: &'static str) -> Self {
        let roles = name == "pg_roles";
        let pick = |r: &'static str, u: &'static str| if roles { r } else { u };
        let flag = |n: &str| Field::new(n, DataType::Boolean, false);
        let schema = Arc::new(Schema::new(vec![
            Field::new(pick("rolname", "usename"), DataType::Utf8, false),
            Field::new(pick("oid", "usesysid"), DataType::Int32, false),
            flag(pick("rolsuper", "usesuper")),
            flag(pick("rolcreatedb", "usecreatedb")),
            flag(pick("rolcanlogin", "userepl")),
            flag(pick("rolinherit", "usebypassrls")),
            flag(pick("rolcreaterole", "usecatupd")),
            flag(pick("rolreplication", "usecanlogin")),
            flag(pick("rolbypassrls", "useinherit")),
            Field::new(pick("rolconnlimit", "useconnlimit"), DataType::Int32, false),
            Field::new(pick("rolvaliduntil", "valuntil"), DataType::Utf8, true),
        ]));
        PgRoles { name, schema }
    }
}

impl SysTable for PgRoles {
    fn name(&self) -> &'static str {
        self.name
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let roles = self.name == "pg_roles";
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(StringArray::from(vec![OWNER])),
                Arc::new(Int32Array::from(vec![ADMIN_ROLE_OID])),
                Arc::new(BooleanArray::from(vec![true])),
                Arc::new(BooleanArray::from(vec![true])),
                Arc::new(BooleanArray::from(vec![roles])),
                Arc::new(BooleanArray::from(vec![true])),
                Arc::new(BooleanArray::from(vec![true])),
                // rolreplication is false; pg_user's usecanlogin true.
                Arc::new(BooleanArray::from(vec![!roles])),
                Arc::new(BooleanArray::from(vec![true])),
                Arc::new(Int32Array::from(vec![-1])),
                Arc::new(StringArray::new_null(1)),
            ],
        )?)
    }
}
