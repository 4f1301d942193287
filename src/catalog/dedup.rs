//! Deduplication (`DEDUP UPSERT KEYS`): of rows with equal values in the
//! key columns, the one written last is kept, as QuestDB's upsert does.

use std::collections::HashSet;

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};

use crate::error::Result;

/// The rows of `batches` (oldest first) without those a later row with
/// the same values in the `keys` columns replaces; NULLs are equal here.
pub fn last_per_key(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    keys: &[usize],
) -> Result<RecordBatch> {
    let all = concat_batches(schema, batches)?;
    let n = all.num_rows();
    if n == 0 || keys.is_empty() {
        return Ok(all);
    }
    let converter = RowConverter::new(
        keys.iter()
            .map(|&i| SortField::new(all.column(i).data_type().clone()))
            .collect(),
    )?;
    let columns: Vec<_> = keys.iter().map(|&i| all.column(i).clone()).collect();
    let rows = converter.convert_columns(&columns)?;
    let mut seen = HashSet::with_capacity(n);
    let mut keep = vec![false; n];
    for i in (0..n).rev() {
        keep[i] = seen.insert(rows.row(i));
    }
    if keep.iter().all(|k| *k) {
        return Ok(all);
    }
    Ok(filter_record_batch(&all, &BooleanArray::from(keep))?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn the_last_row_of_a_key_wins() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Int64, false),
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, false),
        ]));
        let batch = |t: Vec<i64>, k: Vec<Option<&str>>, v: Vec<i64>| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(t)),
                    Arc::new(StringArray::from(k)),
                    Arc::new(Int64Array::from(v)),
                ],
            )
            .unwrap()
        };
        let old = batch(
            vec![1, 1, 2],
            vec![Some("a"), Some("b"), None],
            vec![10, 20, 30],
        );
        let new = batch(
            vec![1, 2, 1],
            vec![Some("a"), None, Some("c")],
            vec![11, 31, 40],
        );
        let out = last_per_key(&schema, &[old, new], &[0, 1]).unwrap();
        let v: Vec<i64> = out
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec();
        assert_eq!(v, [20, 11, 31, 40]);
    }
}
