//! The WHERE conditions a table scan applies itself.
//!
//! DataFusion hands a scan the conditions on its table; those the scan
//! reports exact leave no filter above it. A scan of cached columns
//! evaluates them on the columns they read and cuts only the columns the
//! query outputs (DataFusion's filter above a scan cuts every column of
//! the batch, once per condition that selects few rows: on TSBS's
//! `SELECT *` queries most of the time). Other scans put the same filter
//! right above themselves. Either way the columns a condition reads are
//! read with the query's and dropped after it.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExecBuilder;

use super::ts_range::TsRange;

/// Whether the scan applies condition `e` itself: a deterministic
/// expression of the row's columns (no subquery, parameter, aggregate or
/// volatile function).
pub fn evaluable(e: &Expr) -> bool {
    !e.is_volatile()
        && !e
            .exists(|x| {
                Ok(!matches!(
                    x,
                    Expr::Column(_)
                        | Expr::Literal(..)
                        | Expr::BinaryExpr(_)
                        | Expr::Like(_)
                        | Expr::Not(_)
                        | Expr::IsNotNull(_)
                        | Expr::IsNull(_)
                        | Expr::IsTrue(_)
                        | Expr::IsFalse(_)
                        | Expr::IsNotTrue(_)
                        | Expr::IsNotFalse(_)
                        | Expr::Negative(_)
                        | Expr::Between(_)
                        | Expr::Case(_)
                        | Expr::Cast(_)
                        | Expr::TryCast(_)
                        | Expr::ScalarFunction(_)
                        | Expr::InList(_)
                ))
            })
            .unwrap_or(true)
}

/// What a scan reads to apply its conditions.
#[derive(Debug)]
pub struct ScanFilter {
    /// Table columns read: the query's (in its order), then those only the
    /// conditions read.
    pub columns: Vec<usize>,
    /// How many of `columns` the scan outputs.
    pub width: usize,
    /// The conditions over `columns` (as a batch of them), when any.
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
    /// The same over the columns they read alone, with where those are in
    /// `columns`: evaluated on a batch of a few columns, DataFusion's
    /// conjunctions cut those few, not every column read.
    pub condition: Option<Condition>,
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub at: Vec<usize>,
    pub schema: SchemaRef,
    pub predicate: Arc<dyn PhysicalExpr>,
}

impl ScanFilter {
    /// The conditions among `filters` the scan applies, reading the
    /// columns `output` and those. `ts`, the designated timestamp: a
    /// cached scan cuts its range exactly, so conditions that only bound
    /// it (see [`TsRange::covers`]) are not evaluated there again.
    pub fn new(
        state: &dyn Session,
        schema: &SchemaRef,
        output: Vec<usize>,
        filters: &[Expr],
        ts: Option<&str>,
    ) -> datafusion::error::Result<ScanFilter> {
        let width = output.len();
        let mut columns = output;
        // Columns by name alone: the scan's batch has no qualifiers.
        let own = filters
            .iter()
            .filter(|f| evaluable(f))
            .map(|f| {
                Ok(f.clone()
                    .transform(|e| match e {
                        Expr::Column(c) => Ok(Transformed::yes(Expr::Column(
                            datafusion::common::Column::new_unqualified(c.name),
                        ))),
                        other => Ok(Transformed::no(other)),
                    })?
                    .data)
            })
            .collect::<datafusion::error::Result<Vec<Expr>>>()?;
        let Some(all) = conjunction(own.clone()) else {
            return Ok(ScanFilter {
                columns,
                width,
                predicate: None,
                condition: None,
            });
        };
        for c in all.column_refs() {
            let i = schema.index_of(&c.name)?;
            if !columns.contains(&i) {
                columns.push(i);
            }
        }
        let read = DFSchema::try_from(schema.project(&columns)?)?;
        let predicate = state.create_physical_expr(all, &read)?;
        let rest = own
            .into_iter()
            .filter(|f| !ts.is_some_and(|ts| TsRange::covers(f, ts)));
        let condition = match conjunction(rest) {
            None => None,
            Some(rest) => {
                let mut used: Vec<usize> = Vec::new();
                for c in rest.column_refs() {
                    let i = schema.index_of(&c.name)?;
                    if !used.contains(&i) {
                        used.push(i);
                    }
                }
                let own: SchemaRef = Arc::new(schema.project(&used)?);
                Some(Condition {
                    at: used
                        .iter()
                        .map(|i| columns.iter().position(|c| c == i).unwrap_or_default())
                        .collect(),
                    predicate: state
                        .create_physical_expr(rest, &DFSchema::try_from(Arc::clone(&own))?)?,
                    schema: own,
                })
            }
        };
        Ok(ScanFilter {
            columns,
            width,
            predicate: Some(predicate),
            condition,
        })
    }

    /// `plan` (of `columns`) with the conditions applied and the columns
    /// only they read dropped; at most `limit` rows per partition.
    pub fn apply(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let Some(predicate) = &self.predicate else {
            return Ok(plan);
        };
        let mut filter = FilterExecBuilder::new(Arc::clone(predicate), plan);
        if self.width < self.columns.len() {
            filter = filter.apply_projection(Some((0..self.width).collect()))?;
        }
        let filter: Arc<dyn ExecutionPlan> = Arc::new(filter.with_fetch(limit).build()?);
        Ok(filter)
    }
}
