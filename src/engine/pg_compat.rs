//! What PostgreSQL clients ask a server before and around their queries:
//! the session functions drivers and ORMs call on connect (`version()`,
//! `current_schema()`, `current_database()`, …), registered as DataFusion
//! functions, and the `pg_catalog.` qualifier they put on them, taken off
//! before planning (DataFusion's functions are unqualified).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self as sp, VisitMut, VisitorMut};

use crate::catalog::Catalog;
use crate::sys::pg_catalog::pg_type::oid_by_name;
use crate::sys::pg_catalog::table_oid;

use crate::sys::pg_catalog::pg_settings::SERVER_VERSION;

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
    // No constraints or indexes exist, so their definitions are NULL
    // (with or without psql's column and `pretty` arguments).
    for name in ["pg_get_constraintdef", "pg_get_indexdef"] {
        ctx.register_udf(ScalarUDF::from(Constant {
            name,
            signature: Signature::one_of(
                vec![
                    TypeSignature::Any(1),
                    TypeSignature::Any(2),
                    TypeSignature::Any(3),
                ],
                Volatility::Stable,
            ),
            value: ScalarValue::Utf8(None),
        }));
    }
    ctx.register_udf(create_udf(
        "sluice_like_escape",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let rows = args
                .iter()
                .find_map(|a| match a {
                    ColumnarValue::Array(a) => Some(a.len()),
                    _ => None,
                })
                .unwrap_or(1);
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let patterns = datafusion::arrow::array::AsArray::as_string::<i32>(arrays[0].as_ref());
            let escapes = datafusion::arrow::array::AsArray::as_string::<i32>(arrays[1].as_ref());
            let out: StringArray = (0..rows)
                .map(|i| {
                    (!patterns.is_null(i) && !escapes.is_null(i))
                        .then(|| like_pattern_with_backslash(patterns.value(i), escapes.value(i)))
                })
                .collect();
            Ok(
                if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
                    ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
                } else {
                    ColumnarValue::Array(Arc::new(out) as ArrayRef)
                },
            )
        }),
    ));
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
    // PostgreSQL's current_setting(name [, missing_ok]): the settings
    // pg_settings and SHOW answer with (Grafana asks for
    // server_version_num and search_path). An unknown name is an error,
    // or NULL with missing_ok.
    ctx.register_udf(create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let setting = |name: &str| -> datafusion::error::Result<Option<String>> {
                match crate::sys::pg_catalog::pg_settings::value_of(name) {
                    Some(v) => Ok(Some(v.to_string())),
                    None => Err(datafusion::error::DataFusionError::Plan(format!(
                        "unrecognized configuration parameter \"{name}\""
                    ))),
                }
            };
            Ok(match &args[0] {
                ColumnarValue::Scalar(ScalarValue::Utf8(v)) => {
                    ColumnarValue::Scalar(ScalarValue::Utf8(match v.as_deref() {
                        Some(name) => setting(name)?,
                        None => None,
                    }))
                }
                ColumnarValue::Array(a) => {
                    let names = datafusion::arrow::array::AsArray::as_string::<i32>(a.as_ref());
                    let out: StringArray = names
                        .iter()
                        .map(|v| v.map(setting).transpose().map(Option::flatten))
                        .collect::<datafusion::error::Result<_>>()?;
                    ColumnarValue::Array(Arc::new(out) as ArrayRef)
                }
                other => other.clone(),
            })
        }),
    ));
    // Expressions are stored as their text here: pg_get_expr shows it
    // (psql passes a third argument, `pretty`, which changes nothing).
    ctx.register_udf(ScalarUDF::from(FirstArgument {
        name: "pg_get_expr",
        signature: Signature::one_of(
            vec![TypeSignature::Any(2), TypeSignature::Any(3)],
            Volatility::Immutable,
        ),
    }));
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
    for (kind, as_text) in [
        (RegKind::Type, false),
        (RegKind::TypeOrNull, false),
        (RegKind::Class, false),
        (RegKind::Type, true),
        (RegKind::Class, true),
    ] {
        ctx.register_udf(ScalarUDF::from(RegLookup {
            kind,
            as_text,
            signature: Signature::any(1, Volatility::Stable),
            tables: CatalogTables(Arc::clone(catalog)),
        }));
    }
    ctx.register_udf(constant_text("version", version_text()));
    // `user` and `current_user` (PostgreSQL's keywords) name the one user.
    for name in ["current_user", "session_user"] {
        ctx.register_udf(constant_text(
            name,
            crate::sys::pg_catalog::OWNER.to_string(),
        ));
    }
    ctx.register_udf(create_udf(
        "parse_ident",
        vec![DataType::Utf8],
        DataType::List(Arc::new(
            datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true),
        )),
        Volatility::Immutable,
        Arc::new(parse_ident_udf),
    ));
    // A scalar function in FROM is, in PostgreSQL, a relation of one row
    // (Grafana's `FROM string_to_array(current_setting('search_path'), ',')
    // s`): the scalar functions clients call that way are table functions
    // too, of one column named after the function.
    for name in ["string_to_array"] {
        if let Ok(udf) = datafusion::execution::FunctionRegistry::udf(ctx, name) {
            ctx.register_udtf(name, Arc::new(ScalarInFrom { udf }));
        }
    }
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
    ctx.register_udf(ScalarUDF::from(FirstArgument {
        name: "array_to_string",
        signature: Signature::any(2, Volatility::Immutable),
    }));
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
    // Every type is a pg_catalog type, on the search path.
    ctx.register_udf(ScalarUDF::from(Constant {
        name: "pg_type_is_visible",
        signature: Signature::any(1, Volatility::Stable),
        value: ScalarValue::Boolean(Some(true)),
    }));
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

/// A function whose answer is its first argument as it is (text here).
#[derive(Debug, PartialEq, Eq, Hash)]
struct FirstArgument {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for FirstArgument {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        Ok(args.args[0].clone())
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
    /// `x::regtype::text`: the name the oid denotes, not the oid.
    as_text: bool,
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
    call_n(name, vec![arg])
}

fn number(n: i64) -> sp::Expr {
    sp::Expr::value(sp::Value::Number(n.to_string(), false))
}

fn call_n(name: &str, args: Vec<sp::Expr>) -> sp::Expr {
    crate::sql::ast::call(name, args)
}

/// A LIKE pattern written with escape character `escape`, rewritten with
/// the backslash as its escape: `escape` + c becomes `\` + c, and a
/// backslash that was literal becomes `\\`. (An empty `escape` means no
/// escape at all, as in PostgreSQL.)
pub fn like_pattern_with_backslash(pattern: &str, escape: &str) -> String {
    let escape = escape.chars().next();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                // A trailing escape escapes nothing; kept literal.
                None => out.push_str("\\\\"),
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// `left IN (…)` (or `NOT IN`) of an array literal `right`, taking both
/// out of the expression being rewritten; `None` if `right` is not one.
fn in_list(left: &mut sp::Expr, right: &mut sp::Expr, negated: bool) -> Option<sp::Expr> {
    let sp::Expr::Array(array) = right else {
        return None;
    };
    Some(sp::Expr::InList {
        expr: Box::new(std::mem::replace(left, sp::Expr::value(sp::Value::Null))),
        list: std::mem::take(&mut array.elem),
        negated,
    })
}

/// `pg_catalog.<type>` as psql writes casts, mapped onto the SQL type
/// DataFusion plans; `None` for a name we do not know (left to fail there).
fn builtin_pg_type(name: &sp::ObjectName) -> Option<sp::DataType> {
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

/// Whether `e` is already an aggregate call (left as it is).
fn is_aggregate_call(e: &sp::Expr) -> bool {
    const AGGREGATES: &[&str] = &[
        "count",
        "max",
        "min",
        "sum",
        "avg",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
    ];
    matches!(e, sp::Expr::Function(f) if f.name.0.last().and_then(|p| p.as_ident())
        .is_some_and(|i| AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str())))
}

/// Whether a cast to `t` is a cast to text (`text`, `varchar`,
/// `pg_catalog.text`…).
fn is_text_type(t: &sp::DataType) -> bool {
    match t {
        sp::DataType::Text | sp::DataType::Varchar(_) | sp::DataType::String(_) => true,
        sp::DataType::Custom(name, _) => {
            matches!(builtin_pg_type(name), Some(sp::DataType::Text))
        }
        _ => false,
    }
}

/// The `reg*` lookup `e` calls (`sluice_regclass`…), if it is one.
fn reg_call(e: &sp::Expr) -> Option<&'static str> {
    let sp::Expr::Function(f) = e else {
        return None;
    };
    let name = f.name.0.last()?.as_ident()?.value.as_str();
    ["sluice_regclass", "sluice_regtype"]
        .into_iter()
        .find(|n| *n == name)
}

/// The lookup function a `::regtype`/`::regclass` cast to type `name` is.
fn reg_function(name: &sp::ObjectName) -> Option<&'static str> {
    let last = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    match last.as_str() {
        "regtype" => Some("sluice_regtype"),
        "regclass" => Some("sluice_regclass"),
        _ => None,
    }
}

/// Applies `empty_select` to every select of a (set-operation) body;
/// whether every one of them was emptied.
fn empty_selects(body: &mut sp::SetExpr) -> bool {
    match body {
        sp::SetExpr::Select(select) => empty_select(select),
        sp::SetExpr::SetOperation { left, right, .. } => {
            let left = empty_selects(left);
            empty_selects(right) && left
        }
        _ => false,
    }
}

/// Rewrites `select` as described in `post_visit_query` when one of its
/// inner-joined relations is a catalog that never has rows; whether it was.
fn empty_select(select: &mut sp::Select) -> bool {
    let inner_joined = |j: &sp::Join| {
        matches!(
            j.join_operator,
            sp::JoinOperator::Join(_) | sp::JoinOperator::Inner(_) | sp::JoinOperator::CrossJoin(_)
        )
    };
    let empty = select.from.iter().find_map(|f| {
        if is_always_empty(&f.relation) {
            return Some(f.relation.clone());
        }
        f.joins
            .iter()
            .find(|j| inner_joined(j) && is_always_empty(&j.relation))
            .map(|j| j.relation.clone())
    });
    let Some(relation) = empty else {
        return false;
    };
    // An aggregate over no rows still answers one row (`count(*)` is 0):
    // such selects are left to plan as they are.
    let grouped = !matches!(&select.group_by, sp::GroupByExpr::Expressions(e, _) if e.is_empty())
        || select.having.is_some();
    let aggregates = select.projection.iter().any(|item| match item {
        sp::SelectItem::UnnamedExpr(e) | sp::SelectItem::ExprWithAlias { expr: e, .. } => {
            aggregates_outside_subqueries(e)
        }
        _ => false,
    });
    if grouped || aggregates {
        return false;
    }
    select.from = vec![sp::TableWithJoins {
        relation,
        joins: vec![],
    }];
    select.selection = None;
    for (i, item) in select.projection.iter_mut().enumerate() {
        let name = match item {
            sp::SelectItem::ExprWithAlias { alias, .. } => alias.clone(),
            sp::SelectItem::UnnamedExpr(sp::Expr::CompoundIdentifier(parts)) => parts
                .last()
                .cloned()
                .unwrap_or_else(|| sp::Ident::new("?column?")),
            sp::SelectItem::UnnamedExpr(sp::Expr::Identifier(ident)) => ident.clone(),
            sp::SelectItem::UnnamedExpr(_) => sp::Ident::new(format!("column{}", i + 1)),
            _ => continue,
        };
        *item = sp::SelectItem::ExprWithAlias {
            expr: sp::Expr::value(sp::Value::Null),
            alias: name,
        };
    }
    true
}

/// Whether `t` is a pg_catalog table that never has rows.
fn is_always_empty(t: &sp::TableFactor) -> bool {
    matches!(t, sp::TableFactor::Table { name, .. } if in_pg_catalog(&name.0)
    && name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
        crate::sys::pg_catalog::empty::is_empty_catalog(&i.value.to_ascii_lowercase())
    }))
}

/// Whether `e` aggregates the rows of its own select: an aggregate call
/// anywhere in it but inside a subquery (which aggregates its own rows).
fn aggregates_outside_subqueries(e: &sp::Expr) -> bool {
    let mut outside = e.clone();
    let _ = sp::visit_expressions_mut(&mut outside, |x| {
        if matches!(
            x,
            sp::Expr::Subquery(_) | sp::Expr::Exists { .. } | sp::Expr::InSubquery { .. }
        ) {
            *x = sp::Expr::value(sp::Value::Null);
        }
        ControlFlow::<()>::Continue(())
    });
    let mut still = false;
    let _ = sp::visit_expressions(&outside, |x| {
        still |= is_aggregate_call(x);
        ControlFlow::<()>::Continue(())
    });
    still
}

/// Whether every relation of a FROM item is a `pg_catalog` table.
fn reads_catalog_only(from: &sp::TableWithJoins) -> bool {
    let catalog = |t: &sp::TableFactor| match t {
        sp::TableFactor::Table { name, .. } => in_pg_catalog(&name.0),
        _ => false,
    };
    catalog(&from.relation) && from.joins.iter().all(|j| catalog(&j.relation))
}

/// Whether `name` is `pg_catalog.<last>` (case-insensitive qualifier).
fn in_pg_catalog(parts: &[sp::ObjectNamePart]) -> bool {
    parts.len() == 2
        && parts[0]
            .as_ident()
            .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
}

/// An ORDER BY item with a subquery (Grafana's table picker orders by
/// `CASE WHEN schema IN (SELECT …) THEN 0 ELSE 1 END`), which DataFusion
/// plans only in a SELECT list: the item is appended to the SELECT list
/// and ordered by position. Returns how many were appended; the caller
/// drops that many last columns from the plan's output.
pub fn order_subqueries_to_columns(query: &mut sp::Query) -> usize {
    let sp::SetExpr::Select(select) = query.body.as_mut() else {
        return 0;
    };
    let Some(sp::OrderBy {
        kind: sp::OrderByKind::Expressions(items),
        ..
    }) = query.order_by.as_mut()
    else {
        return 0;
    };
    if select.distinct.is_some()
        || select.projection.iter().any(|p| {
            matches!(
                p,
                sp::SelectItem::Wildcard(_) | sp::SelectItem::QualifiedWildcard(..)
            )
        })
    {
        return 0;
    }
    let mut added = 0;
    for item in items.iter_mut() {
        let mut has_subquery = false;
        let _ = sp::visit_expressions(&item.expr, |e| {
            if matches!(
                e,
                sp::Expr::Subquery(_) | sp::Expr::InSubquery { .. } | sp::Expr::Exists { .. }
            ) {
                has_subquery = true;
            }
            ControlFlow::<()>::Continue(())
        });
        if has_subquery {
            let e = std::mem::replace(&mut item.expr, number(0));
            select.projection.push(sp::SelectItem::UnnamedExpr(e));
            item.expr = number(select.projection.len() as i64);
            added += 1;
        }
    }
    added
}

/// `x [NOT] IN (SELECT y …)` in a SELECT list, which DataFusion plans
/// only in a WHERE, as `[NOT] array_has((SELECT array_agg(y) …), x)`: a
/// scalar subquery, which it plans anywhere. (Where the list holds a NULL
/// and not x, PostgreSQL's IN is NULL and this is false; a CASE WHEN or a
/// WHERE treats both alike.)
fn in_subquery_as_array(e: &mut sp::Expr) -> ControlFlow<()> {
    let sp::Expr::InSubquery {
        expr,
        subquery,
        negated,
    } = e
    else {
        return ControlFlow::Continue(());
    };
    let sp::SetExpr::Select(select) = subquery.body.as_mut() else {
        return ControlFlow::Continue(());
    };
    let grouped = !matches!(&select.group_by, sp::GroupByExpr::Expressions(g, _) if g.is_empty());
    let [item] = select.projection.as_mut_slice() else {
        return ControlFlow::Continue(());
    };
    let value = match item {
        sp::SelectItem::UnnamedExpr(v) | sp::SelectItem::ExprWithAlias { expr: v, .. } => v,
        _ => return ControlFlow::Continue(()),
    };
    if grouped || is_aggregate_call(value) {
        return ControlFlow::Continue(());
    }
    let v = std::mem::replace(value, number(0));
    *value = call("array_agg", v);
    let list = sp::Expr::Subquery(std::mem::replace(
        subquery,
        Box::new(crate::sql::ast::placeholder_query()),
    ));
    let x = std::mem::replace(expr.as_mut(), number(0));
    let has = call_n("array_has", vec![list, x]);
    *e = if *negated {
        sp::Expr::UnaryOp {
            op: sp::UnaryOperator::Not,
            expr: Box::new(has),
        }
    } else {
        has
    };
    ControlFlow::Continue(())
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
        /// Names the statement reads `value` of (`a.value`).
        reads_value_of: Vec<String>,
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
        fn pre_visit_table_factor(&mut self, factor: &mut sp::TableFactor) -> ControlFlow<()> {
            // `FROM generate_series(1, 3) AS i`: PostgreSQL names the one
            // column of a function in FROM by the alias (DataFusion keeps
            // `value`), so `i` is the column too, unless the statement
            // reads `i.value`, DataFusion's way.
            if let sp::TableFactor::Table {
                name,
                args: Some(_),
                alias: Some(alias),
                ..
            } = factor
                && alias.columns.is_empty()
                && !self
                    .reads_value_of
                    .iter()
                    .any(|q| q.eq_ignore_ascii_case(&alias.name.value))
                && let Some(f) = name.0.last().and_then(|p| p.as_ident())
                && ["generate_series", "range", "string_to_array"]
                    .iter()
                    .any(|n| f.value.eq_ignore_ascii_case(n))
            {
                alias.columns = vec![sp::TableAliasColumnDef {
                    name: alias.name.clone(),
                    data_type: None,
                }];
            }
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, query: &mut sp::Query) -> ControlFlow<()> {
            if let sp::SetExpr::Select(select) = query.body.as_mut() {
                for item in &mut select.projection {
                    if let sp::SelectItem::UnnamedExpr(e)
                    | sp::SelectItem::ExprWithAlias { expr: e, .. } = item
                    {
                        let _ = sp::visit_expressions_mut(e, in_subquery_as_array);
                    }
                }
            }
            // A select that inner-joins a catalog that never has rows
            // answers no rows whatever it projects or filters on. psql's
            // `\d` writes such selects with what DataFusion cannot plan
            // (`array(subquery)`, `= any(array column)`, publication
            // functions), so the select becomes a scan of that one empty
            // catalog projecting NULLs under the same names.
            // (No rows need no order: the ORDER BY may name what is gone.)
            if empty_selects(query.body.as_mut()) {
                query.order_by = None;
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut sp::Expr) -> ControlFlow<()> {
            match expr {
                sp::Expr::Function(f) if in_pg_catalog(&f.name.0) => {
                    f.name.0.remove(0);
                }
                // `user`, `current_user`, `session_user`: PostgreSQL's
                // keywords (sqlparser reads them as calls without
                // parentheses) for the one user.
                sp::Expr::Function(f)
                    if matches!(f.args, sp::FunctionArguments::None)
                        && f.name.0.len() == 1
                        && f.name.0[0].as_ident().is_some_and(|i| {
                            ["user", "current_user", "session_user"]
                                .iter()
                                .any(|n| i.value.eq_ignore_ascii_case(n))
                        }) =>
                {
                    *expr = call_n("current_user", vec![]);
                }
                // PostgreSQL's array bounds (arrays start at 1; an empty
                // one has none): from array_length, which says 0 there.
                sp::Expr::Function(f)
                    if f.name.0.len() == 1
                        && f.name.0[0].as_ident().is_some_and(|i| {
                            i.value.eq_ignore_ascii_case("array_upper")
                                || i.value.eq_ignore_ascii_case("array_lower")
                        }) =>
                {
                    let lower = f.name.0[0]
                        .as_ident()
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("array_lower"));
                    let args = match &f.args {
                        sp::FunctionArguments::List(l) => l
                            .args
                            .iter()
                            .filter_map(|a| match a {
                                sp::FunctionArg::Unnamed(sp::FunctionArgExpr::Expr(e)) => {
                                    Some(e.clone())
                                }
                                _ => None,
                            })
                            .collect(),
                        _ => vec![],
                    };
                    // (array_length is unsigned; PostgreSQL's bounds are int.)
                    let length = sp::Expr::Cast {
                        kind: sp::CastKind::Cast,
                        expr: Box::new(call_n("array_length", args)),
                        data_type: sp::DataType::BigInt(None),
                        array: false,
                        format: None,
                    };
                    let bound = if lower {
                        call_n("least", vec![length, number(1)])
                    } else {
                        length
                    };
                    *expr = call_n("nullif", vec![bound, number(0)]);
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
                } => {
                    if let Some(list) = in_list(left, right, false) {
                        *expr = list;
                    }
                }
                sp::Expr::AllOp {
                    left,
                    compare_op: sp::BinaryOperator::NotEq,
                    right,
                } => {
                    if let Some(list) = in_list(left, right, true) {
                        *expr = list;
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
                // A correlated scalar subquery over catalog tables, as psql's
                // `\d` writes them: DataFusion plans only aggregated ones, and
                // a catalog lookup by key has at most one row, so max() of
                // it is the row itself.
                sp::Expr::Subquery(query) => {
                    // Over a catalog that never has rows (pg_attrdef,
                    // pg_collation…) it is NULL, whatever it correlates on:
                    // DataFusion cannot decorrelate psql's `<>` predicates.
                    if let sp::SetExpr::Select(select) = query.body.as_ref()
                        && select
                            .from
                            .iter()
                            .any(|f| f.joins.is_empty() && is_always_empty(&f.relation))
                    {
                        *expr = sp::Expr::value(sp::Value::Null);
                        return ControlFlow::Continue(());
                    }
                    if let sp::SetExpr::Select(select) = query.body.as_mut()
                        && select.from.iter().all(reads_catalog_only)
                        && !select.from.is_empty()
                        && matches!(select.group_by, sp::GroupByExpr::Expressions(ref e, _) if e.is_empty())
                        && let [item] = select.projection.as_mut_slice()
                    {
                        let inner = match item {
                            sp::SelectItem::UnnamedExpr(e) => Some(e),
                            sp::SelectItem::ExprWithAlias { expr, .. } => Some(expr),
                            _ => None,
                        };
                        if let Some(e) = inner.filter(|e| !is_aggregate_call(e)) {
                            let arg = std::mem::replace(e, sp::Expr::value(sp::Value::Null));
                            *e = call("max", arg);
                        }
                    }
                }
                // `ARRAY(select …)` over a catalog that never has rows (psql's
                // `\du` asks for the roles one is a member of) is the empty
                // array, `{}` in PostgreSQL's text form.
                sp::Expr::Function(sp::Function {
                    name,
                    args: sp::FunctionArguments::Subquery(query),
                    ..
                }) if name.0.len() == 1
                    && name.0[0]
                        .as_ident()
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("array"))
                    && matches!(query.body.as_ref(), sp::SetExpr::Select(s)
                        if s.from.len() == 1 && s.from[0].joins.is_empty()
                            && is_always_empty(&s.from[0].relation)) =>
                {
                    *expr = sp::Expr::value(sp::Value::SingleQuotedString("{}".to_string()));
                }
                // `LIKE p ESCAPE 'c'` with c other than the backslash (which is
                // all DataFusion takes): the pattern rewritten to backslash
                // escapes by `sluice_like_escape`, exactly.
                sp::Expr::Like {
                    pattern,
                    escape_char,
                    ..
                }
                | sp::Expr::ILike {
                    pattern,
                    escape_char,
                    ..
                } if escape_char.as_ref().is_some_and(
                    |e| !matches!(&e.value, sp::Value::SingleQuotedString(c) if c == "\\"),
                ) =>
                {
                    let escape = escape_char
                        .take()
                        .map(sp::Expr::Value)
                        .unwrap_or_else(|| sp::Expr::value(sp::Value::Null));
                    let p = std::mem::replace(pattern.as_mut(), sp::Expr::value(sp::Value::Null));
                    **pattern = call_n("sluice_like_escape", vec![p, escape]);
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
                        f.name =
                            sp::ObjectName::from(vec![sp::Ident::new(format!("{function}_text"))]);
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
    let mut reads_value_of = Vec::new();
    let _ = sp::visit_expressions(stmt, |e| {
        if let sp::Expr::CompoundIdentifier(parts) = e
            && let [q, v] = parts.as_slice()
            && v.value.eq_ignore_ascii_case("value")
        {
            reads_value_of.push(q.value.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = stmt.visit(&mut Unqualify {
        is_catalog_table,
        reads_value_of,
    });
}

/// A scalar function called in FROM: one row, one column.
#[derive(Debug)]
struct ScalarInFrom {
    udf: Arc<ScalarUDF>,
}

impl datafusion::catalog::TableFunctionImpl for ScalarInFrom {
    fn call(
        &self,
        args: &[datafusion::logical_expr::Expr],
    ) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>> {
        use datafusion::logical_expr::expr::ScalarFunction;
        let call = datafusion::logical_expr::Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::clone(&self.udf),
            args.to_vec(),
        ))
        .alias(self.udf.name());
        let plan = datafusion::logical_expr::LogicalPlanBuilder::empty(true)
            .project(vec![call])?
            .build()?;
        Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
            plan, None,
        )))
    }
}

/// PostgreSQL's `parse_ident('a."B".c')`: the parts of a qualified name,
/// unquoted parts lower-cased, quoted ones as written (`""` is `"`).
fn parse_ident_udf(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    use datafusion::arrow::array::{ListBuilder, StringBuilder};
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let names = datafusion::arrow::array::AsArray::as_string::<i32>(arrays[0].as_ref());
    let mut out = ListBuilder::new(StringBuilder::new());
    for name in names.iter() {
        match name {
            None => out.append_null(),
            Some(name) => {
                for part in ident_parts(name).map_err(|m| {
                    datafusion::error::DataFusionError::Execution(format!(
                        "string is not a valid identifier: \"{name}\" ({m})"
                    ))
                })? {
                    out.values().append_value(part);
                }
                out.append(true);
            }
        }
    }
    let array: ArrayRef = Arc::new(out.finish());
    Ok(match &args[0] {
        ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?),
        ColumnarValue::Array(_) => ColumnarValue::Array(array),
    })
}

/// The parts of a dotted name (see [`parse_ident_udf`]).
fn ident_parts(name: &str) -> Result<Vec<String>, &'static str> {
    let mut parts = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err("unclosed double quote"),
                }
            }
            if part.is_empty() {
                return Err("empty quoted identifier");
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != '.') {
                chars.next();
                part.push(c);
            }
            part = part.trim().to_lowercase();
            if part.is_empty() {
                return Err("empty part");
            }
        }
        parts.push(part);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(_) => return Err("junk after a quoted part"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ident_parts;
    use super::like_pattern_with_backslash as with_backslash;

    #[test]
    fn identifiers_split_as_postgresql_does() {
        assert_eq!(
            ident_parts("Public.Tbl"),
            Ok(vec!["public".into(), "tbl".into()])
        );
        assert_eq!(
            ident_parts(r#" a . "B ""c""" "#),
            Ok(vec!["a".into(), r#"B "c""#.into()])
        );
        assert_eq!(ident_parts("a..b"), Err("empty part"));
        assert_eq!(ident_parts(r#""a"b"#), Err("junk after a quoted part"));
        assert_eq!(ident_parts(r#""a"#), Err("unclosed double quote"));
    }

    #[test]
    fn like_escapes_become_backslash_escapes() {
        assert_eq!(with_backslash("pg/_%", "/"), "pg\\_%");
        // A backslash that was literal stays literal.
        assert_eq!(with_backslash("a\\b", "#"), "a\\\\b");
        // The escape escaping itself is the escape character, literally.
        assert_eq!(with_backslash("a##b", "#"), "a\\#b");
        assert_eq!(with_backslash("50#%", "#"), "50\\%");
        // No escape character at all.
        assert_eq!(with_backslash("a\\_", ""), "a\\\\_");
    }
}
