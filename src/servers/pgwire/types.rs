//! Arrow <-> PostgreSQL: result rows (via arrow-pg, after the engine's
//! presentation step), parameter types and parameter decoding.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampNanosecondType,
};
use datafusion::common::ScalarValue;
use futures::{StreamExt, stream};
use pgwire::api::Type;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

use crate::engine::Rows;
use crate::engine::present::{nanos_text, present_batch, present_schema, present_type};
use crate::schema::ColumnType;

/// The pg type of an Arrow type as the engine presents it.
pub fn pg_type(t: &DataType) -> Type {
    let presented = present_type(&Field::new("p", t.clone(), true));
    arrow_pg::datatypes::into_pg_type(&presented).unwrap_or(Type::TEXT)
}

pub fn fields(
    rows_schema: &datafusion::arrow::datatypes::SchemaRef,
    format: &Format,
) -> PgWireResult<Vec<FieldInfo>> {
    let presented = wire_schema(rows_schema, format);
    let mut fields = arrow_pg::datatypes::arrow_schema_to_pg_fields(&presented, format, None)?;
    // The wire arrays of UUID columns are text or bytes (below); the type
    // the client sees is still `uuid`.
    for (i, f) in rows_schema.fields().iter().enumerate() {
        let ty = match wire_kind(f) {
            Some(ColumnType::Uuid) => Type::UUID,
            Some(ColumnType::TimestampNs) => Type::TEXT,
            _ => continue,
        };
        let old = &fields[i];
        fields[i] = FieldInfo::new(old.name().to_string(), None, None, ty, old.format());
    }
    Ok(fields)
}

/// A UUID or TIMESTAMP_NS column, by its type metadata and its Arrow type
/// both (an expression over the column, such as a CAST, may keep the
/// metadata with another type).
fn wire_kind(f: &Field) -> Option<ColumnType> {
    match (ColumnType::of_field(f), f.data_type()) {
        (ColumnType::Uuid, DataType::FixedSizeBinary(16)) => Some(ColumnType::Uuid),
        (_, DataType::Timestamp(TimeUnit::Nanosecond, _)) => Some(ColumnType::TimestampNs),
        _ => None,
    }
}

/// The engine's presentation, then what PostgreSQL's formats need: a UUID
/// is its canonical text in the text format and its 16 bytes in the binary
/// one; a TIMESTAMP_NS is text with all nine fractional digits in both,
/// because PostgreSQL's `timestamp` holds microseconds: psycopg refuses a
/// seventh digit and the binary format has no room for it.
fn wire_schema(schema: &SchemaRef, format: &Format) -> SchemaRef {
    let presented = present_schema(schema);
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(presented.fields())
        .enumerate()
        .map(|(i, (orig, out))| {
            let binary = format.format_for(i) == FieldFormat::Binary;
            let ty = match (wire_kind(orig), binary) {
                (Some(ColumnType::Uuid), true) => DataType::Binary,
                (Some(ColumnType::TimestampNs), _) => DataType::Utf8,
                _ => out.data_type().clone(),
            };
            Field::new(out.name(), ty, true).with_metadata(out.metadata().clone())
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn wire_batch(batch: &RecordBatch, wire: &SchemaRef) -> PgWireResult<RecordBatch> {
    let api = |e: crate::error::Error| PgWireError::ApiError(Box::new(e));
    let presented = present_schema(&batch.schema());
    let shown = present_batch(batch, &presented).map_err(api)?;
    let columns = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let to = wire.field(i).data_type();
            let col = batch.column(i);
            Ok(match (wire_kind(f), to) {
                (Some(ColumnType::Uuid), DataType::Binary) => {
                    let a = col.as_fixed_size_binary();
                    Arc::new(BinaryArray::from_iter(
                        (0..a.len()).map(|r| a.is_valid(r).then(|| a.value(r))),
                    )) as ArrayRef
                }
                (Some(ColumnType::TimestampNs), DataType::Utf8) => {
                    let a = col.as_primitive::<TimestampNanosecondType>();
                    Arc::new(StringArray::from_iter(
                        (0..a.len()).map(|r| a.is_valid(r).then(|| nanos_text(a.value(r)))),
                    )) as ArrayRef
                }
                _ if shown.column(i).data_type() == to => Arc::clone(shown.column(i)),
                _ => cast(shown.column(i), to).map_err(|e| api(e.into()))?,
            })
        })
        .collect::<PgWireResult<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(wire), columns).map_err(|e| api(e.into()))
}

/// Encodes complete rows as a pgwire query response.
pub fn query_response(rows: Rows, format: &Format) -> PgWireResult<QueryResponse> {
    let wire = wire_schema(&rows.schema, format);
    let fields = Arc::new(fields(&rows.schema, format)?);
    let row_fields = Arc::clone(&fields);
    // Rows are encoded a batch at a time as the client reads them.
    let data = rows.into_stream().flat_map(move |batch| {
        let encoded: Vec<PgWireResult<DataRow>> = match batch
            .map_err(|e| super::errors::pg_error(&e))
            .and_then(|b| wire_batch(&b, &wire))
        {
            Ok(b) => arrow_pg::datatypes::encode_recordbatch(Arc::clone(&row_fields), b).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(encoded)
    });
    Ok(QueryResponse::new(fields, data))
}

/// Decodes bound parameter `i`; `expected` is the type the engine inferred
/// (the value is cast to it so DataFusion sees exactly that type).
pub fn decode_param<S: Clone>(
    portal: &Portal<S>,
    i: usize,
    pg: &Type,
    expected: Option<&DataType>,
) -> PgWireResult<ScalarValue> {
    let v = match *pg {
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(i, pg)?),
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(i, pg)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(i, pg)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(i, pg)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(i, pg)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(i, pg)?),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<chrono::NaiveDateTime>(i, pg)?
                .map(|t| t.and_utc().timestamp_micros()),
            Some(Arc::from("UTC")),
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<chrono::DateTime<chrono::FixedOffset>>(i, pg)?
                .map(|t| t.timestamp_micros()),
            Some(Arc::from("UTC")),
        ),
        Type::DATE => ScalarValue::Date32(portal.parameter::<chrono::NaiveDate>(i, pg)?.map(|d| {
            (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
        })),
        _ => {
            // Text, varchar, unknown and anything else: the text form.
            let raw = portal
                .parameters
                .get(i)
                .ok_or(PgWireError::ParameterIndexOutOfBound(i))?;
            ScalarValue::Utf8(
                raw.as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
            )
        }
    };
    match expected {
        Some(t) if t != &v.data_type() && !matches!(t, DataType::Null) => match widened(&v, t) {
            Some(w) => Ok(w),
            None => v.cast_to(t).map_err(|e| PgWireError::ApiError(Box::new(e))),
        },
        _ => Ok(v),
    }
}

/// `v` as the wider number type `t` when no value can change on the way
/// (the casts drivers need most, e.g. a Python int sent as int2 for a LONG
/// column), without the array round trip of `ScalarValue::cast_to`.
fn widened(v: &ScalarValue, t: &DataType) -> Option<ScalarValue> {
    let int = match v {
        ScalarValue::Int16(n) => n.map(i64::from),
        ScalarValue::Int32(n) => n.map(i64::from),
        ScalarValue::Float32(x) => {
            return matches!(t, DataType::Float64).then(|| ScalarValue::Float64(x.map(f64::from)));
        }
        _ => return None,
    };
    match t {
        DataType::Int64 => Some(ScalarValue::Int64(int)),
        DataType::Int32 if matches!(v, ScalarValue::Int16(_)) => {
            Some(ScalarValue::Int32(int.map(|n| n as i32)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short cut gives what the cast gives, and only where no value
    /// can change.
    #[test]
    fn widened_numbers_are_the_casts_answers() {
        let cases = [
            (ScalarValue::Int16(Some(-5)), DataType::Int64),
            (ScalarValue::Int16(Some(i16::MAX)), DataType::Int32),
            (ScalarValue::Int32(Some(i32::MIN)), DataType::Int64),
            (ScalarValue::Int32(None), DataType::Int64),
            (ScalarValue::Float32(Some(0.1)), DataType::Float64),
            (ScalarValue::Float32(None), DataType::Float64),
        ];
        for (v, t) in cases {
            assert_eq!(
                widened(&v, &t),
                Some(v.cast_to(&t).unwrap()),
                "{v:?} as {t}"
            );
        }
        for (v, t) in [
            (ScalarValue::Int64(Some(1)), DataType::Int32),
            (ScalarValue::Int32(Some(1)), DataType::Int16),
            (ScalarValue::Int32(Some(1)), DataType::Float64),
            (ScalarValue::Float64(Some(1.0)), DataType::Float32),
        ] {
            assert_eq!(widened(&v, &t), None, "{v:?} as {t}");
        }
    }
}
