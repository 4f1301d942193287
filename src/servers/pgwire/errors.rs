//! The one mapping of our errors to PostgreSQL's wire: SQLSTATE, message
//! and 1-based position (the kind and fields are `Error`'s; see
//! `Error::sqlstate`).

use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::Error;

/// The engine error as a PostgreSQL error response.
pub fn pg_error(e: &Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

pub fn error_info(e: &Error) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".to_string(), e.sqlstate().to_string(), e.message());
    // PostgreSQL positions are 1-based.
    info.position = e.position().map(|p| (p + 1).to_string());
    info
}
