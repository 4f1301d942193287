//! The one rejection policy. Every phase and the serial importer hand a
//! record or field that cannot be imported to [`Rejection`], which applies
//! ON ERROR (drop the row, NULL the field, or abort) and records the error
//! row for `sys.text_import_errors`. The error rows themselves are made by
//! [`RowError`]'s constructors, so one cause has one message everywhere.

use super::{ErrorSink, OnError, RowError, shown_value};
use crate::schema::ColumnType;

impl RowError {
    /// The file ended inside a quoted field, the `field`-th (0-based) of
    /// its record; `names` are the file's column names.
    pub fn open_quote(offset: u64, field: usize, names: &[String]) -> RowError {
        RowError {
            offset,
            column: Some(
                names
                    .get(field)
                    .cloned()
                    .unwrap_or_else(|| format!("<field {}>", field + 1)),
            ),
            value: None,
            message: "quote is missing: the file ends inside a quoted field".into(),
        }
    }

    /// The designated timestamp is empty or NULL.
    pub fn missing_timestamp(offset: u64, column: &str) -> RowError {
        RowError {
            offset,
            column: Some(column.to_string()),
            value: None,
            message: "designated timestamp is missing".into(),
        }
    }

    /// A value that does not convert to its column's type. The designated
    /// timestamp says so in its own words, whichever importer read it.
    pub fn bad_value(
        offset: u64,
        column: &str,
        ty: ColumnType,
        designated: bool,
        raw: &[u8],
        reason: &str,
    ) -> RowError {
        RowError {
            offset,
            column: Some(column.to_string()),
            value: Some(shown_value(raw)),
            message: if designated {
                format!("could not parse timestamp: {reason}")
            } else {
                format!("cannot convert to {}: {reason}", ty.name())
            },
        }
    }

    /// Fields past the last column that hold data.
    pub fn extra_fields(offset: u64, expected: usize, found: usize, raw: &[u8]) -> RowError {
        RowError {
            offset,
            column: Some(format!("<field {}>", expected + 1)),
            value: Some(shown_value(raw)),
            message: format!("too many fields [expected={expected}, found={found}]"),
        }
    }
}

/// What became of a field that did not convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldFate {
    /// The row goes on with NULL in the field (SKIP_COLUMN).
    Null,
    /// The row is dropped (SKIP_ROW, and always for the designated
    /// timestamp, which cannot be NULL).
    DropRow,
}

/// ON ERROR applied to one import's bad records and fields.
#[derive(Clone, Copy)]
pub struct Rejection<'a> {
    pub on_error: OnError,
    pub sink: &'a ErrorSink,
}

impl Rejection<'_> {
    /// A record that cannot be imported at all (an open quote, a missing or
    /// bad designated timestamp): recorded and dropped; under ABORT the
    /// error is returned instead.
    pub fn record(&self, e: RowError) -> Result<(), RowError> {
        if self.on_error == OnError::Abort {
            // The row that stops the import is listed like any other
            // rejected row, so `sys.text_import_errors` names it too.
            self.sink.push(e.clone());
            return Err(e);
        }
        self.sink.push(e);
        Ok(())
    }

    /// A field that did not convert. Under SKIP_COLUMN the field becomes
    /// NULL (not the designated timestamp); otherwise the row is dropped.
    /// Recorded at once when the field is NULLed; a dropped row's error is
    /// recorded by [`Rejection::record`] once the row is taken back.
    pub fn field(&self, designated: bool) -> FieldFate {
        if self.on_error == OnError::SkipColumn && !designated {
            FieldFate::Null
        } else {
            FieldFate::DropRow
        }
    }
}
