//! A table's definition: columns with their QuestDB types and options, the
//! designated timestamp and the partition unit. Stored inside the table's
//! manifest, so definition and files change together atomically.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};

use crate::error::{Error, Result};
use crate::schema::ColumnType;
use crate::storage::Layout;
use crate::time::PartitionBy;

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
    /// QuestDB's table parameters (`WITH …`, `SET PARAM`).
    #[serde(default, skip_serializing_if = "TableParams::is_empty")]
    pub params: TableParams,
    /// Partitions whose whole time range is older than the newest row by
    /// more than this are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Ttl>,
    /// `DEDUP UPSERT KEYS(…)`: a row replaces the stored rows with equal
    /// values in these columns (the designated timestamp among them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dedup_keys: Vec<String>,
}

/// QuestDB's table parameters. `max_uncommitted_rows` is the row count at
/// which the table's write-ahead log is applied; `o3_max_lag` is kept and
/// shown only (rows are sorted when written, whatever their lateness).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TableParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uncommitted_rows: Option<u64>,
    /// Microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o3_max_lag: Option<u64>,
}

impl TableParams {
    pub fn is_empty(&self) -> bool {
        *self == TableParams::default()
    }

    pub fn set(&mut self, p: &TableParam) {
        match *p {
            TableParam::MaxUncommittedRows(n) => self.max_uncommitted_rows = Some(n),
            TableParam::O3MaxLag(us) => self.o3_max_lag = Some(us),
        }
    }

    /// `WITH …` as SHOW CREATE TABLE writes it (empty when none is set).
    fn ddl(&self) -> String {
        let mut out = Vec::new();
        if let Some(n) = self.max_uncommitted_rows {
            out.push(format!("maxUncommittedRows={n}"));
        }
        if let Some(us) = self.o3_max_lag {
            out.push(format!("o3MaxLag={us}us"));
        }
        if out.is_empty() {
            String::new()
        } else {
            format!(" WITH {}", out.join(", "))
        }
    }
}

/// One table parameter as written in `WITH` or `SET PARAM`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TableParam {
    MaxUncommittedRows(u64),
    /// Microseconds.
    O3MaxLag(u64),
}

/// A table's time to live, in QuestDB's units.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Ttl {
    pub count: u32,
    pub unit: TtlUnit,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum TtlUnit {
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl TtlUnit {
    /// `HOUR`, `HOURS`, `H` and the like, case-insensitively.
    pub fn parse(word: &str) -> Option<TtlUnit> {
        Some(match word.to_ascii_uppercase().as_str() {
            "H" | "HOUR" | "HOURS" => TtlUnit::Hours,
            "D" | "DAY" | "DAYS" => TtlUnit::Days,
            "W" | "WEEK" | "WEEKS" => TtlUnit::Weeks,
            "M" | "MONTH" | "MONTHS" => TtlUnit::Months,
            "Y" | "YEAR" | "YEARS" => TtlUnit::Years,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TtlUnit::Hours => "HOURS",
            TtlUnit::Days => "DAYS",
            TtlUnit::Weeks => "WEEKS",
            TtlUnit::Months => "MONTHS",
            TtlUnit::Years => "YEARS",
        }
    }
}

impl Ttl {
    /// The oldest instant (UTC microseconds) a partition's end may have
    /// and be kept, for a table whose newest row is at `newest`.
    pub fn cutoff(&self, newest: i64) -> i64 {
        let n = self.count as i64;
        const HOUR: i64 = 3_600_000_000;
        // Calendar months (the 31st less a month is the month's last day).
        let months = |m: u32| {
            chrono::DateTime::from_timestamp_micros(newest)
                .and_then(|t| t.checked_sub_months(chrono::Months::new(m)))
                .map_or(i64::MIN, |t| t.timestamp_micros())
        };
        match self.unit {
            TtlUnit::Hours => newest - n * HOUR,
            TtlUnit::Days => newest - n * 24 * HOUR,
            TtlUnit::Weeks => newest - n * 7 * 24 * HOUR,
            TtlUnit::Months => months(self.count),
            TtlUnit::Years => months(self.count.saturating_mul(12)),
        }
    }
}

impl TableMeta {
    /// The definition of a table an import creates: its columns, the
    /// designated timestamp and partitioning, a WAL table (as QuestDB
    /// makes them), no parameters, TTL or deduplication; checked.
    pub fn new_imported(
        columns: Vec<ColumnMeta>,
        timestamp: Option<String>,
        partition_by: PartitionBy,
    ) -> Result<TableMeta> {
        let meta = TableMeta {
            columns,
            timestamp,
            partition_by,
            wal: true,
            params: TableParams::default(),
            ttl: None,
            dedup_keys: vec![],
        };
        meta.validate()?;
        Ok(meta)
    }

    /// Builds a batch in the table's schema from a source batch whose column
    /// `i` goes to table column `targets[i]` (the others are NULL); every value
    /// converts or the batch fails, naming the column and the value.
    pub fn convert_batch(&self, batch: &RecordBatch, targets: &[usize]) -> Result<RecordBatch> {
        self.convert_batch_to(self.arrow_schema(), batch, targets)
    }

    /// [`TableMeta::convert_batch`] with the table's Arrow schema already
    /// built (a table keeps it with its definition).
    pub fn convert_batch_to(
        &self,
        schema: SchemaRef,
        batch: &RecordBatch,
        targets: &[usize],
    ) -> Result<RecordBatch> {
        self.convert_columns_to(schema, batch.columns(), batch.num_rows(), targets)
    }

    /// [`TableMeta::convert_batch_to`] for source columns of `rows` rows
    /// not gathered in a batch (a VALUES list's, which need no schema).
    pub fn convert_columns_to(
        &self,
        schema: SchemaRef,
        source: &[ArrayRef],
        rows: usize,
        targets: &[usize],
    ) -> Result<RecordBatch> {
        let meta = self;
        let mut columns: Vec<Option<ArrayRef>> = vec![None; meta.columns.len()];
        for (src, &dst) in targets.iter().enumerate() {
            let col = &meta.columns[dst];
            columns[dst] = Some(col.ty.convert(&source[src], &col.name)?);
        }
        let columns: Vec<ArrayRef> = columns
            .into_iter()
            .enumerate()
            .map(|(i, c)| c.unwrap_or_else(|| new_null_array(schema.field(i).data_type(), rows)))
            .collect();
        Ok(RecordBatch::try_new(schema, columns)?)
    }

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
        if !self.dedup_keys.is_empty() {
            let ts = self.timestamp.as_deref().ok_or_else(|| {
                Error::invalid(
                    "deduplication is possible only on tables with designated timestamps",
                )
            })?;
            for k in &self.dedup_keys {
                if self.column(k).is_none() {
                    return Err(Error::ColumnNotFound {
                        column: k.clone(),
                        position: None,
                    });
                }
            }
            if !self.dedup_keys.iter().any(|k| k.eq_ignore_ascii_case(ts)) {
                return Err(Error::invalid(format!(
                    "deduplicate key list must include dedicated timestamp column [column={ts}]"
                )));
            }
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
            bloom: self.bloom_columns(),
        }
    }

    /// The indexed columns, whose files carry bloom filters.
    pub fn bloom_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.indexed)
            .map(|c| c.name.clone())
            .collect()
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
        if let Some(ttl) = self.ttl {
            ddl.push_str(&format!(" TTL {} {}", ttl.count, ttl.unit.name()));
        }
        ddl.push_str(if self.wal { " WAL" } else { " BYPASS WAL" });
        ddl.push_str(&self.params.ddl());
        if !self.dedup_keys.is_empty() {
            let keys: Vec<String> = self.dedup_keys.iter().map(|k| quote_ident(k)).collect();
            ddl.push_str(&format!(" DEDUP UPSERT KEYS({})", keys.join(", ")));
        }
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
            params: TableParams::default(),
            ttl: None,
            dedup_keys: vec![],
        }
    }

    #[test]
    fn ddl_mentions_everything() {
        let ddl = weather().ddl("weather");
        assert!(ddl.contains("city SYMBOL CAPACITY 256 CACHE"), "{ddl}");
        assert!(ddl.contains("timestamp(ts) PARTITION BY DAY WAL;"), "{ddl}");
    }

    #[test]
    fn ttl_cutoffs_count_calendar_units() {
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        let ttl = |count, unit| Ttl { count, unit };
        let newest = t("2024-03-31T10:00:00Z");
        assert_eq!(
            ttl(2, TtlUnit::Days).cutoff(newest),
            t("2024-03-29T10:00:00Z")
        );
        assert_eq!(
            ttl(1, TtlUnit::Months).cutoff(newest),
            t("2024-02-29T10:00:00Z")
        );
        assert_eq!(
            ttl(1, TtlUnit::Years).cutoff(newest),
            t("2023-03-31T10:00:00Z")
        );
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
