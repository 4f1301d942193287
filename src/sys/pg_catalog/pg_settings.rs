//! `pg_catalog.pg_settings`: the run-time parameters the server reports, the
//! one list that `SHOW <name>` answers from too. Drivers read these at
//! connect (`server_version`, `DateStyle`, `integer_datetimes`…); settings a
//! connection changes (`statement_timeout`) are per session and shown by
//! `SHOW` in that session.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;
use crate::sys::SysTable;

/// The PostgreSQL version we answer as (also `SHOW server_version`).
pub const SERVER_VERSION: &str = "16.6";

/// (name, value, category) of one reported parameter.
type Setting = (&'static str, &'static str, &'static str);

/// Every reported parameter; names are PostgreSQL's, matched
/// case-insensitively.
const SETTINGS: &[Setting] = &[
    ("server_version", SERVER_VERSION, "Preset Options"),
    ("server_version_num", "160006", "Preset Options"),
    ("server_encoding", "UTF8", "Preset Options"),
    ("max_identifier_length", "63", "Preset Options"),
    ("integer_datetimes", "on", "Preset Options"),
    ("block_size", "8192", "Preset Options"),
    ("client_encoding", "UTF8", "Client Connection Defaults"),
    ("DateStyle", "ISO, MDY", "Client Connection Defaults"),
    ("IntervalStyle", "postgres", "Client Connection Defaults"),
    ("TimeZone", "UTC", "Client Connection Defaults"),
    ("search_path", "public", "Client Connection Defaults"),
    (
        "default_transaction_read_only",
        "off",
        "Client Connection Defaults",
    ),
    (
        "transaction_isolation",
        "read committed",
        "Client Connection Defaults",
    ),
    (
        "standard_conforming_strings",
        "on",
        "Version and Platform Compatibility",
    ),
    ("lc_collate", "C", "Preset Options"),
    ("lc_ctype", "C", "Preset Options"),
];

/// The value `SHOW name` answers (`time zone`/`transaction isolation level`
/// as PostgreSQL's SQL-standard spellings), or `None` for an unknown name.
pub fn value_of(name: &str) -> Option<&'static str> {
    let name = match name.to_ascii_lowercase().as_str() {
        "time_zone" => "timezone".to_string(),
        "transaction_isolation_level" => "transaction_isolation".to_string(),
        other => other.to_string(),
    };
    SETTINGS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(&name))
        .map(|(_, v, _)| *v)
}

#[derive(Debug)]
pub struct PgSettings {
    schema: SchemaRef,
}

impl Default for PgSettings {
    fn default() -> Self {
        let text = |n: &str| Field::new(n, DataType::Utf8, true);
        PgSettings {
            schema: Arc::new(Schema::new(vec![
                text("name"),
                text("setting"),
                text("unit"),
                text("category"),
                text("context"),
                text("vartype"),
                text("source"),
                text("reset_val"),
            ])),
        }
    }
}

impl SysTable for PgSettings {
    fn name(&self) -> &'static str {
        "pg_settings"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let column = |f: &dyn Fn(&Setting) -> Option<&'static str>| {
            Arc::new(SETTINGS.iter().map(f).collect::<StringArray>()) as _
        };
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                column(&|s| Some(s.0)),
                column(&|s| Some(s.1)),
                column(&|_| None),
                column(&|s| Some(s.2)),
                column(&|_| Some("internal")),
                column(&|_| Some("string")),
                column(&|_| Some("default")),
                column(&|s| Some(s.1)),
            ],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_names_match_either_case_and_spelling() {
        assert_eq!(value_of("datestyle"), Some("ISO, MDY"));
        assert_eq!(value_of("time_zone"), Some("UTC"));
        assert_eq!(
            value_of("transaction_isolation_level"),
            Some("read committed")
        );
        assert_eq!(value_of("no_such"), None);
    }
}
