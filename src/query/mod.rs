//! The query side between the parsed statement and DataFusion: passes over
//! the AST and the logical plan that give QuestDB's behaviour (SAMPLE BY,
//! LATEST ON, time joins, result column names, designated-timestamp order
//! of scans) and QuestDB's functions. Everything here builds DataFusion
//! plans and expressions or edits the typed AST; nothing prints SQL to
//! parse it again.

pub mod date_functions;
pub mod latest_on;
pub mod names;
pub mod relations;
pub mod sample_by;
pub mod scan_order;
pub mod time_functions;
pub mod time_join;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast as sp;

use crate::error::Result;
use crate::sql::parser::ident_name;

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
    let mut found = false;
    let _ = sp::visit_expressions(e, |x| {
        if let sp::Expr::Function(f) = x
            && f.over.is_none()
            && let Some(name) = f.name.0.last().and_then(|p| p.as_ident())
            && env.is_aggregate(&ident_name(name))
        {
            found = true;
        }
        ControlFlow::<()>::Continue(())
    });
    found
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
