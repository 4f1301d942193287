//! QuestDB's relations in FROM, planned by DataFusion's SQL planner
//! through a relation planner of our own: a table read LATEST ON
//! ([`super::latest_on`]) and an ASOF, LT or SPLICE join
//! ([`super::time_join`]). [`prepare`] readies the AST and says which
//! relations are ours (by where their table names start in the text);
//! [`TimeRelations`] is handed every relation the planner meets and
//! plans those.

use std::sync::{Arc, Mutex};

use datafusion::error::Result as DfResult;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::sql::sqlparser::ast as sp;
use datafusion::sql::sqlparser::ast::Spanned;

use super::{Env, latest_on, time_join};
use crate::error::Result;
use crate::sql::Clauses;

/// The query's relations of ours.
#[derive(Debug, Clone, Default)]
pub struct Relations {
    pub latest: Vec<latest_on::Spec>,
    joins: Vec<time_join::Spec>,
}

/// Readies `query` for the planner: LATEST ON SELECTs give up their WHERE
/// to the relation, time joins become one relation each.
pub fn prepare(query: &mut sp::Query, clauses: &Clauses, env: &dyn Env) -> Result<Relations> {
    Ok(Relations {
        latest: latest_on::prepare(query, &clauses.latest, env)?,
        joins: time_join::prepare(query, &clauses.joins, env)?,
    })
}

impl Relations {
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty() && self.joins.is_empty()
    }

    /// The planner of one planning pass.
    pub fn planner(&self) -> Arc<TimeRelations> {
        Arc::new(TimeRelations {
            latest: Mutex::new(self.latest.iter().cloned().map(Some).collect()),
            joins: Mutex::new(self.joins.iter().cloned().map(Some).collect()),
            bounds: Mutex::new(Vec::new()),
        })
    }
}

/// Plans the relations of one query (each once: the planner is handed a
/// relation again when we plan the table inside it).
#[derive(Debug)]
pub struct TimeRelations {
    latest: Mutex<Vec<Option<latest_on::Spec>>>,
    joins: Mutex<Vec<Option<time_join::Spec>>>,
    bounds: Mutex<Vec<latest_on::Bound>>,
}

impl TimeRelations {
    /// The plans that find bounds for LATEST ON relations, left by the
    /// planning pass.
    pub fn take_bounds(&self) -> Vec<latest_on::Bound> {
        std::mem::take(&mut *self.bounds.lock().expect("bounds"))
    }
}

fn take<T>(specs: &Mutex<Vec<Option<T>>>, mut is: impl FnMut(&T) -> bool) -> Option<(usize, T)> {
    let mut specs = specs.lock().expect("specs");
    let i = specs.iter().position(|s| s.as_ref().is_some_and(&mut is))?;
    specs[i].take().map(|s| (i, s))
}

impl RelationPlanner for TimeRelations {
    fn plan_relation(
        &self,
        relation: sp::TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> DfResult<RelationPlanning> {
        match &relation {
            sp::TableFactor::Table { name, .. } => {
                let at = name.span().start;
                let Some((i, spec)) = take(&self.latest, |s| s.at == at) else {
                    return Ok(RelationPlanning::Original(Box::new(relation)));
                };
                // The table as the query names it (alias included), then
                // the pick over it; the output keeps those names.
                let base = context.plan(relation)?;
                let (plan, bound) = latest_on::plan(&spec, base, context)?;
                if let Some(plan) = bound {
                    self.bounds
                        .lock()
                        .expect("bounds")
                        .push(latest_on::Bound { spec: i, plan });
                }
                Ok(planned(plan))
            }
            sp::TableFactor::NestedJoin {
                table_with_joins,
                alias: None,
            } if table_with_joins.joins.len() == 1 => {
                let at = match &table_with_joins.joins[0].relation {
                    sp::TableFactor::Table { name, .. } => name.span().start,
                    _ => return Ok(RelationPlanning::Original(Box::new(relation))),
                };
                let Some((_, spec)) = take(&self.joins, |s| s.at == at) else {
                    return Ok(RelationPlanning::Original(Box::new(relation)));
                };
                let sp::TableFactor::NestedJoin {
                    table_with_joins, ..
                } = relation
                else {
                    unreachable!("matched above")
                };
                let sp::TableWithJoins {
                    relation: left,
                    mut joins,
                } = *table_with_joins;
                let join = joins.remove(0);
                Ok(planned(time_join::plan(&spec, left, join, context)?))
            }
            _ => Ok(RelationPlanning::Original(Box::new(relation))),
        }
    }
}

fn planned(plan: LogicalPlan) -> RelationPlanning {
    RelationPlanning::Planned(Box::new(PlannedRelation::new(plan, None)))
}
