//! Each exported column's Parquet encoding, chosen from its first rows
//! rather than from its type alone.
//!
//! Integers and timestamps whose values span few bits (a station number,
//! a wind direction, a temperature) or that arrive in order (the
//! designated timestamp) are written DELTA_BINARY_PACKED: each value
//! takes the bits of its difference from the last, with no hashing, where
//! PLAIN spends 8 bytes on it. Columns with few distinct values among
//! many rows get a dictionary, as text columns always do. Other columns
//! (floating point, wide integers in no order) stay PLAIN. The choice is
//! made once per export, on its first batch, and never changes a value.

use std::collections::HashSet;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::parquet::basic::Encoding;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;

/// A column with at most one distinct value in this many sampled rows
/// gets a dictionary.
const DICTIONARY_RATIO: usize = 16;

/// What the sample says of one integer column.
#[derive(Debug, PartialEq, Eq)]
enum Fit {
    /// Non-decreasing: differences are small whatever the range.
    Ordered,
    /// Few distinct values.
    Dictionary,
    /// Values within a range this many bits wide.
    Narrow(u32),
    /// Nothing to gain over PLAIN.
    Plain,
}

/// `props` with an encoding fitted to each integer or timestamp column of
/// `sample`; other columns as they were.
pub fn fitted(props: WriterProperties, sample: &RecordBatch) -> WriterProperties {
    let mut b = props.into_builder();
    for (field, array) in sample.schema().fields().iter().zip(sample.columns()) {
        let Some(width) = integer_width(field.data_type()) else {
            continue;
        };
        let path = ColumnPath::from(field.name().as_str());
        match fit(array) {
            Fit::Ordered => b = b.set_column_encoding(path, Encoding::DELTA_BINARY_PACKED),
            Fit::Dictionary => b = b.set_column_dictionary_enabled(path, true),
            // A difference of two values in range takes one bit more
            // than the range; worth it when that saves a byte or more.
            Fit::Narrow(bits) if bits + 1 + 8 <= width => {
                b = b.set_column_encoding(path, Encoding::DELTA_BINARY_PACKED)
            }
            Fit::Narrow(_) | Fit::Plain => {}
        }
    }
    b.build()
}

/// The bits of an integer-like type's values, `None` for other types.
fn integer_width(t: &DataType) -> Option<u32> {
    Some(match t {
        DataType::Int8 | DataType::UInt8 => 8,
        DataType::Int16 | DataType::UInt16 => 16,
        DataType::Int32 | DataType::UInt32 | DataType::Date32 => 32,
        DataType::Int64 | DataType::Timestamp(..) | DataType::Date64 => 64,
        _ => return None,
    })
}

fn fit(array: &ArrayRef) -> Fit {
    // Every integer type here widens to Int64 without loss (UInt64, which
    // may not, is not one of them).
    let Ok(values) = cast(array, &DataType::Int64) else {
        return Fit::Plain;
    };
    let values = values.as_primitive::<Int64Type>();
    let present: Vec<i64> = values.iter().flatten().collect();
    if present.len() < 2 {
        return Fit::Plain;
    }
    if present.windows(2).all(|w| w[0] <= w[1]) {
        return Fit::Ordered;
    }
    let distinct: HashSet<i64> = present.iter().copied().collect();
    if distinct.len() * DICTIONARY_RATIO <= present.len() {
        return Fit::Dictionary;
    }
    let (lo, hi) = distinct
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = (hi as i128 - lo as i128) as u128;
    Fit::Narrow(128 - range.leading_zeros())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int32Array, Int64Array};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn chosen_by_the_values() {
        let n = 4096;
        let ordered = Int64Array::from_iter_values((0..n).map(|i| 1_700_000_000_000_000 + i * 997));
        let few = Int32Array::from_iter_values((0..n).map(|i| (i % 100) as i32));
        let narrow = Int64Array::from_iter_values((0..n).map(|i| (i * 7919) % 10_000));
        let wide =
            Int64Array::from_iter_values((0..n).map(|i| i.wrapping_mul(0x1E37_79B9_7F4A_7C15)));
        let float = Float64Array::from_iter_values((0..n).map(|i| i as f64 * 0.5));
        let schema = Arc::new(Schema::new(
            ["ordered", "few", "narrow", "wide", "float"]
                .iter()
                .zip([
                    DataType::Int64,
                    DataType::Int32,
                    DataType::Int64,
                    DataType::Int64,
                    DataType::Float64,
                ])
                .map(|(n, t)| Field::new(*n, t, true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(ordered),
                Arc::new(few),
                Arc::new(narrow),
                Arc::new(wide),
                Arc::new(float),
            ],
        )
        .unwrap();
        let props = fitted(
            WriterProperties::builder()
                .set_dictionary_enabled(false)
                .build(),
            &batch,
        );
        let col = |n: &str| ColumnPath::from(n);
        assert_eq!(
            props.encoding(&col("ordered")),
            Some(Encoding::DELTA_BINARY_PACKED)
        );
        assert!(props.dictionary_enabled(&col("few")));
        assert_eq!(
            props.encoding(&col("narrow")),
            Some(Encoding::DELTA_BINARY_PACKED)
        );
        assert_eq!(props.encoding(&col("wide")), None);
        assert!(!props.dictionary_enabled(&col("wide")));
        assert_eq!(props.encoding(&col("float")), None);
    }
}
