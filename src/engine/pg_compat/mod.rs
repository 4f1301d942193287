//! What PostgreSQL clients ask a server before and around their queries,
//! made plannable by DataFusion. One file per family: the session
//! functions drivers and ORMs call ([`functions`]), `regclass`/`regtype`
//! and casts to PostgreSQL's type names ([`reg`]), spellings DataFusion
//! does not take ([`spellings`]), and psql's catalog queries
//! ([`catalog_queries`]). This file walks a statement once and gives each
//! expression to the families in turn.

mod catalog_queries;
mod functions;
mod reg;
mod spellings;

pub use catalog_queries::order_subqueries_to_columns;
pub use functions::register;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast as sp;

use crate::sql::walk;

use catalog_queries::*;
use reg::*;
use spellings::*;

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
    impl walk::HooksMut for Unqualify<'_> {
        fn pre_relation(&mut self, relation: &mut sp::ObjectName) -> ControlFlow<()> {
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
        fn pre_table_factor(&mut self, factor: &mut sp::TableFactor) -> ControlFlow<()> {
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
        fn post_query(&mut self, query: &mut sp::Query) -> ControlFlow<()> {
            if let sp::SetExpr::Select(select) = query.body.as_mut() {
                for item in &mut select.projection {
                    if let sp::SelectItem::UnnamedExpr(e)
                    | sp::SelectItem::ExprWithAlias { expr: e, .. } = item
                    {
                        walk::exprs_mut(e, in_subquery_as_array);
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
        fn post_expr(&mut self, expr: &mut sp::Expr) -> ControlFlow<()> {
            // One family of rewrites applies to an expression, at most.
            if !spellings::rewrite_spelling(expr) && !catalog_queries::rewrite_catalog_expr(expr) {
                reg::rewrite_cast(expr);
            }
            ControlFlow::Continue(())
        }
    }
    let mut reads_value_of = Vec::new();
    walk::exprs(stmt, |e| {
        if let sp::Expr::CompoundIdentifier(parts) = e
            && let [q, v] = parts.as_slice()
            && v.value.eq_ignore_ascii_case("value")
        {
            reads_value_of.push(q.value.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = walk::walk_mut(
        stmt,
        &mut Unqualify {
            is_catalog_table,
            reads_value_of,
        },
    );
}
