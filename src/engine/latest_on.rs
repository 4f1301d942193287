//! LATEST ON over the newest partitions only: the relation is limited to
//! the rows at or after a time no key's newest row is before, so the
//! provider prunes the older files. Two ways to find that time:
//!
//! - From the files alone, for one key column and no WHERE: the files'
//!   dictionary pages give each file's distinct keys (`Table::file_keys`).
//!   Taken newest first, the first files that between them hold every key
//!   of the table have a row of each key, so every key's newest row is at
//!   or after the oldest row of those files. No rows are read.
//! - Otherwise by the plan the query module leaves beside the query (see
//!   `query::latest_on::Bound`): the oldest of the keys' newest times
//!   among the rows the WHERE keeps. The rows of every other column are
//!   then read from the newest files only.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, TimeUnit, TimestampMicrosecondType, TimestampNanosecondType,
};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;

use super::Engine;
use crate::catalog::file_keys::FileKeys;
use crate::error::{Error, Result};
use crate::query::relations::Relations;
use crate::storage::dictionary::Distinct;

/// At most this many keys take the path through the files' dictionaries:
/// above it the dictionaries cost more than they save.
const MAX_KEYS: usize = 100_000;

/// At most this many key values are held for all files together (each
/// file's set is kept until the bound is found): tens of MB at most.
const MAX_HELD: usize = 1_000_000;

/// Nor tables of more files than this: each file's footer and dictionary
/// pages are read on every query (the 100-file bench table's whole LATEST ON
/// took 19 to 28 ms), and past this the aggregation is the cheaper way.
const MAX_FILES: usize = 512;

impl Engine {
    /// Bounds from the files' dictionaries, for the LATEST ON relations of
    /// one key column and no WHERE on a table's designated timestamp.
    pub(super) async fn bound_by_files(&self, relations: &mut Relations) -> Result<()> {
        for spec in relations.latest.iter_mut() {
            let ([key], None, true) = (spec.keys.as_slice(), &spec.filter, spec.designated) else {
                continue;
            };
            let Ok(table) = self.table_of_relation(&spec.table, Some(spec.position)) else {
                continue;
            };
            let key = crate::sql::parser::ident_name(key);
            if !table.meta().columns.iter().any(|c| c.name == key) {
                continue;
            }
            let files = tokio::task::spawn_blocking(move || {
                table.file_keys(&key, MAX_KEYS, MAX_HELD, MAX_FILES)
            })
            .await
            .map_err(|e| Error::Internal(format!("LATEST ON key lookup: {e}")))??;
            if let Some(bound) = files.as_deref().and_then(bound_from_files) {
                spec.bound = Some(bound);
            }
        }
        Ok(())
    }

    /// Runs a bound plan: its one value, in UTC microseconds (None when no
    /// row passes the WHERE).
    pub(super) async fn run_bound(
        &self,
        plan: LogicalPlan,
        params: &[ScalarValue],
    ) -> Result<Option<i64>> {
        let plan = super::with_params(plan, params)?;
        let rows = self.stream(plan).await?.collect().await?;
        Ok(rows.first().and_then(|b| micros(b.column(0))))
    }
}

/// The first value of a designated timestamp column (TIMESTAMP or
/// TIMESTAMP_NS) as UTC microseconds, rounded down, so that a bound at it
/// keeps that row (a cast to microseconds would round a negative time up).
fn micros(column: &dyn Array) -> Option<i64> {
    if column.is_empty() || column.is_null(0) {
        return None;
    }
    Some(match column.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            column.as_primitive::<TimestampMicrosecondType>().value(0)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => column
            .as_primitive::<TimestampNanosecondType>()
            .value(0)
            .div_euclid(1_000),
        _ => return None,
    })
}

/// From the files newest first: the oldest row of the fewest newest files
/// holding every value of the key column; None when that takes every file.
fn bound_from_files(files: &[FileKeys]) -> Option<i64> {
    let mut all = Distinct::default();
    for f in files {
        all.extend(&f.keys);
    }
    let mut seen = Distinct::default();
    let needed = files.iter().position(|f| {
        seen.extend(&f.keys);
        seen.covers(&all)
    })? + 1;
    let bound = files[..needed].iter().map(|f| f.min_ts).min()?;
    // A bound at or before every row reads the whole table anyway.
    (bound > files.iter().map(|f| f.min_ts).min()?).then_some(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(min_ts: i64, max_ts: i64, keys: &[&str]) -> FileKeys {
        FileKeys {
            min_ts,
            max_ts,
            keys: Distinct {
                values: keys.iter().map(|s| s.to_string()).collect(),
                null: false,
            },
        }
    }

    #[test]
    fn the_newest_files_holding_every_key_bound_the_scan() {
        // Newest first: day 3 has a and b, day 2 has c, day 1 a, day 0 d.
        let files = [
            file(30, 39, &["a", "b"]),
            file(20, 29, &["c"]),
            file(10, 19, &["a"]),
            file(0, 9, &["d"]),
        ];
        assert_eq!(
            bound_from_files(&files),
            None,
            "d is only in the oldest file"
        );
        assert_eq!(bound_from_files(&files[..3]), Some(20));
        // Overlapping files: the oldest row of those needed.
        let files = [
            file(25, 39, &["a"]),
            file(20, 29, &["b"]),
            file(0, 19, &["a"]),
        ];
        assert_eq!(bound_from_files(&files), Some(20));
        // A NULL key counts, and only a file with NULLs covers it.
        let mut files = vec![file(10, 19, &["a"]), file(0, 9, &["a"])];
        files[1].keys.null = true;
        assert_eq!(bound_from_files(&files), None);
    }

    #[test]
    fn bounds_round_down_to_microseconds() {
        use datafusion::arrow::array::TimestampNanosecondArray;
        let ns = TimestampNanosecondArray::from(vec![-1_500]);
        assert_eq!(micros(&ns), Some(-2));
        let ns = TimestampNanosecondArray::from(vec![Some(1_999)]);
        assert_eq!(micros(&ns), Some(1));
        let none = TimestampNanosecondArray::from(vec![None::<i64>]);
        assert_eq!(micros(&none), None);
    }
}
