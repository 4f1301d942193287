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
use crate::catalog::{ColumnType, parse_ipv4, parse_uuid};

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

/// Why a number's text would not survive as the number: a leading zero
/// (`08123`, `-007`, `00.5`; a lone `0` and `0.x` are fine) is lost, as are
/// decimal digits beyond what a DOUBLE holds. Inference never picks a
/// numeric type for such text, and a column it inferred rejects it: the
/// one round-trip rule for both.
#[inline]
pub fn leading_zero(s: &[u8]) -> bool {
    let digits = match s.first() {
        Some(b'-' | b'+') => &s[1..],
        _ => s,
    };
    digits.len() >= 2 && digits[0] == b'0' && digits[1].is_ascii_digit()
}

/// Whether `v`, parsed from `text`, is the same decimal number: the
/// significant digits and exponent of the text equal those of the
/// shortest representation of `v`. Text of at most 15 significant digits
/// always is (an f64 holds 15 decimal digits); only longer text, such as a
/// 20-digit id, is checked digit by digit. `NaN` and infinities written
/// as words are themselves; a finite number that overflows is not.
#[inline]
pub fn float_round_trips(text: &[u8], v: f64) -> bool {
    if !v.is_finite() {
        return !text.iter().any(u8::is_ascii_digit);
    }
    // At most 15 digits in all (exponent included) always fit: counted
    // without allocating, as this runs for every value of an inferred
    // DOUBLE column.
    if text.iter().filter(|b| b.is_ascii_digit()).count() <= 15 {
        return true;
    }
    let Some((digits, exp)) = decimal_digits(text) else {
        return false;
    };
    if digits.len() <= 15 {
        return true;
    }
    let shortest = format!("{:e}", v.abs());
    decimal_digits(shortest.as_bytes()).is_some_and(|(d, e)| d == digits && e == exp)
}

/// Whether text keeps its meaning in a column of inferred type `ty`: no
/// leading zeros in numbers, no surrounding spaces in UUID and IPv4 text
/// (both would be dropped). Inference's probes and the decoder of an
/// inferred column both ask this (the DOUBLE digit check is
/// [`float_round_trips`], after parsing).
#[inline]
pub fn inferred_text_fits(ty: ColumnType, raw: &[u8]) -> Result<(), String> {
    match ty {
        ColumnType::Byte
        | ColumnType::Short
        | ColumnType::Int
        | ColumnType::Long
        | ColumnType::Float
        | ColumnType::Double
            if leading_zero(raw) =>
        {
            Err(format!(
                "the leading zero would be lost in {} (the column's type was inferred; declare it VARCHAR to keep it)",
                ty.name()
            ))
        }
        ColumnType::Uuid | ColumnType::Ipv4
            if raw.first().is_some_and(u8::is_ascii_whitespace)
                || raw.last().is_some_and(u8::is_ascii_whitespace) =>
        {
            Err(format!("surrounding spaces would be lost in {}", ty.name()))
        }
        _ => Ok(()),
    }
}

/// Significant digits (no leading or trailing zeros) and the decimal
/// exponent of the first one, of a decimal number's text (`-1.20e3` is
/// `("12", 3)`); zero is `("", 0)`.
fn decimal_digits(text: &[u8]) -> Option<(Vec<u8>, i64)> {
    let body = match text.first() {
        Some(b'-' | b'+') => &text[1..],
        _ => text,
    };
    let (mantissa, exp) = match body.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (
            &body[..i],
            std::str::from_utf8(&body[i + 1..])
                .ok()?
                .parse::<i64>()
                .ok()?,
        ),
        None => (body, 0),
    };
    let point = mantissa.iter().position(|&c| c == b'.');
    let int_len = point.unwrap_or(mantissa.len()) as i64;
    let all: Vec<u8> = mantissa.iter().copied().filter(|c| *c != b'.').collect();
    if !all.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let Some(first) = all.iter().position(|&c| c != b'0') else {
        return Some((Vec::new(), 0));
    };
    let last = all
        .iter()
        .rposition(|&c| c != b'0')
        .expect("a non-zero digit");
    Some((all[first..=last].to_vec(), exp + int_len - first as i64 - 1))
}

/// Parses a decimal integer (optional sign), without overflow.
#[inline]
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if neg { Some(v) } else { v.checked_neg() }
}

/// An optional sign and digits only (an integer too big for any type).
fn is_integer_text(s: &[u8]) -> bool {
    let digits = s
        .strip_prefix(b"-")
        .or_else(|| s.strip_prefix(b"+"))
        .unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Exact powers of ten an f64 holds.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Plain decimals (`-12.345`) whose digits fit 53 bits and whose fraction
/// has at most 22 digits: the digits and the power of ten are both exact
/// in an f64, so one IEEE division is correctly rounded (Clinger's fast
/// path) and gives the same value as the full parser, several times faster.
#[inline]
fn parse_float_fast(s: &[u8]) -> Option<f64> {
    let (neg, body) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.len() > 24 {
        return None;
    }
    let mut mant: u64 = 0;
    let mut digits = 0usize;
    let mut i = 0;
    let digit_run = |i: &mut usize, mant: &mut u64, digits: &mut usize| -> Option<()> {
        // Eight digits at a time while they last, then one at a time.
        while *i + 8 <= body.len() && *digits + 8 <= 19 {
            let Some(v) = eight_digits(&body[*i..*i + 8]) else {
                break;
            };
            *mant = *mant * 100_000_000 + v;
            *digits += 8;
            *i += 8;
        }
        while *i < body.len() && body[*i].is_ascii_digit() {
            if *digits == 19 {
                return None;
            }
            *mant = *mant * 10 + u64::from(body[*i] - b'0');
            *digits += 1;
            *i += 1;
        }
        Some(())
    };
    digit_run(&mut i, &mut mant, &mut digits)?;
    let mut scale = 0;
    if i < body.len() && body[i] == b'.' {
        i += 1;
        let before = i;
        digit_run(&mut i, &mut mant, &mut digits)?;
        scale = i - before;
    }
    if i != body.len() || digits == 0 || mant > 1 << 53 || scale > 22 {
        return None;
    }
    let v = mant as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// The value of eight ASCII digits, or `None` if any byte is not a digit
/// (SWAR: all eight checked and combined in a few 64-bit operations).
#[inline]
fn eight_digits(b: &[u8]) -> Option<u64> {
    let v = u64::from_le_bytes(b.try_into().ok()?);
    // Every byte is 0x30..=0x39: high nibble 3, and adding 6 keeps it 3.
    let ok = (v & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030
        && (v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030;
    if !ok {
        return None;
    }
    let v = v - 0x3030_3030_3030_3030;
    // Pairs, then quads, then the eight (the first byte is most significant).
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10_000 + (v >> 32)) & 0xFFFF_FFFF)
}

/// Parses a floating point number (`1.5`, `-2e3`, `NaN`, `Infinity`).
#[inline]
pub fn parse_float(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_float_fast(s) {
        return Some(v);
    }
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    t.parse::<f64>().ok()
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

#[inline]
fn int_in(raw: &[u8], lo: i64, hi: i64, name: &str) -> Result<i64, String> {
    match parse_int(raw) {
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        Some(_) => Err(format!("out of range for {name}")),
        None if is_integer_text(raw) => Err(format!("out of range for {name}")),
        None => Err(format!("not a valid {name}")),
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
            Data::Boolean(d) => {
                if raw.eq_ignore_ascii_case(b"true") {
                    d.push(true);
                } else if raw.eq_ignore_ascii_case(b"false") {
                    d.push(false);
                } else {
                    return Err("not a BOOLEAN (true or false)".into());
                }
            }
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

    #[test]
    fn fast_float_path_matches_the_full_parser() {
        let cases = [
            "0",
            "-0",
            "1.",
            ".5",
            "99.177845842208",
            "-65.618046051403",
            "0.1",
            "0.3",
            "123456789012345678",
            "9007199254740993",
            "1.7976931348623157",
            "4.9e-324",
            "1e22",
            "+3.25",
            "00012.5000",
            "12345678901234567890.5",
            "0.0000000000000000000001",
            "1.2.3",
            "-",
            ".",
            "1a",
            "",
            " 1",
        ];
        for c in cases {
            let full = std::str::from_utf8(c.as_bytes())
                .ok()
                .filter(|t| !t.starts_with(' '))
                .and_then(|t| t.parse::<f64>().ok());
            let got = parse_float(c.as_bytes());
            assert_eq!(
                got.map(f64::to_bits),
                full.map(f64::to_bits),
                "{c:?}: {got:?} vs {full:?}"
            );
        }
        assert_eq!(eight_digits(b"12345678"), Some(12_345_678));
        assert_eq!(eight_digits(b"00000009"), Some(9));
        assert_eq!(eight_digits(b"99999999"), Some(99_999_999));
        assert_eq!(eight_digits(b"1234:678"), None);
        assert_eq!(eight_digits(b"1234/678"), None);
        // Random decimals of the generator's shape round-trip bit for bit.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let text = format!("{}.{:012}", x % 1000, (x >> 20) % 1_000_000_000_000);
            let want: f64 = text.parse().unwrap();
            assert_eq!(
                parse_float(text.as_bytes()).unwrap().to_bits(),
                want.to_bits()
            );
        }
    }
}
