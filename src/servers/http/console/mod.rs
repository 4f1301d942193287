//! The Web Console: a single page served at `/` from files inside the
//! binary, working on `/exec`, `/exp` and `sys.*` plus the few JSON calls
//! in [`api`] for importing a file the browser holds. The page and its
//! files carry no data and are served without the token; every call that
//! reads or writes data goes through the same token check as `/exec`.

mod api;
mod assets;
mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::engine::Engine;

/// The calls that need the token (when one is configured).
pub fn api() -> Router<Arc<Engine>> {
    Router::new()
        .route("/console/api/upload", post(api::upload))
        .route("/console/api/upload/{id}", delete(api::forget))
        .route("/console/api/preview", post(api::preview))
        .route("/console/api/import", post(api::import))
        .layer(axum::Extension(Arc::new(uploads::Uploads::default())))
}

/// The page and its files.
pub fn page() -> Router<Arc<Engine>> {
    Router::new()
        .route("/", get(assets::index))
        .route("/console/{*file}", get(assets::file))
}
