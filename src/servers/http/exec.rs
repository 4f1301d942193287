//! `/exec` and `/exp`: run one SQL text, answer QuestDB's JSON or CSV.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

use super::render;
use crate::engine::present::present_schema;
use crate::engine::{CommandKind, Engine, Output, Rows, Session};
use crate::engine::{QdbLimit, parse};
use crate::error::{Error, locate_error};

fn session(sql: &str) -> Session {
    Session {
        statement_timeout: None,
        user: "http".into(),
        read_only: false,
        cancel: Default::default(),
        sql: Some(sql.into()),
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
    let statements = parse(query).map_err(|e| locate_error(query, e))?;
    let compiled = started.elapsed();
    if statements.is_empty() {
        return Err(Error::syntax("empty query", 0));
    }
    let mut last = None;
    for stmt in statements {
        last = Some(
            engine
                .execute_statement(stmt, &session(query), &[], timeout)
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
        Some(l) => QdbLimit::parse_param(l).map(Some).ok_or_else(|| {
            Error::bad_option("limit", format!("invalid limit parameter [limit={l}]"))
        }),
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
            // QuestDB's answers: `{"ddl":"OK"}`, `{"dml":"OK"}`, and for
            // UPDATE the rows it changed.
            let body = match (c.kind, c.tag, c.rows) {
                (CommandKind::Dml, "UPDATE", Some(n)) => json!({ "dml": "OK", "updated": n }),
                (CommandKind::Dml, ..) => json!({ "dml": "OK" }),
                _ => json!({ "ddl": "OK" }),
            };
            return axum::Json(body).into_response();
        }
        Output::CopyIn(_) | Output::CopyOut(_) => {
            return error_response(&query, &stdio_error());
        }
    };
    let count_all = flag(&params, "count");
    let total = Arc::new(AtomicUsize::new(0));
    let shown = Arc::new(AtomicUsize::new(0));
    let rows = if count_all {
        rows.counted(Arc::clone(&total))
    } else {
        rows
    };
    let mut rows = match limit {
        Some(l) => rows.limit(l, count_all),
        None => rows,
    };
    // The first batch is read before the status line, so an error that
    // comes early (most do) is still an error response.
    let first = match rows.next().await {
        Some(Err(e)) => return error_response(&query, &locate_error(&query, e)),
        other => other,
    };
    let presented = present_schema(&rows.schema);
    // QuestDB's key order (query, columns, dataset, count, timings); the
    // object is written as text, the dataset row by row as it streams.
    let mut head = format!("{{\"query\":{}", Value::String(query.clone()));
    if !flag(&params, "nm") {
        head.push_str(&format!(
            ",\"columns\":{}",
            render::json_columns(&rows.schema)
        ));
    }
    head.push_str(",\"dataset\":[");
    let timings = flag(&params, "timings");
    let counted = Arc::clone(&shown);
    let batches = futures::stream::iter(first).chain(rows.into_stream());
    let dataset = batches.scan(true, move |first_row, batch| {
        let out = batch.and_then(|b| {
            counted.fetch_add(b.num_rows(), Ordering::Relaxed);
            let mut text = String::new();
            render::json_batch(&b, &presented, first_row, &mut text)?;
            Ok(Bytes::from(text))
        });
        futures::future::ready(Some(out))
    });
    let tail = futures::stream::once(async move {
        let count = if count_all { &total } else { &shown };
        let mut tail = format!("],\"count\":{}", count.load(Ordering::Relaxed));
        if timings {
            tail.push_str(&format!(
                ",\"timings\":{{\"authentication\":0,\"compiler\":{},\"execute\":{},\"count\":0}}",
                compiled.as_nanos(),
                executed.as_nanos()
            ));
        }
        tail.push('}');
        Ok(Bytes::from(tail))
    });
    let body = futures::stream::once(async { Ok(Bytes::from(head)) })
        .chain(dataset)
        .chain(tail);
    match whole(body).await {
        Ok(Whole::Body(bytes)) => {
            ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Ok(Whole::Started(body)) => {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => error_response(&query, &locate_error(&query, e)),
    }
}

/// A body of at most this many bytes is sent whole, with its length: one
/// write and no chunk framing (streamed, each piece was a write of its
/// own, a tenth of a small query's time in the server).
const WHOLE_BODY: usize = 64 << 10;

/// A response body read up to [`WHOLE_BODY`]: all of it, or what was read
/// and the rest as a stream.
enum Whole {
    Body(Bytes),
    Started(axum::body::Body),
}

/// Reads `chunks` until they end or pass [`WHOLE_BODY`]; an error before
/// that is the caller's to answer, since nothing has been sent yet.
async fn whole(
    chunks: impl futures::Stream<Item = Result<Bytes, Error>> + Send + 'static,
) -> Result<Whole, Error> {
    let mut chunks = Box::pin(chunks);
    let mut read = Vec::new();
    while read.len() <= WHOLE_BODY {
        match chunks.next().await {
            None => return Ok(Whole::Body(Bytes::from(read))),
            Some(chunk) => read.extend_from_slice(&chunk?),
        }
    }
    let read = Bytes::from(read);
    Ok(Whole::Started(streamed(
        futures::stream::once(async { Ok(read) }).chain(chunks),
    )))
}

/// A response body that sends each chunk as it is produced; an error
/// mid-way ends the body early (the status line is already sent), which
/// clients see as a cut connection rather than a short, valid result.
fn streamed(
    chunks: impl futures::Stream<Item = Result<Bytes, Error>> + Send + 'static,
) -> axum::body::Body {
    axum::body::Body::from_stream(chunks.map(|c| {
        c.map_err(|e| {
            tracing::warn!(error = %e, "result stream failed after the response started");
            std::io::Error::other(e.message())
        })
    }))
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
    let mut rows = match limit {
        Some(l) => rows.limit(l, false),
        None => rows,
    };
    let first = match rows.next().await {
        Some(Err(e)) => return error_response(&query, &locate_error(&query, e)),
        other => other,
    };
    if params
        .get("fmt")
        .is_some_and(|f| f.eq_ignore_ascii_case("parquet"))
    {
        // One Parquet file, streamed a row group at a time.
        let rows = rows.prepend(first.and_then(|b| b.ok()));
        let body = match crate::engine::parquet_out::parquet_stream(rows) {
            Ok(b) => b,
            Err(e) => return error_response(&query, &e),
        };
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/vnd.apache.parquet"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"questdb-query.parquet\"",
                ),
            ],
            streamed(body),
        )
            .into_response();
    }
    let presented = present_schema(&rows.schema);
    let mut head = Vec::new();
    render::csv_header(&presented, &mut head);
    let batches = futures::stream::iter(first).chain(rows.into_stream());
    let lines = batches.map(move |batch| {
        batch.and_then(|b| {
            let mut out = Vec::new();
            render::csv_batch(&b, &presented, &mut out)?;
            Ok(Bytes::from(out))
        })
    });
    let body = futures::stream::once(async { Ok(Bytes::from(head)) }).chain(lines);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"questdb-query.csv\"",
            ),
        ],
        streamed(body),
    )
        .into_response()
}
