//! The console's own JSON calls, behind the same token as `/exec`: upload
//! a file (streamed to the work root, gzip/zstd decompressed), preview its
//! import (the dry run's report and first records) with the user's edits,
//! and start the import, which then runs as a COPY does (its id in
//! `sys.copy_progress`, `COPY 'id' CANCEL` to stop it).

use std::sync::Arc;

use axum::Extension;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::upload;
use super::uploads::{Held, Uploads};
use crate::engine::DEFAULT_SCHEMA;
use crate::engine::Engine;
use crate::engine::ingest::{ColumnOverride, Given, ImportOptions, ImportRequest, OnError};
use crate::error::Error;
use crate::schema::ColumnType;
use crate::schema::name::{self, NameKind};
use crate::time::PartitionBy;

/// Records shown in an import's preview.
const PREVIEW_RECORDS: usize = 10;

fn failure(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({"error": e.message()}))).into_response()
}

/// `POST /console/api/upload`: the multipart `data` part, kept until it is
/// imported.
pub async fn upload(
    State(engine): State<Arc<Engine>>,
    Extension(uploads): Extension<Arc<Uploads>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let received = match upload::read(&engine, multipart, "data", true).await {
        Ok(u) => u,
        Err(e) => return failure(&e),
    };
    let Some(file) = received.file else {
        return failure(&Error::invalid(
            "no 'data' part in the request: send the file as multipart form field 'data'",
        ));
    };
    let bytes = std::fs::metadata(&file.data.path).map_or(0, |m| m.len());
    let mut name = file.name.unwrap_or_else(|| "upload.csv".to_string());
    for suffix in [".gz", ".zst"] {
        if name.len() > suffix.len() && name.to_ascii_lowercase().ends_with(suffix) {
            name.truncate(name.len() - suffix.len());
        }
    }
    let held = uploads.add(name, bytes, file.data);
    axum::Json(json!({"upload": held.id, "name": held.name, "bytes": held.bytes})).into_response()
}

/// `DELETE /console/api/upload/{id}`.
pub async fn forget(
    Extension(uploads): Extension<Arc<Uploads>>,
    Path(id): Path<String>,
) -> Response {
    if uploads.remove(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        failure(&Error::invalid(format!("no upload '{id}'")))
    }
}

/// One column as the user edited it.
#[derive(Debug, Deserialize)]
pub struct FormColumn {
    /// The name the file gives it.
    file: String,
    /// The name in the table.
    name: String,
    /// The type to give it (else the detected one).
    #[serde(rename = "type", default)]
    ty: Option<String>,
}

/// An import as the console's form describes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Form {
    upload: String,
    table: String,
    #[serde(default)]
    header: Option<bool>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    /// The designated timestamp's format.
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    partition_by: Option<String>,
    /// `skipRow`, `skipColumn` or `abort`.
    #[serde(default)]
    on_error: Option<String>,
    /// Drop an existing table first instead of appending to it.
    #[serde(default)]
    overwrite: bool,
    #[serde(default)]
    columns: Vec<FormColumn>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn request(form: &Form, held: &Held) -> Result<ImportRequest, Error> {
    name::check(NameKind::Table, &form.table)?;
    let delimiter = upload::delimiter_param(form.delimiter.as_deref())?;
    let partition_by = match non_empty(&form.partition_by) {
        None => None,
        Some(p) => Some(PartitionBy::parse(&p).ok_or_else(|| {
            Error::bad_option("partitionBy", format!("invalid partitionBy '{p}'"))
        })?),
    };
    let on_error = match non_empty(&form.on_error)
        .map(|o| o.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("skiprow") => OnError::SkipRow,
        Some("skipcolumn") => OnError::SkipColumn,
        Some("abort") => OnError::Abort,
        Some(other) => {
            return Err(Error::invalid(format!(
                "invalid onError '{other}' (skipRow, skipColumn or abort expected)"
            )));
        }
    };
    let mut rename = Vec::new();
    let mut columns = Vec::new();
    for c in &form.columns {
        if c.name.trim().is_empty() {
            return Err(Error::invalid(format!("column '{}' needs a name", c.file)));
        }
        if c.name != c.file {
            rename.push((c.file.clone(), c.name.clone()));
        }
        if let Some(text) = non_empty(&c.ty) {
            let ty = ColumnType::parse(&text).ok_or_else(|| {
                Error::invalid(format!("invalid type '{text}' for column '{}'", c.name))
            })?;
            columns.push(ColumnOverride {
                name: c.name.clone(),
                ty,
                pattern: None,
            });
        }
    }
    Ok(ImportRequest {
        schema: DEFAULT_SCHEMA.to_string(),
        table: form.table.clone(),
        file_name: held.name.clone(),
        path: held.file.path.clone(),
        header: form.header,
        timestamp: non_empty(&form.timestamp),
        format: non_empty(&form.format),
        dialect: Given {
            delimiter,
            ..Given::default()
        },
        partition_by,
        on_error,
        options: ImportOptions {
            columns,
            rename,
            upload: Some(Arc::clone(&held.file)),
            ..ImportOptions::default()
        },
    })
}

fn held(uploads: &Uploads, id: &str) -> Result<Held, Error> {
    uploads.get(id).ok_or_else(|| {
        Error::invalid(format!(
            "no upload '{id}' (it was imported, removed or replaced by newer uploads): upload the file again"
        ))
    })
}

/// `POST /console/api/preview`: the dry run of the form's import and the
/// file's first records.
pub async fn preview(
    State(engine): State<Arc<Engine>>,
    Extension(uploads): Extension<Arc<Uploads>>,
    axum::Json(form): axum::Json<Form>,
) -> Response {
    let run = async {
        let held = held(&uploads, &form.upload)?;
        let req = request(&form, &held)?;
        let table = req.table_display();
        let summary = engine.dry_run_file(req).await?;
        let report = crate::engine::dry_run::rows(&held.name, &table, &summary);
        let path = held.file.path.clone();
        let sample = tokio::task::spawn_blocking(move || {
            crate::engine::ingest::first_records(&path, &summary, PREVIEW_RECORDS)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        Ok::<_, Error>(json!({"report": report, "sample": sample}))
    };
    match run.await {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => failure(&e),
    }
}

/// `POST /console/api/import`: starts the form's import and answers its
/// id; the upload then belongs to the import.
pub async fn import(
    State(engine): State<Arc<Engine>>,
    Extension(uploads): Extension<Arc<Uploads>>,
    axum::Json(form): axum::Json<Form>,
) -> Response {
    let run = || {
        let held = held(&uploads, &form.upload)?;
        let req = request(&form, &held)?;
        let id = engine.start_import(req, form.overwrite)?;
        uploads.remove(&held.id);
        Ok::<_, Error>(id)
    };
    match run() {
        Ok(id) => axum::Json(json!({"id": id})).into_response(),
        Err(e) => failure(&e),
    }
}
