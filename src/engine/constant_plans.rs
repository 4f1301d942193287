//! Plans of queries that read no table, kept by their syntax tree: a
//! connection pool's `SELECT 1`, a dashboard's `SELECT version()` run
//! again without being planned again (DataFusion's planning was nine
//! tenths of such a query's time in the server).
//!
//! Only a plan whose answer cannot change is kept: no table, system
//! table or table function is read, no parameter is bound, and every
//! function is immutable (`now()`, `random()`, `current_user` are not).
//! A kept plan is run again through `reset_plan_states`, which gives
//! operators that keep state a fresh copy. A SET empties the cache (it
//! may change what the same text means, e.g. the time zone).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::sql::sqlparser::ast as sp;

/// How many plans are kept; past it the cache starts again empty.
const KEPT: usize = 256;
/// VALUES lists longer than this are not kept (their rows live in the plan).
const MAX_VALUES_ROWS: usize = 64;

#[derive(Default)]
pub(super) struct ConstantPlans {
    plans: Mutex<HashMap<sp::Query, Arc<dyn ExecutionPlan>>>,
}

impl ConstantPlans {
    fn lock(&self) -> MutexGuard<'_, HashMap<sp::Query, Arc<dyn ExecutionPlan>>> {
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh copy of the plan kept for `query`.
    pub(super) fn get(&self, query: &sp::Query) -> Option<Arc<dyn ExecutionPlan>> {
        let plan = self.lock().get(query).cloned()?;
        reset_plan_states(plan).ok()
    }

    pub(super) fn insert(&self, query: sp::Query, plan: Arc<dyn ExecutionPlan>) {
        let mut plans = self.lock();
        if plans.len() >= KEPT {
            plans.clear();
        }
        plans.insert(query, plan);
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
    }
}

/// Whether a query may read no table, by its outermost SELECT (checked
/// before the query is planned, so that no other query's tree is copied).
pub(super) fn candidate(query: &sp::Query) -> bool {
    match query.body.as_ref() {
        sp::SetExpr::Select(s) => s.from.is_empty(),
        sp::SetExpr::Values(v) => v.rows.len() <= MAX_VALUES_ROWS,
        _ => false,
    }
}

/// Whether the logical plan of a query (before optimization, which folds
/// `now()` into a constant) gives the same answer every time it runs.
pub(super) fn constant(plan: &LogicalPlan) -> bool {
    let mut constant = true;
    let _ = plan.apply_with_subqueries(|node| {
        constant &= match node {
            LogicalPlan::Values(v) => v.values.len() <= MAX_VALUES_ROWS,
            // Tables, table functions, extensions, EXPLAIN, statements.
            node => relational(node),
        } && node.expressions().iter().all(|e| immutable(e, false));
        Ok(if constant {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    constant
}

/// Whether a plan node only combines the rows of its inputs (no table,
/// VALUES, extension, EXPLAIN or statement): what kept plans may hold
/// besides their sources.
pub(super) fn relational(node: &LogicalPlan) -> bool {
    matches!(
        node,
        LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::EmptyRelation(_)
    )
}

/// Whether an expression gives the same value every time for the same
/// input rows: its functions are immutable, and it has no parameter
/// unless `parameters` says parameters count (they are bound each run).
pub(super) fn immutable(expr: &Expr, parameters: bool) -> bool {
    let mut immutable = true;
    let _ = expr.apply(|e| {
        immutable &= match e {
            Expr::ScalarFunction(f) => f.func.signature().volatility == Volatility::Immutable,
            Expr::AggregateFunction(f) => f.func.signature().volatility == Volatility::Immutable,
            Expr::WindowFunction(f) => f.fun.signature().volatility == Volatility::Immutable,
            Expr::Placeholder(_) => parameters,
            _ => true,
        };
        Ok(if immutable {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    immutable
}
