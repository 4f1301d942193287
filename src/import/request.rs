//! The one place an adapter's options become an import: every way in
//! (COPY, `sluice import`, `/imp`, Arc's endpoint, COPY FROM STDIN) fills an
//! [`ImportRequest`], and the importer checks it with
//! [`ImportRequest::validate`] before it takes the import slot, so each
//! rule (names, dialect, timestamp and partitioning) is written once.

use std::path::PathBuf;

use super::analyze::Given;
use super::csv::Nulls;
use crate::error::{Error, Result};
use crate::schema::name::{self, NameKind};
use crate::time::PartitionBy;

/// What to do with a value that does not convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Drop the row (the default).
    SkipRow,
    /// Keep the row with NULL in the bad field.
    SkipColumn,
    /// Fail the whole import; the table stays as it was.
    Abort,
}

/// One import, as the COPY statement (or the CLI) asked for it.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub schema: String,
    pub table: String,
    /// The file name as written in the statement (for the log).
    pub file_name: String,
    /// The resolved path, already confined to the copy root.
    pub path: PathBuf,
    pub header: Option<bool>,
    pub timestamp: Option<String>,
    pub format: Option<String>,
    /// The delimiter, quote and escape bytes the caller gave (and whether
    /// it gave SKIP); the import sniffs the rest.
    pub dialect: Given,
    pub partition_by: Option<PartitionBy>,
    pub on_error: OnError,
    /// What the HTTP endpoints and COPY FROM STDIN add to COPY's options.
    pub options: ImportOptions,
}

/// A column type given by the caller (`/imp`'s `schema` part).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnOverride {
    pub name: String,
    pub ty: crate::schema::ColumnType,
    /// Timestamp pattern for a DATE/TIMESTAMP column.
    pub pattern: Option<String>,
}

/// Options beyond COPY's grammar; the defaults are COPY's behaviour.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Types for named file columns (a new table only).
    pub columns: Vec<ColumnOverride>,
    /// File columns renamed before they are mapped (Arc's time column,
    /// the console's edited names): `(file name, table name)`.
    pub rename: Vec<(String, String)>,
    /// Lines skipped before the header (SKIP, Arc's `skip_rows`).
    pub skip_lines: usize,
    /// Lines of the header when HEADER gives their number (the first
    /// names the columns; 0 and 1 mean one line).
    pub header_lines: usize,
    /// The file's text encoding when the caller named it (else UTF-8, or
    /// what a byte-order mark says).
    pub encoding: Option<super::encoding::TextEncoding>,
    /// Ignore values past the last column instead of rejecting the row.
    pub skip_extra_values: bool,
    /// Which fields are NULL (QuestDB's rule, or PostgreSQL's for COPY
    /// FROM STDIN).
    pub nulls: Nulls,
    /// Fail with `table does not exist` instead of creating the table.
    pub must_exist: bool,
    /// Integer timestamps: pick the epoch unit from the values' size.
    pub guess_epoch: bool,
    /// The file's column names, in order (COPY FROM STDIN's column list).
    pub column_names: Option<Vec<String>>,
    /// COPY's `DRY RUN true`: run every phase but write nothing.
    pub dry_run: bool,
    /// A COPY source on object storage (then `path` is unused): it is
    /// downloaded into the work root before the phases run.
    pub source: Option<RemoteSource>,
    /// The files of a glob or a directory, in name order (then `path` and
    /// `source` are unused and `file_name` is the pattern): one import,
    /// one commit.
    pub inputs: Vec<InputFile>,
    /// `FORCE true`: load files the table has loaded before again (the
    /// load ledger is in [`super::ledger`]).
    pub force: bool,
    /// The uploaded file `path` names, kept until the request (and so the
    /// import that owns it) is dropped, then removed.
    pub upload: Option<std::sync::Arc<super::source::TempFile>>,
}

/// One file of a COPY of several.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// The file as users know it: its path below the copy root, or its URL.
    pub name: String,
    pub path: PathBuf,
    pub source: Option<RemoteSource>,
}

/// An object COPY reads, already confined to a copy root.
#[derive(Debug, Clone)]
pub struct RemoteSource {
    pub bucket: std::sync::Arc<crate::storage::Bucket>,
    pub key: String,
}

impl ImportRequest {
    /// The request for one file of a COPY of several: the same options,
    /// that file's name and place.
    pub fn for_input(&self, input: &InputFile) -> ImportRequest {
        let mut one = self.clone();
        one.file_name = input.name.clone();
        one.path = input.path.clone();
        one.options.source = input.source.clone();
        one.options.inputs = Vec::new();
        one
    }

    /// The table as the log shows it (`schema.table` outside `public`).
    pub fn table_display(&self) -> String {
        if self.schema == crate::catalog::DEFAULT_SCHEMA {
            self.table.clone()
        } else {
            format!("{}.{}", self.schema, self.table)
        }
    }

    /// Checks the request as a whole: the target's names by the catalog's
    /// rule, the dialect's bytes, partitioning only with a designated
    /// timestamp.
    pub fn validate(&self) -> Result<()> {
        name::check(NameKind::Schema, &self.schema)?;
        name::check(NameKind::Table, &self.table)?;
        self.dialect
            .check()
            .map_err(|m| Error::bad_option("DELIMITER", m))?;
        // FORMAT alone is fine: it applies to an existing table's
        // designated timestamp.
        let partitioned = self.partition_by.is_some_and(|p| p != PartitionBy::None);
        if self.timestamp.is_none() && partitioned {
            return Err(Error::bad_option(
                "PARTITION BY",
                "invalid option used for import without a designated timestamp (format or partition by)",
            ));
        }
        Ok(())
    }
}
