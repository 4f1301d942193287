//! The SQL front end: QuestDB-flavoured statements parsed into [`Statement`].
//!
//! sqlparser's tokenizer and parser do the work; statements whose syntax is
//! QuestDB's own (CREATE TABLE with `TIMESTAMP(ts) PARTITION BY`, `SYMBOL
//! CAPACITY`, RENAME TABLE, `INSERT … batch n`, `LIMIT -n`, SHOW …) are
//! parsed here with sqlparser's helpers. Queries stay sqlparser ASTs and go
//! to DataFusion's planner unchanged.

pub mod ast;
pub mod limit;
pub mod parser;
pub mod walk;

pub use ast::{
    Align, Clauses, Copy, CopyFromStdin, CopyOnError, CopySource, CopyTo, CreateTable,
    ExportOptions, Fill, Insert, LatestOn, ParquetCodec, PgCopyFormat, PgCopyOptions, QueryParts,
    SampleBy, SessionCommand, Statement, TableRef, TimeJoin, TimeJoinKind,
};
pub use limit::QdbLimit;
pub use parser::parse;
