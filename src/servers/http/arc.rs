//! `POST /api/v1/import/csv`: Arc's CSV import. The database (header
//! `X-Arc-Database` or parameter `db`) is the schema, the measurement the
//! table; the time column becomes `time`, the table is partitioned by
//! HOUR, and the upload runs through the same importer as COPY.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::datatypes::TimeUnit;
use serde_json::json;

use super::render::format_timestamp;
use super::upload;
use crate::engine::Engine;
use crate::engine::ingest::{Dialect, Given, ImportOptions, ImportRequest, OnError};
use crate::error::Error;
use crate::schema::name::{self, NameKind};
use crate::time::PartitionBy;

fn fail(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(json!({"status": "error", "error": message})),
    )
        .into_response()
}

fn error_response(e: &Error) -> Response {
    fail(
        StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        e.message(),
    )
}

/// What the request asks for, checked before the upload is read.
struct Asked {
    database: String,
    measurement: String,
    time_column: String,
    /// An `epoch_*` unit, or none: guessed from the values.
    format: Option<String>,
    delimiter: u8,
    skip_records: usize,
}

/// The request's database, measurement and options, or the response
/// that refuses them.
fn asked(headers: &HeaderMap, params: &HashMap<String, String>) -> Result<Asked, Box<Response>> {
    let bad = |m: String| Box::new(fail(StatusCode::BAD_REQUEST, m));
    let database = headers
        .get("x-arc-database")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| params.get("db").cloned())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| bad("database is required: header X-Arc-Database or parameter db".into()))?
        .to_lowercase();
    let measurement = params
        .get("measurement")
        .filter(|m| !m.is_empty())
        .map(|m| m.to_lowercase())
        .ok_or_else(|| bad("measurement is required".into()))?;
    for (what, name) in [("database", &database), ("measurement", &measurement)] {
        if name.contains(['.', '/', '\\', '"', '\'']) || name == crate::engine::SYS_SCHEMA {
            return Err(bad(format!("invalid {what} name '{name}'")));
        }
    }
    let time_column = params
        .get("time_column")
        .filter(|t| !t.is_empty())
        .cloned()
        .unwrap_or_else(|| "time".to_string());
    let format = match params.get("time_format").map(|f| f.to_ascii_lowercase()) {
        None => None,
        Some(f) if f.is_empty() || f == "auto" => None,
        Some(f) if matches!(f.as_str(), "epoch_s" | "epoch_ms" | "epoch_us" | "epoch_ns") => {
            Some(f)
        }
        Some(f) => {
            return Err(bad(format!(
                "invalid time_format '{f}' (epoch_s, epoch_ms, epoch_us, epoch_ns or empty)"
            )));
        }
    };
    let delimiter = upload::delimiter_param(params.get("delimiter").map(String::as_str))
        .map_err(|e| Box::new(error_response(&e)))?
        .unwrap_or(b',');
    let skip_records = match params.get("skip_rows").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(bad("skip_rows must be a whole number".into())),
    };
    Ok(Asked {
        database,
        measurement,
        time_column,
        format,
        delimiter,
        skip_records,
    })
}

pub async fn import_csv(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let started = Instant::now();
    let asked = match asked(&headers, &params) {
        Ok(a) => a,
        Err(response) => return *response,
    };
    let upload = match upload::read(&engine, multipart, "file", true).await {
        Ok(u) => u,
        Err(e) => return error_response(&e),
    };
    let Some(file) = upload.file else {
        return fail(
            StatusCode::BAD_REQUEST,
            "file is required: send the CSV as multipart form field 'file'".into(),
        );
    };
    let (database, measurement) = (asked.database, asked.measurement);
    // Both names are checked before anything is created, so a hostile
    // measurement does not leave a new schema behind.
    let names_ok = name::check(NameKind::Schema, &database)
        .and_then(|_| name::check(NameKind::Table, &measurement));
    if let Err(e) = names_ok {
        return error_response(&e);
    }
    if let Err(e) = engine.catalog().create_schema(&database, true) {
        return error_response(&e);
    }
    let req = ImportRequest {
        schema: database.clone(),
        table: measurement.clone(),
        file_name: file.name.clone().unwrap_or_else(|| "file".into()),
        path: file.data.path.clone(),
        header: Some(true),
        timestamp: Some("time".to_string()),
        format: asked.format,
        dialect: Given::all(Dialect::new(asked.delimiter)),
        partition_by: Some(PartitionBy::Hour),
        on_error: OnError::SkipRow,
        options: ImportOptions {
            rename: if asked.time_column == "time" {
                Vec::new()
            } else {
                vec![(asked.time_column, "time".to_string())]
            },
            skip_lines: asked.skip_records,
            guess_epoch: true,
            ..ImportOptions::default()
        },
    };
    let imported = match engine.import_file(req, false).await {
        Ok(i) => i,
        Err(e) => return error_response(&e),
    };
    drop(file);
    answer(&database, &measurement, &imported, started)
}

/// Arc's answer to an import: the counts, the time range (whole seconds
/// without a fraction, as Arc shows them) and the table's columns.
fn answer(
    database: &str,
    measurement: &str,
    imported: &crate::engine::ingest::Imported,
    started: Instant,
) -> Response {
    let s = &imported.summary;
    let ts = |v: Option<i64>| {
        v.map(|v| {
            let text = format_timestamp(v, TimeUnit::Microsecond);
            if v % 1_000_000 == 0 {
                text.replace(".000000Z", "Z")
            } else {
                text
            }
        })
    };
    let columns: Vec<&str> = imported
        .meta
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    axum::Json(json!({
        "status": "ok",
        "result": {
            "database": database,
            "measurement": measurement,
            "rows_imported": s.rows_imported,
            "rows_rejected": s.rows_rejected,
            "partitions_created": s.partitions,
            "time_range_min": ts(s.min_ts),
            "time_range_max": ts(s.max_ts),
            "columns": columns,
            "duration_ms": started.elapsed().as_millis() as u64,
        }
    }))
    .into_response()
}
