//! The CSV importer behind `COPY t FROM 'file'` and `sluice import`.
//!
//! A partitioned target goes through the parallel pipeline, one module per
//! phase: [`analyze`] (structure and types), [`boundary`] (chunks that start
//! at record starts), [`indexing`] (timestamp and offset of every record,
//! routed to its partition), [`partition_import`] (partitions sorted and
//! written as Parquet in parallel) and [`attach`] (one Delta commit of
//! every new file). Other targets take the one-pass [`serial`] importer. Both share
//! the lexer ([`csv`]), the pattern language ([`format`]) and the checked
//! conversions ([`decode`]), and report to the journal ([`log`]) that
//! `sys.text_import_log` and `sys.text_import_errors` show. Input that is
//! not a plain file under the copy root (uploads, COPY FROM STDIN, gzip or
//! zstd files) is made one first by [`source`] (and [`pgtext`] and
//! [`pgbinary`] for PostgreSQL's text and binary formats), so every way in
//! shares this pipeline. A glob or directory is one import over its files
//! (`many`), a Parquet file skips the text phases ([`parquet`]), and
//! [`ledger`] records each loaded file in the commit so a re-run skips it.
//! [`encoding`] rewrites Latin-1, Windows-1252 and UTF-16 files as UTF-8;
//! [`request`] validates what every way in asks for,
//! [`reject`] applies ON ERROR, `dry_run` reports what an import would do without writing, `importer` holds the one slot and
//! `pipeline` drives the phases.
//!
//! One import runs at a time ([`Importer`] holds the slot); it runs on its
//! own thread with its own rayon pool and checks its cancel flag inside
//! every phase. Nothing is visible in the table until the final swap, so a
//! failure, a cancel or a crash leaves the table as it was.

pub mod analyze;
pub mod attach;
pub mod boundary;
pub mod csv;
pub mod decode;
mod dry_run;
pub mod encoding;
mod error;
pub mod format;
mod importer;
pub mod indexing;
mod job;
pub mod ledger;
pub mod log;
mod many;
pub mod parquet;
pub mod partition_import;
pub mod pgbinary;
pub mod pgtext;
mod pipeline;
#[cfg(test)]
mod proptests;
pub mod reject;
pub mod request;
pub mod rows;
pub mod serial;
pub mod source;

pub use dry_run::{DryColumn, DryRun};
pub use error::{ErrorSink, ImportError, RowError, shown_value};
pub use importer::{Importer, new_id, parse_id};
pub use job::{Job, Progress, Settings, Summary};
pub use request::{ColumnOverride, ImportOptions, ImportRequest, InputFile, OnError, RemoteSource};
