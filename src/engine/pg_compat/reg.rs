//! `regclass` and `regtype`: the look-ups by name (`'t'::regclass`), their
//! text form, and casts to PostgreSQL's own type names.

use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};
use datafusion::sql::sqlparser::ast::{self as sp};

use crate::catalog::Catalog;
use crate::sys::pg_catalog::pg_type::oid_by_name;
use crate::sys::pg_catalog::table_oid;

use super::*;

/// What a `reg*` lookup resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum RegKind {
    /// `x::regtype`: 42704 for an unknown type (as PostgreSQL answers and
    /// psycopg's `TypeInfo.fetch` expects).
    Type,
    /// `to_regtype(text)`: NULL for an unknown type.
    TypeOrNull,
    /// `x::regclass`: 42P01 for an unknown relation.
    Class,
}

/// The `reg*` casts and `to_regtype`: a name becomes the oid the catalog
/// tables show (a type from `pg_type`'s list; a relation `t` or `schema.t`,
/// unqualified looked up in `public`, then `pg_catalog`); an oid stays as
/// it is. Casts to `regtype`/`regclass` are rewritten into calls of these.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct RegLookup {
    pub(super) kind: RegKind,
    /// `x::regtype::text`: the name the oid denotes, not the oid.
    pub(super) as_text: bool,
    pub(super) signature: Signature,
    pub(super) tables: CatalogTables,
}

/// The catalog, compared by identity (a UDF must be `Eq` and `Hash`).
#[derive(Debug)]
pub(super) struct CatalogTables(pub(super) Arc<Catalog>);

impl PartialEq for CatalogTables {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CatalogTables {}

impl std::hash::Hash for CatalogTables {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

impl RegLookup {
    /// The oid `name` denotes, or the error for an unknown one.
    fn resolve(&self, name: &str) -> crate::error::Result<Option<i32>> {
        use crate::catalog::{DEFAULT_SCHEMA, SYS_SCHEMA};
        use crate::sys::pg_catalog::PG_CATALOG;
        match self.kind {
            RegKind::Type | RegKind::TypeOrNull => match oid_by_name(name) {
                Some(oid) => Ok(Some(oid)),
                None if self.kind == RegKind::TypeOrNull => Ok(None),
                None => Err(crate::error::Error::UndefinedObject {
                    kind: "type",
                    name: name.to_string(),
                }),
            },
            RegKind::Class => {
                let catalog = &self.tables.0;
                let bare = name.trim().trim_matches('"');
                let (schema, table) = match bare.split_once('.') {
                    Some((sc, t)) => (sc, t.trim_matches('"')),
                    None if catalog.get(DEFAULT_SCHEMA, bare).is_some() => (DEFAULT_SCHEMA, bare),
                    None => (PG_CATALOG, bare),
                };
                // PostgreSQL's own catalogs are all named pg_*.
                let known = catalog.get(schema, table).is_some()
                    || (schema == PG_CATALOG && table.starts_with("pg_"))
                    || schema == SYS_SCHEMA;
                if !known {
                    return Err(crate::error::Error::TableNotFound {
                        table: name.to_string(),
                        position: None,
                    });
                }
                Ok(Some(table_oid(schema, table)))
            }
        }
    }

    /// The name PostgreSQL shows for oid `oid` (`regclass` output:
    /// qualified unless on the search path).
    fn name_of(&self, oid: i32) -> Option<String> {
        match self.kind {
            RegKind::Type | RegKind::TypeOrNull => {
                crate::sys::pg_catalog::pg_type::sql_name(oid).map(str::to_string)
            }
            RegKind::Class => self.tables.0.tables().into_iter().find_map(|t| {
                (table_oid(&t.schema_name, &t.name) == oid).then(|| {
                    if t.schema_name == crate::catalog::DEFAULT_SCHEMA {
                        t.name.clone()
                    } else {
                        format!("{}.{}", t.schema_name, t.name)
                    }
                })
            }),
        }
    }

    /// One value's answer: the oid, or its name when `as_text`.
    fn answer(&self, v: &ScalarValue) -> datafusion::error::Result<ScalarValue> {
        let oid = self.one(v)?;
        Ok(if self.as_text {
            ScalarValue::Utf8(oid.map(|o| self.name_of(o).unwrap_or_else(|| o.to_string())))
        } else {
            ScalarValue::Int32(oid)
        })
    }

    fn one(&self, v: &ScalarValue) -> datafusion::error::Result<Option<i32>> {
        Ok(match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => self.resolve(s)?,
            ScalarValue::Int32(v) => *v,
            ScalarValue::Int64(v) => v.map(|x| x as i32),
            _ => None,
        })
    }
}

impl ScalarUDFImpl for RegLookup {
    fn name(&self) -> &str {
        match (self.kind, self.as_text) {
            (RegKind::Type, false) => "sluice_regtype",
            (RegKind::TypeOrNull, _) => "to_regtype",
            (RegKind::Class, false) => "sluice_regclass",
            (RegKind::Type, true) => "sluice_regtype_text",
            (RegKind::Class, true) => "sluice_regclass_text",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(if self.as_text {
            DataType::Utf8
        } else {
            DataType::Int32
        })
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Scalar(v) => Ok(ColumnarValue::Scalar(self.answer(v)?)),
            ColumnarValue::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for i in 0..a.len() {
                    out.push(self.answer(&ScalarValue::try_from_array(a, i)?)?);
                }
                let data_type = self.return_type(&[])?;
                Ok(ColumnarValue::Array(
                    ScalarValue::iter_to_array(out).or_else(|_| {
                        Ok::<_, datafusion::error::DataFusionError>(
                            datafusion::arrow::array::new_empty_array(&data_type),
                        )
                    })?,
                ))
            }
        }
    }
}

/// `pg_catalog.<type>` as psql writes casts, mapped onto the SQL type
/// DataFusion plans; `None` for a name we do not know (left to fail there).
pub(super) fn builtin_pg_type(name: &sp::ObjectName) -> Option<sp::DataType> {
    if name.0.len() != 2 || !in_pg_catalog(&name.0) {
        return None;
    }
    let last = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    Some(match last.as_str() {
        "text" | "varchar" | "name" | "bpchar" | "char" => sp::DataType::Text,
        "int2" | "smallint" => sp::DataType::SmallInt(None),
        "int4" | "int" | "integer" => sp::DataType::Int(None),
        "int8" | "bigint" | "oid" => sp::DataType::BigInt(None),
        "bool" | "boolean" => sp::DataType::Boolean,
        "float4" | "real" => sp::DataType::Real,
        "float8" => sp::DataType::Double(sp::ExactNumberInfo::None),
        _ => return None,
    })
}

/// Whether a cast to `t` is a cast to text (`text`, `varchar`,
/// `pg_catalog.text`…).
pub(super) fn is_text_type(t: &sp::DataType) -> bool {
    match t {
        sp::DataType::Text | sp::DataType::Varchar(_) | sp::DataType::String(_) => true,
        sp::DataType::Custom(name, _) => {
            matches!(builtin_pg_type(name), Some(sp::DataType::Text))
        }
        _ => false,
    }
}

/// The `reg*` lookup `e` calls (`sluice_regclass`…), if it is one.
pub(super) fn reg_call(e: &sp::Expr) -> Option<&'static str> {
    let sp::Expr::Function(f) = e else {
        return None;
    };
    let name = f.name.0.last()?.as_ident()?.value.as_str();
    ["sluice_regclass", "sluice_regtype"]
        .into_iter()
        .find(|n| *n == name)
}

/// The lookup function a `::regtype`/`::regclass` cast to type `name` is.
pub(super) fn reg_function(name: &sp::ObjectName) -> Option<&'static str> {
    let last = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    match last.as_str() {
        "regtype" => Some("sluice_regtype"),
        "regclass" => Some("sluice_regclass"),
        _ => None,
    }
}

/// Casts to reg types as calls, and PostgreSQL type names as builtins.
pub(super) fn rewrite_cast(expr: &mut sp::Expr) -> bool {
    match expr {
        // `x::regclass` as a call.
        sp::Expr::Cast {
            expr: inner,
            data_type: sp::DataType::Regclass,
            ..
        } => {
            let arg = std::mem::replace(inner.as_mut(), sp::Expr::value(sp::Value::Null));
            *expr = call("sluice_regclass", arg);
        }
        // `x::regtype`, `::pg_catalog.regtype`, `::pg_catalog.regclass`
        // as calls.
        sp::Expr::Cast {
            expr: inner,
            data_type: sp::DataType::Custom(name, _),
            ..
        } if reg_function(name).is_some() => {
            let function = reg_function(name).unwrap_or_default();
            let arg = std::mem::replace(inner.as_mut(), sp::Expr::value(sp::Value::Null));
            *expr = call(function, arg);
        }
        // `x::regclass::text`: the name, not the oid's digits.
        sp::Expr::Cast {
            expr: inner,
            data_type,
            ..
        } if is_text_type(data_type) && reg_call(inner).is_some() => {
            let function = reg_call(inner).unwrap_or_default();
            if let sp::Expr::Function(f) = inner.as_mut() {
                f.name = sp::ObjectName::from(vec![sp::Ident::new(format!("{function}_text"))]);
            }
            *expr = std::mem::replace(inner.as_mut(), sp::Expr::value(sp::Value::Null));
        }
        // `x::pg_catalog.text` and the like: the builtin type, unqualified.
        sp::Expr::Cast {
            data_type: data_type @ sp::DataType::Custom(..),
            ..
        } => {
            if let sp::DataType::Custom(name, _) = &*data_type
                && let Some(builtin) = builtin_pg_type(name)
            {
                *data_type = builtin;
            }
        }
        _ => return false,
    }
    true
}
