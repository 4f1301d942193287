//! QuestDB's promise for a table scan: rows come in designated-timestamp
//! order. DataFusion reads a file as several byte ranges in parallel and,
//! when nothing asks for an order, hands on whichever batch is ready. So
//! a query whose rows are one table's rows (a SELECT of a table under
//! filters, with no ORDER BY, aggregation, window, DISTINCT or join) gets
//! the sort an `ORDER BY ts` would give it, at the top of the plan, with
//! the timestamp carried through the projection when it is not selected
//! (as DataFusion plans an ORDER BY on an unselected column). The provider
//! declares each file range sorted on the timestamp, so the physical
//! planner meets that sort with a merge of the ordered ranges, not a sort
//! of the rows (EXPLAIN shows `SortPreservingMergeExec`).

use std::sync::Arc;

use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::Column;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, SortExpr};

use crate::catalog::provider::TableScanProvider;

/// The plan, in designated-timestamp order when its rows are one table's.
pub fn in_table_order(plan: LogicalPlan) -> Result<LogicalPlan> {
    match &plan {
        LogicalPlan::Limit(limit) => {
            let ordered = in_table_order((*limit.input).clone())?;
            plan.with_new_exprs(plan.expressions(), vec![ordered])
        }
        LogicalPlan::Filter(_) | LogicalPlan::TableScan(_) => match designated(&plan) {
            Some(ts) => sorted(LogicalPlanBuilder::from(plan), ts)?.build(),
            None => Ok(plan),
        },
        LogicalPlan::Projection(p) => {
            let Some(ts) = designated(&p.input) else {
                return Ok(plan);
            };
            let selected = p
                .expr
                .iter()
                .any(|e| matches!(e, Expr::Column(c) if *c == ts));
            if selected {
                return sorted(LogicalPlanBuilder::from(plan), ts)?.build();
            }
            // The timestamp rides along under the projection, is sorted on
            // and is dropped again.
            let output: Vec<Expr> = p.schema.columns().into_iter().map(Expr::Column).collect();
            let mut with_ts = p.expr.clone();
            with_ts.push(Expr::Column(ts.clone()));
            let builder = LogicalPlanBuilder::from((*p.input).clone()).project(with_ts)?;
            sorted(builder, ts)?.project(output)?.build()
        }
        // EXPLAIN shows (and EXPLAIN ANALYZE runs) the plan that runs.
        LogicalPlan::Explain(e) => {
            let mut e = e.clone();
            e.plan = Arc::new(in_table_order((*e.plan).clone())?);
            Ok(LogicalPlan::Explain(e))
        }
        LogicalPlan::Analyze(a) => {
            let mut a = a.clone();
            a.input = Arc::new(in_table_order((*a.input).clone())?);
            Ok(LogicalPlan::Analyze(a))
        }
        _ => Ok(plan),
    }
}

fn sorted(builder: LogicalPlanBuilder, ts: Column) -> Result<LogicalPlanBuilder> {
    builder.sort(vec![SortExpr::new(Expr::Column(ts), true, false)])
}

/// The designated timestamp column of the table read by a chain of filters
/// over one scan.
fn designated(plan: &LogicalPlan) -> Option<Column> {
    match plan {
        LogicalPlan::Filter(f) => designated(&f.input),
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source).ok()?;
            let table: &TableScanProvider = provider.downcast_ref()?;
            let ts = table.designated_timestamp()?;
            // The scan's own projection may leave the column out; then the
            // rows cannot be ordered by it here.
            scan.projected_schema
                .has_column_with_unqualified_name(&ts)
                .then(|| Column::new(Some(scan.table_name.clone()), ts))
        }
        _ => None,
    }
}
