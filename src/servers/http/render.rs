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

use crate::engine::ingest::{Dialect, FieldWriter};
use crate::engine::present::present_batch;
use crate::error::Result;
use crate::schema::ColumnType;

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
    let mut out = String::with_capacity(32);
    write_timestamp(v, unit, &mut out);
    out
}

/// Writes a timestamp as QuestDB does (`2024-01-02T03:04:05.123456Z`, the
/// fraction as the unit has it), digit by digit: a strftime pattern is
/// parsed again on every call, which was most of the time of rendering a
/// large answer's timestamps.
pub fn write_timestamp(v: i64, unit: TimeUnit, out: &mut String) {
    use chrono::{Datelike, Timelike};
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
        out.push_str(&v.to_string());
        return;
    };
    if !(0..=9999).contains(&dt.year()) {
        let pattern = match digits {
            3 => "%Y-%m-%dT%H:%M:%S%.3fZ",
            6 => "%Y-%m-%dT%H:%M:%S%.6fZ",
            9 => "%Y-%m-%dT%H:%M:%S%.9fZ",
            _ => "%Y-%m-%dT%H:%M:%SZ",
        };
        out.push_str(&dt.format(pattern).to_string());
        return;
    }
    let digits_of = |out: &mut String, n: u32, width: usize| {
        let mut buf = [b'0'; 9];
        let mut n = n;
        for k in (0..width).rev() {
            buf[k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.push_str(std::str::from_utf8(&buf[..width]).expect("ASCII digits"));
    };
    digits_of(out, dt.year() as u32, 4);
    out.push('-');
    digits_of(out, dt.month(), 2);
    out.push('-');
    digits_of(out, dt.day(), 2);
    out.push('T');
    digits_of(out, dt.hour(), 2);
    out.push(':');
    digits_of(out, dt.minute(), 2);
    out.push(':');
    digits_of(out, dt.second(), 2);
    if digits > 0 {
        out.push('.');
        digits_of(out, nanos / 10u32.pow(9 - digits as u32), digits);
    }
    out.push('Z');
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
/// written before). Values are written straight into `out` (numbers as
/// serde_json writes them, text escaped as it escapes it): no value per
/// cell, which made rendering most of a large answer's time.
pub fn json_batch(
    batch: &RecordBatch,
    presented: &SchemaRef,
    first: &mut bool,
    out: &mut String,
) -> Result<()> {
    let batch = present_batch(batch, presented)?;
    let opts = FormatOptions::default();
    let columns: Vec<JsonColumn<'_>> = batch
        .columns()
        .iter()
        .map(|c| JsonColumn::of(c, &opts))
        .collect::<Result<_>>()?;
    let mut ints = itoa::Buffer::new();
    let mut floats = ryu::Buffer::new();
    for r in 0..batch.num_rows() {
        if !std::mem::take(first) {
            out.push(',');
        }
        out.push('[');
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            c.write(r, out, &mut ints, &mut floats);
        }
        out.push(']');
    }
    Ok(())
}

/// A column ready to be written as JSON values.
enum JsonColumn<'a> {
    Bool(datafusion::arrow::array::BooleanArray),
    Int(datafusion::arrow::array::Int64Array),
    UInt(datafusion::arrow::array::UInt64Array),
    Float(datafusion::arrow::array::Float64Array),
    Timestamp(datafusion::arrow::array::Int64Array, TimeUnit),
    Text(datafusion::arrow::array::StringArray),
    /// Anything else, through Arrow's display (one formatter per column).
    Other(ArrayFormatter<'a>, &'a ArrayRef),
}

impl<'a> JsonColumn<'a> {
    fn of(col: &'a ArrayRef, opts: &'a FormatOptions<'a>) -> Result<JsonColumn<'a>> {
        use datafusion::arrow::compute::cast;
        Ok(match col.data_type() {
            DataType::Boolean => JsonColumn::Bool(col.as_boolean().clone()),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => JsonColumn::Int(
                cast(col, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            DataType::UInt64 => JsonColumn::UInt(col.as_primitive::<UInt64Type>().clone()),
            DataType::Float32 | DataType::Float64 => JsonColumn::Float(
                cast(col, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            DataType::Timestamp(unit, _) => JsonColumn::Timestamp(
                cast(col, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
                *unit,
            ),
            DataType::Date32 | DataType::Date64 => {
                let ms = cast(col, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
                JsonColumn::Timestamp(
                    cast(&ms, &DataType::Int64)?
                        .as_primitive::<Int64Type>()
                        .clone(),
                    TimeUnit::Millisecond,
                )
            }
            DataType::Utf8 => JsonColumn::Text(col.as_string::<i32>().clone()),
            DataType::LargeUtf8 | DataType::Utf8View => {
                JsonColumn::Text(cast(col, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            // SYMBOL columns: dictionaries of text.
            DataType::Dictionary(_, values) if values.as_ref() == &DataType::Utf8 => {
                JsonColumn::Text(cast(col, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            _ => JsonColumn::Other(ArrayFormatter::try_new(col.as_ref(), opts)?, col),
        })
    }

    fn write(&self, r: usize, out: &mut String, ints: &mut itoa::Buffer, floats: &mut ryu::Buffer) {
        match self {
            JsonColumn::Bool(a) if a.is_valid(r) => {
                out.push_str(if a.value(r) { "true" } else { "false" })
            }
            JsonColumn::Int(a) if a.is_valid(r) => out.push_str(ints.format(a.value(r))),
            JsonColumn::UInt(a) if a.is_valid(r) => out.push_str(ints.format(a.value(r))),
            // Infinities and NaN are not JSON numbers: null, as before.
            JsonColumn::Float(a) if a.is_valid(r) && a.value(r).is_finite() => {
                out.push_str(floats.format_finite(a.value(r)))
            }
            JsonColumn::Timestamp(a, unit) if a.is_valid(r) => {
                out.push('"');
                write_timestamp(a.value(r), *unit, out);
                out.push('"');
            }
            JsonColumn::Text(a) if a.is_valid(r) => json_string(a.value(r), out),
            JsonColumn::Other(f, a) if a.is_valid(r) => json_string(&f.value(r).to_string(), out),
            _ => out.push_str("null"),
        }
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_timestamps_as_serde_json_and_chrono_write_them() {
        for s in [
            "plain",
            "quote \" and \\ back",
            "tab\tnew\nline\r",
            "\u{0}\u{1f}\u{7f}é€😀",
        ] {
            let mut out = String::new();
            json_string(s, &mut out);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
        for (v, unit) in [
            (0i64, TimeUnit::Microsecond),
            (1_704_164_645_123_456, TimeUnit::Microsecond),
            (-1, TimeUnit::Microsecond),
            (1_704_164_645_123, TimeUnit::Millisecond),
            (1_704_164_645_123_456_789, TimeUnit::Nanosecond),
            (1_704_164_645, TimeUnit::Second),
            (-62_000_000_000_000_000, TimeUnit::Microsecond),
        ] {
            let (secs, nanos) = match unit {
                TimeUnit::Second => (v, 0),
                TimeUnit::Millisecond => (v.div_euclid(1_000), v.rem_euclid(1_000) * 1_000_000),
                TimeUnit::Microsecond => (v.div_euclid(1_000_000), v.rem_euclid(1_000_000) * 1_000),
                TimeUnit::Nanosecond => (v.div_euclid(1_000_000_000), v.rem_euclid(1_000_000_000)),
            };
            let dt = chrono::DateTime::from_timestamp(secs, nanos as u32).unwrap();
            let expected = match unit {
                TimeUnit::Second => dt.format("%Y-%m-%dT%H:%M:%SZ"),
                TimeUnit::Millisecond => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                TimeUnit::Microsecond => dt.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                TimeUnit::Nanosecond => dt.format("%Y-%m-%dT%H:%M:%S%.9fZ"),
            };
            assert_eq!(
                format_timestamp(v, unit),
                expected.to_string(),
                "{v} {unit:?}"
            );
        }
    }
}
