//! Parsed statements. Names are already normalised: unquoted identifiers
//! are lower-cased, quoted ones kept as written (PostgreSQL's rule, which is
//! also DataFusion's).

use datafusion::sql::sqlparser::ast as sp;

use super::limit::QdbLimit;
use crate::catalog::{ColumnMeta, TableParam, Ttl};
use crate::schema::ColumnType;
use crate::time::PartitionBy;

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
    pub as_query: Option<QueryParts>,
    pub timestamp: Option<(String, usize)>,
    pub partition_by: Option<PartitionBy>,
    pub wal: Option<bool>,
    pub ttl: Option<Ttl>,
    /// `WITH name = value, …`.
    pub params: Vec<TableParam>,
    /// `DEDUP UPSERT KEYS(…)`.
    pub dedup: Vec<(String, usize)>,
}

/// What an `ALTER TABLE` changes (QuestDB's forms).
#[derive(Debug, Clone)]
pub enum AlterTable {
    /// `ADD COLUMN [IF NOT EXISTS] c T [, …]`; each column with where its
    /// name starts.
    AddColumns {
        columns: Vec<(ColumnMeta, usize)>,
        if_not_exists: bool,
    },
    /// `DROP COLUMN c [, …]`.
    DropColumns(Vec<(String, usize)>),
    /// `RENAME COLUMN a TO b`.
    RenameColumn { from: (String, usize), to: String },
    /// `ALTER COLUMN c TYPE T`.
    ColumnType {
        column: (String, usize),
        ty: ColumnType,
    },
    /// `ALTER COLUMN c ADD INDEX` (true) / `DROP INDEX` (false).
    Index { column: (String, usize), add: bool },
    /// `DROP PARTITION LIST … | WHERE …`.
    DropPartitions(PartitionPick),
    /// `DETACH PARTITION LIST … | WHERE …`: out of the table, into
    /// `<partition>.detached` beside it.
    DetachPartitions(PartitionPick),
    /// `ATTACH PARTITION LIST …`: a `<partition>.attachable` (or
    /// `.detached`) directory back into the table.
    AttachPartitions(Vec<(String, usize)>),
    /// `SET PARAM name = value`.
    SetParams(Vec<TableParam>),
    /// `SET TTL n UNIT` (`None`: `TTL 0`, none).
    SetTtl(Option<Ttl>),
    /// `DEDUP ENABLE UPSERT KEYS(…)` / `DEDUP DISABLE` (`None`).
    Dedup(Option<Vec<(String, usize)>>),
}

/// Which partitions a `DROP PARTITION` names.
#[derive(Debug, Clone)]
pub enum PartitionPick {
    /// Partition names (or timestamps inside them) as written, with where
    /// each starts.
    List(Vec<(String, usize)>),
    /// A condition on the designated timestamp, true for a partition's
    /// start.
    Where(Box<sp::Expr>),
}

#[derive(Debug, Clone)]
pub struct Insert {
    pub table: TableRef,
    pub columns: Vec<(String, usize)>,
    pub source: QueryParts,
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
    /// One to four ASCII bytes.
    pub delimiter: Option<Vec<u8>>,
    pub quote: Option<u8>,
    pub escape: Option<u8>,
    /// `SKIP n`: lines before the header that are not the table.
    pub skip: Option<usize>,
    /// `HEADER n`: the header's lines (the first names the columns).
    pub header_lines: Option<usize>,
    /// `ENCODING 'name'`, as written (the importer knows the names).
    pub encoding: Option<String>,
    pub partition_by: Option<PartitionBy>,
    pub on_error: Option<CopyOnError>,
    /// `DRY RUN true`: analyse and validate the whole file, write nothing.
    pub dry_run: bool,
    /// `FORCE true`: load files the table already loaded again.
    pub force: bool,
}

/// PostgreSQL's COPY data format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgCopyFormat {
    Text,
    Csv,
    /// PostgreSQL's binary COPY format.
    Binary,
}

/// PostgreSQL's COPY options (`WITH (FORMAT csv, HEADER, …)` or the old
/// bare-word form), as written.
#[derive(Debug, Clone, PartialEq)]
pub struct PgCopyOptions {
    pub format: PgCopyFormat,
    pub header: bool,
    pub delimiter: Option<u8>,
    pub null: Option<String>,
    pub quote: Option<u8>,
    pub escape: Option<u8>,
    /// `ON_ERROR ignore`: bad rows are skipped (and recorded) instead of
    /// failing the COPY.
    pub ignore_errors: bool,
}

impl Default for PgCopyOptions {
    fn default() -> Self {
        PgCopyOptions {
            format: PgCopyFormat::Text,
            header: false,
            delimiter: None,
            null: None,
            quote: None,
            escape: None,
            ignore_errors: false,
        }
    }
}

/// `COPY t [(cols)] FROM STDIN [WITH …]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyFromStdin {
    pub table: TableRef,
    pub columns: Vec<String>,
    pub options: PgCopyOptions,
}

/// What `COPY … TO STDOUT` exports.
#[derive(Debug, Clone)]
pub enum CopySource {
    Table(TableRef),
    Query(Box<QueryParts>),
}

/// A query inside another statement (CREATE TABLE AS, INSERT … SELECT,
/// COPY (…) TO) with the QuestDB clauses the engine plans, as for a query
/// on its own.
#[derive(Debug, Clone)]
pub struct QueryParts {
    pub query: Box<sp::Query>,
    pub clauses: Clauses,
}

/// QuestDB's clauses the token pass took out of a query's text, typed.
/// Each knows what it belongs to by a place in the text that the AST node
/// keeps (a SELECT's `select_token`, a joined table's name), so the query
/// module finds it without names or searches of printed SQL.
#[derive(Debug, Clone, Default)]
pub struct Clauses {
    pub samples: Vec<SampleBy>,
    pub latest: Vec<LatestOn>,
    pub joins: Vec<TimeJoin>,
}

impl Clauses {
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.latest.is_empty() && self.joins.is_empty()
    }
}

/// `LATEST ON ts PARTITION BY a, b` or QuestDB's older `LATEST BY a, b`
/// (on the table's designated timestamp: `ts` is then `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct LatestOn {
    /// Where the SELECT the clause belongs to starts (its `select_token`).
    pub select: datafusion::sql::sqlparser::tokenizer::Location,
    pub ts: Option<sp::Ident>,
    pub keys: Vec<sp::Ident>,
    /// Where LATEST starts in the statement, for errors.
    pub position: usize,
}

/// QuestDB's time joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeJoinKind {
    /// Each left row with the newest right row at or before its time.
    Asof,
    /// Strictly before.
    Lt,
    /// Every row of both sides, each with the other side's newest row.
    Splice,
}

/// `a ASOF | LT | SPLICE JOIN b [ON (k, …) | ON a.x = b.y AND …]`: sqlparser
/// reads it as `a LEFT JOIN b [USING (k, …) | ON …]`; this says which join
/// it was.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeJoin {
    pub kind: TimeJoinKind,
    /// Where the joined table's name starts in the text.
    pub relation: datafusion::sql::sqlparser::tokenizer::Location,
    /// Where the join's first word is, for errors.
    pub position: usize,
}

/// QuestDB's `SAMPLE BY n{U|T|s|m|h|d|w|M|y} [FROM a TO b] [FILL(…)]
/// [ALIGN TO CALENDAR [WITH OFFSET 'hh:mm'] | ALIGN TO FIRST OBSERVATION]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleBy {
    pub stride: crate::time::Stride,
    /// Where the SELECT the clause ends starts in the text (its AST node's
    /// `select_token`): which SELECT is sampled.
    pub select: datafusion::sql::sqlparser::tokenizer::Location,
    /// One fill for every aggregate, or one per aggregate in order.
    pub fill: Vec<Fill>,
    pub align: Align,
    /// `FROM` and `TO` as written (timestamps).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Where SAMPLE BY starts in the statement.
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    None,
    Null,
    Prev,
    Linear,
    /// A constant, as SQL text.
    Value(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Align {
    /// Buckets start at the epoch plus the offset (microseconds), in the
    /// wall-clock time of the zone when one is named (UTC otherwise).
    Calendar {
        offset: i64,
        zone: Option<String>,
    },
    FirstObservation,
}

/// `COPY t TO 'dir' WITH FORMAT PARQUET …` and `COPY (query) TO 'dir' …`:
/// an asynchronous export to Parquet files below the export root.
#[derive(Debug, Clone)]
pub struct CopyTo {
    pub source: CopySource,
    /// The destination directory as written.
    pub path: String,
    pub path_position: usize,
    pub options: ExportOptions,
}

/// The options of a Parquet export (QuestDB's names); `None`: the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportOptions {
    pub partition_by: Option<PartitionBy>,
    pub codec: Option<ParquetCodec>,
    pub compression_level: Option<i64>,
    pub row_group_size: Option<u64>,
    pub data_page_size: Option<u64>,
    pub statistics: Option<bool>,
    pub parquet_version: Option<u64>,
    pub bloom_filter_columns: Vec<String>,
    pub bloom_filter_fpp: Option<f64>,
}

/// A Parquet compression codec an export may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetCodec {
    Uncompressed,
    Snappy,
    Gzip,
    Lz4,
    Zstd,
    Lz4Raw,
    Brotli,
}

impl ParquetCodec {
    pub fn parse(s: &str) -> Option<ParquetCodec> {
        Some(match s.to_ascii_uppercase().as_str() {
            "UNCOMPRESSED" | "NONE" => ParquetCodec::Uncompressed,
            "SNAPPY" => ParquetCodec::Snappy,
            "GZIP" => ParquetCodec::Gzip,
            "LZ4" => ParquetCodec::Lz4,
            "ZSTD" => ParquetCodec::Zstd,
            "LZ4_RAW" => ParquetCodec::Lz4Raw,
            "BROTLI" => ParquetCodec::Brotli,
            _ => return None,
        })
    }
}

/// Statements a PostgreSQL client sends for its session that change nothing
/// here: transactions are implicit (every statement commits on its own).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    Begin,
    Commit,
    Rollback,
    /// `SAVEPOINT x` and `RELEASE [SAVEPOINT] x`, which drivers send around
    /// statements (psycopg's nested transactions): brackets with nothing
    /// to undo, as every statement commits on its own.
    Savepoint,
    Release,
    Set,
    /// `SET statement_timeout` (milliseconds; zero: none) or, with `None`,
    /// its `DEFAULT` / `RESET`.
    StatementTimeout(Option<u64>),
    Reset,
    /// `DISCARD ALL` (what connection poolers send between clients).
    Discard,
    Deallocate,
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
    AlterTable {
        table: TableRef,
        action: AlterTable,
    },
    /// `UPDATE t SET c = e [, …] [WHERE p]`.
    Update {
        table: TableRef,
        /// Column (and where it is written), value.
        assignments: Vec<((String, usize), sp::Expr)>,
        selection: Option<sp::Expr>,
    },
    /// `DELETE FROM t [WHERE p]`.
    Delete {
        table: TableRef,
        selection: Option<sp::Expr>,
    },
    /// Shared: a prepared INSERT runs many times without copying its tree.
    Insert(std::sync::Arc<Insert>),
    /// `SHOW PARTITIONS FROM t`.
    ShowPartitions {
        table: TableRef,
    },
    ShowTables,
    ShowColumns {
        table: TableRef,
    },
    ShowCreateTable {
        table: TableRef,
    },
    /// A query, with QuestDB's LIMIT forms taken out of the AST and its
    /// time-series clauses (planned by `crate::query`).
    Query {
        query: Box<sp::Query>,
        limit: Option<QdbLimit>,
        clauses: Clauses,
    },
    /// EXPLAIN of a query: `statement` is the EXPLAIN, whose query the
    /// engine plans as it would run it.
    Explain {
        statement: Box<sp::Statement>,
        clauses: Clauses,
    },
    /// EXPLAIN and anything else DataFusion plans as it is.
    Other(Box<sp::Statement>),
    Session(SessionCommand),
    Copy(Copy),
    /// `COPY 'id' CANCEL`; the id as written.
    CopyCancel {
        id: String,
    },
    CopyFromStdin(CopyFromStdin),
    CopyToStdout {
        source: CopySource,
        options: PgCopyOptions,
    },
    CopyTo(CopyTo),
    /// `BACKUP TABLE a [, …] | BACKUP DATABASE [TO 'name']`.
    Backup(Backup),
}

/// What a BACKUP copies and where below the backup root.
#[derive(Debug, Clone)]
pub struct Backup {
    /// `None`: every table (`BACKUP DATABASE`).
    pub tables: Option<Vec<TableRef>>,
    /// `TO 'name'` and where it is written.
    pub name: Option<(String, usize)>,
}

impl Statement {
    /// What kind of statement this is, for logs (`SELECT`, `INSERT`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Statement::CreateTable(_) => "CREATE TABLE",
            Statement::CreateSchema { .. } => "CREATE SCHEMA",
            Statement::DropTable { .. } => "DROP TABLE",
            Statement::Truncate { .. } => "TRUNCATE",
            Statement::RenameTable { .. } => "RENAME TABLE",
            Statement::AlterTable { .. } => "ALTER TABLE",
            Statement::Update { .. } => "UPDATE",
            Statement::Delete { .. } => "DELETE",
            Statement::Insert(_) => "INSERT",
            Statement::ShowPartitions { .. }
            | Statement::ShowTables
            | Statement::ShowColumns { .. }
            | Statement::ShowCreateTable { .. } => "SHOW",
            Statement::Query { .. } => "SELECT",
            Statement::Explain { .. } => "EXPLAIN",
            Statement::Other(_) => "OTHER",
            Statement::Session(_) => "SESSION",
            Statement::Copy(_)
            | Statement::CopyCancel { .. }
            | Statement::CopyFromStdin(_)
            | Statement::CopyToStdout { .. }
            | Statement::CopyTo(_) => "COPY",
            Statement::Backup(_) => "BACKUP",
        }
    }

    /// Whether executing the statement changes stored data or schema.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Statement::CreateTable(_)
                | Statement::CreateSchema { .. }
                | Statement::DropTable { .. }
                | Statement::Truncate { .. }
                | Statement::RenameTable { .. }
                | Statement::AlterTable { .. }
                | Statement::Update { .. }
                | Statement::Delete { .. }
                | Statement::Insert(_)
                | Statement::Copy(_)
                | Statement::CopyCancel { .. }
                | Statement::CopyFromStdin(_)
                | Statement::CopyTo(_)
                | Statement::Backup(_)
        )
    }
}

/// A call of function `name` with `args`, as an AST node (for rewrites
/// that add calls to a parsed statement).
pub fn call(name: &str, args: Vec<sp::Expr>) -> sp::Expr {
    sp::Expr::Function(sp::Function {
        name: sp::ObjectName::from(vec![sp::Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: sp::FunctionArguments::None,
        args: sp::FunctionArguments::List(sp::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| sp::FunctionArg::Unnamed(sp::FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// A query nothing reads: a placeholder while a rewrite moves a node.
pub fn placeholder_query() -> sp::Query {
    values_query(vec![])
}

/// `VALUES` with these rows, as sqlparser parses it.
pub fn values_query(rows: Vec<sp::Parens<Vec<sp::Expr>>>) -> sp::Query {
    sp::Query {
        with: None,
        body: Box::new(sp::SetExpr::Values(sp::Values {
            explicit_row: false,
            value_keyword: false,
            rows,
        })),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }
}
