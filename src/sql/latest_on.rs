//! QuestDB's `LATEST ON ts PARTITION BY keys` as SQL DataFusion plans: the
//! newest time of each key (one hash aggregation), the rows at that time
//! (a hash join on the keys, NULL matching NULL), then one row per key
//! among those few. No sort of the whole table.
//!
//! The same query can be limited to the rows at or after a time at or
//! before every key's newest row: the engine finds one (see
//! `engine::latest_on`), so only the newest partitions are read.

use datafusion::sql::sqlparser::ast as sp;

use super::interval;
use crate::error::{Error, Result};

/// The parts of one LATEST ON query, as SQL text.
#[derive(Debug, Clone)]
pub struct LatestOn {
    /// The table, as written in FROM.
    pub relation: sp::ObjectName,
    /// The name the query reads the table by (its alias, or its name).
    pub alias: String,
    /// The timestamp and key columns, as written; no timestamp for
    /// `LATEST BY`, which means the table's designated one (see
    /// [`LatestOn::on_designated`]).
    pub ts: Option<String>,
    pub keys: Vec<String>,
    projection: Vec<String>,
    filter: Option<String>,
    order: Option<String>,
    limit: String,
    /// Where the clause is in the statement, for errors.
    pub position: usize,
}

impl LatestOn {
    /// Reads the query's parts out of a SELECT that groups by the marker.
    pub(crate) fn of_query(
        q: &sp::Query,
        ts: Option<String>,
        keys: Vec<String>,
        position: usize,
    ) -> Result<LatestOn> {
        let err = |m: &str| Error::Syntax {
            message: m.to_string(),
            position,
        };
        let sp::SetExpr::Select(select) = q.body.as_ref() else {
            return Err(err("LATEST ON needs a plain SELECT"));
        };
        let [from] = select.from.as_slice() else {
            return Err(err("LATEST ON reads one table"));
        };
        let sp::TableFactor::Table { name, alias, .. } = &from.relation else {
            return Err(err("LATEST ON reads a table"));
        };
        if !from.joins.is_empty() {
            return Err(err("LATEST ON reads one table, without joins"));
        }
        let alias = match alias {
            Some(a) => a.name.to_string(),
            None => name.0.last().map(|p| p.to_string()).unwrap_or_default(),
        };
        let projection = select
            .projection
            .iter()
            .map(|p| match p {
                sp::SelectItem::Wildcard(_) => "* EXCLUDE (__latest_rn)".to_string(),
                p => p.to_string(),
            })
            .collect();
        let order = q.order_by.as_ref().map(|o| o.to_string());
        let limit = q
            .limit_clause
            .as_ref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        Ok(LatestOn {
            relation: name.clone(),
            alias,
            ts,
            keys,
            projection,
            filter: select.selection.as_ref().map(|w| w.to_string()),
            order,
            limit,
            position,
        })
    }

    /// `LATEST BY` made `LATEST ON designated PARTITION BY`: the table's
    /// designated timestamp, quoted as a column name.
    pub fn on_designated(mut self, designated: &str) -> LatestOn {
        if self.ts.is_none() {
            self.ts = Some(format!("\"{}\"", designated.replace('"', "\"\"")));
        }
        self
    }

    /// The timestamp column as SQL (empty before [`LatestOn::on_designated`]
    /// for `LATEST BY`; the engine resolves it before building the query).
    fn ts(&self) -> &str {
        self.ts.as_deref().unwrap_or_default()
    }

    /// True when the query has a WHERE (applied before the pick).
    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// ` WHERE …`: the query's filter and, given `from` (UTC µs), the
    /// rows at or after it.
    fn filter_sql(&self, from: Option<i64>) -> String {
        let bound =
            from.map(|t| format!("{}.{} >= '{}'", self.alias, self.ts(), interval::literal(t)));
        match (&self.filter, bound) {
            (Some(w), Some(b)) => format!(" WHERE ({w}) AND {b}"),
            (Some(w), None) => format!(" WHERE {w}"),
            (None, Some(b)) => format!(" WHERE {b}"),
            (None, None) => String::new(),
        }
    }

    /// The whole query, over the rows at or after `from` when given.
    pub fn sql(&self, from: Option<i64>) -> String {
        let (alias, ts, relation) = (&self.alias, self.ts(), &self.relation);
        let keys = self.keys.join(", ");
        let filter = self.filter_sql(from);
        // The newest times per key are the join's first (build) side: a
        // few rows, where the table would be millions. The keys get names of
        // their own so the WHERE's columns are the table's alone; every key
        // is a hash key with NULL matching NULL.
        let newest: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} AS __lk{i}"))
            .collect();
        let on: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("({alias}.{k} IS NOT DISTINCT FROM __latest.__lk{i})"))
            .chain(std::iter::once(format!(
                "({alias}.{ts} IS NOT DISTINCT FROM __latest.__latest_ts)"
            )))
            .collect();
        let candidates = format!(
            "SELECT {alias}.* FROM (SELECT {newest}, max({ts}) AS __latest_ts FROM {relation} AS {alias}{filter} GROUP BY {keys}) AS __latest JOIN {relation} AS {alias} ON {on}{filter}",
            newest = newest.join(", "),
            on = on.join(" AND "),
        );
        let order = match &self.order {
            Some(o) => o.clone(),
            None => format!("ORDER BY {ts}"),
        };
        format!(
            "SELECT {} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {ts} DESC) AS __latest_rn FROM ({candidates}) AS __c) AS {alias} WHERE __latest_rn = 1 {order}{}",
            self.projection.join(", "),
            self.limit,
        )
    }

    /// The oldest of the keys' newest times (among the rows the filter
    /// keeps): every key's newest row is at or after it.
    pub fn oldest_newest_sql(&self) -> String {
        format!(
            "SELECT min(__newest) FROM (SELECT max({ts}) AS __newest FROM {relation} AS {alias}{filter} GROUP BY {keys}) AS __n",
            ts = self.ts(),
            keys = self.keys.join(", "),
            relation = self.relation,
            alias = self.alias,
            filter = self.filter_sql(None),
        )
    }
}
