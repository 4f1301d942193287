//! The one rule for schema and table names. Both become directory names
//! under the data root, so this is also the rule that keeps every name a
//! user sends inside it: every way a schema or table is created or renamed
//! (SQL DDL, COPY, `/imp`, Arc, the bulk endpoint, RENAME) passes here.

use crate::error::{Error, Result};

/// Longest name, in bytes (a directory entry holds 255; staging and
/// dropped directories add a prefix and a suffix to it).
pub const MAX_NAME_BYTES: usize = 127;

/// What a name names, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Schema,
    Table,
}

impl NameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::Schema => "schema",
            NameKind::Table => "table",
        }
    }
}

/// Why a name is refused, or `None` when it is fine.
fn refusal(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("longer than 127 bytes");
    }
    if name.contains(['/', '\\']) {
        return Some("contains a path separator");
    }
    if name.chars().any(|c| c.is_control()) {
        return Some("contains a NUL or control character");
    }
    // `.` and `..` are the directory itself and its parent; a leading dot
    // is how our own staging and dropped directories are hidden.
    if name.starts_with('.') || name.contains("..") {
        return Some("starts with '.' or contains '..'");
    }
    None
}

/// Checks a schema or table name: no path separators, no `.`/`..`, no
/// leading dot, no NUL or control characters, at most 127 bytes.
pub fn check(kind: NameKind, name: &str) -> Result<()> {
    match refusal(name) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName {
            kind: kind.as_str(),
            name: name.escape_debug().to_string(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "../../../x",
            "a/b",
            "a\\b",
            "/abs",
            "x\0y",
            "tab\there",
            "line\nbreak",
            ".hidden",
            "a..b",
            &"x".repeat(128),
        ] {
            let e = check(NameKind::Table, bad).unwrap_err();
            assert_eq!(e.sqlstate(), "42602", "{bad:?}");
            assert_eq!(e.http_status(), 400, "{bad:?}");
        }
        for good in [
            "weather",
            "Weather 2024",
            "a.b",
            "trades_1",
            "ünïcode",
            &"x".repeat(127),
        ] {
            check(NameKind::Schema, good).unwrap();
        }
    }
}
