//! `COPY … TO STDOUT`: rows encoded batch by batch in PostgreSQL's text,
//! CSV or binary COPY format. The encoder is fed one record batch at a
//! time, so the result need not be held whole.

use std::fmt::Write as _;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, SchemaRef,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt32Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::present::{nanos_text, present_batch, present_schema};
use crate::engine::Rows;
use crate::error::Result;
use crate::import::csv::FieldWriter;
use crate::schema::ColumnType;
use futures::StreamExt;

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// The binary format's fixed header: signature, flags, extension length.
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The binary format's trailer: a field count of -1.
const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// How the rows are written.
pub enum CopyFormat {
    /// Text or CSV lines through one field writer; `header` names the
    /// columns first (CSV only).
    Lines { writer: FieldWriter, header: bool },
    /// PostgreSQL's binary COPY format.
    Binary,
}

/// Encodes the rows of one `COPY … TO STDOUT`.
pub struct CopyEncoder {
    format: CopyFormat,
    schema: SchemaRef,
    presented: SchemaRef,
    cell: String,
}

impl CopyEncoder {
    pub fn new(format: CopyFormat, schema: SchemaRef) -> CopyEncoder {
        CopyEncoder {
            presented: present_schema(&schema),
            format,
            schema,
            cell: String::new(),
        }
    }

    /// The number of columns (announced in CopyOutResponse).
    pub fn columns(&self) -> usize {
        self.schema.fields().len()
    }

    /// Whether the data is binary (CopyOutResponse's overall format).
    pub fn is_binary(&self) -> bool {
        matches!(self.format, CopyFormat::Binary)
    }

    /// What comes before the first row: the binary header or the CSV
    /// header line (possibly nothing).
    pub fn start(&mut self, out: &mut Vec<u8>) {
        match &self.format {
            CopyFormat::Binary => out.extend_from_slice(BINARY_HEADER),
            CopyFormat::Lines { writer, header } if *header => {
                let delimiter = writer.delimiter();
                for (i, f) in self.presented.fields().iter().enumerate() {
                    if i > 0 {
                        out.push(delimiter);
                    }
                    writer.value(f.name().as_bytes(), false, out);
                }
                out.push(b'\n');
            }
            CopyFormat::Lines { .. } => {}
        }
    }

    /// What comes after the last row (the binary trailer; nothing for
    /// text). pgwire's CopyResponse appends it itself in binary mode, so
    /// only other outputs (the CLI) write it.
    pub fn trailer(binary: bool) -> &'static [u8] {
        if binary { BINARY_TRAILER } else { b"" }
    }

    /// The messages of `rows`: one per row, the header with the first
    /// (alone when there is no row), encoded batch by batch as the rows
    /// stream.
    pub fn encode(
        mut self,
        rows: Rows,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes>> + Send + 'static {
        let mut head = Vec::new();
        self.start(&mut head);
        let state = Some((rows, self, head));
        futures::stream::unfold(state, |state| async move {
            let (mut rows, mut encoder, mut out) = state?;
            match rows.next().await {
                Some(Ok(batch)) => {
                    let mut ends = Vec::with_capacity(batch.num_rows());
                    if let Err(e) = encoder.batch(&batch, &mut out, &mut ends) {
                        return Some((vec![Err(e)], None));
                    }
                    let data = bytes::Bytes::from(out);
                    let mut from = 0;
                    let messages = ends
                        .into_iter()
                        .map(|end| {
                            let m = data.slice(from..end);
                            from = end;
                            Ok(m)
                        })
                        .collect::<Vec<_>>();
                    // (A batch without rows keeps the header for the next.)
                    let rest = if messages.is_empty() {
                        data.to_vec()
                    } else {
                        Vec::new()
                    };
                    Some((messages, Some((rows, encoder, rest))))
                }
                Some(Err(e)) => Some((vec![Err(e)], None)),
                None if out.is_empty() => None,
                None => Some((vec![Ok(bytes::Bytes::from(out))], None)),
            }
        })
        .flat_map(futures::stream::iter)
    }

    /// Appends the rows of `batch` to `out`, and where each row ends to
    /// `ends` (PostgreSQL sends a row per CopyData message, and clients
    /// count them for the `COPY n` tag).
    pub fn batch(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        match &self.format {
            CopyFormat::Binary => {
                let columns = batch
                    .schema()
                    .fields()
                    .iter()
                    .zip(batch.columns())
                    .map(|(f, c)| BinaryColumn::of(ColumnType::of_field(f), c))
                    .collect::<Result<Vec<_>>>()?;
                for r in 0..batch.num_rows() {
                    out.extend_from_slice(&(columns.len() as i16).to_be_bytes());
                    for c in &columns {
                        c.put(r, out);
                    }
                    ends.push(out.len());
                }
            }
            CopyFormat::Lines { writer, .. } => {
                let delimiter = writer.delimiter();
                let opts = FormatOptions::new()
                    .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
                    .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"));
                let batch = present_batch(batch, &self.presented)?;
                let formatters = batch
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                for r in 0..batch.num_rows() {
                    for (i, (col, f)) in batch.columns().iter().zip(&formatters).enumerate() {
                        if i > 0 {
                            out.push(delimiter);
                        }
                        if col.is_null(r) {
                            writer.null(out);
                        } else {
                            // One buffer for every value's text.
                            self.cell.clear();
                            let _ = write!(self.cell, "{}", f.value(r));
                            writer.value(self.cell.as_bytes(), false, out);
                        }
                    }
                    out.push(b'\n');
                    ends.push(out.len());
                }
            }
        }
        Ok(())
    }
}

/// One column as PostgreSQL's binary format writes its values: the
/// binary form of the type the column is announced as in results
/// (`pg_type::oid_of_column`), text for the types announced as text.
enum BinaryColumn {
    Bool(ArrayRef),
    I16(ArrayRef),
    I32(ArrayRef),
    I64(ArrayRef),
    F32(ArrayRef),
    F64(ArrayRef),
    /// Microseconds since 1970, any unit but nanoseconds converted.
    Timestamp(Vec<Option<i64>>),
    Date(ArrayRef),
    Uuid(ArrayRef),
    /// Dotted text, as in query results.
    Ipv4(ArrayRef),
    /// UTF-8 text (or raw bytes for a binary column).
    Bytes(ArrayRef),
    /// TIMESTAMP_NS: text with all nine digits, as in query results
    /// (PostgreSQL's binary timestamp holds microseconds).
    Nanos(ArrayRef),
}

impl BinaryColumn {
    fn of(ty: ColumnType, col: &ArrayRef) -> Result<BinaryColumn> {
        let c = col.clone();
        Ok(match (ty, col.data_type()) {
            (ColumnType::Uuid, DataType::FixedSizeBinary(16)) => BinaryColumn::Uuid(c),
            (ColumnType::Ipv4, DataType::UInt32) => BinaryColumn::Ipv4(c),
            (_, DataType::Boolean) => BinaryColumn::Bool(c),
            (_, DataType::Int8 | DataType::Int16 | DataType::UInt8) => {
                BinaryColumn::I16(cast(col, &DataType::Int16)?)
            }
            (_, DataType::Int32 | DataType::UInt16) => {
                BinaryColumn::I32(cast(col, &DataType::Int32)?)
            }
            (_, DataType::Int64 | DataType::UInt32) => {
                BinaryColumn::I64(cast(col, &DataType::Int64)?)
            }
            (_, DataType::Float32) => BinaryColumn::F32(c),
            (_, DataType::Float64) => BinaryColumn::F64(c),
            (_, DataType::Date32) => BinaryColumn::Date(c),
            (_, DataType::Timestamp(TimeUnit::Nanosecond, _)) => BinaryColumn::Nanos(c),
            (_, DataType::Timestamp(unit, _)) => {
                let micros = |v: Option<i64>, per: i64, mul: bool| {
                    v.map(|v| if mul { v * per } else { v / per })
                };
                BinaryColumn::Timestamp(match unit {
                    TimeUnit::Second => col
                        .as_primitive::<TimestampSecondType>()
                        .iter()
                        .map(|v| micros(v, 1_000_000, true))
                        .collect(),
                    TimeUnit::Millisecond => col
                        .as_primitive::<TimestampMillisecondType>()
                        .iter()
                        .map(|v| micros(v, 1_000, true))
                        .collect(),
                    _ => col
                        .as_primitive::<TimestampMicrosecondType>()
                        .iter()
                        .collect(),
                })
            }
            (_, DataType::Binary | DataType::Utf8) => BinaryColumn::Bytes(c),
            _ => BinaryColumn::Bytes(cast(col, &DataType::Utf8)?),
        })
    }

    /// Appends row `r`: its length (-1 for NULL), then its bytes.
    fn put(&self, r: usize, out: &mut Vec<u8>) {
        let field = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        let null = |out: &mut Vec<u8>| out.extend_from_slice(&(-1i32).to_be_bytes());
        let array: &dyn Array = match self {
            BinaryColumn::Timestamp(v) => {
                match v[r] {
                    Some(us) => field(out, &(us - PG_EPOCH_MICROS).to_be_bytes()),
                    None => null(out),
                }
                return;
            }
            BinaryColumn::Bool(a)
            | BinaryColumn::I16(a)
            | BinaryColumn::I32(a)
            | BinaryColumn::I64(a)
            | BinaryColumn::F32(a)
            | BinaryColumn::F64(a)
            | BinaryColumn::Date(a)
            | BinaryColumn::Uuid(a)
            | BinaryColumn::Ipv4(a)
            | BinaryColumn::Bytes(a)
            | BinaryColumn::Nanos(a) => a.as_ref(),
        };
        if array.is_null(r) {
            null(out);
            return;
        }
        match self {
            BinaryColumn::Bool(a) => field(out, &[u8::from(a.as_boolean().value(r))]),
            BinaryColumn::I16(a) => {
                field(out, &a.as_primitive::<Int16Type>().value(r).to_be_bytes())
            }
            BinaryColumn::I32(a) => {
                field(out, &a.as_primitive::<Int32Type>().value(r).to_be_bytes())
            }
            BinaryColumn::I64(a) => {
                field(out, &a.as_primitive::<Int64Type>().value(r).to_be_bytes())
            }
            BinaryColumn::F32(a) => field(
                out,
                &a.as_primitive::<Float32Type>()
                    .value(r)
                    .to_bits()
                    .to_be_bytes(),
            ),
            BinaryColumn::F64(a) => field(
                out,
                &a.as_primitive::<Float64Type>()
                    .value(r)
                    .to_bits()
                    .to_be_bytes(),
            ),
            BinaryColumn::Date(a) => field(
                out,
                &(a.as_primitive::<Date32Type>().value(r) - PG_EPOCH_DAYS).to_be_bytes(),
            ),
            BinaryColumn::Uuid(a) => field(out, a.as_fixed_size_binary().value(r)),
            BinaryColumn::Bytes(a) => match a.data_type() {
                DataType::Binary => field(out, a.as_binary::<i32>().value(r)),
                _ => field(out, a.as_string::<i32>().value(r).as_bytes()),
            },
            BinaryColumn::Ipv4(a) => {
                let ip = std::net::Ipv4Addr::from(a.as_primitive::<UInt32Type>().value(r));
                field(out, ip.to_string().as_bytes())
            }
            BinaryColumn::Nanos(a) => {
                let v = a.as_primitive::<TimestampNanosecondType>().value(r);
                field(out, nanos_text(v).as_bytes())
            }
            BinaryColumn::Timestamp(_) => {}
        }
    }
}
