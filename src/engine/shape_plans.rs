//! Optimized plans of queries kept by their shape: the same query sent
//! again with other hosts and times (a dashboard's refresh, a script's
//! loop, each TSBS query type) is not planned and optimized again.
//!
//! A query's shape is its syntax tree (after the rewrites of QuestDB's and
//! PostgreSQL's spellings) with the literals of its WHERE comparisons
//! (`col = 'a'`, `col >= 10.5`, `col IN ('a', 'b')`, `col BETWEEN … AND
//! …`) made parameters `$1, $2, …`. The shape is planned and optimized
//! once with the parameters left open; each run binds its own literals,
//! converted to the type DataFusion gave each parameter (the compared
//! column's), and only the physical plan is made again. A literal is bound
//! only where the conversion is the one DataFusion's type coercion makes
//! for a literal in that place (text to a text, dictionary, timestamp or
//! date column; a number to a DOUBLE or to an integer column it fits);
//! otherwise the query is planned as a whole, as is any shape whose plan
//! reads something other than user tables, calls a function that is not
//! immutable (`now()`), or names a parameter DataFusion gave no type.
//!
//! A kept plan names the tables it read: it is used only while each is
//! still the catalog's table of that name with the same definition, and
//! is forgotten when one is dropped or renamed (it holds the table, whose
//! files are removed only once nothing does). At
//! most [`KEPT`] shapes are kept (the cache starts again empty past it); a
//! SET empties it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::compute::CastOptions;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast as sp;

use crate::catalog::Catalog;
use crate::catalog::meta::TableMeta;
use crate::catalog::provider::TableScanProvider;
use crate::catalog::table::Table;

/// How many shapes are kept.
const KEPT: usize = 256;

/// A literal taken out of a query's WHERE clause, as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Number(String),
    Text(String),
}

/// What is known of a shape.
#[derive(Clone)]
pub(super) enum Kept {
    /// Its optimized plan, parameters open.
    Plan(Arc<Shape>),
    /// Its plan cannot be kept (see the module doc): planned each time.
    Unfit,
}

/// A shape's optimized plan and what binding it needs.
pub(super) struct Shape {
    plan: LogicalPlan,
    /// The type of `$1`, `$2`, … in order.
    types: Vec<DataType>,
    /// Each table the plan reads, with the definition it was planned with.
    tables: Vec<(Arc<Table>, Arc<TableMeta>)>,
}

#[derive(Default)]
pub(super) struct ShapePlans {
    shapes: Mutex<HashMap<sp::Statement, Kept>>,
}

impl ShapePlans {
    fn lock(&self) -> MutexGuard<'_, HashMap<sp::Statement, Kept>> {
        self.shapes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn get(&self, shape: &sp::Statement) -> Option<Kept> {
        self.lock().get(shape).cloned()
    }

    pub(super) fn insert(&self, shape: sp::Statement, kept: Kept) {
        let mut shapes = self.lock();
        if shapes.len() >= KEPT {
            shapes.clear();
        }
        shapes.insert(shape, kept);
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    /// Forgets the plans of tables dropped or renamed: a kept plan holds
    /// its tables (and so their files) alive.
    pub(super) fn retain_current(&self, catalog: &Catalog) {
        self.lock().retain(|_, kept| kept.current(catalog));
    }
}

impl Shape {
    /// The shape of an unoptimized plan of a query's shape, when it can be
    /// kept: `optimized` is that plan optimized (made only once the plan
    /// is known to fit).
    pub(super) fn of(
        plan: &LogicalPlan,
        parameters: usize,
        optimize: impl FnOnce(&LogicalPlan) -> crate::error::Result<LogicalPlan>,
    ) -> crate::error::Result<Option<Shape>> {
        let Some(tables) = user_tables_only(plan) else {
            return Ok(None);
        };
        let Ok(types) = plan.get_parameter_types() else {
            return Ok(None);
        };
        let types: Option<Vec<DataType>> = (1..=parameters)
            .map(|i| types.get(&format!("${i}")).cloned().flatten())
            .collect();
        let Some(types) = types.filter(|t| t.len() == parameters && t.iter().all(bindable)) else {
            return Ok(None);
        };
        Ok(Some(Shape {
            plan: optimize(plan)?,
            types,
            tables,
        }))
    }

    /// The kept plan with `literals` bound, when every literal converts
    /// as DataFusion would convert it.
    pub(super) fn bind(&self, literals: &[Literal]) -> Option<LogicalPlan> {
        if literals.len() != self.types.len() {
            return None;
        }
        let values: Option<Vec<ScalarValue>> = literals
            .iter()
            .zip(&self.types)
            .map(|(l, ty)| value(l, ty))
            .collect();
        self.plan.clone().with_param_values(values?).ok()
    }
}

impl Kept {
    /// Whether each table a kept plan reads is still the catalog's table
    /// of its name, with the definition the plan was made with.
    pub(super) fn current(&self, catalog: &Catalog) -> bool {
        let Kept::Plan(shape) = self else {
            return true;
        };
        shape.tables.iter().all(|(table, meta)| {
            catalog
                .get(&table.schema_name, &table.name)
                .is_some_and(|now| Arc::ptr_eq(&now, table) && now.has_meta(meta))
        })
    }
}

/// The tables a plan reads, when it reads user tables only and every
/// expression in it is immutable.
fn user_tables_only(plan: &LogicalPlan) -> Option<Vec<(Arc<Table>, Arc<TableMeta>)>> {
    let mut tables = Vec::new();
    let mut fits = true;
    let _ = plan.apply_with_subqueries(|node| {
        fits &= match node {
            LogicalPlan::TableScan(scan) => match source_as_provider(&scan.source) {
                Ok(provider) => match provider.downcast_ref::<TableScanProvider>() {
                    Some(p) => {
                        let table = Arc::clone(p.table());
                        let meta = table.snapshot().meta;
                        tables.push((table, meta));
                        true
                    }
                    None => false,
                },
                Err(_) => false,
            },
            node => super::constant_plans::relational(node),
        } && node
            .expressions()
            .iter()
            .all(|e| super::constant_plans::immutable(e, true));
        Ok(if fits {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    fits.then_some(tables)
}

/// Whether a literal can be bound to a parameter of this type.
fn bindable(ty: &DataType) -> bool {
    match ty {
        DataType::Dictionary(_, v) => text(v),
        DataType::Float64
        | DataType::Int64
        | DataType::Int32
        | DataType::Int16
        | DataType::Int8
        | DataType::Timestamp(..)
        | DataType::Date32 => true,
        ty => text(ty),
    }
}

fn text(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// A literal as a value of the parameter's type, converted as DataFusion
/// converts such a literal compared with a column of that type: text by
/// arrow's cast (strict: a text that does not convert is not bound), an
/// integer text to an integer of that width if it fits, a number to a
/// DOUBLE as Rust reads a decimal number (DataFusion's reading).
fn value(literal: &Literal, ty: &DataType) -> Option<ScalarValue> {
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    match (literal, ty) {
        (Literal::Number(n), DataType::Float64) => n.parse::<f64>().ok().map(ScalarValue::from),
        (
            Literal::Number(n),
            DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8,
        ) => ScalarValue::Int64(Some(n.parse::<i64>().ok()?))
            .cast_to_with_options(ty, &strict)
            .ok(),
        (Literal::Text(s), ty) if bindable(ty) && !ty.is_numeric() => {
            ScalarValue::Utf8(Some(s.clone()))
                .cast_to_with_options(ty, &strict)
                .ok()
        }
        _ => None,
    }
}

/// A query's shape and the literals taken out of it, in parameter order;
/// none for a statement with parameters of its own.
pub(super) fn lift(stmt: &sp::Statement) -> Option<(sp::Statement, Vec<Literal>)> {
    if has_placeholders(stmt) {
        return None;
    }
    let mut shape = stmt.clone();
    let mut literals = Vec::new();
    if let sp::Statement::Query(q) = &mut shape {
        lift_query(q, &mut literals);
    }
    Some((shape, literals))
}

fn lift_query(q: &mut sp::Query, literals: &mut Vec<Literal>) {
    if let Some(with) = &mut q.with {
        for cte in &mut with.cte_tables {
            lift_query(&mut cte.query, literals);
        }
    }
    lift_set(&mut q.body, literals);
}

fn lift_set(body: &mut sp::SetExpr, literals: &mut Vec<Literal>) {
    match body {
        sp::SetExpr::Select(s) => {
            for t in &mut s.from {
                lift_factor(&mut t.relation, literals);
                for j in &mut t.joins {
                    lift_factor(&mut j.relation, literals);
                }
            }
            if let Some(w) = &mut s.selection {
                lift_condition(w, literals);
            }
        }
        sp::SetExpr::Query(q) => lift_query(q, literals),
        sp::SetExpr::SetOperation { left, right, .. } => {
            lift_set(left, literals);
            lift_set(right, literals);
        }
        _ => {}
    }
}

fn lift_factor(f: &mut sp::TableFactor, literals: &mut Vec<Literal>) {
    if let sp::TableFactor::Derived { subquery, .. } = f {
        lift_query(subquery, literals);
    }
}

/// Lifts the literals of the comparisons a WHERE clause combines with
/// AND, OR and NOT; anything else in it stays as written.
fn lift_condition(e: &mut sp::Expr, literals: &mut Vec<Literal>) {
    match e {
        sp::Expr::BinaryOp { left, op, right } => match op {
            sp::BinaryOperator::And | sp::BinaryOperator::Or => {
                lift_condition(left, literals);
                lift_condition(right, literals);
            }
            sp::BinaryOperator::Eq
            | sp::BinaryOperator::NotEq
            | sp::BinaryOperator::Lt
            | sp::BinaryOperator::LtEq
            | sp::BinaryOperator::Gt
            | sp::BinaryOperator::GtEq => {
                if column(left) {
                    lift_literal(right, literals);
                } else if column(right) {
                    lift_literal(left, literals);
                }
            }
            _ => {}
        },
        sp::Expr::Nested(inner) => lift_condition(inner, literals),
        sp::Expr::UnaryOp {
            op: sp::UnaryOperator::Not,
            expr,
        } => lift_condition(expr, literals),
        sp::Expr::InList { expr, list, .. } if column(expr) => {
            for item in list {
                lift_literal(item, literals);
            }
        }
        sp::Expr::Between {
            expr, low, high, ..
        } if column(expr) => {
            lift_literal(low, literals);
            lift_literal(high, literals);
        }
        _ => {}
    }
}

fn column(e: &sp::Expr) -> bool {
    matches!(e, sp::Expr::Identifier(_) | sp::Expr::CompoundIdentifier(_))
}

/// Makes a plain number or quoted text the next parameter.
fn lift_literal(e: &mut sp::Expr, literals: &mut Vec<Literal>) {
    let sp::Expr::Value(v) = e else { return };
    let literal = match &v.value {
        sp::Value::Number(n, false) if n.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            Literal::Number(n.clone())
        }
        sp::Value::SingleQuotedString(s) => Literal::Text(s.clone()),
        _ => return,
    };
    literals.push(literal);
    v.value = sp::Value::Placeholder(format!("${}", literals.len()));
}

/// Whether a statement holds parameters of its own.
fn has_placeholders(stmt: &sp::Statement) -> bool {
    crate::sql::walk::any_expr(
        stmt,
        |e| matches!(e, sp::Expr::Value(v) if matches!(v.value, sp::Value::Placeholder(_))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::walk::parse;

    #[test]
    fn where_literals_become_parameters_and_the_rest_stays() {
        let (shape, literals) = lift(&parse(
            "SELECT a, 'x' FROM t WHERE h IN ('a', 'b') AND ts >= '2016-01-01' AND (v > 90.5 OR NOT n BETWEEN 1 AND 2) AND f(a) = 3 AND v = -1 \
             AND k = 1e5",
        ))
        .unwrap();
        assert_eq!(
            shape.to_string(),
            "SELECT a, 'x' FROM t WHERE h IN ($1, $2) AND ts >= $3 AND (v > $4 OR NOT n BETWEEN $5 AND $6) AND f(a) = 3 AND v = -1 AND k = 1e5"
        );
        assert_eq!(
            literals,
            vec![
                Literal::Text("a".into()),
                Literal::Text("b".into()),
                Literal::Text("2016-01-01".into()),
                Literal::Number("90.5".into()),
                Literal::Number("1".into()),
                Literal::Number("2".into()),
            ]
        );
        // Other hosts and times: the same shape.
        let (other, _) = lift(&parse(
            "SELECT a, 'x' FROM t WHERE h IN ('c', 'd') AND ts >= '2017-05-01T00:00:00Z' AND (v > 1 OR NOT n BETWEEN 7 AND 8) AND f(a) = 3 AND v = -1 \
             AND k = 1e5",
        ))
        .unwrap();
        assert_eq!(other, shape);
        // Subqueries in FROM and CTEs are lifted too; subqueries in WHERE not.
        let (shape, literals) = lift(&parse(
            "WITH c AS (SELECT * FROM t WHERE a = 1) SELECT * FROM (SELECT * FROM c WHERE b = 'x') s WHERE s.a IN (SELECT a FROM u WHERE z = 2)",
        ))
        .unwrap();
        assert_eq!(literals.len(), 2);
        assert!(shape.to_string().contains("z = 2"), "{shape}");
        // A statement with parameters of its own has no shape.
        assert!(lift(&parse("SELECT $1 FROM t WHERE a = 1")).is_none());
    }

    #[test]
    fn literals_convert_as_datafusion_converts_them() {
        let ts = DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        );
        assert_eq!(
            value(&Literal::Text("2016-01-02T03:00:00Z".into()), &ts),
            Some(ScalarValue::TimestampMicrosecond(
                Some(1_451_703_600_000_000),
                Some("UTC".into())
            ))
        );
        assert_eq!(value(&Literal::Text("yesterday".into()), &ts), None);
        assert_eq!(
            value(&Literal::Number("90".into()), &DataType::Float64),
            Some(ScalarValue::Float64(Some(90.0)))
        );
        assert_eq!(
            value(&Literal::Number("7".into()), &DataType::Int32),
            Some(ScalarValue::Int32(Some(7)))
        );
        // Not what a comparison with the literal means: planned as a whole.
        assert_eq!(
            value(&Literal::Number("2.5".into()), &DataType::Int32),
            None
        );
        assert_eq!(
            value(&Literal::Number("3000000000".into()), &DataType::Int32),
            None
        );
        assert_eq!(
            value(&Literal::Number("1".into()), &DataType::Float32),
            None
        );
        assert_eq!(value(&Literal::Number("1".into()), &DataType::Utf8), None);
        assert_eq!(value(&Literal::Text("1".into()), &DataType::Int64), None);
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(
            value(&Literal::Text("host_7".into()), &dict),
            Some(ScalarValue::Dictionary(
                Box::new(DataType::Int32),
                Box::new(ScalarValue::Utf8(Some("host_7".into())))
            ))
        );
    }
}
