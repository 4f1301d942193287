//! QuestDB's `LATEST ON ts PARTITION BY keys` (and `LATEST BY keys`, on
//! the designated timestamp): the newest row of each key among the rows
//! the WHERE keeps, planned as one relation in place of the table.
//!
//! [`prepare`] finds the clause's SELECT in the AST (by where it starts),
//! takes its WHERE (applied before the pick, so it moves into the
//! relation) and, when the query has no ORDER BY, orders by the timestamp
//! as QuestDB does. [`plan`], called by DataFusion's SQL planner for that
//! table (see [`super::relations`]), builds the pick: the newest time of
//! each key (one hash aggregation: a few rows where the table has
//! millions) joined back to the rows on the keys and that time, NULL
//! matching NULL, and one row per key among those (ties) by
//! `row_number()`. No sort of the whole table.
//!
//! A bound (UTC microseconds at or before every key's newest row) limits
//! the relation to the newest files; the engine finds one from the files'
//! dictionaries, or by running the [`Bound`] plan this module leaves
//! beside the query.

use datafusion::common::{Column, NullEquality, ScalarValue};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, JoinType, LogicalPlan, LogicalPlanBuilder, cast, lit,
};
use datafusion::sql::sqlparser::ast as sp;
use datafusion::sql::sqlparser::ast::Spanned;
use datafusion::sql::sqlparser::tokenizer::Location;

use super::Env;
use crate::error::{Error, Result};
use crate::sql::LatestOn;

/// One LATEST ON relation, as the planner meets it.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where the table's name starts in the text: which relation it is.
    pub(super) at: Location,
    pub table: sp::ObjectName,
    pub ts: sp::Ident,
    pub keys: Vec<sp::Ident>,
    /// The SELECT's WHERE, taken out of it.
    pub filter: Option<sp::Expr>,
    /// Whether `ts` is the table's designated timestamp, so that a bound
    /// on it prunes files.
    pub designated: bool,
    /// Rows before this time (UTC µs) are left out: no key's newest row
    /// is older.
    pub bound: Option<i64>,
    pub position: usize,
}

/// The plan whose one value is a bound for the LATEST ON relation
/// `spec` (an index into the query's relations): the oldest of the keys'
/// newest times among the rows the WHERE keeps.
#[derive(Debug, Clone)]
pub struct Bound {
    pub spec: usize,
    pub plan: LogicalPlan,
}

/// Finds the SELECTs the clauses belong to and readies them (see the
/// module's documentation).
pub fn prepare(query: &mut sp::Query, clauses: &[LatestOn], env: &dyn Env) -> Result<Vec<Spec>> {
    if clauses.is_empty() {
        return Ok(vec![]);
    }
    let mut specs = Vec::new();
    super::for_each_select(query, &mut |select, order| {
        let at = select.select_token.0.span.start;
        if let Some(l) = clauses.iter().find(|l| l.select == at) {
            specs.push(ready(select, order, l, env)?);
        }
        Ok(())
    })?;
    Ok(specs)
}

/// One LATEST ON SELECT readied: its WHERE taken, its order given.
fn ready(
    select: &mut sp::Select,
    order: Option<&mut Option<sp::OrderBy>>,
    l: &LatestOn,
    env: &dyn Env,
) -> Result<Spec> {
    let err = |m: &str| Error::Syntax {
        message: m.to_string(),
        position: l.position,
    };
    let (from, name) = super::one_table(select, "LATEST ON", l.position)?;
    let designated = env.designated_timestamp(name, l.position);
    let (ts, is_designated) = match (&l.ts, designated) {
        (Some(ts), Ok(d)) => {
            // Names match ignoring case.
            let same = d.is_some_and(|d| d.eq_ignore_ascii_case(&ts.value));
            (ts.clone(), same)
        }
        // A CTE or view: not the catalog's, so nothing to prune.
        (Some(ts), Err(_)) => (ts.clone(), false),
        (None, designated) => match designated? {
            Some(d) => (sp::Ident::with_quote('"', d), true),
            None => {
                return Err(err("LATEST BY needs a table with a designated timestamp"));
            }
        },
    };
    if let Some(order) = order
        && order.is_none()
        && !super::is_grouped(select, env)
    {
        // QuestDB gives the rows in timestamp order.
        let reader = super::reader(&from.relation);
        let mut column = reader;
        column.push(ts.clone());
        *order = Some(sp::OrderBy {
            kind: sp::OrderByKind::Expressions(vec![sp::OrderByExpr {
                expr: sp::Expr::CompoundIdentifier(column),
                options: sp::OrderByOptions {
                    asc: None,
                    nulls_first: None,
                },
                with_fill: None,
            }]),
            interpolate: None,
        });
    }
    Ok(Spec {
        at: name.span().start,
        table: name.clone(),
        ts,
        keys: l.keys.clone(),
        filter: select.selection.take(),
        designated: is_designated,
        bound: None,
        position: l.position,
    })
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The pick over `base` (the table as the query names it), and, when the
/// bound is still to be found, the plan that finds it.
pub(super) fn plan(
    spec: &Spec,
    base: LogicalPlan,
    context: &mut dyn RelationPlannerContext,
) -> DfResult<(LogicalPlan, Option<LogicalPlan>)> {
    let schema = base.schema().clone();
    let column =
        |ident: &sp::Ident, context: &mut dyn RelationPlannerContext| -> DfResult<Column> {
            match context.sql_to_expr(sp::Expr::Identifier(ident.clone()), &schema)? {
                Expr::Column(c) => Ok(c),
                _ => Err(external(Error::Syntax {
                    message: format!("LATEST ON names a column: {ident}"),
                    position: spec.position,
                })),
            }
        };
    let ts = column(&spec.ts, context)?;
    let keys = spec
        .keys
        .iter()
        .map(|k| column(k, context))
        .collect::<DfResult<Vec<_>>>()?;
    let mut conditions = Vec::new();
    if let Some(w) = &spec.filter {
        conditions.push(context.sql_to_expr(w.clone(), &schema)?);
    }
    if let Some(b) = spec.bound {
        let field = schema.field_with_name(ts.relation.as_ref(), &ts.name)?;
        let at = cast(
            lit(ScalarValue::TimestampMicrosecond(Some(b), None)),
            field.data_type().clone(),
        );
        conditions.push(Expr::Column(ts.clone()).gt_eq(at));
    }
    let rows = match conditions.into_iter().reduce(Expr::and) {
        Some(c) => LogicalPlanBuilder::from(base).filter(c)?.build()?,
        None => base,
    };
    let key_exprs: Vec<Expr> = keys.iter().cloned().map(Expr::Column).collect();

    // The newest time of each key, under names of their own.
    const NEWEST: &str = "__latest";
    let mut newest_cols: Vec<Expr> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Expr::Column(k.clone()).alias(format!("k{i}")))
        .collect();
    newest_cols.push(Expr::Column(Column::from_name("t")));
    let newest = LogicalPlanBuilder::from(rows.clone())
        .aggregate(
            key_exprs.clone(),
            vec![max(Expr::Column(ts.clone())).alias("t")],
        )?
        .project(newest_cols)?
        .alias(NEWEST)?;
    let mut left: Vec<Column> = (0..keys.len())
        .map(|i| Column::new(Some(NEWEST), format!("k{i}")))
        .collect();
    left.push(Column::new(Some(NEWEST), "t"));
    let mut right = keys.clone();
    right.push(ts.clone());
    let output: Vec<Expr> = rows
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let rank = row_number()
        .partition_by(key_exprs.clone())
        .order_by(vec![Expr::Column(ts.clone()).sort(false, true)])
        .build()?
        .alias("__latest_rank");
    let pick = newest
        .join_detailed(
            rows.clone(),
            JoinType::Inner,
            (left, right),
            None,
            NullEquality::NullEqualsNull,
        )?
        .window(vec![rank])?
        .filter(Expr::Column(Column::from_name("__latest_rank")).eq(lit(1u64)))?
        .project(output)?
        .build()?;

    let bound = (spec.designated && spec.bound.is_none())
        .then(|| -> DfResult<LogicalPlan> {
            LogicalPlanBuilder::from(rows)
                .aggregate(key_exprs, vec![max(Expr::Column(ts)).alias("t")])?
                .aggregate(
                    Vec::<Expr>::new(),
                    vec![min(Expr::Column(Column::from_name("t")))],
                )?
                .build()
        })
        .transpose()?;
    Ok((pick, bound))
}
