//! QuestDB's timestamp functions, with QuestDB's argument order:
//! `timestamp_floor(unit, ts[, origin])`, `timestamp_ceil(unit, ts)`,
//! `dateadd(period, n, ts)`, `datediff(period, ts1, ts2)` and
//! `systimestamp()` (`now()` is DataFusion's). Units are QuestDB's letters
//! with an optional count (`'15m'`), see [`crate::time`].

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, ListArray, TimestampMicrosecondArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::Field;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use crate::time::{Stride, Zone};

pub(super) fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub(super) fn bad(message: String) -> DataFusionError {
    DataFusionError::Execution(message)
}

/// The stride named by argument `i`, one value for the whole call.
fn stride(args: &[ColumnarValue], i: usize, function: &str) -> datafusion::error::Result<Stride> {
    let text = match &args[i] {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => s.clone(),
        _ => {
            return Err(bad(format!(
                "{function}: the unit must be a constant text such as '1h'"
            )));
        }
    };
    Stride::parse(&text).ok_or_else(|| {
        bad(format!(
            "{function}: invalid unit '{text}' (expected a count and one of U T s m h d w M y, e.g. '15m')"
        ))
    })
}

/// Argument `i` as UTC microsecond timestamps (text and other timestamp
/// units are cast, as QuestDB takes date literals).
pub(super) fn micros(
    args: &[ColumnarValue],
    i: usize,
    n: usize,
) -> datafusion::error::Result<TimestampMicrosecondArray> {
    let a = args[i].clone().into_array(n)?;
    let a = cast(&a, &ts_type())?;
    Ok(a.as_primitive::<TimestampMicrosecondType>().clone())
}

fn out(values: TimestampMicrosecondArray) -> ColumnarValue {
    ColumnarValue::Array(Arc::new(values.with_timezone("UTC")) as ArrayRef)
}

#[derive(Debug, Clone, Copy)]
enum Ret {
    Timestamp,
    Long,
    Timestamps,
}

type Body = fn(&[ColumnarValue], usize) -> datafusion::error::Result<ColumnarValue>;

/// One QuestDB time function: its arities, its result and its body.
#[derive(Debug)]
struct TimeFn {
    name: &'static str,
    signature: Signature,
    ret: Ret,
    body: Body,
}

// A function is known by its name (each is registered once).
impl PartialEq for TimeFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeFn {}

impl std::hash::Hash for TimeFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for TimeFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(match self.ret {
            Ret::Timestamp => ts_type(),
            Ret::Long => DataType::Int64,
            Ret::Timestamps => DataType::List(Arc::new(Field::new_list_field(ts_type(), true))),
        })
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        (self.body)(&args.args, args.number_rows)
    }
}

fn floor(args: &[ColumnarValue], n: usize) -> datafusion::error::Result<ColumnarValue> {
    let s = stride(args, 0, "timestamp_floor")?;
    let t = micros(args, 1, n)?;
    let z = match args.len() {
        4 => Some(zone(args, 3, "timestamp_floor")?),
        _ => None,
    };
    // A constant origin (SAMPLE BY's, or none): one pass over the values.
    let origin = match args.get(2) {
        None => Some(0),
        Some(ColumnarValue::Scalar(_)) => micros(args, 2, 1)?.iter().next().flatten(),
        Some(ColumnarValue::Array(_)) => None,
    };
    match (origin, z, s.micros()) {
        (Some(o), None, Some(len)) => {
            // Rows mostly come in time order: a value in the last value's
            // bucket takes its start without a division.
            let mut bucket = (1, 0);
            let starts: Vec<i64> = t
                .values()
                .iter()
                .map(|&v| {
                    if v < bucket.0 || v >= bucket.1 {
                        let start = o + (v - o).div_euclid(len) * len;
                        bucket = (start, start.saturating_add(len));
                    }
                    bucket.0
                })
                .collect();
            return Ok(out(TimestampMicrosecondArray::new(
                starts.into(),
                t.nulls().cloned(),
            )));
        }
        (Some(o), None, None) => return Ok(out(t.unary(|v| s.floor(v, o)))),
        (Some(o), Some(z), _) => return Ok(out(t.unary(|v| z.utc(s.floor(z.local(v), o))))),
        (None, _, _) => {}
    }
    // Buckets in the zone's wall-clock time, the origin read as one.
    let o = micros(args, 2, n)?;
    Ok(out(t
        .iter()
        .zip(o.iter())
        .map(|(t, o)| {
            let (t, o) = (t?, o?);
            Some(match z {
                Some(z) => z.utc(s.floor(z.local(t), o)),
                None => s.floor(t, o),
            })
        })
        .collect()))
}

fn zone(args: &[ColumnarValue], i: usize, function: &str) -> datafusion::error::Result<Zone> {
    match &args[i] {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(z))) => {
            Zone::parse(z).ok_or_else(|| bad(format!("{function}: invalid timezone: {z}")))
        }
        _ => Err(bad(format!(
            "{function}: the time zone must be a constant text"
        ))),
    }
}

fn ceil(args: &[ColumnarValue], n: usize) -> datafusion::error::Result<ColumnarValue> {
    let s = stride(args, 0, "timestamp_ceil")?;
    Ok(out(micros(args, 1, n)?.unary(|v| s.ceil(v, 0))))
}

fn dateadd(args: &[ColumnarValue], n: usize) -> datafusion::error::Result<ColumnarValue> {
    let s = stride(args, 0, "dateadd")?;
    let k = cast(&args[1].clone().into_array(n)?, &DataType::Int64)?;
    let k = k.as_primitive::<Int64Type>();
    let t = micros(args, 2, n)?;
    Ok(out(t
        .iter()
        .zip(k.iter())
        .map(|(t, k)| Some(s.add(t?, k?)))
        .collect()))
}

fn datediff(args: &[ColumnarValue], n: usize) -> datafusion::error::Result<ColumnarValue> {
    let s = stride(args, 0, "datediff")?;
    let (a, b) = (micros(args, 1, n)?, micros(args, 2, n)?);
    let v: Int64Array = a
        .iter()
        .zip(b.iter())
        .map(|(a, b)| Some(s.between(a?, b?)))
        .collect();
    Ok(ColumnarValue::Array(Arc::new(v)))
}

/// `sample_buckets(lo, hi, stride)`: every bucket start from `lo` to `hi`
/// (both included) as a list, for SAMPLE BY's fills (at most
/// [`MAX_BUCKETS`]).
fn buckets(args: &[ColumnarValue], n: usize) -> datafusion::error::Result<ColumnarValue> {
    let s = stride(args, 2, "sample_buckets")?;
    let z = match args.len() {
        4 => Some(zone(args, 3, "sample_buckets")?),
        _ => None,
    };
    let (lo, hi) = (micros(args, 0, n)?, micros(args, 1, n)?);
    let field = Arc::new(Field::new_list_field(ts_type(), true));
    let mut offsets = vec![0i32];
    let mut values: Vec<i64> = Vec::new();
    for (lo, hi) in lo.iter().zip(hi.iter()) {
        if let (Some(lo), Some(hi)) = (lo, hi) {
            // Steps of wall-clock time in a zone (a DST change can map two
            // steps to one instant: it is kept once).
            let start = z.map_or(lo, |z| z.local(lo));
            let at = |k: i64| {
                let l = s.add(start, k);
                z.map_or(l, |z| z.utc(l))
            };
            let mut t = lo;
            let mut k = 0;
            while t <= hi {
                if values.len() >= MAX_BUCKETS {
                    return Err(bad(format!(
                        "SAMPLE BY FILL would make more than {MAX_BUCKETS} buckets: use a longer interval or FROM/TO"
                    )));
                }
                if values.last().is_none_or(|p| *p < t) {
                    values.push(t);
                }
                k += 1;
                t = at(k);
            }
        }
        offsets.push(values.len() as i32);
    }
    let values = TimestampMicrosecondArray::from(values).with_timezone("UTC");
    let list = ListArray::try_new(
        field,
        OffsetBuffer::new(offsets.into()),
        Arc::new(values),
        None,
    )?;
    Ok(ColumnarValue::Array(Arc::new(list)))
}

/// The most buckets a FILL may add.
pub const MAX_BUCKETS: usize = 10_000_000;

/// QuestDB's systimestamp() is the clock at each call; now() stays the
/// statement's time.
fn systimestamp(_args: &[ColumnarValue], _n: usize) -> datafusion::error::Result<ColumnarValue> {
    Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
        Some(chrono::Utc::now().timestamp_micros()),
        Some("UTC".into()),
    )))
}

pub fn register(ctx: &SessionContext) {
    let any =
        |n: &[usize], v| Signature::one_of(n.iter().map(|n| TypeSignature::Any(*n)).collect(), v);
    let imm = Volatility::Immutable;
    for f in [
        TimeFn {
            name: "timestamp_floor",
            signature: any(&[2, 3, 4], imm),
            ret: Ret::Timestamp,
            body: floor,
        },
        TimeFn {
            name: "timestamp_ceil",
            signature: any(&[2], imm),
            ret: Ret::Timestamp,
            body: ceil,
        },
        TimeFn {
            name: "dateadd",
            signature: any(&[3], imm),
            ret: Ret::Timestamp,
            body: dateadd,
        },
        TimeFn {
            name: "datediff",
            signature: any(&[3], imm),
            ret: Ret::Long,
            body: datediff,
        },
        TimeFn {
            name: "sample_buckets",
            signature: any(&[3, 4], imm),
            ret: Ret::Timestamps,
            body: buckets,
        },
        TimeFn {
            name: "systimestamp",
            signature: Signature::nullary(Volatility::Volatile),
            ret: Ret::Timestamp,
            body: systimestamp,
        },
    ] {
        ctx.register_udf(ScalarUDF::from(f));
    }
}
