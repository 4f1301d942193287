//! HTTP server (axum): QuestDB's `/exec` (JSON), `/exp` (CSV) and `/imp`
//! (upload), Arc's CSV import and InfluxDB 3's Parquet bulk import, with the
//! bearer-token check of `http.auth.token` on every route.

mod arc;
mod bulk;
mod console;
mod counted;
mod exec;
pub mod imp;
mod render;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::Engine;

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/exec", get(exec::exec).post(exec::exec))
        .route("/exp", get(exec::exp).post(exec::exp))
        .route("/imp", post(imp::imp))
        .route("/api/v1/import/csv", post(arc::import_csv))
        .route(
            "/api/v3/enterprise/import",
            post(bulk::upload).get(bulk::list),
        )
        .merge(console::api())
        // Uploads are streamed to disk with `http.multipart.max.size`
        // enforced there (also after decompression), not buffered.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&engine),
            require_token,
        ))
        // After the token layer: the page itself holds no data.
        .merge(console::page())
        .layer(middleware::from_fn(count_request))
        .with_state(engine)
}

/// Counts every request for `sluice_http_requests_total`.
async fn count_request(request: axum::extract::Request, next: middleware::Next) -> Response {
    crate::metrics::metrics()
        .http_requests_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    next.run(request).await
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(engine);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(counted::CountingListener(listener), app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "http server failed");
    }
}

/// 401 without `Authorization: Bearer …`, 403 with a wrong token.
async fn require_token(
    State(engine): State<Arc<Engine>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = engine.config().http_auth_token.as_deref() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        None => (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "missing Authorization: Bearer token"})),
        )
            .into_response(),
        Some(t) if t == token => next.run(request).await,
        Some(_) => (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({"error": "invalid token"})),
        )
            .into_response(),
    }
}
