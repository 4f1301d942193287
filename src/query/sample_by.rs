//! QuestDB's SAMPLE BY, planned. The parser leaves the clause typed
//! ([`SampleBy`], which knows the SELECT it ends by that SELECT's place in
//! the text) and the SELECT without it. Two steps make it a plan:
//!
//! 1. [`rewrite_samples`], on the AST before DataFusion plans it: the
//!    sampled SELECT becomes the aggregation it means. It groups by the
//!    bucket, `timestamp_floor(stride, ts, origin[, zone])` on the table's
//!    designated timestamp, and by every selected item that is not an
//!    aggregate (keyed sampling); the selected timestamp becomes the
//!    bucket; FROM/TO bound the WHERE; without an ORDER BY the rows come by
//!    bucket, then keys. A GROUP BY after SAMPLE BY only repeats the keys
//!    (the parser reads past it).
//! 2. [`apply_fills`], on DataFusion's logical plan: FILL other than NONE
//!    replaces that aggregation by one of the same columns that has every
//!    bucket from the first to the last (or FROM to TO) for every key: a
//!    grid of buckets (`sample_buckets`, unnested) crossed with the keys,
//!    left-joined to the groups, NULL matching NULL; NULL leaves the new
//!    rows empty, a constant is COALESCEd in, PREV carries the last value
//!    forward and LINEAR interpolates between the neighbours (windows over
//!    the grid, per key, by bucket).
//!
//! Nothing here prints SQL: the AST gets typed nodes, the plan is built
//! with `LogicalPlanBuilder` and `Expr`.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, NullEquality, ScalarValue, TableReference};
use datafusion::execution::FunctionRegistry;
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::functions_window::nth_value::{first_value_udwf, last_value_udwf};
use datafusion::logical_expr::expr::{NullTreatment, WindowFunction};
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, JoinType, LogicalPlan, LogicalPlanBuilder, WindowFrame,
    WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition, WindowUDF, cast, lit, when,
};
use datafusion::sql::sqlparser::ast as sp;

use super::{Env, has_aggregate};
use crate::error::{Error, Result};
use crate::sql::ast::call;
use crate::sql::parser::ident_name;
use crate::sql::{Align, Fill, SampleBy};
use crate::time::interval;

/// What is left for the plan of one sampled SELECT: its fills.
#[derive(Debug, Clone)]
pub struct FillSpec {
    stride: String,
    zone: Option<String>,
    /// FROM and TO, with the origin of the buckets, when both are given:
    /// the grid runs from FROM's bucket to TO's (exclusive).
    range: Option<(String, String, String)>,
    keys: usize,
    /// The selected items in order.
    items: Vec<Item>,
}

/// A selected item of a sampled SELECT.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Bucket,
    Key,
    /// An aggregate (or an expression of aggregates) and its fill.
    Value(Fill),
}

/// Rewrites every sampled SELECT of `query` (at any depth) into its
/// aggregation; returns the fills the plan still needs, in the order of
/// the SELECTs.
pub fn rewrite_samples(
    query: &mut sp::Query,
    samples: &[SampleBy],
    env: &dyn Env,
) -> Result<Vec<FillSpec>> {
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    let mut fills = Vec::new();
    super::for_each_select(query, &mut |select, order| {
        let at = select.select_token.0.span.start;
        if let Some(s) = samples.iter().find(|s| s.select == at)
            && let Some(fill) = rewrite_select(select, order, s, env)?
        {
            fills.push(fill);
        }
        Ok(())
    })?;
    Ok(fills)
}

fn string(v: &str) -> sp::Expr {
    sp::Expr::Value(sp::Value::SingleQuotedString(v.to_string()).into())
}

fn binary(left: sp::Expr, op: sp::BinaryOperator, right: sp::Expr) -> sp::Expr {
    sp::Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

/// The column an item names, as the catalog names it.
fn column_name(e: &sp::Expr) -> Option<String> {
    match e {
        sp::Expr::Identifier(i) => Some(ident_name(i)),
        sp::Expr::CompoundIdentifier(p) => p.last().map(ident_name),
        _ => None,
    }
}

fn rewrite_select(
    select: &mut sp::Select,
    order: Option<&mut Option<sp::OrderBy>>,
    s: &SampleBy,
    env: &dyn Env,
) -> Result<Option<FillSpec>> {
    if !matches!(&select.group_by, sp::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
    {
        return Err(syntax(
            s,
            "SAMPLE BY groups by the selected keys itself: GROUP BY may only follow it",
        ));
    }
    let (_, name) = super::one_table(select, "SAMPLE BY", s.position)?;
    let ts = env
        .designated_timestamp(name, s.position)?
        .ok_or(Error::Syntax {
            message: format!(
                "SAMPLE BY needs a table with a designated timestamp: {name} has none"
            ),
            position: s.position,
        })?;
    let ts_column = sp::Expr::Identifier(sp::Ident::with_quote('"', ts.clone()));
    bound_rows(select, &ts_column, s);
    let origin = bucket_origin(select, &ts_column, s);
    let zone = match &s.align {
        Align::Calendar { zone: Some(z), .. } => Some(z.clone()),
        _ => None,
    };
    let stride = s.stride.text();
    let mut args = vec![string(&stride), ts_column.clone(), origin];
    if let Some(z) = &zone {
        args.push(string(z));
    }
    let bucket = call("timestamp_floor", args);
    let (keys, kinds) = group_items(select, &bucket, &ts, s, env)?;
    let mut group = vec![bucket];
    group.extend(keys.iter().cloned());
    select.group_by = sp::GroupByExpr::Expressions(group.clone(), Vec::new());
    if let Some(order) = order
        && order.is_none()
    {
        *order = Some(by_buckets_then_keys(group));
    }
    fill_spec(s, &ts, stride, zone, keys.len(), kinds)
}

fn syntax(s: &SampleBy, message: &str) -> Error {
    Error::Syntax {
        message: message.to_string(),
        position: s.position,
    }
}

/// FROM and TO bound the rows: they join the WHERE.
fn bound_rows(select: &mut sp::Select, ts_column: &sp::Expr, s: &SampleBy) {
    let mut bounds = Vec::new();
    if let Some(f) = &s.from {
        bounds.push(binary(
            ts_column.clone(),
            sp::BinaryOperator::GtEq,
            string(f),
        ));
    }
    if let Some(t) = &s.to {
        bounds.push(binary(ts_column.clone(), sp::BinaryOperator::Lt, string(t)));
    }
    for b in bounds {
        select.selection = Some(match select.selection.take() {
            Some(w) => binary(sp::Expr::Nested(Box::new(w)), sp::BinaryOperator::And, b),
            None => b,
        });
    }
}

/// Where the buckets start: the calendar's offset, FROM, or the first row
/// the WHERE keeps.
fn bucket_origin(select: &sp::Select, ts_column: &sp::Expr, s: &SampleBy) -> sp::Expr {
    match (&s.align, &s.from) {
        (Align::Calendar { offset, .. }, _) => string(&interval::literal(*offset)),
        (Align::FirstObservation, Some(f)) => string(f),
        (Align::FirstObservation, None) => {
            let first = sp::Select {
                projection: vec![sp::SelectItem::UnnamedExpr(call(
                    "min",
                    vec![ts_column.clone()],
                ))],
                from: select.from.clone(),
                selection: select.selection.clone(),
                group_by: sp::GroupByExpr::Expressions(Vec::new(), Vec::new()),
                // Not the sampled SELECT's place: this one is not sampled.
                select_token: sp::helpers::attached_token::AttachedToken::empty(),
                ..select.clone()
            };
            sp::Expr::Subquery(Box::new(sp::Query {
                body: Box::new(sp::SetExpr::Select(Box::new(first))),
                order_by: None,
                limit_clause: None,
                ..empty_query()
            }))
        }
    }
}

/// The selected timestamp becomes the bucket; every other item is an
/// aggregate or a key. Returns the keys and each item's kind.
fn group_items(
    select: &mut sp::Select,
    bucket: &sp::Expr,
    ts: &str,
    s: &SampleBy,
    env: &dyn Env,
) -> Result<(Vec<sp::Expr>, Vec<Item>)> {
    let mut keys = Vec::new();
    let mut kinds = Vec::new();
    for item in &mut select.projection {
        let (expr, alias) = match item {
            sp::SelectItem::UnnamedExpr(e) => (e.clone(), None),
            sp::SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
            _ => {
                return Err(syntax(
                    s,
                    "SAMPLE BY needs its columns named: `*` is not supported",
                ));
            }
        };
        if column_name(&expr).is_some_and(|c| c.eq_ignore_ascii_case(ts)) {
            *item = sp::SelectItem::ExprWithAlias {
                expr: bucket.clone(),
                alias: alias.unwrap_or_else(|| sp::Ident::with_quote('"', ts)),
            };
            kinds.push(Item::Bucket);
        } else if has_aggregate(&expr, env) {
            kinds.push(Item::Value(Fill::None));
        } else {
            keys.push(expr);
            kinds.push(Item::Key);
        }
    }
    Ok((keys, kinds))
}

/// The order of a sampled SELECT without ORDER BY: by bucket, then keys.
fn by_buckets_then_keys(group: Vec<sp::Expr>) -> sp::OrderBy {
    sp::OrderBy {
        kind: sp::OrderByKind::Expressions(
            group
                .into_iter()
                .map(|expr| sp::OrderByExpr {
                    expr,
                    options: sp::OrderByOptions {
                        asc: None,
                        nulls_first: None,
                    },
                    with_fill: None,
                })
                .collect(),
        ),
        interpolate: None,
    }
}

/// What FILL leaves for the plan (None without a fill to make).
fn fill_spec(
    s: &SampleBy,
    ts: &str,
    stride: String,
    zone: Option<String>,
    keys: usize,
    mut kinds: Vec<Item>,
) -> Result<Option<FillSpec>> {
    let aggregates = kinds.iter().filter(|k| matches!(k, Item::Value(_))).count();
    let fills: Vec<Fill> = match s.fill.len() {
        0 => return Ok(None),
        1 => vec![s.fill[0].clone(); aggregates],
        n if n == aggregates => s.fill.clone(),
        n => {
            return Err(syntax(
                s,
                &format!(
                    "FILL has {n} values for {aggregates} aggregates: give one, or one per aggregate"
                ),
            ));
        }
    };
    if fills.iter().all(|f| *f == Fill::None) {
        return Ok(None);
    }
    if fills.contains(&Fill::None) {
        return Err(syntax(s, "FILL(NONE) cannot be mixed with other fills"));
    }
    if !kinds.contains(&Item::Bucket) {
        return Err(syntax(
            s,
            &format!("FILL needs the timestamp selected: add {ts} to the SELECT"),
        ));
    }
    let mut fills = fills.into_iter();
    for k in &mut kinds {
        if let Item::Value(f) = k {
            *f = fills.next().unwrap_or(Fill::Null);
        }
    }
    let origin_text = match (&s.align, &s.from) {
        (Align::Calendar { offset, .. }, _) => Some(interval::literal(*offset)),
        (Align::FirstObservation, Some(f)) => Some(f.clone()),
        _ => None,
    };
    let range = match (&s.from, &s.to, origin_text) {
        (Some(f), Some(t), Some(o)) => Some((f.clone(), t.clone(), o)),
        _ => None,
    };
    Ok(Some(FillSpec {
        stride,
        zone,
        range,
        keys,
        items: kinds,
    }))
}

fn empty_query() -> sp::Query {
    sp::Query {
        with: None,
        body: Box::new(sp::SetExpr::Values(sp::Values {
            explicit_row: false,
            value_keyword: false,
            rows: Vec::new(),
        })),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    }
}

/// Replaces each sampled SELECT that has a FILL (its projection over its
/// aggregation) by its filled form, of the same columns, in the order of
/// `fills`.
pub fn apply_fills(
    plan: LogicalPlan,
    fills: &[FillSpec],
    registry: &dyn FunctionRegistry,
) -> Result<LogicalPlan> {
    if fills.is_empty() {
        return Ok(plan);
    }
    let mut pending: std::collections::VecDeque<&FillSpec> = fills.iter().collect();
    let planned = plan.transform_down(|node| {
        let Some(spec) = pending.front().copied() else {
            return Ok(Transformed::no(node));
        };
        match &node {
            LogicalPlan::Projection(p)
                if p.expr.len() == spec.items.len() && aggregation_of(&p.input, spec) =>
            {
                pending.pop_front();
                let filled =
                    fill(node, spec, registry).map_err(datafusion::error::DataFusionError::from)?;
                Ok(Transformed::new(filled, true, TreeNodeRecursion::Jump))
            }
            _ => Ok(Transformed::no(node)),
        }
    })?;
    if let Some(spec) = pending.front() {
        return Err(Error::Internal(format!(
            "SAMPLE BY {} FILL: the aggregation was not found in the plan",
            spec.stride
        )));
    }
    // Types of a filled column may change (LINEAR gives DOUBLE): the
    // plans above take their schemas again.
    let plan = planned
        .data
        .transform_up(|node| node.recompute_schema().map(Transformed::yes))?
        .data;
    Ok(plan)
}

/// Whether a plan is the aggregation of `spec` (under a HAVING filter, if
/// any): grouped by the bucket of its stride and its keys.
fn aggregation_of(plan: &LogicalPlan, spec: &FillSpec) -> bool {
    match plan {
        LogicalPlan::Filter(f) => aggregation_of(&f.input, spec),
        LogicalPlan::Aggregate(a) => {
            a.group_expr.len() == 1 + spec.keys
                && matches!(a.group_expr.first(), Some(Expr::ScalarFunction(f))
                    if f.func.name() == "timestamp_floor"
                        && matches!(f.args.first(), Some(Expr::Literal(ScalarValue::Utf8(Some(s)), _)) if *s == spec.stride))
        }
        _ => false,
    }
}

const ROWS: &str = "__sample_rows";
const GRID: &str = "__sample_grid";
const KEYS: &str = "__sample_keys";

/// The sampled SELECT's rows `sampled` with the empty buckets added and
/// filled, under the same column names.
fn fill(
    sampled: LogicalPlan,
    spec: &FillSpec,
    registry: &dyn FunctionRegistry,
) -> Result<LogicalPlan> {
    let fields: Vec<Field> = sampled
        .schema()
        .iter()
        .map(|(q, f)| (q.cloned(), f.name().clone(), f.data_type().clone()))
        .collect();
    let bucket_at = spec
        .items
        .iter()
        .position(|k| *k == Item::Bucket)
        .unwrap_or(0);
    let rows = LogicalPlanBuilder::from(sampled).alias(ROWS)?.build()?;
    let bounds = bucket_bounds(&rows, spec, registry, &fields, bucket_at)?;
    let (joined, partition) = grid(bounds, rows, spec, registry, &fields, bucket_at)?;
    let (out, windows) = filled_items(spec, &fields, partition)?;
    let mut builder = joined;
    if !windows.is_empty() {
        builder = builder.window(windows)?;
    }
    let out: Vec<Expr> = out
        .into_iter()
        .zip(&fields)
        .map(|(e, (q, name, _))| e.alias_qualified(q.clone(), name))
        .collect();
    Ok(builder.project(out)?.build()?)
}

/// A column of the sampled aggregation: its qualifier, name and type.
type Field = (Option<TableReference>, String, DataType);

/// Column `i` of the aggregation, under the relation name `rel`.
fn qualified(rel: &str, fields: &[Field], i: usize) -> Column {
    Column::new(Some(rel), fields[i].1.clone())
}

/// One row, `lo` and `hi`: the first and last bucket of the grid (FROM
/// and TO's buckets, or the first and last bucket with rows).
fn bucket_bounds(
    rows: &LogicalPlan,
    spec: &FillSpec,
    registry: &dyn FunctionRegistry,
    fields: &[Field],
    bucket_at: usize,
) -> Result<LogicalPlanBuilder> {
    let zone: Vec<Expr> = spec.zone.iter().map(|z| lit(z.clone())).collect();
    Ok(match &spec.range {
        Some((from, to, origin)) => {
            let floor = registry.udf("timestamp_floor")?;
            let dateadd = registry.udf("dateadd")?;
            let at = |t: Expr| {
                let mut args = vec![lit(spec.stride.clone()), t, lit(origin.clone())];
                args.extend(zone.iter().cloned());
                floor.call(args)
            };
            let last = dateadd.call(vec![lit("U"), lit(-1i64), lit(to.clone())]);
            LogicalPlanBuilder::empty(true).project(vec![
                at(lit(from.clone())).alias("lo"),
                at(last).alias("hi"),
            ])?
        }
        None => {
            let bucket = Expr::Column(qualified(ROWS, fields, bucket_at));
            LogicalPlanBuilder::from(rows.clone()).aggregate(
                Vec::<Expr>::new(),
                vec![min(bucket.clone()).alias("lo"), max(bucket).alias("hi")],
            )?
        }
    })
}

/// Every bucket from `bounds` (crossed with the keys, when there are
/// keys) left-joined to the aggregation's rows, NULL matching NULL; and
/// the keys' columns, which partition the fills' windows.
fn grid(
    bounds: LogicalPlanBuilder,
    rows: LogicalPlan,
    spec: &FillSpec,
    registry: &dyn FunctionRegistry,
    fields: &[Field],
    bucket_at: usize,
) -> Result<(LogicalPlanBuilder, Vec<Expr>)> {
    let mut args = vec![
        Expr::Column(Column::from_name("lo")),
        Expr::Column(Column::from_name("hi")),
        lit(spec.stride.clone()),
    ];
    args.extend(spec.zone.iter().map(|z| lit(z.clone())));
    let buckets = registry.udf("sample_buckets")?;
    let mut grid = bounds
        .project(vec![buckets.call(args).alias("b")])?
        .unnest_column("b")?
        .alias(GRID)?;
    let mut left_keys = vec![Column::new(Some(GRID), "b")];
    let mut right_keys = vec![qualified(ROWS, fields, bucket_at)];
    let mut partition = Vec::new();
    let key_at: Vec<usize> = (0..spec.items.len())
        .filter(|i| spec.items[*i] == Item::Key)
        .collect();
    if !key_at.is_empty() {
        let keys = LogicalPlanBuilder::from(rows.clone())
            .project(
                key_at
                    .iter()
                    .map(|i| Expr::Column(qualified(ROWS, fields, *i)))
                    .collect::<Vec<_>>(),
            )?
            .distinct()?
            .alias(KEYS)?
            .build()?;
        grid = grid.cross_join(keys)?;
        for i in &key_at {
            left_keys.push(qualified(KEYS, fields, *i));
            right_keys.push(qualified(ROWS, fields, *i));
            partition.push(Expr::Column(qualified(KEYS, fields, *i)));
        }
    }
    let joined = grid.join_detailed(
        rows,
        JoinType::Left,
        (left_keys, right_keys),
        None,
        NullEquality::NullEqualsNull,
    )?;
    Ok((joined, partition))
}

/// Each output column over the joined grid, and the windows (per key, by
/// bucket) that PREV and LINEAR read.
fn filled_items(
    spec: &FillSpec,
    fields: &[Field],
    partition: Vec<Expr>,
) -> Result<(Vec<Expr>, Vec<Expr>)> {
    let bucket = Expr::Column(Column::new(Some(GRID), "b"));
    let order = vec![bucket.clone().sort(true, false)];
    let unbounded = || ScalarValue::UInt64(None);
    let before = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(unbounded()),
        WindowFrameBound::CurrentRow,
    );
    let after = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::CurrentRow,
        WindowFrameBound::Following(unbounded()),
    );
    let mut windows: Vec<Expr> = Vec::new();
    let mut window = |f: Arc<WindowUDF>, e: Expr, frame: &WindowFrame| -> Result<Expr> {
        let name = format!("__w{}", windows.len());
        let w = Expr::from(WindowFunction::new(
            WindowFunctionDefinition::WindowUDF(f),
            vec![e],
        ))
        .partition_by(partition.clone())
        .order_by(order.clone())
        .window_frame(frame.clone())
        .null_treatment(Some(NullTreatment::IgnoreNulls))
        .build()?
        .alias(name.clone());
        windows.push(w);
        Ok(Expr::Column(Column::from_name(name)))
    };
    let mut out = Vec::with_capacity(spec.items.len());
    for (i, item) in spec.items.iter().enumerate() {
        let value = Expr::Column(qualified(ROWS, fields, i));
        out.push(match item {
            Item::Bucket => bucket.clone(),
            Item::Key => Expr::Column(qualified(KEYS, fields, i)),
            Item::Value(Fill::None | Fill::Null) => value,
            Item::Value(Fill::Value(text)) => {
                let constant = constant(text, &fields[i].2)?;
                datafusion::functions::expr_fn::coalesce(vec![value, constant])
            }
            Item::Value(Fill::Prev) => window(last_value_udwf(), value, &before)?,
            Item::Value(Fill::Linear) => {
                let time = cast(bucket.clone(), DataType::Int64);
                let known_at = when(value.clone().is_not_null(), time.clone()).end()?;
                let prev = window(last_value_udwf(), value.clone(), &before)?;
                let next = window(first_value_udwf(), value.clone(), &after)?;
                let prev_at = window(last_value_udwf(), known_at.clone(), &before)?;
                let next_at = window(first_value_udwf(), known_at, &after)?;
                let double = |e: Expr| cast(e, DataType::Float64);
                let between = double(prev.clone())
                    + (double(next) - double(prev)) * double(time - prev_at.clone())
                        / double(next_at - prev_at);
                when(value.clone().is_not_null(), double(value)).otherwise(between)?
            }
        });
    }
    Ok((out, windows))
}

/// A FILL constant as the aggregate's type.
fn constant(text: &str, ty: &DataType) -> Result<Expr> {
    let value = match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(s) => ScalarValue::Utf8(Some(s.replace("''", "'"))),
        None => match text.parse::<i64>() {
            Ok(n) => ScalarValue::Int64(Some(n)),
            Err(_) => ScalarValue::Float64(Some(text.parse::<f64>().map_err(|_| {
                Error::invalid(format!("FILL value {text} is not a number or a string"))
            })?)),
        },
    };
    Ok(cast(lit(value), ty.clone()))
}
