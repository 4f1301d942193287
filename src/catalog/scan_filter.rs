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
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
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
                        // A kept plan's parameter: a literal once bound.
                        | Expr::Placeholder(_)
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
    /// The conditions ANDed, the likeliest to keep few rows first: each
    /// is evaluated on the rows the ones before it kept.
    pub conjuncts: Vec<Arc<dyn PhysicalExpr>>,
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, c) in self.conjuncts.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Where a condition goes among a scan's conjuncts: an equality or IN
/// list on a SYMBOL column first (one host among hundreds), other
/// equalities and IN lists next, the rest (ranges, LIKE) last; the
/// query's order otherwise.
fn selectivity_rank(e: &Expr, schema: &datafusion::arrow::datatypes::Schema) -> u8 {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let symbol = |c: &Expr| match c {
        Expr::Column(c) => schema.field_with_name(&c.name).is_ok_and(|f| {
            matches!(
                f.data_type(),
                datafusion::arrow::datatypes::DataType::Dictionary(..)
            )
        }),
        _ => false,
    };
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) if symbol(left) || symbol(right) => 0,
        Expr::InList(l) if !l.negated && symbol(&l.expr) => 0,
        Expr::BinaryExpr(BinaryExpr {
            op: Operator::Eq, ..
        }) => 1,
        Expr::InList(l) if !l.negated => 1,
        _ => 2,
    }
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
        let mut rest: Vec<Expr> = rest.flat_map(split_conjunction_owned).collect();
        let condition = match rest.is_empty() {
            true => None,
            false => {
                let mut used: Vec<usize> = Vec::new();
                for c in rest.iter().flat_map(|e| e.column_refs()) {
                    let i = schema.index_of(&c.name)?;
                    if !used.contains(&i) {
                        used.push(i);
                    }
                }
                let own: SchemaRef = Arc::new(schema.project(&used)?);
                rest.sort_by_key(|e| selectivity_rank(e, &own));
                let read = DFSchema::try_from(Arc::clone(&own))?;
                Some(Condition {
                    at: used
                        .iter()
                        .map(|i| columns.iter().position(|c| c == i).unwrap_or_default())
                        .collect(),
                    conjuncts: rest
                        .into_iter()
                        .map(|e| state.create_physical_expr(e, &read))
                        .collect::<datafusion::error::Result<_>>()?,
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
