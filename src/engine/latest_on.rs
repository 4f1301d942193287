//! LATEST ON over the newest partitions only, when the table's files say
//! where every key is.
//!
//! The files' dictionary pages give the distinct keys of each file
//! (`Table::file_keys`). Taken newest first, the first files that between
//! them hold every key of the table bound the query: each key has a row at
//! or after the oldest row of those files, so its newest row is there too,
//! and the query reads `ts >= bound` (the provider prunes the older files).
//! That is exact for one key column and no WHERE. With a WHERE, or with
//! several key columns (whose combinations the per-column sets do not
//! give), the bound is checked: the keys found at or after it must number
//! every key (the product of the columns' counts); if not, a wider bound
//! is tried once, then the whole table is read.

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast as sp;

use super::Engine;
use crate::catalog::file_keys::FileKeys;
use crate::error::{Error, Result};
use crate::sql::{LatestOn, Statement};
use crate::storage::dictionary::Distinct;

/// At most this many keys (per column, and combinations) take the narrow
/// path: "few keys". Above it the dictionaries cost more than they save.
const MAX_KEYS: usize = 100_000;

impl Engine {
    /// The LATEST ON query `general` (over the whole table), narrowed to the
    /// newest files that hold every key when the files show which those are.
    pub(super) async fn latest_on(
        &self,
        general: Box<sp::Query>,
        l: &LatestOn,
        params: &[ScalarValue],
    ) -> Result<Box<sp::Query>> {
        let Some(plan) = self.latest_bounds(l).await? else {
            return Ok(general);
        };
        if plan.exact {
            return reparse(&l.sql(Some(plan.bounds[0])));
        }
        for &bound in &plan.bounds {
            let rows = self
                .query(parse_one(&l.count_sql(bound))?, params)
                .await?
                .collect()
                .await?;
            let found = rows
                .first()
                .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>())
                .filter(|c| !c.is_empty())
                .map_or(0, |c| c.value(0));
            if usize::try_from(found).is_ok_and(|n| n >= plan.keys) {
                return reparse(&l.sql(Some(bound)));
            }
        }
        Ok(general)
    }

    /// Where the newest files holding every key start, or None when the
    /// whole table must be read anyway.
    async fn latest_bounds(&self, l: &LatestOn) -> Result<Option<Bounds>> {
        let Ok(table) = self.table_of_relation(&l.relation, Some(l.position)) else {
            return Ok(None);
        };
        let meta = table.meta();
        let name = |written: &str| {
            let ident = sp::Ident::from(written);
            let parsed = match written.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(q) => sp::Ident::with_quote('"', q.replace("\"\"", "\"")),
                None => ident,
            };
            crate::sql::parser::ident_name(&parsed)
        };
        if meta.timestamp.as_deref() != Some(name(&l.ts).as_str()) {
            return Ok(None);
        }
        let keys: Vec<String> = l.keys.iter().map(|k| name(k)).collect();
        if !keys
            .iter()
            .all(|k| meta.columns.iter().any(|c| &c.name == k))
        {
            return Ok(None);
        }
        let files = tokio::task::spawn_blocking(move || {
            let columns: Vec<&str> = keys.iter().map(String::as_str).collect();
            table.file_keys(&columns, MAX_KEYS)
        })
        .await
        .map_err(|e| Error::Internal(format!("LATEST ON key lookup: {e}")))??;
        Ok(files.and_then(|f| Bounds::of(&f, l.keys.len() == 1 && !l.has_filter())))
    }
}

/// The bounds to try, newest first.
struct Bounds {
    /// Every key of the table, counted as the product of the columns'.
    keys: usize,
    /// True when the first bound needs no check.
    exact: bool,
    bounds: Vec<i64>,
}

impl Bounds {
    /// From the files newest first: the oldest row of the fewest newest
    /// files holding every value of each key column, then of four times as
    /// many files; None when those are all the files.
    fn of(files: &[FileKeys], exact: bool) -> Option<Bounds> {
        let columns = files.first()?.keys.len();
        let mut all = vec![Distinct::default(); columns];
        for f in files {
            for (a, k) in all.iter_mut().zip(&f.keys) {
                a.extend(k);
            }
        }
        let keys = all
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.len()))
            .filter(|&n| n <= MAX_KEYS)?;
        let mut seen = vec![Distinct::default(); columns];
        let mut needed = None;
        for (i, f) in files.iter().enumerate() {
            for (s, k) in seen.iter_mut().zip(&f.keys) {
                s.extend(k);
            }
            if seen.iter().zip(&all).all(|(s, a)| s.covers(a)) {
                needed = Some(i + 1);
                break;
            }
        }
        let oldest = |n: usize| files[..n].iter().map(|f| f.min_ts).min();
        let first = needed.filter(|&n| n < files.len())?;
        let mut bounds = vec![oldest(first)?];
        let wider = first.saturating_mul(4);
        if !exact && wider < files.len() {
            bounds.extend(oldest(wider));
        }
        // A bound at or before every row reads the whole table anyway.
        let table_start = files.iter().map(|f| f.min_ts).min()?;
        bounds.retain(|&b| b > table_start);
        (!bounds.is_empty()).then_some(Bounds {
            keys,
            exact,
            bounds,
        })
    }
}

fn parse_one(sql: &str) -> Result<sp::Statement> {
    match crate::sql::parse(sql)?.pop() {
        Some(Statement::Query { query, .. }) => Ok(sp::Statement::Query(query)),
        _ => Err(Error::Internal(format!("LATEST ON rewrite: {sql}"))),
    }
}

fn reparse(sql: &str) -> Result<Box<sp::Query>> {
    match parse_one(sql)? {
        sp::Statement::Query(q) => Ok(q),
        _ => unreachable!("parse_one returns queries"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(min_ts: i64, max_ts: i64, keys: &[&[&str]]) -> FileKeys {
        FileKeys {
            min_ts,
            max_ts,
            keys: keys
                .iter()
                .map(|k| Distinct {
                    values: k.iter().map(|s| s.to_string()).collect(),
                    null: false,
                })
                .collect(),
        }
    }

    #[test]
    fn the_newest_files_holding_every_key_bound_the_scan() {
        // Newest first: day 3 has a and b, day 2 has c, day 1 a, day 0 d.
        let files = [
            file(30, 39, &[&["a", "b"]]),
            file(20, 29, &[&["c"]]),
            file(10, 19, &[&["a"]]),
            file(0, 9, &[&["d"]]),
        ];
        assert!(
            Bounds::of(&files, true).is_none(),
            "d is only in the oldest file"
        );
        let b = Bounds::of(&files[..3], true).unwrap();
        assert_eq!((b.keys, b.exact, b.bounds.as_slice()), (3, true, &[20][..]));
        // Checked bounds: the fewest files, then four times as many.
        let files: Vec<FileKeys> = (0..10)
            .rev()
            .map(|d| file(d * 10, d * 10 + 9, &[&["a", "b"], &["x"]]))
            .collect();
        let b = Bounds::of(&files, false).unwrap();
        assert_eq!((b.keys, b.bounds.as_slice()), (2, &[90, 60][..]));
        // A NULL key counts, and only a file with NULLs covers it.
        let mut files = vec![file(10, 19, &[&["a"]]), file(0, 9, &[&["a"]])];
        files[1].keys[0].null = true;
        assert!(Bounds::of(&files, true).is_none());
    }
}
