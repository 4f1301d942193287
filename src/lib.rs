//! sluice: a SQL-first time-series engine whose headline job is bulk import.
//!
//! Architecture (dependencies point one way, left to right):
//!
//! ```text
//! servers (pgwire, http) -> engine -> { query, sql, import, export, sys, catalog } -> storage
//! ```
//!
//! * [`config`]: `conf/server.conf` + `QDB_*` environment -> typed [`config::Config`].
//! * [`sql`]: the front end; QuestDB statements over sqlparser.
//! * [`query`]: AST and logical-plan passes for QuestDB's query behaviour
//!   (column names, scan order) and its date functions.
//! * [`engine`]: the only API the servers call: sessions, statement
//!   execution, results.
//! * [`import`]: the CSV importer (COPY, `sluice import`), one module per
//!   phase, and the journal behind `sys.text_import_log`.
//! * [`export`]: `COPY … TO 'dir' WITH FORMAT PARQUET`, the asynchronous
//!   Parquet export, and the journal behind `sys.copy_export_log`.
//! * [`catalog`]: schemas, tables, definitions, the DataFusion table provider.
//! * [`sys`]: the read-only `sys` schema, one file per system table.
//! * [`storage`]: time partitions of sorted Parquet files, committed in
//!   each table's Delta log.
//! * [`servers`]: PostgreSQL wire protocol and HTTP adapters.
//! * [`cli`]: the command line (serve, one statement, import).
#![deny(rust_2018_idioms)]

pub mod catalog;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod export;
pub mod heap;
pub mod import;
pub mod layers;
pub mod metrics;
pub mod query;
pub mod schema;
pub mod servers;
pub mod sql;
pub mod storage;
pub mod sys;
pub mod time;

pub use error::{Error, Result};
