//! The session functions PostgreSQL drivers, ORMs and psql call (`version()`,
//! `current_schema()`, privileges, `pg_get_*`…), registered as DataFusion
//! functions, and scalar functions called in FROM.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility, create_udf,
};
use datafusion::prelude::SessionContext;

use crate::catalog::Catalog;
use crate::sys::pg_catalog::table_oid;

use super::*;
use crate::sys::pg_catalog::pg_settings::SERVER_VERSION;

/// `version()` as PostgreSQL writes it: drivers and ORMs (SQLAlchemy's
/// dialect first of all) read the version number after `PostgreSQL `.
pub(super) fn version_text() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (sluice {}) on {}-linux, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// A function of no arguments returning one text value.
pub(super) fn constant_text(name: &str, value: String) -> datafusion::logical_expr::ScalarUDF {
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
    privileges_and_definitions(ctx);
    text_functions(ctx);
    session_settings(ctx);
    catalog_lookups(ctx, catalog);
    scalars_in_from(ctx);
}

/// Privileges, comments and the definitions of objects that do not exist
/// here (constraints, indexes): constants.
fn privileges_and_definitions(ctx: &SessionContext) {
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
    // Every type is a pg_catalog type, on the search path.
    ctx.register_udf(ScalarUDF::from(Constant {
        name: "pg_type_is_visible",
        signature: Signature::any(1, Volatility::Stable),
        value: ScalarValue::Boolean(Some(true)),
    }));
}

/// Text helpers drivers and psql call: LIKE escapes, identifiers, ACLs
/// and stored expressions.
fn text_functions(ctx: &SessionContext) {
    ctx.register_udf(create_udf(
        "sluice_like_escape",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(like_escape),
    ));
    ctx.register_udf(create_udf(
        "quote_ident",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(quote_ident),
    ));
    ctx.register_udf(create_udf(
        "parse_ident",
        vec![DataType::Utf8],
        DataType::List(Arc::new(
            datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true),
        )),
        Volatility::Immutable,
        Arc::new(parse_ident_udf),
    ));
    // ACL columns are text here (always NULL: no grants), so joining their
    // elements is the text itself; psql's \l calls it on datacl.
    ctx.register_udf(ScalarUDF::from(FirstArgument {
        name: "array_to_string",
        signature: Signature::any(2, Volatility::Immutable),
    }));
    // Expressions are stored as their text here: pg_get_expr shows it
    // (psql passes a third argument, `pretty`, which changes nothing).
    ctx.register_udf(ScalarUDF::from(FirstArgument {
        name: "pg_get_expr",
        signature: Signature::one_of(
            vec![TypeSignature::Any(2), TypeSignature::Any(3)],
            Volatility::Immutable,
        ),
    }));
}

/// The server's settings and names: `current_setting`, `version()`, the
/// user, schema, database and encoding.
fn session_settings(ctx: &SessionContext) {
    // PostgreSQL's current_setting(name [, missing_ok]): the settings
    // pg_settings and SHOW answer with (Grafana asks for
    // server_version_num and search_path). An unknown name is an error,
    // or NULL with missing_ok.
    ctx.register_udf(create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(current_setting),
    ));
    ctx.register_udf(constant_text("version", version_text()));
    // `user` and `current_user` (PostgreSQL's keywords) name the one user.
    for name in ["current_user", "session_user"] {
        ctx.register_udf(constant_text(
            name,
            crate::sys::pg_catalog::OWNER.to_string(),
        ));
    }
    ctx.register_udf(constant_text(
        "current_schema",
        crate::catalog::DEFAULT_SCHEMA.to_string(),
    ));
    ctx.register_udf(constant_text(
        "current_database",
        crate::catalog::DATABASE.to_string(),
    ));
    ctx.register_udf(create_udf(
        "pg_encoding_to_char",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(encoding_to_char),
    ));
}

/// Look-ups in the catalog: type names, regclass/regtype, owners and
/// which tables the search path sees.
fn catalog_lookups(ctx: &SessionContext, catalog: &Arc<Catalog>) {
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
}

/// Scalar functions called in FROM.
fn scalars_in_from(ctx: &SessionContext) {
    // A scalar function in FROM is, in PostgreSQL, a relation of one row
    // (Grafana's `FROM string_to_array(current_setting('search_path'), ',')
    // s`): the scalar functions clients call that way are table functions
    // too, of one column named after the function.
    for name in ["string_to_array"] {
        if let Ok(udf) = datafusion::execution::FunctionRegistry::udf(ctx, name) {
            ctx.register_udtf(name, Arc::new(ScalarInFrom { udf }));
        }
    }
}

/// `sluice_like_escape(pattern, escape)`: a LIKE pattern with its ESCAPE character made a backslash.
fn like_escape(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
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
}

/// `quote_ident(text)`: the identifier, double-quoted unless it is lower-case letters, digits and underscores.
fn quote_ident(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
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
}

/// `current_setting(name)`: the value pg_settings and SHOW give; an unknown name is an error.
fn current_setting(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
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
}

/// `pg_encoding_to_char(int)`: every database here is UTF8 (encoding 6).
fn encoding_to_char(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
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
}

/// Applies `f` to every non-null integer of `arg` (NULL stays NULL).
pub(super) fn map_i64(arg: &ColumnarValue, f: impl Fn(i64) -> ScalarValue) -> ColumnarValue {
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
pub(super) struct Constant {
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
pub(super) struct FirstArgument {
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

/// A scalar function called in FROM: one row, one column.
#[derive(Debug)]
pub(super) struct ScalarInFrom {
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
pub(super) fn parse_ident_udf(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
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
pub(super) fn ident_parts(name: &str) -> Result<Vec<String>, &'static str> {
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
}
