//! How values leave the engine: one conversion shared by pgwire, `/exec`
//! JSON and `/exp` CSV. Timestamps go out as UTC without a zone suffix
//! (PostgreSQL `timestamp`), UUIDs in canonical text, IPv4 dotted.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};

use crate::error::Result;
use crate::schema::ColumnType;

/// The wire type of a field.
pub fn present_type(field: &Field) -> DataType {
    match (ColumnType::of_field(field), field.data_type()) {
        (ColumnType::Uuid, DataType::FixedSizeBinary(16)) => DataType::Utf8,
        (ColumnType::Ipv4, DataType::UInt32) => DataType::Utf8,
        (_, DataType::Timestamp(unit, Some(_))) => DataType::Timestamp(*unit, None),
        (_, other) => other.clone(),
    }
}

/// A TIMESTAMP_NS value as text with all nine fractional digits: how it
/// leaves over pgwire in every format, because PostgreSQL's `timestamp`
/// holds microseconds.
pub fn nanos_text(v: i64) -> String {
    chrono::DateTime::from_timestamp(
        v.div_euclid(1_000_000_000),
        v.rem_euclid(1_000_000_000) as u32,
    )
    .map(|d| d.format("%Y-%m-%d %H:%M:%S%.9f").to_string())
    .unwrap_or_else(|| v.to_string())
}

pub fn present_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                Field::new(f.name(), present_type(f), true).with_metadata(f.metadata().clone())
            })
            .collect::<Vec<_>>(),
    ))
}

pub fn present_batch(batch: &RecordBatch, presented: &SchemaRef) -> Result<RecordBatch> {
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .zip(presented.fields())
        .map(|((field, col), out)| present_column(field, col, out.data_type()))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(presented), columns)?)
}

fn present_column(field: &Field, col: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if col.data_type() == to {
        return Ok(col.clone());
    }
    Ok(match (ColumnType::of_field(field), col.data_type()) {
        (ColumnType::Uuid, DataType::FixedSizeBinary(16)) => {
            let a = col.as_fixed_size_binary();
            let s: StringArray = (0..a.len())
                .map(|i| {
                    a.is_valid(i).then(|| {
                        uuid::Uuid::from_slice(a.value(i))
                            .map(|u| u.hyphenated().to_string())
                            .unwrap_or_default()
                    })
                })
                .collect();
            Arc::new(s)
        }
        (ColumnType::Ipv4, DataType::UInt32) => {
            let a = col.as_primitive::<UInt32Type>();
            let s: StringArray = (0..a.len())
                .map(|i| {
                    a.is_valid(i)
                        .then(|| std::net::Ipv4Addr::from(a.value(i)).to_string())
                })
                .collect();
            Arc::new(s)
        }
        _ => cast(col, to)?,
    })
}
