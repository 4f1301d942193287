//! Result rendering for HTTP: QuestDB's JSON dataset and CSV. Values pass
//! through the engine's presentation step first, so HTTP and pgwire show the
//! same thing.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, SchemaRef,
    TimeUnit, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};

use crate::catalog::ColumnType;
use crate::engine::ingest::{Dialect, FieldWriter};
use crate::engine::present::present_batch;
use crate::error::Result;

pub fn json_columns(schema: &SchemaRef) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": ColumnType::of_field(f).name()}))
            .collect(),
    )
}

/// One cell as text the way QuestDB writes it (timestamps as ISO-8601 UTC
/// with `Z`), or `None` for NULL.
enum Cell {
    Null,
    Number(Value),
    Bool(bool),
    Text(String),
}

/// Formats a timestamp value of `unit` as QuestDB does.
pub fn format_timestamp(v: i64, unit: TimeUnit) -> String {
    let (secs, nanos, digits) = match unit {
        TimeUnit::Second => (v, 0, 0),
        TimeUnit::Millisecond => (
            v.div_euclid(1_000),
            (v.rem_euclid(1_000) * 1_000_000) as u32,
            3,
        ),
        TimeUnit::Microsecond => (
            v.div_euclid(1_000_000),
            (v.rem_euclid(1_000_000) * 1_000) as u32,
            6,
        ),
        TimeUnit::Nanosecond => (
            v.div_euclid(1_000_000_000),
            v.rem_euclid(1_000_000_000) as u32,
            9,
        ),
    };
    let Some(dt) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return v.to_string();
    };
    match digits {
        3 => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        6 => dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        9 => dt.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        _ => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

fn cells(col: &ArrayRef) -> Result<Vec<Cell>> {
    macro_rules! nums {
        ($t:ty) => {{
            let a = col.as_primitive::<$t>();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        Cell::Null
                    } else {
                        Cell::Number(json!(a.value(i)))
                    }
                })
                .collect()
        }};
    }
    macro_rules! floats {
        ($t:ty) => {{
            let a = col.as_primitive::<$t>();
            (0..a.len())
                .map(|i| {
                    let v = a.value(i) as f64;
                    if a.is_null(i) || !v.is_finite() {
                        Cell::Null
                    } else {
                        Cell::Number(json!(v))
                    }
                })
                .collect()
        }};
    }
    Ok(match col.data_type() {
        DataType::Boolean => {
            let a = col.as_boolean();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        Cell::Null
                    } else {
                        Cell::Bool(a.value(i))
                    }
                })
                .collect()
        }
        DataType::Int8 => nums!(Int8Type),
        DataType::Int16 => nums!(Int16Type),
        DataType::Int32 => nums!(Int32Type),
        DataType::Int64 => nums!(Int64Type),
        DataType::UInt8 => nums!(UInt8Type),
        DataType::UInt16 => nums!(UInt16Type),
        DataType::UInt32 => nums!(UInt32Type),
        DataType::UInt64 => nums!(UInt64Type),
        DataType::Float32 => floats!(Float32Type),
        DataType::Float64 => floats!(Float64Type),
        DataType::Timestamp(unit, _) => {
            let a = datafusion::arrow::compute::cast(col, &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        Cell::Null
                    } else {
                        Cell::Text(format_timestamp(a.value(i), *unit))
                    }
                })
                .collect()
        }
        DataType::Date32 | DataType::Date64 => {
            let ms = datafusion::arrow::compute::cast(
                col,
                &DataType::Timestamp(TimeUnit::Millisecond, None),
            )?;
            let a = datafusion::arrow::compute::cast(&ms, &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        Cell::Null
                    } else {
                        Cell::Text(format_timestamp(a.value(i), TimeUnit::Millisecond))
                    }
                })
                .collect()
        }
        _ => {
            let opts = FormatOptions::default();
            let f = ArrayFormatter::try_new(col.as_ref(), &opts)?;
            (0..col.len())
                .map(|i| {
                    if col.is_null(i) {
                        Cell::Null
                    } else {
                        Cell::Text(f.value(i).to_string())
                    }
                })
                .collect()
        }
    })
}

/// Appends the rows of `batch` to a JSON `dataset` array being written:
/// each row an array, separated by commas (`first` says whether a row was
/// written before).
pub fn json_batch(
    batch: &RecordBatch,
    presented: &SchemaRef,
    first: &mut bool,
    out: &mut String,
) -> Result<()> {
    let batch = present_batch(batch, presented)?;
    let columns: Vec<Vec<Cell>> = batch.columns().iter().map(cells).collect::<Result<_>>()?;
    for r in 0..batch.num_rows() {
        if !std::mem::take(first) {
            out.push(',');
        }
        let row: Vec<Value> = columns
            .iter()
            .map(|c| match &c[r] {
                Cell::Null => Value::Null,
                Cell::Number(n) => n.clone(),
                Cell::Bool(b) => Value::Bool(*b),
                Cell::Text(s) => Value::String(s.clone()),
            })
            .collect();
        out.push_str(&Value::Array(row).to_string());
    }
    Ok(())
}

/// QuestDB's `/exp` CSV: the header row of `presented`'s names, quoted.
pub fn csv_header(presented: &SchemaRef, out: &mut Vec<u8>) {
    let writer = FieldWriter::csv(Dialect::default(), Vec::new());
    for (i, f) in presented.fields().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        writer.value(f.name().as_bytes(), true, out);
    }
    out.push(b'\n');
}

/// The rows of `batch` as `/exp` writes them: text quoted, numbers,
/// booleans and timestamps not, NULL an empty field.
pub fn csv_batch(batch: &RecordBatch, presented: &SchemaRef, out: &mut Vec<u8>) -> Result<()> {
    let writer = FieldWriter::csv(Dialect::default(), Vec::new());
    let batch = present_batch(batch, presented)?;
    let columns: Vec<Vec<Cell>> = batch.columns().iter().map(cells).collect::<Result<_>>()?;
    for r in 0..batch.num_rows() {
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match &c[r] {
                Cell::Null => writer.null(out),
                Cell::Number(n) => writer.value(n.to_string().as_bytes(), false, out),
                Cell::Bool(b) => writer.value(if *b { b"true" } else { b"false" }, false, out),
                Cell::Text(s) => {
                    let timestamp = matches!(
                        batch.column(i).data_type(),
                        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
                    );
                    writer.value(s.as_bytes(), !timestamp, out)
                }
            }
        }
        out.push(b'\n');
    }
    Ok(())
}
