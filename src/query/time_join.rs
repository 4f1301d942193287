//! QuestDB's time joins, planned as one relation in place of the join.
//!
//! - ASOF JOIN: each row of the left table with the newest row of the
//!   right table at or before its time and of the same keys (`ON (k)` or
//!   `ON a.x = b.y`), or NULLs. LT JOIN: strictly before.
//! - SPLICE JOIN: every row of either table, each with the newest row of
//!   the other at or before it (a right row comes before a left row of the
//!   same time, so that left row sees it, as in ASOF).
//!
//! Both tables' rows go into one union in time order per key; each side's
//! row rides along as one struct value (NULL on the other side's rows), and
//! a window (`last_value … IGNORE NULLS`, per key, by time) hands every
//! row the last struct of the other side before it. A NULL inside a
//! matched row stays NULL: only whole rows are carried forward. No cross
//! join, no join back: one sort of the merged rows.
//!
//! [`prepare`] finds the join in the AST by where its right table's name
//! starts and makes `a JOIN b` one relation (a nested join) that DataFusion's
//! planner hands to [`plan`] (see [`super::relations`]). A WHERE on the left
//! table's columns alone is also applied before the merge (a left row's
//! match does not depend on the other left rows), and right rows after the
//! last left row it keeps are left out.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::common::{Column, DFSchema, ScalarValue, TableReference};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::functions::core::expr_fn::{get_field, named_struct};
use datafusion::functions_aggregate::expr_fn::max;
use datafusion::functions_window::nth_value::last_value_udwf;
use datafusion::logical_expr::expr::{NullTreatment, WindowFunction};
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, WindowFrame,
    WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition, cast, lit, scalar_subquery,
};
use datafusion::sql::sqlparser::ast as sp;
use datafusion::sql::sqlparser::ast::Spanned;
use datafusion::sql::sqlparser::tokenizer::Location;

use super::Env;
use crate::error::{Error, Result};
use crate::sql::{TimeJoin, TimeJoinKind};

/// One time join, as the planner meets it.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where the right table's name starts: which join it is.
    pub(super) at: Location,
    kind: TimeJoinKind,
    /// The designated timestamps of the left and right tables.
    left_ts: sp::Ident,
    right_ts: sp::Ident,
    /// The SELECT's WHERE, to be applied to the left rows before the
    /// merge if it reads them alone.
    left_filter: Option<sp::Expr>,
    position: usize,
}

fn err(position: usize, m: &str) -> Error {
    Error::Syntax {
        message: m.to_string(),
        position,
    }
}

/// Finds the joins the clauses name and makes each one relation.
pub fn prepare(query: &mut sp::Query, clauses: &[TimeJoin], env: &dyn Env) -> Result<Vec<Spec>> {
    if clauses.is_empty() {
        return Ok(vec![]);
    }
    let mut specs = Vec::new();
    super::for_each_select(query, &mut |select, order| {
        ready(select, order, clauses, env, &mut specs)
    })?;
    Ok(specs)
}

/// Where a relation's table name starts, for a plain table.
fn table_at(r: &sp::TableFactor) -> Option<Location> {
    match r {
        sp::TableFactor::Table { name, .. } => Some(name.span().start),
        _ => None,
    }
}

fn designated(env: &dyn Env, r: &sp::TableFactor, position: usize) -> Result<sp::Ident> {
    let sp::TableFactor::Table { name, .. } = r else {
        return Err(err(position, "ASOF, LT and SPLICE JOIN join two tables"));
    };
    match env.designated_timestamp(name, position)? {
        Some(ts) => Ok(sp::Ident::with_quote('"', ts)),
        None => Err(err(
            position,
            &format!(
                "ASOF, LT and SPLICE JOIN need designated timestamps: table '{name}' has none"
            ),
        )),
    }
}

/// The time joins of one SELECT made relations.
fn ready(
    select: &mut sp::Select,
    order: Option<&mut Option<sp::OrderBy>>,
    clauses: &[TimeJoin],
    env: &dyn Env,
    specs: &mut Vec<Spec>,
) -> Result<()> {
    let mut splice_order = None;
    for from in &mut select.from {
        for (k, j) in from.joins.iter().enumerate() {
            let at = table_at(&j.relation);
            let Some(c) = clauses.iter().find(|c| Some(c.relation) == at) else {
                continue;
            };
            if k > 0 || table_at(&from.relation).is_none() {
                return Err(err(
                    c.position,
                    "ASOF, LT and SPLICE JOIN join two tables, one join",
                ));
            }
            let left_ts = designated(env, &from.relation, c.position)?;
            let right_ts = designated(env, &j.relation, c.position)?;
            let left_filter = match c.kind {
                TimeJoinKind::Splice => None,
                _ => select.selection.clone().filter(|w| !has_subquery(w)),
            };
            if c.kind == TimeJoinKind::Splice {
                splice_order = Some(splice_order_by(
                    super::reader(&from.relation),
                    &left_ts,
                    super::reader(&j.relation),
                    &right_ts,
                ));
            }
            specs.push(Spec {
                at: c.relation,
                kind: c.kind,
                left_ts,
                right_ts,
                left_filter,
                position: c.position,
            });
            // `a JOIN b` becomes one relation, which the planner hands
            // to us whole; any later joins join it.
            let join = from.joins.remove(0);
            let left = std::mem::replace(
                &mut from.relation,
                sp::TableFactor::Derived {
                    lateral: false,
                    subquery: Box::new(crate::sql::ast::placeholder_query()),
                    alias: None,
                    sample: None,
                },
            );
            from.relation = sp::TableFactor::NestedJoin {
                table_with_joins: Box::new(sp::TableWithJoins {
                    relation: left,
                    joins: vec![join],
                }),
                alias: None,
            };
            break;
        }
    }
    // SPLICE JOIN's rows come in time order unless the query orders them.
    if let (Some(by), Some(order)) = (splice_order, order)
        && order.is_none()
        && !super::is_grouped(select, env)
    {
        *order = Some(by);
    }
    Ok(())
}

fn has_subquery(e: &sp::Expr) -> bool {
    let mut found = false;
    let _ = sp::visit_expressions(e, |x| {
        if matches!(
            x,
            sp::Expr::Subquery(_) | sp::Expr::Exists { .. } | sp::Expr::InSubquery { .. }
        ) {
            found = true;
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// `ORDER BY greatest(a.ts, b.ts), a.ts NULLS FIRST, b.ts NULLS FIRST`:
/// the time of the row that made each output row. At one time a right
/// row's output (whose left part is older, or none) comes before the left
/// row's own.
fn splice_order_by(
    a: Vec<sp::Ident>,
    a_ts: &sp::Ident,
    b: Vec<sp::Ident>,
    b_ts: &sp::Ident,
) -> sp::OrderBy {
    let column = |mut reader: Vec<sp::Ident>, ts: &sp::Ident| {
        reader.push(ts.clone());
        sp::Expr::CompoundIdentifier(reader)
    };
    let (ta, tb) = (column(a, a_ts), column(b, b_ts));
    let item = |expr: sp::Expr, nulls_first: Option<bool>| sp::OrderByExpr {
        expr,
        options: sp::OrderByOptions {
            asc: None,
            nulls_first,
        },
        with_fill: None,
    };
    sp::OrderBy {
        kind: sp::OrderByKind::Expressions(vec![
            item(
                crate::sql::ast::call("greatest", vec![ta.clone(), tb.clone()]),
                None,
            ),
            item(ta, Some(true)),
            item(tb, Some(true)),
        ]),
        interpolate: None,
    }
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The key pairs of the join's constraint, as columns of each side.
fn key_pairs(
    spec: &Spec,
    constraint: Option<&sp::JoinConstraint>,
    a: &DFSchema,
    b: &DFSchema,
    context: &mut dyn RelationPlannerContext,
) -> DfResult<Vec<(Expr, Expr)>> {
    let bad_on = || {
        external(err(
            spec.position,
            "an ASOF, LT or SPLICE JOIN's ON compares columns of the two tables: a.x = b.y",
        ))
    };
    let mut pairs = Vec::new();
    match constraint {
        Some(sp::JoinConstraint::Using(names)) => {
            for n in names {
                let Some(ident) = n.0.last().and_then(|p| p.as_ident()) else {
                    return Err(bad_on());
                };
                let e = sp::Expr::Identifier(ident.clone());
                pairs.push((
                    context.sql_to_expr(e.clone(), a)?,
                    context.sql_to_expr(e, b)?,
                ));
            }
        }
        Some(sp::JoinConstraint::On(e)) => {
            let mut equalities = Vec::new();
            conjuncts(e, &mut equalities).ok_or_else(bad_on)?;
            for (l, r) in equalities {
                let mut side = |x: &sp::Expr, s: &DFSchema| context.sql_to_expr(x.clone(), s).ok();
                let pair = match (side(l, a), side(r, b)) {
                    (Some(x), Some(y)) => (x, y),
                    _ => match (side(r, a), side(l, b)) {
                        (Some(x), Some(y)) => (x, y),
                        _ => return Err(bad_on()),
                    },
                };
                pairs.push(pair);
            }
        }
        _ => {}
    }
    Ok(pairs)
}

/// `x = y AND …` as its equalities.
fn conjuncts<'a>(e: &'a sp::Expr, out: &mut Vec<(&'a sp::Expr, &'a sp::Expr)>) -> Option<()> {
    match e {
        sp::Expr::BinaryOp {
            left,
            op: sp::BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out)?;
            conjuncts(right, out)
        }
        sp::Expr::Nested(inner) => conjuncts(inner, out),
        sp::Expr::BinaryOp {
            left,
            op: sp::BinaryOperator::Eq,
            right,
        } => {
            out.push((left, right));
            Some(())
        }
        _ => None,
    }
}

fn column_of(
    ident: &sp::Ident,
    schema: &DFSchema,
    context: &mut dyn RelationPlannerContext,
) -> DfResult<Expr> {
    context.sql_to_expr(sp::Expr::Identifier(ident.clone()), schema)
}

/// A side's columns as (qualifier, name, expression).
fn columns(plan: &LogicalPlan) -> Vec<(Option<TableReference>, String, Expr)> {
    plan.schema()
        .iter()
        .map(|(q, f)| {
            (
                q.cloned(),
                f.name().clone(),
                Expr::Column(Column::new(q.cloned(), f.name())),
            )
        })
        .collect()
}

/// A typed NULL.
fn null_of(e: &Expr, schema: &DFSchema) -> DfResult<Expr> {
    let t = e.get_type(schema)?;
    Ok(lit(ScalarValue::try_from(&t)?))
}

/// The join of `left` and `right` (their relations as the query wrote
/// them), planned.
pub(super) fn plan(
    spec: &Spec,
    left: sp::TableFactor,
    join: sp::Join,
    context: &mut dyn RelationPlannerContext,
) -> DfResult<LogicalPlan> {
    let constraint = match &join.join_operator {
        sp::JoinOperator::Left(c) | sp::JoinOperator::LeftOuter(c) => Some(c),
        _ => None,
    };
    let a = context.plan(left)?;
    let b = context.plan(join.relation.clone())?;
    let keys = key_pairs(spec, constraint, a.schema(), b.schema(), context)?;
    let a_ts = column_of(&spec.left_ts, a.schema(), context)?;
    let b_ts = column_of(&spec.right_ts, b.schema(), context)?;
    let ts_type = a_ts.get_type(a.schema())?;

    // A WHERE on the left rows alone, before the merge; right rows after
    // the last left row kept cannot match.
    let left_filter = match (&spec.left_filter, spec.kind) {
        (Some(w), TimeJoinKind::Asof | TimeJoinKind::Lt) => {
            context.sql_to_expr(w.clone(), a.schema()).ok()
        }
        _ => None,
    };
    let (a, b) = match left_filter {
        Some(w) => {
            let a = LogicalPlanBuilder::from(a).filter(w)?.build()?;
            let last = LogicalPlanBuilder::from(a.clone())
                .aggregate(Vec::<Expr>::new(), vec![max(a_ts.clone())])?
                .build()?;
            let b = LogicalPlanBuilder::from(b)
                .filter(cast(b_ts.clone(), ts_type.clone()).lt_eq(scalar_subquery(Arc::new(last))))?
                .build()?;
            (a, b)
        }
        None => (a, b),
    };

    let (a_cols, b_cols) = (columns(&a), columns(&b));
    let row_of = |cols: &[(Option<TableReference>, String, Expr)]| {
        named_struct(
            cols.iter()
                .flat_map(|(_, n, e)| [lit(n.clone()), e.clone()])
                .collect(),
        )
    };
    let (a_row, b_row) = (row_of(&a_cols), row_of(&b_cols));
    let (a_null, b_null) = (null_of(&a_row, a.schema())?, null_of(&b_row, b.schema())?);
    // The left row sorts after a right row of the same time in ASOF and
    // SPLICE (it sees that row), before it in LT.
    let (sa, sb) = match spec.kind {
        TimeJoinKind::Lt => (0i8, 1i8),
        _ => (1, 0),
    };
    let side = |plan: LogicalPlan,
                keys: Vec<Expr>,
                ts: &Expr,
                s: i8,
                rows: (Expr, Expr)|
     -> DfResult<LogicalPlan> {
        let mut items: Vec<Expr> = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| k.alias(format!("__k{i}")))
            .collect();
        items.push(cast(ts.clone(), ts_type.clone()).alias("__t"));
        items.push(lit(s).alias("__s"));
        items.push(rows.0.alias("__a"));
        items.push(rows.1.alias("__b"));
        LogicalPlanBuilder::from(plan).project(items)?.build()
    };
    let key_types: Vec<_> = keys
        .iter()
        .map(|(k, _)| k.get_type(a.schema()))
        .collect::<DfResult<_>>()?;
    let a_keys: Vec<Expr> = keys.iter().map(|(k, _)| k.clone()).collect();
    let b_keys: Vec<Expr> = keys
        .iter()
        .zip(&key_types)
        .map(|((_, k), t)| cast(k.clone(), t.clone()))
        .collect();
    let merged = LogicalPlanBuilder::from(side(a, a_keys, &a_ts, sa, (a_row, b_null))?)
        .union(side(b, b_keys, &b_ts, sb, (a_null, b_row))?)?;

    let partition: Vec<Expr> = (0..keys.len())
        .map(|i| Expr::Column(Column::from_name(format!("__k{i}"))))
        .collect();
    let order = vec![
        Expr::Column(Column::from_name("__t")).sort(true, true),
        Expr::Column(Column::from_name("__s")).sort(true, true),
    ];
    let frame = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::CurrentRow,
    );
    let last = |column: &str, name: &str| -> DfResult<Expr> {
        Ok(Expr::from(WindowFunction::new(
            WindowFunctionDefinition::WindowUDF(last_value_udwf()),
            vec![Expr::Column(Column::from_name(column))],
        ))
        .partition_by(partition.clone())
        .order_by(order.clone())
        .window_frame(frame.clone())
        .null_treatment(Some(NullTreatment::IgnoreNulls))
        .build()?
        .alias(name))
    };
    let mut builder = merged.window(vec![last("__a", "__ma")?, last("__b", "__mb")?])?;
    if spec.kind != TimeJoinKind::Splice {
        // Only the left rows are output rows.
        builder = builder.filter(Expr::Column(Column::from_name("__s")).eq(lit(sa)))?;
    }
    let unpack = |row: &str, cols: &[(Option<TableReference>, String, Expr)]| {
        cols.iter()
            .map(|(q, n, _)| {
                get_field(Expr::Column(Column::from_name(row)), n.as_str())
                    .alias_qualified(q.clone(), n)
            })
            .collect::<Vec<_>>()
    };
    let mut output = unpack("__ma", &a_cols);
    output.extend(unpack("__mb", &b_cols));
    builder.project(output)?.build()
}
