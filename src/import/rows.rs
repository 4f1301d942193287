//! Records to table rows: decodes the fields of one record into the
//! table's column buffers, applying the ON ERROR rule (a skipped row is
//! taken back from every column). Shared by the
//! parallel (per partition) and serial importers.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

use super::analyze::Plan;
use super::csv::{Field, Nulls};
use super::decode::{ColumnBuilder, TimestampParser};
use super::reject::{FieldFate, Rejection};
use super::{ErrorSink, OnError, RowError};
use crate::schema::ColumnType;

struct Column {
    name: String,
    ty: ColumnType,
    source: Option<usize>,
    parser: Option<TimestampParser>,
}

/// Builds batches of the table's schema from records.
pub struct RowDecoder {
    columns: Vec<Column>,
    builders: Vec<ColumnBuilder>,
    schema: SchemaRef,
    file_columns: usize,
    on_error: OnError,
    /// Rows in the builders (every builder has this many values).
    rows: usize,
    nulls: Nulls,
    skip_extra_values: bool,
    /// The designated timestamp's table column: never NULLed.
    designated: Option<usize>,
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Imported,
    Skipped,
}

impl RowDecoder {
    pub fn new(plan: &Plan, on_error: OnError, capacity: usize) -> RowDecoder {
        let columns: Vec<Column> = plan
            .meta
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| Column {
                name: c.name.clone(),
                ty: c.ty,
                source: plan.sources[i],
                parser: plan.parsers[i].clone(),
            })
            .collect();
        let builders = columns
            .iter()
            .zip(&plan.inferred)
            .map(|(c, &inferred)| ColumnBuilder::new(c.ty, capacity).inferred(inferred))
            .collect();
        RowDecoder {
            columns,
            builders,
            schema: plan.meta.arrow_schema(),
            file_columns: plan.file_columns,
            on_error,
            rows: 0,
            nulls: plan.nulls.clone(),
            skip_extra_values: plan.skip_extra_values,
            designated: plan.timestamp.map(|(c, _)| c),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// A batch is due: the row target is reached, or the text held nears
    /// what Utf8's 32-bit offsets can address.
    pub fn full(&self, batch_rows: usize) -> bool {
        self.rows >= batch_rows || self.builders.iter().any(|b| b.text_bytes() > 1 << 30)
    }

    /// Decodes one record. `known` is a column whose value was already
    /// parsed (the designated timestamp at indexing). Under ABORT the first
    /// error is returned; otherwise errors go to `sink`. A record that is
    /// not imported leaves no value behind in any column.
    pub fn push(
        &mut self,
        buf: &[u8],
        fields: &[Field],
        offset: u64,
        known: Option<(usize, i64)>,
        sink: &ErrorSink,
    ) -> Result<Outcome, RowError> {
        let policy = Rejection {
            on_error: self.on_error,
            sink,
        };
        let row = self.rows;
        let mut failed: Option<RowError> = None;
        for (i, (col, b)) in self
            .columns
            .iter()
            .zip(self.builders.iter_mut())
            .enumerate()
        {
            if let Some((k, v)) = known
                && k == i
            {
                b.push_int(v);
                continue;
            }
            let designated = self.designated == Some(i);
            let field = match col.source.and_then(|s| fields.get(s)) {
                Some(f) if !f.is_null(buf, &self.nulls) => f,
                _ if designated => {
                    failed = Some(RowError::missing_timestamp(offset, &col.name));
                    break;
                }
                _ => {
                    b.push_null();
                    continue;
                }
            };
            let value = field.value(buf);
            if let Err(reason) = b.push_text(&value, col.parser.as_ref()) {
                let e = RowError::bad_value(offset, &col.name, col.ty, designated, &value, &reason);
                match policy.field(designated) {
                    FieldFate::Null => {
                        sink.push(e);
                        b.push_null();
                    }
                    FieldFate::DropRow => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if failed.is_none() && !self.skip_extra_values && fields.len() > self.file_columns {
            // Extra fields that hold data would be lost: that is an error.
            // Empty trailing fields (`a,b,`) carry nothing and pass.
            let extra = &fields[self.file_columns..];
            if let Some(f) = extra.iter().find(|f| f.start != f.end) {
                let e =
                    RowError::extra_fields(offset, self.file_columns, fields.len(), &f.value(buf));
                match policy.field(false) {
                    FieldFate::Null => sink.push(e),
                    FieldFate::DropRow => failed = Some(e),
                }
            }
        }
        if let Some(e) = failed {
            for b in &mut self.builders {
                b.truncate(row);
            }
            policy.record(e)?;
            return Ok(Outcome::Skipped);
        }
        self.rows += 1;
        Ok(Outcome::Imported)
    }

    /// The rows decoded so far as one batch; the decoder starts over.
    pub fn finish(&mut self) -> RecordBatch {
        self.rows = 0;
        let columns = self.builders.iter_mut().map(|b| b.finish()).collect();
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .expect("builders follow the table schema")
    }
}
