//! PostgreSQL spellings DataFusion does not take: `pg_catalog.`-qualified
//! functions, `user`, array bounds, custom operators, `= ANY (ARRAY[…])`,
//! `current_schemas(b)[1]`, `LIKE … ESCAPE`, `COLLATE "default"`.

use datafusion::sql::sqlparser::ast::{self as sp};

use super::*;

/// Whether `e` is `current_schemas(…)`, in parentheses or not (its
/// `pg_catalog.` qualifier is already gone: the visitor works bottom up).
pub(super) fn is_current_schemas(e: &sp::Expr) -> bool {
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
pub(super) fn in_list(
    left: &mut sp::Expr,
    right: &mut sp::Expr,
    negated: bool,
) -> Option<sp::Expr> {
    let sp::Expr::Array(array) = right else {
        return None;
    };
    Some(sp::Expr::InList {
        expr: Box::new(std::mem::replace(left, sp::Expr::value(sp::Value::Null))),
        list: std::mem::take(&mut array.elem),
        negated,
    })
}

/// One spelling rewritten in place; `false` when `expr` is none of them.
pub(super) fn rewrite_spelling(expr: &mut sp::Expr) -> bool {
    rewrite_call(expr) || rewrite_operator(expr)
}

/// Calls: `pg_catalog.f()`, the user keywords, array bounds.
fn rewrite_call(expr: &mut sp::Expr) -> bool {
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
                        sp::FunctionArg::Unnamed(sp::FunctionArgExpr::Expr(e)) => Some(e.clone()),
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
        _ => return false,
    }
    true
}

/// Operators and clauses: custom operators, `ANY`/`ALL` over arrays,
/// `current_schemas(b)[1]`, `LIKE … ESCAPE`, `COLLATE "default"`.
fn rewrite_operator(expr: &mut sp::Expr) -> bool {
    match expr {
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
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::like_pattern_with_backslash as with_backslash;

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
