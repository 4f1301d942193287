//! `pg_catalog.pg_type`: the PostgreSQL types our columns and results are
//! announced as (and the few every driver looks up), with their array
//! types. The list is also what a `::regtype` cast resolves names with.

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int16Array, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{ADMIN_ROLE_OID, PG_CATALOG_OID};
use crate::error::Result;
use crate::sys::SysTable;

/// (oid, name, length (-1 variable), category, array type oid)
const TYPES: &[(i32, &str, i16, &str, i32)] = &[
    (16, "bool", 1, "B", 1000),
    (17, "bytea", -1, "U", 1001),
    (18, "char", 1, "Z", 1002),
    (19, "name", 64, "S", 1003),
    (20, "int8", 8, "N", 1016),
    (21, "int2", 2, "N", 1005),
    (23, "int4", 4, "N", 1007),
    (25, "text", -1, "S", 1009),
    (26, "oid", 4, "N", 1028),
    (700, "float4", 4, "N", 1021),
    (701, "float8", 8, "N", 1022),
    (1043, "varchar", -1, "S", 1015),
    (1082, "date", 4, "D", 1182),
    (1114, "timestamp", 8, "D", 1115),
    (1184, "timestamptz", 8, "D", 1185),
    (1700, "numeric", -1, "N", 1231),
    (2950, "uuid", 16, "U", 2951),
];

/// SQL's spellings of the types above.
const ALIASES: &[(&str, &str)] = &[
    ("boolean", "bool"),
    ("smallint", "int2"),
    ("integer", "int4"),
    ("int", "int4"),
    ("bigint", "int8"),
    ("real", "float4"),
    ("double precision", "float8"),
    ("character varying", "varchar"),
    ("timestamp without time zone", "timestamp"),
    ("timestamp with time zone", "timestamptz"),
    ("decimal", "numeric"),
];

/// The oid of the type named `name` (a type name or SQL alias,
/// optionally `pg_catalog.`-qualified), as a `::regtype` cast reads it.
pub fn oid_by_name(name: &str) -> Option<i32> {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("pg_catalog.").unwrap_or(&lower);
    let bare = ALIASES
        .iter()
        .find(|(alias, _)| *alias == bare)
        .map_or(bare, |(_, name)| *name);
    TYPES.iter().find(|t| t.1 == bare).map(|t| t.0).or_else(|| {
        let element = bare.strip_suffix("[]")?;
        TYPES.iter().find(|t| t.1 == element).map(|t| t.4)
    })
}

/// The oid of the type a column of `ty` is announced as in results.
pub fn oid_of_column(ty: crate::schema::ColumnType) -> i32 {
    use crate::schema::ColumnType as T;
    match ty {
        T::Boolean => 16,
        T::Byte | T::Short => 21,
        T::Int => 23,
        T::Long => 20,
        T::Float => 700,
        T::Double => 701,
        T::Date | T::Timestamp => 1114,
        T::Uuid => 2950,
        T::Char | T::Varchar | T::String | T::Symbol | T::Ipv4 | T::TimestampNs => 25,
    }
}

/// The oid of the type a result column of Arrow type `ty` is announced as
/// (the `sys` views' columns).
pub fn oid_of_arrow(ty: &DataType) -> i32 {
    match ty {
        DataType::Boolean => 16,
        DataType::Int8 | DataType::Int16 => 21,
        DataType::Int32 => 23,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => 20,
        DataType::Float32 => 700,
        DataType::Float64 => 701,
        DataType::Date32 | DataType::Date64 => 1082,
        DataType::Timestamp(_, None) => 1114,
        DataType::Timestamp(_, Some(_)) => 1184,
        _ => 25,
    }
}

/// `format_type(oid, typmod)`: the SQL name PostgreSQL shows for a type.
pub fn sql_name(oid: i32) -> Option<&'static str> {
    Some(match oid {
        16 => "boolean",
        17 => "bytea",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        26 => "oid",
        700 => "real",
        701 => "double precision",
        1043 => "character varying",
        1082 => "date",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1700 => "numeric",
        2950 => "uuid",
        other => return TYPES.iter().find(|t| t.0 == other).map(|t| t.1),
    })
}

#[derive(Debug)]
pub struct PgType {
    schema: SchemaRef,
}

impl Default for PgType {
    fn default() -> Self {
        let int = |n: &str| Field::new(n, DataType::Int32, false);
        let flag = |n: &str| Field::new(n, DataType::Boolean, false);
        let text = |n: &str| Field::new(n, DataType::Utf8, false);
        PgType {
            schema: Arc::new(Schema::new(vec![
                int("oid"),
                text("typname"),
                int("typnamespace"),
                int("typowner"),
                Field::new("typlen", DataType::Int16, false),
                flag("typbyval"),
                text("typtype"),
                text("typcategory"),
                flag("typispreferred"),
                flag("typisdefined"),
                text("typdelim"),
                int("typrelid"),
                int("typelem"),
                int("typarray"),
                int("typbasetype"),
                int("typtypmod"),
                flag("typnotnull"),
                int("typcollation"),
                Field::new("typdefault", DataType::Utf8, true),
            ])),
        }
    }
}

impl SysTable for PgType {
    fn name(&self) -> &'static str {
        "pg_type"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        // The base types, then their array types (elements of category A).
        let mut rows: Vec<(i32, String, i16, String, i32, i32)> = TYPES
            .iter()
            .map(|t| (t.0, t.1.to_string(), t.2, t.3.to_string(), 0, t.4))
            .collect();
        rows.extend(
            TYPES
                .iter()
                .map(|t| (t.4, format!("_{}", t.1), -1, "A".to_string(), t.0, 0)),
        );
        let n = rows.len();
        let ints = |v: i32| Arc::new(Int32Array::from_iter_values(std::iter::repeat_n(v, n)));
        let flags = |v: bool| Arc::new(BooleanArray::from_iter(std::iter::repeat_n(Some(v), n)));
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.1))),
                ints(PG_CATALOG_OID),
                ints(ADMIN_ROLE_OID),
                Arc::new(Int16Array::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(BooleanArray::from_iter(
                    rows.iter().map(|r| Some((1..=8).contains(&r.2))),
                )),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n("b", n))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.3))),
                flags(false),
                flags(true),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(",", n))),
                ints(0),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.4))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.5))),
                ints(0),
                ints(-1),
                flags(false),
                ints(0),
                Arc::new(StringArray::new_null(n)),
            ],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regtype_names() {
        assert_eq!(oid_by_name("integer"), Some(23));
        assert_eq!(oid_by_name("pg_catalog.TEXT"), Some(25));
        assert_eq!(oid_by_name("timestamp with time zone"), Some(1184));
        assert_eq!(oid_by_name("int4[]"), Some(1007));
        assert_eq!(oid_by_name("hstore"), None);
    }
}
