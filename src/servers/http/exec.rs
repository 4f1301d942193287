//! `/exec` and `/exp`: run one SQL text, answer QuestDB's JSON or CSV.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::render;
use crate::engine::{CommandKind, Engine, Output, Rows, Session};
use crate::error::{Error, locate_error};
use crate::sql::{self, QdbLimit};

fn session() -> Session {
    Session {
        statement_timeout: None,
        user: "http".into(),
        read_only: false,
    }
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// QuestDB's error body: `{"query", "error", "position"}`.
/// COPY FROM STDIN / TO STDOUT stream over the PostgreSQL protocol only.
fn stdio_error() -> Error {
    Error::unsupported(
        "COPY FROM STDIN and COPY TO STDOUT need the PostgreSQL wire protocol (psql \\copy); over HTTP use /imp and /exp",
    )
}

fn error_response(query: &str, e: &Error) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"query": query, "error": e.message(), "position": e.position().unwrap_or(0)});
    (status, axum::Json(body)).into_response()
}

/// Runs every statement of the text; the last output is the answer.
async fn run(
    engine: &Engine,
    query: &str,
    headers: &HeaderMap,
) -> Result<(Output, Duration, Duration), Error> {
    let timeout = headers
        .get("Statement-Timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    let started = Instant::now();
    let statements = sql::parse(query).map_err(|e| locate_error(query, e))?;
    let compiled = started.elapsed();
    if statements.is_empty() {
        return Err(Error::syntax("empty query", 0));
    }
    let mut last = None;
    for stmt in statements {
        last = Some(
            engine
                .execute_statement(stmt, &session(), &[], timeout)
                .await
                .map_err(|e| locate_error(query, e))?,
        );
    }
    Ok((
        last.expect("at least one statement"),
        compiled,
        started.elapsed() - compiled,
    ))
}

fn parse_limit(params: &HashMap<String, String>) -> Result<Option<QdbLimit>, Error> {
    match params.get("limit") {
        None => Ok(None),
        Some(l) if l.trim().is_empty() => Ok(None),
        Some(l) => QdbLimit::parse_param(l)
            .map(Some)
            .ok_or_else(|| Error::invalid(format!("invalid limit parameter [limit={l}]"))),
    }
}

/// The `query` and `limit` parameters of `/exec` and `/exp`.
#[allow(clippy::result_large_err)]
fn query_and_limit(
    params: &HashMap<String, String>,
) -> Result<(String, Option<QdbLimit>), Response> {
    let Some(query) = params.get("query").cloned() else {
        return Err(error_response("", &Error::syntax("No query text", 0)));
    };
    match parse_limit(params) {
        Ok(limit) => Ok((query, limit)),
        Err(e) => Err(error_response(&query, &e)),
    }
}

pub async fn exec(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (query, limit) = match query_and_limit(&params) {
        Ok(q) => q,
        Err(response) => return response,
    };
    let (output, compiled, executed) = match run(&engine, &query, &headers).await {
        Ok(r) => r,
        Err(e) => return error_response(&query, &e),
    };
    let rows = match output {
        Output::Rows(rows) => rows,
        Output::Command(c) => {
            let key = if c.kind == CommandKind::Dml {
                "dml"
            } else {
                "ddl"
            };
            return axum::Json(json!({ key: "OK" })).into_response();
        }
        Output::CopyIn(_) | Output::CopyOut(_) => {
            return error_response(&query, &stdio_error());
        }
    };
    let total = rows.num_rows();
    let rows = match limit {
        Some(l) => rows.limit(l),
        None => rows,
    };
    let dataset = match render::json_rows(&rows) {
        Ok(d) => d,
        Err(e) => return error_response(&query, &e),
    };
    // QuestDB's key order (query, columns, dataset, count, timings); serde_json
    // maps sort keys, so the object is assembled here.
    let mut body = format!("{{\"query\":{}", Value::String(query));
    if !flag(&params, "nm") {
        body.push_str(&format!(
            ",\"columns\":{}",
            render::json_columns(&rows.schema)
        ));
    }
    body.push_str(&format!(",\"dataset\":{dataset}"));
    body.push_str(&format!(
        ",\"count\":{}",
        if flag(&params, "count") {
            total
        } else {
            rows.num_rows()
        }
    ));
    if flag(&params, "timings") {
        body.push_str(&format!(
            ",\"timings\":{{\"authentication\":0,\"compiler\":{},\"execute\":{},\"count\":0}}",
            compiled.as_nanos(),
            executed.as_nanos()
        ));
    }
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub async fn exp(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (query, limit) = match query_and_limit(&params) {
        Ok(q) => q,
        Err(response) => return response,
    };
    let rows: Rows = match run(&engine, &query, &headers).await {
        Ok((Output::Rows(rows), _, _)) => rows,
        Ok((Output::CopyIn(_) | Output::CopyOut(_), _, _)) => {
            return error_response(&query, &stdio_error());
        }
        Ok((Output::Command(_), _, _)) => {
            return error_response(
                &query,
                &Error::invalid("/exp needs a query that returns rows"),
            );
        }
        Err(e) => return error_response(&query, &e),
    };
    let rows = match limit {
        Some(l) => rows.limit(l),
        None => rows,
    };
    match render::csv(&rows) {
        Ok(body) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"questdb-query.csv\"",
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => error_response(&query, &e),
    }
}
