//! The write-ahead log's compact row encoding: a record's rows as their
//! Arrow buffers, one after another, behind the table schema's Arrow IPC
//! message. A single-row INSERT spent a seventh of its server time in the
//! IPC writer (a flatbuffer per record, a validity bitmap made up for
//! every column without NULLs); this writes the same columns with a few
//! copies. Columns of the types a table holds are written this way; a
//! batch with any other type (none today) is written as an IPC stream,
//! and the log tells the two apart by their first four bytes.
//!
//! Layout after [`MARKER`]: the schema message's length (u32) and bytes,
//! the row count (u32), then per column its validity (a byte: 0 for no
//! NULLs, 1 followed by the bitmap) and its values: fixed-width values as
//! stored; booleans as a bitmap; text as `rows + 1` offsets from 0 and
//! the bytes; a SYMBOL column as its keys, then its dictionary as text
//! (its length first, as a u32). Integers are little-endian.

use datafusion::arrow::array::{Array, ArrayData, ArrayRef, AsArray, RecordBatch, make_array};
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;

use crate::error::{Error, Result};

/// A compact record's payload starts with this; an IPC stream's with
/// 0xFFFFFFFF, its continuation marker.
pub const MARKER: [u8; 4] = *b"SRW1";

/// Whether a column of `ty` can be written compactly.
fn supported(ty: &DataType) -> bool {
    match ty {
        DataType::Dictionary(k, v) => **k == DataType::Int32 && **v == DataType::Utf8,
        ty => ty == &DataType::Utf8 || ty == &DataType::Boolean || width(ty).is_some(),
    }
}

/// The byte width of a fixed-width column type.
fn width(ty: &DataType) -> Option<usize> {
    Some(match ty {
        DataType::Int8 => 1,
        DataType::Int16 => 2,
        DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4,
        DataType::Int64 | DataType::Float64 | DataType::Timestamp(..) => 8,
        DataType::FixedSizeBinary(16) => 16,
        _ => return None,
    })
}

/// Appends `batch` to `out` in the compact layout, behind `schema_message`
/// (the schema's framed IPC message); `false` (and `out` untouched) when a
/// column's type is not one this writes.
pub fn encode(batch: &RecordBatch, schema_message: &[u8], out: &mut Vec<u8>) -> bool {
    if !batch
        .schema()
        .fields()
        .iter()
        .all(|f| supported(f.data_type()))
    {
        return false;
    }
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&(schema_message.len() as u32).to_le_bytes());
    out.extend_from_slice(schema_message);
    out.extend_from_slice(&(batch.num_rows() as u32).to_le_bytes());
    for column in batch.columns() {
        column_bytes(column.as_ref(), out);
    }
    true
}

fn column_bytes(a: &dyn Array, out: &mut Vec<u8>) {
    match a.nulls().filter(|n| n.null_count() > 0) {
        Some(nulls) => {
            out.push(1);
            out.extend_from_slice(nulls.inner().sliced().as_slice());
        }
        None => out.push(0),
    }
    values_bytes(a, out);
}

fn values_bytes(a: &dyn Array, out: &mut Vec<u8>) {
    match a.data_type() {
        DataType::Boolean => out.extend_from_slice(a.as_boolean().values().sliced().as_slice()),
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            let offsets = s.value_offsets();
            let first = offsets[0];
            for o in offsets {
                out.extend_from_slice(&(o - first).to_le_bytes());
            }
            out.extend_from_slice(&s.value_data()[first as usize..offsets[s.len()] as usize]);
        }
        DataType::Dictionary(..) => {
            let d = a.as_dictionary::<Int32Type>();
            // The keys' validity is the column's, written above.
            values_bytes(d.keys(), out);
            let values = d.values();
            out.extend_from_slice(&(values.len() as u32).to_le_bytes());
            column_bytes(values.as_ref(), out);
        }
        ty => {
            let w = width(ty).expect("a supported fixed-width type");
            let data = a.to_data();
            let from = data.offset() * w;
            out.extend_from_slice(&data.buffers()[0].as_slice()[from..from + a.len() * w]);
        }
    }
}

/// Reads a compact payload (after its marker) back into a batch.
pub fn decode(payload: &[u8]) -> Result<RecordBatch> {
    let mut r = Reader {
        bytes: payload,
        at: MARKER.len(),
    };
    let schema_len = r.u32()? as usize;
    let schema = schema(r.take(schema_len)?)?;
    let rows = r.u32()? as usize;
    let columns = schema
        .fields()
        .iter()
        .map(|f| r.column(f.data_type(), rows))
        .collect::<Result<Vec<ArrayRef>>>()?;
    if r.at != payload.len() {
        return Err(corrupt("bytes after the last column"));
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The schema of a framed IPC schema message, read as a stream that ends
/// after it.
fn schema(message: &[u8]) -> Result<SchemaRef> {
    let mut stream = message.to_vec();
    stream.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    Ok(StreamReader::try_new(stream.as_slice(), None)?.schema())
}

fn corrupt(why: &str) -> Error {
    Error::Internal(format!("a compact write-ahead log record: {why}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let out = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| corrupt("cut short"))?;
        self.at += n;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn buffer(&mut self, n: usize) -> Result<Buffer> {
        Ok(Buffer::from(self.take(n)?))
    }

    fn column(&mut self, ty: &DataType, rows: usize) -> Result<ArrayRef> {
        let nulls = match self.take(1)?[0] {
            0 => None,
            1 => Some(self.buffer(rows.div_ceil(8))?),
            _ => return Err(corrupt("a bad validity byte")),
        };
        let data = self.values(ty, rows)?;
        let data = data
            .into_builder()
            .null_bit_buffer(nulls)
            .build()
            .map_err(|e| corrupt(&e.to_string()))?;
        Ok(make_array(data))
    }

    /// The values of a column without its validity.
    fn values(&mut self, ty: &DataType, rows: usize) -> Result<ArrayData> {
        let builder = ArrayData::builder(ty.clone()).len(rows);
        let builder = match ty {
            DataType::Boolean => builder.add_buffer(self.buffer(rows.div_ceil(8))?),
            DataType::Utf8 => {
                let offsets = self.take((rows + 1) * 4)?;
                let end = i32::from_le_bytes(offsets[rows * 4..].try_into().expect("4 bytes"));
                let offsets = Buffer::from(offsets);
                let end = usize::try_from(end).map_err(|_| corrupt("a negative offset"))?;
                builder.add_buffer(offsets).add_buffer(self.buffer(end)?)
            }
            DataType::Dictionary(..) => {
                let keys = self.values(&DataType::Int32, rows)?;
                let count = self.u32()? as usize;
                let values = self.column(&DataType::Utf8, count)?;
                builder
                    .add_buffer(keys.buffers()[0].clone())
                    .add_child_data(values.to_data())
            }
            ty => match width(ty) {
                Some(w) => builder.add_buffer(self.buffer(rows * w)?),
                None => return Err(corrupt("a column type it does not hold")),
            },
        };
        builder.build().map_err(|e| corrupt(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BooleanArray, DictionaryArray, FixedSizeBinaryArray, Float32Array, Float64Array, Int8Array,
        Int16Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray, UInt32Array,
    };
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::ipc::writer::{IpcDataGenerator, IpcWriteOptions, write_message};

    use super::*;

    fn message(schema: &SchemaRef) -> Vec<u8> {
        let options = IpcWriteOptions::default();
        let mut tracker = datafusion::arrow::ipc::writer::DictionaryTracker::new(false);
        let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
            schema,
            &mut tracker,
            &options,
        );
        let mut framed = Vec::new();
        write_message(&mut framed, encoded, &options).unwrap();
        framed
    }

    /// Every column type a table holds, with and without NULLs, whole and
    /// sliced (an array's offset is not written: values start at 0).
    #[test]
    fn every_table_type_reads_back_as_written() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
            Arc::new(Int8Array::from(vec![1, -2, 3, 4])),
            Arc::new(Int16Array::from(vec![Some(1), None, Some(-3), None])),
            Arc::new(Int32Array::from(vec![7, 8, 9, 10])),
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(0),
                None,
                Some(i64::MAX),
            ])),
            Arc::new(Float32Array::from(vec![1.5, f32::NAN, -0.0, 2.0])),
            Arc::new(Float64Array::from(vec![
                Some(0.25),
                None,
                Some(1e300),
                Some(-1.0),
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1), Some(2), None, Some(4)])
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some(""),
                Some("ünï"),
            ])),
            Arc::new(
                vec![Some("x"), Some("y"), None, Some("x")]
                    .into_iter()
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some([1u8; 16]), None, Some([2u8; 16]), Some([3u8; 16])].into_iter(),
                    16,
                )
                .unwrap(),
            ),
            Arc::new(UInt32Array::from(vec![Some(1), Some(2), Some(3), None])),
        ];
        let fields: Vec<Field> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Field::new(format!("c{i}"), c.data_type().clone(), true)
                    .with_metadata([("questdb.type".to_string(), format!("t{i}"))].into())
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let whole = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let framed = message(&schema);
        for batch in [
            whole.clone(),
            whole.slice(1, 3),
            whole.slice(3, 1),
            whole.slice(0, 0),
        ] {
            let mut out = Vec::new();
            assert!(encode(&batch, &framed, &mut out));
            let back = decode(&out).unwrap();
            assert_eq!(back.schema(), schema);
            assert_eq!(back, batch);
        }
    }

    #[test]
    fn other_types_are_left_to_ipc_and_damage_is_reported() {
        let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(datafusion::arrow::array::Date32Array::from(vec![
                1,
            ]))],
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(!encode(&batch, &message(&schema), &mut out));
        assert!(out.is_empty());

        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(encode(&batch, &message(&schema), &mut out));
        assert!(decode(&out[..out.len() - 1]).is_err());
        out.push(0);
        assert!(decode(&out).is_err());
    }
}
