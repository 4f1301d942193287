//! The query side between the parsed statement and DataFusion: passes over
//! the AST and the logical plan that give QuestDB's behaviour (SAMPLE BY,
//! LATEST ON, time joins, result column names, column names matched
//! ignoring case, designated-timestamp order
//! of scans) and QuestDB's functions. Everything here builds DataFusion
//! plans and expressions or edits the typed AST; nothing prints SQL to
//! parse it again.

pub mod column_case;
pub mod date_functions;
mod float_sums;
pub mod latest_on;
pub mod names;
pub mod relations;
pub mod sample_by;
pub mod scan_order;
pub mod symbol_groups;
pub mod time_functions;
pub mod time_join;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast as sp;

use crate::error::{Error, Result};
use crate::sql::parser::ident_name;
use crate::sql::walk;

/// What the passes need to know of the catalog and the functions.
pub trait Env {
    /// The designated timestamp of the table `name` (None when it has
    /// none; an error, at `position`, when there is no such table).
    fn designated_timestamp(
        &self,
        name: &sp::ObjectName,
        position: usize,
    ) -> Result<Option<String>>;
    /// Whether `name` is an aggregate function.
    fn is_aggregate(&self, name: &str) -> bool;
}

/// Whether `e` calls an aggregate function (not as a window).
fn has_aggregate(e: &sp::Expr, env: &dyn Env) -> bool {
    walk::any_expr(e, |x| {
        matches!(x, sp::Expr::Function(f) if f.over.is_none()
            && f.name.0.last().and_then(|p| p.as_ident())
                .is_some_and(|name| env.is_aggregate(&ident_name(name))))
    })
}

/// Whether a SELECT's rows are groups (GROUP BY, DISTINCT, aggregates):
/// then it cannot be ordered by a column of its table.
fn is_grouped(select: &sp::Select, env: &dyn Env) -> bool {
    select.distinct.is_some()
        || !matches!(&select.group_by, sp::GroupByExpr::Expressions(e, _) if e.is_empty())
        || select.projection.iter().any(|item| match item {
            sp::SelectItem::UnnamedExpr(e) | sp::SelectItem::ExprWithAlias { expr: e, .. } => {
                has_aggregate(e, env)
            }
            _ => false,
        })
}

/// What [`for_each_select`] calls: a SELECT and, when it is its query's
/// body, that query's ORDER BY.
type SelectFn<'a> = dyn FnMut(&mut sp::Select, Option<&mut Option<sp::OrderBy>>) -> Result<()> + 'a;

/// Calls `f` on every SELECT of `query`, at any depth (WITH queries,
/// subqueries, both sides of a UNION), with its query's ORDER BY when the
/// SELECT is that query's body (a side of a set operation has none of its
/// own).
fn for_each_select(query: &mut sp::Query, f: &mut SelectFn<'_>) -> Result<()> {
    struct Walk<'a, 'b> {
        f: &'a mut SelectFn<'b>,
        /// What `f` failed with, which ended the walk.
        failed: Option<Error>,
    }
    impl Walk<'_, '_> {
        fn set_operation(&mut self, body: &mut sp::SetExpr) -> Result<()> {
            match body {
                sp::SetExpr::SetOperation { left, right, .. } => {
                    self.set_operation(left)?;
                    self.set_operation(right)
                }
                sp::SetExpr::Select(select) => (self.f)(select, None),
                _ => Ok(()),
            }
        }
    }
    impl walk::HooksMut for Walk<'_, '_> {
        fn pre_query(&mut self, q: &mut sp::Query) -> ControlFlow<()> {
            let result = match q.body.as_mut() {
                sp::SetExpr::Select(select) => (self.f)(select, Some(&mut q.order_by)),
                body => self.set_operation(body),
            };
            match result {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    self.failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        }
    }
    let mut walk = Walk { f, failed: None };
    let _ = walk::walk_mut(query, &mut walk);
    walk.failed.map_or(Ok(()), Err)
}

/// The one table a SAMPLE BY or LATEST ON SELECT reads, and its name; an
/// error at the clause's `position` for several tables, a join or a
/// subquery.
fn one_table<'a>(
    select: &'a sp::Select,
    clause: &str,
    position: usize,
) -> Result<(&'a sp::TableWithJoins, &'a sp::ObjectName)> {
    let err = |m: String| Error::Syntax {
        message: m,
        position,
    };
    let [from] = select.from.as_slice() else {
        return Err(err(format!("{clause} reads one table")));
    };
    if !from.joins.is_empty() {
        return Err(err(format!("{clause} reads one table, without joins")));
    }
    let sp::TableFactor::Table { name, .. } = &from.relation else {
        return Err(err(format!("{clause} reads a table")));
    };
    Ok((from, name))
}

/// The name a query reads a table by: its alias, or its name.
fn reader(r: &sp::TableFactor) -> Vec<sp::Ident> {
    match r {
        sp::TableFactor::Table { alias: Some(a), .. } => vec![a.name.clone()],
        sp::TableFactor::Table { name, .. } => name
            .0
            .iter()
            .filter_map(|p| p.as_ident().cloned())
            .collect(),
        _ => vec![],
    }
}
