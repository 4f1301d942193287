//! QuestDB column types, their Arrow representation (docs/storage.md, "Tables are
//! Delta tables", Types) and the
//! checked conversion of values into a column: a value that does not fit is
//! an error naming the column and the value, never a silent NULL or a
//! wrapped number.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryBuilder, StringArray, UInt32Builder,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::arrow::util::display::FormatOptions;
use serde::{Deserialize, Serialize};

use super::values::{parse_bool, parse_ipv4, parse_uuid};
use crate::error::{Error, Result};

/// Field metadata key carrying the QuestDB type name, so that the wire
/// layers can show UUID, IPv4 and SYMBOL columns the way users expect.
pub const TYPE_KEY: &str = "sluice.type";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ColumnType {
    Boolean,
    Byte,
    Short,
    Char,
    Int,
    Long,
    Float,
    Double,
    Date,
    Timestamp,
    TimestampNs,
    Varchar,
    String,
    Symbol,
    Uuid,
    Ipv4,
}

impl ColumnType {
    /// Parses a type name: QuestDB's names plus the usual SQL aliases.
    pub fn parse(name: &str) -> Option<ColumnType> {
        Some(match name.to_ascii_uppercase().as_str() {
            "BOOLEAN" | "BOOL" => ColumnType::Boolean,
            "BYTE" | "TINYINT" => ColumnType::Byte,
            "SHORT" | "SMALLINT" | "INT2" => ColumnType::Short,
            "CHAR" => ColumnType::Char,
            "INT" | "INTEGER" | "INT4" => ColumnType::Int,
            "LONG" | "BIGINT" | "INT8" => ColumnType::Long,
            "FLOAT" | "REAL" | "FLOAT4" => ColumnType::Float,
            "DOUBLE" | "FLOAT8" | "DOUBLE PRECISION" => ColumnType::Double,
            "DATE" => ColumnType::Date,
            "TIMESTAMP" => ColumnType::Timestamp,
            "TIMESTAMP_NS" => ColumnType::TimestampNs,
            "VARCHAR" | "TEXT" => ColumnType::Varchar,
            "STRING" => ColumnType::String,
            "SYMBOL" => ColumnType::Symbol,
            "UUID" => ColumnType::Uuid,
            "IPV4" => ColumnType::Ipv4,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Byte => "BYTE",
            ColumnType::Short => "SHORT",
            ColumnType::Char => "CHAR",
            ColumnType::Int => "INT",
            ColumnType::Long => "LONG",
            ColumnType::Float => "FLOAT",
            ColumnType::Double => "DOUBLE",
            ColumnType::Date => "DATE",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::TimestampNs => "TIMESTAMP_NS",
            ColumnType::Varchar => "VARCHAR",
            ColumnType::String => "STRING",
            ColumnType::Symbol => "SYMBOL",
            ColumnType::Uuid => "UUID",
            ColumnType::Ipv4 => "IPv4",
        }
    }

    pub fn arrow_type(&self) -> DataType {
        let utc = Some(Arc::from("UTC"));
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Byte => DataType::Int8,
            ColumnType::Short => DataType::Int16,
            ColumnType::Int => DataType::Int32,
            ColumnType::Long => DataType::Int64,
            ColumnType::Float => DataType::Float32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Date => DataType::Timestamp(TimeUnit::Millisecond, utc),
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, utc),
            ColumnType::TimestampNs => DataType::Timestamp(TimeUnit::Nanosecond, utc),
            ColumnType::Char | ColumnType::Varchar | ColumnType::String => DataType::Utf8,
            ColumnType::Symbol => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
            ColumnType::Uuid => DataType::FixedSizeBinary(16),
            ColumnType::Ipv4 => DataType::UInt32,
        }
    }

    pub fn is_timestamp(&self) -> bool {
        matches!(
            self,
            ColumnType::Timestamp | ColumnType::TimestampNs | ColumnType::Date
        )
    }

    /// The Arrow field of a column of this type.
    pub fn field(&self, name: &str) -> Field {
        Field::new(name, self.arrow_type(), true)
            .with_metadata([(TYPE_KEY.to_string(), self.name().to_string())].into())
    }

    /// The QuestDB type of a field: its metadata when present, else the best
    /// match for its Arrow type (query results, CREATE TABLE AS).
    pub fn of_field(field: &Field) -> ColumnType {
        if let Some(t) = field
            .metadata()
            .get(TYPE_KEY)
            .and_then(|n| ColumnType::parse(n))
        {
            return t;
        }
        Self::from_arrow(field.data_type())
    }

    pub fn from_arrow(t: &DataType) -> ColumnType {
        match t {
            DataType::Boolean => ColumnType::Boolean,
            DataType::Int8 => ColumnType::Byte,
            DataType::Int16 | DataType::UInt8 => ColumnType::Short,
            DataType::Int32 | DataType::UInt16 => ColumnType::Int,
            DataType::Int64 | DataType::UInt64 => ColumnType::Long,
            DataType::UInt32 => ColumnType::Long,
            DataType::Float16 | DataType::Float32 => ColumnType::Float,
            DataType::Float64 | DataType::Decimal128(..) | DataType::Decimal256(..) => {
                ColumnType::Double
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => ColumnType::TimestampNs,
            DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Second, _) => ColumnType::Date,
            DataType::Timestamp(..) => ColumnType::Timestamp,
            DataType::Date32 | DataType::Date64 => ColumnType::Date,
            DataType::Dictionary(..) => ColumnType::Symbol,
            DataType::FixedSizeBinary(16) => ColumnType::Uuid,
            _ => ColumnType::Varchar,
        }
    }

    /// Converts `array` into this type. Every non-NULL input value must
    /// survive: a value that would become NULL (unparsable text, a number
    /// out of range) is reported with the column name and the value.
    pub fn convert(&self, array: &ArrayRef, column: &str) -> Result<ArrayRef> {
        let target = self.arrow_type();
        if array.data_type() == &target {
            return self.check_char(array, column);
        }
        if matches!(array.data_type(), DataType::Null) {
            return Ok(datafusion::arrow::array::new_null_array(
                &target,
                array.len(),
            ));
        }
        let converted = match self {
            ColumnType::Uuid => convert_text(
                array,
                |s| parse_uuid(s).map(|b| b.to_vec()),
                |strings| {
                    let mut b = FixedSizeBinaryBuilder::with_capacity(strings.len(), 16);
                    for v in strings {
                        match v {
                            Some(bytes) => b.append_value(bytes)?,
                            None => b.append_null(),
                        }
                    }
                    Ok(Arc::new(b.finish()) as ArrayRef)
                },
            ),
            ColumnType::Ipv4 => convert_text(
                array,
                |s| parse_ipv4(s).map(|v| v.to_be_bytes().to_vec()),
                |vals| {
                    let mut b = UInt32Builder::with_capacity(vals.len());
                    for v in vals {
                        b.append_option(
                            v.map(|bytes| u32::from_be_bytes(bytes.try_into().expect("4 bytes"))),
                        );
                    }
                    Ok(Arc::new(b.finish()) as ArrayRef)
                },
            ),
            ColumnType::Boolean if is_text(array.data_type()) => convert_text(
                array,
                |s| parse_bool(s.as_bytes()).map(|b| vec![u8::from(b)]),
                |vals| {
                    let arr: datafusion::arrow::array::BooleanArray =
                        vals.into_iter().map(|v| v.map(|b| b[0] == 1)).collect();
                    Ok(Arc::new(arr) as ArrayRef)
                },
            ),
            // Numbers and timestamps from text take Arrow's cast: text
            // reaches here from SQL literals and bound parameters, which
            // PostgreSQL reads with its own input rules (`+5`, `1e3` for
            // floats, ISO timestamps), and Arrow's parsers follow those; a
            // value the cast cannot read is an error below, never NULL.
            // Booleans, UUIDs and IPv4 share the importer's rules (`values`).
            _ => {
                let opts = CastOptions {
                    safe: true,
                    format_options: FormatOptions::default(),
                };
                Ok(cast_with_options(array, &target, &opts)?)
            }
        }?;
        // A value that was present but is NULL after the cast did not fit.
        if converted.null_count() > array.null_count() {
            for i in 0..array.len() {
                if array.is_valid(i) && converted.is_null(i) {
                    return Err(self.bad_value(array, i, column));
                }
            }
        }
        // Float to integer casts truncate; a fraction is not a whole number.
        if matches!(
            self,
            ColumnType::Byte | ColumnType::Short | ColumnType::Int | ColumnType::Long
        ) && matches!(array.data_type(), DataType::Float32 | DataType::Float64)
        {
            let as_f64 = cast_with_options(array, &DataType::Float64, &CastOptions::default())?;
            let f = as_f64.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            for i in 0..f.len() {
                if f.is_valid(i) && f.value(i).fract() != 0.0 {
                    return Err(self.bad_value(array, i, column));
                }
            }
        }
        self.check_char(&converted, column)
    }

    fn check_char(&self, array: &ArrayRef, column: &str) -> Result<ArrayRef> {
        if *self == ColumnType::Char {
            let s = array.as_string::<i32>();
            for i in 0..s.len() {
                if s.is_valid(i) && s.value(i).chars().count() > 1 {
                    return Err(self.bad_value(array, i, column));
                }
            }
        }
        Ok(array.clone())
    }

    fn bad_value(&self, array: &ArrayRef, row: usize, column: &str) -> Error {
        let value = datafusion::arrow::util::display::ArrayFormatter::try_new(
            array.as_ref(),
            &FormatOptions::default(),
        )
        .map(|f| f.value(row).to_string())
        .unwrap_or_default();
        Error::BadValue {
            column: column.to_string(),
            value,
            from: ColumnType::from_arrow(array.data_type()).name().to_string(),
            to: self.name().to_string(),
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(t, DataType::Dictionary(_, v) if is_text(v))
}

/// Converts a text array value by value with `parse`; `build` makes the
/// result array. Non-text input is rendered as text first.
fn convert_text(
    array: &ArrayRef,
    parse: impl Fn(&str) -> Option<Vec<u8>>,
    build: impl FnOnce(Vec<Option<Vec<u8>>>) -> Result<ArrayRef, datafusion::arrow::error::ArrowError>,
) -> Result<ArrayRef> {
    let text = cast_with_options(array, &DataType::Utf8, &CastOptions::default())?;
    let strings: &StringArray = text.as_string::<i32>();
    let mut out = Vec::with_capacity(strings.len());
    for i in 0..strings.len() {
        out.push(if strings.is_null(i) {
            None
        } else {
            parse(strings.value(i))
        });
    }
    Ok(build(out)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};

    #[test]
    fn overflow_is_an_error_naming_the_column() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 120000]));
        let err = ColumnType::Short.convert(&a, "qty").unwrap_err();
        assert_eq!(err.sqlstate(), "22P02");
        assert!(
            err.to_string().contains("qty") && err.to_string().contains("120000"),
            "{err}"
        );
    }

    #[test]
    fn text_to_boolean_is_strict() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["true", "FALSE"]));
        assert!(ColumnType::Boolean.convert(&a, "ok").is_ok());
        let a: ArrayRef = Arc::new(StringArray::from(vec!["yes"]));
        assert!(ColumnType::Boolean.convert(&a, "ok").is_err());
    }

    #[test]
    fn uuid_and_ipv4_parse() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("11111111-2222-3333-4444-555555555555"),
            None,
        ]));
        let u = ColumnType::Uuid.convert(&a, "u").unwrap();
        assert_eq!(u.null_count(), 1);
        let a: ArrayRef = Arc::new(StringArray::from(vec!["10.0.0.1"]));
        let ip = ColumnType::Ipv4.convert(&a, "ip").unwrap();
        assert_eq!(
            ip.as_primitive::<datafusion::arrow::datatypes::UInt32Type>()
                .value(0),
            0x0a000001
        );
        let a: ArrayRef = Arc::new(StringArray::from(vec!["10.0.0.300"]));
        assert!(ColumnType::Ipv4.convert(&a, "ip").is_err());
    }

    #[test]
    fn text_to_timestamp() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            "2024-01-02T03:04:05.000006Z",
            "2024-01-02 03:04:05",
        ]));
        let t = ColumnType::Timestamp.convert(&a, "ts").unwrap();
        assert_eq!(t.null_count(), 0);
        let a: ArrayRef = Arc::new(StringArray::from(vec!["not a time"]));
        assert!(ColumnType::Timestamp.convert(&a, "ts").is_err());
    }
}
