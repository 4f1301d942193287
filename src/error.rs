//! The one error type of the engine and the one place that maps it to the
//! outside world: a PostgreSQL SQLSTATE for pgwire, an HTTP status for the
//! HTTP server, and a message for logs and `sys` tables.
//!
//! Every variant carries the object it is about (table, column, key, file,
//! position) as fields, so no caller has to parse a message to learn them.

use datafusion::error::DataFusionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement does not parse. `position` is a 0-based character
    /// offset into the statement text, as QuestDB reports it.
    #[error("{message}")]
    Syntax { message: String, position: usize },

    #[error("table does not exist [table={table}]")]
    TableNotFound {
        table: String,
        position: Option<usize>,
    },

    #[error("table already exists [table={table}]")]
    TableExists { table: String },

    #[error("schema does not exist [schema={schema}]")]
    SchemaNotFound { schema: String },

    #[error("schema already exists [schema={schema}]")]
    SchemaExists { schema: String },

    /// A named object that does not exist (a type in a `::regtype` cast).
    #[error("{kind} \"{name}\" does not exist")]
    UndefinedObject { kind: &'static str, name: String },

    /// A schema or table name the catalog's name rule refuses.
    #[error("invalid {kind} name [{kind}={name}]: {reason}")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: &'static str,
    },

    #[error("Invalid column: {column}")]
    ColumnNotFound {
        column: String,
        position: Option<usize>,
    },

    #[error("duplicate column [name={column}]")]
    DuplicateColumn { column: String },

    /// A value that does not fit the column it is written to.
    #[error("inconvertible value: {value} [{from} -> {to}] [column={column}]")]
    BadValue {
        column: String,
        value: String,
        from: String,
        to: String,
    },

    /// An option or parameter of a statement or request with a value it
    /// does not take (`COMPRESSION_LEVEL 99`, `partitionBy=DECADE`).
    #[error("{message}")]
    BadOption { option: String, message: String },

    /// A semantically wrong statement that parsed (wrong type).
    #[error("{message}")]
    Invalid {
        message: String,
        position: Option<usize>,
    },

    #[error("{message}")]
    Unsupported { message: String },

    /// Writes into `sys`, or by the read-only login.
    #[error("permission denied: {message}")]
    PermissionDenied { message: String },

    #[error("statement timed out after {millis} ms")]
    Timeout { millis: u64 },

    #[error("query cancelled")]
    Cancelled,

    /// A query that outgrew `query.memory.limit` where it could not spill.
    #[error(
        "query needs more memory than query.memory.limit allows [limit={limit} bytes]: {detail}"
    )]
    MemoryLimit { limit: u64, detail: String },

    /// A table whose files could not be read at start-up or later.
    #[error("table {table} is unreadable: {reason} [file={file}]")]
    Corrupt {
        table: String,
        file: String,
        reason: String,
    },

    /// The Delta log of a table could not be read or written.
    #[error("Delta log of {table}: {reason}")]
    DeltaLog { table: String, reason: String },

    /// A request to object storage failed (network, credentials, bucket).
    #[error("object storage request failed [url={url}]: {reason}")]
    ObjectStore { url: String, reason: String },

    /// Another writer committed the table version this commit was for,
    /// and the two changes conflict.
    #[error("table {table} was changed by another writer [version={version}]: {reason}")]
    CommitConflict {
        table: String,
        version: u64,
        reason: String,
    },

    #[error("configuration error: {message} [key={key}, value={value}]")]
    Config {
        key: String,
        value: String,
        message: String,
    },

    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    DataFusion(#[from] DataFusionError),

    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    #[error("{0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),

    /// An import that stopped (bad data under ABORT, a bad file, a cancel).
    #[error("{message}")]
    ImportFailed { table: String, message: String },

    /// An upload or decompressed input over the configured limit.
    #[error("{what} exceeds the size limit [limit={limit} bytes]")]
    TooLarge { what: String, limit: u64 },

    /// An expression deeper than the planner may recurse into safely
    /// (PostgreSQL's "stack depth limit exceeded").
    #[error("expression is nested too deeply: more than {limit} operators in a row")]
    TooComplex { limit: usize, position: usize },

    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn syntax(message: impl Into<String>, position: usize) -> Self {
        Error::Syntax {
            message: message.into(),
            position,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
            position: None,
        }
    }

    /// The option `option` was given a value it does not take.
    pub fn bad_option(option: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadOption {
            option: option.into(),
            message: message.into(),
        }
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::Unsupported {
            message: message.into(),
        }
    }

    /// DataFusion's "resources exhausted" (its memory pool said no) as the
    /// error naming the configured limit; any other error as it is.
    pub fn with_memory_limit(self, limit: u64) -> Error {
        match &self {
            Error::DataFusion(e) => match e.find_root() {
                DataFusionError::ResourcesExhausted(detail) => Error::MemoryLimit {
                    limit,
                    detail: detail.clone(),
                },
                _ => self,
            },
            _ => self,
        }
    }

    /// Unwraps DataFusion's wrappers so that an engine error raised inside a
    /// DataFusion callback (a table provider, say) keeps its own mapping.
    fn root(&self) -> RootKind<'_> {
        match self {
            Error::DataFusion(e) => RootKind::DataFusion(e.find_root()),
            other => RootKind::Own(other),
        }
    }

    /// The PostgreSQL SQLSTATE for this error.
    pub fn state(&self) -> SqlState {
        use SqlState as S;
        match self.root() {
            RootKind::Own(e) => match e {
                Error::Syntax { .. } => S::SyntaxError,
                Error::TableNotFound { .. } => S::UndefinedTable,
                Error::TableExists { .. } => S::DuplicateTable,
                Error::SchemaNotFound { .. } => S::InvalidSchemaName,
                Error::SchemaExists { .. } => S::DuplicateSchema,
                Error::InvalidName { .. } => S::InvalidName,
                Error::UndefinedObject { .. } => S::UndefinedObject,
                Error::ColumnNotFound { .. } => S::UndefinedColumn,
                Error::DuplicateColumn { .. } => S::DuplicateColumn,
                Error::BadValue { .. } | Error::ImportFailed { .. } => S::InvalidTextRepresentation,
                Error::Invalid { .. } => S::DatatypeMismatch,
                Error::BadOption { .. } => S::InvalidParameterValue,
                Error::Unsupported { .. } => S::FeatureNotSupported,
                Error::PermissionDenied { .. } => S::InsufficientPrivilege,
                Error::Timeout { .. } | Error::Cancelled => S::QueryCanceled,
                Error::MemoryLimit { .. } => S::OutOfMemory,
                Error::Corrupt { .. } => S::DataCorrupted,
                Error::DeltaLog { .. } | Error::ObjectStore { .. } => S::IoError,
                Error::CommitConflict { .. } => S::SerializationFailure,
                Error::Config { .. } => S::ConfigFileError,
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                    S::DiskFull
                }
                Error::Io { .. } => S::IoError,
                Error::Arrow(_) => S::DataException,
                Error::TooLarge { .. } => S::ProgramLimitExceeded,
                Error::TooComplex { .. } => S::StatementTooComplex,
                Error::Parquet(_) | Error::Internal(_) | Error::DataFusion(_) => S::InternalError,
            },
            RootKind::DataFusion(e) => datafusion_state(e),
        }
    }

    /// The SQLSTATE's five characters.
    pub fn sqlstate(&self) -> &'static str {
        self.state().code()
    }

    /// The HTTP status for this error: client mistakes are 400, the rest 500.
    pub fn http_status(&self) -> u16 {
        match self.state() {
            SqlState::InsufficientPrivilege => 403,
            SqlState::ProgramLimitExceeded => 413,
            SqlState::StatementTooComplex => 400,
            SqlState::InvalidSchemaName | SqlState::QueryCanceled => 400,
            SqlState::SerializationFailure => 409,
            s if matches!(&s.code()[..2], "42" | "22" | "0A") => 400,
            _ => 500,
        }
    }

    /// The position (0-based character offset) in the statement, when known.
    pub fn position(&self) -> Option<usize> {
        match self {
            Error::Syntax { position, .. } | Error::TooComplex { position, .. } => Some(*position),
            Error::ColumnNotFound { position, .. }
            | Error::Invalid { position, .. }
            | Error::TableNotFound { position, .. } => *position,
            _ => None,
        }
    }

    /// The message users see: the engine's own words, DataFusion's without
    /// its internal prefixes, on one line (DataFusion puts hints such as
    /// "Did you mean …" on lines of their own; a log line, a JSON error and
    /// a psql prompt want one).
    pub fn message(&self) -> String {
        let text = match self.root() {
            RootKind::Own(e) => e.to_string(),
            RootKind::DataFusion(e) => datafusion_message(e),
        };
        if !text.contains('\n') {
            return text;
        }
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The PostgreSQL error codes the engine answers with (PostgreSQL's
/// condition names); the five-character code is made only at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlState {
    SyntaxError,
    UndefinedTable,
    DuplicateTable,
    InvalidSchemaName,
    DuplicateSchema,
    InvalidName,
    UndefinedObject,
    UndefinedColumn,
    DuplicateColumn,
    InvalidTextRepresentation,
    InvalidParameterValue,
    DatatypeMismatch,
    FeatureNotSupported,
    InsufficientPrivilege,
    QueryCanceled,
    DataCorrupted,
    SerializationFailure,
    ConfigFileError,
    DiskFull,
    IoError,
    DataException,
    ProgramLimitExceeded,
    StatementTooComplex,
    OutOfMemory,
    InternalError,
}

impl SqlState {
    pub fn code(self) -> &'static str {
        match self {
            SqlState::SyntaxError => "42601",
            SqlState::UndefinedTable => "42P01",
            SqlState::DuplicateTable => "42P07",
            SqlState::InvalidSchemaName => "3F000",
            SqlState::DuplicateSchema => "42P06",
            SqlState::InvalidName => "42602",
            SqlState::UndefinedObject => "42704",
            SqlState::UndefinedColumn => "42703",
            SqlState::DuplicateColumn => "42701",
            SqlState::InvalidTextRepresentation => "22P02",
            SqlState::InvalidParameterValue => "22023",
            SqlState::DatatypeMismatch => "42804",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::InsufficientPrivilege => "42501",
            SqlState::QueryCanceled => "57014",
            SqlState::DataCorrupted => "XX001",
            SqlState::SerializationFailure => "40001",
            SqlState::ConfigFileError => "F0000",
            SqlState::DiskFull => "53100",
            SqlState::IoError => "58030",
            SqlState::DataException => "22000",
            SqlState::ProgramLimitExceeded => "54000",
            SqlState::StatementTooComplex => "54001",
            SqlState::OutOfMemory => "53200",
            SqlState::InternalError => "XX000",
        }
    }
}

enum RootKind<'a> {
    Own(&'a Error),
    DataFusion(&'a DataFusionError),
}

fn datafusion_state(e: &DataFusionError) -> SqlState {
    use SqlState as S;
    match e {
        DataFusionError::SQL(..) => S::SyntaxError,
        DataFusionError::SchemaError(err, _) => {
            use datafusion::common::SchemaError;
            match err.as_ref() {
                SchemaError::FieldNotFound { .. } => S::UndefinedColumn,
                SchemaError::DuplicateQualifiedField { .. }
                | SchemaError::DuplicateUnqualifiedField { .. } => S::DuplicateColumn,
                _ => S::UndefinedTable,
            }
        }
        DataFusionError::Plan(_) => S::DatatypeMismatch,
        DataFusionError::NotImplemented(_) => S::FeatureNotSupported,
        DataFusionError::ResourcesExhausted(_) => S::OutOfMemory,
        DataFusionError::ArrowError(..) => S::DataException,
        DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
            Some(own) => own.state(),
            None => S::InternalError,
        },
        _ => S::InternalError,
    }
}

fn datafusion_message(e: &DataFusionError) -> String {
    match e {
        DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
            Some(own) => own.message(),
            None => inner.to_string(),
        },
        DataFusionError::SQL(err, _) => err.to_string(),
        DataFusionError::Plan(msg) | DataFusionError::Execution(msg) => msg.clone(),
        DataFusionError::SchemaError(err, _) => err.to_string(),
        other => other.to_string(),
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(inner) => inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// Gives an error from DataFusion's planner (unknown table or column) the
/// engine's own kind and the position of the name in `sql`, which
/// DataFusion does not report.
pub fn locate_error(sql: &str, e: Error) -> Error {
    if e.position().is_some() {
        return e;
    }
    let message = e.message();
    let find = |name: &str| -> Option<usize> {
        let lower = sql.to_lowercase();
        let byte = lower.find(&name.to_lowercase())?;
        Some(sql[..byte].chars().count())
    };
    // A table the catalog does not have (raised by its schema providers
    // under DataFusion's planner): where its name is in the text.
    let own = match e.root() {
        RootKind::Own(own) => Some(own),
        RootKind::DataFusion(DataFusionError::External(inner)) => inner.downcast_ref::<Error>(),
        RootKind::DataFusion(_) => None,
    };
    if let Some(Error::TableNotFound {
        table,
        position: None,
    }) = own
    {
        let name = table.rsplit('.').next().unwrap_or(table);
        return Error::TableNotFound {
            position: find(name),
            table: table.clone(),
        };
    }
    if e.state() == SqlState::UndefinedColumn {
        // "No field named x." / "No field named t.x."
        if let Some(i) = message.find("No field named ") {
            let rest = &message[i + "No field named ".len()..];
            // (The name runs to the message's next space; a qualified
            // `t.x` stays whole, the sentence's full stop does not.)
            let name: String = rest
                .chars()
                .take_while(|c| !matches!(c, ' ' | ','))
                .collect();
            let name = name.trim_end_matches('.').replace('"', "");
            if !name.is_empty() {
                return Error::ColumnNotFound {
                    position: find(&name),
                    column: name,
                };
            }
        }
    }
    e
}
