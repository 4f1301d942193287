//! Records to table rows: decodes the fields of one record into the
//! table's column builders, applying the ON ERROR rule. Shared by the
//! parallel (per partition) and serial importers.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

use super::analyze::Plan;
use super::csv::Field;
use super::decode::{ColumnBuilder, TimestampParser, Value, parse_value};
use super::{ErrorSink, OnError, RowError, shown_value};
use crate::catalog::ColumnType;

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
            .map(|c| ColumnBuilder::new(c.ty, capacity))
            .collect();
        RowDecoder {
            columns,
            builders,
            schema: plan.meta.arrow_schema(),
            file_columns: plan.file_columns,
            on_error,
        }
    }

    pub fn rows(&self) -> usize {
        self.builders.first().map_or(0, |b| b.len())
    }

    /// Decodes one record. `known` is a column whose value was already
    /// parsed (the designated timestamp at indexing). Under ABORT the first
    /// error is returned; otherwise errors go to `sink`.
    pub fn push<'a>(
        &mut self,
        buf: &'a [u8],
        fields: &[Field],
        offset: u64,
        known: Option<(usize, i64)>,
        values: &mut Vec<Value<'a>>,
        sink: &ErrorSink,
    ) -> Result<Outcome, RowError> {
        values.clear();
        let mut skip = false;
        for (i, col) in self.columns.iter().enumerate() {
            if let Some((k, v)) = known
                && k == i
            {
                values.push(Value::Int(v));
                continue;
            }
            let field = match col.source.and_then(|s| fields.get(s)) {
                Some(f) if !f.is_null(buf) => f,
                _ => {
                    values.push(Value::Null);
                    continue;
                }
            };
            match parse_value(field.value(buf), col.ty, col.parser.as_ref()) {
                Ok(v) => values.push(v),
                Err(reason) => {
                    // Errors are rare: decode the text again for the report.
                    let e = RowError {
                        offset,
                        column: Some(col.name.clone()),
                        value: Some(shown_value(&field.value(buf))),
                        message: format!("cannot convert to {}: {reason}", col.ty.name()),
                    };
                    match self.on_error {
                        OnError::Abort => return Err(e),
                        OnError::SkipRow => {
                            sink.push(e);
                            skip = true;
                            break;
                        }
                        OnError::SkipColumn => {
                            sink.push(e);
                            values.push(Value::Null);
                        }
                    }
                }
            }
        }
        if !skip && fields.len() > self.file_columns {
            // Extra fields that hold data would be lost: that is an error.
            // Empty trailing fields (`a,b,`) carry nothing and pass.
            let extra = &fields[self.file_columns..];
            if let Some(f) = extra.iter().find(|f| f.start != f.end) {
                let e = RowError {
                    offset,
                    column: None,
                    value: Some(shown_value(&f.value(buf))),
                    message: format!(
                        "too many fields [expected={}, found={}]",
                        self.file_columns,
                        fields.len()
                    ),
                };
                match self.on_error {
                    OnError::Abort => return Err(e),
                    OnError::SkipRow => {
                        sink.push(e);
                        skip = true;
                    }
                    OnError::SkipColumn => sink.push(e),
                }
            }
        }
        if skip {
            return Ok(Outcome::Skipped);
        }
        for (b, v) in self.builders.iter_mut().zip(values.iter()) {
            match v {
                Value::Null => b.push_null(),
                v => b.push(v),
            }
        }
        Ok(Outcome::Imported)
    }

    /// The rows decoded so far as one batch; the decoder starts over.
    pub fn finish(&mut self) -> RecordBatch {
        let columns = self.builders.iter_mut().map(|b| b.finish()).collect();
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .expect("builders follow the table schema")
    }
}
