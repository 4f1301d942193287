//! sqlparser's error positions ("… at Line: 1, Column: 8") as the 0-based
//! character offsets QuestDB reports.

use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::Location;

use crate::error::{Error, Result};

/// Converts a sqlparser location (1-based line and column) to a 0-based
/// character offset in `sql`.
pub fn offset_of(sql: &str, loc: Location) -> usize {
    if loc.line == 0 {
        return 0;
    }
    let mut offset = 0;
    for (i, line) in sql.split('\n').enumerate() {
        if i as u64 + 1 == loc.line {
            return offset + (loc.column.saturating_sub(1) as usize).min(line.chars().count());
        }
        offset += line.chars().count() + 1;
    }
    sql.chars().count()
}

/// sqlparser reports positions inside its message ("… at Line: 1, Column: 8").
pub(super) fn syntax_error(sql: &str, e: ParserError) -> Error {
    let msg = match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_string(),
    };
    let (message, position) = match msg.rfind(" at Line: ") {
        Some(i) => {
            let tail = &msg[i + " at Line: ".len()..];
            let mut nums = tail
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty());
            let line = nums.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let column = nums.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            (
                msg[..i].to_string(),
                offset_of(sql, Location { line, column }),
            )
        }
        None => (msg, sql.chars().count()),
    };
    Error::Syntax { message, position }
}

pub(super) fn wrap<T>(sql: &str, r: std::result::Result<T, ParserError>) -> Result<T> {
    r.map_err(|e| syntax_error(sql, e))
}
