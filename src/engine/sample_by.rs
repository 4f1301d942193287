//! QuestDB's SAMPLE BY, as a query DataFusion plans: the rows are grouped
//! by `timestamp_floor(stride, ts, origin)` on the table's designated
//! timestamp and by every selected column that is not an aggregate (keyed
//! sampling). FILL other than NONE adds the empty buckets: a grid of every
//! bucket from the first to the last (or FROM to TO), crossed with the
//! keys, left-joined to the groups; NULL leaves them empty, a constant is
//! COALESCEd in, PREV carries the last value forward and LINEAR
//! interpolates between the neighbours (window functions over the grid).
//! Calendar alignment is in UTC or in a time zone's wall-clock time (a
//! local day across a DST change is 23 or 25 hours), with an optional
//! offset; FIRST OBSERVATION starts the buckets at the first row's time.

use datafusion::sql::sqlparser::ast as sp;

use super::Engine;
use crate::error::{Error, Result};
use crate::sql::{Align, Fill, SAMPLE_BY_MARKER, SampleBy};

/// One selected item of the SAMPLE BY query.
enum Item {
    Timestamp(String),
    Key(String, usize),
    Aggregate(String, usize),
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Engine {
    /// Rewrites a query whose SELECT groups by the SAMPLE BY marker.
    pub(super) fn sample_by(
        &self,
        mut query: Box<sp::Query>,
        s: &SampleBy,
    ) -> Result<Box<sp::Query>> {
        let err = |m: &str| Error::Syntax {
            message: m.to_string(),
            position: s.position,
        };
        let sp::SetExpr::Select(select) = query.body.as_mut() else {
            return Err(err("SAMPLE BY needs a plain SELECT"));
        };
        let marked = matches!(&select.group_by, sp::GroupByExpr::Expressions(e, _)
            if e.len() == 1 && e[0].to_string().contains(SAMPLE_BY_MARKER));
        if !marked {
            // A SAMPLE BY inside a subquery of FROM.
            for t in &mut select.from {
                if let sp::TableFactor::Derived { subquery, .. } = &mut t.relation
                    && subquery.to_string().contains(SAMPLE_BY_MARKER)
                {
                    *subquery = self.sample_by(subquery.clone(), s)?;
                    return Ok(query);
                }
            }
            return Err(err("SAMPLE BY cannot be combined with GROUP BY"));
        }
        let select = &**select;
        let [from] = select.from.as_slice() else {
            return Err(err("SAMPLE BY reads one table"));
        };
        let sp::TableFactor::Table { name, .. } = &from.relation else {
            return Err(err("SAMPLE BY reads a table with a designated timestamp"));
        };
        if !from.joins.is_empty() {
            return Err(err("SAMPLE BY reads one table, without joins"));
        }
        let t = self.table_of_relation(name, Some(s.position))?;
        let Some(ts) = t.meta().timestamp.clone() else {
            return Err(err("SAMPLE BY needs a table with a designated timestamp"));
        };
        let ts_sql = quote(&ts);
        let from_sql = from.to_string();
        // The projection, sorted into the timestamp, keys and aggregates.
        let state = self.ctx.state();
        let is_aggregate = |e: &sp::Expr| {
            let mut found = false;
            let _ = sp::visit_expressions(e, |x| {
                if let sp::Expr::Function(f) = x {
                    let n = f.name.to_string().to_lowercase();
                    if state.aggregate_functions().contains_key(&n) && f.over.is_none() {
                        found = true;
                    }
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            found
        };
        let (mut keys, mut aggs): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        let mut items = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut unique = |base: String| {
            let mut n = base.clone();
            let mut k = 1;
            while names.contains(&n) {
                n = format!("{base}{k}");
                k += 1;
            }
            names.push(n.clone());
            n
        };
        for item in &select.projection {
            let (expr, alias) = match item {
                sp::SelectItem::UnnamedExpr(e) => (e, None),
                sp::SelectItem::ExprWithAlias { expr, alias } => {
                    (expr, Some(crate::sql::parser::ident_name(alias)))
                }
                _ => {
                    return Err(err(
                        "SAMPLE BY needs its columns named: `*` is not supported",
                    ));
                }
            };
            let column = match expr {
                sp::Expr::Identifier(i) => Some(crate::sql::parser::ident_name(i)),
                sp::Expr::CompoundIdentifier(p) => p.last().map(crate::sql::parser::ident_name),
                _ => None,
            };
            if column.as_deref() == Some(ts.as_str()) && !is_aggregate(expr) {
                items.push(Item::Timestamp(unique(alias.unwrap_or_else(|| ts.clone()))));
            } else if is_aggregate(expr) {
                let name = alias.unwrap_or_else(|| match expr {
                    sp::Expr::Function(f) => f.name.to_string().to_lowercase(),
                    e => e.to_string(),
                });
                items.push(Item::Aggregate(unique(name), aggs.len()));
                aggs.push(expr.to_string());
            } else {
                let name = alias.or(column).unwrap_or_else(|| expr.to_string());
                items.push(Item::Key(unique(name), keys.len()));
                keys.push(expr.to_string());
            }
        }
        let ts_name = items
            .iter()
            .find_map(|i| match i {
                Item::Timestamp(n) => Some(n.clone()),
                _ => None,
            })
            .unwrap_or_else(|| ts.clone());
        // Where the buckets start.
        let mut filter: Vec<String> = select.selection.iter().map(|w| format!("({w})")).collect();
        let lit = |v: &str| format!("'{}'", v.replace('\'', "''"));
        if let Some(f) = &s.from {
            filter.push(format!("{ts_sql} >= {}", lit(f)));
        }
        if let Some(t) = &s.to {
            filter.push(format!("{ts_sql} < {}", lit(t)));
        }
        let where_sql = if filter.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filter.join(" AND "))
        };
        let stride = lit(&s.stride.text());
        let zone = match &s.align {
            Align::Calendar { zone: Some(z), .. } => format!(", {}", lit(z)),
            _ => String::new(),
        };
        let origin = match (&s.align, &s.from) {
            (Align::Calendar { offset, .. }, _) => lit(&crate::sql::interval::literal(*offset)),
            (Align::FirstObservation, Some(f)) => lit(f),
            (Align::FirstObservation, None) => {
                format!("(SELECT min({ts_sql}) FROM {from_sql}{where_sql})")
            }
        };
        let bucket = format!("timestamp_floor({stride}, {ts_sql}, {origin}{zone})");
        let mut agg_cols = vec![format!("{bucket} AS __b")];
        agg_cols.extend(
            keys.iter()
                .enumerate()
                .map(|(i, k)| format!("{k} AS __k{i}")),
        );
        agg_cols.extend(
            aggs.iter()
                .enumerate()
                .map(|(i, a)| format!("{a} AS __a{i}")),
        );
        let mut group = vec![bucket.clone()];
        group.extend(keys.iter().cloned());
        let mut sql = format!(
            "WITH __agg AS (SELECT {} FROM {from_sql}{where_sql} GROUP BY {})",
            agg_cols.join(", "),
            group.join(", ")
        );
        let key_cols: Vec<String> = (0..keys.len()).map(|i| format!("__k{i}")).collect();
        let fills: Vec<Fill> = match s.fill.len() {
            0 => vec![Fill::None; aggs.len()],
            1 => vec![s.fill[0].clone(); aggs.len()],
            n if n == aggs.len() => s.fill.clone(),
            n => {
                return Err(err(&format!(
                    "FILL has {n} values for {} aggregates: give one, or one per aggregate",
                    aggs.len()
                )));
            }
        };
        let filled = fills.iter().any(|f| *f != Fill::None);
        if filled && fills.contains(&Fill::None) {
            return Err(err("FILL(NONE) cannot be mixed with other fills"));
        }
        let source = if filled {
            let bounds = match (&s.from, &s.to) {
                (Some(f), Some(t)) => format!(
                    "SELECT timestamp_floor({stride}, {}, {origin}{zone}) AS lo, timestamp_floor({stride}, dateadd('U', -1, {}), {origin}{zone}) AS hi",
                    lit(f),
                    lit(t)
                ),
                _ => "SELECT min(__b) AS lo, max(__b) AS hi FROM __agg".to_string(),
            };
            sql.push_str(&format!(
                ", __bounds AS ({bounds}), __grid AS (SELECT unnest(sample_buckets(lo, hi, {stride}{zone})) AS __b FROM __bounds)"
            ));
            let on: Vec<String> = std::iter::once("a.__b = g.__b".to_string())
                .chain(
                    key_cols
                        .iter()
                        .map(|k| format!("(a.{k} IS NOT DISTINCT FROM k.{k})")),
                )
                .collect();
            let (keys_cte, cross, key_sel) = if keys.is_empty() {
                (String::new(), String::new(), String::new())
            } else {
                (
                    format!(
                        ", __keys AS (SELECT DISTINCT {} FROM __agg)",
                        key_cols.join(", ")
                    ),
                    " CROSS JOIN __keys k".to_string(),
                    key_cols.iter().map(|k| format!(", k.{k}")).collect(),
                )
            };
            let agg_sel: String = (0..aggs.len()).map(|i| format!(", a.__a{i}")).collect();
            sql.push_str(&format!(
                "{keys_cte}, __full AS (SELECT g.__b{key_sel}{agg_sel} FROM __grid g{cross} LEFT JOIN __agg a ON {})",
                on.join(" AND ")
            ));
            "__full"
        } else {
            "__agg"
        };
        let part = if key_cols.is_empty() {
            String::new()
        } else {
            format!("PARTITION BY {} ", key_cols.join(", "))
        };
        let before =
            format!("({part}ORDER BY __b ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)");
        let after =
            format!("({part}ORDER BY __b ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)");
        let fill_expr = |i: usize| -> String {
            let a = format!("__a{i}");
            match &fills[i] {
                Fill::None | Fill::Null => a,
                Fill::Value(v) => format!("COALESCE({a}, {v})"),
                Fill::Prev => format!("last_value({a}) IGNORE NULLS OVER {before}"),
                Fill::Linear => {
                    let at = format!("CASE WHEN {a} IS NOT NULL THEN CAST(__b AS BIGINT) END");
                    format!(
                        "CASE WHEN {a} IS NOT NULL THEN CAST({a} AS DOUBLE) ELSE \
                         last_value({a}) IGNORE NULLS OVER {before} + \
                         (first_value({a}) IGNORE NULLS OVER {after} - last_value({a}) IGNORE NULLS OVER {before}) * \
                         CAST(CAST(__b AS BIGINT) - last_value({at}) IGNORE NULLS OVER {before} AS DOUBLE) / \
                         CAST(first_value({at}) IGNORE NULLS OVER {after} - last_value({at}) IGNORE NULLS OVER {before} AS DOUBLE) END"
                    )
                }
            }
        };
        let select_cols: Vec<String> = items
            .iter()
            .map(|i| match i {
                Item::Timestamp(n) => format!("__b AS {}", quote(n)),
                Item::Key(n, k) => format!("__k{k} AS {}", quote(n)),
                Item::Aggregate(n, k) => format!("{} AS {}", fill_expr(*k), quote(n)),
            })
            .collect();
        let order = match &query.order_by {
            Some(o) => o.to_string(),
            None => {
                let mut by = vec![quote(&ts_name)];
                by.extend(items.iter().filter_map(|i| match i {
                    Item::Key(n, _) => Some(quote(n)),
                    _ => None,
                }));
                if items.iter().any(|i| matches!(i, Item::Timestamp(_))) {
                    format!("ORDER BY {}", by.join(", "))
                } else {
                    "ORDER BY __b".to_string()
                }
            }
        };
        let limit = query
            .limit_clause
            .as_ref()
            .map(|l| format!(" {l}"))
            .unwrap_or_default();
        // ORDER BY the output names needs them in an outer query when the
        // timestamp is not selected (`ORDER BY __b` then reads the source).
        let body =
            if items.iter().any(|i| matches!(i, Item::Timestamp(_))) || query.order_by.is_some() {
                format!(
                    "SELECT * FROM (SELECT {} FROM {source}) {order}{limit}",
                    select_cols.join(", ")
                )
            } else {
                format!(
                    "SELECT {} FROM {source} {order}{limit}",
                    select_cols.join(", ")
                )
            };
        sql.push(' ');
        sql.push_str(&body);
        tracing::debug!(sql = sql.as_str(), "SAMPLE BY rewritten");
        crate::sql::parse_query(&sql)
    }
}
