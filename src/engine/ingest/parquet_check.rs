//! The checks of an uploaded Parquet file against its target table, made
//! from the footer before a bulk job is staged: `column_metadata`, the
//! column mapping and types, row count and time range.

use std::collections::HashMap;
use std::path::Path;

use datafusion::arrow::compute::can_cast_types;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::file::statistics::Statistics;

use crate::catalog::TableMeta;
use crate::error::{Error, Result};

/// Parquet column name -> table column name, from `column_metadata`: a JSON
/// object whose values are a column name or `{"name": …}`.
pub(super) fn parse_column_metadata(text: Option<&str>) -> Result<HashMap<String, String>> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(HashMap::new());
    };
    let bad = |why: String| Error::invalid(format!("malformed column_metadata: {why}"));
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("a JSON object of parquet column -> table column expected".into()))?;
    let mut out = HashMap::new();
    for (from, to) in obj {
        let to = match to {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => match o.get("name").and_then(|n| n.as_str()) {
                Some(s) => s.to_string(),
                None => return Err(bad(format!("column '{from}' has no target \"name\""))),
            },
            _ => {
                return Err(bad(format!(
                    "column '{from}' maps to neither a name nor an object"
                )));
            }
        };
        out.insert(from.clone(), to);
    }
    Ok(out)
}

/// What the footer says.
pub(super) struct Checked {
    pub(super) rows: i64,
    pub(super) min_ns: i64,
    pub(super) max_ns: i64,
    pub(super) iox: bool,
}

/// The table column each file column goes to.
pub(super) fn targets(
    meta: &TableMeta,
    names: &[String],
    mapping: &HashMap<String, String>,
) -> Result<Vec<usize>> {
    for from in mapping.keys() {
        if !names.iter().any(|n| n == from) {
            return Err(Error::invalid(format!(
                "column_metadata names a column that is not in the file [column={from}]"
            )));
        }
    }
    names
        .iter()
        .map(|n| {
            let target = mapping.get(n).unwrap_or(n);
            meta.column_index(target).ok_or_else(|| {
                Error::invalid(format!(
                    "column mapping mismatch: table {} has no column '{target}' (file column '{n}')",
                    meta_table_hint(meta)
                ))
            })
        })
        .collect()
}

/// `(a, b, c)`: the table's columns, for messages.
fn meta_table_hint(meta: &TableMeta) -> String {
    let names: Vec<&str> = meta.columns.iter().map(|c| c.name.as_str()).collect();
    format!("({})", names.join(", "))
}

pub(super) fn inspect(
    path: &Path,
    filename: &str,
    meta: &TableMeta,
    mapping: &HashMap<String, String>,
) -> Result<Checked> {
    let invalid =
        |why: String| Error::invalid(format!("invalid Parquet file [file={filename}]: {why}"));
    let file = std::fs::File::open(path).map_err(|e| Error::Internal(e.to_string()))?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(Error::invalid(format!(
            "empty Parquet file [file={filename}]: the upload has no bytes"
        )));
    }
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| invalid(e.to_string()))?;
    let md = builder.metadata().clone();
    let schema = builder.schema().clone();
    let rows = md.file_metadata().num_rows();
    if rows == 0 {
        return Err(Error::invalid(format!(
            "empty Parquet file [file={filename}]: it holds no rows"
        )));
    }
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let targets = targets(meta, &names, mapping)?;
    for (i, &t) in targets.iter().enumerate() {
        let from = schema.field(i).data_type();
        let col = &meta.columns[t];
        let to = col.ty.arrow_type();
        if !(from == &to || (compatible(from, col.ty) && can_cast_types(from, &to))) {
            return Err(Error::invalid(format!(
                "column type mismatch [column={}, file type={from}, table type={}]",
                names[i],
                col.ty.name()
            )));
        }
    }
    let Some(ts_index) = meta.timestamp_index() else {
        return Err(Error::invalid(format!(
            "table has no designated timestamp to import into [table columns={}]",
            meta_table_hint(meta)
        )));
    };
    let ts_name = &meta.columns[ts_index].name;
    let Some(file_col) = targets.iter().position(|&t| t == ts_index) else {
        return Err(Error::invalid(format!(
            "missing time column: the file has no column for the table's timestamp '{ts_name}'"
        )));
    };
    let unit_ns: i64 = match schema.field(file_col).data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
        DataType::Int64 => 1_000,
        other => {
            return Err(Error::invalid(format!(
                "time column '{}' is {other}, not a timestamp",
                names[file_col]
            )));
        }
    };
    // The leaf column of a flat schema has the field's index.
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    for rg in md.row_groups() {
        if rg.num_rows() == 0 {
            continue;
        }
        match rg.column(file_col).statistics() {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(lo), Some(hi)) => {
                    min = min.min(lo.saturating_mul(unit_ns));
                    max = max.max(hi.saturating_mul(unit_ns));
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "time column '{}' has no min/max statistics",
                        names[file_col]
                    )));
                }
            },
            _ => {
                return Err(Error::invalid(format!(
                    "time column '{}' has no statistics to take the time range from",
                    names[file_col]
                )));
            }
        }
    }
    let iox = md
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| kv.iter().any(|k| k.key.starts_with("IOX")));
    Ok(Checked {
        rows,
        min_ns: min,
        max_ns: max,
        iox,
    })
}

/// Whether Parquet values of type `from` belong in a column of type `to`
/// without changing their meaning (a float is not a timestamp, text is not
/// a number).
fn compatible(from: &DataType, to: crate::schema::ColumnType) -> bool {
    use crate::schema::ColumnType as T;
    let from = match from {
        DataType::Dictionary(_, v) => v.as_ref(),
        other => other,
    };
    let text = matches!(
        from,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    match to {
        T::Boolean => matches!(from, DataType::Boolean),
        T::Byte | T::Short | T::Int | T::Long => from.is_integer(),
        T::Float | T::Double => from.is_integer() || from.is_floating(),
        T::Date | T::Timestamp | T::TimestampNs => matches!(
            from,
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Int64
        ),
        T::Varchar | T::String | T::Symbol | T::Char => text,
        T::Uuid => text || matches!(from, DataType::FixedSizeBinary(16)),
        T::Ipv4 => text || matches!(from, DataType::UInt32),
    }
}
