//! What PostgreSQL clients ask a server before and around their queries:
//! the session functions drivers and ORMs call on connect (`version()`,
//! `current_schema()`, `current_database()`, …), registered as DataFusion
//! functions, and the `pg_catalog.` qualifier they put on them, taken off
//! before planning (DataFusion's functions are unqualified).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self as sp, VisitMut, VisitorMut};

use crate::catalog::Catalog;
use crate::sys::pg_catalog::pg_type::oid_by_name;
use crate::sys::pg_catalog::table_oid;

/// The PostgreSQL version we answer as (also `SHOW server_version`).
pub const SERVER_VERSION: &str = "16.6";

/// `version()` as PostgreSQL writes it: drivers and ORMs (SQLAlchemy's
/// dialect first of all) read the version number after `PostgreSQL `.
fn version_text() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (sluice {}) on {}-linux, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// A function of no arguments returning one text value.
fn constant_text(name: &str, value: String) -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                value.clone(),
            ))))
        }),
    )
}

/// Registers the session functions on `ctx` (replacing DataFusion's own
/// `version()`, which does not name PostgreSQL).
pub fn register(ctx: &SessionContext, catalog: &Arc<Catalog>) {
    // The one user may do everything, and nothing has a comment: these
    // take arguments of any type (names or oids) and answer one value.
    for (name, arity, value) in [
        ("has_table_privilege", 2, ScalarValue::Boolean(Some(true))),
        ("has_schema_privilege", 2, ScalarValue::Boolean(Some(true))),
        (
            "has_database_privilege",
            2,
            ScalarValue::Boolean(Some(true)),
        ),
        ("has_column_privilege", 3, ScalarValue::Boolean(Some(true))),
        ("obj_description", 2, ScalarValue::Utf8(None)),
        ("col_description", 2, ScalarValue::Utf8(None)),
    ] {
        ctx.register_udf(ScalarUDF::from(Constant {
            name,
            signature: Signature::any(arity, Volatility::Stable),
            value,
        }));
    }
    ctx.register_udf(create_udf(
        "quote_ident",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let quote = |s: &str| {
                let plain = s
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if plain {
                    s.to_string()
                } else {
                    format!("\"{}\"", s.replace('"', "\"\""))
                }
            };
            Ok(match &args[0] {
                ColumnarValue::Scalar(ScalarValue::Utf8(v)) => {
                    ColumnarValue::Scalar(ScalarValue::Utf8(v.as_deref().map(quote)))
                }
                ColumnarValue::Array(a) => {
                    let strings = datafusion::arrow::array::AsArray::as_string::<i32>(a.as_ref());
                    let out: StringArray = strings.iter().map(|v| v.map(quote)).collect();
                    ColumnarValue::Array(Arc::new(out) as ArrayRef)
                }
                other => other.clone(),
            })
        }),
    ));
    // Expressions are stored as their text here: pg_get_expr shows it.
    ctx.register_udf(create_udf(
        "pg_get_expr",
        vec![DataType::Utf8, DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
    ));
    ctx.register_udf(create_udf(
        "format_type",
        vec![DataType::Int64, DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            Ok(map_i64(&args[0], |oid| {
                ScalarValue::Utf8(
                    crate::sys::pg_catalog::pg_type::sql_name(oid as i32).map(str::to_string),
                )
            }))
        }),
    ));
    for kind in [RegKind::Type, RegKind::TypeOrNull, RegKind::Class] {
        ctx.register_udf(ScalarUDF::from(RegLookup {
            kind,
            signature: Signature::any(1, Volatility::Stable),
            tables: CatalogTables(Arc::clone(catalog)),
        }));
    }
    ctx.register_udf(constant_text("version", version_text()));
    ctx.register_udf(constant_text(
        "current_schema",
        crate::catalog::DEFAULT_SCHEMA.to_string(),
    ));
    ctx.register_udf(constant_text(
        "current_database",
        crate::catalog::DATABASE.to_string(),
    ));
    // ACL columns are text here (always NULL: no grants), so joining their
    // elements is the text itself; psql's \l calls it on datacl.
    ctx.register_udf(create_udf(
        "array_to_string",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
    ));
    // Everything is owned by, and visible to, the one user.
    ctx.register_udf(create_udf(
        "pg_get_userbyid",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            Ok(map_i64(&args[0], |_| {
                ScalarValue::Utf8(Some(crate::sys::pg_catalog::OWNER.to_string()))
            }))
        }),
    ));
    // The search path is `public` (then pg_catalog): a relation is visible
    // when it is a table of `public`, as in PostgreSQL, so `\dt` lists
    // public tables and `\dt iot.*` the others.
    let visible_catalog = Arc::clone(catalog);
    ctx.register_udf(create_udf(
        "pg_table_is_visible",
        vec![DataType::Int64],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let public: std::collections::HashSet<i64> = visible_catalog
                .table_names(crate::catalog::DEFAULT_SCHEMA)
                .iter()
                .map(|t| i64::from(table_oid(crate::catalog::DEFAULT_SCHEMA, t)))
                .collect();
            Ok(map_i64(&args[0], |oid| {
                ScalarValue::Boolean(Some(public.contains(&oid)))
            }))
        }),
    ));
    ctx.register_udf(create_udf(
        "pg_encoding_to_char",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            // Every database here is UTF8 (encoding 6).
            let utf8 = |v: Option<i64>| v.map(|_| "UTF8".to_string());
            Ok(match &args[0] {
                ColumnarValue::Scalar(ScalarValue::Int64(v)) => {
                    ColumnarValue::Scalar(ScalarValue::Utf8(utf8(*v)))
                }
                ColumnarValue::Array(a) => {
                    let ints = datafusion::arrow::array::AsArray::as_primitive::<
                        datafusion::arrow::datatypes::Int64Type,
                    >(a.as_ref());
                    let out: StringArray = ints.iter().map(utf8).collect();
                    ColumnarValue::Array(Arc::new(out) as ArrayRef)
                }
                other => ColumnarValue::Scalar(ScalarValue::Utf8(
                    (!other.data_type().is_null()).then(|| "UTF8".to_string()),
                )),
            })
        }),
    ));
}

/// Applies `f` to every non-null integer of `arg` (NULL stays NULL).
fn map_i64(arg: &ColumnarValue, f: impl Fn(i64) -> ScalarValue) -> ColumnarValue {
    match arg {
        ColumnarValue::Scalar(v) => ColumnarValue::Scalar(match v {
            ScalarValue::Int64(Some(x)) => f(*x),
            other => ScalarValue::try_from(f(0).data_type()).unwrap_or(other.clone()),
        }),
        ColumnarValue::Array(a) => {
            let ints = datafusion::arrow::array::AsArray::as_primitive::<
                datafusion::arrow::datatypes::Int64Type,
            >(a.as_ref());
            let values: Vec<ScalarValue> = ints
                .iter()
                .map(|v| match v {
                    Some(x) => f(x),
                    None => ScalarValue::try_from(f(0).data_type()).expect("a typed NULL"),
                })
                .collect();
            if values.is_empty() {
                return ColumnarValue::Array(datafusion::arrow::array::new_empty_array(
                    &f(0).data_type(),
                ));
            }
            ColumnarValue::Array(ScalarValue::iter_to_array(values).expect("values of one type"))
        }
    }
}

/// A function of any arguments answering one value (privilege checks and
/// comment lookups, whose answer here never varies).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: &'static str,
    signature: Signature,
    value: ScalarValue,
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(
        &self,
        _args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

/// What a `reg*` lookup resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RegKind {
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
struct RegLookup {
    kind: RegKind,
    signature: Signature,
    tables: CatalogTables,
}

/// The catalog, compared by identity (a UDF must be `Eq` and `Hash`).
#[derive(Debug)]
struct CatalogTables(Arc<Catalog>);

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
        match self.kind {
            RegKind::Type => "sluice_regtype",
            RegKind::TypeOrNull => "to_regtype",
            RegKind::Class => "sluice_regclass",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Scalar(v) => Ok(ColumnarValue::Scalar(ScalarValue::Int32(self.one(v)?))),
            ColumnarValue::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for i in 0..a.len() {
                    out.push(self.one(&ScalarValue::try_from_array(a, i)?)?);
                }
                Ok(ColumnarValue::Array(Arc::new(
                    datafusion::arrow::array::Int32Array::from(out),
                )))
            }
        }
    }
}

/// Whether `e` is `current_schemas(…)`, in parentheses or not (its
/// `pg_catalog.` qualifier is already gone: the visitor works bottom up).
fn is_current_schemas(e: &sp::Expr) -> bool {
    match e {
        sp::Expr::Nested(inner) => is_current_schemas(inner),
        sp::Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("current_schemas")),
        _ => false,
    }
}

/// A call of the one-argument function `name`.
fn call(name: &str, arg: sp::Expr) -> sp::Expr {
    sp::Expr::Function(sp::Function {
        name: sp::ObjectName::from(vec![sp::Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: sp::FunctionArguments::None,
        args: sp::FunctionArguments::List(sp::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![sp::FunctionArg::Unnamed(sp::FunctionArgExpr::Expr(arg))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// Whether `name` is `pg_catalog.<last>` (case-insensitive qualifier).
fn in_pg_catalog(parts: &[sp::ObjectNamePart]) -> bool {
    parts.len() == 2
        && parts[0]
            .as_ident()
            .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
}

/// Rewrites what clients write in PostgreSQL's own spelling into what
/// DataFusion plans: `pg_catalog.f()` as `f()`, `a OPERATOR(pg_catalog.~) b`
/// as `a ~ b`, `COLLATE pg_catalog.default` dropped (the default collation
/// is the only one), and an unqualified catalog table (`pg_class`) as
/// `pg_catalog.pg_class`, pg_catalog being first on PostgreSQL's search
/// path. `is_catalog_table` says which names those are.
pub fn rewrite_pg_spellings(stmt: &mut sp::Statement, is_catalog_table: &dyn Fn(&str) -> bool) {
    struct Unqualify<'a> {
        is_catalog_table: &'a dyn Fn(&str) -> bool,
    }
    impl VisitorMut for Unqualify<'_> {
        type Break = ();
        fn pre_visit_relation(&mut self, relation: &mut sp::ObjectName) -> ControlFlow<()> {
            if let [only] = relation.0.as_slice()
                && let Some(ident) = only.as_ident()
                && ident.quote_style.is_none()
                && (self.is_catalog_table)(&ident.value.to_lowercase())
            {
                relation.0.insert(
                    0,
                    sp::ObjectNamePart::Identifier(sp::Ident::new("pg_catalog")),
                );
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut sp::Expr) -> ControlFlow<()> {
            match expr {
                sp::Expr::Function(f) if in_pg_catalog(&f.name.0) => {
                    f.name.0.remove(0);
                }
                sp::Expr::BinaryOp { op, .. } => {
                    if let sp::BinaryOperator::PGCustomBinaryOperator(parts) = op {
                        let name = parts.last().map(String::as_str).unwrap_or("");
                        let builtin = match name {
                            "~" => Some(sp::BinaryOperator::PGRegexMatch),
                            "~*" => Some(sp::BinaryOperator::PGRegexIMatch),
                            "!~" => Some(sp::BinaryOperator::PGRegexNotMatch),
                            "!~*" => Some(sp::BinaryOperator::PGRegexNotIMatch),
                            "=" => Some(sp::BinaryOperator::Eq),
                            "<>" => Some(sp::BinaryOperator::NotEq),
                            _ => None,
                        };
                        if let Some(b) = builtin {
                            *op = b;
                        }
                    }
                }
                // `x = ANY (ARRAY[a, b])` (SQLAlchemy's `IN` with a list) as
                // `x IN (a, b)`; `x <> ALL (ARRAY[…])` as `NOT IN`. Array
                // literals need DataFusion's nested functions, which we do
                // not build.
                sp::Expr::AnyOp {
                    left,
                    compare_op: sp::BinaryOperator::Eq,
                    right,
                    ..
                } if matches!(right.as_ref(), sp::Expr::Array(_)) => {
                    if let sp::Expr::Array(array) = right.as_mut() {
                        let list = std::mem::take(&mut array.elem);
                        let left =
                            std::mem::replace(left.as_mut(), sp::Expr::value(sp::Value::Null));
                        *expr = sp::Expr::InList {
                            expr: Box::new(left),
                            list,
                            negated: false,
                        };
                    }
                }
                sp::Expr::AllOp {
                    left,
                    compare_op: sp::BinaryOperator::NotEq,
                    right,
                } if matches!(right.as_ref(), sp::Expr::Array(_)) => {
                    if let sp::Expr::Array(array) = right.as_mut() {
                        let list = std::mem::take(&mut array.elem);
                        let left =
                            std::mem::replace(left.as_mut(), sp::Expr::value(sp::Value::Null));
                        *expr = sp::Expr::InList {
                            expr: Box::new(left),
                            list,
                            negated: true,
                        };
                    }
                }
                // `(current_schemas(b))[1]` (JDBC's getSchemas): the first
                // schema of the search path, which is `public`; further
                // elements are pg_catalog's or nothing. current_schemas()
                // itself is an array, which we do not build.
                sp::Expr::CompoundFieldAccess { root, access_chain }
                    if access_chain.len() == 1 && is_current_schemas(root) =>
                {
                    let first = matches!(
                        &access_chain[0],
                        sp::AccessExpr::Subscript(sp::Subscript::Index {
                            index: sp::Expr::Value(v),
                        }) if matches!(&v.value, sp::Value::Number(n, _) if n == "1")
                    );
                    *expr = if first {
                        sp::Expr::Function(sp::Function {
                            name: sp::ObjectName::from(vec![sp::Ident::new("current_schema")]),
                            uses_odbc_syntax: false,
                            parameters: sp::FunctionArguments::None,
                            args: sp::FunctionArguments::List(sp::FunctionArgumentList {
                                duplicate_treatment: None,
                                args: vec![],
                                clauses: vec![],
                            }),
                            filter: None,
                            null_treatment: None,
                            over: None,
                            within_group: vec![],
                        })
                    } else {
                        sp::Expr::value(sp::Value::Null)
                    };
                }
                // `x::regclass` as a call.
                sp::Expr::Cast {
                    expr: inner,
                    data_type: sp::DataType::Regclass,
                    ..
                } => {
                    let arg = std::mem::replace(inner.as_mut(), sp::Expr::value(sp::Value::Null));
                    *expr = call("sluice_regclass", arg);
                }
                // `x::regtype` (and `::pg_catalog.regtype`) as a call.
                sp::Expr::Cast {
                    expr: inner,
                    data_type: sp::DataType::Custom(name, _),
                    ..
                } if name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("regtype")) =>
                {
                    let arg = std::mem::replace(inner.as_mut(), sp::Expr::value(sp::Value::Null));
                    *expr = call("sluice_regtype", arg);
                }
                sp::Expr::Collate {
                    expr: inner,
                    collation,
                } if collation
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("default")) =>
                {
                    *expr = std::mem::replace(inner.as_mut(), sp::Expr::value(sp::Value::Null));
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Unqualify { is_catalog_table });
}
