//! A table's definition: columns with their QuestDB types and options, the
//! designated timestamp and the partition unit. Stored inside the table's
//! manifest, so definition and files change together atomically.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::types::ColumnType;
use crate::error::{Error, Result};
use crate::storage::{Layout, PartitionBy};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnMeta {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// SYMBOL CAPACITY n (a sizing hint kept for SHOW CREATE TABLE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol_capacity: Option<u32>,
    /// SYMBOL CACHE / NOCACHE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol_cache: Option<bool>,
    #[serde(default)]
    pub indexed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_capacity: Option<u32>,
}

impl ColumnMeta {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        ColumnMeta {
            name: name.into(),
            ty,
            symbol_capacity: None,
            symbol_cache: None,
            indexed: false,
            index_capacity: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableMeta {
    pub columns: Vec<ColumnMeta>,
    /// Name of the designated timestamp column.
    pub timestamp: Option<String>,
    pub partition_by: PartitionBy,
    #[serde(default)]
    pub wal: bool,
}

impl TableMeta {
    /// Checks the definition: unique names, a designated timestamp that is a
    /// TIMESTAMP column, partitioning only with a designated timestamp.
    pub fn validate(&self) -> Result<()> {
        if self.columns.is_empty() {
            return Err(Error::invalid("table must have at least one column"));
        }
        for (i, c) in self.columns.iter().enumerate() {
            if c.name.is_empty() {
                return Err(Error::invalid("empty column name"));
            }
            if self.columns[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&c.name))
            {
                return Err(Error::DuplicateColumn {
                    column: c.name.clone(),
                });
            }
            if c.indexed && c.ty != ColumnType::Symbol {
                return Err(Error::invalid(format!(
                    "indexes are only supported for SYMBOL columns [column={}]",
                    c.name
                )));
            }
        }
        match &self.timestamp {
            Some(ts) => {
                let col = self.column(ts).ok_or_else(|| Error::ColumnNotFound {
                    column: ts.clone(),
                    position: None,
                })?;
                if !matches!(col.ty, ColumnType::Timestamp | ColumnType::TimestampNs) {
                    return Err(Error::invalid(format!(
                        "TIMESTAMP column expected [column={}, type={}]",
                        col.name,
                        col.ty.name()
                    )));
                }
            }
            None if self.partition_by != PartitionBy::None => {
                return Err(Error::invalid(
                    "partitioning is possible only on tables with designated timestamps",
                ));
            }
            None => {}
        }
        Ok(())
    }

    pub fn column(&self, name: &str) -> Option<&ColumnMeta> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The definition a table version stores (JSON), read back; `file`
    /// is where it was read from, for the error.
    pub fn from_definition(
        definition: &serde_json::Value,
        table: &str,
        file: &str,
    ) -> Result<TableMeta> {
        serde_json::from_value(definition.clone()).map_err(|e| Error::Corrupt {
            table: table.into(),
            file: file.to_string(),
            reason: e.to_string(),
        })
    }

    pub fn timestamp_index(&self) -> Option<usize> {
        self.timestamp.as_deref().and_then(|t| self.column_index(t))
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| c.ty.field(&c.name))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn layout(&self) -> Layout {
        Layout {
            schema: self.arrow_schema(),
            timestamp: self.timestamp_index(),
            partition_by: self.partition_by,
        }
    }

    /// DDL that recreates the table (SHOW CREATE TABLE).
    pub fn ddl(&self, name: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut s = format!("\t{} {}", quote_ident(&c.name), c.ty.name());
                if c.ty == ColumnType::Symbol {
                    s.push_str(&format!(" CAPACITY {}", c.symbol_capacity.unwrap_or(128)));
                    s.push_str(if c.symbol_cache.unwrap_or(true) {
                        " CACHE"
                    } else {
                        " NOCACHE"
                    });
                }
                if c.indexed {
                    s.push_str(" INDEX");
                    if let Some(cap) = c.index_capacity {
                        s.push_str(&format!(" CAPACITY {cap}"));
                    }
                }
                s
            })
            .collect();
        let mut ddl = format!(
            "CREATE TABLE {} ( \n{}\n)",
            quote_ident(name),
            cols.join(",\n")
        );
        if let Some(ts) = &self.timestamp {
            ddl.push_str(&format!(" timestamp({})", quote_ident(ts)));
        }
        ddl.push_str(&format!(" PARTITION BY {}", self.partition_by.name()));
        ddl.push_str(if self.wal { " WAL" } else { " BYPASS WAL" });
        ddl.push(';');
        ddl
    }
}

/// Quotes an identifier when it would not read back as itself unquoted
/// (names keep their case, so `tempF` reads back as `tempF`).
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> TableMeta {
        let mut city = ColumnMeta::new("city", ColumnType::Symbol);
        city.symbol_capacity = Some(256);
        TableMeta {
            columns: vec![
                ColumnMeta::new("ts", ColumnType::Timestamp),
                city,
                ColumnMeta::new("temp", ColumnType::Double),
            ],
            timestamp: Some("ts".into()),
            partition_by: PartitionBy::Day,
            wal: true,
        }
    }

    #[test]
    fn ddl_mentions_everything() {
        let ddl = weather().ddl("weather");
        assert!(ddl.contains("city SYMBOL CAPACITY 256 CACHE"), "{ddl}");
        assert!(ddl.contains("timestamp(ts) PARTITION BY DAY WAL;"), "{ddl}");
    }

    #[test]
    fn validate_rejects_partitioning_without_timestamp() {
        let mut m = weather();
        m.timestamp = None;
        assert!(m.validate().is_err());
        let mut m = weather();
        m.timestamp = Some("temp".into());
        assert!(m.validate().is_err());
    }
}
