//! Field text to typed values, and typed values into Arrow arrays of the
//! table's types. Every conversion is checked: a value that does not fit
//! its column is an error with a reason, never a silent change.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, BooleanBufferBuilder, FixedSizeBinaryArray, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, UInt32Array,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use super::format::{Pattern, nanos_to_unit_exact, parse_iso};
use crate::schema::ColumnType;
use crate::schema::values::{
    float_round_trips, inferred_text_fits, int_in, parse_bool, parse_float, parse_int, parse_ipv4,
    parse_uuid,
};

/// How timestamp-like text becomes a value: the detected or given patterns
/// in order, then (without FORMAT) PostgreSQL's ISO input one value at a
/// time, and optionally integers taken as epoch values in the unit.
#[derive(Debug, Clone)]
pub struct TimestampParser {
    pub patterns: Vec<Pattern>,
    /// Values matching no pattern may still be ISO-8601 text of any
    /// precision, `T` or space ([`parse_iso`]).
    pub iso: bool,
    pub epoch_integers: bool,
}

impl TimestampParser {
    /// The value in the unit of `ty`, or the reason it does not parse.
    #[inline]
    pub fn parse(&self, text: &[u8], ty: ColumnType) -> Result<i64, String> {
        let nanos = self
            .patterns
            .iter()
            .find_map(|p| p.parse(text))
            .or_else(|| if self.iso { parse_iso(text) } else { None });
        if let Some(n) = nanos {
            return nanos_to_unit_exact(n, ty).map_err(str::to_string);
        }
        if self.epoch_integers
            && let Some(v) = parse_int(text)
        {
            return Ok(v);
        }
        let iso = if self.iso { " or ISO-8601 text" } else { "" };
        Err(match self.patterns.as_slice() {
            [] if self.iso => "not ISO-8601 text".to_string(),
            [] => "not an epoch integer".to_string(),
            [one] => format!("does not match format '{}'{iso}", one.text),
            many => format!(
                "matches none of the formats {}{iso}",
                many.iter()
                    .map(|p| format!("'{}'", p.text))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

/// Text values are UTF-8 without NUL bytes: PostgreSQL's protocol and
/// every client end a string at NUL, so one could never be read back.
#[inline]
fn utf8(raw: &[u8]) -> Result<&str, String> {
    let s = std::str::from_utf8(raw)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    // An inlined loop: text fields are short, and a library call per
    // field costs more than the scan.
    match raw.iter().position(|&b| b == 0) {
        Some(at) => Err(format!("NUL byte at byte {at}")),
        None => Ok(s),
    }
}

/// Values of one column, kept in plain vectors rather than Arrow builders
/// so a row can be taken back (`truncate`) when a later field of it fails
/// under ON ERROR SKIP_ROW; they become Arrow arrays in [`finish`].
///
/// [`finish`]: ColumnBuilder::finish
#[derive(Debug)]
enum Data {
    Boolean(Vec<bool>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Millis(Vec<i64>),
    Micros(Vec<i64>),
    Nanos(Vec<i64>),
    /// Utf8 (CHAR, VARCHAR, STRING, and SYMBOL before its dictionary).
    Text {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
    },
    Fixed(Vec<[u8; 16]>),
    UInt32(Vec<u32>),
}

/// One column of the table being built from field text: every value is
/// parsed from bytes and appended directly, or rejected with a reason.
#[derive(Debug)]
pub struct ColumnBuilder {
    ty: ColumnType,
    data: Data,
    valid: BooleanBufferBuilder,
    nulls: usize,
    /// The type was inferred, not declared: text it would not keep
    /// ([`inferred_text_fits`]) is rejected rather than converted.
    inferred: bool,
}

impl ColumnBuilder {
    pub fn new(ty: ColumnType, capacity: usize) -> ColumnBuilder {
        let data = match ty {
            ColumnType::Boolean => Data::Boolean(Vec::with_capacity(capacity)),
            ColumnType::Byte => Data::Int8(Vec::with_capacity(capacity)),
            ColumnType::Short => Data::Int16(Vec::with_capacity(capacity)),
            ColumnType::Int => Data::Int32(Vec::with_capacity(capacity)),
            ColumnType::Long => Data::Int64(Vec::with_capacity(capacity)),
            ColumnType::Float => Data::Float32(Vec::with_capacity(capacity)),
            ColumnType::Double => Data::Float64(Vec::with_capacity(capacity)),
            ColumnType::Date => Data::Millis(Vec::with_capacity(capacity)),
            ColumnType::Timestamp => Data::Micros(Vec::with_capacity(capacity)),
            ColumnType::TimestampNs => Data::Nanos(Vec::with_capacity(capacity)),
            ColumnType::Char | ColumnType::Varchar | ColumnType::String | ColumnType::Symbol => {
                let mut offsets = Vec::with_capacity(capacity + 1);
                offsets.push(0);
                Data::Text {
                    offsets,
                    bytes: Vec::with_capacity(capacity * 8),
                }
            }
            ColumnType::Uuid => Data::Fixed(Vec::with_capacity(capacity)),
            ColumnType::Ipv4 => Data::UInt32(Vec::with_capacity(capacity)),
        };
        ColumnBuilder {
            ty,
            data,
            valid: BooleanBufferBuilder::new(capacity),
            nulls: 0,
            inferred: false,
        }
    }

    /// A column whose type inference chose: values its probe would have
    /// refused as changing (a leading zero, digits a DOUBLE drops) are
    /// row errors here too, so no value later in the file is altered.
    pub fn inferred(mut self, inferred: bool) -> ColumnBuilder {
        self.inferred = inferred;
        self
    }

    pub fn len(&self) -> usize {
        self.valid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }

    /// Bytes of text held (a batch is flushed before Utf8 offsets overflow).
    pub fn text_bytes(&self) -> usize {
        match &self.data {
            Data::Text { bytes, .. } => bytes.len(),
            _ => 0,
        }
    }

    /// Appends an already parsed integer value (the designated timestamp
    /// that indexing parsed) to an integer or timestamp column.
    #[inline]
    pub fn push_int(&mut self, v: i64) {
        match &mut self.data {
            Data::Int64(d) | Data::Millis(d) | Data::Micros(d) | Data::Nanos(d) => d.push(v),
            _ => unreachable!("push_int on a {} column", self.ty.name()),
        }
        self.valid.append(true);
    }

    #[inline]
    pub fn push_null(&mut self) {
        match &mut self.data {
            Data::Boolean(d) => d.push(false),
            Data::Int8(d) => d.push(0),
            Data::Int16(d) => d.push(0),
            Data::Int32(d) => d.push(0),
            Data::Int64(d) | Data::Millis(d) | Data::Micros(d) | Data::Nanos(d) => d.push(0),
            Data::Float32(d) => d.push(0.0),
            Data::Float64(d) => d.push(0.0),
            Data::Text { offsets, bytes } => offsets.push(bytes.len() as i32),
            Data::Fixed(d) => d.push([0; 16]),
            Data::UInt32(d) => d.push(0),
        }
        self.valid.append(false);
        self.nulls += 1;
    }

    /// Parses the text of one field for this column's type and appends it.
    /// On failure nothing is appended and the reason is returned.
    #[inline]
    pub fn push_text(&mut self, raw: &[u8], ts: Option<&TimestampParser>) -> Result<(), String> {
        let ty = self.ty;
        if self.inferred {
            inferred_text_fits(ty, raw)?;
        }
        match &mut self.data {
            Data::Boolean(d) => d.push(parse_bool(raw).ok_or("not a BOOLEAN (true or false)")?),
            Data::Int8(d) => d.push(int_in(raw, i8::MIN.into(), i8::MAX.into(), "BYTE")? as i8),
            Data::Int16(d) => {
                d.push(int_in(raw, i16::MIN.into(), i16::MAX.into(), "SHORT")? as i16)
            }
            Data::Int32(d) => d.push(int_in(raw, i32::MIN.into(), i32::MAX.into(), "INT")? as i32),
            Data::Int64(d) => d.push(int_in(raw, i64::MIN, i64::MAX, "LONG")?),
            Data::Float32(d) => match parse_float(raw) {
                Some(v) if v.is_finite() && (v as f32).is_infinite() => {
                    return Err("out of range for FLOAT".into());
                }
                Some(v) => d.push(v as f32),
                None => return Err("not a valid FLOAT".into()),
            },
            Data::Float64(d) => {
                let v = parse_float(raw).ok_or("not a valid DOUBLE")?;
                if v.is_infinite() && raw.iter().any(u8::is_ascii_digit) {
                    return Err("out of range for DOUBLE".into());
                }
                if self.inferred && !float_round_trips(raw, v) {
                    return Err(format!(
                        "{} digits do not fit a DOUBLE (the column's type was inferred; declare it VARCHAR to keep them)",
                        raw.len()
                    ));
                }
                d.push(v)
            }
            Data::Millis(d) | Data::Micros(d) | Data::Nanos(d) => {
                let parser = ts.expect("timestamp columns have a parser");
                d.push(parser.parse(raw, ty)?);
            }
            Data::Text { offsets, bytes } => {
                let s = utf8(raw)?;
                if ty == ColumnType::Char && s.chars().count() != 1 {
                    return Err("not a single character (CHAR)".into());
                }
                let end = i32::try_from(bytes.len() + s.len())
                    .map_err(|_| "text too long for one batch (2 GiB)".to_string())?;
                bytes.extend_from_slice(s.as_bytes());
                offsets.push(end);
            }
            Data::Fixed(d) => d.push(
                std::str::from_utf8(raw)
                    .ok()
                    .and_then(parse_uuid)
                    .ok_or("not a valid UUID")?,
            ),
            Data::UInt32(d) => d.push(
                std::str::from_utf8(raw)
                    .ok()
                    .and_then(parse_ipv4)
                    .ok_or("not a valid IPv4 address")?,
            ),
        }
        self.valid.append(true);
        Ok(())
    }

    /// Drops values past the first `len` (a row taken back).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len() {
            return;
        }
        self.nulls -= (len..self.len())
            .filter(|&i| !self.valid.get_bit(i))
            .count();
        self.valid.truncate(len);
        match &mut self.data {
            Data::Boolean(d) => d.truncate(len),
            Data::Int8(d) => d.truncate(len),
            Data::Int16(d) => d.truncate(len),
            Data::Int32(d) => d.truncate(len),
            Data::Int64(d) | Data::Millis(d) | Data::Micros(d) | Data::Nanos(d) => d.truncate(len),
            Data::Float32(d) => d.truncate(len),
            Data::Float64(d) => d.truncate(len),
            Data::Text { offsets, bytes } => {
                offsets.truncate(len + 1);
                bytes.truncate(*offsets.last().expect("offsets start with 0") as usize);
            }
            Data::Fixed(d) => d.truncate(len),
            Data::UInt32(d) => d.truncate(len),
        }
    }

    /// The array built so far; the builder starts over empty.
    pub fn finish(&mut self) -> ArrayRef {
        let capacity = self.len();
        let valid = self.valid.finish();
        let nulls = (std::mem::take(&mut self.nulls) > 0).then(|| NullBuffer::new(valid));
        fn take<T>(v: &mut Vec<T>) -> ScalarBuffer<T>
        where
            T: datafusion::arrow::datatypes::ArrowNativeType,
        {
            let cap = v.len();
            ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap)))
        }
        match &mut self.data {
            Data::Boolean(d) => {
                let values: BooleanBuffer = d.iter().copied().collect();
                d.clear();
                Arc::new(BooleanArray::new(values, nulls))
            }
            Data::Int8(d) => Arc::new(Int8Array::new(take(d), nulls)),
            Data::Int16(d) => Arc::new(Int16Array::new(take(d), nulls)),
            Data::Int32(d) => Arc::new(Int32Array::new(take(d), nulls)),
            Data::Int64(d) => Arc::new(Int64Array::new(take(d), nulls)),
            Data::Float32(d) => Arc::new(Float32Array::new(take(d), nulls)),
            Data::Float64(d) => Arc::new(Float64Array::new(take(d), nulls)),
            Data::Millis(d) => {
                Arc::new(TimestampMillisecondArray::new(take(d), nulls).with_timezone("UTC"))
            }
            Data::Micros(d) => {
                Arc::new(TimestampMicrosecondArray::new(take(d), nulls).with_timezone("UTC"))
            }
            Data::Nanos(d) => {
                Arc::new(TimestampNanosecondArray::new(take(d), nulls).with_timezone("UTC"))
            }
            Data::Text { offsets, bytes } => {
                let cap = bytes.len();
                let offs = std::mem::replace(offsets, {
                    let mut o = Vec::with_capacity(capacity + 1);
                    o.push(0);
                    o
                });
                let values = std::mem::replace(bytes, Vec::with_capacity(cap));
                // SAFETY: every value appended was validated as UTF-8 and
                // the offsets grow monotonically from 0 to `values.len()`.
                let strings = unsafe {
                    StringArray::new_unchecked(
                        OffsetBuffer::new_unchecked(ScalarBuffer::from(offs)),
                        Buffer::from_vec(values),
                        nulls,
                    )
                };
                if self.ty == ColumnType::Symbol {
                    let dict =
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                    cast(&strings, &dict).expect("Utf8 casts to a dictionary")
                } else {
                    Arc::new(strings)
                }
            }
            Data::Fixed(d) => {
                let flat: Vec<u8> = d.iter().flatten().copied().collect();
                d.clear();
                Arc::new(
                    FixedSizeBinaryArray::try_new(16, Buffer::from_vec(flat), nulls)
                        .expect("16-byte values"),
                )
            }
            Data::UInt32(d) => Arc::new(UInt32Array::new(take(d), nulls)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;

    /// Parses one value into a fresh column; the value as text or the error.
    fn p(s: &str, ty: ColumnType) -> Result<String, String> {
        let mut b = ColumnBuilder::new(ty, 1);
        b.push_text(s.as_bytes(), None)?;
        let a = b.finish();
        Ok(datafusion::arrow::util::display::array_value_to_string(&a, 0).unwrap())
    }

    #[test]
    fn checked_numbers() {
        assert_eq!(
            p("120000", ColumnType::Short).unwrap_err(),
            "out of range for SHORT"
        );
        assert_eq!(p("-32768", ColumnType::Short).unwrap(), "-32768");
        assert!(p("9223372036854775808", ColumnType::Long).is_err());
        assert_eq!(
            p("-9223372036854775808", ColumnType::Long).unwrap(),
            "-9223372036854775808"
        );
        assert!(p("1.5", ColumnType::Int).is_err());
        assert!(p("BOOL", ColumnType::Boolean).is_err());
        assert_eq!(p("TRUE", ColumnType::Boolean).unwrap(), "true");
        assert!(p("1e39", ColumnType::Float).is_err());
        assert!(p("CHAR", ColumnType::Char).is_err());
        assert_eq!(p("é", ColumnType::Char).unwrap(), "é");
        assert_eq!(p("CLR", ColumnType::Symbol).unwrap(), "CLR");
        let mut b = ColumnBuilder::new(ColumnType::Varchar, 1);
        assert!(b.push_text(&[0xff, 0xfe], None).is_err());
        assert!(b.is_empty());
    }

    #[test]
    fn rows_taken_back_leave_no_trace() {
        let mut b = ColumnBuilder::new(ColumnType::Varchar, 4);
        b.push_text(b"keep", None).unwrap();
        b.push_null();
        b.push_text(b"drop", None).unwrap();
        b.push_null();
        b.truncate(2);
        b.push_text(b"x", None).unwrap();
        let a = b.finish();
        let s = a.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s.value(0), s.is_null(1), s.value(2)), ("keep", true, "x"));
        assert_eq!(s.null_count(), 1);
        assert!(b.is_empty());
    }
}
