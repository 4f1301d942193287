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

pub async fn import_csv(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let started = Instant::now();
    let database = headers
        .get("x-arc-database")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| params.get("db").cloned())
        .filter(|d| !d.is_empty());
    let Some(database) = database else {
        return fail(
            StatusCode::BAD_REQUEST,
            "database is required: header X-Arc-Database or parameter db".into(),
        );
    };
    let database = database.to_lowercase();
    let Some(measurement) = params
        .get("measurement")
        .filter(|m| !m.is_empty())
        .map(|m| m.to_lowercase())
    else {
        return fail(StatusCode::BAD_REQUEST, "measurement is required".into());
    };
    for (what, name) in [("database", &database), ("measurement", &measurement)] {
        if name.contains(['.', '/', '\\', '"', '\'']) || name == crate::engine::SYS_SCHEMA {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("invalid {what} name '{name}'"),
            );
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
            return fail(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid time_format '{f}' (epoch_s, epoch_ms, epoch_us, epoch_ns or empty)"
                ),
            );
        }
    };
    let delimiter = match upload::delimiter_param(params.get("delimiter").map(String::as_str)) {
        Ok(d) => d.unwrap_or(b','),
        Err(e) => return error_response(&e),
    };
    let skip_records = match params.get("skip_rows").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "skip_rows must be a whole number".into(),
            );
        }
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
        format,
        dialect: Given::all(Dialect::new(delimiter)),
        partition_by: Some(PartitionBy::Hour),
        on_error: OnError::SkipRow,
        options: ImportOptions {
            rename: if time_column == "time" {
                Vec::new()
            } else {
                vec![(time_column.clone(), "time".to_string())]
            },
            skip_lines: skip_records,
            guess_epoch: true,
            ..ImportOptions::default()
        },
    };
    let imported = match engine.import_file(req, false).await {
        Ok(i) => i,
        Err(e) => return error_response(&e),
    };
    drop(file);
    let s = &imported.summary;
    let ts = |v: Option<i64>| {
        v.map(|v| {
            // Whole seconds print without a fraction, as Arc shows them.
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
