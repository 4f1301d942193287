//! Arrow <-> PostgreSQL: result rows (via arrow-pg, after the engine's
//! presentation step), parameter types and parameter decoding.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use futures::stream;
use pgwire::api::Type;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::results::{FieldInfo, QueryResponse};
use pgwire::error::{PgWireError, PgWireResult};

use crate::engine::Rows;
use crate::engine::present::{present_batch, present_schema, present_type};

/// The pg type of an Arrow type as the engine presents it.
pub fn pg_type(t: &DataType) -> Type {
    let presented = present_type(&Field::new("p", t.clone(), true));
    arrow_pg::datatypes::into_pg_type(&presented).unwrap_or(Type::TEXT)
}

pub fn fields(
    rows_schema: &datafusion::arrow::datatypes::SchemaRef,
    format: &Format,
) -> PgWireResult<Vec<FieldInfo>> {
    let presented = present_schema(rows_schema);
    arrow_pg::datatypes::arrow_schema_to_pg_fields(&presented, format, None)
}

/// Encodes complete rows as a pgwire query response.
pub fn query_response(rows: Rows, format: &Format) -> PgWireResult<QueryResponse> {
    let presented = present_schema(&rows.schema);
    let fields = Arc::new(arrow_pg::datatypes::arrow_schema_to_pg_fields(
        &presented, format, None,
    )?);
    let mut data = Vec::new();
    for batch in &rows.batches {
        let batch =
            present_batch(batch, &presented).map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        data.extend(arrow_pg::datatypes::encode_recordbatch(
            Arc::clone(&fields),
            batch,
        ));
    }
    Ok(QueryResponse::new(fields, stream::iter(data)))
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
        Some(t) if t != &v.data_type() && !matches!(t, DataType::Null) => {
            v.cast_to(t).map_err(|e| PgWireError::ApiError(Box::new(e)))
        }
        _ => Ok(v),
    }
}
