//! psql's and drivers' catalog queries: selects over catalogs that never
//! have rows, correlated lookups by key, `ARRAY(subquery)` and ORDER BY
//! subqueries, made plannable.

use datafusion::sql::sqlparser::ast::{self as sp};

use crate::sql::walk;

use super::*;

/// Whether `e` is already an aggregate call (left as it is).
pub(super) fn is_aggregate_call(e: &sp::Expr) -> bool {
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

/// Applies `empty_select` to every select of a (set-operation) body;
/// whether every one of them was emptied.
pub(super) fn empty_selects(body: &mut sp::SetExpr) -> bool {
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
pub(super) fn empty_select(select: &mut sp::Select) -> bool {
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
pub(super) fn is_always_empty(t: &sp::TableFactor) -> bool {
    matches!(t, sp::TableFactor::Table { name, .. } if in_pg_catalog(&name.0)
    && name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
        crate::sys::pg_catalog::empty::is_empty_catalog(&i.value.to_ascii_lowercase())
    }))
}

/// Whether `e` aggregates the rows of its own select: an aggregate call
/// anywhere in it but inside a subquery (which aggregates its own rows).
pub(super) fn aggregates_outside_subqueries(e: &sp::Expr) -> bool {
    let mut outside = e.clone();
    walk::exprs_mut(&mut outside, |x| {
        if matches!(
            x,
            sp::Expr::Subquery(_) | sp::Expr::Exists { .. } | sp::Expr::InSubquery { .. }
        ) {
            *x = sp::Expr::value(sp::Value::Null);
        }
    });
    walk::any_expr(&outside, is_aggregate_call)
}

/// Whether every relation of a FROM item is a `pg_catalog` table.
pub(super) fn reads_catalog_only(from: &sp::TableWithJoins) -> bool {
    let catalog = |t: &sp::TableFactor| match t {
        sp::TableFactor::Table { name, .. } => in_pg_catalog(&name.0),
        _ => false,
    };
    catalog(&from.relation) && from.joins.iter().all(|j| catalog(&j.relation))
}

/// Whether `name` is `pg_catalog.<last>` (case-insensitive qualifier).
pub(super) fn in_pg_catalog(parts: &[sp::ObjectNamePart]) -> bool {
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
        let has_subquery = walk::any_expr(&item.expr, |e| {
            matches!(
                e,
                sp::Expr::Subquery(_) | sp::Expr::InSubquery { .. } | sp::Expr::Exists { .. }
            )
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
pub(super) fn in_subquery_as_array(e: &mut sp::Expr) {
    let sp::Expr::InSubquery {
        expr,
        subquery,
        negated,
    } = e
    else {
        return;
    };
    let sp::SetExpr::Select(select) = subquery.body.as_mut() else {
        return;
    };
    let grouped = !matches!(&select.group_by, sp::GroupByExpr::Expressions(g, _) if g.is_empty());
    let [item] = select.projection.as_mut_slice() else {
        return;
    };
    let value = match item {
        sp::SelectItem::UnnamedExpr(v) | sp::SelectItem::ExprWithAlias { expr: v, .. } => v,
        _ => return,
    };
    if grouped || is_aggregate_call(value) {
        return;
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
}

/// Scalar subqueries over catalogs, as psql writes them.
pub(super) fn rewrite_catalog_expr(expr: &mut sp::Expr) -> bool {
    match expr {
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
                return true;
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
        _ => return false,
    }
    true
}
