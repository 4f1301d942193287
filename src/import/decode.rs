//! Field text to typed values, and typed values into Arrow arrays of the
//! table's types. Every conversion is checked: a value that does not fit
//! its column is an error with a reason, never a silent change.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder, StringDictionaryBuilder,
    TimestampMicrosecondBuilder, TimestampMillisecondBuilder, TimestampNanosecondBuilder,
    UInt32Builder,
};
use datafusion::arrow::datatypes::Int32Type;

use super::format::{Pattern, nanos_to_unit};
use crate::catalog::{ColumnType, parse_ipv4, parse_uuid};

/// A parsed field, borrowed from the file where possible.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(Cow<'a, str>),
    Fixed([u8; 16]),
}

/// How timestamp-like text becomes a value: the detected or given patterns
/// in order, and optionally integers taken as epoch values in the unit.
#[derive(Debug, Clone)]
pub struct TimestampParser {
    pub patterns: Vec<Pattern>,
    pub epoch_integers: bool,
}

impl TimestampParser {
    /// The value in the unit of `ty`, or the reason it does not parse.
    pub fn parse(&self, text: &[u8], ty: ColumnType) -> Result<i64, String> {
        for p in &self.patterns {
            if let Some(n) = p.parse(text) {
                return Ok(nanos_to_unit(n, ty));
            }
        }
        if self.epoch_integers
            && let Some(v) = parse_int(text)
        {
            return Ok(v);
        }
        Err(match self.patterns.as_slice() {
            [] => "not an epoch integer".to_string(),
            [one] => format!("does not match format '{}'", one.text),
            many => format!(
                "matches none of the formats {}",
                many.iter()
                    .map(|p| format!("'{}'", p.text))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

/// Parses a decimal integer (optional sign), without overflow.
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
    let mut frac: Option<usize> = None;
    for (i, &c) in body.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                if digits == 19 {
                    return None;
                }
                mant = mant * 10 + u64::from(c - b'0');
                digits += 1;
            }
            b'.' if frac.is_none() => frac = Some(i + 1),
            _ => return None,
        }
    }
    let scale = frac.map_or(0, |f| body.len() - f);
    if digits == 0 || mant > 1 << 53 || scale > 22 {
        return None;
    }
    let v = mant as f64 / POW10[scale];
    Some(if neg { -v } else { v })
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

fn utf8(raw: Cow<'_, [u8]>) -> Result<Cow<'_, str>, String> {
    match raw {
        Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to())),
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to())),
    }
}

/// Parses the text of one field for a column of type `ty`.
pub fn parse_value<'a>(
    raw: Cow<'a, [u8]>,
    ty: ColumnType,
    ts: Option<&TimestampParser>,
) -> Result<Value<'a>, String> {
    let int_in = |lo: i64, hi: i64, name: &str| -> Result<Value<'a>, String> {
        match parse_int(&raw) {
            Some(v) if (lo..=hi).contains(&v) => Ok(Value::Int(v)),
            Some(_) => Err(format!("out of range for {name}")),
            None if is_integer_text(&raw) => Err(format!("out of range for {name}")),
            None => Err(format!("not a valid {name}")),
        }
    };
    match ty {
        ColumnType::Boolean => {
            if raw.eq_ignore_ascii_case(b"true") {
                Ok(Value::Bool(true))
            } else if raw.eq_ignore_ascii_case(b"false") {
                Ok(Value::Bool(false))
            } else {
                Err("not a BOOLEAN (true or false)".into())
            }
        }
        ColumnType::Byte => int_in(i8::MIN.into(), i8::MAX.into(), "BYTE"),
        ColumnType::Short => int_in(i16::MIN.into(), i16::MAX.into(), "SHORT"),
        ColumnType::Int => int_in(i32::MIN.into(), i32::MAX.into(), "INT"),
        ColumnType::Long => int_in(i64::MIN, i64::MAX, "LONG"),
        ColumnType::Float => match parse_float(&raw) {
            Some(v) if v.is_finite() && (v as f32).is_infinite() => {
                Err("out of range for FLOAT".into())
            }
            Some(v) => Ok(Value::Float(v)),
            None => Err("not a valid FLOAT".into()),
        },
        ColumnType::Double => parse_float(&raw)
            .map(Value::Float)
            .ok_or_else(|| "not a valid DOUBLE".into()),
        ColumnType::Char => {
            let s = utf8(raw)?;
            if s.chars().count() == 1 {
                Ok(Value::Text(s))
            } else {
                Err("not a single character (CHAR)".into())
            }
        }
        ColumnType::Varchar | ColumnType::String | ColumnType::Symbol => {
            Ok(Value::Text(utf8(raw)?))
        }
        ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampNs => {
            let parser = ts.expect("timestamp columns have a parser");
            parser.parse(&raw, ty).map(Value::Int)
        }
        ColumnType::Uuid => std::str::from_utf8(&raw)
            .ok()
            .and_then(parse_uuid)
            .map(Value::Fixed)
            .ok_or_else(|| "not a valid UUID".into()),
        ColumnType::Ipv4 => std::str::from_utf8(&raw)
            .ok()
            .and_then(parse_ipv4)
            .map(|v| Value::Int(i64::from(v)))
            .ok_or_else(|| "not a valid IPv4 address".into()),
    }
}

/// An Arrow builder for one column of the table's type.
pub enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Millis(TimestampMillisecondBuilder),
    Micros(TimestampMicrosecondBuilder),
    Nanos(TimestampNanosecondBuilder),
    Utf8(StringBuilder),
    Symbol(StringDictionaryBuilder<Int32Type>),
    Fixed(FixedSizeBinaryBuilder),
    UInt32(UInt32Builder),
}

impl ColumnBuilder {
    pub fn new(ty: ColumnType, capacity: usize) -> ColumnBuilder {
        match ty {
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(capacity)),
            ColumnType::Byte => ColumnBuilder::Int8(Int8Builder::with_capacity(capacity)),
            ColumnType::Short => ColumnBuilder::Int16(Int16Builder::with_capacity(capacity)),
            ColumnType::Int => ColumnBuilder::Int32(Int32Builder::with_capacity(capacity)),
            ColumnType::Long => ColumnBuilder::Int64(Int64Builder::with_capacity(capacity)),
            ColumnType::Float => ColumnBuilder::Float32(Float32Builder::with_capacity(capacity)),
            ColumnType::Double => ColumnBuilder::Float64(Float64Builder::with_capacity(capacity)),
            ColumnType::Date => ColumnBuilder::Millis(
                TimestampMillisecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            ColumnType::Timestamp => ColumnBuilder::Micros(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            ColumnType::TimestampNs => ColumnBuilder::Nanos(
                TimestampNanosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            ColumnType::Char | ColumnType::Varchar | ColumnType::String => {
                ColumnBuilder::Utf8(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            ColumnType::Symbol => ColumnBuilder::Symbol(StringDictionaryBuilder::new()),
            ColumnType::Uuid => {
                ColumnBuilder::Fixed(FixedSizeBinaryBuilder::with_capacity(capacity, 16))
            }
            ColumnType::Ipv4 => ColumnBuilder::UInt32(UInt32Builder::with_capacity(capacity)),
        }
    }

    /// Appends a value produced by [`parse_value`] for this column's type.
    pub fn push(&mut self, v: &Value<'_>) {
        use ColumnBuilder as B;
        match (self, v) {
            (B::Boolean(b), Value::Bool(x)) => b.append_value(*x),
            (B::Int8(b), Value::Int(x)) => b.append_value(*x as i8),
            (B::Int16(b), Value::Int(x)) => b.append_value(*x as i16),
            (B::Int32(b), Value::Int(x)) => b.append_value(*x as i32),
            (B::Int64(b), Value::Int(x)) => b.append_value(*x),
            (B::Float32(b), Value::Float(x)) => b.append_value(*x as f32),
            (B::Float64(b), Value::Float(x)) => b.append_value(*x),
            (B::Millis(b), Value::Int(x)) => b.append_value(*x),
            (B::Micros(b), Value::Int(x)) => b.append_value(*x),
            (B::Nanos(b), Value::Int(x)) => b.append_value(*x),
            (B::Utf8(b), Value::Text(s)) => b.append_value(s),
            (B::Symbol(b), Value::Text(s)) => {
                b.append_value(s.as_ref());
            }
            (B::Fixed(b), Value::Fixed(x)) => b.append_value(x).expect("16 bytes"),
            (B::UInt32(b), Value::Int(x)) => b.append_value(*x as u32),
            (b, _) => b.push_null(),
        }
    }

    pub fn push_null(&mut self) {
        use ColumnBuilder as B;
        match self {
            B::Boolean(b) => b.append_null(),
            B::Int8(b) => b.append_null(),
            B::Int16(b) => b.append_null(),
            B::Int32(b) => b.append_null(),
            B::Int64(b) => b.append_null(),
            B::Float32(b) => b.append_null(),
            B::Float64(b) => b.append_null(),
            B::Millis(b) => b.append_null(),
            B::Micros(b) => b.append_null(),
            B::Nanos(b) => b.append_null(),
            B::Utf8(b) => b.append_null(),
            B::Symbol(b) => b.append_null(),
            B::Fixed(b) => b.append_null(),
            B::UInt32(b) => b.append_null(),
        }
    }

    pub fn len(&self) -> usize {
        use ColumnBuilder as B;
        match self {
            B::Boolean(b) => b.len(),
            B::Int8(b) => b.len(),
            B::Int16(b) => b.len(),
            B::Int32(b) => b.len(),
            B::Int64(b) => b.len(),
            B::Float32(b) => b.len(),
            B::Float64(b) => b.len(),
            B::Millis(b) => b.len(),
            B::Micros(b) => b.len(),
            B::Nanos(b) => b.len(),
            B::Utf8(b) => b.len(),
            B::Symbol(b) => b.len(),
            B::Fixed(b) => b.len(),
            B::UInt32(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The array built so far; the builder starts over empty.
    pub fn finish(&mut self) -> ArrayRef {
        use ColumnBuilder as B;
        match self {
            B::Boolean(b) => Arc::new(b.finish()),
            B::Int8(b) => Arc::new(b.finish()),
            B::Int16(b) => Arc::new(b.finish()),
            B::Int32(b) => Arc::new(b.finish()),
            B::Int64(b) => Arc::new(b.finish()),
            B::Float32(b) => Arc::new(b.finish()),
            B::Float64(b) => Arc::new(b.finish()),
            B::Millis(b) => Arc::new(b.finish()),
            B::Micros(b) => Arc::new(b.finish()),
            B::Nanos(b) => Arc::new(b.finish()),
            B::Utf8(b) => Arc::new(b.finish()),
            B::Symbol(b) => Arc::new(b.finish()),
            B::Fixed(b) => Arc::new(b.finish()),
            B::UInt32(b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, ty: ColumnType) -> Result<Value<'_>, String> {
        parse_value(Cow::Borrowed(s.as_bytes()), ty, None)
    }

    #[test]
    fn checked_numbers() {
        assert_eq!(
            p("120000", ColumnType::Short).unwrap_err(),
            "out of range for SHORT"
        );
        assert_eq!(p("-32768", ColumnType::Short), Ok(Value::Int(-32768)));
        assert!(p("9223372036854775808", ColumnType::Long).is_err());
        assert_eq!(
            p("-9223372036854775808", ColumnType::Long),
            Ok(Value::Int(i64::MIN))
        );
        assert!(p("1.5", ColumnType::Int).is_err());
        assert!(p("BOOL", ColumnType::Boolean).is_err());
        assert_eq!(p("TRUE", ColumnType::Boolean), Ok(Value::Bool(true)));
        assert!(p("1e39", ColumnType::Float).is_err());
        assert!(p("CHAR", ColumnType::Char).is_err());
        assert!(parse_value(Cow::Borrowed(&[0xff, 0xfe][..]), ColumnType::Varchar, None).is_err());
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
