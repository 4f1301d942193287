//! `COPY t FROM 'file'` and `COPY 'id' CANCEL`: statement checks, path
//! confinement to the copy root, and the hand-over to the importer.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::copy_out::{CopyEncoder, CopyFormat};
use super::{Engine, Output, Rows};
use crate::config::CopyRoot;
use crate::error::{Error, Result};
use crate::import::analyze::Given;
use crate::import::csv::{Dialect, FieldWriter, Nulls, Tail};
use crate::import::encoding::TextEncoding;
use crate::import::pgbinary::{BinaryToCsv, Wire};
use crate::import::pgtext::TextToCsv;
use crate::import::source::Spool;
use crate::import::{ImportOptions, ImportRequest, OnError, RemoteSource, parse_id};
use crate::sql::{Copy, CopyFromStdin, CopyOnError, CopySource, PgCopyFormat, PgCopyOptions};
use crate::storage::S3Url;

/// Result columns of COPY (`id`) and COPY CANCEL (`id`, `status`).
pub fn copy_schema(cancel: bool) -> SchemaRef {
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    if cancel {
        fields.push(Field::new("status", DataType::Utf8, false));
    }
    Arc::new(Schema::new(fields))
}

fn one_row(schema: SchemaRef, values: &[&str]) -> Result<Output> {
    let columns = values
        .iter()
        .map(|v| Arc::new(StringArray::from(vec![*v])) as _)
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok(Output::Rows(Rows::from_batches(schema, vec![batch])))
}

/// Resolves `name` inside the copy root without opening anything:
/// `..` is refused, an absolute path must lie below the root (or name a
/// file below it, QuestDB's leading `/`), and symlinks may not lead out.
pub fn resolve_copy_path(root: &Path, name: &str) -> std::result::Result<PathBuf, String> {
    let outside = || {
        format!(
            "file is outside the copy root [file={name}, copy root={}]",
            root.display()
        )
    };
    let given = Path::new(name);
    if given.components().any(|c| c == Component::ParentDir) {
        return Err("'.' is not allowed".into());
    }
    let canon_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let candidate = if given.is_absolute() {
        if given.starts_with(root) || given.starts_with(&canon_root) {
            given.to_path_buf()
        } else {
            let inside = root.join(name.trim_start_matches(['/', '\\']));
            if !inside.exists() {
                return Err(outside());
            }
            inside
        }
    } else {
        root.join(given)
    };
    // A file that does not exist is reported by the import (its log says
    // so); one that exists must really be inside the root.
    if let Ok(real) = candidate.canonicalize()
        && !real.starts_with(&canon_root)
    {
        return Err(format!(
            "file leads outside the copy root through a symbolic link [file={name}, target={}]",
            real.display()
        ));
    }
    Ok(candidate)
}

impl Engine {
    /// Confines a COPY source to the copy roots: an `s3://` URL must lie
    /// below a bucket root, a path below a local root (a relative one is
    /// taken below the first).
    pub(super) fn resolve_source(
        &self,
        name: &str,
    ) -> std::result::Result<(PathBuf, Option<RemoteSource>), String> {
        let roots = &self.config.copy_roots;
        let shown = || {
            roots
                .iter()
                .map(|r| match r {
                    CopyRoot::Local(p) => p.display().to_string(),
                    CopyRoot::S3(u) => u.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        if let Some(url) = S3Url::parse(name) {
            let url = url?;
            let inside = roots.iter().any(|r| match r {
                CopyRoot::S3(root) => root.contains(&url) && url.prefix != root.prefix,
                CopyRoot::Local(_) => false,
            });
            let bucket = self
                .buckets
                .get(&url.bucket)
                .filter(|_| inside && !url.prefix.is_empty());
            return match bucket {
                Some(b) => Ok((
                    PathBuf::from(name),
                    Some(RemoteSource {
                        bucket: Arc::clone(b),
                        key: url.prefix,
                    }),
                )),
                None => Err(format!(
                    "file is outside the copy root [file={name}, copy root={}]",
                    shown()
                )),
            };
        }
        let locals: Vec<&Path> = roots
            .iter()
            .filter_map(|r| match r {
                CopyRoot::Local(p) => Some(p.as_path()),
                CopyRoot::S3(_) => None,
            })
            .collect();
        let Some(first) = locals.first() else {
            return Err(format!(
                "file is outside the copy root [file={name}, copy root={}]",
                shown()
            ));
        };
        let given = Path::new(name);
        let root = locals
            .iter()
            .find(|r| given.is_absolute() && given.starts_with(r))
            .unwrap_or(first);
        resolve_copy_path(root, name).map(|p| (p, None))
    }

    pub(super) async fn copy(&self, c: Copy) -> Result<Output> {
        if self.config.copy_roots.is_empty() {
            return Err(Error::invalid(
                "COPY is disabled ['cairo.sql.copy.root' is not set?]",
            ));
        }
        let invalid = |message| Error::Invalid {
            message,
            position: Some(c.file_position),
        };
        // A glob or a directory: its files, in name order (one is imported
        // as that file).
        let (file_name, path, source, inputs) = if super::sources::is_pattern(&c.file) {
            let mut files = self.expand(&c.file).map_err(invalid)?;
            if files.len() == 1 {
                let f = files.remove(0);
                (f.name, f.path, f.source, Vec::new())
            } else {
                (c.file.clone(), PathBuf::new(), None, files)
            }
        } else {
            let (path, source) = self.resolve_source(&c.file).map_err(invalid)?;
            (c.file.clone(), path, source, Vec::new())
        };
        let encoding = match &c.encoding {
            Some(name) => Some(TextEncoding::parse(name).ok_or_else(|| {
                Error::bad_option(
                    "ENCODING",
                    format!(
                    "unknown encoding '{name}' (utf-8, latin-1, windows-1252, utf-16, utf-16le or utf-16be)"
                ))
            })?),
            None => None,
        };
        let (delimiter, tail) = match c.delimiter.as_deref().and_then(Tail::split) {
            Some((first, tail)) => (Some(first), tail),
            None => (None, Tail::NONE),
        };
        let req = ImportRequest {
            schema: c.table.schema.clone(),
            table: c.table.name.clone(),
            file_name,
            path,
            header: c.header,
            timestamp: c.timestamp,
            format: c.format,
            dialect: Given {
                delimiter,
                tail,
                quote: c.quote,
                escape: c.escape,
                skip: c.skip.is_some(),
            },
            partition_by: c.partition_by,
            on_error: match c.on_error.unwrap_or(CopyOnError::SkipRow) {
                CopyOnError::SkipRow => OnError::SkipRow,
                CopyOnError::SkipColumn => OnError::SkipColumn,
                CopyOnError::Abort => OnError::Abort,
            },
            options: ImportOptions {
                source,
                inputs,
                force: c.force,
                skip_lines: c.skip.unwrap_or(0),
                header_lines: c.header_lines.unwrap_or(1),
                encoding,
                ..Default::default()
            },
        };
        if !self.catalog.schema_exists(&req.schema) {
            return Err(Error::SchemaNotFound { schema: req.schema });
        }
        if c.dry_run {
            // A dry run answers with its report, so it runs to the end
            // before the statement returns.
            let table = req.table_display();
            let file = req.file_name.clone();
            let summary = self.dry_run_file(req).await?;
            let rows = super::dry_run::rows(&file, &table, &summary);
            let batch = super::dry_run::batch(&rows)?;
            return Ok(Output::Rows(Rows::from_batches(
                super::dry_run::schema(),
                vec![batch],
            )));
        }
        let id = self.importer.submit(req)?;
        one_row(copy_schema(false), &[&id])
    }

    pub(super) fn copy_cancel(&self, id: String) -> Result<Output> {
        let Some(parsed) = parse_id(&id) else {
            return Err(Error::Syntax {
                message: format!("copy cancel ID format is invalid: '{id}'"),
                position: 0,
            });
        };
        let status = self
            .exporter
            .as_ref()
            .and_then(|e| e.cancel(&parsed))
            .or_else(|| self.importer.cancel(&parsed));
        // QuestDB's word for an id it has never seen.
        let status = status.map_or("unknown", |s| s.as_str());
        one_row(copy_schema(true), &[&id, status])
    }
}

/// An accepted `COPY t FROM STDIN`: where the rows go and how they are
/// written.
#[derive(Debug, Clone)]
pub struct CopyIn {
    pub schema: String,
    pub table: String,
    /// The columns the data holds, in order (all of the table's when the
    /// statement named none).
    pub columns: Vec<String>,
    named_columns: bool,
    pub options: PgCopyOptions,
}

/// The rows of `COPY … TO STDOUT`, encoded as they stream (without the
/// binary trailer: see [`CopyEncoder::trailer`]).
pub struct CopyOut {
    pub columns: usize,
    /// Binary COPY format (else text or CSV).
    pub binary: bool,
    /// One row per message (the header with the first).
    pub messages: futures::stream::BoxStream<'static, Result<bytes::Bytes>>,
}

impl std::fmt::Debug for CopyOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOut")
            .field("columns", &self.columns)
            .field("binary", &self.binary)
            .finish()
    }
}

/// Receives the data of one COPY FROM STDIN into a spool (text format
/// rewritten as CSV on the way). An error is kept and reported when the
/// client finishes, as PostgreSQL does.
pub struct CopyInSink {
    spec: CopyIn,
    spool: Spool,
    rewrite: Option<Rewrite>,
    error: Option<Error>,
    scratch: Vec<u8>,
}

/// PostgreSQL's text and binary formats are rewritten as CSV on the way
/// into the spool, so every format reaches the importer as CSV.
enum Rewrite {
    Text(TextToCsv),
    Binary(BinaryToCsv),
}

impl std::fmt::Debug for CopyInSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyInSink")
            .field("table", &self.spec.table)
            .finish_non_exhaustive()
    }
}

impl CopyInSink {
    pub fn columns(&self) -> usize {
        self.spec.columns.len()
    }

    /// Takes the next piece of data.
    pub fn write(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.scratch.clear();
        let r = match &mut self.rewrite {
            Some(Rewrite::Text(t)) => {
                t.feed(data, &mut self.scratch);
                self.spool.write(&self.scratch).map_err(Error::from)
            }
            Some(Rewrite::Binary(b)) => match b.feed(data, &mut self.scratch) {
                Ok(()) => self.spool.write(&self.scratch).map_err(Error::from),
                Err(why) => Err(bad_binary(why)),
            },
            None => self.spool.write(data).map_err(Error::from),
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}

/// A binary COPY stream that cannot be read: the COPY fails, nothing is
/// imported.
fn bad_binary(why: String) -> Error {
    Error::ImportFailed {
        table: String::new(),
        message: format!("invalid binary COPY data: {why}"),
    }
}

/// The CSV dialect of a COPY FROM STDIN in CSV format: PostgreSQL's
/// defaults (`,`, `"`, and ESCAPE the same as QUOTE).
fn pg_dialect(o: &PgCopyOptions) -> Dialect {
    let quote = o.quote.unwrap_or(b'"');
    Dialect {
        tail: Tail::NONE,
        delimiter: o.delimiter.unwrap_or(if o.format == PgCopyFormat::Csv {
            b','
        } else {
            b'\t'
        }),
        quote,
        escape: o.escape.unwrap_or(quote),
    }
}

impl Engine {
    pub(super) fn copy_from_stdin(&self, c: CopyFromStdin) -> Result<Output> {
        let o = &c.options;
        if o.format == PgCopyFormat::Text && (o.quote.is_some() || o.escape.is_some()) {
            return Err(Error::bad_option(
                "QUOTE",
                "COPY QUOTE and ESCAPE are available only in CSV mode",
            ));
        }
        // Checked here, at Parse, so a bad option never starts a copy_in.
        pg_dialect(o)
            .check()
            .map_err(|m| Error::bad_option("DELIMITER", m))?;
        let table = self
            .catalog
            .get(&c.table.schema, &c.table.name)
            .ok_or_else(|| Error::TableNotFound {
                table: c.table.to_string(),
                position: Some(c.table.position),
            })?;
        let meta = table.meta();
        let named_columns = !c.columns.is_empty();
        let columns = if named_columns {
            for (i, name) in c.columns.iter().enumerate() {
                if meta.column_index(name).is_none() {
                    return Err(Error::ColumnNotFound {
                        column: name.clone(),
                        position: None,
                    });
                }
                if c.columns[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    return Err(Error::DuplicateColumn {
                        column: name.clone(),
                    });
                }
            }
            c.columns.clone()
        } else {
            meta.columns.iter().map(|c| c.name.clone()).collect()
        };
        Ok(Output::CopyIn(CopyIn {
            schema: c.table.schema.clone(),
            table: c.table.name.clone(),
            columns,
            named_columns,
            options: c.options,
        }))
    }

    /// Opens the spool for an accepted COPY FROM STDIN.
    pub fn copy_in_sink(&self, spec: CopyIn) -> Result<CopyInSink> {
        // No upload limit here: like PostgreSQL's COPY, the stream may be
        // as large as the disk allows.
        let spool = Spool::create(&self.upload_dir(), u64::MAX)?;
        let rewrite = match spec.options.format {
            PgCopyFormat::Csv => None,
            PgCopyFormat::Text => Some(Rewrite::Text(TextToCsv::new(
                spec.options.delimiter.unwrap_or(b'\t'),
                spec.options
                    .null
                    .clone()
                    .unwrap_or_else(|| "\\N".into())
                    .into_bytes(),
            ))),
            PgCopyFormat::Binary => {
                // Fields come in the binary form of the type each column is
                // announced as; the column list (or every column) says which.
                let table = self.catalog.get(&spec.schema, &spec.table).ok_or_else(|| {
                    Error::TableNotFound {
                        table: spec.table.clone(),
                        position: None,
                    }
                })?;
                let meta = table.meta();
                let wires = spec
                    .columns
                    .iter()
                    .map(|c| {
                        meta.column_index(c)
                            .map(|i| Wire::of(meta.columns[i].ty))
                            .ok_or_else(|| Error::ColumnNotFound {
                                column: c.clone(),
                                position: None,
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(Rewrite::Binary(BinaryToCsv::new(wires)))
            }
        };
        Ok(CopyInSink {
            spec,
            spool,
            rewrite,
            error: None,
            scratch: Vec::new(),
        })
    }

    /// Imports what the sink received; the number of rows imported.
    pub async fn copy_in_finish(&self, mut sink: CopyInSink) -> Result<u64> {
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        match &mut sink.rewrite {
            Some(Rewrite::Text(t)) => {
                let mut tail = Vec::new();
                t.finish(&mut tail);
                sink.spool.write(&tail)?;
            }
            Some(Rewrite::Binary(b)) => b.finish().map_err(bad_binary)?,
            None => {}
        }
        let CopyInSink {
            spec,
            spool,
            rewrite,
            ..
        } = sink;
        let (data, _) = tokio::task::spawn_blocking(move || spool.finish_raw())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        if rewrite.is_none() {
            crate::import::pgtext::trim_end_marker(&data.path)
                .map_err(|e| Error::io(&data.path, e))?;
        }
        if std::fs::metadata(&data.path).map(|m| m.len()).unwrap_or(0) == 0 {
            return Ok(0);
        }
        let o = &spec.options;
        // The text and binary formats arrive rewritten as CSV with QuestDB's
        // dialect, NULL as an unquoted empty field and the empty string `""`.
        let (dialect, null) = match rewrite {
            Some(_) => (Dialect::default(), Vec::new()),
            None => (
                pg_dialect(o),
                o.null.clone().unwrap_or_default().into_bytes(),
            ),
        };
        let req = ImportRequest {
            schema: spec.schema.clone(),
            table: spec.table.clone(),
            file_name: "STDIN".to_string(),
            path: data.path.clone(),
            header: Some(o.header),
            timestamp: None,
            format: None,
            dialect: Given::all(dialect),
            partition_by: None,
            on_error: if o.ignore_errors {
                OnError::SkipRow
            } else {
                OnError::Abort
            },
            options: ImportOptions {
                // PostgreSQL's rule: only the NULL text, unquoted, is NULL.
                nulls: Nulls::Postgres(null),
                must_exist: true,
                // The column list names the data's columns; a header line
                // (HEADER true) is skipped, as PostgreSQL does.
                column_names: spec.named_columns.then(|| spec.columns.clone()),
                ..ImportOptions::default()
            },
        };
        let imported = self.import_file(req, false).await;
        drop(data);
        Ok(imported?.summary.rows_imported)
    }

    pub(super) async fn copy_to_stdout(
        &self,
        source: CopySource,
        o: PgCopyOptions,
    ) -> Result<Output> {
        let rows = match source {
            CopySource::Query(q) => self.stream(self.inner_query(&q, &[]).await?).await?,
            CopySource::Table(t) => self.stream(self.table_scan(&t).await?).await?,
        };
        encode_copy_out(rows, &o)
    }
}

/// Encodes rows in the COPY format `o` asks for, as they stream.
fn encode_copy_out(rows: super::Rows, o: &PgCopyOptions) -> Result<Output> {
    let format = match o.format {
        PgCopyFormat::Binary => CopyFormat::Binary,
        PgCopyFormat::Csv => CopyFormat::Lines {
            writer: FieldWriter::csv(pg_dialect(o), o.null.clone().unwrap_or_default()),
            header: o.header,
        },
        PgCopyFormat::Text => CopyFormat::Lines {
            writer: FieldWriter::pg_text(
                o.delimiter.unwrap_or(b'\t'),
                o.null.clone().unwrap_or_else(|| "\\N".into()),
            ),
            header: false,
        },
    };
    let encoder = CopyEncoder::new(format, Arc::clone(&rows.schema));
    let (columns, binary) = (encoder.columns(), encoder.is_binary());
    Ok(Output::CopyOut(CopyOut {
        columns,
        binary,
        messages: Box::pin(encoder.encode(rows)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("sluice-copyroot-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.csv"), "x\n").unwrap();
        assert_eq!(
            resolve_copy_path(&root, "a.csv").unwrap(),
            root.join("a.csv")
        );
        assert_eq!(
            resolve_copy_path(&root, "/a.csv").unwrap(),
            root.join("a.csv")
        );
        assert!(resolve_copy_path(&root, "sub/../../x").is_err());
        assert!(resolve_copy_path(&root, "/etc/passwd").is_err());
        let abs = root.join("a.csv");
        assert_eq!(
            resolve_copy_path(&root, abs.to_str().unwrap()).unwrap(),
            abs
        );
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        assert!(
            resolve_copy_path(&root, "escape/passwd")
                .unwrap_err()
                .contains("symbolic link")
        );
        // A missing file is the import's to report.
        assert!(resolve_copy_path(&root, "missing.csv").is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }
}
