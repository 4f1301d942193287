//! Parsed statements. Names are already normalised: unquoted identifiers
//! are lower-cased, quoted ones kept as written (PostgreSQL's rule, which is
//! also DataFusion's).

use datafusion::sql::sqlparser::ast as sp;

use super::limit::QdbLimit;
use crate::catalog::ColumnMeta;
use crate::storage::PartitionBy;

#[derive(Debug, Clone, PartialEq)]
pub struct TableRef {
    pub schema: String,
    pub name: String,
    /// Where the name starts in the statement text.
    pub position: usize,
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.schema == crate::catalog::DEFAULT_SCHEMA {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}.{}", self.schema, self.name)
        }
    }
}

#[derive(Debug, Clone)]
pub struct CreateTable {
    pub table: TableRef,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnMeta>,
    /// `CREATE TABLE t AS (SELECT …)`.
    pub as_query: Option<Box<sp::Query>>,
    pub timestamp: Option<(String, usize)>,
    pub partition_by: Option<PartitionBy>,
    pub wal: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Insert {
    pub table: TableRef,
    pub columns: Vec<(String, usize)>,
    pub source: Box<sp::Query>,
    /// `batch N`: rows per written chunk. The insert still commits once.
    pub batch: Option<u64>,
}

/// `ON ERROR` of COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOnError {
    SkipRow,
    SkipColumn,
    Abort,
}

/// `COPY t FROM 'file' [WITH …]`, options as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    pub table: TableRef,
    pub file: String,
    /// Where the file literal starts in the statement text.
    pub file_position: usize,
    pub header: Option<bool>,
    pub timestamp: Option<String>,
    pub format: Option<String>,
    pub delimiter: Option<u8>,
    pub partition_by: Option<PartitionBy>,
    pub on_error: Option<CopyOnError>,
}

/// Statements a PostgreSQL client sends for its session that change nothing
/// here: transactions are implicit (every statement commits on its own).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    Begin,
    Commit,
    Rollback,
    Set,
    /// `SHOW <parameter>`.
    Show(String),
}

#[derive(Debug, Clone)]
pub enum Statement {
    CreateTable(CreateTable),
    CreateSchema {
        name: String,
        if_not_exists: bool,
    },
    DropTable {
        tables: Vec<TableRef>,
        if_exists: bool,
    },
    Truncate {
        tables: Vec<TableRef>,
    },
    RenameTable {
        from: TableRef,
        to: TableRef,
    },
    RenameColumn {
        table: TableRef,
        from: (String, usize),
        to: String,
    },
    Insert(Insert),
    ShowTables,
    ShowColumns {
        table: TableRef,
    },
    ShowCreateTable {
        table: TableRef,
    },
    /// A query, with QuestDB's LIMIT forms taken out of the AST.
    Query {
        query: Box<sp::Query>,
        limit: Option<QdbLimit>,
    },
    /// EXPLAIN and anything else DataFusion plans as it is.
    Other(Box<sp::Statement>),
    Session(SessionCommand),
    Copy(Copy),
    /// `COPY 'id' CANCEL`; the id as written.
    CopyCancel {
        id: String,
    },
}

impl Statement {
    /// Whether executing the statement changes stored data or schema.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Statement::CreateTable(_)
                | Statement::CreateSchema { .. }
                | Statement::DropTable { .. }
                | Statement::Truncate { .. }
                | Statement::RenameTable { .. }
                | Statement::RenameColumn { .. }
                | Statement::Insert(_)
                | Statement::Copy(_)
                | Statement::CopyCancel { .. }
        )
    }
}
