//! `POST` and `GET /api/v3/enterprise/import`: InfluxDB 3's Parquet bulk
//! import. These routes need `http.auth.token` configured (the router's
//! token check then requires it on the request); the engine validates and
//! stages the upload and its scheduler applies it.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::upload;
use crate::engine::Engine;
use crate::error::Error;

fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": message.into(), "data": null})),
    )
        .into_response()
}

/// Without a configured token nobody can hold the operator token these
/// routes require.
fn token_required(engine: &Engine) -> Option<Response> {
    engine.config().http_auth_token.is_none().then(|| {
        fail(
            StatusCode::UNAUTHORIZED,
            "bulk import requires an operator token: set http.auth.token and send Authorization: Bearer <token>",
        )
    })
}

pub async fn list(State(engine): State<Arc<Engine>>) -> Response {
    if let Some(r) = token_required(&engine) {
        return r;
    }
    axum::Json(engine.bulk().list()).into_response()
}

pub async fn upload(
    State(engine): State<Arc<Engine>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Some(r) = token_required(&engine) {
        return r;
    }
    let upload = match upload::read(&engine, multipart, "file_bytes", false).await {
        Ok(u) => u,
        Err(e) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return fail(status, e.message());
        }
    };
    let text = |name: &str| {
        upload
            .text
            .get(name)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let Some(file) = upload.file.as_ref() else {
        return fail(StatusCode::BAD_REQUEST, "missing file_bytes part");
    };
    let Some(database) = text("database") else {
        return fail(StatusCode::BAD_REQUEST, "missing database part");
    };
    let Some(table) = text("table") else {
        return fail(StatusCode::BAD_REQUEST, "missing table part");
    };
    let column_metadata = text("column_metadata");
    let filename = file.name.clone().unwrap_or_else(|| "file_bytes".into());
    let path = file.data.path.clone();
    let bulk = Arc::clone(engine.bulk());
    let staged = tokio::task::spawn_blocking(move || {
        bulk.stage(&database, &table, &filename, &path, column_metadata)
    })
    .await;
    match staged {
        Ok(Ok(job)) => axum::Json(job).into_response(),
        Ok(Err(e)) => {
            // InfluxDB answers 404 for an unknown database or table.
            let status = match e {
                Error::SchemaNotFound { .. } | Error::TableNotFound { .. } => StatusCode::NOT_FOUND,
                ref other => StatusCode::from_u16(other.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            };
            fail(status, e.message())
        }
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
