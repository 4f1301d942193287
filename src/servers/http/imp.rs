//! `POST /imp`: QuestDB's synchronous CSV upload. The multipart `data` part
//! (after an optional `schema` part) is spooled, its dialect sniffed when
//! not given, and the importer runs on it; the answer is QuestDB's tabular
//! text or JSON with per-column error counts.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::upload;
use crate::engine::DEFAULT_SCHEMA;
use crate::engine::Engine;
use crate::engine::ingest::{
    ColumnOverride, Given, ImportOptions, ImportRequest, Imported, OnError, normalise_name,
};
use crate::error::Error;
use crate::schema::ColumnType;
use crate::schema::name::{self, NameKind};
use crate::time::PartitionBy;

fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, Error> {
    match params.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" || v.is_empty() => Ok(false),
        Some(v) => Err(Error::bad_option(
            name,
            format!("invalid value for '{name}': '{v}' (true or false expected)"),
        )),
    }
}

/// A table named after its file: the extension goes, and the rest follows
/// QuestDB's name rule (the importer's, as for header names).
pub fn table_from_file_name(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let mut stem = base;
    for ext in [".gz", ".zst", ".zstd"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s;
        }
    }
    for ext in [".csv", ".tsv", ".txt", ".psv"] {
        if stem.len() > ext.len() && stem.to_ascii_lowercase().ends_with(ext) {
            stem = &stem[..stem.len() - ext.len()];
        }
    }
    normalise_name(stem)
}

fn parse_schema(text: &str) -> Result<Vec<ColumnOverride>, Error> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("schema is not valid JSON: {e}")))?;
    let list = match &v {
        Value::Array(a) => a.clone(),
        Value::Object(o) => match o.get("columns") {
            Some(Value::Array(a)) => a.clone(),
            _ => return Err(Error::invalid("schema must be a JSON array of columns")),
        },
        _ => return Err(Error::invalid("schema must be a JSON array of columns")),
    };
    list.iter()
        .map(|c| {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid(format!("schema column without a name: {c}")))?;
            let ty_text = c.get("type").and_then(Value::as_str).ok_or_else(|| {
                Error::invalid(format!("schema column without a type [column={name}]"))
            })?;
            let ty = ColumnType::parse(ty_text).ok_or_else(|| {
                Error::invalid(format!(
                    "invalid column type in schema [column={name}, type={ty_text}]"
                ))
            })?;
            Ok(ColumnOverride {
                name: name.to_string(),
                ty,
                pattern: c.get("pattern").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

/// The bytes QuestDB reports as a column's size.
fn type_size(ty: ColumnType) -> u32 {
    use ColumnType::*;
    match ty {
        Boolean | Byte => 1,
        Short | Char => 2,
        Int | Float | Symbol | Ipv4 => 4,
        Long | Double | Date | Timestamp | TimestampNs => 8,
        Uuid => 16,
        Varchar | String => 0,
    }
}

struct Request {
    req: ImportRequest,
    warnings: Vec<String>,
    json: bool,
}

pub async fn imp(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<HashMap<String, String>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let json = params
        .get("fmt")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    match run(&engine, &params, multipart).await {
        Ok((imported, r)) => respond(&imported, &r),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if json {
                (status, axum::Json(json!({"status": e.message()}))).into_response()
            } else {
                (status, format!("{}\r\n", e.message())).into_response()
            }
        }
    }
}

async fn run(
    engine: &Arc<Engine>,
    params: &HashMap<String, String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(Imported, Request), Error> {
    let json = params
        .get("fmt")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let overwrite = flag(params, "overwrite")?;
    let create = match params.get("create") {
        None => true,
        Some(_) => flag(params, "create")?,
    };
    let on_error = atomicity(params)?;
    let partition_by = match params.get("partitionBy").filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(PartitionBy::parse(p).ok_or_else(|| {
            Error::bad_option("partitionBy", format!("invalid partitionBy '{p}'"))
        })?),
    };
    let delimiter = upload::delimiter_param(params.get("delimiter").map(String::as_str))?;
    let skip_lev = flag(params, "skipLev")?;
    let force_header = flag(params, "forceHeader")?;
    flag(params, "durable")?; // every import is durable: it is synced before it commits

    let upload = upload::read(engine, multipart, "data", true).await?;
    let Some(file) = upload.file else {
        return Err(Error::invalid(
            "no 'data' part in the request: send the CSV as multipart form field 'data'",
        ));
    };
    let columns = match upload.text.get("schema") {
        Some(s) if !s.trim().is_empty() => parse_schema(s)?,
        _ => Vec::new(),
    };
    let file_name = file.name.clone().filter(|n| !n.is_empty() && n != "-");
    let table = table_name(params, file_name.as_deref())?;
    name::check(NameKind::Table, &table)?;
    let timestamp = params.get("timestamp").filter(|t| !t.is_empty()).cloned();
    let mut warnings = Vec::new();
    let existing = if overwrite {
        None
    } else {
        engine.catalog().get(DEFAULT_SCHEMA, &table).map(|t| {
            let meta = t.meta();
            (meta.timestamp, meta.partition_by)
        })
    };
    let (timestamp, partition_by) = designated(existing, timestamp, partition_by, &mut warnings);
    if timestamp.is_none() && partition_by.is_some_and(|p| p != PartitionBy::None) {
        return Err(Error::bad_option(
            "partitionBy",
            "partitionBy needs a designated timestamp: give 'timestamp'",
        ));
    }
    let req = ImportRequest {
        schema: DEFAULT_SCHEMA.to_string(),
        table: table.clone(),
        file_name: file_name.unwrap_or_else(|| "data".to_string()),
        path: file.data.path.clone(),
        header: if force_header { Some(true) } else { None },
        timestamp,
        format: None,
        // What is not given is sniffed by the import's analysis.
        dialect: Given {
            delimiter,
            ..Given::default()
        },
        partition_by,
        on_error,
        options: ImportOptions {
            columns,
            skip_extra_values: skip_lev,
            must_exist: !create,
            ..ImportOptions::default()
        },
    };
    let imported = engine.import_file(req.clone(), overwrite).await?;
    // The spool is removed only now that the importer is done with it.
    drop(file);
    Ok((
        imported,
        Request {
            req,
            warnings,
            json,
        },
    ))
}

/// `atomicity`: what a bad row does (QuestDB's names and numbers).
fn atomicity(params: &HashMap<String, String>) -> Result<OnError, Error> {
    let Some(a) = params.get("atomicity").map(|a| a.to_ascii_lowercase()) else {
        return Ok(OnError::SkipRow);
    };
    match a.as_str() {
        "skiprow" | "1" => Ok(OnError::SkipRow),
        "abort" | "0" => Ok(OnError::Abort),
        "skipcol" | "2" => Ok(OnError::SkipColumn),
        other => Err(Error::bad_option(
            "atomicity",
            format!("invalid atomicity '{other}' (skipRow, abort, skipCol, 0, 1 or 2 expected)"),
        )),
    }
}

/// The table: `name`, else the upload's file name. As given: the catalog
/// matches table names ignoring case.
fn table_name(params: &HashMap<String, String>, file_name: Option<&str>) -> Result<String, Error> {
    match params.get("name").filter(|n| !n.is_empty()) {
        Some(n) => Ok(n.clone()),
        None => match file_name {
            Some(f) => Ok(table_from_file_name(f)),
            None => Err(Error::invalid(
                "table name is missing: give 'name' or a file name in the 'data' part",
            )),
        },
    }
}

/// The designated timestamp and partitioning an import uses: an existing
/// table's own (with a warning where the request asked otherwise), else
/// the request's, PARTITION BY DAY by default when a timestamp is named
/// (QuestDB's default), NONE without one.
fn designated(
    existing: Option<(Option<String>, PartitionBy)>,
    timestamp: Option<String>,
    partition_by: Option<PartitionBy>,
    warnings: &mut Vec<String>,
) -> (Option<String>, Option<PartitionBy>) {
    match existing {
        Some((table_ts, table_partition_by)) => {
            if timestamp.is_some() && timestamp != table_ts {
                warnings.push("Existing table timestamp column is used".to_string());
            }
            if partition_by.is_some_and(|p| p != table_partition_by) {
                warnings.push("Existing table PartitionBy is used".to_string());
            }
            (table_ts, None)
        }
        None => {
            let p = match (&timestamp, partition_by) {
                (_, Some(p)) => Some(p),
                (Some(_), None) => Some(PartitionBy::Day),
                (None, None) => None,
            };
            (timestamp, p)
        }
    }
}

fn respond(imported: &Imported, r: &Request) -> Response {
    let s = &imported.summary;
    let meta = &imported.meta;
    let rejected = s.rows_rejected;
    let errors_of = |name: &str| s.column_errors.get(name).copied().unwrap_or(0);
    let partition = meta.partition_by.name();
    let timestamp = meta.timestamp.clone();
    if r.json {
        let columns: Vec<Value> = meta
            .columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.ty.name(),
                    "size": type_size(c.ty),
                    "errors": errors_of(&c.name),
                })
            })
            .collect();
        let mut body = json!({
            "status": "OK",
            "location": r.req.table,
            "rowsRejected": rejected,
            "rowsImported": s.rows_imported,
            "header": s.header,
            "partitionBy": partition,
            "columns": columns,
        });
        if let Some(ts) = &timestamp {
            body["timestamp"] = json!(ts);
        }
        if !r.warnings.is_empty() {
            body["warnings"] = json!(r.warnings);
        }
        return axum::Json(body).into_response();
    }
    let mut rows: Vec<[String; 5]> = vec![
        [
            "Location:".into(),
            r.req.table.clone(),
            "Pattern".into(),
            "Locale".into(),
            "Errors".into(),
        ],
        [
            "Partition by".into(),
            partition.to_string(),
            String::new(),
            String::new(),
            String::new(),
        ],
        [
            "Timestamp".into(),
            timestamp.clone().unwrap_or_else(|| "NONE".into()),
            String::new(),
            String::new(),
            String::new(),
        ],
        Default::default(),
        [
            "Rows handled".into(),
            s.rows_handled.to_string(),
            String::new(),
            String::new(),
            String::new(),
        ],
        [
            "Rows imported".into(),
            s.rows_imported.to_string(),
            String::new(),
            String::new(),
            String::new(),
        ],
        Default::default(),
    ];
    for (i, c) in meta.columns.iter().enumerate() {
        rows.push([
            i.to_string(),
            c.name.clone(),
            c.ty.name().to_string(),
            String::new(),
            errors_of(&c.name).to_string(),
        ]);
    }
    for w in &r.warnings {
        rows.push([
            "Warning".into(),
            w.clone(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let total: usize = widths.iter().map(|w| w + 3).sum::<usize>() + 1;
    let rule = format!("+{}+\r\n", "-".repeat(total - 2));
    let mut out = rule.clone();
    for row in &rows {
        if row.iter().all(String::is_empty) {
            out.push_str(&rule);
            continue;
        }
        out.push('|');
        for (cell, w) in row.iter().zip(widths) {
            out.push_str(&format!(" {cell:>w$} |"));
        }
        out.push_str("\r\n");
    }
    out.push_str(&rule);
    (StatusCode::OK, out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_files() {
        assert_eq!(table_from_file_name("weather.csv"), "weather");
        assert_eq!(
            table_from_file_name("/tmp/my data-2024.csv.gz"),
            "myData2024"
        );
        assert_eq!(table_from_file_name("trades"), "trades");
        assert_eq!(table_from_file_name("a.b.tsv"), "aB");
    }

    #[test]
    fn schema_part() {
        let s = parse_schema(
            r#"[{"name":"ts","type":"TIMESTAMP","pattern":"yyyy"},{"name":"s","type":"symbol"}]"#,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].ty, ColumnType::Symbol);
        assert!(parse_schema("[{\"name\":\"x\",\"type\":\"NOPE\"}]").is_err());
        assert!(parse_schema("{not json").is_err());
    }
}
