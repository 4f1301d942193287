//! QuestDB's time joins, planned as one relation in place of the join.
//!
//! - ASOF JOIN: each row of the left table with the newest row of the
//!   right table at or before its time and of the same keys (`ON (k)` or
//!   `ON a.x = b.y`; a NULL key is a key of its own), or NULLs. LT JOIN:
//!   strictly before.
//! - SPLICE JOIN: every row of either table, each with the newest row of
//!   the other at or before it (a right row comes before a left row of the
//!   same time, so that left row sees it, as in ASOF).
//!
//! The right rows are numbered in time order (sorted on the timestamp
//! alone; a table's scan is in that order per file range). Both tables' rows go into one union, ordered per
//! key by time; every row takes the running max of the right numbers
//! before it (numbers grow with time, so that is the newest right row's),
//! and the right rows are joined back on it. A NULL inside a matched row
//! stays NULL. SPLICE numbers and joins back both sides. No cross join:
//! one sort, of the union.
//!
//! [`prepare`] finds the join in the AST by where its right table's name
//! starts and makes `a JOIN b` one relation (a nested join) that DataFusion's
//! planner hands to [`plan`] (see [`super::relations`]). A WHERE on the left
//! table's columns alone is also applied before the merge (a left row's
//! match does not depend on the other left rows), and right rows after the
//! last left row it keeps are left out.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchema, ScalarValue, TableReference};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::functions_aggregate::expr_fn::max;
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, ExprSchemable, JoinType, LogicalPlan, LogicalPlanBuilder, WindowFrame,
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
    crate::sql::walk::any_expr(e, |x| {
        matches!(
            x,
            sp::Expr::Subquery(_) | sp::Expr::Exists { .. } | sp::Expr::InSubquery { .. }
        )
    })
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

    let (a, b) = left_filtered(spec, a, b, (&a_ts, &b_ts, &ts_type), context)?;

    // Each side's rows numbered in time order: sorted on the timestamp
    // alone (a table's file ranges are each in that order already). The two
    // reads of a side (in the union, and to join back) get the same rows
    // in the same order, so they number them alike, ties included.
    let (a_cols, b_cols) = (columns(&a), columns(&b));
    let splice = spec.kind == TimeJoinKind::Splice;
    let a_num = if splice {
        numbered(a.clone(), &a_ts, "__aid")?
    } else {
        a.clone()
    };
    let b_num = numbered(b, &b_ts, "__bid")?;
    // The left row sorts after a right row of the same time in ASOF and
    // SPLICE (it sees that row), before it in LT.
    let (sa, sb) = match spec.kind {
        TimeJoinKind::Lt => (0i8, 1i8),
        _ => (1, 0),
    };
    let id = |name: &str| Expr::Column(Column::from_name(name));
    let no_id = || cast(lit(ScalarValue::Null), DataType::UInt64);
    let key_types: Vec<_> = keys
        .iter()
        .map(|(k, _)| k.get_type(a.schema()))
        .collect::<DfResult<_>>()?;
    let side = |plan: LogicalPlan,
                keys: Vec<Expr>,
                ts: &Expr,
                s: i8,
                left_values: Vec<Expr>,
                ids: (Expr, Expr)|
     -> DfResult<LogicalPlan> {
        let mut items = left_values;
        items.extend(
            keys.into_iter()
                .zip(&key_types)
                .enumerate()
                .map(|(i, (k, t))| cast(k, t.clone()).alias(format!("__k{i}"))),
        );
        items.push(cast(ts.clone(), ts_type.clone()).alias("__t"));
        items.push(lit(s).alias("__s"));
        items.push(ids.0.alias("__aid"));
        items.push(ids.1.alias("__bid"));
        LogicalPlanBuilder::from(plan).project(items)?.build()
    };
    // ASOF and LT carry the left row's values through the merge; SPLICE
    // joins both sides back.
    // (on the right rows, typed NULLs under the same names).
    let (mut carried, mut nulls) = (Vec::new(), Vec::new());
    if !splice {
        for (i, (_, _, e)) in a_cols.iter().enumerate() {
            let name = format!("__a{i}");
            carried.push(e.clone().alias(&name));
            nulls.push(null_of(e, a.schema())?.alias(name));
        }
    }
    let a_keys: Vec<Expr> = keys.iter().map(|(k, _)| k.clone()).collect();
    let b_keys: Vec<Expr> = keys.iter().map(|(_, k)| k.clone()).collect();
    let a_id = if splice { id("__aid") } else { no_id() };
    let merged = LogicalPlanBuilder::from(side(
        a_num.clone(),
        a_keys,
        &a_ts,
        sa,
        carried,
        (a_id, no_id()),
    )?)
    .union(side(
        b_num.clone(),
        b_keys,
        &b_ts,
        sb,
        nulls,
        (no_id(), id("__bid")),
    )?)?;

    let mut builder = last_numbers(merged, keys.len(), splice)?;
    if !splice {
        // Only the left rows are output rows.
        builder = builder.filter(id("__s").eq(lit(sa)))?;
    }
    let matched = builder.alias("__m")?;
    let mut joined = back(matched, b_num, "__rb", "__mb", "__bid")?;
    if splice {
        joined = back(joined, a_num, "__ra", "__ma", "__aid")?;
    }
    joined.project(output(&a_cols, &b_cols, splice))?.build()
}

/// A side's rows with their number in time order as `id`.
fn numbered(plan: LogicalPlan, ts: &Expr, id: &str) -> DfResult<LogicalPlan> {
    let order = vec![ts.clone().sort(true, true)];
    let number = row_number().order_by(order).build()?.alias(id);
    LogicalPlanBuilder::from(plan).window(vec![number])?.build()
}

/// A side's numbered rows (`side` as `alias`, its number `id`) joined to
/// the matched rows (`__m`) on the matched number `number`.
fn back(
    matched: LogicalPlanBuilder,
    side: LogicalPlan,
    alias: &str,
    number: &str,
    id: &str,
) -> DfResult<LogicalPlanBuilder> {
    let side = LogicalPlanBuilder::from(side).alias(alias)?.build()?;
    matched.join(
        side,
        JoinType::Left,
        (
            vec![Column::new(Some("__m"), number)],
            vec![Column::new(Some(alias), id)],
        ),
        None,
    )
}

/// A WHERE on the left rows alone (ASOF and LT) applied before the merge;
/// right rows after the last left row kept cannot match and are cut too.
fn left_filtered(
    spec: &Spec,
    a: LogicalPlan,
    b: LogicalPlan,
    (a_ts, b_ts, ts_type): (&Expr, &Expr, &DataType),
    context: &mut dyn RelationPlannerContext,
) -> DfResult<(LogicalPlan, LogicalPlan)> {
    let left_filter = match (&spec.left_filter, spec.kind) {
        (Some(w), TimeJoinKind::Asof | TimeJoinKind::Lt) => {
            context.sql_to_expr(w.clone(), a.schema()).ok()
        }
        _ => None,
    };
    let Some(w) = left_filter else {
        return Ok((a, b));
    };
    let a = LogicalPlanBuilder::from(a).filter(w)?.build()?;
    let last = LogicalPlanBuilder::from(a.clone())
        .aggregate(Vec::<Expr>::new(), vec![max(a_ts.clone())])?
        .build()?;
    let b = LogicalPlanBuilder::from(b)
        .filter(cast(b_ts.clone(), ts_type.clone()).lt_eq(scalar_subquery(Arc::new(last))))?
        .build()?;
    Ok((a, b))
}

/// Over the merged rows, per key in time order, the last number of the
/// right side so far (`__mb`) and, for SPLICE, of the left (`__ma`).
fn last_numbers(
    merged: LogicalPlanBuilder,
    keys: usize,
    splice: bool,
) -> DfResult<LogicalPlanBuilder> {
    let id = |name: &str| Expr::Column(Column::from_name(name));
    let partition: Vec<Expr> = (0..keys)
        .map(|i| Expr::Column(Column::from_name(format!("__k{i}"))))
        .collect();
    let order = vec![id("__t").sort(true, true), id("__s").sort(true, true)];
    let frame = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::CurrentRow,
    );
    // The last number of a side so far: numbers grow with time, so it is
    // their running max (a running aggregate is one pass; DataFusion's
    // `last_value … IGNORE NULLS` looks back over the whole frame for
    // every row, quadratic in a key's rows).
    let last = |column: &str, name: &str| -> DfResult<Expr> {
        Ok(Expr::from(WindowFunction::new(
            WindowFunctionDefinition::AggregateUDF(max_udaf()),
            vec![id(column)],
        ))
        .partition_by(partition.clone())
        .order_by(order.clone())
        .window_frame(frame.clone())
        .build()?
        .alias(name))
    };
    let mut windows = vec![last("__bid", "__mb")?];
    if splice {
        windows.push(last("__aid", "__ma")?);
    }
    merged.window(windows)
}

/// The join's columns under the names and qualifiers of each side: the
/// left row's values as carried through the merge (or joined back, for
/// SPLICE), the right row's joined back.
fn output(
    a_cols: &[(Option<TableReference>, String, Expr)],
    b_cols: &[(Option<TableReference>, String, Expr)],
    splice: bool,
) -> Vec<Expr> {
    let mut output: Vec<Expr> = a_cols
        .iter()
        .enumerate()
        .map(|(i, (q, n, _))| {
            let value = if splice {
                Expr::Column(Column::new(Some("__ra"), n))
            } else {
                Expr::Column(Column::new(Some("__m"), format!("__a{i}")))
            };
            value.alias_qualified(q.clone(), n)
        })
        .collect();
    output.extend(
        b_cols.iter().map(|(q, n, _)| {
            Expr::Column(Column::new(Some("__rb"), n)).alias_qualified(q.clone(), n)
        }),
    );
    output
}
