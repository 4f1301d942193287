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
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self as sp, VisitMut, VisitorMut};

/// The PostgreSQL version we answer as (also `SHOW server_version`).
pub const SERVER_VERSION: &str = "16.6";
/// The one database clients connect to.
pub const DATABASE: &str = "qdb";

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
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(constant_text("version", version_text()));
    ctx.register_udf(constant_text(
        "current_schema",
        crate::catalog::DEFAULT_SCHEMA.to_string(),
    ));
    ctx.register_udf(constant_text("current_database", DATABASE.to_string()));
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

/// Takes the `pg_catalog.` qualifier off function names in `stmt`.
pub fn unqualify_functions(stmt: &mut sp::Statement) {
    struct Unqualify;
    impl VisitorMut for Unqualify {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut sp::Expr) -> ControlFlow<()> {
            if let sp::Expr::Function(f) = expr
                && f.name.0.len() == 2
                && f.name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
            {
                f.name.0.remove(0);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Unqualify);
}
