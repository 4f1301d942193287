//! QuestDB's ASOF JOIN and LT JOIN: each row of the left table meets the
//! newest row of the right table at or before its time (ASOF) or strictly
//! before it (LT), with the same keys (`ON (k)` or `ON a.x = b.y`), or
//! NULLs. Both tables' rows are merged in time order (a sort of the two
//! inputs by key and time, not a cross join): the right rows are numbered,
//! each left row takes the number of the last right row before it (a
//! window over the merged rows), and the right table is joined back by
//! that number.
//!
//! SPLICE JOIN is the full form: every row of either table, each with the
//! newest row of the other table at or before it (a right row sorts before
//! a left row of the same time, so that left row sees it, as in ASOF).
//! Both tables are numbered, merged the same way, and each merged row takes
//! the last number of each side; both tables are joined back.

use datafusion::sql::sqlparser::ast as sp;

use super::Engine;
use crate::error::{Error, Result};
use crate::sql::{ASOF_JOIN_MARKER, LT_JOIN_MARKER, SPLICE_JOIN_MARKER};

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn err(m: &str) -> Error {
    Error::invalid(m.to_string())
}

/// A table of the join: its SQL name, the name the query uses for it,
/// its columns and its designated timestamp.
struct Side {
    sql: String,
    alias: String,
    columns: Vec<String>,
    ts: String,
}

impl Engine {
    fn side(&self, relation: &sp::TableFactor) -> Result<Side> {
        let sp::TableFactor::Table { name, alias, .. } = relation else {
            return Err(err("ASOF, LT and SPLICE JOIN join two tables"));
        };
        let t = self.table_of_relation(name, None)?;
        let table = crate::sql::parser::ident_name(
            name.0
                .last()
                .and_then(|p| p.as_ident())
                .ok_or_else(|| err("ASOF, LT and SPLICE JOIN join two tables"))?,
        );
        let meta = t.meta();
        let ts = meta.timestamp.clone().ok_or_else(|| {
            err(&format!(
                "ASOF, LT and SPLICE JOIN need designated timestamps: table '{table}' has none"
            ))
        })?;
        Ok(Side {
            sql: name.to_string(),
            // Always quoted, as the rewrite writes and compares it.
            alias: quote(
                &alias
                    .as_ref()
                    .map(|a| crate::sql::parser::ident_name(&a.name))
                    .unwrap_or_else(|| table.clone()),
            ),
            columns: meta.columns.iter().map(|c| c.name.clone()).collect(),
            ts,
        })
    }

    /// Rewrites an ASOF, LT or SPLICE join of the query's SELECT into
    /// plain SQL.
    pub(super) fn asof_join(&self, mut query: Box<sp::Query>) -> Result<Box<sp::Query>> {
        let text = query.to_string();
        if !MARKERS.iter().any(|m| text.contains(m)) {
            return Ok(query);
        }
        let sp::SetExpr::Select(select) = query.body.as_mut() else {
            return Err(err("ASOF, LT and SPLICE JOIN need a plain SELECT"));
        };
        let [from] = select.from.as_mut_slice() else {
            return Err(err("ASOF, LT and SPLICE JOIN join two tables"));
        };
        let [join] = from.joins.as_slice() else {
            return Err(err("ASOF, LT and SPLICE JOIN join two tables, one join"));
        };
        let constraint = match &join.join_operator {
            sp::JoinOperator::Left(c) | sp::JoinOperator::LeftOuter(c) => c,
            _ => return Err(err("ASOF, LT and SPLICE JOIN join two tables, one join")),
        };
        let (a, b) = (self.side(&from.relation)?, self.side(&join.relation)?);
        let asof = constraint_text(constraint).contains(ASOF_JOIN_MARKER);
        // The key pairs (left column, right column).
        let mut keys: Vec<(String, String)> = Vec::new();
        match constraint {
            sp::JoinConstraint::Using(names) => {
                for n in names {
                    let n = n.to_string();
                    if !MARKERS.iter().any(|m| n.contains(m)) {
                        let n = n.trim_matches('"').to_lowercase();
                        keys.push((quote(&n), quote(&n)));
                    }
                }
            }
            sp::JoinConstraint::On(e) => on_keys(e, &a.alias, &b.alias, &mut keys)?,
            _ => {}
        }
        if constraint_text(constraint).contains(SPLICE_JOIN_MARKER) {
            let (from_sql, order) = splice(&a, &b, &keys);
            let projection = projection(&select.projection, &a, &b, "__aid");
            let shell = format!("SELECT {projection} FROM {from_sql}");
            replace_from(select, &shell)?;
            if query.order_by.is_none() {
                query.order_by = Some(order);
            }
            return Ok(query);
        }
        let (sa, sb) = if asof { (1, 0) } else { (0, 1) };
        // A filter on the left table's columns alone is applied before the
        // merge (each left row's match does not depend on the other left
        // rows), and right rows after the last left row cannot match.
        let (left_filter, right_bound) = match &select.selection {
            Some(w) if only_left(w, &a, &b) => (
                format!(" AS {} WHERE {w}", a.alias),
                format!(
                    " WHERE {tb} <= (SELECT max({ta}) FROM {asql} AS {al} WHERE {w})",
                    tb = quote(&b.ts),
                    ta = quote(&a.ts),
                    asql = a.sql,
                    al = a.alias,
                ),
            ),
            _ => (String::new(), String::new()),
        };
        let a_cols: Vec<String> = a.columns.iter().map(|c| quote(c)).collect();
        let b_order: Vec<String> = std::iter::once(quote(&b.ts))
            .chain(b.columns.iter().map(|c| quote(c)))
            .collect();
        let numbered = format!(
            "(SELECT *, row_number() OVER (ORDER BY {}) AS __bid FROM {}{right_bound})",
            b_order.join(", "),
            b.sql
        );
        let ka: String = keys
            .iter()
            .enumerate()
            .map(|(i, (k, _))| format!(", {k} AS __k{i}"))
            .collect();
        let kb: String = keys
            .iter()
            .enumerate()
            .map(|(i, (_, k))| format!(", {k} AS __k{i}"))
            .collect();
        let nulls: Vec<String> = a_cols.iter().map(|c| format!("NULL AS {c}")).collect();
        let part = if keys.is_empty() {
            String::new()
        } else {
            format!(
                "PARTITION BY {} ",
                (0..keys.len())
                    .map(|i| format!("__k{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let merged = format!(
            "SELECT {cols}{ka}, {ta} AS __t, {sa} AS __s, CAST(NULL AS BIGINT) AS __bid FROM {asql}{left_filter} \
             UNION ALL SELECT {nulls}{kb}, {tb} AS __t, {sb} AS __s, __bid FROM {numbered} AS __bn",
            cols = a_cols.join(", "),
            ta = quote(&a.ts),
            asql = a.sql,
            nulls = nulls.join(", "),
            tb = quote(&b.ts),
        );
        let left = format!(
            "(SELECT {cols}, __m FROM (SELECT {cols}, __s, last_value(__bid) IGNORE NULLS OVER ({part}ORDER BY __t, __s ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __m FROM ({merged}) AS __u) AS __w WHERE __s = {sa}) AS {al}",
            cols = a_cols.join(", "),
            al = a.alias,
        );
        let from_sql = format!(
            "{left} LEFT JOIN {numbered} AS {bl} ON {bl}.__bid = {al}.__m",
            bl = b.alias,
            al = a.alias
        );
        let shell = format!(
            "SELECT {} FROM {from_sql}",
            projection(&select.projection, &a, &b, "__m")
        );
        replace_from(select, &shell)?;
        Ok(query)
    }
}

/// The join's markers.
const MARKERS: [&str; 3] = [ASOF_JOIN_MARKER, LT_JOIN_MARKER, SPLICE_JOIN_MARKER];

/// The SELECT list over the rewritten join: `*` (and `a.*`, `b.*`) leave
/// out the numbers the rewrite adds (`left_number` on the left side,
/// `__bid` on the right).
fn projection(items: &[sp::SelectItem], a: &Side, b: &Side, left_number: &str) -> String {
    let mut out = Vec::new();
    for item in items {
        out.push(match item {
            sp::SelectItem::Wildcard(_) => format!(
                "{}.* EXCLUDE ({left_number}), {}.* EXCLUDE (__bid)",
                a.alias, b.alias
            ),
            sp::SelectItem::QualifiedWildcard(
                sp::SelectItemQualifiedWildcardKind::ObjectName(n),
                _,
            ) if last_quoted(n) == a.alias => format!("{}.* EXCLUDE ({left_number})", a.alias),
            sp::SelectItem::QualifiedWildcard(
                sp::SelectItemQualifiedWildcardKind::ObjectName(n),
                _,
            ) if last_quoted(n) == b.alias => format!("{}.* EXCLUDE (__bid)", b.alias),
            other => other.to_string(),
        });
    }
    out.join(", ")
}

/// Puts the FROM and SELECT list of `shell` (SQL text) into `select`.
fn replace_from(select: &mut sp::Select, shell: &str) -> Result<()> {
    let parsed = crate::sql::parse_query(shell)?;
    let sp::SetExpr::Select(new) = *parsed.body else {
        return Err(Error::Internal(format!("ASOF JOIN rewrite: {shell}")));
    };
    select.from = new.from;
    select.projection = new.projection;
    Ok(())
}

/// SPLICE JOIN's FROM (SQL text) and its order: time, then the right row
/// before the left row of the same time.
fn splice(a: &Side, b: &Side, keys: &[(String, String)]) -> (String, sp::OrderBy) {
    let numbered = |s: &Side, id: &str| {
        let order: Vec<String> = std::iter::once(quote(&s.ts))
            .chain(s.columns.iter().map(|c| quote(c)))
            .collect();
        format!(
            "(SELECT *, row_number() OVER (ORDER BY {}) AS {id} FROM {})",
            order.join(", "),
            s.sql
        )
    };
    let (na, nb) = (numbered(a, "__aid"), numbered(b, "__bid"));
    let key_cols = |left: bool| -> String {
        keys.iter()
            .enumerate()
            .map(|(i, (ka, kb))| format!("{} AS __k{i}, ", if left { ka } else { kb }))
            .collect()
    };
    let part = if keys.is_empty() {
        String::new()
    } else {
        let k: Vec<String> = (0..keys.len()).map(|i| format!("__k{i}")).collect();
        format!("PARTITION BY {} ", k.join(", "))
    };
    let window =
        format!("OVER ({part}ORDER BY __t, __s ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)");
    let merged = format!(
        "SELECT {ka}{ta} AS __t, 1 AS __s, __aid, CAST(NULL AS BIGINT) AS __bid FROM {na} AS __an \
         UNION ALL SELECT {kb}{tb} AS __t, 0 AS __s, CAST(NULL AS BIGINT) AS __aid, __bid FROM {nb} AS __bn",
        ka = key_cols(true),
        kb = key_cols(false),
        ta = quote(&a.ts),
        tb = quote(&b.ts),
    );
    let pairs = format!(
        "(SELECT __t, __s, last_value(__aid) IGNORE NULLS {window} AS __ma, last_value(__bid) IGNORE NULLS {window} AS __mb FROM ({merged}) AS __u) AS __p"
    );
    let from = format!(
        "{pairs} LEFT JOIN {na} AS {al} ON {al}.__aid = __p.__ma LEFT JOIN {nb} AS {bl} ON {bl}.__bid = __p.__mb",
        al = a.alias,
        bl = b.alias,
    );
    let order = crate::sql::parse_query("SELECT 1 ORDER BY __p.__t, __p.__s, __p.__ma, __p.__mb")
        .ok()
        .and_then(|q| q.order_by);
    (from, order.expect("a constant ORDER BY parses"))
}

/// Whether `w` reads the left table's columns only.
fn only_left(w: &sp::Expr, a: &Side, b: &Side) -> bool {
    let mut left = true;
    let _ = sp::visit_expressions(w, |e| {
        match e {
            sp::Expr::CompoundIdentifier(p) if p.len() == 2 && quote_ident(&p[0]) != a.alias => {
                left = false;
            }
            sp::Expr::Identifier(i) => {
                let n = crate::sql::parser::ident_name(i);
                if !a.columns.contains(&n) || b.columns.contains(&n) {
                    left = false;
                }
            }
            sp::Expr::Subquery(_) | sp::Expr::Exists { .. } | sp::Expr::InSubquery { .. } => {
                left = false
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    left
}

fn constraint_text(c: &sp::JoinConstraint) -> String {
    match c {
        sp::JoinConstraint::On(e) => e.to_string(),
        sp::JoinConstraint::Using(n) => n
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// `a.x = b.y AND …` (and the marker's `IS NULL`) as key pairs.
fn on_keys(e: &sp::Expr, a: &str, b: &str, keys: &mut Vec<(String, String)>) -> Result<()> {
    match e {
        sp::Expr::BinaryOp {
            left,
            op: sp::BinaryOperator::And,
            right,
        } => {
            on_keys(left, a, b, keys)?;
            on_keys(right, a, b, keys)
        }
        sp::Expr::Nested(inner) => on_keys(inner, a, b, keys),
        sp::Expr::IsNull(m) if MARKERS.iter().any(|k| m.to_string().contains(k)) => Ok(()),
        sp::Expr::BinaryOp {
            left,
            op: sp::BinaryOperator::Eq,
            right,
        } => {
            let side = |x: &sp::Expr| match x {
                sp::Expr::CompoundIdentifier(p) if p.len() == 2 => Some((
                    quote_ident(&p[0]),
                    format!("\"{}\"", crate::sql::parser::ident_name(&p[1])),
                )),
                _ => None,
            };
            match (side(left), side(right)) {
                (Some((l, lc)), Some((r, rc))) if l == a && r == b => keys.push((lc, rc)),
                (Some((l, lc)), Some((r, rc))) if l == b && r == a => keys.push((rc, lc)),
                _ => {
                    return Err(err(
                        "an ASOF, LT or SPLICE JOIN's ON compares columns of the two tables: a.x = b.y",
                    ));
                }
            }
            Ok(())
        }
        _ => Err(err(
            "an ASOF, LT or SPLICE JOIN's ON compares columns of the two tables: a.x = b.y",
        )),
    }
}

fn quote_ident(i: &sp::Ident) -> String {
    quote(&crate::sql::parser::ident_name(i))
}

fn last_quoted(n: &sp::ObjectName) -> String {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(quote_ident)
        .unwrap_or_default()
}
