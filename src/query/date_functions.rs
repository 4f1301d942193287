//! QuestDB's date functions over timestamps (UTC microseconds; dates and
//! text are cast first, as QuestDB takes date literals): the calendar
//! fields `hour, minute, second, day, month, year, day_of_week` (1 is
//! Monday), `day_of_week_sunday_first` (1 is Sunday), `week_of_year` (the
//! ISO week), `days_in_month`, `is_leap_year`, `millis` (of the second),
//! `micros` (of the millisecond); the zone shifts `to_timezone(ts, zone)`
//! (UTC to the zone's wall-clock time) and `to_utc(ts, zone)` (back); and
//! QuestDB's pattern language both ways: `to_str(ts, 'yyyy-MM-dd')` and
//! `to_timestamp(text, 'yyyy-MM-dd HH:mm:ss')`. `to_timestamp` with one
//! argument stays DataFusion's (ISO-8601 text, numbers as seconds).

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::time_functions::{bad, micros, ts_type};
use crate::import::format::{Pattern, days_in_month, is_leap};
use crate::time::Zone;

/// A calendar field of a UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Hour,
    Minute,
    Second,
    Day,
    Month,
    Year,
    DayOfWeek,
    DayOfWeekSundayFirst,
    WeekOfYear,
    DaysInMonth,
    Millis,
    Micros,
}

impl Field {
    fn of(self, t: i64) -> Option<i32> {
        let d: DateTime<Utc> = DateTime::from_timestamp_micros(t)?;
        let sub_second = t.rem_euclid(1_000_000);
        Some(match self {
            Field::Hour => d.hour() as i32,
            Field::Minute => d.minute() as i32,
            Field::Second => d.second() as i32,
            Field::Day => d.day() as i32,
            Field::Month => d.month() as i32,
            Field::Year => d.year(),
            Field::DayOfWeek => d.weekday().number_from_monday() as i32,
            Field::DayOfWeekSundayFirst => d.weekday().number_from_sunday() as i32,
            Field::WeekOfYear => d.iso_week().week() as i32,
            Field::DaysInMonth => days_in_month(i64::from(d.year()), i64::from(d.month())) as i32,
            Field::Millis => (sub_second / 1_000) as i32,
            Field::Micros => (sub_second % 1_000) as i32,
        })
    }
}

/// What one function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Field(Field),
    IsLeapYear,
    ToTimezone,
    ToUtc,
    ToStr,
    ToTimestamp,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DateFn {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

/// Argument `i`, a constant text (a zone or a pattern).
fn constant_text<'a>(
    args: &'a [ColumnarValue],
    i: usize,
    function: &str,
    what: &str,
) -> datafusion::error::Result<&'a str> {
    match &args[i] {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s)))
        | ColumnarValue::Scalar(ScalarValue::Utf8View(Some(s)))
        | ColumnarValue::Scalar(ScalarValue::LargeUtf8(Some(s))) => Ok(s),
        _ => Err(bad(format!(
            "{function}: the {what} must be a constant text"
        ))),
    }
}

fn timestamps(values: TimestampMicrosecondArray) -> ColumnarValue {
    ColumnarValue::Array(Arc::new(values.with_timezone("UTC")) as ArrayRef)
}

impl ScalarUDFImpl for DateFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(match self.kind {
            Kind::Field(_) => DataType::Int32,
            Kind::IsLeapYear => DataType::Boolean,
            Kind::ToTimezone | Kind::ToUtc | Kind::ToTimestamp => ts_type(),
            Kind::ToStr => DataType::Utf8,
        })
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let n = args.number_rows;
        let args = &args.args;
        let name = self.name;
        match self.kind {
            Kind::Field(f) => {
                let t = micros(args, 0, n)?;
                let v: Int32Array = t.iter().map(|t| f.of(t?)).collect();
                Ok(ColumnarValue::Array(Arc::new(v)))
            }
            Kind::IsLeapYear => {
                let t = micros(args, 0, n)?;
                let v: BooleanArray = t
                    .iter()
                    .map(|t| Field::Year.of(t?).map(|y| is_leap(i64::from(y))))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(v)))
            }
            Kind::ToTimezone | Kind::ToUtc => {
                let text = constant_text(args, 1, name, "time zone")?;
                let z = Zone::parse(text)
                    .ok_or_else(|| bad(format!("{name}: invalid timezone: {text}")))?;
                let t = micros(args, 0, n)?;
                Ok(timestamps(match self.kind {
                    Kind::ToTimezone => t.unary(|v| z.local(v)),
                    _ => t.unary(|v| z.utc(v)),
                }))
            }
            Kind::ToStr => {
                let text = constant_text(args, 1, name, "pattern")?;
                let p = Pattern::compile(text).map_err(|e| bad(format!("{name}: {e}")))?;
                let t = micros(args, 0, n)?;
                let v: StringArray = t.iter().map(|t| p.format(t?)).collect();
                Ok(ColumnarValue::Array(Arc::new(v)))
            }
            Kind::ToTimestamp => {
                let text = constant_text(args, 1, name, "pattern")?;
                let p = Pattern::compile(text).map_err(|e| bad(format!("{name}: {e}")))?;
                let s = cast(&args[0].clone().into_array(n)?, &DataType::Utf8)?;
                let s = s.as_string::<i32>();
                let mut out = Vec::with_capacity(s.len());
                for v in s.iter() {
                    out.push(match v {
                        // QuestDB answers NULL for text the pattern does
                        // not match, as for a NULL.
                        Some(v) => p.parse(v.as_bytes()).map(|ns| ns.div_euclid(1_000)),
                        None => None,
                    });
                }
                Ok(timestamps(TimestampMicrosecondArray::from(out)))
            }
        }
    }
}

/// Registers the functions; `to_timestamp` with one argument keeps going
/// to DataFusion's own.
pub fn register(ctx: &SessionContext) {
    let imm = Volatility::Immutable;
    let one = Signature::any(1, imm);
    let two = Signature::any(2, imm);
    let fields = [
        ("hour", Field::Hour),
        ("minute", Field::Minute),
        ("second", Field::Second),
        ("day", Field::Day),
        ("month", Field::Month),
        ("year", Field::Year),
        ("day_of_week", Field::DayOfWeek),
        ("day_of_week_sunday_first", Field::DayOfWeekSundayFirst),
        ("week_of_year", Field::WeekOfYear),
        ("days_in_month", Field::DaysInMonth),
        ("millis", Field::Millis),
        ("micros", Field::Micros),
    ];
    for (name, f) in fields {
        ctx.register_udf(ScalarUDF::from(DateFn {
            name,
            kind: Kind::Field(f),
            signature: one.clone(),
        }));
    }
    for (name, kind, signature) in [
        ("is_leap_year", Kind::IsLeapYear, one.clone()),
        ("to_timezone", Kind::ToTimezone, two.clone()),
        ("to_utc", Kind::ToUtc, two.clone()),
        ("to_str", Kind::ToStr, two.clone()),
    ] {
        ctx.register_udf(ScalarUDF::from(DateFn {
            name,
            kind,
            signature,
        }));
    }
    // QuestDB's two-argument form under the name DataFusion's one-argument
    // form keeps: the call picks by its number of arguments.
    let builtin = ctx.udf("to_timestamp").ok();
    ctx.register_udf(ScalarUDF::from(ToTimestamp {
        pattern: DateFn {
            name: "to_timestamp",
            kind: Kind::ToTimestamp,
            signature: two,
        },
        builtin,
        signature: Signature::one_of(vec![TypeSignature::Any(1), TypeSignature::Any(2)], imm),
    }));
}

/// `to_timestamp(x)` (DataFusion's) and `to_timestamp(text, pattern)`
/// (QuestDB's).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToTimestamp {
    pattern: DateFn,
    builtin: Option<Arc<ScalarUDF>>,
    signature: Signature,
}

impl ScalarUDFImpl for ToTimestamp {
    fn name(&self) -> &str {
        "to_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        match (args.len(), &self.builtin) {
            (1, Some(b)) => b.return_type(args),
            _ => Ok(ts_type()),
        }
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        match (args.args.len(), &self.builtin) {
            (1, Some(b)) => b.invoke_with_args(args),
            (1, None) => Err(bad("to_timestamp: a pattern expected".into())),
            _ => self.pattern.invoke_with_args(args),
        }
    }
}
